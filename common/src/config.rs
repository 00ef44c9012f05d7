//! `BrokerConfig`: every `server.properties` key Samsa understands, with Kafka 3.9's
//! names, types and defaults, parsed and validated once at start-up.
//!
//! The definitions live in one table ([`BROKER_CONFIGS`]) so that parsing, unknown-key
//! detection and broker-level DescribeConfigs all agree. Typed fields on
//! [`BrokerConfig`] are derived from that table; derived values follow Kafka's
//! precedence rules (e.g. `log.retention.ms` > `log.retention.minutes` >
//! `log.retention.hours`, `log.dirs` > `log.dir`).
//!
//! Topic-level configs ([`TOPIC_CONFIGS`]) name their broker synonym(s);
//! [`BrokerConfig::topic_defaults`] gives every topic key's broker-derived value.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::properties;
use crate::types::BrokerId;

pub mod dynamic;

/// Kafka's `ConfigDef.Type`, with the code DescribeConfigs (v3+) reports as `config_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigType {
    Boolean,
    String,
    Int,
    Short,
    Long,
    Double,
    List,
    Class,
    Password,
}

impl ConfigType {
    /// `DescribeConfigsResponse` `config_type` code (`ConfigEntry.ConfigType` ordinal).
    pub fn code(self) -> i8 {
        match self {
            ConfigType::Boolean => 1,
            ConfigType::String => 2,
            ConfigType::Int => 3,
            ConfigType::Short => 4,
            ConfigType::Long => 5,
            ConfigType::Double => 6,
            ConfigType::List => 7,
            ConfigType::Class => 8,
            ConfigType::Password => 9,
        }
    }
}

/// One broker config key definition.
#[derive(Clone, Copy, Debug)]
pub struct ConfigDef {
    pub name: &'static str,
    pub ty: ConfigType,
    /// Kafka's default rendered as Kafka renders it; `None` = no default (null).
    pub default: Option<&'static str>,
    /// Password-typed or otherwise secret: DescribeConfigs hides the value.
    pub sensitive: bool,
    /// In Kafka's `DynamicBrokerConfig.AllDynamicConfigs`: may be set in
    /// `/config/brokers/<id>` or `<default>` (see [`dynamic`] for the per-broker rules).
    pub dynamic: bool,
}

const fn d(name: &'static str, ty: ConfigType, default: Option<&'static str>) -> ConfigDef {
    ConfigDef {
        name,
        ty,
        default,
        sensitive: false,
        dynamic: false,
    }
}
const fn dy(name: &'static str, ty: ConfigType, default: Option<&'static str>) -> ConfigDef {
    ConfigDef {
        name,
        ty,
        default,
        sensitive: false,
        dynamic: true,
    }
}

use ConfigType::{
    Boolean as B, Double as D, Int as I, List as L, Long as G, Password as P, Short as S,
    String as T,
};

const LONG_MAX: &str = "9223372036854775807";
const INT_MAX: &str = "2147483647";

/// Kafka's default `listener.security.protocol.map` (HashMap iteration order of Kafka's default).
pub const DEFAULT_LISTENER_SECURITY_PROTOCOL_MAP: &str =
    "SASL_SSL:SASL_SSL,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT";

/// Every broker key Samsa accepts (Kafka 3.9 names and defaults).
pub static BROKER_CONFIGS: &[ConfigDef] = &[
    // Broker identity and generation.
    d("broker.id", I, Some("-1")),
    d("broker.id.generation.enable", B, Some("true")),
    d("reserved.broker.max.id", I, Some("1000")),
    d("broker.rack", T, None),
    // Listeners.
    dy("listeners", T, Some("PLAINTEXT://:9092")),
    dy("advertised.listeners", T, None),
    dy(
        "listener.security.protocol.map",
        T,
        Some(DEFAULT_LISTENER_SECURITY_PROTOCOL_MAP),
    ),
    d("inter.broker.listener.name", T, None),
    d("security.inter.broker.protocol", T, Some("PLAINTEXT")),
    d("control.plane.listener.name", T, None),
    // Security: SASL and TLS (read per listener by the broker's security module, which
    // also honours the `listener.name.<listener>.` prefixed forms of these keys).
    dy("sasl.enabled.mechanisms", L, Some("GSSAPI")),
    dy("sasl.mechanism.inter.broker.protocol", T, Some("GSSAPI")),
    dy("sasl.jaas.config", P, None),
    d("connections.max.reauth.ms", G, Some("0")),
    // Delegation tokens (the secret key enables them; `master.key` is its old name).
    d("delegation.token.secret.key", P, None),
    d("delegation.token.master.key", P, None),
    d("delegation.token.max.lifetime.ms", G, Some("604800000")),
    d("delegation.token.expiry.time.ms", G, Some("86400000")),
    d(
        "delegation.token.expiry.check.interval.ms",
        G,
        Some("3600000"),
    ),
    dy("ssl.protocol", T, Some("TLSv1.3")),
    dy("ssl.enabled.protocols", L, Some("TLSv1.2,TLSv1.3")),
    dy("ssl.cipher.suites", L, None),
    dy("ssl.keystore.type", T, Some("JKS")),
    dy("ssl.keystore.location", T, None),
    dy("ssl.keystore.password", P, None),
    dy("ssl.key.password", P, None),
    dy("ssl.keystore.key", P, None),
    dy("ssl.keystore.certificate.chain", P, None),
    dy("ssl.truststore.type", T, Some("JKS")),
    dy("ssl.truststore.location", T, None),
    dy("ssl.truststore.password", P, None),
    dy("ssl.truststore.certificates", P, None),
    dy("ssl.client.auth", T, Some("none")),
    dy("ssl.endpoint.identification.algorithm", T, Some("https")),
    d("ssl.principal.mapping.rules", T, Some("DEFAULT")),
    dy("ssl.keymanager.algorithm", T, Some("SunX509")),
    dy("ssl.trustmanager.algorithm", T, Some("PKIX")),
    dy("ssl.secure.random.implementation", T, None),
    dy("ssl.provider", T, None),
    // Authorization: `super.users`, `allow.everyone.if.no.acl.found` and the
    // `authorizer.zookeeper.*` keys are the authorizer's own (not KafkaConfig keys), see
    // [`AUTHORIZER_KEYS`] and [`AclAuthorizerConfig`].
    d("authorizer.class.name", T, Some("")),
    // Password encoder for password-typed dynamic broker configs (see `config::dynamic`).
    d("password.encoder.secret", P, None),
    d("password.encoder.old.secret", P, None),
    d("password.encoder.keyfactory.algorithm", T, None),
    d(
        "password.encoder.cipher.algorithm",
        T,
        Some("AES/CBC/PKCS5Padding"),
    ),
    d("password.encoder.key.length", I, Some("128")),
    d("password.encoder.iterations", I, Some("4096")),
    // Log dirs.
    d("log.dirs", T, None),
    d("log.dir", T, Some("/tmp/kafka-logs")),
    // ZooKeeper.
    d("zookeeper.connect", T, None),
    d("zookeeper.session.timeout.ms", I, Some("18000")),
    d("zookeeper.connection.timeout.ms", I, None),
    d("zookeeper.max.in.flight.requests", I, Some("10")),
    d("zookeeper.set.acl", B, Some("false")),
    d("zookeeper.ssl.client.enable", B, Some("false")),
    // Topic / replication defaults.
    d("num.partitions", I, Some("1")),
    d("default.replication.factor", I, Some("1")),
    dy("min.insync.replicas", I, Some("1")),
    d("auto.create.topics.enable", B, Some("true")),
    d("delete.topic.enable", B, Some("true")),
    dy("message.max.bytes", I, Some("1048588")),
    // Socket server.
    d("socket.request.max.bytes", I, Some("104857600")),
    d("socket.send.buffer.bytes", I, Some("102400")),
    d("socket.receive.buffer.bytes", I, Some("102400")),
    d("socket.listen.backlog.size", I, Some("50")),
    dy("num.network.threads", I, Some("3")),
    dy("num.io.threads", I, Some("8")),
    dy("background.threads", I, Some("10")),
    dy("num.recovery.threads.per.data.dir", I, Some("1")),
    d("queued.max.requests", I, Some("500")),
    d("queued.max.request.bytes", G, Some("-1")),
    d("connections.max.idle.ms", G, Some("600000")),
    dy("max.connections", I, Some(INT_MAX)),
    dy("max.connections.per.ip", I, Some(INT_MAX)),
    dy("max.connections.per.ip.overrides", T, Some("")),
    dy("max.connection.creation.rate", I, Some(INT_MAX)),
    // Quota windows (client quotas, connection creation rates).
    d("quota.window.num", I, Some("11")),
    d("quota.window.size.seconds", I, Some("1")),
    d("controller.quota.window.num", I, Some("11")),
    d("controller.quota.window.size.seconds", I, Some("1")),
    d("request.timeout.ms", I, Some("30000")),
    d("fetch.max.bytes", I, Some("57671680")),
    // Controller / leadership.
    d("controller.socket.timeout.ms", I, Some("30000")),
    d("controlled.shutdown.enable", B, Some("true")),
    d("controlled.shutdown.max.retries", I, Some("3")),
    d("controlled.shutdown.retry.backoff.ms", G, Some("5000")),
    d("auto.leader.rebalance.enable", B, Some("true")),
    d("leader.imbalance.per.broker.percentage", I, Some("10")),
    d("leader.imbalance.check.interval.seconds", G, Some("300")),
    dy("unclean.leader.election.enable", B, Some("false")),
    // Replication.
    d("replica.lag.time.max.ms", G, Some("30000")),
    d("replica.socket.timeout.ms", I, Some("30000")),
    d("replica.socket.receive.buffer.bytes", I, Some("65536")),
    d("replica.fetch.max.bytes", I, Some("1048576")),
    d("replica.fetch.wait.max.ms", I, Some("500")),
    d("replica.fetch.min.bytes", I, Some("1")),
    d("replica.fetch.response.max.bytes", I, Some("10485760")),
    d("replica.fetch.backoff.ms", I, Some("1000")),
    d(
        "replica.high.watermark.checkpoint.interval.ms",
        G,
        Some("5000"),
    ),
    dy("num.replica.fetchers", I, Some("1")),
    d("replica.selector.class", T, None),
    d("inter.broker.protocol.version", T, Some("3.9-IV0")),
    // Group coordinator / offsets topic.
    d("offsets.topic.num.partitions", I, Some("50")),
    d("offsets.topic.replication.factor", S, Some("3")),
    d("offsets.topic.segment.bytes", I, Some("104857600")),
    d("offsets.topic.compression.codec", I, Some("0")),
    d("offsets.load.buffer.size", I, Some("5242880")),
    d("offsets.commit.required.acks", S, Some("-1")),
    d("offsets.commit.timeout.ms", I, Some("5000")),
    d("offsets.retention.minutes", I, Some("10080")),
    d("offsets.retention.check.interval.ms", G, Some("600000")),
    d("offset.metadata.max.bytes", I, Some("4096")),
    d("group.min.session.timeout.ms", I, Some("6000")),
    d("group.max.session.timeout.ms", I, Some("1800000")),
    d("group.initial.rebalance.delay.ms", I, Some("3000")),
    d("group.max.size", I, Some(INT_MAX)),
    // Transactions / producer ids.
    d("transaction.state.log.num.partitions", I, Some("50")),
    d("transaction.state.log.replication.factor", S, Some("3")),
    d("transaction.state.log.segment.bytes", I, Some("104857600")),
    d("transaction.state.log.min.isr", I, Some("2")),
    d("transaction.state.log.load.buffer.size", I, Some("5242880")),
    d("transaction.max.timeout.ms", I, Some("900000")),
    d("transactional.id.expiration.ms", I, Some("604800000")),
    d(
        "transaction.abort.timed.out.transaction.cleanup.interval.ms",
        I,
        Some("10000"),
    ),
    d(
        "transaction.remove.expired.transaction.cleanup.interval.ms",
        I,
        Some("3600000"),
    ),
    dy("transaction.partition.verification.enable", B, Some("true")),
    dy("producer.id.expiration.ms", I, Some("86400000")),
    d(
        "producer.id.expiration.check.interval.ms",
        I,
        Some("600000"),
    ),
    // Log storage (broker-wide defaults of topic configs).
    dy("log.segment.bytes", I, Some("1073741824")),
    dy("log.roll.ms", G, None),
    d("log.roll.hours", I, Some("168")),
    dy("log.roll.jitter.ms", G, None),
    d("log.roll.jitter.hours", I, Some("0")),
    dy("log.index.size.max.bytes", I, Some("10485760")),
    dy("log.index.interval.bytes", I, Some("4096")),
    dy("log.retention.ms", G, None),
    d("log.retention.minutes", I, None),
    d("log.retention.hours", I, Some("168")),
    dy("log.retention.bytes", G, Some("-1")),
    d("log.retention.check.interval.ms", G, Some("300000")),
    dy("log.cleanup.policy", L, Some("delete")),
    d("log.cleaner.enable", B, Some("true")),
    dy("log.cleaner.threads", I, Some("1")),
    dy(
        "log.cleaner.io.max.bytes.per.second",
        D,
        Some("1.7976931348623157E308"),
    ),
    dy("log.cleaner.dedupe.buffer.size", G, Some("134217728")),
    dy("log.cleaner.io.buffer.size", I, Some("524288")),
    dy("log.cleaner.io.buffer.load.factor", D, Some("0.9")),
    dy("log.cleaner.backoff.ms", G, Some("15000")),
    dy("log.cleaner.min.cleanable.ratio", D, Some("0.5")),
    dy("log.cleaner.delete.retention.ms", G, Some("86400000")),
    dy("log.cleaner.min.compaction.lag.ms", G, Some("0")),
    dy("log.cleaner.max.compaction.lag.ms", G, Some(LONG_MAX)),
    dy("log.flush.interval.messages", G, Some(LONG_MAX)),
    dy("log.flush.interval.ms", G, None),
    d("log.flush.scheduler.interval.ms", G, Some(LONG_MAX)),
    d("log.flush.offset.checkpoint.interval.ms", I, Some("60000")),
    d(
        "log.flush.start.offset.checkpoint.interval.ms",
        I,
        Some("60000"),
    ),
    dy("log.message.timestamp.type", T, Some("CreateTime")),
    dy("log.message.timestamp.difference.max.ms", G, Some(LONG_MAX)),
    dy("log.message.timestamp.before.max.ms", G, Some(LONG_MAX)),
    dy("log.message.timestamp.after.max.ms", G, Some(LONG_MAX)),
    dy("log.message.downconversion.enable", B, Some("true")),
    d("log.message.format.version", T, Some("3.0-IV1")),
    dy("log.preallocate", B, Some("false")),
    dy("log.segment.delete.delay.ms", G, Some("60000")),
    dy("log.local.retention.ms", G, Some("-2")),
    dy("log.local.retention.bytes", G, Some("-2")),
    dy("compression.type", T, Some("producer")),
    dy("compression.gzip.level", I, Some("-1")),
    dy("compression.lz4.level", I, Some("9")),
    dy("compression.zstd.level", I, Some("3")),
];

