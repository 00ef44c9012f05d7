//! ACL authorization, as Kafka 3.9's `AclAuthorizer` (ZooKeeper mode) decides it.
//!
//! Requests are authorized from memory: the ACL cache is loaded from `/kafka-acl` and
//! `/kafka-acl-extended` at start-up and refreshed by the change notifications, never read
//! from ZooKeeper on a request path. Without `authorizer.class.name` every request is
//! allowed and the ACL APIs answer SECURITY_DISABLED.
//!
//! Handlers call [`crate::broker::BrokerContext::authorize`] once per resource; the mapping
//! from a denial to Kafka's error code lives in [`denied_error`].
//!
//! - [`acl`]: bindings, filters, enum names and codes;
//! - [`cache`]: the immutable ACL snapshot and the matcher;
//! - [`store`]: reading and conditionally writing the ACL znodes (CreateAcls, DeleteAcls);
//! - [`listener`]: the `/kafka-acl-changes` and `/kafka-acl-extended-changes` listeners.

pub mod acl;
pub mod cache;
pub mod listener;
pub mod store;

use std::net::IpAddr;
use std::sync::{Arc, RwLock};

use samsa_common::config::AclAuthorizerConfig;

use cache::AclCache;

pub mod enforce;

/// `ResourceType` codes of the ACL APIs (Kafka's `org.apache.kafka.common.resource.ResourceType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceType {
    Topic,
    Group,
    Cluster,
    TransactionalId,
    DelegationToken,
    User,
}

impl ResourceType {
    /// Wire code (UNKNOWN=0, ANY=1 are filter-only and not variants).
    pub fn code(self) -> i8 {
        match self {
            ResourceType::Topic => 2,
            ResourceType::Group => 3,
            ResourceType::Cluster => 4,
            ResourceType::TransactionalId => 5,
            ResourceType::DelegationToken => 6,
            ResourceType::User => 7,
        }
    }
}

/// The name of the single CLUSTER resource.
pub const CLUSTER_NAME: &str = "kafka-cluster";

/// `AclOperation` codes (Kafka's `org.apache.kafka.common.acl.AclOperation`); UNKNOWN=0 and
/// ANY=1 are filter-only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operation {
    All,
    Read,
    Write,
    Create,
    Delete,
    Alter,
    Describe,
    ClusterAction,
    DescribeConfigs,
    AlterConfigs,
    IdempotentWrite,
    CreateTokens,
    DescribeTokens,
}

impl Operation {
    pub fn code(self) -> i8 {
        match self {
            Operation::All => 2,
            Operation::Read => 3,
            Operation::Write => 4,
            Operation::Create => 5,
            Operation::Delete => 6,
            Operation::Alter => 7,
            Operation::Describe => 8,
            Operation::ClusterAction => 9,
            Operation::DescribeConfigs => 10,
            Operation::AlterConfigs => 11,
            Operation::IdempotentWrite => 12,
            Operation::CreateTokens => 13,
            Operation::DescribeTokens => 14,
        }
    }
}

/// The Kafka error code a handler answers when `op` on a resource of type `rt` is denied
/// (TOPIC_AUTHORIZATION_FAILED, GROUP_AUTHORIZATION_FAILED, ...). The one place this
/// mapping lives.
pub fn denied_error(rt: ResourceType) -> kafka_protocol::ResponseError {
    use kafka_protocol::ResponseError as E;
    match rt {
        ResourceType::Topic => E::TopicAuthorizationFailed,
        ResourceType::Group => E::GroupAuthorizationFailed,
        ResourceType::Cluster => E::ClusterAuthorizationFailed,
        ResourceType::TransactionalId => E::TransactionalIdAuthorizationFailed,
        ResourceType::DelegationToken => E::DelegationTokenAuthorizationFailed,
        ResourceType::User => E::ClusterAuthorizationFailed,
    }
}

