//! The ACL znodes as Kafka's `AclAuthorizer` reads and writes them (paths and JSON in
//! [`samsa_common::zk::acl`]).
//!
//! - Start-up ([`Authorizer::load`]): create the ACL paths (`createAclPaths`), read every
//!   resource node of both stores into a fresh snapshot.
//! - Writes ([`Authorizer::create_acls`], [`Authorizer::delete_acls`]): per resource pattern,
//!   take the ACLs and znode version from the cache (or ZooKeeper when the cache has none),
//!   compute the new set, and write conditionally: `setData` at that version, `create` when
//!   the node did not exist, `delete` at that version when no ACL remains. A conflict re-reads
//!   the node and retries (at most 10 times, 100–150 ms apart), as `updateResourceAcls`. A
//!   change updates the cache and writes a change notification so other brokers reload it.
//! - Change notifications ([`Authorizer::reload_resource`]) re-read one resource node.
//!
//! ZooKeeper is read here only by writers and by the change listener, never by a request's
//! authorization.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use samsa_common::error::{Error, Result};
use samsa_common::zk::acl::{self as zacl, AclChange, AclStore};
use samsa_common::zk::session::{CreateMode, ZkSession};
use tracing::{debug, info, warn};

use super::acl::{AclBinding, AclBindingFilter, AclEntry, PatternType, ResourcePattern};
use super::cache::{AclCache, VersionedAcls};
use super::{Authorizer, ResourceType};

/// Kafka's `maxUpdateRetries`.
const MAX_UPDATE_RETRIES: usize = 10;

/// Version that matches no existing node (Kafka's `ZkVersion.UnknownVersion`): a delete at
/// this version succeeds only when the node is absent.
const UNKNOWN_VERSION: i32 = -2;

fn path_of(p: &ResourcePattern) -> String {
    p.pattern_type
        .store()
        .resource_path(p.resource_type.name(), &p.name)
}

fn pattern_type_of(store: AclStore) -> PatternType {
    match store {
        AclStore::Literal => PatternType::Literal,
        AclStore::Prefixed => PatternType::Prefixed,
    }
}

/// Parses a resource node; entries with an unknown operation or permission are kept aside.
fn parse_node(path: &str, data: &[u8], version: i32) -> Result<VersionedAcls> {
    let mut v = VersionedAcls {
        version: Some(version),
        ..VersionedAcls::default()
    };
    for j in zacl::decode_acls(path, data)? {
        match AclEntry::from_json(&j) {
            Some(e) => {
                v.acls.insert(e);
            }
            None => {
                warn!(path, operation = %j.operation, permission = %j.permission_type,
                    "ACL with an unknown operation or permission type never matches");
                v.foreign.push(j);
            }
        }
    }
    Ok(v)
}

/// The ACLs of one pattern as ZooKeeper holds them (empty, no version, if the node is absent).
pub async fn read_resource(zk: &ZkSession, p: &ResourcePattern) -> Result<VersionedAcls> {
    let path = path_of(p);
    match zk.get(&path).await? {
        None => Ok(VersionedAcls::default()),
        Some((data, stat)) => parse_node(&path, &data, stat.version),
    }
}

/// Kafka's `createAclPaths`: both stores, their change directories and one directory per
/// resource type.
pub async fn create_paths(zk: &ZkSession) -> Result<()> {
    let names: Vec<&str> = ResourceType::ALL.iter().map(|t| t.name()).collect();
    for p in AclStore::all_paths(&names) {
        zk.ensure_path(&p).await?;
    }
    Ok(())
}

