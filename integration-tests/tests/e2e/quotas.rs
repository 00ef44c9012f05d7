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
