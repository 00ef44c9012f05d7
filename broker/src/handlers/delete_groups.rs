//! DeleteGroups (API 42, v0-2): an Empty group turns Dead; tombstones are written for its
//! offsets and (if it ever had a generation) its group record. GROUP_ID_NOT_FOUND for unknown
//! groups, NON_EMPTY_GROUP for groups with members.

use std::sync::Arc;

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse, GroupId, RequestHeader};

use crate::broker::BrokerContext;
use crate::connection::ConnInfo;
use crate::coordinator::group::coordinator_error;
use crate::error::Result;
use crate::security::authorizer::{denied_error, enforce, Operation, ResourceType};

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    conn: &ConnInfo,
    _header: &RequestHeader,
    req: DeleteGroupsRequest,
) -> Result<DeleteGroupsResponse> {
    let mut resp = DeleteGroupsResponse::default();
    // Kafka: distinct names, DELETE on each; the refused ones are answered last.
    let mut distinct: Vec<&GroupId> = Vec::with_capacity(req.groups_names.len());
    for gid in &req.groups_names {
        if !distinct.contains(&gid) {
            distinct.push(gid);
        }
    }
    let (authorized, refused): (Vec<&GroupId>, Vec<&GroupId>) = distinct
        .into_iter()
        .partition(|gid| enforce::allow(ctx, conn, Operation::Delete, ResourceType::Group, gid));
    for gid in authorized {
        let mut r = DeletableGroupResult::default();
        r.group_id = gid.clone();
        r.error_code = match coordinator_error(ctx, gid) {
            Some(code) => code,
            None => ctx.groups.delete_group(gid),
        };
        resp.results.push(r);
    }
    for gid in refused {
        let mut r = DeletableGroupResult::default();
        r.group_id = gid.clone();
        r.error_code = denied_error(ResourceType::Group).code();
        resp.results.push(r);
    }
    Ok(resp)
}
