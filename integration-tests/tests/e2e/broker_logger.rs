//! BROKER_LOGGER (KIP-412) through the Java Admin client: describe the log levels,
//! change them at run time, and see the broker's output follow.

use std::time::Duration;

use samsa_integration_tests::{clients, util, Cluster};

fn admin(b: &str, steps: &[&str]) -> serde_json::Value {
    let mut args = vec![b.to_string(), "blog".to_string()];
    args.extend(steps.iter().map(|s| s.to_string()));
    clients::java("AdminOps", &args, Duration::from_secs(180)).unwrap()
}

fn debug_lines(log: &str) -> usize {
    log.lines()
        .filter(|l| l.contains(" DEBUG samsa_broker"))
        .count()
}

#[test]
fn java_admin_broker_logger_levels() {
    let cluster = Cluster::single("blogger");
    cluster.wait_registered(Duration::from_secs(30));
    let b = cluster.bootstrap();

    let r = admin(
        &b,
        &[
            "loggers:1",
            "logger_set:1:kafka.server:LOUD",
            "logger_set:1:no.such.logger:INFO",
            "logger_delete:1:root",
            "logger_legacy_alter:1",
            "logger_set:1:samsa_broker::replica:TRACE",
            "loggers:1:samsa_broker::replica",
        ],
    );
    let all = &r["loggers:1"];
    assert_eq!(all["root"]["level"], "INFO", "{all}");
    assert_eq!(all["root"]["source"], "DYNAMIC_BROKER_LOGGER_CONFIG");
    assert_eq!(all["root"]["read_only"], false);
    assert_eq!(all["kafka.server"]["level"], "INFO", "{all}");
    assert_eq!(all["kafka.controller"]["level"], "INFO", "{all}");
    let err = |step: &str| r[step]["error"].as_str().unwrap_or("none").to_string();
    assert_eq!(
        err("logger_set:1:kafka.server:LOUD"),
        "InvalidConfigurationException"
    );
    assert_eq!(
        err("logger_set:1:no.such.logger:INFO"),
        "InvalidConfigurationException"
    );
    assert_eq!(err("logger_delete:1:root"), "InvalidRequestException");
    assert_eq!(err("logger_legacy_alter:1"), "InvalidRequestException");
    assert_eq!(r["logger_set:1:samsa_broker::replica:TRACE"]["ok"], true);
    assert_eq!(
        r["loggers:1:samsa_broker::replica"],
        serde_json::json!({"samsa_broker::replica":
            {"level":"TRACE","source":"DYNAMIC_BROKER_LOGGER_CONFIG","read_only":false}})
    );

    // Nothing logs at DEBUG under RUST_LOG=info; raising kafka.server (= samsa_broker) to
    // DEBUG makes deleting a topic log the UpdateMetadata that drops its partitions.
    let default_filter = std::env::var("SAMSA_TEST_RUST_LOG").is_err();
    if default_filter {
        assert_eq!(debug_lines(&cluster.brokers[0].log_text()), 0);
    }
    let r = admin(
        &b,
        &[
            "logger_set:1:kafka.server:DEBUG",
            "loggers:1:kafka.server",
            "create",
            "delete",
        ],
    );
    assert_eq!(
        r["loggers:1:kafka.server"]["kafka.server"]["level"],
        "DEBUG"
    );
    assert!(r["delete"].get("error").is_none(), "{r}");
    let broker = &cluster.brokers[0];
    util::wait_until(
        "DEBUG lines from samsa_broker",
        Duration::from_secs(60),
        || (debug_lines(&broker.log_text()) > 0).then_some(()),
    );
    assert!(broker
        .log_text()
        .contains("Updating the log level of kafka.server to DEBUG"));

    // DELETE puts kafka.server back on root's level.
    let r = admin(
        &b,
        &[
            "logger_delete:1:kafka.server",
            "logger_delete:1:samsa_broker::replica",
            "loggers:1",
        ],
    );
    let all = &r["loggers:1"];
    assert_eq!(all["kafka.server"]["level"], "INFO", "{all}");
    assert!(all.get("samsa_broker::replica").is_none(), "{all}");
    cluster.finish();
}
