//! Compaction of a compacted transactional topic end to end: librdkafka's transactional producer
//! writes committed and aborted transactions over the same keys to a `cleanup.policy=compact`
//! topic with tiny segments; the log cleaner removes the aborted data, keeps the latest committed
//! value of every key, and drops the markers of emptied transactions once `delete.retention.ms`
//! has passed (a second cleaning round, KIP-534), as Kafka's cleaner does.

#![allow(clippy::field_reassign_with_default)]

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::{Buf, Bytes};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{ApiKey, BrokerId, FetchRequest, FetchResponse, TopicName};
use kafka_protocol::records::RecordBatchDecoder;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use samsa_integration_tests::{wait_until, wire, Cluster};

use crate::common::{client_config, create_topic};

const T: Duration = Duration::from_secs(120);

/// One entry of the log as a read_uncommitted Fetch returns it.
#[derive(Debug, Clone)]
enum Entry {
    Data {
        offset: i64,
        key: String,
        value: String,
    },
    /// A control record: `commit` false = ABORT.
    Marker { offset: i64, commit: bool },
}

/// Every batch of partition 0 of `topic` from the log start to the high watermark
/// (read_uncommitted, so aborted data and markers are visible).
fn read_log(addr: &str, topic: &str) -> Vec<Entry> {
    let mut conn = wire::Conn::connect(addr).unwrap();
    let mut out = Vec::new();
    let mut next = 0i64;
    loop {
        let mut p = FetchPartition::default();
        p.partition = 0;
        p.fetch_offset = next;
        p.partition_max_bytes = 1 << 20;
        p.log_start_offset = -1;
        p.current_leader_epoch = -1;
        let mut t = FetchTopic::default();
        t.topic = TopicName(topic.to_string().into());
        t.partitions = vec![p];
        let mut req = FetchRequest::default();
        req.replica_id = BrokerId(-1);
        req.max_wait_ms = 0;
        req.min_bytes = 0;
        req.max_bytes = 1 << 20;
        req.isolation_level = 0;
        req.topics = vec![t];
        let resp: FetchResponse = conn.request(ApiKey::Fetch, 11, &req).unwrap();
        let part = &resp.responses[0].partitions[0];
        if part.error_code == 1 {
            // OFFSET_OUT_OF_RANGE: start over from the log start.
            next = part.log_start_offset.max(0);
            out.clear();
            continue;
        }
        assert_eq!(part.error_code, 0, "fetch error");
        let hw = part.high_watermark;
        let mut buf = part.records.clone().unwrap_or_default();
        let before = next;
        while buf.remaining() >= 61 {
            let base = i64::from_be_bytes(buf[0..8].try_into().unwrap());
            let len = i32::from_be_bytes(buf[8..12].try_into().unwrap()) as usize;
            if buf.remaining() < 12 + len {
                break;
            }
            let delta = i32::from_be_bytes(buf[23..27].try_into().unwrap());
            let attrs = i16::from_be_bytes(buf[21..23].try_into().unwrap());
            let mut batch: Bytes = buf.split_to(12 + len);
            next = next.max(base + i64::from(delta) + 1);
            let set = RecordBatchDecoder::decode(&mut batch).unwrap();
            for r in set.records {
                let key = r.key.clone().unwrap_or_default();
                if attrs & 0x20 != 0 {
                    // Control record key: version (int16), type (int16; 0 ABORT, 1 COMMIT).
                    let ty = i16::from_be_bytes(key[2..4].try_into().unwrap());
                    out.push(Entry::Marker {
                        offset: r.offset,
                        commit: ty == 1,
                    });
                } else {
                    out.push(Entry::Data {
                        offset: r.offset,
                        key: String::from_utf8_lossy(&key).into_owned(),
                        value: String::from_utf8_lossy(&r.value.clone().unwrap_or_default())
                            .into_owned(),
                    });
                }
            }
        }
        if next >= hw || next == before {
            return out;
        }
    }
}

