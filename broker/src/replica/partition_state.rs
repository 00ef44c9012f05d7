//! Leader-side replication state of one partition, kept free of I/O so the
//! high-watermark and ISR rules can be tested on their own.
//!
//! Rules (Kafka 3.9 `Partition` / `Replica`):
//! * follower state moves only on its fetches: LEO := fetch offset; the
//!   last-caught-up time follows `Replica.updateFetchStateOrThrow`;
//! * HW candidate = leader LEO lowered to the LEO of every remote replica in
//!   the *maximal* ISR (ISR plus in-flight additions) or caught up; never
//!   advanced while ISR size < effective min ISR (3.7+ rule);
//! * expand: non-ISR follower with LEO ≥ HW and ≥ the leader epoch's start offset;
//! * shrink: ISR followers not caught up within `replica.lag.time.max.ms`.

use std::collections::HashMap;

use samsa_common::types::BrokerId;

/// What the leader knows about one remote replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerState {
    pub log_end_offset: i64,
    pub log_start_offset: i64,
    pub last_caught_up_ms: u64,
    pub last_fetch_leader_leo: i64,
    pub last_fetch_ms: u64,
}

impl FollowerState {
    fn fresh(last_caught_up_ms: u64) -> Self {
        Self {
            log_end_offset: -1,
            log_start_offset: -1,
            last_caught_up_ms,
            last_fetch_leader_leo: -1,
            last_fetch_ms: 0,
        }
    }

    /// `Replica.isCaughtUp`.
    pub fn is_caught_up(&self, leader_leo: i64, now_ms: u64, max_lag_ms: u64) -> bool {
        self.log_end_offset == leader_leo
            || now_ms.saturating_sub(self.last_caught_up_ms) <= max_lag_ms
    }
}

/// An ISR change sent to the controller and not yet answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PendingIsr {
    Expand(Vec<BrokerId>),
    Shrink(Vec<BrokerId>),
}

/// Leader/follower role data installed by LeaderAndIsr plus leader-side follower tracking.
#[derive(Debug, Clone)]
pub struct ReplicationState {
    pub local_id: BrokerId,
    pub leader: BrokerId,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub controller_epoch: i32,
    pub replicas: Vec<BrokerId>,
    pub isr: Vec<BrokerId>,
    pub adding: Vec<BrokerId>,
    pub removing: Vec<BrokerId>,
    /// LEO at the moment we became leader for `leader_epoch`.
    pub leader_epoch_start_offset: i64,
    pub followers: HashMap<BrokerId, FollowerState>,
    pub pending: Option<PendingIsr>,
}

impl ReplicationState {
    /// A partition we host but know nothing about yet (epoch -1).
    pub fn new(local_id: BrokerId) -> Self {
        Self {
            local_id,
            leader: -1,
            leader_epoch: -1,
            partition_epoch: -1,
            controller_epoch: -1,
            replicas: Vec::new(),
            isr: Vec::new(),
            adding: Vec::new(),
            removing: Vec::new(),
            leader_epoch_start_offset: -1,
            followers: HashMap::new(),
            pending: None,
        }
    }

    pub fn is_leader(&self) -> bool {
        self.leader == self.local_id && self.leader_epoch >= 0
    }

    /// ISR plus in-flight additions; during an in-flight shrink the old (larger) ISR.
    pub fn maximal_isr(&self) -> Vec<BrokerId> {
        match &self.pending {
            Some(PendingIsr::Expand(new)) | Some(PendingIsr::Shrink(new)) => {
                let mut m = self.isr.clone();
                for b in new {
                    if !m.contains(b) {
                        m.push(*b);
                    }
                }
                m
            }
            None => self.isr.clone(),
        }
    }

    /// `min(min.insync.replicas, replication factor)`.
    pub fn effective_min_isr(&self, min_insync: i32) -> usize {
        (min_insync.max(1) as usize).min(self.replicas.len().max(1))
    }

    pub fn is_under_min_isr(&self, min_insync: i32) -> bool {
        self.isr.len() < self.effective_min_isr(min_insync)
    }

