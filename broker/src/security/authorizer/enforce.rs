//! What handlers use to enforce ACLs the way Kafka 3.9's `AuthHelper` does: one decision per
//! distinct resource name (`filterByAuthorized`), the cluster checks, and the
//! `*_authorized_operations` bit fields.
//!
//! Without an authorizer every helper answers "allowed" without looking at the request, so
//! the produce and fetch paths allocate nothing for authorization.

use std::collections::HashSet;

use super::acl::{PatternType, Permission, WILDCARD, WILDCARD_PRINCIPAL};
use super::cache::AclCache;
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

/// Kafka `AclAuthorizer.authorizeByResourceType` for a non-super user: is there some
/// resource of type `rt` an ACL lets the principal `op` (exactly, or ALL) that no DENY
/// covers? A literal DENY on `*` refuses; `allow_everyone` then allows; otherwise any ALLOW
/// on a literal or prefix not dominated by a DENY (literal, or a prefixed DENY that is a
/// prefix of it) allows. Scans the type's ACLs: only InitProducerId asks.
pub fn authorize_by_resource_type(
    cache: &AclCache,
    principal: &str,
    host: &str,
    op: Operation,
    rt: ResourceType,
    allow_everyone: bool,
) -> bool {
    let mut deny_literals: HashSet<&str> = HashSet::new();
    let mut deny_prefixes: HashSet<&str> = HashSet::new();
    let mut allow_literals: Vec<&str> = Vec::new();
    let mut allow_prefixes: Vec<&str> = Vec::new();
    for p in cache.patterns().filter(|p| p.resource_type == rt) {
        let Some(acls) = cache.get(p) else { continue };
        for e in &acls.acls {
            let applies = (e.principal == principal || e.principal == WILDCARD_PRINCIPAL)
                && (e.host == host || e.host == WILDCARD)
                && (e.operation == op || e.operation == Operation::All);
            if !applies {
                continue;
            }
            match (e.permission, p.pattern_type) {
                (Permission::Deny, PatternType::Literal) => {
                    deny_literals.insert(&p.name);
                }
                (Permission::Deny, PatternType::Prefixed) => {
                    deny_prefixes.insert(&p.name);
                }
                (Permission::Allow, PatternType::Literal) => allow_literals.push(&p.name),
                (Permission::Allow, PatternType::Prefixed) => allow_prefixes.push(&p.name),
            }
        }
    }
    if deny_literals.contains(WILDCARD) {
        return false;
    }
    if allow_everyone {
        return true;
    }
    let dominated = |name: &str| {
        name.char_indices()
            .map(|(i, c)| &name[..i + c.len_utf8()])
            .any(|prefix| deny_prefixes.contains(prefix))
    };
    allow_prefixes.iter().any(|p| !dominated(p))
        || allow_literals
            .iter()
            .any(|l| *l == WILDCARD || (!deny_literals.contains(l) && !dominated(l)))
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

    use std::sync::Arc;

    use bytes::Bytes;
    use kafka_protocol::messages::*;
    use kafka_protocol::records::Compression;

    use crate::broker::BrokerContext;
    use crate::handlers;
    use crate::log::LogConfig;
    use crate::replica::testing::{batch, leader_context};

    const TAF: i16 = 29;
    const GAF: i16 = 30;
    const CAF: i16 = 31;
    const TXN_AF: i16 = 53;

    fn ctx() -> (Arc<BrokerContext>, impl Drop) {
        leader_context(LogConfig::default(), "t", uuid::Uuid::from_u128(7))
    }

    fn header(key: ApiKey, version: i16) -> RequestHeader {
        let mut h = RequestHeader::default();
        h.request_api_key = key as i16;
        h.request_api_version = version;
        h
    }

    /// alice may do anything on topic `t` and group `g`; bob nothing; `broker` has the
    /// cluster's CLUSTER_ACTION.
    fn policy() -> test_policy::Guard {
        test_policy::set(|principal, op, rt, name| match principal {
            "User:alice" => matches!(
                (rt, name),
                (ResourceType::Topic, "t")
                    | (ResourceType::Group, "g")
                    | (ResourceType::TransactionalId, "tx")
            ),
            "User:broker" => rt == ResourceType::Cluster && op == Operation::ClusterAction,
            _ => false,
        })
    }

    async fn produce(
        ctx: &Arc<BrokerContext>,
        who: &str,
        acks: i16,
        records: Bytes,
        txn: Option<&str>,
    ) -> crate::error::Result<Option<ProduceResponse>> {
        use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
        let mut t = TopicProduceData::default();
        t.name = TopicName("t".into());
        let mut pd = PartitionProduceData::default();
        pd.index = 0;
        pd.records = Some(records);
        t.partition_data.push(pd);
        let mut req = ProduceRequest::default();
        req.acks = acks;
        req.timeout_ms = 5000;
        req.transactional_id = txn.map(|s| TransactionalId(s.to_string().into()));
        req.topic_data = vec![t];
        handlers::produce::handle(
            ctx,
            &test_policy::conn(who),
            &header(ApiKey::Produce, 9),
            req,
        )
        .await
    }

    fn produce_code(r: &ProduceResponse) -> i16 {
        r.responses[0].partition_responses[0].error_code
    }

    #[tokio::test]
    async fn produce_needs_topic_write() {
        let (ctx, _logs) = ctx();
        let _p = policy();
        let r = produce(
            &ctx,
            "User:bob",
            1,
            batch(2, Compression::None).freeze(),
            None,
        )
        .await
        .expect("ok")
        .expect("acks=1");
        assert_eq!(produce_code(&r), TAF);
        let r = produce(
            &ctx,
            "User:alice",
            1,
            batch(2, Compression::None).freeze(),
            None,
        )
        .await
        .expect("ok")
        .expect("acks=1");
        assert_eq!(produce_code(&r), 0);
        // acks=0: a refusal closes the connection, as Kafka does.
        assert!(produce(
            &ctx,
            "User:bob",
            0,
            batch(2, Compression::None).freeze(),
            None
        )
        .await
        .is_err());
    }

    #[tokio::test]
    async fn produce_transactional_needs_transactional_id_write() {
        let (ctx, _logs) = ctx();
        let _p = policy();
        let mut b = crate::replica::testing::batch_with(
            2,
            Compression::None,
            5,
            0,
            0,
            crate::replica::testing::chrono_now(),
        );
        b[22] |= 0x10;
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        let r = produce(&ctx, "User:alice", 1, b.clone().freeze(), Some("other"))
            .await
            .expect("ok")
            .expect("acks=1");
        assert_eq!(produce_code(&r), TXN_AF);
        assert_eq!(
            r.responses[0].partition_responses[0]
                .error_message
                .as_deref(),
            Some("Transactional Id authorization failed.")
        );
        let r = produce(&ctx, "User:alice", 1, b.freeze(), None)
            .await
            .expect("ok")
            .expect("acks=1");
        assert_eq!(
            produce_code(&r),
            TXN_AF,
            "transactional records without an id"
        );
    }

    async fn metadata(
        ctx: &Arc<BrokerContext>,
        who: &str,
        topics: Option<Vec<&str>>,
    ) -> MetadataResponse {
        use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
        let mut req = MetadataRequest::default();
        req.topics = topics.map(|ts| {
            ts.into_iter()
                .map(|n| {
                    let mut t = MetadataRequestTopic::default();
                    t.name = Some(TopicName(n.to_string().into()));
                    t
                })
                .collect()
        });
        req.allow_auto_topic_creation = false;
        req.include_topic_authorized_operations = true;
        req.include_cluster_authorized_operations = true;
        handlers::metadata::handle(
            ctx,
            &test_policy::conn(who),
            &header(ApiKey::Metadata, 10),
            req,
        )
        .await
        .expect("metadata")
    }

    /// Puts topic `t` (one partition, leader 1) in the metadata cache.
    fn cache_topic(ctx: &BrokerContext) {
        use kafka_protocol::messages::update_metadata_request::{
            UpdateMetadataPartitionState, UpdateMetadataTopicState,
        };
        let mut p = UpdateMetadataPartitionState::default();
        p.leader = BrokerId(1);
        p.isr = vec![BrokerId(1)];
        p.replicas = vec![BrokerId(1)];
        let mut ts = UpdateMetadataTopicState::default();
        ts.topic_name = TopicName("t".into());
        ts.topic_id = uuid::Uuid::from_u128(7);
        ts.partition_states = vec![p];
        let mut r = UpdateMetadataRequest::default();
        r.controller_id = BrokerId(1);
        r.controller_epoch = 1;
        r.topic_states = vec![ts];
        ctx.metadata_cache.apply(&r, 7);
    }

    #[tokio::test]
    async fn metadata_hides_topics_without_describe() {
        let (ctx, _logs) = ctx();
        cache_topic(&ctx);
        let _p = policy();
        // Listing: bob sees nothing, alice sees `t` with her operations.
        let r = metadata(&ctx, "User:bob", None).await;
        assert!(r.topics.is_empty(), "{:?}", r.topics);
        assert_eq!(
            r.cluster_authorized_operations, 0,
            "no DESCRIBE on the cluster"
        );
        let r = metadata(&ctx, "User:alice", None).await;
        assert_eq!(r.topics.len(), 1);
        assert_eq!(
            r.topics[0].topic_authorized_operations,
            bits(TOPIC_OPERATIONS)
        );
        // By name: an existing and a missing topic answer alike, without an id.
        let r = metadata(&ctx, "User:bob", Some(vec!["t", "missing"])).await;
        assert_eq!(r.topics.len(), 2);
        for t in &r.topics {
            assert_eq!(t.error_code, TAF);
            assert!(t.topic_id.is_nil());
            assert!(t.partitions.is_empty());
        }
        let r = metadata(&ctx, "User:alice", Some(vec!["t"])).await;
        assert_eq!(r.topics[0].error_code, 0);
        assert!(!r.topics[0].partitions.is_empty());
    }

    #[tokio::test]
    async fn list_offsets_refused_topics_come_last() {
        use kafka_protocol::messages::list_offsets_request::{
            ListOffsetsPartition, ListOffsetsTopic,
        };
        let (ctx, _logs) = ctx();
        let _p = test_policy::set(|_, _, _, name| name == "t");
        let mut req = ListOffsetsRequest::default();
        req.replica_id = BrokerId(-1);
        for name in ["hidden", "t"] {
            let mut t = ListOffsetsTopic::default();
            t.name = TopicName(name.to_string().into());
            let mut p = ListOffsetsPartition::default();
            p.timestamp = -1;
            t.partitions.push(p);
            req.topics.push(t);
        }
        let r = handlers::list_offsets::handle(
            &ctx,
            &test_policy::conn("User:c"),
            &header(ApiKey::ListOffsets, 5),
            req,
        )
        .await
        .expect("ok");
        assert_eq!(r.topics[0].name.as_str(), "t");
        assert_eq!(r.topics[0].partitions[0].error_code, 0);
        assert_eq!(r.topics[1].name.as_str(), "hidden");
        assert_eq!(r.topics[1].partitions[0].error_code, TAF);
        assert_eq!(r.topics[1].partitions[0].offset, -1);
    }

    #[tokio::test]
    async fn group_apis_need_group_acls() {
        let (ctx, _logs) = ctx();
        let _p = policy();
        let mut req = JoinGroupRequest::default();
        req.group_id = GroupId("g".into());
        req.session_timeout_ms = 10_000;
        let r = handlers::join_group::handle(
            &ctx,
            &test_policy::conn("User:bob"),
            &header(ApiKey::JoinGroup, 9),
            req,
        )
        .await
        .expect("ok");
        assert_eq!(r.error_code, GAF);
        assert_eq!(r.generation_id, -1);
        assert!(r.protocol_name.is_none(), "null from v7");

        let mut req = HeartbeatRequest::default();
        req.group_id = GroupId("g".into());
        let r = handlers::heartbeat::handle(
            &ctx,
            &test_policy::conn("User:bob"),
            &header(ApiKey::Heartbeat, 4),
            req,
        )
        .await
        .expect("ok");
        assert_eq!(r.error_code, GAF);

        let mut req = DeleteGroupsRequest::default();
        req.groups_names = vec![
            GroupId("x".into()),
            GroupId("g".into()),
            GroupId("x".into()),
        ];
        let r = handlers::delete_groups::handle(
            &ctx,
            &test_policy::conn("User:alice"),
            &header(ApiKey::DeleteGroups, 2),
            req,
        )
        .await
        .expect("ok");
        assert_eq!(r.results.len(), 2, "distinct names");
        assert_eq!(r.results[1].group_id.as_str(), "x");
        assert_eq!(r.results[1].error_code, GAF);

        let mut req = FindCoordinatorRequest::default();
        req.key_type = 1;
        req.coordinator_keys = vec!["nope".to_string().into()];
        let r = handlers::find_coordinator::handle(
            &ctx,
            &test_policy::conn("User:alice"),
            &header(ApiKey::FindCoordinator, 4),
            req,
        )
        .await
        .expect("ok");
        assert_eq!(r.coordinators[0].error_code, TXN_AF);
    }

    #[tokio::test]
    async fn offset_commit_checks_group_then_topics() {
        use kafka_protocol::messages::offset_commit_request::{
            OffsetCommitRequestPartition, OffsetCommitRequestTopic,
        };
        let (ctx, _logs) = ctx();
        let _p = test_policy::set(|_, _, rt, name| rt == ResourceType::Group || name == "t");
        let mut req = OffsetCommitRequest::default();
        req.group_id = GroupId("g".into());
        for name in ["t", "secret"] {
            let mut t = OffsetCommitRequestTopic::default();
            t.name = TopicName(name.to_string().into());
            t.partitions.push(OffsetCommitRequestPartition::default());
            req.topics.push(t);
        }
        let r = handlers::offset_commit::handle(
            &ctx,
            &test_policy::conn("User:c"),
            &header(ApiKey::OffsetCommit, 8),
            req.clone(),
        )
        .await
        .expect("ok");
        assert_ne!(r.topics[0].partitions[0].error_code, TAF);
        assert_eq!(
            r.topics[1].partitions[0].error_code, TAF,
            "before UNKNOWN_TOPIC_OR_PARTITION"
        );
        let _p = test_policy::set(|_, _, _, _| false);
        let r = handlers::offset_commit::handle(
            &ctx,
            &test_policy::conn("User:c"),
            &header(ApiKey::OffsetCommit, 8),
            req,
        )
        .await
        .expect("ok");
        assert!(r
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .all(|p| p.error_code == GAF));
    }

    #[tokio::test]
    async fn idempotent_producer_needs_idempotent_write_or_some_topic_write() {
        let (ctx, _logs) = ctx();
        let init = |who: &'static str| {
            let ctx = ctx.clone();
            async move {
                let mut req = InitProducerIdRequest::default();
                req.transactional_id = None;
                req.producer_id = ProducerId(-1);
                req.producer_epoch = -1;
                handlers::init_producer_id::handle(
                    &ctx,
                    &test_policy::conn(who),
                    &header(ApiKey::InitProducerId, 4),
                    req,
                )
                .await
                .expect("ok")
            }
        };
        // The policy's name `*` stands for "WRITE on some topic".
        let _p = test_policy::set(|principal, op, rt, name| match principal {
            "User:idem" => rt == ResourceType::Cluster && op == Operation::IdempotentWrite,
            "User:writer" => rt == ResourceType::Topic && op == Operation::Write && name == "*",
            _ => false,
        });
        assert_eq!(init("User:bob").await.error_code, CAF);
        assert_eq!(init("User:bob").await.producer_id.0, -1);
        assert_ne!(init("User:idem").await.error_code, CAF);
        assert_ne!(init("User:writer").await.error_code, CAF);
    }

    #[tokio::test]
    async fn inter_broker_apis_need_cluster_action() {
        let (ctx, _logs) = ctx();
        let _p = policy();
        let req = UpdateMetadataRequest::default();
        let r = handlers::update_metadata::handle(
            &ctx,
            &test_policy::conn("User:alice"),
            &header(ApiKey::UpdateMetadata, 8),
            req,
        )
        .await
        .expect("ok");
        assert_eq!(r.error_code, CAF);
        let mut req = StopReplicaRequest::default();
        let mut ts =
            kafka_protocol::messages::stop_replica_request::StopReplicaTopicState::default();
        ts.topic_name = TopicName("t".into());
        ts.partition_states.push(Default::default());
        req.topic_states.push(ts);
        let r = handlers::stop_replica::handle(
            &ctx,
            &test_policy::conn("User:alice"),
            &header(ApiKey::StopReplica, 4),
            req,
        )
        .await
        .expect("ok");
        assert_eq!(r.error_code, CAF);
        assert_eq!(r.partition_errors.len(), 1);
        assert_eq!(r.partition_errors[0].error_code, CAF);
        // The partition stays: nothing was stopped.
        assert!(ctx
            .replicas()
            .expect("rm")
            .partition(&samsa_common::types::TopicPartition::new("t", 0))
            .is_some());
        let r = handlers::describe_log_dirs::handle(
            &ctx,
            &test_policy::conn("User:broker"),
            &header(ApiKey::DescribeLogDirs, 4),
            DescribeLogDirsRequest::default(),
        )
        .await
        .expect("ok");
        assert_eq!(
            r.error_code, CAF,
            "DESCRIBE on the cluster, not CLUSTER_ACTION"
        );
    }

    #[tokio::test]
    async fn describe_configs_refusals_follow_with_message() {
        use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
        let (ctx, _logs) = ctx();
        let _p = policy();
        let mut req = DescribeConfigsRequest::default();
        for (rt, name) in [(4i8, "1"), (2, "t")] {
            let mut r = DescribeConfigsResource::default();
            r.resource_type = rt;
            r.resource_name = name.to_string().into();
            req.resources.push(r);
        }
        let r = handlers::describe_configs::handle(
            &ctx,
            &test_policy::conn("User:alice"),
            &header(ApiKey::DescribeConfigs, 4),
            req,
        )
        .await
        .expect("ok");
        assert_eq!(r.results[0].resource_name.as_str(), "t");
        assert_eq!(r.results[1].resource_name.as_str(), "1");
        assert_eq!(r.results[1].error_code, CAF);
        assert_eq!(
            r.results[1].error_message.as_deref(),
            Some("Cluster authorization failed.")
        );
    }

    #[test]
    fn by_resource_type_follows_kafka() {
        use super::super::acl::AclEntry;
        use super::super::acl::ResourcePattern;
        use super::super::cache::VersionedAcls;
        let entry = |principal: &str, op, perm| AclEntry {
            principal: principal.into(),
            host: "*".into(),
            operation: op,
            permission: perm,
        };
        let mut cache = AclCache::default();
        let check = |c: &AclCache, who: &str| {
            authorize_by_resource_type(
                c,
                who,
                "10.0.0.1",
                Operation::Write,
                ResourceType::Topic,
                false,
            )
        };
        assert!(!check(&cache, "User:a"), "no ACLs");
        let set = |c: &mut AclCache, name: &str, pt, acls: Vec<AclEntry>| {
            c.set(
                ResourcePattern::new(ResourceType::Topic, name, pt),
                VersionedAcls {
                    acls: acls.into_iter().collect(),
                    ..Default::default()
                },
            )
        };
        set(
            &mut cache,
            "orders",
            PatternType::Literal,
            vec![entry("User:a", Operation::Write, Permission::Allow)],
        );
        assert!(check(&cache, "User:a"));
        assert!(!check(&cache, "User:b"));
        // A prefixed DENY dominating the literal takes it back.
        set(
            &mut cache,
            "ord",
            PatternType::Prefixed,
            vec![entry("User:a", Operation::All, Permission::Deny)],
        );
        assert!(!check(&cache, "User:a"));
        // An ALLOW elsewhere still counts.
        set(
            &mut cache,
            "logs-",
            PatternType::Prefixed,
            vec![entry("User:*", Operation::Write, Permission::Allow)],
        );
        assert!(check(&cache, "User:a"));
        // A literal DENY on `*` refuses everything, even with allow.everyone.if.no.acl.found.
        set(
            &mut cache,
            "*",
            PatternType::Literal,
            vec![entry("User:a", Operation::Write, Permission::Deny)],
        );
        assert!(!authorize_by_resource_type(
            &cache,
            "User:a",
            "h",
            Operation::Write,
            ResourceType::Topic,
            true
        ));
        assert!(authorize_by_resource_type(
            &cache,
            "User:c",
            "h",
            Operation::Write,
            ResourceType::Topic,
            true
        ));
    }
}
