//! The marker channel (Kafka's `TransactionMarkerChannelManager`): once PrepareCommit or
//! PrepareAbort is written, WriteTxnMarkers (API 27, v1) goes to the leader of every partition
//! of the transaction over the inter-broker listener. One sender task per destination broker
//! drains its queue into one request (markers of many transactions batched per broker).
//! Failed partitions (send errors, leader moves, NOT_LEADER...) are retried with backoff;
//! partitions of deleted topics are dropped; once every partition is acknowledged the
//! coordinator writes CompleteCommit/CompleteAbort. Losing the coordinator partition (or a
//! newer coordinator epoch) stops the work; the new coordinator finishes it after its load.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::{ProducerId, TopicName, WriteTxnMarkersRequest};
use kafka_protocol::protocol::StrBytes;
use samsa_common::client::{ClientOptions, KafkaClient};
use tokio::sync::{mpsc, oneshot};

use super::codes::*;
use super::metadata::{Transit, TxnState};
use super::ops::Tp;
use super::state::TxnCoordinator;

/// WriteTxnMarkers version sent (Kafka's for IBP >= 2.8).
const WRITE_TXN_MARKERS_VERSION: i16 = 1;

/// Where a partition's marker goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// The topic or partition no longer exists: the marker is dropped.
    Gone,
    /// No leader known right now: retried later.
    NoLeader,
    /// The broker leading the partition.
    Leader(i32),
}

/// One transaction's markers for one broker.
#[derive(Debug, Clone)]
pub struct Marker {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub commit: bool,
    pub coordinator_epoch: i32,
    pub partitions: Vec<Tp>,
}

/// Per-partition results of one marker, or `None` when the request failed as a whole.
pub type MarkerReply = Pin<Box<dyn Future<Output = Option<Vec<(Tp, i16)>>> + Send>>;

/// How markers reach partition leaders (the network in the broker; a fake in tests).
pub trait MarkerTransport: Send + Sync {
    fn route(&self, tp: &Tp) -> Route;
    fn send(&self, broker: i32, marker: Marker) -> MarkerReply;
}

