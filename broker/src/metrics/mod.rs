//! Kafka's broker metrics, exported over HTTP in the Prometheus text format under the
//! names the Prometheus JMX exporter gives them with Strimzi's standard Kafka rules
//! (`kafka-metrics.yaml`), so existing dashboards and alerts work unchanged.
//!
//! Three kinds of numbers, three ways of keeping them:
//! * **Counters on the request path** (BrokerTopicMetrics, RequestMetrics, ISR changes, log
//!   flushes) are plain atomics in a process-wide [`Registry`] — like Kafka's default Yammer
//!   registry — so any layer can charge them without plumbing: one relaxed `fetch_add` per
//!   event, no lock, no allocation. Per-topic counters are created once per topic and the
//!   handle is cached on the hosted [`Partition`](crate::replica::partition::Partition).
//! * **Gauges** (ReplicaManager, KafkaController, group coordinator, connections) are
//!   computed at scrape time from state that already exists ([`scrape`]).
//! * **Timers** (request times, log flush, leader elections) use the bucketed
//!   [`Histogram`] from `samsa-common`; percentiles are computed when scraped.
//!
//! Counting is on only when the endpoint is configured (`samsa.metrics.listener`, see
//! [`MetricsConfig`]); with it off every hook is a single relaxed load and a branch.

pub mod http;
pub mod names;
pub mod scrape;

use std::cell::Cell;
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, RwLock};
use std::time::{Duration, Instant};

pub use samsa_common::histogram::Histogram;

use names::{ERROR_SLOTS, MAX_API_KEY, VERSION_SLOTS};

/// The config key naming the metrics endpoint, e.g. `http://0.0.0.0:9404`. Empty (the
/// default) means no endpoint and no counting. Not a Kafka key: Kafka itself exports JMX
/// and leaves Prometheus to an agent, so this key sits with the unknown keys Kafka passes
/// through untouched, and DescribeConfigs does not list it.
pub const LISTENER_KEY: &str = "samsa.metrics.listener";

static ENABLED: AtomicBool = AtomicBool::new(false);
static REGISTRY: LazyLock<Registry> = LazyLock::new(Registry::new);

/// Whether counting is on (the endpoint is configured).
#[inline]
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Turns counting on or off (start-up; tests).
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// The process-wide registry.
pub fn registry() -> &'static Registry {
    &REGISTRY
}

/// The metrics endpoint settings, from the broker's unknown-key map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricsConfig {
    /// `host:port` to serve `GET /metrics` on; `None` = off.
    pub listen: Option<String>,
}

impl MetricsConfig {
    /// Reads [`LISTENER_KEY`] (`http://host:port`, `host:port`, or empty). A malformed
    /// value stops start-up with a message naming the key, as Kafka does for its own keys.
    pub fn from_unknown(
        unknown: &std::collections::BTreeMap<String, String>,
    ) -> Result<Self, String> {
        let raw = unknown.get(LISTENER_KEY).map(|s| s.trim()).unwrap_or("");
        if raw.is_empty() {
            return Ok(Self { listen: None });
        }
        let hostport = raw.strip_prefix("http://").unwrap_or(raw);
        let hostport = hostport.strip_suffix('/').unwrap_or(hostport);
        let valid = hostport
            .rsplit_once(':')
            .is_some_and(|(_, port)| port.parse::<u16>().is_ok());
        if !valid || raw.starts_with("https://") || hostport.contains('/') {
            return Err(format!(
                "Invalid value {raw} for configuration {LISTENER_KEY}: expected http://host:port"
            ));
        }
        Ok(Self {
            listen: Some(hostport.to_string()),
        })
    }
}

/// `kafka.server:type=BrokerTopicMetrics` meters of one topic (or of all topics). Each
/// field is the meter's `Count`.
#[derive(Debug, Default)]
pub struct TopicStats {
    pub messages_in: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub bytes_rejected: AtomicU64,
    pub failed_produce_requests: AtomicU64,
    pub failed_fetch_requests: AtomicU64,
    pub total_produce_requests: AtomicU64,
    pub total_fetch_requests: AtomicU64,
    /// All-topics only (Kafka keeps the replication meters without a topic tag).
    pub replication_bytes_in: AtomicU64,
    pub replication_bytes_out: AtomicU64,
}

