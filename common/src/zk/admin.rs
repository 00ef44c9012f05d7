//! Admin operations written to ZooKeeper the way Kafka 3.9 `AdminZkClient` writes them.
//!
//! These helpers only touch ZooKeeper; the controller notices the znodes and does the rest
//! (creates partitions, deletes topics). Replica assignment is computed by the caller
//! (`samsa_controller::assignment`), and topic config *values* are validated by the caller
//! (`LogConfig`), so this module has no policy beyond Kafka's own admin checks.
//!
//! Failures a client should see come back as [`Error::Api`] with Kafka's error code and message.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{Error, Result};
use crate::types::kafka_uuid::{self, Uuid};
use crate::types::BrokerId;
use crate::zk::session::{CreateMode, ZkSession};
use crate::zk::znodes::*;

/// Kafka error codes used by the admin paths.
pub mod code {
    pub const NONE: i16 = 0;
    pub const BROKER_NOT_AVAILABLE: i16 = 8;
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub const REQUEST_TIMED_OUT: i16 = 7;
    pub const INVALID_TOPIC_EXCEPTION: i16 = 17;
    pub const TOPIC_ALREADY_EXISTS: i16 = 36;
    pub const INVALID_PARTITIONS: i16 = 37;
    pub const INVALID_REPLICATION_FACTOR: i16 = 38;
    pub const INVALID_REPLICA_ASSIGNMENT: i16 = 39;
    pub const INVALID_CONFIG: i16 = 40;
    pub const NOT_CONTROLLER: i16 = 41;
    pub const INVALID_REQUEST: i16 = 42;
    pub const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
    pub const REASSIGNMENT_IN_PROGRESS: i16 = 60;
    pub const RESOURCE_NOT_FOUND: i16 = 91;
    pub const DUPLICATE_RESOURCE: i16 = 92;
    pub const UNACCEPTABLE_CREDENTIAL: i16 = 93;
    pub const TOPIC_DELETION_DISABLED: i16 = 73;
    pub const UNKNOWN_TOPIC_ID: i16 = 100;
}

/// Longest legal topic name.
pub const MAX_TOPIC_NAME_LENGTH: usize = 249;

/// Largest topic znode written. ZooKeeper refuses a request larger than its `jute.maxbuffer`
/// (default 0xfffff bytes) by closing the connection, and Kafka's client then retries the
/// write until its request times out, having already written `/config/topics/<t>`. Samsa
/// refuses such a topic before writing anything; 4 KiB is left for the request's header and
/// path.
pub const MAX_TOPIC_ZNODE_BYTES: usize = 0xfffff - 4096;

/// Fewest bytes one partition takes in a topic znode (`"0":[1],`), so a count above
/// `MAX_TOPIC_ZNODE_BYTES / MIN_PARTITION_ENTRY_BYTES` is refused before any assignment is
/// computed (a count near `i32::MAX` would otherwise allocate gigabytes).
const MIN_PARTITION_ENTRY_BYTES: usize = 7;

fn too_big(topic: &str, partitions: usize, detail: String) -> Error {
    Error::api(
        code::INVALID_PARTITIONS,
        format!(
            "Topic '{topic}' with {partitions} partitions cannot be stored: {detail}, more than \
             ZooKeeper's znode limit of {MAX_TOPIC_ZNODE_BYTES} bytes (jute.maxbuffer)"
        ),
    )
}

/// Refuses a partition count whose topic znode cannot fit whatever the assignment
/// (INVALID_PARTITIONS); call before computing the assignment.
pub fn check_partition_count_fits(topic: &str, partitions: i32) -> Result<()> {
    let n = usize::try_from(partitions).unwrap_or(0);
    if n.saturating_mul(MIN_PARTITION_ENTRY_BYTES) > MAX_TOPIC_ZNODE_BYTES {
        return Err(too_big(
            topic,
            n,
            format!(
                "at least {} bytes",
                n.saturating_mul(MIN_PARTITION_ENTRY_BYTES)
            ),
        ));
    }
    Ok(())
}

