//! The coordinator's request logic (Kafka's `TransactionCoordinator`): InitProducerId with a
//! transactional id, AddPartitionsToTxn (add and verify), EndTxn, DescribeTransactions,
//! ListTransactions, and the abort of timed-out transactions. Each returns Kafka error codes;
//! the handlers only translate wire formats.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::codes::*;
use super::metadata::{epoch_exhausted, Transit, TxnMetadata, TxnState, NO_PRODUCER_EPOCH};
use super::state::{now_ms, TxnCoordinator};

/// A topic partition in a transaction.
pub type Tp = (String, i32);

/// How long AddPartitionsToTxn/AddOffsetsToTxn wait for the id's previous transaction to
/// complete before answering CONCURRENT_TRANSACTIONS (see [`TxnCoordinator::add_partitions`]).
/// Completion normally takes a few milliseconds; the bound keeps a request from sitting on
/// markers that cannot be delivered (the client then retries as it would with Kafka).
pub const COMPLETION_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// What DescribeTransactions reports for one id.
#[derive(Debug, Clone, Default)]
pub struct Described {
    pub error: i16,
    pub state: String,
    pub timeout_ms: i32,
    pub start_ms: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub partitions: Vec<Tp>,
}

/// One ListTransactions entry: (transactional id, producer id, state name).
pub type Listed = (String, i64, &'static str);

impl TxnCoordinator {
    /// `transaction.max.timeout.ms` check.
    pub fn valid_timeout(&self, timeout_ms: i32) -> bool {
        timeout_ms > 0 && timeout_ms <= self.config.max_timeout_ms
    }

    /// InitProducerId with a (non-empty) transactional id: (producer id, epoch, error).
    pub async fn init_producer_id(
        self: &Arc<Self>,
        txn_id: &str,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
    ) -> (i64, i16, i16) {
        let fail = |e: i16| (-1, NO_PRODUCER_EPOCH, e);
        if !self.valid_timeout(timeout_ms) {
            return fail(INVALID_TRANSACTION_TIMEOUT);
        }
        let partition = self.partition_of(txn_id);
        // A new producer id is needed for an unknown id, or to rotate an exhausted epoch;
        // it is claimed before taking the lock (claiming may talk to the controller).
        let needs_pid = {
            let p = self.lock();
            if let Err(e) = Self::owner(&p, partition) {
                return fail(e);
            }
            match p.owned.get(&partition).and_then(|o| o.txns.get(txn_id)) {
                None => true,
                Some(m) => m.epoch_exhausted(),
            }
        };
        let new_pid = if needs_pid {
            match self.new_producer_id().await {
                Ok(id) => Some(id),
                Err(e) => return fail(e),
            }
        } else {
            None
        };
        let now = now_ms();
        let (coordinator_epoch, transit) = {
            let mut p = self.lock();
            let coordinator_epoch = match Self::owner(&p, partition) {
                Ok(e) => e,
                Err(e) => return fail(e),
            };
            let Some(owned) = p.owned.get_mut(&partition) else {
                return fail(NOT_COORDINATOR);
            };
            if !owned.txns.contains_key(txn_id) {
                let Some(pid) = new_pid else {
                    return fail(CONCURRENT_TRANSACTIONS);
                };
                owned.txns.insert(
                    txn_id.to_string(),
                    TxnMetadata::new(txn_id, pid, timeout_ms, now),
                );
            }
            let Some(m) = owned.txns.get_mut(txn_id) else {
                return fail(NOT_COORDINATOR);
            };
            match prepare_init(m, timeout_ms, expected, new_pid, now) {
                Ok(t) => (coordinator_epoch, t),
                Err(e) => return fail(e),
            }
        };
        if transit.state == TxnState::PrepareEpochFence {
            // Abort the open transaction with the bumped epoch; the client retries and then
            // gets a further bump (a new producer id if that exhausted the epoch).
            let code = self
                .end_transaction(
                    txn_id,
                    transit.producer_id,
                    transit.producer_epoch,
                    false,
                    false,
                )
                .await;
            return fail(if code == NONE {
                CONCURRENT_TRANSACTIONS
            } else {
                code
            });
        }
        match self.write(txn_id, coordinator_epoch, &transit, false).await {
            NONE => {
                tracing::info!(
                    transactional_id = txn_id,
                    producer_id = transit.producer_id,
                    epoch = transit.producer_epoch,
                    partition,
                    "initialized transactional id"
                );
                (transit.producer_id, transit.producer_epoch, NONE)
            }
            e => fail(e),
        }
    }

    /// AddPartitionsToTxn (client form) and AddOffsetsToTxn: one error for the whole request.
    ///
    /// While the id's previous transaction is still completing (Prepare* with its markers in
    /// flight, or another write pending), Kafka answers CONCURRENT_TRANSACTIONS at once and the
    /// Java client retries its first AddPartitions of a transaction after a fixed 20 ms, which
    /// caps a back-to-back producer near 40 transactions/s. Here the request instead waits for
    /// that completion, up to [`COMPLETION_WAIT`], and then is handled as if it had just
    /// arrived: the answer is one Kafka could give, only sooner (CONCURRENT_TRANSACTIONS still
    /// comes back if the completion takes longer).
    pub async fn add_partitions(
        self: &Arc<Self>,
        txn_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &BTreeSet<Tp>,
    ) -> i16 {
        if txn_id.is_empty() {
            return INVALID_REQUEST;
        }
        let partition = self.partition_of(txn_id);
        let deadline = tokio::time::Instant::now() + COMPLETION_WAIT;
        let (coordinator_epoch, transit) = loop {
            // Subscribed before looking, so a completion in between is not missed.
            let mut changes = self.subscribe_changes();
            let busy = {
                let mut p = self.lock();
                let coordinator_epoch = match Self::owner(&p, partition) {
                    Ok(e) => e,
                    Err(e) => return e,
                };
                let Some(m) = p
                    .owned
                    .get_mut(&partition)
                    .and_then(|o| o.txns.get_mut(txn_id))
                else {
                    return INVALID_PRODUCER_ID_MAPPING;
                };
                if m.producer_id != producer_id {
                    return INVALID_PRODUCER_ID_MAPPING;
                }
                if m.producer_epoch != producer_epoch {
                    return PRODUCER_FENCED;
                }
                if m.pending_in_progress()
                    || matches!(m.state, TxnState::PrepareCommit | TxnState::PrepareAbort)
                {
                    true
                } else if m.state == TxnState::Ongoing && partitions.is_subset(&m.partitions) {
                    return NONE;
                } else {
                    match m.prepare_add_partitions(partitions, now_ms()) {
                        Ok(t) => break (coordinator_epoch, t),
                        Err(e) => {
                            tracing::warn!(transactional_id = txn_id, error = %e.0, "cannot add partitions");
                            return UNKNOWN_SERVER_ERROR;
                        }
                    }
                }
            };
            if busy {
                if tokio::time::Instant::now() >= deadline {
                    tracing::trace!(
                        transactional_id = txn_id,
                        "add partitions: CONCURRENT_TRANSACTIONS"
                    );
                    return CONCURRENT_TRANSACTIONS;
                }
                let _ = tokio::time::timeout_at(deadline, changes.changed()).await;
            }
        };
        let started = std::time::Instant::now();
        let code = self.write(txn_id, coordinator_epoch, &transit, false).await;
        tracing::trace!(
            transactional_id = txn_id,
            code,
            us = started.elapsed().as_micros() as u64,
            "add partitions: Ongoing written"
        );
        code
    }

    /// AddPartitionsToTxn v4+ with VerifyOnly (KIP-890): is each partition in the open
    /// transaction? `Err` = one error for all partitions.
    pub fn verify_partitions(
        &self,
        txn_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &BTreeSet<Tp>,
    ) -> Result<Vec<(Tp, i16)>, i16> {
        if txn_id.is_empty() {
            return Err(INVALID_REQUEST);
        }
        let partition = self.partition_of(txn_id);
        let p = self.lock();
        Self::owner(&p, partition)?;
        let m = p
            .owned
            .get(&partition)
            .and_then(|o| o.txns.get(txn_id))
            .ok_or(INVALID_PRODUCER_ID_MAPPING)?;
        if m.producer_id != producer_id {
            return Err(INVALID_PRODUCER_ID_MAPPING);
        }
        if m.producer_epoch != producer_epoch {
            return Err(PRODUCER_FENCED);
        }
        if matches!(m.state, TxnState::PrepareCommit | TxnState::PrepareAbort) {
            return Err(CONCURRENT_TRANSACTIONS);
        }
        Ok(partitions
            .iter()
            .map(|tp| {
                let code = if m.partitions.contains(tp) {
                    NONE
                } else {
                    TRANSACTION_ABORTABLE
                };
                (tp.clone(), code)
            })
            .collect())
    }

    /// EndTxn (and the coordinator's own aborts when `from_client` is false): write
    /// PrepareCommit/PrepareAbort, answer, then send markers and write Complete*.
    pub async fn end_transaction(
        self: &Arc<Self>,
        txn_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        from_client: bool,
    ) -> i16 {
        if txn_id.is_empty() {
            return INVALID_REQUEST;
        }
        let partition = self.partition_of(txn_id);
        let mut is_epoch_fence = false;
        let (coordinator_epoch, transit) = {
            let mut p = self.lock();
            let coordinator_epoch = match Self::owner(&p, partition) {
                Ok(e) => e,
                Err(e) => return e,
            };
            let Some(m) = p
                .owned
                .get_mut(&partition)
                .and_then(|o| o.txns.get_mut(txn_id))
            else {
                return INVALID_PRODUCER_ID_MAPPING;
            };
            if m.producer_id != producer_id {
                return INVALID_PRODUCER_ID_MAPPING;
            }
            if (from_client && producer_epoch != m.producer_epoch)
                || producer_epoch < m.producer_epoch
            {
                return PRODUCER_FENCED;
            }
            if m.pending.is_some_and(|s| s != TxnState::PrepareEpochFence) {
                return CONCURRENT_TRANSACTIONS;
            }
            let result = match (m.state, commit) {
                (TxnState::Ongoing, _) => {
                    let next = if commit {
                        TxnState::PrepareCommit
                    } else {
                        TxnState::PrepareAbort
                    };
                    if !commit && m.pending == Some(TxnState::PrepareEpochFence) {
                        is_epoch_fence = true;
                        m.pending = None;
                        m.producer_epoch = producer_epoch;
                        m.last_producer_epoch = NO_PRODUCER_EPOCH;
                    }
                    m.prepare_abort_or_commit(next, now_ms()).map_err(|e| {
                        tracing::warn!(transactional_id = txn_id, error = %e.0, "cannot end transaction");
                        UNKNOWN_SERVER_ERROR
                    })
                }
                (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => Err(NONE),
                (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
                    Err(CONCURRENT_TRANSACTIONS)
                }
                _ => Err(INVALID_TXN_STATE),
            };
            match result {
                Ok(t) => (coordinator_epoch, t),
                Err(e) => {
                    // A fence that goes nowhere must not leave its pending state behind.
                    if m.pending == Some(TxnState::PrepareEpochFence) {
                        m.abort_pending();
                    }
                    return e;
                }
            }
        };
        let started = std::time::Instant::now();
        let code = self.write(txn_id, coordinator_epoch, &transit, false).await;
        tracing::trace!(
            transactional_id = txn_id,
            code,
            us = started.elapsed().as_micros() as u64,
            "end txn: Prepare* written"
        );
        if code != NONE {
            if is_epoch_fence {
                let mut p = self.lock();
                if let Some(o) = p.owned.get_mut(&partition) {
                    if o.epoch == coordinator_epoch {
                        if let Some(m) = o.txns.get_mut(txn_id) {
                            m.failed_epoch_fence = true;
                        }
                    }
                }
            }
            return code;
        }
        // Written: move to the pending Complete* state and hand the markers over.
        let complete = {
            let mut p = self.lock();
            let Some(o) = p.owned.get_mut(&partition) else {
                return NOT_COORDINATOR;
            };
            if o.epoch != coordinator_epoch {
                return NOT_COORDINATOR;
            }
            let Some(m) = o.txns.get_mut(txn_id) else {
                return NOT_COORDINATOR;
            };
            if m.producer_id != producer_id {
                return INVALID_PRODUCER_ID_MAPPING;
            }
            if m.producer_epoch != producer_epoch {
                return PRODUCER_FENCED;
            }
            if m.pending_in_progress() {
                return CONCURRENT_TRANSACTIONS;
            }
            let expected = if commit {
                TxnState::PrepareCommit
            } else {
                TxnState::PrepareAbort
            };
            if m.state != expected {
                return INVALID_TXN_STATE;
            }
            match m.prepare_complete(now_ms()) {
                Ok(t) => t,
                Err(_) => return INVALID_TXN_STATE,
            }
        };
        self.spawn_markers(txn_id.to_string(), coordinator_epoch, commit, complete);
        NONE
    }

    /// Start sending the markers of a prepared transaction, then write `complete`.
    pub(super) fn spawn_markers(
        self: &Arc<Self>,
        txn_id: String,
        coordinator_epoch: i32,
        commit: bool,
        complete: Transit,
    ) {
        let me = self.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                super::markers::complete_transaction(
                    me,
                    txn_id,
                    coordinator_epoch,
                    commit,
                    complete,
                )
                .await;
            });
        }
    }

    /// DescribeTransactions for one id.
    pub fn describe(&self, txn_id: &str) -> Described {
        let mut d = Described {
            producer_id: -1,
            producer_epoch: -1,
            start_ms: -1,
            ..Described::default()
        };
        if txn_id.is_empty() {
            d.error = INVALID_REQUEST;
            return d;
        }
        let partition = self.partition_of(txn_id);
        let p = self.lock();
        if let Err(e) = Self::owner(&p, partition) {
            d.error = e;
            return d;
        }
        match p.owned.get(&partition).and_then(|o| o.txns.get(txn_id)) {
            Some(m) if m.state != TxnState::Dead => {
                d.state = m.state.name().to_string();
                d.timeout_ms = m.timeout_ms;
                d.start_ms = m.start_ms;
                d.producer_id = m.producer_id;
                d.producer_epoch = m.producer_epoch;
                d.partitions = m.partitions.iter().cloned().collect();
            }
            _ => d.error = TRANSACTIONAL_ID_NOT_FOUND,
        }
        d
    }

    /// ListTransactions: (error, unknown state filters, matching transactions).
    pub fn list(
        &self,
        states: &[String],
        producer_ids: &[i64],
        duration_ms: i64,
    ) -> (i16, Vec<String>, Vec<Listed>) {
        let p = self.lock();
        if !p.loading.is_empty() {
            return (COORDINATOR_LOAD_IN_PROGRESS, Vec::new(), Vec::new());
        }
        let mut unknown = Vec::new();
        let mut wanted = Vec::new();
        for s in states {
            match TxnState::from_name(s) {
                Some(st) => wanted.push(st),
                None => unknown.push(s.clone()),
            }
        }
        let now = now_ms();
        let mut out = Vec::new();
        for m in p.owned.values().flat_map(|o| o.txns.values()) {
            if m.state == TxnState::Dead
                || (!producer_ids.is_empty() && !producer_ids.contains(&m.producer_id))
                || (!states.is_empty() && !wanted.contains(&m.state))
                || (duration_ms >= 0 && now - m.start_ms <= duration_ms)
            {
                continue;
            }
            out.push((m.transactional_id.clone(), m.producer_id, m.state.name()));
        }
        out.sort();
        (NONE, unknown, out)
    }

    /// Abort every Ongoing transaction past its timeout, fencing its producer (epoch + 1).
    pub async fn abort_timed_out(self: &Arc<Self>, now: i64) {
        for (txn_id, pid, _epoch) in self.timed_out(now) {
            let partition = self.partition_of(&txn_id);
            let fence = {
                let mut p = self.lock();
                let Some(m) = p
                    .owned
                    .get_mut(&partition)
                    .and_then(|o| o.txns.get_mut(&txn_id))
                else {
                    continue;
                };
                if m.producer_id != pid || m.pending_in_progress() {
                    continue;
                }
                match m.prepare_fence_epoch() {
                    Ok(t) => t,
                    Err(_) => continue,
                }
            };
            let code = self
                .end_transaction(
                    &txn_id,
                    fence.producer_id,
                    fence.producer_epoch,
                    false,
                    false,
                )
                .await;
            match code {
                NONE => tracing::info!(
                    transactional_id = txn_id,
                    "aborting transaction after its timeout"
                ),
                INVALID_PRODUCER_ID_MAPPING | PRODUCER_FENCED | CONCURRENT_TRANSACTIONS => {}
                c => tracing::warn!(
                    transactional_id = txn_id,
                    code = c,
                    "could not abort timed-out transaction"
                ),
            }
        }
    }
}

