//! Delegation tokens (KIP-48) as a Kafka 3.9 ZooKeeper broker keeps them
//! (`DelegationTokenManagerZk`, `DelegationTokenCache`).
//!
//! - A token is a random id (a UUID, URL-safe base64 without padding) plus its HMAC:
//!   HmacSHA512 of the id's UTF-8 bytes keyed with `delegation.token.secret.key`. Only the
//!   token information is stored (`/delegation_token/tokens/<tokenId>`, see
//!   `samsa_common::zk::delegation_token`); each broker derives the HMAC itself, so every
//!   broker must share the secret key.
//! - For each token the broker derives SCRAM-SHA-256 and SCRAM-SHA-512 credentials with the
//!   base64 HMAC as the password (fresh salt, 4096 iterations, as Kafka). A client logs in
//!   with SCRAM, username = token id, password = base64 HMAC and the `tokenauth=true`
//!   extension, and becomes `User:<owner name>`; its session ends when the token expires.
//! - Every change writes ZooKeeper then a `token_change_` notification; every broker
//!   re-reads the token on a notification ([`spawn_listener`]). The active controller
//!   removes expired tokens every `delegation.token.expiry.check.interval.ms`
//!   ([`spawn_expiry`]).
//!
//! Logins read only the in-memory cache. Changes (create, renew, expire, notification) are
//! serialised by one async gate per broker, as Kafka's manager lock does; without it an
//! expire racing a renew could re-create a deleted token's znode. The gate is never taken on
//! a login or a produce/fetch path.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD};
use base64::Engine;
use hmac::{Hmac, Mac};
use samsa_common::config::BrokerConfig;
use samsa_common::security::scram::{ScramCredential, ScramMechanism};
use samsa_common::zk::delegation_token::{
    self as zkt, DelegationTokenChangeNotification, DelegationTokenChangeNotificationZNode,
    DelegationTokensZNode, Principal, TokenInformation,
};
use samsa_common::zk::session::ZkSession;
use sha2::Sha512;
use tokio::sync::watch;
use tracing::{info, warn};

/// Kafka error codes of the token APIs.
pub mod code {
    pub const NONE: i16 = 0;
    pub const UNKNOWN_SERVER_ERROR: i16 = -1;
    pub const DELEGATION_TOKEN_AUTH_DISABLED: i16 = 61;
    pub const DELEGATION_TOKEN_NOT_FOUND: i16 = 62;
    pub const DELEGATION_TOKEN_OWNER_MISMATCH: i16 = 63;
    pub const DELEGATION_TOKEN_REQUEST_NOT_ALLOWED: i16 = 64;
    pub const DELEGATION_TOKEN_AUTHORIZATION_FAILED: i16 = 65;
    pub const DELEGATION_TOKEN_EXPIRED: i16 = 66;
    pub const INVALID_PRINCIPAL_TYPE: i16 = 67;
}

/// The token HMAC: HmacSHA512(key = secret bytes, data = token id bytes).
pub fn token_hmac(token_id: &str, secret: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length.
    let mut m = match <Hmac<Sha512> as Mac>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return Vec::new(),
    };
    m.update(token_id.as_bytes());
    m.finalize().into_bytes().to_vec()
}

/// A new token id: a random UUID as URL-safe base64 without padding (`generateUuidAsBase64`).
pub fn new_token_id() -> String {
    URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes())
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Kafka's `allowTokenRequests`: the token APIs need an authenticated channel that did not
/// itself log in with a token — not PLAINTEXT, not SSL without a client certificate.
pub fn allow_token_requests(conn: &crate::connection::ConnInfo) -> bool {
    use samsa_common::config::SecurityProtocol;
    !(conn.token_authenticated
        || conn.protocol == SecurityProtocol::Plaintext
        || (conn.protocol == SecurityProtocol::Ssl
            && &*conn.principal == crate::security::principal::ANONYMOUS))
}

