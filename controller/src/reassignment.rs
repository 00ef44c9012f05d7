//! Partition reassignment (spec §3.9) and preferred-replica election (§3.7).

use samsa_common::types::{BrokerId, TopicPartition};
use samsa_common::zk::znodes::{
    PreferredReplicaElectionZNode, ReassignPartitionsZNode, TopicZNode,
};
use tracing::{info, warn};

use crate::context::ReplicaAssignment;
use crate::error::Result;
use crate::event_loop::{Controller, WatchKey};
use crate::leader_selection::ElectionStrategy;
use crate::partition_state::ElectionOutcome;
use crate::replica_state::ReplicaState;

impl Controller {
    /// `/admin/reassign_partitions` appeared or changed.
    pub(crate) async fn on_reassign_partitions_znode(&mut self) -> Result<()> {
        self.resume_reassignments_from_znode(false).await
    }

    /// Kafka's `processZkPartitionReassignment`: start every reassignment listed in
    /// `/admin/reassign_partitions` (re-arming its exists watch). An undecodable znode is
    /// ignored and left in place; partitions that cannot be reassigned are removed from it.
    pub(crate) async fn resume_reassignments_from_znode(&mut self, in_flight: bool) -> Result<()> {
        if in_flight {
            // Reassignments recorded only in topic znodes (in flight at failover).
            let parts: Vec<TopicPartition> = self
                .ctx
                .partitions_being_reassigned
                .iter()
                .cloned()
                .collect();
            for tp in parts {
                if let Some(a) = self.ctx.assignment(&tp).cloned() {
                    if a.is_being_reassigned() {
                        self.on_partition_reassignment(&tp, a).await?;
                    }
                }
            }
        }
        if self
            .exists_watched(WatchKey::ReassignPartitions, ReassignPartitionsZNode::PATH)
            .await?
            .is_none()
        {
            return Ok(());
        }
        let Some((d, _)) = self.zk.get(ReassignPartitionsZNode::PATH).await? else {
            return Ok(());
        };
        let requested = match ReassignPartitionsZNode::decode(&d) {
            Ok(z) => z.partitions,
            Err(e) => {
                warn!(error = %e, "invalid /admin/reassign_partitions ignored");
                return Ok(());
            }
        };
        let mut failed = Vec::new();
        for (tp, target) in requested {
            let Some(current) = self.ctx.assignment(&tp).cloned() else {
                warn!(partition = %tp, "reassignment of unknown partition");
                failed.push(tp);
                continue;
            };
            if self.ctx.is_topic_queued_for_deletion(&tp.topic) {
                warn!(partition = %tp, "reassignment of a topic being deleted");
                failed.push(tp);
                continue;
            }
            let reassignment = current.reassign_to(&target);
            self.on_partition_reassignment(&tp, reassignment).await?;
        }
        if !failed.is_empty() {
            self.remove_from_zk_reassignment(|tp, _| failed.contains(tp))
                .await?;
        }
        self.send_batch();
        Ok(())
    }

    /// Reassignments whose target includes a broker that just started.
    pub(crate) async fn resume_reassignments_for_brokers(
        &mut self,
        new: &[BrokerId],
    ) -> Result<()> {
        let parts: Vec<TopicPartition> = self
            .ctx
            .partitions_being_reassigned
            .iter()
            .filter(|tp| {
                self.ctx
                    .assignment(tp)
                    .is_some_and(|a| a.target_replicas().iter().any(|r| new.contains(r)))
            })
            .cloned()
            .collect();
        for tp in parts {
            if let Some(a) = self.ctx.assignment(&tp).cloned() {
                self.on_partition_reassignment(&tp, a).await?;
            }
        }
        self.send_batch();
        Ok(())
    }

    /// After an ISR change: complete the reassignment if the target is now in sync.
    pub(crate) async fn maybe_complete_reassignment(&mut self, tp: &TopicPartition) -> Result<()> {
        if !self.ctx.partitions_being_reassigned.contains(tp) {
            return Ok(());
        }
        if let Some(a) = self.ctx.assignment(tp).cloned() {
            if self.is_reassignment_complete(tp, &a) {
                self.on_partition_reassignment(tp, a).await?;
            }
        }
        Ok(())
    }

