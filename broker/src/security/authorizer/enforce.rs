//! What handlers use to enforce ACLs the way Kafka 3.9's `AuthHelper` does: one decision per
//! distinct resource name (`filterByAuthorized`), the cluster checks, and the
//! `*_authorized_operations` bit fields.
//!
//! Without an authorizer every helper answers "allowed" without looking at the request, so
//! the produce and fetch paths allocate nothing for authorization.

use std::collections::HashSet;

use super::{Operation, ResourceType, CLUSTER_NAME};
use crate::broker::BrokerContext;
use crate::connection::ConnInfo;

/// Operations a topic supports (Kafka `AclEntry.supportedOperations(TOPIC)`).
pub const TOPIC_OPERATIONS: &[Operation] = &[
    Operation::Read,
    Operation::Write,
    Operation::Create,
    Operation::Describe,
    Operation::Delete,
    Operation::Alter,
    Operation::DescribeConfigs,
    Operation::AlterConfigs,
];
/// Operations a group supports.
pub const GROUP_OPERATIONS: &[Operation] =
    &[Operation::Read, Operation::Describe, Operation::Delete];
/// Operations the cluster supports.
pub const CLUSTER_OPERATIONS: &[Operation] = &[
    Operation::Create,
    Operation::ClusterAction,
    Operation::DescribeConfigs,
    Operation::AlterConfigs,
    Operation::IdempotentWrite,
    Operation::Alter,
    Operation::Describe,
];

/// The names a principal may act on, out of those a request names.
#[derive(Debug)]
pub enum Allowed<'a> {
    /// No authorizer: everything.
    All,
    /// The authorized subset of the request's names.
    Some(HashSet<&'a str>),
}

impl Allowed<'_> {
    pub fn contains(&self, name: &str) -> bool {
        match self {
            Allowed::All => true,
            Allowed::Some(set) => set.contains(name),
        }
    }
}

/// The message of the exception Kafka answers with a denial (`Errors.message()`).
pub fn denied_message(rt: ResourceType) -> &'static str {
    match rt {
        ResourceType::Topic => "Topic authorization failed.",
        ResourceType::Group => "Group authorization failed.",
        ResourceType::Cluster | ResourceType::User => "Cluster authorization failed.",
        ResourceType::TransactionalId => "Transactional Id authorization failed.",
        ResourceType::DelegationToken => "Delegation Token authorization failed.",
    }
}

/// True when an authorizer is configured (checks would otherwise be no-ops; handlers test
/// this before running a loop whose only purpose is authorization).
pub fn enabled(ctx: &BrokerContext) -> bool {
    ctx.security.authorizer.is_enabled() || test_policy::active()
}

/// One decision: `op` on `rt`/`name`. Every handler check goes through here.
pub fn allow(
    ctx: &BrokerContext,
    conn: &ConnInfo,
    op: Operation,
    rt: ResourceType,
    name: &str,
) -> bool {
    if let Some(d) = test_policy::decide(&conn.principal, op, rt, name) {
        return d;
    }
    ctx.authorize(conn, op, rt, name)
}

/// Kafka `filterByAuthorized`: one `authorize` call per distinct name.
pub fn filter<'a>(
    ctx: &BrokerContext,
    conn: &ConnInfo,
    op: Operation,
    rt: ResourceType,
    names: impl IntoIterator<Item = &'a str>,
) -> Allowed<'a> {
    if !enabled(ctx) {
        return Allowed::All;
    }
    let mut seen: HashSet<&'a str> = HashSet::new();
    let mut allowed: HashSet<&'a str> = HashSet::new();
    for name in names {
        if seen.insert(name) && allow(ctx, conn, op, rt, name) {
            allowed.insert(name);
        }
    }
    Allowed::Some(allowed)
}

/// `op` on the cluster resource.
pub fn cluster(ctx: &BrokerContext, conn: &ConnInfo, op: Operation) -> bool {
    allow(ctx, conn, op, ResourceType::Cluster, CLUSTER_NAME)
}

/// May the principal perform `op` on at least one resource of type `rt` (Kafka
/// `authorizeByResourceType`, used for idempotent producers holding WRITE on some topic)?
pub fn any_resource(ctx: &BrokerContext, conn: &ConnInfo, op: Operation, rt: ResourceType) -> bool {
    if let Some(d) = test_policy::decide_any(&conn.principal, op, rt) {
        return d;
    }
    ctx.security
        .authorizer
        .authorize_by_resource_type(&conn.principal, conn.peer.ip(), op, rt)
}

