//! ACL authorization, as Kafka 3.9's `AclAuthorizer` (ZooKeeper mode) decides it.
//!
//! Requests are authorized from memory: the ACL cache is loaded from `/kafka-acl` and
//! `/kafka-acl-extended` at start-up and refreshed by the change notifications, never read
//! from ZooKeeper on a request path. Without `authorizer.class.name` every request is
//! allowed and the ACL APIs answer SECURITY_DISABLED.
//!
//! Handlers call [`crate::broker::BrokerContext::authorize`] once per resource; the mapping
//! from a denial to Kafka's error code lives in [`denied_error`].

use std::net::IpAddr;

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

/// The broker's authorizer. This is the interface handlers use; the ACL cache, the
/// ZooKeeper store and the matcher live beside it.
#[derive(Debug, Default)]
pub struct Authorizer {
    enabled: bool,
}

impl Authorizer {
    /// No authorizer configured: everything is allowed.
    pub fn disabled() -> Self {
        Self { enabled: false }
    }

    /// True when `authorizer.class.name` names the ACL authorizer.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// May `principal` (`User:alice`) connecting from `host` perform `op` on the resource
    /// `rt`/`name`? Answered from memory.
    pub fn authorize(
        &self,
        _principal: &str,
        _host: IpAddr,
        _op: Operation,
        _rt: ResourceType,
        _name: &str,
    ) -> bool {
        !self.enabled || unimplemented_denies()
    }

    /// May `principal` perform `op` on at least one resource of type `rt` (Kafka's
    /// `Authorizer.authorizeByResourceType`)?
    pub fn authorize_by_resource_type(
        &self,
        _principal: &str,
        _host: IpAddr,
        _op: Operation,
        _rt: ResourceType,
    ) -> bool {
        !self.enabled || unimplemented_denies()
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

fn unimplemented_denies() -> bool {
    false
}