    fn is_reassignment_complete(&self, tp: &TopicPartition, a: &ReplicaAssignment) -> bool {
        if !a.is_being_reassigned() {
            return true;
        }
        self.ctx.leadership.get(tp).is_some_and(|l| {
            a.target_replicas()
                .iter()
                .all(|r| l.leader_and_isr.isr.contains(r))
        })
    }

    /// Kafka's `onPartitionReassignment` (spec §3.9 steps U, A, B).
    pub(crate) async fn on_partition_reassignment(
        &mut self,
        tp: &TopicPartition,
        reassignment: ReplicaAssignment,
    ) -> Result<()> {
        self.ctx
            .topics_ineligible_for_deletion
            .insert(tp.topic.clone());
        // U: record RS', AR, RR in ZooKeeper and memory.
        let current = self.ctx.assignment(tp).cloned().unwrap_or_default();
        if current != reassignment {
            self.write_topic_assignment(tp, &reassignment).await?;
            self.ctx.set_assignment(tp, reassignment.clone());
            let unneeded: Vec<BrokerId> = current
                .replicas
                .iter()
                .copied()
                .filter(|r| !reassignment.replicas.contains(r))
                .collect();
            if !unneeded.is_empty() {
                self.stop_removed_replicas(tp, &unneeded).await?;
            }
        }
        if reassignment.is_being_reassigned() {
            self.ctx.partitions_being_reassigned.insert(tp.clone());
        }
        if !self.is_reassignment_complete(tp, &reassignment) {
            // A: bump the leader epoch so every replica (old and new) learns RS/AR/RR.
            info!(partition = %tp, replicas = ?reassignment.replicas, adding = ?reassignment.adding,
                  removing = ?reassignment.removing, "reassignment started");
            self.bump_leader_epoch_and_send(tp, &reassignment).await?;
            let adding: Vec<(TopicPartition, BrokerId)> = reassignment
                .adding
                .iter()
                .map(|r| (tp.clone(), *r))
                .collect();
            self.replicas_to_state(&adding, ReplicaState::New).await?;
        } else {
            // B: target in sync — switch to TRS.
            let adding: Vec<(TopicPartition, BrokerId)> = reassignment
                .adding
                .iter()
                .map(|r| (tp.clone(), *r))
                .collect();
            self.replicas_to_state(&adding, ReplicaState::Online)
                .await?;
            let completed = ReplicaAssignment::new(reassignment.target_replicas());
            self.ctx.set_assignment(tp, completed.clone());
            self.move_leader_if_required(tp, &completed).await?;
            self.stop_removed_replicas(tp, &reassignment.removing)
                .await?;
            self.write_topic_assignment(tp, &completed).await?;
            let target = completed.replicas.clone();
            self.remove_from_zk_reassignment(|p, r| p == tp && r == target.as_slice())
                .await?;
            let all = self.ctx.live_or_shutting_down_ids();
            self.batch
                .add_update_metadata(&self.ctx, &all, std::slice::from_ref(tp));
            info!(partition = %tp, replicas = ?completed.replicas, "reassignment completed");
            let still = self
                .ctx
                .partitions_for_topic(&tp.topic)
                .iter()
                .any(|p| self.ctx.partitions_being_reassigned.contains(p));
            if !still {
                self.ctx.topics_ineligible_for_deletion.remove(&tp.topic);
                if self.ctx.is_topic_queued_for_deletion(&tp.topic) {
                    self.send_batch();
                    self.resume_deletions().await?;
                }
            }
        }
        self.send_batch();
        Ok(())
    }

