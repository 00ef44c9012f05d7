//! AlterClientQuotas (API 49) as a 3.9 ZooKeeper broker handles it: ALTER_CONFIGS on the
//! cluster is required (every entry CLUSTER_AUTHORIZATION_FAILED otherwise); each entry is
//! then validated and written on its own by `crate::quota::admin::alter` (with
//! `validate_only` nothing is written), so one bad entry does not stop the others. Any
//! broker accepts it (Kafka's ZK broker writes ZooKeeper itself); the change listener of
//! every broker applies the new quotas.

use std::sync::Arc;

use kafka_protocol::messages::alter_client_quotas_request::EntryData as ReqEntry;
use kafka_protocol::messages::alter_client_quotas_response::{EntityData, EntryData};
use kafka_protocol::messages::{
    AlterClientQuotasRequest, AlterClientQuotasResponse, RequestHeader,
};
use kafka_protocol::protocol::StrBytes;

use crate::broker::BrokerContext;
use crate::connection::ConnInfo;
use crate::error::Result;
use crate::quota::admin::{self, Entity, Op, QuotaError};
use crate::security::authorizer::{enforce, Operation, ResourceType};

const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;

/// The entity as Kafka's `ClientQuotaEntity` map holds it: a later pair of the same type
/// replaces an earlier one.
fn entity_of(e: &ReqEntry) -> Entity {
    let mut out: Entity = Vec::new();
    for d in &e.entity {
        let ty = d.entity_type.to_string();
        let name = d.entity_name.as_ref().map(|n| n.to_string());
        match out.iter_mut().find(|(t, _)| *t == ty) {
            Some(slot) => slot.1 = name,
            None => out.push((ty, name)),
        }
    }
    out
}

fn entry(entity: &Entity, code: i16, message: Option<String>) -> EntryData {
    EntryData::default()
        .with_error_code(code)
        .with_error_message(message.map(StrBytes::from_string))
        .with_entity(
            entity
                .iter()
                .map(|(t, n)| {
                    EntityData::default()
                        .with_entity_type(StrBytes::from_string(t.clone()))
                        .with_entity_name(n.clone().map(StrBytes::from_string))
                })
                .collect(),
        )
}

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    conn: &ConnInfo,
    _header: &RequestHeader,
    req: AlterClientQuotasRequest,
) -> Result<AlterClientQuotasResponse> {
    let mut resp = AlterClientQuotasResponse::default();
    if !enforce::cluster(ctx, conn, Operation::AlterConfigs) {
        let msg = enforce::denied_message(ResourceType::Cluster).to_string();
        for e in &req.entries {
            resp.entries.push(entry(
                &entity_of(e),
                CLUSTER_AUTHORIZATION_FAILED,
                Some(msg.clone()),
            ));
        }
        return Ok(resp);
    }
    let zk = ctx.zk();
    // One answer per distinct entity (Kafka collects them in a map: the last one wins).
    let mut results: Vec<(Entity, std::result::Result<(), QuotaError>)> = Vec::new();
    for e in &req.entries {
        let entity = entity_of(e);
        let ops: Vec<Op> = e
            .ops
            .iter()
            .map(|o| Op {
                key: o.key.to_string(),
                value: (!o.remove).then_some(o.value),
            })
            .collect();
        let r = match &zk {
            Some(zk) => admin::alter(zk, &entity, &ops, req.validate_only).await,
            None => Err(QuotaError::unknown()),
        };
        if let Err(err) = &r {
            tracing::info!(?entity, code = err.code, message = ?err.message, "client quota alteration failed");
        }
        let mut key = entity.clone();
        key.sort();
        match results.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = r,
            None => results.push((key, r)),
        }
    }
    for (entity, r) in results {
        resp.entries.push(match r {
            Ok(()) => entry(&entity, 0, None),
            Err(e) => entry(&entity, e.code, e.message),
        });
    }
    Ok(resp)
}
