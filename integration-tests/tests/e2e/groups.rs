//! Consumer groups on three brokers (issue 5): rebalances 2 -> 3 -> 2 members with librdkafka, kafka-python
//! and the Java client; committed offsets across restarts of every broker; kill -9 of the coordinator during
//! consumption; static membership; the Java Admin group API.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use kafka_protocol::messages::{ApiKey, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use samsa_integration_tests::{clients, util, wire, Cluster};
use serde_json::Value;

use crate::common::{client_config, create_topic, rt};

const T: Duration = Duration::from_secs(60);

fn three_brokers(name: &str) -> Cluster {
    let cluster = Cluster::builder(name).brokers(3).start();
    cluster.wait_registered(T);
    cluster
}

/// Produces `per_partition` records to each of `partitions` partitions (acks=all); values are `p<p>-<i>`.
fn produce_all(bootstrap: &str, topic: &str, partitions: i32, per_partition: i64) {
    let producer: FutureProducer = client_config(bootstrap)
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "30000")
        .create()
        .unwrap();
    rt().block_on(async {
        let mut futs = Vec::new();
        for p in 0..partitions {
            for i in 0..per_partition {
                let value = format!("p{p}-{i}");
                let rec = FutureRecord::<(), _>::to(topic)
                    .partition(p)
                    .payload(&value);
                futs.push(producer.send_result(rec).map_err(|(e, _)| e).unwrap());
            }
        }
        for f in futs {
            f.await.unwrap().map_err(|(e, _)| e).expect("delivery");
        }
    });
}

/// Waits until every partition of `topic` has `n` replicas in its ISR (state znodes).
fn wait_full_isr(cluster: &Cluster, topic: &str, partitions: i32, n: usize) {
    util::wait_until(
        &format!("ISR of {n} for every partition of {topic}"),
        T,
        || {
            (0..partitions)
                .all(|p| {
                    cluster
                        .zk()
                        .json(&format!("/brokers/topics/{topic}/partitions/{p}/state"))
                        .ok()
                        .and_then(|s| s["isr"].as_array().map(Vec::len))
                        == Some(n)
                })
                .then_some(())
        },
    );
}

/// FindCoordinator (v4, group key) asked of the running brokers; the first answer without error.
fn find_coordinator(cluster: &mut Cluster, group: &str) -> Option<i32> {
    let addrs: Vec<String> = cluster
        .brokers
        .iter_mut()
        .filter_map(|b| b.is_running().then(|| b.addr()))
        .collect();
    addrs.iter().find_map(|a| {
        let req = FindCoordinatorRequest::default()
            .with_key_type(0)
            .with_coordinator_keys(vec![StrBytes::from_string(group.to_string())]);
        let r: FindCoordinatorResponse = wire::Conn::connect(a)
            .ok()?
            .request(ApiKey::FindCoordinator, 4, &req)
            .ok()?;
        let c = r.coordinators.first()?;
        (c.error_code == 0 && c.node_id.0 >= 0).then_some(c.node_id.0)
    })
}

/// The coordinator of `group` (waits until a broker names one).
fn coordinator_of(cluster: &mut Cluster, group: &str) -> i32 {
    util::wait_until(&format!("coordinator of {group}"), T, || {
        find_coordinator(cluster, group)
    })
}

/// Committed offsets (offset, metadata) of `group` for partitions `0..partitions` of `topic`, asked with a
/// fresh consumer that does not join. Errors (coordinator moving or loading) are retried; an answer is final.
fn committed(
    bootstrap: &str,
    group: &str,
    topic: &str,
    partitions: i32,
) -> BTreeMap<i32, (i64, String)> {
    let c: BaseConsumer = client_config(bootstrap)
        .set("group.id", group)
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let r = util::wait_until(&format!("OffsetFetch of {group}"), T, || {
        c.committed_offsets(tpl.clone(), Duration::from_secs(10))
            .ok()
    });
    r.elements()
        .iter()
        .map(|e| {
            let off = match e.offset() {
                Offset::Offset(o) => o,
                _ => -1,
            };
            (e.partition(), (off, e.metadata().to_string()))
        })
        .collect()
}

/// Partitions of `topic` in a consumer-protocol Assignment (version, [topic, [partition]], user data).
fn assignment_partitions(b: &[u8], topic: &str) -> Vec<i32> {
    let mut out = Vec::new();
    if b.len() < 6 {
        return out;
    }
    let i32_at = |i: usize| i32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let mut i = 2;
    let topics = i32_at(i);
    i += 4;
    for _ in 0..topics {
        let len = i16::from_be_bytes([b[i], b[i + 1]]) as usize;
        let name = std::str::from_utf8(&b[i + 2..i + 2 + len])
            .unwrap()
            .to_string();
        i += 2 + len;
        let n = i32_at(i);
        i += 4;
        for _ in 0..n {
            if name == topic {
                out.push(i32_at(i));
            }
            i += 4;
        }
    }
    out.sort();
    out
}

fn ints(v: &Value) -> Vec<i64> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect()
}

