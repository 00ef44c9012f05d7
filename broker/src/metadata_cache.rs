//! The cluster view installed by UpdateMetadata from the controller (Kafka's
//! `ZkMetadataCache`): live brokers with their endpoints per listener, partition
//! states, topic ids, and the controller id.
//!
//! Readers take an `Arc<MetadataSnapshot>` and see one consistent view; an update
//! builds a new snapshot and swaps it in (copy on write), so no lock is held while
//! a handler works.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};

use bytes::Bytes;

use kafka_protocol::messages::update_metadata_request::UpdateMetadataPartitionState;
use kafka_protocol::messages::UpdateMetadataRequest;
use samsa_common::types::{BrokerId, TopicPartition};
use uuid::Uuid;

/// Leader value the controller sends for a partition of a topic being deleted
/// (`LeaderAndIsr.LeaderDuringDelete`): the cache drops the partition.
pub const LEADER_DURING_DELETE: i32 = -2;
/// "No leader".
pub const NO_LEADER: i32 = -1;

/// One listener endpoint of a broker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: i32,
    /// Security protocol id (0 = PLAINTEXT, 1 = SSL, 2 = SASL_PLAINTEXT, 3 = SASL_SSL).
    pub security_protocol: i16,
}

/// A live broker as the controller described it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveBroker {
    pub id: BrokerId,
    pub rack: Option<String>,
    /// Endpoints keyed by listener name.
    pub endpoints: HashMap<String, Endpoint>,
}

/// State of one partition as last sent by the controller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionState {
    pub controller_epoch: i32,
    pub leader: BrokerId,
    pub leader_epoch: i32,
    pub isr: Vec<BrokerId>,
    pub zk_version: i32,
    pub replicas: Vec<BrokerId>,
    pub offline_replicas: Vec<BrokerId>,
}

/// One topic: its id (zero if unknown / pre-2.8 controller) and partitions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TopicMetadata {
    pub topic_id: Uuid,
    pub partitions: BTreeMap<i32, PartitionState>,
}

/// An immutable view of the cluster.
///
/// Topics are shared between successive snapshots (`Arc`): an update copies the map of
/// topic handles and only the topics it touches, so an UpdateMetadata for one partition
/// costs O(topics + that topic's partitions), not O(all partitions).
#[derive(Clone, Debug, Default)]
pub struct MetadataSnapshot {
    pub controller_id: Option<BrokerId>,
    pub brokers: BTreeMap<BrokerId, LiveBroker>,
    pub topics: BTreeMap<String, Arc<TopicMetadata>>,
    topic_names: HashMap<Uuid, String>,
    /// Full Metadata answers already encoded from this snapshot.
    pub full_answers: EncodedAnswers,
}

/// What a full (all-topics, no authorizer) Metadata answer depends on besides the snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FullAnswerKey {
    pub version: i16,
    pub listener: String,
    pub topic_operations: bool,
    pub cluster_operations: bool,
    pub cluster_id: Option<String>,
}

/// Encoded response bodies of full Metadata answers built from one snapshot (Kafka rebuilds
/// its answer per request; at 10,000 partitions that is milliseconds of CPU each time, on
/// the request path). A snapshot's clone starts empty, so each UpdateMetadata drops them.
#[derive(Default)]
pub struct EncodedAnswers(Mutex<Vec<(FullAnswerKey, Bytes)>>);

/// Answers kept per snapshot: one per (version, listener, flags) clients actually use.
const MAX_ENCODED_ANSWERS: usize = 16;

impl EncodedAnswers {
    pub fn get(&self, key: &FullAnswerKey) -> Option<Bytes> {
        let g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        g.iter().find(|(k, _)| k == key).map(|(_, b)| b.clone())
    }

    pub fn put(&self, key: FullAnswerKey, body: Bytes) {
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if g.len() < MAX_ENCODED_ANSWERS && !g.iter().any(|(k, _)| *k == key) {
            g.push((key, body));
        }
    }
}

impl Clone for EncodedAnswers {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl std::fmt::Debug for EncodedAnswers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.0.lock().map(|g| g.len()).unwrap_or(0);
        write!(f, "EncodedAnswers({n})")
    }
}

impl MetadataSnapshot {
    /// Endpoint of `broker` on `listener`, if that broker is alive and has it.
    pub fn endpoint(&self, broker: BrokerId, listener: &str) -> Option<&Endpoint> {
        self.brokers.get(&broker)?.endpoints.get(listener)
    }

    pub fn partition(&self, tp: &TopicPartition) -> Option<&PartitionState> {
        self.topics.get(&tp.topic)?.partitions.get(&tp.partition)
    }

    pub fn topic_id(&self, topic: &str) -> Option<Uuid> {
        self.topics
            .get(topic)
            .map(|t| t.topic_id)
            .filter(|id| !id.is_nil())
    }

    pub fn topic_name(&self, id: &Uuid) -> Option<&str> {
        self.topic_names.get(id).map(String::as_str)
    }

    pub fn contains_topic(&self, topic: &str) -> bool {
        self.topics.contains_key(topic)
    }

