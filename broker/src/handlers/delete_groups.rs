//! DeleteGroups (API 42, v0-2): an Empty group turns Dead; tombstones are written for its
//! offsets and (if it ever had a generation) its group record. GROUP_ID_NOT_FOUND for unknown
//! groups, NON_EMPTY_GROUP for groups with members.

use std::sync::Arc;

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse, RequestHeader};

use crate::broker::BrokerContext;
use crate::coordinator::group::coordinator_error;
use crate::error::Result;

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    _header: &RequestHeader,
    req: DeleteGroupsRequest,
) -> Result<DeleteGroupsResponse> {
    let mut resp = DeleteGroupsResponse::default();
    for gid in &req.groups_names {
        let mut r = DeletableGroupResult::default();
        r.group_id = gid.clone();
        r.error_code = match coordinator_error(ctx, gid) {
            Some(code) => code,
            None => ctx.groups.delete_group(gid),
        };
        resp.results.push(r);
    }
    Ok(resp)
}