/// Checks a `{"phases":[{"clients":[{"client","generation","partitions"}]}]}` result of a 2 -> 3 -> 2 member
/// run over 6 partitions: sizes 3/3, 2/2/2, 3/3, disjoint and complete, one generation per phase, rising.
fn check_phases(r: &Value) {
    let phases = r["phases"].as_array().unwrap();
    assert_eq!(phases.len(), 3, "{r}");
    let expect: [&[&str]; 3] = [&["m0", "m1"], &["m0", "m1", "m2"], &["m1", "m2"]];
    let mut last_gen = 0;
    for (phase, names) in phases.iter().zip(expect) {
        let clients = phase["clients"].as_array().unwrap();
        let got: Vec<&str> = clients
            .iter()
            .map(|c| c["client"].as_str().unwrap())
            .collect();
        assert_eq!(got, names, "members of phase {phase}");
        let mut all: Vec<i64> = clients
            .iter()
            .flat_map(|c| ints(&c["partitions"]))
            .collect();
        for c in clients {
            assert_eq!(
                ints(&c["partitions"]).len(),
                6 / names.len(),
                "balanced: {phase}"
            );
        }
        all.sort();
        assert_eq!(
            all,
            (0..6).collect::<Vec<i64>>(),
            "disjoint and complete: {phase}"
        );
        let gens: BTreeSet<i64> = clients
            .iter()
            .map(|c| c["generation"].as_i64().unwrap())
            .collect();
        assert_eq!(gens.len(), 1, "one generation: {phase}");
        let g = *gens.first().unwrap();
        assert!(g > last_gen, "generation rises: {r}");
        last_gen = g;
    }
}

/// Java client, eager range and then cooperative-sticky (two-round incremental rebalances) on the same
/// cluster: 3/3, 2/2/2, 3/3; Admin.describeConsumerGroups agrees with the clients.
#[test]
fn group_rebalances_java_range_and_cooperative_sticky() {
    let cluster = three_brokers("grpjava");
    let b = cluster.bootstrap();
    for assignor in ["range", "cooperative-sticky"] {
        let topic = format!("jreb-{assignor}");
        create_topic(&b, &topic, 6, 3, &[]);
        let group = format!("jg-{assignor}");
        let args: Vec<String> = [b.as_str(), &topic, &group, assignor, "6"]
            .map(String::from)
            .to_vec();
        let r = clients::java("GroupRebalance", &args, Duration::from_secs(240)).unwrap();
        check_phases(&r);
        for phase in r["phases"].as_array().unwrap() {
            let admin = &phase["admin"];
            assert_eq!(admin["state"], "Stable", "{phase}");
            assert_eq!(admin["assignor"], assignor, "{phase}");
            assert_eq!(admin["simple"], false, "{phase}");
            let clients: Vec<Value> = phase["clients"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| serde_json::json!({"client": c["client"], "partitions": c["partitions"]}))
                .collect();
            assert_eq!(
                admin["members"],
                Value::Array(clients),
                "DescribeGroups matches the clients ({assignor})"
            );
        }
    }
    cluster.finish();
}

/// kafka-python, round-robin assignor: 3/3, 2/2/2, 3/3.
#[test]
fn group_rebalances_kafka_python_roundrobin() {
    let cluster = three_brokers("grppy");
    let b = cluster.bootstrap();
    create_topic(&b, "pyreb", 6, 3, &[]);
    let args: Vec<String> = [b.as_str(), "pyreb", "pg", "roundrobin", "6"]
        .map(String::from)
        .to_vec();
    let r = clients::python("kafka_python_group.py", &args, Duration::from_secs(240)).unwrap();
    check_phases(&r);
    cluster.finish();
}

/// kafka-python pinned to broker version 0.10.2 (JoinGroup v1, SyncGroup/Heartbeat/LeaveGroup v0,
/// OffsetCommit v2, OffsetFetch v2): the same 3/3, 2/2/2, 3/3 with the oldest request versions.
#[test]
fn group_rebalances_kafka_python_old_request_versions() {
    let cluster = three_brokers("grppyold");
    let b = cluster.bootstrap();
    create_topic(&b, "pyold", 6, 3, &[]);
    let args: Vec<String> = [b.as_str(), "pyold", "pgold", "range", "6", "0.10.2"]
        .map(String::from)
        .to_vec();
    let r = clients::python("kafka_python_group.py", &args, Duration::from_secs(240)).unwrap();
    check_phases(&r);
    cluster.finish();
}

