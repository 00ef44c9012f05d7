//! Delegation tokens end to end (issue 9): the Java 3.9.1 Admin client creates, describes,
//! renews and expires tokens over a SASL_PLAINTEXT SCRAM listener; the Java client logs in
//! with a token (SCRAM, `tokenauth=true`) on the other broker, which learned the token from
//! the ZooKeeper change notification; expired and removed tokens are refused; the token
//! znodes are Kafka's.

use std::time::Duration;

use samsa_common::security::scram::ScramMechanism;
use samsa_integration_tests::{clients, util, wait_until, BrokerSpec, Cluster};
use serde_json::Value;

use crate::common::create_topic;
use crate::security::add_scram_user;

const T: Duration = Duration::from_secs(120);
const DAY: i64 = 24 * 3600 * 1000;

fn scram_jaas(user: &str, pw: &str, token: bool) -> String {
    format!(
        "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required \
         username=\"{user}\" password=\"{pw}\"{};",
        if token { " tokenauth=\"true\"" } else { "" }
    )
}

fn sasl(user: &str, pw: &str, token: bool) -> Vec<String> {
    vec![
        "security.protocol=SASL_PLAINTEXT".into(),
        "sasl.mechanism=SCRAM-SHA-512".into(),
        scram_jaas(user, pw, token),
    ]
}

fn admin(bootstrap: &str, op: &[&str], props: &[String]) -> Value {
    let mut args = vec![bootstrap.to_string()];
    args.extend(op.iter().map(|s| s.to_string()));
    args.extend(props.iter().cloned());
    clients::java("TokenAdmin", &args, T).unwrap()
}

fn error(r: &Value) -> String {
    r["error"]
        .as_str()
        .unwrap_or_else(|| panic!("expected a refusal: {r}"))
        .to_string()
}

/// Produce + consume through `bootstrap` as the token; the JSON of SecureRoundTrip.
fn token_roundtrip(bootstrap: &str, topic: &str, id: &str, hmac: &str) -> Value {
    let mut args = vec![bootstrap.to_string(), topic.to_string(), "5".to_string()];
    args.extend(sasl(id, hmac, true));
    clients::java("SecureRoundTrip", &args, T).unwrap()
}

