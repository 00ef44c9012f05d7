//! Follower replication: one fetcher task per source (leader) broker, like
//! Kafka's `ReplicaFetcherThread` with `num.replica.fetchers = 1`.
//!
//! Each task owns a `KafkaClient` to its leader and a set of partitions with
//! their next fetch offset. It sends Fetch v12 requests (flexible,
//! `LastFetchedEpoch`, diverging-epoch replies; topic names, so no topic-id
//! lookups are needed) in a KIP-227 fetch session, with `ReplicaId` = our
//! broker id, appends the returned
//! batches with the leader's offsets, sets `HW := min(leader HW, LEO)`, follows
//! the leader's log start offset, and truncates on a diverging epoch or an
//! out-of-range fetch (storage spec §4.6).

// kafka-protocol messages are non_exhaustive: built from Default, then filled in.
#![allow(clippy::field_reassign_with_default)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{
    BrokerId as KBrokerId, FetchRequest, ListOffsetsRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use samsa_common::client::{ClientOptions, KafkaClient};
use samsa_common::types::{BrokerId, TopicPartition};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::manager::ReplicaManager;
use super::partition::codes;
use super::partition::Partition;
use crate::log::Log;

/// Fetch version used by followers (flexible, LastFetchedEpoch, topic names).
pub const FOLLOWER_FETCH_VERSION: i16 = 12;
/// ListOffsets version used for out-of-range handling.
const LIST_OFFSETS_VERSION: i16 = 4;

/// Follower fetch settings (`replica.fetch.*`).
#[derive(Debug, Clone)]
pub struct FetcherConfig {
    pub max_wait_ms: i32,
    pub min_bytes: i32,
    pub response_max_bytes: i32,
    pub partition_max_bytes: i32,
    pub backoff_ms: u64,
}

impl Default for FetcherConfig {
    fn default() -> Self {
        Self {
            max_wait_ms: 500,
            min_bytes: 1,
            response_max_bytes: 10 << 20,
            partition_max_bytes: 1 << 20,
            backoff_ms: 1000,
        }
    }
}

/// Where a leader listens (from LeaderAndIsr `LiveLeaders`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderEndpoint {
    pub broker_id: BrokerId,
    pub host: String,
    pub port: i32,
}

#[derive(Debug, Clone)]
struct FetchState {
    fetch_offset: i64,
    leader_epoch: i32,
}

#[derive(Debug, Default)]
struct SourceShared {
    partitions: Mutex<HashMap<TopicPartition, FetchState>>,
    notify: Notify,
}

struct Source {
    endpoint: LeaderEndpoint,
    shared: Arc<SourceShared>,
    task: JoinHandle<()>,
}

impl Drop for Source {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// All fetcher tasks of this broker.
#[derive(Default)]
pub struct FetcherManager {
    sources: Mutex<HashMap<BrokerId, Source>>,
    pub config: FetcherConfig,
}

impl std::fmt::Debug for FetcherManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FetcherManager").finish()
    }
}

impl FetcherManager {
    pub fn new(config: FetcherConfig) -> Self {
        Self {
            sources: Mutex::new(HashMap::new()),
            config,
        }
    }

    /// Stop fetching `tp` from whichever leader.
    pub fn remove_partition(&self, tp: &TopicPartition) {
        let sources = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        for s in sources.values() {
            s.shared
                .partitions
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(tp);
        }
    }

