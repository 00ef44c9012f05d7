//! Kafka's partition leader election algorithms (`PartitionLeaderElectionAlgorithms` plus the
//! ISR/recovery-state rules of `PartitionStateMachine.leaderFor*`). Pure functions: every
//! strategy picks in assignment order.

use samsa_common::types::BrokerId;

use crate::context::LeaderAndIsr;

/// Which election to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElectionStrategy {
    /// Broker loss, broker startup, failover. `allow_unclean` = topic/broker config or admin.
    Offline { allow_unclean: bool },
    /// Reassignment: first live in-ISR replica of the target set.
    Reassign,
    /// Preferred replica: the assignment head if live and in ISR.
    Preferred,
    /// Controlled shutdown: move leadership off shutting-down brokers.
    ControlledShutdown,
}

/// The outcome for one partition: the new leadership (epoch bumped) and who receives
/// LeaderAndIsr.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Elected {
    pub leader_and_isr: LeaderAndIsr,
    pub recipients: Vec<BrokerId>,
    /// True when the leader was taken from outside the ISR.
    pub unclean: bool,
}

/// Inputs the algorithms need about broker liveness.
pub struct Liveness<'a> {
    /// Whether a replica counts as online (registered, not shutting down, dir healthy).
    pub is_online: &'a dyn Fn(BrokerId) -> bool,
    /// Whether a broker is registered (online or shutting down).
    pub is_live_or_shutting_down: &'a dyn Fn(BrokerId) -> bool,
    /// Whether a broker is in controlled shutdown.
    pub is_shutting_down: &'a dyn Fn(BrokerId) -> bool,
}

/// Run `strategy` for one partition. `assignment` is the full replica list, `target` the
/// reassignment target (only for `Reassign`). `recovery_supported` = IBP ≥ 3.2-IV0.
/// `None` = no eligible leader (ZooKeeper stays unchanged).
pub fn elect(
    strategy: ElectionStrategy,
    current: &LeaderAndIsr,
    assignment: &[BrokerId],
    target: &[BrokerId],
    live: &Liveness<'_>,
    recovery_supported: bool,
) -> Option<Elected> {
    let isr = &current.isr;
    let online = |r: &BrokerId| (live.is_online)(*r);
    match strategy {
        ElectionStrategy::Offline { allow_unclean } => {
            let recipients: Vec<BrokerId> = assignment.iter().copied().filter(online).collect();
            let clean = assignment
                .iter()
                .copied()
                .find(|r| online(r) && isr.contains(r));
            let (leader, unclean) = match clean {
                Some(l) => (l, false),
                None if allow_unclean => (assignment.iter().copied().find(online)?, true),
                None => return None,
            };
            let mut next = if unclean {
                current.new_leader_and_isr(leader, vec![leader])
            } else {
                let new_isr = isr.iter().copied().filter(online).collect();
                current.new_leader_and_isr(leader, new_isr)
            };
            if unclean && recovery_supported {
                next.leader_recovery_state = 1;
            }
            Some(Elected {
                leader_and_isr: next,
                recipients,
                unclean,
            })
        }
        ElectionStrategy::Reassign => {
            let leader = target
                .iter()
                .copied()
                .find(|r| online(r) && isr.contains(r))?;
            Some(Elected {
                leader_and_isr: current.new_leader_and_isr(leader, isr.clone()),
                recipients: target.to_vec(),
                unclean: false,
            })
        }
        ElectionStrategy::Preferred => {
            let head = *assignment.first()?;
            if !(online(&head) && isr.contains(&head)) {
                return None;
            }
            Some(Elected {
                leader_and_isr: current.new_leader_and_isr(head, isr.clone()),
                recipients: assignment.to_vec(),
                unclean: false,
            })
        }
        ElectionStrategy::ControlledShutdown => {
            let los = |r: &BrokerId| (live.is_live_or_shutting_down)(*r);
            let sd = |r: &BrokerId| (live.is_shutting_down)(*r);
            let leader = assignment
                .iter()
                .copied()
                .find(|r| los(r) && isr.contains(r) && !sd(r))?;
            let new_isr = isr.iter().copied().filter(|r| !sd(r)).collect();
            Some(Elected {
                leader_and_isr: current.new_leader_and_isr(leader, new_isr),
                recipients: assignment.iter().copied().filter(los).collect(),
                unclean: false,
            })
        }
    }
}

