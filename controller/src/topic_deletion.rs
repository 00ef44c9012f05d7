//! Topic deletion (Kafka's `TopicDeletionManager`, spec §3.8).
//!
//! Trigger: a child `<t>` of `/admin/delete_topics`. Flow: partitions Offline → NonExistent
//! and UpdateMetadata with leader -2 to everyone; replicas Offline → DeletionStarted
//! (StopReplica delete=true, leader epoch -2); each successful StopReplica reply marks the
//! replica DeletionSuccessful; when all are, the topic znodes are deleted (fenced).
//! Deletion waits (ineligible) while a replica is offline or the topic is being reassigned.

use kafka_protocol::messages::StopReplicaResponse;
use samsa_common::types::{BrokerId, TopicPartition};
use samsa_common::zk::znodes::{
    config_type, ConfigEntityZNode, DeleteTopicsTopicZNode, DeleteTopicsZNode, TopicZNode,
};
use tracing::{info, warn};

use crate::error::Result;
use crate::event_loop::{Controller, WatchKey};
use crate::partition_state::PartitionState;
use crate::replica_state::ReplicaState;

impl Controller {
    /// Children of `/admin/delete_topics` changed.
    pub(crate) async fn on_topic_deletion_request(&mut self) -> Result<()> {
        let marked = self
            .children_watched(WatchKey::DeleteTopics, DeleteTopicsZNode::PATH)
            .await?;
        if marked.is_empty() {
            return Ok(());
        }
        if !self.cfg.delete_topic_enable {
            for t in &marked {
                info!(topic = %t, "delete.topic.enable=false; removing deletion marker");
                self.fenced_delete(&DeleteTopicsTopicZNode::path(t)).await?;
            }
            return Ok(());
        }
        let mut queued = Vec::new();
        for t in marked {
            if !self.ctx.all_topics.contains(&t) {
                self.fenced_delete(&DeleteTopicsTopicZNode::path(&t))
                    .await?;
                continue;
            }
            if self.ctx.topics_to_delete.insert(t.clone()) {
                queued.push(t);
            }
        }
        for t in &queued {
            info!(topic = %t, "topic queued for deletion");
            let reassigning = self
                .ctx
                .partitions_for_topic(t)
                .iter()
                .any(|tp| self.ctx.partitions_being_reassigned.contains(tp));
            if reassigning {
                self.ctx.topics_ineligible_for_deletion.insert(t.clone());
            }
        }
        self.resume_deletions().await
    }

    /// Kafka's `resumeDeletions`: finish, retry or start deletions that can make progress.
    pub(crate) async fn resume_deletions(&mut self) -> Result<()> {
        let topics: Vec<String> = self.ctx.topics_to_delete.iter().cloned().collect();
        let mut eligible = Vec::new();
        for t in topics {
            let replicas = self.topic_replicas(&t);
            let states: Vec<ReplicaState> = replicas
                .iter()
                .map(|(tp, r)| self.ctx.replica_state(tp, *r))
                .collect();
            if states
                .iter()
                .all(|s| *s == ReplicaState::DeletionSuccessful)
            {
                self.complete_delete_topic(&t).await?;
                continue;
            }
            let in_progress = states.contains(&ReplicaState::DeletionStarted);
            if !in_progress && states.contains(&ReplicaState::DeletionIneligible) {
                // Retry: ineligible replicas go back to Offline.
                let retry: Vec<(TopicPartition, BrokerId)> = replicas
                    .iter()
                    .filter(|(tp, r)| {
                        self.ctx.replica_state(tp, *r) == ReplicaState::DeletionIneligible
                    })
                    .cloned()
                    .collect();
                self.replicas_to_state(&retry, ReplicaState::Offline)
                    .await?;
                self.ctx.topics_ineligible_for_deletion.remove(&t);
            }
            if !in_progress && !self.ctx.topics_ineligible_for_deletion.contains(&t) {
                eligible.push(t);
            }
        }
        if !eligible.is_empty() {
            self.on_topic_deletion(&eligible).await?;
        }
        self.send_batch();
        Ok(())
    }

    fn topic_replicas(&self, topic: &str) -> Vec<(TopicPartition, BrokerId)> {
        self.ctx
            .partitions_for_topic(topic)
            .into_iter()
            .flat_map(|tp| {
                self.ctx
                    .replicas(&tp)
                    .into_iter()
                    .map(move |r| (tp.clone(), r))
            })
            .collect()
    }

