//! A log dir that fills up under load (Kafka 3.9, ZK mode): the broker takes the dir's
//! partitions offline and tells the controller through `/log_dir_event_notification`; the
//! controller moves leadership and ISR membership off the failed replicas, which Metadata then
//! lists as offline. A broker left with no online dir halts (exit status 1), one with another
//! dir keeps serving it.
//!
//! The disk "fills" through `RLIMIT_FSIZE` (no mount privileges needed): samsa-broker ignores
//! SIGXFSZ, so the segment write that would pass the limit fails with EFBIG, an I/O error handled
//! like ENOSPC. Index files are preallocated to `log.index.size.max.bytes`, so that is set well
//! below the limit and the failure happens on a segment append, never at start-up.

use std::path::{Path, PathBuf};
use std::time::Duration;

use kafka_protocol::messages::{ApiKey, DescribeLogDirsRequest, DescribeLogDirsResponse};
use rdkafka::producer::{FutureProducer, FutureRecord};
use samsa_integration_tests::broker::BrokerSpec;
use samsa_integration_tests::wire::Conn;
use samsa_integration_tests::{util, Cluster};

use crate::cluster::{check_no_loss_no_dup, consume_all, state, wait_isr, ProduceLoop};
use crate::cluster_faults::create_assigned;
use crate::common::{client_config, rt};

/// The failing broker's per-file size limit.
const LIMIT: u64 = 4 << 20;
/// Generous: CI runs this beside other tests on two cores.
const T: Duration = Duration::from_secs(120);

/// Brokers 1..=3; broker 1 runs with `RLIMIT_FSIZE` and `dirs` log dirs.
fn cluster(name: &str, dirs: usize) -> Cluster {
    let failing = BrokerSpec::id(1)
        .jbod(dirs)
        .file_size_limit(LIMIT)
        .prop("log.index.size.max.bytes", 1 << 20);
    let c = Cluster::builder(name)
        .specs(vec![failing, BrokerSpec::id(2), BrokerSpec::id(3)])
        // Nothing moves leadership back to broker 1 behind the test's back.
        .prop("auto.leader.rebalance.enable", "false")
        .start();
    c.wait_registered(T);
    c
}

/// The broker 1 log dir holding `<topic>-0` (waits: metadata can show the leader before broker 1
/// has applied its LeaderAndIsr).
fn dir_of(c: &mut Cluster, topic: &str) -> PathBuf {
    let dirs = c.broker(1).log_dirs.clone();
    util::wait_until(&format!("{topic}-0 on broker 1"), T, || {
        dirs.iter()
            .find(|d| d.join(format!("{topic}-0")).is_dir())
            .cloned()
    })
}

/// Size of the (only) segment of a partition dir.
fn segment_bytes(partition_dir: &Path) -> u64 {
    std::fs::metadata(partition_dir.join("00000000000000000000.log"))
        .map(|m| m.len())
        .unwrap_or(0)
}

/// `(leader, offline replicas)` of `<topic>-0` in a Metadata v12 answer from `addr`.
fn metadata_view(addr: &str, topic: &str) -> Option<(i32, Vec<i32>)> {
    let p = crate::cluster::metadata_partition0(addr, topic)?;
    let mut offline: Vec<i32> = p.offline_replicas.iter().map(|b| b.0).collect();
    offline.sort();
    Some((p.leader_id.0, offline))
}

/// Waits until every broker in `addrs` serves `<topic>-0` led by someone other than 1 with
/// broker 1's replica offline.
fn wait_offline_in_metadata(addrs: &[String], topic: &str) {
    for a in addrs {
        util::wait_until(
            &format!("{a}: {topic}-0 replica 1 offline in Metadata"),
            T,
            || {
                let (leader, offline) = metadata_view(a, topic)?;
                (leader >= 0 && leader != 1 && offline == vec![1]).then_some(())
            },
        );
    }
}

/// Waits until the controller has moved `<topic>-0` off broker 1 (leader and ISR).
fn wait_moved_off_broker1(c: &Cluster, topic: &str) -> i32 {
    util::wait_until(
        &format!("{topic}-0 leadership and ISR off broker 1"),
        T,
        || {
            let s = state(c, topic, 0)?;
            let leader = s["leader"].as_i64()? as i32;
            let isr: Vec<i64> = s["isr"]
                .as_array()?
                .iter()
                .filter_map(|v| v.as_i64())
                .collect();
            (leader >= 0 && leader != 1 && !isr.contains(&1)).then_some(leader)
        },
    )
}

