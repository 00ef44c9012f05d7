//! OffsetCommit (API 8, v0-9): partitions of unknown topics get UNKNOWN_TOPIC_OR_PARTITION (as
//! `KafkaApis` checks the metadata cache); the rest go to the coordinator, which validates
//! generation / member, writes OffsetCommitKey v1 / OffsetCommitValue v3 records (v1 with an
//! expire timestamp) with acks -1 and caches them once replicated. v0 commits go to ZooKeeper
//! (`/consumers/<group>/offsets/<topic>/<partition>`) with no group checks, as a 3.9
//! ZooKeeper-mode broker does (`KafkaApis.commitOffsetsToZookeeper`).

use std::sync::Arc;

use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse, RequestHeader};

use crate::broker::BrokerContext;
use crate::connection::ConnInfo;
use crate::coordinator::group::{codes, coordinator_error, now_ms, CommittedOffset};
use crate::error::Result;
use crate::security::authorizer::{denied_error, enforce, Operation, ResourceType};
use samsa_common::zk::session::CreateMode;
use samsa_common::zk::znodes::ConsumerOffsetZNode;

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    conn: &ConnInfo,
    header: &RequestHeader,
    req: OffsetCommitRequest,
) -> Result<OffsetCommitResponse> {
    let gid = req.group_id.0.to_string();
    if !enforce::allow(ctx, conn, Operation::Read, ResourceType::Group, &gid) {
        return Ok(error_response(
            &req,
            denied_error(ResourceType::Group).code(),
        ));
    }
    let topic_allowed = enforce::filter(
        ctx,
        conn,
        Operation::Read,
        ResourceType::Topic,
        req.topics.iter().map(|t| t.name.0.as_str()),
    );
    let v0 = header.request_api_version == 0;
    let group_error = if v0 {
        None
    } else {
        coordinator_error(ctx, &gid)
    };
    let now = now_ms();
    // v2-4 carry a retention time: the offset then expires at now + retention (value v1).
    // Any i64 arrives here; Kafka adds them as Java longs (wrapping).
    let expire = (req.retention_time_ms != -1).then(|| now.wrapping_add(req.retention_time_ms));
    let snap = ctx.metadata_cache.snapshot();
    let mut resp = OffsetCommitResponse::default();
    // (topic index, partition index) of each offset sent to the coordinator.
    let mut slots = Vec::new();
    let mut offsets = Vec::new();
    for (ti, t) in req.topics.iter().enumerate() {
        let mut rt = OffsetCommitResponseTopic::default();
        rt.name = t.name.clone();
        let known = snap.topics.get(t.name.0.as_str());
        let authorized = topic_allowed.contains(t.name.0.as_str());
        for (pi, p) in t.partitions.iter().enumerate() {
            let mut rp = OffsetCommitResponsePartition::default();
            rp.partition_index = p.partition_index;
            let exists = known.is_some_and(|tm| tm.partitions.contains_key(&p.partition_index));
            rp.error_code = if !authorized {
                denied_error(ResourceType::Topic).code()
            } else if !exists {
                codes::UNKNOWN_TOPIC_OR_PARTITION
            } else if v0 {
                let md = p.committed_metadata.as_deref().unwrap_or("");
                if md.encode_utf16().count() > ctx.groups.metadata_max_bytes() {
                    codes::OFFSET_METADATA_TOO_LARGE
                } else {
                    commit_to_zk(ctx, &gid, &t.name.0, p.partition_index, p.committed_offset).await
                }
            } else if let Some(e) = group_error {
                e
            } else {
                slots.push((ti, pi));
                offsets.push((
                    (t.name.0.to_string(), p.partition_index),
                    CommittedOffset {
                        offset: p.committed_offset,
                        leader_epoch: p.committed_leader_epoch,
                        metadata: p
                            .committed_metadata
                            .as_ref()
                            .map(|s| s.to_string())
                            .unwrap_or_default(),
                        commit_timestamp: if p.commit_timestamp == -1 {
                            now
                        } else {
                            p.commit_timestamp
                        },
                        expire_timestamp: expire,
                    },
                ));
                codes::NONE
            };
            rt.partitions.push(rp);
        }
        resp.topics.push(rt);
    }
    if !offsets.is_empty() && !v0 {
        let out = ctx
            .groups
            .commit_offsets(
                &gid,
                req.generation_id_or_member_epoch,
                &req.member_id,
                req.group_instance_id.as_deref(),
                offsets,
            )
            .await;
        for ((ti, pi), code) in slots.into_iter().zip(out) {
            resp.topics[ti].partitions[pi].error_code = code;
        }
    }
    Ok(resp)
}

/// Every partition of the request with `code` (Kafka `OffsetCommitRequest.getErrorResponse`).
fn error_response(req: &OffsetCommitRequest, code: i16) -> OffsetCommitResponse {
    let mut resp = OffsetCommitResponse::default();
    for t in &req.topics {
        let mut rt = OffsetCommitResponseTopic::default();
        rt.name = t.name.clone();
        for p in &t.partitions {
            let mut rp = OffsetCommitResponsePartition::default();
            rp.partition_index = p.partition_index;
            rp.error_code = code;
            rt.partitions.push(rp);
        }
        resp.topics.push(rt);
    }
    resp
}

/// Kafka's `setOrCreateConsumerOffset`: set the znode, creating it (and its parents) if missing.
async fn commit_to_zk(
    ctx: &Arc<BrokerContext>,
    gid: &str,
    topic: &str,
    partition: i32,
    offset: i64,
) -> i16 {
    let Some(zk) = ctx.zk() else {
        return codes::UNKNOWN_SERVER_ERROR;
    };
    let path = ConsumerOffsetZNode::path(gid, topic, partition);
    let data = ConsumerOffsetZNode::encode(offset);
    let r = match zk.set(&path, &data, None).await {
        Err(e) if e.is_no_node() => zk
            .create_recursive(&path, &data, CreateMode::Persistent)
            .await
            .map(|_| ()),
        other => other.map(|_| ()),
    };
    match r {
        Ok(()) => codes::NONE,
        Err(e) => {
            tracing::warn!(group = gid, %path, error = %e, "v0 offset commit to ZooKeeper failed");
            codes::UNKNOWN_SERVER_ERROR
        }
    }
}
