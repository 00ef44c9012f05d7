//! OffsetForLeaderEpoch (API 23, v0-v4): end offset of a leader epoch, used by
//! followers to truncate and by consumers to validate positions after a leader change.

// kafka-protocol messages are non_exhaustive: built from Default, then filled in.
#![allow(clippy::field_reassign_with_default)]

use std::sync::Arc;

use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{
    OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse, RequestHeader,
};
use samsa_common::types::TopicPartition;

use crate::broker::BrokerContext;
use crate::connection::ConnInfo;
use crate::error::Result;
use crate::replica::offsets::DEBUG_FOLLOWER_ID;
use crate::replica::partition::codes;
use crate::security::authorizer::{denied_error, enforce, Operation, ResourceType};

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    conn: &ConnInfo,
    header: &RequestHeader,
    req: OffsetForLeaderEpochRequest,
) -> Result<OffsetForLeaderEpochResponse> {
    let version = header.request_api_version;
    let rm = ctx.replicas()?;
    let meta = ctx.metadata_cache.snapshot();
    // v0-2 came only from followers; v3+ carries ReplicaId (-1 consumer, -2 debug).
    let replica_id = if version >= 3 { req.replica_id.0 } else { 0 };
    let leader_only = replica_id != DEBUG_FOLLOWER_ID;
    let mut resp = OffsetForLeaderEpochResponse::default();
    // CLUSTER_ACTION (followers) covers every topic; else DESCRIBE on each (consumers,
    // KIP-320). Kafka answers the refused topics after the others.
    let describable = if enforce::cluster(ctx, conn, Operation::ClusterAction) {
        enforce::Allowed::All
    } else {
        enforce::filter(
            ctx,
            conn,
            Operation::Describe,
            ResourceType::Topic,
            req.topics.iter().map(|t| t.topic.0.as_str()),
        )
    };
    let mut refused_topics = Vec::new();
    for t in &req.topics {
        let mut tr = OffsetForLeaderTopicResult::default();
        tr.topic = t.topic.clone();
        if !describable.contains(t.topic.0.as_str()) {
            for p in &t.partitions {
                let mut e = EpochEndOffset::default();
                e.partition = p.partition;
                e.error_code = denied_error(ResourceType::Topic).code();
                e.leader_epoch = -1;
                e.end_offset = -1;
                tr.partitions.push(e);
            }
            refused_topics.push(tr);
            continue;
        }
        for p in &t.partitions {
            let tp = TopicPartition::new(t.topic.to_string(), p.partition);
            let mut e = EpochEndOffset::default();
            e.partition = p.partition;
            let (code, epoch, end) = if rm.partition(&tp).is_none() {
                let code = if meta.contains_topic(&tp.topic) {
                    codes::NOT_LEADER_OR_FOLLOWER
                } else {
                    codes::UNKNOWN_TOPIC_OR_PARTITION
                };
                (code, -1, -1)
            } else {
                let current = if version >= 2 {
                    p.current_leader_epoch
                } else {
                    -1
                };
                rm.last_offset_for_leader_epoch(&tp, current, p.leader_epoch, leader_only)
            };
            e.error_code = code;
            e.leader_epoch = epoch;
            e.end_offset = end;
            tr.partitions.push(e);
        }
        resp.topics.push(tr);
    }
    resp.topics.extend(refused_topics);
    Ok(resp)
}