    /// Install leadership (after the epoch checks). `leo` is the local LEO.
    /// Resets follower states: ISR members count as caught up now, others never.
    #[allow(clippy::too_many_arguments)]
    pub fn become_leader(
        &mut self,
        controller_epoch: i32,
        leader_epoch: i32,
        partition_epoch: i32,
        replicas: Vec<BrokerId>,
        isr: Vec<BrokerId>,
        adding: Vec<BrokerId>,
        removing: Vec<BrokerId>,
        leo: i64,
        now_ms: u64,
    ) -> bool {
        let new_epoch = leader_epoch > self.leader_epoch || !self.is_leader();
        self.controller_epoch = controller_epoch;
        self.replicas = replicas;
        self.isr = isr;
        self.adding = adding;
        self.removing = removing;
        self.partition_epoch = partition_epoch;
        self.pending = None;
        if new_epoch {
            self.leader_epoch_start_offset = leo;
            self.followers.clear();
        }
        let local = self.local_id;
        let isr = self.isr.clone();
        self.followers.retain(|id, _| *id != local);
        for r in self.replicas.clone() {
            if r == local {
                continue;
            }
            let caught = if isr.contains(&r) { now_ms } else { 0 };
            if new_epoch {
                self.followers.insert(r, FollowerState::fresh(caught));
            } else {
                self.followers
                    .entry(r)
                    .or_insert_with(|| FollowerState::fresh(caught));
            }
        }
        let replicas = self.replicas.clone();
        self.followers.retain(|id, _| replicas.contains(id));
        self.leader = local;
        self.leader_epoch = leader_epoch;
        new_epoch
    }

    /// Install follower role.
    #[allow(clippy::too_many_arguments)]
    pub fn become_follower(
        &mut self,
        controller_epoch: i32,
        leader: BrokerId,
        leader_epoch: i32,
        partition_epoch: i32,
        replicas: Vec<BrokerId>,
        adding: Vec<BrokerId>,
        removing: Vec<BrokerId>,
    ) -> bool {
        let changed = leader != self.leader || leader_epoch != self.leader_epoch;
        self.controller_epoch = controller_epoch;
        self.leader = leader;
        self.leader_epoch = leader_epoch;
        self.partition_epoch = partition_epoch;
        self.replicas = replicas;
        self.adding = adding;
        self.removing = removing;
        self.isr.clear();
        self.pending = None;
        self.followers.clear();
        self.leader_epoch_start_offset = -1;
        changed
    }

    /// Record a follower fetch (`Replica.updateFetchStateOrThrow`). Returns false
    /// if `replica` is not an assigned remote replica.
    pub fn update_follower(
        &mut self,
        replica: BrokerId,
        fetch_offset: i64,
        follower_log_start: i64,
        leader_leo: i64,
        now_ms: u64,
    ) -> bool {
        let Some(f) = self.followers.get_mut(&replica) else {
            return false;
        };
        if fetch_offset >= leader_leo {
            f.last_caught_up_ms = f.last_caught_up_ms.max(now_ms);
        } else if fetch_offset >= f.last_fetch_leader_leo {
            f.last_caught_up_ms = f.last_caught_up_ms.max(f.last_fetch_ms);
        }
        f.log_end_offset = fetch_offset;
        f.log_start_offset = follower_log_start;
        f.last_fetch_leader_leo = leader_leo;
        f.last_fetch_ms = now_ms;
        true
    }

    /// New HW if it should move above `current_hw`; `alive` says whether a broker is registered.
    pub fn compute_high_watermark(
        &self,
        leader_leo: i64,
        current_hw: i64,
        min_insync: i32,
        max_lag_ms: u64,
        now_ms: u64,
        alive: impl Fn(BrokerId) -> bool,
    ) -> Option<i64> {
        if !self.is_leader() || self.is_under_min_isr(min_insync) {
            return None;
        }
        let maximal = self.maximal_isr();
        let mut hw = leader_leo;
        for (id, f) in &self.followers {
            if f.log_end_offset < hw
                && (maximal.contains(id)
                    || (f.is_caught_up(leader_leo, now_ms, max_lag_ms) && alive(*id)))
            {
                hw = f.log_end_offset;
            }
        }
        (hw > current_hw).then_some(hw)
    }

    /// A follower that should join the ISR now, if any (none while a change is in flight).
    pub fn expand_candidate(&self, replica: BrokerId, hw: i64, alive: bool) -> bool {
        if self.pending.is_some() || !self.is_leader() || self.isr.contains(&replica) || !alive {
            return false;
        }
        match self.followers.get(&replica) {
            Some(f) => {
                f.log_end_offset >= hw
                    && self.leader_epoch_start_offset >= 0
                    && f.log_end_offset >= self.leader_epoch_start_offset
            }
            None => false,
        }
    }

