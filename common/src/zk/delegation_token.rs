//! Delegation-token znodes (Kafka 3.9 `ZkData`: `DelegationTokenAuthZNode` and friends, JSON
//! from `DelegationTokenManagerZk`), and the few ZooKeeper operations on them
//! (`KafkaZkClient.createDelegationTokenPaths` / `setOrCreateDelegationToken` /
//! `getDelegationTokenInfo` / `deleteDelegationToken` / `createTokenChangeNotification`).
//!
//! ```text
//! /delegation_token                       (persistent, empty)
//! /delegation_token/tokens/<tokenId>      (persistent) token information, JSON below
//! /delegation_token/token_changes/token_change_<10-digit seq>
//!                                         (persistent sequential) data = the token id, UTF-8
//! ```
//!
//! Token information, version 3 (`owner`, `tokenRequester` and `renewers` are principals
//! `Type:name` run through Kafka's `Sanitizer`, so `User:alice` is `User%3Aalice`):
//!
//! ```json
//! {"version":3,"owner":"User%3Aalice","tokenRequester":"User%3Aalice",
//!  "renewers":["User%3Abob"],"issueTimestamp":1731000000000,
//!  "maxTimestamp":1731604800000,"expiryTimestamp":1731086400000,"tokenId":"kU0vVq0mR0..."}
//! ```
//!
//! Versions 1 and 2 have no `tokenRequester` (it is the owner). The HMAC is never stored:
//! every broker derives it from the token id and `delegation.token.secret.key`. Whoever
//! changes or deletes a token writes a `token_change_` notification holding the token id;
//! every broker then re-reads `/delegation_token/tokens/<tokenId>` (absent = removed).

use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::zk::session::{CreateMode, ZkSession};
use crate::zk::znodes::{desanitize_entity_name, sanitize_entity_name};

/// `/delegation_token`.
pub struct DelegationTokenAuthZNode;
impl DelegationTokenAuthZNode {
    pub const PATH: &'static str = "/delegation_token";
}

/// `/delegation_token/tokens`: one child per live token.
pub struct DelegationTokensZNode;
impl DelegationTokensZNode {
    pub const PATH: &'static str = "/delegation_token/tokens";
}

/// `/delegation_token/token_changes`: parent of the change notifications.
pub struct DelegationTokenChangeNotificationZNode;
impl DelegationTokenChangeNotificationZNode {
    pub const PATH: &'static str = "/delegation_token/token_changes";
}

/// `/delegation_token/token_changes/token_change_<seq>` = token id (UTF-8, not JSON).
pub struct DelegationTokenChangeNotification;
impl DelegationTokenChangeNotification {
    pub const PREFIX: &'static str = "token_change_";

    /// Path to pass to a sequential create.
    pub fn create_path() -> String {
        format!(
            "{}/{}",
            DelegationTokenChangeNotificationZNode::PATH,
            Self::PREFIX
        )
    }

    /// Path of an existing child.
    pub fn path(child: &str) -> String {
        format!("{}/{}", DelegationTokenChangeNotificationZNode::PATH, child)
    }

    /// Sequence number of a child name `token_change_0000000007`.
    pub fn sequence(child: &str) -> Option<i64> {
        child.strip_prefix(Self::PREFIX)?.parse().ok()
    }

    pub fn encode(token_id: &str) -> Vec<u8> {
        token_id.as_bytes().to_vec()
    }

    pub fn decode(bytes: &[u8]) -> String {
        String::from_utf8_lossy(bytes).into_owned()
    }
}

/// A Kafka principal `Type:name` (`KafkaPrincipal`; equality is on type and name).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Principal {
    pub principal_type: String,
    pub name: String,
}

impl Principal {
    pub fn new(principal_type: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            principal_type: principal_type.into(),
            name: name.into(),
        }
    }

    pub fn user(name: impl Into<String>) -> Self {
        Self::new("User", name)
    }

    /// `SecurityUtils.parseKafkaPrincipal`: `Type:name`, split at the first `:`.
    pub fn parse(s: &str) -> Option<Self> {
        let (t, n) = s.split_once(':')?;
        if t.is_empty() {
            return None;
        }
        Some(Self::new(t, n))
    }
}

impl std::fmt::Display for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.principal_type, self.name)
    }
}

