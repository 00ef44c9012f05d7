//! SCRAM-SHA-256/512 server (RFC 5802 as Kafka's `ScramSaslServer`) and the in-memory
//! credential cache it reads.
//!
//! Credentials live in ZooKeeper under `/config/users/<user>` (the user entity config,
//! see `samsa_common::zk::znodes::ConfigEntityZNode`), one key per mechanism in
//! [`ScramCredential`]'s string form. The cache is filled at start-up and refreshed by
//! the `/config/changes` listener, so no request path reads ZooKeeper.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use samsa_common::security::scram::{decode_saslname, nonce, ScramCredential, ScramMechanism};

use super::plain::constant_time_eq;
use crate::security::tokens::TokenCache;

/// A completed SCRAM login.
#[derive(Debug, PartialEq, Eq)]
pub struct ScramLogin {
    /// The authorization id: the user, or for a token login the token owner's name.
    pub user: String,
    /// Token logins: the token's expiry (ms since the epoch), which ends the session.
    pub token_expiry_ms: Option<i64>,
}

/// user → mechanism → credential, plus the delegation tokens' credentials (logins with
/// the `tokenauth=true` extension look there instead).
#[derive(Default)]
pub struct ScramStore {
    users: RwLock<HashMap<String, BTreeMap<ScramMechanism, ScramCredential>>>,
    /// Delegation tokens (shared with the token manager).
    pub tokens: Arc<TokenCache>,
}

impl std::fmt::Debug for ScramStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.users.read().map(|u| u.len()).unwrap_or(0);
        write!(f, "ScramStore({n} users)")
    }
}

impl ScramStore {
    pub fn get(&self, user: &str, mech: ScramMechanism) -> Option<ScramCredential> {
        let users = match self.users.read() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        users.get(user).and_then(|m| m.get(&mech)).cloned()
    }

    /// Replaces `user`'s credentials with those found in its entity config (other keys,
    /// e.g. quotas, are ignored); an empty config removes the user.
    pub fn set_user(&self, user: &str, config: &BTreeMap<String, String>) {
        let creds: BTreeMap<ScramMechanism, ScramCredential> = config
            .iter()
            .filter_map(|(k, v)| {
                let mech = ScramMechanism::from_name(k)?;
                match ScramCredential::parse_kafka_string(v) {
                    Some(c) => Some((mech, c)),
                    None => {
                        tracing::warn!(user, mechanism = k, "ignoring malformed SCRAM credential");
                        None
                    }
                }
            })
            .collect();
        let mut users = match self.users.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if creds.is_empty() {
            users.remove(user);
        } else {
            users.insert(user.to_string(), creds);
        }
    }

    /// Users and their mechanisms (iterations), for DescribeUserScramCredentials.
    pub fn describe(&self) -> BTreeMap<String, Vec<(ScramMechanism, u32)>> {
        let users = match self.users.read() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        users
            .iter()
            .map(|(u, m)| {
                (
                    u.clone(),
                    m.iter().map(|(k, c)| (*k, c.iterations)).collect(),
                )
            })
            .collect()
    }
}

enum State {
    First,
    Final {
        client_first_bare: String,
        server_first: String,
        nonce: String,
        cred: ScramCredential,
        user: String,
        token_expiry_ms: Option<i64>,
    },
    Done,
}

/// One server-side SCRAM exchange.
pub struct ScramServer {
    mech: ScramMechanism,
    state: State,
}

/// A failed step; the text is for the broker log only (clients get Kafka's generic
/// message), and never holds a secret.
pub type ScramError = String;

impl ScramServer {
    pub fn new(mech: ScramMechanism) -> Self {
        Self {
            mech,
            state: State::First,
        }
    }

