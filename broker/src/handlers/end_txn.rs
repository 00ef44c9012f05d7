//! EndTxn (API 26, v0-4): commit or abort the open transaction. The coordinator writes
//! PrepareCommit/PrepareAbort (acks -1), answers, then sends the markers and writes
//! CompleteCommit/CompleteAbort. PRODUCER_FENCED is answered as INVALID_PRODUCER_EPOCH below v2.

use std::sync::Arc;

use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse, RequestHeader};

use crate::broker::BrokerContext;
use crate::connection::ConnInfo;
use crate::coordinator::txn::codes::{INVALID_PRODUCER_EPOCH, PRODUCER_FENCED};
use crate::error::Result;

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    conn: &ConnInfo,
    header: &RequestHeader,
    req: EndTxnRequest,
) -> Result<EndTxnResponse> {
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
    let mut resp = EndTxnResponse::default();
    resp.error_code = if header.request_api_version < 2 && code == PRODUCER_FENCED {
        INVALID_PRODUCER_EPOCH
    } else {
        code
    };
    Ok(resp)
}
