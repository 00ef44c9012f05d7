//! Three-broker scenarios (issue #4): assignment and state znodes, leader failover under an idempotent
//! acks=all produce loop, NOT_ENOUGH_REPLICAS, ISR shrink/expand, controller failover, controlled shutdown,
//! topic deletion and a rolling restart. Every broker runs with a 6 s ZooKeeper session.

use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use samsa_integration_tests::{util, Cluster, Zk, ZkFixture};
use serde_json::Value;

use crate::common::{client_config, create_topic, rt};

pub(crate) const T: Duration = Duration::from_secs(30);

pub(crate) fn three(name: &str, extra: &[(&str, &str)]) -> Cluster {
    let mut b = Cluster::builder(name).brokers(3);
    for (k, v) in extra {
        b = b.prop(k, v);
    }
    let c = b.start();
    c.wait_registered(T);
    c
}

pub(crate) fn state(c: &Cluster, topic: &str, p: i32) -> Option<Value> {
    c.zk()
        .json(&format!("/brokers/topics/{topic}/partitions/{p}/state"))
        .ok()
}

pub(crate) fn leader_of(c: &Cluster, topic: &str) -> i32 {
    state(c, topic, 0).unwrap()["leader"].as_i64().unwrap() as i32
}

pub(crate) fn wait_isr(c: &Cluster, topic: &str, n: usize, timeout: Duration) -> Value {
    util::wait_until(&format!("ISR of {n} for {topic}-0"), timeout, || {
        let s = state(c, topic, 0)?;
        (s["isr"].as_array()?.len() == n).then_some(s)
    })
}

/// Partition 0 of `topic` as broker `addr` serves it in Metadata v12 (its UpdateMetadata cache);
/// None while unreachable or unknown.
pub(crate) fn metadata_partition0(
    addr: &str,
    topic: &str,
) -> Option<kafka_protocol::messages::metadata_response::MetadataResponsePartition> {
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    use kafka_protocol::messages::{ApiKey, MetadataRequest, MetadataResponse, TopicName};
    let mut conn = samsa_integration_tests::wire::Conn::connect(addr).ok()?;
    let mut t = MetadataRequestTopic::default();
    t.name = Some(TopicName(topic.to_string().into()));
    let mut req = MetadataRequest::default();
    req.topics = Some(vec![t]);
    let resp: MetadataResponse = conn.request(ApiKey::Metadata, 12, &req).ok()?;
    resp.topics
        .into_iter()
        .next()?
        .partitions
        .into_iter()
        .next()
}

/// ISR (sorted) of partition 0 of `topic` as broker `addr` serves it.
fn metadata_isr(addr: &str, topic: &str) -> Option<Vec<i32>> {
    let p = metadata_partition0(addr, topic)?;
    let mut isr: Vec<i32> = p.isr_nodes.iter().map(|b| b.0).collect();
    isr.sort();
    Some(isr)
}

/// Waits until every broker in `addrs` serves `isr` (sorted) for partition 0 of `topic`.
pub(crate) fn wait_metadata_isr(addrs: &[String], topic: &str, isr: &[i32]) {
    util::wait_until(&format!("Metadata ISR {isr:?} on every broker"), T, || {
        addrs
            .iter()
            .all(|a| metadata_isr(a, topic).as_deref() == Some(isr))
            .then_some(())
    });
}

/// An acks=all, idempotent producer thread writing values `0,1,2,...` to partition 0 of `topic` until stopped.
pub(crate) struct ProduceLoop {
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicUsize>,
    handle: JoinHandle<LoopResult>,
}

#[derive(Debug, Default)]
pub(crate) struct LoopResult {
    pub(crate) acked: Vec<u64>,
    pub(crate) errors: Vec<String>,
    pub(crate) longest_stall: Duration,
}

impl ProduceLoop {
    pub(crate) fn start(bootstrap: &str, topic: &str) -> ProduceLoop {
        ProduceLoop::start_padded(bootstrap, topic, 0)
    }

