//! One type per znode: path, JSON encode and decode. The only place that knows znode paths.
//!
//! Everything here mirrors Kafka 3.9's `kafka.zk.ZkData`. Conventions (all writers are Jackson,
//! compact JSON, unstable key order — compare parsed JSON, never bytes):
//! * decoders walk a JSON tree and ignore unknown keys, except for `/admin/reassign_partitions`,
//!   which Kafka binds to a Java class and therefore rejects unknown keys;
//! * several numbers are JSON *strings* (`timestamp`, `/cluster/id` `version`, producer id blocks);
//! * nodes created "empty" hold no data (`b""`); decoders treat empty data as "absent".
//!
//! Decoders never panic on bad bytes: they return [`Error::InvalidZnode`] naming the path.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::types::kafka_uuid::{self, Uuid};
use crate::types::{BrokerId, ControllerEpoch, LeaderEpoch, TopicPartition};

fn invalid(path: impl Into<String>, reason: impl fmt::Display) -> Error {
    Error::InvalidZnode {
        path: path.into(),
        reason: reason.to_string(),
    }
}

fn parse_object(path: &str, bytes: &[u8]) -> Result<Map<String, Value>> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(other) => Err(invalid(
            path,
            format!("expected a JSON object, got {other}"),
        )),
        Err(e) => Err(invalid(
            path,
            format!("bad JSON ({e}): {}", String::from_utf8_lossy(bytes)),
        )),
    }
}

fn to_bytes(v: &Value) -> Vec<u8> {
    // Serializing a Value built from plain types cannot fail.
    serde_json::to_vec(v).unwrap_or_default()
}

fn get_i64(path: &str, m: &Map<String, Value>, key: &str) -> Result<i64> {
    match m.get(key) {
        Some(Value::Number(n)) => n
            .as_i64()
            .ok_or_else(|| invalid(path, format!("`{key}` is not an integer"))),
        Some(other) => Err(invalid(path, format!("`{key}` is not a number: {other}"))),
        None => Err(invalid(path, format!("missing `{key}`"))),
    }
}

fn get_i32(path: &str, m: &Map<String, Value>, key: &str) -> Result<i32> {
    let v = get_i64(path, m, key)?;
    i32::try_from(v).map_err(|_| invalid(path, format!("`{key}` out of range")))
}

/// Numbers Kafka writes as strings; accept either form when reading.
fn get_long_lenient(path: &str, m: &Map<String, Value>, key: &str) -> Result<i64> {
    match m.get(key) {
        Some(Value::String(s)) => s
            .parse()
            .map_err(|_| invalid(path, format!("`{key}` is not a number: {s}"))),
        Some(Value::Number(n)) => n
            .as_i64()
            .ok_or_else(|| invalid(path, format!("`{key}` is not an integer"))),
        Some(other) => Err(invalid(path, format!("`{key}` has wrong type: {other}"))),
        None => Err(invalid(path, format!("missing `{key}`"))),
    }
}

fn get_str<'a>(path: &str, m: &'a Map<String, Value>, key: &str) -> Result<&'a str> {
    match m.get(key) {
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(invalid(path, format!("`{key}` is not a string: {other}"))),
        None => Err(invalid(path, format!("missing `{key}`"))),
    }
}

fn int_list(path: &str, v: &Value, what: &str) -> Result<Vec<i32>> {
    let arr = v
        .as_array()
        .ok_or_else(|| invalid(path, format!("{what} is not an array")))?;
    arr.iter()
        .map(|x| {
            x.as_i64()
                .and_then(|n| i32::try_from(n).ok())
                .ok_or_else(|| invalid(path, format!("{what} has a non-int element {x}")))
        })
        .collect()
}

fn partition_map(path: &str, v: Option<&Value>, what: &str) -> Result<BTreeMap<i32, Vec<i32>>> {
    let mut out = BTreeMap::new();
    let Some(v) = v else { return Ok(out) };
    if v.is_null() {
        return Ok(out);
    }
    let obj = v
        .as_object()
        .ok_or_else(|| invalid(path, format!("`{what}` is not an object")))?;
    for (k, reps) in obj {
        let p: i32 = k
            .parse()
            .map_err(|_| invalid(path, format!("`{what}` key {k:?} is not a partition index")))?;
        out.insert(p, int_list(path, reps, what)?);
    }
    Ok(out)
}

fn partition_map_json(m: &BTreeMap<i32, Vec<i32>>) -> Value {
    Value::Object(
        m.iter()
            .map(|(p, r)| (p.to_string(), json!(r)))
            .collect::<Map<String, Value>>(),
    )
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// Top-level containers
// ---------------------------------------------------------------------------------------------

/// `/consumers`: only created (empty); pre-0.9 consumers and tools like Burrow live below it.
pub struct ConsumersZNode;
impl ConsumersZNode {
    pub const PATH: &'static str = "/consumers";
}

/// `/consumers/<group>/offsets/<topic>/<partition>`: an offset committed with OffsetCommit v0,
/// which a ZooKeeper-mode Kafka broker stores here (Kafka's `ConsumerOffset` znode); the data
/// is the offset in decimal.
pub struct ConsumerOffsetZNode;
impl ConsumerOffsetZNode {
    pub fn path(group: &str, topic: &str, partition: i32) -> String {
        format!("/consumers/{group}/offsets/{topic}/{partition}")
    }

    pub fn encode(offset: i64) -> Vec<u8> {
        offset.to_string().into_bytes()
    }

    /// `None` if the data is not a decimal offset.
    pub fn decode(bytes: &[u8]) -> Option<i64> {
        std::str::from_utf8(bytes).ok()?.trim().parse().ok()
    }
}

/// `/brokers`: parent of `ids`, `topics`, `seqid`.
pub struct BrokersZNode;
impl BrokersZNode {
    pub const PATH: &'static str = "/brokers";
}

/// `/config`: parent of `changes` and one node per entity type.
pub struct ConfigZNode;
impl ConfigZNode {
    pub const PATH: &'static str = "/config";
}

/// `/admin`: parent of `delete_topics`, `reassign_partitions`, `preferred_replica_election`.
pub struct AdminZNode;
impl AdminZNode {
    pub const PATH: &'static str = "/admin";
}

/// Persistent paths every broker creates at start (if missing, empty data, parents as needed),
/// in Kafka's order (`KafkaZkClient.createTopLevelPaths` / `ZkData.PersistentZkPaths`).
/// `/config/client-metrics` is deliberately absent, as in Kafka 3.9.
pub const PERSISTENT_ZK_PATHS: [&str; 14] = [
    "/consumers",
    "/brokers/ids",
    "/brokers/topics",
    "/config/changes",
    "/admin/delete_topics",
    "/brokers/seqid",
    "/isr_change_notification",
    "/latest_producer_id_block",
    "/log_dir_event_notification",
    "/config/topics",
    "/config/clients",
    "/config/users",
    "/config/brokers",
    "/config/ips",
];

// ---------------------------------------------------------------------------------------------
// Cluster id
// ---------------------------------------------------------------------------------------------

/// `/cluster/id` (persistent): `{"version":"1","id":"<22-char base64>"}`. Note `version` is a string.
/// Created by the first broker (create; NODEEXISTS → read).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterIdZNode {
    pub id: String,
}

impl ClusterIdZNode {
    pub const PATH: &'static str = "/cluster/id";