    /// Write the topic znode with `tp`'s new assignment (fenced, any version).
    async fn write_topic_assignment(
        &mut self,
        tp: &TopicPartition,
        a: &ReplicaAssignment,
    ) -> Result<()> {
        let mut z = TopicZNode::new(
            self.ctx.topic_ids.get(&tp.topic).copied(),
            Default::default(),
        );
        for p in self.ctx.partitions_for_topic(&tp.topic) {
            let pa = if &p == tp {
                a.clone()
            } else {
                self.ctx.assignment(&p).cloned().unwrap_or_default()
            };
            z.partitions.insert(p.partition, pa.replicas.clone());
            if !pa.adding.is_empty() {
                z.adding_replicas.insert(p.partition, pa.adding.clone());
            }
            if !pa.removing.is_empty() {
                z.removing_replicas.insert(p.partition, pa.removing.clone());
            }
        }
        z.partitions.insert(tp.partition, a.replicas.clone());
        self.fenced_set(&TopicZNode::path(&tp.topic), z.encode(), None)
            .await?;
        Ok(())
    }

    /// Bump the leader epoch (same leader and ISR) and send LeaderAndIsr to all of RS.
    async fn bump_leader_epoch_and_send(
        &mut self,
        tp: &TopicPartition,
        a: &ReplicaAssignment,
    ) -> Result<()> {
        let updated = self
            .update_leadership(tp, |cur| {
                Some(cur.new_leader_and_isr(cur.leader, cur.isr.clone()))
            })
            .await?;
        if let Some(l) = updated {
            self.batch
                .add_leader_and_isr(&self.ctx, &a.replicas, tp, &l, a, false);
        }
        Ok(())
    }

    /// Kafka's `moveReassignedPartitionLeaderIfRequired`.
    async fn move_leader_if_required(
        &mut self,
        tp: &TopicPartition,
        a: &ReplicaAssignment,
    ) -> Result<()> {
        let leader = self
            .ctx
            .leadership
            .get(tp)
            .map(|l| l.leader_and_isr.leader)
            .unwrap_or(-1);
        if a.replicas.contains(&leader) && self.ctx.is_replica_online(leader, tp) {
            self.bump_leader_epoch_and_send(tp, a).await
        } else {
            self.partitions_to_online(std::slice::from_ref(tp), ElectionStrategy::Reassign)
                .await?;
            Ok(())
        }
    }

    /// Kafka's `stopRemovedReplicasOfReassignedPartition`.
    async fn stop_removed_replicas(
        &mut self,
        tp: &TopicPartition,
        removed: &[BrokerId],
    ) -> Result<()> {
        let replicas: Vec<(TopicPartition, BrokerId)> =
            removed.iter().map(|r| (tp.clone(), *r)).collect();
        self.replicas_to_state(&replicas, ReplicaState::Offline)
            .await?;
        self.replicas_to_state(&replicas, ReplicaState::DeletionStarted)
            .await?;
        self.replicas_to_state(&replicas, ReplicaState::DeletionSuccessful)
            .await?;
        self.replicas_to_state(&replicas, ReplicaState::NonExistent)
            .await?;
        Ok(())
    }

    /// Remove matching entries from `/admin/reassign_partitions`; delete it when empty.
    async fn remove_from_zk_reassignment<F>(&mut self, mut remove: F) -> Result<()>
    where
        F: FnMut(&TopicPartition, &[BrokerId]) -> bool,
    {
        let Some((d, _)) = self.zk.get(ReassignPartitionsZNode::PATH).await? else {
            return Ok(());
        };
        let Ok(z) = ReassignPartitionsZNode::decode(&d) else {
            return Ok(());
        };
        let before = z.partitions.len();
        let kept: Vec<(TopicPartition, Vec<BrokerId>)> = z
            .partitions
            .into_iter()
            .filter(|(tp, r)| !remove(tp, r))
            .collect();
        if kept.is_empty() {
            self.fenced_delete(ReassignPartitionsZNode::PATH).await?;
            // Re-arm the exists watch for the next request.
            self.exists_watched(WatchKey::ReassignPartitions, ReassignPartitionsZNode::PATH)
                .await?;
        } else if kept.len() != before {
            let z = ReassignPartitionsZNode { partitions: kept };
            self.fenced_set(ReassignPartitionsZNode::PATH, z.encode(), None)
                .await?;
        }
        Ok(())
    }

