//! AlterPartition (key 56), v0-v3: a partition leader asks the controller to change the ISR.
//! Answered by the controller component (`samsa_controller`, spec §3.10); a broker that is
//! not the active controller answers NOT_CONTROLLER and the leader retries elsewhere.

use std::sync::Arc;

use kafka_protocol::messages::{AlterPartitionRequest, AlterPartitionResponse, RequestHeader};

use crate::broker::BrokerContext;
use crate::connection::ConnInfo;
use crate::error::Result;
use crate::security::authorizer::{denied_error, enforce, Operation, ResourceType};

const NOT_CONTROLLER: i16 = 41;

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    conn: &ConnInfo,
    header: &RequestHeader,
    req: AlterPartitionRequest,
) -> Result<AlterPartitionResponse> {
    if !enforce::cluster(ctx, conn, Operation::ClusterAction) {
        let mut r = AlterPartitionResponse::default();
        r.error_code = denied_error(ResourceType::Cluster).code();
        return Ok(r);
    }
    match ctx.controller.get() {
        Some(c) => Ok(c.alter_partition(req, header.request_api_version).await),
        None => {
            let mut r = AlterPartitionResponse::default();
            r.error_code = NOT_CONTROLLER;
            Ok(r)
        }
    }
}
