//! The transaction coordinator end to end: the Java 3.9.1 transactional producer (commit,
//! abort, fencing by a second producer with the same transactional id) against 3 brokers with
//! read_committed consumers, and coordinator-only flows with raw requests (InitProducerId
//! with a transactional id, AddPartitionsToTxn add and verify, EndTxn, Describe/ListTransactions,
//! markers reaching the partition leaders, failover to a new coordinator).

#![allow(clippy::field_reassign_with_default)]

use std::time::Duration;

use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, ApiKey, DescribeTransactionsRequest,
    DescribeTransactionsResponse, EndTxnRequest, EndTxnResponse, FindCoordinatorRequest,
    FindCoordinatorResponse, InitProducerIdRequest, InitProducerIdResponse,
    ListTransactionsRequest, ListTransactionsResponse, ProducerId, TopicName, TransactionalId,
};
use samsa_integration_tests::{clients, wait_until, wire, Cluster};

use crate::common::create_topic;

const T: Duration = Duration::from_secs(120);

fn txn_id(s: &str) -> TransactionalId {
    TransactionalId(s.to_string().into())
}

/// The broker id coordinating `id`, from FindCoordinator (key type 1) on `addr`.
pub(crate) fn find_coordinator(addr: &str, id: &str) -> i32 {
    wait_until("FindCoordinator for a transactional id", T, || {
        let mut c = wire::Conn::connect(addr).ok()?;
        let mut req = FindCoordinatorRequest::default();
        req.key = id.to_string().into();
        req.key_type = 1;
        let r: FindCoordinatorResponse = c.request(ApiKey::FindCoordinator, 3, &req).ok()?;
        (r.error_code == 0).then_some(r.node_id.0)
    })
}

pub(crate) fn addr_of(cluster: &Cluster, id: i32) -> String {
    cluster
        .brokers
        .iter()
        .find(|b| b.id == Some(id))
        .map(|b| b.addr())
        .unwrap()
}

fn init(c: &mut wire::Conn, id: &str, timeout_ms: i32) -> InitProducerIdResponse {
    let mut req = InitProducerIdRequest::default();
    req.transactional_id = Some(txn_id(id));
    req.transaction_timeout_ms = timeout_ms;
    req.producer_id = ProducerId(-1);
    req.producer_epoch = -1;
    c.request(ApiKey::InitProducerId, 4, &req).unwrap()
}

fn end(c: &mut wire::Conn, id: &str, pid: i64, epoch: i16, commit: bool) -> i16 {
    let mut req = EndTxnRequest::default();
    req.transactional_id = txn_id(id);
    req.producer_id = ProducerId(pid);
    req.producer_epoch = epoch;
    req.committed = commit;
    let r: EndTxnResponse = c.request(ApiKey::EndTxn, 3, &req).unwrap();
    r.error_code
}

fn topics(parts: &[(&str, i32)]) -> Vec<AddPartitionsToTxnTopic> {
    let mut out: Vec<AddPartitionsToTxnTopic> = Vec::new();
    for (t, p) in parts {
        let mut x = AddPartitionsToTxnTopic::default();
        x.name = TopicName(t.to_string().into());
        x.partitions = vec![*p];
        out.push(x);
    }
    out
}

/// AddPartitionsToTxn v3: the per-partition codes.
fn add(c: &mut wire::Conn, id: &str, pid: i64, epoch: i16, parts: &[(&str, i32)]) -> Vec<i16> {
    let mut req = AddPartitionsToTxnRequest::default();
    req.v3_and_below_transactional_id = txn_id(id);
    req.v3_and_below_producer_id = ProducerId(pid);
    req.v3_and_below_producer_epoch = epoch;
    req.v3_and_below_topics = topics(parts);
    let r: AddPartitionsToTxnResponse = c.request(ApiKey::AddPartitionsToTxn, 3, &req).unwrap();
    r.results_by_topic_v3_and_below
        .iter()
        .flat_map(|t| {
            t.results_by_partition
                .iter()
                .map(|p| p.partition_error_code)
        })
        .collect()
}