/// The broker's authorizer: the configuration and the current ACL snapshot. Requests read
/// the snapshot (an `Arc` clone under a briefly held read lock, never across I/O); the
/// store and the change listeners build a new snapshot and swap it in.
#[derive(Debug, Default)]
pub struct Authorizer {
    enabled: bool,
    /// `super.users` principals (`User:admin`).
    super_users: Vec<String>,
    allow_everyone_if_no_acl_found: bool,
    cache: RwLock<Arc<AclCache>>,
    /// Serializes ACL writers (CreateAcls, DeleteAcls, change notifications), as Kafka's
    /// authorizer `lock`; the request path never takes it.
    pub(crate) writer: tokio::sync::Mutex<()>,
}

impl Authorizer {
    /// No authorizer configured: everything is allowed.
    pub fn disabled() -> Self {
        Self::default()
    }

    /// The authorizer `authorizer.class.name` asks for (disabled when unset), with an empty
    /// cache: start-up loads the ACLs from ZooKeeper before serving.
    pub fn from_config(config: Option<&AclAuthorizerConfig>) -> Self {
        match config {
            None => Self::disabled(),
            Some(c) => Self {
                enabled: true,
                super_users: c.super_users.clone(),
                allow_everyone_if_no_acl_found: c.allow_everyone_if_no_acl_found,
                ..Self::default()
            },
        }
    }

    /// True when `authorizer.class.name` names the ACL authorizer.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// The current ACL snapshot.
    pub fn snapshot(&self) -> Arc<AclCache> {
        match self.cache.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Installs a new snapshot. The store and the listeners hold [`Self::writer`] while they
    /// build and install one; benchmarks install a built cache directly.
    pub fn install(&self, cache: AclCache) {
        let cache = Arc::new(cache);
        match self.cache.write() {
            Ok(mut g) => *g = cache,
            Err(p) => *p.into_inner() = cache,
        }
    }

    /// Whether `principal` is listed in `super.users`.
    pub fn is_super_user(&self, principal: &str) -> bool {
        self.super_users.iter().any(|s| s == principal)
    }

    /// May `principal` (`User:alice`) connecting from `host` perform `op` on the resource
    /// `rt`/`name`? Answered from memory, without allocating.
    pub fn authorize(
        &self,
        principal: &str,
        host: IpAddr,
        op: Operation,
        rt: ResourceType,
        name: &str,
    ) -> bool {
        if !self.enabled || self.is_super_user(principal) {
            return true;
        }
        let mut buf = [0u8; 64];
        let host = java_host_address(host, &mut buf);
        self.snapshot().authorize(
            principal,
            host,
            op,
            rt,
            name,
            self.allow_everyone_if_no_acl_found,
        )
    }

    /// May `principal` perform `op` on at least one resource of type `rt` (Kafka's
    /// `Authorizer.authorizeByResourceType`)?
    pub fn authorize_by_resource_type(
        &self,
        principal: &str,
        host: IpAddr,
        op: Operation,
        rt: ResourceType,
    ) -> bool {
        if !self.enabled || self.is_super_user(principal) {
            return true;
        }
        let mut buf = [0u8; 64];
        let host = java_host_address(host, &mut buf);
        enforce::authorize_by_resource_type(
            &self.snapshot(),
            principal,
            host,
            op,
            rt,
            self.allow_everyone_if_no_acl_found,
        )
    }

    /// The operations of `rt`/`name` the principal may perform, as the bit field of the
    /// `*_authorized_operations` fields (bit = operation code). Without an authorizer Kafka
    /// answers `Int32.MIN_VALUE` when not asked; callers handle that.
    pub fn authorized_operations(
        &self,
        principal: &str,
        host: IpAddr,
        rt: ResourceType,
        name: &str,
        supported: &[Operation],
    ) -> i32 {
        supported
            .iter()
            .filter(|op| self.authorize(principal, host, **op, rt, name))
            .fold(0, |bits, op| bits | (1 << op.code()))
    }
}

/// The client address as the JVM's `InetAddress.getHostAddress` prints it, which is what
/// Kafka compares ACL hosts with: dotted IPv4 (IPv4-mapped IPv6 addresses are IPv4 to Java),
/// and IPv6 as eight lower-case hex groups without `::` compression.
pub fn java_host_address(ip: IpAddr, buf: &mut [u8; 64]) -> &str {
    use std::io::Write;
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    let len = {
        let mut w = &mut buf[..];
        let before = w.len();
        let _ = match ip {
            IpAddr::V4(v4) => write!(w, "{v4}"),
            IpAddr::V6(v6) => {
                let s = v6.segments();
                write!(
                    w,
                    "{:x}:{:x}:{:x}:{:x}:{:x}:{:x}:{:x}:{:x}",
                    s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]
                )
            }
        };
        before - w.len()
    };
    std::str::from_utf8(&buf[..len]).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::acl::{AclEntry, PatternType, Permission, ResourcePattern};
    use super::cache::VersionedAcls;
    use super::*;