    /// Kafka's `onTopicDeletion` + `startReplicaDeletion`.
    async fn on_topic_deletion(&mut self, topics: &[String]) -> Result<()> {
        let mut all_partitions = Vec::new();
        for t in topics {
            let parts = self.ctx.partitions_for_topic(t);
            for tp in &parts {
                let s = self.ctx.partition_state(tp);
                if s != PartitionState::NonExistent {
                    self.ctx
                        .partition_states
                        .insert(tp.clone(), PartitionState::NonExistent);
                }
            }
            all_partitions.extend(parts);
        }
        // Brokers drop the partitions from their metadata (leader -2 for deleting topics).
        let all = self.ctx.live_or_shutting_down_ids();
        self.batch
            .add_update_metadata(&self.ctx, &all, &all_partitions);
        self.send_batch();

        let mut alive = Vec::new();
        let mut dead = Vec::new();
        for t in topics {
            for (tp, r) in self.topic_replicas(t) {
                if self.ctx.replica_state(&tp, r) == ReplicaState::DeletionSuccessful {
                    continue;
                }
                if self.ctx.is_replica_online(r, &tp) {
                    alive.push((tp, r));
                } else {
                    dead.push((tp, r));
                }
            }
        }
        // Dead replicas: Offline first if needed so the Ineligible transition is valid.
        let dead_needing_offline: Vec<_> = dead
            .iter()
            .filter(|(tp, r)| {
                !ReplicaState::DeletionIneligible
                    .can_transition_from(self.ctx.replica_state(tp, *r))
            })
            .cloned()
            .collect();
        self.replicas_to_state(&dead_needing_offline, ReplicaState::Offline)
            .await?;
        self.replicas_to_state(&dead, ReplicaState::DeletionIneligible)
            .await?;
        self.replicas_to_state(&alive, ReplicaState::Offline)
            .await?;
        self.replicas_to_state(&alive, ReplicaState::DeletionStarted)
            .await?;
        for (tp, _) in &dead {
            self.ctx
                .topics_ineligible_for_deletion
                .insert(tp.topic.clone());
        }
        self.send_batch();
        Ok(())
    }

    /// Replicas of deleting topics that went offline: ineligible until their broker returns.
    pub(crate) async fn fail_replica_deletion(
        &mut self,
        replicas: &[(TopicPartition, BrokerId)],
    ) -> Result<()> {
        self.replicas_to_state(replicas, ReplicaState::DeletionIneligible)
            .await?;
        for (tp, _) in replicas {
            self.ctx
                .topics_ineligible_for_deletion
                .insert(tp.topic.clone());
        }
        Ok(())
    }

    /// StopReplica(delete=true) answered.
    pub(crate) async fn on_stop_replica_deletion_response(
        &mut self,
        broker: BrokerId,
        resp: StopReplicaResponse,
        deleted: Vec<TopicPartition>,
    ) -> Result<()> {
        let mut ok = Vec::new();
        let mut failed = Vec::new();
        for tp in deleted {
            if !self.ctx.is_topic_queued_for_deletion(&tp.topic) {
                continue;
            }
            let err = if resp.error_code != 0 {
                resp.error_code
            } else {
                resp.partition_errors
                    .iter()
                    .find(|p| {
                        p.topic_name.0.as_str() == tp.topic && p.partition_index == tp.partition
                    })
                    .map(|p| p.error_code)
                    .unwrap_or(0)
            };
            if err == 0 {
                ok.push((tp, broker));
            } else {
                warn!(partition = %tp, broker, code = err, "replica deletion failed");
                failed.push((tp, broker));
            }
        }
        self.replicas_to_state(&ok, ReplicaState::DeletionSuccessful)
            .await?;
        if !failed.is_empty() {
            self.fail_replica_deletion(&failed).await?;
        }
        self.resume_deletions().await
    }

    /// All replicas deleted: drop the topic's znodes (fenced) and forget it.
    async fn complete_delete_topic(&mut self, topic: &str) -> Result<()> {
        let replicas = self.topic_replicas(topic);
        self.replicas_to_state(&replicas, ReplicaState::NonExistent)
            .await?;
        self.fenced_delete_recursive(&TopicZNode::path(topic))
            .await?;
        self.fenced_delete(&ConfigEntityZNode::path(config_type::TOPIC, topic))
            .await?;
        self.fenced_delete(&DeleteTopicsTopicZNode::path(topic))
            .await?;
        self.ctx.remove_topic(topic);
        info!(topic, "topic deleted");
        Ok(())
    }
}