/// librdkafka, cooperative-sticky (incremental) assignor: 3/3, 2/2/2, 3/3; a member keeps its partitions
/// when others join or leave (sticky), and DescribeGroups shows each member's assignment.
#[test]
fn group_rebalances_librdkafka_cooperative_sticky() {
    let cluster = three_brokers("grprdk");
    let b = cluster.bootstrap();
    create_topic(&b, "rreb", 6, 3, &[]);
    let member = |name: &str| -> BaseConsumer {
        let c: BaseConsumer = client_config(&b)
            .set("group.id", "rg")
            .set("client.id", name)
            .set("partition.assignment.strategy", "cooperative-sticky")
            .set("session.timeout.ms", "6000")
            .set("heartbeat.interval.ms", "300")
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        c.subscribe(&["rreb"]).unwrap();
        c
    };
    let parts = |c: &BaseConsumer| -> Vec<i32> {
        let mut v: Vec<i32> = c
            .assignment()
            .unwrap()
            .elements()
            .iter()
            .map(|e| e.partition())
            .collect();
        v.sort();
        v
    };
    let describe = |c: &BaseConsumer| -> Option<(String, String, BTreeMap<String, Vec<i32>>)> {
        let gl = c
            .fetch_group_list(Some("rg"), Duration::from_secs(5))
            .ok()?;
        let g = gl.groups().iter().find(|g| g.name() == "rg")?;
        let members = g
            .members()
            .iter()
            .map(|m| {
                (
                    m.client_id().to_string(),
                    assignment_partitions(m.assignment().unwrap_or_default(), "rreb"),
                )
            })
            .collect();
        Some((g.state().to_string(), g.protocol().to_string(), members))
    };
    // Polls every member until their assignments are balanced, disjoint and complete and DescribeGroups
    // reports the same; returns client id -> partitions.
    let settle = |live: &[(&str, BaseConsumer)]| -> BTreeMap<String, Vec<i32>> {
        util::wait_until(
            &format!("{} members to share 6 partitions", live.len()),
            T,
            || {
                for (_, c) in live {
                    assert!(
                        c.poll(Duration::from_millis(20)).is_none(),
                        "the topic is empty"
                    );
                }
                let view: BTreeMap<String, Vec<i32>> = live
                    .iter()
                    .map(|(n, c)| (n.to_string(), parts(c)))
                    .collect();
                let mut all: Vec<i32> = view.values().flatten().copied().collect();
                all.sort();
                let balanced = view.values().all(|p| p.len() == 6 / live.len());
                if !balanced || all != (0..6).collect::<Vec<_>>() {
                    return None;
                }
                let (state, protocol, members) = describe(&live[0].1)?;
                (state == "Stable" && members == view).then(|| {
                    assert_eq!(protocol, "cooperative-sticky");
                    view
                })
            },
        )
    };
    let mut live = vec![("m0", member("m0")), ("m1", member("m1"))];
    let p1 = settle(&live);
    live.push(("m2", member("m2")));
    let p2 = settle(&live);
    // Sticky: the first two members each keep 2 of their 3 partitions.
    for n in ["m0", "m1"] {
        assert!(
            p2[n].iter().all(|p| p1[n].contains(p)),
            "{n} kept its partitions: {p1:?} -> {p2:?}"
        );
    }
    let (_, m0) = live.remove(0);
    drop(m0); // close: LeaveGroup
    let p3 = settle(&live);
    for n in ["m1", "m2"] {
        assert!(
            p2[n].iter().all(|p| p3[n].contains(p)),
            "{n} kept its partitions: {p2:?} -> {p3:?}"
        );
    }
    drop(live);
    cluster.finish();
}

/// `__consumer_offsets` at replication factor 3: offsets committed by a subscribed member and by offsets-only
/// groups (several coordinators) read back unchanged after a rolling SIGTERM restart of every broker and
/// after all three are killed with -9 and restarted.
#[test]
fn committed_offsets_survive_restart_of_every_broker() {
    let mut cluster = three_brokers("grpdur");
    let b = cluster.bootstrap();
    create_topic(&b, "dur", 3, 3, &[]);
    produce_all(&b, "dur", 3, 10);
    // A subscribed member consumes everything and commits (generation and member id checked).
    let c: BaseConsumer = client_config(&b)
        .set("group.id", "dur-live")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "300")
        .create()
        .unwrap();
    c.subscribe(&["dur"]).unwrap();
    let mut seen = 0;
    util::wait_until("dur-live to consume 30 records", T, || {
        if let Some(Ok(_)) = c.poll(Duration::from_millis(100)) {
            seen += 1;
        }
        (seen == 30).then_some(())
    });
    c.commit_consumer_state(CommitMode::Sync).unwrap();
    drop(c);
    let mut expected: BTreeMap<String, BTreeMap<i32, (i64, String)>> = BTreeMap::new();
    expected.insert(
        "dur-live".into(),
        (0..3).map(|p| (p, (10, String::new()))).collect(),
    );
    // Offsets-only groups with metadata; the group ids spread over the offsets partitions.
    for g in 0..6i64 {
        let gid = format!("dur-{g}");
        let c: BaseConsumer = client_config(&b).set("group.id", &gid).create().unwrap();
        let mut tpl = TopicPartitionList::new();
        let mut exp = BTreeMap::new();
        for p in 0..3 {
            let off = g * 3 + i64::from(p) + 1;
            let md = format!("md-{g}-{p}");
            tpl.add_partition_offset("dur", p, Offset::Offset(off))
                .unwrap();
            tpl.find_partition("dur", p)
                .unwrap()
                .set_metadata(md.clone());
            exp.insert(p, (off, md));
        }
        c.commit(&tpl, CommitMode::Sync).unwrap();
        expected.insert(gid, exp);
    }
    let coordinators: BTreeSet<i32> = expected
        .keys()
        .map(|g| coordinator_of(&mut cluster, g))
        .collect();
    assert!(
        coordinators.len() > 1,
        "groups spread over several coordinators: {coordinators:?}"
    );
    let check = |cluster: &Cluster, when: &str| {
        let b = cluster.bootstrap();
        for (g, exp) in &expected {
            assert_eq!(
                &committed(&b, g, "dur", 3),
                exp,
                "committed offsets of {g} {when}"
            );
        }
    };
    check(&cluster, "before any restart");
    let offsets_topic = cluster
        .zk()
        .json("/brokers/topics/__consumer_offsets")
        .unwrap();
    for p in 0..5 {
        assert_eq!(
            offsets_topic["partitions"][p.to_string()]
                .as_array()
                .map(Vec::len),
            Some(3),
            "__consumer_offsets at replication factor 3: {offsets_topic}"
        );
    }
    wait_full_isr(&cluster, "__consumer_offsets", 5, 3);
    for id in 1..=3 {
        let status = cluster.broker(id).stop(T).unwrap();
        assert!(status.success(), "clean stop of broker {id}: {status}");
        cluster.broker(id).start().unwrap();
        wait_full_isr(&cluster, "__consumer_offsets", 5, 3);
        check(&cluster, &format!("after restarting broker {id}"));
    }
    for id in 1..=3 {
        cluster.broker(id).kill9();
    }
    for id in 1..=3 {
        cluster.restart_killed(id).unwrap();
    }
    check(&cluster, "after kill -9 of all brokers");
    cluster.finish();
}

