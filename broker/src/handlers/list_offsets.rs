//! ListOffsets (API 2, v0-v9): earliest / latest / max-timestamp / by-time lookups.

// kafka-protocol messages are non_exhaustive: built from Default, then filled in.
#![allow(clippy::field_reassign_with_default)]

use std::sync::Arc;

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse, RequestHeader};
use samsa_common::types::TopicPartition;

use crate::broker::BrokerContext;
use crate::connection::ConnInfo;
use crate::error::Result;
use crate::replica::offsets::DEBUG_FOLLOWER_ID;
use crate::replica::partition::codes;
use crate::security::authorizer::{denied_error, enforce, Operation, ResourceType};

const INVALID_REQUEST: i16 = 42;

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    conn: &ConnInfo,
    header: &RequestHeader,
    req: ListOffsetsRequest,
) -> Result<ListOffsetsResponse> {
    let version = header.request_api_version;
    let rm = ctx.replicas()?;
    let meta = ctx.metadata_cache.snapshot();
    let replica_id = req.replica_id.0;
    let is_client = replica_id == -1;
    let leader_only = replica_id != DEBUG_FOLLOWER_ID;
    let isolation = if is_client {
        Some(if version >= 2 { req.isolation_level } else { 0 })
    } else {
        None
    };
    let mut seen = std::collections::HashSet::new();
    let mut resp = ListOffsetsResponse::default();
    // DESCRIBE on each topic; Kafka answers the refused topics after the others.
    let describable = enforce::filter(
        ctx,
        conn,
        Operation::Describe,
        ResourceType::Topic,
        req.topics.iter().map(|t| t.name.0.as_str()),
    );
    let mut refused_topics = Vec::new();
    for t in &req.topics {
        let mut tr = ListOffsetsTopicResponse::default();
        tr.name = t.name.clone();
        if !describable.contains(t.name.0.as_str()) {
            for p in &t.partitions {
                let mut pr = ListOffsetsPartitionResponse::default();
                pr.partition_index = p.partition_index;
                pr.timestamp = -1;
                pr.offset = -1;
                pr.leader_epoch = -1;
                pr.error_code = denied_error(ResourceType::Topic).code();
                tr.partitions.push(pr);
            }
            refused_topics.push(tr);
            continue;
        }
        for p in &t.partitions {
            let tp = TopicPartition::new(t.name.to_string(), p.partition_index);
            let mut pr = ListOffsetsPartitionResponse::default();
            pr.partition_index = p.partition_index;
            pr.timestamp = -1;
            pr.offset = -1;
            pr.leader_epoch = -1;
            if version >= 2 && !seen.insert(tp.clone()) {
                pr.error_code = INVALID_REQUEST;
                tr.partitions.push(pr);
                continue;
            }
            let unknown = rm.partition(&tp).is_none();
            if unknown {
                pr.error_code = if meta.contains_topic(&tp.topic) {
                    codes::NOT_LEADER_OR_FOLLOWER
                } else {
                    codes::UNKNOWN_TOPIC_OR_PARTITION
                };
                tr.partitions.push(pr);
                continue;
            }
            if version == 0 {
                match rm.legacy_offsets_before(&tp, p.timestamp, p.max_num_offsets, is_client) {
                    Ok(v) => pr.old_style_offsets = v,
                    Err(code) => pr.error_code = code,
                }
            } else {
                let epoch = if version >= 4 {
                    p.current_leader_epoch
                } else {
                    -1
                };
                let a =
                    rm.fetch_offset_for_timestamp(&tp, p.timestamp, isolation, epoch, leader_only);
                pr.error_code = a.error_code;
                pr.timestamp = a.timestamp;
                pr.offset = a.offset;
                if version >= 4 {
                    pr.leader_epoch = a.leader_epoch;
                }
            }
            tr.partitions.push(pr);
        }
        resp.topics.push(tr);
    }
    resp.topics.extend(refused_topics);
    Ok(resp)
}
