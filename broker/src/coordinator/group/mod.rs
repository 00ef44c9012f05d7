//! Classic consumer-group coordinator (Kafka's ZooKeeper-mode `GroupCoordinator`): group state
//! machine (Empty, PreparingRebalance, CompletingRebalance, Stable, Dead), JoinGroup / SyncGroup /
//! Heartbeat / LeaveGroup, session and rebalance timers (tokio tasks), and committed offsets.
//!
//! All state sits behind one `std::sync::Mutex` that is never held across an `.await`; parked
//! JoinGroup / SyncGroup requests wait on oneshot channels answered when the phase completes.
//! Timers are spawned tasks that re-check a sequence number under the lock, so a timer whose
//! phase already ended does nothing.
//!
//! Persistence follows Kafka's `GroupMetadataManager`: group and offset records are appended to
//! the group's `__consumer_offsets` partition through an [`AppendFn`] that appends to the local
//! leader at call time (under the lock, so records land in call order) and returns a future for
//! the acks. SyncGroup answers only after the group record is replicated (acks -1); offset
//! commits are cached only after their records are. Becoming leader of a partition loads its
//! groups and offsets (`load.rs`); losing it unloads them. Expired offsets get tombstones.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;

pub mod load;
mod offsets;
pub mod records;
mod txn_offsets;

pub use txn_offsets::{PendingTxnOffset, TxnAppendFn, TxnWrite};

pub mod codes {
    pub const NONE: i16 = 0;
    pub const UNKNOWN_SERVER_ERROR: i16 = -1;
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub const INVALID_FETCH_SIZE: i16 = 4;
    pub const NOT_LEADER_OR_FOLLOWER: i16 = 6;
    pub const REQUEST_TIMED_OUT: i16 = 7;
    pub const NETWORK_EXCEPTION: i16 = 13;
    pub const MESSAGE_TOO_LARGE: i16 = 10;
    pub const OFFSET_METADATA_TOO_LARGE: i16 = 12;
    pub const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
    pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
    pub const NOT_COORDINATOR: i16 = 16;
    pub const ILLEGAL_GENERATION: i16 = 22;
    pub const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
    pub const INVALID_GROUP_ID: i16 = 24;
    pub const UNKNOWN_MEMBER_ID: i16 = 25;
    pub const INVALID_SESSION_TIMEOUT: i16 = 26;
    pub const REBALANCE_IN_PROGRESS: i16 = 27;
    pub const INVALID_COMMIT_OFFSET_SIZE: i16 = 28;
    pub const RECORD_LIST_TOO_LARGE: i16 = 18;
    pub const NOT_ENOUGH_REPLICAS: i16 = 19;
    pub const NOT_ENOUGH_REPLICAS_AFTER_APPEND: i16 = 20;
    pub const KAFKA_STORAGE_ERROR: i16 = 56;
    pub const NON_EMPTY_GROUP: i16 = 68;
    pub const GROUP_ID_NOT_FOUND: i16 = 69;
    pub const GROUP_SUBSCRIBED_TO_TOPIC: i16 = 86;
    pub const UNSTABLE_OFFSET_COMMIT: i16 = 88;
    pub const MEMBER_ID_REQUIRED: i16 = 79;
    pub const GROUP_MAX_SIZE_REACHED: i16 = 81;
    pub const FENCED_INSTANCE_ID: i16 = 82;
}
use codes::*;

/// A new member whose first join never completes is dropped after this long (Kafka's
/// `GroupCoordinator.NewMemberJoinTimeoutMs`).
const NEW_MEMBER_JOIN_TIMEOUT_MS: u64 = 300_000;

/// Group settings from `server.properties`.
#[derive(Debug, Clone)]
pub struct GroupConfig {
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    pub initial_rebalance_delay_ms: i32,
    pub max_size: i32,
    pub offset_metadata_max_bytes: i32,
    /// `offsets.retention.minutes` in ms.
    pub offsets_retention_ms: i64,
    /// `offsets.commit.required.acks` (-1): acks for offset commits and group records.
    pub required_acks: i16,
}