#[test]
fn security_delegation_tokens() {
    let sasl_ports = [util::free_port(), util::free_port()];
    let specs: Vec<BrokerSpec> = (0..2)
        .map(|i| {
            BrokerSpec::id(i as i32 + 1).prop(
                "listeners",
                format!(
                    "SASL_PLAINTEXT://127.0.0.1:{},PLAINTEXT://127.0.0.1:{}",
                    sasl_ports[i],
                    util::free_port()
                ),
            )
        })
        .collect();
    let mut cluster = Cluster::builder("sectok")
        .specs(specs)
        .prop("inter.broker.listener.name", "PLAINTEXT")
        .prop("sasl.enabled.mechanisms", "SCRAM-SHA-256,SCRAM-SHA-512")
        // The older name of delegation.token.secret.key.
        .prop("delegation.token.master.key", "token-secret")
        .prop("delegation.token.expiry.check.interval.ms", "500")
        .configure_only()
        .start();
    for u in ["alice", "bob", "carol"] {
        add_scram_user(&cluster, u, &format!("{u}-pw"), &ScramMechanism::ALL, false);
    }
    for b in &mut cluster.brokers {
        b.spawn().unwrap();
    }
    for b in &mut cluster.brokers {
        b.wait_ready(T).unwrap();
    }
    cluster.wait_registered(T);
    create_topic(
        &cluster.bootstrap(),
        "tok",
        1,
        1,
        crate::common::KEEP_FOREVER,
    );
    let s1 = format!("127.0.0.1:{}", sasl_ports[0]);
    let s2 = format!("127.0.0.1:{}", sasl_ports[1]);
    let alice = sasl("alice", "alice-pw", false);
    let bob = sasl("bob", "bob-pw", false);
    let carol = sasl("carol", "carol-pw", false);

    // Not over PLAINTEXT (DELEGATION_TOKEN_REQUEST_NOT_ALLOWED).
    let r = admin(&cluster.brokers[0].addr(), &["create", "-", "-", "0"], &[]);
    assert!(
        error(&r).contains("UnsupportedByAuthenticationException"),
        "{r}"
    );

    // alice creates a token on broker 1 that bob may renew: Kafka's default lifetimes.
    let t = admin(&s1, &["create", "-", "User:bob", "0"], &alice);
    assert_eq!(t["owner"], "User:alice", "{t}");
    assert_eq!(t["requester"], "User:alice", "{t}");
    assert_eq!(t["renewers"], serde_json::json!(["User:bob"]), "{t}");
    let issue = t["issue"].as_i64().unwrap();
    assert_eq!(t["max"].as_i64().unwrap() - issue, 7 * DAY, "{t}");
    assert_eq!(t["expiry"].as_i64().unwrap() - issue, DAY, "{t}");
    let id = t["tokenId"].as_str().unwrap().to_string();
    let hmac = t["hmac"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 22, "{t}");

    // Stored as Kafka stores it.
    let z = cluster
        .zk()
        .json(&format!("/delegation_token/tokens/{id}"))
        .unwrap();
    assert_eq!(z["version"], 3, "{z}");
    assert_eq!(z["owner"], "User%3Aalice", "{z}");
    assert_eq!(z["tokenRequester"], "User%3Aalice", "{z}");
    assert_eq!(z["renewers"], serde_json::json!(["User%3Abob"]), "{z}");
    assert_eq!(z["tokenId"], id.as_str(), "{z}");
    assert_eq!(z["expiryTimestamp"], t["expiry"], "{z}");
    assert!(z.get("hmac").is_none(), "{z}");
    let changes = cluster
        .zk()
        .children("/delegation_token/token_changes")
        .unwrap()
        .unwrap();
    assert!(
        changes.iter().any(|c| c.starts_with("token_change_")),
        "{changes:?}"
    );

    // Broker 2 learned it from the notification: describe there, and log in there.
    wait_until("broker 2 describes the token", T, || {
        let d = admin(&s2, &["describe", "-"], &carol);
        d["tokens"]
            .as_array()
            .unwrap_or_else(|| panic!("{d}"))
            .iter()
            .any(|x| x["tokenId"] == id.as_str() && x["hmac"] == hmac.as_str())
            .then_some(())
    });
    let d = admin(&s2, &["describe", "User:nobody"], &carol);
    assert_eq!(d["tokens"], serde_json::json!([]), "{d}");
    let d = admin(&s1, &["describe", "User:bob"], &bob);
    assert_eq!(d["tokens"][0]["tokenId"], id.as_str(), "{d}");

    let r = token_roundtrip(&s2, "tok", &id, &hmac);
    assert_eq!(r["acked"], 5, "token login on broker 2: {r}");
    let r = token_roundtrip(&s1, "tok", &id, "bm90LXRoZS1obWFj");
    assert!(
        error(&r).contains("SaslAuthenticationException"),
        "wrong HMAC: {r}"
    );
    // A token-authenticated session may not ask for tokens.
    let r = admin(&s1, &["create", "-", "-", "0"], &sasl(&id, &hmac, true));
    assert!(
        error(&r).contains("UnsupportedByAuthenticationException"),
        "{r}"
    );

    // Renew: only the owner or a renewer; unknown HMACs are not found.
    let r = admin(&s2, &["renew", &hmac, "60000"], &carol);
    assert!(
        error(&r).contains("DelegationTokenOwnerMismatchException"),
        "{r}"
    );
    let r = admin(&s2, &["renew", &hmac, "60000"], &bob);
    let expiry = r["expiry"].as_i64().unwrap_or_else(|| panic!("renew: {r}"));
    assert!(
        expiry > issue && expiry < t["expiry"].as_i64().unwrap(),
        "{r}"
    );
    let r = admin(&s1, &["expire", "bm90LXRoZS1obWFj", "-1"], &alice);
    assert!(
        error(&r).contains("DelegationTokenNotFoundException"),
        "{r}"
    );

    // Expire now: removed from ZooKeeper and every broker; the token no longer logs in.
    let r = admin(&s1, &["expire", &hmac, "-1"], &alice);
    assert!(r["expiry"].as_i64().is_some(), "{r}");
    assert!(cluster
        .zk()
        .exists(&format!("/delegation_token/tokens/{id}"))
        .unwrap()
        .is_none());
    let r = token_roundtrip(&s1, "tok", &id, &hmac);
    assert!(
        error(&r).contains("SaslAuthenticationException"),
        "expired token on broker 1: {r}"
    );
    wait_until("broker 2 forgets the token", T, || {
        let d = admin(&s2, &["describe", "-"], &alice);
        d["tokens"]
            .as_array()
            .is_some_and(|a| a.is_empty())
            .then_some(())
    });

    // A token past its maximum lifetime is removed by the controller's expiry scan.
    let t = admin(&s2, &["create", "-", "-", "1500"], &bob);
    let id2 = t["tokenId"]
        .as_str()
        .unwrap_or_else(|| panic!("{t}"))
        .to_string();
    let hmac2 = t["hmac"].as_str().unwrap().to_string();
    assert_eq!(
        t["max"].as_i64().unwrap() - t["issue"].as_i64().unwrap(),
        1500,
        "{t}"
    );
    wait_until("the expiry scan removes the token", T, || {
        cluster
            .zk()
            .exists(&format!("/delegation_token/tokens/{id2}"))
            .unwrap()
            .is_none()
            .then_some(())
    });
    // Every broker has dropped it once the notification is handled.
    for s in [&s1, &s2] {
        wait_until("token gone from the broker", T, || {
            let d = admin(s, &["describe", "-"], &bob);
            d["tokens"]
                .as_array()
                .is_some_and(|a| a.is_empty())
                .then_some(())
        });
        let r = token_roundtrip(s, "tok", &id2, &hmac2);
        assert!(
            error(&r).contains("SaslAuthenticationException"),
            "expired token on {s}: {r}"
        );
    }
    cluster.finish();
}