    /// Like [`ProduceLoop::start`], each value being `<seq>:` followed by `pad` bytes (to fill
    /// a segment quickly); [`consume_all`] reads the sequence number back.
    pub(crate) fn start_padded(bootstrap: &str, topic: &str, pad: usize) -> ProduceLoop {
        let padding = if pad == 0 {
            String::new()
        } else {
            format!(":{}", "x".repeat(pad))
        };
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(AtomicUsize::new(0));
        let (b, t, s, n) = (
            bootstrap.to_string(),
            topic.to_string(),
            stop.clone(),
            acked.clone(),
        );
        let handle = std::thread::spawn(move || {
            let producer: FutureProducer = client_config(&b)
                .set("acks", "all")
                .set("enable.idempotence", "true")
                .set("linger.ms", "2")
                .set("message.timeout.ms", "120000")
                .set("retry.backoff.ms", "100")
                .set("topic.metadata.refresh.interval.ms", "1000")
                .create()
                .unwrap();
            let mut r = LoopResult::default();
            let mut last_ack = Instant::now();
            let mut seq = 0u64;
            rt().block_on(async {
                while !s.load(Ordering::Relaxed) {
                    // Batches of 20 in flight, awaited in order.
                    let mut futs = Vec::new();
                    for _ in 0..20 {
                        let v = seq.to_string();
                        seq += 1;
                        let value = format!("{v}{padding}");
                        let rec = FutureRecord::to(&t).partition(0).key(&v).payload(&value);
                        match producer.send_result(rec) {
                            Ok(f) => futs.push((v, f)),
                            Err((e, _)) => r.errors.push(format!("enqueue: {e}")),
                        }
                    }
                    for (v, f) in futs {
                        match f.await {
                            Ok(Ok(_)) => {
                                let now = Instant::now();
                                r.longest_stall = r.longest_stall.max(now - last_ack);
                                last_ack = now;
                                r.acked.push(v.parse().unwrap());
                                n.fetch_add(1, Ordering::Relaxed);
                            }
                            Ok(Err((e, _))) => r.errors.push(format!("record {v}: {e}")),
                            Err(e) => r.errors.push(format!("record {v}: canceled {e}")),
                        }
                    }
                }
            });
            r
        });
        ProduceLoop {
            stop,
            acked,
            handle,
        }
    }

    /// Waits until `more` further records have been acknowledged.
    pub(crate) fn wait_progress(&self, more: usize, timeout: Duration) {
        let target = self.acked.load(Ordering::Relaxed) + more;
        util::wait_until(&format!("{more} more acks"), timeout, || {
            (self.acked.load(Ordering::Relaxed) >= target).then_some(())
        });
    }

    pub(crate) fn finish(self) -> LoopResult {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap()
    }
}

/// A consumer reading partition 0 of `topic` from offset 0 for as long as a test runs, so
/// "continuous produce and consume" scenarios check the records while brokers come and go.
/// Offsets must arrive contiguously: a consumer never skips or repeats across a leader change.
pub(crate) struct ConsumeLoop {
    /// Records to read before stopping; `usize::MAX` until `finish` sets it.
    until: Arc<AtomicUsize>,
    handle: JoinHandle<ConsumeResult>,
}

#[derive(Debug, Default)]
pub(crate) struct ConsumeResult {
    pub(crate) values: Vec<u64>,
    pub(crate) longest_gap: Duration,
}