/// AddPartitionsToTxn v4 VerifyOnly (what a partition leader sends): per-partition codes.
fn verify(c: &mut wire::Conn, id: &str, pid: i64, epoch: i16, parts: &[(&str, i32)]) -> Vec<i16> {
    let mut t = AddPartitionsToTxnTransaction::default();
    t.transactional_id = txn_id(id);
    t.producer_id = ProducerId(pid);
    t.producer_epoch = epoch;
    t.verify_only = true;
    t.topics = topics(parts);
    let mut req = AddPartitionsToTxnRequest::default();
    req.transactions = vec![t];
    let r: AddPartitionsToTxnResponse = c.request(ApiKey::AddPartitionsToTxn, 4, &req).unwrap();
    assert_eq!(r.results_by_transaction.len(), 1);
    r.results_by_transaction[0]
        .topic_results
        .iter()
        .flat_map(|t| {
            t.results_by_partition
                .iter()
                .map(|p| p.partition_error_code)
        })
        .collect()
}

/// DescribeTransactions of one id: (error, state, producer id, epoch, partition count).
fn describe(c: &mut wire::Conn, id: &str) -> (i16, String, i64, i16, usize) {
    let mut req = DescribeTransactionsRequest::default();
    req.transactional_ids = vec![txn_id(id)];
    let r: DescribeTransactionsResponse = c.request(ApiKey::DescribeTransactions, 0, &req).unwrap();
    let s = &r.transaction_states[0];
    (
        s.error_code,
        s.transaction_state.to_string(),
        s.producer_id.0,
        s.producer_epoch,
        s.topics.iter().map(|t| t.partitions.len()).sum(),
    )
}

fn list(c: &mut wire::Conn, states: &[&str], pids: &[i64]) -> ListTransactionsResponse {
    let mut req = ListTransactionsRequest::default();
    req.state_filters = states.iter().map(|s| s.to_string().into()).collect();
    req.producer_id_filters = pids.iter().map(|p| ProducerId(*p)).collect();
    req.duration_filter = -1;
    c.request(ApiKey::ListTransactions, 1, &req).unwrap()
}

/// Latest offset of `topic`-`partition` from Metadata + ListOffsets via the Java-free rdkafka
/// path is overkill here: the leader's high watermark is read with ListOffsets v1.
fn latest_offset(addr: &str, topic: &str, partition: i32) -> i64 {
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
    let mut c = wire::Conn::connect(addr).unwrap();
    let mut p = ListOffsetsPartition::default();
    p.partition_index = partition;
    p.timestamp = -1;
    let mut t = ListOffsetsTopic::default();
    t.name = TopicName(topic.to_string().into());
    t.partitions = vec![p];
    let mut req = ListOffsetsRequest::default();
    req.replica_id = kafka_protocol::messages::BrokerId(-1);
    req.topics = vec![t];
    let r: ListOffsetsResponse = c.request(ApiKey::ListOffsets, 1, &req).unwrap();
    let p = &r.topics[0].partitions[0];
    if p.error_code != 0 {
        return -1;
    }
    p.offset
}

/// Any broker's answer for the leader of `topic`-`partition` (from ListOffsets succeeding).
fn leader_addr(cluster: &Cluster, topic: &str, partition: i32) -> String {
    wait_until("a leader answers ListOffsets", T, || {
        cluster
            .brokers
            .iter()
            .map(|b| b.addr())
            .find(|a| latest_offset(a, topic, partition) >= 0)
    })
}