/// Refuses a topic znode (as it would be written) larger than [`MAX_TOPIC_ZNODE_BYTES`]
/// with INVALID_PARTITIONS.
pub fn check_topic_znode_fits(topic: &str, z: &TopicZNode) -> Result<()> {
    let len = z.encode().len();
    if len > MAX_TOPIC_ZNODE_BYTES {
        return Err(too_big(topic, z.partitions.len(), format!("{len} bytes")));
    }
    Ok(())
}

/// Kafka's `Topic.validate`: non-empty, not `.`/`..`, ≤ 249 chars, only `[a-zA-Z0-9._-]`.
/// Error: INVALID_TOPIC_EXCEPTION with Kafka's message.
pub fn validate_topic_name(name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        Some("the empty string is not allowed".to_string())
    } else if name == "." {
        Some("'.' is not allowed".to_string())
    } else if name == ".." {
        Some("'..' is not allowed".to_string())
    } else if name.chars().count() > MAX_TOPIC_NAME_LENGTH {
        Some(format!(
            "the length of '{name}' is longer than the max allowed length {MAX_TOPIC_NAME_LENGTH}"
        ))
    } else if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-')
    {
        Some(format!(
            "'{name}' contains one or more characters other than ASCII alphanumerics, '.', '_' and '-'"
        ))
    } else {
        None
    };
    match reason {
        Some(r) => Err(Error::api(
            code::INVALID_TOPIC_EXCEPTION,
            format!("Topic name is invalid: {r}"),
        )),
        None => Ok(()),
    }
}

/// Names with `.` or `_` can collide in metric names.
pub fn has_collision_chars(topic: &str) -> bool {
    topic.contains('_') || topic.contains('.')
}

/// `a` and `b` are the same once `.` is read as `_`.
pub fn has_collision(a: &str, b: &str) -> bool {
    a.replace('.', "_") == b.replace('.', "_")
}

/// Internal topics (`Topic.isInternal`).
pub fn is_internal_topic(topic: &str) -> bool {
    matches!(
        topic,
        "__consumer_offsets" | "__transaction_state" | "__share_group_state"
    )
}

fn invalid_assignment(msg: impl Into<String>) -> Error {
    Error::api(code::INVALID_REPLICA_ASSIGNMENT, msg)
}

/// Kafka's `AdminZkClient.validateTopicCreate` (minus config validation, done by the caller):
/// legal name; not marked for deletion / not existing (TOPIC_ALREADY_EXISTS); no `.`/`_`
/// collision with an existing topic (INVALID_TOPIC_EXCEPTION); same replica count for every
/// partition, no duplicate replicas, partitions 0..n-1 (INVALID_REPLICA_ASSIGNMENT).
pub async fn validate_topic_create(
    zk: &ZkSession,
    topic: &str,
    assignment: &BTreeMap<i32, Vec<BrokerId>>,
) -> Result<()> {
    validate_topic_name(topic)?;
    if zk
        .exists(&DeleteTopicsTopicZNode::path(topic))
        .await?
        .is_some()
    {
        return Err(Error::api(
            code::TOPIC_ALREADY_EXISTS,
            format!("Topic '{topic}' is marked for deletion."),
        ));
    }
    if zk.exists(&TopicZNode::path(topic)).await?.is_some() {
        return Err(Error::api(
            code::TOPIC_ALREADY_EXISTS,
            format!("Topic '{topic}' already exists."),
        ));
    }
    if has_collision_chars(topic) {
        let all = zk.get_all_topics().await?;
        if all.iter().any(|t| t == topic) {
            return Err(Error::api(
                code::TOPIC_ALREADY_EXISTS,
                format!("Topic '{topic}' already exists."),
            ));
        }
        let colliding: Vec<&String> = all.iter().filter(|t| has_collision(topic, t)).collect();
        if !colliding.is_empty() {
            let list: Vec<&str> = colliding.iter().map(|s| s.as_str()).collect();
            return Err(Error::api(
                code::INVALID_TOPIC_EXCEPTION,
                format!(
                    "Topic '{topic}' collides with existing topics: {}",
                    list.join(", ")
                ),
            ));
        }
    }
    validate_assignment_shape(assignment)
}