/// kill -9 of the group coordinator while two members consume with manual commits after processing: the
/// offsets committed before the kill are served unchanged by the new coordinator, the group resumes from
/// them (nothing before them is read again) and the union of processed records covers everything.
#[test]
fn coordinator_kill_9_during_consumption_resumes_from_committed_offsets() {
    const PARTS: i32 = 4;
    const PER: i64 = 150;
    let mut cluster = three_brokers("grpk9");
    let b = cluster.bootstrap();
    create_topic(&b, "k9g", PARTS, 3, &[]);
    produce_all(&b, "k9g", PARTS, PER);
    let member = |name: &str| -> BaseConsumer {
        let c: BaseConsumer = client_config(&b)
            .set("group.id", "k9group")
            .set("client.id", name)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "6000")
            .set("heartbeat.interval.ms", "300")
            .set("fetch.message.max.bytes", "1024")
            .create()
            .unwrap();
        c.subscribe(&["k9g"]).unwrap();
        c
    };
    let members = [member("a"), member("b")];
    // (partition, offset) -> times processed
    let mut processed: HashMap<(i32, i64), u32> = HashMap::new();
    let mut since_commit = [0usize; 2];
    let total = (PARTS as i64 * PER) as usize;
    // Polls each member once, "processes" what arrives, stores its offset and commits every 20 records.
    // Records processed since the coordinator was killed.
    let mut after_kill: Vec<(i32, i64)> = Vec::new();
    let mut step = |processed: &mut HashMap<(i32, i64), u32>, log: Option<&mut Vec<(i32, i64)>>| {
        let mut log = log;
        for (i, c) in members.iter().enumerate() {
            match c.poll(Duration::from_millis(20)) {
                Some(Ok(m)) => {
                    *processed.entry((m.partition(), m.offset())).or_default() += 1;
                    if let Some(l) = log.as_deref_mut() {
                        l.push((m.partition(), m.offset()));
                    }
                    c.store_offset_from_message(&m).unwrap();
                    since_commit[i] += 1;
                    if since_commit[i] >= 20 {
                        // During failover a commit may fail; the next one carries the same offsets.
                        if c.commit_consumer_state(CommitMode::Sync).is_ok() {
                            since_commit[i] = 0;
                        }
                    }
                }
                Some(Err(KafkaError::MessageConsumption(_))) | None => {}
                Some(Err(e)) => panic!("consumer error: {e}"),
            }
        }
    };
    util::wait_until("a third of the records processed", T, || {
        step(&mut processed, None);
        (processed.len() >= total / 3).then_some(())
    });
    for c in &members {
        // Nothing stored since the last commit is fine (NoOffset); anything else is a failure.
        if let Err(e) = c.commit_consumer_state(CommitMode::Sync) {
            assert!(
                matches!(
                    e,
                    KafkaError::ConsumerCommit(rdkafka::types::RDKafkaErrorCode::NoOffset)
                ),
                "commit before the kill: {e}"
            );
        }
    }
    let before = committed(&b, "k9group", "k9g", PARTS);
    let old = coordinator_of(&mut cluster, "k9group");
    cluster.broker(old).kill9();
    // The live brokers name the dead one until the controller has moved leadership (ZooKeeper session).
    util::wait_until("the coordinator to move", T, || {
        find_coordinator(&mut cluster, "k9group").filter(|c| *c != old)
    });
    let live_bootstrap = cluster
        .brokers
        .iter_mut()
        .filter_map(|b| b.is_running().then(|| b.addr()))
        .collect::<Vec<_>>()
        .join(",");
    assert_eq!(
        committed(&live_bootstrap, "k9group", "k9g", PARTS),
        before,
        "the new coordinator serves the offsets committed before the kill"
    );
    let deadline = Instant::now() + Duration::from_secs(90);
    while processed.len() < total {
        assert!(
            Instant::now() < deadline,
            "only {} of {total} records processed after the coordinator kill",
            processed.len()
        );
        step(&mut processed, Some(&mut after_kill));
    }
    for p in 0..PARTS {
        for o in 0..PER {
            assert!(processed.contains_key(&(p, o)), "record {p}/{o} skipped");
        }
    }
    // Resumed from committed offsets: nothing below them was processed after the kill.
    for (p, o) in &after_kill {
        let floor = before[p].0;
        assert!(
            *o >= floor,
            "record {p}/{o} (below committed offset {floor}) processed again after the kill"
        );
    }
    // A final commit lands on the new coordinator.
    let end_deadline = Instant::now() + T;
    loop {
        for c in &members {
            let _ = c.poll(Duration::from_millis(20));
            let _ = c.commit_consumer_state(CommitMode::Sync);
        }
        let now = committed(&live_bootstrap, "k9group", "k9g", PARTS);
        if now.values().all(|(o, _)| *o == PER) {
            break;
        }
        assert!(Instant::now() < end_deadline, "final commit: {now:?}");
    }
    drop(members);
    cluster.restart_killed(old).unwrap();
    cluster.finish();
}

