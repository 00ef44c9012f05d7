//! The partition-leader side of transactions, driven with raw requests as a transaction
//! coordinator would: transactional Produce batches, WriteTxnMarkers COMMIT/ABORT, then
//! read_committed / read_uncommitted consumers (confluent-kafka, kafka-python, librdkafka)
//! and ListOffsets READ_COMMITTED for the last stable offset. Those brokers run with
//! `transaction.partition.verification.enable=false`, since no transaction coordinator
//! vouches for the test's producer. The last tests keep Kafka's default and go through the
//! transaction coordinator: KIP-890 verification of Produce, and TxnOffsetCommit from
//! librdkafka's send_offsets_to_transaction.

#![allow(clippy::field_reassign_with_default)]

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::{
    ApiKey, InitProducerIdRequest, InitProducerIdResponse, ListOffsetsRequest, ListOffsetsResponse,
    ProduceRequest, ProduceResponse, ProducerId, TopicName, TransactionalId,
    WriteTxnMarkersRequest, WriteTxnMarkersResponse,
};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use samsa_integration_tests::{clients, wait_until, wire, Cluster};
use serde_json::Value;

use crate::common::create_topic;

/// A cluster whose leaders accept unverified transactional batches.
pub fn txn_cluster(name: &str, brokers: i32) -> Cluster {
    Cluster::builder(name)
        .brokers(brokers)
        .prop("transaction.partition.verification.enable", "false")
        .start()
}

/// A producer id (epoch 0) from InitProducerId without a transactional id.
pub fn init_producer_id(conn: &mut wire::Conn) -> (i64, i16) {
    let mut req = InitProducerIdRequest::default();
    req.transactional_id = None;
    req.transaction_timeout_ms = 60_000;
    req.producer_id = ProducerId(-1);
    req.producer_epoch = -1;
    let resp: InitProducerIdResponse =
        wait_until("InitProducerId", Duration::from_secs(60), || {
            let r: InitProducerIdResponse = conn.request(ApiKey::InitProducerId, 4, &req).ok()?;
            (r.error_code == 0).then_some(r)
        });
    (resp.producer_id.0, resp.producer_epoch)
}

/// A transactional batch of `values` from producer `pid`/`epoch` starting at `seq`.
pub fn txn_batch(pid: i64, epoch: i16, seq: i32, values: &[&str]) -> Bytes {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Record {
            transactional: true,
            control: false,
            partition_leader_epoch: -1,
            producer_id: pid,
            producer_epoch: epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: seq + i as i32,
            timestamp: now,
            key: None,
            value: Some(Bytes::from(v.to_string())),
            headers: IndexMap::new(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        records.iter(),
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .unwrap();
    buf.freeze()
}

/// Produce v9 (acks=-1) of one batch to `topic`-`partition`: (error code, base offset).
/// Produce v9 of one batch, naming a transactional id as a transactional producer does (Kafka
/// 3.9 refuses transactional records without one, authorizer or not).
pub fn produce(conn: &mut wire::Conn, topic: &str, partition: i32, batch: Bytes) -> (i16, i64) {
    produce_as(conn, Some("e2e-raw-producer"), topic, partition, batch)
}

pub fn produce_as(
    conn: &mut wire::Conn,
    transactional_id: Option<&str>,
    topic: &str,
    partition: i32,
    batch: Bytes,
) -> (i16, i64) {
    let mut p = PartitionProduceData::default();
    p.index = partition;
    p.records = Some(batch);
    let mut t = TopicProduceData::default();
    t.name = TopicName(topic.to_string().into());
    t.partition_data = vec![p];
    let mut req = ProduceRequest::default();
    req.acks = -1;
    req.timeout_ms = 30_000;
    req.transactional_id = transactional_id.map(|id| TransactionalId(id.to_string().into()));
    req.topic_data = vec![t];
    let resp: ProduceResponse = conn.request(ApiKey::Produce, 9, &req).unwrap();
    let pr = &resp.responses[0].partition_responses[0];
    (pr.error_code, pr.base_offset)
}

/// WriteTxnMarkers v1 with one marker: per-partition error codes.
pub fn write_marker(
    conn: &mut wire::Conn,
    pid: i64,
    epoch: i16,
    commit: bool,
    coordinator_epoch: i32,
    partitions: &[(&str, i32)],
) -> Vec<(String, i32, i16)> {
    let mut m = WritableTxnMarker::default();
    m.producer_id = ProducerId(pid);
    m.producer_epoch = epoch;
    m.transaction_result = commit;
    m.coordinator_epoch = coordinator_epoch;
    for (t, p) in partitions {
        let mut mt = WritableTxnMarkerTopic::default();
        mt.name = TopicName(t.to_string().into());
        mt.partition_indexes = vec![*p];
        m.topics.push(mt);
    }
    let mut req = WriteTxnMarkersRequest::default();
    req.markers = vec![m];
    let resp: WriteTxnMarkersResponse = conn.request(ApiKey::WriteTxnMarkers, 1, &req).unwrap();
    assert_eq!(resp.markers.len(), 1);
    assert_eq!(resp.markers[0].producer_id.0, pid);
    resp.markers[0]
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (t.name.to_string(), p.partition_index, p.error_code))
        })
        .collect()
}

