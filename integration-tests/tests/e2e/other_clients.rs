//! Round trips with confluent-kafka (Python, librdkafka 2.16), kafka-python and the Java client 3.9.1.

use std::time::Duration;

use samsa_integration_tests::{clients, Cluster};
use serde_json::Value;

use crate::common::{create_topic, verify_roundtrip, Expect, KEEP_FOREVER};

fn args(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn confluent_kafka_round_trip_every_codec() {
    let cluster = Cluster::single("pyck");
    let b = cluster.bootstrap();
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("ck-{codec}");
        create_topic(&b, &topic, 1, 1, KEEP_FOREVER);
        let r = clients::python(
            "confluent_roundtrip.py",
            &args(&[&b, &topic, "300", codec]),
            Duration::from_secs(120),
        )
        .unwrap();
        let e = Expect {
            null_values_every_17th: true,
            null_header: true,
            create_time_type: Value::from(1),
        };
        verify_roundtrip(&r, 300, &e);
    }
    cluster.finish();
}

#[test]
fn kafka_python_round_trip() {
    let cluster = Cluster::single("pykp");
    let b = cluster.bootstrap();
    for codec in ["none", "gzip"] {
        let topic = format!("kp-{codec}");
        create_topic(&b, &topic, 1, 1, KEEP_FOREVER);
        let r = clients::python(
            "kafka_python_roundtrip.py",
            &args(&[&b, &topic, "200", codec]),
            Duration::from_secs(120),
        )
        .unwrap();
        let e = Expect {
            null_values_every_17th: false,
            null_header: false,
            create_time_type: Value::from(0),
        };
        verify_roundtrip(&r, 200, &e);
    }
    cluster.finish();
}

#[test]
fn java_client_round_trip_every_codec_idempotent() {
    let cluster = Cluster::single("java");
    let b = cluster.bootstrap();
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("java-{codec}");
        create_topic(&b, &topic, 1, 1, KEEP_FOREVER);
        let r = clients::java(
            "RoundTrip",
            &args(&[&b, &topic, "300", codec]),
            Duration::from_secs(120),
        )
        .unwrap();
        let e = Expect {
            null_values_every_17th: false,
            null_header: true,
            create_time_type: Value::from("CreateTime"),
        };
        verify_roundtrip(&r, 300, &e);
    }
    // The default Java producer is idempotent: it must have obtained a producer id block.
    let block = cluster.zk().json("/latest_producer_id_block").unwrap();
    assert_eq!(block["broker"], 1);
    cluster.finish();
}

/// Fetch v1 (magic 0) and v2 (magic 1) consumers read what a current producer wrote:
/// the broker down-converts the magic-2 batches, compressed ones with the same codec. A Fetch
/// v3 consumer whose fetch size is below a batch's still reads everything: the first batch is
/// read whole and sent whole after conversion, however much it grew (answers are cut or padded
/// to that size as Kafka's lazy down-conversion does).
#[test]
fn kafka_python_old_protocol_consumer_reads_down_converted_records() {
    let cluster = Cluster::single("pyold");
    let b = cluster.bootstrap();
    let n = 120;
    for (codec, api, fetch_bytes) in [
        ("none", "0.9", 65536),
        ("gzip", "0.9", 65536),
        ("none", "0.10.0", 65536),
        ("gzip", "0.10.0", 65536),
        ("none", "0.10.1", 512),
        ("gzip", "0.10.1", 512),
    ] {
        let topic = format!("old-{codec}-{}", api.replace('.', "-"));
        create_topic(&b, &topic, 1, 1, KEEP_FOREVER);
        let r = clients::python(
            "kafka_python_old_fetch.py",
            &args(&[
                &b,
                &topic,
                &n.to_string(),
                codec,
                api,
                &fetch_bytes.to_string(),
            ]),
            Duration::from_secs(120),
        )
        .unwrap();
        let ctx = format!("{codec} api {api}");
        let acked: Vec<i64> = serde_json::from_value(r["acked"].clone()).unwrap();
        assert_eq!(acked, (0..n).collect::<Vec<i64>>(), "{ctx}");
        let base_ts = r["base_ts"].as_i64().unwrap();
        let recs = r["records"].as_array().unwrap();
        assert_eq!(recs.len(), n as usize, "{ctx}: {r}");
        for (i, rec) in recs.iter().enumerate() {
            assert_eq!(rec["offset"].as_i64(), Some(i as i64), "{ctx}");
            let key = (i % 10 != 9).then(|| format!("key-{i}"));
            assert_eq!(rec["key"].as_str(), key.as_deref(), "{ctx} #{i}");
            let value = format!("value-{i}-{}", "x".repeat(i % 50));
            assert_eq!(rec["value"].as_str(), Some(value.as_str()), "{ctx} #{i}");
            assert_eq!(
                rec["headers"].as_i64(),
                Some(0),
                "{ctx}: magic 0/1 have no headers"
            );
            // Magic 1 keeps the producer's timestamps; magic 0 has none.
            let ts = rec["timestamp"].as_i64().unwrap_or(-1);
            if api == "0.9" {
                assert_eq!(ts, -1, "{ctx} #{i}");
            } else {
                assert_eq!(ts, base_ts + i as i64, "{ctx} #{i}");
            }
        }
    }
    cluster.finish();
}