    fn enabled(super_users: &[&str], allow_everyone: bool) -> Authorizer {
        Authorizer::from_config(Some(&AclAuthorizerConfig {
            class_name: "kafka.security.authorizer.AclAuthorizer".into(),
            super_users: super_users.iter().map(|s| s.to_string()).collect(),
            allow_everyone_if_no_acl_found: allow_everyone,
        }))
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn host_strings_as_java_prints_them() {
        let mut b = [0u8; 64];
        assert_eq!(java_host_address(ip("192.168.0.1"), &mut b), "192.168.0.1");
        assert_eq!(java_host_address(ip("::1"), &mut b), "0:0:0:0:0:0:0:1");
        assert_eq!(
            java_host_address(ip("fe80::1:abcd"), &mut b),
            "fe80:0:0:0:0:0:1:abcd"
        );
        assert_eq!(java_host_address(ip("::ffff:10.1.2.3"), &mut b), "10.1.2.3");
        assert_eq!(
            java_host_address(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), &mut b).len(),
            39
        );
    }

    #[test]
    fn disabled_allows_everything() {
        let a = Authorizer::disabled();
        assert!(!a.is_enabled());
        assert!(a.authorize(
            "User:x",
            ip("1.2.3.4"),
            Operation::Alter,
            ResourceType::Cluster,
            CLUSTER_NAME
        ));
    }

    #[test]
    fn super_users_and_default_deny() {
        let a = enabled(&["User:admin"], false);
        let h = ip("127.0.0.1");
        assert!(a.authorize(
            "User:admin",
            h,
            Operation::Alter,
            ResourceType::Cluster,
            CLUSTER_NAME
        ));
        assert!(!a.authorize("User:bob", h, Operation::Describe, ResourceType::Topic, "t"));
        // A super user's type matters: Group:admin is not User:admin.
        assert!(!a.authorize("Group:admin", h, Operation::Read, ResourceType::Topic, "t"));
        let open = enabled(&[], true);
        assert!(open.authorize("User:bob", h, Operation::Describe, ResourceType::Topic, "t"));
    }

    #[test]
    fn hosts_compare_as_java_strings() {
        let a = enabled(&[], false);
        let mut c = AclCache::default();
        let mut v = VersionedAcls::default();
        for host in ["0:0:0:0:0:0:0:1", "10.0.0.7"] {
            v.acls.insert(AclEntry {
                principal: "User:bob".into(),
                host: host.into(),
                operation: Operation::Read,
                permission: Permission::Allow,
            });
        }
        c.set(
            ResourcePattern::new(ResourceType::Topic, "t", PatternType::Literal),
            v,
        );
        a.install(c);
        let read =
            |h: &str| a.authorize("User:bob", ip(h), Operation::Read, ResourceType::Topic, "t");
        assert!(read("::1"));
        assert!(read("10.0.0.7"));
        assert!(read("::ffff:10.0.0.7"));
        assert!(!read("10.0.0.8"));
        let bits = a.authorized_operations(
            "User:bob",
            ip("10.0.0.7"),
            ResourceType::Topic,
            "t",
            &[Operation::Read, Operation::Write, Operation::Describe],
        );
        assert_eq!(bits, (1 << 3) | (1 << 8));
    }
}