impl Default for GroupConfig {
    fn default() -> Self {
        Self {
            min_session_timeout_ms: 6000,
            max_session_timeout_ms: 1_800_000,
            initial_rebalance_delay_ms: 3000,
            max_size: i32::MAX,
            offset_metadata_max_bytes: 4096,
            offsets_retention_ms: 10080 * 60_000,
            required_acks: -1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    /// Name as Kafka reports it (ListGroups / DescribeGroups).
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// Answer to a JoinGroup.
#[derive(Debug, Clone, Default)]
pub struct JoinResult {
    pub error: i16,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    pub skip_assignment: bool,
    /// (member id, group instance id, metadata): only for the leader.
    pub members: Vec<(String, Option<String>, Bytes)>,
}

impl JoinResult {
    fn error(error: i16, member_id: &str) -> Self {
        Self {
            error,
            generation: -1,
            member_id: member_id.to_string(),
            ..Default::default()
        }
    }
}

/// Answer to a SyncGroup.
#[derive(Debug, Clone, Default)]
pub struct SyncResult {
    pub error: i16,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncResult {
    fn error(error: i16) -> Self {
        Self {
            error,
            ..Default::default()
        }
    }
}

/// A JoinGroup that cannot be answered at once.
enum Parked {
    /// Waits for the join phase to complete.
    Waiter(oneshot::Receiver<JoinResult>),
    /// A static member's rejoin: answered once the group record is written; a failed write
    /// undoes the member-id swap.
    Store(AppendWait, Box<(JoinResult, StaticSwap)>),
}

/// What a static member's rejoin in a Stable group changed, to undo it if the group record
/// cannot be written (Kafka's `updateStaticMemberAndRebalance` failure path).
struct StaticSwap {
    group_id: String,
    incarnation: u64,
    instance_id: String,
    old_id: String,
    new_id: String,
    old_session_timeout_ms: i32,
    old_rebalance_timeout_ms: i32,
    /// The failed answer as of the rejoin: the leader before the swap, no member id (the
    /// group's generation and protocol are read again when the write fails).
    failed: JoinResult,
}

impl From<oneshot::Receiver<JoinResult>> for Parked {
    fn from(rx: oneshot::Receiver<JoinResult>) -> Self {
        Parked::Waiter(rx)
    }
}

/// A JoinGroup request in coordinator terms.
#[derive(Debug, Clone)]
pub struct JoinArgs {
    pub group_id: String,
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: an unknown member must first get MEMBER_ID_REQUIRED.
    pub require_known_member_id: bool,
    /// JoinGroup v9+: a static leader rejoining a Stable group can be told to skip the assignment.
    pub supports_skip_assignment: bool,
}

/// One group as DescribeGroups reports it.
#[derive(Debug, Clone)]
pub struct GroupDescription {
    pub state: GroupState,
    pub protocol_type: String,
    pub protocol: String,
    pub members: Vec<MemberDescription>,
}

#[derive(Debug, Clone)]
pub struct MemberDescription {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: Bytes,
    pub assignment: Bytes,
}

/// A committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp: i64,
    /// Explicit expiry (OffsetCommit v2-4 retention time; value v1).
    pub expire_timestamp: Option<i64>,
}

#[derive(Debug)]
struct Member {
    instance_id: Option<String>,
    client_id: String,
    client_host: String,
    session_timeout_ms: i32,
    rebalance_timeout_ms: i32,
    protocols: Vec<(String, Bytes)>,
    assignment: Bytes,
    join_waiter: Option<oneshot::Sender<JoinResult>>,
    sync_waiter: Option<oneshot::Sender<SyncResult>>,
    is_new: bool,
    heartbeat_seq: u64,
}

/// Source of [`Group::incarnation`].
static NEXT_INCARNATION: AtomicU64 = AtomicU64::new(1);

#[derive(Debug)]
struct Group {
    /// Tells a group apart from a later one with the same id (deleted or unloaded, then created
    /// or loaded again): an append completing late acts only on the group that issued it, as
    /// Kafka's callbacks hold the `GroupMetadata` object itself.
    incarnation: u64,
    state: GroupState,
    generation: i32,
    protocol_type: Option<String>,
    protocol: Option<String>,
    leader: Option<String>,
    members: BTreeMap<String, Member>,
    pending: HashSet<String>,
    pending_sync: HashSet<String>,
    static_members: HashMap<String, String>,
    offsets: BTreeMap<(String, i32), CommittedOffset>,
    /// Offset commits appended but not yet acknowledged (Kafka's `pendingOffsetCommits`).
    pending_commits: HashMap<(String, i32), u32>,
    /// Append sequence of the cached offset (or of its deletion): a commit completing late
    /// never replaces a newer one, nor revives a deleted one (Kafka's `olderThan` check).
    offset_seq: HashMap<(String, i32), u64>,
    /// Transactional offset commits by producer id, waiting for their marker (Kafka's
    /// `pendingTransactionalOffsetCommits`); see `txn_offsets.rs`.
    pending_txn: HashMap<i64, HashMap<(String, i32), PendingTxnOffset>>,
    new_member_added: bool,
    rebalance_seq: u64,
    /// When the group entered its current state (Kafka's `currentStateTimestamp`).
    state_timestamp: Option<i64>,
    /// Topics the members subscribe to ("consumer" groups; Kafka's `subscribedTopics`).
    subscribed_topics: Option<HashSet<String>>,
}

impl Group {
    fn new() -> Self {
        Self {
            incarnation: NEXT_INCARNATION.fetch_add(1, Ordering::Relaxed),
            state: GroupState::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            pending: HashSet::new(),
            pending_sync: HashSet::new(),
            static_members: HashMap::new(),
            offsets: BTreeMap::new(),
            pending_commits: HashMap::new(),
            offset_seq: HashMap::new(),
            pending_txn: HashMap::new(),
            new_member_added: false,
            rebalance_seq: 0,
            state_timestamp: Some(now_ms()),
            subscribed_topics: None,
        }
    }

    fn set_state(&mut self, s: GroupState) {
        self.state = s;
        self.state_timestamp = Some(now_ms());
    }

    /// Kafka's `computeSubscribedTopics`: the union of the members' subscriptions for the
    /// chosen protocol of a "consumer" group; `None` if unknown or unparsable.
    fn compute_subscribed_topics(&self) -> Option<HashSet<String>> {
        if self.protocol_type.as_deref() != Some("consumer")
            || self.members.is_empty()
            || self.protocol.is_none()
        {
            return None;
        }
        let mut out = HashSet::new();
        for m in self.members.values() {
            out.extend(records::subscription_topics(&self.metadata_for(m))?);
        }
        Some(out)
    }

    fn stored_members(
        &self,
        assignment: Option<&HashMap<String, Bytes>>,
    ) -> Vec<records::StoredMember> {
        self.members
            .iter()
            .map(|(id, m)| records::StoredMember {
                member_id: id.clone(),
                instance_id: m.instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                rebalance_timeout_ms: m.rebalance_timeout_ms,
                session_timeout_ms: m.session_timeout_ms,
                subscription: self.metadata_for(m),
                assignment: match assignment {
                    Some(a) => a.get(id).cloned().unwrap_or_default(),
                    None => m.assignment.clone(),
                },
            })
            .collect()
    }

    /// GroupMetadataValue of this group (Empty: protocol/leader null, no members).
    fn record_value(&self, assignment: Option<&HashMap<String, Bytes>>) -> Bytes {
        records::group_value(
            self.protocol_type.as_deref().unwrap_or(""),
            self.generation,
            self.protocol.as_deref(),
            self.leader.as_deref(),
            self.state_timestamp.unwrap_or(-1),
            &self.stored_members(assignment),
        )
    }

    /// Kafka's `GroupMetadata.removeExpiredOffsets` (3.9 rules); returns the removed keys.
    fn remove_expired_offsets(&mut self, now: i64, retention_ms: i64) -> Vec<(String, i32)> {
        let subscribed = match (self.protocol_type.as_deref(), self.state) {
            (Some(_), GroupState::Empty) => HashSet::new(),
            (Some("consumer"), GroupState::Stable) if self.subscribed_topics.is_some() => {
                self.subscribed_topics.clone().unwrap_or_default()
            }
            (None, _) => HashSet::new(),
            _ => return Vec::new(),
        };
        // Empty groups count from the time they became Empty (when known).
        let empty_base = (self.protocol_type.is_some() && self.state == GroupState::Empty)
            .then_some(self.state_timestamp)
            .flatten();
        let expired: Vec<(String, i32)> = self
            .offsets
            .iter()
            .filter(|(k, o)| {
                !subscribed.contains(&k.0)
                    && !self.pending_commits.contains_key(*k)
                    && match o.expire_timestamp {
                        Some(exp) => now >= exp,
                        // v1 commits carry a client timestamp: wrap as Kafka does.
                        None => {
                            now.wrapping_sub(empty_base.unwrap_or(o.commit_timestamp))
                                >= retention_ms
                        }
                    }
            })
            .map(|(k, _)| k.clone())
            .collect();
        for k in &expired {
            self.offsets.remove(k);
        }
        expired
    }

    fn is_subscribed_to(&self, topic: &str) -> bool {
        self.subscribed_topics
            .as_ref()
            .is_some_and(|t| t.contains(topic))
    }

    /// Protocols every member supports (Kafka's `candidateProtocols`).
    fn candidates(&self) -> HashSet<String> {
        let mut it = self.members.values();
        let Some(first) = it.next() else {
            return HashSet::new();
        };
        let mut set: HashSet<String> = first.protocols.iter().map(|(n, _)| n.clone()).collect();
        for m in it {
            let ps: HashSet<&String> = m.protocols.iter().map(|(n, _)| n).collect();
            set.retain(|n| ps.contains(n));
        }
        set
    }

    fn supports(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if self.members.is_empty() {
            !protocol_type.is_empty() && !protocols.is_empty()
        } else {
            let c = self.candidates();
            self.protocol_type.as_deref() == Some(protocol_type)
                && protocols.iter().any(|(n, _)| c.contains(n))
        }
    }

    /// Each member votes for its first supported candidate; most votes wins (ties: name order).
    fn select_protocol(&self) -> Option<String> {
        let c = self.candidates();
        let mut votes: BTreeMap<String, usize> = BTreeMap::new();
        for m in self.members.values() {
            if let Some((n, _)) = m.protocols.iter().find(|(n, _)| c.contains(n)) {
                *votes.entry(n.clone()).or_default() += 1;
            }
        }
        let max = votes.values().copied().max()?;
        votes.into_iter().find(|(_, v)| *v == max).map(|(n, _)| n)
    }

    fn all_joined(&self) -> bool {
        self.pending.is_empty() && self.members.values().all(|m| m.join_waiter.is_some())
    }

    fn rebalance_timeout_ms(&self) -> i32 {
        self.members
            .values()
            .map(|m| m.rebalance_timeout_ms)
            .max()
            .unwrap_or(0)
    }

    fn metadata_for(&self, m: &Member) -> Bytes {
        let p = self.protocol.as_deref().unwrap_or("");
        m.protocols
            .iter()
            .find(|(n, _)| n == p)
            .map(|(_, b)| b.clone())
            .unwrap_or_default()
    }

    fn join_result_for(&self, member_id: &str) -> JoinResult {
        let leader = self.leader.clone().unwrap_or_default();
        let members = if leader == member_id {
            self.members
                .iter()
                .map(|(id, m)| (id.clone(), m.instance_id.clone(), self.metadata_for(m)))
                .collect()
        } else {
            Vec::new()
        };
        JoinResult {
            error: NONE,
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            leader,
            member_id: member_id.to_string(),
            skip_assignment: false,
            members,
        }
    }

    fn remove_member(&mut self, id: &str) {
        if let Some(m) = self.members.remove(id) {
            if let Some(iid) = &m.instance_id {
                if self.static_members.get(iid).map(String::as_str) == Some(id) {
                    self.static_members.remove(iid);
                }
            }
        }
        self.pending_sync.remove(id);
        if self.leader.as_deref() == Some(id) {
            self.leader = self.members.keys().next().cloned();
        }
    }
}

/// Which `__consumer_offsets` partitions this coordinator owns or is loading.
#[derive(Debug, Default)]
struct Partitions {
    owned: HashSet<i32>,
    /// Partition -> token of the load under way (a newer election or an unload invalidates it).
    loading: HashMap<i32, u64>,
    /// Highest leader epoch seen per partition (Kafka's coordinator epoch).
    epochs: HashMap<i32, i32>,
    /// Transaction markers written while the partition was loading: (producer id, commit,
    /// marker offset), applied once the load is installed (see `txn_offsets.rs`).
    deferred_txn: HashMap<i32, Vec<(i64, bool, i64)>>,
}

/// The coordinator of all groups this broker owns.
pub struct GroupCoordinator {
    config: GroupConfig,
    groups: Mutex<HashMap<String, Group>>,
    /// Lock order: `partitions` before `groups`, never the reverse.
    partitions: Mutex<Partitions>,
    /// Partition count of `__consumer_offsets` (0: unknown); atomic so that code holding the
    /// groups lock can map a group to its partition.
    partition_count: AtomicI32,
    /// Writes records of a group to its `__consumer_offsets` partition; installed at start-up
    /// (absent in unit tests, where writes succeed at once).
    append: Mutex<Option<AppendFn>>,
    /// Writes a TxnOffsetCommit's transactional batch (absent in unit tests).
    txn_append: Mutex<Option<txn_offsets::TxnAppendFn>>,
    /// Source of timer sequence numbers, unique across group reloads.
    seq: AtomicU64,
}

/// Future of an append's final error code (raw produce code; 0 = replicated as asked).
pub type AppendWait = Pin<Box<dyn Future<Output = i16> + Send>>;

/// (group id, records, required acks) → appends to the group's partition *now* and returns
/// the wait for the acks.
pub type AppendFn = Arc<dyn Fn(&str, Vec<(Bytes, Option<Bytes>)>, i16) -> AppendWait + Send + Sync>;

fn ms(v: i64) -> Duration {
    Duration::from_millis(v.max(0) as u64)
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Kafka's mapping of append errors for offset commits (`storeOffsets`).
pub fn commit_error(code: i16) -> i16 {
    match code {
        // A failed transaction verification (TxnOffsetCommit): clients retry this one
        // without looking the coordinator up again.
        NETWORK_EXCEPTION => COORDINATOR_LOAD_IN_PROGRESS,
        UNKNOWN_TOPIC_OR_PARTITION | NOT_ENOUGH_REPLICAS | NOT_ENOUGH_REPLICAS_AFTER_APPEND => {
            COORDINATOR_NOT_AVAILABLE
        }
        NOT_LEADER_OR_FOLLOWER | KAFKA_STORAGE_ERROR => NOT_COORDINATOR,
        MESSAGE_TOO_LARGE | RECORD_LIST_TOO_LARGE | INVALID_FETCH_SIZE => {
            INVALID_COMMIT_OFFSET_SIZE
        }
        c => c,
    }
}

/// Kafka's mapping of append errors for group records (`storeGroup`).
pub fn store_group_error(code: i16) -> i16 {
    match code {
        UNKNOWN_TOPIC_OR_PARTITION | NOT_ENOUGH_REPLICAS | NOT_ENOUGH_REPLICAS_AFTER_APPEND => {
            COORDINATOR_NOT_AVAILABLE
        }
        NOT_LEADER_OR_FOLLOWER | KAFKA_STORAGE_ERROR => NOT_COORDINATOR,
        REQUEST_TIMED_OUT => REBALANCE_IN_PROGRESS,
        MESSAGE_TOO_LARGE | RECORD_LIST_TOO_LARGE | INVALID_FETCH_SIZE => UNKNOWN_SERVER_ERROR,
        c => c,
    }
}

impl std::fmt::Debug for GroupCoordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GroupCoordinator")
    }
}

/// Result of a group's offset commit, per partition, in request order.
pub type CommitResult = Vec<((String, i32), i16)>;

impl GroupCoordinator {
    pub fn new(config: GroupConfig) -> Arc<Self> {
        Arc::new(Self {
            config,
            groups: Mutex::new(HashMap::new()),
            partitions: Mutex::new(Partitions::default()),
            partition_count: AtomicI32::new(0),
            append: Mutex::new(None),
            txn_append: Mutex::new(None),
            seq: AtomicU64::new(1),
        })
    }

    fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed)
    }

