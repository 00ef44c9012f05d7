//! Client byte-rate quotas as Kafka enforces them: a quota written to ZooKeeper the way
//! `kafka-configs.sh --zookeeper --alter --add-config producer_byte_rate=...` writes it
//! (entity znode + `/config/changes` notification) throttles a librdkafka producer down to
//! the quota, the producer sees throttle times, and removing the quota lifts it live.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::statistics::Statistics;
use samsa_integration_tests::Cluster;
use serde_json::json;

use crate::common::{client_config, create_topic};

#[derive(Clone, Default)]
struct Counters {
    /// Payload bytes acknowledged by the broker.
    acked: Arc<AtomicU64>,
    /// Largest broker throttle time (ms) librdkafka reported in its statistics.
    throttle_max: Arc<AtomicI64>,
}

impl ClientContext for Counters {
    fn stats(&self, s: Statistics) {
        for b in s.brokers.values() {
            if let Some(t) = &b.throttle {
                self.throttle_max.fetch_max(t.max, Ordering::Relaxed);
            }
        }
    }
}

impl ProducerContext for Counters {
    type DeliveryOpaque = ();
    fn delivery(&self, r: &DeliveryResult<'_>, _: ()) {
        if let Ok(m) = r {
            self.acked
                .fetch_add(m.payload_len() as u64, Ordering::Relaxed);
        }
    }
}

/// Keeps the producer's queue full until `until`.
fn produce_until(p: &BaseProducer<Counters>, topic: &str, payload: &[u8], until: Instant) {
    while Instant::now() < until {
        match p.send(
            BaseRecord::<(), [u8]>::to(topic)
                .partition(0)
                .payload(payload),
        ) {
            Ok(()) => {
                p.poll(Duration::ZERO);
            }
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                p.poll(Duration::from_millis(5));
            }
            Err((e, _)) => panic!("produce: {e}"),
        }
    }
}

/// Writes `/config/clients/<client>` and the change notification, as `kafka-configs.sh`.
fn set_client_config(cluster: &Cluster, client: &str, config: serde_json::Value) {
    let zk = cluster.zk();
    let data = serde_json::to_vec(&json!({"version": 1, "config": config})).unwrap();
    let path = format!("/config/clients/{client}");
    if zk.exists(&path).unwrap().is_some() {
        zk.set(&path, &data, None).unwrap();
    } else {
        zk.create(&path, &data, zookeeper_client::CreateMode::Persistent)
            .unwrap();
    }
    let n = serde_json::to_vec(&json!({"version": 2, "entity_path": format!("clients/{client}")}))
        .unwrap();
    zk.create(
        "/config/changes/config_change_",
        &n,
        zookeeper_client::CreateMode::PersistentSequential,
    )
    .unwrap();
}

#[test]
fn producer_byte_rate_throttles_librdkafka_and_lifts_live() {
    const QUOTA: u64 = 256 * 1024;
    let cluster = Cluster::single("quotas");
    let b = cluster.bootstrap();
    create_topic(&b, "q", 1, 1, &[]);
    set_client_config(
        &cluster,
        "quota-producer",
        json!({"producer_byte_rate": QUOTA.to_string()}),
    );

    let counters = Counters::default();
    let producer: BaseProducer<Counters> = client_config(&b)
        .set("client.id", "quota-producer")
        .set("linger.ms", "5")
        .set("batch.size", "65536")
        .set("queue.buffering.max.messages", "5000")
        .set("message.timeout.ms", "0")
        .set("statistics.interval.ms", "500")
        .create_with_context(counters.clone())
        .unwrap();
    let payload = vec![b'x'; 1000];

    // Kafka's rate keeps `quota.window.num + 1` samples (12 s by default) and pads a young
    // window to ten seconds, so a producer that never stops sends a burst of about ten
    // seconds' worth whenever its oldest sample expires, then trickles: the acknowledged
    // rate is periodic with that 12 s period. Past the first period, the average over one
    // period is the quota.
    const PERIOD: Duration = Duration::from_secs(12);
    let start = Instant::now();
    produce_until(&producer, "q", &payload, start + PERIOD);
    let (t0, a0) = (Instant::now(), counters.acked.load(Ordering::Relaxed));
    produce_until(&producer, "q", &payload, t0 + PERIOD);
    let (t1, a1) = (Instant::now(), counters.acked.load(Ordering::Relaxed));
    let rate = (a1 - a0) as f64 / (t1 - t0).as_secs_f64();
    eprintln!("throttled rate {rate:.0} B/s (quota {QUOTA} B/s)");
    // Payload bytes are slightly below the request bytes the broker charges.
    assert!(
        rate > QUOTA as f64 * 0.85 && rate < QUOTA as f64 * 1.15,
        "rate {rate:.0} B/s not within 15% of the quota {QUOTA} B/s"
    );
    let throttled = counters.throttle_max.load(Ordering::Relaxed);
    assert!(throttled > 0, "librdkafka saw no throttle time");

    // Removing the quota (kafka-configs.sh --delete-config) lifts it without a restart.
    set_client_config(&cluster, "quota-producer", json!({}));
    produce_until(
        &producer,
        "q",
        &payload,
        Instant::now() + Duration::from_secs(3),
    );
    let (t2, a2) = (Instant::now(), counters.acked.load(Ordering::Relaxed));
    produce_until(&producer, "q", &payload, t2 + Duration::from_secs(3));
    let (t3, a3) = (Instant::now(), counters.acked.load(Ordering::Relaxed));
    let free = (a3 - a2) as f64 / (t3 - t2).as_secs_f64();
    eprintln!("unthrottled rate {free:.0} B/s");
    assert!(
        free > QUOTA as f64 * 3.0,
        "rate {free:.0} B/s after removing the quota is still near it"
    );
    let _ = producer.flush(Duration::from_secs(30));
    drop(producer);
    cluster.finish();
}