/// Every ACL in ZooKeeper (`loadAllAcls`). Unknown resource type directories are skipped; an
/// unreadable resource node is logged and skipped.
pub async fn load_all(zk: &ZkSession) -> Result<AclCache> {
    let mut cache = AclCache::default();
    for store in AclStore::ALL {
        for type_name in zk.children(store.root()).await?.unwrap_or_default() {
            let Some(rt) = ResourceType::from_name(&type_name) else {
                warn!(path = store.root(), resource_type = %type_name, "ignoring unknown ACL resource type");
                continue;
            };
            for name in zk
                .children(&store.type_path(&type_name))
                .await?
                .unwrap_or_default()
            {
                let p = ResourcePattern::new(rt, name, pattern_type_of(store));
                match read_resource(zk, &p).await {
                    Ok(v) => cache.set(p, v),
                    Err(e @ Error::InvalidZnode { .. }) => {
                        warn!(error = %e, "ignoring unreadable ACL znode")
                    }
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Ok(cache)
}

/// The resource pattern a change notification names, if this broker knows its type.
pub fn changed_pattern(change: &AclChange) -> Option<ResourcePattern> {
    let rt = ResourceType::from_enum_name(&change.resource_type_enum)?;
    Some(ResourcePattern::new(
        rt,
        change.name.clone(),
        pattern_type_of(change.store),
    ))
}

/// What one conditional update did.
struct Updated {
    before: BTreeSet<AclEntry>,
}

/// A failed update and the ACLs it started from.
struct UpdateFailed {
    error: Error,
    before: BTreeSet<AclEntry>,
}

fn backoff() -> Duration {
    Duration::from_millis(100 + rand::random::<u64>() % 50)
}

impl Authorizer {
    /// Creates the ACL paths and loads every ACL; returns the number of resource patterns.
    pub async fn load(&self, zk: &ZkSession) -> Result<usize> {
        let _w = self.writer.lock().await;
        create_paths(zk).await?;
        let cache = load_all(zk).await?;
        let n = cache.len();
        self.install(cache);
        Ok(n)
    }

    /// Re-reads one resource node after a change notification.
    pub async fn reload_resource(&self, zk: &ZkSession, p: &ResourcePattern) -> Result<()> {
        let _w = self.writer.lock().await;
        let v = read_resource(zk, p).await?;
        info!(resource = ?p, acls = v.acls.len(), version = ?v.version, "processing ACL change notification");
        let mut cache = (*self.snapshot()).clone();
        cache.set(p.clone(), v);
        self.install(cache);
        Ok(())
    }

    /// `updateResourceAcls`: conditional write of `change(current)`, retried on conflicts.
    /// Caller holds the writer lock.
    async fn update_resource(
        &self,
        zk: &ZkSession,
        p: &ResourcePattern,
        change: impl Fn(&BTreeSet<AclEntry>) -> BTreeSet<AclEntry>,
    ) -> std::result::Result<Updated, UpdateFailed> {
        let path = path_of(p);
        let mut current = match self.snapshot().get(p) {
            Some(v) => (**v).clone(),
            None => read_resource(zk, p).await.map_err(|error| UpdateFailed {
                error,
                before: BTreeSet::new(),
            })?,
        };
        for attempt in 0..=MAX_UPDATE_RETRIES {
            let new = VersionedAcls {
                acls: change(&current.acls),
                foreign: current.foreign.clone(),
                version: None,
            };
            let written: Result<Option<Option<i32>>> = if !new.is_empty() {
                let data = zacl::encode_acls(&new.to_json());
                match current.version {
                    Some(v) => match zk.set(&path, &data, Some(v)).await {
                        Ok(stat) => Ok(Some(Some(stat.version))),
                        Err(e) if e.is_bad_version() || e.is_no_node() => Ok(None),
                        Err(e) => Err(e),
                    },
                    None => match zk
                        .create_recursive(&path, &data, CreateMode::Persistent)
                        .await
                    {
                        Ok((stat, _)) => Ok(Some(Some(stat.version))),
                        Err(e) if e.is_node_exists() => Ok(None),
                        Err(e) => Err(e),
                    },
                }
            } else {
                match zk
                    .delete(&path, Some(current.version.unwrap_or(UNKNOWN_VERSION)))
                    .await
                {
                    Ok(_) => Ok(Some(None)),
                    Err(e) if e.is_bad_version() => Ok(None),
                    Err(e) => Err(e),
                }
            };
            match written {
                Err(error) => {
                    return Err(UpdateFailed {
                        error,
                        before: current.acls,
                    })
                }
                Ok(None) => {
                    debug!(path, attempt, "ACL znode changed concurrently; re-reading");
                    tokio::time::sleep(backoff()).await;
                    current = read_resource(zk, p).await.map_err(|error| UpdateFailed {
                        error,
                        before: current.acls.clone(),
                    })?;
                }
                Ok(Some(version)) => {
                    let changed = new.acls != current.acls;
                    let new = VersionedAcls { version, ..new };
                    let mut cache = (*self.snapshot()).clone();
                    cache.set(p.clone(), new);
                    self.install(cache);
                    if changed {
                        info!(resource = ?p, version = ?version, "updated ACLs");
                        let n = AclChange {
                            resource_type_enum: p.resource_type.enum_name().to_string(),
                            name: p.name.clone(),
                            store: p.pattern_type.store(),
                        };
                        if let Err(error) = zk
                            .create_recursive(
                                &p.pattern_type.store().change_create_path(),
                                &n.encode(),
                                CreateMode::PersistentSequential,
                            )
                            .await
                        {
                            return Err(UpdateFailed {
                                error,
                                before: current.acls,
                            });
                        }
                    }
                    return Ok(Updated {
                        before: current.acls,
                    });
                }
            }
        }
        Err(UpdateFailed {
            error: Error::Other(format!(
                "Failed to update ACLs for {p:?} after trying a maximum of {MAX_UPDATE_RETRIES} times"
            )),
            before: current.acls,
        })
    }

    /// `createAcls` for bindings the handler validated: one conditional write per resource
    /// pattern. The result per binding is `Err(message)` when its pattern's write failed
    /// (UNKNOWN_SERVER_ERROR, as Kafka wraps any failure there); a principal without a
    /// `type:` fails its whole pattern the same way, as Kafka's `AclEntry` does.
    pub async fn create_acls(
        &self,
        zk: &ZkSession,
        bindings: &[AclBinding],
    ) -> Vec<std::result::Result<(), String>> {
        let mut results: Vec<std::result::Result<(), String>> = vec![Ok(()); bindings.len()];
        let mut by_pattern: BTreeMap<&ResourcePattern, Vec<usize>> = BTreeMap::new();
        for (i, b) in bindings.iter().enumerate() {
            by_pattern.entry(&b.pattern).or_default().push(i);
        }
        let _w = self.writer.lock().await;
        for (p, idx) in by_pattern {
            if let Some(bad) = idx
                .iter()
                .find(|&&i| !bindings[i].entry.principal.contains(':'))
            {
                let msg = format!(
                    "expected a string in format principalType:principalName but got {}",
                    bindings[*bad].entry.principal
                );
                for i in idx {
                    results[i] = Err(msg.clone());
                }
                continue;
            }
            let added: Vec<AclEntry> = idx.iter().map(|&i| bindings[i].entry.clone()).collect();
            let r = self
                .update_resource(zk, p, |cur| {
                    let mut n = cur.clone();
                    n.extend(added.iter().cloned());
                    n
                })
                .await;
            if let Err(f) = r {
                warn!(resource = ?p, error = %f.error, "creating ACLs failed");
                for i in idx {
                    results[i] = Err(f.error.to_string());
                }
            }
        }
        results
    }

    /// `deleteAcls`: every pattern in the cache plus those the filters name exactly, each
    /// updated once with every filter that matches it. Per filter: the bindings it deleted
    /// (a binding matched by several filters is reported under the first), each with the
    /// error of its pattern's write, if any.
    pub async fn delete_acls(
        &self,
        zk: &ZkSession,
        filters: &[AclBindingFilter],
    ) -> Vec<Vec<(AclBinding, Option<String>)>> {
        let mut out: Vec<Vec<(AclBinding, Option<String>)>> = vec![Vec::new(); filters.len()];
        let _w = self.writer.lock().await;
        let mut patterns: BTreeSet<ResourcePattern> = self.snapshot().patterns().cloned().collect();
        patterns.extend(filters.iter().flat_map(AclBindingFilter::exact_patterns));
        for p in patterns {
            let matching: Vec<(usize, &AclBindingFilter)> = filters
                .iter()
                .enumerate()
                .filter(|(_, f)| f.matches_pattern(&p))
                .collect();
            if matching.is_empty() {
                continue;
            }
            let removed = |acls: &BTreeSet<AclEntry>| -> Vec<(AclEntry, usize)> {
                acls.iter()
                    .filter_map(|e| {
                        matching
                            .iter()
                            .find(|(_, f)| f.matches_entry(e))
                            .map(|(i, _)| (e.clone(), *i))
                    })
                    .collect()
            };
            let r = self
                .update_resource(zk, &p, |cur| {
                    cur.iter()
                        .filter(|e| !matching.iter().any(|(_, f)| f.matches_entry(e)))
                        .cloned()
                        .collect()
                })
                .await;
            let (gone, error) = match r {
                Ok(u) => (removed(&u.before), None),
                Err(f) => {
                    warn!(resource = ?p, error = %f.error, "deleting ACLs failed");
                    (removed(&f.before), Some(f.error.to_string()))
                }
            };
            for (entry, i) in gone {
                out[i].push((
                    AclBinding {
                        pattern: p.clone(),
                        entry,
                    },
                    error.clone(),
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::acl::Permission;
    use super::super::Operation;
    use super::*;
    use samsa_common::config::AclAuthorizerConfig;
    use samsa_common::zk::session::ZkConfig;
    use samsa_common::zk::testing::TestZk;

    fn authorizer() -> Authorizer {
        Authorizer::from_config(Some(&AclAuthorizerConfig {
            class_name: "kafka.security.authorizer.AclAuthorizer".into(),
            super_users: vec![],
            allow_everyone_if_no_acl_found: false,
        }))
    }

    fn binding(
        rt: ResourceType,
        name: &str,
        pt: PatternType,
        who: &str,
        op: Operation,
    ) -> AclBinding {
        AclBinding {
            pattern: ResourcePattern::new(rt, name, pt),
            entry: AclEntry {
                principal: who.into(),
                host: "*".into(),
                operation: op,
                permission: Permission::Allow,
            },
        }
    }

    /// Written through one authorizer, visible in ZooKeeper as Kafka lays it out, loaded by
    /// a second one; deletes remove the node and notify.
    #[tokio::test]
    async fn create_load_delete_round_trip() {
        let server = TestZk::start();
        let zk = ZkSession::connect(&ZkConfig::new(
            server.connect_string_with_chroot("/acls"),
            Duration::from_secs(10),
        ))
        .await
        .expect("connect");
        let a = authorizer();
        assert_eq!(a.load(&zk).await.expect("load"), 0);
        assert!(zk
            .exists("/kafka-acl/TransactionalId")
            .await
            .expect("exists")
            .is_some());
        assert!(zk
            .exists("/kafka-acl-extended/prefixed/Topic")
            .await
            .expect("exists")
            .is_some());

        let bs = vec![
            binding(
                ResourceType::Topic,
                "t",
                PatternType::Literal,
                "User:alice",
                Operation::Read,
            ),
            binding(
                ResourceType::Topic,
                "t",
                PatternType::Literal,
                "User:bob",
                Operation::Write,
            ),
            binding(
                ResourceType::Topic,
                "pre-",
                PatternType::Prefixed,
                "User:alice",
                Operation::Write,
            ),
            binding(
                ResourceType::Group,
                "g",
                PatternType::Literal,
                "nocolon",
                Operation::Read,
            ),
        ];
        let r = a.create_acls(&zk, &bs).await;
        assert!(r[0].is_ok() && r[1].is_ok() && r[2].is_ok(), "{r:?}");
        assert!(r[3].is_err());
        let h: std::net::IpAddr = "10.0.0.1".parse().expect("ip");
        assert!(a.authorize("User:alice", h, Operation::Read, ResourceType::Topic, "t"));
        assert!(a.authorize(
            "User:alice",
            h,
            Operation::Write,
            ResourceType::Topic,
            "pre-x"
        ));

        let (data, stat) = zk
            .get("/kafka-acl/Topic/t")
            .await
            .expect("get")
            .expect("node");
        assert_eq!(stat.version, 0, "both bindings of one pattern in one write");
        let acls = zacl::decode_acls("/kafka-acl/Topic/t", &data).expect("json");
        assert_eq!(acls.len(), 2);
        let lit = zk
            .children("/kafka-acl-changes")
            .await
            .expect("c")
            .expect("dir");
        assert_eq!(lit.len(), 1);
        let (n, _) = zk
            .get(&format!("/kafka-acl-changes/{}", lit[0]))
            .await
            .expect("get")
            .expect("n");
        assert_eq!(n, b"TOPIC:t");
        let ext = zk
            .children("/kafka-acl-extended-changes")
            .await
            .expect("c")
            .expect("dir");
        assert_eq!(ext.len(), 1);
        assert!(zk.exists("/kafka-acl/Group/g").await.expect("e").is_none());

        // Creating an existing ACL again changes nothing and writes no notification.
        let again = a.create_acls(&zk, &bs[..1]).await;
        assert!(again[0].is_ok());
        assert_eq!(
            zk.children("/kafka-acl-changes")
                .await
                .expect("c")
                .expect("d")
                .len(),
            1
        );

        let b = authorizer();
        assert_eq!(b.load(&zk).await.expect("load"), 2);
        assert_eq!(
            b.snapshot()
                .acls(&AclBindingFilter::from_wire(1, None, 1, None, None, 1, 1))
                .len(),
            3
        );

        // A write from a stale cache (b's version is current; a writes first) retries.
        let r = a
            .create_acls(
                &zk,
                &[binding(
                    ResourceType::Topic,
                    "t",
                    PatternType::Literal,
                    "User:c",
                    Operation::Read,
                )],
            )
            .await;
        assert!(r[0].is_ok());
        let r = b
            .create_acls(
                &zk,
                &[binding(
                    ResourceType::Topic,
                    "t",
                    PatternType::Literal,
                    "User:d",
                    Operation::Read,
                )],
            )
            .await;
        assert!(r[0].is_ok());
        let t = read_resource(
            &zk,
            &ResourcePattern::new(ResourceType::Topic, "t", PatternType::Literal),
        )
        .await
        .expect("read");
        assert_eq!(t.acls.len(), 4, "neither write lost: {t:?}");

        // Delete alice's everywhere (ANY pattern), then everything on topic t.
        let alice = AclBindingFilter::from_wire(1, None, 1, Some("User:alice"), None, 1, 1);
        let exact_missing = AclBindingFilter::from_wire(2, Some("nothing"), 1, None, None, 1, 1);
        let del = b.delete_acls(&zk, &[alice, exact_missing]).await;
        assert_eq!(del[0].len(), 2, "{del:?}");
        assert!(del[0].iter().all(|(_, e)| e.is_none()));
        assert!(del[1].is_empty());
        assert!(zk
            .exists("/kafka-acl-extended/prefixed/Topic/pre-")
            .await
            .expect("e")
            .is_none());
        let all_t = AclBindingFilter::from_wire(2, Some("t"), 3, None, None, 1, 1);
        let del = b.delete_acls(&zk, &[all_t]).await;
        assert_eq!(del[0].len(), 3);
        assert!(zk.exists("/kafka-acl/Topic/t").await.expect("e").is_none());
        assert!(!b.authorize("User:bob", h, Operation::Write, ResourceType::Topic, "t"));

        // A node written by another tool is picked up by reload_resource.
        let p = ResourcePattern::new(ResourceType::Topic, "ext", PatternType::Literal);
        zk.create(
            "/kafka-acl/Topic/ext",
            br#"{"version":1,"acls":[{"principal":"User:zed","permissionType":"Allow","operation":"Describe","host":"*"},{"principal":"User:zed","permissionType":"Allow","operation":"FutureOp","host":"*"}]}"#,
            CreateMode::Persistent,
        )
        .await
        .expect("create");
        a.reload_resource(&zk, &p).await.expect("reload");
        assert!(a.authorize(
            "User:zed",
            h,
            Operation::Describe,
            ResourceType::Topic,
            "ext"
        ));
        // Unknown operations are kept on rewrite.
        let r = a
            .create_acls(
                &zk,
                &[binding(
                    ResourceType::Topic,
                    "ext",
                    PatternType::Literal,
                    "User:y",
                    Operation::Read,
                )],
            )
            .await;
        assert!(r[0].is_ok());
        let (data, _) = zk
            .get("/kafka-acl/Topic/ext")
            .await
            .expect("get")
            .expect("n");
        let acls = zacl::decode_acls("/p", &data).expect("json");
        assert_eq!(acls.len(), 3);
        assert!(acls.iter().any(|j| j.operation == "FutureOp"));
    }
}
