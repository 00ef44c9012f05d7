//! Many partitions (issue 12): a controlled shutdown, a controller failover and restarts
//! with a few thousand partitions, every partition checked on every live broker for a live
//! leader and the expected ISR, and served (one Produce per leader naming all it leads).
//! `SCALE_E2E_PARTITIONS` overrides the partition count (default [`PARTITIONS`]).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use samsa_integration_tests::scale::{self, View};
use samsa_integration_tests::Cluster;

/// Partitions in all (topics of [`PER_TOPIC`]), RF 2 over 3 brokers.
const PARTITIONS: i32 = 600;
const PER_TOPIC: i32 = 100;
/// Generous: the suite runs debug brokers on a loaded 2-core machine.
const DEADLINE: Duration = Duration::from_secs(240);

fn addr_of(c: &Cluster, id: i32) -> Option<String> {
    c.brokers
        .iter()
        .find(|b| b.id == Some(id) && b.pid().is_some())
        .map(|b| b.addr())
}

fn live_addrs(c: &Cluster) -> Vec<String> {
    c.brokers
        .iter()
        .filter(|b| b.pid().is_some())
        .map(|b| b.addr())
        .collect()
}

/// Waits until every live broker's view satisfies `ok` for all `n` partitions; returns the
/// controller's view then.
fn wait_views(c: &Cluster, what: &str, n: usize, ok: impl Fn(&View) -> bool) -> View {
    let addrs = live_addrs(c);
    let t = Instant::now();
    scale::until_all(what, &addrs, t, DEADLINE, |v| v.len() == n && ok(v))
        .unwrap_or_else(|e| panic!("{e:#}"));
    println!("{what}: {:.1} s", t.elapsed().as_secs_f64());
    scale::view(&addrs[0]).expect("view")
}

