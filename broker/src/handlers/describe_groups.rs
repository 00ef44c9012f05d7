//! DescribeGroups (API 15, v0-5). Unknown groups are reported as Dead with no error, as Kafka
//! does; protocol and member metadata/assignment are only shown for Stable groups.

use std::sync::Arc;

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse, RequestHeader};
use kafka_protocol::protocol::StrBytes;

use crate::broker::BrokerContext;
use crate::connection::ConnInfo;
use crate::coordinator::group::{coordinator_error, GroupState};
use crate::error::Result;
use crate::security::authorizer::{denied_error, enforce, Operation, ResourceType};

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    conn: &ConnInfo,
    header: &RequestHeader,
    req: DescribeGroupsRequest,
) -> Result<DescribeGroupsResponse> {
    let mut resp = DescribeGroupsResponse::default();
    // Kafka answers the refused groups first, then the described ones.
    let mut authorized = Vec::with_capacity(req.groups.len());
    for gid in &req.groups {
        if enforce::allow(ctx, conn, Operation::Describe, ResourceType::Group, gid) {
            authorized.push(gid);
        } else {
            let mut d = DescribedGroup::default();
            d.group_id = gid.clone();
            d.error_code = denied_error(ResourceType::Group).code();
            d.authorized_operations = i32::MIN;
            resp.groups.push(d);
        }
    }
    let with_operations = header.request_api_version >= 3 && req.include_authorized_operations;
    for gid in authorized {
        let mut d = DescribedGroup::default();
        d.group_id = gid.clone();
        d.authorized_operations = i32::MIN;
        if let Some(code) = coordinator_error(ctx, gid) {
            d.error_code = code;
            resp.groups.push(d);
            continue;
        }
        match ctx.groups.describe(gid) {
            None => d.group_state = StrBytes::from_static_str("Dead"),
            Some(g) => {
                let stable = g.state == GroupState::Stable;
                d.group_state = StrBytes::from_static_str(g.state.name());
                d.protocol_type = StrBytes::from_string(g.protocol_type);
                if stable {
                    d.protocol_data = StrBytes::from_string(g.protocol);
                }
                d.members = g
                    .members
                    .into_iter()
                    .map(|m| {
                        let mut dm = DescribedGroupMember::default();
                        dm.member_id = StrBytes::from_string(m.member_id);
                        dm.group_instance_id = m.instance_id.map(StrBytes::from_string);
                        dm.client_id = StrBytes::from_string(m.client_id);
                        dm.client_host = StrBytes::from_string(m.client_host);
                        if stable {
                            dm.member_metadata = m.metadata;
                            dm.member_assignment = m.assignment;
                        }
                        dm
                    })
                    .collect();
            }
        }
        if with_operations {
            d.authorized_operations = enforce::operations(ctx, conn, ResourceType::Group, gid);
        }
        resp.groups.push(d);
    }
    Ok(resp)
}
