//! ZooKeeper registration conformance: spec zookeeper-and-controller §6, cases 1-14, 19-22, 31, 44, 47.

use std::time::Duration;

use kafka_protocol::messages::{ApiKey, InitProducerIdRequest, InitProducerIdResponse};
use samsa_integration_tests::{util, wire, BrokerSpec, Cluster};
use serde_json::json;
use zookeeper_client::CreateMode;

use crate::common::create_topic;

const T: Duration = Duration::from_secs(30);

fn props_file(path: &std::path::Path) -> std::collections::HashMap<String, String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

fn is_cluster_id(id: &str) -> bool {
    id.len() == 22
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Cases 1, 2, 3, 7, 8, 10 (no rack).
#[test]
fn zk_registration_layout_of_a_fresh_broker() {
    let cluster = Cluster::builder("zkreg")
        .specs(vec![BrokerSpec::id(1).prop("log.dirs", "LOGDIRS")])
        .configure_only()
        .start();
    // Two log dirs: meta.properties must land in both (case 3).
    let bdir = cluster.brokers[0].dir.clone();
    let dirs = [bdir.join("logs-a"), bdir.join("logs-b")];
    let props = std::fs::read_to_string(&cluster.brokers[0].props_path).unwrap();
    let dir_list = format!("{},{}", dirs[0].display(), dirs[1].display());
    std::fs::write(
        &cluster.brokers[0].props_path,
        props.replace("LOGDIRS", &dir_list),
    )
    .unwrap();
    let mut cluster = cluster;
    cluster.broker(1).start().unwrap();
    let zk = cluster.zk();

    // 1: the chroot and every top-level persistent path.
    for p in [
        "/consumers",
        "/brokers/ids",
        "/brokers/topics",
        "/brokers/seqid",
        "/config/changes",
        "/config/topics",
        "/config/clients",
        "/config/users",
        "/config/brokers",
        "/config/ips",
        "/admin/delete_topics",
        "/isr_change_notification",
        "/latest_producer_id_block",
        "/log_dir_event_notification",
    ] {
        let n = zk.wait_for(p, T);
        assert_eq!(n.stat.ephemeral_owner, 0, "{p} persistent");
    }
    assert!(zk.exists("/config/client-metrics").unwrap().is_none());
    assert!(zk.exists("/migration").unwrap().is_none());

    // 2: cluster id.
    let cid = zk.wait_for("/cluster/id", T).json().unwrap();
    assert_eq!(cid["version"], "1");
    let id = cid["id"].as_str().unwrap().to_string();
    assert!(is_cluster_id(&id), "cluster id {id}");

    // 7, 8: registration.
    let reg = zk.wait_for("/brokers/ids/1", T);
    assert_ne!(reg.stat.ephemeral_owner, 0);
    assert_eq!(
        reg.stat.version, 1,
        "create + setData in one multi gives dataVersion 1"
    );
    let j = reg.json().unwrap();
    let port = cluster.brokers[0].port;
    assert_eq!(j["version"], 5);
    assert_eq!(
        j["endpoints"],
        json!([format!("PLAINTEXT://127.0.0.1:{port}")])
    );
    assert_eq!(
        j["listener_security_protocol_map"],
        json!({"PLAINTEXT":"PLAINTEXT"})
    );
    assert_eq!(j["features"], json!({}));
    assert_eq!(j["jmx_port"], -1);
    assert!(j["timestamp"].as_str().unwrap().parse::<i64>().unwrap() > 1_600_000_000_000);
    assert_eq!(j["host"], "127.0.0.1");
    assert_eq!(j["port"], port);
    // 10: no rack key without broker.rack.
    assert!(j.get("rack").is_none());

    // 3: meta.properties in every log dir.
    for d in &dirs {
        let mp = props_file(&d.join("meta.properties"));
        assert_eq!(mp.get("version").map(String::as_str), Some("0"), "{d:?}");
        assert_eq!(mp.get("broker.id").map(String::as_str), Some("1"));
        assert_eq!(mp.get("cluster.id"), Some(&id));
    }

    cluster.finish();
}

/// Case 14: the first broker of an empty cluster becomes controller with epoch 1.
#[test]
fn zk_first_broker_becomes_controller() {
    let cluster = Cluster::single("zkctl");
    let zk = cluster.zk();
    let ctl = zk.wait_for("/controller", T);
    assert_ne!(ctl.stat.ephemeral_owner, 0, "/controller is ephemeral");
    assert_eq!(ctl.json().unwrap()["brokerid"], 1);
    assert_eq!(zk.wait_for("/controller_epoch", T).text(), "1");
    cluster.finish();
}

/// Case 4: a pre-existing `/cluster/id` is adopted.
#[test]
fn zk_adopts_existing_cluster_id() {
    let mut cluster = Cluster::builder("zkadopt").configure_only().start();
    cluster
        .zk()
        .create(
            "/cluster/id",
            br#"{"version":"1","id":"AAAAAAAAAAAAAAAAAAAAAQ"}"#,
            CreateMode::Persistent,
        )
        .unwrap();
    cluster.broker(1).start().unwrap();
    cluster.zk().wait_for("/brokers/ids/1", T);
    let mp = props_file(&cluster.brokers[0].log_dir.join("meta.properties"));
    assert_eq!(mp["cluster.id"], "AAAAAAAAAAAAAAAAAAAAAQ");
    cluster.finish();
}

/// Case 5: meta.properties with another cluster.id stops start-up; no registration.
#[test]
fn zk_refuses_foreign_meta_properties() {
    let mut cluster = Cluster::builder("zkforeign").configure_only().start();
    let ld = cluster.brokers[0].log_dir.clone();
    std::fs::create_dir_all(&ld).unwrap();
    std::fs::write(
        ld.join("meta.properties"),
        "#\nversion=0\nbroker.id=1\ncluster.id=BBBBBBBBBBBBBBBBBBBBBQ\n",
    )
    .unwrap();
    let b = cluster.broker(1);
    b.allow_error("cluster.id");
    b.allow_error("cluster id");
    b.spawn().unwrap();
    let status = b.wait_exit(T).expect("broker must exit");
    assert!(!status.success());
    assert!(cluster.zk().exists("/brokers/ids/1").unwrap().is_none());
    drop(cluster);
}

/// Case 6: broker.id generated from /brokers/seqid.
#[test]
fn zk_generates_broker_id_from_seqid() {
    let mut cluster = Cluster::builder("zkgen")
        .specs(vec![BrokerSpec::default()])
        .start();
    let zk = cluster.zk();
    let reg = zk.wait_for("/brokers/ids/1001", T);
    assert_eq!(reg.json().unwrap()["version"], 5);
    assert_eq!(zk.get("/brokers/seqid").unwrap().unwrap().stat.version, 1);
    let mp = props_file(&cluster.brokers[0].log_dir.join("meta.properties"));
    assert_eq!(mp["broker.id"], "1001");
    cluster.brokers[0].stop(T).unwrap();
    // Every component uses the generated id: the controlled shutdown finds the
    // controller (itself, 1001) in the metadata cache and succeeds.
    let log = cluster.brokers[0].log_text();
    assert!(
        log.contains("controlled shutdown succeeded") && !log.contains("has no PLAINTEXT endpoint"),
        "controlled shutdown of broker 1001 failed:\n{}",
        cluster.brokers[0].log_tail(40)
    );
    // Restart keeps the id from meta.properties.
    cluster.brokers[0].start().unwrap();
    cluster.zk().wait_for("/brokers/ids/1001", T);
    assert_eq!(
        cluster
            .zk()
            .get("/brokers/seqid")
            .unwrap()
            .unwrap()
            .stat
            .version,
        1
    );
    cluster.finish();
}

/// Case 9: only a non-PLAINTEXT listener: host null, port -1.
#[test]
fn zk_registration_without_plaintext_listener() {
    let port = util::free_port();
    let cluster = Cluster::builder("zkssl")
        .specs(vec![BrokerSpec::id(1)
            .prop("listeners", format!("EXTERNAL://127.0.0.1:{port}"))
            .prop("listener.security.protocol.map", "EXTERNAL:SASL_PLAINTEXT")
            .prop("inter.broker.listener.name", "EXTERNAL")
            .prop("sasl.enabled.mechanisms", "PLAIN")
            .prop("sasl.mechanism.inter.broker.protocol", "PLAIN")
            // As Kafka, a PLAIN listener needs JAAS users (and the broker's own login).
            .prop(
                "listener.name.external.plain.sasl.jaas.config",
                "org.apache.kafka.common.security.plain.PlainLoginModule required \
                 username=\"admin\" password=\"admin-secret\" user_admin=\"admin-secret\";",
            )])
        .configure_only()
        .start();
    let mut cluster = cluster;
    cluster.broker(1).spawn().unwrap();
    let j = cluster.zk().wait_for("/brokers/ids/1", T).json().unwrap();
    assert_eq!(j["host"], serde_json::Value::Null);
    assert_eq!(j["port"], -1);
    assert_eq!(
        j["endpoints"],
        json!([format!("EXTERNAL://127.0.0.1:{port}")])
    );
    assert_eq!(
        j["listener_security_protocol_map"]["EXTERNAL"],
        "SASL_PLAINTEXT"
    );
    cluster.finish();
}

/// Case 10: `rack` appears when `broker.rack` is set.
#[test]
fn zk_registration_rack() {
    let cluster = Cluster::builder("zkrack")
        .specs(vec![BrokerSpec::id(1).prop("broker.rack", "rack-a")])
        .start();
    let j = cluster.zk().wait_for("/brokers/ids/1", T).json().unwrap();
    assert_eq!(j["rack"], "rack-a");
    assert_eq!(j["version"], 5);
    cluster.finish();
}

/// Case 11: IBP 2.6 → registration version 4, no `features`.
#[test]
fn zk_registration_old_ibp() {
    let cluster = Cluster::builder("zkibp")
        .specs(vec![
            BrokerSpec::id(1).prop("inter.broker.protocol.version", "2.6")
        ])
        .start();
    let j = cluster.zk().wait_for("/brokers/ids/1", T).json().unwrap();
    assert_eq!(j["version"], 4);
    assert!(j.get("features").is_none());
    assert!(j.get("rack").is_none());
    cluster.finish();
}

/// Case 12: a second process with the same id fails (NODEEXISTS); the first one's znode is untouched.
#[test]
fn zk_duplicate_broker_id_is_rejected() {
    let mut cluster = Cluster::builder("zkdup")
        .specs(vec![BrokerSpec::id(1), BrokerSpec::id(1)])
        .configure_only()
        .start();
    cluster.brokers[0].start().unwrap();
    let before = cluster.zk().wait_for("/brokers/ids/1", T);
    let dup = &mut cluster.brokers[1];
    dup.allow_error("");
    dup.spawn().unwrap();
    let status = dup
        .wait_exit(Duration::from_secs(60))
        .expect("duplicate broker must exit");
    assert!(!status.success());
    let after = cluster.zk().get("/brokers/ids/1").unwrap().unwrap();
    assert_eq!(before.stat.czxid, after.stat.czxid);
    assert_eq!(before.data, after.data);
    cluster.brokers.truncate(1);
    cluster.finish();
}

/// Case 13: kill -9 → znode gone after the session timeout; clean stop → gone at once.
#[test]
fn zk_registration_removed_on_kill_and_on_clean_stop() {
    let mut cluster = Cluster::builder("zkgone")
        .prop("zookeeper.session.timeout.ms", "3000")
        .start();
    cluster.zk().wait_for("/brokers/ids/1", T);
    cluster.broker(1).kill9();
    // Still there right after the kill (the session lives on until it times out) ...
    assert!(cluster.zk().exists("/brokers/ids/1").unwrap().is_some());
    // ... and gone after the 3 s session timeout.
    cluster
        .zk()
        .wait_gone("/brokers/ids/1", Duration::from_secs(20));
    cluster.broker(1).start().unwrap();
    cluster.zk().wait_for("/brokers/ids/1", T);
    cluster.broker(1).stop(T).unwrap();
    // Clean stop: the session is closed, so the znode is already gone.
    assert!(cluster.zk().exists("/brokers/ids/1").unwrap().is_none());
    cluster.finish();
}

/// Cases 19, 20, 21: a hand-written v1 topic znode gets a topic id and partition state, no config znode.
#[test]
fn zk_hand_written_topic_gets_topic_id_and_state() {
    let cluster = Cluster::single("zkhand");
    let zk = cluster.zk();
    zk.wait_for("/controller", T);
    zk.create(
        "/brokers/topics/t1",
        br#"{"version":1,"partitions":{"0":[1]}}"#,
        CreateMode::Persistent,
    )
    .unwrap();
    let state = zk
        .wait_for("/brokers/topics/t1/partitions/0/state", T)
        .json()
        .unwrap();
    let epoch: i64 = zk
        .get("/controller_epoch")
        .unwrap()
        .unwrap()
        .text()
        .parse()
        .unwrap();
    assert_eq!(
        state,
        json!({"controller_epoch":epoch,"leader":1,"version":1,"leader_epoch":0,"isr":[1]})
    );
    let t = util::wait_until("topic_id added", T, || {
        let t = zk.json("/brokers/topics/t1").ok()?;
        t.get("topic_id").is_some().then_some(t)
    });
    assert_eq!(t["version"], 3);
    assert_eq!(t["partitions"], json!({"0":[1]}));
    assert_eq!(t["adding_replicas"], json!({}));
    assert_eq!(t["removing_replicas"], json!({}));
    let tid = t["topic_id"].as_str().unwrap();
    assert!(tid.len() == 22 && !tid.starts_with('-'), "topic id {tid}");
    let parts = zk.get("/brokers/topics/t1/partitions").unwrap().unwrap();
    assert!(parts.data.is_empty());
    assert!(zk
        .get("/brokers/topics/t1/partitions/0")
        .unwrap()
        .unwrap()
        .data
        .is_empty());
    assert!(zk.exists("/config/topics/t1").unwrap().is_none());
    cluster.finish();
}

/// Case 22: CreateTopics (3 partitions, RF 2) → config then topic v3; replicas distinct and live; leader = head.
#[test]
fn zk_create_topics_writes_config_then_topic() {
    let cluster = Cluster::builder("zkcreate").brokers(3).start();
    cluster.wait_registered(T);
    create_topic(&cluster.bootstrap(), "ct", 3, 2, &[]);
    let zk = cluster.zk();
    let cfg = zk.get("/config/topics/ct").unwrap().unwrap();
    assert_eq!(cfg.json().unwrap(), json!({"version":1,"config":{}}));
    let topic = zk.get("/brokers/topics/ct").unwrap().unwrap();
    assert!(cfg.stat.czxid < topic.stat.czxid);
    let t = topic.json().unwrap();
    assert_eq!(t["version"], 3);
    assert!(t["topic_id"].as_str().is_some());
    for p in 0..3 {
        let rs: Vec<i64> = t["partitions"][p.to_string()]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        assert_eq!(rs.len(), 2);
        assert_ne!(rs[0], rs[1]);
        assert!(rs.iter().all(|r| (1..=3).contains(r)));
        let state = zk
            .wait_for(&format!("/brokers/topics/ct/partitions/{p}/state"), T)
            .json()
            .unwrap();
        assert_eq!(state["leader"], rs[0]);
    }
    cluster.finish();
}

/// Case 31: /admin/delete_topics/<t> removes the topic's znodes and its log dirs (via `-delete`).
#[test]
fn zk_delete_topic_marker_removes_topic() {
    let cluster = Cluster::builder("zkdel")
        .prop("log.segment.delete.delay.ms", "1000")
        .start();
    let b = cluster.bootstrap();
    create_topic(&b, "gone", 2, 1, &[("retention.ms", "100000")]);
    crate::rdkafka_client::produce(&b, "gone", 5, "none", "1");
    let ld = cluster.brokers[0].log_dir.clone();
    assert!(ld.join("gone-0").is_dir() && ld.join("gone-1").is_dir());
    let zk = cluster.zk();
    zk.create("/admin/delete_topics/gone", b"", CreateMode::Persistent)
        .unwrap();
    zk.wait_gone("/brokers/topics/gone", T);
    zk.wait_gone("/config/topics/gone", T);
    zk.wait_gone("/admin/delete_topics/gone", T);
    util::wait_until("log dirs of the deleted topic removed", T, || {
        let left: Vec<String> = std::fs::read_dir(&ld)
            .ok()?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("gone-"))
            .collect();
        left.is_empty().then_some(())
    });
    cluster.finish();
}