impl ConsumeLoop {
    pub(crate) fn start(bootstrap: &str, topic: &str) -> ConsumeLoop {
        let until = Arc::new(AtomicUsize::new(usize::MAX));
        let (b, t, u) = (bootstrap.to_string(), topic.to_string(), until.clone());
        let handle = std::thread::spawn(move || {
            let consumer: BaseConsumer = client_config(&b)
                .set("group.id", util::unique("g"))
                .set("enable.auto.commit", "false")
                .set("topic.metadata.refresh.interval.ms", "1000")
                .create()
                .unwrap();
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(&t, 0, Offset::Beginning).unwrap();
            consumer.assign(&tpl).unwrap();
            let mut r = ConsumeResult::default();
            let mut last = Instant::now();
            let mut deadline: Option<Instant> = None;
            while r.values.len() < u.load(Ordering::Relaxed) {
                if u.load(Ordering::Relaxed) != usize::MAX {
                    let d =
                        *deadline.get_or_insert_with(|| Instant::now() + Duration::from_secs(90));
                    assert!(
                        Instant::now() < d,
                        "consumer stuck at {} records",
                        r.values.len()
                    );
                }
                let Some(m) = consumer.poll(Duration::from_millis(200)) else {
                    continue;
                };
                // A stopped broker shows up as transport errors: keep polling.
                let Ok(m) = m else { continue };
                assert_eq!(m.offset(), r.values.len() as i64, "contiguous offsets");
                let v = std::str::from_utf8(m.payload().unwrap()).unwrap();
                r.values.push(v.parse().unwrap());
                let now = Instant::now();
                r.longest_gap = r.longest_gap.max(now - last);
                last = now;
            }
            r
        });
        ConsumeLoop { until, handle }
    }

    /// Reads on until `count` records (everything the stopped producer wrote) have arrived.
    pub(crate) fn finish(self, count: usize) -> ConsumeResult {
        self.until.store(count, Ordering::Relaxed);
        self.handle.join().unwrap()
    }
}

/// `(offset, value)` of every record of partition 0 of `topic`, from offset 0 to the high
/// watermark; offsets must be contiguous.
pub(crate) fn read_partition0(bootstrap: &str, topic: &str) -> Vec<(i64, String)> {
    let consumer: BaseConsumer = client_config(bootstrap)
        .set("group.id", util::unique("g"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let (_, hw) = util::wait_until("high watermark", T, || {
        consumer
            .fetch_watermarks(topic, 0, Duration::from_secs(5))
            .ok()
    });
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    while (out.len() as i64) < hw {
        let next = out.len() as i64;
        assert!(
            Instant::now() < deadline,
            "timed out reading {topic} at {next} of {hw}"
        );
        let Some(m) = consumer.poll(Duration::from_millis(500)) else {
            continue;
        };
        // A stopped broker in the bootstrap list shows up as transport errors: keep polling.
        let Ok(m) = m else { continue };
        assert_eq!(m.offset(), next, "contiguous offsets");
        let v = String::from_utf8_lossy(m.payload().unwrap()).into_owned();
        out.push((next, v));
    }
    out
}

/// Every value (a number) in partition 0 of `topic`, from offset 0 to the high watermark.
pub(crate) fn consume_all(bootstrap: &str, topic: &str) -> Vec<u64> {
    read_partition0(bootstrap, topic)
        .into_iter()
        .map(|(_, v)| v.split(':').next().unwrap().parse().unwrap())
        .collect()
}

/// Acknowledged ⊆ consumed, consumed has no duplicates.
pub(crate) fn check_no_loss_no_dup(acked: &[u64], consumed: &[u64]) {
    let mut seen = HashSet::new();
    let dups: Vec<_> = consumed.iter().filter(|v| !seen.insert(**v)).collect();
    assert!(dups.is_empty(), "duplicated records: {dups:?}");
    let lost: BTreeSet<_> = acked.iter().filter(|v| !seen.contains(v)).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged records lost: {lost:?}",
        lost.len()
    );
}

#[test]
fn rf3_topic_lands_on_assignment_and_state_znodes() {
    let c = three("c-assign", &[]);
    let b = c.bootstrap();
    create_topic(&b, "a3", 3, 3, &[]);
    let assign = c.zk().json("/brokers/topics/a3").unwrap();
    assert_eq!(assign["version"], 3, "{assign}");
    let parts = assign["partitions"].as_object().unwrap();
    assert_eq!(parts.len(), 3, "{assign}");
    let mut firsts = BTreeSet::new();
    for p in 0..3 {
        let reps: Vec<i64> = parts[&p.to_string()]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_i64().unwrap())
            .collect();
        let set: BTreeSet<_> = reps.iter().copied().collect();
        assert_eq!(set, BTreeSet::from([1, 2, 3]), "partition {p}: {assign}");
        firsts.insert(reps[0]);
        let s = util::wait_until("state znode with full ISR", T, || {
            let s = state(&c, "a3", p)?;
            (s["isr"].as_array()?.len() == 3).then_some(s)
        });
        assert_eq!(
            s["leader"].as_i64().unwrap(),
            reps[0],
            "preferred leader: {s}"
        );
        assert_eq!(s["leader_epoch"], 0, "{s}");
        assert_eq!(s["version"], 1, "{s}");
        let ce = c.zk().get("/controller_epoch").unwrap().unwrap().text();
        assert_eq!(s["controller_epoch"].to_string(), ce.trim(), "{s}");
    }
    // Kafka's round-robin assignment spreads preferred leaders over the brokers.
    assert_eq!(firsts.len(), 3, "preferred leaders spread: {assign}");
    c.finish();
}

