//! CreateTopics / CreatePartitions / DeleteTopics against a real ZooKeeper and a real broker
//! (with its controller), in process.

use std::collections::HashMap;
use std::time::Duration;

use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use samsa_broker::broker::Broker;
use samsa_common::client::KafkaClient;
use samsa_common::config::BrokerConfig;
use samsa_common::zk::session::{ZkConfig, ZkSession};
use samsa_common::zk::testing::TestZk;
use samsa_common::zk::znodes::TopicZNode;

fn topic(name: &str, partitions: i32, rf: i16) -> CreatableTopic {
    let mut t = CreatableTopic::default();
    t.name = TopicName(StrBytes::from_string(name.to_string()));
    t.num_partitions = partitions;
    t.replication_factor = rf;
    t
}

async fn wait_until<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !f().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn create_partitions_delete_via_controller() {
    let zkd = TestZk::start();
    let dir = tempfile::tempdir().expect("tmp");
    let mut p = HashMap::new();
    p.insert(
        "zookeeper.connect".to_string(),
        zkd.connect_string_with_chroot("/t"),
    );
    p.insert("broker.id".to_string(), "1".to_string());
    p.insert(
        "listeners".to_string(),
        "PLAINTEXT://127.0.0.1:0".to_string(),
    );
    p.insert("log.dirs".to_string(), dir.path().display().to_string());
    p.insert(
        "zookeeper.session.timeout.ms".to_string(),
        "6000".to_string(),
    );
    let cfg = BrokerConfig::from_props(&p).expect("config");
    let broker = Broker::start(cfg).await.expect("start");
    let addr = broker.addr("PLAINTEXT").expect("addr").to_string();
    let ctx = broker.ctx.clone();
    wait_until("controller elected", || {
        let ctx = ctx.clone();
        async move { ctx.controller.is_active() }
    })
    .await;
    // CreateTopics assigns over the live brokers of the metadata cache (as Kafka does).
    wait_until("UpdateMetadata with our broker", || {
        let ctx = ctx.clone();
        async move { ctx.metadata_cache.snapshot().is_alive(1) }
    })
    .await;
    let zk = ZkSession::connect(&ZkConfig::new(
        zkd.connect_string_with_chroot("/t"),
        Duration::from_secs(6),
    ))
    .await
    .expect("zk");
    let client = KafkaClient::connect(&addr).await.expect("client");

    // Create: znodes written, v3 topic znode with an id, response NONE once leaders exist.
    let mut req = CreateTopicsRequest::default();
    req.timeout_ms = 20_000;
    req.topics = vec![
        topic("t1", 3, 1),
        topic("bad name", 1, 1),
        topic("big-rf", 1, 3),
        topic("dup", 1, 1),
        topic("dup", 1, 1),
    ];
    let resp = client.send(&req, 7).await.expect("create");
    let by_name: HashMap<String, (i16, i32)> = resp
        .topics
        .iter()
        .map(|t| {
            (
                t.name.0.as_str().to_string(),
                (t.error_code, t.num_partitions),
            )
        })
        .collect();
    assert_eq!(by_name["bad name"].0, 17, "{resp:?}");
    assert_eq!(by_name["big-rf"].0, 38);
    assert_eq!(by_name["dup"].0, 42);
    let (raw, _) = zk
        .get("/brokers/topics/t1")
        .await
        .expect("g")
        .expect("t1 znode");
    let z = TopicZNode::decode("t1", &raw).expect("decode");
    assert_eq!(z.partitions.len(), 3);
    assert!(z.topic_id.is_some());
    assert!(zk.exists("/config/topics/t1").await.expect("e").is_some());
    // With a working LeaderAndIsr/UpdateMetadata path the create completes; otherwise it times out.
    assert!(
        by_name["t1"].0 == 0 || by_name["t1"].0 == 7,
        "t1: {:?}",
        by_name["t1"]
    );
    if by_name["t1"].0 == 0 {
        assert_eq!(by_name["t1"].1, 3);
        let t1 = resp
            .topics
            .iter()
            .find(|t| t.name.0.as_str() == "t1")
            .expect("t1");
        assert_eq!(Some(t1.topic_id), z.topic_id);
    }

    // Again: TOPIC_ALREADY_EXISTS (from ZooKeeper or the cache); validate_only writes nothing.
    let mut again = CreateTopicsRequest::default();
    again.timeout_ms = 5_000;
    again.topics = vec![topic("t1", 1, 1)];
    let r = client.send(&again, 5).await.expect("again");
    assert_eq!(r.topics[0].error_code, 36);
    let mut vo = CreateTopicsRequest::default();
    vo.validate_only = true;
    vo.topics = vec![topic("only-validated", 2, 1)];
    let r = client.send(&vo, 4).await.expect("validate only");
    assert_eq!(r.topics[0].error_code, 0);
    assert!(zk
        .exists("/brokers/topics/only-validated")
        .await
        .expect("e")
        .is_none());

    // CreatePartitions: 3 → 5 rewrites the topic znode keeping the id; decrease is refused.
    let mut cp = CreatePartitionsRequest::default();
    cp.timeout_ms = 10_000;
    let mut t = CreatePartitionsTopic::default();
    t.name = TopicName(StrBytes::from_static_str("t1"));
    t.count = 5;
    t.assignments = None;
    let mut t2 = CreatePartitionsTopic::default();
    t2.name = TopicName(StrBytes::from_static_str("nosuch"));
    t2.count = 5;
    t2.assignments = None;
    cp.topics = vec![t, t2];
    let r = client.send(&cp, 3).await.expect("create partitions");
    assert!(
        r.results[0].error_code == 0 || r.results[0].error_code == 7,
        "{r:?}"
    );
    assert_eq!(r.results[1].error_code, 3);
    let (z2, _) = zk.get_topic("t1").await.expect("g").expect("t1");
    assert_eq!(z2.partitions.len(), 5);
    assert_eq!(z2.topic_id, z.topic_id);
    let mut dec = CreatePartitionsRequest::default();
    let mut t = CreatePartitionsTopic::default();
    t.name = TopicName(StrBytes::from_static_str("t1"));
    t.count = 2;
    t.assignments = None;
    dec.topics = vec![t];
    let r = client.send(&dec, 3).await.expect("decrease");
    assert_eq!(r.results[0].error_code, 37);

    // DeleteTopics: marks the topic; the controller then deletes the znodes.
    if ctx.metadata_cache.snapshot().contains_topic("t1") {
        let mut del = DeleteTopicsRequest::default();
        del.timeout_ms = 10_000;
        del.topic_names = vec![
            TopicName(StrBytes::from_static_str("t1")),
            TopicName(StrBytes::from_static_str("nosuch")),
        ];
        let r = client.send(&del, 5).await.expect("delete");
        assert!(
            r.responses[0].error_code == 0 || r.responses[0].error_code == 7,
            "{r:?}"
        );
        assert_eq!(r.responses[1].error_code, 3);
    }

    broker.shutdown().await.expect("shutdown");
}
