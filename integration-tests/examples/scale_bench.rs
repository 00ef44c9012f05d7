//! Partition-scale benchmark (issue 12): ZooKeeper and 3 brokers, topics of `PER_TOPIC`
//! partitions at RF 3 totalling `PARTITIONS`, then timed cluster operations. Starts everything
//! itself (the e2e fixtures; `SAMSA_BROKER_BIN` picks the broker, use a release build). Run by
//! `scripts/bench-scale.sh`, which builds the release broker and prints the command it ran.
//!
//! Measured, in this order, each printed as one `RESULT name value unit` line:
//! * `create`: CreateTopics sent to the controller (batches of `CREATE_BATCH` topics, as one
//!   Admin call would) until every live broker's Metadata shows a leader for every partition;
//! * `metadata_full`: a Metadata request for all topics (median and max of 7);
//! * idle cost per broker: CPU over `IDLE_SECS`, resident memory (total, and anonymous, i.e.
//!   beyond the page cache) minus the same broker's figure before any topic existed, divided
//!   by its replicas; open files and memory maps;
//! * `controlled_shutdown`: SIGTERM to exit of a non-controller broker, the time until the
//!   other brokers' Metadata shows new leaders for everything it led, and the longest gap
//!   between acknowledged records of a librdkafka producer writing to partitions it led;
//! * `restart_clean`: start of that broker until it is in the ISR of every partition;
//! * `failover`: `kill -9` of the controller until a new controller is registered (the
//!   session-expiry wait) and from then until every live broker's Metadata shows a live
//!   leader for every partition the dead broker led;
//! * `restart_unclean`: the killed broker's start until it is back in every ISR.
//!
//! Knobs: `PARTITIONS` (1000), `PER_TOPIC` (100), `CREATE_BATCH` (50), `IDLE_SECS` (10),
//! `SESSION_MS` (ZooKeeper session timeout, 6000), `PHASES` (comma-separated subset of
//! `metadata,idle,shutdown,failover`; default all; creation always runs; `shutdown` includes
//! the clean restart, `failover` the restart after kill -9).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark program: failures abort it

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseRecord, DeliveryResult, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;
use samsa_integration_tests::scale::{self, metadata, view, View};
use samsa_integration_tests::Cluster;