    /// Install the record writer.
    pub fn set_append(&self, f: AppendFn) {
        *self.append.lock().unwrap_or_else(|p| p.into_inner()) = Some(f);
    }

    /// Append records of `gid` now; the returned future resolves to the append's error code.
    fn append_now(&self, gid: &str, recs: Vec<(Bytes, Option<Bytes>)>, acks: i16) -> AppendWait {
        let f = self
            .append
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        match f {
            Some(f) => f(gid, recs, acks),
            None => Box::pin(std::future::ready(NONE)),
        }
    }

    /// Write the group record without waiting for it (Kafka does so for a group that became
    /// Empty: a lost write only delays cleanup).
    fn persist_group_async(&self, gid: &str, g: &Group) {
        let wait = self.append_now(
            gid,
            vec![(records::group_key(gid), Some(g.record_value(None)))],
            self.config.required_acks,
        );
        let gid = gid.to_string();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let code = wait.await;
                if code != NONE {
                    tracing::warn!(group = gid, code, "writing group record failed");
                }
            });
        }
    }

    // ------------------------------------------------------------------ partitions

    /// Set the `__consumer_offsets` partition count (from the metadata cache).
    pub fn set_partition_count(&self, n: i32) {
        self.partition_count.store(n, Ordering::Relaxed);
    }

    fn parts(&self) -> MutexGuard<'_, Partitions> {
        self.partitions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Partition of `__consumer_offsets` owning `gid` (`None` while the count is unknown).
    pub fn partition_of(&self, gid: &str) -> Option<i32> {
        let n = self.partition_count.load(Ordering::Relaxed);
        (n > 0).then(|| crate::coordinator::partition_for(gid, n))
    }

    /// Group-level status (Kafka's `validateGroupStatus` after the id check):
    /// COORDINATOR_LOAD_IN_PROGRESS while loading, NOT_COORDINATOR unless owned.
    pub fn partition_status(&self, partition: i32) -> Option<i16> {
        let p = self.parts();
        if p.loading.contains_key(&partition) {
            Some(COORDINATOR_LOAD_IN_PROGRESS)
        } else if p.owned.contains(&partition) {
            None
        } else {
            Some(NOT_COORDINATOR)
        }
    }

    /// Whether `__consumer_offsets-<partition>` is still being loaded.
    pub fn is_loading(&self, partition: i32) -> bool {
        self.parts().loading.contains_key(&partition)
    }

    /// Whether any partition is being loaded (ListGroups).
    pub fn any_loading(&self) -> bool {
        !self.parts().loading.is_empty()
    }

    /// Whether this coordinator owns (has loaded) `partition`.
    pub fn is_owned(&self, partition: i32) -> bool {
        self.parts().owned.contains(&partition)
    }

    /// Became leader of `partition` in `epoch`: returns a load token, or `None` when nothing is
    /// to be loaded (an older epoch, or the partition is already owned or loading -- Kafka's
    /// `maybeUpdateCoordinatorEpoch` / `addLoadingPartition`).
    pub fn begin_load(&self, partition: i32, epoch: i32) -> Option<u64> {
        let mut p = self.parts();
        if p.epochs.get(&partition).is_some_and(|e| *e > epoch) {
            return None;
        }
        p.epochs.insert(partition, epoch);
        if p.owned.contains(&partition) || p.loading.contains_key(&partition) {
            return None;
        }
        let token = self.next_seq();
        p.loading.insert(partition, token);
        p.deferred_txn.remove(&partition);
        Some(token)
    }

    /// Install what a load read (unless the load was superseded): groups with members become
    /// Stable with fresh session timers, memberless ones Empty; groups with only offsets
    /// become Empty "simple" groups (Kafka's `loadGroup` + `onGroupLoaded`).
    pub fn finish_load(
        self: &Arc<Self>,
        partition: i32,
        token: u64,
        loaded: Option<load::LoadedPartition>,
    ) {
        let mut parts = self.parts();
        if parts.loading.get(&partition) != Some(&token) {
            return;
        }
        parts.loading.remove(&partition);
        let Some(mut l) = loaded else {
            parts.deferred_txn.remove(&partition);
            return;
        };
        let n_partitions = self.partition_count.load(Ordering::Relaxed);
        let mut gs = self.lock();
        let mut n_groups = 0;
        for (gid, sg) in std::mem::take(&mut l.groups) {
            if gs.contains_key(&gid) {
                continue;
            }
            let mut g = Group::new();
            g.protocol_type = (!sg.protocol_type.is_empty()).then_some(sg.protocol_type);
            g.generation = sg.generation;
            g.protocol = sg.protocol.clone();
            g.leader = sg.leader;
            g.state_timestamp = (sg.state_timestamp >= 0).then_some(sg.state_timestamp);
            for m in sg.members {
                if let Some(iid) = &m.instance_id {
                    g.static_members.insert(iid.clone(), m.member_id.clone());
                }
                g.members.insert(
                    m.member_id,
                    Member {
                        instance_id: m.instance_id,
                        client_id: m.client_id,
                        client_host: m.client_host,
                        session_timeout_ms: m.session_timeout_ms,
                        rebalance_timeout_ms: m.rebalance_timeout_ms,
                        protocols: vec![(sg.protocol.clone().unwrap_or_default(), m.subscription)],
                        assignment: m.assignment,
                        join_waiter: None,
                        sync_waiter: None,
                        is_new: false,
                        heartbeat_seq: 0,
                    },
                );
            }
            g.state = if g.members.is_empty() {
                GroupState::Empty
            } else {
                GroupState::Stable
            };
            g.subscribed_topics = g.compute_subscribed_topics();
            g.offsets = l.offsets.remove(&gid).unwrap_or_default();
            self.install_loaded_offsets(&mut g, &gid, &mut l);
            let ids: Vec<String> = g.members.keys().cloned().collect();
            for id in ids {
                let t = g
                    .members
                    .get(&id)
                    .map(|m| m.session_timeout_ms)
                    .unwrap_or(0);
                self.arm_heartbeat_locked(&mut g, &gid, &id, i64::from(t));
            }
            let over = g.members.len() > self.config.max_size.max(0) as usize;
            gs.insert(gid.clone(), g);
            if over {
                if let Some(g) = gs.get_mut(&gid) {
                    self.prepare_rebalance(g, &gid, "group is over its max size after loading");
                }
            }
            n_groups += 1;
        }
        for (gid, offsets) in std::mem::take(&mut l.offsets) {
            if gs.contains_key(&gid) {
                continue;
            }
            let mut g = Group::new();
            g.offsets = offsets;
            self.install_loaded_offsets(&mut g, &gid, &mut l);
            gs.insert(gid, g);
            n_groups += 1;
        }
        // Groups known only from transactional commits still waiting for their marker.
        let pending_only: Vec<String> = l.pending_txn.keys().cloned().collect();
        for gid in pending_only {
            if gs.contains_key(&gid) {
                continue;
            }
            let mut g = Group::new();
            self.install_loaded_offsets(&mut g, &gid, &mut l);
            gs.insert(gid, g);
            n_groups += 1;
        }
        let deferred = parts.deferred_txn.remove(&partition).unwrap_or_default();
        for (pid, commit, marker_offset) in deferred {
            if marker_offset >= l.end_offset {
                Self::complete_txn_locked(&mut gs, n_partitions, pid, &[partition], commit);
            }
        }
        parts.owned.insert(partition);
        tracing::info!(
            partition,
            groups = n_groups,
            "loaded __consumer_offsets partition"
        );
    }

    /// Lost leadership of `partition`: its groups are unloaded (Dead; parked requests get
    /// NOT_COORDINATOR) and a load under way is abandoned (Kafka's `removeGroupsForPartition`).
    pub fn unload_partition(&self, partition: i32) {
        let mut parts = self.parts();
        parts.loading.remove(&partition);
        parts.owned.remove(&partition);
        parts.deferred_txn.remove(&partition);
        drop(parts);
        let n = self.partition_count.load(Ordering::Relaxed);
        let mut gs = self.lock();
        let gone: Vec<String> = gs
            .keys()
            .filter(|k| n <= 0 || crate::coordinator::partition_for(k, n) == partition)
            .cloned()
            .collect();
        for id in gone {
            if let Some(mut g) = gs.remove(&id) {
                g.state = GroupState::Dead;
                for m in g.members.values_mut() {
                    if let Some(w) = m.join_waiter.take() {
                        let _ = w.send(JoinResult::error(NOT_COORDINATOR, ""));
                    }
                    if let Some(w) = m.sync_waiter.take() {
                        let _ = w.send(SyncResult::error(NOT_COORDINATOR));
                    }
                }
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Group>> {
        self.groups.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// State name of a group (tests, DescribeGroups).
    pub fn group_state(&self, group_id: &str) -> Option<GroupState> {
        self.lock().get(group_id).map(|g| g.state)
    }

    /// Generation of a group.
    pub fn generation(&self, group_id: &str) -> Option<i32> {
        self.lock().get(group_id).map(|g| g.generation)
    }

    /// (group id, protocol type, state) of every group.
    pub fn list_groups(&self) -> Vec<(String, String, GroupState)> {
        self.lock()
            .iter()
            .map(|(id, g)| {
                (
                    id.clone(),
                    g.protocol_type.clone().unwrap_or_default(),
                    g.state,
                )
            })
            .collect()
    }

    /// Groups per state (in [`GroupState`] order) and committed offsets, for Kafka's
    /// `GroupMetadataManager` gauges (NumGroups*, NumOffsets).
    pub fn metric_counts(&self) -> ([usize; 5], usize) {
        let mut states = [0usize; 5];
        let mut offsets = 0;
        for g in self.lock().values() {
            states[g.state as usize] += 1;
            offsets += g.offsets.len();
        }
        (states, offsets)
    }

    // ------------------------------------------------------------------ join

    pub async fn join(self: &Arc<Self>, a: JoinArgs) -> JoinResult {
        let member_hint = a.member_id.clone();
        match self.join_locked(a) {
            Ok(r) => r,
            Err(Parked::Waiter(rx)) => rx
                .await
                .unwrap_or_else(|_| JoinResult::error(UNKNOWN_MEMBER_ID, &member_hint)),
            Err(Parked::Store(wait, parked)) => {
                let (ok, swap) = *parked;
                let code = wait.await;
                if code == NONE {
                    ok
                } else {
                    self.revert_static_swap(swap, store_group_error(code))
                }
            }
        }
    }

    /// The group record naming a static member's new id was not written: give the member its
    /// old id back (timeouts too; Kafka keeps the new protocols, as it reads them after the
    /// update), re-arm the old id's session, and answer with `error` and no member id.
    fn revert_static_swap(self: &Arc<Self>, s: StaticSwap, error: i16) -> JoinResult {
        tracing::warn!(
            group = s.group_id,
            instance = s.instance_id,
            error,
            "failed to persist a static member's new id; reverting it"
        );
        let mut gs = self.lock();
        let current = gs
            .get_mut(&s.group_id)
            .filter(|g| g.incarnation == s.incarnation);
        let Some(g) = current else {
            // Unloaded meanwhile: nothing left to revert.
            return JoinResult { error, ..s.failed };
        };
        let still_swapped =
            g.static_members.get(&s.instance_id).map(String::as_str) == Some(s.new_id.as_str());
        if still_swapped {
            if let Some(mut m) = g.members.remove(&s.new_id) {
                m.session_timeout_ms = s.old_session_timeout_ms;
                m.rebalance_timeout_ms = s.old_rebalance_timeout_ms;
                m.join_waiter = None;
                if let Some(w) = m.sync_waiter.take() {
                    let _ = w.send(SyncResult::error(FENCED_INSTANCE_ID));
                }
                let session = m.session_timeout_ms;
                g.members.insert(s.old_id.clone(), m);
                g.static_members
                    .insert(s.instance_id.clone(), s.old_id.clone());
                if g.leader.as_deref() == Some(s.new_id.as_str()) {
                    g.leader = Some(s.old_id.clone());
                }
                if g.pending_sync.remove(&s.new_id) {
                    g.pending_sync.insert(s.old_id.clone());
                }
                self.arm_heartbeat_locked(g, &s.group_id, &s.old_id, i64::from(session));
            }
        }
        JoinResult {
            error,
            generation: g.generation,
            protocol_type: g.protocol_type.clone(),
            protocol_name: g.protocol.clone(),
            ..s.failed
        }
    }

    fn join_locked(self: &Arc<Self>, a: JoinArgs) -> std::result::Result<JoinResult, Parked> {
        if a.session_timeout_ms < self.config.min_session_timeout_ms
            || a.session_timeout_ms > self.config.max_session_timeout_ms
        {
            return Ok(JoinResult::error(INVALID_SESSION_TIMEOUT, &a.member_id));
        }
        let mut gs = self.lock();
        let unknown = a.member_id.is_empty();
        if !gs.contains_key(&a.group_id) {
            if !unknown {
                return Ok(JoinResult::error(UNKNOWN_MEMBER_ID, &a.member_id));
            }
            gs.insert(a.group_id.clone(), Group::new());
        }
        let Some(g) = gs.get_mut(&a.group_id) else {
            return Ok(JoinResult::error(COORDINATOR_NOT_AVAILABLE, &a.member_id));
        };
        if g.state == GroupState::Dead {
            return Ok(JoinResult::error(COORDINATOR_NOT_AVAILABLE, &a.member_id));
        }
        if !g.supports(&a.protocol_type, &a.protocols) {
            return Ok(JoinResult::error(INCONSISTENT_GROUP_PROTOCOL, &a.member_id));
        }
        let gid = a.group_id.clone();
        if unknown {
            if g.members.len() + g.pending.len() >= self.config.max_size as usize {
                return Ok(JoinResult::error(GROUP_MAX_SIZE_REACHED, &a.member_id));
            }
            let prefix = a.instance_id.clone().unwrap_or_else(|| a.client_id.clone());
            let new_id = format!("{prefix}-{}", uuid::Uuid::new_v4());
            if let Some(iid) = a.instance_id.clone() {
                if let Some(old) = g.static_members.get(&iid).cloned() {
                    // Static member rejoining: swap its id; a Stable group keeps its generation.
                    if let Some(mut m) = g.members.remove(&old) {
                        if let Some(w) = m.join_waiter.take() {
                            let _ = w.send(JoinResult::error(FENCED_INSTANCE_ID, &old));
                        }
                        if let Some(w) = m.sync_waiter.take() {
                            let _ = w.send(SyncResult::error(FENCED_INSTANCE_ID));
                        }
                        let old_session_timeout_ms = m.session_timeout_ms;
                        let old_rebalance_timeout_ms = m.rebalance_timeout_ms;
                        m.session_timeout_ms = a.session_timeout_ms;
                        m.rebalance_timeout_ms = a.rebalance_timeout_ms;
                        m.protocols = a.protocols.clone();
                        g.members.insert(new_id.clone(), m);
                        g.static_members.insert(iid.clone(), new_id.clone());
                        let old_leader = g.leader.clone().unwrap_or_default();
                        if g.leader.as_deref() == Some(old.as_str()) {
                            g.leader = Some(new_id.clone());
                        }
                        if g.pending_sync.remove(&old) {
                            g.pending_sync.insert(new_id.clone());
                        }
                        // Kafka rebalances only if the next generation's protocol would differ; new
                        // subscription bytes alone (e.g. no owned partitions after a restart) do not.
                        if g.state == GroupState::Stable && g.select_protocol() == g.protocol {
                            // Kafka persists the swapped member id before answering.
                            let value = g.record_value(None);
                            let wait = self.append_now(
                                &gid,
                                vec![(records::group_key(&gid), Some(value))],
                                self.config.required_acks,
                            );
                            let swap = StaticSwap {
                                group_id: gid.clone(),
                                incarnation: g.incarnation,
                                instance_id: iid,
                                old_id: old,
                                new_id: new_id.clone(),
                                old_session_timeout_ms,
                                old_rebalance_timeout_ms,
                                failed: JoinResult {
                                    generation: g.generation,
                                    protocol_type: g.protocol_type.clone(),
                                    protocol_name: g.protocol.clone(),
                                    leader: old_leader.clone(),
                                    ..JoinResult::default()
                                },
                            };
                            let mut r = g.join_result_for(&new_id);
                            if a.supports_skip_assignment {
                                // v9+: the leader keeps the member list but skips the assignor.
                                r.skip_assignment = g.leader.as_deref() == Some(new_id.as_str());
                            } else {
                                // Older clients get the previous leader id, so a restarted leader
                                // does not run a trivial assignment a Stable group would ignore.
                                r.members.clear();
                                r.leader = old_leader;
                            }
                            drop(gs);
                            self.arm_heartbeat(&gid, &new_id);
                            return Err(Parked::Store(wait, Box::new((r, swap))));
                        }
                        let (tx, rx) = oneshot::channel();
                        if let Some(m) = g.members.get_mut(&new_id) {
                            m.join_waiter = Some(tx);
                        }
                        self.after_join(g, &gid, "static member rejoined with new metadata");
                        drop(gs);
                        self.arm_heartbeat(&gid, &new_id);
                        return Err(rx.into());
                    }
                }
            } else if a.require_known_member_id {
                g.pending.insert(new_id.clone());
                let timeout = a.session_timeout_ms;
                drop(gs);
                self.expire_pending_later(gid, new_id.clone(), timeout);
                return Ok(JoinResult::error(MEMBER_ID_REQUIRED, &new_id));
            }
            return Err(self.add_member(g, &gid, new_id, a).into());
        }
        // Known member id.
        if g.pending.remove(&a.member_id) {
            let id = a.member_id.clone();
            return Err(self.add_member(g, &gid, id, a).into());
        }
        if let Some(iid) = &a.instance_id {
            if let Some(cur) = g.static_members.get(iid) {
                if *cur != a.member_id {
                    return Ok(JoinResult::error(FENCED_INSTANCE_ID, &a.member_id));
                }
            }
        }
        let Some(m) = g.members.get_mut(&a.member_id) else {
            return Ok(JoinResult::error(UNKNOWN_MEMBER_ID, &a.member_id));
        };
        let same = m.protocols == a.protocols;
        match g.state {
            GroupState::Empty | GroupState::Dead => {
                Ok(JoinResult::error(UNKNOWN_MEMBER_ID, &a.member_id))
            }
            GroupState::CompletingRebalance if same => Ok(g.join_result_for(&a.member_id)),
            GroupState::Stable if same && g.leader.as_deref() != Some(a.member_id.as_str()) => {
                Ok(g.join_result_for(&a.member_id))
            }
            _ => {
                let (tx, rx) = oneshot::channel();
                if let Some(old) = m.join_waiter.replace(tx) {
                    let _ = old.send(JoinResult::error(UNKNOWN_MEMBER_ID, &a.member_id));
                }
                m.protocols = a.protocols;
                m.session_timeout_ms = a.session_timeout_ms;
                m.rebalance_timeout_ms = a.rebalance_timeout_ms;
                let reason = if same {
                    "the leader rejoined"
                } else {
                    "a member rejoined with new metadata"
                };
                self.after_join(g, &gid, reason);
                Err(rx.into())
            }
        }
    }

    fn add_member(
        self: &Arc<Self>,
        g: &mut Group,
        gid: &str,
        id: String,
        a: JoinArgs,
    ) -> oneshot::Receiver<JoinResult> {
        let (tx, rx) = oneshot::channel();
        if g.members.is_empty() {
            g.protocol_type = Some(a.protocol_type.clone());
        }
        if let Some(iid) = &a.instance_id {
            g.static_members.insert(iid.clone(), id.clone());
        }
        g.members.insert(
            id.clone(),
            Member {
                instance_id: a.instance_id,
                client_id: a.client_id,
                client_host: a.client_host,
                session_timeout_ms: a.session_timeout_ms,
                rebalance_timeout_ms: a.rebalance_timeout_ms,
                protocols: a.protocols,
                assignment: Bytes::new(),
                join_waiter: Some(tx),
                sync_waiter: None,
                is_new: true,
                heartbeat_seq: 0,
            },
        );
        if g.state == GroupState::PreparingRebalance && g.generation == 0 {
            g.new_member_added = true;
        }
        self.after_join(g, gid, "a new member joined");
        self.arm_heartbeat_locked(g, gid, &id, NEW_MEMBER_JOIN_TIMEOUT_MS as i64);
        rx
    }

    /// Start a rebalance if none is running, else see whether the join phase can end.
    fn after_join(self: &Arc<Self>, g: &mut Group, gid: &str, reason: &str) {
        if g.state == GroupState::PreparingRebalance {
            self.try_complete_join(g, gid);
        } else {
            self.prepare_rebalance(g, gid, reason);
        }
    }

    fn prepare_rebalance(self: &Arc<Self>, g: &mut Group, gid: &str, reason: &str) {
        tracing::info!(
            group = gid,
            state = ?g.state,
            generation = g.generation,
            reason,
            "preparing to rebalance group"
        );
        if g.state == GroupState::CompletingRebalance {
            for m in g.members.values_mut() {
                m.assignment = Bytes::new();
                if let Some(w) = m.sync_waiter.take() {
                    let _ = w.send(SyncResult::error(REBALANCE_IN_PROGRESS));
                }
            }
        }
        let was_empty = g.state == GroupState::Empty;
        g.set_state(GroupState::PreparingRebalance);
        g.pending_sync.clear();
        g.rebalance_seq = self.next_seq();
        let seq = g.rebalance_seq;
        let timeout = i64::from(g.rebalance_timeout_ms());
        if was_empty {
            let delay = i64::from(self.config.initial_rebalance_delay_ms);
            let remaining = (timeout - delay).max(0);
            g.new_member_added = false;
            self.initial_delay_later(gid.to_string(), seq, delay, remaining);
        } else {
            let me = Arc::clone(self);
            let owned = gid.to_string();
            tokio::spawn(async move {
                tokio::time::sleep(ms(timeout)).await;
                me.join_timeout(&owned, seq);
            });
            self.try_complete_join(g, gid);
        }
    }

    fn initial_delay_later(self: &Arc<Self>, gid: String, seq: u64, delay: i64, remaining: i64) {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            tokio::time::sleep(ms(delay)).await;
            let mut gs = me.lock();
            let Some(g) = gs.get_mut(&gid) else { return };
            if g.rebalance_seq != seq || g.state != GroupState::PreparingRebalance {
                return;
            }
            if g.new_member_added && remaining > 0 {
                g.new_member_added = false;
                let d = i64::from(me.config.initial_rebalance_delay_ms).min(remaining);
                drop(gs);
                me.initial_delay_later(gid, seq, d, remaining - d);
            } else {
                me.complete_join(g, &gid, true);
            }
        });
    }

    fn join_timeout(self: &Arc<Self>, gid: &str, seq: u64) {
        let mut gs = self.lock();
        let Some(g) = gs.get_mut(gid) else { return };
        if g.rebalance_seq == seq && g.state == GroupState::PreparingRebalance {
            self.complete_join(g, gid, true);
        }
    }

    fn try_complete_join(self: &Arc<Self>, g: &mut Group, gid: &str) {
        // While the initial delay runs only its timer ends the phase (Kafka's InitialDelayedJoin).
        if g.generation == 0 && g.state == GroupState::PreparingRebalance && !g.members.is_empty() {
            return;
        }
        if g.state == GroupState::PreparingRebalance && g.all_joined() {
            self.complete_join(g, gid, false);
        }
    }

    /// End of the join phase: drop members that did not rejoin (static ones stay), bump the
    /// generation, pick protocol and leader, answer every parked JoinGroup.
    fn complete_join(self: &Arc<Self>, g: &mut Group, gid: &str, forced: bool) {
        if forced {
            let gone: Vec<String> = g
                .members
                .iter()
                .filter(|(_, m)| m.join_waiter.is_none() && m.instance_id.is_none())
                .map(|(id, _)| id.clone())
                .collect();
            for id in gone {
                g.remove_member(&id);
            }
            g.pending.clear();
        }
        g.generation += 1;
        g.rebalance_seq = self.next_seq();
        if g.members.is_empty() {
            g.set_state(GroupState::Empty);
            g.protocol = None;
            g.leader = None;
            g.subscribed_topics = None;
            self.persist_group_async(gid, g);
            return;
        }
        g.protocol = g.select_protocol();
        if g.leader.as_ref().is_none_or(|l| !g.members.contains_key(l)) {
            g.leader = g.members.keys().next().cloned();
        }
        g.subscribed_topics = g.compute_subscribed_topics();
        g.set_state(GroupState::CompletingRebalance);
        tracing::info!(
            group = gid,
            generation = g.generation,
            members = g.members.len(),
            "stabilized group"
        );
        let ids: Vec<String> = g.members.keys().cloned().collect();
        g.pending_sync = ids.iter().cloned().collect();
        for id in &ids {
            let r = g.join_result_for(id);
            if let Some(m) = g.members.get_mut(id) {
                m.is_new = false;
                if let Some(w) = m.join_waiter.take() {
                    let _ = w.send(r);
                }
            }
            let t = g.members.get(id).map(|m| m.session_timeout_ms).unwrap_or(0);
            self.arm_heartbeat_locked(g, gid, id, i64::from(t));
        }
        // Members that never send SyncGroup within the rebalance timeout are removed.
        let seq = g.rebalance_seq;
        let generation = g.generation;
        let timeout = i64::from(g.rebalance_timeout_ms());
        let me = Arc::clone(self);
        let owned = gid.to_string();
        tokio::spawn(async move {
            tokio::time::sleep(ms(timeout)).await;
            let mut gs = me.lock();
            let Some(g) = gs.get_mut(&owned) else { return };
            if g.generation != generation || g.rebalance_seq != seq || g.pending_sync.is_empty() {
                return;
            }
            if matches!(
                g.state,
                GroupState::CompletingRebalance | GroupState::Stable
            ) {
                let late: Vec<String> = g.pending_sync.drain().collect();
                for id in late {
                    g.remove_member(&id);
                }
                me.on_members_left(g, &owned);
            }
        });
    }

    fn on_members_left(self: &Arc<Self>, g: &mut Group, gid: &str) {
        match g.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                if g.members.is_empty() {
                    // Nothing left to rebalance: the next phase ends at once as Empty.
                    g.set_state(GroupState::PreparingRebalance);
                    self.complete_join(g, gid, true);
                } else {
                    self.prepare_rebalance(g, gid, "members left the group");
                }
            }
            GroupState::PreparingRebalance => {
                if g.members.is_empty() {
                    self.complete_join(g, gid, true);
                } else {
                    self.try_complete_join(g, gid);
                }
            }
            _ => {}
        }
    }

    // ------------------------------------------------------------------ timers

    fn arm_heartbeat(self: &Arc<Self>, gid: &str, member: &str) {
        let mut gs = self.lock();
        if let Some(g) = gs.get_mut(gid) {
            let t = g
                .members
                .get(member)
                .map(|m| m.session_timeout_ms)
                .unwrap_or(0);
            self.arm_heartbeat_locked(g, gid, member, i64::from(t));
        }
    }

    /// (Re)start a member's session timer; an older timer finds a newer sequence and stops.
    fn arm_heartbeat_locked(self: &Arc<Self>, g: &mut Group, gid: &str, member: &str, t: i64) {
        let Some(m) = g.members.get_mut(member) else {
            return;
        };
        let seq = self.next_seq();
        m.heartbeat_seq = seq;
        let me = Arc::clone(self);
        let (gid, member) = (gid.to_string(), member.to_string());
        tokio::spawn(async move {
            tokio::time::sleep(ms(t)).await;
            let mut gs = me.lock();
            let Some(g) = gs.get_mut(&gid) else { return };
            let Some(m) = g.members.get(&member) else {
                return;
            };
            if m.heartbeat_seq != seq {
                return;
            }
            // Members parked in a join (not brand-new ones) or a sync are alive.
            let keep = (m.join_waiter.is_some() && !m.is_new) || m.sync_waiter.is_some();
            if keep {
                return;
            }
            tracing::info!(group = gid, member, "member session expired");
            g.remove_member(&member);
            me.on_members_left(g, &gid);
        });
    }

    fn expire_pending_later(self: &Arc<Self>, gid: String, id: String, t: i32) {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            tokio::time::sleep(ms(i64::from(t))).await;
            let mut gs = me.lock();
            let Some(g) = gs.get_mut(&gid) else { return };
            if g.pending.remove(&id) && g.state == GroupState::PreparingRebalance {
                me.try_complete_join(g, &gid);
            }
        });
    }

    /// Validate member id / instance id / generation (Kafka's `validateCurrentMember` order).
    fn check_member(g: &Group, member: &str, instance: Option<&str>, generation: i32) -> i16 {
        if let Some(iid) = instance {
            if let Some(cur) = g.static_members.get(iid) {
                if cur != member {
                    return FENCED_INSTANCE_ID;
                }
            }
        }
        if !g.members.contains_key(member) {
            return UNKNOWN_MEMBER_ID;
        }
        if generation != g.generation {
            return ILLEGAL_GENERATION;
        }
        NONE
    }

    // ------------------------------------------------------------------ sync

    #[allow(clippy::too_many_arguments)]
    pub async fn sync(
        self: &Arc<Self>,
        gid: &str,
        generation: i32,
        member: &str,
        instance: Option<&str>,
        protocol_type: Option<&str>,
        protocol_name: Option<&str>,
        assignments: Vec<(String, Bytes)>,
    ) -> SyncResult {
        let rx = {
            let mut gs = self.lock();
            let Some(g) = gs.get_mut(gid) else {
                return SyncResult::error(UNKNOWN_MEMBER_ID);
            };
            if g.state == GroupState::Dead {
                return SyncResult::error(COORDINATOR_NOT_AVAILABLE);
            }
            let e = Self::check_member(g, member, instance, generation);
            if e != NONE {
                return SyncResult::error(e);
            }
            if protocol_type.is_some_and(|p| Some(p) != g.protocol_type.as_deref())
                || protocol_name.is_some_and(|p| Some(p) != g.protocol.as_deref())
            {
                return SyncResult::error(INCONSISTENT_GROUP_PROTOCOL);
            }
            let base = SyncResult {
                error: NONE,
                protocol_type: g.protocol_type.clone(),
                protocol_name: g.protocol.clone(),
                assignment: Bytes::new(),
            };
            match g.state {
                GroupState::Empty | GroupState::Dead => {
                    return SyncResult::error(UNKNOWN_MEMBER_ID)
                }
                GroupState::PreparingRebalance => return SyncResult::error(REBALANCE_IN_PROGRESS),
                GroupState::Stable => {
                    g.pending_sync.remove(member);
                    let a = g
                        .members
                        .get(member)
                        .map(|m| m.assignment.clone())
                        .unwrap_or_default();
                    let t = g.members.get(member).map(|m| m.session_timeout_ms);
                    self.arm_heartbeat_locked(g, gid, member, i64::from(t.unwrap_or(0)));
                    return SyncResult {
                        assignment: a,
                        ..base
                    };
                }
                GroupState::CompletingRebalance => {}
            }
            let (tx, rx) = oneshot::channel();
            g.pending_sync.remove(member);
            if let Some(m) = g.members.get_mut(member) {
                if let Some(old) = m.sync_waiter.replace(tx) {
                    let _ = old.send(SyncResult::error(UNKNOWN_MEMBER_ID));
                }
            }
            // The leader's assignment (missing members get an empty one) is written with
            // acks -1; the group turns Stable and everyone is answered only once it is.
            let mut store = None;
            if g.leader.as_deref() == Some(member) {
                let given: HashMap<String, Bytes> = assignments.into_iter().collect();
                let full: HashMap<String, Bytes> = g
                    .members
                    .keys()
                    .map(|id| (id.clone(), given.get(id).cloned().unwrap_or_default()))
                    .collect();
                let value = g.record_value(Some(&full));
                let wait = self.append_now(
                    gid,
                    vec![(records::group_key(gid), Some(value))],
                    self.config.required_acks,
                );
                store = Some((wait, full, g.generation, g.incarnation));
            }
            let t = g.members.get(member).map(|m| m.session_timeout_ms);
            self.arm_heartbeat_locked(g, gid, member, i64::from(t.unwrap_or(0)));
            (rx, store)
        };
        let (rx, store) = rx;
        if let Some((wait, full, generation, incarnation)) = store {
            // A task, so a leader that disconnects does not cancel the completion.
            let me = Arc::clone(self);
            let gid = gid.to_string();
            tokio::spawn(async move {
                let code = wait.await;
                me.on_group_stored(&gid, incarnation, generation, full, code);
            });
        }
        rx.await
            .unwrap_or_else(|_| SyncResult::error(REBALANCE_IN_PROGRESS))
    }

    /// The leader's group record was appended (or failed): if the group is still completing
    /// that generation, distribute the assignment and turn Stable, or fail every parked
    /// SyncGroup with the mapped error and rebalance (Kafka's `storeGroup` callback).
    fn on_group_stored(
        self: &Arc<Self>,
        gid: &str,
        incarnation: u64,
        generation: i32,
        mut assignment: HashMap<String, Bytes>,
        code: i16,
    ) {
        let mut gs = self.lock();
        let Some(g) = gs.get_mut(gid) else { return };
        if g.incarnation != incarnation
            || g.state != GroupState::CompletingRebalance
            || g.generation != generation
        {
            return;
        }
        if code != NONE {
            let e = store_group_error(code);
            tracing::warn!(
                group = gid,
                generation,
                code,
                "storing group assignment failed"
            );
            for m in g.members.values_mut() {
                m.assignment = Bytes::new();
                if let Some(w) = m.sync_waiter.take() {
                    let _ = w.send(SyncResult::error(e));
                }
            }
            self.prepare_rebalance(g, gid, "storing the group assignment failed");
            return;
        }
        let (pt, pn) = (g.protocol_type.clone(), g.protocol.clone());
        for (id, m) in g.members.iter_mut() {
            m.assignment = assignment.remove(id).unwrap_or_default();
            if let Some(w) = m.sync_waiter.take() {
                let _ = w.send(SyncResult {
                    error: NONE,
                    protocol_type: pt.clone(),
                    protocol_name: pn.clone(),
                    assignment: m.assignment.clone(),
                });
            }
        }
        g.set_state(GroupState::Stable);
    }

    // ------------------------------------------------------------------ heartbeat / leave

    pub fn heartbeat(
        self: &Arc<Self>,
        gid: &str,
        generation: i32,
        member: &str,
        instance: Option<&str>,
    ) -> i16 {
        let mut gs = self.lock();
        let Some(g) = gs.get_mut(gid) else {
            return UNKNOWN_MEMBER_ID;
        };
        match g.state {
            GroupState::Dead => return COORDINATOR_NOT_AVAILABLE,
            GroupState::Empty => return UNKNOWN_MEMBER_ID,
            _ => {}
        }
        let e = Self::check_member(g, member, instance, generation);
        if e != NONE {
            return e;
        }
        let t = g.members.get(member).map(|m| m.session_timeout_ms);
        self.arm_heartbeat_locked(g, gid, member, i64::from(t.unwrap_or(0)));
        if g.state == GroupState::PreparingRebalance {
            REBALANCE_IN_PROGRESS
        } else {
            NONE
        }
    }

    /// Remove members (member id, instance id); per-member error codes in order.
    pub fn leave(self: &Arc<Self>, gid: &str, members: &[(String, Option<String>)]) -> Vec<i16> {
        let mut gs = self.lock();
        let Some(g) = gs.get_mut(gid) else {
            return vec![UNKNOWN_MEMBER_ID; members.len()];
        };
        if g.state == GroupState::Dead {
            return vec![COORDINATOR_NOT_AVAILABLE; members.len()];
        }
        let mut out = Vec::with_capacity(members.len());
        let mut left = false;
        for (mid, iid) in members {
            let mut id = mid.clone();
            if let Some(iid) = iid {
                match g.static_members.get(iid) {
                    Some(cur) if mid.is_empty() || cur == mid => id = cur.clone(),
                    Some(_) => {
                        out.push(FENCED_INSTANCE_ID);
                        continue;
                    }
                    None => {
                        out.push(UNKNOWN_MEMBER_ID);
                        continue;
                    }
                }
            }
            if g.pending.remove(&id) {
                out.push(NONE);
                left = true;
            } else if g.members.contains_key(&id) {
                if let Some(m) = g.members.get_mut(&id) {
                    if let Some(w) = m.join_waiter.take() {
                        let _ = w.send(JoinResult::error(UNKNOWN_MEMBER_ID, &id));
                    }
                }
                g.remove_member(&id);
                out.push(NONE);
                left = true;
            } else {
                out.push(UNKNOWN_MEMBER_ID);
            }
        }
        if left {
            self.on_members_left(g, gid);
        }
        out
    }

    /// DescribeGroups view: (state, protocol type, protocol, members), or `None` if unknown.
    pub fn describe(&self, gid: &str) -> Option<GroupDescription> {
        let gs = self.lock();
        let g = gs.get(gid)?;
        Some(GroupDescription {
            state: g.state,
            protocol_type: g.protocol_type.clone().unwrap_or_default(),
            protocol: g.protocol.clone().unwrap_or_default(),
            members: g
                .members
                .iter()
                .map(|(id, m)| MemberDescription {
                    member_id: id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: g.metadata_for(m),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        })
    }

    /// `offset.metadata.max.bytes`.
    pub fn metadata_max_bytes(&self) -> usize {
        self.config.offset_metadata_max_bytes.max(0) as usize
    }
}

/// Partition count of `__consumer_offsets`: the existing topic's, else the configured one
/// (Kafka's `getGroupMetadataTopicPartitionCount`).
fn offsets_partition_count(ctx: &crate::broker::BrokerContext) -> i32 {
    ctx.metadata_cache
        .snapshot()
        .topics
        .get("__consumer_offsets")
        .map(|t| t.partitions.len() as i32)
        .filter(|n| *n > 0)
        .unwrap_or(ctx.config.offsets_topic_num_partitions)
}

/// Group-level checks every group API runs first (Kafka's `validateGroupStatus`):
/// INVALID_GROUP_ID for an empty id, COORDINATOR_LOAD_IN_PROGRESS while the group's
/// `__consumer_offsets` partition loads, NOT_COORDINATOR unless this broker owns it.
pub fn coordinator_error(ctx: &crate::broker::BrokerContext, gid: &str) -> Option<i16> {
    if gid.is_empty() {
        return Some(INVALID_GROUP_ID);
    }
    let Some(p) = ctx.groups.partition_of(gid) else {
        return Some(NOT_COORDINATOR);
    };
    ctx.groups.partition_status(p)
}

impl crate::coordinator::leadership::PartitionLoader for GroupCoordinator {
    const TOPIC: &'static str = "__consumer_offsets";
    const NAME: &'static str = "group";
    type Loaded = load::LoadedPartition;

    fn of(ctx: &crate::broker::BrokerContext) -> Arc<Self> {
        ctx.groups.clone()
    }
    fn partition_count(ctx: &crate::broker::BrokerContext) -> i32 {
        offsets_partition_count(ctx)
    }
    fn load_buffer_size(ctx: &crate::broker::BrokerContext) -> usize {
        ctx.config.offsets_load_buffer_size.max(1) as usize
    }
    fn set_partition_count(&self, n: i32) {
        GroupCoordinator::set_partition_count(self, n)
    }
    fn unload_partition(&self, partition: i32) {
        GroupCoordinator::unload_partition(self, partition)
    }
    fn begin_load(&self, partition: i32, epoch: i32) -> Option<u64> {
        GroupCoordinator::begin_load(self, partition, epoch)
    }
    fn load(
        log: &crate::log::Log,
        buffer: usize,
        still_leader: &dyn Fn() -> bool,
    ) -> Option<Self::Loaded> {
        load::load_partition(log, buffer, still_leader)
    }
    fn finish_load(self: &Arc<Self>, partition: i32, token: u64, loaded: Option<Self::Loaded>) {
        GroupCoordinator::finish_load(self, partition, token, loaded)
    }
}

/// Hook the coordinator to the replica manager: becoming leader of a `__consumer_offsets`
/// partition loads its groups and offsets (in a blocking task; COORDINATOR_LOAD_IN_PROGRESS
/// meanwhile); losing it unloads them. Installs the record writer and the offset-expiration
/// timer (`offsets.retention.check.interval.ms`).
pub fn install(ctx: &Arc<crate::broker::BrokerContext>) {
    if ctx.replicas().is_err() || tokio::runtime::Handle::try_current().is_err() {
        return;
    }
    crate::coordinator::leadership::follow::<GroupCoordinator>(ctx);
    let weak = Arc::downgrade(ctx);
    ctx.groups.set_append(Arc::new(move |gid, recs, acks| {
        let Some(ctx) = weak.upgrade() else {
            return Box::pin(std::future::ready(COORDINATOR_NOT_AVAILABLE));
        };
        let Ok(rm) = ctx.replicas() else {
            return Box::pin(std::future::ready(COORDINATOR_NOT_AVAILABLE));
        };
        let Some(partition) = ctx.groups.partition_of(gid) else {
            return Box::pin(std::future::ready(NOT_COORDINATOR));
        };
        let tp = samsa_common::types::TopicPartition {
            topic: "__consumer_offsets".to_string(),
            partition,
        };
        let pending = rm.append_records_now(
            acks,
            crate::log::AppendOrigin::Coordinator,
            vec![(tp, records::batch(&recs, now_ms()))],
        );
        let timeout = ctx.config.offsets_commit_timeout_ms;
        Box::pin(async move {
            let out = pending.wait(timeout).await;
            out.first().map(|(_, r)| r.error_code).unwrap_or(NONE)
        })
    }));
    let weak = Arc::downgrade(ctx);
    ctx.groups.set_txn_append(Arc::new(move |gid, recs, write| {
        let Some(ctx) = weak.upgrade() else {
            return Box::pin(std::future::ready(COORDINATOR_NOT_AVAILABLE));
        };
        let Ok(rm) = ctx.replicas() else {
            return Box::pin(std::future::ready(COORDINATOR_NOT_AVAILABLE));
        };
        let Some(partition) = ctx.groups.partition_of(gid) else {
            return Box::pin(std::future::ready(NOT_COORDINATOR));
        };
        let tp = samsa_common::types::TopicPartition {
            topic: "__consumer_offsets".to_string(),
            partition,
        };
        let batch = records::txn_batch(&recs, now_ms(), write.producer_id, write.producer_epoch);
        let pending = rm.append_records_now_verified(
            ctx.config.offsets_commit_required_acks,
            crate::log::AppendOrigin::Coordinator,
            vec![(tp, batch, write.guard)],
        );
        let timeout = ctx.config.offsets_commit_timeout_ms;
        Box::pin(async move {
            let out = pending.wait(timeout).await;
            out.first().map(|(_, r)| r.error_code).unwrap_or(NONE)
        })
    }));
    let weak = Arc::downgrade(ctx);
    let period = ms(ctx.config.offsets_retention_check_interval_ms.max(1));
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        rt.spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(ctx) = weak.upgrade() else { return };
                let n = ctx.groups.expire_offsets(now_ms());
                if n > 0 {
                    tracing::info!(offsets = n, "removed expired offsets");
                }
            }
        });
    }
}

#[cfg(test)]
mod tests;