/// Produces with acks=all through the fill-up and the failover, then checks that every
/// acknowledged record can be read back (from the new leader) exactly once.
fn produce_through_failure(c: &Cluster, topic: &str) -> usize {
    let b = c.bootstrap();
    let p = ProduceLoop::start_padded(&b, topic, 4000);
    // ~4 KiB records: about 1000 fill broker 1's segment up to the limit, so this many acks
    // means the producer went through the failure and kept going on the new leader.
    p.wait_progress(1500, T);
    let r = p.finish();
    assert!(r.errors.is_empty(), "producer errors: {:?}", r.errors);
    let consumed = consume_all(&b, topic);
    check_no_loss_no_dup(&r.acked, &consumed);
    eprintln!(
        "log dir failure: {} acked, {} consumed, longest stall {:?}",
        r.acked.len(),
        consumed.len(),
        r.longest_stall
    );
    r.acked.len()
}

/// The failing broker's expected ERROR lines.
fn allow_failure_errors(c: &mut Cluster) {
    let b = c.broker(1);
    for pattern in [
        "Stopped serving replicas in dir",
        "Shutdown broker because all log dirs",
        "I/O error in the log of full-0",
    ] {
        b.allow_error(pattern);
    }
}

/// One log dir, full: the broker halts like Kafka (exit status 1); after its ZooKeeper session
/// expires the controller elects a new leader, and the producer carries on there.
#[test]
fn full_only_log_dir_halts_the_broker_and_leadership_moves() {
    let mut c = cluster("ld-halt", 1);
    let b = c.bootstrap();
    create_assigned(&b, "full", &[&[1, 2, 3]], &[]);
    wait_isr(&c, "full", 3, T);
    let seg_dir = dir_of(&mut c, "full").join("full-0");
    allow_failure_errors(&mut c);
    let acked = produce_through_failure(&c, "full");
    // The producer has gone past the limit, so broker 1 has failed: it halted.
    let status = c.broker(1).wait_exit(T).expect("broker 1 halted");
    assert_eq!(status.code(), Some(1), "halt status: {status}");
    let log = c.broker(1).log_text();
    assert!(
        log.contains("Shutdown broker because all log dirs"),
        "no halt message in broker 1's log"
    );
    let size = segment_bytes(&seg_dir);
    assert!(
        size <= LIMIT && size > LIMIT / 2,
        "the failure came from the segment reaching the limit ({size} bytes)"
    );
    wait_moved_off_broker1(&c, "full");
    let addrs: Vec<String> = c.brokers[1..].iter().map(|b| b.addr()).collect();
    wait_offline_in_metadata(&addrs, "full");
    assert!(acked >= 1500);
    c.finish();
}

