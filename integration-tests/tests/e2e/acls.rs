//! ACLs end to end: the ZooKeeper ACL authorizer (`authorizer.class.name`) with the Java
//! 3.9.1 Admin client (CreateAcls, DescribeAcls with filters, DeleteAcls), the znodes it
//! leaves (readable by Kafka's `kafka-acls.sh`), ACLs written straight into ZooKeeper as
//! `kafka-acls.sh --authorizer-properties zookeeper.connect=...` does, reaching every broker
//! through the change notifications, CLUSTER_AUTHORIZATION_FAILED for a non-super user on a
//! SASL PLAIN listener, and SECURITY_DISABLED without an authorizer.

use std::time::Duration;

use kafka_protocol::messages::{ApiKey, DescribeAclsRequest, DescribeAclsResponse};
use samsa_integration_tests::{clients, util, wait_until, wire, BrokerSpec, Cluster};
use serde_json::Value;
use zookeeper_client::CreateMode;

pub(crate) const AUTHORIZER: &str = "kafka.security.authorizer.AclAuthorizer";
const ADMIN_PLAIN: &str = "org.apache.kafka.common.security.plain.PlainLoginModule required \
    username=\"admin\" password=\"admin-pw\" user_admin=\"admin-pw\" user_alice=\"alice-pw\";";

/// Runs AclOps steps; `props` are client settings (`k=v`).
pub(crate) fn acl_ops(bootstrap: &str, props: &[String], steps: &[&str]) -> Value {
    let mut args = vec![bootstrap.to_string()];
    for p in props {
        args.push("--prop".into());
        args.push(p.clone());
    }
    args.extend(steps.iter().map(|s| s.to_string()));
    clients::java("AclOps", &args, Duration::from_secs(120)).unwrap()
}

pub(crate) fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

pub(crate) fn sasl_plain(user: &str, pw: &str) -> Vec<String> {
    vec![
        "security.protocol=SASL_PLAINTEXT".into(),
        "sasl.mechanism=PLAIN".into(),
        format!(
            "sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required \
             username=\"{user}\" password=\"{pw}\";"
        ),
    ]
}

/// All ACLs one broker holds, as "Topic:LITERAL:name principal host op perm" codes.
pub(crate) fn wire_describe_all(addr: &str) -> Vec<String> {
    let mut c = wire::Conn::connect(addr).unwrap();
    let mut req = DescribeAclsRequest::default();
    req.resource_type_filter = 1;
    req.resource_name_filter = None;
    req.principal_filter = None;
    req.host_filter = None;
    req.pattern_type_filter = 1;
    req.operation = 1;
    req.permission_type = 1;
    let r: DescribeAclsResponse = c.request(ApiKey::DescribeAcls, 3, &req).unwrap();
    assert_eq!(r.error_code, 0, "{r:?}");
    let mut out: Vec<String> = r
        .resources
        .iter()
        .flat_map(|res| {
            res.acls.iter().map(move |a| {
                format!(
                    "{}:{}:{} {} {} {} {}",
                    res.resource_type,
                    res.pattern_type,
                    res.resource_name.as_str(),
                    a.principal.as_str(),
                    a.host.as_str(),
                    a.operation,
                    a.permission_type
                )
            })
        })
        .collect();
    out.sort();
    out
}