/// Send the markers of `txn_id`'s prepared transaction until every partition acknowledged,
/// then write `complete` (CompleteCommit/CompleteAbort).
pub async fn complete_transaction(
    coord: Arc<TxnCoordinator>,
    txn_id: String,
    coordinator_epoch: i32,
    commit: bool,
    complete: Transit,
) {
    let partition = coord.partition_of(&txn_id);
    let prepared = if commit {
        TxnState::PrepareCommit
    } else {
        TxnState::PrepareAbort
    };
    let mut backoff = Duration::from_millis(50);
    let started = std::time::Instant::now();
    loop {
        // What is left to acknowledge (stop if the partition moved or the id changed).
        let (pid, epoch, left) = {
            let p = coord.lock();
            let Some(o) = p
                .owned
                .get(&partition)
                .filter(|o| o.epoch == coordinator_epoch)
            else {
                return;
            };
            let Some(m) = o.txns.get(&txn_id) else { return };
            if m.state != prepared || m.pending != Some(complete.state) {
                return;
            }
            (m.producer_id, m.producer_epoch, m.partitions.clone())
        };
        if left.is_empty() {
            break;
        }
        let transport = coord
            .markers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut done: Vec<Tp> = Vec::new();
        let mut abort = false;
        match transport {
            // No network (unit tests without a fake): every marker counts as written.
            None => done.extend(left.iter().cloned()),
            Some(t) => {
                let mut by_broker: BTreeMap<i32, Vec<Tp>> = BTreeMap::new();
                for tp in &left {
                    match t.route(tp) {
                        Route::Gone => {
                            tracing::info!(
                                transactional_id = txn_id,
                                topic = tp.0,
                                partition = tp.1,
                                "dropping transaction marker for a partition that no longer exists"
                            );
                            done.push(tp.clone());
                        }
                        Route::NoLeader => {}
                        Route::Leader(b) => by_broker.entry(b).or_default().push(tp.clone()),
                    }
                }
                let sends = by_broker.into_iter().map(|(b, tps)| {
                    t.send(
                        b,
                        Marker {
                            producer_id: pid,
                            producer_epoch: epoch,
                            commit,
                            coordinator_epoch,
                            partitions: tps,
                        },
                    )
                });
                for reply in futures::future::join_all(sends).await.into_iter().flatten() {
                    for (tp, code) in reply {
                        match code {
                            NONE | UNSUPPORTED_FOR_MESSAGE_FORMAT | UNSUPPORTED_VERSION => {
                                done.push(tp)
                            }
                            INVALID_PRODUCER_EPOCH | TRANSACTION_COORDINATOR_FENCED => {
                                abort = true;
                            }
                            c => tracing::debug!(
                                transactional_id = txn_id,
                                topic = tp.0,
                                partition = tp.1,
                                code = c,
                                "transaction marker failed; retrying"
                            ),
                        }
                    }
                }
            }
        }
        {
            let mut p = coord.lock();
            let Some(o) = p
                .owned
                .get_mut(&partition)
                .filter(|o| o.epoch == coordinator_epoch)
            else {
                return;
            };
            let Some(m) = o.txns.get_mut(&txn_id) else {
                return;
            };
            for tp in &done {
                m.remove_partition(tp);
            }
            if abort {
                // The producer or this coordinator was fenced: a newer writer owns the outcome.
                tracing::info!(
                    transactional_id = txn_id,
                    "transaction markers fenced; giving up"
                );
                return;
            }
            if m.partitions.is_empty() {
                continue;
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(1));
    }
    // Every marker is written: record the outcome (retrying while the log is unavailable).
    tracing::trace!(
        transactional_id = txn_id,
        us = started.elapsed().as_micros() as u64,
        "markers acknowledged"
    );
    let mut backoff = Duration::from_millis(100);
    loop {
        match coord
            .write(&txn_id, coordinator_epoch, &complete, true)
            .await
        {
            NONE => {
                tracing::debug!(
                    transactional_id = txn_id,
                    commit,
                    us = started.elapsed().as_micros() as u64,
                    "transaction completed"
                );
                return;
            }
            COORDINATOR_NOT_AVAILABLE => {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
            c => {
                tracing::info!(
                    transactional_id = txn_id,
                    code = c,
                    "not completing transaction: coordinator moved"
                );
                return;
            }
        }
    }
}

type Queued = (Marker, oneshot::Sender<Option<Vec<(Tp, i16)>>>);

/// The broker's transport: routes by the metadata cache, one batching sender task per broker.
pub struct NetTransport {
    ctx: Weak<crate::broker::BrokerContext>,
    queues: Mutex<HashMap<i32, mpsc::UnboundedSender<Queued>>>,
}

impl NetTransport {
    pub fn new(ctx: &Arc<crate::broker::BrokerContext>) -> Arc<Self> {
        Arc::new(Self {
            ctx: Arc::downgrade(ctx),
            queues: Mutex::new(HashMap::new()),
        })
    }
}

impl MarkerTransport for NetTransport {
    fn route(&self, tp: &Tp) -> Route {
        let Some(ctx) = self.ctx.upgrade() else {
            return Route::NoLeader;
        };
        let snap = ctx.metadata_cache.snapshot();
        // An empty cache (not yet filled by UpdateMetadata) says nothing about deletion.
        if snap.brokers.is_empty() {
            return Route::NoLeader;
        }
        let Some(t) = snap.topics.get(&tp.0) else {
            return Route::Gone;
        };
        let Some(ps) = t.partitions.get(&tp.1) else {
            return Route::Gone;
        };
        let leader = ps.leader;
        if leader < 0
            || snap
                .endpoint(ps.leader, &ctx.config.inter_broker_listener_name)
                .is_none()
        {
            return Route::NoLeader;
        }
        Route::Leader(leader)
    }

    fn send(&self, broker: i32, marker: Marker) -> MarkerReply {
        let (tx, rx) = oneshot::channel();
        let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        let q = queues.entry(broker).or_insert_with(|| {
            let (qtx, qrx) = mpsc::unbounded_channel();
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(sender(self.ctx.clone(), broker, qrx));
            }
            qtx
        });
        if q.send((marker, tx)).is_err() {
            queues.remove(&broker);
        }
        Box::pin(async move { rx.await.ok().flatten() })
    }
}

/// One destination broker: drain the queue into one WriteTxnMarkers request at a time.
async fn sender(
    ctx: Weak<crate::broker::BrokerContext>,
    broker: i32,
    mut rx: mpsc::UnboundedReceiver<Queued>,
) {
    let mut client: Option<KafkaClient> = None;
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
        }
        let Some(c) = ctx.upgrade() else { return };
        let addr = {
            let snap = c.metadata_cache.snapshot();
            snap.endpoint(broker, &c.config.inter_broker_listener_name)
                .map(|ep| format!("{}:{}", ep.host, ep.port))
        };
        let broker_id = c.broker_id;
        let security = c.security.client();
        drop(c);
        let Some(addr) = addr else {
            fail_all(batch);
            continue;
        };
        if client
            .as_ref()
            .is_none_or(|k| k.is_closed() || k.addr() != addr)
        {
            let opts = ClientOptions {
                client_id: Some(format!("broker-{broker_id}-txn-marker-sender")),
                connect_timeout: Duration::from_secs(10),
                request_timeout: Some(Duration::from_secs(30)),
                security,
            };
            match KafkaClient::connect_with(&addr, opts).await {
                Ok(k) => client = Some(k),
                Err(e) => {
                    tracing::warn!(broker, %addr, error = %e, "cannot connect to send transaction markers");
                    client = None;
                    fail_all(batch);
                    continue;
                }
            }
        }
        let Some(k) = client.clone() else {
            fail_all(batch);
            continue;
        };
        let mut req = WriteTxnMarkersRequest::default();
        for (m, _) in &batch {
            let mut w = WritableTxnMarker::default();
            w.producer_id = ProducerId(m.producer_id);
            w.producer_epoch = m.producer_epoch;
            w.transaction_result = m.commit;
            w.coordinator_epoch = m.coordinator_epoch;
            let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
            for (t, p) in &m.partitions {
                topics.entry(t.as_str()).or_default().push(*p);
            }
            for (t, ps) in topics {
                let mut wt = WritableTxnMarkerTopic::default();
                wt.name = TopicName(StrBytes::from_string(t.to_string()));
                wt.partition_indexes = ps;
                w.topics.push(wt);
            }
            req.markers.push(w);
        }
        match k.send(&req, WRITE_TXN_MARKERS_VERSION).await {
            Ok(resp) => {
                let mut by_pid: HashMap<i64, Vec<(Tp, i16)>> = HashMap::new();
                for r in resp.markers {
                    let e = by_pid.entry(r.producer_id.0).or_default();
                    for t in r.topics {
                        for p in t.partitions {
                            e.push(((t.name.0.to_string(), p.partition_index), p.error_code));
                        }
                    }
                }
                for (m, reply) in batch {
                    let _ = reply.send(Some(by_pid.remove(&m.producer_id).unwrap_or_default()));
                }
            }
            Err(e) => {
                tracing::warn!(broker, error = %e, "sending transaction markers failed; retrying");
                client = None;
                fail_all(batch);
            }
        }
    }
}

fn fail_all(batch: Vec<Queued>) {
    for (_, reply) in batch {
        let _ = reply.send(None);
    }
}
