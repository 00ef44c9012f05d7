//! The harness itself: ZooKeeper fixture and ZooKeeper client.

use std::time::Duration;

use samsa_integration_tests::{util, Zk, ZkFixture};
use zookeeper_client::CreateMode;

#[test]
fn zookeeper_fixture_serves_sessions_and_ephemerals_vanish() {
    let zkf = ZkFixture::shared();
    let chroot = format!("/{}", util::unique("smoke"));
    let a = Zk::connect(&zkf.connect_string(), &chroot).unwrap();
    a.create("/x/y", b"{\"v\":1}", CreateMode::Persistent)
        .unwrap();
    a.create("/eph", b"", CreateMode::Ephemeral).unwrap();
    let b = Zk::connect(&zkf.connect_string(), &chroot).unwrap();
    assert_eq!(b.json("/x/y").unwrap()["v"], 1);
    let eph = b.get("/eph").unwrap().expect("ephemeral visible");
    assert_eq!(eph.stat.ephemeral_owner, a.session_id());
    assert_eq!(b.children("/").unwrap().unwrap(), vec!["eph", "x"]);
    drop(a);
    b.wait_gone("/eph", Duration::from_secs(15));
    assert!(b.exists("/x/y").unwrap().is_some());
}

#[test]
fn broker_starts_answers_api_versions_and_registers() {
    let cluster = samsa_integration_tests::Cluster::single("smoke");
    let r = samsa_integration_tests::wire::api_versions(&cluster.brokers[0].addr()).unwrap();
    assert_eq!(r.error_code, 0);
    // ApiVersions advertises itself with Kafka 3.9's range (0..=4).
    let av = r
        .api_keys
        .iter()
        .find(|k| k.api_key == 18)
        .expect("ApiVersions listed");
    assert_eq!((av.min_version, av.max_version), (0, 4));
    cluster
        .zk()
        .wait_for("/brokers/ids/1", Duration::from_secs(30));
    cluster.finish();
}

/// The broker raises its soft open-files limit to the hard limit at start-up and logs it
/// (thousands of partitions need far more descriptors than a 1,024 default).
#[test]
fn broker_raises_its_open_files_limit_to_the_hard_limit() {
    let hard: u64 = 8192;
    let spec = samsa_integration_tests::BrokerSpec::id(1).open_files_limit(512, hard);
    let mut cluster = samsa_integration_tests::Cluster::builder("nofile")
        .specs(vec![spec])
        .start();
    let pid = cluster.broker(1).pid().expect("broker running");
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("open-files line in /proc/PID/limits");
    let nums: Vec<u64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert_eq!(nums, vec![hard, hard], "limits line: {line}");
    let log = cluster.broker(1).log_text();
    assert!(
        log.contains("Raised the open-files limit (RLIMIT_NOFILE) from 512 to the hard limit 8192"),
        "no limit line in the broker log"
    );
    cluster.finish();
}