#[test]
fn leader_kill_during_idempotent_acks_all_loses_and_duplicates_nothing() {
    let mut c = three("c-kill", &[]);
    let b = c.bootstrap();
    create_topic(&b, "ik", 1, 3, &[("min.insync.replicas", "2")]);
    wait_isr(&c, "ik", 3, T);
    let leader = leader_of(&c, "ik");
    let p = ProduceLoop::start(&b, "ik");
    p.wait_progress(200, T);
    c.broker(leader).kill9();
    util::wait_until("new leader", T, || {
        let l = state(&c, "ik", 0)?["leader"].as_i64()? as i32;
        (l >= 0 && l != leader).then_some(())
    });
    // Producing continues on the new leader.
    p.wait_progress(500, Duration::from_secs(60));
    let r = p.finish();
    assert!(r.errors.is_empty(), "producer errors: {:?}", r.errors);
    assert!(
        r.acked.len() > 100,
        "too few records acknowledged: {}",
        r.acked.len()
    );
    let consumed = consume_all(&b, "ik");
    check_no_loss_no_dup(&r.acked, &consumed);
    eprintln!(
        "leader kill: {} acked, {} consumed, longest stall {:?}",
        r.acked.len(),
        consumed.len(),
        r.longest_stall
    );
    c.restart_killed(leader).unwrap();
    c.finish();
}

#[test]
fn not_enough_replicas_with_two_of_three_down() {
    let mut c = three("c-ner", &[("replica.lag.time.max.ms", "3000")]);
    let b = c.bootstrap();
    create_topic(&b, "ner", 1, 3, &[("min.insync.replicas", "2")]);
    wait_isr(&c, "ner", 3, T);
    let leader = leader_of(&c, "ner");
    for id in [1, 2, 3].into_iter().filter(|i| *i != leader) {
        c.broker(id).kill9();
    }
    wait_isr(&c, "ner", 1, Duration::from_secs(40));
    let producer: FutureProducer = client_config(&c.brokers[(leader - 1) as usize].addr())
        .set("acks", "all")
        .set("retries", "0")
        .set("message.timeout.ms", "20000")
        .create()
        .unwrap();
    let res = rt().block_on(async {
        producer
            .send(
                FutureRecord::to("ner").partition(0).key("k").payload("v"),
                Duration::from_secs(20),
            )
            .await
    });
    match res {
        Err((KafkaError::MessageProduction(RDKafkaErrorCode::NotEnoughReplicas), _)) => {}
        other => panic!("expected NOT_ENOUGH_REPLICAS, got {other:?}"),
    }
    drop(c);
}

