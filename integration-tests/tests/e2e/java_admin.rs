//! Java Admin client 3.9.1 operations and the znodes they leave behind.

use std::time::Duration;

use samsa_integration_tests::{clients, Cluster};

fn admin(b: &str, topic: &str, steps: &[&str]) -> serde_json::Value {
    let mut args = vec![b.to_string(), topic.to_string()];
    args.extend(steps.iter().map(|s| s.to_string()));
    clients::java("AdminOps", &args, Duration::from_secs(180)).unwrap()
}

fn ok<'a>(r: &'a serde_json::Value, step: &str) -> &'a serde_json::Value {
    let v = &r[step];
    assert!(v.get("error").is_none(), "{step} failed: {v}");
    v
}

#[test]
fn java_admin_topic_lifecycle_and_znodes() {
    let cluster = Cluster::builder("jadmin").brokers(3).start();
    cluster.wait_registered(Duration::from_secs(30));
    let b = cluster.bootstrap();
    let zk = cluster.zk();
    let mut r = admin(&b, "adm", &["cluster", "create"]);
    // CreateTopics returns once the broker that served it knows the topic; the Admin client
    // sends its next requests to any broker, and Describe/AlterConfigs check that broker's
    // metadata cache, as Kafka does. So wait until every broker has the topic before going on.
    let all: Vec<String> = cluster.brokers.iter().map(|x| x.addr()).collect();
    crate::cluster::wait_metadata_isr(&all, "adm", &[1, 2, 3]);
    let more = admin(
        &b,
        "adm",
        &["describe", "describe_configs", "alter_configs"],
    );
    r.as_object_mut()
        .unwrap()
        .extend(more.as_object().unwrap().clone());

    let c = ok(&r, "cluster");
    assert_eq!(c["nodes"].as_array().unwrap().len(), 3);
    assert_eq!(c["cluster_id"], zk.json("/cluster/id").unwrap()["id"]);
    assert_eq!(c["controller"], zk.json("/controller").unwrap()["brokerid"]);

    let created = ok(&r, "create");
    assert_eq!(created["partitions"], 3);
    assert_eq!(created["replication_factor"], 3);
    // /brokers/topics/<t>: version 3 with the same topic id the client was given.
    let t = zk.json("/brokers/topics/adm").unwrap();
    assert_eq!(t["version"], 3);
    assert_eq!(t["adding_replicas"], serde_json::json!({}));
    assert_eq!(t["removing_replicas"], serde_json::json!({}));
    let topic_id = t["topic_id"].as_str().unwrap().to_string();
    assert_eq!(topic_id, created["topic_id"].as_str().unwrap());
    for p in 0..3 {
        let replicas = t["partitions"][p.to_string()].as_array().unwrap();
        assert_eq!(replicas.len(), 3);
        let state = zk
            .json(&format!("/brokers/topics/adm/partitions/{p}/state"))
            .unwrap();
        assert_eq!(
            state["leader"], replicas[0],
            "partition {p} led by the preferred replica"
        );
        assert_eq!(state["isr"].as_array().unwrap().len(), 3);
        assert_eq!(state["leader_epoch"], 0);
    }
    // Create wrote the topic config first.
    let cfg = zk.get("/config/topics/adm").unwrap().unwrap();
    // (alter_configs already ran in the same program, so the value is the altered one.)
    assert_eq!(
        cfg.json().unwrap(),
        serde_json::json!({"version":1,"config":{"retention.ms":"7200000"}})
    );
    let topic_node = zk.get("/brokers/topics/adm").unwrap().unwrap();
    assert!(
        cfg.stat.czxid < topic_node.stat.czxid,
        "/config/topics written before /brokers/topics"
    );

    let d = ok(&r, "describe");
    assert_eq!(d["topic_id"], topic_id);
    assert_eq!(d["partitions"].as_array().unwrap().len(), 3);

    let dc = ok(&r, "describe_configs");
    assert_eq!(dc["retention.ms"], "3600000");
    assert_eq!(dc["retention.ms.source"], "DYNAMIC_TOPIC_CONFIG");
    assert_eq!(dc["segment.bytes"], "1073741824");
    assert_eq!(dc["segment.bytes.source"], "DEFAULT_CONFIG");

    assert_eq!(ok(&r, "alter_configs")["retention.ms"], "7200000");
    assert_eq!(
        zk.json("/config/topics/adm").unwrap()["config"]["retention.ms"],
        "7200000"
    );
    let changes = zk.children("/config/changes").unwrap().unwrap();
    let last = changes
        .iter()
        .filter(|c| c.starts_with("config_change_"))
        .max()
        .expect("a config change notification");
    assert_eq!(last.len(), "config_change_".len() + 10);
    assert_eq!(
        zk.json(&format!("/config/changes/{last}")).unwrap(),
        serde_json::json!({"version":2,"entity_path":"topics/adm"})
    );

    let r = admin(
        &b,
        "adm",
        &[
            "create_partitions",
            "produce",
            "list_offsets",
            "delete_records",
            "describe",
        ],
    );
    ok(&r, "create_partitions");
    let t = zk.json("/brokers/topics/adm").unwrap();
    assert_eq!(t["partitions"].as_object().unwrap().len(), 5);
    assert_eq!(
        t["topic_id"],
        topic_id.as_str(),
        "topic id kept when partitions are added"
    );
    zk.wait_for(
        "/brokers/topics/adm/partitions/4/state",
        Duration::from_secs(30),
    );
    assert_eq!(ok(&r, "produce")["last_offset"], 9);
    assert_eq!(
        ok(&r, "list_offsets"),
        &serde_json::json!({"earliest":0,"latest":10})
    );
    assert_eq!(
        ok(&r, "delete_records"),
        &serde_json::json!({"low_watermark":5,"earliest":5})
    );
    assert_eq!(
        ok(&r, "describe")["partitions"].as_array().unwrap().len(),
        5
    );

    let r = admin(&b, "adm", &["delete", "list"]);
    ok(&r, "delete");
    zk.wait_gone("/brokers/topics/adm", Duration::from_secs(30));
    zk.wait_gone("/config/topics/adm", Duration::from_secs(30));
    zk.wait_gone("/admin/delete_topics/adm", Duration::from_secs(30));
    cluster.finish();
}