    /// ISR followers that are no longer caught up.
    pub fn out_of_sync(&self, leader_leo: i64, now_ms: u64, max_lag_ms: u64) -> Vec<BrokerId> {
        if self.pending.is_some() || !self.is_leader() {
            return Vec::new();
        }
        self.isr
            .iter()
            .filter(|id| **id != self.local_id)
            .filter(|id| match self.followers.get(id) {
                Some(f) => !f.is_caught_up(leader_leo, now_ms, max_lag_ms),
                None => false,
            })
            .copied()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leader(min_isr: i32) -> (ReplicationState, i32) {
        let mut s = ReplicationState::new(1);
        s.become_leader(
            1,
            5,
            0,
            vec![1, 2, 3],
            vec![1, 2, 3],
            vec![],
            vec![],
            10,
            1000,
        );
        (s, min_isr)
    }

    #[test]
    fn hw_is_min_over_isr() {
        let (mut s, min) = leader(1);
        assert!(s.is_leader());
        assert_eq!(s.leader_epoch_start_offset, 10);
        // Followers haven't fetched: their LEO is -1 (unknown) but they're in ISR.
        assert_eq!(
            s.compute_high_watermark(20, 10, min, 30_000, 1000, |_| true),
            None
        );
        s.update_follower(2, 15, 0, 20, 1001);
        s.update_follower(3, 18, 0, 20, 1001);
        assert_eq!(
            s.compute_high_watermark(20, 10, min, 30_000, 1001, |_| true),
            Some(15)
        );
        s.update_follower(2, 20, 0, 20, 1002);
        assert_eq!(
            s.compute_high_watermark(20, 15, min, 30_000, 1002, |_| true),
            Some(18)
        );
    }

    #[test]
    fn hw_frozen_under_min_isr() {
        let (mut s, _) = leader(2);
        s.isr = vec![1];
        s.followers.clear();
        assert!(s.is_under_min_isr(2));
        assert_eq!(
            s.compute_high_watermark(20, 10, 2, 30_000, 1000, |_| true),
            None
        );
        assert_eq!(
            s.compute_high_watermark(20, 10, 1, 30_000, 1000, |_| true),
            Some(20)
        );
        // RF 1 with min.insync 2: effective min ISR is 1.
        let mut one = ReplicationState::new(1);
        one.become_leader(1, 0, 0, vec![1], vec![1], vec![], vec![], 0, 0);
        assert_eq!(one.effective_min_isr(2), 1);
        assert_eq!(
            one.compute_high_watermark(7, 0, 2, 30_000, 0, |_| true),
            Some(7)
        );
    }

    #[test]
    fn caught_up_tracking_and_shrink_expand() {
        let mut s = ReplicationState::new(1);
        s.become_leader(1, 0, 0, vec![1, 2, 3], vec![1, 2], vec![], vec![], 0, 0);
        // 3 is not in ISR: lastCaughtUp 0 → not caught up after the lag.
        s.update_follower(2, 0, 0, 0, 100);
        assert!(s.out_of_sync(0, 40_000, 30_000).is_empty(), "2 is at LEO");
        // Leader moves to 50, follower 2 lags behind and stays behind.
        s.update_follower(2, 10, 0, 50, 1_000);
        assert_eq!(s.out_of_sync(50, 32_000, 30_000), vec![2]);
        // Follower 3 catches up to HW and epoch start → expand candidate.
        s.update_follower(3, 50, 0, 50, 2_000);
        assert!(s.expand_candidate(3, 50, true));
        assert!(!s.expand_candidate(3, 50, false));
        s.pending = Some(PendingIsr::Expand(vec![1, 2, 3]));
        assert!(!s.expand_candidate(3, 50, true));
        assert_eq!(s.maximal_isr(), vec![1, 2, 3]);
    }

    #[test]
    fn last_caught_up_uses_previous_fetch() {
        let mut s = ReplicationState::new(1);
        s.become_leader(1, 0, 0, vec![1, 2], vec![1], vec![], vec![], 0, 0);
        s.update_follower(2, 0, 0, 10, 100); // behind; leader LEO 10 recorded
        assert_eq!(s.followers[&2].last_caught_up_ms, 0);
        s.update_follower(2, 10, 0, 20, 200); // reached the previous LEO → previous fetch time
        assert_eq!(s.followers[&2].last_caught_up_ms, 100);
        s.update_follower(2, 20, 0, 20, 300);
        assert_eq!(s.followers[&2].last_caught_up_ms, 300);
    }
}
