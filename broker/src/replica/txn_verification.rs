//! KIP-890 part 1, the partition leader's half (Kafka's `AddPartitionsToTxnManager`): before a
//! transactional producer's first batch in a partition is appended, ask the producer's
//! transaction coordinator whether the partition is in its ongoing transaction, with
//! AddPartitionsToTxn v4+ (`VerifyOnly=true`, one entry per transactional id).
//!
//! Requests are batched per coordinator broker: at most one request per broker is in flight,
//! and verifications queued meanwhile leave together in the next one. Two queued
//! verifications of one transactional id resolve as Kafka does: same epoch -> the older gets
//! NETWORK_EXCEPTION (a client retry), higher incoming epoch -> the older gets
//! INVALID_PRODUCER_EPOCH, lower incoming epoch -> the incoming one gets it at once.
//! One connection per coordinator broker is cached and rebuilt when it fails or the broker's
//! address changes. A coordinator that does not serve v4 (older brokers) skips verification;
//! a failed connection answers NETWORK_EXCEPTION.
//!
//! Partition errors come back as the coordinator sent them, except PRODUCER_FENCED, which
//! producers expect as INVALID_PRODUCER_EPOCH, and TRANSACTION_ABORTABLE, which clients
//! before Produce v11 only understand as INVALID_TXN_STATE.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indexmap::IndexMap;
use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, ProducerId, TopicName, TransactionalId,
};
use samsa_common::client::{ClientOptions, KafkaClient};
use samsa_common::types::{BrokerId, TopicPartition};
use tokio::sync::oneshot;

/// Error codes this module produces or translates.
pub mod codes {
    pub const NETWORK_EXCEPTION: i16 = 13;
    pub const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
    pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
    pub const NOT_COORDINATOR: i16 = 16;
    pub const NOT_ENOUGH_REPLICAS: i16 = 19;
    pub const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;
    pub const INVALID_PRODUCER_EPOCH: i16 = 47;
    pub const INVALID_TXN_STATE: i16 = 48;
    pub const CONCURRENT_TRANSACTIONS: i16 = 51;
    pub const PRODUCER_FENCED: i16 = 90;
    pub const TRANSACTION_ABORTABLE: i16 = 120;
}
use codes::*;

/// Where a transactional id's coordinator lives: broker id and `host:port` on the
/// inter-broker listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoordinatorNode {
    pub id: BrokerId,
    pub addr: String,
}

/// The coordinator of `transactional_id` (Kafka's `getTransactionCoordinator`): the live
/// leader of its `__transaction_state` partition (`partition_for` over the topic's partition
/// count, else `default_partitions`), on `listener`. Answered from the metadata cache.
pub fn coordinator_for(
    snap: &crate::metadata_cache::MetadataSnapshot,
    transactional_id: &str,
    default_partitions: i32,
    listener: &str,
) -> Option<CoordinatorNode> {
    const TOPIC: &str = "__transaction_state";
    let n = snap
        .topics
        .get(TOPIC)
        .map(|t| t.partitions.len() as i32)
        .filter(|n| *n > 0)
        .unwrap_or(default_partitions);
    let tp = TopicPartition::new(
        TOPIC,
        crate::coordinator::partition_for(transactional_id, n),
    );
    let leader = snap.partition(&tp)?.leader;
    if leader < 0 {
        return None;
    }
    let ep = snap.endpoint(leader, listener)?;
    Some(CoordinatorNode {
        id: leader,
        addr: format!("{}:{}", ep.host, ep.port),
    })
}

/// Unverified partitions and their error; empty = every partition verified.
pub type VerifyErrors = HashMap<TopicPartition, i16>;

/// One queued verification.
struct Queued {
    producer_id: i64,
    producer_epoch: i16,
    partitions: Vec<TopicPartition>,
    /// Produce v11+: TRANSACTION_ABORTABLE is passed through.
    abortable_supported: bool,
    tx: oneshot::Sender<VerifyErrors>,
}

#[derive(Default)]
struct NodeState {
    addr: String,
    client: Option<KafkaClient>,
    in_flight: bool,
    /// Transactional id -> verification waiting for the next request.
    queue: IndexMap<String, Queued>,
}

/// The leader's verification client (one per broker, in the broker context).
pub struct TxnVerifier {
    broker_id: BrokerId,
    request_timeout: Duration,
    nodes: Mutex<HashMap<BrokerId, NodeState>>,
    /// TLS/SASL of the inter-broker listener (unset = PLAINTEXT).
    security: std::sync::OnceLock<Arc<samsa_common::security::client::ClientSecurity>>,
}

