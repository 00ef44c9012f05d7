//! In-process tests with a real ZooKeeper: DescribeConfigs / AlterConfigs /
//! IncrementalAlterConfigs / DescribeCluster / InitProducerId through the broker's
//! dispatch over TCP, using `samsa_common::client::KafkaClient`.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request as iac;
use kafka_protocol::messages::update_metadata_request::{
    UpdateMetadataBroker, UpdateMetadataEndpoint, UpdateMetadataPartitionState,
    UpdateMetadataTopicState,
};
use kafka_protocol::messages::{
    AlterConfigsRequest, BrokerId, DescribeClusterRequest, DescribeConfigsRequest,
    IncrementalAlterConfigsRequest, InitProducerIdRequest, TopicName, TransactionalId,
    UpdateMetadataRequest,
};
use kafka_protocol::protocol::StrBytes;
use samsa_broker::broker::BrokerContext;
use samsa_broker::dispatch::Dispatcher;
use samsa_broker::server::{self, ServerLimits};
use samsa_common::client::KafkaClient;
use samsa_common::config::BrokerConfig;
use samsa_common::zk::admin;
use samsa_common::zk::session::{ZkConfig, ZkSession};
use samsa_common::zk::testing::TestZk;
use samsa_common::zk::znodes::{ConfigEntityZNode, ProducerIdBlockZNode};
use tokio::sync::watch;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

struct Fixture {
    _zk_server: TestZk,
    zk: ZkSession,
    ctx: Arc<BrokerContext>,
    client: KafkaClient,
    _stop: watch::Sender<bool>,
}

async fn start() -> Fixture {
    let zk_server = TestZk::start();
    let zk = ZkSession::connect(&ZkConfig::new(
        zk_server.connect_string_with_chroot("/cfg"),
        Duration::from_secs(10),
    ))
    .await
    .unwrap();
    zk.create_top_level_paths().await.unwrap();
    let props = HashMap::from([
        ("broker.id".to_string(), "7".to_string()),
        ("zookeeper.connect".to_string(), zk_server.connect_string()),
        (
            "listeners".to_string(),
            "PLAINTEXT://127.0.0.1:0".to_string(),
        ),
        ("log.segment.bytes".to_string(), "1048576".to_string()),
        ("log.dirs".to_string(), "/tmp/samsa-cfg-unused".to_string()),
    ]);
    let config = Arc::new(BrokerConfig::from_props(&props).unwrap());
    let listeners = server::bind(&config.listeners).await.unwrap();
    let addr = listeners[0].local_addr().unwrap();
    let ctx = Arc::new(BrokerContext::new(config.clone(), config.listeners.clone()));
    ctx.set_zk(zk.clone());
    ctx.set_cluster_id("cid".into());
    let (tx, rx) = watch::channel(false);
    tokio::spawn(server::run(
        listeners,
        Arc::new(Dispatcher(ctx.clone())),
        ServerLimits::default(),
        rx,
    ));
    // Topic "t" exists in ZooKeeper and in the metadata cache.
    let assignment = BTreeMap::from([(0, vec![7])]);
    admin::create_topic_with_assignment(&zk, "t", &BTreeMap::new(), &assignment, true)
        .await
        .unwrap();
    let mut ep = UpdateMetadataEndpoint::default();
    ep.host = "127.0.0.1".into();
    ep.port = addr.port() as i32;
    ep.listener = "PLAINTEXT".into();
    let mut b = UpdateMetadataBroker::default();
    b.id = BrokerId(7);
    b.endpoints = vec![ep];
    let mut p = UpdateMetadataPartitionState::default();
    p.partition_index = 0;
    p.leader = BrokerId(7);
    p.isr = vec![BrokerId(7)];
    p.replicas = vec![BrokerId(7)];
    let mut ts = UpdateMetadataTopicState::default();
    ts.topic_name = TopicName("t".to_string().into());
    ts.topic_id = uuid::Uuid::new_v4();
    ts.partition_states = vec![p];
    let mut um = UpdateMetadataRequest::default();
    um.controller_id = BrokerId(7);
    um.controller_epoch = 1;
    um.live_brokers = vec![b];
    um.topic_states = vec![ts];
    ctx.metadata_cache.apply(&um, 7);

    let client = KafkaClient::connect(&addr.to_string()).await.unwrap();
    Fixture {
        _zk_server: zk_server,
        zk,
        ctx,
        client,
        _stop: tx,
    }
}

