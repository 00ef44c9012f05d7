//! Restarts: a clean stop (SIGTERM) and `kill -9` both keep every acknowledged record at its offset.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use samsa_integration_tests::Cluster;

use crate::common::{client_config, create_topic, wait_for_leaders};
use crate::rdkafka_client::{consume_and_check, produce};

#[test]
fn clean_restart_keeps_data_and_offsets() {
    let mut cluster = Cluster::single("restart");
    let b = cluster.bootstrap();
    create_topic(&b, "dur", 1, 1, &[]);
    assert_eq!(
        produce(&b, "dur", 100, "lz4", "all"),
        (0..100).collect::<Vec<i64>>()
    );
    let status = cluster.broker(1).stop(Duration::from_secs(30)).unwrap();
    assert!(status.success(), "clean shutdown exit status {status}");
    // A clean stop deregisters at once and leaves the clean-shutdown marker.
    assert!(cluster.zk().exists("/brokers/ids/1").unwrap().is_none());
    assert!(
        cluster
            .broker(1)
            .log_dir
            .join(".kafka_cleanshutdown")
            .exists(),
        "clean shutdown marker"
    );
    cluster.broker(1).start().unwrap();
    wait_for_leaders(&b, "dur", 1);
    consume_and_check(&b, "dur", 0, 100);
    // New appends continue after the old log end.
    let more = produce(&b, "dur", 10, "none", "all");
    assert_eq!(more, (100..110).collect::<Vec<i64>>());
    cluster.finish();
}

#[test]
fn kill_9_keeps_acknowledged_batches() {
    let mut cluster = Cluster::single("kill9");
    let b = cluster.bootstrap();
    create_topic(&b, "k9", 1, 1, &[]);
    let mut acked = Vec::new();
    for codec in ["none", "gzip", "snappy"] {
        acked.extend(produce(&b, "k9", 50, codec, "all"));
    }
    assert_eq!(acked, (0..150).collect::<Vec<i64>>());
    cluster.broker(1).kill9();
    assert!(!cluster
        .broker(1)
        .log_dir
        .join(".kafka_cleanshutdown")
        .exists());
    cluster.restart_killed(1).unwrap();
    wait_for_leaders(&b, "k9", 1);
    for from in [0i64, 50, 100] {
        consume_and_check(&b, "k9", from, 50);
    }
    assert_eq!(
        produce(&b, "k9", 5, "none", "all"),
        (150..155).collect::<Vec<i64>>()
    );
    cluster.finish();
}

#[test]
fn committed_group_offsets_survive_restart() {
    let mut cluster = Cluster::single("grpoff");
    let b = cluster.bootstrap();
    create_topic(&b, "go", 1, 1, &[]);
    produce(&b, "go", 20, "none", "all");
    let commit = |offset: i64| {
        let c: BaseConsumer = client_config(&b)
            .set("group.id", "durable-group")
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("go", 0, Offset::Offset(offset))
            .unwrap();
        c.commit(&tpl, CommitMode::Sync).unwrap();
    };
    let committed = |b: &str| -> Offset {
        let c: BaseConsumer = client_config(b)
            .set("group.id", "durable-group")
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition("go", 0);
        let r = c.committed_offsets(tpl, Duration::from_secs(30)).unwrap();
        r.find_partition("go", 0).unwrap().offset()
    };
    commit(17);
    assert_eq!(committed(&b), Offset::Offset(17));
    cluster.broker(1).kill9();
    cluster.restart_killed(1).unwrap();
    assert_eq!(committed(&b), Offset::Offset(17));
    cluster.finish();
}
