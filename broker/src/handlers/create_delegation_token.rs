//! CreateDelegationToken (API 38), as `KafkaApis.handleCreateTokenRequest` in ZooKeeper mode.
//!
//! In Kafka's order: a channel that may not ask for tokens (PLAINTEXT, SSL without a client
//! certificate, or itself token-authenticated) → DELEGATION_TOKEN_REQUEST_NOT_ALLOWED; a
//! token for another owner (v3) needs CREATE_TOKENS on the USER resource `Type:name` of the
//! owner → DELEGATION_TOKEN_AUTHORIZATION_FAILED; a renewer whose type is not `User` →
//! INVALID_PRINCIPAL_TYPE; no secret key → DELEGATION_TOKEN_AUTH_DISABLED. Any broker
//! creates tokens (no forwarding in ZooKeeper mode). Errors carry timestamps of -1, an
//! empty token id and HMAC.

use std::sync::Arc;

use kafka_protocol::messages::{
    CreateDelegationTokenRequest, CreateDelegationTokenResponse, RequestHeader,
};
use kafka_protocol::protocol::StrBytes;
use samsa_common::zk::delegation_token::Principal;

use crate::broker::BrokerContext;
use crate::connection::ConnInfo;
use crate::error::Result;
use crate::security::authorizer::{Operation, ResourceType};
use crate::security::tokens::{allow_token_requests, code, conn_principal};

fn response(
    version: i16,
    error: i16,
    owner: &Principal,
    requester: &Principal,
) -> CreateDelegationTokenResponse {
    let mut r = CreateDelegationTokenResponse::default()
        .with_error_code(error)
        .with_principal_type(StrBytes::from_string(owner.principal_type.clone()))
        .with_principal_name(StrBytes::from_string(owner.name.clone()))
        .with_issue_timestamp_ms(-1)
        .with_expiry_timestamp_ms(-1)
        .with_max_timestamp_ms(-1);
    if version > 2 {
        r = r
            .with_token_requester_principal_type(StrBytes::from_string(
                requester.principal_type.clone(),
            ))
            .with_token_requester_principal_name(StrBytes::from_string(requester.name.clone()));
    }
    r
}

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    conn: &ConnInfo,
    header: &RequestHeader,
    req: CreateDelegationTokenRequest,
) -> Result<CreateDelegationTokenResponse> {
    let v = header.request_api_version;
    let requester = conn_principal(conn);
    let owner = match req.owner_principal_name.as_ref().filter(|n| !n.is_empty()) {
        Some(name) => Principal::new(
            req.owner_principal_type
                .as_ref()
                .map(|t| t.to_string())
                .unwrap_or_default(),
            name.to_string(),
        ),
        None => requester.clone(),
    };
    let renewers: Vec<Principal> = req
        .renewers
        .iter()
        .map(|r| Principal::new(r.principal_type.to_string(), r.principal_name.to_string()))
        .collect();
    let fail = |e| Ok(response(v, e, &owner, &requester));
    if !allow_token_requests(conn) {
        return fail(code::DELEGATION_TOKEN_REQUEST_NOT_ALLOWED);
    }
    if owner != requester
        && !ctx.authorize(
            conn,
            Operation::CreateTokens,
            ResourceType::User,
            &owner.to_string(),
        )
    {
        return fail(code::DELEGATION_TOKEN_AUTHORIZATION_FAILED);
    }
    if renewers.iter().any(|r| r.principal_type != "User") {
        return fail(code::INVALID_PRINCIPAL_TYPE);
    }
    let tokens = &ctx.security.tokens;
    if !tokens.settings.enabled() {
        return fail(code::DELEGATION_TOKEN_AUTH_DISABLED);
    }
    let Some(zk) = ctx.zk() else {
        return fail(code::UNKNOWN_SERVER_ERROR);
    };
    match tokens
        .create(
            &zk,
            owner.clone(),
            requester.clone(),
            renewers,
            req.max_lifetime_ms,
        )
        .await
    {
        Ok(c) => Ok(response(v, code::NONE, &owner, &requester)
            .with_issue_timestamp_ms(c.info.issue_timestamp)
            .with_expiry_timestamp_ms(c.info.expiry_timestamp)
            .with_max_timestamp_ms(c.info.max_timestamp)
            .with_token_id(StrBytes::from_string(c.info.token_id))
            .with_hmac(c.hmac.into())),
        Err(e) => fail(e),
    }
}