impl std::fmt::Debug for TxnVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TxnVerifier")
    }
}

fn all(partitions: &[TopicPartition], code: i16) -> VerifyErrors {
    partitions.iter().map(|tp| (tp.clone(), code)).collect()
}

/// Kafka's translation of a verification error for the produce response
/// (`ReplicaManager.appendRecordsWithTransactionVerification`): retriable coordinator
/// errors become NOT_ENOUGH_REPLICAS, which every client retries without a metadata refresh.
pub fn produce_error(code: i16) -> i16 {
    match code {
        CONCURRENT_TRANSACTIONS
        | NETWORK_EXCEPTION
        | COORDINATOR_LOAD_IN_PROGRESS
        | COORDINATOR_NOT_AVAILABLE
        | NOT_COORDINATOR => NOT_ENOUGH_REPLICAS,
        c => c,
    }
}

impl TxnVerifier {
    pub fn new(broker_id: BrokerId, request_timeout_ms: i32) -> Arc<Self> {
        Arc::new(Self {
            broker_id,
            request_timeout: Duration::from_millis(
                u64::try_from(request_timeout_ms).unwrap_or(30_000),
            ),
            nodes: Mutex::new(HashMap::new()),
            security: std::sync::OnceLock::new(),
        })
    }

    /// Connect to coordinators with the inter-broker listener's TLS/SASL (set at start-up).
    pub fn set_client_security(&self, s: Arc<samsa_common::security::client::ClientSecurity>) {
        let _ = self.security.set(s);
    }

    fn nodes(&self) -> std::sync::MutexGuard<'_, HashMap<BrokerId, NodeState>> {
        self.nodes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Verify that `partitions` are in the ongoing transaction of `transactional_id` (Kafka's
    /// `verifyTransaction`). `coordinator` is `None` when the metadata cache knows no live
    /// leader of its `__transaction_state` partition (COORDINATOR_NOT_AVAILABLE).
    #[allow(clippy::too_many_arguments)]
    pub async fn verify(
        self: &Arc<Self>,
        coordinator: Option<CoordinatorNode>,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: Vec<TopicPartition>,
        abortable_supported: bool,
    ) -> VerifyErrors {
        let Some(node) = coordinator else {
            return all(&partitions, COORDINATOR_NOT_AVAILABLE);
        };
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut nodes = self.nodes();
            let st = nodes.entry(node.id).or_default();
            if st.addr != node.addr {
                st.addr = node.addr.clone();
                st.client = None;
            }
            if let Some(old) = st.queue.get(transactional_id) {
                if producer_epoch < old.producer_epoch {
                    return all(&partitions, INVALID_PRODUCER_EPOCH);
                }
                let code = if old.producer_epoch < producer_epoch {
                    INVALID_PRODUCER_EPOCH
                } else {
                    NETWORK_EXCEPTION
                };
                if let Some(old) = st.queue.shift_remove(transactional_id) {
                    let _ = old.tx.send(all(&old.partitions, code));
                }
            }
            st.queue.insert(
                transactional_id.to_string(),
                Queued {
                    producer_id,
                    producer_epoch,
                    partitions: partitions.clone(),
                    abortable_supported,
                    tx,
                },
            );
            let start = !st.in_flight;
            st.in_flight = true;
            start
        };
        if start {
            let me = self.clone();
            tokio::spawn(async move { me.run_node(node.id).await });
        }
        // The sender always answers; a dropped sender (runtime shutting down) is a network error.
        rx.await
            .unwrap_or_else(|_| all(&partitions, NETWORK_EXCEPTION))
    }

    /// Sends the queued verifications of one coordinator broker, one request at a time,
    /// until its queue is empty.
    async fn run_node(self: Arc<Self>, node: BrokerId) {
        loop {
            let (batch, client, addr) = {
                let mut nodes = self.nodes();
                let Some(st) = nodes.get_mut(&node) else {
                    return;
                };
                if st.queue.is_empty() {
                    st.in_flight = false;
                    return;
                }
                (
                    std::mem::take(&mut st.queue),
                    st.client.clone().filter(|c| !c.is_closed()),
                    st.addr.clone(),
                )
            };
            let client = match client {
                Some(c) => Some(c),
                None => {
                    let options = ClientOptions {
                        client_id: Some(format!("broker-{}-txn-verification", self.broker_id)),
                        connect_timeout: self.request_timeout,
                        request_timeout: Some(self.request_timeout),
                        security: self.security.get().cloned(),
                    };
                    match KafkaClient::connect_with(&addr, options).await {
                        Ok(c) => {
                            if let Some(st) = self.nodes().get_mut(&node) {
                                if st.addr == addr {
                                    st.client = Some(c.clone());
                                }
                            }
                            Some(c)
                        }
                        Err(e) => {
                            tracing::warn!(node, %addr, error = %e, "AddPartitionsToTxn: cannot connect to the transaction coordinator");
                            None
                        }
                    }
                }
            };
            match client {
                Some(c) => self.send(node, &c, batch).await,
                None => {
                    for (_, q) in batch {
                        let _ = q.tx.send(all(&q.partitions, NETWORK_EXCEPTION));
                    }
                }
            }
        }
    }