    /// Fetch `tp` from `leader` starting at `fetch_offset`. Must be called
    /// inside a tokio runtime (spawns the source task if needed).
    pub fn add_partition(
        &self,
        rm: &Arc<ReplicaManager>,
        leader: LeaderEndpoint,
        tp: TopicPartition,
        fetch_offset: i64,
        leader_epoch: i32,
    ) {
        self.remove_partition(&tp);
        let mut sources = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        let stale = sources
            .get(&leader.broker_id)
            .is_some_and(|s| s.endpoint != leader);
        if stale {
            sources.remove(&leader.broker_id);
        }
        let source = sources.entry(leader.broker_id).or_insert_with(|| {
            let shared = Arc::new(SourceShared::default());
            let task = match tokio::runtime::Handle::try_current() {
                Ok(h) => {
                    // The fetch loop re-reads its offsets from the logs, so after a panic it
                    // can simply start over; without this its partitions would stop
                    // replicating for good.
                    let (rm, leader, shared, cfg) = (
                        Arc::downgrade(rm),
                        leader.clone(),
                        shared.clone(),
                        self.config.clone(),
                    );
                    let backoff = Duration::from_millis(cfg.backoff_ms.max(10));
                    h.spawn(crate::supervise::restart_on_panic(
                        "replica fetcher",
                        backoff,
                        move || run_source(rm.clone(), leader.clone(), shared.clone(), cfg.clone()),
                    ))
                }
                Err(_) => tokio::spawn(async {}),
            };
            Source {
                endpoint: leader.clone(),
                shared,
                task,
            }
        });
        source
            .shared
            .partitions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                tp,
                FetchState {
                    fetch_offset,
                    leader_epoch,
                },
            );
        source.shared.notify.notify_one();
    }

    /// Number of partitions being fetched (tests, metrics).
    pub fn partition_count(&self) -> usize {
        let sources = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        sources
            .values()
            .map(|s| s.shared.partitions.lock().map(|p| p.len()).unwrap_or(0))
            .sum()
    }

    pub fn shutdown(&self) {
        self.sources
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

async fn run_source(
    rm: Weak<ReplicaManager>,
    leader: LeaderEndpoint,
    shared: Arc<SourceShared>,
    cfg: FetcherConfig,
) {
    let addr = format!("{}:{}", leader.host, leader.port);
    let mut client: Option<KafkaClient> = None;
    let mut session = FollowerSession::default();
    let backoff = Duration::from_millis(cfg.backoff_ms.max(10));
    loop {
        let notified = shared.notify.notified();
        let mut snapshot: Vec<(TopicPartition, FetchState)> = shared
            .partitions
            .lock()
            .map(|p| p.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        if snapshot.is_empty() {
            // Idle until a partition is added.
            let _ = tokio::time::timeout(Duration::from_secs(5), notified).await;
            continue;
        }
        let Some(rm) = rm.upgrade() else { return };
        // This task is the only writer of its partitions' logs and always leaves the fetch
        // offset at the log end, so the log end *is* the fetch offset. Reading it here (rather
        // than trusting the stored one) keeps a partition that was re-added by a LeaderAndIsr
        // while an append was in flight from re-fetching records it already has.
        for (tp, st) in &mut snapshot {
            if let Some(log) = rm.partition(tp).and_then(|p| p.log()) {
                st.fetch_offset = log.log_end_offset();
            }
        }
        if client.as_ref().is_none_or(KafkaClient::is_closed) {
            let opts = ClientOptions {
                client_id: Some(format!("broker-{}-fetcher-0", rm.config.broker_id)),
                connect_timeout: Duration::from_secs(10),
                request_timeout: Some(Duration::from_millis(
                    cfg.max_wait_ms.max(0) as u64 + 30_000,
                )),
            };
            match KafkaClient::connect_with(&addr, opts).await {
                Ok(c) => client = Some(c),
                Err(e) => {
                    tracing::warn!(leader = leader.broker_id, %addr, error = %e, "fetcher cannot connect");
                    drop(rm);
                    tokio::time::sleep(backoff).await;
                    continue;
                }
            }
        }
        let Some(c) = client.clone() else { continue };
        let wanted = wanted(&rm, &snapshot, &cfg);
        let req = session.request(rm.config.broker_id, &wanted, &cfg);
        match c.send(&req, FOLLOWER_FETCH_VERSION).await {
            Ok(resp) => {
                if resp.error_code != codes::NONE {
                    // FETCH_SESSION_ID_NOT_FOUND / INVALID_FETCH_SESSION_EPOCH (the leader
                    // restarted or evicted us) and anything else: start over with a full fetch.
                    tracing::warn!(
                        leader = leader.broker_id,
                        code = resp.error_code,
                        "fetch error"
                    );
                    session.reset();
                    drop(rm);
                    tokio::time::sleep(backoff.min(Duration::from_millis(100))).await;
                    continue;
                }
                session.completed(resp.session_id, wanted);
                let mut any_error = false;
                for t in resp.responses {
                    for p in t.partitions {
                        let tp = TopicPartition::new(t.topic.to_string(), p.partition_index);
                        let Some(state) = snapshot
                            .iter()
                            .find(|(k, _)| *k == tp)
                            .map(|(_, s)| s.clone())
                        else {
                            continue;
                        };
                        match process_partition(&rm, &c, &tp, &state, p).await {
                            Ok(Some(next)) => {
                                let mut parts =
                                    shared.partitions.lock().unwrap_or_else(|p| p.into_inner());
                                if let Some(s) = parts.get_mut(&tp) {
                                    // Only if nobody re-added the partition meanwhile.
                                    if s.leader_epoch == state.leader_epoch {
                                        s.fetch_offset = next;
                                    }
                                }
                            }
                            Ok(None) => any_error = true,
                            Err(e) => {
                                tracing::warn!(%tp, error = %e, "follower append failed");
                                any_error = true;
                            }
                        }
                    }
                }
                drop(rm);
                if any_error {
                    tokio::time::sleep(backoff.min(Duration::from_millis(500))).await;
                }
            }
            Err(e) => {
                tracing::warn!(leader = leader.broker_id, error = %e, "fetch request failed");
                client = None;
                session.reset();
                drop(rm);
                tokio::time::sleep(backoff).await;
            }
        }
    }
}

/// What a follower asks for on one partition; a session resends it only when it changes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Wanted {
    fetch_offset: i64,
    current_leader_epoch: i32,
    last_fetched_epoch: i32,
    log_start_offset: i64,
    max_bytes: i32,
}

/// The follower's side of a KIP-227 fetch session with one leader (Kafka's
/// `FetchSessionHandler`): a full request opens it, then each request lists only the
/// partitions whose fetch state changed plus the ones to forget, and the leader answers only
/// partitions with news. Any session error or lost connection falls back to a full request.
#[derive(Debug, Default)]
struct FollowerSession {
    /// 0 = no session: the next request is full (epoch 0 asks the leader to open one).
    id: i32,
    epoch: i32,
    /// What the leader holds for us, as of the last successful request.
    sent: HashMap<TopicPartition, Wanted>,
}

impl FollowerSession {
    fn reset(&mut self) {
        *self = Self::default();
    }

    /// The request for `wanted`, and the state the leader will hold if it succeeds.
    fn request(
        &self,
        broker_id: BrokerId,
        wanted: &HashMap<TopicPartition, Wanted>,
        cfg: &FetcherConfig,
    ) -> FetchRequest {
        let incremental = self.id != 0;
        let mut topics: Vec<FetchTopic> = Vec::new();
        for (tp, w) in wanted {
            if incremental && self.sent.get(tp) == Some(w) {
                continue;
            }
            let mut fp = FetchPartition::default();
            fp.partition = tp.partition;
            fp.current_leader_epoch = w.current_leader_epoch;
            fp.fetch_offset = w.fetch_offset;
            fp.last_fetched_epoch = w.last_fetched_epoch;
            fp.log_start_offset = w.log_start_offset;
            fp.partition_max_bytes = w.max_bytes;
            topic_entry(&mut topics, &tp.topic).partitions.push(fp);
        }
        let mut forgotten: Vec<ForgottenTopic> = Vec::new();
        if incremental {
            for tp in self.sent.keys().filter(|tp| !wanted.contains_key(*tp)) {
                match forgotten.iter_mut().find(|t| t.topic.as_str() == tp.topic) {
                    Some(t) => t.partitions.push(tp.partition),
                    None => {
                        let mut t = ForgottenTopic::default();
                        t.topic = TopicName(StrBytes::from_string(tp.topic.clone()));
                        t.partitions.push(tp.partition);
                        forgotten.push(t);
                    }
                }
            }
        }
        let mut req = FetchRequest::default();
        req.replica_id = KBrokerId(broker_id);
        req.max_wait_ms = cfg.max_wait_ms;
        req.min_bytes = cfg.min_bytes;
        req.max_bytes = cfg.response_max_bytes;
        req.isolation_level = 0;
        req.session_id = self.id;
        req.session_epoch = if incremental { self.epoch } else { 0 };
        req.topics = topics;
        req.forgotten_topics_data = forgotten;
        req
    }

    /// Record a successful answer to the request built from `wanted`.
    fn completed(&mut self, resp_session_id: i32, wanted: HashMap<TopicPartition, Wanted>) {
        if self.id == 0 {
            if resp_session_id == 0 {
                // The leader had no room for a session: stay sessionless (full requests).
                return;
            }
            self.id = resp_session_id;
            self.epoch = 1;
        } else {
            self.epoch = if self.epoch == i32::MAX {
                1
            } else {
                self.epoch + 1
            };
        }
        self.sent = wanted;
    }
}

fn topic_entry<'a>(topics: &'a mut Vec<FetchTopic>, topic: &str) -> &'a mut FetchTopic {
    let i = match topics.iter().position(|t| t.topic.as_str() == topic) {
        Some(i) => i,
        None => {
            let mut t = FetchTopic::default();
            t.topic = TopicName(StrBytes::from_string(topic.to_string()));
            topics.push(t);
            topics.len() - 1
        }
    };
    &mut topics[i]
}

