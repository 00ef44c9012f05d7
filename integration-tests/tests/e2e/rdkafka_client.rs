//! librdkafka (rdkafka crate 0.37, librdkafka 2.12) produce/consume round trips.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, Timestamp, TopicPartitionList};
use samsa_integration_tests::{util, Cluster};

use crate::common::{client_config, create_topic, rt, BASE_TS, KEEP_FOREVER};

/// Produces `count` records (keys, headers, timestamps) with `codec`; returns acknowledged offsets.
pub fn produce(bootstrap: &str, topic: &str, count: usize, codec: &str, acks: &str) -> Vec<i64> {
    let producer: FutureProducer = client_config(bootstrap)
        .set("compression.codec", codec)
        .set("acks", acks)
        .set("linger.ms", "5")
        .set("message.timeout.ms", "30000")
        .create()
        .unwrap();
    rt().block_on(async {
        let mut futs = Vec::new();
        for i in 0..count {
            let key = format!("key-{i}");
            let value = format!("value-{i}-{}", "x".repeat(i % 50));
            let headers = OwnedHeaders::new()
                .insert(Header {
                    key: "h1",
                    value: Some(format!("v{i}").as_bytes()),
                })
                .insert(Header {
                    key: "null",
                    value: None::<&[u8]>,
                });
            let rec = FutureRecord::to(topic)
                .partition(0)
                .key(&key)
                .payload(&value)
                .timestamp(BASE_TS + i as i64)
                .headers(headers);
            futs.push(
                producer
                    .send_result(rec)
                    .map_err(|(e, _)| e)
                    .expect("enqueue"),
            );
        }
        let mut offsets = Vec::new();
        for f in futs {
            let d = f
                .await
                .expect("delivery future")
                .map_err(|(e, _)| e)
                .expect("delivery");
            offsets.push(d.1);
        }
        offsets
    })
}

/// Reads `count` records from partition 0 starting at `from`; checks each against what [`produce`] wrote.
pub fn consume_and_check(bootstrap: &str, topic: &str, from: i64, count: usize) {
    let consumer: BaseConsumer = client_config(bootstrap)
        .set("group.id", util::unique("g"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Offset(from))
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut next = from;
    while next < from + count as i64 {
        assert!(
            Instant::now() < deadline,
            "timed out reading {topic} at offset {next}"
        );
        let Some(m) = consumer.poll(Duration::from_millis(500)) else {
            continue;
        };
        let m = match m {
            Ok(m) => m,
            // librdkafka reports a lost connection (e.g. to a broker a test just killed) as a
            // consumer error and retries by itself; only a real fetch error fails the read.
            Err(KafkaError::MessageConsumption(
                RDKafkaErrorCode::BrokerTransportFailure | RDKafkaErrorCode::AllBrokersDown,
            )) => continue,
            Err(e) => panic!("fetch error at offset {next}: {e}"),
        };
        assert_eq!(m.offset(), next);
        let i = (next - from) as usize;
        assert_eq!(
            m.key(),
            Some(format!("key-{i}").as_bytes()),
            "key at {next}"
        );
        assert_eq!(
            m.payload(),
            Some(format!("value-{i}-{}", "x".repeat(i % 50)).as_bytes()),
            "value at {next}"
        );
        assert_eq!(
            m.timestamp(),
            Timestamp::CreateTime(BASE_TS + i as i64),
            "timestamp at {next}"
        );
        let h = m.headers().expect("headers");
        assert_eq!(h.count(), 2);
        assert_eq!(h.get(0).key, "h1");
        assert_eq!(h.get(0).value, Some(format!("v{i}").as_bytes()));
        assert_eq!(h.get(1).value, None);
        next += 1;
    }
}

#[test]
fn rdkafka_round_trip_every_codec() {
    let cluster = Cluster::single("rdk");
    let b = cluster.bootstrap();
    // zstd: the rdkafka crate is built without its zstd feature here; zstd is covered by confluent-kafka and Java.
    for codec in ["none", "gzip", "snappy", "lz4"] {
        let topic = format!("rdk-{codec}");
        create_topic(&b, &topic, 1, 1, KEEP_FOREVER);
        let offsets = produce(&b, &topic, 200, codec, "all");
        assert_eq!(offsets, (0..200).collect::<Vec<i64>>(), "{codec}");
        consume_and_check(&b, &topic, 0, 200);
    }
    cluster.finish();
}

#[test]
fn rdkafka_acks_1_and_0() {
    let cluster = Cluster::single("rdkacks");
    let b = cluster.bootstrap();
    create_topic(&b, "acks", 1, 1, KEEP_FOREVER);
    let offsets = produce(&b, "acks", 50, "none", "1");
    assert_eq!(offsets, (0..50).collect::<Vec<i64>>());
    // acks=0: the producer learns no offsets (-1); the records must still arrive.
    produce(&b, "acks", 50, "none", "0");
    consume_and_check(&b, "acks", 50, 50);
    cluster.finish();
}