fn txn(p: &BaseProducer, topic: &str, records: &[(String, String)], commit: bool) {
    p.begin_transaction().unwrap();
    for (k, v) in records {
        p.send(BaseRecord::to(topic).partition(0).key(k).payload(v))
            .unwrap();
    }
    p.flush(T).unwrap();
    if commit {
        p.commit_transaction(T).unwrap();
    } else {
        p.abort_transaction(T).unwrap();
    }
}

fn kv(prefix: &str, keys: std::ops::Range<i32>, value: &str) -> Vec<(String, String)> {
    // Values padded so that a few records fill a segment.
    keys.map(|i| {
        (
            format!("{prefix}{i}"),
            format!("{value}-{i}-{}", "x".repeat(60)),
        )
    })
    .collect()
}

#[test]
fn txn_compacted_topic_drops_aborted_data_and_markers() {
    let cluster = Cluster::builder("txncompact")
        .brokers(1)
        .prop("log.cleaner.backoff.ms", 200)
        .start();
    cluster.wait_registered(T);
    let b = cluster.bootstrap();
    create_topic(
        &b,
        "ctx",
        1,
        1,
        &[
            ("cleanup.policy", "compact"),
            ("segment.bytes", "1024"),
            ("min.cleanable.dirty.ratio", "0.01"),
            ("delete.retention.ms", "2000"),
            ("min.compaction.lag.ms", "0"),
        ],
    );
    let p: BaseProducer = client_config(&b)
        .set("transactional.id", "compact-tx")
        .set("transaction.timeout.ms", "60000")
        .create()
        .unwrap();
    p.init_transactions(T).unwrap();
    txn(&p, "ctx", &kv("k", 0..10, "first"), true);
    txn(&p, "ctx", &kv("k", 0..10, "aborted"), false);
    txn(&p, "ctx", &kv("k", 0..5, "second"), true);
    let addr = cluster.brokers[0].addr();
    let before = read_log(&addr, "ctx");
    assert!(before
        .iter()
        .any(|e| matches!(e, Entry::Marker { commit: false, .. })));

    // Filler transactions over keys f0..f9 keep rolling segments (and the log dirty), so the
    // cleaner runs again after the markers' delete horizon.
    let mut round = 0;
    let log = wait_until("aborted data and its marker cleaned away", T, || {
        round += 1;
        txn(&p, "ctx", &kv("f", 0..10, &format!("fill{round}")), true);
        let log = read_log(&addr, "ctx");
        let aborted_data = log
            .iter()
            .any(|e| matches!(e, Entry::Data { value, .. } if value.starts_with("aborted")));
        let abort_markers = log
            .iter()
            .any(|e| matches!(e, Entry::Marker { commit: false, .. }));
        // Committed transactions whose data was all overwritten lose their markers too.
        let commits = log
            .iter()
            .filter(|e| matches!(e, Entry::Marker { commit: true, .. }))
            .count();
        (!aborted_data && !abort_markers && commits < 2 + round).then_some(log)
    });
    eprintln!(
        "compaction: {} entries before, {} after {round} filler transactions",
        before.len(),
        log.len()
    );
    // Committed data: the latest value of every key survives.
    let mut latest: BTreeMap<String, String> = BTreeMap::new();
    for e in &log {
        if let Entry::Data { key, value, .. } = e {
            latest.insert(key.clone(), value.clone());
        }
    }
    for i in 0..10 {
        let v = &latest[&format!("k{i}")];
        let want = if i < 5 { "second" } else { "first" };
        assert!(v.starts_with(&format!("{want}-{i}-")), "k{i} = {v}");
    }
    // Offsets only grow.
    let offsets: Vec<i64> = log
        .iter()
        .map(|e| match e {
            Entry::Data { offset, .. } | Entry::Marker { offset, .. } => *offset,
        })
        .collect();
    assert!(offsets.windows(2).all(|w| w[0] < w[1]));
    drop(p);
    cluster.finish();
}