/// The fetch state of every partition of this source, read from the logs.
fn wanted(
    rm: &ReplicaManager,
    parts: &[(TopicPartition, FetchState)],
    cfg: &FetcherConfig,
) -> HashMap<TopicPartition, Wanted> {
    parts
        .iter()
        .map(|(tp, st)| {
            let log = rm.partition(tp).and_then(|p| p.log());
            let w = Wanted {
                fetch_offset: st.fetch_offset,
                current_leader_epoch: st.leader_epoch,
                last_fetched_epoch: log.as_ref().and_then(|l| l.latest_epoch()).unwrap_or(-1),
                log_start_offset: log.as_ref().map(|l| l.log_start_offset()).unwrap_or(-1),
                max_bytes: cfg.partition_max_bytes,
            };
            (tp.clone(), w)
        })
        .collect()
}

/// Apply one partition of a fetch response. `Ok(Some(next_offset))` on progress,
/// `Ok(None)` on a partition error (retry later).
async fn process_partition(
    rm: &Arc<ReplicaManager>,
    client: &KafkaClient,
    tp: &TopicPartition,
    state: &FetchState,
    p: kafka_protocol::messages::fetch_response::PartitionData,
) -> crate::error::Result<Option<i64>> {
    let Some(partition) = rm.partition(tp) else {
        return Ok(None);
    };
    let Some(log) = partition.log() else {
        return Ok(None);
    };
    let state_epoch = state.leader_epoch;
    if partition.is_leader() || partition.leader_epoch() != state_epoch {
        return Ok(None);
    }
    if log.log_end_offset() != state.fetch_offset {
        // The log moved (truncated by a LeaderAndIsr) while this fetch was in flight: the
        // answer no longer lines up with our log end. Drop it and fetch again from there.
        return Ok(Some(log.log_end_offset()));
    }
    match p.error_code {
        codes::NONE => {}
        codes::OFFSET_OUT_OF_RANGE => {
            return handle_out_of_range(rm, client, tp, &partition, &log, state).await;
        }
        code => {
            tracing::debug!(%tp, code, "follower fetch partition error");
            return Ok(None);
        }
    }
    let div = &p.diverging_epoch;
    if div.epoch != -1 || div.end_offset != -1 {
        let (epoch, end) = (div.epoch, div.end_offset);
        let tp2 = tp.clone();
        let part = partition.clone();
        let moved = tokio::task::spawn_blocking(move || {
            part.follower_write(state_epoch, |log| {
                let target = truncation_offset(log, epoch, end);
                tracing::info!(tp = %tp2, leader_epoch = epoch, leader_end = end, target, "truncating diverging follower log");
                log.truncate_to(target)
            })
        })
        .await
        .map_err(|e| crate::error::Error::Internal(e.to_string()))??;
        if moved.is_none() {
            return Ok(None);
        }
        partition.signal.bump();
        return Ok(Some(log.log_end_offset()));
    }
    if let Some(records) = p.records.filter(|r| !r.is_empty()) {
        let part = partition.clone();
        let expected_leo = state.fetch_offset;
        let appended = tokio::task::spawn_blocking(move || {
            part.follower_write(state_epoch, |log| {
                // The answer must continue our log exactly (see the check above; it is
                // repeated here because the log could have moved since).
                if log.log_end_offset() != expected_leo {
                    return Ok(false);
                }
                log.append_as_follower(&records)?;
                crate::metrics::replication_bytes_in(records.len() as u64);
                Ok(true)
            })
        })
        .await
        .map_err(|e| crate::error::Error::Internal(e.to_string()))??;
        match appended {
            None => return Ok(None),
            Some(false) => return Ok(Some(log.log_end_offset())),
            Some(true) => {}
        }
    }
    let leo = log.log_end_offset();
    let hw = p.high_watermark.min(leo);
    if hw > log.high_watermark() {
        log.update_high_watermark(hw);
    }
    if p.log_start_offset > log.log_start_offset() && p.log_start_offset <= log.high_watermark() {
        let _ = log.maybe_increment_log_start_offset(p.log_start_offset);
    }
    partition.signal.bump();
    Ok(Some(leo))
}