    pub fn encode(&self) -> Vec<u8> {
        to_bytes(&json!({"version": "1", "id": self.id}))
    }

    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let m = parse_object(Self::PATH, bytes)?;
        Ok(Self {
            id: get_str(Self::PATH, &m, "id")?.to_string(),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Controller
// ---------------------------------------------------------------------------------------------

/// `/controller` (ephemeral). Written as version 2 (Kafka ≥ 3.4):
/// `{"version":2,"brokerid":1,"timestamp":"1731000000000","kraftControllerEpoch":-1}`;
/// pre-3.4 writers use v1 `{"version":1,"brokerid":1,"timestamp":"..."}`. Readers need `brokerid` only.
/// `kraftControllerEpoch > 0` on a persistent node means a KRaft migration owns the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControllerZNode {
    pub broker_id: BrokerId,
    /// Election time, epoch ms (a string in JSON); 0 when absent/unparseable.
    pub timestamp: i64,
    /// -1 for ZK controllers (and absent in v1).
    pub kraft_controller_epoch: i32,
}

impl ControllerZNode {
    pub const PATH: &'static str = "/controller";

    /// A ZK-mode controller registration for `broker_id`, stamped now.
    pub fn new(broker_id: BrokerId) -> Self {
        Self {
            broker_id,
            timestamp: now_ms(),
            kraft_controller_epoch: -1,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        to_bytes(&json!({
            "version": 2,
            "brokerid": self.broker_id,
            "timestamp": self.timestamp.to_string(),
            "kraftControllerEpoch": self.kraft_controller_epoch,
        }))
    }

    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let p = Self::PATH;
        let m = parse_object(p, bytes)?;
        let broker_id = get_i32(p, &m, "brokerid")?;
        let timestamp = get_long_lenient(p, &m, "timestamp").unwrap_or(0);
        let kraft_controller_epoch = match m.get("kraftControllerEpoch") {
            Some(_) => get_i32(p, &m, "kraftControllerEpoch")?,
            None => -1,
        };
        Ok(Self {
            broker_id,
            timestamp,
            kraft_controller_epoch,
        })
    }
}

/// `/controller_epoch` (persistent): the epoch as decimal ASCII, e.g. `5`. Created as `0`; each
/// election writes `epoch+1` conditioned on the zkVersion read just before (first epoch = 1).
pub struct ControllerEpochZNode;

impl ControllerEpochZNode {
    pub const PATH: &'static str = "/controller_epoch";

    pub fn encode(epoch: ControllerEpoch) -> Vec<u8> {
        epoch.to_string().into_bytes()
    }

    pub fn decode(bytes: &[u8]) -> Result<ControllerEpoch> {
        let s = std::str::from_utf8(bytes).map_err(|e| invalid(Self::PATH, e))?;
        s.trim()
            .parse()
            .map_err(|_| invalid(Self::PATH, format!("not an integer: {s:?}")))
    }
}

// ---------------------------------------------------------------------------------------------
// Brokers
// ---------------------------------------------------------------------------------------------

/// `/brokers/ids`: children are the registered (live) broker ids.
pub struct BrokerIdsZNode;
impl BrokerIdsZNode {
    pub const PATH: &'static str = "/brokers/ids";
}

/// `/brokers/seqid` (persistent, empty): its dataVersion after a blind setData is the sequence
/// used to generate broker ids (`id = version + reserved.broker.max.id`).
pub struct BrokerSequenceIdZNode;
impl BrokerSequenceIdZNode {
    pub const PATH: &'static str = "/brokers/seqid";
}

pub use crate::config::SecurityProtocol;

/// `SecurityProtocol` from its wire id (UpdateMetadata).
pub fn security_protocol_from_id(id: i16) -> Option<SecurityProtocol> {
    Some(match id {
        0 => SecurityProtocol::Plaintext,
        1 => SecurityProtocol::Ssl,
        2 => SecurityProtocol::SaslPlaintext,
        3 => SecurityProtocol::SaslSsl,
        _ => return None,
    })
}

/// One advertised endpoint: `LISTENER://host:port` (IPv6 hosts in brackets).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndPoint {
    pub listener_name: String,
    pub host: String,
    pub port: i32,
    pub security_protocol: SecurityProtocol,
}

impl From<&crate::config::Endpoint> for EndPoint {
    fn from(e: &crate::config::Endpoint) -> Self {
        Self {
            listener_name: e.name.clone(),
            host: e.host.clone(),
            port: i32::from(e.port),
            security_protocol: e.security_protocol,
        }
    }
}

impl EndPoint {
    /// Kafka's `EndPoint.connectionString`.
    pub fn connection_string(&self) -> String {
        if self.host.contains(':') {
            format!("{}://[{}]:{}", self.listener_name, self.host, self.port)
        } else {
            format!("{}://{}:{}", self.listener_name, self.host, self.port)
        }
    }

    /// Kafka's `EndPoint.createEndPoint`: parse `LISTENER://host:port`; the protocol comes from the
    /// listener map, or (map absent) the listener name itself must be a protocol name.
    pub fn parse(
        s: &str,
        protocol_map: Option<&BTreeMap<String, SecurityProtocol>>,
    ) -> Option<Self> {
        let (listener, rest) = s.split_once("://")?;
        let colon = rest.rfind(':')?;
        let (host, port) = (&rest[..colon], &rest[colon + 1..]);
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let port: i32 = port.parse().ok()?;
        let listener_name = listener.to_ascii_uppercase();
        let security_protocol = match protocol_map {
            Some(m) => *m.get(&listener_name)?,
            None => SecurityProtocol::parse(&listener_name)?,
        };
        Some(Self {
            listener_name,
            host: host.to_string(),
            port,
            security_protocol,
        })
    }
}

/// `/brokers/ids/<id>` (ephemeral): the broker registration.
///
/// Version 5 (IBP ≥ 2.7-IV0, what we write):
/// `{"features":{},"listener_security_protocol_map":{"PLAINTEXT":"PLAINTEXT"},
///   "endpoints":["PLAINTEXT://b1:9092"],"jmx_port":-1,"port":9092,"host":"b1",
///   "timestamp":"1731000000000","version":5}` plus `"rack":"r1"` only when `broker.rack` is set.
/// v4 = v5 without `features`; v2/v3 lack the listener map (listener name = protocol name);
/// v1 has only `host`/`port` (one PLAINTEXT endpoint). `host`/`port` are the first PLAINTEXT
/// endpoint, else `null`/`-1`. `timestamp` is a string. Decoding rejects version < 1.
/// Written as `multi[create(ephemeral, empty), setData(json, version 0)]` → dataVersion 1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerInfo {
    pub id: BrokerId,
    pub version: i32,
    pub endpoints: Vec<EndPoint>,
    pub jmx_port: i32,
    pub rack: Option<String>,
    /// Supported features `name -> (min_version, max_version)`; ZK-mode 3.9 brokers register none.
    pub features: BTreeMap<String, (i16, i16)>,
    /// Registration time, epoch ms.
    pub timestamp: i64,
}

/// Path helper for `/brokers/ids/<id>`; the payload type is [`BrokerInfo`].
pub struct BrokerIdZNode;
impl BrokerIdZNode {
    pub fn path(id: BrokerId) -> String {
        format!("{}/{}", BrokerIdsZNode::PATH, id)
    }
}