#[test]
fn isr_shrinks_and_re_expands_when_a_follower_stops_and_returns() {
    let mut c = three("c-isr", &[("replica.lag.time.max.ms", "3000")]);
    let b = c.bootstrap();
    create_topic(&b, "isr", 1, 3, &[]);
    let s0 = wait_isr(&c, "isr", 3, T);
    let leader = s0["leader"].as_i64().unwrap() as i32;
    let follower = [1, 2, 3].into_iter().find(|i| *i != leader).unwrap();
    c.broker(follower).stop(T).unwrap();
    let s1 = wait_isr(&c, "isr", 2, Duration::from_secs(40));
    assert!(
        !s1["isr"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r.as_i64() == Some(follower as i64)),
        "{s1}"
    );
    assert_eq!(s1["leader"].as_i64().unwrap() as i32, leader, "{s1}");
    // Metadata from every live broker (each from its own UpdateMetadata cache) agrees.
    let mut shrunk: Vec<i32> = [1, 2, 3].into_iter().filter(|i| *i != follower).collect();
    shrunk.sort();
    let live: Vec<String> = c
        .brokers
        .iter()
        .filter(|x| x.id != Some(follower))
        .map(|x| x.addr())
        .collect();
    wait_metadata_isr(&live, "isr", &shrunk);
    c.broker(follower).start().unwrap();
    let s2 = wait_isr(&c, "isr", 3, Duration::from_secs(60));
    assert_eq!(s2["leader"].as_i64().unwrap() as i32, leader, "{s2}");
    let all: Vec<String> = c.brokers.iter().map(|x| x.addr()).collect();
    wait_metadata_isr(&all, "isr", &[1, 2, 3]);
    c.finish();
}

#[test]
fn controller_kill_moves_controller_and_topic_creation_still_works() {
    let mut c = three("c-ctl", &[]);
    let ctl = util::wait_until("/controller", T, || c.zk().json("/controller").ok());
    let old = ctl["brokerid"].as_i64().unwrap() as i32;
    let epoch = |c: &Cluster| -> Option<i64> {
        c.zk()
            .get("/controller_epoch")
            .ok()??
            .text()
            .trim()
            .parse()
            .ok()
    };
    let e0 = epoch(&c).unwrap();
    c.broker(old).kill9();
    let new = util::wait_until("new controller", T, || {
        let j = c.zk().json("/controller").ok()?;
        let id = j["brokerid"].as_i64()? as i32;
        (id != old).then_some(id)
    });
    assert_ne!(new, old);
    let e1 = util::wait_until("controller epoch bump", T, || epoch(&c).filter(|e| *e > e0));
    assert_eq!(e1, e0 + 1);
    let live: String = c
        .brokers
        .iter()
        .filter(|x| x.id != Some(old))
        .map(|x| x.addr())
        .collect::<Vec<_>>()
        .join(",");
    create_topic(&live, "after", 2, 2, &[]);
    for p in 0..2 {
        let s = util::wait_until("state of new topic", T, || state(&c, "after", p));
        assert_eq!(s["controller_epoch"].as_i64().unwrap(), e1, "{s}");
    }
    drop(c);
}

#[test]
fn controlled_shutdown_of_leader_moves_leadership_without_producer_errors() {
    let mut c = three("c-cs", &[]);
    let b = c.bootstrap();
    create_topic(&b, "cs", 1, 3, &[("min.insync.replicas", "2")]);
    wait_isr(&c, "cs", 3, T);
    let leader = leader_of(&c, "cs");
    let p = ProduceLoop::start(&b, "cs");
    p.wait_progress(200, T);
    let status = c.broker(leader).stop(Duration::from_secs(40)).unwrap();
    assert!(status.success(), "clean exit: {status}");
    // Controlled shutdown: leadership already moved when the process has exited.
    // A fresh ZooKeeper view: the cluster's own one is idle during stop() and its session may lapse.
    let zk = Zk::connect(&ZkFixture::shared().connect_string(), &c.chroot).unwrap();
    let s = zk.json("/brokers/topics/cs/partitions/0/state").unwrap();
    assert_ne!(s["leader"].as_i64().unwrap() as i32, leader, "{s}");
    p.wait_progress(500, T);
    let r = p.finish();
    assert!(r.errors.is_empty(), "producer errors: {:?}", r.errors);
    let consumed = consume_all(&b, "cs");
    check_no_loss_no_dup(&r.acked, &consumed);
    eprintln!("controlled shutdown: longest stall {:?}", r.longest_stall);
    c.finish();
}