/// Java client static membership: the leader, closed and restarted with the same group.instance.id within
/// session.timeout.ms, gets its old partitions back in the same generation although its subscription bytes
/// changed (it owns nothing yet); the other member sees no rebalance, and DescribeGroups shows the new member
/// id under the same instance id.
#[test]
fn static_member_restart_within_session_timeout_causes_no_rebalance() {
    let cluster = three_brokers("grpstatic");
    let b = cluster.bootstrap();
    create_topic(&b, "st", 4, 3, &[]);
    let args: Vec<String> = [b.as_str(), "st", "sg", "4"].map(String::from).to_vec();
    let r = clients::java("StaticMember", &args, Duration::from_secs(240)).unwrap();
    let (before, after) = (&r["before"], &r["after"]);
    // static-b alone is generation 1; static-a joining makes 2.
    let generation = before["a"]["generation"].as_i64().unwrap();
    assert_eq!(generation, 2, "{r}");
    for snap in [&before["b"], &after["a"], &after["b"]] {
        assert_eq!(snap["generation"], generation, "generation unchanged: {r}");
    }
    assert_eq!(before["a"]["partitions"], after["a"]["partitions"], "{r}");
    assert_eq!(before["b"]["partitions"], after["b"]["partitions"], "{r}");
    let mut all = ints(&after["a"]["partitions"]);
    all.extend(ints(&after["b"]["partitions"]));
    all.sort();
    assert_eq!(all, vec![0, 1, 2, 3], "{r}");
    assert_eq!(
        r["a_rebalances_after"], r["a_rebalances_before"],
        "static-a saw no rebalance: {r}"
    );
    let (ma, mb) = (&before["admin"], &after["admin"]);
    assert_eq!(ma["state"], "Stable", "{r}");
    assert_eq!(mb["state"], "Stable", "{r}");
    let inst = |m: &Value, i: usize| m["members"][i]["instance"].clone();
    for m in [ma, mb] {
        assert_eq!(m["members"].as_array().unwrap().len(), 2, "{r}");
        assert_eq!(inst(m, 0), "static-a");
        assert_eq!(inst(m, 1), "static-b");
    }
    assert_eq!(
        ma["members"][0], mb["members"][0],
        "static-a unchanged: {r}"
    );
    assert_eq!(
        ma["members"][1]["partitions"], mb["members"][1]["partitions"],
        "{r}"
    );
    let (old_id, new_id) = (
        ma["members"][1]["member"].as_str().unwrap(),
        mb["members"][1]["member"].as_str().unwrap(),
    );
    assert_ne!(
        old_id, new_id,
        "a restarted static member gets a new member id"
    );
    assert!(new_id.starts_with("static-b-"), "{new_id}");
    assert_eq!(
        after["b"]["partitions"], ma["members"][1]["partitions"],
        "{r}"
    );
    cluster.finish();
}

