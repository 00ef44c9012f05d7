//! Many-partition helpers shared by the scale e2e test and `examples/scale_bench.rs`
//! (issue 12): batched CreateTopics over the wire and each broker's view of every
//! partition's leader and ISR from one full Metadata request.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use kafka_protocol::messages::{
    create_topics_request::CreatableTopic, ApiKey, CreateTopicsRequest, CreateTopicsResponse,
    MetadataRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::wire::Conn;

/// (topic, partition) -> (leader, ISR) as one broker's Metadata answer shows it.
pub type View = BTreeMap<(String, i32), (i32, Vec<i32>)>;

/// A Metadata v12 request for all topics; None while the broker is unreachable.
pub fn metadata(addr: &str) -> Option<MetadataResponse> {
    let mut c = Conn::connect(addr).ok()?;
    c.set_read_timeout(Duration::from_secs(30)).ok()?;
    c.request(
        ApiKey::Metadata,
        12,
        &MetadataRequest::default().with_topics(None),
    )
    .ok()
}

/// Every non-internal partition in `addr`'s Metadata answer.
pub fn view(addr: &str) -> Option<View> {
    let md = metadata(addr)?;
    let mut v = View::new();
    for t in md.topics {
        let Some(name) = t.name else { continue };
        if name.0.starts_with("__") {
            continue;
        }
        for p in t.partitions {
            v.insert(
                (name.0.to_string(), p.partition_index),
                (p.leader_id.0, p.isr_nodes.iter().map(|b| b.0).collect()),
            );
        }
    }
    Some(v)
}

/// The controller id `addr` reports.
pub fn controller_id(addr: &str) -> Option<i32> {
    metadata(addr).map(|m| m.controller_id.0)
}

/// Creates `topics` (each `partitions` × RF `rf`) with CreateTopics v7 sent to `controller`,
/// `batch` topics per request (as one Admin call with many topics would).
pub fn create_topics(
    controller: &str,
    topics: &[String],
    partitions: i32,
    rf: i16,
    batch: usize,
) -> Result<()> {
    let mut conn = Conn::connect(controller)?;
    conn.set_read_timeout(Duration::from_secs(300))?;
    for chunk in topics.chunks(batch.max(1)) {
        let req = CreateTopicsRequest::default()
            .with_timeout_ms(120_000)
            .with_topics(
                chunk
                    .iter()
                    .map(|t| {
                        CreatableTopic::default()
                            .with_name(TopicName(StrBytes::from_string(t.clone())))
                            .with_num_partitions(partitions)
                            .with_replication_factor(rf)
                    })
                    .collect(),
            );
        let resp: CreateTopicsResponse = conn.request(ApiKey::CreateTopics, 7, &req)?;
        for t in resp.topics {
            if t.error_code != 0 {
                bail!(
                    "create {}: error {} {:?}",
                    t.name.0,
                    t.error_code,
                    t.error_message
                );
            }
        }
    }
    Ok(())
}

/// Polls (every 20 ms, or as long as a poll takes if longer) until `ok` holds for the views of all `addrs`; returns the seconds
/// since `start`, or an error naming `what` after `timeout`.
pub fn until_all(
    what: &str,
    addrs: &[String],
    start: Instant,
    timeout: Duration,
    ok: impl Fn(&View) -> bool,
) -> Result<f64> {
    loop {
        let polled = Instant::now();
        if addrs.iter().all(|a| view(a).is_some_and(|v| ok(&v))) {
            return Ok(start.elapsed().as_secs_f64());
        }
        if start.elapsed() > timeout {
            bail!("{what}: not reached within {timeout:?}");
        }
        // Polling costs the brokers full Metadata answers: pause at least as long as a poll
        // took, so with tens of thousands of partitions the poll is not the load measured.
        std::thread::sleep(polled.elapsed().max(Duration::from_millis(20)));
    }
}
