//! Partition states (Kafka's `PartitionStateMachine` states) and which transitions are legal.
//!
//! The transitions' side effects (ZooKeeper writes, requests to brokers) are performed by the
//! controller in `event_loop.rs`; this module only knows the state graph.

/// Kafka's partition states; the numbers are Kafka's state ids (used in logs only).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PartitionState {
    /// Assignment known, no leader elected yet.
    New,
    /// A leader is elected.
    Online,
    /// The leader died or was never electable.
    Offline,
    /// Not known (or deleted).
    NonExistent,
}

impl PartitionState {
    /// States a partition may be in before moving to `self`.
    pub fn valid_previous(self) -> &'static [PartitionState] {
        use PartitionState::*;
        match self {
            New => &[NonExistent],
            Online => &[New, Online, Offline],
            Offline => &[New, Online, Offline],
            NonExistent => &[Offline],
        }
    }

    pub fn can_transition_from(self, from: PartitionState) -> bool {
        self.valid_previous().contains(&from)
    }
}

use samsa_common::types::{BrokerId, TopicPartition};
use samsa_common::zk::session::{CreateMode, ZkOp};
use samsa_common::zk::znodes::{
    TopicPartitionStateZNode, TopicPartitionZNode, TopicPartitionsZNode,
};
use tracing::{info, warn};

use crate::context::{LeaderAndIsr, LeaderIsrAndControllerEpoch};
use crate::error::{Error, Result};
use crate::event_loop::Controller;
use crate::leader_selection::{elect, ElectionStrategy, Liveness};

/// Per-partition outcome of an election request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElectionOutcome {
    Elected,
    /// No eligible leader (ZooKeeper unchanged).
    NotEligible,
    /// Partition unknown or without leadership information.
    Unknown,
}

impl Controller {
    /// Kafka's `PartitionStateMachine.startup`: derive states from leadership, then elect
    /// leaders for New/Offline partitions.
    pub(crate) async fn partition_state_machine_startup(&mut self) -> Result<()> {
        for tp in self.ctx.all_partitions() {
            let state = match self.ctx.leadership.get(&tp) {
                None => PartitionState::New,
                Some(l) if self.ctx.is_replica_online(l.leader_and_isr.leader, &tp) => {
                    PartitionState::Online
                }
                Some(_) => PartitionState::Offline,
            };
            self.ctx.partition_states.insert(tp, state);
        }
        self.trigger_online_partition_state_change().await
    }

    /// Elect leaders for every New/Offline partition not queued for deletion.
    pub(crate) async fn trigger_online_partition_state_change(&mut self) -> Result<()> {
        let mut parts: Vec<TopicPartition> = self
            .ctx
            .partition_states
            .iter()
            .filter(|(tp, s)| {
                matches!(s, PartitionState::New | PartitionState::Offline)
                    && !self.ctx.is_topic_queued_for_deletion(&tp.topic)
            })
            .map(|(tp, _)| tp.clone())
            .collect();
        parts.sort();
        self.partitions_to_online(
            &parts,
            ElectionStrategy::Offline {
                allow_unclean: false,
            },
        )
        .await?;
        Ok(())
    }

    /// Move partitions to Online: New ones get their first leader (state znodes created),
    /// Online/Offline ones run `strategy`. For Offline strategies unclean election is decided
    /// per topic (broker default + `/config/topics/<t>` override).
    pub(crate) async fn partitions_to_online(
        &mut self,
        parts: &[TopicPartition],
        strategy: ElectionStrategy,
    ) -> Result<Vec<(TopicPartition, ElectionOutcome)>> {
        let mut out = Vec::new();
        let new: Vec<TopicPartition> = parts
            .iter()
            .filter(|tp| self.ctx.partition_state(tp) == PartitionState::New)
            .cloned()
            .collect();
        self.create_state_znodes_batched(&new).await?;
        let new: std::collections::HashSet<TopicPartition> = new.into_iter().collect();
        let mut to_elect = Vec::new();
        for tp in parts {
            let outcome = match self.ctx.partition_state(tp) {
                PartitionState::Online if new.contains(tp) => ElectionOutcome::Elected,
                PartitionState::New => self.initialize_leader_and_isr(tp).await?,
                PartitionState::Online | PartitionState::Offline => {
                    to_elect.push(tp.clone());
                    continue;
                }
                PartitionState::NonExistent => ElectionOutcome::Unknown,
            };
            out.push((tp.clone(), outcome));
        }
        out.extend(self.elect_leaders(&to_elect, strategy).await?);
        Ok(out)
    }