/// Java Admin group operations give Kafka's answers (see GroupAdmin.java for the steps): list (state
/// filter), describe, list offsets (also require_stable), alter offsets, delete offsets (OffsetDelete) and
/// delete groups, on a group with a member, an offsets-only group and an unknown group.
#[test]
fn java_admin_consumer_group_operations() {
    let cluster = three_brokers("grpadmin");
    let b = cluster.bootstrap();
    let args: Vec<String> = [b.as_str(), "ga"].map(String::from).to_vec();
    let r = clients::java("GroupAdmin", &args, Duration::from_secs(240)).unwrap();
    let ok = |step: &str| -> &Value {
        let v = &r[step];
        assert!(v.get("error").is_none(), "{step} failed: {r}");
        v
    };
    let err = |step: &str| {
        r[step]["error"]
            .as_str()
            .unwrap_or("<no error>")
            .to_string()
    };
    ok("alter_simple");
    let group = |g: &str, simple: bool, state: &str| serde_json::json!({"group": g, "simple": simple, "state": state});
    assert_eq!(
        ok("list")["groups"],
        serde_json::json!([
            group("live", false, "Stable"),
            group("simple", true, "Empty")
        ])
    );
    assert_eq!(
        ok("list_stable")["groups"],
        serde_json::json!([group("live", false, "Stable")])
    );
    assert_eq!(
        ok("list_empty")["groups"],
        serde_json::json!([group("simple", true, "Empty")])
    );

    let d = ok("describe");
    let live = &d["live"];
    assert_eq!(live["state"], "Stable", "{d}");
    assert_eq!(live["simple"], false);
    assert_eq!(live["assignor"], "range");
    let members = live["members"].as_array().unwrap();
    assert_eq!(members.len(), 1, "{d}");
    assert_eq!(members[0]["client"], "live-client");
    assert!(
        members[0]["member"]
            .as_str()
            .unwrap()
            .starts_with("live-client-"),
        "member id is client id + uuid: {d}"
    );
    assert_eq!(members[0]["host"], "/127.0.0.1");
    assert_eq!(members[0]["instance"], Value::Null);
    assert_eq!(members[0]["partitions"], serde_json::json!([0, 1, 2]));
    assert!((1..=3).contains(&live["coordinator"].as_i64().unwrap()));
    assert_eq!(
        d["simple"],
        serde_json::json!({"state":"Empty","simple":true,"assignor":"","coordinator":d["simple"]["coordinator"],"members":[]})
    );
    assert_eq!(d["ghost"]["state"], "Dead", "an unknown group is Dead: {d}");
    assert_eq!(d["ghost"]["members"], serde_json::json!([]));

    let off = |o: i64, md: &str| serde_json::json!({"offset": o, "metadata": md});
    assert_eq!(
        ok("offsets_live"),
        &serde_json::json!({"ga-0": off(10, ""), "ga-1": off(10, ""), "ga-2": off(10, "")})
    );
    assert_eq!(
        ok("offsets_simple"),
        &serde_json::json!({"ga-0": off(5, "five"), "ga-1": off(6, "")})
    );
    assert_eq!(ok("offsets_ghost"), &serde_json::json!({}));
    assert_eq!(ok("offsets_live_require_stable"), ok("offsets_live"));
    // OffsetDelete: a member is subscribed to the topic; the unknown group does not exist.
    assert_eq!(
        err("delete_offsets_live_active"),
        "GroupSubscribedToTopicException"
    );
    assert_eq!(err("delete_offsets_ghost"), "GroupIdNotFoundException");
    // Only members may commit to a group that has members.
    assert_eq!(err("alter_live_active"), "UnknownMemberIdException");
    assert_eq!(
        ok("alter_simple_again"),
        &serde_json::json!({"ga-0": off(5, "five"), "ga-1": off(2, "")})
    );
    assert_eq!(err("delete_live_active"), "GroupNotEmptyException");
    ok("delete_simple");
    assert_eq!(err("delete_ghost"), "GroupIdNotFoundException");
    assert_eq!(
        ok("list_after_delete")["groups"],
        serde_json::json!([group("live", false, "Stable")])
    );
    assert_eq!(ok("offsets_simple_after_delete"), &serde_json::json!({}));

    let closed = &ok("describe_live_closed")["live"];
    assert_eq!(closed["state"], "Empty", "{closed}");
    assert_eq!(closed["members"], serde_json::json!([]));
    assert_eq!(closed["simple"], false, "protocol type stays consumer");
    assert_eq!(
        ok("alter_live_empty"),
        &serde_json::json!({"ga-0": off(3, ""), "ga-1": off(10, ""), "ga-2": off(10, "")})
    );
    assert_eq!(
        ok("delete_offsets_live_empty"),
        &serde_json::json!({"ga-0": off(3, ""), "ga-2": off(10, "")}),
        "OffsetDelete on the Empty group"
    );
    ok("delete_live_empty");
    assert_eq!(ok("list_final")["groups"], serde_json::json!([]));
    assert_eq!(ok("offsets_live_after_delete"), &serde_json::json!({}));
    cluster.finish();
}