/// The checks RenewDelegationToken and ExpireDelegationToken share, in Kafka's order: a
/// channel that may use tokens, tokens enabled, a ZooKeeper session. `Err` is the error code.
pub fn renew_or_expire_session(
    ctx: &crate::broker::BrokerContext,
    conn: &crate::connection::ConnInfo,
) -> std::result::Result<ZkSession, i16> {
    if !allow_token_requests(conn) {
        return Err(code::DELEGATION_TOKEN_REQUEST_NOT_ALLOWED);
    }
    if !ctx.security.tokens.settings.enabled() {
        return Err(code::DELEGATION_TOKEN_AUTH_DISABLED);
    }
    ctx.zk().ok_or(code::UNKNOWN_SERVER_ERROR)
}

/// The connection's principal (`User:alice`).
pub fn conn_principal(conn: &crate::connection::ConnInfo) -> Principal {
    Principal::parse(&conn.principal).unwrap_or_else(|| Principal::user(conn.principal.as_ref()))
}

/// The delegation-token settings of `server.properties`.
#[derive(Clone)]
pub struct TokenSettings {
    /// `None`: tokens are disabled (DELEGATION_TOKEN_AUTH_DISABLED).
    secret: Option<Vec<u8>>,
    pub max_lifetime_ms: i64,
    pub expiry_time_ms: i64,
    pub check_interval_ms: i64,
}

impl std::fmt::Debug for TokenSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSettings")
            .field("enabled", &self.secret.is_some())
            .field("max_lifetime_ms", &self.max_lifetime_ms)
            .field("expiry_time_ms", &self.expiry_time_ms)
            .field("check_interval_ms", &self.check_interval_ms)
            .finish()
    }
}

impl Default for TokenSettings {
    fn default() -> Self {
        Self {
            secret: None,
            max_lifetime_ms: 7 * 24 * 3600 * 1000,
            expiry_time_ms: 24 * 3600 * 1000,
            check_interval_ms: 3600 * 1000,
        }
    }
}

impl TokenSettings {
    pub fn from_config(c: &BrokerConfig) -> Self {
        Self {
            secret: c
                .delegation_token_secret_key
                .as_ref()
                .map(|s| s.0.as_bytes().to_vec()),
            max_lifetime_ms: c.delegation_token_max_lifetime_ms,
            expiry_time_ms: c.delegation_token_expiry_time_ms,
            check_interval_ms: c.delegation_token_expiry_check_interval_ms,
        }
    }

    /// Kafka's `tokenAuthEnabled`.
    pub fn enabled(&self) -> bool {
        self.secret.is_some()
    }

    fn hmac(&self, token_id: &str) -> Vec<u8> {
        token_hmac(token_id, self.secret.as_deref().unwrap_or_default())
    }
}

struct CachedToken {
    info: TokenInformation,
    hmac: Vec<u8>,
    scram: BTreeMap<ScramMechanism, ScramCredential>,
}

/// The broker's token cache: token information, HMAC → id, and the SCRAM credentials
/// logins check (Kafka's `DelegationTokenCache`).
#[derive(Default)]
pub struct TokenCache {
    inner: RwLock<CacheInner>,
}

#[derive(Default)]
struct CacheInner {
    tokens: HashMap<String, CachedToken>,
    /// base64 HMAC → token id.
    by_hmac: HashMap<String, String>,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenCache({} tokens)", self.read().tokens.len())
    }
}

/// What a `tokenauth` SCRAM login needs from the cache.
pub struct TokenLogin {
    pub credential: ScramCredential,
    /// Name of the token owner: the session's principal is `User:<owner_name>`.
    pub owner_name: String,
    pub expiry_timestamp: i64,
}

