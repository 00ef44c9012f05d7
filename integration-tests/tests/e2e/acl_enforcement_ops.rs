//! Authorization of transactional ids, DeleteRecords and CreatePartitions, and PREFIXED
//! resource patterns, with the Java 3.9.1 clients as `User:alice` over SASL PLAIN against one
//! broker with the ZooKeeper ACL authorizer (issue 9). Refused with Kafka's exceptions until
//! granted; prefixed grants cover exactly the names they prefix; a longer prefixed DENY beats a
//! shorter prefixed ALLOW.

use std::time::Duration;

use samsa_integration_tests::{util, wait_until, Cluster};
use serde_json::Value;

use crate::acl_enforcement::authz_ops;
use crate::acls::{acl_ops, sasl_plain, wire_describe_all, AUTHORIZER};

const USERS: &str = "org.apache.kafka.common.security.plain.PlainLoginModule required \
    username=\"admin\" password=\"admin-pw\" user_admin=\"admin-pw\" user_alice=\"alice-pw\";";

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

#[test]
fn acl_enforcement_txn_records_partitions_prefixed() {
    let (ps, p0) = (util::free_port(), util::free_port());
    let cluster = Cluster::builder("aclops")
        .prop(
            "listeners",
            format!("SASL_PLAINTEXT://127.0.0.1:{ps},PLAINTEXT://127.0.0.1:{p0}"),
        )
        .prop("inter.broker.listener.name", "PLAINTEXT")
        .prop("sasl.enabled.mechanisms", "PLAIN")
        .prop("listener.name.sasl_plaintext.plain.sasl.jaas.config", USERS)
        .prop("authorizer.class.name", AUTHORIZER)
        .prop("super.users", "User:admin;User:ANONYMOUS")
        .start();
    let sasl = format!("127.0.0.1:{ps}");
    let plain = format!("127.0.0.1:{p0}");
    let admin = sasl_plain("admin", "admin-pw");
    let alice = sasl_plain("alice", "alice-pw");

    let r = authz_ops(
        &sasl,
        &admin,
        &[
            "create|pre-a|1",
            "create|pre-xs|1",
            "create|other|1",
            "produce|pre-a|false",
            "produce|pre-a|false",
            "produce|pre-xs|false",
            "produce|other|false",
        ],
    );
    for i in 0..7 {
        ok(&r, &format!("s{i}"));
    }

    // No ACLs: every step refused with Kafka's exception.
    let r = authz_ops(
        &sasl,
        &alice,
        &[
            "txn|tx-alice|pre-a",
            "delete-records|pre-a|1",
            "create-partitions|pre-a|2",
        ],
    );
    assert_eq!(
        failed(&r, "s0"),
        "TransactionalIdAuthorizationException",
        "{r}"
    );
    assert_eq!(failed(&r, "s1"), "TopicAuthorizationException", "{r}");
    assert_eq!(failed(&r, "s2"), "TopicAuthorizationException", "{r}");

    // Prefixed grants: topics `pre-*` (write, describe, delete, alter), transactional ids
    // `tx-*`; a prefixed DENY of DELETE on `pre-x*`.
    let grants = [
        "create|TOPIC|pre-|PREFIXED|User:alice|*|WRITE|ALLOW",
        "create|TOPIC|pre-|PREFIXED|User:alice|*|DESCRIBE|ALLOW",
        "create|TOPIC|pre-|PREFIXED|User:alice|*|DELETE|ALLOW",
        "create|TOPIC|pre-|PREFIXED|User:alice|*|ALTER|ALLOW",
        "create|TOPIC|pre-x|PREFIXED|User:alice|*|DELETE|DENY",
        "create|TRANSACTIONAL_ID|tx-|PREFIXED|User:alice|*|WRITE|ALLOW",
    ];
    let r = acl_ops(&plain, &[], &grants);
    for i in 0..grants.len() {
        assert_eq!(r[format!("s{i}")]["ok"], true, "{r}");
    }
    wait_until("grants cached", Duration::from_secs(15), || {
        (wire_describe_all(&plain).len() == grants.len()).then_some(())
    });

    let r = authz_ops(
        &sasl,
        &alice,
        &[
            "txn|tx-alice|pre-a",
            "delete-records|pre-a|2",
            "create-partitions|pre-a|2",
            "txn|other-tx|pre-a",
            "txn|tx-alice2|other",
            "delete-records|other|1",
            "create-partitions|other|2",
            "delete-records|pre-xs|1",
        ],
    );
    ok(&r, "s0");
    assert_eq!(r["s1"]["low"], 2, "{r}");
    ok(&r, "s2");
    assert_eq!(
        failed(&r, "s3"),
        "TransactionalIdAuthorizationException",
        "{r}"
    );
    assert_eq!(failed(&r, "s4"), "TopicAuthorizationException", "{r}");
    assert_eq!(failed(&r, "s5"), "TopicAuthorizationException", "{r}");
    assert_eq!(failed(&r, "s6"), "TopicAuthorizationException", "{r}");
    assert_eq!(
        failed(&r, "s7"),
        "TopicAuthorizationException",
        "prefixed DENY: {r}"
    );
    // CreatePartitions went through the controller into the topic znode.
    let t = cluster.zk().json("/brokers/topics/pre-a").unwrap();
    assert_eq!(t["partitions"].as_object().unwrap().len(), 2, "{t}");
    cluster.finish();
}
