//! `ReplicaManager`: the partitions this broker hosts and every operation that
//! touches them — LeaderAndIsr / StopReplica, produce appends (with the
//! acks=all purgatory), fetch reads, offsets lookups, DeleteRecords, and
//! high-watermark checkpointing.
//!
//! Concurrency: the partition map is a std `RwLock` held only to look up or
//! insert `Arc<Partition>`s; each `Partition` has its own short lock (see
//! `partition.rs`). Waiting (acks=all, fetch.min.bytes) happens on per-partition
//! change signals with no lock held.
//!
//! High watermarks live in each `Log`; the log manager writes them to
//! `replication-offset-checkpoint` (format documented there).

// kafka-protocol messages are non_exhaustive: built from Default, then filled in.
#![allow(clippy::field_reassign_with_default)]

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use kafka_protocol::messages::leader_and_isr_request::LeaderAndIsrPartitionState;
use kafka_protocol::messages::leader_and_isr_response::{
    LeaderAndIsrPartitionError, LeaderAndIsrTopicError,
};
use kafka_protocol::messages::stop_replica_response::StopReplicaPartitionError;
use kafka_protocol::messages::{
    LeaderAndIsrRequest, LeaderAndIsrResponse, StopReplicaRequest, StopReplicaResponse, TopicName,
};
use samsa_common::types::{BrokerId, TopicPartition};
use tokio::time::Instant;
use uuid::Uuid;

use super::fetch_session::FetchSessionCache;
use super::fetcher::{FetcherConfig, FetcherManager, LeaderEndpoint};
use super::partition::{codes, Partition};
use super::purgatory::wait_any;
use crate::error::{Error, RecordError, Result};
use crate::log::producer_state::VerificationGuard;
use crate::log::{AppendOrigin, FetchDataInfo, Log, LogAppendInfo};

/// Settings the replica manager needs from `server.properties`.
#[derive(Debug, Clone)]
pub struct ReplicaConfig {
    pub broker_id: BrokerId,
    /// `replica.lag.time.max.ms` (30000).
    pub replica_lag_time_max_ms: u64,
    /// `max.incremental.fetch.session.cache.slots` (1000).
    pub fetch_session_cache_slots: usize,
    /// TLS/SASL of the inter-broker listener, for the replica fetchers.
    pub client_security: Option<std::sync::Arc<samsa_common::security::client::ClientSecurity>>,
}

impl ReplicaConfig {
    pub fn new(broker_id: BrokerId) -> Self {
        Self {
            broker_id,
            replica_lag_time_max_ms: 30_000,
            fetch_session_cache_slots: 1000,
            client_security: None,
        }
    }
}

/// The log storage the replica manager needs (implemented by `LogManager`;
/// tests use temp-dir logs).
pub trait LogProvider: Send + Sync + std::fmt::Debug {
    fn get_log(&self, tp: &TopicPartition) -> Option<Arc<Log>>;
    /// Open or create the log; `is_new` allows creating on any healthy dir.
    fn get_or_create_log(
        &self,
        tp: &TopicPartition,
        topic_id: Option<Uuid>,
        is_new: bool,
    ) -> Result<Arc<Log>>;
    /// Rename for async deletion.
    fn delete_log(&self, tp: &TopicPartition) -> Result<()>;
    /// Every online log dir (for HW checkpoints and DescribeLogDirs).
    fn log_dirs(&self) -> Vec<PathBuf>;
    /// Log dirs taken offline after an I/O error (DescribeLogDirs answers
    /// KAFKA_STORAGE_ERROR for them).
    fn offline_log_dirs(&self) -> Vec<PathBuf> {
        Vec::new()
    }
    /// Every loaded log (for DescribeLogDirs).
    fn all_logs(&self) -> Vec<Arc<Log>>;
    /// Replicas being moved to another dir (DescribeLogDirs `is_future_key`).
    fn future_logs(&self) -> Vec<Arc<Log>> {
        Vec::new()
    }
    /// Write `replication-offset-checkpoint` in every log dir.
    fn checkpoint_high_watermarks(&self) -> Result<()>;
}

/// Is a broker registered (alive)?
pub type AliveFn = Arc<dyn Fn(BrokerId) -> bool + Send + Sync>;
/// Called on leadership changes: `(partition, Some(leader_epoch))` when we
/// became leader, `(partition, None)` when we stopped leading (follower or stopped).
pub type LeadershipListener = Arc<dyn Fn(&TopicPartition, Option<i32>) + Send + Sync>;

/// Outcome of one partition's append (Produce response fields).
#[derive(Debug, Clone)]
pub struct ProducePartitionResult {
    pub error_code: i16,
    pub error_message: Option<String>,
    /// Records rejected by validation (Produce v8+).
    pub record_errors: Vec<RecordError>,
    pub base_offset: i64,
    pub log_append_time: i64,
    pub log_start_offset: i64,
}

/// Records already appended to the leaders, waiting for `acks=-1` (see
/// [`ReplicaManager::append_records_now`]).
pub struct PendingAppend {
    out: Vec<(TopicPartition, ProducePartitionResult)>,
    /// (index in out, partition, required offset)
    waiting: Vec<(usize, Arc<Partition>, i64)>,
    /// Set by [`ReplicaManager::release_parked_produces`] at shutdown.
    stopping: Arc<AtomicBool>,
}

impl PendingAppend {
    /// Wait until every appended partition's HW passes its last offset (acks=-1) or
    /// `timeout_ms` ends (REQUEST_TIMED_OUT).
    pub async fn wait(self, timeout_ms: i32) -> Vec<(TopicPartition, ProducePartitionResult)> {
        if self.waiting.is_empty() {
            return self.out;
        }
        // Waiting for followers is Kafka's RemoteTimeMs.
        let started = std::time::Instant::now();
        let out = self.wait_for_replicas(timeout_ms).await;
        crate::metrics::add_remote_time(started.elapsed());
        out
    }

    async fn wait_for_replicas(
        self,
        timeout_ms: i32,
    ) -> Vec<(TopicPartition, ProducePartitionResult)> {
        let PendingAppend {
            mut out,
            mut waiting,
            stopping,
        } = self;
        let deadline = Instant::now() + Duration::from_millis(timeout_ms.max(0) as u64);
        loop {
            let mut rxs: Vec<_> = waiting
                .iter()
                .map(|(_, p, _)| p.signal.subscribe())
                .collect();
            waiting.retain(|(i, p, required)| {
                let (done, code) = p.check_enough_replicas_reach_offset(*required);
                if done && code != codes::NONE {
                    out[*i].1 = ProducePartitionResult::error(code, None);
                }
                !done
            });
            if waiting.is_empty() {
                return out;
            }
            // Checked after subscribing, so the wake-up that follows setting it is not missed.
            if stopping.load(Ordering::SeqCst) {
                for (i, _, _) in &waiting {
                    out[*i].1 = ProducePartitionResult::error(codes::NOT_LEADER_OR_FOLLOWER, None);
                }
                return out;
            }
            if !wait_any(&mut rxs, deadline).await {
                // Timed out: a last check, then REQUEST_TIMED_OUT for the rest.
                for (i, p, required) in &waiting {
                    let (done, code) = p.check_enough_replicas_reach_offset(*required);
                    if !done {
                        out[*i].1 = ProducePartitionResult::error(codes::REQUEST_TIMED_OUT, None);
                    } else if code != codes::NONE {
                        out[*i].1 = ProducePartitionResult::error(code, None);
                    }
                }
                return out;
            }
        }
    }
}

impl ProducePartitionResult {
    pub fn error(code: i16, message: Option<String>) -> Self {
        Self {
            error_code: code,
            error_message: message,
            record_errors: Vec::new(),
            base_offset: -1,
            log_append_time: -1,
            log_start_offset: -1,
        }
    }
}

/// Who is fetching and how (Kafka `FetchParams`).
#[derive(Debug, Clone, Copy)]
pub struct FetchParams {
    /// Follower broker id, or -1 for consumers.
    pub replica_id: BrokerId,
    /// 0 read_uncommitted, 1 read_committed.
    pub isolation_level: i8,
    pub version: i16,
}

impl FetchParams {
    pub fn is_follower(&self) -> bool {
        self.replica_id >= 0
    }
}