    /// Fast path for new partitions: per topic, one fenced `multi` creating every
    /// `partitions/<p>` and `state` znode (chunks of 100). Partitions done here become Online;
    /// if a chunk fails (e.g. a znode already exists) its partitions are left New and take the
    /// one-by-one path of [`Self::initialize_leader_and_isr`].
    async fn create_state_znodes_batched(&mut self, parts: &[TopicPartition]) -> Result<()> {
        let mut by_topic: std::collections::BTreeMap<&str, Vec<&TopicPartition>> =
            Default::default();
        for tp in parts {
            by_topic.entry(tp.topic.as_str()).or_default().push(tp);
        }
        for (topic, tps) in by_topic {
            self.fenced_create(&TopicPartitionsZNode::path(topic), Vec::new())
                .await?;
            for chunk in tps.chunks(100) {
                let mut ops = Vec::new();
                let mut planned = Vec::new();
                for tp in chunk {
                    let live: Vec<BrokerId> = self
                        .ctx
                        .replicas(tp)
                        .into_iter()
                        .filter(|r| self.ctx.is_replica_online(*r, tp))
                        .collect();
                    let Some(&leader) = live.first() else {
                        continue;
                    };
                    let l = LeaderIsrAndControllerEpoch {
                        leader_and_isr: LeaderAndIsr {
                            leader,
                            leader_epoch: 0,
                            isr: live,
                            leader_recovery_state: 0,
                            partition_epoch: 0,
                        },
                        controller_epoch: self.ctx.epoch,
                    };
                    ops.push(ZkOp::create(
                        TopicPartitionZNode::path(tp),
                        Vec::new(),
                        CreateMode::Persistent,
                    ));
                    ops.push(ZkOp::create(
                        TopicPartitionStateZNode::path(tp),
                        l.to_znode().encode(),
                        CreateMode::Persistent,
                    ));
                    planned.push(((*tp).clone(), l));
                }
                if ops.is_empty() {
                    continue;
                }
                match self.fenced(&ops).await {
                    Ok(_) => {
                        for (tp, l) in planned {
                            self.ctx.leadership.insert(tp.clone(), l.clone());
                            self.ctx
                                .partition_states
                                .insert(tp.clone(), PartitionState::Online);
                            let a = self.ctx.assignment(&tp).cloned().unwrap_or_default();
                            let isr = l.leader_and_isr.isr.clone();
                            self.batch
                                .add_leader_and_isr(&self.ctx, &isr, &tp, &l, &a, true);
                        }
                    }
                    Err(Error::Zk(e)) if e.is_node_exists() || e.is_no_node() => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    /// New → Online: leader = first live replica, ISR = live replicas, epoch 0; create the
    /// `partitions/<p>/state` znodes (fenced); LeaderAndIsr(isNew) to the ISR.
    async fn initialize_leader_and_isr(&mut self, tp: &TopicPartition) -> Result<ElectionOutcome> {
        let replicas = self.ctx.replicas(tp);
        let live: Vec<BrokerId> = replicas
            .iter()
            .copied()
            .filter(|r| self.ctx.is_replica_online(*r, tp))
            .collect();
        let Some(&leader) = live.first() else {
            warn!(partition = %tp, ?replicas, "no live replica to lead new partition yet");
            return Ok(ElectionOutcome::NotEligible);
        };
        let mut leadership = LeaderIsrAndControllerEpoch {
            leader_and_isr: LeaderAndIsr {
                leader,
                leader_epoch: 0,
                isr: live.clone(),
                leader_recovery_state: 0,
                partition_epoch: 0,
            },
            controller_epoch: self.ctx.epoch,
        };
        self.fenced_create(&TopicPartitionsZNode::path(&tp.topic), Vec::new())
            .await?;
        self.fenced_create(&TopicPartitionZNode::path(tp), Vec::new())
            .await?;
        let created = self
            .fenced_create(
                &TopicPartitionStateZNode::path(tp),
                leadership.to_znode().encode(),
            )
            .await?;
        if !created {
            // Someone (an earlier controller) already initialized it: adopt what is there.
            warn!(partition = %tp, "partition state already exists; adopting it");
            self.refresh_leadership(tp).await?;
            match self.ctx.leadership.get(tp).cloned() {
                Some(l) => leadership = l,
                None => return Ok(ElectionOutcome::Unknown),
            }
        }
        self.ctx.leadership.insert(tp.clone(), leadership.clone());
        self.ctx
            .partition_states
            .insert(tp.clone(), PartitionState::Online);
        let assignment = self.ctx.assignment(tp).cloned().unwrap_or_default();
        let recipients = leadership.leader_and_isr.isr.clone();
        self.batch
            .add_leader_and_isr(&self.ctx, &recipients, tp, &leadership, &assignment, true);
        Ok(ElectionOutcome::Elected)
    }

    /// Whether unclean election is allowed for a topic (topic override, else broker default).
    async fn unclean_allowed(&self, topic: &str) -> Result<bool> {
        let cfg = self.zk.get_entity_config("topics", topic).await?;
        Ok(match cfg.get("unclean.leader.election.enable") {
            Some(v) => v.trim().eq_ignore_ascii_case("true"),
            None => self
                .cfg
                .unclean_leader_election_enable
                .load(std::sync::atomic::Ordering::Relaxed),
        })
    }

    /// Online/Offline → Online with `strategy`: conditional update of the `state` znode
    /// (BADVERSION → re-read and retry), LeaderAndIsr to the strategy's recipients.
    pub(crate) async fn elect_leader(
        &mut self,
        tp: &TopicPartition,
        strategy: ElectionStrategy,
    ) -> Result<ElectionOutcome> {
        for _attempt in 0..5 {
            let plan = match self.plan_election(tp, strategy).await? {
                Planned::Done(outcome) => return Ok(outcome),
                Planned::Write(w) => w,
            };
            match self
                .fenced_set(
                    &TopicPartitionStateZNode::path(tp),
                    plan.next.to_znode().encode(),
                    Some(plan.expected_version),
                )
                .await
            {
                Ok(stat) => {
                    self.apply_election(plan, stat.version);
                    return Ok(ElectionOutcome::Elected);
                }
                Err(Error::Zk(e)) if e.is_bad_version() => {
                    self.refresh_leadership(tp).await?;
                }
                Err(e) => return Err(e),
            }
        }
        Err(Error::Conflict(TopicPartitionStateZNode::path(tp)))
    }

    /// Many elections at once: every new state computed first, then all `state` znode
    /// writes pipelined on the session (see `pipeline.rs`), so N partitions cost about one
    /// ZooKeeper round trip instead of N. A write that meets BADVERSION (someone else, e.g.
    /// the leader's AlterPartition, moved the znode) is redone by [`Self::elect_leader`].
    pub(crate) async fn elect_leaders(
        &mut self,
        parts: &[TopicPartition],
        strategy: ElectionStrategy,
    ) -> Result<Vec<(TopicPartition, ElectionOutcome)>> {
        let mut out = Vec::with_capacity(parts.len());
        let mut plans = Vec::new();
        for tp in parts {
            match self.plan_election(tp, strategy).await? {
                Planned::Done(outcome) => out.push((tp.clone(), outcome)),
                Planned::Write(w) => plans.push(w),
            }
        }
        let writes: Vec<(String, Vec<u8>, i32)> = plans
            .iter()
            .map(|p| {
                (
                    TopicPartitionStateZNode::path(&p.tp),
                    p.next.to_znode().encode(),
                    p.expected_version,
                )
            })
            .collect();
        let results = self.fenced_sets_pipelined(writes).await;
        for (plan, r) in plans.into_iter().zip(results) {
            let tp = plan.tp.clone();
            match r {
                Ok(stat) => {
                    self.apply_election(plan, stat.version);
                    out.push((tp, ElectionOutcome::Elected));
                }
                Err(Error::Zk(e)) if e.is_bad_version() => {
                    self.refresh_leadership(&tp).await?;
                    let outcome = self.elect_leader(&tp, strategy).await?;
                    out.push((tp, outcome));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// The new leadership `strategy` gives `tp` (no ZooKeeper write yet).
    async fn plan_election(
        &self,
        tp: &TopicPartition,
        strategy: ElectionStrategy,
    ) -> Result<Planned> {
        let Some(current) = self.ctx.leadership.get(tp).cloned() else {
            return Ok(Planned::Done(ElectionOutcome::Unknown));
        };
        if current.controller_epoch > self.ctx.epoch {
            return Err(Error::ControllerMoved);
        }
        let assignment = self.ctx.assignment(tp).cloned().unwrap_or_default();
        let mut strategy = strategy;
        if let ElectionStrategy::Offline {
            allow_unclean: false,
        } = strategy
        {
            let has_clean = assignment.replicas.iter().any(|r| {
                self.ctx.is_replica_online(*r, tp) && current.leader_and_isr.isr.contains(r)
            });
            if !has_clean && self.unclean_allowed(&tp.topic).await? {
                strategy = ElectionStrategy::Offline {
                    allow_unclean: true,
                };
            }
        }
        let target = assignment.target_replicas();
        let elected = {
            let ctx = &self.ctx;
            let is_online = |b: BrokerId| ctx.is_replica_online(b, tp);
            let los = |b: BrokerId| ctx.is_live_or_shutting_down(b);
            let sd = |b: BrokerId| ctx.shutting_down.contains(&b);
            let live = Liveness {
                is_online: &is_online,
                is_live_or_shutting_down: &los,
                is_shutting_down: &sd,
            };
            elect(
                strategy,
                &current.leader_and_isr,
                &assignment.replicas,
                &target,
                &live,
                self.cfg.leader_recovery_supported(),
            )
        };
        let Some(elected) = elected else {
            warn!(partition = %tp, ?strategy, isr = ?current.leader_and_isr.isr, "no eligible leader");
            return Ok(Planned::Done(ElectionOutcome::NotEligible));
        };
        if elected.unclean {
            self.metrics.unclean_election();
            warn!(partition = %tp, leader = elected.leader_and_isr.leader, "unclean leader election");
        }
        Ok(Planned::Write(PlannedElection {
            tp: tp.clone(),
            next: LeaderIsrAndControllerEpoch {
                leader_and_isr: elected.leader_and_isr,
                controller_epoch: self.ctx.epoch,
            },
            expected_version: current.leader_and_isr.partition_epoch,
            recipients: elected.recipients,
            assignment,
        }))
    }

    /// Record a written election (its znode now at `version`) and queue its LeaderAndIsr.
    fn apply_election(&mut self, plan: PlannedElection, version: i32) {
        let PlannedElection {
            tp,
            mut next,
            recipients,
            assignment,
            ..
        } = plan;
        next.leader_and_isr.partition_epoch = version;
        info!(partition = %tp, leader = next.leader_and_isr.leader,
              epoch = next.leader_and_isr.leader_epoch, isr = ?next.leader_and_isr.isr,
              "elected leader");
        self.ctx.leadership.insert(tp.clone(), next.clone());
        self.ctx
            .partition_states
            .insert(tp.clone(), PartitionState::Online);
        self.batch
            .add_leader_and_isr(&self.ctx, &recipients, &tp, &next, &assignment, false);
    }

    /// Conditionally write new leadership computed by `f` from the current one (BADVERSION →
    /// re-read and recompute). Returns the written state, or `None` if `f` declines.
    pub(crate) async fn update_leadership<F>(
        &mut self,
        tp: &TopicPartition,
        mut f: F,
    ) -> Result<Option<LeaderIsrAndControllerEpoch>>
    where
        F: FnMut(&LeaderAndIsr) -> Option<LeaderAndIsr>,
    {
        for _ in 0..5 {
            let Some(current) = self.ctx.leadership.get(tp).cloned() else {
                return Ok(None);
            };
            if current.controller_epoch > self.ctx.epoch {
                return Err(Error::ControllerMoved);
            }
            let Some(lai) = f(&current.leader_and_isr) else {
                return Ok(None);
            };
            let mut next = LeaderIsrAndControllerEpoch {
                leader_and_isr: lai,
                controller_epoch: self.ctx.epoch,
            };
            match self
                .fenced_set(
                    &TopicPartitionStateZNode::path(tp),
                    next.to_znode().encode(),
                    Some(current.leader_and_isr.partition_epoch),
                )
                .await
            {
                Ok(stat) => {
                    next.leader_and_isr.partition_epoch = stat.version;
                    self.ctx.leadership.insert(tp.clone(), next.clone());
                    return Ok(Some(next));
                }
                Err(Error::Zk(e)) if e.is_bad_version() => self.refresh_leadership(tp).await?,
                Err(e) => return Err(e),
            }
        }
        Err(Error::Conflict(TopicPartitionStateZNode::path(tp)))
    }
}

/// What [`Controller::plan_election`] decided for one partition.
enum Planned {
    /// Nothing to write.
    Done(ElectionOutcome),
    Write(PlannedElection),
}

/// An election computed but not yet written: the new state, the znode version it replaces,
/// and who gets the LeaderAndIsr.
struct PlannedElection {
    tp: TopicPartition,
    next: LeaderIsrAndControllerEpoch,
    expected_version: i32,
    recipients: Vec<BrokerId>,
    assignment: crate::context::ReplicaAssignment,
}

#[cfg(test)]
mod tests {
    use super::PartitionState::*;

    #[test]
    fn transitions_follow_kafka_graph() {
        assert!(New.can_transition_from(NonExistent));
        assert!(!New.can_transition_from(Online));
        assert!(Online.can_transition_from(New));
        assert!(Online.can_transition_from(Offline));
        assert!(!Online.can_transition_from(NonExistent));
        assert!(NonExistent.can_transition_from(Offline));
        assert!(!NonExistent.can_transition_from(Online));
    }
}