#[test]
fn txn_coordinator_raw_requests_drive_states_and_markers() {
    let cluster = Cluster::builder("txnraw").brokers(3).start();
    cluster.wait_registered(T);
    let b = cluster.bootstrap();
    create_topic(&b, "rawt", 2, 3, &[]);
    let any = cluster.brokers[0].addr();
    let id = "raw-tx";
    let coord_id = find_coordinator(&any, id);
    let coord = addr_of(&cluster, coord_id);
    let other = cluster
        .brokers
        .iter()
        .find(|x| x.id != Some(coord_id))
        .unwrap()
        .addr();
    let mut c = wire::Conn::connect(&coord).unwrap();

    // Timeouts outside (0, transaction.max.timeout.ms].
    assert_eq!(init(&mut c, id, 0).error_code, 50);
    assert_eq!(init(&mut c, id, 900_001).error_code, 50);
    // Another broker is not the coordinator.
    let mut o = wire::Conn::connect(&other).unwrap();
    assert_eq!(init(&mut o, id, 60_000).error_code, 16);
    let r = wait_until("InitProducerId with a transactional id", T, || {
        let r = init(&mut c, id, 60_000);
        (r.error_code == 0).then_some(r)
    });
    let (pid, epoch) = (r.producer_id.0, r.producer_epoch);
    assert!(pid >= 0);
    assert_eq!(epoch, 0);
    // Bad input.
    assert_eq!(
        end(&mut c, id, pid, epoch, true),
        48,
        "EndTxn without a transaction"
    );
    assert_eq!(
        end(&mut c, id, pid + 1, epoch, true),
        49,
        "wrong producer id"
    );
    assert_eq!(end(&mut c, "never-seen", pid, epoch, true), 49);
    assert_eq!(add(&mut c, id, pid, epoch + 1, &[("rawt", 0)]), vec![90]);
    assert_eq!(
        add(&mut c, id, pid, epoch, &[("missing-topic", 0), ("rawt", 0)]),
        vec![3, 55]
    );
    assert_eq!(describe(&mut c, id).1, "Empty");

    // Add both partitions: Ongoing; the leader-side verification sees them.
    assert_eq!(
        add(&mut c, id, pid, epoch, &[("rawt", 0), ("rawt", 1)]),
        vec![0, 0]
    );
    let d = describe(&mut c, id);
    assert_eq!(
        (d.0, d.1.as_str(), d.2, d.3, d.4),
        (0, "Ongoing", pid, 0, 2)
    );
    let mut v4_only = wire::Conn::connect(&coord).unwrap();
    assert_eq!(
        verify(&mut v4_only, id, pid, epoch, &[("rawt", 0)]),
        vec![0]
    );
    assert_eq!(
        verify(&mut v4_only, id, pid, epoch + 1, &[("rawt", 0)]),
        vec![90]
    );
    let l = list(&mut c, &["Ongoing", "NoSuchState"], &[]);
    assert_eq!(l.error_code, 0);
    assert_eq!(l.unknown_state_filters.len(), 1);
    assert!(l
        .transaction_states
        .iter()
        .any(|s| s.transactional_id.0.as_str() == id));
    assert!(list(&mut c, &[], &[pid + 12345])
        .transaction_states
        .is_empty());

    // Abort: answered at once, markers written by both leaders, then CompleteAbort.
    let before: Vec<i64> = (0..2)
        .map(|p| latest_offset(&leader_addr(&cluster, "rawt", p), "rawt", p))
        .collect();
    assert_eq!(end(&mut c, id, pid, epoch, false), 0);
    wait_until("CompleteAbort", T, || {
        (describe(&mut c, id).1 == "CompleteAbort").then_some(())
    });
    for p in 0..2 {
        let leader = leader_addr(&cluster, "rawt", p);
        wait_until("an ABORT marker on each partition", T, || {
            (latest_offset(&leader, "rawt", p) == before[p as usize] + 1).then_some(())
        });
    }
    // Retried abort is fine, a commit now is not.
    assert_eq!(end(&mut c, id, pid, epoch, false), 0);
    assert_eq!(end(&mut c, id, pid, epoch, true), 48);
    assert_eq!(describe(&mut c, id).4, 0);
    // A verification after the transaction ended: not part of any transaction.
    assert_eq!(
        verify(&mut v4_only, id, pid, epoch, &[("rawt", 0)]),
        vec![120]
    );

    // Re-init bumps the epoch; an Ongoing transaction is fenced by the next InitProducerId.
    let r = init(&mut c, id, 60_000);
    assert_eq!(
        (r.error_code, r.producer_id.0, r.producer_epoch),
        (0, pid, 1)
    );
    assert_eq!(add(&mut c, id, pid, 1, &[("rawt", 1)]), vec![0]);
    assert_eq!(init(&mut c, id, 60_000).error_code, 51);
    let r = wait_until("InitProducerId after fencing", T, || {
        let r = init(&mut c, id, 60_000);
        (r.error_code == 0).then_some(r)
    });
    assert_eq!((r.producer_id.0, r.producer_epoch), (pid, 3));
    assert_eq!(
        end(&mut c, id, pid, 1, true),
        90,
        "the old producer is fenced"
    );
    cluster.finish();
}

