//! One hosted partition: its log plus the replication state LeaderAndIsr installs.
//!
//! Locking: `inner` is a short-lived std `RwLock` guarding role/ISR/epoch data
//! and the `Arc<Log>` handle. It is never held across log I/O: callers clone
//! the log handle and the epoch under the lock, drop it, then read or append.
//! The `Log` has its own internal locking. `transition` is the one exception,
//! see [`Partition::follower_write`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

use bytes::BytesMut;
use samsa_common::types::{BrokerId, TopicPartition};
use uuid::Uuid;

use super::partition_state::{PendingIsr, ReplicationState};
use super::purgatory::PartitionSignal;
use crate::error::{Error, Result};
use crate::log::producer_state::VerificationGuard;
use crate::log::{AppendOrigin, Log, LogAppendInfo};

#[derive(Debug)]
struct Inner {
    topic_id: Option<Uuid>,
    repl: ReplicationState,
    log: Option<Arc<Log>>,
}

/// Kafka error codes used in partition-level answers.
pub mod codes {
    pub const NONE: i16 = 0;
    pub const OFFSET_OUT_OF_RANGE: i16 = 1;
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub const NOT_LEADER_OR_FOLLOWER: i16 = 6;
    pub const REQUEST_TIMED_OUT: i16 = 7;
    pub const STALE_CONTROLLER_EPOCH: i16 = 11;
    pub const NOT_ENOUGH_REPLICAS: i16 = 19;
    pub const NOT_ENOUGH_REPLICAS_AFTER_APPEND: i16 = 20;
    pub const INVALID_REQUIRED_ACKS: i16 = 21;
    pub const UNSUPPORTED_VERSION: i16 = 35;
    pub const POLICY_VIOLATION: i16 = 44;
    pub const KAFKA_STORAGE_ERROR: i16 = 56;
    pub const FENCED_LEADER_EPOCH: i16 = 74;
    pub const UNKNOWN_LEADER_EPOCH: i16 = 75;
    pub const UNSUPPORTED_COMPRESSION_TYPE: i16 = 76;
    pub const STALE_BROKER_EPOCH: i16 = 77;
    pub const OFFSET_NOT_AVAILABLE: i16 = 78;
    pub const INVALID_RECORD: i16 = 87;
    pub const UNKNOWN_TOPIC_ID: i16 = 100;
    pub const INCONSISTENT_TOPIC_ID: i16 = 103;
}

/// A partition this broker hosts (leader or follower).
#[derive(Debug)]
pub struct Partition {
    pub tp: TopicPartition,
    inner: RwLock<Inner>,
    /// Serializes the follower fetcher's log writes with role changes (Kafka's
    /// `leaderIsrUpdateLock` plays this part); held across that I/O on purpose.
    transition: Mutex<()>,
    /// Bumped on append, HW / log start moves and role changes (purgatory wake-ups).
    pub signal: PartitionSignal,
    /// Its log dir failed (Kafka's `HostedPartition.Offline`): every request for it
    /// answers KAFKA_STORAGE_ERROR until the broker restarts.
    offline: AtomicBool,
    /// This topic's BrokerTopicMetrics, looked up once so requests never touch the map.
    topic_stats: OnceLock<Arc<crate::metrics::TopicStats>>,
}

/// A consistent copy of the role data (for handlers).
#[derive(Debug, Clone)]
pub struct PartitionView {
    pub topic_id: Option<Uuid>,
    pub is_leader: bool,
    pub leader: BrokerId,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub replicas: Vec<BrokerId>,
    pub isr: Vec<BrokerId>,
    pub leader_epoch_start_offset: i64,
    pub log: Option<Arc<Log>>,
}

impl Partition {
    pub fn new(tp: TopicPartition, local_id: BrokerId) -> Self {
        Self {
            tp,
            inner: RwLock::new(Inner {
                topic_id: None,
                repl: ReplicationState::new(local_id),
                log: None,
            }),
            transition: Mutex::new(()),
            signal: PartitionSignal::new(),
            offline: AtomicBool::new(false),
            topic_stats: OnceLock::new(),
        }
    }

    /// The topic's BrokerTopicMetrics counters.
    pub fn topic_stats(&self) -> &crate::metrics::TopicStats {
        self.topic_stats_arc_ref()
    }

    /// A handle on the topic's counters that outlives this borrow.
    pub fn topic_stats_arc(&self) -> Arc<crate::metrics::TopicStats> {
        self.topic_stats_arc_ref().clone()
    }

    fn topic_stats_arc_ref(&self) -> &Arc<crate::metrics::TopicStats> {
        self.topic_stats
            .get_or_init(|| crate::metrics::registry().topic(&self.tp.topic))
    }

    /// Whether the partition's log dir has failed.
    pub fn is_offline(&self) -> bool {
        self.offline.load(Ordering::Acquire)
    }

    /// Takes the partition out of service after its log dir failed: no longer leader or
    /// follower, so parked acks=all produces and waiting fetches answer at once.
    pub fn mark_offline(&self) {
        let _transition = self.lock_transition();
        self.offline.store(true, Ordering::Release);
        self.with_state(|s| {
            s.leader = -1;
            s.followers.clear();
        });
        self.signal.bump();
    }

