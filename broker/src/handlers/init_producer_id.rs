//! InitProducerId (key 22), v0-v5, for producers without a transactional id
//! (idempotent producers): a fresh producer id with epoch 0 (Kafka
//! `TransactionCoordinator.handleInitProducerId` with a null transactional id).
//!
//! Requests carrying a transactional id belong to the transaction coordinator; until
//! one is wired in they get COORDINATOR_NOT_AVAILABLE (retriable).

use std::sync::Arc;

use kafka_protocol::messages::{
    InitProducerIdRequest, InitProducerIdResponse, ProducerId, RequestHeader,
};
use tracing::warn;

use crate::broker::BrokerContext;
use crate::error::Result;

const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
const COORDINATOR_NOT_AVAILABLE: i16 = 15;
const INVALID_REQUEST: i16 = 42;

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    _header: &RequestHeader,
    req: InitProducerIdRequest,
) -> Result<InitProducerIdResponse> {
    let mut resp = InitProducerIdResponse::default();
    resp.producer_id = ProducerId(-1);
    resp.producer_epoch = -1;
    match req.transactional_id.as_ref().map(|t| t.0.as_str()) {
        None => {}
        Some("") => {
            resp.error_code = INVALID_REQUEST;
            return Ok(resp);
        }
        Some(_) => {
            resp.error_code = COORDINATOR_NOT_AVAILABLE;
            return Ok(resp);
        }
    }
    let Some(zk) = ctx.zk() else {
        resp.error_code = COORDINATOR_LOAD_IN_PROGRESS;
        return Ok(resp);
    };
    match ctx.producer_ids.generate(&zk, ctx.broker_id).await {
        Ok(id) => {
            resp.producer_id = ProducerId(id);
            resp.producer_epoch = 0;
        }
        Err(e) => {
            // Kafka answers this (retriable) error while no id block is available.
            warn!(error = %e, "could not claim a producer id block");
            resp.error_code = COORDINATOR_LOAD_IN_PROGRESS;
        }
    }
    Ok(resp)
}
