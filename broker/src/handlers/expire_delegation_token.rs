//! ExpireDelegationToken (API 40), as `KafkaApis.handleExpireTokenRequest` in ZooKeeper
//! mode: the checks of RenewDelegationToken (request allowed, tokens enabled, HMAC known,
//! owner or renewer); a negative period removes the token at once and answers now,
//! otherwise an expired token is DELEGATION_TOKEN_EXPIRED and a live one gets
//! expiry = min(max timestamp, now + period). Errors answer expiry -1.

use std::sync::Arc;

use kafka_protocol::messages::{
    ExpireDelegationTokenRequest, ExpireDelegationTokenResponse, RequestHeader,
};

use crate::broker::BrokerContext;
use crate::connection::ConnInfo;
use crate::error::Result;
use crate::security::tokens::{conn_principal, renew_or_expire_session};

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    conn: &ConnInfo,
    _header: &RequestHeader,
    req: ExpireDelegationTokenRequest,
) -> Result<ExpireDelegationTokenResponse> {
    let fail = |e| {
        Ok(ExpireDelegationTokenResponse::default()
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
        .expire(
            &zk,
            &conn_principal(conn),
            &req.hmac,
            req.expiry_time_period_ms,
        )
        .await
    {
        Ok(expiry) => Ok(ExpireDelegationTokenResponse::default().with_expiry_timestamp_ms(expiry)),
        Err(e) => fail(e),
    }
}