/// Case 44: a topic config change writes the config znode and a v2 change notification.
#[test]
fn zk_topic_config_change_notification() {
    let cluster = Cluster::single("zkcfg");
    let b = cluster.bootstrap();
    create_topic(&b, "cfg", 1, 1, &[]);
    let admin: rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> =
        crate::common::client_config(&b).create().unwrap();
    let res = rdkafka::admin::AlterConfig::new(rdkafka::admin::ResourceSpecifier::Topic("cfg"))
        .set("retention.ms", "86400000");
    let out = crate::common::rt()
        .block_on(admin.alter_configs([&res], &rdkafka::admin::AdminOptions::new()))
        .unwrap();
    assert!(out.iter().all(|r| r.is_ok()), "{out:?}");
    let zk = cluster.zk();
    assert_eq!(
        zk.json("/config/topics/cfg").unwrap(),
        json!({"version":1,"config":{"retention.ms":"86400000"}})
    );
    let changes = zk.children("/config/changes").unwrap().unwrap();
    let found = changes.iter().any(|c| {
        c.starts_with("config_change_")
            && zk.json(&format!("/config/changes/{c}")).ok()
                == Some(json!({"version":2,"entity_path":"topics/cfg"}))
    });
    assert!(
        found,
        "no config_change_ notification for topics/cfg in {changes:?}"
    );
    cluster.finish();
}