/// Counts the rebalance callbacks (assign and revoke) a librdkafka consumer serves.
struct CountRebalances(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl rdkafka::client::ClientContext for CountRebalances {}

impl rdkafka::consumer::ConsumerContext for CountRebalances {
    fn post_rebalance(
        &self,
        _consumer: &BaseConsumer<Self>,
        _rebalance: &rdkafka::consumer::Rebalance<'_>,
    ) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// librdkafka static membership (JoinGroup before v9, so no SkipAssignment): the group leader "sb" is
/// closed and restarted with the same group.instance.id; it gets its partitions back from SyncGroup while
/// the other member "sa" serves no rebalance callback. An eager rebalance would first revoke sa's
/// partitions (a callback sa serves before it can rejoin), so once the new sb holds partitions any
/// rebalance would already show in sa's count.
#[test]
fn static_member_restart_librdkafka_keeps_assignment() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let cluster = three_brokers("grpstrdk");
    let b = cluster.bootstrap();
    create_topic(&b, "strdk", 4, 3, &[]);
    let member = |instance: &str| -> (BaseConsumer<CountRebalances>, Arc<AtomicUsize>) {
        let n = Arc::new(AtomicUsize::new(0));
        let c: BaseConsumer<CountRebalances> = client_config(&b)
            .set("group.id", "stg")
            .set("group.instance.id", instance)
            .set("client.id", instance)
            .set("partition.assignment.strategy", "range")
            .set("session.timeout.ms", "20000")
            .set("heartbeat.interval.ms", "300")
            .set("enable.auto.commit", "false")
            .create_with_context(CountRebalances(n.clone()))
            .unwrap();
        c.subscribe(&["strdk"]).unwrap();
        (c, n)
    };
    let parts = |c: &BaseConsumer<CountRebalances>| -> Vec<i32> {
        let mut v: Vec<i32> = c
            .assignment()
            .unwrap()
            .elements()
            .iter()
            .map(|e| e.partition())
            .collect();
        v.sort();
        v
    };
    // client id -> (member id, partitions) from DescribeGroups, once the group is Stable.
    let describe =
        |c: &BaseConsumer<CountRebalances>| -> Option<BTreeMap<String, (String, Vec<i32>)>> {
            let gl = c
                .fetch_group_list(Some("stg"), Duration::from_secs(5))
                .ok()?;
            let g = gl.groups().iter().find(|g| g.name() == "stg")?;
            (g.state() == "Stable").then(|| {
                g.members()
                    .iter()
                    .map(|m| {
                        (
                            m.client_id().to_string(),
                            (
                                m.id().to_string(),
                                assignment_partitions(m.assignment().unwrap_or_default(), "strdk"),
                            ),
                        )
                    })
                    .collect()
            })
        };
    let (sb, _) = member("sb");
    util::wait_until("sb alone to own 4 partitions", T, || {
        sb.poll(Duration::from_millis(20));
        (parts(&sb).len() == 4).then_some(())
    });
    let (sa, sa_count) = member("sa");
    let before = util::wait_until("sa and sb to share 4 partitions", T, || {
        sa.poll(Duration::from_millis(20));
        sb.poll(Duration::from_millis(20));
        let (pa, pb) = (parts(&sa), parts(&sb));
        if pa.len() != 2 || pb.len() != 2 {
            return None;
        }
        let d = describe(&sa)?;
        (d.get("sa").map(|m| &m.1) == Some(&pa) && d.get("sb").map(|m| &m.1) == Some(&pb))
            .then_some(d)
    });
    let sa_rebalances = sa_count.load(Ordering::SeqCst);
    drop(sb); // a static member's close sends no LeaveGroup
    let (sb2, _) = member("sb");
    util::wait_until("the restarted sb to get partitions", T, || {
        sa.poll(Duration::from_millis(20));
        sb2.poll(Duration::from_millis(20));
        (!parts(&sb2).is_empty()).then_some(())
    });
    assert_eq!(parts(&sb2), before["sb"].1, "same partitions after restart");
    assert_eq!(parts(&sa), before["sa"].1);
    assert_eq!(
        sa_count.load(Ordering::SeqCst),
        sa_rebalances,
        "sa served no rebalance"
    );
    let after = util::wait_until("DescribeGroups after the restart", T, || {
        sa.poll(Duration::from_millis(20));
        sb2.poll(Duration::from_millis(20));
        describe(&sa)
    });
    assert_eq!(after["sa"], before["sa"], "sa unchanged");
    assert_eq!(after["sb"].1, before["sb"].1);
    assert_ne!(
        after["sb"].0, before["sb"].0,
        "the restarted member has a new member id"
    );
    assert!(after["sb"].0.starts_with("sb-"), "{after:?}");
    drop((sa, sb2));
    cluster.finish();
}

/// Java client through a kill -9 of the group coordinator (see CoordinatorFailover.java): the new
/// coordinator loads the group from `__consumer_offsets`, so the members keep their generation and see no
/// rebalance, as on Kafka; every record is processed and the final commits land on the new coordinator.
#[test]
fn coordinator_kill_9_java_group_keeps_generation() {
    let mut cluster = three_brokers("grpk9j");
    let b = cluster.bootstrap();
    create_topic(&b, "k9j", 4, 3, &[]);
    let pids = cluster
        .brokers
        .iter()
        .map(|b| format!("{}:{}", b.id.unwrap(), b.pid().unwrap()))
        .collect::<Vec<_>>()
        .join(",");
    let args: Vec<String> = [b.as_str(), "k9j", "k9jg", "4", "100", &pids]
        .map(String::from)
        .to_vec();
    let r = clients::java("CoordinatorFailover", &args, Duration::from_secs(300)).unwrap();
    let killed = r["killed"].as_i64().unwrap() as i32;
    assert!(
        !cluster.broker(killed).is_running(),
        "the coordinator was killed: {r}"
    );
    assert_ne!(r["new_coordinator"], killed, "{r}");
    assert_eq!(
        r["missing"],
        serde_json::json!([]),
        "no record skipped: {r}"
    );
    assert_eq!(
        r["committed"],
        serde_json::json!({"0": 100, "1": 100, "2": 100, "3": 100}),
        "{r}"
    );
    assert_eq!(
        r["generations_after"], r["generations_before"],
        "no rebalance across the failover: {r}"
    );
    assert_eq!(r["callbacks_after"], r["callbacks_before"], "{r}");
    cluster.finish();
}

/// `__consumer_offsets` needs `offsets.topic.replication.factor` (3) live brokers: with two of three up,
/// FindCoordinator answers COORDINATOR_NOT_AVAILABLE and the topic is not created; once the third broker
/// is up the topic is created at RF 3 and a commit goes through.
#[test]
fn offsets_topic_waits_for_enough_brokers() {
    let mut cluster = Cluster::builder("grprf")
        .brokers(3)
        .configure_only()
        .start();
    for id in [1, 2] {
        cluster.broker(id).start().unwrap();
    }
    let addr = cluster.broker(1).addr();
    let find = |addr: &str| -> i16 {
        let req = FindCoordinatorRequest::default()
            .with_key_type(0)
            .with_coordinator_keys(vec![StrBytes::from_static_str("rf-group")]);
        let r: FindCoordinatorResponse = wire::Conn::connect(addr)
            .unwrap()
            .request(ApiKey::FindCoordinator, 4, &req)
            .unwrap();
        r.coordinators[0].error_code
    };
    // Twice, so the first request's creation attempt has had its chance to fail.
    for _ in 0..2 {
        assert_eq!(
            find(&addr),
            15,
            "COORDINATOR_NOT_AVAILABLE with 2 of 3 brokers"
        );
    }
    assert!(
        cluster
            .zk()
            .exists("/brokers/topics/__consumer_offsets")
            .unwrap()
            .is_none(),
        "__consumer_offsets not created with too few brokers"
    );
    cluster.broker(3).start().unwrap();
    util::wait_until("FindCoordinator to succeed with 3 brokers", T, || {
        (find(&addr) == 0).then_some(())
    });
    let t = cluster
        .zk()
        .json("/brokers/topics/__consumer_offsets")
        .unwrap();
    assert!(
        t["partitions"]
            .as_object()
            .unwrap()
            .values()
            .all(|r| r.as_array().map(Vec::len) == Some(3)),
        "{t}"
    );
    let b = cluster.bootstrap();
    create_topic(&b, "rft", 1, 3, &[]);
    let c: BaseConsumer = client_config(&b)
        .set("group.id", "rf-group")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("rft", 0, Offset::Offset(0))
        .unwrap();
    c.commit(&tpl, CommitMode::Sync).unwrap();
    assert_eq!(committed(&b, "rf-group", "rft", 1)[&0].0, 0);
    cluster.finish();
}

/// A child process killed when the test ends (or panics), with a watchdog in case the test binary dies.
struct KillOnDrop(std::process::Child, Option<std::process::Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        if let Some(w) = self.1.as_mut() {
            let _ = w.kill();
            let _ = w.wait();
        }
    }
}

