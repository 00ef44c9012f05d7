//! Consumer groups (confluent-kafka) and replication across three brokers (kill -9 of a leader).

use std::time::Duration;

use samsa_integration_tests::{clients, util, Cluster};

use crate::common::{create_topic, wait_for_leaders};
use crate::rdkafka_client::{consume_and_check, produce};

const T: Duration = Duration::from_secs(30);

/// Three range-assignor members of one group, with Kafka's default initial rebalance delay (3 s) so they
/// join one generation: each gets 2 of 6 partitions (disjoint, complete). Records are produced only after
/// the assignment is stable, so each is consumed exactly once, and the synchronous commits are read back.
#[test]
fn consumer_group_assigns_disjoint_complete_partitions_and_commits() {
    let cluster = Cluster::builder("group")
        .prop("group.initial.rebalance.delay.ms", "3000")
        .start();
    let b = cluster.bootstrap();
    create_topic(&b, "grp", 6, 1, &[]);
    wait_for_leaders(&b, "grp", 6);
    let mut args = vec![b.clone()];
    args.extend(["grp", "g1", "3", "6", "20"].map(String::from));
    let r = clients::python("confluent_group.py", &args, Duration::from_secs(150)).unwrap();
    let mut all: Vec<i64> = Vec::new();
    for a in r["assignments"].as_array().unwrap() {
        let a: Vec<i64> = a
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        assert_eq!(
            a.len(),
            2,
            "range assignor gives each of 3 members 2 of 6 partitions: {r}"
        );
        all.extend(a);
    }
    all.sort();
    assert_eq!(
        all,
        (0..6).collect::<Vec<i64>>(),
        "disjoint and complete: {r}"
    );
    assert_eq!(r["consumed"], 120);
    assert_eq!(r["duplicates"], 0);
    for p in 0..6 {
        assert_eq!(
            r["committed"][p.to_string()],
            20,
            "committed offset of partition {p}: {r}"
        );
    }
    cluster.finish();
}

/// RF 3, min.insync.replicas 2: kill -9 the leader between acks=all batches; nothing acknowledged is lost,
/// offsets stay contiguous, the state znode moves leadership with a higher leader_epoch; the old leader rejoins
/// the ISR after restart and every replica's segment ends up byte-identical.
#[test]
fn replication_survives_leader_kill_and_replicas_converge() {
    let mut cluster = Cluster::builder("repl")
        .brokers(3)
        .prop("replica.lag.time.max.ms", "10000")
        .start();
    cluster.wait_registered(T);
    let b = cluster.bootstrap();
    create_topic(&b, "rep", 1, 3, &[("min.insync.replicas", "2")]);
    let zk_state = |cluster: &Cluster| {
        cluster
            .zk()
            .json("/brokers/topics/rep/partitions/0/state")
            .unwrap()
    };
    util::wait_until("ISR of 3", T, || {
        (zk_state(&cluster)["isr"].as_array()?.len() == 3).then_some(())
    });
    assert_eq!(
        produce(&b, "rep", 100, "lz4", "all"),
        (0..100).collect::<Vec<i64>>()
    );
    let before = zk_state(&cluster);
    let leader = before["leader"].as_i64().unwrap() as i32;
    cluster.broker(leader).kill9();
    let after = util::wait_until("new leader in ZooKeeper", T, || {
        let s = zk_state(&cluster);
        (s["leader"].as_i64()? as i32 != leader && s["leader"].as_i64()? >= 0).then_some(s)
    });
    // +1 for the election; +2 when the killed leader was also the controller, because the new
    // controller's replica state machine first removes the dead replica from the ISR (leader -1,
    // epoch +1) and only then elects (epoch +1) -- Kafka's onControllerFailover does the same.
    let bump = after["leader_epoch"].as_i64().unwrap() - before["leader_epoch"].as_i64().unwrap();
    assert!(
        (1..=2).contains(&bump),
        "leader epoch moved by {bump}: {before} -> {after}"
    );
    assert!(!after["isr"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r.as_i64() == Some(leader as i64)));
    wait_for_leaders(&b, "rep", 1);
    assert_eq!(
        produce(&b, "rep", 100, "none", "all"),
        (100..200).collect::<Vec<i64>>()
    );
    consume_and_check(&b, "rep", 0, 100);
    consume_and_check(&b, "rep", 100, 100);

    cluster.restart_killed(leader).unwrap();
    util::wait_until(
        "old leader back in the ISR",
        Duration::from_secs(60),
        || (zk_state(&cluster)["isr"].as_array()?.len() == 3).then_some(()),
    );
    let seg = "rep-0/00000000000000000000.log";
    let files: Vec<_> = cluster
        .brokers
        .iter()
        .map(|b| b.log_dir.join(seg))
        .collect();
    util::wait_until("identical segment files on all replicas", T, || {
        let bytes: Vec<Vec<u8>> = files
            .iter()
            .map(|f| std::fs::read(f).ok())
            .collect::<Option<_>>()?;
        (!bytes[0].is_empty() && bytes.iter().all(|x| *x == bytes[0])).then_some(())
    });
    cluster.finish();
}