    /// Evaluates one client message: `Ok((challenge, Some(login)))` when complete.
    pub fn evaluate(
        &mut self,
        store: &ScramStore,
        token: &[u8],
    ) -> Result<(Vec<u8>, Option<ScramLogin>), ScramError> {
        let msg = std::str::from_utf8(token).map_err(|_| "SCRAM message is not UTF-8")?;
        match std::mem::replace(&mut self.state, State::Done) {
            State::First => {
                // gs2-header: "n,," or "n,a=<authzid>,"; no channel binding.
                let mut it = msg.splitn(3, ',');
                let (cb, authz, bare) = match (it.next(), it.next(), it.next()) {
                    (Some(c), Some(a), Some(b)) => (c, a, b),
                    _ => return Err("invalid client-first-message".into()),
                };
                if cb != "n" {
                    return Err(format!("unsupported channel binding flag {cb:?}"));
                }
                let mut user = None;
                let mut client_nonce = None;
                for attr in bare.split(',') {
                    if let Some(v) = attr.strip_prefix("n=") {
                        user = decode_saslname(v);
                    } else if let Some(v) = attr.strip_prefix("r=") {
                        client_nonce = Some(v.to_string());
                    } else if attr.starts_with("m=") {
                        return Err("mandatory extension not supported".into());
                    }
                    // Other attributes are extensions (e.g. tokenauth=true): ignored here.
                }
                let (user, client_nonce) = match (user, client_nonce) {
                    (Some(u), Some(n)) if !u.is_empty() && !n.is_empty() => (u, n),
                    _ => return Err("invalid client-first-message".into()),
                };
                // Kafka's ScramExtensions: `tokenauth` parsed as a Java boolean.
                let token_auth = bare.split(',').any(|a| {
                    a.strip_prefix("tokenauth=")
                        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
                });
                let (cred, authz_user, token_expiry_ms) = if token_auth {
                    let l = store.tokens.login(&user, self.mech).ok_or_else(|| {
                        format!("Token Authentication failed: Invalid tokenId : {user}")
                    })?;
                    (l.credential, l.owner_name, Some(l.expiry_timestamp))
                } else {
                    let c = store
                        .get(&user, self.mech)
                        .ok_or_else(|| format!("unknown user {user} for {}", self.mech.name()))?;
                    (c, user.clone(), None)
                };
                if let Some(a) = authz.strip_prefix("a=") {
                    if decode_saslname(a).as_deref() != Some(user.as_str()) {
                        return Err(
                            "Authentication failed: Client requested an authorization id that is different from username".into(),
                        );
                    }
                }
                if cred.iterations < self.mech.min_iterations() {
                    return Err(format!(
                        "Iterations {} is less than the minimum {} for {}",
                        cred.iterations,
                        self.mech.min_iterations(),
                        self.mech.name()
                    ));
                }
                let nonce = format!("{client_nonce}{}", nonce());
                let server_first = format!(
                    "r={nonce},s={},i={}",
                    B64.encode(&cred.salt),
                    cred.iterations
                );
                let out = server_first.clone().into_bytes();
                self.state = State::Final {
                    client_first_bare: bare.to_string(),
                    server_first,
                    nonce,
                    cred,
                    user: authz_user,
                    token_expiry_ms,
                };
                Ok((out, None))
            }
            State::Final {
                client_first_bare,
                server_first,
                nonce,
                cred,
                user,
                token_expiry_ms,
            } => {
                let (without_proof, proof) = msg
                    .rsplit_once(",p=")
                    .ok_or("invalid client-final-message")?;
                let mut got_nonce = None;
                for attr in without_proof.split(',') {
                    if let Some(v) = attr.strip_prefix("r=") {
                        got_nonce = Some(v);
                    }
                }
                // Kafka checks `endsWith`, not equality: librdkafka before 2.x fixes sends its
                // client nonce in front of the full combined nonce.
                if !got_nonce.is_some_and(|n| n.ends_with(nonce.as_str())) {
                    return Err("Invalid client nonce in the final client message.".into());
                }
                let proof = B64.decode(proof).map_err(|_| "invalid client proof")?;
                let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
                let signature = self.mech.hmac(&cred.stored_key, auth_message.as_bytes());
                if proof.len() != signature.len() {
                    return Err(format!("invalid client credentials for {user}"));
                }
                let client_key: Vec<u8> =
                    proof.iter().zip(&signature).map(|(a, b)| a ^ b).collect();
                if !constant_time_eq(&self.mech.hash(&client_key), &cred.stored_key) {
                    return Err(format!("invalid client credentials for {user}"));
                }
                let server_sig = self.mech.hmac(&cred.server_key, auth_message.as_bytes());
                Ok((
                    format!("v={}", B64.encode(server_sig)).into_bytes(),
                    Some(ScramLogin {
                        user,
                        token_expiry_ms,
                    }),
                ))
            }
            State::Done => Err("unexpected SCRAM message after completion".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use samsa_common::security::scram::ScramClient;

    fn store_with(user: &str, password: &str, mech: ScramMechanism) -> ScramStore {
        let s = ScramStore::default();
        let c = ScramCredential::from_password(mech, password, b"0123456789abcdef", 4096);
        s.set_user(
            user,
            &BTreeMap::from([(mech.name().to_string(), c.to_kafka_string())]),
        );
        s
    }

    #[test]
    fn full_exchange_both_mechanisms() {
        for mech in ScramMechanism::ALL {
            let store = store_with("alice", "alice-secret", mech);
            let mut client = ScramClient::new(mech, "alice", "alice-secret");
            let mut server = ScramServer::new(mech);
            let (sf, done) = server.evaluate(&store, &client.client_first()).unwrap();
            assert!(done.is_none());
            let cf = client.client_final(&sf).unwrap();
            let (fin, login) = server.evaluate(&store, &cf).unwrap();
            assert_eq!(login.unwrap().user, "alice");
            client.verify_server_final(&fin).unwrap();
        }
    }

    /// librdkafka 2.0 repeats its client nonce in front of the combined one; Kafka accepts it.
    #[test]
    fn librdkafka_nonce_prefix_accepted() {
        let mech = ScramMechanism::Sha256;
        let store = store_with("u", "pw", mech);
        let mut server = ScramServer::new(mech);
        let (sf, _) = server.evaluate(&store, b"n,,n=u,r=abc").unwrap();
        let sf = String::from_utf8(sf).unwrap();
        let combined = sf
            .split(',')
            .next()
            .unwrap()
            .strip_prefix("r=")
            .unwrap()
            .to_string();
        let salt = B64
            .decode(sf.split(',').nth(1).unwrap().strip_prefix("s=").unwrap())
            .unwrap();
        let salted = mech.salted_password(b"pw", &salt, 4096);
        let without_proof = format!("c=biws,r=abc{combined}");
        let auth = format!("n=u,r=abc,{sf},{without_proof}");
        let ck = mech.hmac(&salted, b"Client Key");
        let sig = mech.hmac(&mech.hash(&ck), auth.as_bytes());
        let proof: Vec<u8> = ck.iter().zip(&sig).map(|(a, b)| a ^ b).collect();
        let msg = format!("{without_proof},p={}", B64.encode(proof));
        let (_, login) = server.evaluate(&store, msg.as_bytes()).unwrap();
        assert_eq!(login.unwrap().user, "u");
    }

    /// A `tokenauth=true` login checks the token cache and names the token owner; the
    /// same name without the extension is an unknown user, and a removed token fails.
    #[test]
    fn token_login() {
        use crate::security::tokens::token_hmac;
        use samsa_common::zk::delegation_token::{Principal, TokenInformation};
        let store = ScramStore::default();
        let hmac = token_hmac("tok1", b"secret");
        let info = TokenInformation {
            token_id: "tok1".into(),
            owner: Principal::user("alice"),
            token_requester: Principal::user("admin"),
            renewers: vec![],
            issue_timestamp: 0,
            max_timestamp: 99,
            expiry_timestamp: 42,
        };
        store.tokens.update(info, hmac.clone());
        let pw = B64.encode(&hmac);
        for mech in ScramMechanism::ALL {
            let mut client = ScramClient::new(mech, "tok1", &pw).with_token_auth();
            let mut server = ScramServer::new(mech);
            let (sf, _) = server.evaluate(&store, &client.client_first()).unwrap();
            let cf = client.client_final(&sf).unwrap();
            let (fin, login) = server.evaluate(&store, &cf).unwrap();
            assert_eq!(
                login,
                Some(ScramLogin {
                    user: "alice".into(),
                    token_expiry_ms: Some(42)
                })
            );
            client.verify_server_final(&fin).unwrap();

            let plain = ScramClient::new(mech, "tok1", &pw);
            assert!(ScramServer::new(mech)
                .evaluate(&store, &plain.client_first())
                .is_err());
            let mut wrong = ScramClient::new(mech, "tok1", "not-the-hmac").with_token_auth();
            let mut server = ScramServer::new(mech);
            let (sf, _) = server.evaluate(&store, &wrong.client_first()).unwrap();
            let cf = wrong.client_final(&sf).unwrap();
            assert!(server.evaluate(&store, &cf).is_err());
        }
        store.tokens.remove("tok1");
        let c = ScramClient::new(ScramMechanism::Sha256, "tok1", &pw).with_token_auth();
        let e = ScramServer::new(ScramMechanism::Sha256)
            .evaluate(&store, &c.client_first())
            .unwrap_err();
        assert!(e.contains("Invalid tokenId"), "{e}");
    }

    #[test]
    fn wrong_password_unknown_user_and_removal() {
        let mech = ScramMechanism::Sha512;
        let store = store_with("alice", "right", mech);
        let mut client = ScramClient::new(mech, "alice", "wrong");
        let mut server = ScramServer::new(mech);
        let (sf, _) = server.evaluate(&store, &client.client_first()).unwrap();
        let cf = client.client_final(&sf).unwrap();
        let e = server.evaluate(&store, &cf).unwrap_err();
        assert!(!e.contains("wrong") && !e.contains("right"));

        let c = ScramClient::new(ScramMechanism::Sha256, "alice", "right");
        assert!(ScramServer::new(ScramMechanism::Sha256)
            .evaluate(&store, &c.client_first())
            .is_err());
        store.set_user("alice", &BTreeMap::new());
        let c = ScramClient::new(mech, "alice", "right");
        assert!(ScramServer::new(mech)
            .evaluate(&store, &c.client_first())
            .is_err());
        assert!(ScramServer::new(mech).evaluate(&store, b"garbage").is_err());
        assert!(ScramServer::new(mech)
            .evaluate(&store, b"y,,n=a,r=b")
            .is_err());
    }
}