#[test]
fn txn_coordinator_failover_keeps_open_transactions() {
    let mut cluster = Cluster::builder("txnfail").brokers(3).start();
    cluster.wait_registered(T);
    let b = cluster.bootstrap();
    create_topic(&b, "failt", 1, 3, &[]);
    let id = "failover-tx";
    let first = find_coordinator(&cluster.brokers[0].addr(), id);
    let mut c = wire::Conn::connect(&addr_of(&cluster, first)).unwrap();
    let r = wait_until("InitProducerId", T, || {
        let r = init(&mut c, id, 60_000);
        (r.error_code == 0).then_some(r)
    });
    let pid = r.producer_id.0;
    assert_eq!(add(&mut c, id, pid, 0, &[("failt", 0)]), vec![0]);
    drop(c);
    cluster.broker(first).kill9();
    // A surviving broker becomes the coordinator and loads the open transaction.
    let survivor = cluster
        .brokers
        .iter()
        .find(|x| x.id != Some(first))
        .unwrap()
        .addr();
    let next = wait_until("a new coordinator", T, || {
        let n = find_coordinator(&survivor, id);
        (n != first).then_some(n)
    });
    let mut c = wire::Conn::connect(&addr_of(&cluster, next)).unwrap();
    let d = wait_until("the open transaction is loaded", T, || {
        let d = describe(&mut c, id);
        (d.0 == 0).then_some(d)
    });
    assert_eq!((d.1.as_str(), d.2, d.3, d.4), ("Ongoing", pid, 0, 1));
    // Retriable answers (a reload after another leader-epoch bump) are retried, as clients do.
    wait_until("EndTxn commit accepted", T, || {
        matches!(end(&mut c, id, pid, 0, true), 0 | 51).then_some(())
    });
    wait_until("CompleteCommit on the new coordinator", T, || {
        (describe(&mut c, id).1 == "CompleteCommit").then_some(())
    });
    cluster.restart_killed(first).unwrap();
    cluster.finish();
}

#[test]
fn txn_java_producer_commit_abort_and_fencing() {
    let cluster = Cluster::builder("txnjava").brokers(3).start();
    cluster.wait_registered(T);
    let b = cluster.bootstrap();
    create_topic(&b, "jtx", 2, 3, &[]);
    let r = clients::java(
        "Transactions",
        &[b.clone(), "jtx".into(), "java-tx".into()],
        Duration::from_secs(300),
    )
    .unwrap();
    let strs = |k: &str| -> Vec<String> {
        r[k].as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        strs("committed"),
        ["0:c1-0", "0:c1-2", "0:c2-0", "0:p2-0", "1:c1-1", "1:c1-3", "1:c2-1", "1:p2-1"]
    );
    let unc = strs("uncommitted");
    for v in ["0:a-0", "1:a-3", "0:f-0", "1:f-1", "0:c1-0", "1:p2-1"] {
        assert!(unc.contains(&v.to_string()), "{v} missing from {unc:?}");
    }
    let fenced = r["fenced"].as_str().unwrap();
    assert!(
        fenced == "ProducerFencedException" || fenced == "InvalidProducerEpochException",
        "the first producer was not fenced: {fenced}"
    );
    let listed = r["list"].as_array().unwrap();
    assert!(
        listed
            .iter()
            .any(|t| t["id"] == "java-tx" && t["state"] == "CompleteCommit"),
        "{listed:?}"
    );
    assert_eq!(
        r["group_offset"], 3,
        "offsets sent with the transaction are committed"
    );
    assert_eq!(r["describe"]["state"], "CompleteCommit");
    assert_eq!(r["describe"]["partitions"], 0);
    cluster.finish();
}