/// Kafka's `prepareInitProducerIdTransit`.
fn prepare_init(
    m: &mut TxnMetadata,
    timeout_ms: i32,
    expected: Option<(i64, i16)>,
    new_pid: Option<i64>,
    now: i64,
) -> Result<Transit, i16> {
    if m.pending_in_progress() {
        return Err(CONCURRENT_TRANSACTIONS);
    }
    if let Some((pid, epoch)) = expected {
        let valid = m.producer_epoch == NO_PRODUCER_EPOCH
            || pid == m.producer_id
            || (pid == m.last_producer_id && epoch_exhausted(epoch));
        if !valid {
            return Err(PRODUCER_FENCED);
        }
    }
    let illegal = |e: super::metadata::IllegalTransition| {
        tracing::warn!(error = %e.0, "illegal InitProducerId transition");
        UNKNOWN_SERVER_ERROR
    };
    match m.state {
        TxnState::PrepareAbort | TxnState::PrepareCommit => Err(CONCURRENT_TRANSACTIONS),
        TxnState::CompleteAbort | TxnState::CompleteCommit | TxnState::Empty => {
            if m.epoch_exhausted() && expected.is_none_or(|(_, e)| e == m.producer_epoch) {
                // The id was claimed before the lock; without one (a race) let the client retry.
                let Some(pid) = new_pid else {
                    return Err(CONCURRENT_TRANSACTIONS);
                };
                m.prepare_producer_id_rotation(pid, timeout_ms, now, expected.is_some())
                    .map_err(illegal)
            } else {
                match m.prepare_increment_epoch(timeout_ms, expected.map(|(_, e)| e), now) {
                    Ok(Ok(t)) => Ok(t),
                    Ok(Err(())) => Err(PRODUCER_FENCED),
                    Err(e) => Err(illegal(e)),
                }
            }
        }
        TxnState::Ongoing => m.prepare_fence_epoch().map_err(illegal),
        TxnState::Dead | TxnState::PrepareEpochFence => Err(CONCURRENT_TRANSACTIONS),
    }
}
