//! Cluster fault scenarios (issue #4): a controller deposed while its process is paused past its
//! ZooKeeper session, follower truncation after an unclean leader change, and a partition
//! reassignment under load. Every broker runs with a 6 s ZooKeeper session.

use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{FutureProducer, FutureRecord};
use samsa_integration_tests::{clients, util, Cluster};
use serde_json::Value;

use crate::cluster::{
    check_no_loss_no_dup, consume_all, leader_of, read_partition0, state, wait_isr, ProduceLoop, T,
};
use crate::common::{client_config, rt, wait_for_leaders};

/// `n` brokers (ids 1..=n) with `extra` properties, all registered.
fn brokers(name: &str, n: i32, extra: &[(&str, &str)]) -> Cluster {
    let mut b = Cluster::builder(name).brokers(n);
    for (k, v) in extra {
        b = b.prop(k, v);
    }
    let c = b.start();
    c.wait_registered(T);
    c
}

/// CreateTopics with an explicit replica assignment (one replica list per partition).
pub(crate) fn create_assigned(
    bootstrap: &str,
    name: &str,
    assignment: &[&[i32]],
    configs: &[(&str, &str)],
) {
    let admin: AdminClient<DefaultClientContext> = client_config(bootstrap).create().unwrap();
    let mut nt = NewTopic::new(
        name,
        assignment.len() as i32,
        TopicReplication::Variable(assignment),
    );
    for (k, v) in configs {
        nt = nt.set(k, v);
    }
    let opts = AdminOptions::new().operation_timeout(Some(T));
    let res = rt()
        .block_on(admin.create_topics([&nt], &opts))
        .expect("CreateTopics request");
    for r in res {
        if let Err((t, code)) = r {
            panic!("CreateTopics {t}: {code:?}");
        }
    }
    wait_for_leaders(bootstrap, name, assignment.len());
}

fn controller_epoch(c: &Cluster) -> Option<i64> {
    c.zk()
        .get("/controller_epoch")
        .ok()??
        .text()
        .trim()
        .parse()
        .ok()
}

fn controller_id(c: &Cluster) -> Option<i32> {
    Some(c.zk().json("/controller").ok()?["brokerid"].as_i64()? as i32)
}

fn isr_of(s: &Value) -> Vec<i32> {
    s["isr"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| r.as_i64())
                .map(|r| r as i32)
                .collect()
        })
        .unwrap_or_default()
}

fn addrs(c: &Cluster, ids: &[i32]) -> String {
    c.brokers
        .iter()
        .filter(|b| b.id.is_some_and(|id| ids.contains(&id)))
        .map(|b| b.addr())
        .collect::<Vec<_>>()
        .join(",")
}