impl TokenCache {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, CacheInner> {
        match self.inner.read() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, CacheInner> {
        match self.inner.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Adds or replaces a token; SCRAM credentials are derived outside the lock.
    pub fn update(&self, info: TokenInformation, hmac: Vec<u8>) {
        let password = B64.encode(&hmac);
        let scram = ScramMechanism::ALL
            .iter()
            .map(|m| {
                let salt = ScramCredential::random_salt();
                let c = ScramCredential::from_password(*m, &password, &salt, m.min_iterations());
                (*m, c)
            })
            .collect();
        let id = info.token_id.clone();
        let mut g = self.write();
        if let Some(old) = g.tokens.remove(&id) {
            g.by_hmac.remove(&B64.encode(&old.hmac));
        }
        g.by_hmac.insert(password, id.clone());
        g.tokens.insert(id, CachedToken { info, hmac, scram });
    }

    pub fn remove(&self, token_id: &str) {
        let mut g = self.write();
        if let Some(old) = g.tokens.remove(token_id) {
            g.by_hmac.remove(&B64.encode(&old.hmac));
        }
    }

    /// The token whose HMAC this is (Renew, Expire).
    pub fn by_hmac(&self, hmac: &[u8]) -> Option<TokenInformation> {
        let g = self.read();
        let id = g.by_hmac.get(&B64.encode(hmac))?;
        g.tokens.get(id).map(|t| t.info.clone())
    }

    pub fn get(&self, token_id: &str) -> Option<(TokenInformation, Vec<u8>)> {
        self.read()
            .tokens
            .get(token_id)
            .map(|t| (t.info.clone(), t.hmac.clone()))
    }

    /// Every token with its HMAC.
    pub fn all(&self) -> Vec<(TokenInformation, Vec<u8>)> {
        self.read()
            .tokens
            .values()
            .map(|t| (t.info.clone(), t.hmac.clone()))
            .collect()
    }

    /// The SCRAM credential of token `token_id` for a `tokenauth` login.
    pub fn login(&self, token_id: &str, mech: ScramMechanism) -> Option<TokenLogin> {
        let g = self.read();
        let t = g.tokens.get(token_id)?;
        Some(TokenLogin {
            credential: t.scram.get(&mech)?.clone(),
            owner_name: t.info.owner.name.clone(),
            expiry_timestamp: t.info.expiry_timestamp,
        })
    }

    pub fn len(&self) -> usize {
        self.read().tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Result of CreateDelegationToken.
#[derive(Debug)]
pub struct Created {
    pub info: TokenInformation,
    pub hmac: Vec<u8>,
}

/// The token manager: settings, cache and the change gate.
#[derive(Debug, Default)]
pub struct TokenManager {
    pub settings: TokenSettings,
    pub cache: Arc<TokenCache>,
    gate: tokio::sync::Mutex<()>,
}

/// A token-API failure: Kafka error code (the log line says why).
pub type TokenResult<T> = std::result::Result<T, i16>;

impl TokenManager {
    pub fn new(settings: TokenSettings, cache: Arc<TokenCache>) -> Self {
        Self {
            settings,
            cache,
            gate: tokio::sync::Mutex::new(()),
        }
    }

    fn zk_error(e: samsa_common::error::Error) -> i16 {
        warn!(error = %e, "delegation token: ZooKeeper operation failed");
        code::UNKNOWN_SERVER_ERROR
    }

    /// Writes the token, updates the cache and announces the change (`updateToken`).
    async fn update_token(&self, zk: &ZkSession, info: TokenInformation) -> TokenResult<()> {
        zkt::set_or_create_delegation_token(zk, &info)
            .await
            .map_err(Self::zk_error)?;
        let hmac = self.settings.hmac(&info.token_id);
        let id = info.token_id.clone();
        self.cache.update(info, hmac);
        zkt::create_token_change_notification(zk, &id)
            .await
            .map_err(Self::zk_error)?;
        Ok(())
    }

    /// Deletes the token everywhere (`removeToken`).
    async fn remove_token(&self, zk: &ZkSession, token_id: &str) -> TokenResult<()> {
        zkt::delete_delegation_token(zk, token_id)
            .await
            .map_err(Self::zk_error)?;
        self.cache.remove(token_id);
        zkt::create_token_change_notification(zk, token_id)
            .await
            .map_err(Self::zk_error)?;
        Ok(())
    }

    /// `createToken`: lifetime capped by `delegation.token.max.lifetime.ms` (a request
    /// value ≤ 0 means the maximum), first expiry after `delegation.token.expiry.time.ms`.
    pub async fn create(
        &self,
        zk: &ZkSession,
        owner: Principal,
        requester: Principal,
        renewers: Vec<Principal>,
        max_lifetime_ms: i64,
    ) -> TokenResult<Created> {
        if !self.settings.enabled() {
            return Err(code::DELEGATION_TOKEN_AUTH_DISABLED);
        }
        let _g = self.gate.lock().await;
        let token_id = new_token_id();
        let issue = now_ms();
        let life = if max_lifetime_ms <= 0 {
            self.settings.max_lifetime_ms
        } else {
            max_lifetime_ms.min(self.settings.max_lifetime_ms)
        };
        let max_ts = issue.saturating_add(life);
        let expiry = max_ts.min(issue.saturating_add(self.settings.expiry_time_ms));
        let info = TokenInformation {
            token_id,
            owner,
            token_requester: requester,
            renewers,
            issue_timestamp: issue,
            max_timestamp: max_ts,
            expiry_timestamp: expiry,
        };
        self.update_token(zk, info.clone()).await?;
        info!(token_id = %info.token_id, owner = %info.owner, "created a delegation token");
        let hmac = self.settings.hmac(&info.token_id);
        Ok(Created { info, hmac })
    }

    fn allowed_to_renew(p: &Principal, t: &TokenInformation) -> bool {
        t.owner == *p || t.renewers.contains(p)
    }

    /// `renewToken`: new expiry = min(max timestamp, now + period); a negative period means
    /// `delegation.token.expiry.time.ms`.
    pub async fn renew(
        &self,
        zk: &ZkSession,
        principal: &Principal,
        hmac: &[u8],
        renew_period_ms: i64,
    ) -> TokenResult<i64> {
        if !self.settings.enabled() {
            return Err(code::DELEGATION_TOKEN_AUTH_DISABLED);
        }
        let _g = self.gate.lock().await;
        let mut t = self
            .cache
            .by_hmac(hmac)
            .ok_or(code::DELEGATION_TOKEN_NOT_FOUND)?;
        let now = now_ms();
        if !Self::allowed_to_renew(principal, &t) {
            return Err(code::DELEGATION_TOKEN_OWNER_MISMATCH);
        }
        if t.expired_at(now) {
            return Err(code::DELEGATION_TOKEN_EXPIRED);
        }
        let period = if renew_period_ms < 0 {
            self.settings.expiry_time_ms
        } else {
            renew_period_ms
        };
        t.expiry_timestamp = t.max_timestamp.min(now.saturating_add(period));
        let expiry = t.expiry_timestamp;
        let id = t.token_id.clone();
        self.update_token(zk, t).await?;
        info!(token_id = %id, "renewed a delegation token");
        Ok(expiry)
    }

    /// `expireToken`: a negative period removes the token now (answering now); otherwise the
    /// expiry becomes min(max timestamp, now + period).
    pub async fn expire(
        &self,
        zk: &ZkSession,
        principal: &Principal,
        hmac: &[u8],
        expiry_period_ms: i64,
    ) -> TokenResult<i64> {
        if !self.settings.enabled() {
            return Err(code::DELEGATION_TOKEN_AUTH_DISABLED);
        }
        let _g = self.gate.lock().await;
        let mut t = self
            .cache
            .by_hmac(hmac)
            .ok_or(code::DELEGATION_TOKEN_NOT_FOUND)?;
        let now = now_ms();
        if !Self::allowed_to_renew(principal, &t) {
            return Err(code::DELEGATION_TOKEN_OWNER_MISMATCH);
        }
        if expiry_period_ms < 0 {
            self.remove_token(zk, &t.token_id).await?;
            info!(token_id = %t.token_id, "expired a delegation token");
            return Ok(now);
        }
        if t.expired_at(now) {
            return Err(code::DELEGATION_TOKEN_EXPIRED);
        }
        t.expiry_timestamp = t.max_timestamp.min(now.saturating_add(expiry_period_ms));
        let expiry = t.expiry_timestamp;
        let id = t.token_id.clone();
        self.update_token(zk, t).await?;
        info!(token_id = %id, "updated a delegation token's expiry");
        Ok(expiry)
    }

    /// `expireTokens`: removes every token past its expiry or maximum lifetime. Run by
    /// the active controller.
    pub async fn expire_tokens(&self, zk: &ZkSession) -> usize {
        let _g = self.gate.lock().await;
        let now = now_ms();
        let mut n = 0;
        for (t, _) in self.cache.all() {
            if t.expired_at(now) {
                info!(token_id = %t.token_id, owner = %t.owner, "delegation token expired");
                if self.remove_token(zk, &t.token_id).await.is_ok() {
                    n += 1;
                }
            }
        }
        n
    }

    /// Re-reads one token from ZooKeeper into the cache (absent = removed).
    async fn refresh(&self, zk: &ZkSession, token_id: &str) -> samsa_common::error::Result<()> {
        match zkt::get_delegation_token_info(zk, token_id).await {
            Ok(Some(info)) => {
                let hmac = self.settings.hmac(&info.token_id);
                self.cache.update(info, hmac);
            }
            Ok(None) => self.cache.remove(token_id),
            Err(e @ samsa_common::error::Error::InvalidZnode { .. }) => {
                warn!(token_id, error = %e, "ignoring unreadable delegation token znode");
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// Start-up: creates the token paths and loads every token (`loadCache`).
    pub async fn load(&self, zk: &ZkSession) -> samsa_common::error::Result<usize> {
        if !self.settings.enabled() {
            return Ok(0);
        }
        zkt::create_delegation_token_paths(zk).await?;
        let _g = self.gate.lock().await;
        let ids = zk
            .children(DelegationTokensZNode::PATH)
            .await?
            .unwrap_or_default();
        for id in &ids {
            self.refresh(zk, id).await?;
        }
        Ok(self.cache.len())
    }
}

/// Follows `/delegation_token/token_changes` (Kafka's `ZkNodeChangeNotificationListener`
/// with `TokenChangedNotificationHandler`): every notification newer than the last handled
/// one re-reads its token; handled ones older than 15 minutes are deleted.
pub fn spawn_listener(
    ctx: Arc<crate::broker::BrokerContext>,
    shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let listener = crate::zk_notifications::NotificationListener::new(
        DelegationTokenChangeNotificationZNode::PATH,
        DelegationTokenChangeNotification::PREFIX,
        TokenChangeHandler { ctx: ctx.clone() },
    );
    crate::zk_notifications::spawn(ctx, listener, shutdown)
}

/// Kafka's `TokenChangedNotificationHandler`: re-reads the token a notification names.
struct TokenChangeHandler {
    ctx: Arc<crate::broker::BrokerContext>,
}

impl crate::zk_notifications::NotificationHandler for TokenChangeHandler {
    async fn process_notification(
        &mut self,
        zk: &ZkSession,
        _path: &str,
        data: &[u8],
    ) -> samsa_common::error::Result<()> {
        let tokens = &self.ctx.security.tokens;
        let id = DelegationTokenChangeNotification::decode(data);
        info!(token_id = %id, "processing delegation token notification");
        let _g = tokens.gate.lock().await;
        tokens.refresh(zk, &id).await
    }
}

/// The active controller's expiry scan (`delete-expired-tokens`), every
/// `delegation.token.expiry.check.interval.ms`.
pub fn spawn_expiry(
    ctx: Arc<crate::broker::BrokerContext>,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let period = Duration::from_millis(
            u64::try_from(ctx.security.tokens.settings.check_interval_ms.max(1)).unwrap_or(1),
        );
        loop {
            tokio::select! {
                _ = tokio::time::sleep(period) => {}
                _ = shutdown.changed() => {}
            }
            if *shutdown.borrow() {
                return;
            }
            if !ctx.controller.is_active() {
                continue;
            }
            if let Some(zk) = ctx.zk() {
                let n = ctx.security.tokens.expire_tokens(&zk).await;
                if n > 0 {
                    info!(removed = n, "removed expired delegation tokens");
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Same HMAC as Java's `Mac.getInstance("HmacSHA512")` (checked against
    /// `openssl dgst -sha512 -hmac secret`).
    #[test]
    fn hmac_matches_hmac_sha512() {
        let h = token_hmac("tokenid", b"secret");
        assert_eq!(h.len(), 64);
        assert_eq!(
            B64.encode(&h),
            "ruEIJamjEQsAtxNf4aMj/H003j0BJ7Kr8kS4xNJigwoEEpg98/JUxFugV/1oCBP8VM8ftcNJKuPxqbzlchmshA=="
        );
    }

    #[test]
    fn token_ids_are_22_url_safe_chars() {
        let a = new_token_id();
        assert_eq!(a.len(), 22);
        assert!(a
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_ne!(a, new_token_id());
    }

    #[test]
    fn cache_maps_hmac_and_scram() {
        let cache = TokenCache::default();
        let info = TokenInformation {
            token_id: "t1".into(),
            owner: Principal::user("alice"),
            token_requester: Principal::user("admin"),
            renewers: vec![],
            issue_timestamp: 1,
            max_timestamp: 10,
            expiry_timestamp: 5,
        };
        let hmac = token_hmac("t1", b"k");
        cache.update(info.clone(), hmac.clone());
        assert_eq!(cache.by_hmac(&hmac), Some(info.clone()));
        let l = cache.login("t1", ScramMechanism::Sha512).unwrap();
        assert_eq!(l.owner_name, "alice");
        assert_eq!(l.expiry_timestamp, 5);
        let expect = ScramCredential::from_password(
            ScramMechanism::Sha512,
            &B64.encode(&hmac),
            &l.credential.salt,
            4096,
        );
        assert_eq!(l.credential, expect);
        cache.remove("t1");
        assert!(cache.by_hmac(&hmac).is_none());
        assert!(cache.login("t1", ScramMechanism::Sha256).is_none());
    }

    fn settings() -> TokenSettings {
        TokenSettings {
            secret: Some(b"k".to_vec()),
            ..TokenSettings::default()
        }
    }

    /// Create, renew, expire and the expiry scan against a real ZooKeeper; a second
    /// manager (another broker) loads what the first wrote.
    #[tokio::test]
    async fn manager_life_cycle() {
        use samsa_common::zk::session::ZkConfig;
        use samsa_common::zk::testing::TestZk;
        let server = TestZk::start();
        let zk = ZkSession::connect(&ZkConfig::new(
            server.connect_string_with_chroot("/tok"),
            Duration::from_secs(10),
        ))
        .await
        .unwrap();
        let m = TokenManager::new(settings(), Arc::default());
        assert_eq!(m.load(&zk).await.unwrap(), 0);
        let (alice, bob, eve) = (
            Principal::user("alice"),
            Principal::user("bob"),
            Principal::user("eve"),
        );
        let c = m
            .create(&zk, alice.clone(), alice.clone(), vec![bob.clone()], 0)
            .await
            .unwrap();
        assert_eq!(c.hmac, token_hmac(&c.info.token_id, b"k"));
        assert_eq!(
            c.info.max_timestamp - c.info.issue_timestamp,
            7 * 24 * 3600 * 1000
        );
        let stored = zkt::get_delegation_token_info(&zk, &c.info.token_id)
            .await
            .unwrap();
        assert_eq!(stored, Some(c.info.clone()));

        assert_eq!(
            m.renew(&zk, &eve, &c.hmac, 1000).await,
            Err(code::DELEGATION_TOKEN_OWNER_MISMATCH)
        );
        assert_eq!(
            m.renew(&zk, &bob, b"nope", 1000).await,
            Err(code::DELEGATION_TOKEN_NOT_FOUND)
        );
        // Renewed for an hour, so a slow machine cannot let it lapse before the expire below
        // (a 1 s renewal failed under load with DELEGATION_TOKEN_EXPIRED).
        let e = m.renew(&zk, &bob, &c.hmac, 3_600_000).await.unwrap();
        assert!(e <= now_ms() + 3_600_000 && e > c.info.issue_timestamp);
        let e2 = m.expire(&zk, &alice, &c.hmac, 500).await.unwrap();
        assert!(e2 <= e);

        // Another broker: loads the token, then follows a removal by notification.
        let other = TokenManager::new(settings(), Arc::default());
        assert_eq!(other.load(&zk).await.unwrap(), 1);
        assert_eq!(other.cache.by_hmac(&c.hmac).unwrap().expiry_timestamp, e2);
        assert_eq!(m.expire(&zk, &alice, &c.hmac, -1).await.map(|_| ()), Ok(()));
        assert!(m.cache.is_empty());
        assert!(zkt::get_delegation_token_info(&zk, &c.info.token_id)
            .await
            .unwrap()
            .is_none());
        other.refresh(&zk, &c.info.token_id).await.unwrap();
        assert!(other.cache.is_empty());

        // Past its maximum lifetime: not renewable, removed by the scan.
        let short = m
            .create(&zk, bob.clone(), alice.clone(), vec![], 1)
            .await
            .unwrap();
        assert_eq!(short.info.max_timestamp - short.info.issue_timestamp, 1);
        while now_ms() <= short.info.max_timestamp {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            m.renew(&zk, &bob, &short.hmac, 1000).await,
            Err(code::DELEGATION_TOKEN_EXPIRED)
        );
        assert_eq!(m.expire_tokens(&zk).await, 1);
        assert!(m.cache.is_empty());
        assert!(zkt::get_delegation_token_info(&zk, &short.info.token_id)
            .await
            .unwrap()
            .is_none());

        let off = TokenManager::default();
        assert_eq!(
            off.create(&zk, alice.clone(), alice, vec![], 0)
                .await
                .map(|_| ())
                .unwrap_err(),
            code::DELEGATION_TOKEN_AUTH_DISABLED
        );
    }

    /// Kafka's `allowTokenRequests` and the order of the Create checks.
    #[tokio::test]
    async fn handlers_refuse_before_touching_tokens() {
        use crate::connection::ConnInfo;
        use kafka_protocol::messages::create_delegation_token_request::CreatableRenewers;
        use kafka_protocol::messages::{
            CreateDelegationTokenRequest, DescribeDelegationTokenRequest, RequestHeader,
        };
        use kafka_protocol::protocol::StrBytes;
        use samsa_common::config::SecurityProtocol;
        let p = std::collections::HashMap::from([(
            "zookeeper.connect".to_string(),
            "unused:1".to_string(),
        )]);
        let cfg = Arc::new(BrokerConfig::from_props(&p).unwrap());
        assert!(!TokenSettings::from_config(&cfg).enabled());
        let ctx = Arc::new(crate::broker::BrokerContext::new(cfg, Vec::new()));
        let addr: std::net::SocketAddr = "127.0.0.1:1".parse().unwrap();
        let conn = |proto, principal: &str, token| {
            let mut c = ConnInfo::anonymous(Arc::from("L"), addr, addr);
            c.protocol = proto;
            c.principal = Arc::from(principal);
            c.token_authenticated = token;
            c
        };
        let header = RequestHeader::default().with_request_api_version(3);
        let create = |c: ConnInfo, req: CreateDelegationTokenRequest| {
            let ctx = ctx.clone();
            let header = header.clone();
            async move {
                crate::handlers::create_delegation_token::handle(&ctx, &c, &header, req)
                    .await
                    .unwrap()
            }
        };
        use SecurityProtocol::*;
        for (c, want) in [
            (
                conn(Plaintext, "User:ANONYMOUS", false),
                code::DELEGATION_TOKEN_REQUEST_NOT_ALLOWED,
            ),
            (
                conn(Ssl, "User:ANONYMOUS", false),
                code::DELEGATION_TOKEN_REQUEST_NOT_ALLOWED,
            ),
            (
                conn(SaslPlaintext, "User:a", true),
                code::DELEGATION_TOKEN_REQUEST_NOT_ALLOWED,
            ),
            (
                conn(Ssl, "User:CN=client", false),
                code::DELEGATION_TOKEN_AUTH_DISABLED,
            ),
            (
                conn(SaslSsl, "User:a", false),
                code::DELEGATION_TOKEN_AUTH_DISABLED,
            ),
        ] {
            let r = create(c.clone(), CreateDelegationTokenRequest::default()).await;
            assert_eq!(r.error_code, want, "{c:?}");
            assert_eq!(r.expiry_timestamp_ms, -1);
            let d = crate::handlers::describe_delegation_token::handle(
                &ctx,
                &c,
                &header,
                DescribeDelegationTokenRequest::default(),
            )
            .await
            .unwrap();
            assert_eq!(d.error_code, want, "{c:?}");
        }
        let mut req = CreateDelegationTokenRequest::default();
        req.renewers.push(
            CreatableRenewers::default()
                .with_principal_type(StrBytes::from_static_str("Group"))
                .with_principal_name(StrBytes::from_static_str("g")),
        );
        let r = create(conn(SaslPlaintext, "User:a", false), req).await;
        assert_eq!(r.error_code, code::INVALID_PRINCIPAL_TYPE);
        assert_eq!(r.token_requester_principal_name.as_str(), "a");
    }
}