fn iac_op(name: &str, op: i8, value: Option<&str>) -> iac::AlterableConfig {
    let mut c = iac::AlterableConfig::default();
    c.name = s(name);
    c.config_operation = op;
    c.value = value.map(s);
    c
}

#[tokio::test]
async fn configs_cluster_and_producer_ids() {
    let f = start().await;

    // IncrementalAlterConfigs: SET + APPEND on the topic, written to ZooKeeper with a notification.
    let mut r = iac::AlterConfigsResource::default();
    r.resource_type = 2;
    r.resource_name = s("t");
    r.configs = vec![
        iac_op("retention.ms", 0, Some("1000")),
        iac_op("cleanup.policy", 2, Some("compact")),
    ];
    let mut req = IncrementalAlterConfigsRequest::default();
    req.resources = vec![r];
    let resp = f.client.send(&req, 1).await.unwrap();
    assert_eq!(
        resp.responses[0].error_code, 0,
        "{:?}",
        resp.responses[0].error_message
    );
    let (data, _) = f.zk.get("/config/topics/t").await.unwrap().unwrap();
    let cfg = ConfigEntityZNode::decode(&data).unwrap().config;
    assert_eq!(cfg.get("retention.ms").map(String::as_str), Some("1000"));
    assert_eq!(
        cfg.get("cleanup.policy").map(String::as_str),
        Some("delete,compact")
    );
    let changes = f.zk.children("/config/changes").await.unwrap().unwrap();
    assert_eq!(changes.len(), 1);
    let (n, _) =
        f.zk.get(&format!("/config/changes/{}", changes[0]))
            .await
            .unwrap()
            .unwrap();
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&n).unwrap(),
        serde_json::json!({"version":2,"entity_path":"topics/t"})
    );

    // AlterConfigs (full replace): bad value, unknown topic, read-only broker key.
    let alter = |rt: i8, name: &str, k: &str, v: &str| {
        let mut c = AlterableConfig::default();
        c.name = s(k);
        c.value = Some(s(v));
        let mut r = AlterConfigsResource::default();
        r.resource_type = rt;
        r.resource_name = s(name);
        r.configs = vec![c];
        let mut req = AlterConfigsRequest::default();
        req.resources = vec![r];
        req
    };
    let resp = f
        .client
        .send(&alter(2, "t", "retention.ms", "abc"), 2)
        .await
        .unwrap();
    assert_eq!(resp.responses[0].error_code, 40);
    let resp = f
        .client
        .send(&alter(2, "nope", "retention.ms", "1"), 1)
        .await
        .unwrap();
    assert_eq!(resp.responses[0].error_code, 3);
    let resp = f
        .client
        .send(&alter(4, "7", "broker.id", "8"), 0)
        .await
        .unwrap();
    assert_eq!(resp.responses[0].error_code, 42);
    assert_eq!(
        resp.responses[0].error_message.as_deref(),
        Some("Cannot update these configs dynamically: Set(broker.id)")
    );
    // Validate-only replaces nothing.
    let mut v = alter(2, "t", "segment.bytes", "2097152");
    v.validate_only = true;
    assert_eq!(
        f.client.send(&v, 2).await.unwrap().responses[0].error_code,
        0
    );
    let (data, _) = f.zk.get("/config/topics/t").await.unwrap().unwrap();
    assert!(!ConfigEntityZNode::decode(&data)
        .unwrap()
        .config
        .contains_key("segment.bytes"));

    // DescribeConfigs: overrides are TOPIC_CONFIG, broker static values show as synonyms.
    for version in 0..=4 {
        let mut dr = DescribeConfigsResource::default();
        dr.resource_type = 2;
        dr.resource_name = s("t");
        dr.configuration_keys = None;
        let mut req = DescribeConfigsRequest::default();
        req.resources = vec![dr];
        req.include_synonyms = version >= 1;
        let resp = f.client.send(&req, version).await.unwrap();
        let res = &resp.results[0];
        assert_eq!(res.error_code, 0);
        let get = |n: &str| res.configs.iter().find(|c| c.name.as_str() == n).unwrap();
        let rms = get("retention.ms");
        assert_eq!(rms.value.as_deref(), Some("1000"));
        let seg = get("segment.bytes");
        assert_eq!(seg.value.as_deref(), Some("1048576"));
        if version >= 1 {
            assert_eq!(rms.config_source, 1);
            assert_eq!(seg.config_source, 4);
            assert_eq!(seg.synonyms.len(), 2);
        } else {
            assert!(!rms.is_default);
        }
    }
    // Broker resource: this broker only.
    let mut dr = DescribeConfigsResource::default();
    dr.resource_type = 4;
    dr.resource_name = s("7");
    dr.configuration_keys = Some(vec![s("broker.id"), s("log.segment.bytes")]);
    let mut other = dr.clone();
    other.resource_name = s("8");
    let mut req = DescribeConfigsRequest::default();
    req.resources = vec![dr, other];
    let resp = f.client.send(&req, 4).await.unwrap();
    assert_eq!(resp.results[0].configs.len(), 2);
    assert_eq!(resp.results[1].error_code, 42);

    // DescribeCluster.
    let resp = f
        .client
        .send(&DescribeClusterRequest::default().with_endpoint_type(1), 1)
        .await
        .unwrap();
    assert_eq!(resp.error_code, 0);
    assert_eq!(resp.cluster_id.as_str(), "cid");
    assert_eq!(resp.controller_id, BrokerId(7));
    assert_eq!(resp.brokers.len(), 1);
    let resp = f
        .client
        .send(&DescribeClusterRequest::default().with_endpoint_type(2), 1)
        .await
        .unwrap();
    assert_eq!(resp.error_code, 119);

    // InitProducerId: ids from a block claimed in ZooKeeper.
    let req = InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(60000);
    let a = f.client.send(&req, 4).await.unwrap();
    let b = f.client.send(&req, 0).await.unwrap();
    assert_eq!((a.error_code, a.producer_id.0, a.producer_epoch), (0, 0, 0));
    assert_eq!((b.error_code, b.producer_id.0), (0, 1));
    let (data, _) = f.zk.get(ProducerIdBlockZNode::PATH).await.unwrap().unwrap();
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&data).unwrap(),
        serde_json::json!({"version":1,"broker":7,"block_start":"0","block_end":"999"})
    );
    let t = f
        .client
        .send(
            &req.clone()
                .with_transactional_id(Some(TransactionalId(s("")))),
            4,
        )
        .await
        .unwrap();
    assert_eq!(t.error_code, 42);
    // Running out of the block claims the next one (conditional update of the znode).
    let mut last = 1;
    for _ in 0..998 {
        last = f.ctx.producer_ids.generate(&f.zk, 7).await.unwrap();
    }
    assert_eq!(last, 999);
    assert_eq!(f.ctx.producer_ids.generate(&f.zk, 7).await.unwrap(), 1000);
    let (data, _) = f.zk.get(ProducerIdBlockZNode::PATH).await.unwrap().unwrap();
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&data).unwrap(),
        serde_json::json!({"version":1,"broker":7,"block_start":"1000","block_end":"1999"})
    );
}