/// The controller's process is frozen (SIGSTOP) longer than its ZooKeeper session, so the other
/// brokers elect a successor with a higher `/controller_epoch`, move leadership off it and shrink the
/// ISRs. After SIGCONT the old controller finds its session expired: it must not write any state
/// (every state znode ends with the successor's epoch, `/controller` and `/controller_epoch` stay the
/// successor's), it re-registers with a new broker epoch and rejoins every ISR, and the cluster keeps
/// serving an idempotent acks=all producer (nothing acknowledged lost or duplicated) and topic creation.
/// Five brokers: the successor is elected among four.
#[test]
fn deposed_controller_paused_past_session_expiry_cannot_write_and_rejoins() {
    let mut c = brokers(
        "c-depose",
        5,
        &[
            ("auto.leader.rebalance.enable", "false"),
            ("replica.lag.time.max.ms", "4000"),
        ],
    );
    let old = util::wait_until("/controller", T, || controller_id(&c));
    let e0 = controller_epoch(&c).unwrap();
    let others: Vec<i32> = (1..=5).filter(|i| *i != old).collect();
    // Partition 0 is led by the controller's broker, partition 1 has it as a follower.
    let p0 = [old, others[0], others[1]];
    let p1 = [others[2], old, others[3]];
    let b = c.bootstrap();
    create_assigned(&b, "dep", &[&p0, &p1], &[("min.insync.replicas", "2")]);
    for p in 0..2 {
        util::wait_until("ISR of 3", T, || {
            (isr_of(&state(&c, "dep", p)?).len() == 3).then_some(())
        });
    }
    let epochs0: Vec<i64> = (0..2)
        .map(|p| {
            state(&c, "dep", p).unwrap()["leader_epoch"]
                .as_i64()
                .unwrap()
        })
        .collect();
    let reg_path = format!("/brokers/ids/{old}");
    let czxid0 = c.zk().exists(&reg_path).unwrap().unwrap().czxid;

    let p = ProduceLoop::start(&b, "dep");
    p.wait_progress(100, T);
    c.broker(old).signal(Signal::SIGSTOP).unwrap();
    let paused = Instant::now();

    // The others elect a successor with the next epoch once the session has expired.
    let new = util::wait_until("a new controller", T, || {
        controller_id(&c).filter(|id| *id != old)
    });
    let e1 = util::wait_until("controller epoch bump", T, || {
        controller_epoch(&c).filter(|e| *e > e0)
    });
    assert_eq!(e1, e0 + 1);
    assert!(
        c.zk().exists(&reg_path).unwrap().is_none(),
        "the paused broker's registration expired with its session"
    );
    util::wait_until("leadership and ISR moved off the paused broker", T, || {
        (0..2)
            .all(|p| {
                state(&c, "dep", p).is_some_and(|s| {
                    s["leader"].as_i64() != Some(old as i64) && !isr_of(&s).contains(&old)
                })
            })
            .then_some(())
    });
    for p in 0..2 {
        let s = state(&c, "dep", p).unwrap();
        assert_eq!(s["controller_epoch"].as_i64(), Some(e1), "dep-{p}: {s}");
        assert!(
            s["leader_epoch"].as_i64().unwrap() > epochs0[p as usize],
            "{s}"
        );
    }
    // The successor serves topic creation while the old controller is frozen.
    let live = addrs(&c, &others);
    create_assigned(&live, "dep-new", &[&others[..3]], &[]);
    // (The producer is stuck on requests in flight to the frozen leader until it answers them.)
    eprintln!("deposed controller: paused for {:?}", paused.elapsed());
    c.broker(old).signal(Signal::SIGCONT).unwrap();

    // It notices the expiry, re-registers (new czxid = new broker epoch) and rejoins the ISRs.
    util::wait_until("re-registration", T, || {
        c.zk()
            .exists(&reg_path)
            .ok()??
            .czxid
            .ne(&czxid0)
            .then_some(())
    });
    util::wait_until(
        "resumed broker back in every ISR",
        Duration::from_secs(60),
        || {
            (0..2)
                .all(|p| state(&c, "dep", p).is_some_and(|s| isr_of(&s).contains(&old)))
                .then_some(())
        },
    );
    p.wait_progress(300, Duration::from_secs(60));
    let r = p.finish();

    // Nothing the old controller could have written survives: the successor still rules.
    assert_eq!(controller_id(&c), Some(new), "/controller");
    assert_eq!(controller_epoch(&c), Some(e1), "/controller_epoch");
    for (t, n) in [("dep", 2), ("dep-new", 1)] {
        for p in 0..n {
            let s = state(&c, t, p).unwrap();
            assert_eq!(s["controller_epoch"].as_i64(), Some(e1), "{t}-{p}: {s}");
        }
    }
    // And it keeps serving: topic creation through the resumed broker's listener too.
    create_assigned(&addrs(&c, &[old]), "dep-after", &[&[old, new]], &[]);
    let s = util::wait_until("state of dep-after", T, || state(&c, "dep-after", 0));
    assert_eq!(s["controller_epoch"].as_i64(), Some(e1), "{s}");

    assert!(r.errors.is_empty(), "producer errors: {:?}", r.errors);
    let consumed = consume_all(&b, "dep");
    check_no_loss_no_dup(&r.acked, &consumed);
    eprintln!(
        "deposed controller: {} acked, longest produce stall {:?}",
        r.acked.len(),
        r.longest_stall
    );
    c.finish();
}

/// Sends `values` to partition 0 of `topic` one by one with `acks`; panics on any error.
fn produce_values(bootstrap: &str, topic: &str, acks: &str, values: &[String]) {
    let producer: FutureProducer = client_config(bootstrap)
        .set("acks", acks)
        .set("enable.idempotence", "false")
        .set("message.timeout.ms", "30000")
        .create()
        .unwrap();
    rt().block_on(async {
        for v in values {
            let rec = FutureRecord::to(topic).partition(0).key(v).payload(v);
            if let Err((e, _)) = producer.send(rec, Duration::from_secs(30)).await {
                panic!("produce {v} to {topic}: {e}");
            }
        }
    });
}