    pub fn is_alive(&self, broker: BrokerId) -> bool {
        self.brokers.contains_key(&broker)
    }
}

/// The broker's metadata cache.
#[derive(Debug)]
pub struct MetadataCache {
    current: RwLock<Arc<MetadataSnapshot>>,
    /// Highest controller epoch seen in an UpdateMetadata request.
    controller_epoch: std::sync::atomic::AtomicI32,
    /// Bumped after every installed update, so waiters (CreateTopics, tests)
    /// can await "metadata changed" instead of polling.
    updates: tokio::sync::watch::Sender<u64>,
}

impl Default for MetadataCache {
    fn default() -> Self {
        Self {
            current: RwLock::default(),
            controller_epoch: std::sync::atomic::AtomicI32::new(0),
            updates: tokio::sync::watch::channel(0).0,
        }
    }
}

/// UpdateMetadata from a controller older than one we already heard from.
#[derive(Debug, thiserror::Error)]
#[error("received UpdateMetadata with controller epoch {got}, latest known is {known}")]
pub struct StaleControllerEpoch {
    pub got: i32,
    pub known: i32,
}

impl MetadataCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// A receiver that changes after each installed update.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.updates.subscribe()
    }

    /// Highest controller epoch installed so far.
    pub fn controller_epoch(&self) -> i32 {
        self.controller_epoch
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// Kafka `ReplicaManager.maybeUpdateMetadataCache`: refuses a request whose
    /// controller epoch is older than `max(known, other_known)` (the replica
    /// manager's epoch from LeaderAndIsr), else installs it.
    pub fn apply_checked(
        &self,
        req: &UpdateMetadataRequest,
        version: i16,
        other_known: i32,
    ) -> Result<Vec<TopicPartition>, StaleControllerEpoch> {
        let mut guard = match self.current.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let known = self.controller_epoch().max(other_known);
        if req.controller_epoch < known {
            return Err(StaleControllerEpoch {
                got: req.controller_epoch,
                known,
            });
        }
        let mut next = MetadataSnapshot::clone(&guard);
        let deleted = apply_to(&mut next, req, version);
        *guard = Arc::new(next);
        self.controller_epoch
            .store(req.controller_epoch, std::sync::atomic::Ordering::Release);
        drop(guard);
        self.updates.send_modify(|v| *v += 1);
        Ok(deleted)
    }

    /// The current consistent view.
    pub fn snapshot(&self) -> Arc<MetadataSnapshot> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Installs an UpdateMetadata request decoded at `version`. Returns the
    /// partitions it deleted (leader == LeaderDuringDelete), which the caller
    /// may need to drop from other caches. Like Kafka, live brokers and the
    /// controller id are replaced wholesale; partition states are merged.
    pub fn apply(&self, req: &UpdateMetadataRequest, version: i16) -> Vec<TopicPartition> {
        let mut guard = match self.current.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let mut next = MetadataSnapshot::clone(&guard);
        let deleted = apply_to(&mut next, req, version);
        *guard = Arc::new(next);
        drop(guard);
        self.updates.send_modify(|v| *v += 1);
        deleted
    }
}

fn apply_to(
    snap: &mut MetadataSnapshot,
    req: &UpdateMetadataRequest,
    version: i16,
) -> Vec<TopicPartition> {
    snap.controller_id = (req.controller_id.0 >= 0).then_some(req.controller_id.0);
    snap.brokers = req
        .live_brokers
        .iter()
        .map(|b| {
            let endpoints = if version == 0 {
                // v0 carries a single PLAINTEXT host/port.
                HashMap::from([(
                    "PLAINTEXT".to_string(),
                    Endpoint {
                        host: b.v0_host.to_string(),
                        port: b.v0_port,
                        security_protocol: 0,
                    },
                )])
            } else {
                b.endpoints
                    .iter()
                    .map(|e| {
                        // v1/v2 have no listener name: it is the protocol's name.
                        let listener = if version >= 3 {
                            e.listener.to_string()
                        } else {
                            protocol_name(e.security_protocol).to_string()
                        };
                        (
                            listener,
                            Endpoint {
                                host: e.host.to_string(),
                                port: e.port,
                                security_protocol: e.security_protocol,
                            },
                        )
                    })
                    .collect()
            };
            (
                b.id.0,
                LiveBroker {
                    id: b.id.0,
                    rack: b.rack.as_ref().map(|r| r.to_string()),
                    endpoints,
                },
            )
        })
        .collect();

    let mut deleted = Vec::new();
    let mut apply_partition =
        |snap: &mut MetadataSnapshot, topic: &str, p: &UpdateMetadataPartitionState| {
            if p.leader.0 == LEADER_DURING_DELETE {
                if let Some(t) = snap.topics.get_mut(topic) {
                    Arc::make_mut(t).partitions.remove(&p.partition_index);
                    if t.partitions.is_empty() {
                        let t = snap.topics.remove(topic);
                        if let Some(t) = t {
                            snap.topic_names.remove(&t.topic_id);
                        }
                    }
                }
                deleted.push(TopicPartition::new(topic, p.partition_index));
            } else {
                if !snap.topics.contains_key(topic) {
                    snap.topics.insert(topic.to_string(), Arc::default());
                }
                let Some(t) = snap.topics.get_mut(topic) else {
                    return;
                };
                let t = Arc::make_mut(t);
                t.partitions.insert(
                    p.partition_index,
                    PartitionState {
                        controller_epoch: p.controller_epoch,
                        leader: p.leader.0,
                        leader_epoch: p.leader_epoch,
                        isr: p.isr.iter().map(|b| b.0).collect(),
                        zk_version: p.zk_version,
                        replicas: p.replicas.iter().map(|b| b.0).collect(),
                        offline_replicas: p.offline_replicas.iter().map(|b| b.0).collect(),
                    },
                );
            }
        };

    if version < 5 {
        for p in &req.ungrouped_partition_states {
            let topic = p.topic_name.0.to_string();
            apply_partition(snap, &topic, p);
        }
    } else {
        for ts in &req.topic_states {
            let topic = ts.topic_name.0.to_string();
            for p in &ts.partition_states {
                apply_partition(snap, &topic, p);
            }
            if version >= 7 && !ts.topic_id.is_nil() {
                if let Some(t) = snap.topics.get_mut(&topic) {
                    if t.topic_id != ts.topic_id {
                        let t = Arc::make_mut(t);
                        snap.topic_names.remove(&t.topic_id);
                        t.topic_id = ts.topic_id;
                        snap.topic_names.insert(ts.topic_id, topic.clone());
                    }
                }
            }
        }
    }
    deleted
}

