//! The ACL znodes of Kafka 3.9's ZooKeeper authorizer (`ZkData`: `ZkAclStore`,
//! `ExtendedAclZNode`, `ZkAclChangeStore`, `ResourceZNode`, `ExtendedAclChangeEvent`).
//!
//! Layout (resource type and operation names are Kafka's PascalCase names, `Topic`,
//! `TransactionalId`, `DescribeConfigs`; the broker owns the enums and passes names here):
//! * `/kafka-acl/<ResourceType>/<name>` — LITERAL patterns (the wildcard `*` included);
//! * `/kafka-acl-extended/prefixed/<ResourceType>/<name>` — PREFIXED patterns;
//! * each resource node holds
//!   `{"version":1,"acls":[{"principal":"User:alice","permissionType":"Allow","operation":"Read","host":"*"}]}`
//!   (a set: order carries no meaning); the node is deleted when its last ACL goes;
//! * after changing a resource node the writer creates a persistent sequential
//!   `/kafka-acl-changes/acl_changes_<seq>` holding `TOPIC:<name>` (the resource type's enum
//!   name, a colon, the name) for LITERAL patterns, or
//!   `/kafka-acl-extended-changes/acl_changes_<seq>` holding
//!   `{"version":1,"resourceType":"TOPIC","name":"<name>","patternType":"PREFIXED"}` for the
//!   others. Every broker watches both and re-reads the named resource node.
//!
//! Writes are conditional on the node's version, as Kafka's `updateResourceAcls` does.

use serde_json::{json, Map, Value};

use crate::error::{Error, Result};

/// Root of LITERAL patterns.
pub const LITERAL_ACL_PATH: &str = "/kafka-acl";
/// Root of the non-literal stores (`/kafka-acl-extended/<patterntype>`).
pub const EXTENDED_ACL_PATH: &str = "/kafka-acl-extended";
/// Change notifications for LITERAL patterns.
pub const LITERAL_CHANGES_PATH: &str = "/kafka-acl-changes";
/// Change notifications for PREFIXED patterns.
pub const EXTENDED_CHANGES_PATH: &str = "/kafka-acl-extended-changes";
/// Sequential child prefix of both change paths.
pub const CHANGE_PREFIX: &str = "acl_changes_";

/// Which store a pattern lives in. LITERAL includes the `*` wildcard resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AclStore {
    Literal,
    Prefixed,
}

impl AclStore {
    pub const ALL: [AclStore; 2] = [AclStore::Literal, AclStore::Prefixed];

    /// Directory holding one child per resource type.
    pub fn root(self) -> &'static str {
        match self {
            AclStore::Literal => LITERAL_ACL_PATH,
            AclStore::Prefixed => "/kafka-acl-extended/prefixed",
        }
    }

    /// `PatternType` enum name as Kafka writes it in the extended change event.
    pub fn pattern_type_name(self) -> &'static str {
        match self {
            AclStore::Literal => "LITERAL",
            AclStore::Prefixed => "PREFIXED",
        }
    }

    /// `/kafka-acl/Topic`.
    pub fn type_path(self, resource_type_name: &str) -> String {
        format!("{}/{resource_type_name}", self.root())
    }

    /// `/kafka-acl/Topic/orders`.
    pub fn resource_path(self, resource_type_name: &str, name: &str) -> String {
        format!("{}/{resource_type_name}/{name}", self.root())
    }

    /// The change-notification directory of this store.
    pub fn changes_path(self) -> &'static str {
        match self {
            AclStore::Literal => LITERAL_CHANGES_PATH,
            AclStore::Prefixed => EXTENDED_CHANGES_PATH,
        }
    }

    /// Path to pass to a sequential create.
    pub fn change_create_path(self) -> String {
        format!("{}/{CHANGE_PREFIX}", self.changes_path())
    }

    /// Every persistent path Kafka's `createAclPaths` makes (the store roots, the change
    /// directories and one directory per resource type name given).
    pub fn all_paths(resource_type_names: &[&str]) -> Vec<String> {
        let mut v = Vec::new();
        for s in AclStore::ALL {
            v.push(s.root().to_string());
            v.push(s.changes_path().to_string());
            for t in resource_type_names {
                v.push(s.type_path(t));
            }
        }
        v
    }
}