/// ListOffsets v5 latest offset of partition 0 with isolation level 0 or 1.
fn latest(conn: &mut wire::Conn, topic: &str, isolation: i8) -> i64 {
    let mut p = ListOffsetsPartition::default();
    p.partition_index = 0;
    p.timestamp = -1;
    let mut t = ListOffsetsTopic::default();
    t.name = TopicName(topic.to_string().into());
    t.partitions = vec![p];
    let mut req = ListOffsetsRequest::default();
    req.replica_id = kafka_protocol::messages::BrokerId(-1);
    req.isolation_level = isolation;
    req.topics = vec![t];
    let resp: ListOffsetsResponse = conn.request(ApiKey::ListOffsets, 5, &req).unwrap();
    let p = &resp.topics[0].partitions[0];
    assert_eq!(p.error_code, 0);
    p.offset
}

fn java(args: &[&str]) -> Value {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    clients::java("TxnLeader", &args, Duration::from_secs(180)).unwrap()
}

fn records_of(out: &Value) -> Vec<(i64, String)> {
    out["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["offset"].as_i64().unwrap(),
                r["value"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn java_consume(bootstrap: &str, topic: &str, isolation: &str) -> (Vec<(i64, String)>, i64) {
    let out = java(&["consume", bootstrap, topic, isolation]);
    (records_of(&out), out["position"].as_i64().unwrap())
}

fn consume(lib: &str, bootstrap: &str, topic: &str, isolation: &str) -> (Vec<(i64, String)>, i64) {
    let out: Value = clients::python(
        "txn_consume.py",
        &[
            lib.to_string(),
            bootstrap.to_string(),
            topic.to_string(),
            isolation.to_string(),
        ],
        Duration::from_secs(120),
    )
    .unwrap();
    (records_of(&out), out["position"].as_i64().unwrap())
}

#[test]
fn txn_markers_commit_abort_and_read_committed() {
    let cluster = txn_cluster("txnmark", 1);
    let b = cluster.bootstrap();
    create_topic(&b, "txm", 1, 1, &[]);
    let mut conn = wire::Conn::connect(&cluster.brokers[0].addr()).unwrap();
    let (pid, epoch) = init_producer_id(&mut conn);

    // Transaction 1: 3 records, committed.
    assert_eq!(
        produce(
            &mut conn,
            "txm",
            0,
            txn_batch(pid, epoch, 0, &["c0", "c1", "c2"])
        ),
        (0, 0)
    );
    assert_eq!(
        latest(&mut conn, "txm", 1),
        0,
        "the open transaction holds the LSO"
    );
    assert_eq!(latest(&mut conn, "txm", 0), 3);
    assert_eq!(
        write_marker(&mut conn, pid, epoch, true, 5, &[("txm", 0), ("nosuch", 0)]),
        vec![("txm".to_string(), 0, 0), ("nosuch".to_string(), 0, 3)]
    );
    assert_eq!(latest(&mut conn, "txm", 1), 4, "commit marker at offset 3");
    // Transaction 2: 2 records, aborted.
    assert_eq!(
        produce(&mut conn, "txm", 0, txn_batch(pid, epoch, 3, &["a0", "a1"])),
        (0, 4)
    );
    assert_eq!(
        write_marker(&mut conn, pid, epoch, false, 5, &[("txm", 0)]),
        vec![("txm".to_string(), 0, 0)]
    );
    // Transaction 3: left open; a marker from an older coordinator epoch is fenced.
    assert_eq!(
        produce(&mut conn, "txm", 0, txn_batch(pid, epoch, 5, &["o0"])),
        (0, 7)
    );
    assert_eq!(
        write_marker(&mut conn, pid, epoch, true, 4, &[("txm", 0)]),
        vec![("txm".to_string(), 0, 52)],
        "TRANSACTION_COORDINATOR_FENCED"
    );
    assert_eq!(latest(&mut conn, "txm", 1), 7);
    assert_eq!(latest(&mut conn, "txm", 0), 8);

    // Admin.describeProducers shows the producer with its open transaction.
    let out = java(&["producers", &b, "txm"]);
    assert_eq!(
        out["producers"],
        serde_json::json!([{"id": pid, "epoch": epoch, "last_sequence": 5,
            "coordinator_epoch": 5, "txn_start": 7}])
    );
    let (committed, pos) = java_consume(&b, "txm", "read_committed");
    assert_eq!(
        committed,
        vec![(0, "c0".into()), (1, "c1".into()), (2, "c2".into())]
    );
    assert_eq!(pos, 7, "Java read_committed stops at the LSO");
    let (all, pos) = java_consume(&b, "txm", "read_uncommitted");
    assert_eq!(
        all.iter().map(|(o, _)| *o).collect::<Vec<_>>(),
        vec![0, 1, 2, 4, 5, 7]
    );
    assert_eq!(pos, 8);

    for lib in ["confluent", "kafka-python"] {
        let (committed, pos) = consume(lib, &b, "txm", "read_committed");
        assert_eq!(
            committed,
            vec![(0, "c0".into()), (1, "c1".into()), (2, "c2".into())],
            "{lib} read_committed"
        );
        assert_eq!(pos, 7, "{lib} stops at the LSO");
        let (all, pos) = consume(lib, &b, "txm", "read_uncommitted");
        let offsets: Vec<i64> = all.iter().map(|(o, _)| *o).collect();
        assert_eq!(
            offsets,
            vec![0, 1, 2, 4, 5, 7],
            "{lib}: markers are not records"
        );
        assert_eq!(pos, 8);
    }

    // The open transaction commits: everything but the aborted records becomes visible.
    assert_eq!(
        write_marker(&mut conn, pid, epoch, true, 5, &[("txm", 0)]),
        vec![("txm".to_string(), 0, 0)]
    );
    assert_eq!(latest(&mut conn, "txm", 1), 9);
    let (committed, pos) = consume("confluent", &b, "txm", "read_committed");
    let offsets: Vec<i64> = committed.iter().map(|(o, _)| *o).collect();
    assert_eq!(offsets, vec![0, 1, 2, 7]);
    assert_eq!(pos, 9);
    cluster.finish();
}

/// Kafka's partition of a group id in `__consumer_offsets` (Java `String.hashCode`).
fn partition_for(key: &str, partitions: i32) -> i32 {
    let h = key
        .encode_utf16()
        .fold(0i32, |h, u| h.wrapping_mul(31).wrapping_add(i32::from(u)));
    (if h == i32::MIN { 0 } else { h.abs() }) % partitions
}

fn offsets_partitions(bootstrap: &str) -> i32 {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let c: BaseConsumer = crate::common::client_config(bootstrap).create().unwrap();
    wait_until(
        "__consumer_offsets metadata",
        Duration::from_secs(60),
        || {
            let md = c
                .fetch_metadata(Some("__consumer_offsets"), Duration::from_secs(10))
                .ok()?;
            let n = md.topics().first()?.partitions().len() as i32;
            (n > 0).then_some(n)
        },
    )
}

/// TxnOffsetCommit v3 of `src`-0 at `offset` for the group: the partition's error code.
fn txn_offset_commit(conn: &mut wire::Conn, group: &str, pid: i64, epoch: i16, offset: i64) -> i16 {
    use kafka_protocol::messages::txn_offset_commit_request::{
        TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
    };
    use kafka_protocol::messages::{
        GroupId, TransactionalId, TxnOffsetCommitRequest, TxnOffsetCommitResponse,
    };
    let mut p = TxnOffsetCommitRequestPartition::default();
    p.partition_index = 0;
    p.committed_offset = offset;
    p.committed_leader_epoch = -1;
    p.committed_metadata = Some("".into());
    let mut t = TxnOffsetCommitRequestTopic::default();
    t.name = TopicName("src".into());
    t.partitions = vec![p];
    let mut req = TxnOffsetCommitRequest::default();
    req.transactional_id = TransactionalId("txn-e2e".into());
    req.group_id = GroupId(group.to_string().into());
    req.producer_id = ProducerId(pid);
    req.producer_epoch = epoch;
    req.generation_id = -1;
    req.member_id = "".into();
    req.group_instance_id = None;
    req.topics = vec![t];
    let resp: TxnOffsetCommitResponse = conn.request(ApiKey::TxnOffsetCommit, 3, &req).unwrap();
    resp.topics[0].partitions[0].error_code
}

/// OffsetFetch v7 of `src`-0: (committed offset, error code).
fn offset_fetch(conn: &mut wire::Conn, group: &str, require_stable: bool) -> (i64, i16) {
    use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
    use kafka_protocol::messages::{GroupId, OffsetFetchRequest, OffsetFetchResponse};
    let mut t = OffsetFetchRequestTopic::default();
    t.name = TopicName("src".into());
    t.partition_indexes = vec![0];
    let mut req = OffsetFetchRequest::default();
    req.group_id = GroupId(group.to_string().into());
    req.topics = Some(vec![t]);
    req.require_stable = require_stable;
    let resp: OffsetFetchResponse = conn.request(ApiKey::OffsetFetch, 7, &req).unwrap();
    if resp.error_code != 0 {
        return (-1, resp.error_code);
    }
    let p = &resp.topics[0].partitions[0];
    (p.committed_offset, p.error_code)
}

/// Waits until the group coordinator answers OffsetFetch (loaded, owned): (offset, code).
fn offset_fetch_ready(conn: &mut wire::Conn, group: &str, require_stable: bool) -> (i64, i16) {
    wait_until("group coordinator ready", Duration::from_secs(60), || {
        let r = offset_fetch(conn, group, require_stable);
        (!matches!(r.1, 14..=16)).then_some(r)
    })
}

#[test]
fn txn_offset_commit_waits_for_its_marker() {
    use kafka_protocol::messages::{FindCoordinatorRequest, FindCoordinatorResponse};
    let mut cluster = txn_cluster("txnoff", 1);
    let b = cluster.bootstrap();
    create_topic(&b, "src", 1, 1, &[]);
    let addr = cluster.brokers[0].addr();
    let mut conn = wire::Conn::connect(&addr).unwrap();
    let (pid, epoch) = init_producer_id(&mut conn);
    let group = "txn-group";
    // FindCoordinator creates __consumer_offsets; then the coordinator loads its partition.
    let mut fc = FindCoordinatorRequest::default();
    fc.key = group.into();
    wait_until("group coordinator", Duration::from_secs(60), || {
        let r: FindCoordinatorResponse = conn.request(ApiKey::FindCoordinator, 3, &fc).ok()?;
        (r.error_code == 0).then_some(())
    });
    let offsets_partition = partition_for(group, offsets_partitions(&b));
    let code = wait_until("TxnOffsetCommit accepted", Duration::from_secs(60), || {
        let c = txn_offset_commit(&mut conn, group, pid, epoch, 5);
        (!matches!(c, 14..=16)).then_some(c)
    });
    assert_eq!(code, 0);
    assert_eq!(
        offset_fetch(&mut conn, group, false),
        (-1, 0),
        "pending: not visible"
    );
    assert_eq!(
        offset_fetch(&mut conn, group, true),
        (-1, 88),
        "UNSTABLE_OFFSET_COMMIT"
    );
    let offsets_tp = [("__consumer_offsets", offsets_partition)];
    assert_eq!(
        write_marker(&mut conn, pid, epoch, true, 0, &offsets_tp),
        vec![("__consumer_offsets".to_string(), offsets_partition, 0)]
    );
    assert_eq!(offset_fetch(&mut conn, group, true), (5, 0), "committed");

    // Aborted: the earlier offset stays.
    assert_eq!(txn_offset_commit(&mut conn, group, pid, epoch, 9), 0);
    assert_eq!(
        write_marker(&mut conn, pid, epoch, false, 0, &offsets_tp)[0].2,
        0
    );
    assert_eq!(offset_fetch(&mut conn, group, true), (5, 0), "aborted");

    // Open across a restart: the reload keeps it pending until its marker.
    assert_eq!(txn_offset_commit(&mut conn, group, pid, epoch, 12), 0);
    drop(conn);
    let status = cluster.broker(1).stop(Duration::from_secs(60)).unwrap();
    assert!(status.success(), "clean shutdown: {status}");
    cluster.broker(1).start().unwrap();
    let mut conn = wire::Conn::connect(&cluster.brokers[0].addr()).unwrap();
    assert_eq!(
        offset_fetch_ready(&mut conn, group, true),
        (-1, 88),
        "still pending after load"
    );
    assert_eq!(offset_fetch(&mut conn, group, false), (5, 0));
    let res = wait_until("marker after restart", Duration::from_secs(60), || {
        let r = write_marker(&mut conn, pid, epoch, true, 0, &offsets_tp);
        (r[0].2 != 6 && r[0].2 != 3).then_some(r)
    });
    assert_eq!(res[0].2, 0);
    assert_eq!(offset_fetch(&mut conn, group, true), (12, 0));
    cluster.finish();
}

#[test]
fn txn_leader_followers_and_unverifiable_producers() {
    use crate::cluster::{leader_of, wait_isr};
    use kafka_protocol::messages::TransactionalId;
    // Kafka's default: transactional batches are verified with the transaction coordinator.
    let cluster = Cluster::builder("txnfollow").brokers(2).start();
    cluster.wait_registered(Duration::from_secs(60));
    let b = cluster.bootstrap();
    create_topic(&b, "tf", 1, 2, &[]);
    wait_isr(&cluster, "tf", 2, Duration::from_secs(60));
    let leader = leader_of(&cluster, "tf");
    let addr_of = |want_leader: bool| {
        cluster
            .brokers
            .iter()
            .find(|x| (x.id == Some(leader)) == want_leader)
            .unwrap()
            .addr()
    };
    let mut lc = wire::Conn::connect(&addr_of(true)).unwrap();
    let mut fc = wire::Conn::connect(&addr_of(false)).unwrap();
    let (pid, epoch) = init_producer_id(&mut lc);

    // A transactional producer whose coordinator is unknown (no __transaction_state): the
    // retriable NOT_ENOUGH_REPLICAS, nothing written.
    let mut p = PartitionProduceData::default();
    p.index = 0;
    p.records = Some(txn_batch(pid, epoch, 0, &["v0"]));
    let mut t = TopicProduceData::default();
    t.name = TopicName("tf".into());
    t.partition_data = vec![p];
    let mut req = ProduceRequest::default();
    req.acks = -1;
    req.timeout_ms = 30_000;
    req.transactional_id = Some(TransactionalId("no-coordinator".into()));
    req.topic_data = vec![t];
    let resp: ProduceResponse = lc.request(ApiKey::Produce, 11, &req).unwrap();
    assert_eq!(resp.responses[0].partition_responses[0].error_code, 19);
    assert_eq!(latest(&mut lc, "tf", 0), 0);

    // Without a transactional id, transactional records are refused before anything else, as
    // Kafka 3.9's handleProduceRequest does (with or without an authorizer).
    assert_eq!(
        produce_as(
            &mut lc,
            None,
            "tf",
            0,
            txn_batch(pid, epoch, 0, &["v0", "v1"])
        ),
        (53, -1),
        "TRANSACTIONAL_ID_AUTHORIZATION_FAILED"
    );
    assert_eq!(latest(&mut lc, "tf", 0), 0);
    // Only the leader writes markers (a marker needs no open transaction).
    assert_eq!(
        write_marker(&mut fc, pid, epoch, true, 0, &[("tf", 0)]),
        vec![("tf".to_string(), 0, 6)],
        "NOT_LEADER_OR_FOLLOWER"
    );
    assert_eq!(
        write_marker(&mut lc, pid, epoch, true, 0, &[("tf", 0)]),
        vec![("tf".to_string(), 0, 0)]
    );
    assert_eq!(latest(&mut lc, "tf", 1), 1, "the marker takes an offset");
    assert_eq!(latest(&mut lc, "tf", 0), 1);
    cluster.finish();
}

/// InitProducerId v4 for a transactional id, once its coordinator is up: (pid, epoch).
fn init_transactional(conn: &mut wire::Conn, id: &str) -> (i64, i16) {
    use kafka_protocol::messages::TransactionalId;
    let mut req = InitProducerIdRequest::default();
    req.transactional_id = Some(TransactionalId(id.to_string().into()));
    req.transaction_timeout_ms = 60_000;
    req.producer_id = ProducerId(-1);
    req.producer_epoch = -1;
    let r: InitProducerIdResponse = wait_until(
        "transactional InitProducerId",
        Duration::from_secs(60),
        || {
            let r: InitProducerIdResponse = conn.request(ApiKey::InitProducerId, 4, &req).ok()?;
            (r.error_code == 0).then_some(r)
        },
    );
    (r.producer_id.0, r.producer_epoch)
}

#[test]
fn txn_produce_is_verified_with_the_coordinator() {
    use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
    use kafka_protocol::messages::{
        AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, EndTxnRequest, EndTxnResponse,
        FindCoordinatorRequest, FindCoordinatorResponse, TransactionalId,
    };
    // Kafka's default: transaction.partition.verification.enable=true.
    let cluster = Cluster::builder("txnverify").brokers(1).start();
    let b = cluster.bootstrap();
    create_topic(&b, "tv", 2, 1, &[]);
    let mut conn = wire::Conn::connect(&cluster.brokers[0].addr()).unwrap();
    let id = "verified-tx";
    let mut fc = FindCoordinatorRequest::default();
    fc.key = id.into();
    fc.key_type = 1;
    wait_until("transaction coordinator", Duration::from_secs(60), || {
        let r: FindCoordinatorResponse = conn.request(ApiKey::FindCoordinator, 3, &fc).ok()?;
        (r.error_code == 0).then_some(())
    });
    let (pid, epoch) = init_transactional(&mut conn, id);
    let produce_v = |conn: &mut wire::Conn, version: i16, partition: i32, seq: i32| -> i16 {
        let mut p = PartitionProduceData::default();
        p.index = partition;
        p.records = Some(txn_batch(pid, epoch, seq, &["x"]));
        let mut t = TopicProduceData::default();
        t.name = TopicName("tv".into());
        t.partition_data = vec![p];
        let mut req = ProduceRequest::default();
        req.acks = -1;
        req.timeout_ms = 30_000;
        req.transactional_id = Some(TransactionalId(id.into()));
        req.topic_data = vec![t];
        let r: ProduceResponse = conn.request(ApiKey::Produce, version, &req).unwrap();
        r.responses[0].partition_responses[0].error_code
    };
    // Not added to the transaction: TRANSACTION_ABORTABLE from v11, INVALID_TXN_STATE before.
    assert_eq!(produce_v(&mut conn, 11, 0, 0), 120);
    assert_eq!(produce_v(&mut conn, 9, 0, 0), 48);
    assert_eq!(latest(&mut conn, "tv", 0), 0, "nothing written");
    let mut add = AddPartitionsToTxnRequest::default();
    add.v3_and_below_transactional_id = TransactionalId(id.into());
    add.v3_and_below_producer_id = ProducerId(pid);
    add.v3_and_below_producer_epoch = epoch;
    let mut at = AddPartitionsToTxnTopic::default();
    at.name = TopicName("tv".into());
    at.partitions = vec![0];
    add.v3_and_below_topics = vec![at];
    let r: AddPartitionsToTxnResponse = conn.request(ApiKey::AddPartitionsToTxn, 3, &add).unwrap();
    assert_eq!(
        r.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code,
        0
    );
    assert_eq!(produce_v(&mut conn, 11, 0, 0), 0, "verified");
    assert_eq!(
        produce_v(&mut conn, 11, 0, 1),
        0,
        "open transaction: no new verification"
    );
    assert_eq!(
        produce_v(&mut conn, 11, 1, 0),
        120,
        "partition 1 was not added"
    );
    let mut end = EndTxnRequest::default();
    end.transactional_id = TransactionalId(id.into());
    end.producer_id = ProducerId(pid);
    end.producer_epoch = epoch;
    end.committed = true;
    let r: EndTxnResponse = conn.request(ApiKey::EndTxn, 3, &end).unwrap();
    assert_eq!(r.error_code, 0);
    wait_until("commit marker", Duration::from_secs(60), || {
        (latest(&mut conn, "tv", 1) == 3).then_some(())
    });
    cluster.finish();
}

#[test]
fn txn_librdkafka_consume_transform_produce_commits_group_offsets() {
    let cluster = Cluster::single("txneos");
    let b = cluster.bootstrap();
    create_topic(&b, "eos-in", 1, 1, &[]);
    create_topic(&b, "eos-out", 1, 1, &[]);
    let out = clients::python(
        "txn_eos.py",
        &[b.clone(), "eos-in".into(), "eos-out".into()],
        Duration::from_secs(180),
    )
    .unwrap();
    assert_eq!(out["got"], 10);
    assert_eq!(
        out["committed"], 10,
        "offsets committed with the transaction"
    );
    cluster.finish();
}