/// Kafka's `TokenInformation` (the HMAC is not part of it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenInformation {
    pub token_id: String,
    pub owner: Principal,
    pub token_requester: Principal,
    pub renewers: Vec<Principal>,
    pub issue_timestamp: i64,
    pub max_timestamp: i64,
    pub expiry_timestamp: i64,
}

impl TokenInformation {
    /// `ownerOrRenewer`: the owner, the requester or a renewer.
    pub fn owner_or_renewer(&self, p: &Principal) -> bool {
        self.owner == *p || self.token_requester == *p || self.renewers.contains(p)
    }

    /// Past its expiry or its maximum lifetime at `now_ms`.
    pub fn expired_at(&self, now_ms: i64) -> bool {
        self.max_timestamp < now_ms || self.expiry_timestamp < now_ms
    }
}

/// `/delegation_token/tokens/<tokenId>` (persistent), see the module docs.
pub struct DelegationTokenInfoZNode;
impl DelegationTokenInfoZNode {
    pub const CURRENT_VERSION: i64 = 3;

    pub fn path(token_id: &str) -> String {
        format!("{}/{}", DelegationTokensZNode::PATH, token_id)
    }

    pub fn encode(t: &TokenInformation) -> Vec<u8> {
        let renewers: Vec<String> = t
            .renewers
            .iter()
            .map(|r| sanitize_entity_name(&r.to_string()))
            .collect();
        let v = json!({
            "version": Self::CURRENT_VERSION,
            "owner": sanitize_entity_name(&t.owner.to_string()),
            "tokenRequester": sanitize_entity_name(&t.token_requester.to_string()),
            "renewers": renewers,
            "issueTimestamp": t.issue_timestamp,
            "maxTimestamp": t.max_timestamp,
            "expiryTimestamp": t.expiry_timestamp,
            "tokenId": t.token_id,
        });
        serde_json::to_vec(&v).unwrap_or_default()
    }

    /// `None` for empty data (as Kafka); an error for JSON Kafka would not accept.
    pub fn decode(bytes: &[u8]) -> Result<Option<TokenInformation>> {
        if bytes.is_empty() {
            return Ok(None);
        }
        let p = "/delegation_token/tokens/<tokenId>";
        let bad = |reason: String| Error::InvalidZnode {
            path: p.to_string(),
            reason,
        };
        let m: Map<String, Value> = match serde_json::from_slice(bytes) {
            Ok(Value::Object(m)) => m,
            _ => return Err(bad("not a JSON object".into())),
        };
        let int = |k: &str| -> Result<i64> {
            m.get(k)
                .and_then(Value::as_i64)
                .ok_or_else(|| bad(format!("missing or non-integer `{k}`")))
        };
        let string = |k: &str| -> Result<String> {
            m.get(k)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| bad(format!("missing or non-string `{k}`")))
        };
        let principal = |s: &str| -> Result<Principal> {
            desanitize_entity_name(s)
                .and_then(|d| Principal::parse(&d))
                .ok_or_else(|| bad(format!("bad principal {s:?}")))
        };
        let version = int("version")?;
        if !(1..=Self::CURRENT_VERSION).contains(&version) {
            return Err(bad(format!("unsupported version {version}")));
        }
        let owner = principal(&string("owner")?)?;
        let token_requester = if version >= 3 {
            principal(&string("tokenRequester")?)?
        } else {
            owner.clone()
        };
        let renewers = match m.get("renewers") {
            Some(Value::Array(a)) => a
                .iter()
                .map(|r| {
                    r.as_str()
                        .ok_or_else(|| bad("non-string renewer".into()))
                        .and_then(principal)
                })
                .collect::<Result<Vec<_>>>()?,
            _ => return Err(bad("missing `renewers`".into())),
        };
        Ok(Some(TokenInformation {
            token_id: string("tokenId")?,
            owner,
            token_requester,
            renewers,
            issue_timestamp: int("issueTimestamp")?,
            max_timestamp: int("maxTimestamp")?,
            expiry_timestamp: int("expiryTimestamp")?,
        }))
    }
}

/// `createDelegationTokenPaths`: `/delegation_token/token_changes` and `/tokens`.
pub async fn create_delegation_token_paths(zk: &ZkSession) -> Result<()> {
    zk.ensure_path(DelegationTokenChangeNotificationZNode::PATH)
        .await?;
    zk.ensure_path(DelegationTokensZNode::PATH).await
}