/// Two log dirs, one full: the broker keeps running and serving the other dir; the full dir's
/// partition goes offline (KAFKA_STORAGE_ERROR in DescribeLogDirs), the controller hears of it
/// through `/log_dir_event_notification` and moves its leadership away.
#[test]
fn full_jbod_log_dir_goes_offline_while_the_other_dir_keeps_serving() {
    let mut c = cluster("ld-jbod", 2);
    let b = c.bootstrap();
    create_assigned(&b, "full", &[&[1, 2, 3]], &[]);
    create_assigned(&b, "other", &[&[1, 2, 3]], &[]);
    let full_dir = dir_of(&mut c, "full");
    let other_dir = dir_of(&mut c, "other");
    assert_ne!(full_dir, other_dir, "one partition per dir");
    wait_isr(&c, "full", 3, T);
    wait_isr(&c, "other", 3, T);
    allow_failure_errors(&mut c);

    produce_through_failure(&c, "full");
    let new_leader = wait_moved_off_broker1(&c, "full");
    assert!(c.broker(1).is_running(), "one dir is left: no halt");
    let size = segment_bytes(&full_dir.join("full-0"));
    assert!(
        size <= LIMIT && size > LIMIT / 2,
        "the failure came from the segment reaching the limit ({size} bytes)"
    );
    util::wait_until("broker 1 notified the controller", T, || {
        c.brokers[0]
            .log_text()
            .contains("log dir failure sent to the controller")
            .then_some(())
    });
    // The controller consumed the notification.
    util::wait_until("notifications consumed", T, || {
        c.zk()
            .children("/log_dir_event_notification")
            .ok()?
            .filter(|ch| ch.is_empty())
    });
    let addrs: Vec<String> = c.brokers.iter().map(|b| b.addr()).collect();
    wait_offline_in_metadata(&addrs, "full");

    // DescribeLogDirs on broker 1: the full dir is offline, the other one serves `other-0`.
    let mut conn = Conn::connect(&c.broker(1).addr()).unwrap();
    let mut req = DescribeLogDirsRequest::default();
    req.topics = None; // all partitions
    let resp: DescribeLogDirsResponse = conn.request(ApiKey::DescribeLogDirs, 4, &req).unwrap();
    let find = |d: &Path| {
        resp.results
            .iter()
            .find(|r| Path::new(r.log_dir.as_str()) == d)
            .unwrap_or_else(|| panic!("{} not described: {resp:?}", d.display()))
    };
    let failed = find(&full_dir);
    assert_eq!(
        failed.error_code, 56,
        "KAFKA_STORAGE_ERROR for the full dir"
    );
    assert!(failed.topics.is_empty());
    let ok = find(&other_dir);
    assert_eq!(ok.error_code, 0);
    assert!(
        ok.topics.iter().any(|t| t.name.as_str() == "other"),
        "{ok:?}"
    );

    // `other-0` is still led by broker 1, with its full ISR, and takes acks=all writes.
    let s = state(&c, "other", 0).unwrap();
    assert_eq!(s["leader"].as_i64(), Some(1), "{s}");
    let producer: FutureProducer = client_config(&b)
        .set("acks", "all")
        .set("message.timeout.ms", "60000")
        .create()
        .unwrap();
    rt().block_on(async {
        for i in 0..20 {
            let v = i.to_string();
            producer
                .send(
                    FutureRecord::to("other").partition(0).key(&v).payload(&v),
                    Duration::from_secs(60),
                )
                .await
                .unwrap_or_else(|(e, _)| panic!("produce to other-0: {e}"));
        }
    });
    assert_eq!(consume_all(&b, "other"), (0..20).collect::<Vec<u64>>());
    assert_eq!(
        state(&c, "full", 0).unwrap()["leader"].as_i64(),
        Some(new_leader as i64)
    );
    c.finish();
}

/// Open descriptors of process `pid`.
fn open_fds(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count() as u64)
        .unwrap_or(0)
}

