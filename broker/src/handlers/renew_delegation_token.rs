//! RenewDelegationToken (API 39), as `KafkaApis.handleRenewTokenRequest` in ZooKeeper mode:
//! DELEGATION_TOKEN_REQUEST_NOT_ALLOWED on a channel that may not use tokens, then
//! DELEGATION_TOKEN_AUTH_DISABLED, DELEGATION_TOKEN_NOT_FOUND (unknown HMAC),
//! DELEGATION_TOKEN_OWNER_MISMATCH (neither owner nor renewer), DELEGATION_TOKEN_EXPIRED;
//! otherwise the new expiry. No ACL check, as in Kafka. Errors answer expiry -1.

use std::sync::Arc;

use kafka_protocol::messages::{
    RenewDelegationTokenRequest, RenewDelegationTokenResponse, RequestHeader,
};

use crate::broker::BrokerContext;
use crate::connection::ConnInfo;
use crate::error::Result;
use crate::security::tokens::{conn_principal, renew_or_expire_session};

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    conn: &ConnInfo,
    _header: &RequestHeader,
    req: RenewDelegationTokenRequest,
) -> Result<RenewDelegationTokenResponse> {
    let fail = |e| {
        Ok(RenewDelegationTokenResponse::default()
            .with_error_code(e)
            .with_expiry_timestamp_ms(-1))
    };
    let zk = match renew_or_expire_session(ctx, conn) {
        Ok(zk) => zk,
        Err(e) => return fail(e),
    };
    match ctx
        .security
        .tokens
        .renew(&zk, &conn_principal(conn), &req.hmac, req.renew_period_ms)
        .await
    {
        Ok(expiry) => Ok(RenewDelegationTokenResponse::default().with_expiry_timestamp_ms(expiry)),
        Err(e) => fail(e),
    }
}