/// One ACL as stored in a resource node (Kafka's `AclEntry` JSON), names as written.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AclJson {
    /// `User:alice`, `User:*`.
    pub principal: String,
    /// `Allow` / `Deny`.
    pub permission_type: String,
    /// `Read`, `DescribeConfigs`, `All`, ...
    pub operation: String,
    /// An IP address as the JVM prints it, or `*`.
    pub host: String,
}

fn invalid(path: &str, reason: impl std::fmt::Display) -> Error {
    Error::InvalidZnode {
        path: path.to_string(),
        reason: reason.to_string(),
    }
}

fn str_field<'a>(path: &str, m: &'a Map<String, Value>, key: &str) -> Result<&'a str> {
    match m.get(key) {
        Some(Value::String(s)) => Ok(s),
        other => Err(invalid(path, format!("`{key}` is not a string: {other:?}"))),
    }
}

/// Encodes a resource node.
pub fn encode_acls(acls: &[AclJson]) -> Vec<u8> {
    let list: Vec<Value> = acls
        .iter()
        .map(|a| {
            json!({
                "principal": a.principal,
                "permissionType": a.permission_type,
                "operation": a.operation,
                "host": a.host,
            })
        })
        .collect();
    serde_json::to_vec(&json!({"version": 1, "acls": list})).unwrap_or_default()
}

/// Decodes a resource node at `path`. Empty data is an empty set (Kafka's `fromBytes`); a
/// version other than 1 or a malformed document is an error.
pub fn decode_acls(path: &str, bytes: &[u8]) -> Result<Vec<AclJson>> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let v: Value = serde_json::from_slice(bytes).map_err(|e| invalid(path, e))?;
    let Value::Object(m) = v else {
        return Err(invalid(path, "not a JSON object"));
    };
    match m.get("version").and_then(Value::as_i64) {
        Some(1) => {}
        other => return Err(invalid(path, format!("unsupported ACL version {other:?}"))),
    }
    let Some(Value::Array(items)) = m.get("acls") else {
        return Err(invalid(path, "`acls` is not an array"));
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let Value::Object(a) = item else {
            return Err(invalid(path, "an ACL is not a JSON object"));
        };
        out.push(AclJson {
            principal: str_field(path, a, "principal")?.to_string(),
            permission_type: str_field(path, a, "permissionType")?.to_string(),
            operation: str_field(path, a, "operation")?.to_string(),
            host: str_field(path, a, "host")?.to_string(),
        });
    }
    Ok(out)
}

/// The resource a change notification names: resource type *enum* name (`TOPIC`,
/// `TRANSACTIONAL_ID`), resource name and store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AclChange {
    pub resource_type_enum: String,
    pub name: String,
    pub store: AclStore,
}

impl AclChange {
    /// Notification payload for this change's store.
    pub fn encode(&self) -> Vec<u8> {
        match self.store {
            AclStore::Literal => format!("{}:{}", self.resource_type_enum, self.name).into_bytes(),
            AclStore::Prefixed => serde_json::to_vec(&json!({
                "version": 1,
                "resourceType": self.resource_type_enum,
                "name": self.name,
                "patternType": self.store.pattern_type_name(),
            }))
            .unwrap_or_default(),
        }
    }

    /// Decodes a notification read from `store`'s change directory. Resource type names are
    /// returned upper-cased, as Kafka's `ResourceType.fromString` reads them.
    pub fn decode(store: AclStore, path: &str, bytes: &[u8]) -> Result<Self> {
        match store {
            AclStore::Literal => {
                let s = std::str::from_utf8(bytes).map_err(|e| invalid(path, e))?;
                let (t, n) = s.split_once(':').ok_or_else(|| {
                    invalid(
                        path,
                        format!("expected ResourceType:ResourceName, got {s:?}"),
                    )
                })?;
                Ok(Self {
                    resource_type_enum: t.to_ascii_uppercase(),
                    name: n.to_string(),
                    store,
                })
            }
            AclStore::Prefixed => {
                let v: Value = serde_json::from_slice(bytes).map_err(|e| invalid(path, e))?;
                let Value::Object(m) = v else {
                    return Err(invalid(path, "not a JSON object"));
                };
                if m.get("version").and_then(Value::as_i64).unwrap_or(0) > 1 {
                    return Err(invalid(path, "unsupported ACL change event version"));
                }
                let pattern = str_field(path, &m, "patternType")?;
                if !pattern.eq_ignore_ascii_case("PREFIXED") {
                    return Err(invalid(path, format!("unsupported pattern type {pattern}")));
                }
                Ok(Self {
                    resource_type_enum: str_field(path, &m, "resourceType")?.to_ascii_uppercase(),
                    name: str_field(path, &m, "name")?.to_string(),
                    store,
                })
            }
        }
    }