    async fn send(&self, node: BrokerId, client: &KafkaClient, batch: IndexMap<String, Queued>) {
        let version = match client.negotiate::<AddPartitionsToTxnRequest>(5).await {
            Ok(v) if v >= 4 => v,
            Ok(_) | Err(samsa_common::error::Error::UnsupportedVersion(_)) => {
                // Kafka: a coordinator that cannot verify means no verification.
                tracing::warn!(node, "the transaction coordinator does not support AddPartitionsToTxn v4; not verifying");
                for (_, q) in batch {
                    let _ = q.tx.send(VerifyErrors::new());
                }
                return;
            }
            Err(e) => {
                tracing::warn!(node, error = %e, "AddPartitionsToTxn: ApiVersions failed");
                self.drop_client(node);
                for (_, q) in batch {
                    let _ = q.tx.send(all(&q.partitions, NETWORK_EXCEPTION));
                }
                return;
            }
        };
        let mut req = AddPartitionsToTxnRequest::default();
        for (id, q) in &batch {
            let mut by_topic: IndexMap<&str, Vec<i32>> = IndexMap::new();
            for tp in &q.partitions {
                by_topic.entry(&tp.topic).or_default().push(tp.partition);
            }
            let mut t = AddPartitionsToTxnTransaction::default();
            t.transactional_id = TransactionalId(id.clone().into());
            t.producer_id = ProducerId(q.producer_id);
            t.producer_epoch = q.producer_epoch;
            t.verify_only = true;
            t.topics = by_topic
                .into_iter()
                .map(|(name, parts)| {
                    let mut at = AddPartitionsToTxnTopic::default();
                    at.name = TopicName(name.to_string().into());
                    at.partitions = parts;
                    at
                })
                .collect();
            req.transactions.push(t);
        }
        let resp: AddPartitionsToTxnResponse = match client.send(&req, version).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(node, error = %e, "AddPartitionsToTxn failed with a network error");
                self.drop_client(node);
                for (_, q) in batch {
                    let _ = q.tx.send(all(&q.partitions, NETWORK_EXCEPTION));
                }
                return;
            }
        };
        if resp.error_code != 0 {
            // The producer must not see CLUSTER_AUTHORIZATION_FAILED.
            let code = if resp.error_code == CLUSTER_AUTHORIZATION_FAILED {
                INVALID_TXN_STATE
            } else {
                resp.error_code
            };
            tracing::warn!(node, code, "AddPartitionsToTxn returned a top-level error");
            for (_, q) in batch {
                let _ = q.tx.send(all(&q.partitions, code));
            }
            return;
        }
        let mut batch = batch;
        for r in resp.results_by_transaction {
            let Some(q) = batch.shift_remove(r.transactional_id.as_str()) else {
                continue;
            };
            let mut errors = VerifyErrors::new();
            for t in r.topic_results {
                for p in t.results_by_partition {
                    if p.partition_error_code == 0 {
                        continue;
                    }
                    let code = match p.partition_error_code {
                        PRODUCER_FENCED => INVALID_PRODUCER_EPOCH,
                        TRANSACTION_ABORTABLE if !q.abortable_supported => INVALID_TXN_STATE,
                        c => c,
                    };
                    errors.insert(
                        TopicPartition::new(t.name.to_string(), p.partition_index),
                        code,
                    );
                }
            }
            let _ = q.tx.send(errors);
        }
        // A transaction the coordinator left out of its answer is not verified.
        for (_, q) in batch {
            let _ = q.tx.send(all(&q.partitions, INVALID_TXN_STATE));
        }
    }

    fn drop_client(&self, node: BrokerId) {
        if let Some(st) = self.nodes().get_mut(&node) {
            st.client = None;
        }
    }
}

#[cfg(test)]
mod tests;