/// Look up a broker config definition by name.
pub fn broker_config_def(name: &str) -> Option<&'static ConfigDef> {
    BROKER_CONFIGS.iter().find(|d| d.name == name)
}

/// One topic-level config (Kafka's `LogConfig` / `TopicConfig`).
#[derive(Clone, Copy, Debug)]
pub struct TopicConfigDef {
    pub name: &'static str,
    /// Broker keys that supply the default, highest precedence first (DescribeConfigs synonyms).
    pub synonyms: &'static [&'static str],
    pub ty: ConfigType,
    /// Kafka's static default when no broker synonym applies.
    pub default: &'static str,
}

const fn t(
    name: &'static str,
    synonyms: &'static [&'static str],
    ty: ConfigType,
    default: &'static str,
) -> TopicConfigDef {
    TopicConfigDef {
        name,
        synonyms,
        ty,
        default,
    }
}

/// All topic configs of Kafka 3.9 with their broker synonyms and defaults.
pub static TOPIC_CONFIGS: &[TopicConfigDef] = &[
    t("cleanup.policy", &["log.cleanup.policy"], L, "delete"),
    t(
        "compression.gzip.level",
        &["compression.gzip.level"],
        I,
        "-1",
    ),
    t("compression.lz4.level", &["compression.lz4.level"], I, "9"),
    t("compression.type", &["compression.type"], T, "producer"),
    t(
        "compression.zstd.level",
        &["compression.zstd.level"],
        I,
        "3",
    ),
    t(
        "delete.retention.ms",
        &["log.cleaner.delete.retention.ms"],
        G,
        "86400000",
    ),
    t(
        "file.delete.delay.ms",
        &["log.segment.delete.delay.ms"],
        G,
        "60000",
    ),
    t(
        "flush.messages",
        &["log.flush.interval.messages"],
        G,
        LONG_MAX,
    ),
    t(
        "flush.ms",
        &["log.flush.interval.ms", "log.flush.scheduler.interval.ms"],
        G,
        LONG_MAX,
    ),
    t("follower.replication.throttled.replicas", &[], L, ""),
    t(
        "index.interval.bytes",
        &["log.index.interval.bytes"],
        I,
        "4096",
    ),
    t("leader.replication.throttled.replicas", &[], L, ""),
    t(
        "local.retention.bytes",
        &["log.local.retention.bytes"],
        G,
        "-2",
    ),
    t("local.retention.ms", &["log.local.retention.ms"], G, "-2"),
    t(
        "max.compaction.lag.ms",
        &["log.cleaner.max.compaction.lag.ms"],
        G,
        LONG_MAX,
    ),
    t("max.message.bytes", &["message.max.bytes"], I, "1048588"),
    t(
        "message.downconversion.enable",
        &["log.message.downconversion.enable"],
        B,
        "true",
    ),
    t(
        "message.format.version",
        &["log.message.format.version"],
        T,
        "3.0-IV1",
    ),
    t(
        "message.timestamp.after.max.ms",
        &["log.message.timestamp.after.max.ms"],
        G,
        LONG_MAX,
    ),
    t(
        "message.timestamp.before.max.ms",
        &["log.message.timestamp.before.max.ms"],
        G,
        LONG_MAX,
    ),
    t(
        "message.timestamp.difference.max.ms",
        &["log.message.timestamp.difference.max.ms"],
        G,
        LONG_MAX,
    ),
    t(
        "message.timestamp.type",
        &["log.message.timestamp.type"],
        T,
        "CreateTime",
    ),
    t(
        "min.cleanable.dirty.ratio",
        &["log.cleaner.min.cleanable.ratio"],
        D,
        "0.5",
    ),
    t(
        "min.compaction.lag.ms",
        &["log.cleaner.min.compaction.lag.ms"],
        G,
        "0",
    ),
    t("min.insync.replicas", &["min.insync.replicas"], I, "1"),
    t("preallocate", &["log.preallocate"], B, "false"),
    t("remote.log.copy.disable", &[], B, "false"),
    t("remote.log.delete.on.disable", &[], B, "false"),
    t("remote.storage.enable", &[], B, "false"),
    t("retention.bytes", &["log.retention.bytes"], G, "-1"),
    t(
        "retention.ms",
        &[
            "log.retention.ms",
            "log.retention.minutes",
            "log.retention.hours",
        ],
        G,
        "604800000",
    ),
    t("segment.bytes", &["log.segment.bytes"], I, "1073741824"),
    t(
        "segment.index.bytes",
        &["log.index.size.max.bytes"],
        I,
        "10485760",
    ),
    t(
        "segment.jitter.ms",
        &["log.roll.jitter.ms", "log.roll.jitter.hours"],
        G,
        "0",
    ),
    t(
        "segment.ms",
        &["log.roll.ms", "log.roll.hours"],
        G,
        "604800000",
    ),
    t(
        "unclean.leader.election.enable",
        &["unclean.leader.election.enable"],
        B,
        "false",
    ),
];

/// Look up a topic config definition by name.
pub fn topic_config_def(name: &str) -> Option<&'static TopicConfigDef> {
    TOPIC_CONFIGS.iter().find(|d| d.name == name)
}

