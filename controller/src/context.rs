//! The controller's view of the cluster (Kafka's `ControllerContext`).
//!
//! Owned by the single event-loop task; nothing here is shared or locked. Rebuilt from
//! ZooKeeper on every failover and dropped on resignation.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use samsa_common::types::{BrokerEpoch, BrokerId, ControllerEpoch, LeaderEpoch, TopicPartition};
use samsa_common::zk::znodes::{BrokerInfo, TopicPartitionStateZNode};
use uuid::Uuid;

use crate::partition_state::PartitionState;
use crate::replica_state::ReplicaState;

/// Leader, ISR and epochs of one partition, as stored in its `state` znode plus the znode's
/// zkVersion (the partition epoch).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderAndIsr {
    pub leader: BrokerId,
    pub leader_epoch: LeaderEpoch,
    pub isr: Vec<BrokerId>,
    /// 0 = RECOVERED, 1 = RECOVERING (after an unclean election).
    pub leader_recovery_state: i8,
    /// zkVersion of the `state` znode.
    pub partition_epoch: i32,
}

/// `NoLeader` in Kafka's `LeaderAndIsr`.
pub const NO_LEADER: BrokerId = -1;
/// Leader value that tells brokers to drop a partition being deleted from their caches.
pub const LEADER_DURING_DELETE: BrokerId = -2;
/// StopReplica leader epoch for partitions of topics being deleted.
pub const EPOCH_DURING_DELETE: LeaderEpoch = -2;

impl LeaderAndIsr {
    /// The successor with a new leader and ISR and a bumped leader epoch (an election).
    pub fn new_leader_and_isr(&self, leader: BrokerId, isr: Vec<BrokerId>) -> Self {
        Self {
            leader,
            // The epoch comes from a state znode any tool may have written: wrap as Kafka's
            // Java int does rather than panic at i32::MAX.
            leader_epoch: self.leader_epoch.wrapping_add(1),
            isr,
            leader_recovery_state: self.leader_recovery_state,
            partition_epoch: self.partition_epoch,
        }
    }
}

/// `LeaderIsrAndControllerEpoch`: leadership plus the epoch of the controller that set it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderIsrAndControllerEpoch {
    pub leader_and_isr: LeaderAndIsr,
    pub controller_epoch: ControllerEpoch,
}

impl LeaderIsrAndControllerEpoch {
    pub fn from_znode(z: &TopicPartitionStateZNode, zk_version: i32) -> Self {
        Self {
            leader_and_isr: LeaderAndIsr {
                leader: z.leader,
                leader_epoch: z.leader_epoch,
                isr: z.isr.clone(),
                leader_recovery_state: z.leader_recovery_state,
                partition_epoch: zk_version,
            },
            controller_epoch: z.controller_epoch,
        }
    }

    pub fn to_znode(&self) -> TopicPartitionStateZNode {
        let l = &self.leader_and_isr;
        TopicPartitionStateZNode {
            leader: l.leader,
            leader_epoch: l.leader_epoch,
            isr: l.isr.clone(),
            leader_recovery_state: l.leader_recovery_state,
            controller_epoch: self.controller_epoch,
        }
    }
}

/// The replica assignment of one partition, including an in-flight reassignment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplicaAssignment {
    /// Full replica set RS (head = preferred leader).
    pub replicas: Vec<BrokerId>,
    pub adding: Vec<BrokerId>,
    pub removing: Vec<BrokerId>,
}

impl ReplicaAssignment {
    pub fn new(replicas: Vec<BrokerId>) -> Self {
        Self {
            replicas,
            ..Default::default()
        }
    }

    pub fn is_being_reassigned(&self) -> bool {
        !self.adding.is_empty() || !self.removing.is_empty()
    }

    /// Target replicas TRS = RS − RR.
    pub fn target_replicas(&self) -> Vec<BrokerId> {
        self.replicas
            .iter()
            .copied()
            .filter(|r| !self.removing.contains(r))
            .collect()
    }

    /// Original replicas ORS = RS − AR.
    pub fn original_replicas(&self) -> Vec<BrokerId> {
        self.replicas
            .iter()
            .copied()
            .filter(|r| !self.adding.contains(r))
            .collect()
    }

    /// Kafka's `ReplicaAssignment.reassignTo`: RS' = distinct(TRS ++ ORS).
    pub fn reassign_to(&self, target: &[BrokerId]) -> Self {
        let original = self.original_replicas();
        let mut replicas: Vec<BrokerId> = Vec::new();
        for r in target.iter().chain(original.iter()) {
            if !replicas.contains(r) {
                replicas.push(*r);
            }
        }
        let adding = replicas
            .iter()
            .copied()
            .filter(|r| !original.contains(r))
            .collect();
        let removing = replicas
            .iter()
            .copied()
            .filter(|r| !target.contains(r))
            .collect();
        Self {
            replicas,
            adding,
            removing,
        }
    }
}