/// One partition to read.
#[derive(Debug, Clone)]
pub struct FetchPartitionSpec {
    pub tp: TopicPartition,
    pub fetch_offset: i64,
    pub log_start_offset: i64,
    pub max_bytes: i32,
    pub current_leader_epoch: i32,
    pub last_fetched_epoch: i32,
}

/// Result of reading one partition.
#[derive(Debug, Clone)]
pub struct FetchPartitionResult {
    pub error_code: i16,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    pub diverging_epoch: Option<(i32, i64)>,
    pub current_leader: Option<(i32, i32)>,
    pub data: Option<FetchDataInfo>,
    pub aborted_transactions: Option<Vec<(i64, i64)>>,
    /// The topic's BrokerTopicMetrics when the partition is hosted here (metrics).
    pub topic_stats: Option<Arc<crate::metrics::TopicStats>>,
}

impl FetchPartitionResult {
    fn error(code: i16) -> Self {
        Self {
            error_code: code,
            high_watermark: -1,
            last_stable_offset: -1,
            log_start_offset: -1,
            diverging_epoch: None,
            current_leader: None,
            data: None,
            aborted_transactions: None,
            topic_stats: None,
        }
    }

    pub fn bytes(&self) -> usize {
        self.data
            .as_ref()
            .map(FetchDataInfo::size_bytes)
            .unwrap_or(0)
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The partitions this broker hosts.
pub struct ReplicaManager {
    pub config: ReplicaConfig,
    logs: Arc<dyn LogProvider>,
    partitions: RwLock<HashMap<TopicPartition, Arc<Partition>>>,
    controller_epoch: AtomicI32,
    hw_checkpoint_started: AtomicBool,
    pub fetch_sessions: FetchSessionCache,
    alive: RwLock<AliveFn>,
    listeners: RwLock<Vec<LeadershipListener>>,
    /// Topic ids of hosted partitions (LeaderAndIsr), for Fetch v13+ lookups.
    topic_ids: RwLock<HashMap<Uuid, String>>,
    /// Follower fetcher tasks, one per leader broker.
    pub fetchers: FetcherManager,
    /// Sends ISR changes to the controller (AlterPartition); installed at start-up.
    alter_isr: RwLock<Option<AlterIsrFn>>,
    /// Shutting down: acks=all produces stop waiting (see `release_parked_produces`).
    stopping: Arc<AtomicBool>,
}

/// A proposed ISR change for one partition (AlterPartition item).
#[derive(Debug, Clone)]
pub struct AlterIsrItem {
    pub tp: TopicPartition,
    pub topic_id: Option<Uuid>,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub new_isr: Vec<BrokerId>,
}

/// Delivers an [`AlterIsrItem`] to the controller; the implementation must
/// eventually call [`ReplicaManager::complete_isr_change`].
pub type AlterIsrFn = Arc<dyn Fn(AlterIsrItem) + Send + Sync>;

impl std::fmt::Debug for ReplicaManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicaManager")
            .field("broker_id", &self.config.broker_id)
            .field("partitions", &self.partition_count())
            .finish()
    }
}

impl ReplicaManager {
    pub fn new(config: ReplicaConfig, logs: Arc<dyn LogProvider>) -> Arc<Self> {
        Self::with_fetcher_config(config, logs, FetcherConfig::default())
    }

    pub fn with_fetcher_config(
        config: ReplicaConfig,
        logs: Arc<dyn LogProvider>,
        fetcher: FetcherConfig,
    ) -> Arc<Self> {
        let slots = config.fetch_session_cache_slots;
        Arc::new(Self {
            config,
            logs,
            partitions: RwLock::new(HashMap::new()),
            controller_epoch: AtomicI32::new(-1),
            hw_checkpoint_started: AtomicBool::new(false),
            fetch_sessions: FetchSessionCache::new(slots),
            alive: RwLock::new(Arc::new(|_| true)),
            listeners: RwLock::new(Vec::new()),
            topic_ids: RwLock::new(HashMap::new()),
            fetchers: FetcherManager::new(fetcher),
            stopping: Arc::new(AtomicBool::new(false)),
            alter_isr: RwLock::new(None),
        })
    }

    pub fn logs(&self) -> &Arc<dyn LogProvider> {
        &self.logs
    }

    /// Install the liveness check (normally backed by the metadata cache).
    pub fn set_alive_fn(&self, f: AliveFn) {
        *self.alive.write().unwrap_or_else(|p| p.into_inner()) = f;
    }

    /// The installed liveness check.
    pub fn alive_checker(&self) -> AliveFn {
        self.alive_fn()
    }

