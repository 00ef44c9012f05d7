//! LeaveGroup (API 13, v0-5): v0-2 one member id; v3+ a batch of (member id, instance id).

use std::sync::Arc;

use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse, RequestHeader};
use kafka_protocol::protocol::StrBytes;

use crate::broker::BrokerContext;
use crate::connection::ConnInfo;
use crate::coordinator::group::coordinator_error;
use crate::error::Result;
use crate::security::authorizer::{denied_error, enforce, Operation, ResourceType};

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    conn: &ConnInfo,
    header: &RequestHeader,
    req: LeaveGroupRequest,
) -> Result<LeaveGroupResponse> {
    let v = header.request_api_version;
    let gid = req.group_id.0.to_string();
    let mut resp = LeaveGroupResponse::default();
    if !enforce::allow(ctx, conn, Operation::Read, ResourceType::Group, &gid) {
        resp.error_code = denied_error(ResourceType::Group).code();
        return Ok(resp);
    }
    if let Some(code) = coordinator_error(ctx, &gid) {
        resp.error_code = code;
        return Ok(resp);
    }
    let members: Vec<(String, Option<String>)> = if v >= 3 {
        req.members
            .iter()
            .map(|m| {
                (
                    m.member_id.to_string(),
                    m.group_instance_id.as_ref().map(|s| s.to_string()),
                )
            })
            .collect()
    } else {
        vec![(req.member_id.to_string(), None)]
    };
    let codes = ctx.groups.leave(&gid, &members);
    if v >= 3 {
        resp.members = members
            .into_iter()
            .zip(codes)
            .map(|((id, iid), code)| {
                let mut m = MemberResponse::default();
                m.member_id = StrBytes::from_string(id);
                m.group_instance_id = iid.map(StrBytes::from_string);
                m.error_code = code;
                m
            })
            .collect();
    } else {
        resp.error_code = codes.first().copied().unwrap_or(0);
    }
    Ok(resp)
}