/// Produce v8+ per-record errors reach the Java client: only the bad records of a batch
/// fail with their own message, the others with the client's "part of a batch" message.
#[test]
fn java_client_sees_per_record_errors() {
    let cluster = Cluster::single("recerr");
    let b = cluster.bootstrap();
    create_topic(&b, "compacted", 1, 1, &[("cleanup.policy", "compact")]);
    create_topic(
        &b,
        "strict-ts",
        1,
        1,
        &[("message.timestamp.before.max.ms", "3600000")],
    );
    let r = clients::java(
        "RecordErrors",
        &args(&[&b, "compacted", "strict-ts"]),
        Duration::from_secs(120),
    )
    .unwrap();
    let no_key = "Compacted topic cannot accept message without key in topic partition compacted-0";
    let c = r["compacted"].as_array().unwrap();
    for i in [1, 3] {
        assert_eq!(c[i][0], "InvalidRecordException", "{r}");
        assert_eq!(c[i][1], no_key, "{r}");
    }
    // The client fails the batch's good records with its generic exception.
    for i in [0, 2] {
        assert_eq!(c[i][0], "KafkaException", "{r}");
        assert!(
            c[i][1]
                .as_str()
                .is_some_and(|m| m.contains("part of a batch")),
            "{r}"
        );
    }
    let t = r["timestamps"].as_array().unwrap();
    for i in [1, 3] {
        assert_eq!(t[i][0], "InvalidRecordException", "{r}");
        let m = t[i][1].as_str().unwrap();
        assert!(
            m.contains(&format!("of message with offset {i} is out of range")),
            "{r}"
        );
    }
    assert_eq!(t[0][0], "KafkaException", "{r}");
    assert_eq!(t[2][0], "KafkaException", "{r}");
    cluster.finish();
}

/// librdkafka told the broker is 0.9.0 (Fetch v1, magic 0) or 0.10.0 (Fetch v2, magic 1)
/// reads snappy and lz4 batches written by a current librdkafka: down-conversion keeps the
/// codec, including xerial snappy and Kafka's magic-0 LZ4 header checksum.
#[test]
fn librdkafka_old_protocol_consumer_reads_down_converted_records() {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;
    use rdkafka::{Offset, Timestamp, TopicPartitionList};
    use std::time::Instant;

    let cluster = Cluster::single("rdold");
    let b = cluster.bootstrap();
    let n = 150usize;
    for codec in ["snappy", "lz4", "none"] {
        let topic = format!("rdold-{codec}");
        create_topic(&b, &topic, 1, 1, KEEP_FOREVER);
        let acked = crate::rdkafka_client::produce(&b, &topic, n, codec, "1");
        assert_eq!(acked.len(), n);
        for fallback in ["0.9.0", "0.10.0"] {
            let ctx = format!("{codec} as {fallback}");
            let consumer: BaseConsumer = crate::common::client_config(&b)
                .set("api.version.request", "false")
                .set("broker.version.fallback", fallback)
                .set("group.id", samsa_integration_tests::util::unique("old"))
                .set("enable.auto.commit", "false")
                .create()
                .unwrap();
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(&topic, 0, Offset::Beginning)
                .unwrap();
            consumer.assign(&tpl).unwrap();
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut next = 0i64;
            while next < n as i64 {
                assert!(
                    Instant::now() < deadline,
                    "{ctx}: timed out at offset {next}"
                );
                let Some(m) = consumer.poll(Duration::from_millis(200)) else {
                    continue;
                };
                let m = m.unwrap_or_else(|e| panic!("{ctx}: fetch error at {next}: {e}"));
                assert_eq!(m.offset(), next, "{ctx}");
                let i = next as usize;
                assert_eq!(m.key(), Some(format!("key-{i}").as_bytes()), "{ctx}");
                let value = format!("value-{i}-{}", "x".repeat(i % 50));
                assert_eq!(m.payload(), Some(value.as_bytes()), "{ctx}");
                let ts = m.timestamp();
                if fallback == "0.9.0" {
                    assert_eq!(ts, Timestamp::NotAvailable, "{ctx}");
                } else {
                    assert_eq!(
                        ts,
                        Timestamp::CreateTime(crate::common::BASE_TS + i as i64),
                        "{ctx}"
                    );
                }
                next += 1;
            }
        }
    }
    cluster.finish();
}
