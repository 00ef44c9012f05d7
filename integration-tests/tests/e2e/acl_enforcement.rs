//! Authorization enforced end to end (issue 9): two brokers with the ZooKeeper ACL
//! authorizer, clients as `User:alice` / `User:bob` / `User:admin` over SASL PLAIN, the
//! inter-broker listener as the super user `User:ANONYMOUS`. A matrix of principals × APIs
//! (produce, idempotent produce, fetch, group join and commit, list topics, create / delete
//! topics, describe configs) with the Java 3.9.1 clients, refused with Kafka's exceptions
//! (TOPIC_ / GROUP_ / CLUSTER_AUTHORIZATION_FAILED) until granted; DENY overriding ALLOW; an
//! ACL written straight into the znodes reaching the second broker within seconds; and
//! replication (acks=all on an RF 2 topic) working under the authorizer.

use std::time::{Duration, Instant};

use samsa_integration_tests::{clients, util, wait_until, wire, BrokerSpec, Cluster};
use serde_json::Value;
use zookeeper_client::CreateMode;

use crate::acls::{acl_ops, sasl_plain, strings, wire_describe_all, AUTHORIZER};

const T: Duration = Duration::from_secs(60);

const USERS: &str = "org.apache.kafka.common.security.plain.PlainLoginModule required \
    username=\"admin\" password=\"admin-pw\" user_admin=\"admin-pw\" user_alice=\"alice-pw\" \
    user_bob=\"bob-pw\";";

/// Runs AuthzOps steps as one client principal.
pub(crate) fn authz_ops(bootstrap: &str, props: &[String], steps: &[&str]) -> Value {
    let mut args = vec![bootstrap.to_string()];
    for p in props {
        args.push("--prop".into());
        args.push(p.clone());
    }
    args.extend(steps.iter().map(|s| s.to_string()));
    clients::java("AuthzOps", &args, Duration::from_secs(150)).unwrap()
}

/// The exception class a step failed with (panics if it succeeded).
fn failed(r: &Value, step: &str) -> String {
    let e = r[step]["error"]
        .as_str()
        .unwrap_or_else(|| panic!("{step} should have been refused: {r}"));
    e.split(':').next().unwrap().to_string()
}

fn ok(r: &Value, step: &str) {
    assert!(r[step].get("error").is_none(), "{step} failed: {r}");
}