impl BrokerInfo {
    /// A v5 registration stamped now.
    pub fn new(
        id: BrokerId,
        endpoints: Vec<EndPoint>,
        rack: Option<String>,
        jmx_port: i32,
    ) -> Self {
        Self {
            id,
            version: 5,
            endpoints,
            jmx_port,
            rack,
            features: BTreeMap::new(),
            timestamp: now_ms(),
        }
    }

    pub fn path(&self) -> String {
        BrokerIdZNode::path(self.id)
    }

    /// The endpoint of a listener, by (upper-case) listener name.
    pub fn endpoint(&self, listener: &str) -> Option<&EndPoint> {
        self.endpoints
            .iter()
            .find(|e| e.listener_name.eq_ignore_ascii_case(listener))
    }

    pub fn encode(&self) -> Vec<u8> {
        let plaintext = self
            .endpoints
            .iter()
            .find(|e| e.security_protocol == SecurityProtocol::Plaintext);
        let mut m = Map::new();
        m.insert("version".into(), json!(self.version));
        m.insert(
            "host".into(),
            plaintext.map_or(Value::Null, |e| json!(e.host)),
        );
        m.insert("port".into(), json!(plaintext.map_or(-1, |e| e.port)));
        m.insert(
            "endpoints".into(),
            json!(self
                .endpoints
                .iter()
                .map(EndPoint::connection_string)
                .collect::<Vec<_>>()),
        );
        m.insert("jmx_port".into(), json!(self.jmx_port));
        m.insert("timestamp".into(), json!(self.timestamp.to_string()));
        if let Some(rack) = &self.rack {
            if self.version >= 3 {
                m.insert("rack".into(), json!(rack));
            }
        }
        if self.version >= 4 {
            let lsp: Map<String, Value> = self
                .endpoints
                .iter()
                .map(|e| (e.listener_name.clone(), json!(e.security_protocol.name())))
                .collect();
            m.insert("listener_security_protocol_map".into(), Value::Object(lsp));
        }
        if self.version >= 5 {
            let f: Map<String, Value> = self
                .features
                .iter()
                .map(|(k, (min, max))| (k.clone(), json!({"min_version": min, "max_version": max})))
                .collect();
            m.insert("features".into(), Value::Object(f));
        }
        to_bytes(&Value::Object(m))
    }

    pub fn decode(id: BrokerId, bytes: &[u8]) -> Result<Self> {
        let path = BrokerIdZNode::path(id);
        let p = path.as_str();
        let m = parse_object(p, bytes)?;
        let version = get_i32(p, &m, "version")?;
        let jmx_port = match m.get("jmx_port") {
            Some(Value::Null) | None => -1,
            _ => get_i32(p, &m, "jmx_port")?,
        };
        if version < 1 {
            return Err(invalid(
                p,
                format!("unsupported registration version {version}"),
            ));
        }
        let endpoints = if version == 1 {
            let host = get_str(p, &m, "host")?.to_string();
            let port = get_i32(p, &m, "port")?;
            vec![EndPoint {
                listener_name: "PLAINTEXT".into(),
                host,
                port,
                security_protocol: SecurityProtocol::Plaintext,
            }]
        } else {
            let map = match m.get("listener_security_protocol_map") {
                None | Some(Value::Null) => None,
                Some(Value::Object(o)) => {
                    let mut out = BTreeMap::new();
                    for (k, v) in o {
                        let proto = v
                            .as_str()
                            .and_then(SecurityProtocol::parse)
                            .ok_or_else(|| invalid(p, format!("bad security protocol {v}")))?;
                        out.insert(k.to_ascii_uppercase(), proto);
                    }
                    Some(out)
                }
                Some(other) => return Err(invalid(p, format!("bad listener map {other}"))),
            };
            let eps = m
                .get("endpoints")
                .and_then(Value::as_array)
                .ok_or_else(|| invalid(p, "missing `endpoints`"))?;
            eps.iter()
                .map(|e| {
                    e.as_str()
                        .and_then(|s| EndPoint::parse(s, map.as_ref()))
                        .ok_or_else(|| invalid(p, format!("bad endpoint {e}")))
                })
                .collect::<Result<Vec<_>>>()?
        };
        let rack = m.get("rack").and_then(Value::as_str).map(str::to_string);
        let mut features = BTreeMap::new();
        if let Some(Value::Object(f)) = m.get("features") {
            for (name, range) in f {
                let r = range
                    .as_object()
                    .ok_or_else(|| invalid(p, format!("bad feature {name}")))?;
                let min = get_i32(p, r, "min_version")? as i16;
                let max = get_i32(p, r, "max_version")? as i16;
                features.insert(name.clone(), (min, max));
            }
        }
        let timestamp = get_long_lenient(p, &m, "timestamp").unwrap_or(0);
        Ok(Self {
            id,
            version,
            endpoints,
            jmx_port,
            rack,
            features,
            timestamp,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Topics and partitions
// ---------------------------------------------------------------------------------------------

/// `/brokers/topics`: children are topic names.
pub struct TopicsZNode;
impl TopicsZNode {
    pub const PATH: &'static str = "/brokers/topics";
}

/// `/brokers/topics/<t>` (persistent): the replica assignment.
///
/// Written as version 3 (Kafka ≥ 2.8 at IBP ≥ 2.8-IV0):
/// `{"version":3,"partitions":{"0":[1,2,3],"1":[2,3,1]},"adding_replicas":{},"removing_replicas":{},"topic_id":"k3fQ..."}`.
/// `partitions` maps index → full replica list (head = preferred leader); `adding_replicas` /
/// `removing_replicas` only list partitions under reassignment (maps always present).
/// Older writers: v1 `{"version":1,"partitions":{...}}`, v2 adds the adding/removing maps, no id.
/// The decoder ignores `version`, treats missing maps as empty, missing `partitions` as none.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TopicZNode {
    pub topic_id: Option<Uuid>,
    pub partitions: BTreeMap<i32, Vec<BrokerId>>,
    pub adding_replicas: BTreeMap<i32, Vec<BrokerId>>,
    pub removing_replicas: BTreeMap<i32, Vec<BrokerId>>,
}

impl TopicZNode {
    pub fn path(topic: &str) -> String {
        format!("{}/{}", TopicsZNode::PATH, topic)
    }

    /// A fresh assignment (no reassignment in progress).
    pub fn new(topic_id: Option<Uuid>, partitions: BTreeMap<i32, Vec<BrokerId>>) -> Self {
        Self {
            topic_id,
            partitions,
            ..Default::default()
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let non_empty = |m: &BTreeMap<i32, Vec<i32>>| -> BTreeMap<i32, Vec<i32>> {
            m.iter()
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| (*k, v.clone()))
                .collect()
        };
        let mut m = Map::new();
        m.insert("version".into(), json!(3));
        m.insert("partitions".into(), partition_map_json(&self.partitions));
        m.insert(
            "adding_replicas".into(),
            partition_map_json(&non_empty(&self.adding_replicas)),
        );
        m.insert(
            "removing_replicas".into(),
            partition_map_json(&non_empty(&self.removing_replicas)),
        );
        if let Some(id) = &self.topic_id {
            m.insert("topic_id".into(), json!(kafka_uuid::to_base64(id)));
        }
        to_bytes(&Value::Object(m))
    }

    /// `topic` is only used to name the znode in errors. Empty data decodes as "no partitions".
    pub fn decode(topic: &str, bytes: &[u8]) -> Result<Self> {
        if bytes.is_empty() {
            return Ok(Self::default());
        }
        let path = Self::path(topic);
        let p = path.as_str();
        let m = parse_object(p, bytes)?;
        let topic_id = match m.get("topic_id") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(
                kafka_uuid::from_base64(s)
                    .ok_or_else(|| invalid(p, format!("bad topic_id {s:?}")))?,
            ),
            Some(other) => return Err(invalid(p, format!("bad topic_id {other}"))),
        };
        Ok(Self {
            topic_id,
            partitions: partition_map(p, m.get("partitions"), "partitions")?,
            adding_replicas: partition_map(p, m.get("adding_replicas"), "adding_replicas")?,
            removing_replicas: partition_map(p, m.get("removing_replicas"), "removing_replicas")?,
        })
    }
}

/// `/brokers/topics/<t>/partitions` (persistent, empty; created by the controller).
pub struct TopicPartitionsZNode;
impl TopicPartitionsZNode {
    pub fn path(topic: &str) -> String {
        format!("{}/partitions", TopicZNode::path(topic))
    }
}

/// `/brokers/topics/<t>/partitions/<p>` (persistent, empty; created by the controller).
pub struct TopicPartitionZNode;
impl TopicPartitionZNode {
    pub fn path(tp: &TopicPartition) -> String {
        format!("{}/{}", TopicPartitionsZNode::path(&tp.topic), tp.partition)
    }
}

/// `/brokers/topics/<t>/partitions/<p>/state` (persistent): leader and ISR.
///
/// `{"controller_epoch":3,"leader":1,"version":1,"leader_epoch":7,"isr":[1,2]}` plus
/// `"leader_recovery_state":1` only when RECOVERING (omitted when RECOVERED = 0).
/// `leader = -1` = no leader. The znode's zkVersion is the *partition epoch* carried in RPCs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicPartitionStateZNode {
    pub leader: BrokerId,
    pub leader_epoch: LeaderEpoch,
    pub isr: Vec<BrokerId>,
    /// 0 = RECOVERED, 1 = RECOVERING.
    pub leader_recovery_state: i8,
    /// Epoch of the controller that made the last leadership decision.
    pub controller_epoch: ControllerEpoch,
}

impl TopicPartitionStateZNode {
    pub fn path(tp: &TopicPartition) -> String {
        format!("{}/state", TopicPartitionZNode::path(tp))
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut m = Map::new();
        m.insert("version".into(), json!(1));
        m.insert("leader".into(), json!(self.leader));
        m.insert("leader_epoch".into(), json!(self.leader_epoch));
        m.insert("controller_epoch".into(), json!(self.controller_epoch));
        m.insert("isr".into(), json!(self.isr));
        if self.leader_recovery_state == 1 {
            m.insert("leader_recovery_state".into(), json!(1));
        }
        to_bytes(&Value::Object(m))
    }