/// A boxed follower log write, run by `Partition::follower_write` on a blocking thread.
type FollowerWrite = Box<dyn FnOnce(&Arc<Log>) -> crate::error::Result<()> + Send>;

/// Follower truncation point for the leader's `(epoch, end_offset)` (spec §4.6).
pub fn truncation_offset(log: &Log, leader_epoch: i32, leader_end: i64) -> i64 {
    let leo = log.log_end_offset();
    if leader_end < 0 {
        return log.high_watermark().min(leo);
    }
    let (e_f, o_f) = log.end_offset_for_epoch(leader_epoch);
    if e_f < 0 || o_f < 0 {
        leader_end.min(leo)
    } else if e_f != leader_epoch {
        o_f.min(leo)
    } else {
        leader_end.min(o_f).min(leo)
    }
}

async fn handle_out_of_range(
    rm: &Arc<ReplicaManager>,
    client: &KafkaClient,
    tp: &TopicPartition,
    partition: &Arc<Partition>,
    log: &Arc<Log>,
    state: &FetchState,
) -> crate::error::Result<Option<i64>> {
    let leader_offset = |ts: i64| {
        let mut p = ListOffsetsPartition::default();
        p.partition_index = tp.partition;
        p.current_leader_epoch = state.leader_epoch;
        p.timestamp = ts;
        let mut t = ListOffsetsTopic::default();
        t.name = TopicName(StrBytes::from_string(tp.topic.clone()));
        t.partitions = vec![p];
        let mut req = ListOffsetsRequest::default();
        req.replica_id = KBrokerId(rm.config.broker_id);
        req.topics = vec![t];
        async move {
            let resp = client
                .send(&req, LIST_OFFSETS_VERSION)
                .await
                .map_err(|e| crate::error::Error::Internal(e.to_string()))?;
            let part = resp
                .topics
                .first()
                .and_then(|t| t.partitions.first())
                .ok_or_else(|| crate::error::Error::Internal("empty ListOffsets answer".into()))?;
            if part.error_code != codes::NONE {
                return Err(crate::error::Error::Internal(format!(
                    "ListOffsets error {}",
                    part.error_code
                )));
            }
            Ok(part.offset)
        }
    };
    let leo = log.log_end_offset();
    let leader_end = leader_offset(-1).await?;
    let epoch = state.leader_epoch;
    let blocking = |write: FollowerWrite| {
        let part = partition.clone();
        async move {
            tokio::task::spawn_blocking(move || part.follower_write(epoch, write))
                .await
                .map_err(|e| crate::error::Error::Internal(e.to_string()))?
        }
    };
    if leader_end < leo {
        let done = blocking(Box::new(move |l| l.truncate_to(leader_end).map(drop))).await?;
        return Ok(done.map(|_| log.log_end_offset()));
    }
    let leader_start = leader_offset(-2).await?;
    if leader_start > leo {
        let done = blocking(Box::new(move |l| {
            l.truncate_fully_and_start_at(leader_start)
        }))
        .await?;
        return Ok(done.map(|_| leader_start));
    }
    Ok(Some(leader_start.max(leo)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn w(offset: i64, epoch: i32) -> Wanted {
        Wanted {
            fetch_offset: offset,
            current_leader_epoch: epoch,
            last_fetched_epoch: epoch,
            log_start_offset: 0,
            max_bytes: 1 << 20,
        }
    }

    fn listed(req: &FetchRequest) -> Vec<(String, i32, i64)> {
        let mut v: Vec<_> = req
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| (t.topic.to_string(), p.partition, p.fetch_offset))
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn session_sends_full_then_only_changes_and_forgets_removed() {
        let cfg = FetcherConfig::default();
        let a = TopicPartition::new("t".to_string(), 0);
        let b = TopicPartition::new("t".to_string(), 1);
        let mut s = FollowerSession::default();
        let mut want = HashMap::from([(a.clone(), w(10, 3)), (b.clone(), w(20, 3))]);

        let req = s.request(7, &want, &cfg);
        assert_eq!((req.session_id, req.session_epoch), (0, 0));
        assert_eq!(req.replica_id.0, 7);
        assert_eq!(listed(&req).len(), 2);
        s.completed(42, want.clone());

        // Nothing changed: an empty incremental request at epoch 1.
        let req = s.request(7, &want, &cfg);
        assert_eq!((req.session_id, req.session_epoch), (42, 1));
        assert!(req.topics.is_empty() && req.forgotten_topics_data.is_empty());
        s.completed(42, want.clone());

        // One partition advanced, the other was removed.
        want.insert(a.clone(), w(15, 3));
        want.remove(&b);
        let req = s.request(7, &want, &cfg);
        assert_eq!(req.session_epoch, 2);
        assert_eq!(listed(&req), vec![("t".to_string(), 0, 15)]);
        assert_eq!(req.forgotten_topics_data.len(), 1);
        assert_eq!(req.forgotten_topics_data[0].partitions, vec![1]);
        s.completed(42, want.clone());

        // A session error starts over with a full request.
        s.reset();
        let req = s.request(7, &want, &cfg);
        assert_eq!((req.session_id, req.session_epoch), (0, 0));
        assert_eq!(listed(&req), vec![("t".to_string(), 0, 15)]);
    }

    #[test]
    fn without_a_session_every_request_is_full() {
        let cfg = FetcherConfig::default();
        let a = TopicPartition::new("t".to_string(), 0);
        let want = HashMap::from([(a, w(1, 0))]);
        let mut s = FollowerSession::default();
        s.completed(0, want.clone());
        let req = s.request(1, &want, &cfg);
        assert_eq!((req.session_id, req.session_epoch), (0, 0));
        assert_eq!(listed(&req).len(), 1);
    }

    #[test]
    fn session_epoch_wraps_to_one() {
        let mut s = FollowerSession {
            id: 5,
            epoch: i32::MAX,
            sent: HashMap::new(),
        };
        s.completed(5, HashMap::new());
        assert_eq!(s.epoch, 1);
    }
}
