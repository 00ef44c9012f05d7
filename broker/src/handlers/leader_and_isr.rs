//! LeaderAndIsr (API 4, v0-v7): the controller makes us leader or follower of
//! partitions (Kafka `ReplicaManager.becomeLeaderOrFollower`; the rules live in
//! `replica::manager`).

use std::collections::BTreeSet;
use std::sync::Arc;

use kafka_protocol::messages::{LeaderAndIsrRequest, LeaderAndIsrResponse, RequestHeader};
use samsa_common::types::TopicPartition;

use crate::broker::BrokerContext;
use crate::error::Result;
use crate::log::LogManager;

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    header: &RequestHeader,
    req: LeaderAndIsrRequest,
) -> Result<LeaderAndIsrResponse> {
    let rm = ctx.replicas()?.clone();
    // One controller epoch for all control requests (UpdateMetadata included).
    rm.observe_controller_epoch(ctx.metadata_cache.controller_epoch());
    let version = header.request_api_version;
    let broker_epoch = ctx.broker_epoch();
    // Logs about to be created get the topic's config as ZooKeeper has it now.
    if let (Some(lm), Some(zk)) = (ctx.log_manager(), ctx.zk()) {
        let topics = topics_without_local_log(lm, &req, version);
        crate::config_change::load_topic_configs(ctx, &zk, &topics).await;
    }
    // Log creation and truncation touch the disk: keep them off the reactor.
    let resp = tokio::task::spawn_blocking(move || {
        rm.become_leader_or_follower(&req, version, broker_epoch)
    })
    .await
    .map_err(|e| crate::error::Error::Internal(format!("LeaderAndIsr task failed: {e}")))?;
    Ok(resp)
}

/// Topics of the request with at least one partition that has no local log yet.
pub fn topics_without_local_log(
    lm: &LogManager,
    req: &LeaderAndIsrRequest,
    version: i16,
) -> Vec<String> {
    let mut parts: Vec<(String, i32)> = Vec::new();
    if version <= 1 {
        for ps in &req.ungrouped_partition_states {
            parts.push((ps.topic_name.to_string(), ps.partition_index));
        }
    } else {
        for t in &req.topic_states {
            for ps in &t.partition_states {
                parts.push((t.topic_name.to_string(), ps.partition_index));
            }
        }
    }
    let mut topics = BTreeSet::new();
    for (topic, partition) in parts {
        if !topics.contains(&topic)
            && lm
                .get_log(&TopicPartition::new(topic.clone(), partition))
                .is_none()
        {
            topics.insert(topic);
        }
    }
    topics.into_iter().collect()
}