#[inline]
fn add(a: &AtomicU64, n: u64) {
    a.fetch_add(n, Ordering::Relaxed);
}

impl TopicStats {
    /// (Kafka meter name, value) of the meters a topic has.
    pub fn topic_meters(&self) -> [(&'static str, u64); 8] {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        [
            ("messagesin", g(&self.messages_in)),
            ("bytesin", g(&self.bytes_in)),
            ("bytesout", g(&self.bytes_out)),
            ("bytesrejected", g(&self.bytes_rejected)),
            ("failedproducerequests", g(&self.failed_produce_requests)),
            ("failedfetchrequests", g(&self.failed_fetch_requests)),
            ("totalproducerequests", g(&self.total_produce_requests)),
            ("totalfetchrequests", g(&self.total_fetch_requests)),
        ]
    }
}

/// `kafka.network:type=RequestMetrics,request=<name>` of one request type.
#[derive(Debug)]
pub struct RequestStats {
    /// `RequestsPerSec` by `version`.
    pub requests: Box<[AtomicU64]>,
    /// `ErrorsPerSec` by error code (slot = code + 1).
    pub errors: Box<[AtomicU64]>,
    pub total_time: Histogram,
    pub request_queue_time: Histogram,
    pub local_time: Histogram,
    pub remote_time: Histogram,
    pub response_queue_time: Histogram,
    pub response_send_time: Histogram,
}

impl RequestStats {
    fn new() -> Self {
        let zeros = |n: usize| (0..n).map(|_| AtomicU64::new(0)).collect();
        Self {
            requests: zeros(VERSION_SLOTS),
            errors: zeros(ERROR_SLOTS),
            total_time: Histogram::new(),
            request_queue_time: Histogram::new(),
            local_time: Histogram::new(),
            remote_time: Histogram::new(),
            response_queue_time: Histogram::new(),
            response_send_time: Histogram::new(),
        }
    }

    /// Charges one error code (`0` = NONE) to `ErrorsPerSec`.
    #[inline]
    pub fn error(&self, code: i16) {
        let slot = (i32::from(code) + 1).clamp(0, ERROR_SLOTS as i32 - 1) as usize;
        add(&self.errors[slot], 1);
    }

    /// `(Kafka histogram name, histogram)` in Kafka's order.
    pub fn timers(&self) -> [(&'static str, &Histogram); 6] {
        [
            ("totaltimems", &self.total_time),
            ("requestqueuetimems", &self.request_queue_time),
            ("localtimems", &self.local_time),
            ("remotetimems", &self.remote_time),
            ("responsequeuetimems", &self.response_queue_time),
            ("responsesendtimems", &self.response_send_time),
        ]
    }
}

/// `kafka.server:type=socket-server-metrics,listener=<name>` of one listener.
#[derive(Debug, Default)]
pub struct ListenerStats {
    pub connection_count: AtomicI64,
    pub connection_creation_total: AtomicU64,
    pub connection_close_total: AtomicU64,
}

/// Every counter and timer of the broker.
#[derive(Debug)]
pub struct Registry {
    /// BrokerTopicMetrics without a topic tag.
    pub all_topics: TopicStats,
    topics: RwLock<HashMap<String, Arc<TopicStats>>>,
    /// Indexed by api key; then `FetchConsumer`, `FetchFollower`.
    requests: Box<[RequestStats]>,
    listeners: RwLock<Vec<(Arc<str>, Arc<ListenerStats>)>>,
    /// `ReplicaManager:IsrShrinksPerSec` / `IsrExpandsPerSec` counts.
    pub isr_shrinks: AtomicU64,
    pub isr_expands: AtomicU64,
    /// `LogFlushStats:LogFlushRateAndTimeMs`.
    pub log_flush: Histogram,
}

/// Index of the `FetchConsumer` pseudo request in [`Registry::request`].
pub const FETCH_CONSUMER: usize = MAX_API_KEY + 1;
/// Index of the `FetchFollower` pseudo request.
pub const FETCH_FOLLOWER: usize = MAX_API_KEY + 2;

impl Registry {
    fn new() -> Self {
        Self {
            all_topics: TopicStats::default(),
            topics: RwLock::new(HashMap::new()),
            requests: (0..=FETCH_FOLLOWER).map(|_| RequestStats::new()).collect(),
            listeners: RwLock::new(Vec::new()),
            isr_shrinks: AtomicU64::new(0),
            isr_expands: AtomicU64::new(0),
            log_flush: Histogram::new(),
        }
    }