#[test]
fn txn_coordinator_aborts_timed_out_transactions_and_expires_ids() {
    let cluster = Cluster::builder("txntimeout")
        .brokers(1)
        .prop(
            "transaction.abort.timed.out.transaction.cleanup.interval.ms",
            300,
        )
        .prop("transactional.id.expiration.ms", 3000)
        .prop(
            "transaction.remove.expired.transaction.cleanup.interval.ms",
            300,
        )
        .start();
    cluster.wait_registered(T);
    let b = cluster.bootstrap();
    create_topic(&b, "tot", 1, 1, &[]);
    let id = "timeout-tx";
    let addr = addr_of(&cluster, find_coordinator(&b, id));
    let mut c = wire::Conn::connect(&addr).unwrap();
    let r = wait_until("InitProducerId", T, || {
        let r = init(&mut c, id, 1000);
        (r.error_code == 0).then_some(r)
    });
    let pid = r.producer_id.0;
    assert_eq!(add(&mut c, id, pid, 0, &[("tot", 0)]), vec![0]);
    // Past its 1 s timeout the transaction is aborted with an epoch bump (fencing the producer).
    let d = wait_until("the timed-out transaction is aborted", T, || {
        let d = describe(&mut c, id);
        (d.1 == "CompleteAbort").then_some(d)
    });
    assert_eq!((d.2, d.3), (pid, 1));
    assert_eq!(end(&mut c, id, pid, 0, true), 90);
    assert_eq!(add(&mut c, id, pid, 0, &[("tot", 0)]), vec![90]);
    // Idle for transactional.id.expiration.ms: tombstoned and forgotten.
    wait_until("the transactional id expires", T, || {
        (describe(&mut c, id).0 == 105).then_some(())
    });
    assert_eq!(end(&mut c, id, pid, 1, false), 49);
    // A new InitProducerId starts afresh with a new producer id.
    let r = init(&mut c, id, 1000);
    assert_eq!((r.error_code, r.producer_epoch), (0, 0));
    assert_ne!(r.producer_id.0, pid);
    cluster.finish();
}

#[test]
fn txn_coordinator_bad_input_gets_error_codes() {
    let cluster = Cluster::builder("txnbad").brokers(1).start();
    cluster.wait_registered(T);
    let b = cluster.bootstrap();
    create_topic(&b, "badt", 1, 1, &[]);
    let addr = addr_of(&cluster, find_coordinator(&b, "bad-tx"));
    let mut c = wire::Conn::connect(&addr).unwrap();
    // An empty transactional id; a producer id without an epoch.
    assert_eq!(init(&mut c, "", 1000).error_code, 42);
    let mut req = InitProducerIdRequest::default();
    req.transactional_id = Some(txn_id("bad-tx"));
    req.transaction_timeout_ms = 1000;
    req.producer_id = ProducerId(5);
    req.producer_epoch = -1;
    let r: InitProducerIdResponse = c.request(ApiKey::InitProducerId, 4, &req).unwrap();
    assert_eq!(r.error_code, 42);
    // KIP-360 with a producer id the coordinator never gave out, for a new id: accepted
    // (the metadata was just created), as Kafka does.
    req.producer_epoch = 3;
    let r: InitProducerIdResponse = wait_until("InitProducerId", T, || {
        let r: InitProducerIdResponse = c.request(ApiKey::InitProducerId, 4, &req).ok()?;
        (r.error_code == 0).then_some(r)
    });
    let pid = r.producer_id.0;
    // ... but not once it exists with another id.
    let r: InitProducerIdResponse = c.request(ApiKey::InitProducerId, 4, &req).unwrap();
    assert_eq!(r.error_code, 90);
    req.producer_id = ProducerId(pid);
    req.producer_epoch = 0;
    let r: InitProducerIdResponse = c.request(ApiKey::InitProducerId, 3, &req).unwrap();
    assert_eq!((r.error_code, r.producer_epoch), (0, 1));
    // Below v4 PRODUCER_FENCED is INVALID_PRODUCER_EPOCH.
    req.producer_id = ProducerId(pid + 1000);
    let r: InitProducerIdResponse = c.request(ApiKey::InitProducerId, 3, &req).unwrap();
    assert_eq!(r.error_code, 47);
    // EndTxn / AddPartitionsToTxn for empty ids, negative partitions, empty batches.
    assert_eq!(end(&mut c, "", pid, 1, true), 42);
    assert_eq!(add(&mut c, "bad-tx", pid, 1, &[("badt", -1)]), vec![3]);
    assert_eq!(verify(&mut c, "", pid, 1, &[("badt", 0)]), vec![42]);
    let mut empty = AddPartitionsToTxnRequest::default();
    empty.transactions = vec![];
    let r: AddPartitionsToTxnResponse = c.request(ApiKey::AddPartitionsToTxn, 5, &empty).unwrap();
    assert!(r.results_by_transaction.is_empty());
    // Unknown transactional ids are not found; many at once are fine.
    let mut req = DescribeTransactionsRequest::default();
    req.transactional_ids = (0..200).map(|i| txn_id(&format!("nope-{i}"))).collect();
    let r: DescribeTransactionsResponse = c.request(ApiKey::DescribeTransactions, 0, &req).unwrap();
    assert_eq!(r.transaction_states.len(), 200);
    assert!(r
        .transaction_states
        .iter()
        .all(|s| s.error_code == 105 || s.error_code == 16));
    // Garbage bodies close the connection but leave the broker serving.
    for key in [24i16, 25, 26, 65, 66] {
        let mut g = wire::Conn::connect(&addr).unwrap();
        let mut frame = Vec::new();
        frame.extend_from_slice(&key.to_be_bytes());
        frame.extend_from_slice(&1i16.to_be_bytes());
        frame.extend_from_slice(&7i32.to_be_bytes());
        frame.extend_from_slice(&(-1i16).to_be_bytes());
        frame.extend_from_slice(&[0xff; 9]);
        let mut msg = (frame.len() as i32).to_be_bytes().to_vec();
        msg.extend_from_slice(&frame);
        g.send_raw(&msg).unwrap();
        let _ = g.read_frame();
    }
    assert_eq!(describe(&mut c, "bad-tx").1, "Empty");
    cluster.finish();
}

