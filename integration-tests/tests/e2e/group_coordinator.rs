//! Group coordinator failover over the raw protocol: a Stable group with committed offsets keeps
//! its generation, members, assignment and offsets when its coordinator is killed with -9 and
//! the leadership of its `__consumer_offsets` partition moves (the new leader loads the group
//! metadata records, as Kafka's `loadGroupsForPartition` does); a group deleted before the kill
//! stays deleted (its offset tombstones are replayed). Also OffsetCommit/OffsetFetch v0, which
//! a ZooKeeper-mode broker keeps in ZooKeeper.

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::describe_groups_response::DescribeGroupsResponse;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ApiKey, DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest,
    FindCoordinatorRequest, FindCoordinatorResponse, GroupId, HeartbeatRequest, HeartbeatResponse,
    JoinGroupRequest, JoinGroupResponse, OffsetCommitRequest, OffsetCommitResponse,
    OffsetDeleteRequest, OffsetDeleteResponse, OffsetFetchRequest, OffsetFetchResponse,
    SyncGroupRequest, SyncGroupResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use samsa_integration_tests::wire::Conn;
use samsa_integration_tests::{util, Cluster};

use crate::common::create_topic;

const T: Duration = Duration::from_secs(30);
const GROUP: &str = "failover-group";

/// Kafka error code 14: the coordinator is still loading its __consumer_offsets partition.
const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// Node id of the group's coordinator as `addr` sees it (None while unavailable).
fn find_coordinator(addr: &str) -> Option<i32> {
    let mut c = Conn::connect(addr).ok()?;
    let r: FindCoordinatorResponse = c
        .request(
            ApiKey::FindCoordinator,
            3,
            &FindCoordinatorRequest::default().with_key(s(GROUP)),
        )
        .ok()?;
    (r.error_code == 0).then_some(r.node_id.0)
}

fn join(c: &mut Conn, member: &str) -> JoinGroupResponse {
    let req = JoinGroupRequest::default()
        .with_group_id(GroupId(s(GROUP)))
        .with_session_timeout_ms(60_000)
        .with_rebalance_timeout_ms(10_000)
        .with_member_id(s(member))
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(s("range"))
            .with_metadata(Bytes::from_static(
                b"\0\0\0\0\0\x01\0\x02fo\xff\xff\xff\xff",
            ))]);
    c.request(ApiKey::JoinGroup, 5, &req).unwrap()
}

fn commit(c: &mut Conn, generation: i32, member: &str, offset: i64) -> i16 {
    let req = OffsetCommitRequest::default()
        .with_group_id(GroupId(s(GROUP)))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(s(member))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(s("fo")))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(offset)
                .with_committed_metadata(Some(s("meta")))])]);
    let r: OffsetCommitResponse = c.request(ApiKey::OffsetCommit, 8, &req).unwrap();
    r.topics[0].partitions[0].error_code
}

fn heartbeat(addr: &str, generation: i32, member: &str) -> Option<i16> {
    let mut c = Conn::connect(addr).ok()?;
    let req = HeartbeatRequest::default()
        .with_group_id(GroupId(s(GROUP)))
        .with_generation_id(generation)
        .with_member_id(s(member));
    let r: HeartbeatResponse = c.request(ApiKey::Heartbeat, 4, &req).ok()?;
    Some(r.error_code)
}

/// (group error, committed offset, metadata) of fo-0.
fn fetch(c: &mut Conn) -> (i16, i64, String) {
    let req = OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
        .with_group_id(GroupId(s(GROUP)))
        .with_topics(None)]);
    let r: OffsetFetchResponse = c.request(ApiKey::OffsetFetch, 8, &req).unwrap();
    let g = &r.groups[0];
    let p = g
        .topics
        .iter()
        .find(|t| t.name.0.as_str() == "fo")
        .and_then(|t| t.partitions.iter().find(|p| p.partition_index == 0));
    (
        g.error_code,
        p.map(|p| p.committed_offset).unwrap_or(-1),
        p.and_then(|p| p.metadata.as_ref().map(|m| m.to_string()))
            .unwrap_or_default(),
    )
}

