//! What the controller publishes for the broker's metrics endpoint: Kafka's
//! `kafka.controller:type=KafkaController` gauges and `type=ControllerStats` timers.
//!
//! The event loop owns the context, so it recomputes the gauges after every event it
//! processes (as Kafka's `KafkaController.updateMetrics` does) and stores them in
//! atomics that a scrape reads without asking the loop anything.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use samsa_common::histogram::Histogram;

use crate::context::ControllerContext;
use crate::partition_state::PartitionState;

/// Controller gauges and timers; all zero while this broker is not the active controller.
#[derive(Debug, Default)]
pub struct ControllerMetrics {
    /// `OfflinePartitionsCount`: partitions without a live leader.
    pub offline_partitions: AtomicI64,
    /// `PreferredReplicaImbalanceCount`: partitions whose leader is not the first replica.
    pub preferred_replica_imbalance: AtomicI64,
    /// `GlobalTopicCount`.
    pub global_topics: AtomicI64,
    /// `GlobalPartitionCount`.
    pub global_partitions: AtomicI64,
    /// `TopicsToDeleteCount`.
    pub topics_to_delete: AtomicI64,
    /// `ReplicasToDeleteCount`: replicas of topics queued for deletion.
    pub replicas_to_delete: AtomicI64,
    /// `TopicsIneligibleToDeleteCount`.
    pub topics_ineligible_to_delete: AtomicI64,
    /// `ActiveBrokerCount`: registered brokers not shutting down.
    pub active_brokers: AtomicI64,
    /// `ControllerStats:LeaderElectionRateAndTimeMs`: Kafka times its BrokerChange
    /// events under this name (the event that triggers elections for lost brokers).
    pub leader_election_time: Histogram,
    /// `ControllerStats:UncleanLeaderElectionsPerSec` (count).
    pub unclean_elections: AtomicU64,
}

impl ControllerMetrics {
    /// Recompute the gauges from the context (`active` false: everything reads 0).
    pub fn update(&self, active: bool, ctx: &ControllerContext) {
        let set = |a: &AtomicI64, v: usize| a.store(v as i64, Ordering::Relaxed);
        if !active {
            for a in [
                &self.offline_partitions,
                &self.preferred_replica_imbalance,
                &self.global_topics,
                &self.global_partitions,
                &self.topics_to_delete,
                &self.replicas_to_delete,
                &self.topics_ineligible_to_delete,
                &self.active_brokers,
            ] {
                a.store(0, Ordering::Relaxed);
            }
            return;
        }
        let mut partitions = 0usize;
        let mut replicas_to_delete = 0usize;
        for (topic, parts) in &ctx.assignments {
            if ctx.topics_to_delete.contains(topic) {
                replicas_to_delete += parts.values().map(|a| a.replicas.len()).sum::<usize>();
            } else {
                partitions += parts.len();
            }
        }
        // Partitions with a live leader in an online state; the rest are offline.
        let mut led = 0usize;
        let mut imbalance = 0usize;
        for (tp, l) in &ctx.leadership {
            if ctx.topics_to_delete.contains(&tp.topic) {
                continue;
            }
            let Some(a) = ctx.assignment(tp) else {
                continue;
            };
            let leader = l.leader_and_isr.leader;
            let online_state = ctx.partition_states.get(tp) != Some(&PartitionState::Offline);
            if leader >= 0 && ctx.is_broker_live(leader) && online_state {
                led += 1;
            }
            if a.replicas.first().is_some_and(|first| *first != leader) {
                imbalance += 1;
            }
        }
        let offline = partitions.saturating_sub(led);
        let partitions = partitions
            + ctx
                .topics_to_delete
                .iter()
                .map(|t| ctx.assignments.get(t).map_or(0, |p| p.len()))
                .sum::<usize>();
        set(&self.offline_partitions, offline);
        set(&self.preferred_replica_imbalance, imbalance);
        set(&self.global_topics, ctx.all_topics.len());
        set(&self.global_partitions, partitions);
        set(&self.topics_to_delete, ctx.topics_to_delete.len());
        set(&self.replicas_to_delete, replicas_to_delete);
        set(
            &self.topics_ineligible_to_delete,
            ctx.topics_ineligible_for_deletion.len(),
        );
        set(&self.active_brokers, ctx.live_broker_ids().len());
    }

    /// A BrokerChange event took `d`.
    pub fn broker_change_processed(&self, d: Duration) {
        self.leader_election_time.record(d);
    }

    pub fn unclean_election(&self) {
        self.unclean_elections.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::{LeaderAndIsr, LeaderIsrAndControllerEpoch, ReplicaAssignment};
    use samsa_common::types::TopicPartition;

    #[test]
    fn gauges_follow_the_context() {
        let mut ctx = ControllerContext::default();
        ctx.all_topics.insert("t".into());
        let tp0 = TopicPartition::new("t", 0);
        let tp1 = TopicPartition::new("t", 1);
        ctx.set_assignment(&tp0, ReplicaAssignment::new(vec![1, 2]));
        ctx.set_assignment(&tp1, ReplicaAssignment::new(vec![1, 2]));
        let lead = |leader| LeaderIsrAndControllerEpoch {
            leader_and_isr: LeaderAndIsr {
                leader,
                leader_epoch: 0,
                isr: vec![leader],
                leader_recovery_state: 0,
                partition_epoch: 0,
            },
            controller_epoch: 1,
        };
        ctx.leadership.insert(tp0.clone(), lead(1));
        ctx.leadership.insert(tp1.clone(), lead(2));
        ctx.partition_states
            .insert(tp0.clone(), PartitionState::Online);
        ctx.partition_states
            .insert(tp1.clone(), PartitionState::Online);
        // Only broker 2 is live: tp0's leader is gone, tp1 is led by its second replica.
        ctx.live_brokers.insert(
            2,
            crate::context::LiveBroker {
                info: samsa_common::zk::znodes::BrokerInfo {
                    id: 2,
                    version: 5,
                    endpoints: Vec::new(),
                    jmx_port: -1,
                    rack: None,
                    features: Default::default(),
                    timestamp: 0,
                },
                epoch: 1,
            },
        );
        let m = ControllerMetrics::default();
        m.update(true, &ctx);
        let get = |a: &AtomicI64| a.load(Ordering::Relaxed);
        assert_eq!(get(&m.global_topics), 1);
        assert_eq!(get(&m.global_partitions), 2);
        assert_eq!(get(&m.offline_partitions), 1);
        assert_eq!(get(&m.preferred_replica_imbalance), 1);
        assert_eq!(get(&m.active_brokers), 1);
        m.update(false, &ctx);
        assert_eq!(get(&m.global_partitions), 0);
    }
}
