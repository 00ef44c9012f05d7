//! Kafka's replica assignment (`AdminUtils.assignReplicasToBrokers` in Kafka 3.9), reproduced
//! exactly so that a topic created through Samsa gets the same layout Kafka would give it.
//!
//! Goals (as in Kafka): spread leaders round-robin over the broker list starting at a random
//! index; place followers with a shift that grows every time the partition id wraps the broker
//! list; when every broker has a rack, alternate racks so each partition spans as many racks as
//! possible.
//!
//! The two random numbers Kafka draws (start index and initial follower shift) are parameters
//! of [`assign_replicas_with`], so tests and callers that need determinism can fix them.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use rand::Rng;
use samsa_common::types::BrokerId;

/// A broker as seen by the assignment: its id and optional `broker.rack`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerMetadata {
    pub id: BrokerId,
    pub rack: Option<String>,
}

impl BrokerMetadata {
    pub fn new(id: BrokerId, rack: Option<&str>) -> Self {
        Self {
            id,
            rack: rack.map(str::to_owned),
        }
    }
}

/// Why an assignment could not be made. Each maps to the Kafka error a client would see.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssignmentError {
    /// `INVALID_PARTITIONS` (37).
    #[error("{0}")]
    InvalidPartitions(String),
    /// `INVALID_REPLICATION_FACTOR` (38).
    #[error("{0}")]
    InvalidReplicationFactor(String),
    /// Kafka's `AdminOperationException` (mixed rack information), surfaced as
    /// `INVALID_REPLICA_ASSIGNMENT` (39) by the request handlers.
    #[error("{0}")]
    RackInfo(String),
}

impl AssignmentError {
    /// The Kafka error code for this failure.
    pub fn code(&self) -> i16 {
        match self {
            AssignmentError::InvalidPartitions(_) => 37,
            AssignmentError::InvalidReplicationFactor(_) => 38,
            AssignmentError::RackInfo(_) => 39,
        }
    }
}

/// Largest partition count (existing plus new) an assignment is computed for. Kafka 3.9 has no
/// such limit, but a topic this large could never be stored: its topic znode would take over
/// 10 MB, far beyond ZooKeeper's `jute.maxbuffer` (1 MiB by default). Without the cap, a
/// CreateTopics or CreatePartitions asking for 2^31 partitions made the broker build a map that
/// size and abort on out-of-memory.
pub const MAX_PARTITIONS: i32 = 1_000_000;

/// Kafka's `RackAwareMode`: how broker racks are taken into account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RackAwareMode {
    /// Ignore racks.
    Disabled,
    /// Use racks; error if only some brokers have one.
    Enforced,
    /// Use racks only if every broker has one.
    Safe,
}

/// Kafka's `AdminZkClient.getBrokerMetadatas`: apply the rack mode and sort by broker id
/// (the order the admin path hands to the assignment).
pub fn broker_metadatas(
    brokers: &[BrokerMetadata],
    mode: RackAwareMode,
) -> Result<Vec<BrokerMetadata>, AssignmentError> {
    let with_rack = brokers.iter().filter(|b| b.rack.is_some()).count();
    if mode == RackAwareMode::Enforced && with_rack > 0 && with_rack < brokers.len() {
        return Err(AssignmentError::RackInfo(
            "Not all brokers have rack information. Add --disable-rack-aware in command line to make replica assignment without rack information.".into(),
        ));
    }
    let strip = match mode {
        RackAwareMode::Disabled => true,
        RackAwareMode::Safe => with_rack < brokers.len(),
        RackAwareMode::Enforced => false,
    };
    let mut out: Vec<BrokerMetadata> = brokers
        .iter()
        .map(|b| BrokerMetadata {
            id: b.id,
            rack: if strip { None } else { b.rack.clone() },
        })
        .collect();
    out.sort_by_key(|b| b.id);
    Ok(out)
}

/// `assignReplicasToBrokers(brokers, nPartitions, rf, fixedStartIndex, startPartitionId)`.
///
/// `fixed_start_index < 0` draws the start index and the follower shift at random (as Kafka
/// does); `>= 0` uses it for both. `start_partition_id < 0` means 0. Brokers are used in the
/// order given.
pub fn assign_replicas_to_brokers(
    brokers: &[BrokerMetadata],
    n_partitions: i32,
    replication_factor: i32,
    fixed_start_index: i32,
    start_partition_id: i32,
) -> Result<BTreeMap<i32, Vec<BrokerId>>, AssignmentError> {
    let n = brokers.len().max(1);
    let (start, shift) = if fixed_start_index >= 0 {
        (fixed_start_index as usize, fixed_start_index as usize)
    } else {
        let mut rng = rand::thread_rng();
        (rng.gen_range(0..n), rng.gen_range(0..n))
    };
    assign_replicas_with(
        brokers,
        n_partitions,
        replication_factor,
        start,
        shift,
        start_partition_id,
    )
}