    /// Sequence number of a child `acl_changes_0000000007`.
    pub fn sequence(child: &str) -> Option<i64> {
        child.strip_prefix(CHANGE_PREFIX)?.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(b: &[u8]) -> Value {
        serde_json::from_slice(b).expect("json")
    }

    #[test]
    fn resource_node_round_trip() {
        // As Kafka 3.9 writes it (Jackson, any key order).
        let raw = br#"{"version":1,"acls":[{"principal":"User:alice","permissionType":"Allow","operation":"Read","host":"*"},{"host":"10.0.0.1","operation":"DescribeConfigs","permissionType":"Deny","principal":"User:*"}]}"#;
        let acls = decode_acls("/kafka-acl/Topic/t", raw).expect("decode");
        assert_eq!(acls.len(), 2);
        assert_eq!(acls[1].operation, "DescribeConfigs");
        assert_eq!(acls[1].host, "10.0.0.1");
        assert_eq!(parsed(&encode_acls(&acls)), parsed(raw));
        assert!(decode_acls("/p", b"").expect("empty").is_empty());
        assert!(decode_acls("/p", br#"{"version":2,"acls":[]}"#).is_err());
        assert!(decode_acls("/p", br#"{"version":1,"acls":[{"principal":1}]}"#).is_err());
        assert!(decode_acls("/p", b"not json").is_err());
    }

    #[test]
    fn paths() {
        assert_eq!(
            AclStore::Literal.resource_path("Topic", "orders"),
            "/kafka-acl/Topic/orders"
        );
        assert_eq!(
            AclStore::Prefixed.resource_path("TransactionalId", "tx-"),
            "/kafka-acl-extended/prefixed/TransactionalId/tx-"
        );
        assert_eq!(
            AclStore::Literal.change_create_path(),
            "/kafka-acl-changes/acl_changes_"
        );
        assert_eq!(
            AclStore::Prefixed.change_create_path(),
            "/kafka-acl-extended-changes/acl_changes_"
        );
        assert_eq!(AclChange::sequence("acl_changes_0000000012"), Some(12));
        assert_eq!(AclChange::sequence("config_change_1"), None);
        let all = AclStore::all_paths(&["Topic"]);
        assert!(all.contains(&"/kafka-acl-extended/prefixed/Topic".to_string()));
        assert!(all.contains(&"/kafka-acl-extended-changes".to_string()));
    }

    #[test]
    fn change_notifications() {
        let lit = AclChange {
            resource_type_enum: "TRANSACTIONAL_ID".into(),
            name: "a:b".into(),
            store: AclStore::Literal,
        };
        assert_eq!(lit.encode(), b"TRANSACTIONAL_ID:a:b");
        assert_eq!(
            AclChange::decode(AclStore::Literal, "/c", &lit.encode()).expect("lit"),
            lit
        );
        // Pre-2.0 writers used the PascalCase name; it upper-cases like ResourceType.fromString.
        let old = AclChange::decode(AclStore::Literal, "/c", b"Topic:t").expect("old");
        assert_eq!(old.resource_type_enum, "TOPIC");
        let ext = AclChange {
            resource_type_enum: "TOPIC".into(),
            name: "pre-".into(),
            store: AclStore::Prefixed,
        };
        assert_eq!(
            parsed(&ext.encode()),
            parsed(
                br#"{"version":1,"resourceType":"TOPIC","name":"pre-","patternType":"PREFIXED"}"#
            )
        );
        assert_eq!(
            AclChange::decode(AclStore::Prefixed, "/c", &ext.encode()).expect("ext"),
            ext
        );
        assert!(AclChange::decode(AclStore::Literal, "/c", b"nocolon").is_err());
        assert!(AclChange::decode(
            AclStore::Prefixed,
            "/c",
            br#"{"version":1,"resourceType":"TOPIC","name":"x","patternType":"LITERAL"}"#
        )
        .is_err());
    }
}
