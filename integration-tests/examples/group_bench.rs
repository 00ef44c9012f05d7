//! Consumer-group benchmark (issue 5): rebalance time of 10 librdkafka consumers joining one
//! group, and offset-commit throughput. Starts its own ZooKeeper and brokers (the e2e
//! fixtures; `SAMSA_BROKER_BIN` picks the binary, use a release build), prints one line per
//! run and the medians.
//!
//! ```text
//! cargo build --release -p samsa-broker
//! SAMSA_BROKER_BIN=$PWD/target/release/samsa-broker \
//!     cargo run --release -p samsa-integration-tests --example group_bench
//! ```
//! Knobs: `RUNS` (5), `COMMIT_SECS` (5), `BROKERS` (3; `__consumer_offsets` RF = brokers).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark program: failures abort it

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use samsa_integration_tests::Cluster;

const MEMBERS: usize = 10;

fn env(k: &str, d: u64) -> u64 {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn consumer(bootstrap: &str, group: &str, heartbeat_ms: u64) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", heartbeat_ms.to_string())
        .set("enable.auto.commit", "false")
        .set("partition.assignment.strategy", "range")
        .set("log_level", "3")
        .create()
        .expect("consumer")
}

fn create_topic(bootstrap: &str, name: &str, partitions: i32, rf: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let nt = NewTopic::new(name, partitions, TopicReplication::Fixed(rf));
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for r in rt.block_on(admin.create_topics([&nt], &opts)).unwrap() {
        r.expect("topic created");
    }
}

/// Seconds from the start of 10 consumers subscribing until each holds exactly one of the 10
/// partitions (disjoint and complete).
fn rebalance_once(bootstrap: &str, group: &str, heartbeat_ms: u64) -> f64 {
    let assigned: Arc<Mutex<Vec<BTreeSet<i32>>>> =
        Arc::new(Mutex::new(vec![BTreeSet::new(); MEMBERS]));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let threads: Vec<_> = (0..MEMBERS)
        .map(|i| {
            let (assigned, stop) = (assigned.clone(), stop.clone());
            let (bootstrap, group) = (bootstrap.to_string(), group.to_string());
            std::thread::spawn(move || {
                let c = consumer(&bootstrap, &group, heartbeat_ms);
                c.subscribe(&["gb"]).unwrap();
                while !stop.load(Ordering::Relaxed) {
                    let _ = c.poll(Duration::from_millis(5));
                    let a: BTreeSet<i32> = c
                        .assignment()
                        .map(|l| l.elements().iter().map(|e| e.partition()).collect())
                        .unwrap_or_default();
                    assigned.lock().unwrap()[i] = a;
                }
                c.unsubscribe();
            })
        })
        .collect();
    let deadline = start + Duration::from_secs(120);
    let elapsed = loop {
        {
            let a = assigned.lock().unwrap();
            let all: BTreeSet<i32> = a.iter().flatten().copied().collect();
            if a.iter().all(|s| s.len() == 1) && all.len() == MEMBERS {
                break start.elapsed().as_secs_f64();
            }
        }
        assert!(Instant::now() < deadline, "group never settled");
        std::thread::sleep(Duration::from_millis(2));
    };
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    elapsed
}

/// Synchronous commits per second from `clients` consumers (each in its own group, committing
/// one partition in a loop) for `secs` seconds.
fn commits_once(bootstrap: &str, run: u64, clients: usize, secs: u64) -> f64 {
    let total = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..clients)
        .map(|i| {
            let total = total.clone();
            let bootstrap = bootstrap.to_string();
            std::thread::spawn(move || {
                let c = consumer(&bootstrap, &format!("commit-{run}-{i}"), 3000);
                let mut n = 0i64;
                // The first commit finds the coordinator (and may create __consumer_offsets).
                let mut tpl = TopicPartitionList::new();
                tpl.add_partition_offset("gb", i as i32 % 10, Offset::Offset(0))
                    .unwrap();
                while c.commit(&tpl, CommitMode::Sync).is_err() {
                    std::thread::sleep(Duration::from_millis(100));
                }
                let end = Instant::now() + Duration::from_secs(secs);
                while Instant::now() < end {
                    n += 1;
                    let mut tpl = TopicPartitionList::new();
                    tpl.add_partition_offset("gb", i as i32 % 10, Offset::Offset(n))
                        .unwrap();
                    c.commit(&tpl, CommitMode::Sync).expect("commit");
                    total.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    total.load(Ordering::Relaxed) as f64 / secs as f64
}

fn main() {
    let runs = env("RUNS", 5);
    let secs = env("COMMIT_SECS", 5);
    let brokers = env("BROKERS", 3) as i32;
    for (label, delay, heartbeat) in [
        ("default group.initial.rebalance.delay.ms=3000", 3000, 3000),
        (
            "group.initial.rebalance.delay.ms=0, heartbeat.interval.ms=100",
            0,
            100,
        ),
    ] {
        let cluster = Cluster::builder("gbench")
            .brokers(brokers)
            .prop("offsets.topic.replication.factor", brokers)
            .prop("offsets.topic.num.partitions", 10)
            .prop("group.initial.rebalance.delay.ms", delay)
            .start();
        let b = cluster.bootstrap();
        create_topic(&b, "gb", MEMBERS as i32, brokers);
        // Warm-up: creates __consumer_offsets and connections.
        rebalance_once(&b, "warmup", heartbeat);
        let times: Vec<f64> = (0..runs)
            .map(|r| {
                let t = rebalance_once(&b, &format!("rb-{r}"), heartbeat);
                println!("rebalance [{label}] run {r}: {t:.3} s");
                t
            })
            .collect();
        println!(
            "REBALANCE {MEMBERS} consumers, {brokers} brokers, {label}: median {:.3} s",
            median(times)
        );
        if delay == 0 {
            for clients in [1usize, 8] {
                let rates: Vec<f64> = (0..runs.min(3))
                    .map(|r| {
                        let v = commits_once(&b, r * 100 + clients as u64, clients, secs);
                        println!("commits [{clients} clients] run {r}: {v:.0}/s");
                        v
                    })
                    .collect();
                println!(
                    "COMMITS sync, {clients} client(s), {brokers} brokers (acks -1, RF {brokers}): median {:.0} commits/s",
                    median(rates)
                );
            }
        }
        cluster.finish();
    }
}