/// A member whose process is killed with -9 sends no LeaveGroup: the coordinator removes it when its
/// session expires, and the surviving librdkafka member takes over all partitions; DescribeGroups then
/// shows one member.
#[test]
fn killed_member_is_removed_on_session_expiry() {
    use std::io::BufRead;
    let cluster = three_brokers("grpsess");
    let b = cluster.bootstrap();
    create_topic(&b, "sess", 4, 3, &[]);
    let a: BaseConsumer = client_config(&b)
        .set("group.id", "sessg")
        .set("client.id", "survivor")
        .set("partition.assignment.strategy", "range")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "300")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    a.subscribe(&["sess"]).unwrap();
    let parts = |c: &BaseConsumer| -> usize { c.assignment().unwrap().count() };
    util::wait_until("the survivor to own 4 partitions", T, || {
        a.poll(Duration::from_millis(20));
        (parts(&a) == 4).then_some(())
    });
    let mut child =
        std::process::Command::new(std::env::var("PYTHON").unwrap_or_else(|_| "python3".into()))
            .arg(clients::python_dir().join("kafka_python_member.py"))
            .args([b.as_str(), "sess", "sessg"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
    let out = child.stdout.take().unwrap();
    let watchdog = util::spawn_watchdog(child.id());
    let mut child = KillOnDrop(child, watchdog);
    let (tx, rx) = std::sync::mpsc::channel::<Value>();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str(&line) {
                let _ = tx.send(v);
            }
        }
    });
    let mut py_parts = 0;
    util::wait_until("the Python member to get 2 partitions", T, || {
        a.poll(Duration::from_millis(20));
        while let Ok(v) = rx.try_recv() {
            py_parts = v["partitions"].as_array().unwrap().len();
        }
        (py_parts == 2 && parts(&a) == 2).then_some(())
    });
    child.0.kill().unwrap(); // SIGKILL: no LeaveGroup
    child.0.wait().unwrap();
    let members = util::wait_until("the survivor to own 4 partitions again", T, || {
        a.poll(Duration::from_millis(20));
        if parts(&a) != 4 {
            return None;
        }
        let gl = a
            .fetch_group_list(Some("sessg"), Duration::from_secs(5))
            .ok()?;
        let g = gl.groups().iter().find(|g| g.name() == "sessg")?;
        (g.state() == "Stable").then(|| {
            g.members()
                .iter()
                .map(|m| m.client_id().to_string())
                .collect::<Vec<_>>()
        })
    });
    assert_eq!(members, vec!["survivor".to_string()]);
    drop(a);
    cluster.finish();
}
