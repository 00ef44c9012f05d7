//! ListGroups (API 16, v0-5): groups this coordinator owns; v4+ filter by state, v5 by type
//! (every group here is "classic"). While any partition is loading the error is
//! COORDINATOR_LOAD_IN_PROGRESS, alongside the groups already known (as Kafka's `handleListGroups`).

use std::sync::Arc;

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse, RequestHeader};
use kafka_protocol::protocol::StrBytes;

use crate::broker::BrokerContext;
use crate::connection::ConnInfo;
use crate::coordinator::group::codes;
use crate::error::Result;
use crate::security::authorizer::{enforce, Operation, ResourceType};

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    conn: &ConnInfo,
    _header: &RequestHeader,
    req: ListGroupsRequest,
) -> Result<ListGroupsResponse> {
    let mut resp = ListGroupsResponse::default();
    if ctx.groups.any_loading() {
        resp.error_code = codes::COORDINATOR_LOAD_IN_PROGRESS;
    }
    let type_ok = req.types_filter.is_empty()
        || req
            .types_filter
            .iter()
            .any(|t| t.eq_ignore_ascii_case("classic"));
    if !type_ok {
        return Ok(resp);
    }
    // With DESCRIBE on the cluster every group is listed, else those the principal may
    // describe.
    let all = enforce::cluster(ctx, conn, Operation::Describe);
    let mut groups = ctx.groups.list_groups();
    if !all {
        groups.retain(|(id, _, _)| {
            enforce::allow(ctx, conn, Operation::Describe, ResourceType::Group, id)
        });
    }
    groups.sort_by(|a, b| a.0.cmp(&b.0));
    for (id, ptype, state) in groups {
        if !req.states_filter.is_empty()
            && !req
                .states_filter
                .iter()
                .any(|s| s.eq_ignore_ascii_case(state.name()))
        {
            continue;
        }
        let mut g = ListedGroup::default();
        g.group_id = GroupId(StrBytes::from_string(id));
        g.protocol_type = StrBytes::from_string(ptype);
        g.group_state = StrBytes::from_static_str(state.name());
        g.group_type = StrBytes::from_static_str("classic");
        resp.groups.push(g);
    }
    Ok(resp)
}