/// Validate a topic-level config value (AlterConfigs / CreateTopics / `/config/topics`).
/// The error names the key.
pub fn validate_topic_config(name: &str, value: &str) -> Result<()> {
    let def = topic_config_def(name)
        .ok_or_else(|| Error::invalid(name, value, "Unknown topic config name"))?;
    check_type(name, value, def.ty)?;
    let v = value.trim();
    let at_least = |min: i64| -> Result<()> {
        let n: i64 = v
            .parse()
            .map_err(|_| Error::invalid(name, value, "not a number"))?;
        if n < min {
            return Err(Error::invalid(
                name,
                value,
                format!("Value must be at least {min}"),
            ));
        }
        Ok(())
    };
    match name {
        "cleanup.policy" => {
            for p in split_list(v) {
                if p != "delete" && p != "compact" {
                    return Err(Error::invalid(
                        name,
                        value,
                        "String must be one of: compact, delete",
                    ));
                }
            }
        }
        "compression.type" => one_of(name, value, &COMPRESSION_TYPES)?,
        "message.timestamp.type" => one_of(name, value, &["CreateTime", "LogAppendTime"])?,
        "segment.bytes" => at_least(14)?,
        "retention.ms" => at_least(-1)?,
        "segment.ms" => at_least(1)?,
        "segment.index.bytes" => at_least(4)?,
        "segment.jitter.ms"
        | "flush.ms"
        | "delete.retention.ms"
        | "min.compaction.lag.ms"
        | "index.interval.bytes"
        | "file.delete.delay.ms"
        | "max.message.bytes" => at_least(0)?,
        "flush.messages" | "max.compaction.lag.ms" | "min.insync.replicas" => at_least(1)?,
        "min.cleanable.dirty.ratio" => {
            let r: f64 = v
                .parse()
                .map_err(|_| Error::invalid(name, value, "not a double"))?;
            if !(0.0..=1.0).contains(&r) {
                return Err(Error::invalid(name, value, "Value must be between 0 and 1"));
            }
        }
        "compression.gzip.level" => {
            let n: i64 = v
                .parse()
                .map_err(|_| Error::invalid(name, value, "not a number"))?;
            if !(n == -1 || (1..=9).contains(&n)) {
                return Err(Error::invalid(name, value, "Value must be -1 or in [1, 9]"));
            }
        }
        "compression.lz4.level" => range(name, value, 1, 17)?,
        "compression.zstd.level" => range(name, value, -131072, 22)?,
        _ => {}
    }
    Ok(())
}

const COMPRESSION_TYPES: [&str; 6] = ["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];

fn one_of(key: &str, value: &str, allowed: &[&str]) -> Result<()> {
    if allowed.contains(&value.trim()) {
        Ok(())
    } else {
        Err(Error::invalid(
            key,
            value,
            format!("String must be one of: {}", allowed.join(", ")),
        ))
    }
}

fn range(key: &str, value: &str, lo: i64, hi: i64) -> Result<()> {
    let n: i64 = value
        .trim()
        .parse()
        .map_err(|_| Error::invalid(key, value, "not a number"))?;
    if n < lo || n > hi {
        return Err(Error::invalid(
            key,
            value,
            format!("Value must be in [{lo}, {hi}]"),
        ));
    }
    Ok(())
}

fn split_list(v: &str) -> Vec<String> {
    let v = v.trim();
    if v.is_empty() {
        return Vec::new();
    }
    v.split(',').map(|s| s.trim().to_string()).collect()
}

/// Check that `value` parses as `ty` the way Kafka's `ConfigDef.parseType` would.
pub fn check_type(key: &str, value: &str, ty: ConfigType) -> Result<()> {
    let v = value.trim();
    let ok = match ty {
        ConfigType::Boolean => v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false"),
        ConfigType::Int => v.parse::<i32>().is_ok(),
        ConfigType::Short => v.parse::<i16>().is_ok(),
        ConfigType::Long => v.parse::<i64>().is_ok(),
        ConfigType::Double => v.parse::<f64>().is_ok(),
        ConfigType::String | ConfigType::List | ConfigType::Class | ConfigType::Password => true,
    };
    if ok {
        Ok(())
    } else {
        let what = match ty {
            ConfigType::Boolean => "Expected value to be either true or false",
            ConfigType::Int => "Not a number of type INT",
            ConfigType::Short => "Not a number of type SHORT",
            ConfigType::Long => "Not a number of type LONG",
            _ => "Not a number of type DOUBLE",
        };
        Err(Error::invalid(key, value, what))
    }
}

/// Security protocol of a listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_uppercase().as_str() {
            "PLAINTEXT" => Some(Self::Plaintext),
            "SSL" => Some(Self::Ssl),
            "SASL_PLAINTEXT" => Some(Self::SaslPlaintext),
            "SASL_SSL" => Some(Self::SaslSsl),
            _ => None,
        }
    }
    /// Kafka's name (also the id used in `/brokers/ids/<id>` JSON is the name).
    pub fn name(self) -> &'static str {
        match self {
            Self::Plaintext => "PLAINTEXT",
            Self::Ssl => "SSL",
            Self::SaslPlaintext => "SASL_PLAINTEXT",
            Self::SaslSsl => "SASL_SSL",
        }
    }
    /// Kafka's `SecurityProtocol.id` (used in UpdateMetadata v0-v3 endpoints).
    pub fn id(self) -> i16 {
        match self {
            Self::Plaintext => 0,
            Self::Ssl => 1,
            Self::SaslPlaintext => 2,
            Self::SaslSsl => 3,
        }
    }
}

/// One `NAME://host:port` listener entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// Listener name, upper-cased like Kafka's `ListenerName.normalised`.
    pub name: String,
    /// Host; empty means "all interfaces / default host".
    pub host: String,
    pub port: u16,
    pub security_protocol: SecurityProtocol,
}

impl Endpoint {
    /// `NAME://host:port` as written to `/brokers/ids/<id>` `endpoints`.
    pub fn connection_string(&self) -> String {
        if self.host.contains(':') {
            format!("{}://[{}]:{}", self.name, self.host, self.port)
        } else {
            format!("{}://{}:{}", self.name, self.host, self.port)
        }
    }
}

fn parse_protocol_map(key: &str, value: &str) -> Result<Vec<(String, SecurityProtocol)>> {
    let mut out = Vec::new();
    for entry in split_list(value) {
        let (name, proto) = entry.split_once(':').ok_or_else(|| {
            Error::invalid(key, value, format!("entry {entry:?} is not NAME:PROTOCOL"))
        })?;
        let proto = SecurityProtocol::parse(proto).ok_or_else(|| {
            Error::invalid(key, value, format!("unknown security protocol {proto:?}"))
        })?;
        out.push((name.trim().to_ascii_uppercase(), proto));
    }
    Ok(out)
}

fn parse_endpoints(
    key: &str,
    value: &str,
    map: &[(String, SecurityProtocol)],
) -> Result<Vec<Endpoint>> {
    let mut out: Vec<Endpoint> = Vec::new();
    for entry in split_list(value) {
        let (name, rest) = entry.split_once("://").ok_or_else(|| {
            Error::invalid(
                key,
                value,
                format!("listener {entry:?} is not NAME://host:port"),
            )
        })?;
        let name = name.trim().to_ascii_uppercase();
        let (host, port) = if let Some(r) = rest.strip_prefix('[') {
            let (h, p) = r
                .split_once("]:")
                .ok_or_else(|| Error::invalid(key, value, format!("bad listener {entry:?}")))?;
            (h.to_string(), p)
        } else {
            let (h, p) = rest
                .rsplit_once(':')
                .ok_or_else(|| Error::invalid(key, value, format!("bad listener {entry:?}")))?;
            (h.to_string(), p)
        };
        let port: u16 = port
            .trim()
            .parse()
            .map_err(|_| Error::invalid(key, value, format!("bad port in {entry:?}")))?;
        let security_protocol = map
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, p)| *p)
            .ok_or_else(|| {
                Error::invalid(
                    key,
                    value,
                    format!("No security protocol defined for listener {name}"),
                )
            })?;
        if out.iter().any(|e| e.name == name) {
            return Err(Error::invalid(
                key,
                value,
                format!("Each listener must have a different name, {name} repeats"),
            ));
        }
        out.push(Endpoint {
            name,
            host,
            port,
            security_protocol,
        });
    }
    Ok(out)
}

/// `authorizer.class.name` values that select the ZooKeeper ACL authorizer (the 3.9 class and
/// the name it had before 2.4).
pub const ACL_AUTHORIZER_CLASSES: [&str; 2] = [
    "kafka.security.authorizer.AclAuthorizer",
    "kafka.security.auth.SimpleAclAuthorizer",
];

/// Keys Kafka hands to the authorizer rather than defining in `KafkaConfig` (so, as in Kafka,
/// DescribeConfigs lists them only when set). The broker does not warn about them.
pub const AUTHORIZER_KEYS: [&str; 6] = [
    "super.users",
    "allow.everyone.if.no.acl.found",
    "authorizer.zookeeper.url",
    "authorizer.zookeeper.connection.timeout.ms",
    "authorizer.zookeeper.session.timeout.ms",
    "authorizer.zookeeper.max.in.flight.requests",
];

/// The ACL authorizer's settings (Kafka's `AclAuthorizer.configure`), present when
/// `authorizer.class.name` names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AclAuthorizerConfig {
    /// `authorizer.class.name` as given.
    pub class_name: String,
    /// `super.users`: `;`-separated principals (`User:admin`), allowed everything.
    pub super_users: Vec<String>,
    /// `allow.everyone.if.no.acl.found` (default false): a resource without any matching
    /// ACL is open to everyone.
    pub allow_everyone_if_no_acl_found: bool,
}