/// Name → contents of every `.log` segment and the leader-epoch checkpoint of a partition dir.
fn partition_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    (name.ends_with(".log") || name == "leader-epoch-checkpoint")
                        .then(|| (name, std::fs::read(e.path()).unwrap_or_default()))
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Kafka's leader-epoch truncation (spec §4.6) after an unclean leader change, RF 2 on brokers
/// {1,2}: both replicate a common prefix; 2 stops, 1 alone takes records (acks=1) and is killed;
/// 2 comes back and, with `unclean.leader.election.enable=true`, is elected leader with a higher
/// epoch and takes different records; 1 returns as a follower. 1 must cut its divergent suffix at
/// the end of the shared epoch and end byte-identical to 2 (segments and leader-epoch checkpoint),
/// and both serve the same offsets and values (1 as leader again after a preferred ElectLeaders).
#[test]
fn unclean_leader_change_truncates_divergent_follower_suffix() {
    let mut c = brokers("c-unclean", 2, &[("auto.leader.rebalance.enable", "false")]);
    create_assigned(
        &c.bootstrap(),
        "uc",
        &[&[1, 2]],
        &[
            ("unclean.leader.election.enable", "true"),
            ("min.insync.replicas", "1"),
        ],
    );
    let s0 = wait_isr(&c, "uc", 2, T);
    assert_eq!(s0["leader"], 1, "{s0}");
    let common: Vec<String> = (0..40).map(|i| format!("common-{i}")).collect();
    produce_values(&c.bootstrap(), "uc", "all", &common);

    // 2 stops (controlled shutdown): 1 leads alone and takes records 2 never sees.
    c.broker(2).stop(T).unwrap();
    let s1 = util::wait_until("ISR [1]", T, || {
        state(&c, "uc", 0).filter(|s| isr_of(s) == vec![1])
    });
    let only_1: Vec<String> = (0..25).map(|i| format!("lost-on-1-{i}")).collect();
    produce_values(&addrs(&c, &[1]), "uc", "1", &only_1);
    let uc1 = c.broker(1).log_dir.join("uc-0");
    let uc2 = c.broker(2).log_dir.join("uc-0");
    let size_1 = |d: &Path| -> u64 {
        partition_files(d)
            .iter()
            .filter(|(n, _)| n.ends_with(".log"))
            .map(|(_, b)| b.len() as u64)
            .sum()
    };
    let diverged_size = size_1(&uc1);
    c.broker(1).kill9();
    c.zk().wait_gone("/brokers/ids/1", T);

    // 2 returns alone: no in-sync replica is alive, so it is elected uncleanly, epoch bumped.
    c.broker(2).start().unwrap();
    let s2 = util::wait_until("unclean election of 2", T, || {
        state(&c, "uc", 0).filter(|s| s["leader"] == 2)
    });
    assert_eq!(s2["isr"], serde_json::json!([2]), "{s2}");
    assert_eq!(
        s2["leader_recovery_state"], 1,
        "RECOVERING after an unclean election: {s2}"
    );
    assert!(
        s2["leader_epoch"].as_i64() > s1["leader_epoch"].as_i64(),
        "{s1} -> {s2}"
    );
    let only_2: Vec<String> = (0..15).map(|i| format!("kept-on-2-{i}")).collect();
    produce_values(&addrs(&c, &[2]), "uc", "all", &only_2);

    // 1 rejoins as a follower, truncates to the shared prefix and copies 2's records.
    c.restart_killed(1).unwrap();
    let s3 = wait_isr(&c, "uc", 2, Duration::from_secs(60));
    assert!(
        s3["leader_recovery_state"].is_null(),
        "RECOVERED with the ISR expansion: {s3}"
    );
    let f2 = partition_files(&uc2);
    assert!(!f2.is_empty(), "no segment on 2");
    util::wait_until(
        "follower 1 byte-identical to leader 2",
        Duration::from_secs(30),
        || (partition_files(&uc1) == f2).then_some(()),
    );
    assert!(
        size_1(&uc1) != diverged_size,
        "1's log still has its divergent size"
    );
    let expected: Vec<(i64, String)> = common
        .iter()
        .chain(&only_2)
        .enumerate()
        .map(|(i, v)| (i as i64, v.clone()))
        .collect();
    assert_eq!(
        read_partition0(&c.bootstrap(), "uc"),
        expected,
        "read from leader 2"
    );

    // Leadership back to the preferred replica 1 (Java Admin electLeaders): 1 serves exactly
    // the same records.
    let r = clients::java(
        "AdminOps",
        &[c.bootstrap(), "uc".into(), "elect_preferred:0".into()],
        Duration::from_secs(120),
    )
    .unwrap();
    assert!(r["elect_preferred:0"]["error"].is_null(), "{r}");
    assert_eq!(
        leader_of(&c, "uc"),
        1,
        "elected leader written before the answer"
    );
    assert_eq!(
        read_partition0(&addrs(&c, &[1]), "uc"),
        expected,
        "read from leader 1"
    );
    c.finish();
}