#[test]
fn acls_java_admin_create_describe_delete_and_znodes() {
    let (ps, p0) = (util::free_port(), util::free_port());
    let spec = BrokerSpec::id(1).prop(
        "listeners",
        format!("SASL_PLAINTEXT://127.0.0.1:{ps},PLAINTEXT://127.0.0.1:{p0}"),
    );
    let cluster = Cluster::builder("acls")
        .specs(vec![spec])
        .prop("inter.broker.listener.name", "PLAINTEXT")
        .prop("sasl.enabled.mechanisms", "PLAIN")
        .prop(
            "listener.name.sasl_plaintext.plain.sasl.jaas.config",
            ADMIN_PLAIN,
        )
        .prop("authorizer.class.name", AUTHORIZER)
        // PLAINTEXT clients (and inter-broker traffic) are User:ANONYMOUS.
        .prop("super.users", "User:admin;User:ANONYMOUS")
        .start();
    let b = cluster.bootstrap();
    let zk = cluster.zk();
    // ACL paths exist from start-up, as Kafka's createAclPaths makes them.
    for p in [
        "/kafka-acl/Topic",
        "/kafka-acl/TransactionalId",
        "/kafka-acl-changes",
        "/kafka-acl-extended/prefixed/Group",
        "/kafka-acl-extended-changes",
    ] {
        assert!(zk.exists(p).unwrap().is_some(), "{p}");
    }

    let r = acl_ops(
        &b,
        &[],
        &[
            "create|TOPIC|t1|LITERAL|User:alice|*|READ|ALLOW",
            "create|TOPIC|pay|PREFIXED|User:bob|*|WRITE|ALLOW",
            "create|GROUP|*|LITERAL|User:alice|*|READ|ALLOW",
            "create|TOPIC|t1|LITERAL|User:*|10.0.0.1|DESCRIBE|DENY",
            "create|CLUSTER|not-the-cluster|LITERAL|User:alice|*|ALTER|ALLOW",
            "create|TOPIC|a/b|LITERAL|User:alice|*|READ|ALLOW",
            // Describe: everything, by principal, MATCH, exact pattern types.
            "describe|-|-|-|-|-|-|-",
            "describe|-|-|-|User:alice|-|-|-",
            "describe|TOPIC|payments|MATCH|-|-|-|-",
            "describe|TOPIC|pay|LITERAL|-|-|-|-",
            "describe|TOPIC|pay|PREFIXED|-|-|-|-",
            "describe|TOPIC|t1|ANY|-|-|-|DENY",
            "describe|GROUP|any-group|MATCH|-|-|READ|-",
            // Delete by principal on one topic, then by prefixed pattern.
            "delete|TOPIC|t1|ANY|User:*|-|-|-",
            "delete|TOPIC|pay|PREFIXED|-|-|-|-",
            "delete|TOPIC|nothing-here|LITERAL|-|-|-|-",
            "describe|-|-|-|-|-|-|-",
        ],
    );
    for s in ["s0", "s1", "s2", "s3"] {
        assert_eq!(r[s]["ok"], true, "{s}: {r}");
    }
    for s in ["s4", "s5"] {
        let e = r[s]["error"].as_str().unwrap_or_else(|| panic!("{s}: {r}"));
        assert!(e.starts_with("InvalidRequestException"), "{s}: {e}");
    }
    assert!(r["s4"]["error"]
        .as_str()
        .unwrap()
        .contains("The only valid name for the CLUSTER resource is kafka-cluster"));
    let all = [
        "GROUP:LITERAL:* User:alice * READ ALLOW",
        "TOPIC:LITERAL:t1 User:* 10.0.0.1 DESCRIBE DENY",
        "TOPIC:LITERAL:t1 User:alice * READ ALLOW",
        "TOPIC:PREFIXED:pay User:bob * WRITE ALLOW",
    ];
    assert_eq!(strings(&r["s6"]["bindings"]), all);
    assert_eq!(
        strings(&r["s7"]["bindings"]),
        [all[0], all[2]],
        "by principal"
    );
    assert_eq!(strings(&r["s8"]["bindings"]), [all[3]], "MATCH");
    assert!(strings(&r["s9"]["bindings"]).is_empty(), "LITERAL pay");
    assert_eq!(strings(&r["s10"]["bindings"]), [all[3]], "PREFIXED pay");
    assert_eq!(strings(&r["s11"]["bindings"]), [all[1]], "DENY on t1");
    assert_eq!(strings(&r["s12"]["bindings"]), [all[0]], "wildcard group");
    assert_eq!(strings(&r["s13"]["deleted"]), [all[1]]);
    assert_eq!(strings(&r["s14"]["deleted"]), [all[3]]);
    assert!(strings(&r["s15"]["deleted"]).is_empty());
    assert_eq!(strings(&r["s16"]["bindings"]), [all[0], all[2]]);

    // The znodes as Kafka writes them.
    let t1 = zk.json("/kafka-acl/Topic/t1").unwrap();
    assert_eq!(
        t1,
        serde_json::json!({"version": 1, "acls": [
            {"principal": "User:alice", "permissionType": "Allow", "operation": "Read", "host": "*"}
        ]})
    );
    assert!(zk.exists("/kafka-acl/Group/*").unwrap().is_some());
    assert!(zk
        .exists("/kafka-acl-extended/prefixed/Topic/pay")
        .unwrap()
        .is_none());
    let changes = zk.children("/kafka-acl-changes").unwrap().unwrap();
    let payloads: Vec<String> = changes
        .iter()
        .map(|c| {
            zk.get(&format!("/kafka-acl-changes/{c}"))
                .unwrap()
                .unwrap()
                .text()
        })
        .collect();
    assert!(
        payloads.iter().all(|p| p == "TOPIC:t1" || p == "GROUP:*"),
        "{payloads:?}"
    );
    let ext = zk.children("/kafka-acl-extended-changes").unwrap().unwrap();
    assert_eq!(ext.len(), 2, "create and delete of the prefixed ACL");
    let ev = zk
        .json(&format!("/kafka-acl-extended-changes/{}", ext[0]))
        .unwrap();
    assert_eq!(
        ev,
        serde_json::json!({"version": 1, "resourceType": "TOPIC", "name": "pay", "patternType": "PREFIXED"})
    );

    // A non-super user over SASL PLAIN: no ALTER / DESCRIBE on the cluster.
    let sasl = format!("127.0.0.1:{ps}");
    let alice = sasl_plain("alice", "alice-pw");
    let r = acl_ops(
        &sasl,
        &alice,
        &[
            "create|TOPIC|x|LITERAL|User:alice|*|READ|ALLOW",
            "describe|-|-|-|-|-|-|-",
            "delete|-|-|-|-|-|-|-",
        ],
    );
    for s in ["s0", "s1", "s2"] {
        let e = r[s]["error"].as_str().unwrap_or_else(|| panic!("{s}: {r}"));
        assert!(e.starts_with("ClusterAuthorizationException"), "{s}: {e}");
    }
    // The super user over SASL grants it ALTER on the cluster (DESCRIBE is implied).
    let admin = sasl_plain("admin", "admin-pw");
    let r = acl_ops(
        &sasl,
        &admin,
        &["create|CLUSTER|kafka-cluster|LITERAL|User:alice|*|ALTER|ALLOW"],
    );
    assert_eq!(r["s0"]["ok"], true, "{r}");
    let r = acl_ops(
        &sasl,
        &alice,
        &[
            "create|TOPIC|x|LITERAL|User:alice|*|READ|ALLOW",
            "describe|TOPIC|x|LITERAL|-|-|-|-",
        ],
    );
    assert_eq!(r["s0"]["ok"], true, "{r}");
    assert_eq!(
        strings(&r["s1"]["bindings"]),
        ["TOPIC:LITERAL:x User:alice * READ ALLOW"]
    );
    cluster.finish();
}