/// The leader and ISR after `replica` goes offline (Kafka's `removeReplicasFromIsr`): leader
/// becomes -1 if it was `replica`; the ISR loses `replica` unless it is the only member;
/// leader epoch +1. `None` if `replica` is not in the ISR (nothing to write).
pub fn remove_replica_from_isr(current: &LeaderAndIsr, replica: BrokerId) -> Option<LeaderAndIsr> {
    if !current.isr.contains(&replica) {
        return None;
    }
    let leader = if current.leader == replica {
        crate::context::NO_LEADER
    } else {
        current.leader
    };
    let isr = if current.isr.len() == 1 {
        current.isr.clone()
    } else {
        current
            .isr
            .iter()
            .copied()
            .filter(|r| *r != replica)
            .collect()
    };
    Some(current.new_leader_and_isr(leader, isr))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn lai(leader: i32, epoch: i32, isr: &[i32]) -> LeaderAndIsr {
        LeaderAndIsr {
            leader,
            leader_epoch: epoch,
            isr: isr.to_vec(),
            leader_recovery_state: 0,
            partition_epoch: 3,
        }
    }

    fn run(
        s: ElectionStrategy,
        cur: &LeaderAndIsr,
        assignment: &[i32],
        online: &[i32],
        shutting: &[i32],
    ) -> Option<Elected> {
        let on = |b: i32| online.contains(&b);
        let los = |b: i32| online.contains(&b) || shutting.contains(&b);
        let sd = |b: i32| shutting.contains(&b);
        let live = Liveness {
            is_online: &on,
            is_live_or_shutting_down: &los,
            is_shutting_down: &sd,
        };
        elect(s, cur, assignment, assignment, &live, true)
    }

    #[test]
    fn offline_picks_first_live_isr_member_in_assignment_order() {
        let cur = lai(2, 4, &[2, 3, 1]);
        let e = run(
            ElectionStrategy::Offline {
                allow_unclean: false,
            },
            &cur,
            &[2, 1, 3],
            &[1, 3],
            &[],
        )
        .unwrap();
        assert_eq!(e.leader_and_isr.leader, 1);
        assert_eq!(e.leader_and_isr.isr, vec![3, 1]);
        assert_eq!(e.leader_and_isr.leader_epoch, 5);
        assert_eq!(e.recipients, vec![1, 3]);
        assert!(!e.unclean);
    }

    #[test]
    fn offline_without_live_isr_fails_unless_unclean() {
        let cur = lai(2, 0, &[2]);
        let clean = ElectionStrategy::Offline {
            allow_unclean: false,
        };
        assert!(run(clean, &cur, &[2, 1], &[1], &[]).is_none());
        let e = run(
            ElectionStrategy::Offline {
                allow_unclean: true,
            },
            &cur,
            &[2, 1],
            &[1],
            &[],
        )
        .unwrap();
        assert_eq!(e.leader_and_isr.leader, 1);
        assert_eq!(e.leader_and_isr.isr, vec![1]);
        assert_eq!(e.leader_and_isr.leader_recovery_state, 1);
        assert!(e.unclean);
    }

    #[test]
    fn preferred_requires_head_live_and_in_isr() {
        let cur = lai(2, 1, &[2, 1]);
        let e = run(ElectionStrategy::Preferred, &cur, &[1, 2], &[1, 2], &[]).unwrap();
        assert_eq!(e.leader_and_isr.leader, 1);
        assert_eq!(e.leader_and_isr.isr, vec![2, 1]);
        assert_eq!(e.leader_and_isr.leader_epoch, 2);
        let cur = lai(2, 1, &[2]);
        assert!(run(ElectionStrategy::Preferred, &cur, &[1, 2], &[1, 2], &[]).is_none());
    }

    #[test]
    fn controlled_shutdown_moves_off_and_shrinks_isr() {
        let cur = lai(1, 7, &[1, 2, 3]);
        let e = run(
            ElectionStrategy::ControlledShutdown,
            &cur,
            &[1, 2, 3],
            &[2, 3],
            &[1],
        )
        .unwrap();
        assert_eq!(e.leader_and_isr.leader, 2);
        assert_eq!(e.leader_and_isr.isr, vec![2, 3]);
        assert_eq!(e.recipients, vec![1, 2, 3]);
    }

    #[test]
    fn isr_removal_keeps_last_member() {
        // Spec case 26: leader 2 stops, ISR [2,1] → leader -1 (re-elected separately), ISR [1].
        let r = remove_replica_from_isr(&lai(2, 3, &[2, 1]), 2).unwrap();
        assert_eq!((r.leader, r.isr.clone(), r.leader_epoch), (-1, vec![1], 4));
        // Spec case 27: only ISR member stops: ISR unchanged, leader -1.
        let r = remove_replica_from_isr(&lai(2, 3, &[2]), 2).unwrap();
        assert_eq!((r.leader, r.isr.clone()), (-1, vec![2]));
        assert!(remove_replica_from_isr(&lai(2, 3, &[2]), 5).is_none());
    }
}