/// Partition reassignment from {1,2,3} to {2,3,4} through the Java Admin client
/// (alterPartitionReassignments) under an idempotent acks=all producer: the assignment and ISR
/// in ZooKeeper end as {2,3,4}, the reassignment is no longer listed, broker 1's replica directory
/// is deleted, and no acknowledged record is lost or duplicated.
#[test]
fn reassignment_to_a_new_replica_set_under_load_loses_nothing() {
    let c = brokers("c-reassign", 4, &[("log.segment.delete.delay.ms", "500")]);
    let b = c.bootstrap();
    create_assigned(&b, "ra", &[&[1, 2, 3]], &[("min.insync.replicas", "2")]);
    wait_isr(&c, "ra", 3, T);
    let p = ProduceLoop::start(&b, "ra");
    p.wait_progress(200, T);
    let r = clients::java(
        "AdminOps",
        &[b.clone(), "ra".into(), "reassign:0:2,3,4".into()],
        Duration::from_secs(120),
    )
    .unwrap();
    assert_eq!(r["reassign:0:2,3,4"]["ok"], true, "{r}");
    util::wait_until("assignment {2,3,4}", Duration::from_secs(60), || {
        let a = c.zk().json("/brokers/topics/ra").ok()?;
        let reps = a["partitions"]["0"].as_array()?.clone();
        let done = reps.len() == 3 && a["adding_replicas"]["0"].is_null();
        done.then_some(a)
    });
    let a = c.zk().json("/brokers/topics/ra").unwrap();
    let mut reps: Vec<i64> = a["partitions"]["0"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_i64().unwrap())
        .collect();
    reps.sort();
    assert_eq!(reps, vec![2, 3, 4], "{a}");
    assert!(
        a["removing_replicas"]
            .as_object()
            .is_none_or(|m| m.is_empty()),
        "{a}"
    );
    let s = util::wait_until("ISR {2,3,4}", T, || {
        let s = state(&c, "ra", 0)?;
        let mut isr = isr_of(&s);
        isr.sort();
        (isr == vec![2, 3, 4]).then_some(s)
    });
    assert!(
        [2, 3, 4].contains(&(s["leader"].as_i64().unwrap() as i32)),
        "{s}"
    );
    assert!(c
        .zk()
        .exists("/admin/reassign_partitions")
        .unwrap()
        .is_none());
    let l = clients::java(
        "AdminOps",
        &[b.clone(), "ra".into(), "list_reassignments".into()],
        Duration::from_secs(120),
    )
    .unwrap();
    assert_eq!(l["list_reassignments"]["ongoing"], 0, "{l}");
    util::wait_until("broker 1's replica deleted", T, || {
        std::fs::read_dir(&c.brokers[0].log_dir)
            .ok()?
            .flatten()
            .all(|e| !e.file_name().to_string_lossy().starts_with("ra-"))
            .then_some(())
    });
    assert!(c.brokers[3].log_dir.join("ra-0").is_dir());
    p.wait_progress(300, T);
    let r = p.finish();
    assert!(r.errors.is_empty(), "producer errors: {:?}", r.errors);
    // A produce left parked on the removed replica would hold the producer for its whole
    // 30 s request timeout (StopReplica must complete it with NOT_LEADER_OR_FOLLOWER).
    assert!(
        r.longest_stall < Duration::from_secs(25),
        "producer stalled {:?}: a request hung on the removed replica",
        r.longest_stall
    );
    let consumed = consume_all(&b, "ra");
    check_no_loss_no_dup(&r.acked, &consumed);
    eprintln!(
        "reassignment: {} acked, longest produce stall {:?}",
        r.acked.len(),
        r.longest_stall
    );
    c.finish();
}