impl AclAuthorizerConfig {
    /// Reads the authorizer keys; `Ok(None)` without an authorizer. Any other class, a
    /// principal without `type:`, a non-boolean flag, or ACLs in another ZooKeeper ensemble
    /// (`authorizer.zookeeper.url` other than `zookeeper.connect`) is an error naming the key.
    fn from_props(
        class_name: &str,
        props: &HashMap<String, String>,
        zookeeper_connect: &str,
    ) -> Result<Option<Self>> {
        let class_name = class_name.trim();
        if class_name.is_empty() {
            return Ok(None);
        }
        if !ACL_AUTHORIZER_CLASSES.contains(&class_name) {
            return Err(Error::invalid(
                "authorizer.class.name",
                class_name,
                format!(
                    "Samsa provides only the ZooKeeper ACL authorizer ({}); custom authorizer \
                     classes cannot be loaded",
                    ACL_AUTHORIZER_CLASSES[0]
                ),
            ));
        }
        let get = |k: &str| props.get(k).map(|v| v.trim().to_string());
        let mut super_users = Vec::new();
        if let Some(v) = get("super.users").filter(|v| !v.is_empty()) {
            for p in v.split(';').map(str::trim) {
                if !p.contains(':') {
                    return Err(Error::invalid(
                        "super.users",
                        &v,
                        format!(
                            "expected a string in format principalType:principalName but got {p}"
                        ),
                    ));
                }
                super_users.push(p.to_string());
            }
        }
        let allow_everyone_if_no_acl_found = match get("allow.everyone.if.no.acl.found") {
            None => false,
            Some(v) if v.eq_ignore_ascii_case("true") => true,
            Some(v) if v.eq_ignore_ascii_case("false") => false,
            Some(v) => {
                return Err(Error::invalid(
                    "allow.everyone.if.no.acl.found",
                    &v,
                    "Expected value to be either true or false",
                ))
            }
        };
        if let Some(url) = get("authorizer.zookeeper.url") {
            if url != zookeeper_connect.trim() {
                return Err(Error::invalid(
                    "authorizer.zookeeper.url",
                    &url,
                    "Samsa keeps ACLs in the broker's own ZooKeeper (zookeeper.connect); remove \
                     this key or set it to the value of zookeeper.connect",
                ));
            }
        }
        for k in [
            "authorizer.zookeeper.connection.timeout.ms",
            "authorizer.zookeeper.session.timeout.ms",
            "authorizer.zookeeper.max.in.flight.requests",
        ] {
            if let Some(v) = get(k) {
                if v.parse::<i32>().is_err() {
                    return Err(Error::invalid(k, &v, "Not a number of type INT"));
                }
            }
        }
        Ok(Some(Self {
            class_name: class_name.to_string(),
            super_users,
            allow_everyone_if_no_acl_found,
        }))
    }
}

/// The broker configuration: typed, defaulted and validated.
#[derive(Clone, Debug)]
pub struct BrokerConfig {
    /// Keys explicitly set (file + overrides), known keys only.
    pub explicit: BTreeMap<String, String>,
    /// Keys we do not know (the broker warns about them). Kept verbatim.
    pub unknown: BTreeMap<String, String>,
    /// Known keys as given in server.properties / `--override` (`explicit` also holds the
    /// dynamic layers' values once they are applied).
    pub static_props: BTreeMap<String, String>,
    /// `/config/brokers/<default>` as applied (decoded; see [`dynamic`]).
    pub dynamic_default: BTreeMap<String, String>,
    /// `/config/brokers/<id>` as applied (decoded).
    pub dynamic_broker: BTreeMap<String, String>,

    pub broker_id: BrokerId,
    pub broker_id_generation_enable: bool,
    pub reserved_broker_max_id: i32,
    pub broker_rack: Option<String>,

    pub listeners: Vec<Endpoint>,
    pub advertised_listeners: Vec<Endpoint>,
    pub listener_security_protocol_map: Vec<(String, SecurityProtocol)>,
    pub inter_broker_listener_name: String,
    pub control_plane_listener_name: Option<String>,

    pub log_dirs: Vec<PathBuf>,

    pub zookeeper_connect: String,
    pub zookeeper_session_timeout_ms: i32,
    pub zookeeper_connection_timeout_ms: i32,
    pub zookeeper_max_in_flight_requests: i32,
    pub zookeeper_set_acl: bool,

    /// `authorizer.class.name` and the authorizer's keys; `None` = no authorizer.
    pub authorizer: Option<AclAuthorizerConfig>,

    pub num_partitions: i32,
    pub default_replication_factor: i32,
    pub min_insync_replicas: i32,
    pub auto_create_topics_enable: bool,
    pub delete_topic_enable: bool,
    pub message_max_bytes: i32,

    pub socket_request_max_bytes: i32,
    pub socket_send_buffer_bytes: i32,
    pub socket_receive_buffer_bytes: i32,
    pub num_network_threads: i32,
    pub num_io_threads: i32,
    pub num_recovery_threads_per_data_dir: i32,
    pub queued_max_requests: i32,
    pub connections_max_idle_ms: i64,
    pub max_connections: i32,
    /// `max.connections.per.ip`; 0 only together with overrides.
    pub max_connections_per_ip: i32,
    /// `max.connections.per.ip.overrides` as (host or address, limit), in the given order.
    pub max_connections_per_ip_overrides: Vec<(String, i32)>,
    pub max_connection_creation_rate: i32,
    pub quota_window_num: i32,
    pub quota_window_size_seconds: i32,
    /// Token-bucket window of `controller_mutation_rate` quotas (burst = num × size × rate).
    pub controller_quota_window_num: i32,
    pub controller_quota_window_size_seconds: i32,
    pub request_timeout_ms: i32,
    pub fetch_max_bytes: i32,

    pub controller_socket_timeout_ms: i32,
    pub controlled_shutdown_enable: bool,
    pub controlled_shutdown_max_retries: i32,
    pub controlled_shutdown_retry_backoff_ms: i64,
    pub auto_leader_rebalance_enable: bool,
    pub leader_imbalance_per_broker_percentage: i32,
    pub leader_imbalance_check_interval_seconds: i64,
    pub unclean_leader_election_enable: bool,

    pub replica_lag_time_max_ms: i64,
    pub replica_socket_timeout_ms: i32,
    pub replica_socket_receive_buffer_bytes: i32,
    pub replica_fetch_max_bytes: i32,
    pub replica_fetch_wait_max_ms: i32,
    pub replica_fetch_min_bytes: i32,
    pub replica_fetch_response_max_bytes: i32,
    pub replica_fetch_backoff_ms: i32,
    pub replica_high_watermark_checkpoint_interval_ms: i64,
    pub num_replica_fetchers: i32,
    pub inter_broker_protocol_version: String,

    pub offsets_topic_num_partitions: i32,
    pub offsets_topic_replication_factor: i16,
    pub offsets_topic_segment_bytes: i32,
    pub offsets_topic_compression_codec: i32,
    pub offsets_load_buffer_size: i32,
    pub offsets_commit_required_acks: i16,
    pub offsets_commit_timeout_ms: i32,
    pub offsets_retention_minutes: i32,
    pub offsets_retention_check_interval_ms: i64,
    pub offset_metadata_max_bytes: i32,
    pub group_min_session_timeout_ms: i32,
    pub group_max_session_timeout_ms: i32,
    pub group_initial_rebalance_delay_ms: i32,
    pub group_max_size: i32,

    pub transaction_state_log_num_partitions: i32,
    pub transaction_state_log_replication_factor: i16,
    pub transaction_state_log_segment_bytes: i32,
    pub transaction_state_log_min_isr: i32,
    pub transaction_state_log_load_buffer_size: i32,
    pub transaction_max_timeout_ms: i32,
    pub transactional_id_expiration_ms: i32,
    pub transaction_abort_timed_out_transaction_cleanup_interval_ms: i32,
    pub transaction_remove_expired_transaction_cleanup_interval_ms: i32,
    pub transaction_partition_verification_enable: bool,
    pub producer_id_expiration_ms: i32,
    pub producer_id_expiration_check_interval_ms: i32,

    pub log_segment_bytes: i32,
    /// Effective roll time: `log.roll.ms`, else `log.roll.hours` × 3600000.
    pub log_roll_ms: i64,
    /// Effective jitter: `log.roll.jitter.ms`, else `log.roll.jitter.hours` × 3600000.
    pub log_roll_jitter_ms: i64,
    pub log_index_size_max_bytes: i32,
    pub log_index_interval_bytes: i32,
    /// Effective retention: `log.retention.ms` > `.minutes` > `.hours`; negative = unlimited (-1).
    pub log_retention_ms: i64,
    pub log_retention_bytes: i64,
    pub log_retention_check_interval_ms: i64,
    pub log_cleanup_policy: Vec<String>,
    pub log_cleaner_enable: bool,
    pub log_cleaner_threads: i32,
    pub log_cleaner_io_max_bytes_per_second: f64,
    pub log_cleaner_dedupe_buffer_size: i64,
    pub log_cleaner_io_buffer_size: i32,
    pub log_cleaner_io_buffer_load_factor: f64,
    pub log_cleaner_backoff_ms: i64,
    pub log_cleaner_min_cleanable_ratio: f64,
    pub log_cleaner_delete_retention_ms: i64,
    pub log_cleaner_min_compaction_lag_ms: i64,
    pub log_cleaner_max_compaction_lag_ms: i64,
    pub log_flush_interval_messages: i64,
    /// Effective: `log.flush.interval.ms`, else `log.flush.scheduler.interval.ms`.
    pub log_flush_interval_ms: i64,
    pub log_flush_scheduler_interval_ms: i64,
    pub log_flush_offset_checkpoint_interval_ms: i32,
    pub log_flush_start_offset_checkpoint_interval_ms: i32,
    pub log_message_timestamp_type: String,
    pub log_message_timestamp_difference_max_ms: i64,
    pub log_message_timestamp_before_max_ms: i64,
    pub log_message_timestamp_after_max_ms: i64,
    pub log_message_downconversion_enable: bool,
    pub log_message_format_version: String,
    pub log_preallocate: bool,
    /// Topic `file.delete.delay.ms`.
    pub log_segment_delete_delay_ms: i64,
    pub compression_type: String,
    pub compression_gzip_level: i32,
    pub compression_lz4_level: i32,
    pub compression_zstd_level: i32,
    /// `delegation.token.secret.key`, else `delegation.token.master.key`; tokens are
    /// disabled when neither is set or the value is empty.
    pub delegation_token_secret_key: Option<Secret>,
    pub delegation_token_max_lifetime_ms: i64,
    pub delegation_token_expiry_time_ms: i64,
    pub delegation_token_expiry_check_interval_ms: i64,
    /// `password.encoder.secret`: encodes password-typed dynamic configs in ZooKeeper.
    pub password_encoder_secret: Option<Secret>,
    /// `password.encoder.old.secret`: stored passwords are re-encoded from it at start-up.
    pub password_encoder_old_secret: Option<Secret>,
    pub password_encoder_keyfactory_algorithm: Option<String>,
    pub password_encoder_cipher_algorithm: String,
    pub password_encoder_key_length: i32,
    pub password_encoder_iterations: i32,
}