/// A transaction left in PrepareCommit (its only partition's leader is down, so no marker can be
/// written) survives the loss of its coordinator: the new coordinator loads it, keeps sending the
/// marker, and completes the commit once the leader is back.
#[test]
fn txn_coordinator_failover_finishes_prepared_commit() {
    let mut cluster = Cluster::builder("txnprep").brokers(3).start();
    cluster.wait_registered(T);
    let b = cluster.bootstrap();
    create_topic(&b, "prep", 1, 1, &[]);
    let data_leader = wait_until("a leader for prep-0", T, || {
        let l = crate::cluster::leader_of(&cluster, "prep");
        (l >= 0).then_some(l)
    });
    // A transactional id coordinated by another broker.
    let (id, coord) = (0..50)
        .map(|i| format!("prep-tx-{i}"))
        .find_map(|id| {
            let c = find_coordinator(&addr_of(&cluster, data_leader), &id);
            (c != data_leader).then_some((id, c))
        })
        .unwrap();
    let id = id.as_str();
    let mut c = wire::Conn::connect(&addr_of(&cluster, coord)).unwrap();
    let r = wait_until("InitProducerId", T, || {
        let r = init(&mut c, id, 60_000);
        (r.error_code == 0).then_some(r)
    });
    let pid = r.producer_id.0;
    assert_eq!(add(&mut c, id, pid, 0, &[("prep", 0)]), vec![0]);
    cluster.broker(data_leader).kill9();
    // The controller's ISR shrink after the kill bumps the leader epoch of the coordinator's
    // partition too, which reloads it (Kafka's onElection): a commit caught in that reload gets
    // a retriable error and is retried, as clients do; a retry of a written commit gets
    // CONCURRENT_TRANSACTIONS while its marker is pending.
    wait_until("EndTxn commit accepted", T, || {
        matches!(end(&mut c, id, pid, 0, true), 0 | 51).then_some(())
    });
    let d = wait_until("PrepareCommit", T, || {
        let d = describe(&mut c, id);
        (d.0 == 0).then_some(d)
    });
    assert_eq!(d.1, "PrepareCommit");
    assert_eq!(end(&mut c, id, pid, 0, true), 51, "markers still in flight");
    drop(c);
    cluster.broker(coord).kill9();
    let survivor = cluster
        .brokers
        .iter()
        .find(|x| x.id != Some(coord) && x.id != Some(data_leader))
        .unwrap();
    let survivor_id = survivor.id.unwrap();
    let survivor = survivor.addr();
    wait_until("the survivor coordinates the id", T, || {
        (find_coordinator(&survivor, id) == survivor_id).then_some(())
    });
    let mut c = wire::Conn::connect(&survivor).unwrap();
    let d = wait_until("the prepared transaction is loaded", T, || {
        let d = describe(&mut c, id);
        (d.0 == 0).then_some(d)
    });
    assert_eq!((d.1.as_str(), d.2, d.4), ("PrepareCommit", pid, 1));
    cluster.restart_killed(data_leader).unwrap();
    wait_until("the commit completes after the leader returns", T, || {
        (describe(&mut c, id).1 == "CompleteCommit").then_some(())
    });
    let leader = addr_of(&cluster, data_leader);
    wait_until("the COMMIT marker is in prep-0", T, || {
        (latest_offset(&leader, "prep", 0) == 1).then_some(())
    });
    cluster.restart_killed(coord).unwrap();
    cluster.finish();
}

