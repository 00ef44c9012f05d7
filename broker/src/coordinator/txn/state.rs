//! The transaction state manager (Kafka's `TransactionStateManager`): which
//! `__transaction_state` partitions this broker owns (coordinator epoch = the partition's leader
//! epoch) or is loading, the cached [`TxnMetadata`] of their transactional ids, and the
//! write-then-apply path: a transition is appended with acks -1 and applied only once
//! replicated, and only if the partition is still owned in the same coordinator epoch.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;

use super::codes::*;
use super::metadata::{Transit, TxnMetadata, TxnState};
use super::records;

/// Future of an append's final error code (raw produce code; 0 = replicated).
pub type AppendWait = Pin<Box<dyn Future<Output = i16> + Send>>;

/// (partition, coordinator epoch, records, timeout ms) -> appends to
/// `__transaction_state-<partition>` now with acks -1 and returns the wait for the acks; a
/// partition no longer led in that epoch answers NOT_LEADER_OR_FOLLOWER without appending (a
/// write prepared by an older coordinator epoch never reaches the log).
pub type AppendFn =
    Arc<dyn Fn(i32, i32, Vec<(Bytes, Option<Bytes>)>, i32) -> AppendWait + Send + Sync>;

/// Hands out a new producer id (or an error code).
pub type PidFn =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<i64, i16>> + Send>> + Send + Sync>;

/// Settings the coordinator uses (from `transaction.*` keys).
#[derive(Debug, Clone)]
pub struct TxnConfig {
    /// `transaction.max.timeout.ms`.
    pub max_timeout_ms: i32,
    /// `transactional.id.expiration.ms`.
    pub id_expiration_ms: i64,
    /// `transaction.state.log.num.partitions` (used until the topic exists).
    pub num_partitions: i32,
    /// `request.timeout.ms`: the append timeout of tombstones.
    pub request_timeout_ms: i32,
}

impl Default for TxnConfig {
    fn default() -> Self {
        Self {
            max_timeout_ms: 900_000,
            id_expiration_ms: 604_800_000,
            num_partitions: 50,
            request_timeout_ms: 30_000,
        }
    }
}

/// One owned partition: its coordinator epoch and its ids.
#[derive(Debug, Default)]
pub struct Owned {
    pub epoch: i32,
    pub txns: HashMap<String, TxnMetadata>,
}

#[derive(Debug, Default)]
pub struct Partitions {
    pub owned: HashMap<i32, Owned>,
    /// Partition -> (coordinator epoch, load token).
    pub loading: HashMap<i32, (i32, u64)>,
    /// Highest leader epoch seen per partition.
    pub epochs: HashMap<i32, i32>,
}

/// Kafka's mapping of append errors in `appendTransactionToLog`.
pub fn append_error(code: i16) -> i16 {
    match code {
        UNKNOWN_TOPIC_OR_PARTITION
        | NOT_ENOUGH_REPLICAS
        | NOT_ENOUGH_REPLICAS_AFTER_APPEND
        | REQUEST_TIMED_OUT => COORDINATOR_NOT_AVAILABLE,
        NOT_LEADER_OR_FOLLOWER | KAFKA_STORAGE_ERROR => NOT_COORDINATOR,
        MESSAGE_TOO_LARGE | RECORD_LIST_TOO_LARGE => UNKNOWN_SERVER_ERROR,
        c => c,
    }
}

pub fn now_ms() -> i64 {
    crate::coordinator::group::now_ms()
}

/// The transaction coordinator of every `__transaction_state` partition this broker leads.
pub struct TxnCoordinator {
    pub(super) config: TxnConfig,
    state: Mutex<Partitions>,
    partition_count: AtomicI32,
    append: Mutex<Option<AppendFn>>,
    pids: Mutex<Option<PidFn>>,
    pub(super) markers: Mutex<Option<Arc<dyn super::markers::MarkerTransport>>>,
    seq: AtomicU64,
    /// Bumped whenever a write finishes or a partition is loaded or unloaded: requests waiting
    /// for an id to leave a transient state re-check on it.
    changes: tokio::sync::watch::Sender<u64>,
}

impl std::fmt::Debug for TxnCoordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TxnCoordinator")
    }
}

impl TxnCoordinator {
    pub fn new(config: TxnConfig) -> Arc<Self> {
        let n = config.num_partitions;
        Arc::new(Self {
            config,
            state: Mutex::new(Partitions::default()),
            partition_count: AtomicI32::new(n),
            append: Mutex::new(None),
            pids: Mutex::new(None),
            markers: Mutex::new(None),
            seq: AtomicU64::new(1),
            changes: tokio::sync::watch::channel(0).0,
        })
    }

