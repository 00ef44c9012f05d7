//! In-process tests: UpdateMetadata installs the cluster view, Metadata answers
//! from it with the endpoints of the listener the client used, every version.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::update_metadata_request::{
    UpdateMetadataBroker, UpdateMetadataEndpoint, UpdateMetadataPartitionState,
    UpdateMetadataTopicState,
};
use kafka_protocol::messages::{
    ApiKey, BrokerId, MetadataRequest, MetadataResponse, RequestHeader, TopicName,
    UpdateMetadataRequest, UpdateMetadataResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion};
use samsa_broker::broker::BrokerContext;
use samsa_broker::dispatch::Dispatcher;
use samsa_broker::server::{self, ServerLimits};
use samsa_common::config::BrokerConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use uuid::Uuid;

struct Cluster {
    plaintext: std::net::SocketAddr,
    internal: std::net::SocketAddr,
    ctx: Arc<BrokerContext>,
    _stop: watch::Sender<bool>,
}

async fn start() -> Cluster {
    let props = HashMap::from([
        ("broker.id".to_string(), "1".to_string()),
        ("zookeeper.connect".to_string(), "127.0.0.1:1".to_string()),
        (
            "listeners".to_string(),
            "PLAINTEXT://127.0.0.1:0,INTERNAL://127.0.0.1:0".to_string(),
        ),
        (
            "listener.security.protocol.map".to_string(),
            "PLAINTEXT:PLAINTEXT,INTERNAL:PLAINTEXT".to_string(),
        ),
        (
            "inter.broker.listener.name".to_string(),
            "INTERNAL".to_string(),
        ),
        ("auto.create.topics.enable".to_string(), "false".to_string()),
        ("log.dirs".to_string(), "/tmp/samsa-net-unused".to_string()),
    ]);
    let config = Arc::new(BrokerConfig::from_props(&props).unwrap());
    let listeners = server::bind(&config.listeners).await.unwrap();
    let plaintext = listeners[0].local_addr().unwrap();
    let internal = listeners[1].local_addr().unwrap();
    let ctx = Arc::new(BrokerContext::new(config.clone(), config.listeners.clone()));
    ctx.set_broker_epoch(100);
    ctx.set_cluster_id("test-cluster-id".into());
    let (tx, rx) = watch::channel(false);
    tokio::spawn(server::run(
        listeners,
        Arc::new(Dispatcher(ctx.clone())),
        ServerLimits::default(),
        rx,
    ));
    Cluster {
        plaintext,
        internal,
        ctx,
        _stop: tx,
    }
}

async fn call<Req: Encodable + HeaderVersion, Resp: Decodable>(
    s: &mut TcpStream,
    key: ApiKey,
    version: i16,
    req: &Req,
) -> Resp {
    let mut h = RequestHeader::default();
    h.request_api_key = key as i16;
    h.request_api_version = version;
    h.correlation_id = 42;
    h.client_id = Some("t".into());
    let mut buf = BytesMut::new();
    h.encode(&mut buf, Req::header_version(version)).unwrap();
    req.encode(&mut buf, version).unwrap();
    let mut frame = (buf.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&buf);
    s.write_all(&frame).await.unwrap();
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await.unwrap();
    let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).await.unwrap();
    let mut b = Bytes::from(body);
    assert_eq!(b.get_i32(), 42);
    // Response header v1 (flexible) carries an empty tagged-field section.
    let flexible = key.response_header_version(version) >= 1;
    if flexible {
        assert_eq!(b.get_u8(), 0);
    }
    let r = Resp::decode(&mut b, version).unwrap();
    assert!(!b.has_remaining(), "{key:?} v{version}: trailing bytes");
    r
}

fn endpoint(listener: &str, port: i32) -> UpdateMetadataEndpoint {
    let mut e = UpdateMetadataEndpoint::default();
    e.host = "127.0.0.1".into();
    e.port = port;
    e.listener = listener.to_string().into();
    e.security_protocol = 0;
    e
}

fn update(controller_epoch: i32, broker_epoch: i64, topic_id: Uuid) -> UpdateMetadataRequest {
    let mut b1 = UpdateMetadataBroker::default();
    b1.id = BrokerId(1);
    b1.endpoints = vec![endpoint("PLAINTEXT", 9001), endpoint("INTERNAL", 9101)];
    b1.rack = Some("r1".into());
    // Broker 2 only has the INTERNAL listener.
    let mut b2 = UpdateMetadataBroker::default();
    b2.id = BrokerId(2);
    b2.endpoints = vec![endpoint("INTERNAL", 9102)];
    let mut p0 = UpdateMetadataPartitionState::default();
    p0.partition_index = 0;
    p0.controller_epoch = controller_epoch;
    p0.leader = BrokerId(1);
    p0.leader_epoch = 4;
    p0.isr = vec![BrokerId(1), BrokerId(2)];
    p0.replicas = vec![BrokerId(1), BrokerId(2)];
    let mut p1 = p0.clone();
    p1.partition_index = 1;
    p1.leader = BrokerId(2);
    let mut ts = UpdateMetadataTopicState::default();
    ts.topic_name = TopicName("orders".to_string().into());
    ts.topic_id = topic_id;
    ts.partition_states = vec![p0, p1];
    let mut r = UpdateMetadataRequest::default();
    r.controller_id = BrokerId(2);
    r.controller_epoch = controller_epoch;
    r.broker_epoch = broker_epoch;
    r.topic_states = vec![ts];
    r.live_brokers = vec![b1, b2];
    r
}

