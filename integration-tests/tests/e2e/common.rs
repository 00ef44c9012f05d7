//! Helpers shared by the e2e tests: topic creation through the Kafka API, record checks, rdkafka config.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use samsa_integration_tests::wait_until;
use serde_json::Value;

pub const BASE_TS: i64 = 1_700_000_000_000;

/// Topic config for topics that hold records stamped [`BASE_TS`] (November 2023): with the
/// default 7-day `retention.ms` the first retention pass, 30 s after the broker starts, deletes
/// them, exactly as Kafka would, and a slow test run would then read nothing back.
pub const KEEP_FOREVER: &[(&str, &str)] = &[("retention.ms", "-1")];

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

pub fn client_config(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap).set("log_level", "3");
    c
}

/// CreateTopics through librdkafka's admin API, then waits until metadata shows a leader for every partition.
pub fn create_topic(
    bootstrap: &str,
    name: &str,
    partitions: i32,
    rf: i32,
    configs: &[(&str, &str)],
) {
    let admin: AdminClient<DefaultClientContext> = client_config(bootstrap).create().unwrap();
    let mut nt = NewTopic::new(name, partitions, TopicReplication::Fixed(rf));
    for (k, v) in configs {
        nt = nt.set(k, v);
    }
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    // A timeout means the topic was written but its leaders were not all elected in time
    // (Kafka's REQUEST_TIMED_OUT for CreateTopics: creation goes on); on a loaded machine
    // right after a controller failover that happens, so wait for the leaders below instead.
    let timed_out = |code: &rdkafka::types::RDKafkaErrorCode| {
        matches!(
            code,
            rdkafka::types::RDKafkaErrorCode::OperationTimedOut
                | rdkafka::types::RDKafkaErrorCode::RequestTimedOut
        )
    };
    match rt().block_on(admin.create_topics([&nt], &opts)) {
        Ok(res) => {
            for r in res {
                match r {
                    Err((t, code)) if timed_out(&code) => {
                        eprintln!("CreateTopics {t}: {code:?}; waiting for its leaders")
                    }
                    Err((t, code)) => panic!("CreateTopics {t}: {code:?}"),
                    Ok(_) => {}
                }
            }
        }
        Err(rdkafka::error::KafkaError::AdminOp(code)) if timed_out(&code) => {
            eprintln!("CreateTopics {name}: {code:?}; waiting for its leaders")
        }
        Err(e) => panic!("CreateTopics request: {e:?}"),
    }
    wait_for_leaders(bootstrap, name, partitions as usize);
}

/// Waits until metadata lists `name` with `partitions` partitions, each with a leader.
pub fn wait_for_leaders(bootstrap: &str, name: &str, partitions: usize) {
    let consumer: BaseConsumer = client_config(bootstrap).create().unwrap();
    wait_until(
        &format!("leaders for all partitions of {name}"),
        Duration::from_secs(30),
        || {
            let md = consumer
                .fetch_metadata(Some(name), Duration::from_secs(5))
                .ok()?;
            let t = md.topics().iter().find(|t| t.name() == name)?;
            (t.error().is_none()
                && t.partitions().len() == partitions
                && t.partitions().iter().all(|p| p.leader() >= 0))
            .then_some(())
        },
    );
}

/// What a client program is expected to have written for record `i` (see the python/java programs).
pub struct Expect {
    pub null_values_every_17th: bool,
    pub null_header: bool,
    pub create_time_type: Value,
}

/// Checks a `{"acked":[...],"records":[...]}` result: offsets 0..count acknowledged and read back in order
/// with the right keys, values, headers and CreateTime timestamps.
pub fn verify_roundtrip(result: &Value, count: usize, e: &Expect) {
    let acked: Vec<i64> = result["acked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    assert_eq!(
        acked,
        (0..count as i64).collect::<Vec<_>>(),
        "acknowledged offsets"
    );
    let records = result["records"].as_array().unwrap();
    assert_eq!(records.len(), count, "records read back");
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r["offset"], i as i64, "offset of record {i}");
        let key = if i % 10 == 9 {
            Value::Null
        } else {
            Value::from(format!("key-{i}"))
        };
        assert_eq!(r["key"], key, "key of record {i}");
        let value = if e.null_values_every_17th && i % 17 == 16 {
            Value::Null
        } else {
            Value::from(format!("value-{i}-{}", "x".repeat(i % 50)))
        };
        assert_eq!(r["value"], value, "value of record {i}");
        let mut headers = vec![];
        if i % 2 == 0 {
            headers.push(serde_json::json!(["h1", format!("v{i}")]));
            headers.push(serde_json::json!(["empty", ""]));
            if e.null_header {
                headers.push(serde_json::json!(["null", null]));
            }
        }
        assert_eq!(r["headers"], Value::Array(headers), "headers of record {i}");
        assert_eq!(
            r["timestamp"],
            BASE_TS + i as i64,
            "timestamp of record {i}"
        );
        assert_eq!(
            r["timestamp_type"], e.create_time_type,
            "timestamp type of record {i}"
        );
    }
}
