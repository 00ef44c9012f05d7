//! Connection-scale benchmark (issue 12): one broker (the e2e fixtures; `SAMSA_BROKER_BIN`
//! picks the build), an active client producing one small record at a time (acks=1, Produce
//! v9 over a raw connection, the next request sent when the answer is in), and `CONNS`
//! (10,000) idle client connections that each completed an ApiVersions exchange.
//!
//! Prints `RESULT name value unit` lines:
//! * `produce_p50_alone` / `produce_p99_alone`: latency of `PRODUCES` requests, no idle
//!   connections;
//! * `conn_rate`: idle connections opened per second (connect plus ApiVersions answered,
//!   `OPENERS` threads in parallel);
//! * `rss_per_conn` / `anon_per_conn`: the broker's resident (and anonymous) memory growth
//!   divided by the connections, measured after they are all open;
//! * `produce_p50_with_idle` / `produce_p99_with_idle`: the same produce run beside them;
//! * `broker_fds`: the broker's open descriptors with them.
//!
//! Knobs: `CONNS` (10000), `PRODUCES` (3000), `OPENERS` (4). Needs an open-files limit above
//! `CONNS` for both processes (the broker raises its own to the hard limit; this program
//! does the same).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark program: failures abort it

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use samsa_integration_tests::{wait_until, wire, Cluster};

fn env(k: &str, d: u64) -> u64 {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

fn result(name: &str, value: f64, unit: &str) {
    println!("RESULT {name} {value:.3} {unit}");
}

fn raise_nofile() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
}

fn mem_kb(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0u64)
    };
    (kb("VmRSS:"), kb("RssAnon:"))
}

fn batch() -> Bytes {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let r = Record {
        transactional: false,
        control: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: now,
        key: None,
        value: Some(Bytes::from_static(b"0123456789abcdef0123456789abcdef")),
        headers: IndexMap::new(),
    };
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        std::iter::once(&r),
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .unwrap();
    buf.freeze()
}

fn produce_req(topic: &str) -> ProduceRequest {
    let mut p = PartitionProduceData::default();
    p.index = 0;
    p.records = Some(batch());
    let mut t = TopicProduceData::default();
    t.name = TopicName(topic.to_string().into());
    t.partition_data = vec![p];
    let mut req = ProduceRequest::default();
    req.acks = 1;
    req.timeout_ms = 30_000;
    req.topic_data = vec![t];
    req
}

/// Latencies (ms) of `n` sequential produce requests: (p50, p99).
fn produce_run(addr: &str, topic: &str, n: usize) -> (f64, f64) {
    let mut c = wire::Conn::connect(addr).unwrap();
    let req = produce_req(topic);
    // Warm-up.
    for _ in 0..50 {
        let r: ProduceResponse = c.request(ApiKey::Produce, 9, &req).unwrap();
        assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
    }
    let mut lat: Vec<f64> = (0..n)
        .map(|_| {
            let t = Instant::now();
            let r: ProduceResponse = c.request(ApiKey::Produce, 9, &req).unwrap();
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
            ms
        })
        .collect();
    lat.sort_by(f64::total_cmp);
    (lat[n / 2], lat[(n * 99) / 100])
}

fn main() {
    raise_nofile();
    let conns = env("CONNS", 10_000) as usize;
    let produces = env("PRODUCES", 3000) as usize;
    let openers = env("OPENERS", 4).max(1) as usize;
    println!("conn_bench: {conns} idle connections, {produces} produces, {openers} openers");
    let c = Cluster::builder("connbench").brokers(1).start();
    c.wait_registered(Duration::from_secs(60));
    let addr = c.brokers[0].addr();
    let pid = c.brokers[0].pid().unwrap();
    samsa_integration_tests::scale::create_topics(&addr, &["cb".to_string()], 1, 1, 1).unwrap();
    wait_until("leader", Duration::from_secs(60), || {
        let v = samsa_integration_tests::scale::view(&addr)?;
        v.get(&("cb".to_string(), 0))
            .filter(|(l, _)| *l >= 0)
            .map(|_| ())
    });

    let (p50, p99) = produce_run(&addr, "cb", produces);
    result("produce_p50_alone", p50, "ms");
    result("produce_p99_alone", p99, "ms");

    std::thread::sleep(Duration::from_secs(2));
    let (rss0, anon0) = mem_kb(pid);
    let t0 = Instant::now();
    let per = conns.div_ceil(openers);
    let handles: Vec<_> = (0..openers)
        .map(|i| {
            let addr = addr.clone();
            let n = per.min(conns.saturating_sub(i * per));
            std::thread::spawn(move || {
                (0..n)
                    .map(|_| {
                        let mut c = wire::Conn::connect(&addr).unwrap();
                        assert!(c.api_versions_answered().unwrap());
                        c
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let idle: Vec<wire::Conn> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let secs = t0.elapsed().as_secs_f64();
    result("conn_rate", idle.len() as f64 / secs, "conn/s");
    std::thread::sleep(Duration::from_secs(3));
    let (rss1, anon1) = mem_kb(pid);
    result(
        "rss_per_conn",
        (rss1 as f64 - rss0 as f64) / idle.len() as f64,
        "KB",
    );
    result(
        "anon_per_conn",
        (anon1 as f64 - anon0 as f64) / idle.len() as f64,
        "KB",
    );
    result(
        "broker_fds",
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .count() as f64,
        "fds",
    );

    let (p50, p99) = produce_run(&addr, "cb", produces);
    result("produce_p50_with_idle", p50, "ms");
    result("produce_p99_with_idle", p99, "ms");
    drop(idle);
    c.finish();
}