    /// `/admin/preferred_replica_election`: elect the preferred leader of each listed
    /// partition, then delete the znode (fenced).
    pub(crate) async fn on_preferred_replica_election_znode(&mut self) -> Result<()> {
        if self
            .exists_watched(
                WatchKey::PreferredReplicaElection,
                PreferredReplicaElectionZNode::PATH,
            )
            .await?
            .is_none()
        {
            return Ok(());
        }
        let Some((d, _)) = self.zk.get(PreferredReplicaElectionZNode::PATH).await? else {
            return Ok(());
        };
        let partitions = match PreferredReplicaElectionZNode::decode(&d) {
            Ok(z) => z.partitions,
            Err(e) => {
                warn!(error = %e, "invalid /admin/preferred_replica_election");
                Vec::new()
            }
        };
        let eligible: Vec<TopicPartition> = partitions
            .into_iter()
            .filter(|tp| {
                self.ctx.assignment(tp).is_some()
                    && !self.ctx.is_topic_queued_for_deletion(&tp.topic)
                    && self.ctx.leadership.get(tp).is_some_and(|l| {
                        self.ctx.replicas(tp).first() != Some(&l.leader_and_isr.leader)
                    })
            })
            .collect();
        self.partitions_to_online(&eligible, ElectionStrategy::Preferred)
            .await?;
        self.send_batch();
        self.fenced_delete(PreferredReplicaElectionZNode::PATH)
            .await?;
        // Re-arm the exists watch for the next request.
        self.exists_watched(
            WatchKey::PreferredReplicaElection,
            PreferredReplicaElectionZNode::PATH,
        )
        .await?;
        Ok(())
    }

    /// Auto leader rebalance (spec §3.7): per preferred broker, if the share of its
    /// partitions led by someone else exceeds `leader.imbalance.per.broker.percentage`, run
    /// preferred elections for those whose preferred replica is live and in ISR.
    pub(crate) async fn check_preferred_leaders(&mut self, _auto: bool) -> Result<()> {
        let mut by_preferred: std::collections::BTreeMap<BrokerId, (usize, Vec<TopicPartition>)> =
            Default::default();
        for tp in self.ctx.all_partitions() {
            if self.ctx.is_topic_queued_for_deletion(&tp.topic)
                || self.ctx.partitions_being_reassigned.contains(&tp)
            {
                continue;
            }
            let Some(&preferred) = self.ctx.replicas(&tp).first() else {
                continue;
            };
            let entry = by_preferred.entry(preferred).or_default();
            entry.0 += 1;
            if let Some(l) = self.ctx.leadership.get(&tp) {
                if l.leader_and_isr.leader != preferred {
                    entry.1.push(tp.clone());
                }
            }
        }
        let pct = self.cfg.leader_imbalance_per_broker_percentage as f64 / 100.0;
        let mut to_elect = Vec::new();
        for (broker, (total, imbalanced)) in by_preferred {
            if total == 0 || !self.ctx.is_broker_live(broker) {
                continue;
            }
            let ratio = imbalanced.len() as f64 / total as f64;
            if ratio > pct {
                for tp in imbalanced {
                    let in_isr = self
                        .ctx
                        .leadership
                        .get(&tp)
                        .is_some_and(|l| l.leader_and_isr.isr.contains(&broker));
                    if in_isr && self.ctx.is_replica_online(broker, &tp) {
                        to_elect.push(tp);
                    }
                }
            }
        }
        if !to_elect.is_empty() {
            info!(count = to_elect.len(), "auto leader rebalance");
            let results = self
                .partitions_to_online(&to_elect, ElectionStrategy::Preferred)
                .await?;
            let failed = results
                .iter()
                .filter(|(_, o)| *o != ElectionOutcome::Elected)
                .count();
            if failed > 0 {
                warn!(failed, "some preferred elections failed");
            }
            self.send_batch();
        }
        Ok(())
    }
}