fn describe(c: &mut Conn, group: &str) -> DescribeGroupsResponse {
    let req = DescribeGroupsRequest::default().with_groups(vec![GroupId(s(group))]);
    c.request(ApiKey::DescribeGroups, 5, &req).unwrap()
}

/// `__consumer_offsets` partition of a group id (Java `String.hashCode`, as Kafka).
fn offsets_partition(id: &str, n: i32) -> i32 {
    let h = id
        .encode_utf16()
        .fold(0i32, |h, u| h.wrapping_mul(31).wrapping_add(i32::from(u)));
    if h == i32::MIN {
        0
    } else {
        h.abs() % n
    }
}

#[test]
fn coordinator_failover_keeps_generation_members_and_offsets() {
    let mut cluster = Cluster::builder("grpfo")
        .brokers(3)
        .prop("offsets.topic.num.partitions", "3")
        .prop("group.initial.rebalance.delay.ms", "0")
        .start();
    cluster.wait_registered(T);
    let b = cluster.bootstrap();
    create_topic(&b, "fo", 2, 3, &[]);
    let addr_of = |cluster: &mut Cluster, id: i32| cluster.broker(id).addr();
    let any = addr_of(&mut cluster, 1);
    let coord = util::wait_until("a group coordinator", T, || find_coordinator(&any));
    let coord_addr = addr_of(&mut cluster, coord);
    let mut c = Conn::connect(&coord_addr).unwrap();

    // Join (member id required first), sync, commit: a Stable group in generation 1.
    // FindCoordinator names the partition leader even while it is still loading the partition
    // (as Kafka does); clients retry COORDINATOR_LOAD_IN_PROGRESS, and so does this test.
    let r = util::wait_until("the coordinator loaded", T, || {
        let r = join(&mut c, "");
        (r.error_code != COORDINATOR_LOAD_IN_PROGRESS).then_some(r)
    });
    assert_eq!(r.error_code, 79, "MEMBER_ID_REQUIRED");
    let member = r.member_id.to_string();
    let r = join(&mut c, &member);
    assert_eq!((r.error_code, r.generation_id), (0, 1));
    let sync = SyncGroupRequest::default()
        .with_group_id(GroupId(s(GROUP)))
        .with_generation_id(1)
        .with_member_id(s(&member))
        .with_assignments(vec![SyncGroupRequestAssignment::default()
            .with_member_id(s(&member))
            .with_assignment(Bytes::from_static(b"ASSIGNMENT"))]);
    let r: SyncGroupResponse = c.request(ApiKey::SyncGroup, 3, &sync).unwrap();
    assert_eq!((r.error_code, &r.assignment[..]), (0, &b"ASSIGNMENT"[..]));
    assert_eq!(commit(&mut c, 1, &member, 42), 0);
    // Unknown topics are refused per partition, as Kafka's KafkaApis does.
    let bad = OffsetCommitRequest::default()
        .with_group_id(GroupId(s(GROUP)))
        .with_generation_id_or_member_epoch(1)
        .with_member_id(s(&member))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(s("no-such-topic")))
            .with_partitions(vec![OffsetCommitRequestPartition::default()])]);
    let r: OffsetCommitResponse = c.request(ApiKey::OffsetCommit, 8, &bad).unwrap();
    assert_eq!(r.topics[0].partitions[0].error_code, 3);
    // OffsetDelete of a subscribed topic while the group has members.
    let del = OffsetDeleteRequest::default()
        .with_group_id(GroupId(s(GROUP)))
        .with_topics(vec![OffsetDeleteRequestTopic::default()
            .with_name(TopicName(s("fo")))
            .with_partitions(vec![
                OffsetDeleteRequestPartition::default().with_partition_index(0)
            ])]);
    let r: OffsetDeleteResponse = c.request(ApiKey::OffsetDelete, 0, &del).unwrap();
    assert_eq!(
        (r.error_code, r.topics[0].partitions[0].error_code),
        (0, 86),
        "GROUP_SUBSCRIBED_TO_TOPIC"
    );
    // A "simple" group (generation -1) in the same offsets partition commits, then is deleted.
    let gone = (0..)
        .map(|i| format!("gone-{i}"))
        .find(|g| offsets_partition(g, 3) == offsets_partition(GROUP, 3))
        .unwrap();
    let simple = OffsetCommitRequest::default()
        .with_group_id(GroupId(s(&gone)))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(s("fo")))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(1)
                .with_committed_offset(7)])]);
    let r: OffsetCommitResponse = c.request(ApiKey::OffsetCommit, 8, &simple).unwrap();
    assert_eq!(r.topics[0].partitions[0].error_code, 0);
    let del = DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s(&gone))]);
    let r: DeleteGroupsResponse = c.request(ApiKey::DeleteGroups, 2, &del).unwrap();
    assert_eq!(r.results[0].error_code, 0);
    // An acks -1 write after the tombstones (same partition) makes them replicated too.
    assert_eq!(commit(&mut c, 1, &member, 42), 0);
    drop(c);

    cluster.broker(coord).kill9();
    let others: Vec<String> = (1..=3)
        .filter(|id| *id != coord)
        .map(|id| addr_of(&mut cluster, id))
        .collect();
    let new_coord = util::wait_until("a new coordinator", T, || {
        find_coordinator(&others[0]).filter(|id| *id != coord)
    });
    let new_addr = addr_of(&mut cluster, new_coord);
    // Loaded from the log: the member is still in generation 1 (NONE, not UNKNOWN_MEMBER_ID).
    util::wait_until("group loaded on the new coordinator", T, || {
        (heartbeat(&new_addr, 1, &member)? == 0).then_some(())
    });
    assert_eq!(
        heartbeat(&new_addr, 2, &member),
        Some(22),
        "ILLEGAL_GENERATION"
    );
    let mut c = Conn::connect(&new_addr).unwrap();
    let d = describe(&mut c, GROUP);
    let g = &d.groups[0];
    assert_eq!(g.error_code, 0);
    assert_eq!(g.group_state.as_str(), "Stable");
    assert_eq!(g.protocol_type.as_str(), "consumer");
    assert_eq!(g.protocol_data.as_str(), "range");
    assert_eq!(g.members.len(), 1);
    assert_eq!(g.members[0].member_id.as_str(), member);
    assert_eq!(&g.members[0].member_assignment[..], b"ASSIGNMENT");
    assert_eq!(fetch(&mut c), (0, 42, "meta".to_string()));
    // The deleted group stays deleted: its tombstones were loaded too.
    let d = describe(&mut c, &gone);
    assert_eq!(
        (d.groups[0].error_code, d.groups[0].group_state.as_str()),
        (0, "Dead")
    );
    let req = OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
        .with_group_id(GroupId(s(&gone)))
        .with_topics(None)]);
    let r: OffsetFetchResponse = c.request(ApiKey::OffsetFetch, 8, &req).unwrap();
    assert!(r.groups[0].topics.is_empty(), "no offsets left: {r:?}");
    // The member keeps committing in its generation.
    assert_eq!(commit(&mut c, 1, &member, 43), 0);
    assert_eq!(fetch(&mut c).1, 43);
    cluster.finish();
}

