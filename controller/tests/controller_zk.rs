//! The controller against a real ZooKeeper (TestZk) and in-process stand-in brokers that
//! speak the Kafka control protocol on a local port and record what they receive.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, BufMut, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::leader_and_isr_response::{
    LeaderAndIsrPartitionError, LeaderAndIsrTopicError,
};
use kafka_protocol::messages::stop_replica_response::StopReplicaPartitionError;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable};
use samsa_common::types::TopicPartition;
use samsa_common::zk::session::{CreateMode, ZkConfig, ZkSession};
use samsa_common::zk::testing::TestZk;
use samsa_common::zk::znodes::*;
use samsa_controller::{ControllerConfig, ControllerHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Control requests a stand-in broker received.
#[derive(Default)]
struct Received {
    leader_and_isr: Vec<LeaderAndIsrRequest>,
    update_metadata: Vec<UpdateMetadataRequest>,
    stop_replica: Vec<StopReplicaRequest>,
    /// Partitions whose LeaderAndIsr is answered KAFKA_STORAGE_ERROR (an offline log dir).
    storage_errors: Vec<(String, i32)>,
}

type Log = Arc<Mutex<Received>>;

/// Accept connections and answer ApiVersions / LeaderAndIsr / UpdateMetadata / StopReplica
/// with success (LeaderAndIsr: KAFKA_STORAGE_ERROR for `storage_errors`), recording each request.
async fn stand_in_broker() -> (u16, Log) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let log: Log = Arc::default();
    let log2 = log.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let log = log2.clone();
            tokio::spawn(async move {
                loop {
                    let Ok(len) = sock.read_i32().await else {
                        return;
                    };
                    let mut buf = vec![0u8; len as usize];
                    if sock.read_exact(&mut buf).await.is_err() {
                        return;
                    }
                    let mut b = bytes::Bytes::from(buf);
                    let key = i16::from_be_bytes([b[0], b[1]]);
                    let version = i16::from_be_bytes([b[2], b[3]]);
                    let api = ApiKey::try_from(key).unwrap();
                    let hdr =
                        RequestHeader::decode(&mut b, api.request_header_version(version)).unwrap();
                    let mut out = BytesMut::new();
                    let mut rh = ResponseHeader::default();
                    rh.correlation_id = hdr.correlation_id;
                    rh.encode(&mut out, api.response_header_version(version))
                        .unwrap();
                    match api {
                        ApiKey::ApiVersions => {
                            let mut r = ApiVersionsResponse::default();
                            for (k, max) in [(4i16, 7i16), (5, 4), (6, 8)] {
                                let mut v = ApiVersion::default();
                                v.api_key = k;
                                v.max_version = max;
                                r.api_keys.push(v);
                            }
                            r.encode(&mut out, version).unwrap();
                        }
                        ApiKey::LeaderAndIsr => {
                            let req = LeaderAndIsrRequest::decode(&mut b, version).unwrap();
                            let mut r = LeaderAndIsrResponse::default();
                            for t in &req.topic_states {
                                let mut te = LeaderAndIsrTopicError::default();
                                te.topic_id = t.topic_id;
                                for p in &t.partition_states {
                                    let mut pe = LeaderAndIsrPartitionError::default();
                                    pe.partition_index = p.partition_index;
                                    let key = (t.topic_name.0.to_string(), p.partition_index);
                                    if log.lock().unwrap().storage_errors.contains(&key) {
                                        pe.error_code = 56;
                                    }
                                    te.partition_errors.push(pe);
                                }
                                r.topics.push(te);
                            }
                            r.encode(&mut out, version).unwrap();
                            log.lock().unwrap().leader_and_isr.push(req);
                        }
                        ApiKey::UpdateMetadata => {
                            let req = UpdateMetadataRequest::decode(&mut b, version).unwrap();
                            UpdateMetadataResponse::default()
                                .encode(&mut out, version)
                                .unwrap();
                            log.lock().unwrap().update_metadata.push(req);
                        }
                        ApiKey::StopReplica => {
                            let req = StopReplicaRequest::decode(&mut b, version).unwrap();
                            let mut r = StopReplicaResponse::default();
                            for t in &req.topic_states {
                                for p in &t.partition_states {
                                    let mut pe = StopReplicaPartitionError::default();
                                    pe.topic_name = t.topic_name.clone();
                                    pe.partition_index = p.partition_index;
                                    r.partition_errors.push(pe);
                                }
                            }
                            r.encode(&mut out, version).unwrap();
                            log.lock().unwrap().stop_replica.push(req);
                        }
                        other => panic!("unexpected request {other:?}"),
                    }
                    let _ = b.remaining();
                    let mut frame = BytesMut::new();
                    frame.put_i32(out.len() as i32);
                    frame.extend_from_slice(&out);
                    if sock.write_all(&frame).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, log)
}

async fn wait_for<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while !f().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn register(zk: &ZkSession, id: i32, port: u16) {
    let ep = EndPoint {
        listener_name: "PLAINTEXT".into(),
        host: "127.0.0.1".into(),
        port: port as i32,
        security_protocol: SecurityProtocol::Plaintext,
    };
    let info = BrokerInfo::new(id, vec![ep], None, -1);
    zk.create_checked_ephemeral(&info.path(), &info.encode(), None)
        .await
        .unwrap();
}

async fn session(zkd: &TestZk) -> ZkSession {
    let cfg = ZkConfig::new(
        zkd.connect_string_with_chroot("/kafka"),
        Duration::from_secs(6),
    );
    let zk = ZkSession::connect(&cfg).await.unwrap();
    zk.create_top_level_paths().await.unwrap();
    zk
}

async fn state(zk: &ZkSession, t: &str, p: i32) -> Option<(TopicPartitionStateZNode, i32)> {
    zk.get_partition_state(&TopicPartition::new(t, p))
        .await
        .unwrap()
}

fn start_controller(zk: &ZkSession, id: i32) -> ControllerHandle {
    let mut cfg = ControllerConfig::new(id);
    cfg.socket_timeout = Duration::from_secs(5);
    samsa_controller::spawn(zk.clone(), cfg)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_broker_cluster_end_to_end() {
    let zkd = TestZk::start();
    let zk = session(&zkd).await;
    let (port, log) = stand_in_broker().await;
    register(&zk, 1, port).await;
    let handle = start_controller(&zk, 1);

    // Election: /controller names us, epoch 1, /feature written.
    wait_for("active", || {
        let h = handle.clone();
        async move { h.is_active() }
    })
    .await;
    assert_eq!(zk.get_controller_id().await.unwrap(), Some(1));
    assert_eq!(
        zk.get_controller_epoch().await.unwrap().map(|e| e.0),
        Some(1)
    );
    let (feature, _) = zk.get(FeatureZNode::PATH).await.unwrap().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&feature).unwrap();
    assert_eq!(v, serde_json::json!({"version":2,"status":1,"features":{}}));
    // Brokers-only UpdateMetadata at failover.
    wait_for("initial UpdateMetadata", || {
        let log = log.clone();
        async move { !log.lock().unwrap().update_metadata.is_empty() }
    })
    .await;

    // A topic written by hand (old tools): topic id added, state created.
    zk.create(
        &TopicZNode::path("t1"),
        br#"{"version":1,"partitions":{"0":[1]}}"#,
        CreateMode::Persistent,
    )
    .await
    .unwrap();
    wait_for("t1-0 state", || {
        let zk = zk.clone();
        async move { state(&zk, "t1", 0).await.is_some() }
    })
    .await;
    let (s, v) = state(&zk, "t1", 0).await.unwrap();
    assert_eq!(
        (s.leader, s.leader_epoch, s.isr.clone(), s.controller_epoch),
        (1, 0, vec![1], 1)
    );
    assert_eq!(v, 0);
    let (topic, _) = zk.get_topic("t1").await.unwrap().unwrap();
    assert!(topic.topic_id.is_some());
    let (raw, _) = zk.get(&TopicZNode::path("t1")).await.unwrap().unwrap();
    let raw: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(raw["version"], 3);
    assert_eq!(raw["adding_replicas"], serde_json::json!({}));
    assert!(zk
        .get(&ConfigEntityZNode::path("topics", "t1"))
        .await
        .unwrap()
        .is_none());
    wait_for("LeaderAndIsr for t1-0", || {
        let log = log.clone();
        async move {
            log.lock().unwrap().leader_and_isr.iter().any(|r| {
                r.topic_states.iter().any(|t| {
                    t.topic_name.0.as_str() == "t1"
                        && t.topic_id == topic.topic_id.unwrap()
                        && t.partition_states.iter().any(|p| p.is_new && p.leader == 1)
                })
            }) && r_um_has(&log, "t1", 0)
        }
    })
    .await;

    // Partition added by an old tool rewriting the topic znode (v1, without the topic id).
    zk.set(
        &TopicZNode::path("t1"),
        br#"{"version":1,"partitions":{"0":[1],"1":[1]}}"#,
        None,
    )
    .await
    .unwrap();
    wait_for("t1-1 state", || {
        let zk = zk.clone();
        async move { state(&zk, "t1", 1).await.is_some() }
    })
    .await;
    let (t, _) = zk.get_topic("t1").await.unwrap().unwrap();
    assert_eq!(
        t.topic_id, topic.topic_id,
        "topic id restored, not replaced"
    );
    assert_eq!(t.partitions.len(), 2);

    // Deletion: StopReplica(delete, epoch -2), then all znodes go.
    zk.create(
        &ConfigEntityZNode::path("topics", "t1"),
        br#"{"version":1,"config":{}}"#,
        CreateMode::Persistent,
    )
    .await
    .unwrap();
    zk.create(
        &DeleteTopicsTopicZNode::path("t1"),
        b"",
        CreateMode::Persistent,
    )
    .await
    .unwrap();
    wait_for("t1 deleted", || {
        let zk = zk.clone();
        async move {
            zk.get(&TopicZNode::path("t1")).await.unwrap().is_none()
                && zk
                    .get(&DeleteTopicsTopicZNode::path("t1"))
                    .await
                    .unwrap()
                    .is_none()
                && zk
                    .get(&ConfigEntityZNode::path("topics", "t1"))
                    .await
                    .unwrap()
                    .is_none()
        }
    })
    .await;
    assert!(log
        .lock()
        .unwrap()
        .stop_replica
        .iter()
        .any(|r| r
            .topic_states
            .iter()
            .any(|t| t.topic_name.0.as_str() == "t1"
                && t.partition_states
                    .iter()
                    .all(|p| p.delete_partition && p.leader_epoch == -2))));
    // Unknown topic marker is just removed.
    zk.create(
        &DeleteTopicsTopicZNode::path("nosuch"),
        b"",
        CreateMode::Persistent,
    )
    .await
    .unwrap();
    wait_for("nosuch marker removed", || {
        let zk = zk.clone();
        async move {
            zk.get(&DeleteTopicsTopicZNode::path("nosuch"))
                .await
                .unwrap()
                .is_none()
        }
    })
    .await;

    // AllocateProducerIds: blocks of 1000 recorded in ZooKeeper; epochs checked.
    let e1 = broker_epoch(&zk, 1).await;
    assert_eq!(handle.allocate_producer_ids(1, e1).await, Ok((0, 1000)));
    assert_eq!(handle.allocate_producer_ids(1, e1).await, Ok((1000, 1000)));
    assert_eq!(handle.allocate_producer_ids(1, e1 + 1).await, Err(77));
    assert_eq!(handle.allocate_producer_ids(7, e1).await, Err(102));

    // Re-election after /controller is deleted: epoch +1.
    zk.delete(ControllerZNode::PATH, None).await.unwrap();
    wait_for("re-elected with epoch 2", || {
        let zk = zk.clone();
        async move {
            zk.get_controller_epoch().await.unwrap().map(|e| e.0) == Some(2)
                && zk.get_controller_id().await.unwrap() == Some(1)
        }
    })
    .await;
    wait_for("active again", || {
        let h = handle.clone();
        async move { h.is_active() && h.status().epoch == 2 }
    })
    .await;
    handle.shutdown().await;
}

fn r_um_has(log: &Log, topic: &str, p: i32) -> bool {
    log.lock().unwrap().update_metadata.iter().any(|r| {
        r.topic_states.iter().any(|t| {
            t.topic_name.0.as_str() == topic
                && t.partition_states.iter().any(|s| s.partition_index == p)
        })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_failure_moves_leadership_and_shrinks_isr() {
    let zkd = TestZk::start();
    let zk = session(&zkd).await;
    let (port1, _log1) = stand_in_broker().await;
    let (port2, _log2) = stand_in_broker().await;
    register(&zk, 1, port1).await;
    register(&zk, 2, port2).await;
    // Someone else holds /controller: we must not take over nor bump the epoch.
    zk.create(
        ControllerZNode::PATH,
        br#"{"version":1,"brokerid":99,"timestamp":"0"}"#,
        CreateMode::Ephemeral,
    )
    .await
    .unwrap();
    let handle = start_controller(&zk, 1);
    wait_for("sees controller 99", || {
        let h = handle.clone();
        async move { h.status().controller_id == Some(99) }
    })
    .await;
    assert!(!handle.is_active());
    assert!(zk.get_controller_epoch().await.unwrap().is_none());
    zk.delete(ControllerZNode::PATH, None).await.unwrap();
    wait_for("active", || {
        let h = handle.clone();
        async move { h.is_active() }
    })
    .await;

    zk.create(
        &TopicZNode::path("t"),
        br#"{"version":1,"partitions":{"0":[2,1],"1":[1,2],"2":[2]}}"#,
        CreateMode::Persistent,
    )
    .await
    .unwrap();
    wait_for("states", || {
        let zk = zk.clone();
        async move {
            state(&zk, "t", 0).await.is_some()
                && state(&zk, "t", 1).await.is_some()
                && state(&zk, "t", 2).await.is_some()
        }
    })
    .await;
    assert_eq!(state(&zk, "t", 0).await.unwrap().0.leader, 2);

    // Broker 2 dies.
    zk.delete(&BrokerIdZNode::path(2), None).await.unwrap();
    wait_for("t-0 led by 1", || {
        let zk = zk.clone();
        async move {
            let (s, _) = state(&zk, "t", 0).await.unwrap();
            s.leader == 1 && s.isr == vec![1] && s.leader_epoch == 1
        }
    })
    .await;
    // t-1: follower 2 removed from ISR, leader kept, epoch bumped.
    wait_for("t-1 isr shrunk", || {
        let zk = zk.clone();
        async move {
            let (s, _) = state(&zk, "t", 1).await.unwrap();
            s.leader == 1 && s.isr == vec![1] && s.leader_epoch == 1
        }
    })
    .await;
    // t-2: only replica gone → leader -1, ISR kept.
    wait_for("t-2 leaderless", || {
        let zk = zk.clone();
        async move {
            let (s, _) = state(&zk, "t", 2).await.unwrap();
            s.leader == -1 && s.isr == vec![2] && s.leader_epoch == 1
        }
    })
    .await;

    // Broker 2 returns: t-2 gets its leader back (offline election, 2 is in ISR).
    register(&zk, 2, port2).await;
    wait_for("t-2 led by 2", || {
        let zk = zk.clone();
        async move {
            let (s, _) = state(&zk, "t", 2).await.unwrap();
            s.leader == 2 && s.leader_epoch == 2
        }
    })
    .await;

    // Preferred election for t-0 ([2,1], led by 1, ISR [1]): 2 is not in ISR yet.
    let t0 = TopicPartition::new("t", 0);
    let r = handle
        .elect_leaders(Some(vec![t0.clone()]), 0)
        .await
        .unwrap();
    assert_eq!(r[0].error_code, 80);
    // Leader 1 reports broker 2 back in sync, then the election succeeds.
    let topic_id = zk
        .get_topic("t")
        .await
        .unwrap()
        .unwrap()
        .0
        .topic_id
        .unwrap();
    let (s, v) = state(&zk, "t", 0).await.unwrap();
    let e1 = broker_epoch(&zk, 1).await;
    let r = handle
        .alter_partition(
            alter_partition(topic_id, 1, e1, 0, s.leader_epoch, v, &[1, 2]),
            3,
        )
        .await;
    assert_eq!(r.topics[0].partitions[0].error_code, 0);
    let r = handle
        .elect_leaders(Some(vec![t0.clone()]), 0)
        .await
        .unwrap();
    assert_eq!(r[0].error_code, 0);
    assert_eq!(r[0].leader, Some(2));
    let (s2, _) = state(&zk, "t", 0).await.unwrap();
    assert_eq!((s2.leader, s2.leader_epoch), (2, s.leader_epoch + 1));
    let r = handle
        .elect_leaders(Some(vec![t0.clone()]), 0)
        .await
        .unwrap();
    assert_eq!(r[0].error_code, 84);
    // The legacy znode is consumed and deleted.
    zk.create(
        PreferredReplicaElectionZNode::PATH,
        br#"{"version":1,"partitions":[{"topic":"t","partition":0}]}"#,
        CreateMode::Persistent,
    )
    .await
    .unwrap();
    wait_for("preferred election znode deleted", || {
        let zk = zk.clone();
        async move {
            zk.get(PreferredReplicaElectionZNode::PATH)
                .await
                .unwrap()
                .is_none()
        }
    })
    .await;
    handle.shutdown().await;
}

async fn broker_epoch(zk: &ZkSession, id: i32) -> i64 {
    zk.get_broker(id).await.unwrap().unwrap().1
}

fn alter_partition(
    topic_id: uuid::Uuid,
    broker: i32,
    epoch: i64,
    partition: i32,
    leader_epoch: i32,
    partition_epoch: i32,
    isr: &[i32],
) -> AlterPartitionRequest {
    use kafka_protocol::messages::alter_partition_request::{
        BrokerState, PartitionData, TopicData,
    };
    let mut p = PartitionData::default();
    p.partition_index = partition;
    p.leader_epoch = leader_epoch;
    p.partition_epoch = partition_epoch;
    p.new_isr_with_epochs = isr
        .iter()
        .map(|b| {
            let mut s = BrokerState::default();
            s.broker_id = (*b).into();
            s.broker_epoch = -1;
            s
        })
        .collect();
    let mut t = TopicData::default();
    t.topic_id = topic_id;
    t.partitions.push(p);
    let mut r = AlterPartitionRequest::default();
    r.broker_id = broker.into();
    r.broker_epoch = epoch;
    r.topics.push(t);
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alter_partition_reassignment_and_controlled_shutdown() {
    let zkd = TestZk::start();
    let zk = session(&zkd).await;
    for id in 1..=3 {
        let (port, _log) = stand_in_broker().await;
        register(&zk, id, port).await;
    }
    let handle = start_controller(&zk, 1);
    wait_for("active", || {
        let h = handle.clone();
        async move { h.is_active() }
    })
    .await;
    zk.create(
        &TopicZNode::path("r"),
        br#"{"version":1,"partitions":{"0":[1,2],"1":[2,1]}}"#,
        CreateMode::Persistent,
    )
    .await
    .unwrap();
    wait_for("states", || {
        let zk = zk.clone();
        async move { state(&zk, "r", 0).await.is_some() && state(&zk, "r", 1).await.is_some() }
    })
    .await;
    let topic_id = zk
        .get_topic("r")
        .await
        .unwrap()
        .unwrap()
        .0
        .topic_id
        .unwrap();
    let e1 = broker_epoch(&zk, 1).await;

    // AlterPartition checks: stale broker epoch, fenced leader epoch, then a good shrink.
    let r = handle
        .alter_partition(alter_partition(topic_id, 1, e1 + 1, 0, 0, 0, &[1]), 3)
        .await;
    assert_eq!(r.error_code, 77);
    let r = handle
        .alter_partition(alter_partition(topic_id, 1, e1, 0, 5, 0, &[1]), 3)
        .await;
    assert_eq!(r.topics[0].partitions[0].error_code, 41);
    let r = handle
        .alter_partition(alter_partition(topic_id, 1, e1, 0, 0, 0, &[1]), 3)
        .await;
    assert_eq!(r.error_code, 0);
    let p = &r.topics[0].partitions[0];
    assert_eq!((p.error_code, p.partition_epoch, p.leader_epoch), (0, 1, 0));
    let (s, v) = state(&zk, "r", 0).await.unwrap();
    assert_eq!((s.isr.clone(), s.leader_epoch, v), (vec![1], 0, 1));
    // Same request again (idempotent) and a stale partition epoch.
    let r = handle
        .alter_partition(alter_partition(topic_id, 1, e1, 0, 0, 1, &[1]), 3)
        .await;
    assert_eq!(r.topics[0].partitions[0].error_code, 0);
    let r = handle
        .alter_partition(alter_partition(topic_id, 1, e1, 0, 0, 0, &[1, 2]), 3)
        .await;
    assert_eq!(r.topics[0].partitions[0].error_code, 95);
    // Grow back.
    let r = handle
        .alter_partition(alter_partition(topic_id, 1, e1, 0, 0, 1, &[1, 2]), 3)
        .await;
    assert_eq!(r.topics[0].partitions[0].error_code, 0);

    // Reassign r-0 [1,2] → [2,3] through the legacy znode.
    zk.create(
        ReassignPartitionsZNode::PATH,
        br#"{"version":1,"partitions":[{"topic":"r","partition":0,"replicas":[2,3]}]}"#,
        CreateMode::Persistent,
    )
    .await
    .unwrap();
    wait_for("reassignment in flight", || {
        let zk = zk.clone();
        async move {
            let (t, _) = zk.get_topic("r").await.unwrap().unwrap();
            t.partitions.get(&0) == Some(&vec![2, 3, 1])
                && t.adding_replicas.get(&0) == Some(&vec![3])
                && t.removing_replicas.get(&0) == Some(&vec![1])
        }
    })
    .await;
    let (s, v) = state(&zk, "r", 0).await.unwrap();
    assert_eq!(s.leader_epoch, 1);
    // The leader reports broker 3 caught up.
    let r = handle
        .alter_partition(alter_partition(topic_id, 1, e1, 0, 1, v, &[1, 2, 3]), 3)
        .await;
    assert_eq!(r.topics[0].partitions[0].error_code, 0);
    wait_for("reassignment complete", || {
        let zk = zk.clone();
        async move {
            let (t, _) = zk.get_topic("r").await.unwrap().unwrap();
            t.partitions.get(&0) == Some(&vec![2, 3])
                && t.adding_replicas.is_empty()
                && t.removing_replicas.is_empty()
                && zk
                    .get(ReassignPartitionsZNode::PATH)
                    .await
                    .unwrap()
                    .is_none()
        }
    })
    .await;
    let (s, _) = state(&zk, "r", 0).await.unwrap();
    assert!(s.leader == 2 || s.leader == 3, "{s:?}");
    assert!(!s.isr.contains(&1));

    // Controlled shutdown of broker 2 (leader of r-1 [2,1] and r-0 maybe).
    let e2 = broker_epoch(&zk, 2).await;
    let mut req = ControlledShutdownRequest::default();
    req.broker_id = 2.into();
    req.broker_epoch = e2;
    let resp = handle.controlled_shutdown(req, 3).await;
    assert_eq!(resp.error_code, 0);
    assert!(resp.remaining_partitions.is_empty(), "{resp:?}");
    let (s, _) = state(&zk, "r", 1).await.unwrap();
    assert_eq!((s.leader, s.isr.clone()), (1, vec![1]));
    let (s, _) = state(&zk, "r", 0).await.unwrap();
    assert_eq!(s.leader, 3);
    assert!(!s.isr.contains(&2));
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_expiry_resigns_and_new_session_reelects() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("samsa_controller=debug")
        .with_test_writer()
        .try_init();
    let zkd = TestZk::start();
    let zk = session(&zkd).await;
    let (port, _log) = stand_in_broker().await;
    register(&zk, 1, port).await;
    let handle = start_controller(&zk, 1);
    wait_for("active", || {
        let h = handle.clone();
        async move { h.is_active() }
    })
    .await;
    zkd.expire_session(&zk).await;
    wait_for("resigned after expiry", || {
        let h = handle.clone();
        async move { !h.is_active() }
    })
    .await;
    // The broker opens a new session, re-registers, and hands it over.
    let zk2 = session(&zkd).await;
    register(&zk2, 1, port).await;
    handle.session_renewed(zk2.clone());
    wait_for("re-elected on the new session", || {
        let h = handle.clone();
        async move { h.is_active() && h.status().epoch >= 2 }
    })
    .await;
    assert_eq!(zk2.get_controller_id().await.unwrap(), Some(1));
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_cleans_notifications_and_unclean_election_per_topic() {
    let zkd = TestZk::start();
    let zk = session(&zkd).await;
    let (port1, _l1) = stand_in_broker().await;
    let (port2, _l2) = stand_in_broker().await;
    register(&zk, 1, port1).await;
    register(&zk, 2, port2).await;
    // Leftover notifications and a partition whose only ISR member (2) is about to die.
    zk.create(
        &format!("{}/isr_change_0000000001", IsrChangeNotificationZNode::PATH),
        br#"{"version":1,"partitions":[{"topic":"u","partition":0}]}"#,
        CreateMode::Persistent,
    )
    .await
    .unwrap();
    zk.create(
        &format!(
            "{}/log_dir_event_0000000001",
            LogDirEventNotificationZNode::PATH
        ),
        br#"{"version":1,"broker":2,"event":1}"#,
        CreateMode::Persistent,
    )
    .await
    .unwrap();
    zk.create(
        &TopicZNode::path("u"),
        br#"{"version":1,"partitions":{"0":[2,1]}}"#,
        CreateMode::Persistent,
    )
    .await
    .unwrap();
    zk.create_recursive(
        &TopicPartitionStateZNode::path(&TopicPartition::new("u", 0)),
        br#"{"controller_epoch":0,"leader":2,"version":1,"leader_epoch":3,"isr":[2]}"#,
        CreateMode::Persistent,
    )
    .await
    .unwrap();
    let handle = start_controller(&zk, 1);
    wait_for("notifications deleted", || {
        let zk = zk.clone();
        async move {
            zk.children(IsrChangeNotificationZNode::PATH).await.unwrap() == Some(vec![])
                && zk
                    .children(LogDirEventNotificationZNode::PATH)
                    .await
                    .unwrap()
                    == Some(vec![])
        }
    })
    .await;
    // The existing state is kept (no re-initialisation), topic id added.
    let (s, _) = state(&zk, "u", 0).await.unwrap();
    assert_eq!((s.leader, s.leader_epoch), (2, 3));
    // Broker 2 dies: clean election impossible → leader -1, ISR [2].
    zk.delete(&BrokerIdZNode::path(2), None).await.unwrap();
    wait_for("u-0 leaderless", || {
        let zk = zk.clone();
        async move {
            let (s, _) = state(&zk, "u", 0).await.unwrap();
            s.leader == -1 && s.isr == vec![2]
        }
    })
    .await;
    // Unclean election enabled for the topic: 1 becomes leader, RECOVERING.
    zk.create(
        &ConfigEntityZNode::path("topics", "u"),
        br#"{"version":1,"config":{"unclean.leader.election.enable":"true"}}"#,
        CreateMode::Persistent,
    )
    .await
    .unwrap();
    handle.topic_config_changed();
    wait_for("u-0 unclean leader", || {
        let zk = zk.clone();
        async move {
            let (s, _) = state(&zk, "u", 0).await.unwrap();
            s.leader == 1 && s.isr == vec![1] && s.leader_recovery_state == 1
        }
    })
    .await;
    handle.shutdown().await;
}

/// Kafka's `processLogDirEventNotification` / `onBrokerLogDirFailure`: a log-dir event for broker
/// 2 makes the controller re-send LeaderAndIsr for every replica on 2; the one answering
/// KAFKA_STORAGE_ERROR is treated as offline (leadership moves to 1, 2 leaves the ISR, StopReplica
/// without deletion, OfflineReplicas in UpdateMetadata); the replica answering normally keeps its
/// place; the notification is deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_dir_event_moves_leadership_off_offline_replicas() {
    let zkd = TestZk::start();
    let zk = session(&zkd).await;
    let (port1, log1) = stand_in_broker().await;
    let (port2, log2) = stand_in_broker().await;
    register(&zk, 1, port1).await;
    register(&zk, 2, port2).await;
    let handle = start_controller(&zk, 1);
    wait_for("active", || {
        let h = handle.clone();
        async move { h.is_active() }
    })
    .await;
    zk.create(
        &TopicZNode::path("d"),
        br#"{"version":1,"partitions":{"0":[2,1],"1":[1,2]}}"#,
        CreateMode::Persistent,
    )
    .await
    .unwrap();
    wait_for("d-0 led by 2, d-1 led by 1, full ISRs", || {
        let zk = zk.clone();
        async move {
            let (Some((s0, _)), Some((s1, _))) =
                (state(&zk, "d", 0).await, state(&zk, "d", 1).await)
            else {
                return false;
            };
            s0.leader == 2 && s0.isr == vec![2, 1] && s1.leader == 1 && s1.isr == vec![1, 2]
        }
    })
    .await;
    let (before1, _) = state(&zk, "d", 1).await.unwrap();
    let lisr_before = log2.lock().unwrap().leader_and_isr.len();

    // Broker 2's dir holding d-0 fails; it reports through ZooKeeper.
    log2.lock().unwrap().storage_errors.push(("d".into(), 0));
    zk.create(
        &LogDirEventNotification::create_path(),
        &LogDirEventNotification {
            broker: 2,
            event: LogDirEventNotification::LOG_DIR_FAILURE,
        }
        .encode(),
        CreateMode::PersistentSequential,
    )
    .await
    .unwrap();

    wait_for("d-0 led by 1 without 2", || {
        let zk = zk.clone();
        async move {
            let (s, _) = state(&zk, "d", 0).await.unwrap();
            s.leader == 1 && s.isr == vec![1]
        }
    })
    .await;
    wait_for("notification deleted", || {
        let zk = zk.clone();
        async move {
            zk.children(LogDirEventNotificationZNode::PATH)
                .await
                .unwrap()
                .is_some_and(|c| c.is_empty())
        }
    })
    .await;
    // The probe: LeaderAndIsr for both of broker 2's replicas, at their current epochs.
    {
        let r = log2.lock().unwrap();
        let probed: Vec<i32> = r.leader_and_isr[lisr_before..]
            .iter()
            .flat_map(|req| req.topic_states.iter())
            .filter(|t| t.topic_name.0.as_str() == "d")
            .flat_map(|t| t.partition_states.iter().map(|p| p.partition_index))
            .collect();
        assert!(probed.contains(&0) && probed.contains(&1), "{probed:?}");
    }
    // d-1's replica on 2 answered normally: untouched.
    let (s1, _) = state(&zk, "d", 1).await.unwrap();
    assert_eq!(
        (s1.leader, s1.isr.clone(), s1.leader_epoch),
        (1, vec![1, 2], before1.leader_epoch)
    );
    // The offline replica is stopped without deletion.
    wait_for("StopReplica d-0 (no delete) to 2", || {
        let log2 = log2.clone();
        async move {
            log2.lock().unwrap().stop_replica.iter().any(|r| {
                r.topic_states.iter().any(|t| {
                    t.topic_name.0.as_str() == "d"
                        && t.partition_states
                            .iter()
                            .any(|p| p.partition_index == 0 && !p.delete_partition)
                })
            })
        }
    })
    .await;
    // Every broker learns that 2's replica of d-0 is offline.
    for log in [&log1, &log2] {
        wait_for("UpdateMetadata with d-0 offline replica 2", || {
            let log = (*log).clone();
            async move {
                log.lock().unwrap().update_metadata.iter().any(|r| {
                    r.topic_states.iter().any(|t| {
                        t.topic_name.0.as_str() == "d"
                            && t.partition_states.iter().any(|p| {
                                p.partition_index == 0
                                    && p.leader.0 == 1
                                    && p.offline_replicas.iter().map(|b| b.0).collect::<Vec<_>>()
                                        == vec![2]
                            })
                    })
                })
            }
        })
        .await;
    }
    handle.shutdown().await;
}

/// Shutting the active controller down gives `/controller` up at once, while its session is still
/// alive: the other brokers elect a new controller without waiting for the session to expire.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_gives_up_the_controller_znode_before_the_session_ends() {
    let zkd = TestZk::start();
    let zk = session(&zkd).await;
    let (port, _log) = stand_in_broker().await;
    register(&zk, 1, port).await;
    let handle = start_controller(&zk, 1);
    wait_for("active", || {
        let h = handle.clone();
        async move { h.is_active() }
    })
    .await;
    assert_eq!(zk.get_controller_id().await.unwrap(), Some(1));
    handle.shutdown().await;
    // The session that created the ephemeral is still open; the znode must be gone anyway.
    assert_eq!(zk.get_controller_id().await.unwrap(), None);
    let zk2 = session(&zkd).await;
    register(&zk2, 2, port).await;
    let other = start_controller(&zk2, 2);
    wait_for("broker 2 elected", || {
        let h = other.clone();
        async move { h.is_active() }
    })
    .await;
    assert_eq!(zk2.get_controller_id().await.unwrap(), Some(2));
    other.shutdown().await;
}
