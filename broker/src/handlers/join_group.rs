//! JoinGroup (API 11, v0-9): classic-group join phase; the request parks until the phase ends.

use std::sync::Arc;

use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse, RequestHeader};
use kafka_protocol::protocol::StrBytes;

use crate::broker::BrokerContext;
use crate::connection::ConnInfo;
use crate::coordinator::group::{coordinator_error, JoinArgs, JoinResult};
use crate::error::Result;
use crate::security::authorizer::{denied_error, enforce, Operation, ResourceType};

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    conn: &ConnInfo,
    header: &RequestHeader,
    req: JoinGroupRequest,
) -> Result<JoinGroupResponse> {
    let v = header.request_api_version;
    let gid = req.group_id.0.to_string();
    if !enforce::allow(ctx, conn, Operation::Read, ResourceType::Group, &gid) {
        // Kafka's `JoinGroupRequest.getErrorResponse`.
        let mut resp = JoinGroupResponse::default();
        resp.error_code = denied_error(ResourceType::Group).code();
        resp.generation_id = -1;
        resp.protocol_name = (v < 7).then(StrBytes::default);
        return Ok(resp);
    }
    let r = match coordinator_error(ctx, &gid) {
        Some(code) => JoinResult {
            error: code,
            generation: -1,
            member_id: req.member_id.to_string(),
            ..Default::default()
        },
        None => {
            let args = JoinArgs {
                group_id: gid,
                member_id: req.member_id.to_string(),
                instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
                client_id: header
                    .client_id
                    .as_ref()
                    .map(|s| s.to_string())
                    .unwrap_or_default(),
                client_host: format!("/{}", conn.peer.ip()),
                session_timeout_ms: req.session_timeout_ms,
                // v0 has no rebalance timeout: it reuses the session timeout.
                rebalance_timeout_ms: if v == 0 {
                    req.session_timeout_ms
                } else {
                    req.rebalance_timeout_ms
                },
                protocol_type: req.protocol_type.to_string(),
                protocols: req
                    .protocols
                    .iter()
                    .map(|p| (p.name.to_string(), p.metadata.clone()))
                    .collect(),
                require_known_member_id: v >= 4,
                supports_skip_assignment: v >= 9,
            };
            ctx.groups.join(args).await
        }
    };
    let mut resp = JoinGroupResponse::default();
    resp.error_code = r.error;
    resp.generation_id = r.generation;
    resp.protocol_type = r.protocol_type.map(StrBytes::from_string);
    resp.protocol_name = r.protocol_name.map(StrBytes::from_string);
    if v < 7 && resp.protocol_name.is_none() {
        resp.protocol_name = Some(StrBytes::default());
    }
    resp.leader = StrBytes::from_string(r.leader);
    resp.skip_assignment = r.skip_assignment;
    resp.member_id = StrBytes::from_string(r.member_id);
    resp.members = r
        .members
        .into_iter()
        .map(|(id, iid, md)| {
            let mut m = JoinGroupResponseMember::default();
            m.member_id = StrBytes::from_string(id);
            m.group_instance_id = iid.map(StrBytes::from_string);
            m.metadata = md;
            m
        })
        .collect();
    Ok(resp)
}