/// Sets `RLIMIT_NOFILE` (soft and hard) of the running process `pid`.
fn set_open_files_limit(pid: u32, limit: u64) {
    let lim = libc::rlimit {
        rlim_cur: limit,
        rlim_max: limit,
    };
    // SAFETY: prlimit reads `lim` and writes nothing (null old-limit pointer).
    #[allow(unsafe_code)]
    let rc = unsafe {
        libc::prlimit(
            pid as libc::pid_t,
            libc::RLIMIT_NOFILE,
            &lim,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
}

/// Acked produce of `0..n` to partition 0 of `topic`.
fn produce_values(bootstrap: &str, topic: &str, n: u64) {
    let producer: FutureProducer = client_config(bootstrap)
        .set("acks", "all")
        .set("message.timeout.ms", "60000")
        .create()
        .unwrap();
    rt().block_on(async {
        for i in 0..n {
            let v = i.to_string();
            producer
                .send(
                    FutureRecord::to(topic).partition(0).key(&v).payload(&v),
                    Duration::from_secs(60),
                )
                .await
                .unwrap_or_else(|(e, _)| panic!("produce to {topic}-0: {e}"));
        }
    });
}

/// Running out of file descriptors (issue 12, bad input at scale): a JBOD broker whose
/// `RLIMIT_NOFILE` is lowered while it runs is asked for more partitions than it has
/// descriptors left. The dir where a log creation hits EMFILE goes offline, with the limit to
/// raise in the log, and its descriptors are closed so the other dir keeps serving and takes
/// the remaining partitions; the broker does not halt. After a restart with the normal limit
/// every record written before is there and every partition has a leader.
#[test]
fn running_out_of_descriptors_takes_one_log_dir_offline() {
    let mut c = Cluster::builder("ld-nofile")
        .specs(vec![BrokerSpec::id(1).jbod(2)])
        .start();
    c.wait_registered(T);
    let b = c.bootstrap();
    create_assigned(&b, "before-a", &[&[1]], &[]);
    create_assigned(&b, "before-b", &[&[1]], &[]);
    let (dir_a, dir_b) = (dir_of(&mut c, "before-a"), dir_of(&mut c, "before-b"));
    assert_ne!(dir_a, dir_b, "one partition per dir");
    produce_values(&b, "before-a", 30);
    produce_values(&b, "before-b", 30);
    for p in [
        "Error while creating the log",
        "Stopped serving replicas in dir",
        "I/O error in the log of",
        "Too many open files",
        "open-files limit",
        // Kafka's LogManager creates no log while any dir is offline (the partition may live
        // there); LeaderAndIsr for a partition not placed yet logs this until the restart.
        "Can not create log for",
    ] {
        c.broker(1).allow_error(p);
    }

    // 100 descriptors to spare, 130 partitions asked for: about 50 logs land in each dir
    // before one hits the limit; closing that dir's frees 50, enough for the other dir to
    // take the last 30.
    let pid = c.broker(1).pid().expect("running");
    set_open_files_limit(pid, open_fds(pid) + 100);
    // The answer may wait on partitions that cannot come up: not waited for.
    let addr = c.brokers[0].addr();
    std::thread::spawn(move || {
        let _ =
            samsa_integration_tests::scale::create_topics(&addr, &["many".to_string()], 130, 1, 1);
    });
    util::wait_until("the limit to raise in the broker log", T, || {
        c.brokers[0]
            .log_text()
            .contains("open-files limit RLIMIT_NOFILE")
            .then_some(())
    });
    // DescribeLogDirs: exactly one dir offline, the other serving `many` partitions.
    let (failed, live) = util::wait_until("one dir offline in DescribeLogDirs", T, || {
        let mut conn = Conn::connect(&c.brokers[0].addr()).ok()?;
        let mut req = DescribeLogDirsRequest::default();
        req.topics = None;
        let resp: DescribeLogDirsResponse = conn.request(ApiKey::DescribeLogDirs, 4, &req).ok()?;
        let failed: Vec<_> = resp.results.iter().filter(|r| r.error_code == 56).collect();
        let live: Vec<_> = resp.results.iter().filter(|r| r.error_code == 0).collect();
        (failed.len() == 1 && live.len() == 1).then(|| (failed[0].clone(), live[0].clone()))
    });
    assert!(c.broker(1).is_running(), "one dir is left: no halt");
    let many_live: Vec<i32> = live
        .topics
        .iter()
        .filter(|t| t.name.as_str() == "many")
        .flat_map(|t| t.partitions.iter().map(|p| p.partition_index))
        .collect();
    assert!(
        !many_live.is_empty(),
        "the live dir holds no `many` partition: {live:?}"
    );
    eprintln!(
        "dir {} offline; dir {} serves {} partitions of `many`",
        failed.log_dir.as_str(),
        live.log_dir.as_str(),
        many_live.len()
    );
    // The surviving dir takes writes.
    let live_before = if Path::new(live.log_dir.as_str()) == dir_a {
        "before-a"
    } else {
        "before-b"
    };
    produce_values(&b, live_before, 5);

    // Restart with the normal limit: nothing lost, every partition led.
    c.broker(1).stop(T).expect("stop");
    c.broker(1).start().expect("restart");
    c.wait_registered(T);
    let want_a: Vec<u64> = if live_before == "before-a" {
        (0..30).chain(0..5).collect()
    } else {
        (0..30).collect()
    };
    let want_b: Vec<u64> = if live_before == "before-b" {
        (0..30).chain(0..5).collect()
    } else {
        (0..30).collect()
    };
    let addr = c.brokers[0].addr();
    util::wait_until(
        "all 130 partitions of `many` led after the restart",
        T,
        || {
            let v = samsa_integration_tests::scale::view(&addr)?;
            (v.iter()
                .filter(|((t, _), (l, _))| t == "many" && *l == 1)
                .count()
                == 130)
                .then_some(())
        },
    );
    assert_eq!(consume_all(&b, "before-a"), want_a);
    assert_eq!(consume_all(&b, "before-b"), want_b);
    c.finish();
}
