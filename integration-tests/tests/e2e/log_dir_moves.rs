//! AlterReplicaLogDirs (Kafka 3.9, ZK mode): a replica moved between two log dirs of a broker
//! while an acks=all librdkafka producer writes to it, through the Java Admin client as
//! `kafka-reassign-partitions.sh` with `log_dirs` does; and Kafka's errors for a dir not in
//! `log.dirs` and a replica the broker does not host.

use std::path::Path;
use std::time::Duration;

use samsa_integration_tests::broker::BrokerSpec;
use samsa_integration_tests::{clients, util, Cluster};
use serde_json::Value;

use crate::cluster::{check_no_loss_no_dup, consume_all, wait_isr, ProduceLoop};
use crate::cluster_faults::create_assigned;

/// Generous: CI runs this beside other tests on two cores.
const T: Duration = Duration::from_secs(120);

fn ops(c: &Cluster, topic: &str, steps: &[String]) -> Value {
    let mut args = vec![c.bootstrap(), topic.to_string()];
    args.extend(steps.iter().cloned());
    clients::java("LogDirsOps", &args, Duration::from_secs(180)).unwrap()
}

/// Names in `dir` that belong to `<topic>-0` (the live dir, `-future`, `-delete`).
fn entries_of(dir: &Path, topic: &str) -> Vec<String> {
    let prefix = format!("{topic}-0");
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                .filter(|n| n == &prefix || n.starts_with(&format!("{prefix}.")))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn replica_moves_between_log_dirs_under_produce_load() {
    let mut c = Cluster::builder("ld-move")
        .specs(vec![BrokerSpec::id(1).jbod(2), BrokerSpec::id(2)])
        .prop("auto.leader.rebalance.enable", "false")
        .prop("log.segment.bytes", 256 * 1024)
        .prop("log.segment.delete.delay.ms", 1000)
        .start();
    c.wait_registered(T);
    let b = c.bootstrap();
    create_assigned(&b, "mv", &[&[1, 2]], &[]);
    create_assigned(&b, "solo", &[&[1]], &[]);
    wait_isr(&c, "mv", 2, T);
    let dirs = c.broker(1).log_dirs.clone();
    let (from, to) = util::wait_until("mv-0 on broker 1", T, || {
        let i = dirs.iter().position(|d| d.join("mv-0").is_dir())?;
        Some((dirs[i].clone(), dirs[1 - i].clone()))
    });
    let to_s = to.display().to_string();

    let p = ProduceLoop::start_padded(&b, "mv", 500);
    p.wait_progress(3000, T);
    let r = ops(
        &c,
        "mv",
        &[
            format!("alter:0:1:{to_s}"),
            "replica:0:1".into(),
            "alter:0:1:/no/such/dir".into(),
            format!("alter:0:2:{to_s}"),
        ],
    );
    assert_eq!(r[format!("alter:0:1:{to_s}")]["error"], Value::Null, "{r}");
    assert_eq!(
        r["alter:0:1:/no/such/dir"]["error"], "LogDirNotFoundException",
        "{r}"
    );
    // Broker 2 has one dir only, and the path is broker 1's: not in broker 2's config.
    assert_eq!(
        r[format!("alter:0:2:{to_s}")]["error"],
        "LogDirNotFoundException",
        "{r}"
    );
    // The producer carries on through the copy and the swap.
    util::wait_until("mv-0 only in the new dir", T, || {
        let old: Vec<String> = entries_of(&from, "mv")
            .into_iter()
            .filter(|n| !n.ends_with("-delete"))
            .collect();
        let new = entries_of(&to, "mv");
        (old.is_empty() && new == vec!["mv-0".to_string()]).then_some(())
    });
    p.wait_progress(1000, T);
    let res = p.finish();
    assert!(res.errors.is_empty(), "producer errors: {:?}", res.errors);
    let consumed = consume_all(&b, "mv");
    check_no_loss_no_dup(&res.acked, &consumed);
    eprintln!(
        "replica move: {} acked, {} consumed, longest stall {:?}",
        res.acked.len(),
        consumed.len(),
        res.longest_stall
    );
    // The old copy is deleted after log.segment.delete.delay.ms.
    util::wait_until("old copy deleted", T, || {
        entries_of(&from, "mv").is_empty().then_some(())
    });

    let r = ops(&c, "mv", &["replica:0:1".into(), "dirs:1".into()]);
    assert_eq!(r["replica:0:1"]["current"], to_s.as_str(), "{r}");
    assert_eq!(r["replica:0:1"]["future"], Value::Null, "{r}");
    let from_s = from.display().to_string();
    assert_eq!(
        r["dirs:1"][&from_s]["replicas"],
        serde_json::json!([]),
        "{r}"
    );
    assert_eq!(r["dirs:1"][&to_s]["replicas"][0]["future"], false, "{r}");
    assert_eq!(r["dirs:1"][&to_s]["replicas"][0]["partition"], 0, "{r}");

    // A replica broker 2 does not host: REPLICA_NOT_AVAILABLE (Kafka keeps that code here).
    let b2_dir = c.broker(2).log_dirs[0].display().to_string();
    let r = ops(&c, "solo", &[format!("alter:0:2:{b2_dir}")]);
    assert_eq!(
        r[format!("alter:0:2:{b2_dir}")]["error"],
        "ReplicaNotAvailableException",
        "{r}"
    );

    // After a restart the replica loads from the new dir with every record.
    c.broker(1).stop(T).unwrap();
    c.broker(1).start().unwrap();
    wait_isr(&c, "mv", 2, T);
    assert_eq!(entries_of(&to, "mv"), vec!["mv-0".to_string()]);
    assert!(entries_of(&from, "mv").is_empty());
    c.finish();
}
