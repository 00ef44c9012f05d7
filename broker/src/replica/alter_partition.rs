//! AlterPartition (API 56) sender: ships the leader's ISR changes to the active
//! controller (found in the metadata cache) and feeds the answer back to the
//! replica manager. One request per change; the partition keeps the change
//! "in flight" (no other ISR change) until the answer or an error arrives.
//!
//! Version: v3 (`NewIsrWithEpochs`, broker epoch -1 as ZK brokers send) when
//! the topic id is known, else v1 (topic names).

// kafka-protocol messages are non_exhaustive: built from Default, then filled in.
#![allow(clippy::field_reassign_with_default)]

use std::sync::{Arc, Weak};
use std::time::Duration;

use kafka_protocol::messages::alter_partition_request::{BrokerState, PartitionData, TopicData};
use kafka_protocol::messages::{AlterPartitionRequest, BrokerId as KBrokerId, TopicName};
use kafka_protocol::protocol::StrBytes;
use samsa_common::client::{ClientOptions, KafkaClient};
use tokio::sync::Mutex;

use super::manager::AlterIsrItem;
use crate::broker::BrokerContext;

/// Install the sender on the context's replica manager.
pub fn install(ctx: &Arc<BrokerContext>) {
    let Some(rm) = ctx.replica_manager.get() else {
        return;
    };
    let weak: Weak<BrokerContext> = Arc::downgrade(ctx);
    let conn: Arc<Mutex<Option<(i32, KafkaClient)>>> = Arc::new(Mutex::new(None));
    rm.set_alter_isr_fn(Arc::new(move |item: AlterIsrItem| {
        let weak = weak.clone();
        let conn = conn.clone();
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        handle.spawn(async move {
            let Some(ctx) = weak.upgrade() else { return };
            let tp = item.tp.clone();
            let result = send(&ctx, &conn, &item).await;
            if let Err(e) = &result {
                tracing::warn!(%tp, error = %e, "AlterPartition failed");
                // Let the next check retry after a short pause.
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            if let Ok(rm) = ctx.replicas() {
                rm.complete_isr_change(&tp, result.ok().flatten());
            }
        });
    }));
}

async fn send(
    ctx: &Arc<BrokerContext>,
    conn: &Mutex<Option<(i32, KafkaClient)>>,
    item: &AlterIsrItem,
) -> Result<Option<(Vec<i32>, i32, i32)>, String> {
    let meta = ctx.metadata_cache.snapshot();
    let controller = meta.controller_id.ok_or("no controller known")?;
    let listener = ctx.config.inter_broker_listener_name.clone();
    let ep = meta
        .endpoint(controller, &listener)
        .ok_or_else(|| format!("controller {controller} has no {listener} endpoint"))?;
    let addr = format!("{}:{}", ep.host, ep.port);
    let client = {
        let mut g = conn.lock().await;
        match g.as_ref() {
            Some((id, c)) if *id == controller && !c.is_closed() => c.clone(),
            _ => {
                let opts = ClientOptions {
                    client_id: Some(format!("broker-{}-alter-partition", ctx.broker_id)),
                    connect_timeout: Duration::from_secs(10),
                    request_timeout: Some(Duration::from_secs(30)),
                    security: ctx.security.client(),
                };
                let c = KafkaClient::connect_with(&addr, opts)
                    .await
                    .map_err(|e| e.to_string())?;
                *g = Some((controller, c.clone()));
                c
            }
        }
    };
    let version: i16 = if item.topic_id.is_some() { 3 } else { 1 };
    let mut pd = PartitionData::default();
    pd.partition_index = item.tp.partition;
    pd.leader_epoch = item.leader_epoch;
    pd.partition_epoch = item.partition_epoch;
    if version >= 3 {
        pd.new_isr_with_epochs = item
            .new_isr
            .iter()
            .map(|b| {
                let mut s = BrokerState::default();
                s.broker_id = KBrokerId(*b);
                s.broker_epoch = -1;
                s
            })
            .collect();
    } else {
        pd.new_isr = item.new_isr.iter().map(|b| KBrokerId(*b)).collect();
    }
    let mut td = TopicData::default();
    match item.topic_id {
        Some(id) if version >= 2 => td.topic_id = id,
        _ => td.topic_name = TopicName(StrBytes::from_string(item.tp.topic.clone())),
    }
    td.partitions = vec![pd];
    let mut req = AlterPartitionRequest::default();
    req.broker_id = KBrokerId(ctx.broker_id);
    req.broker_epoch = ctx.broker_epoch();
    req.topics = vec![td];
    let resp = client
        .send(&req, version)
        .await
        .map_err(|e| e.to_string())?;
    if resp.error_code != 0 {
        return Err(format!(
            "AlterPartition top-level error {}",
            resp.error_code
        ));
    }
    let p = resp
        .topics
        .first()
        .and_then(|t| t.partitions.first())
        .ok_or("empty AlterPartition answer")?;
    if p.error_code != 0 {
        return Err(format!("AlterPartition partition error {}", p.error_code));
    }
    Ok(Some((
        p.isr.iter().map(|b| b.0).collect(),
        p.leader_epoch,
        p.partition_epoch,
    )))
}
