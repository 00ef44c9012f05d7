//! Dynamic broker configs through the Java Admin client: changes to `/config/brokers/<id>`
//! and `<default>` take effect without a restart (a record above a dynamic
//! `message.max.bytes` is refused), are described with Kafka's sources and synonyms,
//! survive a restart, bad input gets Kafka's errors and changes nothing, passwords are
//! stored encoded, and a garbage znode is logged and skipped.

use std::time::{Duration, Instant};

use rdkafka::producer::{FutureProducer, FutureRecord};
use samsa_integration_tests::{clients, Cluster};
use serde_json::Value;

use crate::common::{client_config, create_topic, rt};

fn steps(b: &str, steps: &[&str]) -> Value {
    let mut args = vec![b.to_string()];
    args.extend(steps.iter().map(|s| s.to_string()));
    clients::java("BrokerConfigs", &args, Duration::from_secs(180)).unwrap()
}

fn describe(b: &str, broker: &str) -> Value {
    let r = steps(b, &[&format!("describe|{broker}")]);
    assert!(r["s0"].get("error").is_none(), "{r}");
    r["s0"]["configs"].clone()
}

/// Describes until `check` holds (the broker applies changes from its change listener).
fn wait_described(b: &str, broker: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let c = describe(b, broker);
        if check(&c) {
            return c;
        }
        assert!(Instant::now() < deadline, "{what}: last described {c}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Produces one record of `size` bytes; the broker's error code name on failure.
fn produce(b: &str, topic: &str, size: usize) -> Result<(), String> {
    let p: FutureProducer = client_config(b)
        .set("message.timeout.ms", "30000")
        .set("retries", "0")
        .create()
        .unwrap();
    let payload = vec![b'x'; size];
    rt().block_on(p.send(
        FutureRecord::<(), _>::to(topic).payload(&payload),
        Duration::from_secs(30),
    ))
    .map(|_| ())
    .map_err(|(e, _)| format!("{e:?}"))
}

fn err(r: &Value, step: &str) -> String {
    r[step]["error"].as_str().unwrap_or("").to_string()
}

#[test]
fn dynamic_broker_configs_apply_live_and_survive_restart() {
    let mut cluster = Cluster::builder("dyncfg")
        .brokers(1)
        .prop("password.encoder.secret", "encoder-secret")
        .start();
    cluster.wait_registered(Duration::from_secs(30));
    let b = cluster.bootstrap();
    create_topic(&b, "dyn", 1, 1, &[]);
    produce(&b, "dyn", 3000).expect("3000 bytes fit the static message.max.bytes");

    let r = steps(
        &b,
        &[
            "set|1|message.max.bytes=2000",
            "set||log.retention.ms=3600000",
            "set|1|listener.name.plaintext.ssl.key.password=hunter2",
            // Bad input: read-only key, bad value, per-broker key at the default level,
            // listener-only key without a prefix, thread count beyond double.
            "set|1|broker.id=7",
            "set|1|log.retention.ms=abc",
            "set||listener.name.plaintext.ssl.key.password=x",
            "set|1|ssl.key.password=x",
            "set|1|num.io.threads=100",
            // validate_only changes nothing.
            "set|1|log.retention.bytes=1000|validate",
        ],
    );
    for s in ["s0", "s1", "s2", "s8"] {
        assert_eq!(r[s]["ok"], true, "{s}: {r}");
    }
    assert_eq!(
        err(&r, "s3"),
        "InvalidRequestException: Cannot update these configs dynamically: Set(broker.id)"
    );
    assert_eq!(
        err(&r, "s4"),
        "InvalidRequestException: Invalid value abc for configuration log.retention.ms: Not a number of type LONG"
    );
    assert_eq!(
        err(&r, "s5"),
        "InvalidRequestException: Cannot update these configs at default cluster level, broker id must be specified: Set(listener.name.plaintext.ssl.key.password)"
    );
    assert_eq!(
        err(&r, "s6"),
        "InvalidRequestException: These security configs can be dynamically updated only per-listener using the listener prefix: Set(ssl.key.password)"
    );
    assert_eq!(
        err(&r, "s7"),
        "InvalidRequestException: Invalid dynamic configuration"
    );

    // ZooKeeper holds what Kafka would: the password encoded, nothing from the refused steps.
    let node = cluster.zk().json("/config/brokers/1").unwrap();
    let stored = node["config"].as_object().unwrap();
    assert_eq!(stored["message.max.bytes"], "2000");
    let pw = stored["listener.name.plaintext.ssl.key.password"]
        .as_str()
        .unwrap();
    assert!(
        pw.contains("encryptedPassword:") && !pw.contains("hunter2"),
        "{pw}"
    );
    assert_eq!(stored.len(), 2, "{node}");
    let default = cluster.zk().json("/config/brokers/<default>").unwrap();
    assert_eq!(default["config"]["log.retention.ms"], "3600000");

    // Applied live, described with Kafka's sources and synonyms.
    let c = wait_described(&b, "1", "dynamic values applied", |c| {
        c["message.max.bytes"]["value"] == "2000" && c["log.retention.ms"]["value"] == "3600000"
    });
    assert_eq!(c["message.max.bytes"]["source"], "DYNAMIC_BROKER_CONFIG");
    assert_eq!(
        c["message.max.bytes"]["synonyms"],
        serde_json::json!([
            ["message.max.bytes", "2000", "DYNAMIC_BROKER_CONFIG"],
            ["message.max.bytes", "1048588", "DEFAULT_CONFIG"]
        ])
    );
    assert_eq!(
        c["log.retention.ms"]["source"],
        "DYNAMIC_DEFAULT_BROKER_CONFIG"
    );
    assert_eq!(c["log.retention.bytes"]["source"], "DEFAULT_CONFIG");
    assert_eq!(c["broker.id"]["readOnly"], true);
    assert_eq!(c["message.max.bytes"]["readOnly"], false);
    let p = &c["listener.name.plaintext.ssl.key.password"];
    assert_eq!(p["sensitive"], true);
    assert_eq!(p["value"], Value::Null);
    assert_eq!(p["source"], "DYNAMIC_BROKER_CONFIG");
    let d = describe(&b, "");
    assert_eq!(
        d.as_object().unwrap().keys().collect::<Vec<_>>(),
        vec!["log.retention.ms"]
    );
    assert_eq!(
        d["log.retention.ms"]["source"],
        "DYNAMIC_DEFAULT_BROKER_CONFIG"
    );
    let e = produce(&b, "dyn", 3000).expect_err("above the dynamic message.max.bytes");
    assert!(e.contains("MessageSizeTooLarge"), "{e}");
    produce(&b, "dyn", 1000).expect("below the limit");

    // A restart reads both layers back (and decodes the password without an error).
    cluster.broker(1).stop(Duration::from_secs(40)).unwrap();
    cluster.broker(1).start().unwrap();
    let c = describe(&b, "1");
    assert_eq!(c["message.max.bytes"]["value"], "2000");
    assert_eq!(c["log.retention.ms"]["value"], "3600000");
    let e = produce(&b, "dyn", 3000).expect_err("still above the limit after a restart");
    assert!(e.contains("MessageSizeTooLarge"), "{e}");

    // A garbage default layer written by hand is logged and skipped; later changes apply.
    cluster
        .broker(1)
        .allow_error("skipping unreadable broker config znode");
    let zk = cluster.zk();
    zk.set("/config/brokers/<default>", b"{not json", None)
        .unwrap();
    zk.create(
        "/config/changes/config_change_",
        br#"{"version":2,"entity_path":"brokers/<default>"}"#,
        zkc_mode(),
    )
    .unwrap();
    let r = steps(&b, &["delete|1|message.max.bytes"]);
    assert_eq!(r["s0"]["ok"], true, "{r}");
    let c = wait_described(&b, "1", "message.max.bytes back to default", |c| {
        c["message.max.bytes"]["source"] == "DEFAULT_CONFIG"
    });
    // The unreadable default layer kept its previous content.
    assert_eq!(c["log.retention.ms"]["value"], "3600000");
    produce(&b, "dyn", 3000).expect("the static limit is back");
    assert!(cluster
        .broker(1)
        .log_text()
        .contains("skipping unreadable broker config znode"));
    cluster.finish();
}

fn zkc_mode() -> zookeeper_client::CreateMode {
    zookeeper_client::CreateMode::PersistentSequential
}