/// Runs `QuotaAdmin.java` commands (the Java Admin client's alterClientQuotas and
/// describeClientQuotas) and returns one result per command.
fn quota_admin(bootstrap: &str, commands: &[&str]) -> Vec<serde_json::Value> {
    let mut args = vec![bootstrap.to_string()];
    args.extend(commands.iter().map(|c| c.to_string()));
    let out = samsa_integration_tests::clients::java("QuotaAdmin", &args, Duration::from_secs(120))
        .unwrap();
    out.as_array().unwrap().clone()
}

/// The Java Admin client sets, describes and removes quotas as `kafka-configs.sh
/// --bootstrap-server` does: the znodes and change notifications are Kafka's, bad entities
/// and values get Kafka's errors, and the quota it sets throttles a producer at once and
/// stops throttling it when removed, without a restart.
#[test]
fn java_admin_client_quotas_write_znodes_and_apply_live() {
    const QUOTA: u64 = 128 * 1024;
    let cluster = Cluster::single("quota-admin");
    let b = cluster.bootstrap();
    create_topic(&b, "qa", 1, 1, &[]);
    let zk = cluster.zk();
    let changes_before = zk
        .children("/config/changes")
        .unwrap()
        .unwrap_or_default()
        .len();

    let r = quota_admin(
        &b,
        &[
            &format!("alter client-id=quota-admin producer_byte_rate={QUOTA}"),
            "alter user=alice,client-id=<default> consumer_byte_rate=2048 request_percentage=12.5",
            "alter user=<default> controller_mutation_rate=1e8",
            "alter ip=<default> connection_creation_rate=100",
            "alter user=bob producer_byte_rate=1 validate",
            // Kafka's errors.
            "alter user=alice,ip=10.0.0.1 producer_byte_rate=1",
            "alter client-id=x consumer_byte_rate=1.5",
            "alter client-id=x bogus=1",
            "alter ip=no-such-host.invalid connection_creation_rate=1",
            "describe strict client-id=quota-admin",
            "describe loose user=alice",
            "describe strict user=*",
            "describe strict ip=*",
            "describe loose user=alice ip=*",
        ],
    );
    for (i, ok) in r.iter().take(5).enumerate() {
        assert_eq!(ok, &json!({"ok": true}), "command {i}: {r:?}");
    }
    let err = |i: usize| r[i]["error"].as_str().unwrap().to_string();
    assert_eq!(
        err(5),
        "InvalidRequestException: Invalid quota entity combination, IP entity should not be used with user/client ID entity."
    );
    assert_eq!(
        err(6),
        "InvalidRequestException: Configuration consumer_byte_rate must be a LONG value"
    );
    assert_eq!(
        err(7),
        "InvalidRequestException: Invalid configuration key bogus"
    );
    assert_eq!(
        err(8),
        "InvalidRequestException: no-such-host.invalid is not a valid IP or resolvable host."
    );
    assert_eq!(
        r[9],
        json!({"entries": [{"entity": {"client-id": "quota-admin"},
                            "values": {"producer_byte_rate": QUOTA as f64}}]})
    );
    assert_eq!(
        r[10],
        json!({"entries": [{"entity": {"client-id": null, "user": "alice"},
                            "values": {"consumer_byte_rate": 2048.0, "request_percentage": 12.5}}]})
    );
    assert_eq!(
        r[11],
        json!({"entries": [{"entity": {"user": null},
                            "values": {"controller_mutation_rate": 1e8}}]})
    );
    assert_eq!(
        r[12],
        json!({"entries": [{"entity": {"ip": null}, "values": {"connection_creation_rate": 100.0}}]})
    );
    assert!(
        err(13).starts_with("InvalidRequestException: Invalid entity filter component combination"),
        "{}",
        err(13)
    );

    // The znodes, byte for byte as Kafka's AdminZkClient writes them.
    let node = |p: &str| zk.json(p).unwrap();
    assert_eq!(
        node("/config/clients/quota-admin"),
        json!({"version": 1, "config": {"producer_byte_rate": QUOTA.to_string()}})
    );
    assert_eq!(
        node("/config/users/alice/clients/<default>"),
        json!({"version": 1, "config": {"consumer_byte_rate": "2048", "request_percentage": "12.5"}})
    );
    assert_eq!(
        node("/config/users/<default>"),
        json!({"version": 1, "config": {"controller_mutation_rate": "1.0E8"}})
    );
    assert_eq!(
        node("/config/ips/<default>"),
        json!({"version": 1, "config": {"connection_creation_rate": "100"}})
    );
    assert!(
        zk.exists("/config/users/bob").unwrap().is_none(),
        "validate only wrote"
    );
    let mut paths: Vec<String> = zk
        .children("/config/changes")
        .unwrap()
        .unwrap_or_default()
        .iter()
        .map(|c| {
            node(&format!("/config/changes/{c}"))["entity_path"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    paths.sort();
    assert_eq!(paths.len(), changes_before + 4, "{paths:?}");
    for p in [
        "clients/quota-admin",
        "users/alice/clients/<default>",
        "users/<default>",
        "ips/<default>",
    ] {
        assert!(
            paths.iter().any(|x| x == p),
            "no notification for {p}: {paths:?}"
        );
    }

    // The quota applies at once: the producer is throttled.
    let counters = Counters::default();
    let producer: BaseProducer<Counters> = client_config(&b)
        .set("client.id", "quota-admin")
        .set("linger.ms", "5")
        .set("batch.size", "65536")
        .set("queue.buffering.max.messages", "5000")
        .set("message.timeout.ms", "0")
        .set("statistics.interval.ms", "200")
        .create_with_context(counters.clone())
        .unwrap();
    let payload = vec![b'x'; 1000];
    let deadline = Instant::now() + Duration::from_secs(60);
    while counters.throttle_max.load(Ordering::Relaxed) == 0 {
        assert!(Instant::now() < deadline, "producer never throttled");
        produce_until(
            &producer,
            "qa",
            &payload,
            Instant::now() + Duration::from_millis(500),
        );
    }

    // Removed through the Admin client: the entity znode goes away and throttling stops.
    let r = quota_admin(
        &b,
        &[
            "alter client-id=quota-admin producer_byte_rate=",
            "describe strict client-id=quota-admin",
        ],
    );
    assert_eq!(r[0], json!({"ok": true}));
    assert_eq!(r[1], json!({"entries": []}));
    assert!(zk.exists("/config/clients/quota-admin").unwrap().is_none());
    // Muted connections resume within one throttle time; then the rate is well above the old
    // quota.
    let deadline = Instant::now() + Duration::from_secs(60);
    let free = loop {
        let (t0, a0) = (Instant::now(), counters.acked.load(Ordering::Relaxed));
        produce_until(&producer, "qa", &payload, t0 + Duration::from_secs(2));
        let rate =
            (counters.acked.load(Ordering::Relaxed) - a0) as f64 / t0.elapsed().as_secs_f64();
        if rate > QUOTA as f64 * 4.0 || Instant::now() > deadline {
            break rate;
        }
    };
    eprintln!("rate after removal {free:.0} B/s");
    assert!(free > QUOTA as f64 * 4.0, "still throttled: {free:.0} B/s");
    let _ = producer.flush(Duration::from_secs(30));
    drop(producer);
    cluster.finish();
}

fn mutation_ops(bootstrap: &str, client: &str, ops: &[&str]) -> Vec<serde_json::Value> {
    let mut args = vec![bootstrap.to_string(), client.to_string()];
    args.extend(ops.iter().map(|o| o.to_string()));
    let out =
        samsa_integration_tests::clients::java("MutationQuota", &args, Duration::from_secs(120))
            .unwrap();
    out.as_array().unwrap().clone()
}

/// `controller_mutation_rate` as Kafka's ControllerMutationQuotaManager applies it to a
/// Java Admin client (CreateTopics v7, CreatePartitions v3, DeleteTopics v6: strict):
/// partitions are permits from a bucket of 11 × the rate; a request that finds the bucket in
/// debt is refused with THROTTLING_QUOTA_EXCEEDED and a throttle time; removing the quota
/// lifts it live.
#[test]
fn controller_mutation_rate_throttles_topic_mutations() {
    let cluster = Cluster::single("quota-mutation");
    let b = cluster.bootstrap();
    let r = quota_admin(&b, &["alter client-id=mutator controller_mutation_rate=1"]);
    assert_eq!(r[0], json!({"ok": true}));
    // Wait until the broker applied it: a 30-partition topic overdraws the 11-permit bucket
    // by 19 (19 s to refill at 1/s), so the next topics are refused.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut n = 0;
    let refused = loop {
        n += 1;
        let r = mutation_ops(
            &b,
            "mutator",
            &[&format!("create:big{n}:30"), &format!("create:small{n}:1")],
        );
        assert_eq!(r[0], json!({"ok": true}), "{r:?}");
        if r[1]["error"] == "ThrottlingQuotaExceededException" {
            break r;
        }
        assert!(Instant::now() < deadline, "quota never applied: {r:?}");
    };
    let throttle = refused[1]["throttle"].as_i64().unwrap();
    assert!(throttle > 0 && throttle <= 30_000, "{refused:?}");
    // Other clients are not limited; partitions and deletions count for this one.
    let r = mutation_ops(&b, "someone-else", &["create:free:20", "delete:free"]);
    assert_eq!(r, vec![json!({"ok": true}), json!({"ok": true})]);
    // Added partitions count too. Asked in the same client right after an overdraw, as
    // above: from a fresh JVM the bucket may have refilled on a slow machine.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        n += 1;
        let r = mutation_ops(
            &b,
            "mutator",
            &[
                &format!("create:big{n}:30"),
                &format!("partitions:big{n}:32"),
            ],
        );
        if r[1]["error"] == "ThrottlingQuotaExceededException" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "partitions never throttled: {r:?}"
        );
    }

    let r = quota_admin(&b, &["alter client-id=mutator controller_mutation_rate="]);
    assert_eq!(r[0], json!({"ok": true}));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = mutation_ops(&b, "mutator", &[&format!("create:after{n}:30")]);
        if r[0] == json!({"ok": true}) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "quota removal never applied: {r:?}"
        );
        n += 1;
    }
    cluster.finish();
}