/// Every partition of `view` takes a record from the leader shown.
fn assert_served(c: &Cluster, view: &View, what: &str) {
    let t = Instant::now();
    let failed = scale::produce_to_leaders(view, |id| addr_of(c, id)).expect("produce");
    assert!(
        failed.is_empty(),
        "{what}: {} partitions not served, e.g. {:?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );
    println!(
        "{what}: {} partitions served in {:.1} s",
        view.len(),
        t.elapsed().as_secs_f64()
    );
}

fn full_isrs(v: &View) -> bool {
    v.values().all(|(l, isr)| *l >= 0 && isr.len() == 2)
}

#[test]
fn thousands_of_partitions_survive_shutdown_failover_and_restart() {
    let n: i32 = std::env::var("SCALE_E2E_PARTITIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(PARTITIONS);
    let start = Instant::now();
    let mut c = Cluster::builder("scalee2e")
        .brokers(3)
        .prop("zookeeper.session.timeout.ms", 6000)
        .prop("auto.leader.rebalance.enable", "false")
        .start();
    c.wait_registered(DEADLINE);
    let topics: Vec<String> = (0..n / PER_TOPIC).map(|i| format!("sc{i:03}")).collect();
    let n = topics.len() * PER_TOPIC as usize;
    let ctrl = scale::controller_id(&c.brokers[0].addr()).expect("controller");
    scale::create_topics(&addr_of(&c, ctrl).unwrap(), &topics, PER_TOPIC, 2, 10).unwrap();
    let v = wait_views(&c, "created", n, full_isrs);
    assert_served(&c, &v, "created");

    // Controlled shutdown of a broker that is not the controller.
    let victim = [1, 2, 3].into_iter().find(|&id| id != ctrl).unwrap();
    let led: BTreeSet<(String, i32)> = v
        .iter()
        .filter(|(_, (l, _))| *l == victim)
        .map(|(k, _)| k.clone())
        .collect();
    assert!(!led.is_empty());
    let t = Instant::now();
    let status = c.broker(victim).stop(DEADLINE).unwrap();
    assert!(status.success(), "{status:?}");
    println!(
        "controlled shutdown of {victim} (led {}): exit in {:.1} s",
        led.len(),
        t.elapsed().as_secs_f64()
    );
    let v = wait_views(&c, "after controlled shutdown", n, |v| {
        v.values()
            .all(|(l, isr)| *l >= 0 && *l != victim && !isr.contains(&victim) && !isr.is_empty())
    });
    assert_served(&c, &v, "after controlled shutdown");

    // Clean restart: back in every ISR.
    c.broker(victim).start().unwrap();
    let v = wait_views(&c, "after clean restart", n, full_isrs);
    assert_served(&c, &v, "after clean restart");

    // Controller failover: kill -9 of the controller.
    let ctrl = scale::controller_id(&c.brokers[0].addr()).expect("controller");
    let led_by_ctrl = v.values().filter(|(l, _)| *l == ctrl).count();
    c.broker(ctrl).kill9();
    let t = Instant::now();
    let v = wait_views(&c, "after controller kill -9", n, |v| {
        v.values()
            .all(|(l, isr)| *l >= 0 && *l != ctrl && isr.contains(l))
    });
    println!(
        "failover: the {led_by_ctrl} partitions of {ctrl} led elsewhere {:.1} s after kill -9",
        t.elapsed().as_secs_f64()
    );
    let new_ctrl = scale::controller_id(&live_addrs(&c)[0]).expect("controller");
    assert_ne!(new_ctrl, ctrl);
    assert_served(&c, &v, "after failover");

    // Restart after kill -9: back in every ISR, every partition served.
    c.restart_killed(ctrl).unwrap();
    let v = wait_views(&c, "after unclean restart", n, full_isrs);
    assert_served(&c, &v, "after unclean restart");
    println!("total {:.1} s", start.elapsed().as_secs_f64());
    c.finish();
}

/// CreateTopics v7 of one topic; (error code, message).
fn create_one(
    addr: &str,
    name: &str,
    partitions: i32,
    rf: i16,
    validate_only: bool,
) -> (i16, Option<String>) {
    use kafka_protocol::messages::create_topics_request::CreatableTopic;
    use kafka_protocol::messages::{ApiKey, CreateTopicsRequest, CreateTopicsResponse, TopicName};
    let mut conn = samsa_integration_tests::wire::Conn::connect(addr).unwrap();
    conn.set_read_timeout(Duration::from_secs(120)).unwrap();
    let req = CreateTopicsRequest::default()
        .with_timeout_ms(30_000)
        .with_validate_only(validate_only)
        .with_topics(vec![CreatableTopic::default()
            .with_name(TopicName(name.to_string().into()))
            .with_num_partitions(partitions)
            .with_replication_factor(rf)]);
    let resp: CreateTopicsResponse = conn.request(ApiKey::CreateTopics, 7, &req).unwrap();
    let t = &resp.topics[0];
    (
        t.error_code,
        t.error_message.as_ref().map(|m| m.to_string()),
    )
}

/// A topic whose znode cannot fit ZooKeeper's `jute.maxbuffer` is refused with
/// INVALID_PARTITIONS (37) and leaves ZooKeeper untouched: a count no assignment could fit
/// (refused before one is computed), one whose computed assignment is just too big, and the
/// same as validate_only; the broker keeps serving and a normal topic is still created.
#[test]
fn oversized_create_topics_is_refused_and_changes_nothing() {
    let c = Cluster::single("scalebig");
    c.wait_registered(DEADLINE);
    let addr = c.brokers[0].addr();
    for (name, partitions, validate_only) in [
        ("huge", 1_000_000, false),
        ("huge", i32::MAX, false),
        ("big", 100_000, false),
        ("big", 100_000, true),
    ] {
        let (code, msg) = create_one(&addr, name, partitions, 1, validate_only);
        assert_eq!(code, 37, "{name} {partitions}: {msg:?}");
        let msg = msg.unwrap_or_default();
        assert!(msg.contains("jute.maxbuffer"), "{msg}");
        for path in [
            format!("/brokers/topics/{name}"),
            format!("/config/topics/{name}"),
        ] {
            assert!(c.zk().exists(&path).unwrap().is_none(), "{path} written");
        }
    }
    // Below the limit it works.
    assert_eq!(create_one(&addr, "fits", 20_000, 1, true).0, 0);
    assert_eq!(create_one(&addr, "ok", 3, 1, false).0, 0);
    assert!(c.zk().exists("/brokers/topics/ok").unwrap().is_some());
    c.finish();
}