fn metadata_req(version: i16, topics: Option<Vec<&str>>) -> MetadataRequest {
    let mut r = MetadataRequest::default();
    r.topics = topics.map(|ts| {
        ts.into_iter()
            .map(|t| {
                let mut m = MetadataRequestTopic::default();
                m.name = Some(TopicName(t.to_string().into()));
                m
            })
            .collect()
    });
    if version == 0 && r.topics.is_none() {
        r.topics = Some(vec![]);
    }
    r.allow_auto_topic_creation = true;
    r
}

#[tokio::test]
async fn update_metadata_then_metadata_all_versions() {
    let c = start().await;
    let id = Uuid::new_v4();
    let mut ctl = TcpStream::connect(c.internal).await.unwrap();
    let r: UpdateMetadataResponse =
        call(&mut ctl, ApiKey::UpdateMetadata, 8, &update(5, 100, id)).await;
    assert_eq!(r.error_code, 0);

    // Stale broker epoch and stale controller epoch are refused.
    let r: UpdateMetadataResponse =
        call(&mut ctl, ApiKey::UpdateMetadata, 8, &update(5, 99, id)).await;
    assert_eq!(r.error_code, 77);
    let r: UpdateMetadataResponse =
        call(&mut ctl, ApiKey::UpdateMetadata, 8, &update(4, 100, id)).await;
    assert_eq!(r.error_code, 11);
    assert_eq!(c.ctx.metadata_cache.controller_epoch(), 5);

    let mut client = TcpStream::connect(c.plaintext).await.unwrap();
    for v in 0..=12i16 {
        let topics = if v == 0 { Some(vec![]) } else { None };
        let r: MetadataResponse =
            call(&mut client, ApiKey::Metadata, v, &metadata_req(v, topics)).await;
        // Only broker 1 has a PLAINTEXT endpoint.
        assert_eq!(r.brokers.len(), 1, "v{v}");
        assert_eq!(r.brokers[0].node_id, BrokerId(1));
        assert_eq!(r.brokers[0].port, 9001);
        if v >= 1 {
            assert_eq!(r.controller_id, BrokerId(2), "v{v}");
            assert_eq!(r.brokers[0].rack.as_deref(), Some("r1"));
        }
        if v >= 2 {
            assert_eq!(r.cluster_id.as_deref(), Some("test-cluster-id"));
        }
        assert_eq!(r.topics.len(), 1);
        let t = &r.topics[0];
        assert_eq!(t.error_code, 0);
        if v >= 10 {
            assert_eq!(t.topic_id, id);
        }
        let p0 = &t.partitions[0];
        // v0 filters replicas without the listener and flags it REPLICA_NOT_AVAILABLE.
        let p0_error = if v == 0 { 9 } else { 0 };
        assert_eq!(
            (p0.partition_index, p0.leader_id, p0.error_code),
            (0, BrokerId(1), p0_error),
            "v{v}"
        );
        if v >= 7 {
            assert_eq!(p0.leader_epoch, 4);
        }
        // Partition 1's leader (broker 2) is alive but lacks PLAINTEXT.
        let p1 = &t.partitions[1];
        assert_eq!(p1.leader_id, BrokerId(-1));
        let expect = if v >= 6 { 72 } else { 5 };
        assert_eq!(p1.error_code, expect, "v{v}");
        if v == 0 {
            // v0 drops replicas without the listener.
            assert_eq!(p0.replica_nodes, vec![BrokerId(1)]);
        } else {
            assert_eq!(p0.replica_nodes, vec![BrokerId(1), BrokerId(2)]);
        }
    }

    // On the INTERNAL listener both brokers are visible and partition 1 has a leader.
    let mut internal = TcpStream::connect(c.internal).await.unwrap();
    let r: MetadataResponse = call(
        &mut internal,
        ApiKey::Metadata,
        12,
        &metadata_req(12, Some(vec!["orders", "missing", "bad name"])),
    )
    .await;
    let ports: Vec<i32> = r.brokers.iter().map(|b| b.port).collect();
    assert_eq!(ports, vec![9101, 9102]);
    assert_eq!(r.topics[0].partitions[1].leader_id, BrokerId(2));
    assert_eq!(r.topics[0].partitions[1].error_code, 0);
    assert_eq!(
        r.topics[1].error_code, 3,
        "unknown topic, auto-create disabled"
    );
    assert_eq!(r.topics[2].error_code, 17, "invalid topic name");

    // Lookup by topic id (v12): known id resolves, unknown id → UNKNOWN_TOPIC_ID.
    let mut req = MetadataRequest::default();
    let mut known = MetadataRequestTopic::default();
    known.topic_id = id;
    let mut unknown = MetadataRequestTopic::default();
    unknown.topic_id = Uuid::new_v4();
    req.topics = Some(vec![known, unknown]);
    let r: MetadataResponse = call(&mut internal, ApiKey::Metadata, 12, &req).await;
    assert_eq!(r.topics.len(), 2);
    assert_eq!(r.topics[0].error_code, 100);
    assert_eq!(r.topics[0].name, None);
    assert_eq!(
        r.topics[1].name.as_ref().map(|n| n.0.as_str()),
        Some("orders")
    );
}