/// Kafka's `SecurityProtocol` names by id.
pub fn protocol_name(id: i16) -> &'static str {
    match id {
        0 => "PLAINTEXT",
        1 => "SSL",
        2 => "SASL_PLAINTEXT",
        3 => "SASL_SSL",
        _ => "UNKNOWN",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::update_metadata_request::{
        UpdateMetadataBroker, UpdateMetadataEndpoint, UpdateMetadataTopicState,
    };
    use kafka_protocol::messages::{BrokerId as KBrokerId, TopicName};

    fn ps(partition: i32, leader: i32) -> UpdateMetadataPartitionState {
        let mut p = UpdateMetadataPartitionState::default();
        p.partition_index = partition;
        p.leader = KBrokerId(leader);
        p.leader_epoch = 3;
        p.isr = vec![KBrokerId(1), KBrokerId(2)];
        p.replicas = vec![KBrokerId(1), KBrokerId(2)];
        p
    }

    fn broker(id: i32, port: i32) -> UpdateMetadataBroker {
        let mut e = UpdateMetadataEndpoint::default();
        e.host = "localhost".into();
        e.port = port;
        e.listener = "PLAINTEXT".into();
        let mut b = UpdateMetadataBroker::default();
        b.id = KBrokerId(id);
        b.endpoints = vec![e];
        b
    }

    fn req(
        topic: &str,
        id: Uuid,
        parts: Vec<UpdateMetadataPartitionState>,
    ) -> UpdateMetadataRequest {
        let mut ts = UpdateMetadataTopicState::default();
        ts.topic_name = TopicName(topic.to_string().into());
        ts.topic_id = id;
        ts.partition_states = parts;
        let mut r = UpdateMetadataRequest::default();
        r.controller_id = KBrokerId(1);
        r.controller_epoch = 1;
        r.topic_states = vec![ts];
        r.live_brokers = vec![broker(1, 9001), broker(2, 9002)];
        r
    }

    #[test]
    fn merge_and_delete() {
        let cache = MetadataCache::new();
        let id = Uuid::new_v4();
        let before = cache.snapshot();
        cache.apply(&req("t", id, vec![ps(0, 1), ps(1, 2)]), 8);
        let s = cache.snapshot();
        assert!(before.topics.is_empty(), "old snapshot unchanged");
        assert_eq!(s.controller_id, Some(1));
        assert_eq!(s.topic_id("t"), Some(id));
        assert_eq!(s.topic_name(&id), Some("t"));
        assert_eq!(
            s.partition(&TopicPartition::new("t", 1)).map(|p| p.leader),
            Some(2)
        );
        assert_eq!(s.endpoint(2, "PLAINTEXT").map(|e| e.port), Some(9002));

        // A later request for partition 0 only merges.
        cache.apply(&req("t", id, vec![ps(0, 2)]), 8);
        let s = cache.snapshot();
        assert_eq!(s.topics["t"].partitions.len(), 2);
        assert_eq!(
            s.partition(&TopicPartition::new("t", 0)).map(|p| p.leader),
            Some(2)
        );

        // Deletion removes partitions, then the topic and its id.
        let deleted = cache.apply(
            &req(
                "t",
                id,
                vec![ps(0, LEADER_DURING_DELETE), ps(1, LEADER_DURING_DELETE)],
            ),
            8,
        );
        assert_eq!(deleted.len(), 2);
        let s = cache.snapshot();
        assert!(!s.contains_topic("t"));
        assert_eq!(s.topic_name(&id), None);
    }
}