/// librdkafka's transactional producer (rdkafka crate) commits and aborts; a read_committed
/// librdkafka consumer sees only the committed records.
#[test]
fn txn_librdkafka_producer_commit_and_abort() {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    use rdkafka::{Message, Offset, TopicPartitionList};

    let cluster = Cluster::builder("txnrdk").brokers(3).start();
    cluster.wait_registered(T);
    let b = cluster.bootstrap();
    create_topic(&b, "rdkt", 1, 3, &[]);
    let producer: BaseProducer = crate::common::client_config(&b)
        .set("transactional.id", "rdk-tx")
        .set("transaction.timeout.ms", "60000")
        .create()
        .unwrap();
    producer.init_transactions(T).unwrap();
    for (prefix, commit) in [("keep-a", true), ("drop", false), ("keep-b", true)] {
        producer.begin_transaction().unwrap();
        for i in 0..3 {
            let v = format!("{prefix}-{i}");
            producer
                .send(
                    BaseRecord::<(), String>::to("rdkt")
                        .partition(0)
                        .payload(&v),
                )
                .unwrap();
        }
        producer.flush(T).unwrap();
        if commit {
            producer.commit_transaction(T).unwrap();
        } else {
            producer.abort_transaction(T).unwrap();
        }
    }
    drop(producer);
    let consumer: BaseConsumer = crate::common::client_config(&b)
        .set("group.id", "rdk-tx-reader")
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("rdkt", 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let mut seen: Vec<String> = Vec::new();
    wait_until("committed records read back", T, || {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(300)) {
            seen.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
        }
        (seen.len() >= 6).then_some(())
    });
    // Nothing else arrives: the aborted records stay hidden.
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while std::time::Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            seen.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
        }
    }
    assert_eq!(
        seen,
        ["keep-a-0", "keep-a-1", "keep-a-2", "keep-b-0", "keep-b-1", "keep-b-2"]
    );
    cluster.finish();
}