/// OffsetCommit v0 / OffsetFetch v0 use ZooKeeper (`/consumers/<group>/offsets/<topic>/<p>`) on a
/// ZooKeeper-mode Kafka 3.9 broker, without any coordinator or group checks.
#[test]
fn v0_offsets_live_in_zookeeper() {
    use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
    let cluster = Cluster::builder("grpv0").start();
    let b = cluster.bootstrap();
    create_topic(&b, "zv", 1, 1, &[]);
    let mut c = Conn::connect(&b).unwrap();
    let req = OffsetCommitRequest::default()
        .with_group_id(GroupId(s("old-consumer")))
        .with_topics(vec![
            OffsetCommitRequestTopic::default()
                .with_name(TopicName(s("zv")))
                .with_partitions(vec![OffsetCommitRequestPartition::default()
                    .with_partition_index(0)
                    .with_committed_offset(42)]),
            OffsetCommitRequestTopic::default()
                .with_name(TopicName(s("nope")))
                .with_partitions(vec![OffsetCommitRequestPartition::default()]),
        ]);
    let r: OffsetCommitResponse = c.request(ApiKey::OffsetCommit, 0, &req).unwrap();
    assert_eq!(r.topics[0].partitions[0].error_code, 0);
    assert_eq!(r.topics[1].partitions[0].error_code, 3);
    let node = cluster
        .zk()
        .get("/consumers/old-consumer/offsets/zv/0")
        .unwrap()
        .expect("offset znode");
    assert_eq!(node.text(), "42");
    let fetch = |c: &mut Conn, version: i16, p: i32| {
        let req = OffsetFetchRequest::default()
            .with_group_id(GroupId(s("old-consumer")))
            .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                .with_name(TopicName(s("zv")))
                .with_partition_indexes(vec![p])]));
        let r: OffsetFetchResponse = c.request(ApiKey::OffsetFetch, version, &req).unwrap();
        let p = &r.topics[0].partitions[0];
        (p.committed_offset, p.error_code)
    };
    assert_eq!(fetch(&mut c, 0, 0), (42, 0));
    assert_eq!(fetch(&mut c, 0, 7), (-1, 3), "unknown partition");
    cluster.finish();
}

