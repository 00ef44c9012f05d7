//! AllocateProducerIds (key 67), v0: a broker (IBP ≥ 3.0-IV0) asks the controller for the
//! next block of producer ids, recorded in `/latest_producer_id_block`.

use std::sync::Arc;

use kafka_protocol::messages::{
    AllocateProducerIdsRequest, AllocateProducerIdsResponse, ProducerId, RequestHeader,
};

use crate::broker::BrokerContext;
use crate::connection::ConnInfo;
use crate::error::Result;
use crate::security::authorizer::{denied_error, enforce, Operation, ResourceType};

const NOT_CONTROLLER: i16 = 41;

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    conn: &ConnInfo,
    _header: &RequestHeader,
    req: AllocateProducerIdsRequest,
) -> Result<AllocateProducerIdsResponse> {
    let mut resp = AllocateProducerIdsResponse::default();
    let r = if !enforce::cluster(ctx, conn, Operation::ClusterAction) {
        Err(denied_error(ResourceType::Cluster).code())
    } else {
        match ctx.controller.get() {
            Some(c) => {
                c.allocate_producer_ids(req.broker_id.0, req.broker_epoch)
                    .await
            }
            None => Err(NOT_CONTROLLER),
        }
    };
    match r {
        Ok((start, len)) => {
            resp.producer_id_start = ProducerId(start);
            resp.producer_id_len = len;
        }
        Err(code) => {
            resp.error_code = code;
            resp.producer_id_start = ProducerId(-1);
        }
    }
    Ok(resp)
}