/// A registered broker: its registration and epoch (czxid of `/brokers/ids/<id>`).
#[derive(Clone, Debug)]
pub struct LiveBroker {
    pub info: BrokerInfo,
    pub epoch: BrokerEpoch,
}

/// Everything the active controller knows.
#[derive(Debug, Default)]
pub struct ControllerContext {
    pub epoch: ControllerEpoch,
    /// zkVersion of `/controller_epoch` after our election; every write is fenced on it.
    pub epoch_zk_version: i32,
    pub live_brokers: BTreeMap<BrokerId, LiveBroker>,
    /// Brokers in controlled shutdown: still registered but no longer "online".
    pub shutting_down: BTreeSet<BrokerId>,
    pub all_topics: BTreeSet<String>,
    pub topic_ids: HashMap<String, Uuid>,
    pub assignments: BTreeMap<String, BTreeMap<i32, ReplicaAssignment>>,
    pub leadership: HashMap<TopicPartition, LeaderIsrAndControllerEpoch>,
    pub partition_states: HashMap<TopicPartition, PartitionState>,
    pub replica_states: HashMap<(TopicPartition, BrokerId), ReplicaState>,
    /// Replicas on a failed log dir of a broker (from LeaderAndIsr KAFKA_STORAGE_ERROR replies).
    pub replicas_on_offline_dirs: HashMap<BrokerId, HashSet<TopicPartition>>,
    pub topics_to_delete: BTreeSet<String>,
    pub topics_ineligible_for_deletion: BTreeSet<String>,
    pub partitions_being_reassigned: BTreeSet<TopicPartition>,
}

impl ControllerContext {
    /// Registered and not shutting down.
    pub fn is_broker_live(&self, id: BrokerId) -> bool {
        self.live_brokers.contains_key(&id) && !self.shutting_down.contains(&id)
    }

    pub fn is_live_or_shutting_down(&self, id: BrokerId) -> bool {
        self.live_brokers.contains_key(&id)
    }

    /// Kafka's `isReplicaOnline`: live broker, partition not on a failed log dir.
    pub fn is_replica_online(&self, broker: BrokerId, tp: &TopicPartition) -> bool {
        self.is_broker_live(broker)
            && !self
                .replicas_on_offline_dirs
                .get(&broker)
                .is_some_and(|s| s.contains(tp))
    }

    pub fn live_broker_ids(&self) -> Vec<BrokerId> {
        self.live_brokers
            .keys()
            .copied()
            .filter(|b| !self.shutting_down.contains(b))
            .collect()
    }

    pub fn live_or_shutting_down_ids(&self) -> Vec<BrokerId> {
        self.live_brokers.keys().copied().collect()
    }

    pub fn broker_epoch(&self, id: BrokerId) -> Option<BrokerEpoch> {
        self.live_brokers.get(&id).map(|b| b.epoch)
    }

    pub fn assignment(&self, tp: &TopicPartition) -> Option<&ReplicaAssignment> {
        self.assignments.get(&tp.topic)?.get(&tp.partition)
    }

    /// Full replica list of a partition (empty if unknown).
    pub fn replicas(&self, tp: &TopicPartition) -> Vec<BrokerId> {
        self.assignment(tp)
            .map(|a| a.replicas.clone())
            .unwrap_or_default()
    }

    pub fn set_assignment(&mut self, tp: &TopicPartition, a: ReplicaAssignment) {
        if a.is_being_reassigned() {
            self.partitions_being_reassigned.insert(tp.clone());
        } else {
            self.partitions_being_reassigned.remove(tp);
        }
        self.assignments
            .entry(tp.topic.clone())
            .or_default()
            .insert(tp.partition, a);
    }

    pub fn partitions_for_topic(&self, topic: &str) -> Vec<TopicPartition> {
        self.assignments
            .get(topic)
            .map(|m| m.keys().map(|p| TopicPartition::new(topic, *p)).collect())
            .unwrap_or_default()
    }

    pub fn all_partitions(&self) -> Vec<TopicPartition> {
        self.assignments
            .iter()
            .flat_map(|(t, m)| m.keys().map(move |p| TopicPartition::new(t.clone(), *p)))
            .collect()
    }

