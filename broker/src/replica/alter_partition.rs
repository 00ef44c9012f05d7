//! AlterPartition (API 56) sender: ships the leader's ISR changes to the active
//! controller (found in the metadata cache) and feeds the answers back to the
//! replica manager. As Kafka's `AlterPartitionManager`, one request is in flight at a
//! time and carries every change queued meanwhile: a broker that restarts with 10,000
//! replicas rejoins their ISRs in a few requests (and the controller sends a few
//! UpdateMetadata batches) instead of one round trip per partition. A partition keeps
//! its change "in flight" (no other ISR change) until its answer or an error arrives.
//!
//! Version: v3 (`NewIsrWithEpochs`, broker epoch -1 as ZK brokers send) for changes
//! whose topic id is known, else v1 (topic names); a batch with both sends two requests.

// kafka-protocol messages are non_exhaustive: built from Default, then filled in.
#![allow(clippy::field_reassign_with_default)]

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use kafka_protocol::messages::alter_partition_request::{BrokerState, PartitionData, TopicData};
use kafka_protocol::messages::{AlterPartitionRequest, BrokerId as KBrokerId, TopicName};
use kafka_protocol::protocol::StrBytes;
use samsa_common::client::{ClientOptions, KafkaClient};
use tokio::sync::{mpsc, Mutex};
use uuid::Uuid;

use super::manager::AlterIsrItem;
use crate::broker::BrokerContext;

/// Most changes in one request (bounds the request size; the rest go in the next).
const MAX_BATCH: usize = 10_000;

/// Install the sender on the context's replica manager.
pub fn install(ctx: &Arc<BrokerContext>) {
    let Some(rm) = ctx.replica_manager.get() else {
        return;
    };
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let (tx, rx) = mpsc::unbounded_channel::<AlterIsrItem>();
    handle.spawn(run(Arc::downgrade(ctx), rx));
    rm.set_alter_isr_fn(Arc::new(move |item: AlterIsrItem| {
        // The loop ends only with the broker; a change sent after that is moot.
        let _ = tx.send(item);
    }));
}

/// The sending loop: waits for a change, takes every other one already queued, sends
/// them together, completes each partition with its answer, and starts over.
async fn run(weak: Weak<BrokerContext>, mut rx: mpsc::UnboundedReceiver<AlterIsrItem>) {
    let conn: Mutex<Option<(i32, KafkaClient)>> = Mutex::new(None);
    let mut batch = Vec::new();
    while let Some(first) = rx.recv().await {
        batch.clear();
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(item) => batch.push(item),
                Err(_) => break,
            }
        }
        let Some(ctx) = weak.upgrade() else { return };
        let (with_id, by_name): (Vec<&AlterIsrItem>, Vec<&AlterIsrItem>) =
            batch.iter().partition(|i| i.topic_id.is_some());
        let mut answers: Vec<(&AlterIsrItem, Result<Answer, String>)> = Vec::new();
        for (items, version) in [(with_id, 3i16), (by_name, 1i16)] {
            if items.is_empty() {
                continue;
            }
            match send(&ctx, &conn, &items, version).await {
                Ok(mut per) => {
                    for item in items {
                        let r = per
                            .remove(&(item.tp.topic.clone(), item.tp.partition))
                            .unwrap_or_else(|| Err("no answer for the partition".into()));
                        answers.push((item, r));
                    }
                }
                Err(e) => answers.extend(items.into_iter().map(|i| (i, Err(e.clone())))),
            }
        }
        let failed = answers.iter().filter(|(_, r)| r.is_err()).count();
        if failed > 0 {
            if let Some((item, Err(e))) = answers.iter().find(|(_, r)| r.is_err()) {
                tracing::warn!(tp = %item.tp, error = %e, failed, "AlterPartition failed");
            }
            // Let the next check retry after a short pause.
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        if let Ok(rm) = ctx.replicas() {
            for (item, r) in answers {
                rm.complete_isr_change(&item.tp, r.ok());
            }
        }
    }
}

/// A partition's answer: ISR, leader epoch, partition epoch.
type Answer = (Vec<i32>, i32, i32);

/// Sends one AlterPartition with `items` (all of one version); the answers by
/// `(topic, partition)`.
async fn send(
    ctx: &Arc<BrokerContext>,
    conn: &Mutex<Option<(i32, KafkaClient)>>,
    items: &[&AlterIsrItem],
    version: i16,
) -> Result<HashMap<(String, i32), Result<Answer, String>>, String> {
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
    // Topics in request order; a topic id or name maps back to the topic name.
    let mut topics: Vec<TopicData> = Vec::new();
    let mut slot_of: HashMap<String, usize> = HashMap::new();
    let mut name_of_id: HashMap<Uuid, String> = HashMap::new();
    for item in items {
        let i = *slot_of.entry(item.tp.topic.clone()).or_insert_with(|| {
            let mut td = TopicData::default();
            match item.topic_id {
                Some(id) if version >= 2 => {
                    td.topic_id = id;
                    name_of_id.insert(id, item.tp.topic.clone());
                }
                _ => td.topic_name = TopicName(StrBytes::from_string(item.tp.topic.clone())),
            }
            topics.push(td);
            topics.len() - 1
        });
        topics[i].partitions.push(partition_data(item, version));
    }
    let mut req = AlterPartitionRequest::default();
    req.broker_id = KBrokerId(ctx.broker_id);
    req.broker_epoch = ctx.broker_epoch();
    req.topics = topics;
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
    let mut out = HashMap::new();
    for t in resp.topics {
        let name = if version >= 2 {
            name_of_id.get(&t.topic_id).cloned()
        } else {
            Some(t.topic_name.0.to_string())
        };
        let Some(name) = name else { continue };
        for p in t.partitions {
            let r = if p.error_code != 0 {
                Err(format!("AlterPartition partition error {}", p.error_code))
            } else {
                Ok((
                    p.isr.iter().map(|b| b.0).collect(),
                    p.leader_epoch,
                    p.partition_epoch,
                ))
            };
            out.insert((name.clone(), p.partition_index), r);
        }
    }
    Ok(out)
}

fn partition_data(item: &AlterIsrItem, version: i16) -> PartitionData {
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
    pd
}