/// confluent-kafka's transactional producer (Python) commits and aborts, with offsets sent to the
/// transaction; read_committed consumers (kafka-python, confluent-kafka) see only the committed
/// records, and the group's offset is the committed transaction's, not the aborted one's.
#[test]
fn txn_confluent_producer_send_offsets_and_python_read_committed() {
    let cluster = Cluster::builder("txnpy").brokers(3).start();
    cluster.wait_registered(T);
    let b = cluster.bootstrap();
    create_topic(&b, "pyt", 1, 3, &[]);
    create_topic(&b, "pysrc", 1, 3, &[]);
    let args: Vec<String> = [b.as_str(), "pyt", "pysrc", "py-eos-group", "py-tx"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let r = clients::python("txn_produce.py", &args, Duration::from_secs(300)).unwrap();
    assert_eq!(r["confluent_offset"], 3, "{r}");
    assert_eq!(r["kafka_python_offset"], 3, "{r}");
    let read = |lib: &str, isolation: &str| -> (Vec<(i64, String)>, i64) {
        let args: Vec<String> = [lib, b.as_str(), "pyt", isolation]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let out = clients::python("txn_consume.py", &args, Duration::from_secs(120)).unwrap();
        let recs = out["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["offset"].as_i64().unwrap(),
                    r["value"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        (recs, out["position"].as_i64().unwrap())
    };
    // c1-0..2 at 0..2, COMMIT at 3, a-0..2 at 4..6, ABORT at 7, c3-0..1 at 8..9, COMMIT at 10.
    let committed: Vec<(i64, String)> = [(0, "c1-0"), (1, "c1-1"), (2, "c1-2")]
        .into_iter()
        .chain([(8, "c3-0"), (9, "c3-1")])
        .map(|(o, v)| (o, v.to_string()))
        .collect();
    for lib in ["kafka-python", "confluent"] {
        assert_eq!(
            read(lib, "read_committed"),
            (committed.clone(), 11),
            "{lib} read_committed"
        );
        let (all, pos) = read(lib, "read_uncommitted");
        let offsets: Vec<i64> = all.iter().map(|(o, _)| *o).collect();
        assert_eq!(
            (offsets, pos),
            (vec![0, 1, 2, 4, 5, 6, 8, 9], 11),
            "{lib} read_uncommitted"
        );
    }
    cluster.finish();
}

/// The state of `id` from its coordinator (DescribeTransactions), once it answers without error.
fn state_of(cluster: &Cluster, id: &str) -> String {
    wait_until("DescribeTransactions from the coordinator", T, || {
        let coord = addr_of(cluster, find_coordinator(&cluster.brokers[0].addr(), id));
        let mut c = wire::Conn::connect(&coord).ok()?;
        let d = describe(&mut c, id);
        (d.0 == 0).then_some(d.1)
    })
}

/// A full cluster restart (all brokers SIGTERM, then started) with one transaction committed, one
/// aborted and one left open by a producer that died: afterwards read_committed sees only the
/// committed records, the open one is aborted by its timeout, and the Java Admin client's
/// ListTransactions and DescribeTransactions agree.
#[test]
fn txn_full_cluster_restart_keeps_transaction_states() {
    let mut cluster = Cluster::builder("txnrestart")
        .brokers(3)
        .prop("min.insync.replicas", 2)
        .prop(
            "transaction.abort.timed.out.transaction.cleanup.interval.ms",
            1000,
        )
        .start();
    cluster.wait_registered(T);
    let b = cluster.bootstrap();
    create_topic(&b, "rst", 1, 3, &[]);
    let prep: Vec<String> = ["prepare", b.as_str(), "rst", "20000"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let r = clients::java("TxnRestart", &prep, Duration::from_secs(300)).unwrap();
    assert_eq!(r["prepared"], true);
    assert_eq!(state_of(&cluster, "rs-commit"), "CompleteCommit");
    assert_eq!(state_of(&cluster, "rs-abort"), "CompleteAbort");
    assert_eq!(state_of(&cluster, "rs-open"), "Ongoing");
    for br in &mut cluster.brokers {
        let status = br.stop(Duration::from_secs(60)).unwrap();
        assert!(status.success(), "clean shutdown: {status}");
    }
    for br in &mut cluster.brokers {
        br.spawn().unwrap();
    }
    for br in &mut cluster.brokers {
        br.wait_ready(Duration::from_secs(60)).unwrap();
    }
    cluster.wait_registered(T);
    assert_eq!(state_of(&cluster, "rs-commit"), "CompleteCommit");
    assert_eq!(state_of(&cluster, "rs-abort"), "CompleteAbort");
    wait_until("the open transaction times out and is aborted", T, || {
        (state_of(&cluster, "rs-open") == "CompleteAbort").then_some(())
    });
    let args: Vec<String> = ["state", b.as_str(), "rst"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let s = clients::java("TxnRestart", &args, Duration::from_secs(300)).unwrap();
    let states = serde_json::json!({
        "rs-commit": "CompleteCommit", "rs-abort": "CompleteAbort", "rs-open": "CompleteAbort"
    });
    assert_eq!(s["list"], states, "{s}");
    assert_eq!(s["describe"], states, "{s}");
    assert_eq!(s["committed"], serde_json::json!(["c-0", "c-1", "c-2"]));
    // c-0..2, COMMIT, a-0..2, ABORT, o-0..1, ABORT (the timeout's).
    assert_eq!(s["lso"], 11);
    cluster.finish();
}