    /// The stats of one topic, created on first use. Callers keep the handle (see
    /// `Partition::topic_stats`), so the map is touched once per partition, not per request.
    pub fn topic(&self, topic: &str) -> Arc<TopicStats> {
        if let Some(s) = self
            .topics
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(topic)
        {
            return s.clone();
        }
        self.topics
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .entry(topic.to_string())
            .or_default()
            .clone()
    }

    /// Snapshot of the per-topic stats (scrape).
    pub fn topics(&self) -> Vec<(String, Arc<TopicStats>)> {
        self.topics
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Stats of request type `index` (an api key, [`FETCH_CONSUMER`] or [`FETCH_FOLLOWER`]).
    pub fn request(&self, index: usize) -> Option<&RequestStats> {
        self.requests.get(index)
    }

    /// Stats of one listener, created on first use (once per connection).
    pub fn listener(&self, name: &Arc<str>) -> Arc<ListenerStats> {
        if let Some((_, s)) = self
            .listeners
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|(n, _)| n == name)
        {
            return s.clone();
        }
        let mut w = self.listeners.write().unwrap_or_else(|p| p.into_inner());
        if let Some((_, s)) = w.iter().find(|(n, _)| n == name) {
            return s.clone();
        }
        let s = Arc::new(ListenerStats::default());
        w.push((name.clone(), s.clone()));
        s
    }

