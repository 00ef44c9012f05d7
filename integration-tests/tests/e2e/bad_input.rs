//! Malformed and invalid input gets the right answer and the broker keeps serving.

use std::time::Duration;

use bytes::BufMut;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, MetadataRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord};
use samsa_integration_tests::{wire, Cluster};

use crate::common::{client_config, create_topic, rt};
use crate::rdkafka_client::{consume_and_check, produce};

fn still_serving(cluster: &Cluster) {
    let r =
        wire::api_versions(&cluster.brokers[0].addr()).expect("broker still answers ApiVersions");
    assert_eq!(r.error_code, 0);
}

#[test]
fn garbage_and_oversized_frames_close_only_that_connection() {
    let cluster = Cluster::single("garbage");
    let addr = cluster.brokers[0].addr();

    // A frame whose header is nonsense (api key 0x7fff, truncated body).
    let mut c = wire::Conn::connect(&addr).unwrap();
    c.set_read_timeout(Duration::from_secs(10)).unwrap();
    c.send_raw(&[0, 0, 0, 6, 0x7f, 0xff, 0x00, 0x01, 0xde, 0xad])
        .unwrap();
    assert!(c.peer_closed(), "unparseable request closes the connection");
    still_serving(&cluster);

    // Random bytes with a plausible size.
    let mut c = wire::Conn::connect(&addr).unwrap();
    c.set_read_timeout(Duration::from_secs(10)).unwrap();
    let mut frame = vec![0u8, 0, 0, 64];
    frame.extend((0..64u8).map(|i| i.wrapping_mul(37).wrapping_add(11)));
    c.send_raw(&frame).unwrap();
    assert!(c.peer_closed(), "random frame closes the connection");
    still_serving(&cluster);

    // Size prefix above socket.request.max.bytes (100 MiB): refused without reading the body.
    let mut c = wire::Conn::connect(&addr).unwrap();
    c.set_read_timeout(Duration::from_secs(10)).unwrap();
    let mut huge = Vec::new();
    huge.put_i32(200 * 1024 * 1024);
    huge.extend_from_slice(&[0, 18, 0, 3]);
    c.send_raw(&huge).unwrap();
    assert!(c.peer_closed(), "oversized frame closes the connection");
    // Negative size.
    let mut c = wire::Conn::connect(&addr).unwrap();
    c.set_read_timeout(Duration::from_secs(10)).unwrap();
    c.send_raw(&[0xff, 0xff, 0xff, 0xf0]).unwrap();
    assert!(c.peer_closed(), "negative frame size closes the connection");
    still_serving(&cluster);

    // A connection that sends half a frame and hangs up is not an error either.
    let mut c = wire::Conn::connect(&addr).unwrap();
    c.send_raw(&[0, 0, 1, 0, 0, 18]).unwrap();
    drop(c);
    still_serving(&cluster);
    cluster.finish();
}

#[test]
fn unsupported_versions_answer_as_kafka_does() {
    let cluster = Cluster::single("apiver");
    let mut c = wire::Conn::connect(&cluster.brokers[0].addr()).unwrap();
    // A client newer than the broker sends ApiVersions v99 (flexible header v2, v3-style body); Kafka answers
    // with a v0 body: UNSUPPORTED_VERSION + its ranges, so the client can retry with a version it supports.
    let req = ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("future-client"))
        .with_client_software_version(StrBytes::from_static_str("9.9"));
    let frame = c.encode_request(ApiKey::ApiVersions, 3, &req).unwrap();
    let mut frame = frame.to_vec();
    frame[6..8].copy_from_slice(&99i16.to_be_bytes());
    c.send_raw(&frame).unwrap();
    let mut resp = c.read_frame().unwrap();
    use kafka_protocol::protocol::Decodable;
    let _hdr = kafka_protocol::messages::ResponseHeader::decode(&mut resp, 0).unwrap();
    let body = ApiVersionsResponse::decode(&mut resp, 0).unwrap();
    assert_eq!(body.error_code, 35);
    assert!(body
        .api_keys
        .iter()
        .any(|k| k.api_key == ApiKey::ApiVersions as i16));
    still_serving(&cluster);

    // Any other API at a version outside the advertised range: no response, the connection is
    // closed (Kafka's SocketServer.parseRequestHeader throws InvalidRequestException).
    let mut c = wire::Conn::connect(&cluster.brokers[0].addr()).unwrap();
    c.set_read_timeout(Duration::from_secs(10)).unwrap();
    let frame = c
        .encode_request(ApiKey::Metadata, 12, &MetadataRequest::default())
        .unwrap();
    let mut frame = frame.to_vec();
    frame[6..8].copy_from_slice(&13i16.to_be_bytes());
    c.send_raw(&frame).unwrap();
    assert!(c.peer_closed(), "Metadata v13 closes the connection");
    // An API a Kafka 3.9 ZooKeeper broker has but Samsa does not advertise: the same.
    let mut c = wire::Conn::connect(&cluster.brokers[0].addr()).unwrap();
    c.set_read_timeout(Duration::from_secs(10)).unwrap();
    let req = kafka_protocol::messages::DescribeAclsRequest::default();
    let frame = c.encode_request(ApiKey::DescribeAcls, 1, &req).unwrap();
    c.send_raw(&frame).unwrap();
    assert!(
        c.peer_closed(),
        "unadvertised DescribeAcls closes the connection"
    );
    still_serving(&cluster);
    cluster.finish();
}

#[test]
fn unknown_topic_metadata_without_auto_create() {
    let cluster = Cluster::builder("unknowntopic")
        .prop("auto.create.topics.enable", "false")
        .start();
    let mut c = wire::Conn::connect(&cluster.brokers[0].addr()).unwrap();
    let req = MetadataRequest::default()
        .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(
            TopicName(StrBytes::from_static_str("no-such-topic")),
        ))]))
        .with_allow_auto_topic_creation(false);
    let r: MetadataResponse = c.request(ApiKey::Metadata, 12, &req).unwrap();
    assert_eq!(r.topics.len(), 1);
    assert_eq!(r.topics[0].error_code, 3, "UNKNOWN_TOPIC_OR_PARTITION");
    assert_eq!(r.brokers.len(), 1);
    assert!(cluster
        .zk()
        .exists("/brokers/topics/no-such-topic")
        .unwrap()
        .is_none());
    still_serving(&cluster);
    cluster.finish();
}

#[test]
fn too_large_record_is_rejected_and_broker_keeps_serving() {
    let cluster = Cluster::single("toolarge");
    let b = cluster.bootstrap();
    create_topic(&b, "small", 1, 1, &[("max.message.bytes", "2000")]);
    let producer: FutureProducer = client_config(&b)
        .set("linger.ms", "0")
        .set("message.send.max.retries", "0")
        .create()
        .unwrap();
    let big = vec![b'x'; 10_000];
    let res = rt().block_on(
        producer.send(
            FutureRecord::<(), _>::to("small")
                .partition(0)
                .payload(&big),
            Duration::from_secs(30),
        ),
    );
    match res {
        Err((KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge), _)) => {}
        other => panic!("expected MESSAGE_TOO_LARGE, got {other:?}"),
    }
    // Small records still go through, starting at offset 0 (nothing of the big one was stored).
    assert_eq!(
        produce(&b, "small", 10, "none", "all"),
        (0..10).collect::<Vec<i64>>()
    );
    consume_and_check(&b, "small", 0, 10);
    cluster.finish();
}