/// Case 47: InitProducerId allocates /latest_producer_id_block blocks of 1000, one per broker.
#[test]
fn zk_producer_id_blocks() {
    let cluster = Cluster::builder("zkpid").brokers(2).start();
    cluster.wait_registered(T);
    cluster.zk().wait_for("/controller", T);
    let init = |addr: &str| -> i64 {
        util::wait_until("InitProducerId answered without error", T, || {
            let mut c = wire::Conn::connect(addr).ok()?;
            // An idempotent producer sends a null transactional id; Kafka answers an
            // empty one (the generated default) with INVALID_REQUEST.
            let req = InitProducerIdRequest::default()
                .with_transactional_id(None)
                .with_transaction_timeout_ms(60000)
                .with_producer_id((-1).into())
                .with_producer_epoch(-1);
            let r: InitProducerIdResponse = c.request(ApiKey::InitProducerId, 4, &req).ok()?;
            (r.error_code == 0).then_some(r.producer_id.0)
        })
    };
    let zk = cluster.zk();
    let p1 = init(&cluster.brokers[0].addr());
    assert!((0..1000).contains(&p1), "first producer id {p1}");
    assert_eq!(
        zk.json("/latest_producer_id_block").unwrap(),
        json!({"version":1,"broker":1,"block_start":"0","block_end":"999"})
    );
    let p2 = init(&cluster.brokers[1].addr());
    assert!(
        (1000..2000).contains(&p2),
        "second broker's producer id {p2}"
    );
    assert_eq!(
        zk.json("/latest_producer_id_block").unwrap(),
        json!({"version":1,"broker":2,"block_start":"1000","block_end":"1999"})
    );
    cluster.finish();
}
