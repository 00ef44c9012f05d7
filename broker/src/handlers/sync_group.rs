//! SyncGroup (API 14, v0-5): members wait for the leader's assignment.

use std::sync::Arc;

use kafka_protocol::messages::{RequestHeader, SyncGroupRequest, SyncGroupResponse};
use kafka_protocol::protocol::StrBytes;

use crate::broker::BrokerContext;
use crate::coordinator::group::coordinator_error;
use crate::error::Result;

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    _header: &RequestHeader,
    req: SyncGroupRequest,
) -> Result<SyncGroupResponse> {
    let gid = req.group_id.0.to_string();
    let mut resp = SyncGroupResponse::default();
    if let Some(code) = coordinator_error(ctx, &gid) {
        resp.error_code = code;
        return Ok(resp);
    }
    let r = ctx
        .groups
        .sync(
            &gid,
            req.generation_id,
            &req.member_id,
            req.group_instance_id.as_deref(),
            req.protocol_type.as_deref(),
            req.protocol_name.as_deref(),
            req.assignments
                .iter()
                .map(|a| (a.member_id.to_string(), a.assignment.clone()))
                .collect(),
        )
        .await;
    resp.error_code = r.error;
    resp.protocol_type = r.protocol_type.map(StrBytes::from_string);
    resp.protocol_name = r.protocol_name.map(StrBytes::from_string);
    resp.assignment = r.assignment;
    Ok(resp)
}