    /// A receiver that sees the next [`Self::changed`].
    pub(super) fn subscribe_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        let mut rx = self.changes.subscribe();
        rx.mark_unchanged();
        rx
    }

    /// Wake the requests waiting for some id's state to change.
    pub(super) fn changed(&self) {
        self.changes.send_modify(|v| *v = v.wrapping_add(1));
    }

    pub fn set_append(&self, f: AppendFn) {
        *self.append.lock().unwrap_or_else(|p| p.into_inner()) = Some(f);
    }

    pub fn set_pid_source(&self, f: PidFn) {
        *self.pids.lock().unwrap_or_else(|p| p.into_inner()) = Some(f);
    }

    pub fn set_marker_transport(&self, t: Arc<dyn super::markers::MarkerTransport>) {
        *self.markers.lock().unwrap_or_else(|p| p.into_inner()) = Some(t);
    }

    pub fn set_partition_count(&self, n: i32) {
        if n > 0 {
            self.partition_count.store(n, Ordering::Relaxed);
        }
    }

    pub fn partition_of(&self, txn_id: &str) -> i32 {
        crate::coordinator::partition_for(txn_id, self.partition_count.load(Ordering::Relaxed))
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Partitions> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) async fn new_producer_id(&self) -> Result<i64, i16> {
        let f = self.pids.lock().unwrap_or_else(|p| p.into_inner()).clone();
        match f {
            Some(f) => f().await,
            None => Err(COORDINATOR_NOT_AVAILABLE),
        }
    }

    fn append_now(
        &self,
        partition: i32,
        coordinator_epoch: i32,
        recs: Vec<(Bytes, Option<Bytes>)>,
        timeout: i32,
    ) -> AppendWait {
        let f = self
            .append
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        match f {
            Some(f) => f(partition, coordinator_epoch, recs, timeout),
            None => Box::pin(std::future::ready(NONE)),
        }
    }

    /// Whether any partition is loading (ListTransactions answers COORDINATOR_LOAD_IN_PROGRESS).
    pub fn any_loading(&self) -> bool {
        !self.lock().loading.is_empty()
    }

    /// Partition-level status of `txn_id`: `Err(code)` while loading or not owned, else the
    /// partition and its coordinator epoch (Kafka's `getTransactionState` checks).
    pub(super) fn owner(p: &Partitions, partition: i32) -> Result<i32, i16> {
        if p.loading.contains_key(&partition) {
            return Err(COORDINATOR_LOAD_IN_PROGRESS);
        }
        p.owned
            .get(&partition)
            .map(|o| o.epoch)
            .ok_or(NOT_COORDINATOR)
    }

    /// Write `transit` for `txn_id` (prepared in `coordinator_epoch`) and apply it once
    /// replicated. Returns the (mapped) error code. With `keep_pending_on_unavailable` a
    /// COORDINATOR_NOT_AVAILABLE failure leaves the pending state for the caller's retry.
    pub(super) async fn write(
        &self,
        txn_id: &str,
        coordinator_epoch: i32,
        transit: &Transit,
        keep_pending_on_unavailable: bool,
    ) -> i16 {
        let code = self
            .write_and_apply(
                txn_id,
                coordinator_epoch,
                transit,
                keep_pending_on_unavailable,
            )
            .await;
        self.changed();
        code
    }

    async fn write_and_apply(
        &self,
        txn_id: &str,
        coordinator_epoch: i32,
        transit: &Transit,
        keep_pending_on_unavailable: bool,
    ) -> i16 {
        let partition = self.partition_of(txn_id);
        {
            let p = self.lock();
            match Self::owner(&p, partition) {
                Err(e) => return e,
                Ok(e) if e != coordinator_epoch => return NOT_COORDINATOR,
                Ok(_) => {}
            }
            if !p
                .owned
                .get(&partition)
                .is_some_and(|o| o.txns.contains_key(txn_id))
            {
                return NOT_COORDINATOR;
            }
        }
        let value = records::value(&transit.record());
        let wait = self.append_now(
            partition,
            coordinator_epoch,
            vec![(records::key(txn_id), Some(value))],
            transit.timeout_ms.max(1),
        );
        let code = append_error(wait.await);
        let mut p = self.lock();
        let entry = match Self::owner(&p, partition) {
            Err(e) => return if code == NONE { e } else { code },
            Ok(_) => p.owned.get_mut(&partition),
        };
        let Some(owned) = entry else {
            return NOT_COORDINATOR;
        };
        let same_epoch = owned.epoch == coordinator_epoch;
        let Some(m) = owned.txns.get_mut(txn_id) else {
            return if code == NONE { NOT_COORDINATOR } else { code };
        };
        if code == NONE {
            if !same_epoch {
                return NOT_COORDINATOR;
            }
            if let Err(e) = m.complete(transit) {
                tracing::warn!(transactional_id = txn_id, error = %e.0, "transaction state transition failed");
                m.abort_pending();
                return UNKNOWN_SERVER_ERROR;
            }
            NONE
        } else {
            if same_epoch && !(keep_pending_on_unavailable && code == COORDINATOR_NOT_AVAILABLE) {
                m.abort_pending();
            }
            code
        }
    }

    // ------------------------------------------------------------------ load / unload

    /// Became leader of `partition` in `epoch`: returns a load token, or `None` if there is
    /// nothing to load (older epoch, or already owned/loading in this epoch).
    pub fn begin_load(&self, partition: i32, epoch: i32) -> Option<u64> {
        let mut p = self.lock();
        if p.epochs.get(&partition).is_some_and(|e| *e > epoch) {
            return None;
        }
        p.epochs.insert(partition, epoch);
        if p.owned.get(&partition).is_some_and(|o| o.epoch == epoch)
            || p.loading.get(&partition).is_some_and(|(e, _)| *e == epoch)
        {
            return None;
        }
        // Anything left from an earlier epoch is dropped first (Kafka's onElection).
        p.owned.remove(&partition);
        let token = self.seq.fetch_add(1, Ordering::Relaxed);
        p.loading.insert(partition, (epoch, token));
        Some(token)
    }

    /// Install what a load read, unless superseded; returns the transactions left in
    /// PrepareCommit/PrepareAbort, already moved to their pending Complete* state, whose
    /// markers must be (re)sent: (id, commit, transit).
    pub fn finish_load(
        &self,
        partition: i32,
        token: u64,
        loaded: Option<HashMap<String, TxnMetadata>>,
    ) -> Vec<(String, i32, bool, Transit)> {
        let mut p = self.lock();
        let Some((epoch, t)) = p.loading.get(&partition).copied() else {
            return Vec::new();
        };
        if t != token {
            return Vec::new();
        }
        p.loading.remove(&partition);
        let Some(mut txns) = loaded else {
            return Vec::new();
        };
        let now = now_ms();
        let mut pending = Vec::new();
        for (id, m) in txns.iter_mut() {
            let commit = match m.state {
                TxnState::PrepareCommit => true,
                TxnState::PrepareAbort => false,
                _ => continue,
            };
            if let Ok(t) = m.prepare_complete(now) {
                pending.push((id.clone(), epoch, commit, t));
            }
        }
        tracing::info!(
            partition,
            epoch,
            transactions = txns.len(),
            "loaded __transaction_state partition"
        );
        p.owned.insert(partition, Owned { epoch, txns });
        drop(p);
        self.changed();
        pending
    }

    /// Lost leadership of `partition`: drop its ids (marker sending stops by itself).
    pub fn unload_partition(&self, partition: i32) {
        let mut p = self.lock();
        p.loading.remove(&partition);
        if p.owned.remove(&partition).is_some() {
            tracing::info!(partition, "unloaded __transaction_state partition");
        }
        drop(p);
        self.changed();
    }

    // ------------------------------------------------------------------ expiration

    /// Tombstone ids idle in Empty/Complete* for `transactional.id.expiration.ms`; returns how
    /// many were removed.
    pub async fn expire_transactional_ids(&self, now: i64) -> usize {
        // (partition, coordinator epoch, [(id, producer epoch)])
        type Batch = (i32, i32, Vec<(String, i16)>);
        let mut batches: Vec<Batch> = Vec::new();
        {
            let mut p = self.lock();
            for (partition, owned) in p.owned.iter_mut() {
                let mut ids = Vec::new();
                for (id, m) in owned.txns.iter_mut() {
                    if m.pending.is_none()
                        && m.state.expiration_allowed()
                        && m.last_update_ms <= now - self.config.id_expiration_ms
                        && m.prepare_dead().is_ok()
                    {
                        ids.push((id.clone(), m.producer_epoch));
                    }
                }
                if !ids.is_empty() {
                    batches.push((*partition, owned.epoch, ids));
                }
            }
        }
        let mut removed = 0;
        for (partition, epoch, ids) in batches {
            let recs = ids.iter().map(|(id, _)| (records::key(id), None)).collect();
            let code = self
                .append_now(partition, epoch, recs, self.config.request_timeout_ms)
                .await;
            let mut p = self.lock();
            let Some(owned) = p.owned.get_mut(&partition) else {
                continue;
            };
            for (id, pe) in ids {
                let Some(m) = owned.txns.get(&id) else {
                    continue;
                };
                if code == NONE
                    && owned.epoch == epoch
                    && m.pending == Some(TxnState::Dead)
                    && m.producer_epoch == pe
                {
                    owned.txns.remove(&id);
                    removed += 1;
                } else if let Some(m) = owned.txns.get_mut(&id) {
                    tracing::warn!(
                        transactional_id = id,
                        code,
                        "could not expire transactional id"
                    );
                    m.abort_pending();
                }
            }
        }
        removed
    }

    /// Ongoing transactions past their timeout: (id, producer id, epoch).
    pub fn timed_out(&self, now: i64) -> Vec<(String, i64, i16)> {
        let p = self.lock();
        p.owned
            .values()
            .flat_map(|o| o.txns.values())
            .filter(|m| {
                m.pending.is_none()
                    && m.state == TxnState::Ongoing
                    && m.start_ms + i64::from(m.timeout_ms) < now
            })
            .map(|m| (m.transactional_id.clone(), m.producer_id, m.producer_epoch))
            .collect()
    }

    /// Test hook: the cached metadata of `txn_id`.
    pub fn get(&self, txn_id: &str) -> Option<TxnMetadata> {
        let partition = self.partition_of(txn_id);
        self.lock()
            .owned
            .get(&partition)
            .and_then(|o| o.txns.get(txn_id).cloned())
    }
}