    pub fn decode(tp: &TopicPartition, bytes: &[u8]) -> Result<Self> {
        let path = Self::path(tp);
        let p = path.as_str();
        let m = parse_object(p, bytes)?;
        let isr = int_list(
            p,
            m.get("isr").ok_or_else(|| invalid(p, "missing `isr`"))?,
            "isr",
        )?;
        let leader_recovery_state = match m.get("leader_recovery_state") {
            None | Some(Value::Null) => 0,
            Some(_) => {
                let v = get_i32(p, &m, "leader_recovery_state")?;
                if v != 0 && v != 1 {
                    return Err(invalid(p, format!("bad leader_recovery_state {v}")));
                }
                v as i8
            }
        };
        Ok(Self {
            leader: get_i32(p, &m, "leader")?,
            leader_epoch: get_i32(p, &m, "leader_epoch")?,
            isr,
            leader_recovery_state,
            controller_epoch: get_i32(p, &m, "controller_epoch")?,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Configs
// ---------------------------------------------------------------------------------------------

/// Entity types under `/config`.
pub mod config_type {
    pub const TOPIC: &str = "topics";
    pub const CLIENT: &str = "clients";
    pub const USER: &str = "users";
    pub const BROKER: &str = "brokers";
    pub const IP: &str = "ips";
    /// Name of the default entity (`/config/brokers/<default>`).
    pub const DEFAULT_ENTITY: &str = "<default>";
}

/// Client quota configs (Kafka's `QuotaConfigs`), kept in the config of a quota entity:
///
/// * `/config/users/<user>` — all clients of a user (this znode also holds the user's
///   SCRAM credentials);
/// * `/config/users/<user>/clients/<client-id>` — one client of one user;
/// * `/config/clients/<client-id>` — a client id, whatever the user;
/// * `<default>` in place of a user or client id names the default of that level
///   (`/config/users/<default>/clients/<default>`, `/config/clients/<default>`, ...).
///
/// Names are sanitized ([`sanitize_entity_name`]). The payload is the usual entity config,
/// `{"version":1,"config":{"producer_byte_rate":"1048576"}}`, and a change is announced with
/// `/config/changes/config_change_<seq>` = `{"version":2,"entity_path":"clients/app1"}`
/// (or `users/alice`, `users/alice/clients/app1`, `users/<default>`), exactly as
/// `kafka-configs.sh --alter --add-config producer_byte_rate=...` and AlterClientQuotas
/// write them.
pub mod quota_config {
    /// Bytes per second a producer may send (Kafka type LONG).
    pub const PRODUCER_BYTE_RATE: &str = "producer_byte_rate";
    /// Bytes per second a consumer may fetch (LONG).
    pub const CONSUMER_BYTE_RATE: &str = "consumer_byte_rate";
    /// Percentage of request handler time (DOUBLE).
    pub const REQUEST_PERCENTAGE: &str = "request_percentage";
    /// Partition mutations per second for CreateTopics/CreatePartitions/DeleteTopics (DOUBLE).
    pub const CONTROLLER_MUTATION_RATE: &str = "controller_mutation_rate";
    /// Every quota key.
    pub const ALL: [&str; 4] = [
        PRODUCER_BYTE_RATE,
        CONSUMER_BYTE_RATE,
        REQUEST_PERCENTAGE,
        CONTROLLER_MUTATION_RATE,
    ];
    /// Child of `/config/users/<user>` holding that user's per-client entities.
    pub const CLIENTS_CHILD: &str = "clients";

    /// Splits a quota entity path below `/config` (as in a change notification) into its
    /// sanitized user and client id parts: `users/a` → `(Some("a"), None)`,
    /// `users/a/clients/c` → `(Some("a"), Some("c"))`, `clients/c` → `(None, Some("c"))`.
    /// `None` for any other shape.
    pub fn parse_entity_path(path: &str) -> Option<(Option<&str>, Option<&str>)> {
        let parts: Vec<&str> = path.split('/').collect();
        let ok = |s: &&str| !s.is_empty();
        match parts.as_slice() {
            ["users", u] if ok(u) => Some((Some(u), None)),
            ["users", u, "clients", c] if ok(u) && ok(c) => Some((Some(u), Some(c))),
            ["clients", c] if ok(c) => Some((None, Some(c))),
            _ => None,
        }
    }

    /// The entity path (below `/config`) of a user and/or client id, sanitized names given.
    pub fn entity_path(user: Option<&str>, client: Option<&str>) -> Option<String> {
        match (user, client) {
            (Some(u), Some(c)) => Some(format!("users/{u}/clients/{c}")),
            (Some(u), None) => Some(format!("users/{u}")),
            (None, Some(c)) => Some(format!("clients/{c}")),
            (None, None) => None,
        }
    }
}

/// Kafka's `Sanitizer.sanitize` for user and client entity names in znode paths: every
/// character but `[A-Za-z0-9._-]` becomes `%XX` of its UTF-8 bytes (so `*` is `%2A` and
/// a space `%20`).
pub fn sanitize_entity_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Inverse of [`sanitize_entity_name`] (`Sanitizer.desanitize`); `None` on bad escapes.
pub fn desanitize_entity_name(name: &str) -> Option<String> {
    let bytes = name.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `/config/<type>`: children are (sanitized) entity names.
pub struct ConfigEntityTypeZNode;
impl ConfigEntityTypeZNode {
    pub fn path(entity_type: &str) -> String {
        format!("{}/{}", ConfigZNode::PATH, entity_type)
    }
}

/// `/config/<type>/<name>` (persistent): `{"version":1,"config":{"retention.ms":"86400000"}}`.
/// All values are strings. Empty or missing data decodes as an empty config.
///
/// For users (`/config/users/<user>`) the config also holds the SCRAM credentials, one
/// key per mechanism, as Kafka's `kafka-configs.sh --alter --add-config
/// 'SCRAM-SHA-256=[password=...]'` writes them:
/// `{"version":1,"config":{"SCRAM-SHA-256":"salt=<b64>,stored_key=<b64>,server_key=<b64>,iterations=4096"}}`
/// (see `samsa_common::security::scram::ScramCredential`). A change is announced with
/// `/config/changes/config_change_<seq>` = `{"version":2,"entity_path":"users/<user>"}`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigEntityZNode {
    pub config: BTreeMap<String, String>,
}

impl ConfigEntityZNode {
    pub fn path(entity_type: &str, entity_name: &str) -> String {
        format!(
            "{}/{}",
            ConfigEntityTypeZNode::path(entity_type),
            entity_name
        )
    }

    pub fn encode(&self) -> Vec<u8> {
        to_bytes(&json!({"version": 1, "config": self.config}))
    }

    pub fn decode(bytes: &[u8]) -> Result<Self> {
        if bytes.is_empty() {
            return Ok(Self::default());
        }
        let p = "/config/<entity>";
        let m = parse_object(p, bytes)?;
        let mut config = BTreeMap::new();
        if let Some(Value::Object(c)) = m.get("config") {
            for (k, v) in c {
                let s = match v {
                    Value::String(s) => s.clone(),
                    Value::Null => continue,
                    other => other.to_string(),
                };
                config.insert(k.clone(), s);
            }
        }
        Ok(Self { config })
    }
}

/// `/config/changes`: parent of change notifications.
pub struct ConfigEntityChangeNotificationZNode;
impl ConfigEntityChangeNotificationZNode {
    pub const PATH: &'static str = "/config/changes";
}

/// `/config/changes/config_change_<10-digit seq>` (persistent sequential).
///
/// Written as version 2: `{"version":2,"entity_path":"topics/my-topic"}` (also
/// `users/alice/clients/app1`, `brokers/<default>`, `brokers/3`). Legacy v1 (read only):
/// `{"version":1,"entity_type":"topics","entity_name":"my-topic"}` → entity path `topics/my-topic`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigEntityChangeNotification {
    pub entity_path: String,
}

impl ConfigEntityChangeNotification {
    pub const PREFIX: &'static str = "config_change_";

    /// Path to pass to a sequential create.
    pub fn create_path() -> String {
        format!(
            "{}/{}",
            ConfigEntityChangeNotificationZNode::PATH,
            Self::PREFIX
        )
    }

    pub fn new(entity_type: &str, entity_name: &str) -> Self {
        Self {
            entity_path: format!("{entity_type}/{entity_name}"),
        }
    }

    /// Sequence number of a child name `config_change_0000000007`.
    pub fn sequence(child: &str) -> Option<i64> {
        child.strip_prefix(Self::PREFIX)?.parse().ok()
    }

    /// `(entity_type, entity_name)`; the name may contain `/` for nested user/client quotas.
    pub fn split(&self) -> Option<(&str, &str)> {
        self.entity_path.split_once('/')
    }

    pub fn encode(&self) -> Vec<u8> {
        to_bytes(&json!({"version": 2, "entity_path": self.entity_path}))
    }

    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let p = ConfigEntityChangeNotificationZNode::PATH;
        let m = parse_object(p, bytes)?;
        match get_i32(p, &m, "version")? {
            1 => {
                let t = get_str(p, &m, "entity_type")?;
                let n = get_str(p, &m, "entity_name")?;
                Ok(Self::new(t, n))
            }
            2 => Ok(Self {
                entity_path: get_str(p, &m, "entity_path")?.to_string(),
            }),
            v => Err(invalid(
                p,
                format!("unsupported change notification version {v}"),
            )),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Admin
// ---------------------------------------------------------------------------------------------

/// `/admin/delete_topics`: children (empty data) are topics marked for deletion.
pub struct DeleteTopicsZNode;
impl DeleteTopicsZNode {
    pub const PATH: &'static str = "/admin/delete_topics";
}

/// `/admin/delete_topics/<t>` (persistent, empty): deletion marker; the controller deletes it when done.
pub struct DeleteTopicsTopicZNode;
impl DeleteTopicsTopicZNode {
    pub fn path(topic: &str) -> String {
        format!("{}/{}", DeleteTopicsZNode::PATH, topic)
    }
}

/// `/admin/reassign_partitions` (persistent, legacy tools):
/// `{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[4,5,6]}]}`.
/// Exactly these keys: Kafka binds it to a Java class, so unknown keys (e.g. `log_dirs`) make it
/// undecodable, and the controller then ignores the znode (leaves it in place).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReassignPartitionsZNode {
    pub partitions: Vec<(TopicPartition, Vec<BrokerId>)>,
}

#[derive(serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct LegacyReassignment {
    version: i32,
    partitions: Vec<LegacyReplicaAssignment>,
}

#[derive(serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct LegacyReplicaAssignment {
    topic: String,
    partition: i32,
    replicas: Vec<i32>,
}

impl ReassignPartitionsZNode {
    pub const PATH: &'static str = "/admin/reassign_partitions";

    pub fn encode(&self) -> Vec<u8> {
        let v = LegacyReassignment {
            version: 1,
            partitions: self
                .partitions
                .iter()
                .map(|(tp, r)| LegacyReplicaAssignment {
                    topic: tp.topic.clone(),
                    partition: tp.partition,
                    replicas: r.clone(),
                })
                .collect(),
        };
        serde_json::to_vec(&v).unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let v: LegacyReassignment =
            serde_json::from_slice(bytes).map_err(|e| invalid(Self::PATH, e))?;
        let _ = v.version;
        Ok(Self {
            partitions: v
                .partitions
                .into_iter()
                .map(|a| (TopicPartition::new(a.topic, a.partition), a.replicas))
                .collect(),
        })
    }
}

fn encode_partition_list(partitions: &[TopicPartition]) -> Value {
    json!(partitions
        .iter()
        .map(|tp| json!({"topic": tp.topic, "partition": tp.partition}))
        .collect::<Vec<_>>())
}

fn decode_partition_list(path: &str, m: &Map<String, Value>) -> Result<Vec<TopicPartition>> {
    let arr = m
        .get("partitions")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid(path, "missing `partitions` array"))?;
    arr.iter()
        .map(|e| {
            let o = e
                .as_object()
                .ok_or_else(|| invalid(path, format!("bad partition entry {e}")))?;
            Ok(TopicPartition::new(
                get_str(path, o, "topic")?,
                get_i32(path, o, "partition")?,
            ))
        })
        .collect()
}

/// `/admin/preferred_replica_election` (persistent, legacy tools):
/// `{"version":1,"partitions":[{"topic":"t","partition":0}]}`. The controller deletes it when done.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PreferredReplicaElectionZNode {
    pub partitions: Vec<TopicPartition>,
}

impl PreferredReplicaElectionZNode {
    pub const PATH: &'static str = "/admin/preferred_replica_election";

