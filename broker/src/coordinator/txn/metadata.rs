//! One transactional id's state and its state machine (Kafka's `TransactionMetadata`).
//!
//! Every change is two-phase: `prepare_*` checks the transition, marks the id with a *pending*
//! state and returns the [`Transit`] to write to `__transaction_state`; once the write is
//! replicated, [`TxnMetadata::complete`] applies it (or [`TxnMetadata::abort_pending`] drops it).
//! While a transition is pending the id answers CONCURRENT_TRANSACTIONS. Illegal transitions
//! are errors, never panics.

use std::collections::{BTreeMap, BTreeSet};

use super::records::TxnRecord;

/// `RecordBatch.NO_PRODUCER_ID` / `NO_PRODUCER_EPOCH`.
pub const NO_PRODUCER_ID: i64 = -1;
pub const NO_PRODUCER_EPOCH: i16 = -1;

/// Kafka's `TransactionState`; the id is the status byte written to the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TxnState {
    Empty,
    Ongoing,
    PrepareCommit,
    PrepareAbort,
    CompleteCommit,
    CompleteAbort,
    Dead,
    /// In memory only: an Ongoing transaction being fenced by InitProducerId or a timeout.
    PrepareEpochFence,
}

impl TxnState {
    pub const ALL: [TxnState; 8] = [
        TxnState::Empty,
        TxnState::Ongoing,
        TxnState::PrepareCommit,
        TxnState::PrepareAbort,
        TxnState::CompleteCommit,
        TxnState::CompleteAbort,
        TxnState::Dead,
        TxnState::PrepareEpochFence,
    ];

    pub fn id(self) -> i8 {
        match self {
            TxnState::Empty => 0,
            TxnState::Ongoing => 1,
            TxnState::PrepareCommit => 2,
            TxnState::PrepareAbort => 3,
            TxnState::CompleteCommit => 4,
            TxnState::CompleteAbort => 5,
            TxnState::Dead => 6,
            TxnState::PrepareEpochFence => 7,
        }
    }

    pub fn from_id(id: i8) -> Option<Self> {
        Self::ALL.get(usize::try_from(id).ok()?).copied()
    }

    /// The name DescribeTransactions / ListTransactions report (and filter on).
    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
            TxnState::Dead => "Dead",
            TxnState::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|s| s.name() == name)
    }

    /// States a transition to `self` may start from.
    pub fn valid_previous(self) -> &'static [TxnState] {
        use TxnState::*;
        match self {
            Empty => &[Empty, CompleteCommit, CompleteAbort],
            Ongoing => &[Ongoing, Empty, CompleteCommit, CompleteAbort],
            PrepareCommit => &[Ongoing],
            PrepareAbort => &[Ongoing, PrepareEpochFence],
            CompleteCommit => &[PrepareCommit],
            CompleteAbort => &[PrepareAbort],
            Dead => &[Empty, CompleteAbort, CompleteCommit],
            PrepareEpochFence => &[Ongoing],
        }
    }

    /// Whether an id in this state may be expired (`transactional.id.expiration.ms`).
    pub fn expiration_allowed(self) -> bool {
        matches!(
            self,
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
        )
    }
}

/// Kafka's `isEpochExhausted`: the next bump would reach `Short.MaxValue`.
pub fn epoch_exhausted(epoch: i16) -> bool {
    epoch >= i16::MAX - 1
}

/// A state to be written and then applied (Kafka's `TxnTransitMetadata`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transit {
    pub producer_id: i64,
    pub last_producer_id: i64,
    pub producer_epoch: i16,
    pub last_producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    pub partitions: BTreeSet<(String, i32)>,
    pub start_ms: i64,
    pub last_update_ms: i64,
}

impl Transit {
    /// The record value this transition writes.
    pub fn record(&self) -> TxnRecord {
        let mut partitions: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for (t, p) in &self.partitions {
            partitions.entry(t.clone()).or_default().push(*p);
        }
        TxnRecord {
            producer_id: self.producer_id,
            producer_epoch: self.producer_epoch,
            timeout_ms: self.timeout_ms,
            state: self.state,
            partitions,
            last_update_ms: self.last_update_ms,
            start_ms: self.start_ms,
        }
    }
}