const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const INVALID_TOPIC_EXCEPTION: i16 = 17;
const INVALID_REPLICA_ASSIGNMENT: i16 = 39;
const NOT_CONTROLLER: i16 = 41;
const PREFERRED_LEADER_NOT_AVAILABLE: i16 = 80;
const ELIGIBLE_LEADERS_NOT_AVAILABLE: i16 = 83;
const ELECTION_NOT_NEEDED: i16 = 84;
const NO_REASSIGNMENT_IN_PROGRESS: i16 = 85;

type PartitionErrors = Vec<(TopicPartition, i16, Option<String>)>;

impl Controller {
    /// Admin ElectLeaders (Kafka's `processReplicaLeaderElection`).
    pub(crate) async fn on_elect_leaders(
        &mut self,
        partitions: Option<Vec<TopicPartition>>,
        unclean: bool,
    ) -> (crate::ElectLeadersResult, Result<()>) {
        if !self.active {
            return (Err(NOT_CONTROLLER), Ok(()));
        }
        let partitions = partitions.unwrap_or_else(|| self.ctx.all_partitions());
        let mut out = Vec::new();
        let mut electable = Vec::new();
        for tp in partitions {
            if self.ctx.assignment(&tp).is_none() {
                out.push((
                    tp,
                    UNKNOWN_TOPIC_OR_PARTITION,
                    Some("The partition does not exist.".into()),
                ));
                continue;
            }
            if self.ctx.is_topic_queued_for_deletion(&tp.topic) {
                let msg = format!("Deletion of topic {} is in progress", tp.topic);
                out.push((tp, INVALID_TOPIC_EXCEPTION, Some(msg)));
                continue;
            }
            let leader = self
                .ctx
                .leadership
                .get(&tp)
                .map(|l| l.leader_and_isr.leader);
            let needed = if unclean {
                !leader.is_some_and(|l| self.ctx.is_replica_online(l, &tp))
            } else {
                leader != self.ctx.replicas(&tp).first().copied()
            };
            if needed {
                electable.push(tp);
            } else {
                out.push((
                    tp,
                    ELECTION_NOT_NEEDED,
                    Some("Leader election not needed for topic partition.".into()),
                ));
            }
        }
        let strategy = if unclean {
            ElectionStrategy::Offline {
                allow_unclean: true,
            }
        } else {
            ElectionStrategy::Preferred
        };
        let result = match self.partitions_to_online(&electable, strategy).await {
            Ok(results) => {
                for (tp, outcome) in results {
                    if outcome == ElectionOutcome::Elected {
                        out.push((tp, 0, None));
                    } else if unclean {
                        out.push((
                            tp,
                            ELIGIBLE_LEADERS_NOT_AVAILABLE,
                            Some("No eligible leader".into()),
                        ));
                    } else {
                        out.push((
                            tp,
                            PREFERRED_LEADER_NOT_AVAILABLE,
                            Some("Preferred leader not available".into()),
                        ));
                    }
                }
                Ok(())
            }
            Err(e) => {
                let code = if e.is_controller_moved() {
                    NOT_CONTROLLER
                } else {
                    -1
                };
                self.batch = crate::broker_channel::RequestBatch::new();
                return (Err(code), Err(e));
            }
        };
        self.send_batch();
        // Elected partitions carry their new leader: the handling broker answers once its
        // metadata cache shows it (Kafka's DelayedElectLeader).
        let out = out
            .into_iter()
            .map(|(tp, error_code, message)| {
                let leader = (error_code == 0)
                    .then(|| self.ctx.leadership.get(&tp))
                    .flatten()
                    .map(|l| l.leader_and_isr.leader);
                crate::ElectionResult {
                    partition: tp,
                    error_code,
                    message,
                    leader,
                }
            })
            .collect();
        (Ok(out), result)
    }