/// The ISR of partition 0 as the controller wrote it.
fn isr(cluster: &Cluster, topic: &str) -> Vec<i64> {
    let st = cluster
        .zk()
        .json(&format!("/brokers/topics/{topic}/partitions/0/state"))
        .unwrap();
    let mut v: Vec<i64> = st["isr"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_i64().unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn acl_enforcement_matrix_two_brokers() {
    let ports: Vec<(u16, u16)> = (0..2)
        .map(|_| (util::free_port(), util::free_port()))
        .collect();
    let specs = ports
        .iter()
        .enumerate()
        .map(|(i, (ps, p0))| {
            BrokerSpec::id(i as i32 + 1).prop(
                "listeners",
                format!("SASL_PLAINTEXT://127.0.0.1:{ps},PLAINTEXT://127.0.0.1:{p0}"),
            )
        })
        .collect();
    let cluster = Cluster::builder("aclenf")
        .specs(specs)
        .prop("inter.broker.listener.name", "PLAINTEXT")
        .prop("sasl.enabled.mechanisms", "PLAIN")
        .prop("listener.name.sasl_plaintext.plain.sasl.jaas.config", USERS)
        .prop("authorizer.class.name", AUTHORIZER)
        // Inter-broker traffic (PLAINTEXT) is User:ANONYMOUS.
        .prop("super.users", "User:admin;User:ANONYMOUS")
        .start();
    cluster.wait_registered(Duration::from_secs(30));
    let sasl: Vec<String> = ports
        .iter()
        .map(|(ps, _)| format!("127.0.0.1:{ps}"))
        .collect();
    let sasl_all = sasl.join(",");
    let plain: Vec<String> = cluster.brokers.iter().map(|b| b.addr()).collect();
    let (admin, alice, bob) = (
        sasl_plain("admin", "admin-pw"),
        sasl_plain("alice", "alice-pw"),
        sasl_plain("bob", "bob-pw"),
    );

    // The super user sets up: an RF 2 topic written with acks=all (the follower must fetch
    // from the leader, authorized as the inter-broker principal), others, one on broker 2.
    let r = authz_ops(
        &sasl_all,
        &admin,
        &[
            "create|paid|2",
            "create|other|2",
            "create|denied|1",
            "create-on|bobs|2",
            "produce|paid|true",
            "list",
            "consume|paid|g-admin|1",
        ],
    );
    for s in ["s0", "s1", "s2", "s3", "s4"] {
        ok(&r, s);
    }
    assert_eq!(
        strings(&r["s5"]["topics"]),
        ["bobs", "denied", "other", "paid"]
    );
    assert_eq!(r["s6"]["records"], 1, "{r}");
    assert_eq!(isr(&cluster, "paid"), [1, 2], "both replicas in sync");

    // alice without ACLs: refused everywhere, topics hidden.
    let r = authz_ops(
        &sasl_all,
        &alice,
        &[
            "produce|paid|false",
            "produce|paid|true",
            "consume|paid|g-alice|1",
            "fetch|paid|g-alice|1",
            "list",
            "create|alice-new|1",
            "configs|paid",
            "delete|paid",
        ],
    );
    assert_eq!(failed(&r, "s0"), "TopicAuthorizationException", "{r}");
    let idem = failed(&r, "s1");
    assert!(
        idem == "TopicAuthorizationException" || idem == "ClusterAuthorizationException",
        "{r}"
    );
    for s in ["s2", "s3"] {
        let e = failed(&r, s);
        assert!(
            e == "GroupAuthorizationException" || e == "TopicAuthorizationException",
            "{s}: {r}"
        );
    }
    assert!(strings(&r["s4"]["topics"]).is_empty(), "{r}");
    for s in ["s5", "s6", "s7"] {
        assert_eq!(failed(&r, s), "TopicAuthorizationException", "{s}: {r}");
    }

    // admin grants alice WRITE, DESCRIBE and READ on `paid` and READ on her groups; ALL on
    // `denied` but a DENY of WRITE there.
    let grants = [
        "create|TOPIC|paid|LITERAL|User:alice|*|WRITE|ALLOW",
        "create|TOPIC|paid|LITERAL|User:alice|*|DESCRIBE|ALLOW",
        "create|TOPIC|paid|LITERAL|User:alice|*|READ|ALLOW",
        "create|GROUP|g-alice|LITERAL|User:alice|*|READ|ALLOW",
        // The group secure_roundtrip.py's consumer names.
        "create|GROUP|secure|LITERAL|User:alice|*|READ|ALLOW",
        "create|TOPIC|denied|LITERAL|User:alice|*|ALL|ALLOW",
        "create|TOPIC|denied|LITERAL|User:alice|*|WRITE|DENY",
    ];
    let r = acl_ops(&plain[0], &[], &grants);
    for i in 0..grants.len() {
        assert_eq!(r[format!("s{i}")]["ok"], true, "{r}");
    }
    for a in &plain {
        wait_until(&format!("grants on {a}"), Duration::from_secs(15), || {
            (wire_describe_all(a).len() == grants.len()).then_some(())
        });
    }
    let r = authz_ops(
        &sasl_all,
        &alice,
        &[
            "produce|paid|false",
            // 3.9: WRITE on any topic implies IDEMPOTENT_WRITE on the cluster.
            "produce|paid|true",
            "consume|paid|g-alice|3",
            "fetch|paid|g-alice|0",
            "list",
            "produce|other|false",
            "consume|paid|g-other|1",
            "configs|paid",
            "delete|paid",
            "create|paid2|1",
            "produce|denied|false",
            "fetch|denied|g-alice|0",
            "configs|denied",
            "alter-config|paid",
            "alter-config|denied",
            "groups",
            "group-offsets|g-alice",
            "group-offsets|g-admin",
        ],
    );
    for s in ["s0", "s1", "s3", "s11", "s12", "s14"] {
        ok(&r, s);
    }
    assert_eq!(failed(&r, "s13"), "TopicAuthorizationException", "{r}");
    // Only groups alice may describe are listed; only readable offsets of hers.
    let groups = strings(&r["s15"]["groups"]);
    assert!(groups.contains(&"g-alice".to_string()), "{r}");
    assert!(!groups.contains(&"g-admin".to_string()), "{r}");
    assert_eq!(strings(&r["s16"]["offsets"]), ["paid-0=3"], "{r}");
    assert_eq!(failed(&r, "s17"), "GroupAuthorizationException", "{r}");
    assert_eq!(r["s2"]["records"], 3, "join, fetch and commit: {r}");
    assert_eq!(strings(&r["s4"]["topics"]), ["denied", "paid"], "{r}");
    assert_eq!(failed(&r, "s5"), "TopicAuthorizationException", "{r}");
    assert_eq!(failed(&r, "s6"), "GroupAuthorizationException", "{r}");
    for s in ["s7", "s8", "s9"] {
        assert_eq!(failed(&r, s), "TopicAuthorizationException", "{s}: {r}");
    }
    assert_eq!(
        failed(&r, "s10"),
        "TopicAuthorizationException",
        "DENY wins: {r}"
    );

    // confluent-kafka (librdkafka) sees the same: alice produces to `paid`, bob is refused.
    let confluent = |user: &str, pw: &str| {
        let cfg = serde_json::json!({
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanisms": "PLAIN",
            "sasl.username": user,
            "sasl.password": pw,
        });
        let args = [
            "confluent".to_string(),
            sasl_all.clone(),
            "paid".to_string(),
            "2".to_string(),
            cfg.to_string(),
        ];
        clients::python("secure_roundtrip.py", &args, Duration::from_secs(90)).unwrap()
    };
    let r = confluent("alice", "alice-pw");
    assert_eq!(r["acked"], 2, "confluent as alice: {r}");
    let r = confluent("bob", "bob-pw");
    let e = r["error"].as_str().unwrap_or_else(|| panic!("bob: {r}"));
    assert!(
        e.contains("TOPIC_AUTHORIZATION_FAILED"),
        "confluent as bob: {e}"
    );

    // bob is still refused; then an ACL for him written straight into ZooKeeper (resource
    // node, then change notification) lets him write to `bobs`, led by broker 2, which he
    // reaches through broker 2 only.
    let zk = cluster.zk();
    zk.create(
        "/kafka-acl/Topic/bobs",
        br#"{"version":1,"acls":[{"principal":"User:bob","permissionType":"Allow","operation":"Write","host":"*"},{"principal":"User:bob","permissionType":"Allow","operation":"Describe","host":"*"}]}"#,
        CreateMode::Persistent,
    )
    .unwrap();
    zk.create(
        "/kafka-acl-changes/acl_changes_",
        b"TOPIC:bobs",
        CreateMode::PersistentSequential,
    )
    .unwrap();
    let t0 = Instant::now();
    let r = authz_ops(
        &sasl[1],
        &bob,
        &[
            "produce|paid|false",
            "fetch|paid|g-alice|1",
            "create|bob-new|1",
            "await-produce|bobs|15000",
            "list",
        ],
    );
    assert_eq!(failed(&r, "s0"), "TopicAuthorizationException", "{r}");
    let e = failed(&r, "s1");
    assert!(
        e == "GroupAuthorizationException" || e == "TopicAuthorizationException",
        "{r}"
    );
    assert_eq!(failed(&r, "s2"), "TopicAuthorizationException", "{r}");
    ok(&r, "s3");
    assert_eq!(strings(&r["s4"]["topics"]), ["bobs"], "{r}");
    assert!(t0.elapsed() < Duration::from_secs(30));

    assert_eq!(
        isr(&cluster, "paid"),
        [1, 2],
        "ISR kept under the authorizer"
    );
    cluster.finish();
}

/// Error codes of the inter-broker APIs sent as `User:ANONYMOUS` over PLAINTEXT.
fn inter_broker_codes(addr: &str) -> Vec<(&'static str, i16)> {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::StrBytes;
    let mut c = wire::Conn::connect(addr).unwrap();
    let mut out = Vec::new();
    let r: UpdateMetadataResponse = c
        .request(ApiKey::UpdateMetadata, 7, &UpdateMetadataRequest::default())
        .unwrap();
    out.push(("UpdateMetadata", r.error_code));
    let r: LeaderAndIsrResponse = c
        .request(ApiKey::LeaderAndIsr, 5, &LeaderAndIsrRequest::default())
        .unwrap();
    out.push(("LeaderAndIsr", r.error_code));
    let r: StopReplicaResponse = c
        .request(ApiKey::StopReplica, 3, &StopReplicaRequest::default())
        .unwrap();
    out.push(("StopReplica", r.error_code));
    let r: ControlledShutdownResponse = c
        .request(
            ApiKey::ControlledShutdown,
            3,
            &ControlledShutdownRequest::default().with_broker_id(BrokerId(2)),
        )
        .unwrap();
    out.push(("ControlledShutdown", r.error_code));
    let r: AlterPartitionResponse = c
        .request(ApiKey::AlterPartition, 1, &AlterPartitionRequest::default())
        .unwrap();
    out.push(("AlterPartition", r.error_code));
    // A follower's fetch (replica id 2): without CLUSTER_ACTION every partition is refused.
    let req = FetchRequest::default()
        .with_replica_id(BrokerId(2))
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_static_str("t")))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_partition_max_bytes(1 << 20)])]);
    let r: FetchResponse = c.request(ApiKey::Fetch, 12, &req).unwrap();
    out.push(("Fetch(follower)", r.responses[0].partitions[0].error_code));
    out
}