/// `connection_creation_rate` on `/config/ips/<ip>`, set and removed with the Java Admin
/// client: connections from that address beyond the rate are held unanswered and closed,
/// other addresses are unaffected, and removing the quota lifts it without a restart.
#[test]
fn ip_connection_creation_rate_applies_live() {
    use samsa_integration_tests::wire::Conn;
    let cluster = Cluster::single("quota-ip");
    let b = cluster.bootstrap();
    let addr = b.split(',').next().unwrap().to_string();
    let served = |from: &str| {
        Conn::connect_from(from, &addr)
            .and_then(|mut c| {
                c.set_read_timeout(Duration::from_secs(5))?;
                c.api_versions_answered()
            })
            .unwrap_or(false)
    };
    let r = quota_admin(&b, &["alter ip=127.0.0.2 connection_creation_rate=1"]);
    assert_eq!(r[0], json!({"ok": true}));
    // At 1/s over a window padded to ten seconds, about ten connections are accepted, then
    // the address is throttled.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut accepted = 0;
    while served("127.0.0.2") {
        accepted += 1;
        assert!(Instant::now() < deadline, "127.0.0.2 never throttled");
    }
    eprintln!("accepted {accepted} connections before throttling");
    assert!(served("127.0.0.3"), "another address is throttled too");

    let r = quota_admin(&b, &["alter ip=127.0.0.2 connection_creation_rate="]);
    assert_eq!(r[0], json!({"ok": true}));
    assert!(cluster
        .zk()
        .exists("/config/ips/127.0.0.2")
        .unwrap()
        .is_none());
    let deadline = Instant::now() + Duration::from_secs(60);
    while !served("127.0.0.2") {
        assert!(Instant::now() < deadline, "quota removal never applied");
    }
    for i in 0..20 {
        assert!(
            served("127.0.0.2"),
            "connection {i} after removal not served"
        );
    }
    cluster.finish();
}

