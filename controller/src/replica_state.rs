//! Replica states (Kafka's `ReplicaStateMachine` states) and which transitions are legal.
//!
//! Side effects are performed by the controller in `event_loop.rs`.

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReplicaState {
    New,
    Online,
    Offline,
    DeletionStarted,
    DeletionSuccessful,
    DeletionIneligible,
    NonExistent,
}

impl ReplicaState {
    pub fn valid_previous(self) -> &'static [ReplicaState] {
        use ReplicaState::*;
        match self {
            New => &[NonExistent],
            Online => &[New, Online, Offline, DeletionIneligible],
            Offline => &[New, Online, Offline, DeletionIneligible],
            DeletionStarted => &[Offline],
            DeletionSuccessful => &[DeletionStarted],
            DeletionIneligible => &[DeletionStarted, Offline],
            NonExistent => &[DeletionSuccessful],
        }
    }

    pub fn can_transition_from(self, from: ReplicaState) -> bool {
        self.valid_previous().contains(&from)
    }
}

use samsa_common::types::{BrokerId, TopicPartition};
use tracing::{error, warn};

use crate::error::Result;
use crate::event_loop::Controller;
use crate::leader_selection::remove_replica_from_isr;

impl Controller {
    /// Kafka's `ReplicaStateMachine.startup`: online replicas → Online (LeaderAndIsr with the
    /// current state, no epoch bump), the others → Offline.
    pub(crate) async fn replica_state_machine_startup(&mut self) -> Result<()> {
        let mut online = Vec::new();
        let mut offline = Vec::new();
        for tp in self.ctx.all_partitions() {
            for r in self.ctx.replicas(&tp) {
                if self.ctx.is_replica_online(r, &tp) {
                    self.ctx
                        .replica_states
                        .insert((tp.clone(), r), ReplicaState::Online);
                    online.push((tp.clone(), r));
                } else {
                    self.ctx
                        .replica_states
                        .insert((tp.clone(), r), ReplicaState::DeletionIneligible);
                    offline.push((tp.clone(), r));
                }
            }
        }
        self.replicas_to_state(&online, ReplicaState::Online)
            .await?;
        self.replicas_to_state(&offline, ReplicaState::Offline)
            .await?;
        Ok(())
    }

    /// Kafka's `ReplicaStateMachine.handleStateChanges` for one target state.
    pub(crate) async fn replicas_to_state(
        &mut self,
        replicas: &[(TopicPartition, BrokerId)],
        target: ReplicaState,
    ) -> Result<()> {
        let valid: Vec<(TopicPartition, BrokerId)> = replicas
            .iter()
            .filter(|(tp, r)| {
                let from = self.ctx.replica_state(tp, *r);
                let ok = target.can_transition_from(from);
                if !ok {
                    warn!(partition = %tp, replica = r, ?from, ?target, "invalid replica state transition");
                }
                ok
            })
            .cloned()
            .collect();
        match target {
            ReplicaState::New => {
                for (tp, r) in &valid {
                    if let Some(l) = self.ctx.leadership.get(tp).cloned() {
                        if l.leader_and_isr.leader == *r {
                            error!(partition = %tp, replica = r, "replica is already leader; cannot be New");
                            continue;
                        }
                        let a = self.ctx.assignment(tp).cloned().unwrap_or_default();
                        self.batch
                            .add_leader_and_isr(&self.ctx, &[*r], tp, &l, &a, true);
                    }
                    self.ctx
                        .replica_states
                        .insert((tp.clone(), *r), ReplicaState::New);
                }
            }
            ReplicaState::Online => {
                for (tp, r) in &valid {
                    let from = self.ctx.replica_state(tp, *r);
                    if from == ReplicaState::New {
                        let mut a = self.ctx.assignment(tp).cloned().unwrap_or_default();
                        if !a.replicas.contains(r) {
                            a.replicas.push(*r);
                            self.ctx.set_assignment(tp, a);
                        }
                    } else if let Some(l) = self.ctx.leadership.get(tp).cloned() {
                        let a = self.ctx.assignment(tp).cloned().unwrap_or_default();
                        self.batch
                            .add_leader_and_isr(&self.ctx, &[*r], tp, &l, &a, false);
                    }
                    self.ctx
                        .replica_states
                        .insert((tp.clone(), *r), ReplicaState::Online);
                }
            }
            ReplicaState::Offline => {
                let shrunk = self.shrink_isrs_pipelined(&valid).await?;
                for (tp, r) in &valid {
                    if self.ctx.is_live_or_shutting_down(*r) {
                        self.batch.add_stop_replica(&self.ctx, &[*r], tp, false);
                    }
                    if self.ctx.leadership.contains_key(tp) {
                        let replica = *r;
                        let updated = if shrunk.contains(&(tp.clone(), replica)) {
                            None // written by the pipelined batch; the context has it
                        } else {
                            self.update_leadership(tp, |cur| {
                                if cur.isr.contains(&replica) {
                                    remove_replica_from_isr(cur, replica)
                                } else {
                                    None
                                }
                            })
                            .await?
                        };
                        let current = updated.or_else(|| self.ctx.leadership.get(tp).cloned());
                        if let (Some(l), false) =
                            (current, self.ctx.is_topic_queued_for_deletion(&tp.topic))
                        {
                            let a = self.ctx.assignment(tp).cloned().unwrap_or_default();
                            let recipients: Vec<BrokerId> =
                                a.replicas.iter().copied().filter(|b| b != r).collect();
                            self.batch.add_leader_and_isr(
                                &self.ctx,
                                &recipients,
                                tp,
                                &l,
                                &a,
                                false,
                            );
                        }
                    } else {
                        let all = self.ctx.live_or_shutting_down_ids();
                        self.batch
                            .add_update_metadata(&self.ctx, &all, std::slice::from_ref(tp));
                    }
                    self.ctx
                        .replica_states
                        .insert((tp.clone(), *r), ReplicaState::Offline);
                }
            }
            ReplicaState::DeletionStarted => {
                for (tp, r) in &valid {
                    if self.ctx.is_live_or_shutting_down(*r) {
                        self.batch.add_stop_replica(&self.ctx, &[*r], tp, true);
                    }
                    self.ctx
                        .replica_states
                        .insert((tp.clone(), *r), ReplicaState::DeletionStarted);
                }
            }
            ReplicaState::DeletionSuccessful | ReplicaState::DeletionIneligible => {
                for (tp, r) in &valid {
                    self.ctx.replica_states.insert((tp.clone(), *r), target);
                }
            }
            ReplicaState::NonExistent => {
                for (tp, r) in &valid {
                    if let Some(mut a) = self.ctx.assignment(tp).cloned() {
                        a.replicas.retain(|b| b != r);
                        self.ctx.set_assignment(tp, a);
                    }
                    self.ctx.replica_states.remove(&(tp.clone(), *r));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::ReplicaState::*;

    #[test]
    fn transitions_follow_kafka_graph() {
        assert!(Online.can_transition_from(DeletionIneligible));
        assert!(!Online.can_transition_from(DeletionStarted));
        assert!(DeletionStarted.can_transition_from(Offline));
        assert!(!DeletionStarted.can_transition_from(Online));
        assert!(NonExistent.can_transition_from(DeletionSuccessful));
        assert!(DeletionIneligible.can_transition_from(Offline));
    }
}