/// `offsets.retention.minutes`: an offsets-only group's commit expires once the retention has
/// passed since it was made (Kafka 3.9's rule for groups without a protocol type), found by the
/// `offsets.retention.check.interval.ms` sweep — and not before.
#[test]
fn committed_offsets_expire_after_retention() {
    use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
    let cluster = Cluster::builder("grpexp")
        .prop("offsets.retention.minutes", "1")
        .prop("offsets.retention.check.interval.ms", "1000")
        .prop("offsets.topic.replication.factor", "1")
        .start();
    let b = cluster.bootstrap();
    create_topic(&b, "ex", 1, 1, &[]);
    let group = "expiring";
    let mut c = util::wait_until("coordinator for the group", Duration::from_secs(60), || {
        let mut c = Conn::connect(&b).ok()?;
        let r: FindCoordinatorResponse = c
            .request(
                ApiKey::FindCoordinator,
                3,
                &FindCoordinatorRequest::default().with_key(s(group)),
            )
            .ok()?;
        (r.error_code == 0).then_some(c)
    });
    let req = OffsetCommitRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(s("ex")))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(7)])]);
    // Retried while the coordinator is still loading its partition, as clients do.
    let (r, committed_at) = util::wait_until("the coordinator loaded", T, || {
        let at = std::time::Instant::now();
        let r: OffsetCommitResponse = c.request(ApiKey::OffsetCommit, 8, &req).unwrap();
        (r.topics[0].partitions[0].error_code != COORDINATOR_LOAD_IN_PROGRESS).then_some((r, at))
    });
    assert_eq!(r.topics[0].partitions[0].error_code, 0);
    let mut fetch = || {
        let req = OffsetFetchRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                .with_name(TopicName(s("ex")))
                .with_partition_indexes(vec![0])]));
        let r: OffsetFetchResponse = c.request(ApiKey::OffsetFetch, 7, &req).unwrap();
        assert_eq!(r.error_code, 0);
        r.topics[0].partitions[0].committed_offset
    };
    assert_eq!(fetch(), 7);
    util::wait_until("offset expired", Duration::from_secs(120), || {
        let offset = fetch();
        if offset == 7 {
            return None;
        }
        assert_eq!(offset, -1, "expired offsets read as -1");
        Some(())
    });
    let waited = committed_at.elapsed();
    assert!(
        waited >= Duration::from_secs(59),
        "expired after {waited:?}, before the 1-minute retention"
    );
    cluster.finish();
}