/// The deterministic core: `start_index` picks the first leader, `initial_shift` the first
/// follower distance (Kafka's `nextReplicaShift`).
pub fn assign_replicas_with(
    brokers: &[BrokerMetadata],
    n_partitions: i32,
    replication_factor: i32,
    start_index: usize,
    initial_shift: usize,
    start_partition_id: i32,
) -> Result<BTreeMap<i32, Vec<BrokerId>>, AssignmentError> {
    if n_partitions <= 0 {
        return Err(AssignmentError::InvalidPartitions(
            "Number of partitions must be larger than 0.".into(),
        ));
    }
    if replication_factor <= 0 {
        return Err(AssignmentError::InvalidReplicationFactor(
            "Replication factor must be larger than 0.".into(),
        ));
    }
    let total = i64::from(start_partition_id.max(0)) + i64::from(n_partitions);
    if total > i64::from(MAX_PARTITIONS) {
        return Err(AssignmentError::InvalidPartitions(format!(
            "Number of partitions {total} is larger than the supported maximum of {MAX_PARTITIONS}."
        )));
    }
    if replication_factor as usize > brokers.len() {
        return Err(AssignmentError::InvalidReplicationFactor(format!(
            "Replication factor: {} larger than available brokers: {}.",
            replication_factor,
            brokers.len()
        )));
    }
    let with_rack = brokers.iter().filter(|b| b.rack.is_some()).count();
    if with_rack == 0 {
        let ids: Vec<BrokerId> = brokers.iter().map(|b| b.id).collect();
        Ok(rack_unaware(
            n_partitions,
            replication_factor as usize,
            &ids,
            start_index,
            initial_shift,
            start_partition_id,
        ))
    } else if with_rack < brokers.len() {
        Err(AssignmentError::RackInfo(
            "Not all brokers have rack information for replica rack aware assignment.".into(),
        ))
    } else {
        Ok(rack_aware(
            n_partitions,
            replication_factor as usize,
            brokers,
            start_index,
            initial_shift,
            start_partition_id,
        ))
    }
}

/// Assignment for partitions added to an existing topic (Kafka's
/// `AdminZkClient.createNewPartitionsAssignment`): replication factor and start index come from
/// partition 0, new ids continue after the existing ones. `brokers` should already be the
/// sorted output of [`broker_metadatas`].
pub fn new_partitions_assignment(
    brokers: &[BrokerMetadata],
    existing: &BTreeMap<i32, Vec<BrokerId>>,
    total_partitions: i32,
) -> Result<BTreeMap<i32, Vec<BrokerId>>, AssignmentError> {
    let p0 = existing.get(&0).ok_or_else(|| {
        AssignmentError::InvalidPartitions("The topic has no partition 0.".into())
    })?;
    let existing_count = existing.len() as i32;
    let to_add = total_partitions - existing_count;
    if to_add <= 0 {
        return Err(AssignmentError::InvalidPartitions(format!(
            "Topic currently has {existing_count} partitions, {total_partitions} would not be an increase."
        )));
    }
    let head = p0.first().copied().unwrap_or(-1);
    let start = brokers.iter().position(|b| b.id >= head).unwrap_or(0);
    assign_replicas_with(
        brokers,
        to_add,
        p0.len() as i32,
        start,
        start,
        existing_count,
    )
}

/// `replicaIndex`: position of the j-th follower given the leader position and shift.
fn replica_index(first: usize, shift: usize, j: usize, n: usize) -> usize {
    let step = 1 + (shift + j) % (n - 1);
    (first + step) % n
}