/// A transition that cannot happen from the current state (a bug or a corrupt log; answered
/// with an error code, never a crash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IllegalTransition(pub String);

/// The cached state of one transactional id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnMetadata {
    pub transactional_id: String,
    pub producer_id: i64,
    pub last_producer_id: i64,
    pub producer_epoch: i16,
    pub last_producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    pub partitions: BTreeSet<(String, i32)>,
    /// -1 when no transaction was started.
    pub start_ms: i64,
    pub last_update_ms: i64,
    /// The state a write in flight will move to.
    pub pending: Option<TxnState>,
    /// An epoch fence was prepared but its PrepareAbort write failed: the next fence reuses
    /// the bumped epoch instead of bumping again.
    pub failed_epoch_fence: bool,
}

impl TxnMetadata {
    /// A new id (InitProducerId for an unknown transactional id): Empty, no epoch yet.
    pub fn new(transactional_id: &str, producer_id: i64, timeout_ms: i32, now: i64) -> Self {
        Self {
            transactional_id: transactional_id.to_string(),
            producer_id,
            last_producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            last_producer_epoch: NO_PRODUCER_EPOCH,
            timeout_ms,
            state: TxnState::Empty,
            partitions: BTreeSet::new(),
            start_ms: -1,
            last_update_ms: now,
            pending: None,
            failed_epoch_fence: false,
        }
    }

    /// State read back from the log (Kafka's `readTxnRecordValue`: last ids/epochs unknown).
    pub fn from_record(transactional_id: &str, r: &TxnRecord) -> Self {
        let mut partitions = BTreeSet::new();
        if r.state != TxnState::Empty {
            for (t, ps) in &r.partitions {
                for p in ps {
                    partitions.insert((t.clone(), *p));
                }
            }
        }
        Self {
            transactional_id: transactional_id.to_string(),
            producer_id: r.producer_id,
            last_producer_id: NO_PRODUCER_ID,
            producer_epoch: r.producer_epoch,
            last_producer_epoch: NO_PRODUCER_EPOCH,
            timeout_ms: r.timeout_ms,
            state: r.state,
            partitions,
            start_ms: r.start_ms,
            last_update_ms: r.last_update_ms,
            pending: None,
            failed_epoch_fence: false,
        }
    }

    pub fn pending_in_progress(&self) -> bool {
        self.pending.is_some()
    }

    pub fn epoch_exhausted(&self) -> bool {
        epoch_exhausted(self.producer_epoch)
    }