/// ACLs written into ZooKeeper by another tool (the resource node, then a change
/// notification, as `kafka-acls.sh --authorizer-properties zookeeper.connect=...` does) are
/// served by every broker within seconds; so are ACLs created through another broker.
#[test]
fn acls_written_to_znodes_reach_every_broker() {
    let cluster = Cluster::builder("aclzk")
        .brokers(2)
        .prop(
            "authorizer.class.name",
            "kafka.security.auth.SimpleAclAuthorizer",
        )
        .prop("super.users", "User:ANONYMOUS")
        .start();
    cluster.wait_registered(Duration::from_secs(30));
    let zk = cluster.zk();
    let addrs: Vec<String> = cluster.brokers.iter().map(|b| b.addr()).collect();
    for a in &addrs {
        assert!(wire_describe_all(a).is_empty());
    }
    zk.create(
        "/kafka-acl/Topic/from-zk",
        br#"{"version":1,"acls":[{"principal":"User:carol","permissionType":"Allow","operation":"Write","host":"*"}]}"#,
        CreateMode::Persistent,
    )
    .unwrap();
    zk.create(
        "/kafka-acl-changes/acl_changes_",
        b"TOPIC:from-zk",
        CreateMode::PersistentSequential,
    )
    .unwrap();
    zk.create(
        "/kafka-acl-extended/prefixed/Group/team-",
        br#"{"version":1,"acls":[{"principal":"User:dave","permissionType":"Deny","operation":"Read","host":"10.1.1.1"}]}"#,
        CreateMode::Persistent,
    )
    .unwrap();
    zk.create(
        "/kafka-acl-extended-changes/acl_changes_",
        br#"{"version":1,"resourceType":"GROUP","name":"team-","patternType":"PREFIXED"}"#,
        CreateMode::PersistentSequential,
    )
    .unwrap();
    let want = [
        "2:3:from-zk User:carol * 4 3".to_string(),
        "3:4:team- User:dave 10.1.1.1 3 2".to_string(),
    ];
    for a in &addrs {
        wait_until(
            &format!("ACLs from ZooKeeper on {a}"),
            Duration::from_secs(15),
            || (wire_describe_all(a) == want).then_some(()),
        );
    }
    // Created through broker 1 (Java Admin bootstrapped there), seen on broker 2.
    let r = acl_ops(
        &addrs[0],
        &[],
        &["create|TRANSACTIONAL_ID|tx-1|LITERAL|User:erin|*|WRITE|ALLOW"],
    );
    assert_eq!(r["s0"]["ok"], true, "{r}");
    wait_until("created ACL on broker 2", Duration::from_secs(15), || {
        wire_describe_all(&addrs[1])
            .contains(&"5:3:tx-1 User:erin * 4 3".to_string())
            .then_some(())
    });
    // Removed in ZooKeeper (node deleted, notification written): gone everywhere.
    zk.delete("/kafka-acl/Topic/from-zk").unwrap();
    zk.create(
        "/kafka-acl-changes/acl_changes_",
        b"TOPIC:from-zk",
        CreateMode::PersistentSequential,
    )
    .unwrap();
    for a in &addrs {
        wait_until(
            &format!("ACL removal on {a}"),
            Duration::from_secs(15),
            || (!wire_describe_all(a).contains(&want[0])).then_some(()),
        );
    }
    cluster.finish();
}

/// Without `authorizer.class.name` the ACL APIs answer SECURITY_DISABLED.
#[test]
fn acls_security_disabled_without_authorizer() {
    let cluster = Cluster::single("aclnone");
    let r = acl_ops(
        &cluster.bootstrap(),
        &[],
        &[
            "create|TOPIC|t|LITERAL|User:alice|*|READ|ALLOW",
            "describe|-|-|-|-|-|-|-",
            "delete|-|-|-|-|-|-|-",
        ],
    );
    for s in ["s0", "s1", "s2"] {
        let e = r[s]["error"].as_str().unwrap_or_else(|| panic!("{s}: {r}"));
        assert!(e.starts_with("SecurityDisabledException"), "{s}: {e}");
    }
    assert!(cluster.zk().exists("/kafka-acl").unwrap().is_none());
    cluster.finish();
}