    /// Snapshot of the listener stats (scrape).
    pub fn listeners(&self) -> Vec<(Arc<str>, Arc<ListenerStats>)> {
        self.listeners
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

// ---------------------------------------------------------------- produce / fetch hooks

/// A leader append of `records` records / `bytes` bytes to a topic succeeded
/// (Kafka's `ReplicaManager.appendToLocalLog`).
#[inline]
pub fn produce_appended(topic: &TopicStats, records: u64, bytes: u64) {
    if !enabled() {
        return;
    }
    let all = &registry().all_topics;
    for s in [topic, all] {
        add(&s.total_produce_requests, 1);
        add(&s.bytes_in, bytes);
        add(&s.messages_in, records);
    }
}

/// A leader append failed. `unexpected` is Kafka's distinction: only failures other than
/// leadership, size, corruption and storage errors count as failed produce requests.
/// `rejected_bytes` > 0 charges `BytesRejectedPerSec` (a batch over `max.message.bytes`).
#[inline]
pub fn produce_failed(topic: Option<&TopicStats>, unexpected: bool, rejected_bytes: u64) {
    if !enabled() {
        return;
    }
    let all = &registry().all_topics;
    for s in [topic, Some(all)].into_iter().flatten() {
        add(&s.total_produce_requests, 1);
        if unexpected {
            add(&s.failed_produce_requests, 1);
        }
        if rejected_bytes > 0 {
            add(&s.bytes_rejected, rejected_bytes);
        }
    }
}

/// One partition of a fetch answered: `bytes` of records to a consumer (`BytesOutPerSec`)
/// or a follower (`ReplicationBytesOutPerSec`); `failed` for unexpected read errors.
#[inline]
pub fn fetch_answered(topic: Option<&TopicStats>, follower: bool, bytes: u64, failed: bool) {
    if !enabled() {
        return;
    }
    let all = &registry().all_topics;
    for s in [topic, Some(all)].into_iter().flatten() {
        add(&s.total_fetch_requests, 1);
        if failed {
            add(&s.failed_fetch_requests, 1);
        }
    }
    if follower {
        add(&all.replication_bytes_out, bytes);
    } else if bytes > 0 {
        if let Some(t) = topic {
            add(&t.bytes_out, bytes);
        }
        add(&all.bytes_out, bytes);
    }
}

/// A follower appended `bytes` fetched from its leader.
#[inline]
pub fn replication_bytes_in(bytes: u64) {
    if enabled() {
        add(&registry().all_topics.replication_bytes_in, bytes);
    }
}

/// The controller accepted an ISR change of a partition we lead.
pub fn isr_changed(old_len: usize, new_len: usize) {
    if !enabled() {
        return;
    }
    let r = registry();
    if new_len < old_len {
        add(&r.isr_shrinks, 1);
    } else if new_len > old_len {
        add(&r.isr_expands, 1);
    }
}

/// A log flush (fsync of segments) took `d`.
#[inline]
pub fn log_flushed(d: Duration) {
    if enabled() {
        registry().log_flush.record(d);
    }
}

// ---------------------------------------------------------------- request hooks

tokio::task_local! {
    /// What handlers tell the connection about the request being processed.
    static SCOPE: RequestScope;
}

#[derive(Default)]
struct RequestScope {
    /// Time spent waiting for other brokers (acks=all, fetch purgatory), µs.
    remote_us: Cell<u64>,
    /// A Fetch from a follower (charged to `FetchFollower`, else `FetchConsumer`).
    follower: Cell<bool>,
    /// The handler charged `ErrorsPerSec` per partition itself.
    errors_counted: Cell<bool>,
    /// Request index, for [`response_error`].
    index: Cell<usize>,
}

/// Adds time a handler spent waiting on other brokers (Kafka's `RemoteTimeMs`).
pub fn add_remote_time(d: Duration) {
    let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    let _ = SCOPE.try_with(|s| s.remote_us.set(s.remote_us.get().saturating_add(us)));
}

/// Marks the request being processed as a follower's Fetch.
pub fn mark_follower_fetch() {
    let _ = SCOPE.try_with(|s| s.follower.set(true));
}

/// Charges one error code of the response being built (Kafka counts `errorCounts()` of
/// the response: one per partition for Produce and Fetch). Handlers that call this take
/// over `ErrorsPerSec` for their request; otherwise the connection charges one code per
/// request (NONE, or the code of the error that closed the connection).
pub fn response_error(code: i16) {
    if !enabled() {
        return;
    }
    let _ = SCOPE.try_with(|s| {
        s.errors_counted.set(true);
        let index = s.index.get();
        let api_key = i16::try_from(index).unwrap_or(-1);
        for i in request_indexes(index, api_key, s.follower.get()) {
            if let Some(r) = registry().request(i) {
                r.error(code);
            }
        }
    });
}

/// Timing of one request, from the moment its frame was read until its response is
/// written. Created in the connection; `None` when counting is off.
#[derive(Debug, Clone, Copy)]
pub struct RequestTiming {
    index: usize,
    version: i16,
    follower: bool,
    received: Instant,
    dequeued: Instant,
    handled: Instant,
    remote_us: u64,
}

/// Runs a request's handler future inside a metrics scope. Call with the instant the frame
/// was read; returns the handler's output and the timing to finish with
/// [`request_sent`] (or [`request_done`] when nothing is sent).
pub async fn track_request<F: Future<Output = Result<T, E>>, T, E: ErrorCode>(
    api_key: i16,
    version: i16,
    received: Instant,
    fut: F,
) -> (Result<T, E>, Option<RequestTiming>) {
    if !enabled() {
        return (fut.await, None);
    }
    let index = usize::try_from(api_key)
        .ok()
        .filter(|k| *k <= MAX_API_KEY)
        .unwrap_or(usize::MAX);
    let dequeued = Instant::now();
    let scope = RequestScope {
        index: Cell::new(index),
        ..RequestScope::default()
    };
    let (out, remote_us, follower, counted) = SCOPE
        .scope(scope, async move {
            let out = fut.await;
            let (r, f, c) =
                SCOPE.with(|s| (s.remote_us.get(), s.follower.get(), s.errors_counted.get()));
            (out, r, f, c)
        })
        .await;
    if !counted {
        let code = match &out {
            Ok(_) => 0,
            Err(e) => e.kafka_code(),
        };
        for i in request_indexes(index, api_key, follower) {
            if let Some(r) = registry().request(i) {
                r.error(code);
            }
        }
    }
    let timing = RequestTiming {
        index,
        version,
        follower,
        received,
        dequeued,
        handled: Instant::now(),
        remote_us,
    };
    (out, Some(timing))
}

/// The error code a failed handler maps to (implemented by the broker's `Error`).
pub trait ErrorCode {
    fn kafka_code(&self) -> i16;
}

impl ErrorCode for crate::error::Error {
    fn kafka_code(&self) -> i16 {
        self.code()
    }
}

/// Kafka charges a Fetch to `Fetch` and to `FetchConsumer` or `FetchFollower`.
fn request_indexes(index: usize, api_key: i16, follower: bool) -> impl Iterator<Item = usize> {
    let extra = (api_key == 1).then_some(if follower {
        FETCH_FOLLOWER
    } else {
        FETCH_CONSUMER
    });
    std::iter::once(index).chain(extra)
}

/// The response of a tracked request left the writer: `dequeued` when the writer took
/// it, now when it was written. Charges RequestsPerSec and every timer.
pub fn request_sent(t: &RequestTiming, writer_dequeued: Instant) {
    finish(t, writer_dequeued, Instant::now());
}

/// A tracked request ended without a response (acks=0, or the connection closed).
pub fn request_done(t: &RequestTiming) {
    finish(t, t.handled, t.handled);
}

fn finish(t: &RequestTiming, writer_dequeued: Instant, sent: Instant) {
    let handler = t.handled.saturating_duration_since(t.dequeued);
    let remote = Duration::from_micros(t.remote_us).min(handler);
    let api_key = i16::try_from(t.index).unwrap_or(-1);
    let version = usize::try_from(t.version)
        .unwrap_or(0)
        .min(VERSION_SLOTS - 1);
    for i in request_indexes(t.index, api_key, t.follower) {
        let Some(r) = registry().request(i) else {
            continue;
        };
        add(&r.requests[version], 1);
        r.total_time
            .record(sent.saturating_duration_since(t.received));
        r.request_queue_time
            .record(t.dequeued.saturating_duration_since(t.received));
        r.local_time.record(handler - remote);
        r.remote_time.record(remote);
        r.response_queue_time
            .record(writer_dequeued.saturating_duration_since(t.handled));
        r.response_send_time
            .record(sent.saturating_duration_since(writer_dequeued));
    }
}

// ---------------------------------------------------------------- connections

/// Counts a connection on its listener while alive (socket-server-metrics).
#[derive(Debug)]
pub struct ConnectionGuard(Option<Arc<ListenerStats>>);

/// A connection was accepted on `listener`; the guard counts its close when dropped.
pub fn connection_opened(listener: &Arc<str>) -> ConnectionGuard {
    if !enabled() {
        return ConnectionGuard(None);
    }
    let s = registry().listener(listener);
    s.connection_count.fetch_add(1, Ordering::Relaxed);
    add(&s.connection_creation_total, 1);
    ConnectionGuard(Some(s))
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        if let Some(s) = &self.0 {
            s.connection_count.fetch_sub(1, Ordering::Relaxed);
            add(&s.connection_close_total, 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn listener_key_forms() {
        let cfg = |v: &str| {
            let mut m = BTreeMap::new();
            m.insert(LISTENER_KEY.to_string(), v.to_string());
            MetricsConfig::from_unknown(&m)
        };
        assert_eq!(
            MetricsConfig::from_unknown(&BTreeMap::new()),
            Ok(MetricsConfig { listen: None })
        );
        assert_eq!(cfg("").map(|c| c.listen), Ok(None));
        assert_eq!(
            cfg("http://127.0.0.1:9404").map(|c| c.listen),
            Ok(Some("127.0.0.1:9404".into()))
        );
        assert_eq!(
            cfg("0.0.0.0:9404/").map(|c| c.listen),
            Ok(Some("0.0.0.0:9404".into()))
        );
        for bad in ["https://h:1", "http://h", "h:99999", "http://h:1/metrics"] {
            let e = cfg(bad).expect_err(bad);
            assert!(e.contains(LISTENER_KEY), "{e}");
        }
    }

    /// A produce and a consumer fetch through the handlers charge the topic's and the
    /// all-topics BrokerTopicMetrics exactly.
    #[tokio::test]
    async fn produce_and_fetch_charge_broker_topic_metrics() {
        #![allow(clippy::field_reassign_with_default)]
        use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
        use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
        use kafka_protocol::messages::{
            ApiKey, BrokerId, FetchRequest, ProduceRequest, RequestHeader, TopicName,
        };
        use kafka_protocol::records::Compression;

        set_enabled(true);
        let topic = "metrics-unit-topic";
        let (ctx, _logs) = crate::replica::testing::leader_context(
            crate::log::LogConfig::default(),
            topic,
            uuid::Uuid::from_u128(0x77),
        );
        let records = crate::replica::testing::batch(5, Compression::None).freeze();
        let len = records.len() as u64;
        let mut p = PartitionProduceData::default();
        p.index = 0;
        p.records = Some(records);
        let mut t = TopicProduceData::default();
        t.name = TopicName(topic.to_string().into());
        t.partition_data = vec![p];
        let mut req = ProduceRequest::default();
        req.acks = 1;
        req.timeout_ms = 5000;
        req.topic_data = vec![t];
        let mut h = RequestHeader::default();
        h.request_api_key = ApiKey::Produce as i16;
        h.request_api_version = 9;
        let all_before = registry().all_topics.messages_in.load(Ordering::Relaxed);
        let (out, timing) = track_request(
            0,
            9,
            Instant::now(),
            crate::handlers::produce::handle(
                &ctx,
                &crate::security::authorizer::enforce::test_policy::conn("User:ANONYMOUS"),
                &h,
                req,
            ),
        )
        .await;
        assert!(out.expect("produce").is_some());
        assert!(timing.is_some());
        let s = registry().topic(topic);
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        assert_eq!(get(&s.messages_in), 5);
        assert_eq!(get(&s.bytes_in), len);
        assert_eq!(get(&s.total_produce_requests), 1);
        assert!(get(&registry().all_topics.messages_in) >= all_before + 5);

        let mut fp = FetchPartition::default();
        fp.partition = 0;
        fp.fetch_offset = 0;
        fp.partition_max_bytes = 1 << 20;
        fp.current_leader_epoch = -1;
        fp.last_fetched_epoch = -1;
        fp.log_start_offset = -1;
        let mut ft = FetchTopic::default();
        ft.topic = TopicName(topic.to_string().into());
        ft.partitions = vec![fp];
        let mut freq = FetchRequest::default();
        freq.replica_id = BrokerId(-1);
        freq.max_bytes = 1 << 20;
        freq.session_epoch = -1;
        freq.topics = vec![ft];
        let mut fh = RequestHeader::default();
        fh.request_api_key = ApiKey::Fetch as i16;
        fh.request_api_version = 12;
        crate::handlers::fetch::handle(
            &ctx,
            &crate::security::authorizer::enforce::test_policy::conn("User:ANONYMOUS"),
            &fh,
            freq,
        )
        .await
        .expect("fetch");
        assert_eq!(get(&s.total_fetch_requests), 1);
        assert_eq!(get(&s.bytes_out), len);
        assert_eq!(get(&s.failed_fetch_requests), 0);
    }
}