fn env(k: &str, d: u64) -> u64 {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

fn result(name: &str, value: f64, unit: &str) {
    println!("RESULT {name} {value:.3} {unit}");
}

/// Polls until `ok` holds for the views of all `addrs` (deadline 600 s); returns the seconds.
fn until_all(addrs: &[String], start: Instant, ok: impl Fn(&View) -> bool) -> f64 {
    scale::until_all("condition", addrs, start, Duration::from_secs(600), ok).unwrap()
}

fn controller_id(addr: &str) -> i32 {
    scale::controller_id(addr).expect("metadata")
}

struct ProcStats {
    cpu_s: f64,
    rss_kb: u64,
    anon_kb: u64,
    fds: usize,
    maps: usize,
}

fn proc_stats(pid: u32) -> ProcStats {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split(' ').collect();
    // Fields 14 and 15 (utime, stime) are at 11 and 12 after the state field.
    let tck = clk_tck();
    let cpu_s = (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) / tck;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    ProcStats {
        cpu_s,
        rss_kb: kb("VmRSS:"),
        anon_kb: kb("RssAnon:"),
        fds: std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .count(),
        maps: std::fs::read_to_string(format!("/proc/{pid}/maps"))
            .unwrap()
            .lines()
            .count(),
    }
}

/// Clock ticks per second (always 100 on Linux x86-64; asked of `getconf` to be sure).
fn clk_tck() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Acknowledgement times per partition, filled by librdkafka's delivery callback.
#[derive(Clone, Default)]
struct Acks {
    at: Arc<Mutex<BTreeMap<i32, Vec<Instant>>>>,
    errors: Arc<AtomicU64>,
}

impl ClientContext for Acks {}

impl ProducerContext for Acks {
    type DeliveryOpaque = ();
    fn delivery(&self, r: &DeliveryResult<'_>, _: ()) {
        use rdkafka::message::Message;
        match r {
            Ok(m) => self
                .at
                .lock()
                .unwrap()
                .entry(m.partition())
                .or_default()
                .push(Instant::now()),
            Err(_) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Produces to `parts` of `topic` (one record per partition every 10 ms) until stopped.
fn start_producer(
    bootstrap: &str,
    topic: &str,
    parts: Vec<i32>,
    stop: Arc<AtomicBool>,
) -> (Acks, std::thread::JoinHandle<()>) {
    let acks = Acks::default();
    let producer: ThreadedProducer<Acks> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "0")
        .set("acks", "all")
        .set("message.timeout.ms", "60000")
        .set("log_level", "3")
        .create_with_context(acks.clone())
        .unwrap();
    let topic = topic.to_string();
    let h = std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            for &p in &parts {
                let _ = producer.send(BaseRecord::<(), str>::to(&topic).partition(p).payload("x"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = rdkafka::producer::Producer::flush(&producer, Duration::from_secs(60));
    });
    (acks, h)
}

/// Longest gap between consecutive acknowledgements of one partition, in seconds.
fn longest_stall(acks: &Acks) -> f64 {
    let at = acks.at.lock().unwrap();
    at.values()
        .flat_map(|v| v.windows(2).map(|w| (w[1] - w[0]).as_secs_f64()))
        .fold(0.0, f64::max)
}

fn main() {
    let n = env("PARTITIONS", 1000) as i32;
    let per_topic = env("PER_TOPIC", 100) as i32;
    let batch = env("CREATE_BATCH", 50) as usize;
    let idle_secs = env("IDLE_SECS", 10);
    let session_ms = env("SESSION_MS", 6000);
    let phases = std::env::var("PHASES").unwrap_or_default();
    let phase = |name: &str| phases.is_empty() || phases.split(',').any(|p| p.trim() == name);
    let topics: Vec<String> = (0..n / per_topic).map(|i| format!("s{i:05}")).collect();
    println!(
        "scale_bench: {n} partitions ({} topics x {per_topic}), RF 3, 3 brokers, session {session_ms} ms",
        topics.len()
    );

    let mut c = Cluster::builder("scale")
        .brokers(3)
        .prop("zookeeper.session.timeout.ms", session_ms)
        .prop("auto.leader.rebalance.enable", "false")
        .start();
    c.wait_registered(Duration::from_secs(60));
    let addrs: Vec<String> = c.brokers.iter().map(|b| b.addr()).collect();
    let addr_of =
        |c: &Cluster, id: i32| c.brokers.iter().find(|b| b.id == Some(id)).unwrap().addr();
    let base: Vec<ProcStats> = c
        .brokers
        .iter()
        .map(|b| proc_stats(b.pid().unwrap()))
        .collect();

    // --- create
    let ctrl = controller_id(&addrs[0]);
    let t0 = Instant::now();
    scale::create_topics(&addr_of(&c, ctrl), &topics, per_topic, 3, batch).unwrap();
    let answered = t0.elapsed().as_secs_f64();
    let create = until_all(&addrs, t0, |v| {
        v.len() == n as usize && v.values().all(|(l, isr)| *l >= 0 && isr.len() == 3)
    });
    result("create_answered", answered, "s");
    result("create_all_leaders", create, "s");

    // --- full Metadata
    std::thread::sleep(Duration::from_secs(2));
    if phase("metadata") {
        let mut lat = Vec::new();
        for _ in 0..7 {
            let t = Instant::now();
            let md = metadata(&addrs[1]).unwrap();
            lat.push(t.elapsed().as_secs_f64() * 1000.0);
            assert!(md.topics.len() >= topics.len());
        }
        lat.sort_by(f64::total_cmp);
        result("metadata_full_median", lat[3], "ms");
        result("metadata_full_max", lat[6], "ms");
    }

    // --- idle
    if phase("idle") {
        std::thread::sleep(Duration::from_secs(3));
        let before: Vec<ProcStats> = c
            .brokers
            .iter()
            .map(|b| proc_stats(b.pid().unwrap()))
            .collect();
        std::thread::sleep(Duration::from_secs(idle_secs));
        for (i, b) in c.brokers.iter().enumerate() {
            let s = proc_stats(b.pid().unwrap());
            let id = b.id.unwrap();
            result(
                &format!("idle_cpu_b{id}"),
                100.0 * (s.cpu_s - before[i].cpu_s) / idle_secs as f64,
                "%core",
            );
            let replicas = n as f64; // RF 3 on 3 brokers: every broker holds every partition
            result(
                &format!("rss_per_replica_b{id}"),
                (s.rss_kb as f64 - base[i].rss_kb as f64) / replicas,
                "KB",
            );
            result(
                &format!("anon_per_replica_b{id}"),
                (s.anon_kb as f64 - base[i].anon_kb as f64) / replicas,
                "KB",
            );
            result(&format!("rss_b{id}"), s.rss_kb as f64 / 1024.0, "MB");
            result(&format!("open_files_b{id}"), s.fds as f64, "fds");
            result(&format!("maps_b{id}"), s.maps as f64, "maps");
        }
    }

    // --- controlled shutdown of a non-controller broker
    if phase("shutdown") {
        let ctrl = controller_id(&addrs[0]);
        let victim = c
            .brokers
            .iter()
            .map(|b| b.id.unwrap())
            .find(|&id| id != ctrl)
            .unwrap();
        let v0 = view(&addr_of(&c, ctrl)).unwrap();
        let led: BTreeSet<(String, i32)> = v0
            .iter()
            .filter(|(_, (l, _))| *l == victim)
            .map(|(k, _)| k.clone())
            .collect();
        println!(
            "controller {ctrl}; broker {victim} leads {} partitions",
            led.len()
        );
        let probe_topic = topics[0].clone();
        let probe_parts: Vec<i32> = led
            .iter()
            .filter(|(t, _)| *t == probe_topic)
            .map(|(_, p)| *p)
            .collect();
        let stop = Arc::new(AtomicBool::new(false));
        let others: Vec<String> = c
            .brokers
            .iter()
            .filter(|b| b.id != Some(victim))
            .map(|b| b.addr())
            .collect();
        let (acks, h) = start_producer(&others.join(","), &probe_topic, probe_parts, stop.clone());
        std::thread::sleep(Duration::from_secs(3));
        let t0 = Instant::now();
        c.broker(victim).stop(Duration::from_secs(300)).unwrap();
        let exit = t0.elapsed().as_secs_f64();
        let moved = until_all(&others, t0, |v| {
            led.iter()
                .all(|k| v.get(k).is_some_and(|(l, _)| *l >= 0 && *l != victim))
        });
        std::thread::sleep(Duration::from_secs(3));
        stop.store(true, Ordering::Relaxed);
        h.join().unwrap();
        result("controlled_shutdown_exit", exit, "s");
        result("controlled_shutdown_leaders_moved", moved, "s");
        result(
            "controlled_shutdown_longest_produce_stall",
            longest_stall(&acks),
            "s",
        );
        result(
            "controlled_shutdown_produce_errors",
            acks.errors.load(Ordering::Relaxed) as f64,
            "records",
        );

        // --- clean restart
        let t0 = Instant::now();
        c.broker(victim).start().unwrap();
        let ready = t0.elapsed().as_secs_f64();
        let ctrl_addr = addr_of(&c, ctrl);
        let isr = until_all(std::slice::from_ref(&ctrl_addr), t0, |v| {
            v.len() == n as usize && v.values().all(|(_, isr)| isr.contains(&victim))
        });
        result("restart_clean_serving", ready, "s");
        result("restart_clean_in_isr", isr, "s");
    }

    // --- controller failover
    if phase("failover") {
        let ctrl = controller_id(&addrs[0]);
        let v0 = view(&addr_of(&c, ctrl)).unwrap();
        let led: BTreeSet<(String, i32)> = v0
            .iter()
            .filter(|(_, (l, _))| *l == ctrl)
            .map(|(k, _)| k.clone())
            .collect();
        println!("controller {ctrl} leads {} partitions; kill -9", led.len());
        let live: Vec<String> = c
            .brokers
            .iter()
            .filter(|b| b.id != Some(ctrl))
            .map(|b| b.addr())
            .collect();
        let t0 = Instant::now();
        c.broker(ctrl).kill9();
        let expiry = loop {
            let now_ctrl = c
                .zk()
                .get("/controller")
                .ok()
                .flatten()
                .and_then(|n| n.json().ok())
                .and_then(|j| j["brokerid"].as_i64());
            if now_ctrl.is_some_and(|id| id != ctrl as i64) {
                break t0.elapsed().as_secs_f64();
            }
            assert!(t0.elapsed() < Duration::from_secs(120), "no new controller");
            std::thread::sleep(Duration::from_millis(10));
        };
        let done = until_all(&live, t0, |v| {
            led.iter()
                .all(|k| v.get(k).is_some_and(|(l, _)| *l >= 0 && *l != ctrl))
        });
        result("failover_session_expiry_wait", expiry, "s");
        result("failover_after_new_controller", done - expiry, "s");

        // --- restart after kill -9
        let t0 = Instant::now();
        c.restart_killed(ctrl).unwrap();
        let ready = t0.elapsed().as_secs_f64();
        let any_live = live[0].clone();
        let isr = until_all(std::slice::from_ref(&any_live), t0, |v| {
            v.len() == n as usize && v.values().all(|(_, isr)| isr.contains(&ctrl))
        });
        result("restart_unclean_serving", ready, "s");
        result("restart_unclean_in_isr", isr, "s");
    }
    c.finish();
}
