//! AlterUserScramCredentials (API 51), as a 3.9 ZooKeeper broker does it
//! (`ZkAdminManager.alterUserScramCredentials`): only the active controller accepts it
//! (NOT_CONTROLLER elsewhere). Per user, in Kafka's order of checks:
//! - empty name → UNACCEPTABLE_CREDENTIAL "Username must not be empty"; unknown mechanism →
//!   UNSUPPORTED_SASL_MECHANISM; iterations outside 4096..=16384 → UNACCEPTABLE_CREDENTIAL;
//! - the same (user, mechanism) twice → DUPLICATE_RESOURCE;
//! - deleting a credential the user does not have → RESOURCE_NOT_FOUND;
//! - otherwise `/config/users/<user>` is rewritten (other keys kept) with the credential
//!   derived from the client's salt and salted password, and a `/config/changes`
//!   notification tells every broker (this one included) to reload the user.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse, RequestHeader,
};
use kafka_protocol::protocol::StrBytes;
use samsa_common::security::scram::{ScramCredential, ScramMechanism};
use samsa_common::zk::admin::{self, code};
use samsa_common::zk::znodes::{config_type, sanitize_entity_name};

use crate::broker::BrokerContext;
use crate::connection::ConnInfo;
use crate::error::Result;
use crate::security::authorizer::{denied_error, enforce, Operation, ResourceType};

const MAX_ITERATIONS: i32 = 16384;
const UNKNOWN_SERVER_ERROR: i16 = -1;

fn result(user: &str, code: i16, msg: Option<&str>) -> AlterUserScramCredentialsResult {
    AlterUserScramCredentialsResult::default()
        .with_user(StrBytes::from_string(user.to_string()))
        .with_error_code(code)
        .with_error_message(msg.map(|m| StrBytes::from_string(m.to_string())))
}

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    conn: &ConnInfo,
    _header: &RequestHeader,
    req: AlterUserScramCredentialsRequest,
) -> Result<AlterUserScramCredentialsResponse> {
    let mut resp = AlterUserScramCredentialsResponse::default();
    let all_users: BTreeSet<String> = req
        .deletions
        .iter()
        .map(|d| d.name.to_string())
        .chain(req.upsertions.iter().map(|u| u.name.to_string()))
        .collect();
    if !ctx.controller.is_active() {
        for u in &all_users {
            resp.results.push(result(
                u,
                code::NOT_CONTROLLER,
                Some("This is not the correct controller for this cluster."),
            ));
        }
        return Ok(resp);
    }
    if !enforce::cluster(ctx, conn, Operation::Alter) {
        let code = denied_error(ResourceType::Cluster).code();
        let msg = enforce::denied_message(ResourceType::Cluster);
        for u in &all_users {
            resp.results.push(result(u, code, Some(msg)));
        }
        return Ok(resp);
    }
    let Some(zk) = ctx.zk() else {
        for u in &all_users {
            resp.results.push(result(
                u,
                UNKNOWN_SERVER_ERROR,
                Some("ZooKeeper session not available"),
            ));
        }
        return Ok(resp);
    };

    // 1. Illegal requests (empty name, unknown mechanism, iterations).
    let mut failed: BTreeMap<String, (i16, String)> = BTreeMap::new();
    for d in &req.deletions {
        let user = d.name.to_string();
        if user.is_empty() {
            failed.insert(
                user,
                (
                    code::UNACCEPTABLE_CREDENTIAL,
                    "Username must not be empty".into(),
                ),
            );
        } else if ScramMechanism::from_type_code(d.mechanism).is_none() {
            failed.insert(
                user,
                (
                    code::UNSUPPORTED_SASL_MECHANISM,
                    "Unknown SCRAM mechanism".into(),
                ),
            );
        }
    }
    for u in &req.upsertions {
        let user = u.name.to_string();
        let bad = if user.is_empty() {
            Some((code::UNACCEPTABLE_CREDENTIAL, "Username must not be empty"))
        } else if let Some(m) = ScramMechanism::from_type_code(u.mechanism) {
            if u.iterations > MAX_ITERATIONS {
                Some((code::UNACCEPTABLE_CREDENTIAL, "Too many iterations"))
            } else if u.iterations < m.min_iterations() as i32 {
                Some((code::UNACCEPTABLE_CREDENTIAL, "Too few iterations"))
            } else {
                None
            }
        } else {
            Some((code::UNSUPPORTED_SASL_MECHANISM, "Unknown SCRAM mechanism"))
        };
        if let Some((c, m)) = bad {
            failed.insert(user, (c, m.to_string()));
        }
    }
    // 2. The same (user, mechanism) twice.
    let mut pairs: HashMap<(String, i8), usize> = HashMap::new();
    for (user, mech) in req
        .upsertions
        .iter()
        .map(|u| (u.name.to_string(), u.mechanism))
        .chain(
            req.deletions
                .iter()
                .map(|d| (d.name.to_string(), d.mechanism)),
        )
    {
        if !failed.contains_key(&user) {
            *pairs.entry((user, mech)).or_default() += 1;
        }
    }
    for ((user, _), n) in &pairs {
        if *n > 1 {
            failed.insert(
                user.clone(),
                (
                    code::DUPLICATE_RESOURCE,
                    "A user credential cannot be altered twice in the same request".into(),
                ),
            );
        }
    }
    for (user, (c, m)) in &failed {
        resp.results.push(result(user, *c, Some(m)));
    }
    // 3. Read, check deletions, apply, write.
    for user in all_users.iter().filter(|u| !failed.contains_key(*u)) {
        let sanitized = sanitize_entity_name(user);
        let mut config = match zk.get_entity_config(config_type::USER, &sanitized).await {
            Ok(c) => c,
            Err(e) => {
                resp.results
                    .push(result(user, UNKNOWN_SERVER_ERROR, Some(&e.to_string())));
                continue;
            }
        };
        let mut missing = false;
        for d in req.deletions.iter().filter(|d| d.name.as_str() == user) {
            let Some(m) = ScramMechanism::from_type_code(d.mechanism) else {
                continue;
            };
            if config.remove(m.name()).is_none() {
                missing = true;
            }
        }
        if missing {
            resp.results.push(result(
                user,
                code::RESOURCE_NOT_FOUND,
                Some("Attempt to delete a user credential that does not exist"),
            ));
            continue;
        }
        for u in req.upsertions.iter().filter(|u| u.name.as_str() == user) {
            let Some(m) = ScramMechanism::from_type_code(u.mechanism) else {
                continue;
            };
            let cred = ScramCredential::from_salted_password(
                m,
                &u.salted_password,
                &u.salt,
                u.iterations as u32,
            );
            config.insert(m.name().to_string(), cred.to_kafka_string());
        }
        match admin::change_entity_config(&zk, config_type::USER, &sanitized, &config).await {
            Ok(()) => resp.results.push(result(user, code::NONE, None)),
            Err(e) => resp
                .results
                .push(result(user, UNKNOWN_SERVER_ERROR, Some(&e.to_string()))),
        }
    }
    Ok(resp)
}