    /// Held by LeaderAndIsr while it changes this partition's role, reads the log end
    /// and records a new leader epoch.
    pub fn lock_transition(&self) -> MutexGuard<'_, ()> {
        self.transition.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Run a follower write (append or truncation of fetched data) only if we are still a
    /// follower at `leader_epoch`; `None` if the role moved on. A LeaderAndIsr that makes
    /// us leader waits for a write in flight, so the new epoch starts at the true log end
    /// and no batch of the old leader lands after it.
    pub fn follower_write<T>(
        &self,
        leader_epoch: i32,
        write: impl FnOnce(&Arc<Log>) -> Result<T>,
    ) -> Result<Option<T>> {
        let _transition = self.lock_transition();
        let log = {
            let g = self.r();
            if self.is_offline() || g.repl.is_leader() || g.repl.leader_epoch != leader_epoch {
                return Ok(None);
            }
            match g.log.clone() {
                Some(log) => log,
                None => return Ok(None),
            }
        };
        write(&log).map(Some)
    }

    fn r(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    fn w(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }

    pub fn view(&self) -> PartitionView {
        let g = self.r();
        PartitionView {
            topic_id: g.topic_id,
            is_leader: g.repl.is_leader(),
            leader: g.repl.leader,
            leader_epoch: g.repl.leader_epoch,
            partition_epoch: g.repl.partition_epoch,
            replicas: g.repl.replicas.clone(),
            isr: g.repl.isr.clone(),
            leader_epoch_start_offset: g.repl.leader_epoch_start_offset,
            log: g.log.clone(),
        }
    }

    pub fn log(&self) -> Option<Arc<Log>> {
        self.r().log.clone()
    }

    pub fn set_log(&self, log: Arc<Log>) {
        let mut g = self.w();
        if g.topic_id.is_none() {
            g.topic_id = log.topic_id();
        }
        g.log = Some(log);
    }

    pub fn topic_id(&self) -> Option<Uuid> {
        self.r().topic_id
    }

    pub fn set_topic_id(&self, id: Uuid) {
        self.w().topic_id = Some(id);
    }

    pub fn leader_epoch(&self) -> i32 {
        self.r().repl.leader_epoch
    }

    pub fn is_leader(&self) -> bool {
        self.r().repl.is_leader()
    }

    /// Run `f` on the replication state under the write lock (no I/O inside `f`).
    pub fn with_state<T>(&self, f: impl FnOnce(&mut ReplicationState) -> T) -> T {
        f(&mut self.w().repl)
    }

    /// Read-only access to the replication state.
    pub fn read_state<T>(&self, f: impl FnOnce(&ReplicationState) -> T) -> T {
        f(&self.r().repl)
    }

    /// `CurrentLeaderEpoch` check shared by Fetch, ListOffsets, OffsetsForLeaderEpoch:
    /// older → FENCED_LEADER_EPOCH, newer → UNKNOWN_LEADER_EPOCH; -1 skips the check.
    pub fn check_leader_epoch(&self, requested: i32) -> Result<()> {
        if requested < 0 {
            return Ok(());
        }
        let local = self.leader_epoch();
        if requested < local {
            Err(Error::FencedLeaderEpoch(format!(
                "{}: request epoch {requested} < current {local}",
                self.tp
            )))
        } else if requested > local {
            Err(Error::UnknownLeaderEpoch(format!(
                "{}: request epoch {requested} > current {local}",
                self.tp
            )))
        } else {
            Ok(())
        }
    }

    /// Leader log and epoch, or NOT_LEADER_OR_FOLLOWER.
    pub fn leader_log(&self) -> Result<(Arc<Log>, i32)> {
        let g = self.r();
        match (&g.log, g.repl.is_leader()) {
            (Some(log), true) => Ok((log.clone(), g.repl.leader_epoch)),
            _ => Err(Error::NotLeaderOrFollower(format!(
                "broker is not the leader of {}",
                self.tp
            ))),
        }
    }

    /// Produce path: leader check, min-ISR check for acks=-1, append, HW update. `guard` is
    /// the KIP-890 verification guard of a transactional batch (`SENTINEL` otherwise).
    #[allow(clippy::too_many_arguments)]
    pub fn append_records_to_leader(
        &self,
        records: BytesMut,
        origin: AppendOrigin,
        required_acks: i16,
        max_lag_ms: u64,
        now_ms: u64,
        alive: &dyn Fn(BrokerId) -> bool,
        guard: VerificationGuard,
    ) -> Result<LogAppendInfo> {
        // Serialized with LeaderAndIsr (Kafka appends under the partition's leader/ISR read
        // lock): a batch stamped with the epoch read here must land before a new epoch
        // records its start offset, or the log would hold an old-epoch batch past the new
        // epoch's start, and followers would be told to truncate it forever.
        let transition = self.lock_transition();
        let (log, epoch) = {
            let g = self.r();
            let log = match (&g.log, g.repl.is_leader()) {
                (Some(log), true) => log.clone(),
                _ => {
                    return Err(Error::NotLeaderOrFollower(format!(
                        "broker is not the leader of {}",
                        self.tp
                    )))
                }
            };
            let min_isr = log.config().min_insync_replicas;
            if required_acks == -1 && g.repl.is_under_min_isr(min_isr) {
                return Err(Error::NotEnoughReplicas(format!(
                    "The size of the current ISR {:?} is insufficient to satisfy the min.isr requirement of {} for partition {}",
                    g.repl.isr,
                    g.repl.effective_min_isr(min_isr),
                    self.tp
                )));
            }
            (log, g.repl.leader_epoch)
        };
        let info = log.append_as_leader_verified(records, epoch, origin, guard);
        drop(transition);
        let info = info?;
        self.maybe_increment_hw(max_lag_ms, now_ms, alive);
        self.signal.bump();
        Ok(info)
    }

    /// Recompute the leader HW; returns true if it moved (and wakes waiters).
    pub fn maybe_increment_hw(
        &self,
        max_lag_ms: u64,
        now_ms: u64,
        alive: &dyn Fn(BrokerId) -> bool,
    ) -> bool {
        let (log, candidate) = {
            let g = self.r();
            let Some(log) = g.log.clone() else {
                return false;
            };
            let min_isr = log.config().min_insync_replicas;
            let cand = g.repl.compute_high_watermark(
                log.log_end_offset(),
                log.high_watermark(),
                min_isr,
                max_lag_ms,
                now_ms,
                alive,
            );
            (log, cand)
        };
        match candidate {
            Some(hw) => {
                let moved = log.maybe_increment_high_watermark(hw).is_some();
                if moved {
                    self.signal.bump();
                }
                moved
            }
            None => false,
        }
    }

    /// Delayed-produce check: `(done, error_code)` for `required_offset` (= last offset + 1).
    pub fn check_enough_replicas_reach_offset(&self, required_offset: i64) -> (bool, i16) {
        if self.is_offline() {
            return (true, codes::KAFKA_STORAGE_ERROR);
        }
        let g = self.r();
        let Some(log) = g.log.as_ref().filter(|_| g.repl.is_leader()) else {
            return (true, codes::NOT_LEADER_OR_FOLLOWER);
        };
        if log.high_watermark() >= required_offset {
            let min_isr = g.repl.effective_min_isr(log.config().min_insync_replicas);
            if g.repl.maximal_isr().len() >= min_isr {
                (true, codes::NONE)
            } else {
                (true, codes::NOT_ENOUGH_REPLICAS_AFTER_APPEND)
            }
        } else {
            (false, codes::NONE)
        }
    }

    /// Follower fetch bookkeeping on the leader. Returns an ISR expansion to
    /// propose (new ISR) if this follower just became eligible.
    pub fn update_follower_fetch_state(
        &self,
        replica: BrokerId,
        fetch_offset: i64,
        follower_log_start: i64,
        leader_leo: i64,
        now_ms: u64,
        alive: bool,
    ) -> Option<Vec<BrokerId>> {
        let hw = self.log().map(|l| l.high_watermark()).unwrap_or(0);
        let mut g = self.w();
        let start_before = g.repl.followers.get(&replica).map(|f| f.log_start_offset);
        if !g.repl.update_follower(
            replica,
            fetch_offset,
            follower_log_start,
            leader_leo,
            now_ms,
        ) {
            return None;
        }
        if start_before != Some(follower_log_start) {
            // The low watermark may have moved: wake DeleteRecords waiting for it.
            self.signal.bump();
        }
        if g.repl.expand_candidate(replica, hw, alive) {
            let mut new_isr = g.repl.isr.clone();
            new_isr.push(replica);
            g.repl.pending = Some(PendingIsr::Expand(new_isr.clone()));
            Some(new_isr)
        } else {
            None
        }
    }

    /// ISR shrink to propose, if any follower fell out of sync.
    pub fn maybe_shrink_isr(&self, max_lag_ms: u64, now_ms: u64) -> Option<Vec<BrokerId>> {
        let leo = self.log()?.log_end_offset();
        let mut g = self.w();
        let out = g.repl.out_of_sync(leo, now_ms, max_lag_ms);
        if out.is_empty() {
            return None;
        }
        let new_isr: Vec<BrokerId> = g
            .repl
            .isr
            .iter()
            .copied()
            .filter(|b| !out.contains(b))
            .collect();
        g.repl.pending = Some(PendingIsr::Shrink(new_isr.clone()));
        Some(new_isr)
    }

    /// Apply the controller's answer to an AlterPartition (or clear the pending change on error).
    pub fn complete_isr_change(&self, result: Option<(Vec<BrokerId>, i32, i32)>) {
        let mut g = self.w();
        g.repl.pending = None;
        if let Some((isr, leader_epoch, partition_epoch)) = result {
            if leader_epoch == g.repl.leader_epoch && partition_epoch >= g.repl.partition_epoch {
                g.repl.isr = isr;
                g.repl.partition_epoch = partition_epoch;
            }
        }
        drop(g);
        self.signal.bump();
    }
}