/// A secret config value: `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[hidden]")
    }
}

/// Value accessor over explicit props + table defaults; every error names the key.
struct Reader<'a> {
    props: &'a BTreeMap<String, String>,
}

impl Reader<'_> {
    fn raw(&self, key: &str) -> Option<String> {
        if let Some(v) = self.props.get(key) {
            return Some(v.trim().to_string());
        }
        broker_config_def(key).and_then(|d| d.default.map(str::to_string))
    }
    fn set(&self, key: &str) -> bool {
        self.props.contains_key(key)
    }
    fn req(&self, key: &str) -> Result<String> {
        self.raw(key)
            .ok_or_else(|| Error::MissingConfig(key.to_string()))
    }
    fn string(&self, key: &str) -> Result<String> {
        self.req(key)
    }
    fn opt_string(&self, key: &str) -> Option<String> {
        self.raw(key).filter(|s| !s.is_empty())
    }
    fn parse<T: std::str::FromStr>(&self, key: &str, ty: &str) -> Result<T> {
        let v = self.req(key)?;
        v.parse::<T>()
            .map_err(|_| Error::invalid(key, &v, format!("Not a number of type {ty}")))
    }
    fn int(&self, key: &str) -> Result<i32> {
        self.parse(key, "INT")
    }
    fn short(&self, key: &str) -> Result<i16> {
        self.parse(key, "SHORT")
    }
    fn long(&self, key: &str) -> Result<i64> {
        self.parse(key, "LONG")
    }
    fn double(&self, key: &str) -> Result<f64> {
        self.parse(key, "DOUBLE")
    }
    fn opt_long(&self, key: &str) -> Result<Option<i64>> {
        match self.raw(key) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| Error::invalid(key, &v, "Not a number of type LONG")),
        }
    }
    fn opt_int(&self, key: &str) -> Result<Option<i32>> {
        match self.raw(key) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| Error::invalid(key, &v, "Not a number of type INT")),
        }
    }
    fn boolean(&self, key: &str) -> Result<bool> {
        let v = self.req(key)?;
        if v.eq_ignore_ascii_case("true") {
            Ok(true)
        } else if v.eq_ignore_ascii_case("false") {
            Ok(false)
        } else {
            Err(Error::invalid(
                key,
                &v,
                "Expected value to be either true or false",
            ))
        }
    }
    fn at_least_i(&self, key: &str, min: i64) -> Result<i32> {
        let v = self.int(key)?;
        if (v as i64) < min {
            return Err(Error::invalid(
                key,
                &v.to_string(),
                format!("Value must be at least {min}"),
            ));
        }
        Ok(v)
    }
    fn at_least_l(&self, key: &str, min: i64) -> Result<i64> {
        let v = self.long(key)?;
        if v < min {
            return Err(Error::invalid(
                key,
                &v.to_string(),
                format!("Value must be at least {min}"),
            ));
        }
        Ok(v)
    }
}

/// `host:limit,host:limit` as Kafka's `getMap` reads it; hosts must be a valid address or
/// host name (Kafka's `Utils.validHostPattern`).
pub fn parse_connection_overrides(key: &str, value: &str) -> Result<Vec<(String, i32)>> {
    let mut out = Vec::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let Some((host, limit)) = entry.rsplit_once(':') else {
            return Err(Error::invalid(
                key,
                value,
                format!("Map entry '{entry}' is not of the form key:value"),
            ));
        };
        let (host, limit) = (host.trim(), limit.trim());
        let limit: i32 = limit
            .parse()
            .map_err(|_| Error::invalid(key, value, format!("'{limit}' is not an integer")))?;
        let valid_host = !host.is_empty()
            && (host.parse::<std::net::IpAddr>().is_ok()
                || host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'));
        if !valid_host {
            return Err(Error::invalid(
                key,
                value,
                format!("max.connections.per.ip.overrides contains invalid addresses : {host}"),
            ));
        }
        out.push((host.to_string(), limit));
    }
    Ok(out)
}

impl BrokerConfig {
    /// Load `path` (a server.properties file) then apply `--override key=value` pairs.
    pub fn load(path: &Path, overrides: &[(String, String)]) -> Result<Self> {
        let mut props: HashMap<String, String> = properties::load(path)?.into_iter().collect();
        for (k, v) in overrides {
            props.insert(k.clone(), v.clone());
        }
        Self::from_props(&props)
    }

