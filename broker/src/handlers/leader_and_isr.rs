//! LeaderAndIsr (API 4, v0-v7): the controller makes us leader or follower of
//! partitions (Kafka `ReplicaManager.becomeLeaderOrFollower`; the rules live in
//! `replica::manager`).

use std::collections::BTreeSet;
use std::sync::Arc;

use kafka_protocol::messages::leader_and_isr_response::{
    LeaderAndIsrPartitionError, LeaderAndIsrTopicError,
};
use kafka_protocol::messages::{
    LeaderAndIsrRequest, LeaderAndIsrResponse, RequestHeader, TopicName,
};
use samsa_common::types::TopicPartition;

use crate::broker::BrokerContext;
use crate::connection::ConnInfo;
use crate::error::Result;
use crate::log::LogManager;
use crate::security::authorizer::{denied_error, enforce, Operation, ResourceType};

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    conn: &ConnInfo,
    header: &RequestHeader,
    req: LeaderAndIsrRequest,
) -> Result<LeaderAndIsrResponse> {
    let version = header.request_api_version;
    if !enforce::cluster(ctx, conn, Operation::ClusterAction) {
        return Ok(denied(&req, version));
    }
    let rm = ctx.replicas()?.clone();
    // One controller epoch for all control requests (UpdateMetadata included).
    rm.observe_controller_epoch(ctx.metadata_cache.controller_epoch());
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

/// Without CLUSTER_ACTION: every partition carries CLUSTER_AUTHORIZATION_FAILED, as Kafka's
/// `LeaderAndIsrRequest.getErrorResponse` builds it.
fn denied(req: &LeaderAndIsrRequest, version: i16) -> LeaderAndIsrResponse {
    let code = denied_error(ResourceType::Cluster).code();
    let mut resp = LeaderAndIsrResponse::default();
    resp.error_code = code;
    let error = |topic: TopicName, partition: i32| {
        let mut e = LeaderAndIsrPartitionError::default();
        e.topic_name = topic;
        e.partition_index = partition;
        e.error_code = code;
        e
    };
    if version < 5 {
        if version <= 1 {
            for ps in &req.ungrouped_partition_states {
                let e = error(ps.topic_name.clone(), ps.partition_index);
                resp.partition_errors.push(e);
            }
        } else {
            for t in &req.topic_states {
                for ps in &t.partition_states {
                    let e = error(t.topic_name.clone(), ps.partition_index);
                    resp.partition_errors.push(e);
                }
            }
        }
    } else {
        for t in &req.topic_states {
            let mut te = LeaderAndIsrTopicError::default();
            te.topic_id = t.topic_id;
            te.partition_errors = t
                .partition_states
                .iter()
                .map(|ps| error(TopicName::default(), ps.partition_index))
                .collect();
            resp.topics.push(te);
        }
    }
    resp
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