    pub fn encode(&self) -> Vec<u8> {
        to_bytes(&json!({"version": 1, "partitions": encode_partition_list(&self.partitions)}))
    }

    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let m = parse_object(Self::PATH, bytes)?;
        Ok(Self {
            partitions: decode_partition_list(Self::PATH, &m)?,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Notifications
// ---------------------------------------------------------------------------------------------

/// `/isr_change_notification`: parent of legacy (IBP < 2.7-IV2) ISR change notifications.
pub struct IsrChangeNotificationZNode;
impl IsrChangeNotificationZNode {
    pub const PATH: &'static str = "/isr_change_notification";
}

/// `/isr_change_notification/isr_change_<seq>` (persistent sequential):
/// `{"version":1,"partitions":[{"topic":"t","partition":0},...]}`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IsrChangeNotification {
    pub partitions: Vec<TopicPartition>,
}

impl IsrChangeNotification {
    pub const PREFIX: &'static str = "isr_change_";

    pub fn create_path() -> String {
        format!("{}/{}", IsrChangeNotificationZNode::PATH, Self::PREFIX)
    }

    pub fn path(child: &str) -> String {
        format!("{}/{}", IsrChangeNotificationZNode::PATH, child)
    }

    pub fn encode(&self) -> Vec<u8> {
        to_bytes(&json!({"version": 1, "partitions": encode_partition_list(&self.partitions)}))
    }

    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let p = IsrChangeNotificationZNode::PATH;
        let m = parse_object(p, bytes)?;
        Ok(Self {
            partitions: decode_partition_list(p, &m)?,
        })
    }
}

/// `/log_dir_event_notification`: parent of log-dir failure notifications.
pub struct LogDirEventNotificationZNode;
impl LogDirEventNotificationZNode {
    pub const PATH: &'static str = "/log_dir_event_notification";
}

/// `/log_dir_event_notification/log_dir_event_<seq>` (persistent sequential):
/// `{"version":1,"broker":2,"event":1}` (event 1 = log dir failure).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogDirEventNotification {
    pub broker: BrokerId,
    pub event: i32,
}

impl LogDirEventNotification {
    pub const PREFIX: &'static str = "log_dir_event_";
    pub const LOG_DIR_FAILURE: i32 = 1;