    /// Build from a key → value map (keys as in server.properties).
    pub fn from_props(map: &HashMap<String, String>) -> Result<Self> {
        let mut explicit = BTreeMap::new();
        let mut unknown = BTreeMap::new();
        for (k, v) in map {
            if let Some(def) = broker_config_def(k) {
                check_type(k, v, def.ty)?;
                explicit.insert(k.clone(), v.clone());
            } else {
                unknown.insert(k.clone(), v.clone());
            }
        }
        let r = Reader { props: &explicit };

        // Listeners.
        let map_value = r.string("listener.security.protocol.map")?;
        let protocol_map = parse_protocol_map("listener.security.protocol.map", &map_value)?;
        let listeners = parse_endpoints("listeners", &r.string("listeners")?, &protocol_map)?;
        if listeners.is_empty() {
            return Err(Error::invalid(
                "listeners",
                "",
                "at least one listener is required",
            ));
        }
        let advertised_listeners = match r.opt_string("advertised.listeners") {
            Some(v) => parse_endpoints("advertised.listeners", &v, &protocol_map)?,
            None => listeners.clone(),
        };
        for e in &advertised_listeners {
            if e.host == "0.0.0.0" {
                return Err(Error::invalid(
                    "advertised.listeners",
                    &e.connection_string(),
                    "advertised.listeners cannot use the nonroutable meta-address 0.0.0.0",
                ));
            }
        }
        let inter_broker_listener_name = match (
            r.opt_string("inter.broker.listener.name"),
            r.set("security.inter.broker.protocol"),
        ) {
            (Some(_), true) => {
                return Err(Error::invalid(
                    "inter.broker.listener.name",
                    &r.raw("inter.broker.listener.name").unwrap_or_default(),
                    "Only one of inter.broker.listener.name and security.inter.broker.protocol should be set.",
                ))
            }
            (Some(name), false) => name.to_ascii_uppercase(),
            (None, _) => {
                let p = r.string("security.inter.broker.protocol")?;
                SecurityProtocol::parse(&p)
                    .ok_or_else(|| {
                        Error::invalid("security.inter.broker.protocol", &p, "unknown security protocol")
                    })?
                    .name()
                    .to_string()
            }
        };
        if !advertised_listeners
            .iter()
            .any(|e| e.name == inter_broker_listener_name)
        {
            return Err(Error::invalid(
                "inter.broker.listener.name",
                &inter_broker_listener_name,
                "inter.broker.listener.name must be a listener name defined in advertised.listeners",
            ));
        }
        let control_plane_listener_name = r
            .opt_string("control.plane.listener.name")
            .map(|s| s.to_ascii_uppercase());
        if let Some(cp) = &control_plane_listener_name {
            if !listeners.iter().any(|e| &e.name == cp) {
                return Err(Error::invalid(
                    "control.plane.listener.name",
                    cp,
                    "control.plane.listener.name must be a listener name defined in listeners",
                ));
            }
        }

        // Log dirs: log.dirs wins over log.dir.
        let dirs_value = r
            .opt_string("log.dirs")
            .map(Ok)
            .unwrap_or_else(|| r.string("log.dir"))?;
        let log_dirs: Vec<PathBuf> = split_list(&dirs_value)
            .into_iter()
            .map(PathBuf::from)
            .collect();
        if log_dirs.is_empty() {
            return Err(Error::invalid(
                "log.dirs",
                &dirs_value,
                "at least one log directory is required",
            ));
        }

        let zookeeper_connect = r
            .opt_string("zookeeper.connect")
            .ok_or_else(|| Error::MissingConfig("zookeeper.connect".to_string()))?;
        let zookeeper_session_timeout_ms = r.int("zookeeper.session.timeout.ms")?;
        let zookeeper_connection_timeout_ms = r
            .opt_int("zookeeper.connection.timeout.ms")?
            .unwrap_or(zookeeper_session_timeout_ms);

        // Retention precedence: ms > minutes > hours.
        let log_retention_ms = if let Some(ms) = r.opt_long("log.retention.ms")? {
            ms
        } else if let Some(min) = r.opt_int("log.retention.minutes")? {
            60_000 * min as i64
        } else {
            3_600_000 * r.int("log.retention.hours")? as i64
        };
        let log_retention_ms = if log_retention_ms < 0 {
            -1
        } else {
            log_retention_ms
        };
        let log_roll_ms = match r.opt_long("log.roll.ms")? {
            Some(ms) => ms,
            None => 3_600_000 * r.at_least_i("log.roll.hours", 1)? as i64,
        };
        let log_roll_jitter_ms = match r.opt_long("log.roll.jitter.ms")? {
            Some(ms) => ms,
            None => 3_600_000 * r.at_least_i("log.roll.jitter.hours", 0)? as i64,
        };
        let log_flush_scheduler_interval_ms = r.long("log.flush.scheduler.interval.ms")?;
        let log_flush_interval_ms = r
            .opt_long("log.flush.interval.ms")?
            .unwrap_or(log_flush_scheduler_interval_ms);

        let log_cleanup_policy = split_list(&r.string("log.cleanup.policy")?);
        for p in &log_cleanup_policy {
            if p != "delete" && p != "compact" {
                return Err(Error::invalid(
                    "log.cleanup.policy",
                    p,
                    "String must be one of: compact, delete",
                ));
            }
        }
        let compression_type = r.string("compression.type")?;
        one_of("compression.type", &compression_type, &COMPRESSION_TYPES)?;
        let log_message_timestamp_type = r.string("log.message.timestamp.type")?;
        one_of(
            "log.message.timestamp.type",
            &log_message_timestamp_type,
            &["CreateTime", "LogAppendTime"],
        )?;
        let log_cleaner_min_cleanable_ratio = r.double("log.cleaner.min.cleanable.ratio")?;
        if !(0.0..=1.0).contains(&log_cleaner_min_cleanable_ratio) {
            return Err(Error::invalid(
                "log.cleaner.min.cleanable.ratio",
                &log_cleaner_min_cleanable_ratio.to_string(),
                "Value must be between 0 and 1",
            ));
        }

        let broker_id = r.int("broker.id")?;
        let broker_id_generation_enable = r.boolean("broker.id.generation.enable")?;
        let reserved_broker_max_id = r.at_least_i("reserved.broker.max.id", 0)?;
        if broker_id_generation_enable {
            if broker_id < -1 || broker_id > reserved_broker_max_id {
                return Err(Error::invalid(
                    "broker.id",
                    &broker_id.to_string(),
                    format!(
                        "broker.id must be greater than or equal to -1 and not greater than reserved.broker.max.id ({reserved_broker_max_id})"
                    ),
                ));
            }
        } else if broker_id < 0 {
            return Err(Error::invalid(
                "broker.id",
                &broker_id.to_string(),
                "broker.id must be greater than or equal to 0 when broker.id.generation.enable is false",
            ));
        }

        let replica_lag_time_max_ms = r.long("replica.lag.time.max.ms")?;
        let replica_fetch_wait_max_ms = r.int("replica.fetch.wait.max.ms")?;
        if replica_fetch_wait_max_ms as i64 > replica_lag_time_max_ms {
            return Err(Error::invalid(
                "replica.fetch.wait.max.ms",
                &replica_fetch_wait_max_ms.to_string(),
                "replica.fetch.wait.max.ms should always be less than or equal to replica.lag.time.max.ms to prevent frequent changes in ISR",
            ));
        }
        let offsets_commit_required_acks = r.short("offsets.commit.required.acks")?;
        let offsets_topic_replication_factor = r.short("offsets.topic.replication.factor")?;
        if offsets_topic_replication_factor < 1 {
            return Err(Error::invalid(
                "offsets.topic.replication.factor",
                &offsets_topic_replication_factor.to_string(),
                "Value must be at least 1",
            ));
        }
        let gzip = r.int("compression.gzip.level")?;
        if !(gzip == -1 || (1..=9).contains(&gzip)) {
            return Err(Error::invalid(
                "compression.gzip.level",
                &gzip.to_string(),
                "Value must be -1 or in [1, 9]",
            ));
        }
        let lz4 = r.int("compression.lz4.level")?;
        range("compression.lz4.level", &lz4.to_string(), 1, 17)?;
        let zstd = r.int("compression.zstd.level")?;
        range("compression.zstd.level", &zstd.to_string(), -131072, 22)?;

        let max_connections_per_ip = r.at_least_i("max.connections.per.ip", 0)?;
        let overrides_value = r.string("max.connections.per.ip.overrides")?;
        let max_connections_per_ip_overrides =
            parse_connection_overrides("max.connections.per.ip.overrides", &overrides_value)?;
        if max_connections_per_ip == 0 && max_connections_per_ip_overrides.is_empty() {
            return Err(Error::invalid(
                "max.connections.per.ip",
                "0",
                "max.connections.per.ip can be set to zero only if \
                 max.connections.per.ip.overrides property is set.",
            ));
        }
        let authorizer = AclAuthorizerConfig::from_props(
            &r.string("authorizer.class.name")?,
            map,
            &zookeeper_connect,
        )?;

        let cfg = BrokerConfig {
            authorizer,
            broker_id,
            broker_id_generation_enable,
            reserved_broker_max_id,
            broker_rack: r.opt_string("broker.rack"),
            listeners,
            advertised_listeners,
            listener_security_protocol_map: protocol_map,
            inter_broker_listener_name,
            control_plane_listener_name,
            log_dirs,
            zookeeper_connect,
            zookeeper_session_timeout_ms,
            zookeeper_connection_timeout_ms,
            zookeeper_max_in_flight_requests: r
                .at_least_i("zookeeper.max.in.flight.requests", 1)?,
            zookeeper_set_acl: r.boolean("zookeeper.set.acl")?,
            num_partitions: r.at_least_i("num.partitions", 1)?,
            default_replication_factor: r.int("default.replication.factor")?,
            min_insync_replicas: r.at_least_i("min.insync.replicas", 1)?,
            auto_create_topics_enable: r.boolean("auto.create.topics.enable")?,
            delete_topic_enable: r.boolean("delete.topic.enable")?,
            message_max_bytes: r.at_least_i("message.max.bytes", 0)?,
            socket_request_max_bytes: r.at_least_i("socket.request.max.bytes", 1)?,
            socket_send_buffer_bytes: r.int("socket.send.buffer.bytes")?,
            socket_receive_buffer_bytes: r.int("socket.receive.buffer.bytes")?,
            num_network_threads: r.at_least_i("num.network.threads", 1)?,
            num_io_threads: r.at_least_i("num.io.threads", 1)?,
            num_recovery_threads_per_data_dir: r
                .at_least_i("num.recovery.threads.per.data.dir", 1)?,
            queued_max_requests: r.at_least_i("queued.max.requests", 1)?,
            connections_max_idle_ms: r.long("connections.max.idle.ms")?,
            max_connections: r.at_least_i("max.connections", 0)?,
            max_connections_per_ip,
            max_connections_per_ip_overrides,
            max_connection_creation_rate: r.at_least_i("max.connection.creation.rate", 0)?,
            quota_window_num: r.at_least_i("quota.window.num", 1)?,
            quota_window_size_seconds: r.at_least_i("quota.window.size.seconds", 1)?,
            controller_quota_window_num: r.at_least_i("controller.quota.window.num", 1)?,
            controller_quota_window_size_seconds: r
                .at_least_i("controller.quota.window.size.seconds", 1)?,
            request_timeout_ms: r.at_least_i("request.timeout.ms", 0)?,
            fetch_max_bytes: r.at_least_i("fetch.max.bytes", 1024)?,
            controller_socket_timeout_ms: r.int("controller.socket.timeout.ms")?,
            controlled_shutdown_enable: r.boolean("controlled.shutdown.enable")?,
            controlled_shutdown_max_retries: r.int("controlled.shutdown.max.retries")?,
            controlled_shutdown_retry_backoff_ms: r.long("controlled.shutdown.retry.backoff.ms")?,
            auto_leader_rebalance_enable: r.boolean("auto.leader.rebalance.enable")?,
            leader_imbalance_per_broker_percentage: r
                .int("leader.imbalance.per.broker.percentage")?,
            leader_imbalance_check_interval_seconds: r
                .at_least_l("leader.imbalance.check.interval.seconds", 1)?,
            unclean_leader_election_enable: r.boolean("unclean.leader.election.enable")?,
            replica_lag_time_max_ms,
            replica_socket_timeout_ms: r.int("replica.socket.timeout.ms")?,
            replica_socket_receive_buffer_bytes: r.int("replica.socket.receive.buffer.bytes")?,
            replica_fetch_max_bytes: r.at_least_i("replica.fetch.max.bytes", 0)?,
            replica_fetch_wait_max_ms,
            replica_fetch_min_bytes: r.int("replica.fetch.min.bytes")?,
            replica_fetch_response_max_bytes: r
                .at_least_i("replica.fetch.response.max.bytes", 0)?,
            replica_fetch_backoff_ms: r.at_least_i("replica.fetch.backoff.ms", 0)?,
            replica_high_watermark_checkpoint_interval_ms: r
                .long("replica.high.watermark.checkpoint.interval.ms")?,
            num_replica_fetchers: r.int("num.replica.fetchers")?,
            inter_broker_protocol_version: r.string("inter.broker.protocol.version")?,
            offsets_topic_num_partitions: r.at_least_i("offsets.topic.num.partitions", 1)?,
            offsets_topic_replication_factor,
            offsets_topic_segment_bytes: r.at_least_i("offsets.topic.segment.bytes", 1)?,
            offsets_topic_compression_codec: r.int("offsets.topic.compression.codec")?,
            offsets_load_buffer_size: r.at_least_i("offsets.load.buffer.size", 1)?,
            offsets_commit_required_acks,
            offsets_commit_timeout_ms: r.at_least_i("offsets.commit.timeout.ms", 1)?,
            offsets_retention_minutes: r.at_least_i("offsets.retention.minutes", 1)?,
            offsets_retention_check_interval_ms: r
                .at_least_l("offsets.retention.check.interval.ms", 1)?,
            offset_metadata_max_bytes: r.int("offset.metadata.max.bytes")?,
            group_min_session_timeout_ms: r.int("group.min.session.timeout.ms")?,
            group_max_session_timeout_ms: r.int("group.max.session.timeout.ms")?,
            group_initial_rebalance_delay_ms: r.int("group.initial.rebalance.delay.ms")?,
            group_max_size: r.at_least_i("group.max.size", 1)?,
            transaction_state_log_num_partitions: r
                .at_least_i("transaction.state.log.num.partitions", 1)?,
            transaction_state_log_replication_factor: r
                .short("transaction.state.log.replication.factor")?,
            transaction_state_log_segment_bytes: r
                .at_least_i("transaction.state.log.segment.bytes", 1)?,
            transaction_state_log_min_isr: r.at_least_i("transaction.state.log.min.isr", 1)?,
            transaction_state_log_load_buffer_size: r
                .at_least_i("transaction.state.log.load.buffer.size", 1)?,
            transaction_max_timeout_ms: r.at_least_i("transaction.max.timeout.ms", 1)?,
            transactional_id_expiration_ms: r.at_least_i("transactional.id.expiration.ms", 1)?,
            transaction_abort_timed_out_transaction_cleanup_interval_ms: r.at_least_i(
                "transaction.abort.timed.out.transaction.cleanup.interval.ms",
                1,
            )?,
            transaction_remove_expired_transaction_cleanup_interval_ms: r.at_least_i(
                "transaction.remove.expired.transaction.cleanup.interval.ms",
                1,
            )?,
            transaction_partition_verification_enable: r
                .boolean("transaction.partition.verification.enable")?,
            producer_id_expiration_ms: r.at_least_i("producer.id.expiration.ms", 1)?,
            producer_id_expiration_check_interval_ms: r
                .at_least_i("producer.id.expiration.check.interval.ms", 1)?,
            log_segment_bytes: r.at_least_i("log.segment.bytes", 14)?,
            log_roll_ms,
            log_roll_jitter_ms,
            log_index_size_max_bytes: r.at_least_i("log.index.size.max.bytes", 4)?,
            log_index_interval_bytes: r.at_least_i("log.index.interval.bytes", 0)?,
            log_retention_ms,
            log_retention_bytes: r.long("log.retention.bytes")?,
            log_retention_check_interval_ms: r.at_least_l("log.retention.check.interval.ms", 1)?,
            log_cleanup_policy,
            log_cleaner_enable: r.boolean("log.cleaner.enable")?,
            log_cleaner_threads: r.at_least_i("log.cleaner.threads", 0)?,
            log_cleaner_io_max_bytes_per_second: r.double("log.cleaner.io.max.bytes.per.second")?,
            log_cleaner_dedupe_buffer_size: r.long("log.cleaner.dedupe.buffer.size")?,
            log_cleaner_io_buffer_size: r.at_least_i("log.cleaner.io.buffer.size", 0)?,
            log_cleaner_io_buffer_load_factor: r.double("log.cleaner.io.buffer.load.factor")?,
            log_cleaner_backoff_ms: r.at_least_l("log.cleaner.backoff.ms", 0)?,
            log_cleaner_min_cleanable_ratio,
            log_cleaner_delete_retention_ms: r.at_least_l("log.cleaner.delete.retention.ms", 0)?,
            log_cleaner_min_compaction_lag_ms: r
                .at_least_l("log.cleaner.min.compaction.lag.ms", 0)?,
            log_cleaner_max_compaction_lag_ms: r
                .at_least_l("log.cleaner.max.compaction.lag.ms", 1)?,
            log_flush_interval_messages: r.at_least_l("log.flush.interval.messages", 1)?,
            log_flush_interval_ms,
            log_flush_scheduler_interval_ms,
            log_flush_offset_checkpoint_interval_ms: r
                .at_least_i("log.flush.offset.checkpoint.interval.ms", 0)?,
            log_flush_start_offset_checkpoint_interval_ms: r
                .at_least_i("log.flush.start.offset.checkpoint.interval.ms", 0)?,
            log_message_timestamp_type,
            log_message_timestamp_difference_max_ms: r
                .at_least_l("log.message.timestamp.difference.max.ms", 0)?,
            log_message_timestamp_before_max_ms: r
                .at_least_l("log.message.timestamp.before.max.ms", 0)?,
            log_message_timestamp_after_max_ms: r
                .at_least_l("log.message.timestamp.after.max.ms", 0)?,
            log_message_downconversion_enable: r.boolean("log.message.downconversion.enable")?,
            log_message_format_version: r.string("log.message.format.version")?,
            log_preallocate: r.boolean("log.preallocate")?,
            log_segment_delete_delay_ms: r.at_least_l("log.segment.delete.delay.ms", 0)?,
            compression_type,
            compression_gzip_level: gzip,
            compression_lz4_level: lz4,
            compression_zstd_level: zstd,
            // As Kafka: an explicitly empty secret key disables tokens (no fallback).
            delegation_token_secret_key: r
                .raw("delegation.token.secret.key")
                .or_else(|| r.raw("delegation.token.master.key"))
                .filter(|k| !k.is_empty())
                .map(Secret),
            delegation_token_max_lifetime_ms: r
                .at_least_l("delegation.token.max.lifetime.ms", 1)?,
            delegation_token_expiry_time_ms: r.at_least_l("delegation.token.expiry.time.ms", 1)?,
            delegation_token_expiry_check_interval_ms: r
                .at_least_l("delegation.token.expiry.check.interval.ms", 1)?,
            password_encoder_secret: r
                .raw("password.encoder.secret")
                .filter(|k| !k.is_empty())
                .map(Secret),
            password_encoder_old_secret: r
                .raw("password.encoder.old.secret")
                .filter(|k| !k.is_empty())
                .map(Secret),
            password_encoder_keyfactory_algorithm: r
                .opt_string("password.encoder.keyfactory.algorithm"),
            password_encoder_cipher_algorithm: r.string("password.encoder.cipher.algorithm")?,
            password_encoder_key_length: r.at_least_i("password.encoder.key.length", 8)?,
            password_encoder_iterations: r.at_least_i("password.encoder.iterations", 1024)?,
            static_props: explicit.clone(),
            dynamic_default: BTreeMap::new(),
            dynamic_broker: BTreeMap::new(),
            explicit,
            unknown,
        };
        Ok(cfg)
    }

