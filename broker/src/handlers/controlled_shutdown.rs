//! ControlledShutdown (key 7), v0-v3: a broker about to stop asks the controller to move
//! leadership away (spec §3.6). Answered by the controller component; a broker that is not
//! the active controller answers STALE_CONTROLLER_EPOCH, as Kafka does.

use std::sync::Arc;

use kafka_protocol::messages::{
    ControlledShutdownRequest, ControlledShutdownResponse, RequestHeader,
};

use crate::broker::BrokerContext;
use crate::connection::ConnInfo;
use crate::error::Result;
use crate::security::authorizer::{denied_error, enforce, Operation, ResourceType};

const STALE_CONTROLLER_EPOCH: i16 = 11;

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    conn: &ConnInfo,
    header: &RequestHeader,
    req: ControlledShutdownRequest,
) -> Result<ControlledShutdownResponse> {
    if !enforce::cluster(ctx, conn, Operation::ClusterAction) {
        let mut r = ControlledShutdownResponse::default();
        r.error_code = denied_error(ResourceType::Cluster).code();
        return Ok(r);
    }
    match ctx.controller.get() {
        Some(c) => Ok(c.controlled_shutdown(req, header.request_api_version).await),
        None => {
            let mut r = ControlledShutdownResponse::default();
            r.error_code = STALE_CONTROLLER_EPOCH;
            Ok(r)
        }
    }
}
