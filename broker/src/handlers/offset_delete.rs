//! OffsetDelete (API 47, v0): deletes committed offsets of a group (Kafka's
//! `handleDeleteOffsets`). Partitions of unknown topics get UNKNOWN_TOPIC_OR_PARTITION; a group
//! error (unknown group, NON_EMPTY_GROUP, coordinator errors) is the only content of the
//! response. Deleted offsets get tombstones; an Empty group left without offsets is removed.

use std::sync::Arc;

use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse, RequestHeader};

use crate::broker::BrokerContext;
use crate::connection::ConnInfo;
use crate::coordinator::group::{codes, coordinator_error};
use crate::error::Result;
use crate::security::authorizer::{denied_error, enforce, Operation, ResourceType};

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    conn: &ConnInfo,
    _header: &RequestHeader,
    req: OffsetDeleteRequest,
) -> Result<OffsetDeleteResponse> {
    let gid = req.group_id.0.to_string();
    let mut resp = OffsetDeleteResponse::default();
    if !enforce::allow(ctx, conn, Operation::Delete, ResourceType::Group, &gid) {
        resp.error_code = denied_error(ResourceType::Group).code();
        return Ok(resp);
    }
    let allowed = enforce::filter(
        ctx,
        conn,
        Operation::Read,
        ResourceType::Topic,
        req.topics.iter().map(|t| t.name.0.as_str()),
    );
    if let Some(e) = coordinator_error(ctx, &gid) {
        resp.error_code = e;
        return Ok(resp);
    }
    let snap = ctx.metadata_cache.snapshot();
    let mut slots = Vec::new();
    let mut wanted = Vec::new();
    for (ti, t) in req.topics.iter().enumerate() {
        let mut rt = OffsetDeleteResponseTopic::default();
        rt.name = t.name.clone();
        let known = snap.topics.get(t.name.0.as_str());
        let authorized = allowed.contains(t.name.0.as_str());
        for (pi, p) in t.partitions.iter().enumerate() {
            let mut rp = OffsetDeleteResponsePartition::default();
            rp.partition_index = p.partition_index;
            if !authorized {
                rp.error_code = denied_error(ResourceType::Topic).code();
            } else if known.is_some_and(|tm| tm.partitions.contains_key(&p.partition_index)) {
                slots.push((ti, pi));
                wanted.push((t.name.0.to_string(), p.partition_index));
            } else {
                rp.error_code = codes::UNKNOWN_TOPIC_OR_PARTITION;
            }
            rt.partitions.push(rp);
        }
        resp.topics.push(rt);
    }
    match ctx.groups.delete_offsets(&gid, &wanted) {
        Err(e) => {
            resp.error_code = e;
            resp.topics.clear();
        }
        Ok(out) => {
            for ((ti, pi), code) in slots.into_iter().zip(out) {
                resp.topics[ti].partitions[pi].error_code = code;
            }
        }
    }
    Ok(resp)
}
