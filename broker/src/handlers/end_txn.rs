//! EndTxn (API 26, v0-4): commit or abort the open transaction. The coordinator writes
//! PrepareCommit/PrepareAbort (acks -1), answers, then sends the markers and writes
//! CompleteCommit/CompleteAbort. PRODUCER_FENCED is answered as INVALID_PRODUCER_EPOCH below v2.

use std::sync::Arc;

use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse, RequestHeader};

use crate::broker::BrokerContext;
use crate::connection::ConnInfo;
use crate::coordinator::txn::codes::{INVALID_PRODUCER_EPOCH, PRODUCER_FENCED};
use crate::error::Result;
use crate::security::authorizer::{denied_error, enforce, Operation, ResourceType};

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    conn: &ConnInfo,
    header: &RequestHeader,
    req: EndTxnRequest,
) -> Result<EndTxnResponse> {
    let mut resp = EndTxnResponse::default();
    if !enforce::allow(
        ctx,
        conn,
        Operation::Write,
        ResourceType::TransactionalId,
        &req.transactional_id,
    ) {
        resp.error_code = denied_error(ResourceType::TransactionalId).code();
        return Ok(resp);
    }
    crate::coordinator::txn::sync_partition_count(ctx);
    let code = ctx
        .txns
        .end_transaction(
            &req.transactional_id.0,
            req.producer_id.0,
            req.producer_epoch,
            req.committed,
            true,
        )
        .await;
    resp.error_code = if header.request_api_version < 2 && code == PRODUCER_FENCED {
        INVALID_PRODUCER_EPOCH
    } else {
        code
    };
    Ok(resp)
}