/// Broker ids in one broker's Metadata answer (its metadata cache, fed by UpdateMetadata).
fn metadata_brokers(addr: &str) -> Vec<i32> {
    use kafka_protocol::messages::{ApiKey, MetadataRequest, MetadataResponse};
    let mut c = wire::Conn::connect(addr).unwrap();
    let req = MetadataRequest::default().with_topics(Some(vec![]));
    let r: MetadataResponse = c.request(ApiKey::Metadata, 9, &req).unwrap();
    let mut ids: Vec<i32> = r.brokers.iter().map(|b| b.node_id.0).collect();
    ids.sort();
    ids
}

/// Writes an ACL znode and its change notification, as `kafka-acls.sh` and Kafka brokers do.
fn write_acl(cluster: &Cluster, path: &str, json: &str, change: &str) {
    let zk = cluster.zk();
    zk.create(path, json.as_bytes(), CreateMode::Persistent)
        .unwrap();
    zk.create(
        "/kafka-acl-changes/acl_changes_",
        change.as_bytes(),
        CreateMode::PersistentSequential,
    )
    .unwrap();
}

/// Inter-broker APIs need CLUSTER_ACTION on the cluster. A live two-broker cluster whose
/// inter-broker principal (`User:ANONYMOUS` on PLAINTEXT) is not in `super.users`: the
/// controller's UpdateMetadata to both brokers (itself included, over the network as in Kafka)
/// is refused with CLUSTER_AUTHORIZATION_FAILED, so neither broker's metadata lists any broker;
/// the inter-broker APIs answer CLUSTER_AUTHORIZATION_FAILED (a follower's fetch
/// TOPIC_AUTHORIZATION_FAILED per partition). Once an ACL granting CLUSTER_ACTION is written into
/// ZooKeeper, the next controller requests are accepted: a topic created in ZooKeeper (as
/// `AdminZkClient` writes it) becomes visible on both brokers and an acks=all produce to it is
/// acknowledged.
#[test]
fn acl_enforcement_inter_broker_needs_cluster_action() {
    let cluster = Cluster::builder("aclibp")
        .brokers(2)
        .prop("authorizer.class.name", AUTHORIZER)
        .prop("super.users", "User:admin")
        .start();
    let addrs: Vec<String> = cluster.brokers.iter().map(|b| b.addr()).collect();
    cluster
        .zk()
        .wait_for("/controller", Duration::from_secs(30));
    let controller = cluster.zk().json("/controller").unwrap()["brokerid"]
        .as_i64()
        .unwrap();
    let log = || {
        cluster
            .brokers
            .iter()
            .find(|b| b.id == Some(controller as i32))
            .unwrap()
            .log_text()
    };
    wait_until(
        "the controller's UpdateMetadata refused by both brokers",
        Duration::from_secs(30),
        || {
            let refused: Vec<String> = log()
                .lines()
                .filter(|l| l.contains("UpdateMetadata error") && l.contains("code=31"))
                .map(str::to_string)
                .collect();
            ["broker=1", "broker=2"]
                .iter()
                .all(|b| refused.iter().any(|l| l.contains(b)))
                .then_some(())
        },
    );
    for a in &addrs {
        assert!(metadata_brokers(a).is_empty(), "{a} learnt metadata");
        let codes = inter_broker_codes(a);
        for (api, code) in &codes {
            let want = if *api == "Fetch(follower)" { 29 } else { 31 };
            assert_eq!(*code, want, "{a} {api}: {codes:?}");
        }
    }

    // Grant CLUSTER_ACTION (and produce rights on every topic) to the inter-broker principal.
    write_acl(
        &cluster,
        "/kafka-acl/Cluster/kafka-cluster",
        r#"{"version":1,"acls":[{"principal":"User:ANONYMOUS","permissionType":"Allow","operation":"ClusterAction","host":"*"}]}"#,
        "CLUSTER:kafka-cluster",
    );
    write_acl(
        &cluster,
        "/kafka-acl/Topic/*",
        r#"{"version":1,"acls":[{"principal":"User:ANONYMOUS","permissionType":"Allow","operation":"Write","host":"*"},{"principal":"User:ANONYMOUS","permissionType":"Allow","operation":"Describe","host":"*"}]}"#,
        "TOPIC:*",
    );
    for a in &addrs {
        wait_until(&format!("CLUSTER_ACTION on {a}"), T, || {
            inter_broker_codes(a)
                .iter()
                .all(|(_, c)| *c != 31 && *c != 29)
                .then_some(())
        });
    }
    // A new topic makes the controller send LeaderAndIsr and UpdateMetadata again.
    let assignment = std::collections::BTreeMap::from([(0, vec![1, 2])]);
    let z = samsa_common::zk::znodes::TopicZNode::new(
        Some(samsa_common::types::kafka_uuid::random_topic_id()),
        assignment,
    );
    cluster
        .zk()
        .create("/brokers/topics/live", &z.encode(), CreateMode::Persistent)
        .unwrap();
    cluster.wait_registered(T);
    // The new topic is served: an acks=all produce is acknowledged.
    clients::kcat(
        &[
            "-b",
            &addrs.join(","),
            "-P",
            "-t",
            "live",
            "-p",
            "0",
            "-X",
            "acks=all",
            "-X",
            "message.timeout.ms=20000",
        ],
        Some(b"after-grant\n"),
        T,
    )
    .unwrap();
    cluster.finish();
}