    fn has_pending_transaction(&self) -> bool {
        matches!(
            self.state,
            TxnState::Ongoing | TxnState::PrepareAbort | TxnState::PrepareCommit
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn prepare_to(
        &mut self,
        state: TxnState,
        producer_id: i64,
        epoch: i16,
        last_epoch: i16,
        timeout_ms: i32,
        partitions: BTreeSet<(String, i32)>,
        start_ms: i64,
        update_ms: i64,
    ) -> Result<Transit, IllegalTransition> {
        if let Some(p) = self.pending {
            return Err(IllegalTransition(format!(
                "{}: transition to {state:?} while {p:?} is pending",
                self.transactional_id
            )));
        }
        if producer_id < 0 {
            return Err(IllegalTransition(format!(
                "illegal new producer id {producer_id}"
            )));
        }
        if state != TxnState::Dead && epoch < 0 {
            return Err(IllegalTransition(format!("illegal new epoch {epoch}")));
        }
        if !state.valid_previous().contains(&self.state) {
            return Err(IllegalTransition(format!(
                "{}: {:?} -> {state:?} is not allowed",
                self.transactional_id, self.state
            )));
        }
        self.pending = Some(state);
        Ok(Transit {
            producer_id,
            last_producer_id: self.producer_id,
            producer_epoch: epoch,
            last_producer_epoch: last_epoch,
            timeout_ms,
            state,
            partitions,
            start_ms,
            last_update_ms: update_ms,
        })
    }

    /// Fence the current producer of an Ongoing transaction: epoch + 1 (never written; the
    /// abort that follows writes it).
    pub fn prepare_fence_epoch(&mut self) -> Result<Transit, IllegalTransition> {
        if self.producer_epoch == i16::MAX {
            return Err(IllegalTransition("epoch would overflow".into()));
        }
        let epoch = if self.failed_epoch_fence {
            self.producer_epoch
        } else {
            self.producer_epoch + 1
        };
        self.prepare_to(
            TxnState::PrepareEpochFence,
            self.producer_id,
            epoch,
            NO_PRODUCER_EPOCH,
            self.timeout_ms,
            self.partitions.clone(),
            self.start_ms,
            self.last_update_ms,
        )
    }

    /// InitProducerId on an Empty/Complete* id: epoch + 1. With `expected` (KIP-360) the
    /// request's epoch must be the current one (bump) or the previous one (a retry: answer the
    /// current epoch again); anything else is `Ok(Err(()))` = PRODUCER_FENCED.
    pub fn prepare_increment_epoch(
        &mut self,
        timeout_ms: i32,
        expected: Option<i16>,
        now: i64,
    ) -> Result<Result<Transit, ()>, IllegalTransition> {
        if self.epoch_exhausted() {
            return Err(IllegalTransition(format!(
                "no epochs left for producer id {}",
                self.producer_id
            )));
        }
        let bumped = self.producer_epoch + 1;
        let (epoch, last) = match expected {
            None => (bumped, NO_PRODUCER_EPOCH),
            Some(e) if self.producer_epoch == NO_PRODUCER_EPOCH || e == self.producer_epoch => {
                (bumped, self.producer_epoch)
            }
            Some(e) if e == self.last_producer_epoch => {
                (self.producer_epoch, self.last_producer_epoch)
            }
            Some(_) => return Ok(Err(())),
        };
        self.prepare_to(
            TxnState::Empty,
            self.producer_id,
            epoch,
            last,
            timeout_ms,
            BTreeSet::new(),
            -1,
            now,
        )
        .map(Ok)
    }

    /// InitProducerId when the epoch is exhausted: a new producer id with epoch 0.
    pub fn prepare_producer_id_rotation(
        &mut self,
        new_producer_id: i64,
        timeout_ms: i32,
        now: i64,
        record_last_epoch: bool,
    ) -> Result<Transit, IllegalTransition> {
        if self.has_pending_transaction() {
            return Err(IllegalTransition(
                "cannot rotate producer ids while a transaction is open".into(),
            ));
        }
        let last = if record_last_epoch {
            self.producer_epoch
        } else {
            NO_PRODUCER_EPOCH
        };
        self.prepare_to(
            TxnState::Empty,
            new_producer_id,
            0,
            last,
            timeout_ms,
            BTreeSet::new(),
            -1,
            now,
        )
    }

    /// AddPartitionsToTxn / AddOffsetsToTxn: Ongoing with the union of partitions; a new
    /// transaction starts its clock now.
    pub fn prepare_add_partitions(
        &mut self,
        added: &BTreeSet<(String, i32)>,
        now: i64,
    ) -> Result<Transit, IllegalTransition> {
        let start = match self.state {
            TxnState::Empty | TxnState::CompleteAbort | TxnState::CompleteCommit => now,
            _ => self.start_ms,
        };
        let mut parts = self.partitions.clone();
        parts.extend(added.iter().cloned());
        self.prepare_to(
            TxnState::Ongoing,
            self.producer_id,
            self.producer_epoch,
            self.last_producer_epoch,
            self.timeout_ms,
            parts,
            start,
            now,
        )
    }

    /// EndTxn: PrepareCommit or PrepareAbort with the transaction's partitions.
    pub fn prepare_abort_or_commit(
        &mut self,
        state: TxnState,
        now: i64,
    ) -> Result<Transit, IllegalTransition> {
        self.prepare_to(
            state,
            self.producer_id,
            self.producer_epoch,
            self.last_producer_epoch,
            self.timeout_ms,
            self.partitions.clone(),
            self.start_ms,
            now,
        )
    }

    /// All markers written: CompleteCommit / CompleteAbort with no partitions.
    pub fn prepare_complete(&mut self, now: i64) -> Result<Transit, IllegalTransition> {
        let state = if self.state == TxnState::PrepareCommit {
            TxnState::CompleteCommit
        } else {
            TxnState::CompleteAbort
        };
        self.failed_epoch_fence = false;
        self.prepare_to(
            state,
            self.producer_id,
            self.producer_epoch,
            self.last_producer_epoch,
            self.timeout_ms,
            BTreeSet::new(),
            self.start_ms,
            now,
        )
    }

    /// Expiration: Dead (written as a tombstone, then removed from the cache).
    pub fn prepare_dead(&mut self) -> Result<Transit, IllegalTransition> {
        self.prepare_to(
            TxnState::Dead,
            self.producer_id,
            self.producer_epoch,
            self.last_producer_epoch,
            self.timeout_ms,
            BTreeSet::new(),
            self.start_ms,
            self.last_update_ms,
        )
    }

    /// Drop the pending transition (its write failed).
    pub fn abort_pending(&mut self) {
        self.pending = None;
    }

    /// A marker for `tp` was written: it leaves the transaction's partition set.
    pub fn remove_partition(&mut self, tp: &(String, i32)) {
        if matches!(self.state, TxnState::PrepareCommit | TxnState::PrepareAbort) {
            self.partitions.remove(tp);
        }
    }

    /// Apply a replicated transition (Kafka's `completeTransitionTo`, with its checks).
    pub fn complete(&mut self, t: &Transit) -> Result<(), IllegalTransition> {
        let fail = |m: &Self| {
            Err(IllegalTransition(format!(
                "{}: unexpected transition {:?} from {:?}",
                m.transactional_id, t, m.state
            )))
        };
        let Some(to) = self.pending else {
            return fail(self);
        };
        if to != t.state {
            return fail(self);
        }
        let same_producer =
            t.producer_epoch == self.producer_epoch && t.producer_id == self.producer_id;
        match to {
            TxnState::Empty => {
                let bump = t.producer_epoch == self.producer_epoch.wrapping_add(1)
                    || (t.producer_epoch == 0 && t.producer_id != self.producer_id);
                if (self.producer_epoch != t.producer_epoch && !bump)
                    || !t.partitions.is_empty()
                    || t.start_ms != -1
                {
                    return fail(self);
                }
                self.timeout_ms = t.timeout_ms;
                self.producer_epoch = t.producer_epoch;
                self.last_producer_epoch = t.last_producer_epoch;
                self.producer_id = t.producer_id;
                self.last_producer_id = t.last_producer_id;
            }
            TxnState::Ongoing => {
                if !same_producer
                    || !self.partitions.is_subset(&t.partitions)
                    || self.timeout_ms != t.timeout_ms
                {
                    return fail(self);
                }
                self.start_ms = t.start_ms;
                self.partitions.extend(t.partitions.iter().cloned());
            }
            TxnState::PrepareAbort | TxnState::PrepareCommit => {
                if !same_producer
                    || self.partitions != t.partitions
                    || self.timeout_ms != t.timeout_ms
                    || self.start_ms != t.start_ms
                {
                    return fail(self);
                }
            }
            TxnState::CompleteAbort | TxnState::CompleteCommit => {
                if !same_producer || self.timeout_ms != t.timeout_ms || t.start_ms == -1 {
                    return fail(self);
                }
                self.start_ms = t.start_ms;
                self.partitions.clear();
            }
            TxnState::PrepareEpochFence | TxnState::Dead => return fail(self),
        }
        self.last_update_ms = t.last_update_ms;
        self.pending = None;
        self.state = to;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tps(v: &[(&str, i32)]) -> BTreeSet<(String, i32)> {
        v.iter().map(|(t, p)| (t.to_string(), *p)).collect()
    }

    fn fresh() -> TxnMetadata {
        let mut m = TxnMetadata::new("tx", 10, 60_000, 1);
        let t = m
            .prepare_increment_epoch(60_000, None, 2)
            .expect("legal")
            .expect("not fenced");
        m.complete(&t).expect("applies");
        m
    }

    #[test]
    fn state_ids_names_and_transitions_match_kafka() {
        for (i, s) in TxnState::ALL.iter().enumerate() {
            assert_eq!(s.id() as usize, i);
            assert_eq!(TxnState::from_id(i as i8), Some(*s));
            assert_eq!(TxnState::from_name(s.name()), Some(*s));
        }
        assert_eq!(TxnState::from_id(8), None);
        assert_eq!(TxnState::from_id(-1), None);
        assert_eq!(
            TxnState::PrepareAbort.valid_previous(),
            &[TxnState::Ongoing, TxnState::PrepareEpochFence]
        );
    }

    #[test]
    fn init_add_commit_complete_cycle() {
        let mut m = fresh();
        assert_eq!((m.producer_epoch, m.state), (0, TxnState::Empty));
        let t = m
            .prepare_add_partitions(&tps(&[("a", 0)]), 5)
            .expect("legal");
        assert!(m.pending_in_progress());
        // A second transition while one is pending is refused.
        assert!(m.prepare_add_partitions(&tps(&[("a", 1)]), 5).is_err());
        m.complete(&t).expect("applies");
        assert_eq!((m.state, m.start_ms), (TxnState::Ongoing, 5));
        let t = m
            .prepare_add_partitions(&tps(&[("b", 0)]), 6)
            .expect("legal");
        m.complete(&t).expect("applies");
        assert_eq!(m.partitions, tps(&[("a", 0), ("b", 0)]));
        assert_eq!(m.start_ms, 5, "the transaction keeps its start");
        let t = m
            .prepare_abort_or_commit(TxnState::PrepareCommit, 7)
            .expect("legal");
        m.complete(&t).expect("applies");
        m.remove_partition(&("a".into(), 0));
        m.remove_partition(&("b".into(), 0));
        let t = m.prepare_complete(8).expect("legal");
        assert!(t.partitions.is_empty());
        m.complete(&t).expect("applies");
        assert_eq!(m.state, TxnState::CompleteCommit);
        // Complete -> Commit again is illegal; a new transaction is fine.
        assert!(m
            .prepare_abort_or_commit(TxnState::PrepareCommit, 9)
            .is_err());
        let t = m
            .prepare_add_partitions(&tps(&[("c", 0)]), 10)
            .expect("legal");
        assert_eq!(t.start_ms, 10);
    }

    #[test]
    fn kip360_epoch_checks() {
        let mut m = fresh();
        // Current epoch 0: bump to 1, remembering 0.
        let t = m
            .prepare_increment_epoch(1000, Some(0), 3)
            .expect("legal")
            .expect("ok");
        m.complete(&t).expect("applies");
        assert_eq!((m.producer_epoch, m.last_producer_epoch), (1, 0));
        // A retry with the previous epoch gets the current epoch again.
        let t = m
            .prepare_increment_epoch(1000, Some(0), 4)
            .expect("legal")
            .expect("ok");
        assert_eq!(t.producer_epoch, 1);
        m.abort_pending();
        // Any other epoch is fenced.
        assert_eq!(m.prepare_increment_epoch(1000, Some(5), 4), Ok(Err(())));
    }

    #[test]
    fn fence_then_abort_and_rotation() {
        let mut m = fresh();
        let t = m
            .prepare_add_partitions(&tps(&[("a", 0)]), 5)
            .expect("legal");
        m.complete(&t).expect("applies");
        let f = m.prepare_fence_epoch().expect("legal");
        assert_eq!(
            (f.state, f.producer_epoch),
            (TxnState::PrepareEpochFence, 1)
        );
        assert!(m.complete(&f).is_err(), "a fence is never applied");
        m.abort_pending();
        m.producer_epoch = 32766;
        m.state = TxnState::CompleteAbort;
        assert!(m.epoch_exhausted());
        assert!(m.prepare_increment_epoch(1, None, 1).is_err());
        let t = m
            .prepare_producer_id_rotation(99, 1000, 6, true)
            .expect("legal");
        m.complete(&t).expect("applies");
        assert_eq!(
            (
                m.producer_id,
                m.producer_epoch,
                m.last_producer_id,
                m.last_producer_epoch
            ),
            (99, 0, 10, 32766)
        );
    }
}