fn rack_unaware(
    n_partitions: i32,
    rf: usize,
    brokers: &[BrokerId],
    start_index: usize,
    initial_shift: usize,
    start_partition_id: i32,
) -> BTreeMap<i32, Vec<BrokerId>> {
    let n = brokers.len();
    let mut out = BTreeMap::new();
    let first_pid = start_partition_id.max(0) as usize;
    let mut shift = initial_shift;
    for pid in first_pid..first_pid + n_partitions as usize {
        if pid > 0 && pid.is_multiple_of(n) {
            shift += 1;
        }
        let first = (pid + start_index) % n;
        let mut replicas = Vec::with_capacity(rf);
        replicas.push(brokers[first]);
        for j in 0..rf - 1 {
            replicas.push(brokers[replica_index(first, shift, j, n)]);
        }
        out.insert(pid as i32, replicas);
    }
    out
}

fn rack_aware(
    n_partitions: i32,
    rf: usize,
    brokers: &[BrokerMetadata],
    start_index: usize,
    initial_shift: usize,
    start_partition_id: i32,
) -> BTreeMap<i32, Vec<BrokerId>> {
    let rack_of: HashMap<BrokerId, &str> = brokers
        .iter()
        .map(|b| (b.id, b.rack.as_deref().unwrap_or("")))
        .collect();
    let num_racks = rack_of.values().collect::<HashSet<_>>().len();
    let arranged = rack_alternated_broker_list(&rack_of);
    let n = arranged.len();
    let mut out = BTreeMap::new();
    let first_pid = start_partition_id.max(0) as usize;
    let mut shift = initial_shift;
    for pid in first_pid..first_pid + n_partitions as usize {
        if pid > 0 && pid.is_multiple_of(n) {
            shift += 1;
        }
        let first = (pid + start_index) % n;
        let leader = arranged[first];
        let mut replicas = vec![leader];
        let mut racks_used: HashSet<&str> = HashSet::from([rack_of[&leader]]);
        let mut brokers_used: HashSet<BrokerId> = HashSet::from([leader]);
        let mut k = 0;
        for _ in 0..rf - 1 {
            loop {
                let broker = arranged[replica_index(first, shift * num_racks, k, n)];
                let rack = rack_of[&broker];
                k += 1;
                // Skip a broker whose rack already has a replica while some rack has none, or
                // that already has a replica while some broker has none.
                let rack_ok = !racks_used.contains(rack) || racks_used.len() == num_racks;
                let broker_ok = !brokers_used.contains(&broker) || brokers_used.len() == n;
                if rack_ok && broker_ok {
                    replicas.push(broker);
                    racks_used.insert(rack);
                    brokers_used.insert(broker);
                    break;
                }
            }
        }
        out.insert(pid as i32, replicas);
    }
    out
}