    /// Partitions with a replica on `broker`.
    pub fn partitions_on_broker(&self, broker: BrokerId) -> Vec<TopicPartition> {
        self.assignments
            .iter()
            .flat_map(|(t, m)| {
                m.iter()
                    .filter(move |(_, a)| a.replicas.contains(&broker))
                    .map(move |(p, _)| TopicPartition::new(t.clone(), *p))
            })
            .collect()
    }

    /// Partitions whose current leader is `broker`.
    pub fn partitions_led_by(&self, broker: BrokerId) -> Vec<TopicPartition> {
        let mut v: Vec<_> = self
            .leadership
            .iter()
            .filter(|(_, l)| l.leader_and_isr.leader == broker)
            .map(|(tp, _)| tp.clone())
            .collect();
        v.sort();
        v
    }

    pub fn is_topic_queued_for_deletion(&self, topic: &str) -> bool {
        self.topics_to_delete.contains(topic)
    }

    /// Replicas of a partition that are not online (for UpdateMetadata `OfflineReplicas`).
    pub fn offline_replicas(&self, tp: &TopicPartition) -> Vec<BrokerId> {
        self.replicas(tp)
            .into_iter()
            .filter(|r| !self.is_replica_online(*r, tp))
            .collect()
    }

    pub fn partition_state(&self, tp: &TopicPartition) -> PartitionState {
        self.partition_states
            .get(tp)
            .copied()
            .unwrap_or(PartitionState::NonExistent)
    }

    pub fn replica_state(&self, tp: &TopicPartition, broker: BrokerId) -> ReplicaState {
        self.replica_states
            .get(&(tp.clone(), broker))
            .copied()
            .unwrap_or(ReplicaState::NonExistent)
    }

    /// Drop a topic entirely (after deletion or when its znode vanished).
    pub fn remove_topic(&mut self, topic: &str) {
        self.all_topics.remove(topic);
        self.topic_ids.remove(topic);
        self.assignments.remove(topic);
        self.leadership.retain(|tp, _| tp.topic != topic);
        self.partition_states.retain(|tp, _| tp.topic != topic);
        self.replica_states.retain(|(tp, _), _| tp.topic != topic);
        self.partitions_being_reassigned
            .retain(|tp| tp.topic != topic);
        self.topics_to_delete.remove(topic);
        self.topics_ineligible_for_deletion.remove(topic);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A state znode written with leader epoch i32::MAX: the next election wraps (Kafka's
    /// Java int) instead of panicking inside the controller's event loop.
    #[test]
    fn leader_epoch_bump_wraps_at_i32_max() {
        let l = LeaderAndIsr {
            leader: 1,
            leader_epoch: i32::MAX,
            isr: vec![1],
            leader_recovery_state: 0,
            partition_epoch: 0,
        };
        assert_eq!(l.new_leader_and_isr(2, vec![2]).leader_epoch, i32::MIN);
    }

    #[test]
    fn reassign_to_matches_kafka_example() {
        // Spec case 34: RS [1,2] → target [2,3] gives RS [2,3,1], AR [3], RR [1].
        let a = ReplicaAssignment::new(vec![1, 2]).reassign_to(&[2, 3]);
        assert_eq!(a.replicas, vec![2, 3, 1]);
        assert_eq!(a.adding, vec![3]);
        assert_eq!(a.removing, vec![1]);
        assert_eq!(a.target_replicas(), vec![2, 3]);
        assert_eq!(a.original_replicas(), vec![2, 1]);
        // Reassigning again from the in-flight state starts from ORS, not RS.
        let b = a.reassign_to(&[4]);
        assert_eq!(b.replicas, vec![4, 2, 1]);
        assert_eq!(b.adding, vec![4]);
        assert_eq!(b.removing, vec![2, 1]);
    }

    #[test]
    fn liveness_excludes_shutting_down_and_offline_dirs() {
        let mut ctx = ControllerContext::default();
        let info = BrokerInfo::new(1, vec![], None, -1);
        ctx.live_brokers.insert(1, LiveBroker { info, epoch: 10 });
        let tp = TopicPartition::new("t", 0);
        assert!(ctx.is_replica_online(1, &tp));
        ctx.replicas_on_offline_dirs
            .entry(1)
            .or_default()
            .insert(tp.clone());
        assert!(!ctx.is_replica_online(1, &tp));
        assert!(ctx.is_broker_live(1));
        ctx.shutting_down.insert(1);
        assert!(!ctx.is_broker_live(1));
        assert!(ctx.is_live_or_shutting_down(1));
        assert!(ctx.live_broker_ids().is_empty());
    }
}