/// A Java consumer over its `consumer_byte_rate` converges to the quota (±15% over one
/// 12 s rate period, past the first) and reports fetch throttle times; removing the quota
/// with the Admin client lifts it live.
///
/// The consumer fetches at most 64 KiB per partition: with the default 1 MiB, a throttled
/// fetch is answered empty and not counted, so only whole 1 MiB fetches fit the window's
/// allowance (2.5 MiB at this quota) and the rate settles well below the quota — on Kafka too.
#[test]
fn consumer_byte_rate_throttles_java_consumer_and_lifts_live() {
    const QUOTA: u64 = 256 * 1024;
    let cluster = Cluster::single("quota-consumer");
    let b = cluster.bootstrap();
    create_topic(&b, "qc", 1, 1, &[]);
    // The quota is for the consumer's client id only (the producer below is not limited).
    set_client_config(
        &cluster,
        "quota-consumer",
        json!({"consumer_byte_rate": QUOTA.to_string()}),
    );
    // 16 MB to read: the burst plus 26 s at the quota leave about 6 MB for after the removal.
    let producer: BaseProducer<Counters> = client_config(&b)
        .set("linger.ms", "20")
        // Small batches, so that fetches of 64 KiB are possible (a first batch larger than
        // max.partition.fetch.bytes is returned whole).
        .set("batch.size", "65536")
        .set("queue.buffering.max.messages", "100000")
        .create_with_context(Counters::default())
        .unwrap();
    let payload = vec![b'y'; 1000];
    let mut sent = 0;
    while sent < 16_000 {
        match producer.send(
            BaseRecord::<(), [u8]>::to("qc")
                .partition(0)
                .payload(&payload[..]),
        ) {
            Ok(()) => sent += 1,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                producer.poll(Duration::from_millis(10));
            }
            Err((e, _)) => panic!("produce: {e}"),
        }
    }
    producer.flush(Duration::from_secs(180)).unwrap();
    drop(producer);
    let args: Vec<String> = [&b, "qc", "quota-consumer", "30", "26", "65536"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let out =
        samsa_integration_tests::clients::java("QuotaConsumer", &args, Duration::from_secs(120))
            .unwrap();
    let per_sec: Vec<u64> = out["bytes_per_sec"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    eprintln!(
        "consumer bytes/s: {per_sec:?}, throttle max {} avg {}",
        out["throttle_max_before"], out["throttle_avg_before"]
    );
    // As on Kafka, the consumer reads the window's allowance (about ten seconds' worth) in a
    // burst whenever the oldest sample expires, then is throttled: the rate over one period,
    // from one burst to the next (past the first), is the quota.
    let bursts: Vec<usize> = (3..26)
        .filter(|&i| per_sec[i] > 2 * QUOTA && per_sec[i - 1] <= 2 * QUOTA)
        .collect();
    assert!(
        bursts.len() >= 2,
        "no steady throttling period: {per_sec:?}"
    );
    let (i1, i2) = (bursts[0], bursts[1]);
    let rate = per_sec[i1..i2].iter().sum::<u64>() as f64 / (i2 - i1) as f64;
    eprintln!("throttled rate {rate:.0} B/s over seconds {i1}..{i2}");
    assert!(
        rate > QUOTA as f64 * 0.85 && rate < QUOTA as f64 * 1.15,
        "rate {rate:.0} B/s not within 15% of the quota {QUOTA} B/s"
    );
    assert!(
        out["throttle_max_before"].as_f64().unwrap() > 0.0,
        "the consumer saw no fetch throttle time: {out}"
    );
    let after: u64 = per_sec[26..30].iter().sum();
    assert!(
        after as f64 / 4.0 > QUOTA as f64 * 4.0,
        "after removal the consumer still reads near the quota: {per_sec:?}"
    );
    cluster.finish();
}