#[test]
fn topic_deletion_removes_znodes_and_data_on_all_brokers() {
    // Deleted logs are renamed `<tp>.<uuid>-delete` and removed after file.delete.delay.ms
    // (broker default: log.segment.delete.delay.ms).
    let c = three("c-del", &[("log.segment.delete.delay.ms", "1000")]);
    let b = c.bootstrap();
    create_topic(&b, "gone", 2, 3, &[]);
    for p in 0..2 {
        util::wait_until("ISR 3", T, || {
            (state(&c, "gone", p)?["isr"].as_array()?.len() == 3).then_some(())
        });
    }
    for br in &c.brokers {
        for p in 0..2 {
            assert!(br.log_dir.join(format!("gone-{p}")).is_dir());
        }
    }
    let admin: AdminClient<DefaultClientContext> = client_config(&b).create().unwrap();
    let opts = AdminOptions::new().operation_timeout(Some(T));
    let res = rt()
        .block_on(admin.delete_topics(&["gone"], &opts))
        .unwrap();
    assert!(res.iter().all(|r| r.is_ok()), "{res:?}");
    util::wait_until("topic znodes gone", T, || {
        (c.zk().exists("/brokers/topics/gone").ok()?.is_none()
            && c.zk().exists("/admin/delete_topics/gone").ok()?.is_none()
            && c.zk().exists("/config/topics/gone").ok()?.is_none())
        .then_some(())
    });
    util::wait_until(
        "partition dirs gone on all brokers",
        Duration::from_secs(60),
        || {
            c.brokers
                .iter()
                .all(|br| {
                    std::fs::read_dir(&br.log_dir)
                        .map(|d| {
                            !d.flatten()
                                .any(|e| e.file_name().to_string_lossy().starts_with("gone-"))
                        })
                        .unwrap_or(false)
                })
                .then_some(())
        },
    );
    c.finish();
}

#[test]
fn rolling_restart_under_acks_all_produce_and_consume_loses_nothing() {
    let mut c = three("c-roll", &[]);
    let b = c.bootstrap();
    create_topic(&b, "roll", 1, 3, &[("min.insync.replicas", "2")]);
    wait_isr(&c, "roll", 3, T);
    let p = ProduceLoop::start(&b, "roll");
    let consumer = ConsumeLoop::start(&b, "roll");
    let has = |c: &Cluster, id: i32| -> Option<bool> {
        Some(
            state(c, "roll", 0)?["isr"]
                .as_array()?
                .iter()
                .any(|r| r.as_i64() == Some(id as i64)),
        )
    };
    for id in 1..=3 {
        p.wait_progress(200, T);
        c.broker(id).stop(Duration::from_secs(40)).unwrap();
        util::wait_until("stopped broker out of the ISR", T, || {
            (!has(&c, id)?).then_some(())
        });
        p.wait_progress(200, T);
        c.broker(id).start().unwrap();
        util::wait_until(
            "restarted broker back in the ISR",
            Duration::from_secs(60),
            || has(&c, id)?.then_some(()),
        );
    }
    p.wait_progress(200, T);
    let r = p.finish();
    assert!(r.acked.len() >= 1400, "acked {}", r.acked.len());
    assert!(r.errors.is_empty(), "producer errors: {:?}", r.errors);
    // Idempotent and error-free: the log holds exactly the acknowledged records.
    let live = consumer.finish(r.acked.len());
    check_no_loss_no_dup(&r.acked, &live.values);
    let consumed = consume_all(&b, "roll");
    check_no_loss_no_dup(&r.acked, &consumed);
    eprintln!(
        "rolling restart: {} acked, longest produce stall {:?}, longest consume gap {:?}",
        r.acked.len(),
        r.longest_stall,
        live.longest_gap
    );
    c.finish();
}
