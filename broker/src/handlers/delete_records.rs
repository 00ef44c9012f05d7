//! DeleteRecords (API 21, v0-v2): raise log start offsets on leaders.

// kafka-protocol messages are non_exhaustive: built from Default, then filled in.
#![allow(clippy::field_reassign_with_default)]

use std::sync::Arc;

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse, RequestHeader};
use samsa_common::types::TopicPartition;

use crate::broker::BrokerContext;
use crate::connection::ConnInfo;
use crate::error::Result;
use crate::replica::partition::codes;
use crate::security::authorizer::{denied_error, enforce, Operation, ResourceType};

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    conn: &ConnInfo,
    _header: &RequestHeader,
    req: DeleteRecordsRequest,
) -> Result<DeleteRecordsResponse> {
    let rm = ctx.replicas()?.clone();
    let meta = ctx.metadata_cache.snapshot();
    // DELETE on each topic, checked before the topic's existence.
    let deletable = enforce::filter(
        ctx,
        conn,
        Operation::Delete,
        ResourceType::Topic,
        req.topics.iter().map(|t| t.name.0.as_str()),
    );
    // Partitions are handled concurrently; each waits for its followers.
    let mut tasks = Vec::new();
    for t in &req.topics {
        let authorized = deletable.contains(t.name.0.as_str());
        for p in &t.partitions {
            let tp = TopicPartition::new(t.name.to_string(), p.partition_index);
            let known = meta.contains_topic(&tp.topic);
            let rm = rm.clone();
            let (offset, timeout) = (p.offset, req.timeout_ms);
            tasks.push(async move {
                if !authorized {
                    return (denied_error(ResourceType::Topic).code(), -1);
                }
                if rm.partition(&tp).is_none() {
                    let code = if known {
                        codes::NOT_LEADER_OR_FOLLOWER
                    } else {
                        codes::UNKNOWN_TOPIC_OR_PARTITION
                    };
                    return (code, -1);
                }
                rm.delete_records(&tp, offset, timeout).await
            });
        }
    }
    let mut results = futures::future::join_all(tasks).await.into_iter();
    let mut resp = DeleteRecordsResponse::default();
    for t in &req.topics {
        let mut tr = DeleteRecordsTopicResult::default();
        tr.name = t.name.clone();
        for p in &t.partitions {
            let (code, low) = results
                .next()
                .unwrap_or((codes::UNKNOWN_TOPIC_OR_PARTITION, -1));
            let mut pr = DeleteRecordsPartitionResult::default();
            pr.partition_index = p.partition_index;
            pr.error_code = code;
            pr.low_watermark = low;
            tr.partitions.push(pr);
        }
        resp.topics.push(tr);
    }
    Ok(resp)
}