    fn alive_fn(&self) -> AliveFn {
        self.alive.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Install the AlterPartition sender.
    pub fn set_alter_isr_fn(&self, f: AlterIsrFn) {
        *self.alter_isr.write().unwrap_or_else(|p| p.into_inner()) = Some(f);
    }

    fn propose_isr(&self, partition: &Arc<Partition>, new_isr: Vec<BrokerId>) {
        let f = self
            .alter_isr
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        match f {
            Some(f) => {
                let view = partition.view();
                f(AlterIsrItem {
                    tp: partition.tp.clone(),
                    topic_id: view.topic_id,
                    leader_epoch: view.leader_epoch,
                    partition_epoch: view.partition_epoch,
                    new_isr,
                });
            }
            // No controller channel: drop the pending change.
            None => partition.complete_isr_change(None),
        }
    }

    /// The controller answered an AlterPartition: `Some((isr, leader_epoch,
    /// partition_epoch))` on success, `None` on error (the change is retried later).
    pub fn complete_isr_change(
        &self,
        tp: &TopicPartition,
        result: Option<(Vec<BrokerId>, i32, i32)>,
    ) {
        if let Some(p) = self.partition(tp) {
            let before = p.read_state(|s| s.isr.len());
            p.complete_isr_change(result);
            crate::metrics::isr_changed(before, p.read_state(|s| s.isr.len()));
            let alive = self.alive_fn();
            p.maybe_increment_hw(self.config.replica_lag_time_max_ms, now_ms(), &*alive);
        }
    }

    /// One ISR-shrink pass over led partitions (every `replica.lag.time.max.ms / 2`).
    pub fn maybe_shrink_isrs(&self) {
        let now = now_ms();
        for p in self.partitions() {
            if !p.is_leader() {
                continue;
            }
            if let Some(new_isr) = p.maybe_shrink_isr(self.config.replica_lag_time_max_ms, now) {
                tracing::info!(tp = %p.tp, ?new_isr, "shrinking ISR");
                self.propose_isr(&p, new_isr);
            }
        }
    }

    /// Background: ISR shrink checks. Stops when the manager is dropped.
    pub fn spawn_background(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let me = Arc::downgrade(self);
        let period = Duration::from_millis((self.config.replica_lag_time_max_ms / 2).max(100));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(rm) = me.upgrade() else { return };
                rm.maybe_shrink_isrs();
            }
        })
    }

    /// Register a leadership listener (group / transaction coordinators).
    pub fn add_leadership_listener(&self, l: LeadershipListener) {
        self.listeners
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(l);
    }

    fn notify_leadership(&self, tp: &TopicPartition, epoch: Option<i32>) {
        let ls = self
            .listeners
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for l in ls {
            l(tp, epoch);
        }
    }

    /// Topic name for an id we learned from LeaderAndIsr.
    pub fn topic_name_for_id(&self, id: &Uuid) -> Option<String> {
        self.topic_ids
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }

    /// Remember a controller epoch seen elsewhere (UpdateMetadata).
    pub fn observe_controller_epoch(&self, epoch: i32) {
        self.controller_epoch.fetch_max(epoch, Ordering::AcqRel);
    }

    pub fn controller_epoch(&self) -> i32 {
        self.controller_epoch.load(Ordering::Acquire)
    }

    pub fn partition(&self, tp: &TopicPartition) -> Option<Arc<Partition>> {
        self.partitions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(tp)
            .cloned()
    }

    /// Shutdown, once the controlled shutdown is over: answer every acks=all produce parked
    /// here (and any later one) NOT_LEADER_OR_FOLLOWER. The controller has moved our
    /// leaderships away, but the LeaderAndIsr saying so races our listener's close and can be
    /// lost; a parked produce would then wait for followers that already fetch from the new
    /// leaders until its request timeout, and the connection drain with it. Kafka closes every
    /// connection at this point (`SocketServer.stopProcessingRequests`); either way the client
    /// retries on the new leader at once.
    pub fn release_parked_produces(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        for p in self.partitions() {
            p.signal.bump();
        }
    }

    pub fn partitions(&self) -> Vec<Arc<Partition>> {
        self.partitions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    pub fn partition_count(&self) -> usize {
        self.partitions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    fn get_or_create_partition(&self, tp: &TopicPartition) -> Arc<Partition> {
        if let Some(p) = self.partition(tp) {
            return p;
        }
        let mut map = self.partitions.write().unwrap_or_else(|p| p.into_inner());
        map.entry(tp.clone())
            .or_insert_with(|| Arc::new(Partition::new(tp.clone(), self.config.broker_id)))
            .clone()
    }

    /// Leader partition or the right error (KAFKA_STORAGE_ERROR / NOT_LEADER /
    /// UNKNOWN_TOPIC_OR_PARTITION).
    pub fn leader_partition(&self, tp: &TopicPartition) -> Result<Arc<Partition>> {
        match self.partition(tp) {
            Some(p) if p.is_offline() => Err(Error::KafkaStorageError(format!(
                "partition {tp} is in an offline log directory"
            ))),
            Some(p) if p.is_leader() => Ok(p),
            Some(_) => Err(Error::NotLeaderOrFollower(format!(
                "broker {} is not the leader of {tp}",
                self.config.broker_id
            ))),
            None => Err(Error::UnknownTopicOrPartition(format!(
                "partition {tp} is not hosted on broker {}",
                self.config.broker_id
            ))),
        }
    }

    // ------------------------------------------------------------------ control plane

    /// Kafka `ReplicaManager.handleLogDirFailure` (ZK mode), the replica half: every
    /// partition whose log lives in `dir` stops fetching and goes offline (answers
    /// KAFKA_STORAGE_ERROR from now on). Returns the partitions taken offline. The caller
    /// halts the broker if no dir is left and otherwise tells the controller.
    pub fn handle_log_dir_failure(&self, dir: &std::path::Path) -> Vec<TopicPartition> {
        let mut offline = Vec::new();
        for p in self.partitions() {
            if p.is_offline() || p.log().is_none_or(|l| l.parent_dir() != dir) {
                continue;
            }
            self.fetchers.remove_partition(&p.tp);
            let was_leader = p.is_leader();
            p.mark_offline();
            if was_leader {
                self.notify_leadership(&p.tp, None);
            }
            offline.push(p.tp.clone());
        }
        offline.sort();
        tracing::warn!(
            dir = %dir.display(),
            partitions = ?offline,
            "stopped fetchers and took partitions offline: their log directory has failed"
        );
        offline
    }

    /// Kafka `ReplicaManager.becomeLeaderOrFollower` (ZK mode).
    /// `current_broker_epoch` is our registration epoch (-1 if unknown).
    pub fn become_leader_or_follower(
        self: &Arc<Self>,
        req: &LeaderAndIsrRequest,
        version: i16,
        current_broker_epoch: i64,
    ) -> LeaderAndIsrResponse {
        let mut resp = LeaderAndIsrResponse::default();
        if req.broker_epoch != -1
            && current_broker_epoch >= 0
            && req.broker_epoch < current_broker_epoch
        {
            resp.error_code = codes::STALE_BROKER_EPOCH;
            return resp;
        }
        if req.controller_epoch < self.controller_epoch() {
            tracing::info!(
                controller = req.controller_id.0,
                epoch = req.controller_epoch,
                "ignoring LeaderAndIsr from a stale controller"
            );
            resp.error_code = codes::STALE_CONTROLLER_EPOCH;
            return resp;
        }
        self.controller_epoch
            .fetch_max(req.controller_epoch, Ordering::AcqRel);

        // (topic name, topic id, partition state)
        let mut states: Vec<(String, Uuid, &LeaderAndIsrPartitionState)> = Vec::new();
        if version <= 1 {
            for ps in &req.ungrouped_partition_states {
                states.push((ps.topic_name.to_string(), Uuid::nil(), ps));
            }
        } else {
            for t in &req.topic_states {
                for ps in &t.partition_states {
                    states.push((t.topic_name.to_string(), t.topic_id, ps));
                }
            }
        }

        let leaders: HashMap<BrokerId, LeaderEndpoint> = req
            .live_leaders
            .iter()
            .map(|l| {
                (
                    l.broker_id.0,
                    LeaderEndpoint {
                        broker_id: l.broker_id.0,
                        host: l.host_name.to_string(),
                        port: l.port,
                    },
                )
            })
            .collect();
        let now = now_ms();
        let mut results: Vec<(String, Uuid, i32, i16)> = Vec::with_capacity(states.len());
        for (topic, topic_id, ps) in states {
            let tp = TopicPartition::new(topic.clone(), ps.partition_index);
            let code = self.apply_partition_state(&tp, topic_id, ps, &leaders, now);
            results.push((topic, topic_id, ps.partition_index, code));
        }

        self.hw_checkpoint_started.store(true, Ordering::Release);

        if version >= 5 {
            let mut by_topic: BTreeMap<(Uuid, String), Vec<LeaderAndIsrPartitionError>> =
                BTreeMap::new();
            for (topic, id, p, code) in results {
                let mut e = LeaderAndIsrPartitionError::default();
                e.partition_index = p;
                e.error_code = code;
                by_topic.entry((id, topic)).or_default().push(e);
            }
            for ((id, _), errs) in by_topic {
                let mut t = LeaderAndIsrTopicError::default();
                t.topic_id = id;
                t.partition_errors = errs;
                resp.topics.push(t);
            }
        } else {
            for (topic, _, p, code) in results {
                let mut e = LeaderAndIsrPartitionError::default();
                e.topic_name = TopicName(topic.into());
                e.partition_index = p;
                e.error_code = code;
                resp.partition_errors.push(e);
            }
        }
        resp
    }

    fn apply_partition_state(
        self: &Arc<Self>,
        tp: &TopicPartition,
        topic_id: Uuid,
        ps: &LeaderAndIsrPartitionState,
        leaders: &HashMap<BrokerId, LeaderEndpoint>,
        now: u64,
    ) -> i16 {
        let local = self.config.broker_id;
        let partition = self.get_or_create_partition(tp);
        let req_id = (!topic_id.is_nil()).then_some(topic_id);

        // Kafka answers KAFKA_STORAGE_ERROR for a replica in an offline log dir; the
        // controller then treats the replica as offline (moves leadership, shrinks ISR).
        let existing_log = partition.log().or_else(|| self.logs.get_log(tp));
        if partition.is_offline() || existing_log.as_ref().is_some_and(|l| l.is_offline()) {
            tracing::warn!(%tp, "ignoring LeaderAndIsr: the replica is in an offline log directory");
            return codes::KAFKA_STORAGE_ERROR;
        }

        // Topic id consistency with the local log's partition.metadata.
        if let (Some(id), Some(log)) = (req_id, existing_log.as_ref()) {
            if let Some(local_id) = log.topic_id() {
                if local_id != id {
                    tracing::error!(%tp, ?id, ?local_id, "topic id mismatch in LeaderAndIsr");
                    return codes::INCONSISTENT_TOPIC_ID;
                }
            }
        }
        let current_epoch = partition.leader_epoch();
        if ps.leader_epoch < current_epoch {
            return codes::STALE_CONTROLLER_EPOCH;
        }
        if ps.leader_epoch == current_epoch {
            // Only a topic id assignment may be applied at the same epoch.
            if let (Some(id), Some(log)) = (req_id, existing_log.as_ref()) {
                if log.topic_id().is_none() {
                    return match log.assign_topic_id(id) {
                        Ok(()) => {
                            partition.set_topic_id(id);
                            codes::NONE
                        }
                        Err(e) => e.code(),
                    };
                }
            }
            return codes::STALE_CONTROLLER_EPOCH;
        }
        if !ps.replicas.iter().any(|b| b.0 == local) {
            return codes::UNKNOWN_TOPIC_OR_PARTITION;
        }
        if ps.partition_epoch < partition.read_state(|s| s.partition_epoch) {
            // A newer partition epoch is already known (from AlterPartition).
            return codes::NONE;
        }

        // Open / create the log.
        let log = match existing_log {
            Some(l) => l,
            None => match self.logs.get_or_create_log(tp, req_id, ps.is_new) {
                Ok(l) => l,
                Err(e) => {
                    tracing::error!(%tp, error = %e, "cannot create log");
                    return e.code();
                }
            },
        };
        if let Some(id) = req_id {
            if log.topic_id().is_none() {
                if let Err(e) = log.assign_topic_id(id) {
                    return e.code();
                }
            }
            partition.set_topic_id(id);
            self.topic_ids
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .insert(id, tp.topic.clone());
        }
        partition.set_log(log.clone());

        // Wait for a follower append in flight and keep new ones out while the role changes,
        // so the log end read below is final (see `Partition::follower_write`).
        let _transition = partition.lock_transition();
        if ps.leader == local {
            self.fetchers.remove_partition(tp);
            let leo = log.log_end_offset();
            let new_epoch = partition.with_state(|s| {
                s.become_leader(
                    ps.controller_epoch,
                    ps.leader_epoch,
                    ps.partition_epoch,
                    ps.replicas.iter().map(|b| b.0).collect(),
                    ps.isr.iter().map(|b| b.0).collect(),
                    ps.adding_replicas.iter().map(|b| b.0).collect(),
                    ps.removing_replicas.iter().map(|b| b.0).collect(),
                    leo,
                    now,
                )
            });
            if new_epoch {
                if let Err(e) = log.assign_epoch_start_offset(ps.leader_epoch, leo) {
                    tracing::error!(%tp, error = %e, "cannot record leader epoch");
                    return e.code();
                }
            }
            let alive = self.alive_fn();
            partition.maybe_increment_hw(self.config.replica_lag_time_max_ms, now, &*alive);
            tracing::info!(%tp, epoch = ps.leader_epoch, leo, "became leader");
            self.notify_leadership(tp, Some(ps.leader_epoch));
        } else {
            partition.with_state(|s| {
                s.become_follower(
                    ps.controller_epoch,
                    ps.leader.0,
                    ps.leader_epoch,
                    ps.partition_epoch,
                    ps.replicas.iter().map(|b| b.0).collect(),
                    ps.adding_replicas.iter().map(|b| b.0).collect(),
                    ps.removing_replicas.iter().map(|b| b.0).collect(),
                )
            });
            // Without epoch data the follower restarts from its HW (Kafka truncates
            // to HW before fetching in that case).
            if log.latest_epoch().is_none() {
                let hw = log.high_watermark();
                if let Err(e) = log.truncate_to(hw) {
                    tracing::error!(%tp, error = %e, "truncation to HW failed");
                }
            }
            self.fetchers.remove_partition(tp);
            match leaders.get(&ps.leader.0) {
                Some(ep) => {
                    let offset = log.log_end_offset();
                    self.fetchers.add_partition(
                        self,
                        ep.clone(),
                        tp.clone(),
                        offset,
                        ps.leader_epoch,
                    );
                }
                None => {
                    tracing::info!(%tp, leader = ps.leader.0, "leader not live; not fetching");
                }
            }
            tracing::info!(%tp, leader = ps.leader.0, epoch = ps.leader_epoch, "became follower");
            self.notify_leadership(tp, None);
        }
        partition.signal.bump();
        codes::NONE
    }

    /// Kafka `ReplicaManager.stopReplicas` (ZK mode).
    pub fn stop_replicas(
        &self,
        req: &StopReplicaRequest,
        version: i16,
        current_broker_epoch: i64,
    ) -> StopReplicaResponse {
        let mut resp = StopReplicaResponse::default();
        if req.broker_epoch != -1
            && current_broker_epoch >= 0
            && req.broker_epoch < current_broker_epoch
        {
            resp.error_code = codes::STALE_BROKER_EPOCH;
            return resp;
        }
        if req.controller_epoch < self.controller_epoch() {
            resp.error_code = codes::STALE_CONTROLLER_EPOCH;
            return resp;
        }
        self.controller_epoch
            .fetch_max(req.controller_epoch, Ordering::AcqRel);

        // (tp, leader epoch, delete)
        let mut items: Vec<(TopicPartition, i32, bool)> = Vec::new();
        match version {
            0 => {
                for p in &req.ungrouped_partitions {
                    items.push((
                        TopicPartition::new(p.topic_name.to_string(), p.partition_index),
                        -2,
                        req.delete_partitions,
                    ));
                }
            }
            1 | 2 => {
                for t in &req.topics {
                    for p in &t.partition_indexes {
                        items.push((
                            TopicPartition::new(t.name.to_string(), *p),
                            -2,
                            req.delete_partitions,
                        ));
                    }
                }
            }
            _ => {
                for t in &req.topic_states {
                    for p in &t.partition_states {
                        items.push((
                            TopicPartition::new(t.topic_name.to_string(), p.partition_index),
                            p.leader_epoch,
                            p.delete_partition,
                        ));
                    }
                }
            }
        }
        for (tp, epoch, delete) in items {
            let code = self.stop_partition(&tp, epoch, delete);
            let mut e = StopReplicaPartitionError::default();
            e.topic_name = TopicName(tp.topic.clone().into());
            e.partition_index = tp.partition;
            e.error_code = code;
            resp.partition_errors.push(e);
        }
        resp
    }

    fn stop_partition(&self, tp: &TopicPartition, epoch: i32, delete: bool) -> i16 {
        if self.partition(tp).is_some_and(|p| p.is_offline())
            || self.logs.get_log(tp).is_some_and(|l| l.is_offline())
        {
            // Kafka leaves replicas in an offline dir alone until restart.
            return codes::KAFKA_STORAGE_ERROR;
        }
        let Some(partition) = self.partition(tp) else {
            if delete && self.logs.get_log(tp).is_some() {
                if let Err(e) = self.logs.delete_log(tp) {
                    return e.code();
                }
            }
            return codes::NONE;
        };
        let local = partition.leader_epoch();
        if epoch >= 0 && epoch < local {
            return codes::FENCED_LEADER_EPOCH;
        }
        let was_leader = partition.is_leader();
        self.fetchers.remove_partition(tp);
        // No longer leader, deleted or not: produce requests parked in the purgatory (and
        // waiting fetches) wake on the bump below and answer NOT_LEADER_OR_FOLLOWER at once,
        // as Kafka completes them on StopReplica, instead of sitting until their timeout.
        partition.with_state(|s| {
            s.leader = -1;
            s.followers.clear();
        });
        if delete {
            self.partitions
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .remove(tp);
            if let Err(e) = self.logs.delete_log(tp) {
                tracing::error!(%tp, error = %e, "log deletion failed");
                partition.signal.bump();
                return e.code();
            }
        }
        partition.signal.bump();
        if was_leader || delete {
            self.notify_leadership(tp, None);
        }
        codes::NONE
    }

    // ------------------------------------------------------------------ produce

    /// Append to the leaders of `entries`; with `required_acks == -1` wait until
    /// every appended partition's HW passes its last offset or `timeout_ms` ends.
    pub async fn append_records(
        &self,
        timeout_ms: i32,
        required_acks: i16,
        origin: AppendOrigin,
        entries: Vec<(TopicPartition, BytesMut)>,
    ) -> Vec<(TopicPartition, ProducePartitionResult)> {
        self.append_records_now(required_acks, origin, entries)
            .wait(timeout_ms)
            .await
    }

    /// The local half of [`Self::append_records`]: appends to the leaders right away (so
    /// callers holding a lock get their records in the log in call order, as the group
    /// coordinator needs); the returned [`PendingAppend`] waits for the acks.
    pub fn append_records_now(
        &self,
        required_acks: i16,
        origin: AppendOrigin,
        entries: Vec<(TopicPartition, BytesMut)>,
    ) -> PendingAppend {
        self.append_records_now_verified(
            required_acks,
            origin,
            entries
                .into_iter()
                .map(|(tp, r)| (tp, r, VerificationGuard::SENTINEL))
                .collect(),
        )
    }

    /// [`Self::append_records_now`] with each entry's KIP-890 verification guard (the
    /// produce path of a verified transactional batch).
    pub fn append_records_now_verified(
        &self,
        required_acks: i16,
        origin: AppendOrigin,
        entries: Vec<(TopicPartition, BytesMut, VerificationGuard)>,
    ) -> PendingAppend {
        let alive = self.alive_fn();
        let now = now_ms();
        let mut out: Vec<(TopicPartition, ProducePartitionResult)> =
            Vec::with_capacity(entries.len());
        let mut waiting: Vec<(usize, Arc<Partition>, i64)> = Vec::new();
        for (tp, records, guard) in entries {
            let bytes = records.len() as u64;
            let res = match self.leader_partition(&tp) {
                Ok(p) => match p.append_records_to_leader(
                    records,
                    origin,
                    required_acks,
                    self.config.replica_lag_time_max_ms,
                    now,
                    &*alive,
                    guard,
                ) {
                    Ok(info) => {
                        if required_acks == -1 && info.last_offset >= 0 {
                            waiting.push((out.len(), p.clone(), info.last_offset + 1));
                        }
                        let records = u64::try_from(info.num_messages).unwrap_or(0);
                        crate::metrics::produce_appended(p.topic_stats(), records, bytes);
                        Self::produce_ok(&info)
                    }
                    Err(e) => {
                        Self::charge_failed_append(&p, &e, bytes);
                        Self::produce_failed(&p, e)
                    }
                },
                Err(e) => {
                    crate::metrics::produce_failed(None, false, 0);
                    ProducePartitionResult::error(e.code(), None)
                }
            };
            out.push((tp, res));
        }
        PendingAppend {
            out,
            waiting,
            stopping: self.stopping.clone(),
        }
    }

    /// BrokerTopicMetrics of a failed leader append: Kafka counts a failed produce only for
    /// errors other than leadership, size, corruption and storage ones, and rejected bytes
    /// for a batch over the size limit.
    fn charge_failed_append(p: &Partition, e: &Error, bytes: u64) {
        let expected = matches!(
            e,
            Error::NotLeaderOrFollower(_)
                | Error::UnknownTopicOrPartition(_)
                | Error::MessageTooLarge(_)
                | Error::RecordListTooLarge(_)
                | Error::CorruptMessage(_)
                | Error::KafkaStorageError(_)
        );
        let rejected = if matches!(e, Error::MessageTooLarge(_)) {
            bytes
        } else {
            0
        };
        crate::metrics::produce_failed(Some(p.topic_stats()), !expected, rejected);
    }

    /// A failed leader append as Kafka's `appendToLocalLog` reports it: only record
    /// validation carries a message and per-record errors; errors other than the
    /// leadership, size, corruption and storage ones also carry the log start offset.
    fn produce_failed(p: &Partition, e: Error) -> ProducePartitionResult {
        let code = e.code();
        let log_start = match &e {
            Error::NotLeaderOrFollower(_)
            | Error::UnknownTopicOrPartition(_)
            | Error::MessageTooLarge(_)
            | Error::RecordListTooLarge(_)
            | Error::CorruptMessage(_)
            | Error::KafkaStorageError(_) => -1,
            _ => p.log().map_or(-1, |l| l.log_start_offset()),
        };
        let mut r = match e {
            Error::RecordValidation {
                message,
                record_errors,
                ..
            } => {
                let mut r = ProducePartitionResult::error(code, Some(message));
                r.record_errors = record_errors;
                r
            }
            _ => ProducePartitionResult::error(code, None),
        };
        r.log_start_offset = log_start;
        r
    }

    fn produce_ok(info: &LogAppendInfo) -> ProducePartitionResult {
        ProducePartitionResult {
            error_code: codes::NONE,
            error_message: None,
            record_errors: Vec::new(),
            base_offset: info.first_offset,
            log_append_time: info.log_append_time,
            log_start_offset: info.log_start_offset,
        }
    }

    // ------------------------------------------------------------------ fetch

    /// Read every partition once (no waiting). `known` says whether a topic
    /// exists in the cluster metadata (to pick NOT_LEADER vs UNKNOWN_TOPIC).
    /// Follower fetches update follower state, the ISR and the HW.
    pub fn read_partitions(
        &self,
        params: FetchParams,
        specs: &[FetchPartitionSpec],
        max_bytes: i32,
        known: &dyn Fn(&TopicPartition) -> bool,
    ) -> Vec<FetchPartitionResult> {
        let mut remaining = max_bytes.max(0) as usize;
        // v0-2 have no response limit: no KIP-74 first-message exception either.
        let mut min_one = params.version >= 3;
        let mut out = Vec::with_capacity(specs.len());
        let now = now_ms();
        for spec in specs {
            let limit = (spec.max_bytes.max(0) as usize).min(remaining);
            let r = self.read_one(params, spec, limit, min_one, known, now);
            let n = r.bytes();
            if n > 0 {
                min_one = false;
            }
            remaining = remaining.saturating_sub(n);
            out.push(r);
        }
        out
    }

    fn read_one(
        &self,
        params: FetchParams,
        spec: &FetchPartitionSpec,
        limit: usize,
        min_one: bool,
        known: &dyn Fn(&TopicPartition) -> bool,
        now: u64,
    ) -> FetchPartitionResult {
        let tp = &spec.tp;
        let Some(partition) = self.partition(tp) else {
            return FetchPartitionResult::error(if known(tp) {
                codes::NOT_LEADER_OR_FOLLOWER
            } else {
                codes::UNKNOWN_TOPIC_OR_PARTITION
            });
        };
        let mut r = self.read_hosted(&partition, params, spec, limit, min_one, now);
        if crate::metrics::enabled() {
            r.topic_stats = Some(partition.topic_stats_arc());
        }
        r
    }

    fn read_hosted(
        &self,
        partition: &Arc<Partition>,
        params: FetchParams,
        spec: &FetchPartitionSpec,
        limit: usize,
        min_one: bool,
        now: u64,
    ) -> FetchPartitionResult {
        if partition.is_offline() {
            return FetchPartitionResult::error(codes::KAFKA_STORAGE_ERROR);
        }
        let view = partition.view();
        let Some(log) = view.log.clone() else {
            return FetchPartitionResult::error(codes::NOT_LEADER_OR_FOLLOWER);
        };
        // Followers and pre-v11 consumers read from the leader only; v11+
        // consumers may read from a follower (up to its HW).
        let leader_only = params.is_follower() || params.version < 11;
        if (leader_only && !view.is_leader) || view.leader_epoch < 0 {
            let mut r = FetchPartitionResult::error(codes::NOT_LEADER_OR_FOLLOWER);
            if view.leader >= 0 {
                r.current_leader = Some((view.leader, view.leader_epoch));
            }
            return r;
        }
        if let Err(e) = partition.check_leader_epoch(spec.current_leader_epoch) {
            let mut r = FetchPartitionResult::error(e.code());
            if view.leader >= 0 {
                r.current_leader = Some((view.leader, view.leader_epoch));
            }
            return r;
        }
        if params.is_follower() && !view.replicas.contains(&params.replica_id) {
            return FetchPartitionResult::error(if spec.current_leader_epoch >= 0 {
                codes::UNKNOWN_LEADER_EPOCH
            } else {
                codes::NOT_LEADER_OR_FOLLOWER
            });
        }
        let fill = |mut r: FetchPartitionResult| {
            r.high_watermark = log.high_watermark();
            r.last_stable_offset = log.last_stable_offset();
            r.log_start_offset = log.log_start_offset();
            r
        };

        // Divergence check (follower fetch v12+ with LastFetchedEpoch).
        if spec.last_fetched_epoch >= 0 && params.version >= 12 {
            let (e, o) = log.end_offset_for_epoch(spec.last_fetched_epoch);
            if e < 0 || o < 0 || spec.fetch_offset < log.log_start_offset() {
                return fill(FetchPartitionResult::error(codes::OFFSET_OUT_OF_RANGE));
            }
            if e < spec.last_fetched_epoch || o < spec.fetch_offset {
                let mut r = fill(FetchPartitionResult::error(codes::NONE));
                r.diverging_epoch = Some((e, o));
                return r;
            }
        }

        let leader_leo = log.log_end_offset();
        let max_offset = if params.is_follower() {
            leader_leo
        } else if params.isolation_level == 1 {
            log.last_stable_offset()
        } else {
            log.high_watermark()
        };
        let read_committed = params.isolation_level == 1 && !params.is_follower();
        let read = if read_committed {
            log.read_with_aborted_transactions(spec.fetch_offset, limit, max_offset, min_one)
        } else {
            log.read(spec.fetch_offset, limit, max_offset, min_one)
        };
        match read {
            Ok(mut data) => {
                let aborted = if read_committed {
                    Some(
                        data.aborted_transactions
                            .take()
                            .unwrap_or_default()
                            .into_iter()
                            .map(|a| (a.producer_id, a.first_offset))
                            .collect(),
                    )
                } else {
                    None
                };
                if params.is_follower() {
                    self.on_follower_fetch(
                        partition,
                        params.replica_id,
                        spec.fetch_offset,
                        spec.log_start_offset,
                        leader_leo,
                        now,
                    );
                }
                let mut r = fill(FetchPartitionResult::error(codes::NONE));
                r.data = Some(data);
                r.aborted_transactions = aborted;
                r
            }
            Err(e) => fill(FetchPartitionResult::error(e.code())),
        }
    }

    fn on_follower_fetch(
        &self,
        partition: &Arc<Partition>,
        replica: BrokerId,
        fetch_offset: i64,
        follower_log_start: i64,
        leader_leo: i64,
        now: u64,
    ) {
        let alive = self.alive_fn();
        let expand = partition.update_follower_fetch_state(
            replica,
            fetch_offset,
            follower_log_start,
            leader_leo,
            now,
            alive(replica),
        );
        if let Some(new_isr) = expand {
            tracing::info!(tp = %partition.tp, ?new_isr, "expanding ISR");
            self.propose_isr(partition, new_isr);
        }
        partition.maybe_increment_hw(self.config.replica_lag_time_max_ms, now, &*alive);
    }

    // ------------------------------------------------------------------ HW checkpoints

    /// Write `replication-offset-checkpoint` in every log dir now (the log
    /// manager also does it every `replica.high.watermark.checkpoint.interval.ms`).
    pub fn checkpoint_high_watermarks(&self) -> Result<()> {
        self.logs.checkpoint_high_watermarks()
    }

    /// Whether a LeaderAndIsr has been applied (Kafka starts HW checkpointing then).
    pub fn hw_checkpointing_started(&self) -> bool {
        self.hw_checkpoint_started.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::LogConfig;
    use crate::replica::testing::{batch, TempLogs};
    use kafka_protocol::messages::leader_and_isr_request::LeaderAndIsrTopicState;
    use kafka_protocol::messages::stop_replica_request::{
        StopReplicaPartitionState, StopReplicaTopicState,
    };
    use kafka_protocol::messages::BrokerId as KBrokerId;
    use kafka_protocol::records::Compression;

    const TOPIC_ID: Uuid = Uuid::from_u128(0xabcdef);

    fn lisr(
        controller_epoch: i32,
        leader: i32,
        leader_epoch: i32,
        replicas: &[i32],
        isr: &[i32],
    ) -> LeaderAndIsrRequest {
        let mut ps = LeaderAndIsrPartitionState::default();
        ps.partition_index = 0;
        ps.controller_epoch = controller_epoch;
        ps.leader = KBrokerId(leader);
        ps.leader_epoch = leader_epoch;
        ps.isr = isr.iter().map(|b| KBrokerId(*b)).collect();
        ps.replicas = replicas.iter().map(|b| KBrokerId(*b)).collect();
        ps.partition_epoch = leader_epoch;
        ps.is_new = true;
        let mut ts = LeaderAndIsrTopicState::default();
        ts.topic_name = TopicName("t".into());
        ts.topic_id = TOPIC_ID;
        ts.partition_states = vec![ps];
        let mut req = LeaderAndIsrRequest::default();
        req.controller_id = KBrokerId(1);
        req.controller_epoch = controller_epoch;
        req.broker_epoch = -1;
        req.topic_states = vec![ts];
        req
    }

    fn manager(min_isr: i32) -> (Arc<ReplicaManager>, Arc<TempLogs>) {
        let mut cfg = LogConfig::default();
        cfg.min_insync_replicas = min_isr;
        let logs = TempLogs::new(cfg);
        let rm = ReplicaManager::new(ReplicaConfig::new(1), logs.clone());
        (rm, logs)
    }

    fn code_of(resp: &LeaderAndIsrResponse) -> i16 {
        resp.topics[0].partition_errors[0].error_code
    }

    fn tp() -> TopicPartition {
        TopicPartition::new("t", 0)
    }

    fn consumer() -> FetchParams {
        FetchParams {
            replica_id: -1,
            isolation_level: 0,
            version: 12,
        }
    }

    fn spec(offset: i64) -> FetchPartitionSpec {
        FetchPartitionSpec {
            tp: tp(),
            fetch_offset: offset,
            log_start_offset: 0,
            max_bytes: 1 << 20,
            current_leader_epoch: -1,
            last_fetched_epoch: -1,
        }
    }

    #[tokio::test]
    async fn single_replica_leader_produce_and_read() {
        let (rm, _logs) = manager(1);
        let resp = rm.become_leader_or_follower(&lisr(1, 1, 0, &[1], &[1]), 7, -1);
        assert_eq!(resp.error_code, 0);
        assert_eq!(resp.topics[0].topic_id, TOPIC_ID);
        assert_eq!(code_of(&resp), 0);
        let p = rm.partition(&tp()).expect("partition");
        assert!(p.is_leader());
        assert_eq!(p.log().and_then(|l| l.topic_id()), Some(TOPIC_ID));

        let out = rm
            .append_records(
                1000,
                1,
                AppendOrigin::Client,
                vec![(tp(), batch(3, Compression::None))],
            )
            .await;
        assert_eq!(out[0].1.error_code, 0, "{:?}", out[0].1.error_message);
        assert_eq!(out[0].1.base_offset, 0);
        let out = rm
            .append_records(
                1000,
                -1,
                AppendOrigin::Client,
                vec![(tp(), batch(2, Compression::None))],
            )
            .await;
        assert_eq!(out[0].1.error_code, 0);
        assert_eq!(out[0].1.base_offset, 3);
        let log = p.log().expect("log");
        assert_eq!(log.high_watermark(), 5);

        let r = rm.read_partitions(consumer(), &[spec(0)], 1 << 20, &|_| true);
        assert_eq!(r[0].error_code, 0);
        assert_eq!(r[0].high_watermark, 5);
        assert!(r[0].bytes() > 0);
        let r = rm.read_partitions(consumer(), &[spec(6)], 1 << 20, &|_| true);
        assert_eq!(r[0].error_code, codes::OFFSET_OUT_OF_RANGE);
        // Unknown partition.
        let mut s = spec(0);
        s.tp = TopicPartition::new("nope", 0);
        let r = rm.read_partitions(consumer(), &[s.clone()], 1 << 20, &|_| false);
        assert_eq!(r[0].error_code, codes::UNKNOWN_TOPIC_OR_PARTITION);
        let r = rm.read_partitions(consumer(), &[s], 1 << 20, &|_| true);
        assert_eq!(r[0].error_code, codes::NOT_LEADER_OR_FOLLOWER);
        // Fenced / unknown epochs.
        let mut s = spec(0);
        s.current_leader_epoch = 1;
        let r = rm.read_partitions(consumer(), &[s], 1 << 20, &|_| true);
        assert_eq!(r[0].error_code, codes::UNKNOWN_LEADER_EPOCH);
    }

    #[test]
    fn leader_and_isr_epoch_rules() {
        let (rm, _logs) = manager(1);
        assert_eq!(
            code_of(&rm.become_leader_or_follower(&lisr(2, 1, 3, &[1], &[1]), 7, -1)),
            0
        );
        // Stale controller epoch: top-level error.
        let r = rm.become_leader_or_follower(&lisr(1, 1, 4, &[1], &[1]), 7, -1);
        assert_eq!(r.error_code, codes::STALE_CONTROLLER_EPOCH);
        // Older or equal leader epoch: per-partition 11.
        let r = rm.become_leader_or_follower(&lisr(2, 1, 2, &[1], &[1]), 7, -1);
        assert_eq!(code_of(&r), codes::STALE_CONTROLLER_EPOCH);
        let r = rm.become_leader_or_follower(&lisr(2, 1, 3, &[1], &[1]), 7, -1);
        assert_eq!(code_of(&r), codes::STALE_CONTROLLER_EPOCH);
        // Not in replicas.
        let r = rm.become_leader_or_follower(&lisr(2, 2, 9, &[2, 3], &[2, 3]), 7, -1);
        assert_eq!(code_of(&r), codes::UNKNOWN_TOPIC_OR_PARTITION);
        // Become follower at a newer epoch.
        let r = rm.become_leader_or_follower(&lisr(2, 2, 5, &[1, 2], &[1, 2]), 7, -1);
        assert_eq!(code_of(&r), 0);
        assert!(!rm.partition(&tp()).expect("p").is_leader());
        // Inconsistent topic id.
        let mut req = lisr(3, 1, 6, &[1], &[1]);
        req.topic_states[0].topic_id = Uuid::from_u128(42);
        let r = rm.become_leader_or_follower(&req, 7, -1);
        assert_eq!(code_of(&r), codes::INCONSISTENT_TOPIC_ID);
        // Stale broker epoch.
        let mut req = lisr(3, 1, 6, &[1], &[1]);
        req.broker_epoch = 5;
        assert_eq!(
            rm.become_leader_or_follower(&req, 7, 10).error_code,
            codes::STALE_BROKER_EPOCH
        );
        // v4 answers by topic name.
        let r = rm.become_leader_or_follower(&lisr(3, 1, 7, &[1], &[1]), 4, -1);
        assert_eq!(r.partition_errors[0].topic_name.as_str(), "t");
        assert_eq!(r.partition_errors[0].error_code, 0);
    }

    #[tokio::test]
    async fn min_isr_rules() {
        let (rm, _logs) = manager(2);
        rm.become_leader_or_follower(&lisr(1, 1, 0, &[1, 2, 3], &[1]), 7, -1);
        let out = rm
            .append_records(
                1000,
                -1,
                AppendOrigin::Client,
                vec![(tp(), batch(1, Compression::None))],
            )
            .await;
        assert_eq!(out[0].1.error_code, codes::NOT_ENOUGH_REPLICAS);
        let out = rm
            .append_records(
                1000,
                1,
                AppendOrigin::Client,
                vec![(tp(), batch(1, Compression::None))],
            )
            .await;
        assert_eq!(out[0].1.error_code, 0);
        let log = rm.partition(&tp()).and_then(|p| p.log()).expect("log");
        assert_eq!(log.log_end_offset(), 1);
        assert_eq!(log.high_watermark(), 0, "HW frozen under min ISR");
    }

    #[tokio::test]
    async fn acks_all_waits_for_follower_fetch() {
        let (rm, _logs) = manager(1);
        rm.become_leader_or_follower(&lisr(1, 1, 0, &[1, 2], &[1, 2]), 7, -1);
        // Timeout when the follower never fetches.
        let out = rm
            .append_records(
                100,
                -1,
                AppendOrigin::Client,
                vec![(tp(), batch(2, Compression::None))],
            )
            .await;
        assert_eq!(out[0].1.error_code, codes::REQUEST_TIMED_OUT);

        let rm2 = rm.clone();
        let producer = tokio::spawn(async move {
            rm2.append_records(
                10_000,
                -1,
                AppendOrigin::Client,
                vec![(tp(), batch(3, Compression::None))],
            )
            .await
        });
        // Follower catches up to LEO 5 (fetch at 5 means it has 0..5).
        let follower = FetchParams {
            replica_id: 2,
            isolation_level: 0,
            version: 12,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let leo = rm
                .partition(&tp())
                .and_then(|p| p.log())
                .map(|l| l.log_end_offset());
            if leo == Some(5) {
                break;
            }
            assert!(Instant::now() < deadline, "append never happened");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let r = rm.read_partitions(follower, &[spec(5)], 1 << 20, &|_| true);
        assert_eq!(r[0].error_code, 0);
        let out = producer.await.expect("join");
        assert_eq!(out[0].1.error_code, 0);
        assert_eq!(out[0].1.base_offset, 2);
        assert_eq!(
            rm.partition(&tp())
                .and_then(|p| p.log())
                .map(|l| l.high_watermark()),
            Some(5)
        );
        // A follower fetch from a non-replica is refused.
        let stranger = FetchParams {
            replica_id: 9,
            isolation_level: 0,
            version: 12,
        };
        let r = rm.read_partitions(stranger, &[spec(5)], 1 << 20, &|_| true);
        assert_eq!(r[0].error_code, codes::NOT_LEADER_OR_FOLLOWER);
    }

    #[tokio::test]
    async fn divergence_check_for_followers() {
        let (rm, _logs) = manager(1);
        rm.become_leader_or_follower(&lisr(1, 1, 3, &[1, 2], &[1, 2]), 7, -1);
        let out = rm
            .append_records(
                1000,
                1,
                AppendOrigin::Client,
                vec![(tp(), batch(5, Compression::None))],
            )
            .await;
        assert_eq!(out[0].1.error_code, 0);
        let follower = FetchParams {
            replica_id: 2,
            isolation_level: 0,
            version: 12,
        };
        // Leader cache: epoch 3 starts at 0, LEO 5.
        let mut s = spec(0);
        s.last_fetched_epoch = 3;
        s.fetch_offset = 5;
        let r = rm.read_partitions(follower, &[s.clone()], 1 << 20, &|_| true);
        assert_eq!((r[0].error_code, r[0].diverging_epoch), (0, None));
        // Follower wrote epoch 2 up to offset 4: leader says epoch 2 ended at 0.
        s.last_fetched_epoch = 2;
        s.fetch_offset = 4;
        let r = rm.read_partitions(follower, &[s.clone()], 1 << 20, &|_| true);
        assert_eq!(r[0].error_code, 0);
        assert_eq!(r[0].diverging_epoch, Some((2, 0)));
        assert_eq!(r[0].bytes(), 0, "no records with a diverging epoch");
        // An epoch the leader never had and nothing newer: out of range.
        s.last_fetched_epoch = 7;
        let r = rm.read_partitions(follower, &[s], 1 << 20, &|_| true);
        assert_eq!(r[0].error_code, codes::OFFSET_OUT_OF_RANGE);
    }

    /// StopReplica (with delete, as after a reassignment moved the partition away) answers a
    /// produce parked in the acks=all purgatory with NOT_LEADER_OR_FOLLOWER at once, so the
    /// client retries on the new leader instead of waiting for its request timeout.
    #[tokio::test]
    async fn stop_replica_completes_parked_acks_all_produce() {
        for delete in [true, false] {
            let (rm, _logs) = manager(1);
            rm.become_leader_or_follower(&lisr(1, 1, 3, &[1, 2], &[1, 2]), 7, -1);
            let rm2 = rm.clone();
            let producer = tokio::spawn(async move {
                rm2.append_records(
                    60_000,
                    -1,
                    AppendOrigin::Client,
                    vec![(tp(), batch(2, Compression::None))],
                )
                .await
            });
            let deadline = Instant::now() + Duration::from_secs(10);
            while rm
                .partition(&tp())
                .and_then(|p| p.log())
                .map(|l| l.log_end_offset())
                != Some(2)
            {
                assert!(Instant::now() < deadline, "append never happened");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let mut ps = StopReplicaPartitionState::default();
            ps.partition_index = 0;
            ps.leader_epoch = 4;
            ps.delete_partition = delete;
            let mut ts = StopReplicaTopicState::default();
            ts.topic_name = TopicName("t".into());
            ts.partition_states = vec![ps];
            let mut req = StopReplicaRequest::default();
            req.controller_epoch = 1;
            req.broker_epoch = -1;
            req.topic_states = vec![ts];
            let r = rm.stop_replicas(&req, 4, -1);
            assert_eq!(r.partition_errors[0].error_code, 0);
            let out = tokio::time::timeout(Duration::from_secs(10), producer)
                .await
                .expect("parked produce completed by StopReplica")
                .expect("join");
            assert_eq!(
                out[0].1.error_code,
                codes::NOT_LEADER_OR_FOLLOWER,
                "delete={delete}"
            );
        }
    }

    /// Shutdown after a controlled shutdown whose LeaderAndIsr never arrived (the drill's
    /// 10 s controlled-shutdown stalls): a produce parked in the acks=all purgatory, and one
    /// arriving later, answers NOT_LEADER_OR_FOLLOWER at once instead of at its timeout.
    #[tokio::test]
    async fn release_parked_produces_answers_not_leader() {
        let (rm, _logs) = manager(1);
        rm.become_leader_or_follower(&lisr(1, 1, 3, &[1, 2], &[1, 2]), 7, -1);
        let rm2 = rm.clone();
        let producer = tokio::spawn(async move {
            rm2.append_records(
                60_000,
                -1,
                AppendOrigin::Client,
                vec![(tp(), batch(2, Compression::None))],
            )
            .await
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        while rm
            .partition(&tp())
            .and_then(|p| p.log())
            .map(|l| l.log_end_offset())
            != Some(2)
        {
            assert!(Instant::now() < deadline, "append never happened");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        rm.release_parked_produces();
        let out = tokio::time::timeout(Duration::from_secs(10), producer)
            .await
            .expect("parked produce released")
            .expect("join");
        assert_eq!(out[0].1.error_code, codes::NOT_LEADER_OR_FOLLOWER);
        let later = tokio::time::timeout(
            Duration::from_secs(10),
            rm.append_records(
                60_000,
                -1,
                AppendOrigin::Client,
                vec![(tp(), batch(1, Compression::None))],
            ),
        )
        .await
        .expect("later produce answered at once");
        assert_eq!(later[0].1.error_code, codes::NOT_LEADER_OR_FOLLOWER);
        // acks=1 does not wait and is unaffected.
        let one = rm
            .append_records(
                60_000,
                1,
                AppendOrigin::Client,
                vec![(tp(), batch(1, Compression::None))],
            )
            .await;
        assert_eq!(one[0].1.error_code, 0);
    }

    /// A failed log dir (Kafka's `handleLogDirFailure`): the parked acks=all produce answers
    /// KAFKA_STORAGE_ERROR at once, and from then on produce, fetch, LeaderAndIsr (even with a
    /// newer epoch, which is how the controller probes the replica after the notification) and
    /// StopReplica all answer KAFKA_STORAGE_ERROR; leadership listeners hear of the loss.
    #[tokio::test]
    async fn offline_log_dir_answers_kafka_storage_error() {
        let (rm, logs) = manager(1);
        let lost = Arc::new(std::sync::Mutex::new(Vec::new()));
        let lost2 = lost.clone();
        rm.add_leadership_listener(Arc::new(move |tp, epoch| {
            if epoch.is_none() {
                lost2.lock().expect("lock").push(tp.clone());
            }
        }));
        rm.become_leader_or_follower(&lisr(1, 1, 3, &[1, 2], &[1, 2]), 7, -1);
        let rm2 = rm.clone();
        let producer = tokio::spawn(async move {
            rm2.append_records(
                60_000,
                -1,
                AppendOrigin::Client,
                vec![(tp(), batch(2, Compression::None))],
            )
            .await
        });
        let log = rm.partition(&tp()).and_then(|p| p.log()).expect("log");
        let deadline = Instant::now() + Duration::from_secs(10);
        while log.log_end_offset() != 2 {
            assert!(Instant::now() < deadline, "append never happened");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // What the storage layer does on an I/O error, then the failure handler's call.
        log.mark_offline();
        assert_eq!(rm.handle_log_dir_failure(logs.dir.path()), vec![tp()]);
        let out = tokio::time::timeout(Duration::from_secs(10), producer)
            .await
            .expect("parked produce completed")
            .expect("join");
        assert_eq!(out[0].1.error_code, codes::KAFKA_STORAGE_ERROR);
        assert_eq!(*lost.lock().expect("lock"), vec![tp()]);
        // A second report of the same dir changes nothing.
        assert!(rm.handle_log_dir_failure(logs.dir.path()).is_empty());

        let out = rm
            .append_records(
                1000,
                1,
                AppendOrigin::Client,
                vec![(tp(), batch(1, Compression::None))],
            )
            .await;
        assert_eq!(out[0].1.error_code, codes::KAFKA_STORAGE_ERROR);
        let r = rm.read_partitions(consumer(), &[spec(0)], 1 << 20, &|_| true);
        assert_eq!(r[0].error_code, codes::KAFKA_STORAGE_ERROR);
        // Newer epoch, as leader or follower: still refused.
        for leader in [1, 2] {
            let resp = rm.become_leader_or_follower(&lisr(1, leader, 4, &[1, 2], &[1, 2]), 7, -1);
            assert_eq!(code_of(&resp), codes::KAFKA_STORAGE_ERROR);
        }
        assert!(!rm.partition(&tp()).expect("partition").is_leader());
        let req = stop_replica_t0(5, false);
        let r = rm.stop_replicas(&req, 4, -1);
        assert_eq!(r.partition_errors[0].error_code, codes::KAFKA_STORAGE_ERROR);
        // The log is kept (not deleted) for the operator to inspect.
        assert!(log.dir().exists());
    }

    /// Leader appends racing with LeaderAndIsr epoch bumps (same leader, as when the
    /// controller shrinks the ISR): every batch must carry an epoch whose range in the
    /// leader-epoch cache contains its base offset. An old-epoch batch landing past the new
    /// epoch's start made followers truncate and refetch it forever.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn leader_appends_never_straddle_an_epoch_bump() {
        let (rm, _logs) = manager(1);
        rm.become_leader_or_follower(&lisr(1, 1, 0, &[1], &[1]), 7, -1);
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut appenders = Vec::new();
        for _ in 0..2 {
            let (rm2, done2) = (rm.clone(), done.clone());
            appenders.push(tokio::spawn(async move {
                while !done2.load(std::sync::atomic::Ordering::Relaxed) {
                    let out = rm2
                        .append_records(
                            1000,
                            1,
                            AppendOrigin::Client,
                            vec![(tp(), batch(1, Compression::None))],
                        )
                        .await;
                    assert_eq!(out[0].1.error_code, 0);
                    tokio::task::yield_now().await;
                }
            }));
        }
        for epoch in 1..=300 {
            let r = rm.become_leader_or_follower(&lisr(1, 1, epoch, &[1], &[1]), 7, -1);
            assert_eq!(code_of(&r), 0);
            tokio::task::yield_now().await;
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        for a in appenders {
            a.await.expect("appender");
        }
        let log = rm.partition(&tp()).and_then(|p| p.log()).expect("log");
        let leo = log.log_end_offset();
        let data = log.read(0, usize::MAX, leo, true).expect("read");
        let mut bytes = Vec::new();
        for s in &data.slices {
            bytes.extend(s.read_to_vec().expect("slice"));
        }
        let mut pos = 0;
        let mut batches = 0;
        while pos + 17 <= bytes.len() {
            let base = i64::from_be_bytes(bytes[pos..pos + 8].try_into().expect("8"));
            let len = i32::from_be_bytes(bytes[pos + 8..pos + 12].try_into().expect("4"));
            let epoch = i32::from_be_bytes(bytes[pos + 12..pos + 16].try_into().expect("4"));
            let (_, end) = log.end_offset_for_epoch(epoch);
            assert!(
                base < end,
                "batch at {base} has epoch {epoch}, whose range ends at {end}"
            );
            pos += 12 + len as usize;
            batches += 1;
        }
        assert_eq!(batches as i64, leo, "one record per batch");
    }

    /// StopReplica (controller epoch 1, no broker epoch) for partition `t-0`.
    fn stop_replica_t0(leader_epoch: i32, delete: bool) -> StopReplicaRequest {
        let mut ps = StopReplicaPartitionState::default();
        ps.partition_index = 0;
        ps.leader_epoch = leader_epoch;
        ps.delete_partition = delete;
        let mut ts = StopReplicaTopicState::default();
        ts.topic_name = TopicName("t".into());
        ts.partition_states = vec![ps];
        let mut req = StopReplicaRequest::default();
        req.controller_epoch = 1;
        req.broker_epoch = -1;
        req.topic_states = vec![ts];
        req
    }

    #[test]
    fn stop_replica_delete() {
        let (rm, logs) = manager(1);
        rm.become_leader_or_follower(&lisr(1, 1, 3, &[1], &[1]), 7, -1);
        let dir = logs.dir.path().join("t-0");
        assert!(dir.exists());
        let mut req = stop_replica_t0(2, true);
        let r = rm.stop_replicas(&req, 4, -1);
        assert_eq!(r.partition_errors[0].error_code, codes::FENCED_LEADER_EPOCH);
        req.topic_states[0].partition_states[0].leader_epoch = -2;
        let r = rm.stop_replicas(&req, 4, -1);
        assert_eq!(r.partition_errors[0].error_code, 0);
        assert!(rm.partition(&tp()).is_none());
        assert!(!dir.exists());
    }
}