/// Kafka's `getRackAlternatedBrokerList`: racks sorted by name, brokers of each rack sorted by
/// id, then one broker from each rack in turn.
pub fn rack_alternated_broker_list<R: AsRef<str>>(rack_of: &HashMap<BrokerId, R>) -> Vec<BrokerId> {
    let mut by_rack: BTreeMap<&str, BTreeSet<BrokerId>> = BTreeMap::new();
    for (id, rack) in rack_of {
        by_rack.entry(rack.as_ref()).or_default().insert(*id);
    }
    let mut iters: Vec<_> = by_rack.into_values().map(|s| s.into_iter()).collect();
    let mut out = Vec::with_capacity(rack_of.len());
    let mut i = 0;
    while out.len() < rack_of.len() {
        if let Some(b) = iters[i].next() {
            out.push(b);
        }
        i = (i + 1) % iters.len();
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A request for 2^31 partitions is refused up front instead of building a map that size
    /// (out-of-memory abort); the cap counts existing partitions too.
    #[test]
    fn partition_counts_are_capped() {
        let b = unaware([1, 2, 3]);
        let e = assign_replicas_to_brokers(&b, i32::MAX, 1, 0, 0).unwrap_err();
        assert_eq!(e.code(), 37);
        assert!(e.to_string().contains("2147483647"), "{e}");
        let existing: BTreeMap<i32, Vec<BrokerId>> = BTreeMap::from([(0, vec![1]), (1, vec![2])]);
        let e = new_partitions_assignment(&b, &existing, MAX_PARTITIONS + 1).unwrap_err();
        assert_eq!(e.code(), 37);
        assert_eq!(
            new_partitions_assignment(&b, &existing, 5).unwrap().len(),
            3,
            "ordinary growth still works"
        );
    }

    fn unaware(ids: impl IntoIterator<Item = i32>) -> Vec<BrokerMetadata> {
        ids.into_iter()
            .map(|i| BrokerMetadata::new(i, None))
            .collect()
    }

    fn racked(pairs: &[(i32, &str)]) -> Vec<BrokerMetadata> {
        let mut v: Vec<_> = pairs
            .iter()
            .map(|(i, r)| BrokerMetadata::new(*i, Some(r)))
            .collect();
        v.sort_by_key(|b| b.id);
        v
    }

    fn map(entries: &[(i32, &[i32])]) -> BTreeMap<i32, Vec<i32>> {
        entries.iter().map(|(p, r)| (*p, r.to_vec())).collect()
    }

    /// AdminTest/AssignmentTest.testReplicaAssignment: 5 brokers, 10 partitions, RF 3, start 0.
    #[test]
    fn kafka_rack_unaware_layout() {
        let got = assign_replicas_to_brokers(&unaware(0..5), 10, 3, 0, -1).unwrap();
        let want = map(&[
            (0, &[0, 1, 2]),
            (1, &[1, 2, 3]),
            (2, &[2, 3, 4]),
            (3, &[3, 4, 0]),
            (4, &[4, 0, 1]),
            (5, &[0, 2, 3]),
            (6, &[1, 3, 4]),
            (7, &[2, 4, 0]),
            (8, &[3, 0, 1]),
            (9, &[4, 1, 2]),
        ]);
        assert_eq!(got, want);
    }

    #[test]
    fn invalid_arguments() {
        let b = unaware(0..5);
        assert_eq!(
            assign_replicas_to_brokers(&b, 10, 0, -1, -1)
                .unwrap_err()
                .code(),
            38
        );
        assert_eq!(
            assign_replicas_to_brokers(&b, 10, 6, -1, -1)
                .unwrap_err()
                .code(),
            38
        );
        assert_eq!(
            assign_replicas_to_brokers(&b, 0, 1, -1, -1)
                .unwrap_err()
                .code(),
            37
        );
        assert_eq!(
            assign_replicas_to_brokers(&[], 1, 1, -1, -1)
                .unwrap_err()
                .code(),
            38
        );
        let mixed = vec![
            BrokerMetadata::new(0, Some("a")),
            BrokerMetadata::new(1, None),
        ];
        assert_eq!(
            assign_replicas_to_brokers(&mixed, 1, 1, 0, 0)
                .unwrap_err()
                .code(),
            39
        );
        assert!(broker_metadatas(&mixed, RackAwareMode::Enforced).is_err());
        let safe = broker_metadatas(&mixed, RackAwareMode::Safe).unwrap();
        assert!(safe.iter().all(|b| b.rack.is_none()));
    }

    /// AdminRackAwareTest.testGetRackAlternatedBrokerListAndAssignReplicasToBrokers.
    #[test]
    fn kafka_rack_alternated_list_and_layout() {
        let racks: HashMap<i32, &str> = HashMap::from([
            (0, "rack1"),
            (1, "rack3"),
            (2, "rack3"),
            (3, "rack2"),
            (4, "rack2"),
            (5, "rack1"),
        ]);
        assert_eq!(rack_alternated_broker_list(&racks), vec![0, 3, 1, 5, 4, 2]);
        let mut without5 = racks.clone();
        without5.remove(&5);
        assert_eq!(rack_alternated_broker_list(&without5), vec![0, 3, 1, 4, 2]);

        let brokers = racked(&racks.iter().map(|(k, v)| (*k, *v)).collect::<Vec<_>>());
        let got = assign_replicas_to_brokers(&brokers, 7, 3, 0, 0).unwrap();
        let want = map(&[
            (0, &[0, 3, 1]),
            (1, &[3, 1, 5]),
            (2, &[1, 5, 4]),
            (3, &[5, 4, 2]),
            (4, &[4, 2, 0]),
            (5, &[2, 0, 3]),
            (6, &[0, 4, 2]),
        ]);
        assert_eq!(got, want);
    }

    /// Properties AdminRackAwareTest checks with random start indexes: each partition spans
    /// min(rf, racks) racks, leaders and replicas are spread evenly.
    #[test]
    fn rack_aware_distribution_for_all_start_indexes() {
        let brokers = racked(&[
            (0, "rack1"),
            (1, "rack2"),
            (2, "rack2"),
            (3, "rack3"),
            (4, "rack3"),
            (5, "rack1"),
        ]);
        for start in 0..6 {
            for shift in 0..6 {
                let a = assign_replicas_with(&brokers, 6, 3, start, shift, 0).unwrap();
                let mut leaders: HashMap<i32, usize> = HashMap::new();
                let mut replicas: HashMap<i32, usize> = HashMap::new();
                for rs in a.values() {
                    let racks: HashSet<_> = rs
                        .iter()
                        .map(|b| brokers.iter().find(|m| m.id == *b).unwrap().rack.clone())
                        .collect();
                    assert_eq!(racks.len(), 3, "{a:?}");
                    *leaders.entry(rs[0]).or_default() += 1;
                    for r in rs {
                        *replicas.entry(*r).or_default() += 1;
                    }
                }
                assert!(leaders.values().all(|c| *c == 1), "{a:?}");
                assert!(replicas.values().all(|c| *c == 3), "{a:?}");
            }
        }
    }

    /// testSkipBrokerWithReplicaAlreadyAssigned: RF 4 over 3 racks never repeats a broker.
    #[test]
    fn skip_broker_with_replica_already_assigned() {
        let brokers = racked(&[(0, "a"), (1, "b"), (2, "c"), (3, "a"), (4, "a")]);
        let a = assign_replicas_to_brokers(&brokers, 6, 4, 2, -1).unwrap();
        assert_eq!(a.len(), 6);
        for rs in a.values() {
            assert_eq!(rs.iter().collect::<HashSet<_>>().len(), 4, "{a:?}");
        }
    }

    /// testMoreReplicasThanRacks / testSingleRack.
    #[test]
    fn more_replicas_than_racks_and_single_rack() {
        let brokers = racked(&[
            (0, "rack1"),
            (1, "rack2"),
            (2, "rack2"),
            (3, "rack3"),
            (4, "rack3"),
            (5, "rack2"),
        ]);
        let a = assign_replicas_to_brokers(&brokers, 6, 5, -1, -1).unwrap();
        for rs in a.values() {
            assert_eq!(rs.len(), 5);
            let racks: HashSet<_> = rs
                .iter()
                .map(|b| brokers.iter().find(|m| m.id == *b).unwrap().rack.clone())
                .collect();
            assert_eq!(racks.len(), 3);
        }
        let single = racked(&[(0, "r"), (1, "r"), (2, "r"), (3, "r"), (4, "r"), (5, "r")]);
        let a = assign_replicas_to_brokers(&single, 6, 3, -1, -1).unwrap();
        let leaders: HashSet<_> = a.values().map(|rs| rs[0]).collect();
        assert_eq!(leaders.len(), 6);
    }

    /// Adding partitions: start index from partition 0's head, ids continue, RF from p0.
    #[test]
    fn add_partitions_continues_layout() {
        let brokers = unaware(0..5);
        let full = assign_replicas_to_brokers(&brokers, 10, 3, 0, -1).unwrap();
        let existing: BTreeMap<i32, Vec<i32>> = full
            .iter()
            .filter(|(p, _)| **p < 4)
            .map(|(p, r)| (*p, r.clone()))
            .collect();
        let added = new_partitions_assignment(&brokers, &existing, 10).unwrap();
        let want: BTreeMap<i32, Vec<i32>> = full
            .iter()
            .filter(|(p, _)| **p >= 4)
            .map(|(p, r)| (*p, r.clone()))
            .collect();
        assert_eq!(added, want);
        // Kafka AdminZkClientTest-style: existing {0:[1,2], 1:[2,3]} on brokers 0..4, add 1.
        let existing = map(&[(0, &[1, 2]), (1, &[2, 3])]);
        let added = new_partitions_assignment(&brokers, &existing, 3).unwrap();
        // start index = shift = position of broker 1 = 1; partition 2 → first 3, follower 3+2.
        assert_eq!(added, map(&[(2, &[3, 0])]));
        assert_eq!(
            new_partitions_assignment(&brokers, &existing, 2)
                .unwrap_err()
                .code(),
            37
        );
    }

    #[test]
    fn random_start_is_valid() {
        let brokers = unaware([1, 2, 3]);
        for _ in 0..20 {
            let a = assign_replicas_to_brokers(&brokers, 8, 3, -1, -1).unwrap();
            assert_eq!(a.len(), 8);
            for rs in a.values() {
                assert_eq!(rs.iter().collect::<HashSet<_>>().len(), 3);
            }
        }
        let one = assign_replicas_to_brokers(&unaware([7]), 3, 1, -1, -1).unwrap();
        assert_eq!(one, map(&[(0, &[7]), (1, &[7]), (2, &[7])]));
    }
}