    /// Effective string value of a known broker key as Kafka would report it
    /// (explicit value, else default; `None` when unset with a null default).
    pub fn get(&self, key: &str) -> Option<String> {
        if let Some(v) = self.explicit.get(key) {
            return Some(v.clone());
        }
        broker_config_def(key).and_then(|d| d.default.map(str::to_string))
    }

    /// Whether the key was set in server.properties / overrides.
    pub fn is_set(&self, key: &str) -> bool {
        self.explicit.contains_key(key)
    }

    /// Every key given in server.properties / overrides, known or not (the security
    /// module reads `listener.name.<l>.` prefixed keys from here).
    pub fn all_props(&self) -> BTreeMap<String, String> {
        let mut m = self.unknown.clone();
        m.extend(self.explicit.iter().map(|(k, v)| (k.clone(), v.clone())));
        m
    }

    /// `host:port` pairs of the ZooKeeper ensemble and the chroot (text from the first `/`, if any).
    pub fn zk_hosts_and_chroot(&self) -> (String, Option<String>) {
        match self.zookeeper_connect.find('/') {
            Some(i) => {
                let chroot = self.zookeeper_connect[i..]
                    .trim_end_matches('/')
                    .to_string();
                let chroot = if chroot.is_empty() {
                    None
                } else {
                    Some(chroot)
                };
                (self.zookeeper_connect[..i].to_string(), chroot)
            }
            None => (self.zookeeper_connect.clone(), None),
        }
    }

    /// The advertised endpoint of the inter-broker listener.
    pub fn inter_broker_endpoint(&self) -> Option<&Endpoint> {
        self.advertised_listeners
            .iter()
            .find(|e| e.name == self.inter_broker_listener_name)
    }

    /// The listener the controller uses to reach this broker:
    /// `control.plane.listener.name` if set, else the inter-broker listener.
    pub fn control_plane_endpoint(&self) -> Option<&Endpoint> {
        match &self.control_plane_listener_name {
            Some(name) => self.advertised_listeners.iter().find(|e| &e.name == name),
            None => self.inter_broker_endpoint(),
        }
    }

    /// Broker-derived value for one topic config and the broker key it came from
    /// (`None` source = Kafka's static default).
    pub fn topic_default(&self, def: &TopicConfigDef) -> (String, Option<&'static str>) {
        let computed = match def.name {
            "retention.ms" => Some(self.log_retention_ms.to_string()),
            "segment.ms" => Some(self.log_roll_ms.to_string()),
            "segment.jitter.ms" => Some(self.log_roll_jitter_ms.to_string()),
            "flush.ms" => Some(self.log_flush_interval_ms.to_string()),
            _ => None,
        };
        let source = def.synonyms.iter().copied().find(|k| self.is_set(k));
        if let Some(v) = computed {
            return (v, source);
        }
        if let Some(k) = source {
            if let Some(v) = self.explicit.get(k) {
                return (v.trim().to_string(), Some(k));
            }
        }
        if let Some(k) = def.synonyms.first() {
            if let Some(v) = self.get(k) {
                return (v, None);
            }
        }
        (def.default.to_string(), None)
    }