    pub fn create_path() -> String {
        format!("{}/{}", LogDirEventNotificationZNode::PATH, Self::PREFIX)
    }

    pub fn path(child: &str) -> String {
        format!("{}/{}", LogDirEventNotificationZNode::PATH, child)
    }

    pub fn encode(&self) -> Vec<u8> {
        to_bytes(&json!({"version": 1, "broker": self.broker, "event": self.event}))
    }

    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let p = LogDirEventNotificationZNode::PATH;
        let m = parse_object(p, bytes)?;
        Ok(Self {
            broker: get_i32(p, &m, "broker")?,
            event: get_i32(p, &m, "event")?,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Producer ids and features
// ---------------------------------------------------------------------------------------------

/// `/latest_producer_id_block` (persistent): the last handed-out block of producer ids,
/// `{"version":1,"broker":2,"block_start":"3000","block_end":"3999"}` (start/end are strings).
/// Blocks are 1000 ids; the next starts at `block_end + 1`; an empty node means "start at 0".
/// Always written with a conditional set on the zkVersion just read (retry on BADVERSION).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProducerIdBlockZNode {
    pub broker: BrokerId,
    pub block_start: i64,
    pub block_end: i64,
}

impl ProducerIdBlockZNode {
    pub const PATH: &'static str = "/latest_producer_id_block";
    pub const BLOCK_SIZE: i64 = 1000;

    /// The block after `prev` (or the first block) for `broker`.
    pub fn next(prev: Option<&Self>, broker: BrokerId) -> Self {
        let start = prev.map_or(0, |p| p.block_end + 1);
        Self {
            broker,
            block_start: start,
            block_end: start + Self::BLOCK_SIZE - 1,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        to_bytes(&json!({
            "version": 1,
            "broker": self.broker,
            "block_start": self.block_start.to_string(),
            "block_end": self.block_end.to_string(),
        }))
    }

    /// `Ok(None)` for the empty node.
    pub fn decode(bytes: &[u8]) -> Result<Option<Self>> {
        if bytes.is_empty() {
            return Ok(None);
        }
        let p = Self::PATH;
        let m = parse_object(p, bytes)?;
        Ok(Some(Self {
            broker: get_i32(p, &m, "broker")?,
            block_start: get_long_lenient(p, &m, "block_start")?,
            block_end: get_long_lenient(p, &m, "block_end")?,
        }))
    }
}

/// `/feature` (persistent): finalized features, rewritten by the controller on every failover.
///
/// IBP 3.9: `{"version":2,"status":1,"features":{}}` (status 1 = enabled, 0 = disabled).
/// Per-feature value: v2 `{"max_version_level":N}`, v1 `{"min_version_level":N,"max_version_level":N}`.
/// Decoding requires `status`, `features`, version 1..2 and every level ≥ 1. Its zkVersion is the
/// feature epoch: never delete/recreate it. A 3.9 ZK broker supports no features, so it must
/// never list any (Kafka brokers exit if they see one they cannot satisfy).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeatureZNode {
    pub version: i32,
    pub status: i32,
    /// name → max version level.
    pub features: BTreeMap<String, i16>,
}

impl FeatureZNode {
    pub const PATH: &'static str = "/feature";
    pub const STATUS_DISABLED: i32 = 0;
    pub const STATUS_ENABLED: i32 = 1;

    /// What a 3.9 controller writes at IBP ≥ 3.3-IV0.
    pub fn enabled_empty() -> Self {
        Self {
            version: 2,
            status: Self::STATUS_ENABLED,
            features: BTreeMap::new(),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let f: Map<String, Value> = self
            .features
            .iter()
            .map(|(k, v)| {
                let level = if self.version >= 2 {
                    json!({"max_version_level": v})
                } else {
                    json!({"min_version_level": 1, "max_version_level": v})
                };
                (k.clone(), level)
            })
            .collect();
        to_bytes(&json!({"version": self.version, "status": self.status, "features": f}))
    }

    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let p = Self::PATH;
        let m = parse_object(p, bytes)?;
        let version = get_i32(p, &m, "version")?;
        if !(1..=2).contains(&version) {
            return Err(invalid(
                p,
                format!("unsupported feature znode version {version}"),
            ));
        }
        let status = get_i32(p, &m, "status")?;
        if status != 0 && status != 1 {
            return Err(invalid(p, format!("bad status {status}")));
        }
        let fobj = m
            .get("features")
            .and_then(Value::as_object)
            .ok_or_else(|| invalid(p, "missing `features`"))?;
        let mut features = BTreeMap::new();
        for (name, v) in fobj {
            let o = v
                .as_object()
                .ok_or_else(|| invalid(p, format!("bad feature {name}")))?;
            let max = get_i32(p, o, "max_version_level")?;
            if max < 1 {
                return Err(invalid(p, format!("feature {name} level {max} < 1")));
            }
            features.insert(name.clone(), max as i16);
        }
        Ok(Self {
            version,
            status,
            features,
        })
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn entity_name_sanitizing() {
        use quota_config::{entity_path, parse_entity_path};
        assert_eq!(parse_entity_path("users/a"), Some((Some("a"), None)));
        assert_eq!(
            parse_entity_path("users/<default>/clients/c%20d"),
            Some((Some("<default>"), Some("c%20d")))
        );
        assert_eq!(parse_entity_path("clients/c"), Some((None, Some("c"))));
        assert_eq!(parse_entity_path("users/a/clients"), None);
        assert_eq!(parse_entity_path("topics/t"), None);
        assert_eq!(parse_entity_path("users/"), None);
        assert_eq!(
            entity_path(Some("a"), Some("c")).as_deref(),
            Some("users/a/clients/c")
        );
        assert_eq!(sanitize_entity_name("alice"), "alice");
        assert_eq!(sanitize_entity_name("a b*@c"), "a%20b%2A%40c");
        assert_eq!(
            desanitize_entity_name("a%20b%2A%40c").expect("valid"),
            "a b*@c"
        );
        assert_eq!(desanitize_entity_name("%E2%82%AC").expect("valid"), "€");
        assert!(desanitize_entity_name("%zz").is_none());
    }

    #[test]
    fn consumer_offset_znode() {
        assert_eq!(
            ConsumerOffsetZNode::path("g", "t", 3),
            "/consumers/g/offsets/t/3"
        );
        assert_eq!(ConsumerOffsetZNode::encode(42), b"42".to_vec());
        assert_eq!(ConsumerOffsetZNode::decode(b"42"), Some(42));
        assert_eq!(ConsumerOffsetZNode::decode(b"x"), None);
    }
    use super::*;

    fn parsed(b: &[u8]) -> Value {
        serde_json::from_slice(b).expect("valid json")
    }

    #[test]
    fn cluster_id() {
        let raw = br#"{"version":"1","id":"Xk3kqKxGQ3O0qW2J8kq1aA"}"#;
        let z = ClusterIdZNode::decode(raw).expect("decode");
        assert_eq!(z.id, "Xk3kqKxGQ3O0qW2J8kq1aA");
        assert_eq!(parsed(&z.encode()), parsed(raw));
        assert!(ClusterIdZNode::decode(b"garbage").is_err());
    }

    #[test]
    fn controller_v1_and_v2() {
        let v2 =
            br#"{"version":2,"brokerid":1,"timestamp":"1731000000000","kraftControllerEpoch":-1}"#;
        let z = ControllerZNode::decode(v2).expect("v2");
        assert_eq!(z.broker_id, 1);
        assert_eq!(z.timestamp, 1731000000000);
        assert_eq!(parsed(&z.encode()), parsed(v2));
        let v1 = br#"{"version":1,"brokerid":99,"timestamp":"0"}"#;
        let z1 = ControllerZNode::decode(v1).expect("v1");
        assert_eq!((z1.broker_id, z1.kraft_controller_epoch), (99, -1));
        assert_eq!(ControllerEpochZNode::decode(b"5").expect("epoch"), 5);
        assert_eq!(ControllerEpochZNode::encode(6), b"6");
        assert!(ControllerEpochZNode::decode(b"x").is_err());
    }

    #[test]
    fn broker_info_v5_round_trip() {
        let raw = br#"{"features":{},"listener_security_protocol_map":{"PLAINTEXT":"PLAINTEXT"},"endpoints":["PLAINTEXT://b1:9092"],"jmx_port":-1,"port":9092,"host":"b1","timestamp":"1731000000000","version":5}"#;
        let b = BrokerInfo::decode(1, raw).expect("decode");
        assert_eq!(b.version, 5);
        assert_eq!(b.endpoints.len(), 1);
        assert_eq!(b.endpoints[0].host, "b1");
        assert_eq!(
            b.endpoints[0].security_protocol,
            SecurityProtocol::Plaintext
        );
        assert_eq!(b.timestamp, 1731000000000);
        assert_eq!(parsed(&b.encode()), parsed(raw));
    }

    #[test]
    fn broker_info_ssl_only_rack_ipv6() {
        let ep = EndPoint {
            listener_name: "INTERNAL".into(),
            host: "::1".into(),
            port: 9093,
            security_protocol: SecurityProtocol::Ssl,
        };
        let b = BrokerInfo::new(3, vec![ep], Some("r1".into()), -1);
        let v = parsed(&b.encode());
        assert_eq!(v["host"], Value::Null);
        assert_eq!(v["port"], json!(-1));
        assert_eq!(v["rack"], json!("r1"));
        assert_eq!(v["endpoints"], json!(["INTERNAL://[::1]:9093"]));
        assert_eq!(
            v["listener_security_protocol_map"],
            json!({"INTERNAL": "SSL"})
        );
        assert!(v["timestamp"].is_string());
        let back = BrokerInfo::decode(3, &b.encode()).expect("decode");
        assert_eq!(back, b);
    }

    #[test]
    fn broker_info_old_versions() {
        let v1 = br#"{"version":1,"host":"localhost","port":9092,"jmx_port":9999,"timestamp":"2233345666"}"#;
        let b = BrokerInfo::decode(0, v1).expect("v1");
        assert_eq!(
            b.endpoints[0].connection_string(),
            "PLAINTEXT://localhost:9092"
        );
        let v2 = br#"{"version":2,"host":"localhost","port":9092,"jmx_port":9999,"timestamp":"2233345666","endpoints":["PLAINTEXT://host1:9092","SSL://host1:9093"]}"#;
        let b = BrokerInfo::decode(0, v2).expect("v2");
        assert_eq!(b.endpoints[1].security_protocol, SecurityProtocol::Ssl);
        let v4 = br#"{"version":4,"host":"localhost","port":9092,"jmx_port":9999,"timestamp":"2233345666","endpoints":["CLIENT://host1:9092","REPLICATION://host1:9093"],"listener_security_protocol_map":{"CLIENT":"SASL_SSL","REPLICATION":"PLAINTEXT"},"rack":"dc1"}"#;
        let b = BrokerInfo::decode(0, v4).expect("v4");
        assert_eq!(b.rack.as_deref(), Some("dc1"));
        assert_eq!(b.endpoints[0].security_protocol, SecurityProtocol::SaslSsl);
        assert_eq!(b.endpoint("replication").map(|e| e.port), Some(9093));
        let v5f = br#"{"version":5,"host":null,"port":-1,"jmx_port":-1,"timestamp":"1","endpoints":["SSL://h:1"],"features":{"f":{"min_version":1,"max_version":3}}}"#;
        let b = BrokerInfo::decode(0, v5f).expect("v5 features");
        assert_eq!(b.features.get("f"), Some(&(1, 3)));
        assert!(BrokerInfo::decode(0, br#"{"version":0,"jmx_port":1}"#).is_err());
        assert!(BrokerInfo::decode(0, b"").is_err());
    }

    #[test]
    fn topic_znode_versions() {
        let v3 = br#"{"version":3,"partitions":{"0":[1,2,3],"1":[2,3,1]},"adding_replicas":{},"removing_replicas":{},"topic_id":"AAAAAAAAAAAAAAAAAAAAAQ"}"#;
        let t = TopicZNode::decode("t", v3).expect("v3");
        assert_eq!(t.partitions[&1], vec![2, 3, 1]);
        assert_eq!(t.topic_id, Some(kafka_uuid::METADATA_TOPIC_ID));
        assert_eq!(parsed(&t.encode()), parsed(v3));
        let v1 = br#"{"version":1,"partitions":{"0":[1]}}"#;
        let t = TopicZNode::decode("t1", v1).expect("v1");
        assert_eq!(t.topic_id, None);
        assert!(t.adding_replicas.is_empty());
        let v2 = br#"{"version":2,"partitions":{"0":[2,3,1]},"adding_replicas":{"0":[3]},"removing_replicas":{"0":[1]}}"#;
        let t = TopicZNode::decode("t", v2).expect("v2");
        assert_eq!(t.adding_replicas[&0], vec![3]);
        assert_eq!(t.removing_replicas[&0], vec![1]);
        let enc = parsed(&t.encode());
        assert_eq!(enc["version"], json!(3));
        assert!(enc.get("topic_id").is_none());
        assert_eq!(
            TopicZNode::decode("t", br#"{"version":1}"#)
                .expect("empty")
                .partitions
                .len(),
            0
        );
        assert!(TopicZNode::decode("t", br#"{"partitions":{"x":[1]}}"#).is_err());
        assert_eq!(TopicZNode::path("t"), "/brokers/topics/t");
    }

    #[test]
    fn partition_state() {
        let tp = TopicPartition::new("t", 0);
        let raw = br#"{"controller_epoch":3,"leader":1,"version":1,"leader_epoch":7,"isr":[1,2]}"#;
        let s = TopicPartitionStateZNode::decode(&tp, raw).expect("decode");
        assert_eq!((s.leader, s.leader_epoch, s.controller_epoch), (1, 7, 3));
        assert_eq!(s.leader_recovery_state, 0);
        assert_eq!(parsed(&s.encode()), parsed(raw));
        let mut r = s.clone();
        r.leader_recovery_state = 1;
        assert_eq!(parsed(&r.encode())["leader_recovery_state"], json!(1));
        assert_eq!(
            TopicPartitionStateZNode::decode(&tp, &r.encode()).expect("rt"),
            r
        );
        assert_eq!(
            TopicPartitionStateZNode::path(&tp),
            "/brokers/topics/t/partitions/0/state"
        );
    }

    #[test]
    fn configs_and_notifications() {
        let raw = br#"{"version":1,"config":{"retention.ms":"86400000"}}"#;
        let c = ConfigEntityZNode::decode(raw).expect("config");
        assert_eq!(c.config["retention.ms"], "86400000");
        assert_eq!(parsed(&c.encode()), parsed(raw));
        assert!(ConfigEntityZNode::decode(b"")
            .expect("empty")
            .config
            .is_empty());
        assert_eq!(ConfigEntityZNode::path("topics", "t"), "/config/topics/t");

        let n2 = br#"{"version":2,"entity_path":"topics/my-topic"}"#;
        let n = ConfigEntityChangeNotification::decode(n2).expect("v2");
        assert_eq!(n.split(), Some(("topics", "my-topic")));
        assert_eq!(parsed(&n.encode()), parsed(n2));
        let n1 = br#"{"version":1,"entity_type":"topics","entity_name":"my-topic"}"#;
        assert_eq!(ConfigEntityChangeNotification::decode(n1).expect("v1"), n);
        assert_eq!(
            ConfigEntityChangeNotification::create_path(),
            "/config/changes/config_change_"
        );
        assert_eq!(
            ConfigEntityChangeNotification::sequence("config_change_0000000007"),
            Some(7)
        );
    }

    #[test]
    fn admin_nodes() {
        let raw = br#"{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[4,5,6]}]}"#;
        let r = ReassignPartitionsZNode::decode(raw).expect("reassign");
        assert_eq!(
            r.partitions,
            vec![(TopicPartition::new("t", 0), vec![4, 5, 6])]
        );
        assert_eq!(parsed(&r.encode()), parsed(raw));
        let extra = br#"{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[4],"log_dirs":["any"]}]}"#;
        assert!(ReassignPartitionsZNode::decode(extra).is_err());

        let pre = br#"{"version":1,"partitions":[{"topic":"t","partition":0}]}"#;
        let p = PreferredReplicaElectionZNode::decode(pre).expect("pre");
        assert_eq!(p.partitions, vec![TopicPartition::new("t", 0)]);
        assert_eq!(parsed(&p.encode()), parsed(pre));
        let isr = IsrChangeNotification::decode(pre).expect("isr");
        assert_eq!(parsed(&isr.encode()), parsed(pre));

        let ld = br#"{"version":1,"broker":2,"event":1}"#;
        let l = LogDirEventNotification::decode(ld).expect("logdir");
        assert_eq!((l.broker, l.event), (2, 1));
        assert_eq!(parsed(&l.encode()), parsed(ld));
        assert_eq!(DeleteTopicsTopicZNode::path("t"), "/admin/delete_topics/t");
    }

    #[test]
    fn producer_id_block_and_feature() {
        let raw = br#"{"version":1,"broker":2,"block_start":"3000","block_end":"3999"}"#;
        let b = ProducerIdBlockZNode::decode(raw)
            .expect("decode")
            .expect("some");
        assert_eq!((b.block_start, b.block_end), (3000, 3999));
        assert_eq!(parsed(&b.encode()), parsed(raw));
        assert_eq!(ProducerIdBlockZNode::decode(b"").expect("empty"), None);
        let first = ProducerIdBlockZNode::next(None, 1);
        assert_eq!((first.block_start, first.block_end), (0, 999));
        assert_eq!(
            ProducerIdBlockZNode::next(Some(&first), 1).block_start,
            1000
        );

        let f = br#"{"version":2,"status":1,"features":{}}"#;
        let z = FeatureZNode::decode(f).expect("feature");
        assert_eq!(z, FeatureZNode::enabled_empty());
        assert_eq!(parsed(&z.encode()), parsed(f));
        let f2 =
            br#"{"version":2,"status":1,"features":{"metadata.version":{"max_version_level":21}}}"#;
        assert_eq!(
            FeatureZNode::decode(f2).expect("f2").features["metadata.version"],
            21
        );
        assert!(FeatureZNode::decode(br#"{"version":3,"status":1,"features":{}}"#).is_err());
        assert!(FeatureZNode::decode(br#"{"version":2,"features":{}}"#).is_err());
    }
}