/// Leader-driven ISR changes through AlterPartition: a follower frozen with SIGSTOP (its 20 s
/// ZooKeeper session outlives the pause, so the controller never sees it fail) falls behind for
/// longer than `replica.lag.time.max.ms`; the leader shrinks the ISR, acks=all produce with
/// `min.insync.replicas=2` keeps working, and after SIGCONT the follower catches up and the leader
/// adds it back. Both changes keep the leader epoch (only the partition epoch, the znode version,
/// moves), which tells them apart from the controller's own ISR changes.
#[test]
fn lagging_follower_leaves_and_rejoins_the_isr_through_alter_partition() {
    let mut c = brokers(
        "c-lag",
        3,
        &[
            ("replica.lag.time.max.ms", "2000"),
            ("zookeeper.session.timeout.ms", "20000"),
        ],
    );
    // The frozen follower must not be the controller (the leader's AlterPartition goes there).
    let ctl = util::wait_until("/controller", T, || controller_id(&c));
    let frozen = if ctl == 3 { 2 } else { 3 };
    let others: Vec<i32> = (1..=3).filter(|i| *i != frozen).collect();
    let (leader, other) = (others[0], others[1]);
    create_assigned(
        &c.bootstrap(),
        "lag",
        &[&[leader, other, frozen]],
        &[("min.insync.replicas", "2")],
    );
    let s0 = wait_isr(&c, "lag", 3, T);
    let v0 = c
        .zk()
        .exists("/brokers/topics/lag/partitions/0/state")
        .unwrap()
        .unwrap()
        .version;
    let first: Vec<String> = (0..20).map(|i| format!("a-{i}")).collect();
    produce_values(&c.bootstrap(), "lag", "all", &first);
    c.broker(frozen).signal(Signal::SIGSTOP).unwrap();
    // A follower at the leader's end offset counts as caught up however long it is silent, so
    // the shrink needs new records: the first acks=all send waits until the leader drops it.
    let second: Vec<String> = (0..20).map(|i| format!("b-{i}")).collect();
    produce_values(&addrs(&c, &others), "lag", "all", &second);
    let s1 = util::wait_until("ISR without the frozen follower", T, || {
        state(&c, "lag", 0).filter(|s| isr_of(s) == vec![leader, other])
    });
    assert_eq!(s1["leader"], leader, "{s1}");
    assert_eq!(s1["leader_epoch"], s0["leader_epoch"], "{s0} -> {s1}");
    assert!(
        c.zk()
            .exists(&format!("/brokers/ids/{frozen}"))
            .unwrap()
            .is_some(),
        "the frozen follower's session is still alive: the leader, not the controller, shrank"
    );
    c.broker(frozen).signal(Signal::SIGCONT).unwrap();
    let s2 = util::wait_until("ISR of all three", T, || {
        state(&c, "lag", 0).filter(|s| {
            let mut isr = isr_of(s);
            isr.sort();
            isr == vec![1, 2, 3]
        })
    });
    assert_eq!(s2["leader_epoch"], s0["leader_epoch"], "{s0} -> {s2}");
    let v2 = c
        .zk()
        .exists("/brokers/topics/lag/partitions/0/state")
        .unwrap()
        .unwrap()
        .version;
    assert!(v2 >= v0 + 2, "two ISR writes: version {v0} -> {v2}");
    let expected: Vec<(i64, String)> = first
        .iter()
        .chain(&second)
        .enumerate()
        .map(|(i, v)| (i as i64, v.clone()))
        .collect();
    assert_eq!(read_partition0(&c.bootstrap(), "lag"), expected);
    // The rejoined follower holds the same bytes as the leader.
    let f1 = partition_files(&c.broker(leader).log_dir.join("lag-0"));
    let fdir = c.broker(frozen).log_dir.join("lag-0");
    util::wait_until("rejoined follower byte-identical to the leader", T, || {
        (partition_files(&fdir) == f1).then_some(())
    });
    c.finish();
}

/// `auto.leader.rebalance.enable` (default true) with a 1 s imbalance check: after the preferred
/// leader's controlled shutdown moved leadership away, its return makes its imbalance 100 % (above
/// `leader.imbalance.per.broker.percentage` 10), so once it is back in the ISR the controller runs a
/// preferred election and it leads again with a higher leader epoch.
#[test]
fn auto_leader_rebalance_moves_leadership_back_to_the_preferred_replica() {
    let mut c = brokers(
        "c-rebal",
        3,
        &[("leader.imbalance.check.interval.seconds", "1")],
    );
    create_assigned(&c.bootstrap(), "rb", &[&[2, 3, 1]], &[]);
    let s0 = wait_isr(&c, "rb", 3, T);
    assert_eq!(s0["leader"], 2, "{s0}");
    c.broker(2).stop(T).unwrap();
    let s1 = util::wait_until("leadership moved off 2", T, || {
        state(&c, "rb", 0).filter(|s| s["leader"] != 2 && s["leader"].as_i64() >= Some(0))
    });
    c.broker(2).start().unwrap();
    let s2 = util::wait_until("2 leads again", Duration::from_secs(60), || {
        state(&c, "rb", 0).filter(|s| s["leader"] == 2)
    });
    assert!(
        s2["leader_epoch"].as_i64() > s1["leader_epoch"].as_i64(),
        "{s1} -> {s2}"
    );
    let mut isr = isr_of(&s2);
    isr.sort();
    assert_eq!(isr, vec![1, 2, 3], "{s2}");
    wait_for_leaders(&c.bootstrap(), "rb", 1);
    c.finish();
}
