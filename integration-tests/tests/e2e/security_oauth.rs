//! SASL/OAUTHBEARER with Kafka's unsecured-JWT validator (the broker's default
//! `OAuthBearerUnsecuredValidatorCallbackHandler`), issue 9: confluent-kafka (librdkafka's
//! `enable.sasl.oauthbearer.unsecure.jwt`) produces and consumes; a token without the scope the
//! broker requires is refused with Kafka's `insufficient_scope` JSON as the authentication
//! error. (The Java client's unsecured login handler needs Jackson, which `.tools/jars` lacks.)

use samsa_integration_tests::{util, Cluster};
use serde_json::json;

use crate::security::{assert_roundtrip, error_of, fresh_topic, python};

const SERVER_JAAS: &str = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule \
    required unsecuredValidatorRequiredScope=\"kafka\" unsecuredValidatorAllowableClockSkewMs=\"5000\";";

#[test]
fn security_oauthbearer_unsecured_jwt() {
    let (p0, p1) = (util::free_port(), util::free_port());
    let cluster = Cluster::builder("secoauth")
        .prop(
            "listeners",
            format!("SASL_PLAINTEXT://127.0.0.1:{p1},PLAINTEXT://127.0.0.1:{p0}"),
        )
        .prop("inter.broker.listener.name", "PLAINTEXT")
        .prop("sasl.enabled.mechanisms", "OAUTHBEARER")
        .prop(
            "listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config",
            SERVER_JAAS,
        )
        .start();
    let sp = format!("127.0.0.1:{p1}");
    let confluent = |config: &str| {
        json!({"security.protocol": "SASL_PLAINTEXT", "sasl.mechanisms": "OAUTHBEARER",
               "enable.sasl.oauthbearer.unsecure.jwt": true, "sasl.oauthbearer.config": config})
    };
    let r = python(
        "confluent",
        &sp,
        &fresh_topic(&cluster, "oauth"),
        10,
        confluent("principal=alice scope=kafka"),
    );
    assert_roundtrip("confluent OAUTHBEARER", &r, 10);

    // Without the required scope: the JSON error challenge, then SASL_AUTHENTICATION_FAILED.
    let r = python(
        "confluent",
        &sp,
        &fresh_topic(&cluster, "oauth"),
        1,
        confluent("principal=alice"),
    );
    let e = error_of("confluent without scope", &r);
    assert!(e.contains("insufficient_scope"), "{e}");
    cluster.finish();
}