    /// Topic key → effective value from the broker's settings, for every topic config.
    /// `LogConfig::from_overrides` layers `/config/topics/<t>` on top of this.
    pub fn topic_defaults(&self) -> HashMap<String, String> {
        TOPIC_CONFIGS
            .iter()
            .map(|def| (def.name.to_string(), self.topic_default(def).0))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn minimal() -> HashMap<String, String> {
        props(&[("zookeeper.connect", "localhost:2181")])
    }

    #[test]
    fn authorizer_keys() {
        let c = BrokerConfig::from_props(&minimal()).expect("config");
        assert_eq!(c.authorizer, None);
        let mut p = minimal();
        p.insert("super.users".into(), "User:admin".into());
        // The authorizer's keys are read only when an authorizer is configured.
        p.insert("allow.everyone.if.no.acl.found".into(), "maybe".into());
        assert_eq!(
            BrokerConfig::from_props(&p).expect("config").authorizer,
            None
        );
        p.insert("allow.everyone.if.no.acl.found".into(), " TRUE ".into());
        p.insert(
            "super.users".into(),
            "User:admin; User:CN=broker,O=x ;Group:ops".into(),
        );
        for class in ACL_AUTHORIZER_CLASSES {
            p.insert("authorizer.class.name".into(), class.into());
            let a = BrokerConfig::from_props(&p)
                .expect("config")
                .authorizer
                .expect("enabled");
            assert_eq!(a.class_name, class);
            assert!(a.allow_everyone_if_no_acl_found);
            assert_eq!(
                a.super_users,
                vec!["User:admin", "User:CN=broker,O=x", "Group:ops"]
            );
        }
        let bad = |k: &str, v: &str| {
            let mut q = p.clone();
            q.insert(k.into(), v.into());
            let e = BrokerConfig::from_props(&q).expect_err(k).to_string();
            assert!(e.contains(k), "{e}");
        };
        bad("authorizer.class.name", "com.example.MyAuthorizer");
        bad(
            "authorizer.class.name",
            "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        );
        bad("super.users", "User:admin;bob");
        bad("allow.everyone.if.no.acl.found", "yes");
        bad("authorizer.zookeeper.url", "elsewhere:2181");
        bad("authorizer.zookeeper.session.timeout.ms", "soon");
        let mut same = p.clone();
        same.insert("authorizer.zookeeper.url".into(), "localhost:2181".into());
        assert!(BrokerConfig::from_props(&same)
            .expect("config")
            .authorizer
            .is_some());
        // Kafka's authorizer keys are not warned about as unknown.
        assert!(AUTHORIZER_KEYS
            .iter()
            .all(|k| broker_config_def(k).is_none()));
    }

    #[test]
    fn defaults_match_kafka() {
        let c = BrokerConfig::from_props(&minimal()).expect("config");
        assert_eq!(c.broker_id, -1);
        assert_eq!(c.listeners.len(), 1);
        assert_eq!(c.listeners[0].name, "PLAINTEXT");
        assert_eq!(c.listeners[0].host, "");
        assert_eq!(c.listeners[0].port, 9092);
        assert_eq!(c.inter_broker_listener_name, "PLAINTEXT");
        assert_eq!(c.log_dirs, vec![PathBuf::from("/tmp/kafka-logs")]);
        assert_eq!(c.zookeeper_session_timeout_ms, 18000);
        assert_eq!(c.zookeeper_connection_timeout_ms, 18000);
        assert_eq!(c.message_max_bytes, 1048588);
        assert_eq!(c.log_segment_bytes, 1073741824);
        assert_eq!(c.log_retention_ms, 604_800_000);
        assert_eq!(c.log_roll_ms, 604_800_000);
        assert_eq!(c.log_roll_jitter_ms, 0);
        assert_eq!(c.log_flush_interval_ms, i64::MAX);
        assert_eq!(c.log_segment_delete_delay_ms, 60000);
        assert_eq!(c.offsets_topic_num_partitions, 50);
        assert_eq!(c.offsets_topic_replication_factor, 3);
        assert_eq!(c.transaction_state_log_min_isr, 2);
        assert_eq!(c.replica_lag_time_max_ms, 30000);
        assert!(c.delete_topic_enable);
        assert!(!c.unclean_leader_election_enable);
        assert_eq!(c.compression_type, "producer");
        assert_eq!(c.inter_broker_protocol_version, "3.9-IV0");
        assert!(c.unknown.is_empty());
    }

    /// Kafka's delegation-token keys: defaults, the old key name, an empty key disabling
    /// tokens without falling back, and the secret hidden from `Debug`.
    #[test]
    fn delegation_token_keys() {
        let c = BrokerConfig::from_props(&minimal()).expect("config");
        assert_eq!(c.delegation_token_secret_key, None);
        assert_eq!(c.delegation_token_max_lifetime_ms, 604_800_000);
        assert_eq!(c.delegation_token_expiry_time_ms, 86_400_000);
        assert_eq!(c.delegation_token_expiry_check_interval_ms, 3_600_000);
        let mut p = minimal();
        p.insert("delegation.token.master.key".into(), "old".into());
        let c = BrokerConfig::from_props(&p).expect("config");
        assert_eq!(c.delegation_token_secret_key, Some(Secret("old".into())));
        p.insert("delegation.token.secret.key".into(), "new".into());
        let c = BrokerConfig::from_props(&p).expect("config");
        assert_eq!(c.delegation_token_secret_key, Some(Secret("new".into())));
        assert!(!format!("{:?}", c.delegation_token_secret_key).contains("new"));
        p.insert("delegation.token.secret.key".into(), "".into());
        let c = BrokerConfig::from_props(&p).expect("config");
        assert_eq!(c.delegation_token_secret_key, None);
        p.insert("delegation.token.expiry.time.ms".into(), "0".into());
        let e = BrokerConfig::from_props(&p).expect_err("at least 1");
        assert!(
            e.to_string().contains("delegation.token.expiry.time.ms"),
            "{e}"
        );
    }

    #[test]
    fn missing_zookeeper_connect_names_key() {
        let e = BrokerConfig::from_props(&HashMap::new()).expect_err("must fail");
        assert!(e.to_string().contains("zookeeper.connect"), "{e}");
    }

    #[test]
    fn invalid_values_name_key() {
        for (k, v) in [
            ("num.partitions", "x"),
            ("num.partitions", "0"),
            ("log.segment.bytes", "10"),
            ("delete.topic.enable", "yes"),
            ("compression.type", "brotli"),
            ("log.cleanup.policy", "delete,shred"),
            ("broker.id", "5000"),
            ("listeners", "FOO://:9092"),
            ("log.cleaner.min.cleanable.ratio", "1.5"),
        ] {
            let mut p = minimal();
            p.insert(k.to_string(), v.to_string());
            let e = BrokerConfig::from_props(&p).expect_err(k);
            assert!(e.to_string().contains(k), "{k}: {e}");
        }
    }

    #[test]
    fn retention_precedence() {
        let mut p = minimal();
        p.insert("log.retention.hours".into(), "1".into());
        assert_eq!(
            BrokerConfig::from_props(&p).expect("c").log_retention_ms,
            3_600_000
        );
        p.insert("log.retention.minutes".into(), "2".into());
        assert_eq!(
            BrokerConfig::from_props(&p).expect("c").log_retention_ms,
            120_000
        );
        p.insert("log.retention.ms".into(), "5".into());
        let c = BrokerConfig::from_props(&p).expect("c");
        assert_eq!(c.log_retention_ms, 5);
        let def = topic_config_def("retention.ms").expect("def");
        assert_eq!(
            c.topic_default(def),
            ("5".to_string(), Some("log.retention.ms"))
        );
        p.insert("log.retention.ms".into(), "-7".into());
        assert_eq!(
            BrokerConfig::from_props(&p).expect("c").log_retention_ms,
            -1
        );
    }

    #[test]
    fn listeners_and_unknown_keys() {
        let mut p = minimal();
        p.insert(
            "listeners".into(),
            "INTERNAL://127.0.0.1:9093,EXTERNAL://[::1]:9094".into(),
        );
        p.insert(
            "listener.security.protocol.map".into(),
            "INTERNAL:PLAINTEXT,EXTERNAL:SSL".into(),
        );
        p.insert("inter.broker.listener.name".into(), "internal".into());
        p.insert(
            "advertised.listeners".into(),
            "INTERNAL://h1:9093,EXTERNAL://h1:9094".into(),
        );
        p.insert("some.plugin.setting".into(), "x".into());
        let c = BrokerConfig::from_props(&p).expect("c");
        assert_eq!(c.listeners[1].host, "::1");
        assert_eq!(c.listeners[1].security_protocol, SecurityProtocol::Ssl);
        assert_eq!(
            c.inter_broker_endpoint().map(|e| e.connection_string()),
            Some("INTERNAL://h1:9093".to_string())
        );
        assert_eq!(c.listeners[1].connection_string(), "EXTERNAL://[::1]:9094");
        assert!(c.unknown.contains_key("some.plugin.setting"));
        p.insert("security.inter.broker.protocol".into(), "PLAINTEXT".into());
        assert!(BrokerConfig::from_props(&p).is_err());
    }

    #[test]
    fn log_dirs_and_chroot() {
        let p = props(&[
            ("zookeeper.connect", "a:1,b:2/kafka/x"),
            ("log.dir", "/ignored"),
            ("log.dirs", "/d1, /d2"),
        ]);
        let c = BrokerConfig::from_props(&p).expect("c");
        assert_eq!(c.log_dirs, vec![PathBuf::from("/d1"), PathBuf::from("/d2")]);
        assert_eq!(
            c.zk_hosts_and_chroot(),
            ("a:1,b:2".to_string(), Some("/kafka/x".to_string()))
        );
    }

    #[test]
    fn topic_defaults_follow_broker() {
        let mut p = minimal();
        p.insert("log.segment.bytes".into(), "1048576".into());
        p.insert("message.max.bytes".into(), "2000000".into());
        p.insert("log.roll.hours".into(), "2".into());
        p.insert("log.cleanup.policy".into(), "compact".into());
        let c = BrokerConfig::from_props(&p).expect("c");
        let t = c.topic_defaults();
        assert_eq!(t["segment.bytes"], "1048576");
        assert_eq!(t["max.message.bytes"], "2000000");
        assert_eq!(t["segment.ms"], "7200000");
        assert_eq!(t["cleanup.policy"], "compact");
        assert_eq!(t["retention.ms"], "604800000");
        assert_eq!(t["file.delete.delay.ms"], "60000");
        assert_eq!(t["min.insync.replicas"], "1");
        assert_eq!(t["remote.storage.enable"], "false");
        assert_eq!(t.len(), TOPIC_CONFIGS.len());
        let def = topic_config_def("segment.ms").expect("def");
        assert_eq!(c.topic_default(def).1, Some("log.roll.hours"));
    }

    #[test]
    fn topic_config_validation() {
        assert!(validate_topic_config("retention.ms", "1000").is_ok());
        assert!(validate_topic_config("cleanup.policy", "compact,delete").is_ok());
        assert!(validate_topic_config("retention.ms", "abc").is_err());
        assert!(validate_topic_config("segment.bytes", "1").is_err());
        assert!(validate_topic_config("no.such.config", "1").is_err());
        assert!(validate_topic_config("min.cleanable.dirty.ratio", "2").is_err());
    }

    #[test]
    fn load_with_overrides() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("server.properties");
        std::fs::write(
            &path,
            "broker.id=1\nzookeeper.connect=z:2181\nnum.partitions=3\n",
        )
        .expect("write");
        let c = BrokerConfig::load(&path, &[("num.partitions".into(), "4".into())]).expect("load");
        assert_eq!(c.broker_id, 1);
        assert_eq!(c.num_partitions, 4);
        let e = BrokerConfig::load(&dir.path().join("nope"), &[]).expect_err("missing");
        assert!(e.to_string().contains("nope"));
    }
}
