//! State-machine tests (real tokio timers with short timeouts).

use super::*;

fn coord(initial_delay: i32) -> Arc<GroupCoordinator> {
    GroupCoordinator::new(GroupConfig {
        min_session_timeout_ms: 10,
        initial_rebalance_delay_ms: initial_delay,
        ..GroupConfig::default()
    })
}

fn args(member: &str, session: i32) -> JoinArgs {
    JoinArgs {
        group_id: "g".into(),
        member_id: member.into(),
        instance_id: None,
        client_id: "cli".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: session,
        rebalance_timeout_ms: 2000,
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), Bytes::from_static(b"md"))],
        require_known_member_id: true,
        supports_skip_assignment: true,
    }
}

async fn join_new(c: &Arc<GroupCoordinator>, session: i32) -> (String, JoinResult) {
    let r = c.join(args("", session)).await;
    assert_eq!(r.error, MEMBER_ID_REQUIRED);
    assert!(r.member_id.starts_with("cli-"), "{}", r.member_id);
    let id = r.member_id.clone();
    (id.clone(), c.join(args(&id, session)).await)
}

#[tokio::test]
async fn two_members_rebalance_sync_and_leave() {
    let c = coord(0);
    let (a, ra) = join_new(&c, 10_000).await;
    assert_eq!(ra.error, NONE);
    assert_eq!(ra.generation, 1);
    assert_eq!(ra.leader, a);
    assert_eq!(ra.members.len(), 1);
    assert_eq!(c.group_state("g"), Some(GroupState::CompletingRebalance));
    // Commit during CompletingRebalance is refused.
    assert_eq!(c.validate_commit("g", 1, &a, None), REBALANCE_IN_PROGRESS);
    let s = c
        .sync(
            "g",
            1,
            &a,
            None,
            None,
            None,
            vec![(a.clone(), Bytes::from_static(b"A"))],
        )
        .await;
    assert_eq!(s.error, NONE);
    assert_eq!(&s.assignment[..], b"A");
    assert_eq!(c.group_state("g"), Some(GroupState::Stable));

    // A second member triggers a rebalance; the first learns it from its heartbeat.
    let c2 = c.clone();
    let second = tokio::spawn(async move { join_new(&c2, 10_000).await });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while c.heartbeat("g", 1, &a, None) != REBALANCE_IN_PROGRESS {
        assert!(tokio::time::Instant::now() < deadline, "no rebalance");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let ra2 = c.join(args(&a, 10_000)).await;
    let (b, rb) = second.await.expect("join task");
    assert_eq!(ra2.generation, 2);
    assert_eq!(rb.generation, 2);
    assert_eq!(ra2.leader, a, "leader kept");
    assert_eq!(ra2.members.len(), 2);
    assert!(rb.members.is_empty());
    // Old generation is rejected.
    assert_eq!(c.validate_commit("g", 1, &a, None), ILLEGAL_GENERATION);
    let cb = c.clone();
    let bid = b.clone();
    let sb = tokio::spawn(async move { cb.sync("g", 2, &bid, None, None, None, vec![]).await });
    let sa = c
        .sync(
            "g",
            2,
            &a,
            None,
            None,
            None,
            vec![
                (a.clone(), Bytes::from_static(b"A2")),
                (b.clone(), Bytes::from_static(b"B2")),
            ],
        )
        .await;
    assert_eq!(&sa.assignment[..], b"A2");
    assert_eq!(&sb.await.expect("sync task").assignment[..], b"B2");
    assert_eq!(c.validate_commit("g", 2, &b, None), NONE);

    // LeaveGroup: unknown member reported, known one removed and a rebalance starts.
    assert_eq!(
        c.leave("g", &[(b.clone(), None), ("nobody".into(), None)]),
        vec![NONE, UNKNOWN_MEMBER_ID]
    );
    assert_eq!(c.group_state("g"), Some(GroupState::PreparingRebalance));
    let ra3 = c.join(args(&a, 10_000)).await;
    assert_eq!(ra3.generation, 3);
    assert_eq!(ra3.members.len(), 1);
}

#[tokio::test]
async fn session_expiry_empties_group() {
    let c = coord(0);
    let (a, ra) = join_new(&c, 200).await;
    assert_eq!(ra.error, NONE);
    let s = c.sync("g", 1, &a, None, None, None, vec![]).await;
    assert_eq!(s.error, NONE);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while c.group_state("g") != Some(GroupState::Empty) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "member never expired"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(c.generation("g"), Some(2));
    assert_eq!(c.heartbeat("g", 1, &a, None), UNKNOWN_MEMBER_ID);
}

#[tokio::test]
async fn initial_delay_holds_first_join() {
    let c = coord(300);
    let start = std::time::Instant::now();
    let (_, r) = join_new(&c, 10_000).await;
    assert_eq!(r.error, NONE);
    assert!(start.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn simple_consumer_commits_and_validation_errors() {
    let c = coord(0);
    assert_eq!(c.validate_commit("simple", -1, "", None), NONE);
    c.store_offsets(
        "simple",
        vec![(
            ("t".into(), 0),
            CommittedOffset {
                offset: 5,
                leader_epoch: 3,
                metadata: "m".into(),
                commit_timestamp: 1,
                expire_timestamp: None,
            },
        )],
    );
    assert_eq!(c.group_state("simple"), Some(GroupState::Empty));
    let rows = c.fetch_offsets("simple", Some(&[("t".into(), 0), ("t".into(), 1)]), false);
    assert_eq!(rows[0].1.as_ref().map(|o| o.offset), Some(5));
    assert_eq!(rows[1].1, None);
    assert_eq!(c.fetch_offsets("simple", None, false).len(), 1);
    // Bad session timeout; inconsistent protocol type for a non-empty group.
    let mut bad = args("", 1);
    bad.group_id = "x".into();
    assert_eq!(c.join(bad).await.error, INVALID_SESSION_TIMEOUT);
    let (_, r) = join_new(&c, 10_000).await;
    assert_eq!(r.error, NONE);
    let mut other = args("", 10_000);
    other.protocol_type = "connect".into();
    assert_eq!(c.join(other).await.error, INCONSISTENT_GROUP_PROTOCOL);
}

#[tokio::test]
async fn static_member_rejoin_keeps_generation_and_fences_old_id() {
    let c = coord(0);
    let mut a = args("", 10_000);
    a.instance_id = Some("inst".into());
    let r = c.join(a.clone()).await;
    assert_eq!(r.error, NONE, "static members need no MEMBER_ID_REQUIRED");
    assert!(r.member_id.starts_with("inst-"));
    let old = r.member_id.clone();
    c.sync(
        "g",
        1,
        &old,
        Some("inst"),
        None,
        None,
        vec![(old.clone(), Bytes::from_static(b"S"))],
    )
    .await;
    let r2 = c.join(a).await;
    assert_eq!(r2.error, NONE);
    assert_eq!(r2.generation, 1, "no rebalance");
    assert_ne!(r2.member_id, old);
    assert_eq!(c.heartbeat("g", 1, &old, Some("inst")), FENCED_INSTANCE_ID);
    assert_eq!(c.heartbeat("g", 1, &r2.member_id, Some("inst")), NONE);
}

/// A restarted static member's subscription bytes differ (it owns nothing yet); only a change of
/// the selected protocol may rebalance a Stable group (Kafka's updateStaticMemberAndRebalance).
#[tokio::test]
async fn static_member_rejoin_with_new_metadata_keeps_generation() {
    let c = coord(0);
    let mut a = args("", 10_000);
    a.instance_id = Some("inst".into());
    a.protocols = vec![("range".into(), Bytes::from_static(b"owned:0,1"))];
    let old = c.join(a.clone()).await.member_id;
    let s = c
        .sync(
            "g",
            1,
            &old,
            Some("inst"),
            None,
            None,
            vec![(old.clone(), Bytes::from_static(b"S"))],
        )
        .await;
    assert_eq!(s.error, NONE);
    // v9+: the restarted leader is told to skip the assignment and still gets the members.
    a.protocols = vec![("range".into(), Bytes::from_static(b"owned:none"))];
    let r = c.join(a.clone()).await;
    assert_eq!((r.error, r.generation), (NONE, 1), "no rebalance");
    assert!(r.skip_assignment);
    assert_eq!(r.leader, r.member_id);
    assert_eq!(r.members.len(), 1);
    assert_eq!(&r.members[0].2[..], b"owned:none");
    assert_eq!(c.group_state("g"), Some(GroupState::Stable));
    // Before v9: the previous leader id and no members, so the client runs no assignor.
    a.supports_skip_assignment = false;
    let r2 = c.join(a.clone()).await;
    assert_eq!((r2.error, r2.generation), (NONE, 1));
    assert!(!r2.skip_assignment);
    assert_eq!(r2.leader, r.member_id);
    assert!(r2.members.is_empty());
    // The stored assignment still serves the new member id.
    let s = c
        .sync("g", 1, &r2.member_id, Some("inst"), None, None, vec![])
        .await;
    assert_eq!((s.error, &s.assignment[..]), (NONE, &b"S"[..]));
    // Preferring another protocol changes the selection: rebalance.
    a.protocols = vec![
        ("roundrobin".into(), Bytes::from_static(b"x")),
        ("range".into(), Bytes::from_static(b"x")),
    ];
    let r3 = c.join(a).await;
    assert_eq!((r3.error, r3.generation), (NONE, 2));
}

#[tokio::test]
async fn delete_group_only_when_empty() {
    let c = coord(0);
    assert_eq!(c.delete_group("nope"), GROUP_ID_NOT_FOUND);
    let (_, r) = join_new(&c, 10_000).await;
    assert_eq!(r.error, NONE);
    assert_eq!(c.delete_group("g"), NON_EMPTY_GROUP, "members present");
    assert_eq!(c.validate_commit("s", -1, "", None), NONE);
    c.store_offsets(
        "s",
        vec![(
            ("t".into(), 1),
            CommittedOffset {
                offset: 1,
                leader_epoch: -1,
                metadata: String::new(),
                commit_timestamp: 0,
                expire_timestamp: None,
            },
        )],
    );
    assert_eq!(c.delete_group("s"), NONE);
    assert_eq!(c.group_state("s"), None);
    let listed = c.list_groups();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].2, GroupState::CompletingRebalance);
}

#[tokio::test]
async fn stable_and_empty_groups_are_persisted() {
    let c = coord(0);
    let seen = recorder(&c, NONE);
    let (a, _) = join_new(&c, 10_000).await;
    c.sync(
        "g",
        1,
        &a,
        None,
        None,
        None,
        vec![(a.clone(), Bytes::from_static(b"A"))],
    )
    .await;
    assert_eq!(c.leave("g", &[(a.clone(), None)]), vec![NONE]);
    let recs: Vec<(Bytes, Option<Bytes>)> = wait_written(&seen, 2)
        .into_iter()
        .flat_map(|w| w.1)
        .collect();
    assert_eq!(recs.len(), 2, "Stable then Empty");
    assert_eq!(recs[0].0, records::group_key("g"));
    let stable = recs[0].1.clone().expect("value");
    assert_eq!(&stable[..2], &[0, 3]);
    assert!(stable.ends_with(b"\0\0\0\x01A"), "assignment stored last");
    let empty = recs[1].1.clone().expect("value");
    // Empty group: generation 2, protocol and leader null, no members.
    assert_eq!(&empty[12..20], &[0, 0, 0, 2, 0xff, 0xff, 0xff, 0xff]);
    assert!(empty.ends_with(&[0, 0, 0, 0]));
}

// ---------------------------------------------------------------- persistence helpers

/// (group, records, acks) of one append.
type Append = (String, Vec<(Bytes, Option<Bytes>)>, i16);
type Written = Arc<Mutex<Vec<Append>>>;

/// Records every append (at call time, as the real writer appends) and answers `code`.
fn recorder(c: &Arc<GroupCoordinator>, code: i16) -> Written {
    let seen: Written = Arc::default();
    let s2 = seen.clone();
    c.set_append(Arc::new(move |g, recs, acks| {
        s2.lock().expect("lock").push((g.to_string(), recs, acks));
        Box::pin(std::future::ready(code))
    }));
    seen
}

fn wait_written(seen: &Written, n: usize) -> Vec<Append> {
    let w = seen.lock().expect("lock").clone();
    assert!(w.len() >= n, "{} appends, expected {n}", w.len());
    w
}

/// An appender whose acks arrive only when the test sends the code.
fn gated(c: &Arc<GroupCoordinator>) -> Arc<Mutex<Vec<oneshot::Sender<i16>>>> {
    let gates: Arc<Mutex<Vec<oneshot::Sender<i16>>>> = Arc::default();
    let g2 = gates.clone();
    c.set_append(Arc::new(move |_, _, _| {
        let (tx, rx) = oneshot::channel();
        g2.lock().expect("lock").push(tx);
        Box::pin(async move { rx.await.unwrap_or(REQUEST_TIMED_OUT) })
    }));
    gates
}

fn release(gates: &Arc<Mutex<Vec<oneshot::Sender<i16>>>>, code: i16) {
    let g = gates
        .lock()
        .expect("lock")
        .pop()
        .expect("an append is waiting");
    g.send(code).expect("waiter alive");
}

fn off(offset: i64, metadata: &str, commit_timestamp: i64) -> CommittedOffset {
    CommittedOffset {
        offset,
        leader_epoch: -1,
        metadata: metadata.into(),
        commit_timestamp,
        expire_timestamp: None,
    }
}

/// ConsumerProtocolSubscription v0 for `topics`.
fn subscription(topics: &[&str]) -> Bytes {
    let mut b = Vec::new();
    b.extend_from_slice(&0i16.to_be_bytes());
    b.extend_from_slice(&(topics.len() as i32).to_be_bytes());
    for t in topics {
        b.extend_from_slice(&(t.len() as i16).to_be_bytes());
        b.extend_from_slice(t.as_bytes());
    }
    b.extend_from_slice(&(-1i32).to_be_bytes());
    Bytes::from(b)
}

/// One member joins group "g" subscribed to `topics` and syncs: Stable, generation 1.
async fn stable_one(c: &Arc<GroupCoordinator>, topics: &[&str]) -> String {
    let mut a = args("", 10_000);
    a.protocols = vec![("range".into(), subscription(topics))];
    let r = c.join(a.clone()).await;
    a.member_id = r.member_id.clone();
    let r = c.join(a).await;
    assert_eq!(r.error, NONE);
    let id = r.member_id;
    let s = c
        .sync(
            "g",
            1,
            &id,
            None,
            None,
            None,
            vec![(id.clone(), Bytes::new())],
        )
        .await;
    assert_eq!(s.error, NONE);
    id
}

// ---------------------------------------------------------------- durable SyncGroup

#[tokio::test]
async fn sync_answers_only_after_group_record_is_replicated() {
    let c = coord(0);
    let gates = gated(&c);
    let (a, _) = join_new(&c, 10_000).await;
    let c2 = c.clone();
    let a2 = a.clone();
    let sync = tokio::spawn(async move {
        c2.sync(
            "g",
            1,
            &a2,
            None,
            None,
            None,
            vec![(a2.clone(), Bytes::from_static(b"A"))],
        )
        .await
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while gates.lock().expect("lock").is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "no append");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Appended but not replicated: still completing, SyncGroup parked.
    assert_eq!(c.group_state("g"), Some(GroupState::CompletingRebalance));
    assert!(!sync.is_finished());
    release(&gates, NONE);
    let s = sync.await.expect("sync task");
    assert_eq!((s.error, &s.assignment[..]), (NONE, &b"A"[..]));
    assert_eq!(c.group_state("g"), Some(GroupState::Stable));
}

#[tokio::test]
async fn failed_group_record_fails_sync_with_kafkas_mapping_and_rebalances() {
    for (append_code, expected) in [
        (NOT_ENOUGH_REPLICAS, COORDINATOR_NOT_AVAILABLE),
        (NOT_LEADER_OR_FOLLOWER, NOT_COORDINATOR),
        (REQUEST_TIMED_OUT, REBALANCE_IN_PROGRESS),
        (MESSAGE_TOO_LARGE, UNKNOWN_SERVER_ERROR),
    ] {
        let c = coord(0);
        recorder(&c, append_code);
        let (a, _) = join_new(&c, 10_000).await;
        let s = c
            .sync(
                "g",
                1,
                &a,
                None,
                None,
                None,
                vec![(a.clone(), Bytes::from_static(b"A"))],
            )
            .await;
        assert_eq!(s.error, expected, "append error {append_code}");
        assert!(s.assignment.is_empty());
        assert_eq!(c.group_state("g"), Some(GroupState::PreparingRebalance));
    }
}

// ---------------------------------------------------------------- offset commits

#[tokio::test]
async fn commit_waits_for_acks_and_maps_append_errors() {
    for (append_code, expected) in [
        (NONE, NONE),
        (NOT_ENOUGH_REPLICAS, COORDINATOR_NOT_AVAILABLE),
        (NOT_ENOUGH_REPLICAS_AFTER_APPEND, COORDINATOR_NOT_AVAILABLE),
        (UNKNOWN_TOPIC_OR_PARTITION, COORDINATOR_NOT_AVAILABLE),
        (NOT_LEADER_OR_FOLLOWER, NOT_COORDINATOR),
        (KAFKA_STORAGE_ERROR, NOT_COORDINATOR),
        (MESSAGE_TOO_LARGE, INVALID_COMMIT_OFFSET_SIZE),
        (RECORD_LIST_TOO_LARGE, INVALID_COMMIT_OFFSET_SIZE),
        (INVALID_FETCH_SIZE, INVALID_COMMIT_OFFSET_SIZE),
        (REQUEST_TIMED_OUT, REQUEST_TIMED_OUT),
    ] {
        let c = coord(0);
        let seen = recorder(&c, append_code);
        let out = c
            .commit_offsets("s", -1, "", None, vec![(("t".into(), 0), off(5, "", 1))])
            .await;
        assert_eq!(out, vec![expected], "append error {append_code}");
        let w = wait_written(&seen, 1);
        assert_eq!(w[0].2, -1, "acks -1");
        let cached = c.fetch_offsets("s", None, false);
        assert_eq!(
            cached.len(),
            usize::from(expected == NONE),
            "cached only when written"
        );
    }
}

#[tokio::test]
async fn metadata_over_limit_is_rejected_per_partition_in_utf16_units() {
    let c = GroupCoordinator::new(GroupConfig {
        offset_metadata_max_bytes: 3,
        ..GroupConfig::default()
    });
    let seen = recorder(&c, NONE);
    // "ééé" is 6 UTF-8 bytes but 3 UTF-16 units: allowed, as Java's String.length says.
    let out = c
        .commit_offsets(
            "s",
            -1,
            "",
            None,
            vec![
                (("t".into(), 0), off(1, "ééé", 1)),
                (("t".into(), 1), off(2, "abcd", 1)),
            ],
        )
        .await;
    assert_eq!(out, vec![NONE, OFFSET_METADATA_TOO_LARGE]);
    assert_eq!(
        wait_written(&seen, 1)[0].1.len(),
        1,
        "only the valid offset written"
    );
    // All too large: nothing appended.
    let out = c
        .commit_offsets(
            "s",
            -1,
            "",
            None,
            vec![(("t".into(), 2), off(1, "long", 1))],
        )
        .await;
    assert_eq!(out, vec![OFFSET_METADATA_TOO_LARGE]);
    assert_eq!(seen.lock().expect("lock").len(), 1);
}

#[tokio::test]
async fn require_stable_reports_commits_in_flight() {
    let c = coord(0);
    let gates = gated(&c);
    let c2 = c.clone();
    let commit = tokio::spawn(async move {
        c2.commit_offsets("s", -1, "", None, vec![(("t".into(), 0), off(9, "", 1))])
            .await
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while gates.lock().expect("lock").is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "no append");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let k = [("t".to_string(), 0)];
    assert_eq!(
        c.fetch_offsets("s", Some(&k), true)[0].2,
        UNSTABLE_OFFSET_COMMIT
    );
    assert_eq!(c.fetch_offsets("s", Some(&k), false)[0].1, None);
    release(&gates, NONE);
    assert_eq!(commit.await.expect("task"), vec![NONE]);
    let row = &c.fetch_offsets("s", Some(&k), true)[0];
    assert_eq!((row.1.as_ref().map(|o| o.offset), row.2), (Some(9), NONE));
}

// ---------------------------------------------------------------- loading / unloading

#[tokio::test]
async fn loaded_partition_restores_groups_offsets_and_ownership() {
    let c = coord(0);
    c.set_partition_count(50);
    let p = c.partition_of("g").expect("count set");
    assert_eq!(c.partition_status(p), Some(NOT_COORDINATOR));
    let token = c.begin_load(p, 5).expect("load starts");
    assert_eq!(c.partition_status(p), Some(COORDINATOR_LOAD_IN_PROGRESS));
    assert_eq!(c.begin_load(p, 5), None, "already loading");

    let member = records::StoredMember {
        member_id: "m-1".into(),
        instance_id: Some("i1".into()),
        client_id: "cli".into(),
        client_host: "/h".into(),
        rebalance_timeout_ms: 2000,
        session_timeout_ms: 10_000,
        subscription: subscription(&["t"]),
        assignment: Bytes::from_static(b"ASSIGN"),
    };
    let log_recs = vec![
        (
            records::offset_key("g", "t", 0),
            Some(records::offset_value(&off(42, "md", 7))),
        ),
        (
            records::group_key("g"),
            Some(records::group_value(
                "consumer",
                7,
                Some("range"),
                Some("m-1"),
                100,
                &[member],
            )),
        ),
        (
            records::offset_key("simple", "u", 3),
            Some(records::offset_value(&off(3, "", 7))),
        ),
    ];
    let mut bytes = records::batch(&log_recs, 1).freeze();
    let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut bytes).expect("decode");
    let mut loaded = load::LoadedPartition::default();
    for r in set.records {
        match records::parse_key(r.key.expect("key")).expect("key parses") {
            records::RecordKey::Offset {
                group,
                topic,
                partition,
            } => {
                let o = records::parse_offset_value(r.value.expect("value")).expect("value");
                loaded
                    .offsets
                    .entry(group)
                    .or_default()
                    .insert((topic, partition), o);
            }
            records::RecordKey::Group(g) => {
                let v = records::parse_group_value(r.value.expect("value")).expect("value");
                loaded.groups.insert(g, v);
            }
            records::RecordKey::Unknown(v) => panic!("unexpected key version {v}"),
        }
    }
    c.finish_load(p, token, Some(loaded));
    assert_eq!(c.partition_status(p), None);
    assert_eq!(c.group_state("g"), Some(GroupState::Stable));
    assert_eq!(c.generation("g"), Some(7));
    let d = c.describe("g").expect("described");
    assert_eq!(
        (d.protocol_type.as_str(), d.protocol.as_str()),
        ("consumer", "range")
    );
    assert_eq!(d.members.len(), 1);
    assert_eq!(&d.members[0].assignment[..], b"ASSIGN");
    assert_eq!(d.members[0].instance_id.as_deref(), Some("i1"));
    // The loaded member is live in generation 7 and may commit.
    assert_eq!(c.heartbeat("g", 7, "m-1", Some("i1")), NONE);
    assert_eq!(c.validate_commit("g", 7, "m-1", Some("i1")), NONE);
    let rows = c.fetch_offsets("g", None, false);
    assert_eq!(
        rows[0].1.as_ref().map(|o| (o.offset, o.metadata.as_str())),
        Some((42, "md"))
    );
    assert_eq!(
        c.group_state("simple"),
        Some(GroupState::Empty),
        "offsets-only group"
    );
    // A Stable group's record rewritten after a rejoin keeps its generation counter going.
    assert_eq!(
        c.begin_load(p, 6),
        None,
        "owned: a new epoch does not reload"
    );

    // Losing leadership: groups of that partition are gone, requests get NOT_COORDINATOR.
    c.unload_partition(p);
    assert_eq!(c.partition_status(p), Some(NOT_COORDINATOR));
    assert_eq!(c.group_state("g"), None);
    assert_eq!(c.begin_load(p, 4), None, "older epoch ignored");
    let t2 = c.begin_load(p, 8).expect("reload");
    c.unload_partition(p);
    c.finish_load(p, t2, Some(load::LoadedPartition::default()));
    assert_eq!(
        c.partition_status(p),
        Some(NOT_COORDINATOR),
        "superseded load dropped"
    );
}

#[tokio::test]
async fn loaded_member_that_never_heartbeats_expires() {
    let c = coord(0);
    c.set_partition_count(50);
    let p = c.partition_of("g").expect("count");
    let token = c.begin_load(p, 0).expect("load");
    let mut loaded = load::LoadedPartition::default();
    loaded.groups.insert(
        "g".into(),
        records::StoredGroup {
            protocol_type: "consumer".into(),
            generation: 3,
            protocol: Some("range".into()),
            leader: Some("m".into()),
            state_timestamp: 1,
            members: vec![records::StoredMember {
                member_id: "m".into(),
                instance_id: None,
                client_id: "c".into(),
                client_host: "/h".into(),
                rebalance_timeout_ms: 100,
                session_timeout_ms: 100,
                subscription: subscription(&["t"]),
                assignment: Bytes::new(),
            }],
        },
    );
    c.finish_load(p, token, Some(loaded));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while c.group_state("g") != Some(GroupState::Empty) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "session timer not armed on load"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(c.generation("g"), Some(4));
}

// ---------------------------------------------------------------- expiration

#[tokio::test]
async fn expiration_follows_kafkas_rules() {
    let c = GroupCoordinator::new(GroupConfig {
        min_session_timeout_ms: 10,
        initial_rebalance_delay_ms: 0,
        offsets_retention_ms: 1000,
        ..GroupConfig::default()
    });
    let seen = recorder(&c, NONE);
    // Stable consumer group subscribed to "t": only offsets of other topics expire.
    let _m = stable_one(&c, &["t"]).await;
    c.store_offsets(
        "g",
        vec![
            (("t".into(), 0), off(1, "", 0)),
            (("old".into(), 0), off(1, "", 0)),
        ],
    );
    // Simple group: by commit time; one explicit expire timestamp in the future.
    let mut explicit = off(1, "", 0);
    explicit.expire_timestamp = Some(now_ms() + 60_000);
    c.store_offsets(
        "s",
        vec![
            (("t".into(), 0), off(1, "", 0)),
            (("t".into(), 1), explicit),
        ],
    );
    let fresh = now_ms();
    c.store_offsets("keep", vec![(("t".into(), 0), off(1, "", fresh))]);
    let before = seen.lock().expect("lock").len();

    assert_eq!(c.expire_offsets(now_ms()), 2);
    let g = c.fetch_offsets("g", None, false);
    assert_eq!(g.len(), 1);
    assert_eq!(g[0].0, ("t".to_string(), 0), "subscribed topic kept");
    assert_eq!(
        c.fetch_offsets("s", None, false).len(),
        1,
        "explicit expiry not reached"
    );
    assert_eq!(c.fetch_offsets("keep", None, false).len(), 1);
    let w = seen.lock().expect("lock")[before..].to_vec();
    let tombs: Vec<&(Bytes, Option<Bytes>)> = w.iter().flat_map(|x| x.1.iter()).collect();
    assert_eq!(tombs.len(), 2);
    assert!(tombs.iter().all(|(_, v)| v.is_none()));
    assert!(tombs
        .iter()
        .any(|(k, _)| *k == records::offset_key("g", "old", 0)));
    assert!(tombs
        .iter()
        .any(|(k, _)| *k == records::offset_key("s", "t", 0)));

    // Explicit expiry reached: the simple group loses its last offset and is removed, with no
    // group tombstone (generation 0).
    assert_eq!(c.expire_offsets(now_ms() + 61_000), 2, "s/t-1 and keep/t-0");
    assert_eq!(c.group_state("s"), None);
    let last = seen.lock().expect("lock").last().cloned().expect("append");
    assert!(last.1.iter().all(|(k, _)| *k != records::group_key("s")));
}

/// OffsetCommit v1 lets the client pick the commit timestamp: `now - i64::MIN` overflowed in
/// the periodic expiration pass (and stopped expiry for every group after it).
#[tokio::test]
async fn expiration_survives_extreme_client_commit_timestamps() {
    let c = GroupCoordinator::new(GroupConfig {
        offsets_retention_ms: 1000,
        ..GroupConfig::default()
    });
    let _seen = recorder(&c, NONE);
    c.store_offsets("far-past", vec![(("t".into(), 0), off(1, "", i64::MIN))]);
    c.store_offsets("far-future", vec![(("t".into(), 0), off(1, "", i64::MAX))]);
    c.store_offsets("old", vec![(("t".into(), 0), off(1, "", 0))]);
    // Kafka's Java arithmetic wraps: both extremes come out negative, so neither expires.
    assert_eq!(c.expire_offsets(now_ms()), 1);
    assert_eq!(c.fetch_offsets("far-past", None, false).len(), 1);
    assert_eq!(c.fetch_offsets("far-future", None, false).len(), 1);
    assert_eq!(c.fetch_offsets("old", None, false).len(), 0);
}

#[tokio::test]
async fn empty_consumer_group_expires_from_when_it_became_empty() {
    let c = GroupCoordinator::new(GroupConfig {
        min_session_timeout_ms: 10,
        initial_rebalance_delay_ms: 0,
        offsets_retention_ms: 1000,
        ..GroupConfig::default()
    });
    let seen = recorder(&c, NONE);
    let m = stable_one(&c, &["t"]).await;
    // Committed long ago, but the group only just became Empty.
    c.store_offsets("g", vec![(("t".into(), 0), off(1, "", 0))]);
    assert_eq!(c.leave("g", &[(m, None)]), vec![NONE]);
    assert_eq!(c.group_state("g"), Some(GroupState::Empty));
    assert_eq!(
        c.expire_offsets(now_ms()),
        0,
        "retention counts from the Empty transition"
    );
    assert_eq!(c.expire_offsets(now_ms() + 1500), 1);
    assert_eq!(
        c.group_state("g"),
        None,
        "Empty without offsets: Dead and removed"
    );
    let last = seen.lock().expect("lock").last().cloned().expect("append");
    assert_eq!(last.2, 0, "tombstones need no acks");
    assert!(
        last.1.contains(&(records::group_key("g"), None)),
        "group tombstone (generation 2)"
    );
    assert!(last.1.contains(&(records::offset_key("g", "t", 0), None)));
}

// ---------------------------------------------------------------- OffsetDelete / DeleteGroups

#[tokio::test]
async fn offset_delete_respects_subscriptions() {
    let c = coord(0);
    let seen = recorder(&c, NONE);
    assert_eq!(c.delete_offsets("nope", &[]), Err(GROUP_ID_NOT_FOUND));
    let m = stable_one(&c, &["t"]).await;
    c.store_offsets(
        "g",
        vec![
            (("t".into(), 0), off(1, "", 1)),
            (("u".into(), 0), off(1, "", 1)),
        ],
    );
    let before = seen.lock().expect("lock").len();
    let out = c.delete_offsets("g", &[("t".into(), 0), ("u".into(), 0)]);
    assert_eq!(out, Ok(vec![GROUP_SUBSCRIBED_TO_TOPIC, NONE]));
    assert_eq!(c.fetch_offsets("g", None, false).len(), 1);
    let w = seen.lock().expect("lock")[before..].to_vec();
    assert_eq!(w[0].1, vec![(records::offset_key("g", "u", 0), None)]);
    // Once Empty, any offset may go; the last one takes the group with it.
    assert_eq!(c.leave("g", &[(m, None)]), vec![NONE]);
    assert_eq!(c.delete_offsets("g", &[("t".into(), 0)]), Ok(vec![NONE]));
    assert_eq!(c.group_state("g"), None);
    let last = seen.lock().expect("lock").last().cloned().expect("append");
    assert!(last.1.contains(&(records::group_key("g"), None)));
}

#[tokio::test]
async fn delete_group_writes_tombstones() {
    let c = coord(0);
    let seen = recorder(&c, NONE);
    let m = stable_one(&c, &["t"]).await;
    c.store_offsets("g", vec![(("t".into(), 0), off(1, "", 1))]);
    assert_eq!(c.delete_group("g"), NON_EMPTY_GROUP);
    assert_eq!(c.leave("g", &[(m, None)]), vec![NONE]);
    assert_eq!(c.delete_group("g"), NONE);
    assert_eq!(c.group_state("g"), None);
    let last = seen.lock().expect("lock").last().cloned().expect("append");
    assert_eq!(
        last.1,
        vec![
            (records::offset_key("g", "t", 0), None),
            (records::group_key("g"), None)
        ]
    );
    assert_eq!(c.delete_group("g"), GROUP_ID_NOT_FOUND);
}

#[tokio::test]
async fn static_rejoin_answers_after_the_group_record_is_written() {
    let c = coord(0);
    let mut a = args("", 10_000);
    a.instance_id = Some("inst".into());
    let r = c.join(a.clone()).await;
    let old = r.member_id.clone();
    let s = c
        .sync(
            "g",
            1,
            &old,
            Some("inst"),
            None,
            None,
            vec![(old.clone(), Bytes::from_static(b"S"))],
        )
        .await;
    assert_eq!(s.error, NONE);
    // The write fails: Kafka's storeGroup mapping, no member id handed out.
    let seen = recorder(&c, NOT_ENOUGH_REPLICAS);
    let failed = c.join(a.clone()).await;
    assert_eq!(failed.error, COORDINATOR_NOT_AVAILABLE);
    assert_eq!(failed.member_id, "");
    assert_eq!(failed.generation, 1);
    let w = wait_written(&seen, 1);
    assert_eq!(w[0].1[0].0, records::group_key("g"));
    // Written: the rejoin keeps generation 1 and the stored assignment.
    recorder(&c, NONE);
    let ok = c.join(a).await;
    assert_eq!((ok.error, ok.generation), (NONE, 1));
    assert_eq!(c.group_state("g"), Some(GroupState::Stable));
    let s = c
        .sync("g", 1, &ok.member_id, Some("inst"), None, None, vec![])
        .await;
    assert_eq!(&s.assignment[..], b"S");
}

/// Kafka's `updateStaticMemberAndRebalance`: when the group record with the new member id fails,
/// the old id is restored (it keeps heartbeating, committing and leading) and the new one is unknown.
#[tokio::test]
async fn failed_static_rejoin_reverts_to_the_old_member_id() {
    let c = coord(0);
    let mut a = args("", 10_000);
    a.instance_id = Some("inst".into());
    let old = c.join(a.clone()).await.member_id;
    let s = c
        .sync(
            "g",
            1,
            &old,
            Some("inst"),
            None,
            None,
            vec![(old.clone(), Bytes::from_static(b"S"))],
        )
        .await;
    assert_eq!(s.error, NONE);
    let gates = gated(&c);
    let c2 = c.clone();
    let mut a2 = a.clone();
    a2.session_timeout_ms = 20_000;
    let rejoin = tokio::spawn(async move { c2.join(a2).await });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while gates.lock().expect("lock").is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "no group record");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // While the write is in flight the new id is current and the old one fenced.
    let new_id = c.describe("g").expect("group").members[0].member_id.clone();
    assert_ne!(new_id, old);
    assert_eq!(c.heartbeat("g", 1, &old, Some("inst")), FENCED_INSTANCE_ID);
    release(&gates, REQUEST_TIMED_OUT);
    let failed = tokio::time::timeout(Duration::from_secs(5), rejoin)
        .await
        .expect("join answered")
        .expect("task");
    assert_eq!(failed.error, REBALANCE_IN_PROGRESS, "storeGroup mapping");
    assert_eq!(failed.member_id, "");
    assert_eq!(failed.generation, 1);
    assert_eq!(failed.leader, old, "the leader before the swap");
    assert_eq!(failed.protocol_name.as_deref(), Some("range"));
    // Reverted: the old id is the member again, the new one is fenced.
    let d = c.describe("g").expect("group");
    assert_eq!(d.members.len(), 1);
    assert_eq!(d.members[0].member_id, old);
    assert_eq!(c.heartbeat("g", 1, &old, Some("inst")), NONE);
    assert_eq!(
        c.heartbeat("g", 1, &new_id, Some("inst")),
        FENCED_INSTANCE_ID
    );
    assert_eq!(c.validate_commit("g", 1, &old, Some("inst")), NONE);
    assert_eq!(c.group_state("g"), Some(GroupState::Stable));
    let s = c.sync("g", 1, &old, Some("inst"), None, None, vec![]).await;
    assert_eq!((s.error, &s.assignment[..]), (NONE, &b"S"[..]));
    // The session timeout went back too: the old id's timer is re-armed with it.
    let session = c.lock()["g"].members[&old].session_timeout_ms;
    assert_eq!(session, 10_000);
}

#[tokio::test]
async fn late_commit_completion_never_overrides_newer_or_deleted_offsets() {
    let c = coord(0);
    let gates = gated(&c);
    let commit = |offset: i64| {
        let c = c.clone();
        tokio::spawn(async move {
            c.commit_offsets(
                "s",
                -1,
                "",
                None,
                vec![(("t".into(), 0), off(offset, "", 1))],
            )
            .await
        })
    };
    let wait_gates = |n: usize| {
        let gates = gates.clone();
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            while gates.lock().expect("lock").len() < n {
                assert!(tokio::time::Instant::now() < deadline, "appends missing");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    let first = commit(1);
    wait_gates(1).await;
    let second = commit(2);
    wait_gates(2).await;
    // The later append is acknowledged first; the earlier one must not overwrite it.
    release(&gates, NONE);
    assert_eq!(second.await.expect("task"), vec![NONE]);
    release(&gates, NONE);
    assert_eq!(first.await.expect("task"), vec![NONE]);
    let k = [("t".to_string(), 0)];
    assert_eq!(
        c.fetch_offsets("s", Some(&k), false)[0]
            .1
            .as_ref()
            .map(|o| o.offset),
        Some(2)
    );

    // Deleted while a commit is in flight: the commit does not bring it back.
    c.store_offsets("s", vec![(("keep".into(), 0), off(1, "", 1))]);
    let third = commit(3);
    wait_gates(1).await;
    assert_eq!(c.delete_offsets("s", &k), Ok(vec![NONE]));
    // The tombstone's append (last gate), then the commit's.
    release(&gates, NONE);
    release(&gates, NONE);
    let third = tokio::time::timeout(Duration::from_secs(5), third)
        .await
        .expect("commit answered");
    assert_eq!(third.expect("task"), vec![NONE]);
    assert_eq!(c.fetch_offsets("s", Some(&k), false)[0].1, None);
}

/// Kafka's `storeOffsets` callback acts on the group that issued the commit and skips it once
/// Dead: a commit still waiting for acks when its group is deleted and created again does not
/// land in (or unsettle the pending commits of) the new group.
#[tokio::test]
async fn commit_in_flight_does_not_land_in_a_recreated_group() {
    let c = coord(0);
    let gates = gated(&c);
    let commit = |offset: i64| {
        let c = c.clone();
        tokio::spawn(async move {
            c.commit_offsets(
                "s",
                -1,
                "",
                None,
                vec![(("t".into(), 0), off(offset, "", 1))],
            )
            .await
        })
    };
    let wait_gates = |n: usize| {
        let gates = gates.clone();
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            while gates.lock().expect("lock").len() < n {
                assert!(tokio::time::Instant::now() < deadline, "appends missing");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    let release_first = |code: i16| {
        let g = gates.lock().expect("lock").remove(0);
        g.send(code).expect("waiter alive");
    };
    let first = commit(1);
    wait_gates(1).await;
    // The group has no cached offsets and generation 0: deleting it writes nothing.
    assert_eq!(c.delete_group("s"), NONE);
    assert_eq!(c.group_state("s"), None);
    assert_eq!(gates.lock().expect("lock").len(), 1);
    // Created again by a new commit, which is still in flight too.
    let second = commit(2);
    wait_gates(2).await;
    let k = [("t".to_string(), 0)];
    assert_eq!(
        c.fetch_offsets("s", Some(&k), true)[0].2,
        UNSTABLE_OFFSET_COMMIT
    );
    // The old commit is acknowledged: answered NONE, but the new group is untouched.
    release_first(NONE);
    let first = tokio::time::timeout(Duration::from_secs(5), first)
        .await
        .expect("commit answered");
    assert_eq!(first.expect("task"), vec![NONE]);
    assert_eq!(c.fetch_offsets("s", Some(&k), false)[0].1, None);
    assert_eq!(
        c.fetch_offsets("s", Some(&k), true)[0].2,
        UNSTABLE_OFFSET_COMMIT,
        "the new group's own commit is still pending"
    );
    release_first(NONE);
    let second = tokio::time::timeout(Duration::from_secs(5), second)
        .await
        .expect("commit answered");
    assert_eq!(second.expect("task"), vec![NONE]);
    let got = c.fetch_offsets("s", Some(&k), true);
    assert_eq!(
        (got[0].1.as_ref().map(|o| o.offset), got[0].2),
        (Some(2), NONE)
    );
}

/// A static rejoin's failed group record reverts the group that issued it, not a later group
/// of the same id loaded meanwhile (Kafka's `storeGroup` callback holds the old group object).
#[tokio::test]
async fn late_failed_static_rejoin_leaves_a_reloaded_group_alone() {
    let c = coord(0);
    let mut a = args("", 10_000);
    a.instance_id = Some("inst".into());
    let old = c.join(a.clone()).await.member_id;
    let s = c.sync("g", 1, &old, Some("inst"), None, None, vec![]).await;
    assert_eq!(s.error, NONE);
    let gates = gated(&c);
    let c2 = c.clone();
    let a2 = a.clone();
    let rejoin = tokio::spawn(async move { c2.join(a2).await });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while gates.lock().expect("lock").is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "no group record");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let new_id = c.describe("g").expect("group").members[0].member_id.clone();
    // The partition moves away and back; the reload finds the new id in the log.
    c.set_partition_count(1);
    let p = c.partition_of("g").expect("count set");
    c.unload_partition(p);
    let token = c.begin_load(p, 1).expect("load");
    let mut loaded = load::LoadedPartition::default();
    loaded.groups.insert(
        "g".into(),
        records::StoredGroup {
            protocol_type: "consumer".into(),
            generation: 1,
            protocol: Some("range".into()),
            leader: Some(new_id.clone()),
            state_timestamp: -1,
            members: vec![records::StoredMember {
                member_id: new_id.clone(),
                instance_id: Some("inst".into()),
                client_id: "cli".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout_ms: 2000,
                session_timeout_ms: 10_000,
                subscription: Bytes::from_static(b"md"),
                assignment: Bytes::new(),
            }],
        },
    );
    c.finish_load(p, token, Some(loaded));
    // The old coordinator's write times out: the reloaded group keeps the new id.
    release(&gates, REQUEST_TIMED_OUT);
    let failed = tokio::time::timeout(Duration::from_secs(5), rejoin)
        .await
        .expect("join answered")
        .expect("task");
    assert_eq!(
        (failed.error, failed.member_id.as_str()),
        (REBALANCE_IN_PROGRESS, "")
    );
    let d = c.describe("g").expect("group");
    assert_eq!(d.members.len(), 1);
    assert_eq!(d.members[0].member_id, new_id);
    assert_eq!(c.heartbeat("g", 1, &new_id, Some("inst")), NONE);
}

/// Found by the fault drill: a TxnOffsetCommit that passed the handler's ownership check, then
/// waited on its KIP-890 verification while the partition was unloaded, made an empty
/// generation-0 group; the next load kept that group instead of the log's, and the group's
/// committed offsets were lost (the consumers started over from the earliest offset).
#[tokio::test]
async fn txn_offset_commit_never_makes_a_group_the_coordinator_does_not_own() {
    let c = coord(0);
    c.set_partition_count(50);
    let p = c.partition_of("g").expect("count set");
    let write = TxnWrite {
        producer_id: 7,
        producer_epoch: 0,
        guard: crate::log::producer_state::VerificationGuard::SENTINEL,
    };
    let commit = |c: Arc<GroupCoordinator>| async move {
        c.commit_txn_offsets(
            "g",
            write,
            -1,
            "",
            None,
            vec![(("t".into(), 0), off(5, "", 1))],
        )
        .await
    };
    assert_eq!(commit(c.clone()).await, vec![NOT_COORDINATOR]);
    let token = c.begin_load(p, 3).expect("load starts");
    assert_eq!(commit(c.clone()).await, vec![COORDINATOR_LOAD_IN_PROGRESS]);
    assert_eq!(c.group_state("g"), None, "no group made while not owned");
    let mut loaded = load::LoadedPartition::default();
    loaded
        .offsets
        .entry("g".to_string())
        .or_default()
        .insert(("t".to_string(), 0), off(42, "", 1));
    c.finish_load(p, token, Some(loaded));
    let k = [("t".to_string(), 0)];
    let row = &c.fetch_offsets("g", Some(&k), true)[0];
    assert_eq!((row.1.as_ref().map(|o| o.offset), row.2), (Some(42), NONE));
    // Owned and loaded: the commit goes through (pending until its marker).
    assert_eq!(commit(c.clone()).await, vec![NONE]);
}