/// The replica-count / duplicate / 0..n-1 checks of `validateTopicCreate`.
pub fn validate_assignment_shape(assignment: &BTreeMap<i32, Vec<BrokerId>>) -> Result<()> {
    let sizes: BTreeSet<usize> = assignment.values().map(Vec::len).collect();
    if sizes.len() != 1 {
        return Err(invalid_assignment(
            "All partitions should have the same number of replicas",
        ));
    }
    for reps in assignment.values() {
        let set: BTreeSet<_> = reps.iter().collect();
        if set.len() != reps.len() {
            return Err(invalid_assignment(format!(
                "Duplicate replica assignment found: {assignment:?}"
            )));
        }
    }
    let n = assignment.len() as i64;
    let sum: i64 = assignment
        .keys()
        .filter(|p| **p >= 0)
        .map(|p| *p as i64)
        .sum();
    if sum != n * (n - 1) / 2 || assignment.keys().any(|p| *p < 0 || *p as i64 >= n) {
        return Err(invalid_assignment(
            "partitions should be a consecutive 0-based integer sequence",
        ));
    }
    Ok(())
}

/// Kafka's `setOrCreateEntityConfigs`: setData (any version) on `/config/<type>/<name>`,
/// creating it (and parents) if missing.
pub async fn set_or_create_entity_config(
    zk: &ZkSession,
    entity_type: &str,
    entity_name: &str,
    config: &BTreeMap<String, String>,
) -> Result<()> {
    let path = ConfigEntityZNode::path(entity_type, entity_name);
    let data = ConfigEntityZNode {
        config: config.clone(),
    }
    .encode();
    loop {
        match zk.set(&path, &data, None).await {
            Ok(_) => return Ok(()),
            Err(e) if e.is_no_node() => {
                match zk
                    .create_recursive(&path, &data, CreateMode::Persistent)
                    .await
                {
                    Ok(_) => return Ok(()),
                    Err(e) if e.is_node_exists() => continue,
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// Create a sequential `/config/changes/config_change_` notification (v2) for
/// `entity_path` (`topics/t`, `brokers/<default>`, `users/u/clients/c` ...). Returns its path.
pub async fn create_config_change_notification(
    zk: &ZkSession,
    entity_path: &str,
) -> Result<String> {
    let n = ConfigEntityChangeNotification {
        entity_path: entity_path.to_string(),
    };
    let (_, path) = zk
        .create_recursive(
            &ConfigEntityChangeNotification::create_path(),
            &n.encode(),
            CreateMode::PersistentSequential,
        )
        .await?;
    Ok(path)
}

/// Kafka's `changeEntityConfig`: write `/config/<type>/<name>` then a change notification.
pub async fn change_entity_config(
    zk: &ZkSession,
    entity_type: &str,
    entity_name: &str,
    config: &BTreeMap<String, String>,
) -> Result<()> {
    set_or_create_entity_config(zk, entity_type, entity_name, config).await?;
    create_config_change_notification(zk, &format!("{entity_type}/{entity_name}")).await?;
    Ok(())
}

/// Kafka's `changeTopicConfig` (full replacement of the topic's overrides; values validated by
/// the caller). UNKNOWN_TOPIC_OR_PARTITION if the topic does not exist.
pub async fn change_topic_config(
    zk: &ZkSession,
    topic: &str,
    config: &BTreeMap<String, String>,
) -> Result<()> {
    if zk.exists(&TopicZNode::path(topic)).await?.is_none() {
        return Err(Error::api(
            code::UNKNOWN_TOPIC_OR_PARTITION,
            format!("Topic {topic} does not exist."),
        ));
    }
    change_entity_config(zk, config_type::TOPIC, topic, config).await
}

/// Kafka's `createTopicWithAssignment(validate = false)`: write `/config/topics/<t>` first
/// (possibly `"config":{}`), then `/brokers/topics/<t>` v3 with a fresh topic id when
/// `uses_topic_id` (IBP ≥ 2.8). NODEEXISTS on the topic → TOPIC_ALREADY_EXISTS.
/// Call [`validate_topic_create`] first. Returns the topic id written.
pub async fn create_topic_with_assignment(
    zk: &ZkSession,
    topic: &str,
    config: &BTreeMap<String, String>,
    assignment: &BTreeMap<i32, Vec<BrokerId>>,
    uses_topic_id: bool,
) -> Result<Option<Uuid>> {
    let topic_id = uses_topic_id.then(kafka_uuid::random_topic_id);
    let z = TopicZNode::new(topic_id, assignment.clone());
    check_topic_znode_fits(topic, &z)?;
    set_or_create_entity_config(zk, config_type::TOPIC, topic, config).await?;
    match zk
        .create_recursive(
            &TopicZNode::path(topic),
            &z.encode(),
            CreateMode::Persistent,
        )
        .await
    {
        Ok(_) => Ok(topic_id),
        Err(e) if e.is_node_exists() => Err(Error::api(
            code::TOPIC_ALREADY_EXISTS,
            format!("Topic '{topic}' already exists."),
        )),
        Err(e) => Err(e),
    }
}

/// Kafka's `deleteTopic`: create `/admin/delete_topics/<t>`. `Ok(true)` if newly marked,
/// `Ok(false)` if it was already marked (Kafka swallows that case);
/// UNKNOWN_TOPIC_OR_PARTITION if the topic does not exist.
pub async fn mark_topic_for_deletion(zk: &ZkSession, topic: &str) -> Result<bool> {
    if zk.exists(&TopicZNode::path(topic)).await?.is_none() {
        return Err(Error::api(
            code::UNKNOWN_TOPIC_OR_PARTITION,
            format!("Topic `{topic}` to delete does not exist"),
        ));
    }
    match zk
        .create_recursive(
            &DeleteTopicsTopicZNode::path(topic),
            &[],
            CreateMode::Persistent,
        )
        .await
    {
        Ok(_) => Ok(true),
        Err(e) if e.is_node_exists() => Ok(false),
        Err(e) => Err(e),
    }
}

/// The current assignment of a topic that partitions are about to be added to, as
/// `ZkAdminManager.createPartitions` reads it: REASSIGNMENT_IN_PROGRESS if any partition has
/// adding/removing replicas, UNKNOWN_TOPIC_OR_PARTITION if missing or without partitions.
pub async fn existing_assignment_for_add(zk: &ZkSession, topic: &str) -> Result<TopicZNode> {
    let z = zk
        .get_topic(topic)
        .await?
        .map(|(z, _)| z)
        .unwrap_or_default();
    let reassigning = z.partitions.keys().any(|p| {
        z.adding_replicas.get(p).is_some_and(|v| !v.is_empty())
            || z.removing_replicas.get(p).is_some_and(|v| !v.is_empty())
    });
    if reassigning {
        return Err(Error::api(
            code::REASSIGNMENT_IN_PROGRESS,
            format!("A partition reassignment is in progress for the topic '{topic}'."),
        ));
    }
    if z.partitions.is_empty() {
        return Err(Error::api(
            code::UNKNOWN_TOPIC_OR_PARTITION,
            format!("The topic '{topic}' does not exist."),
        ));
    }
    Ok(z)
}

/// Kafka's `validateReplicaAssignment` for manually assigned new partitions: non-empty,
/// no duplicates (INVALID_REPLICA_ASSIGNMENT), known brokers (BROKER_NOT_AVAILABLE), same
/// replication factor as partition 0 (INVALID_REPLICA_ASSIGNMENT).
pub fn validate_new_partitions_assignment(
    proposed: &BTreeMap<i32, Vec<BrokerId>>,
    expected_replication_factor: usize,
    available: &BTreeSet<BrokerId>,
) -> Result<()> {
    for (p, reps) in proposed {
        if reps.is_empty() {
            return Err(invalid_assignment(format!(
                "Cannot have replication factor of 0 for partition id {p}."
            )));
        }
        let set: BTreeSet<_> = reps.iter().copied().collect();
        if set.len() != reps.len() {
            return Err(invalid_assignment(format!(
                "Duplicate brokers not allowed in replica assignment: {} for partition id {p}.",
                join(reps)
            )));
        }
        if !set.is_subset(available) {
            return Err(Error::api(
                code::BROKER_NOT_AVAILABLE,
                format!(
                    "Some brokers specified for partition id {p} are not available. Specified brokers: {}, available brokers: {}.",
                    join(reps),
                    join(&available.iter().copied().collect::<Vec<_>>())
                ),
            ));
        }
    }
    let bad: Vec<(i32, usize)> = proposed
        .iter()
        .filter(|(_, r)| r.len() != expected_replication_factor)
        .map(|(p, r)| (*p, r.len()))
        .collect();
    if !bad.is_empty() {
        return Err(invalid_assignment(format!(
            "Inconsistent replication factor between partitions, partition 0 has {expected_replication_factor} while partitions [{}] have replication factors [{}], respectively.",
            join(&bad.iter().map(|b| b.0).collect::<Vec<_>>()),
            join(&bad.iter().map(|b| b.1 as i32).collect::<Vec<_>>())
        )));
    }
    Ok(())
}

fn join(v: &[i32]) -> String {
    v.iter().map(i32::to_string).collect::<Vec<_>>().join(", ")
}

/// Kafka's `createPartitionsWithAssignment`: rewrite the topic znode (any version) with the
/// existing partitions plus `new_partitions`, keeping the topic id. The controller notices the
/// new indexes and creates them.
pub async fn add_partitions(
    zk: &ZkSession,
    topic: &str,
    existing: &TopicZNode,
    new_partitions: &BTreeMap<i32, Vec<BrokerId>>,
) -> Result<TopicZNode> {
    let mut z = existing.clone();
    for (p, r) in new_partitions {
        z.partitions.insert(*p, r.clone());
    }
    check_topic_znode_fits(topic, &z)?;
    zk.set(&TopicZNode::path(topic), &z.encode(), None).await?;
    Ok(z)
}

/// Kafka's `ZkProducerIdManager.getNewProducerIdBlock`: read `/latest_producer_id_block`,
/// compute the next block of 1000 ids for `broker`, conditional set on the version read,
/// retry on conflict.
pub async fn allocate_producer_id_block(
    zk: &ZkSession,
    broker: BrokerId,
) -> Result<ProducerIdBlockZNode> {
    loop {
        let (prev, version) = match zk.get(ProducerIdBlockZNode::PATH).await? {
            Some((d, s)) => (ProducerIdBlockZNode::decode(&d)?, Some(s.version)),
            None => (None, None),
        };
        if let Some(p) = &prev {
            if p.block_end > i64::MAX - ProducerIdBlockZNode::BLOCK_SIZE {
                return Err(Error::Other("Have exhausted all producerIds.".into()));
            }
        }
        let next = ProducerIdBlockZNode::next(prev.as_ref(), broker);
        let data = next.encode();
        let res = match version {
            Some(v) => zk
                .set(ProducerIdBlockZNode::PATH, &data, Some(v))
                .await
                .map(|_| ()),
            None => zk
                .create_recursive(ProducerIdBlockZNode::PATH, &data, CreateMode::Persistent)
                .await
                .map(|_| ()),
        };
        match res {
            Ok(()) => return Ok(next),
            Err(e) if e.is_bad_version() || e.is_node_exists() || e.is_no_node() => continue,
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::zk::session::ZkConfig;
    use crate::zk::testing::TestZk;

    #[test]
    fn topic_names() {
        assert!(validate_topic_name("orders-1.v2_x").is_ok());
        for bad in ["", ".", "..", "a b", "é", &"x".repeat(250)] {
            let e = validate_topic_name(bad).expect_err(bad);
            assert_eq!(e.api_code(), Some(code::INVALID_TOPIC_EXCEPTION));
        }
        assert!(validate_topic_name(&"x".repeat(249)).is_ok());
        assert!(has_collision("a.b", "a_b"));
        assert!(!has_collision("a.b", "a-b"));
    }

    #[test]
    fn assignment_shape() {
        let ok: BTreeMap<i32, Vec<i32>> = [(0, vec![1, 2]), (1, vec![2, 1])].into();
        assert!(validate_assignment_shape(&ok).is_ok());
        let uneven: BTreeMap<i32, Vec<i32>> = [(0, vec![1, 2]), (1, vec![2])].into();
        let dup: BTreeMap<i32, Vec<i32>> = [(0, vec![1, 1])].into();
        let gap: BTreeMap<i32, Vec<i32>> = [(0, vec![1]), (2, vec![1])].into();
        for a in [uneven, dup, gap] {
            assert_eq!(
                validate_assignment_shape(&a).expect_err("bad").api_code(),
                Some(code::INVALID_REPLICA_ASSIGNMENT)
            );
        }
        let avail: BTreeSet<i32> = [1, 2, 3].into();
        let p: BTreeMap<i32, Vec<i32>> = [(2, vec![1, 4])].into();
        assert_eq!(
            validate_new_partitions_assignment(&p, 2, &avail)
                .expect_err("unknown broker")
                .api_code(),
            Some(code::BROKER_NOT_AVAILABLE)
        );
        let p: BTreeMap<i32, Vec<i32>> = [(2, vec![1])].into();
        assert_eq!(
            validate_new_partitions_assignment(&p, 2, &avail)
                .expect_err("rf")
                .api_code(),
            Some(code::INVALID_REPLICA_ASSIGNMENT)
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn admin_writes_against_real_zookeeper() {
        let zkd = TestZk::start();
        let zk = ZkSession::connect(&ZkConfig::new(
            zkd.connect_string_with_chroot("/adm"),
            Duration::from_secs(6),
        ))
        .await
        .expect("connect");
        zk.create_top_level_paths().await.expect("paths");

        // Create: config first, then v3 topic znode with an id.
        let assignment: BTreeMap<i32, Vec<i32>> = [(0, vec![1, 2]), (1, vec![2, 1])].into();
        let cfg: BTreeMap<String, String> =
            [("retention.ms".to_string(), "1000".to_string())].into();
        validate_topic_create(&zk, "a.b", &assignment)
            .await
            .expect("valid");
        let id = create_topic_with_assignment(&zk, "a.b", &cfg, &assignment, true)
            .await
            .expect("create")
            .expect("id");
        let (z, _) = zk.get_topic("a.b").await.expect("get").expect("exists");
        assert_eq!(z.topic_id, Some(id));
        assert_eq!(z.partitions, assignment);
        assert_eq!(
            zk.get_entity_config("topics", "a.b").await.expect("cfg"),
            cfg
        );
        let (raw, _) = zk.get("/brokers/topics/a.b").await.expect("g").expect("s");
        let v: serde_json::Value = serde_json::from_slice(&raw).expect("json");
        assert_eq!(v["version"], 3);
        assert_eq!(v["adding_replicas"], serde_json::json!({}));

        // Exists / collision / invalid.
        let e = validate_topic_create(&zk, "a.b", &assignment)
            .await
            .expect_err("exists");
        assert_eq!(e.api_code(), Some(code::TOPIC_ALREADY_EXISTS));
        let e = validate_topic_create(&zk, "a_b", &assignment)
            .await
            .expect_err("collides");
        assert_eq!(e.api_code(), Some(code::INVALID_TOPIC_EXCEPTION));
        let e = create_topic_with_assignment(&zk, "a.b", &cfg, &assignment, true)
            .await
            .expect_err("dup");
        assert_eq!(e.api_code(), Some(code::TOPIC_ALREADY_EXISTS));

        // Config change writes the entity and a v2 notification.
        let cfg2: BTreeMap<String, String> =
            [("cleanup.policy".to_string(), "compact".to_string())].into();
        change_topic_config(&zk, "a.b", &cfg2)
            .await
            .expect("change");
        assert_eq!(
            zk.get_entity_config("topics", "a.b").await.expect("cfg"),
            cfg2
        );
        let kids = zk
            .children("/config/changes")
            .await
            .expect("c")
            .expect("some");
        assert_eq!(kids.len(), 1);
        let (n, _) = zk
            .get(&format!("/config/changes/{}", kids[0]))
            .await
            .expect("g")
            .expect("s");
        assert_eq!(
            ConfigEntityChangeNotification::decode(&n)
                .expect("n")
                .entity_path,
            "topics/a.b"
        );
        let e = change_topic_config(&zk, "nosuch", &cfg2)
            .await
            .expect_err("unknown");
        assert_eq!(e.api_code(), Some(code::UNKNOWN_TOPIC_OR_PARTITION));

        // Add partitions keeps the id and existing partitions.
        let existing = existing_assignment_for_add(&zk, "a.b")
            .await
            .expect("existing");
        let added: BTreeMap<i32, Vec<i32>> = [(2, vec![1, 2])].into();
        add_partitions(&zk, "a.b", &existing, &added)
            .await
            .expect("add");
        let (z, _) = zk.get_topic("a.b").await.expect("get").expect("exists");
        assert_eq!(z.partitions.len(), 3);
        assert_eq!(z.topic_id, Some(id));
        let e = existing_assignment_for_add(&zk, "nosuch")
            .await
            .expect_err("unknown");
        assert_eq!(e.api_code(), Some(code::UNKNOWN_TOPIC_OR_PARTITION));

        // Deletion marking.
        assert!(mark_topic_for_deletion(&zk, "a.b").await.expect("mark"));
        assert!(!mark_topic_for_deletion(&zk, "a.b").await.expect("again"));
        assert!(zk
            .exists("/admin/delete_topics/a.b")
            .await
            .expect("e")
            .is_some());
        let e = validate_topic_create(&zk, "a.b", &assignment)
            .await
            .expect_err("marked");
        assert_eq!(e.api_code(), Some(code::TOPIC_ALREADY_EXISTS));
        let e = mark_topic_for_deletion(&zk, "nosuch")
            .await
            .expect_err("unknown");
        assert_eq!(e.api_code(), Some(code::UNKNOWN_TOPIC_OR_PARTITION));

        // Producer id blocks: 0..999 then 1000..1999.
        let b1 = allocate_producer_id_block(&zk, 1).await.expect("b1");
        let b2 = allocate_producer_id_block(&zk, 2).await.expect("b2");
        assert_eq!((b1.block_start, b1.block_end), (0, 999));
        assert_eq!((b2.block_start, b2.block_end, b2.broker), (1000, 1999, 2));
        let (raw, _) = zk
            .get(ProducerIdBlockZNode::PATH)
            .await
            .expect("g")
            .expect("s");
        let v: serde_json::Value = serde_json::from_slice(&raw).expect("json");
        assert_eq!(v["block_start"], "1000");
    }
}