/// `setOrCreateDelegationToken`: set the token's znode, creating it when absent.
pub async fn set_or_create_delegation_token(zk: &ZkSession, t: &TokenInformation) -> Result<()> {
    let path = DelegationTokenInfoZNode::path(&t.token_id);
    let data = DelegationTokenInfoZNode::encode(t);
    match zk.set(&path, &data, None).await {
        Ok(_) => Ok(()),
        Err(e) if e.is_no_node() => zk
            .create_recursive(&path, &data, CreateMode::Persistent)
            .await
            .map(|_| ()),
        Err(e) => Err(e),
    }
}

/// `getDelegationTokenInfo`: `None` when the znode is absent or empty.
pub async fn get_delegation_token_info(
    zk: &ZkSession,
    token_id: &str,
) -> Result<Option<TokenInformation>> {
    match zk.get(&DelegationTokenInfoZNode::path(token_id)).await? {
        Some((data, _)) => DelegationTokenInfoZNode::decode(&data),
        None => Ok(None),
    }
}

/// `deleteDelegationToken` (recursive, absent is fine).
pub async fn delete_delegation_token(zk: &ZkSession, token_id: &str) -> Result<()> {
    zk.delete_recursive(&DelegationTokenInfoZNode::path(token_id))
        .await
}

/// `createTokenChangeNotification`: a sequential `token_change_` node holding the id.
pub async fn create_token_change_notification(zk: &ZkSession, token_id: &str) -> Result<String> {
    let (_, path) = zk
        .create_recursive(
            &DelegationTokenChangeNotification::create_path(),
            &DelegationTokenChangeNotification::encode(token_id),
            CreateMode::PersistentSequential,
        )
        .await?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> TokenInformation {
        TokenInformation {
            token_id: "abc-_XYZ".into(),
            owner: Principal::user("alice"),
            token_requester: Principal::user("admin"),
            renewers: vec![Principal::user("bob"), Principal::user("a b")],
            issue_timestamp: 1,
            max_timestamp: 3,
            expiry_timestamp: 2,
        }
    }

    #[test]
    fn token_info_round_trip_and_kafka_form() {
        let t = info();
        let bytes = DelegationTokenInfoZNode::encode(&t);
        let v: Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(v["version"], 3);
        assert_eq!(v["owner"], "User%3Aalice");
        assert_eq!(v["tokenRequester"], "User%3Aadmin");
        assert_eq!(v["renewers"][1], "User%3Aa%20b");
        assert_eq!(v["tokenId"], "abc-_XYZ");
        assert_eq!(
            DelegationTokenInfoZNode::decode(&bytes).expect("decode"),
            Some(t)
        );
        assert_eq!(DelegationTokenInfoZNode::decode(b"").expect("empty"), None);
    }

    /// What a Kafka 2.x broker wrote (version 1, no requester): the owner is the requester.
    #[test]
    fn version_1_has_owner_as_requester() {
        let raw = br#"{"version":1,"owner":"User%3Aalice","renewers":[],"issueTimestamp":5,"maxTimestamp":9,"expiryTimestamp":7,"tokenId":"t1"}"#;
        let t = DelegationTokenInfoZNode::decode(raw)
            .expect("decode")
            .expect("some");
        assert_eq!(t.token_requester, Principal::user("alice"));
        assert!(t.renewers.is_empty());
        assert!(!t.expired_at(7) && t.expired_at(8));
        for bad in [
            &br#"{"version":4,"owner":"User%3Aa","renewers":[],"issueTimestamp":1,"maxTimestamp":1,"expiryTimestamp":1,"tokenId":"t"}"#[..],
            br#"{"version":3,"owner":"nocolon","tokenRequester":"User%3Aa","renewers":[],"issueTimestamp":1,"maxTimestamp":1,"expiryTimestamp":1,"tokenId":"t"}"#,
            b"[1]",
        ] {
            assert!(DelegationTokenInfoZNode::decode(bad).is_err());
        }
    }

    #[test]
    fn paths() {
        assert_eq!(
            DelegationTokenInfoZNode::path("t"),
            "/delegation_token/tokens/t"
        );
        assert_eq!(
            DelegationTokenChangeNotification::create_path(),
            "/delegation_token/token_changes/token_change_"
        );
        assert_eq!(
            DelegationTokenChangeNotification::sequence("token_change_0000000012"),
            Some(12)
        );
        assert_eq!(DelegationTokenChangeNotification::sequence("x_1"), None);
    }
}
