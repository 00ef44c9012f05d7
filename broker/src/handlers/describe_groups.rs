//! DescribeGroups (API 15, v0-5). Unknown groups are reported as Dead with no error, as Kafka
//! does; protocol and member metadata/assignment are only shown for Stable groups.

use std::sync::Arc;

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse, RequestHeader};
use kafka_protocol::protocol::StrBytes;

use crate::broker::BrokerContext;
use crate::coordinator::group::{coordinator_error, GroupState};
use crate::error::Result;

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    _header: &RequestHeader,
    req: DescribeGroupsRequest,
) -> Result<DescribeGroupsResponse> {
    let mut resp = DescribeGroupsResponse::default();
    for gid in &req.groups {
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
        resp.groups.push(d);
    }
    Ok(resp)
}