/// The `*_authorized_operations` bit field of one resource (Kafka `authorizedOperations`):
/// every supported operation when no authorizer is configured.
pub fn operations(ctx: &BrokerContext, conn: &ConnInfo, rt: ResourceType, name: &str) -> i32 {
    let supported = match rt {
        ResourceType::Topic => TOPIC_OPERATIONS,
        ResourceType::Group => GROUP_OPERATIONS,
        ResourceType::Cluster => CLUSTER_OPERATIONS,
        ResourceType::TransactionalId => &[Operation::Describe, Operation::Write],
        ResourceType::DelegationToken => &[Operation::Describe],
        ResourceType::User => &[Operation::CreateTokens, Operation::DescribeTokens],
    };
    if test_policy::active() {
        let ops: Vec<Operation> = supported
            .iter()
            .copied()
            .filter(|op| allow(ctx, conn, *op, rt, name))
            .collect();
        return bits(&ops);
    }
    ctx.security.authorizer.authorized_operations(
        &conn.principal,
        conn.peer.ip(),
        rt,
        name,
        supported,
    )
}

/// Kafka's `clusterAuthorizedOperations` of Metadata v8-10 and DescribeCluster: 0 without
/// DESCRIBE on the cluster, else the cluster's operations.
pub fn cluster_operations(ctx: &BrokerContext, conn: &ConnInfo) -> i32 {
    if cluster(ctx, conn, Operation::Describe) {
        operations(ctx, conn, ResourceType::Cluster, CLUSTER_NAME)
    } else {
        0
    }
}

/// The bit field of a set of operations.
pub fn bits(ops: &[Operation]) -> i32 {
    ops.iter().fold(0, |b, op| b | (1 << op.code()))
}

/// Unit tests of the handlers install a policy (principal, operation, resource) -> allowed
/// for the current thread; production builds have no policy.
#[cfg(test)]
pub mod test_policy {
    use super::{Operation, ResourceType};
    use std::cell::RefCell;

    type Policy = Box<dyn Fn(&str, Operation, ResourceType, &str) -> bool>;

    thread_local! {
        static POLICY: RefCell<Option<Policy>> = const { RefCell::new(None) };
    }

    /// Installs `f` until the guard drops.
    pub fn set(f: impl Fn(&str, Operation, ResourceType, &str) -> bool + 'static) -> Guard {
        POLICY.with(|p| *p.borrow_mut() = Some(Box::new(f)));
        Guard
    }

    pub struct Guard;
    impl Drop for Guard {
        fn drop(&mut self) {
            POLICY.with(|p| *p.borrow_mut() = None);
        }
    }

    pub fn active() -> bool {
        POLICY.with(|p| p.borrow().is_some())
    }

    /// A PLAINTEXT connection from 127.0.0.1 authenticated as `principal`.
    pub fn conn(principal: &str) -> crate::connection::ConnInfo {
        let addr: std::net::SocketAddr = ([127, 0, 0, 1], 9092).into();
        let mut c = crate::connection::ConnInfo::anonymous("PLAINTEXT".into(), addr, addr);
        c.principal = principal.into();
        c
    }

    pub fn decide(principal: &str, op: Operation, rt: ResourceType, name: &str) -> Option<bool> {
        POLICY.with(|p| p.borrow().as_ref().map(|f| f(principal, op, rt, name)))
    }

    /// Allowed on some resource of the type: the policy says yes for the name `*`.
    pub fn decide_any(principal: &str, op: Operation, rt: ResourceType) -> Option<bool> {
        decide(principal, op, rt, "*")
    }
}

#[cfg(not(test))]
mod test_policy {
    use super::{Operation, ResourceType};
    #[inline(always)]
    pub fn active() -> bool {
        false
    }
    #[inline(always)]
    pub fn decide(_: &str, _: Operation, _: ResourceType, _: &str) -> Option<bool> {
        None
    }
    #[inline(always)]
    pub fn decide_any(_: &str, _: Operation, _: ResourceType) -> Option<bool> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_bits_match_kafka() {
        assert_eq!(
            bits(TOPIC_OPERATIONS),
            crate::handlers::metadata::TOPIC_ALL_OPERATIONS
        );
        assert_eq!(
            bits(CLUSTER_OPERATIONS),
            crate::handlers::metadata::CLUSTER_ALL_OPERATIONS
        );
        assert_eq!(bits(GROUP_OPERATIONS), (1 << 3) | (1 << 8) | (1 << 6));
    }

    #[test]
    fn allowed_all_contains_everything() {
        assert!(Allowed::All.contains("anything"));
        let some = Allowed::Some(["a"].into_iter().collect());
        assert!(some.contains("a"));
        assert!(!some.contains("b"));
    }
}