    /// Admin AlterPartitionReassignments (Kafka's `processApiPartitionReassignment`).
    pub(crate) async fn on_alter_partition_reassignments(
        &mut self,
        reassignments: Vec<(TopicPartition, Option<Vec<BrokerId>>)>,
    ) -> (std::result::Result<PartitionErrors, i16>, Result<()>) {
        if !self.active {
            return (Err(NOT_CONTROLLER), Ok(()));
        }
        let mut out = Vec::new();
        let mut to_start = Vec::new();
        for (tp, target) in reassignments {
            if let Some(t) = &target {
                if let Some(msg) = self.validate_replicas(t) {
                    out.push((tp, INVALID_REPLICA_ASSIGNMENT, Some(msg)));
                    continue;
                }
            }
            let current = self.ctx.assignment(&tp).cloned().unwrap_or_default();
            let built = if current.is_being_reassigned() {
                let t = target.unwrap_or_else(|| current.original_replicas());
                Some(current.reassign_to(&t))
            } else {
                target.map(|t| current.reassign_to(&t))
            };
            match built {
                Some(r) => to_start.push((tp, r)),
                None => out.push((tp, NO_REASSIGNMENT_IN_PROGRESS, None)),
            }
        }
        let starting: Vec<TopicPartition> = to_start.iter().map(|(tp, _)| tp.clone()).collect();
        let mut result = self
            .remove_from_zk_reassignment(|tp, _| starting.contains(tp))
            .await;
        for (tp, r) in to_start {
            if result.is_err() {
                out.push((tp, -1, None));
                continue;
            }
            if self.ctx.is_topic_queued_for_deletion(&tp.topic)
                || self.ctx.assignment(&tp).is_none()
            {
                out.push((
                    tp,
                    UNKNOWN_TOPIC_OR_PARTITION,
                    Some("The partition does not exist.".into()),
                ));
                continue;
            }
            match self.on_partition_reassignment(&tp, r).await {
                Ok(()) => out.push((tp, 0, None)),
                Err(e) => {
                    out.push((
                        tp,
                        if e.is_controller_moved() {
                            NOT_CONTROLLER
                        } else {
                            -1
                        },
                        None,
                    ));
                    result = Err(e);
                }
            }
        }
        self.send_batch();
        (Ok(out), result)
    }

    fn validate_replicas(&self, replicas: &[BrokerId]) -> Option<String> {
        let set: std::collections::BTreeSet<BrokerId> = replicas.iter().copied().collect();
        if replicas.is_empty() {
            Some("Empty replica list specified in partition reassignment.".into())
        } else if set.len() != replicas.len() {
            Some(format!(
                "Duplicate replica ids in partition reassignment replica list: {replicas:?}"
            ))
        } else if replicas.iter().any(|r| *r < 0) {
            Some(format!("Invalid broker id in replica list: {replicas:?}"))
        } else {
            let missing: Vec<BrokerId> = set
                .into_iter()
                .filter(|r| !self.ctx.is_broker_live(*r))
                .collect();
            if missing.is_empty() {
                None
            } else {
                Some(format!(
                    "Some of the replicas are not available: {missing:?}"
                ))
            }
        }
    }

    /// Admin ListPartitionReassignments.
    pub(crate) fn on_list_partition_reassignments(
        &self,
        partitions: Option<Vec<TopicPartition>>,
    ) -> crate::ListReassignmentsResult {
        if !self.active {
            return Err(NOT_CONTROLLER);
        }
        let candidates: Vec<TopicPartition> = match partitions {
            Some(p) => p,
            None => self
                .ctx
                .partitions_being_reassigned
                .iter()
                .cloned()
                .collect(),
        };
        Ok(candidates
            .into_iter()
            .filter_map(|tp| {
                let a = self.ctx.assignment(&tp)?;
                a.is_being_reassigned().then(|| {
                    (
                        tp.clone(),
                        a.replicas.clone(),
                        a.adding.clone(),
                        a.removing.clone(),
                    )
                })
            })
            .collect())
    }
}
