//! `LogConfig`: the effective per-topic log configuration, with Kafka 3.9's topic-level
//! key names, defaults and validation ranges (`LogConfig.java` / `TopicConfig.java`).
//!
//! The broker builds the map it passes to [`LogConfig::from_props`] from its `log.*`
//! server properties translated to topic keys (see [`BROKER_TO_TOPIC_KEYS`]) and then
//! overlays the topic's ZooKeeper overrides, so one parser serves both.

use std::collections::HashMap;

use crate::error::{Error, Result};

/// Compression codec ids as stored in the batch attributes (bits 0-2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CompressionCodec {
    None = 0,
    Gzip = 1,
    Snappy = 2,
    Lz4 = 3,
    Zstd = 4,
}

impl CompressionCodec {
    /// Codec from the 3 attribute bits; `None` for the unused ids 5-7.
    pub fn from_id(id: i16) -> Option<Self> {
        Some(match id {
            0 => Self::None,
            1 => Self::Gzip,
            2 => Self::Snappy,
            3 => Self::Lz4,
            4 => Self::Zstd,
            _ => return None,
        })
    }
    pub fn id(self) -> i16 {
        self as i16
    }
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Gzip => "gzip",
            Self::Snappy => "snappy",
            Self::Lz4 => "lz4",
            Self::Zstd => "zstd",
        }
    }
}

/// Topic `compression.type`: `producer` keeps whatever codec each batch arrived with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TopicCompression {
    Producer,
    Codec(CompressionCodec),
}

/// Topic `message.timestamp.type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimestampType {
    CreateTime,
    LogAppendTime,
}

/// Every topic-level config Kafka 3.9 knows (ZK mode), typed, with Kafka's defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct LogConfig {
    /// `segment.bytes` (1 GiB, ≥ 14).
    pub segment_bytes: i32,
    /// `segment.ms` (7 days, ≥ 1).
    pub segment_ms: i64,
    /// `segment.jitter.ms` (0, ≥ 0).
    pub segment_jitter_ms: i64,
    /// `segment.index.bytes` (10 MiB, ≥ 4).
    pub segment_index_bytes: i32,
    /// `flush.messages` (Long.MAX, ≥ 1).
    pub flush_messages: i64,
    /// `flush.ms` (Long.MAX, ≥ 0).
    pub flush_ms: i64,
    /// `retention.bytes` (-1 = unlimited).
    pub retention_bytes: i64,
    /// `retention.ms` (7 days, -1 = unlimited).
    pub retention_ms: i64,
    /// `max.message.bytes` (1048588, ≥ 0).
    pub max_message_bytes: i32,
    /// `index.interval.bytes` (4096, ≥ 0).
    pub index_interval_bytes: i32,
    /// `delete.retention.ms` (1 day).
    pub delete_retention_ms: i64,
    /// `min.compaction.lag.ms` (0).
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms` (Long.MAX, ≥ 1).
    pub max_compaction_lag_ms: i64,
    /// `file.delete.delay.ms` (60000).
    pub file_delete_delay_ms: i64,
    /// `min.cleanable.dirty.ratio` (0.5, in [0,1]).
    pub min_cleanable_dirty_ratio: f64,
    /// `cleanup.policy` contains `compact`.
    pub compact: bool,
    /// `cleanup.policy` contains `delete`.
    pub delete: bool,
    /// `unclean.leader.election.enable` (false).
    pub unclean_leader_election_enable: bool,
    /// `min.insync.replicas` (1, ≥ 1).
    pub min_insync_replicas: i32,
    /// `compression.type` (producer).
    pub compression_type: TopicCompression,
    /// `compression.gzip.level` (-1 = codec default, else 1..=9).
    pub compression_gzip_level: i32,
    /// `compression.lz4.level` (9, 1..=17).
    pub compression_lz4_level: i32,
    /// `compression.zstd.level` (3, -131072..=22).
    pub compression_zstd_level: i32,
    /// `preallocate` (false).
    pub preallocate: bool,
    /// `message.format.version` (deprecated; kept verbatim, ignored with IBP ≥ 3.0).
    pub message_format_version: String,
    /// `message.timestamp.type` (CreateTime).
    pub message_timestamp_type: TimestampType,
    /// `message.timestamp.difference.max.ms` (deprecated, Long.MAX).
    pub message_timestamp_difference_max_ms: i64,
    /// `message.timestamp.before.max.ms` (Long.MAX).
    pub message_timestamp_before_max_ms: i64,
    /// `message.timestamp.after.max.ms` (Long.MAX).
    pub message_timestamp_after_max_ms: i64,
    /// `leader.replication.throttled.replicas` ("").
    pub leader_replication_throttled_replicas: String,
    /// `follower.replication.throttled.replicas` ("").
    pub follower_replication_throttled_replicas: String,
    /// `message.downconversion.enable` (true).
    pub message_downconversion_enable: bool,
    /// `remote.storage.enable` (false; tiered storage is not supported, only parsed).
    pub remote_storage_enable: bool,
    /// `local.retention.ms` (-2 = use retention.ms).
    pub local_retention_ms: i64,
    /// `local.retention.bytes` (-2 = use retention.bytes).
    pub local_retention_bytes: i64,
    /// `remote.log.copy.disable` (false).
    pub remote_log_copy_disable: bool,
    /// `remote.log.delete.on.disable` (false).
    pub remote_log_delete_on_disable: bool,
}

/// Smallest index file size used: two 12-byte time-index entries (three offset-index ones).
pub const MIN_INDEX_BYTES: usize = 24;

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            segment_bytes: 1024 * 1024 * 1024,
            segment_ms: 7 * 24 * 3600 * 1000,
            segment_jitter_ms: 0,
            segment_index_bytes: 10 * 1024 * 1024,
            flush_messages: i64::MAX,
            flush_ms: i64::MAX,
            retention_bytes: -1,
            retention_ms: 7 * 24 * 3600 * 1000,
            max_message_bytes: 1024 * 1024 + 12,
            index_interval_bytes: 4096,
            delete_retention_ms: 24 * 3600 * 1000,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            file_delete_delay_ms: 60000,
            min_cleanable_dirty_ratio: 0.5,
            compact: false,
            delete: true,
            unclean_leader_election_enable: false,
            min_insync_replicas: 1,
            compression_type: TopicCompression::Producer,
            compression_gzip_level: -1,
            compression_lz4_level: 9,
            compression_zstd_level: 3,
            preallocate: false,
            message_format_version: "3.0-IV1".to_string(),
            message_timestamp_type: TimestampType::CreateTime,
            message_timestamp_difference_max_ms: i64::MAX,
            message_timestamp_before_max_ms: i64::MAX,
            message_timestamp_after_max_ms: i64::MAX,
            leader_replication_throttled_replicas: String::new(),
            follower_replication_throttled_replicas: String::new(),
            message_downconversion_enable: true,
            remote_storage_enable: false,
            local_retention_ms: -2,
            local_retention_bytes: -2,
            remote_log_copy_disable: false,
            remote_log_delete_on_disable: false,
        }
    }
}

/// Every topic-level key, in Kafka's spelling.
pub const TOPIC_KEYS: &[&str] = &[
    "segment.bytes",
    "segment.ms",
    "segment.jitter.ms",
    "segment.index.bytes",
    "flush.messages",
    "flush.ms",
    "retention.bytes",
    "retention.ms",
    "max.message.bytes",
    "index.interval.bytes",
    "delete.retention.ms",
    "min.compaction.lag.ms",
    "max.compaction.lag.ms",
    "file.delete.delay.ms",
    "min.cleanable.dirty.ratio",
    "cleanup.policy",
    "unclean.leader.election.enable",
    "min.insync.replicas",
    "compression.type",
    "compression.gzip.level",
    "compression.lz4.level",
    "compression.zstd.level",
    "preallocate",
    "message.format.version",
    "message.timestamp.type",
    "message.timestamp.difference.max.ms",
    "message.timestamp.before.max.ms",
    "message.timestamp.after.max.ms",
    "leader.replication.throttled.replicas",
    "follower.replication.throttled.replicas",
    "message.downconversion.enable",
    "remote.storage.enable",
    "local.retention.ms",
    "local.retention.bytes",
    "remote.log.copy.disable",
    "remote.log.delete.on.disable",
];

/// Broker `server.properties` key → topic key it supplies the default for
/// (Kafka's `LogConfig.TopicConfigSynonyms`, first synonym listed). Time-unit
/// variants (`log.roll.hours`, `log.retention.minutes` ...) must be converted by the
/// broker config before lookup; it owns their precedence.
pub const BROKER_TO_TOPIC_KEYS: &[(&str, &str)] = &[
    ("log.segment.bytes", "segment.bytes"),
    ("log.roll.ms", "segment.ms"),
    ("log.roll.jitter.ms", "segment.jitter.ms"),
    ("log.index.size.max.bytes", "segment.index.bytes"),
    ("log.flush.interval.messages", "flush.messages"),
    ("log.flush.interval.ms", "flush.ms"),
    ("log.retention.bytes", "retention.bytes"),
    ("log.retention.ms", "retention.ms"),
    ("message.max.bytes", "max.message.bytes"),
    ("log.index.interval.bytes", "index.interval.bytes"),
    ("log.cleaner.delete.retention.ms", "delete.retention.ms"),
    ("log.cleaner.min.compaction.lag.ms", "min.compaction.lag.ms"),
    ("log.cleaner.max.compaction.lag.ms", "max.compaction.lag.ms"),
    ("log.segment.delete.delay.ms", "file.delete.delay.ms"),
    (
        "log.cleaner.min.cleanable.ratio",
        "min.cleanable.dirty.ratio",
    ),
    ("log.cleanup.policy", "cleanup.policy"),
    (
        "unclean.leader.election.enable",
        "unclean.leader.election.enable",
    ),
    ("min.insync.replicas", "min.insync.replicas"),
    ("compression.type", "compression.type"),
    ("compression.gzip.level", "compression.gzip.level"),
    ("compression.lz4.level", "compression.lz4.level"),
    ("compression.zstd.level", "compression.zstd.level"),
    ("log.preallocate", "preallocate"),
    ("log.message.format.version", "message.format.version"),
    ("log.message.timestamp.type", "message.timestamp.type"),
    (
        "log.message.timestamp.difference.max.ms",
        "message.timestamp.difference.max.ms",
    ),
    (
        "log.message.timestamp.before.max.ms",
        "message.timestamp.before.max.ms",
    ),
    (
        "log.message.timestamp.after.max.ms",
        "message.timestamp.after.max.ms",
    ),
    (
        "log.message.downconversion.enable",
        "message.downconversion.enable",
    ),
    ("log.local.retention.ms", "local.retention.ms"),
    ("log.local.retention.bytes", "local.retention.bytes"),
];

fn bad(key: &str, value: &str, why: &str) -> Error {
    Error::InvalidConfig(format!(
        "Invalid value {value} for configuration {key}: {why}"
    ))
}

fn parse_long(key: &str, v: &str, min: i64, max: i64) -> Result<i64> {
    let n: i64 = v
        .trim()
        .parse()
        .map_err(|_| bad(key, v, "Not a number of type LONG"))?;
    if n < min || n > max {
        return Err(bad(key, v, &format!("Value must be in [{min}, {max}]")));
    }
    Ok(n)
}

fn parse_int(key: &str, v: &str, min: i32, max: i32) -> Result<i32> {
    let n: i32 = v
        .trim()
        .parse()
        .map_err(|_| bad(key, v, "Not a number of type INT"))?;
    if n < min || n > max {
        return Err(bad(key, v, &format!("Value must be in [{min}, {max}]")));
    }
    Ok(n)
}

fn parse_bool(key: &str, v: &str) -> Result<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(bad(key, v, "Expected value to be either true or false")),
    }
}

impl LogConfig {
    /// Builds the effective config from topic-level keys. Keys not in [`TOPIC_KEYS`] are
    /// ignored (the broker notes unknown keys once at start-up); an invalid value is an
    /// `InvalidConfig` error naming the key, like Kafka's `ConfigException`.
    pub fn from_props(props: &HashMap<String, String>) -> Result<LogConfig> {
        let mut c = LogConfig::default();
        for (key, value) in props {
            c.set(key, value)?;
        }
        Ok(c)
    }

    /// Builds from `base` (the broker defaults already translated to topic keys) with the
    /// topic's overrides on top.
    pub fn with_overrides(
        base: &HashMap<String, String>,
        overrides: &HashMap<String, String>,
    ) -> Result<LogConfig> {
        let mut merged = base.clone();
        for (k, v) in overrides {
            merged.insert(k.clone(), v.clone());
        }
        Self::from_props(&merged)
    }

    /// Applies one topic-level key. Unknown keys are ignored.
    pub fn set(&mut self, key: &str, v: &str) -> Result<()> {
        const LMAX: i64 = i64::MAX;
        const IMAX: i32 = i32::MAX;
        match key {
            "segment.bytes" => self.segment_bytes = parse_int(key, v, 14, IMAX)?,
            "segment.ms" => self.segment_ms = parse_long(key, v, 1, LMAX)?,
            "segment.jitter.ms" => self.segment_jitter_ms = parse_long(key, v, 0, LMAX)?,
            "segment.index.bytes" => self.segment_index_bytes = parse_int(key, v, 4, IMAX)?,
            "flush.messages" => self.flush_messages = parse_long(key, v, 1, LMAX)?,
            "flush.ms" => self.flush_ms = parse_long(key, v, 0, LMAX)?,
            "retention.bytes" => self.retention_bytes = parse_long(key, v, i64::MIN, LMAX)?,
            "retention.ms" => self.retention_ms = parse_long(key, v, -1, LMAX)?,
            "max.message.bytes" => self.max_message_bytes = parse_int(key, v, 0, IMAX)?,
            "index.interval.bytes" => self.index_interval_bytes = parse_int(key, v, 0, IMAX)?,
            "delete.retention.ms" => self.delete_retention_ms = parse_long(key, v, 0, LMAX)?,
            "min.compaction.lag.ms" => self.min_compaction_lag_ms = parse_long(key, v, 0, LMAX)?,
            "max.compaction.lag.ms" => self.max_compaction_lag_ms = parse_long(key, v, 1, LMAX)?,
            "file.delete.delay.ms" => self.file_delete_delay_ms = parse_long(key, v, 0, LMAX)?,
            "min.cleanable.dirty.ratio" => {
                let r: f64 = v
                    .trim()
                    .parse()
                    .map_err(|_| bad(key, v, "Not a number of type DOUBLE"))?;
                if !(0.0..=1.0).contains(&r) {
                    return Err(bad(key, v, "Value must be in [0.0, 1.0]"));
                }
                self.min_cleanable_dirty_ratio = r;
            }
            "cleanup.policy" => {
                let (mut compact, mut delete) = (false, false);
                for p in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                    match p {
                        "compact" => compact = true,
                        "delete" => delete = true,
                        _ => return Err(bad(key, v, "String must be one of: compact, delete")),
                    }
                }
                self.compact = compact;
                self.delete = delete;
            }
            "unclean.leader.election.enable" => {
                self.unclean_leader_election_enable = parse_bool(key, v)?
            }
            "min.insync.replicas" => self.min_insync_replicas = parse_int(key, v, 1, IMAX)?,
            "compression.type" => {
                self.compression_type = match v.trim().to_ascii_lowercase().as_str() {
                    "producer" => TopicCompression::Producer,
                    "uncompressed" | "none" => TopicCompression::Codec(CompressionCodec::None),
                    "gzip" => TopicCompression::Codec(CompressionCodec::Gzip),
                    "snappy" => TopicCompression::Codec(CompressionCodec::Snappy),
                    "lz4" => TopicCompression::Codec(CompressionCodec::Lz4),
                    "zstd" => TopicCompression::Codec(CompressionCodec::Zstd),
                    _ => return Err(bad(
                        key,
                        v,
                        "String must be one of: uncompressed, zstd, lz4, snappy, gzip, producer",
                    )),
                }
            }
            "compression.gzip.level" => {
                let n = parse_int(key, v, -1, 9)?;
                if n == 0 {
                    return Err(bad(key, v, "Value must be -1 or in [1, 9]"));
                }
                self.compression_gzip_level = n;
            }
            "compression.lz4.level" => self.compression_lz4_level = parse_int(key, v, 1, 17)?,
            "compression.zstd.level" => {
                self.compression_zstd_level = parse_int(key, v, -131072, 22)?
            }
            "preallocate" => self.preallocate = parse_bool(key, v)?,
            "message.format.version" => self.message_format_version = v.trim().to_string(),
            "message.timestamp.type" => {
                self.message_timestamp_type = match v.trim() {
                    "CreateTime" => TimestampType::CreateTime,
                    "LogAppendTime" => TimestampType::LogAppendTime,
                    _ => {
                        return Err(bad(
                            key,
                            v,
                            "String must be one of: CreateTime, LogAppendTime",
                        ))
                    }
                }
            }
            "message.timestamp.difference.max.ms" => {
                self.message_timestamp_difference_max_ms = parse_long(key, v, 0, LMAX)?
            }
            "message.timestamp.before.max.ms" => {
                self.message_timestamp_before_max_ms = parse_long(key, v, 0, LMAX)?
            }
            "message.timestamp.after.max.ms" => {
                self.message_timestamp_after_max_ms = parse_long(key, v, 0, LMAX)?
            }
            "leader.replication.throttled.replicas" => {
                self.leader_replication_throttled_replicas = v.trim().to_string()
            }
            "follower.replication.throttled.replicas" => {
                self.follower_replication_throttled_replicas = v.trim().to_string()
            }
            "message.downconversion.enable" => {
                self.message_downconversion_enable = parse_bool(key, v)?
            }
            "remote.storage.enable" => self.remote_storage_enable = parse_bool(key, v)?,
            "local.retention.ms" => self.local_retention_ms = parse_long(key, v, -2, LMAX)?,
            "local.retention.bytes" => self.local_retention_bytes = parse_long(key, v, -2, LMAX)?,
            "remote.log.copy.disable" => self.remote_log_copy_disable = parse_bool(key, v)?,
            "remote.log.delete.on.disable" => {
                self.remote_log_delete_on_disable = parse_bool(key, v)?
            }
            _ => {}
        }
        Ok(())
    }

    /// Effective lower bound on record timestamps (`now - before`): the deprecated
    /// `message.timestamp.difference.max.ms` applies while `before` is at its default.
    pub fn timestamp_before_max_ms(&self) -> i64 {
        if self.message_timestamp_before_max_ms == i64::MAX {
            self.message_timestamp_difference_max_ms
        } else {
            self.message_timestamp_before_max_ms
        }
    }

    /// Effective upper bound on record timestamps (`now + after`), same fallback rule.
    pub fn timestamp_after_max_ms(&self) -> i64 {
        if self.message_timestamp_after_max_ms == i64::MAX {
            self.message_timestamp_difference_max_ms
        } else {
            self.message_timestamp_after_max_ms
        }
    }

    /// `segment.index.bytes` as the index files are sized. Kafka accepts values down to 4, but
    /// an index needs room for two time-index entries (one is kept for the roll) before any
    /// append can be indexed; below that every indexed append failed, and since index errors
    /// are I/O errors, one AlterConfigs took the whole log dir offline. Smaller settings are
    /// rounded up to [`MIN_INDEX_BYTES`].
    pub fn index_bytes(&self) -> usize {
        usize::try_from(self.segment_index_bytes)
            .unwrap_or(0)
            .max(MIN_INDEX_BYTES)
    }

    /// Segment age limit used for rolling: compacted topics with a finite
    /// `max.compaction.lag.ms` roll at the smaller of the two.
    pub fn effective_segment_ms(&self) -> i64 {
        if self.compact && self.max_compaction_lag_ms > 0 {
            self.segment_ms.min(self.max_compaction_lag_ms)
        } else {
            self.segment_ms
        }
    }

    /// `retention.bytes` semantic helper: `None` when unlimited (negative).
    pub fn retention_bytes_limit(&self) -> Option<u64> {
        (self.retention_bytes >= 0).then_some(self.retention_bytes as u64)
    }
}

/// The broker's `log.*` defaults as topic-level keys (Kafka `extractLogConfigMap`).
pub fn broker_topic_defaults(bc: &samsa_common::config::BrokerConfig) -> HashMap<String, String> {
    let mut m = HashMap::new();
    let mut put = |k: &str, v: String| {
        m.insert(k.to_string(), v);
    };
    put("segment.bytes", bc.log_segment_bytes.to_string());
    put("segment.ms", bc.log_roll_ms.to_string());
    put("segment.jitter.ms", bc.log_roll_jitter_ms.to_string());
    put(
        "segment.index.bytes",
        bc.log_index_size_max_bytes.to_string(),
    );
    put("flush.messages", bc.log_flush_interval_messages.to_string());
    put("flush.ms", bc.log_flush_interval_ms.to_string());
    put("retention.bytes", bc.log_retention_bytes.to_string());
    put("retention.ms", bc.log_retention_ms.to_string());
    put("max.message.bytes", bc.message_max_bytes.to_string());
    put(
        "index.interval.bytes",
        bc.log_index_interval_bytes.to_string(),
    );
    put(
        "delete.retention.ms",
        bc.log_cleaner_delete_retention_ms.to_string(),
    );
    put(
        "min.compaction.lag.ms",
        bc.log_cleaner_min_compaction_lag_ms.to_string(),
    );
    put(
        "max.compaction.lag.ms",
        bc.log_cleaner_max_compaction_lag_ms.to_string(),
    );
    put(
        "file.delete.delay.ms",
        bc.log_segment_delete_delay_ms.to_string(),
    );
    put(
        "min.cleanable.dirty.ratio",
        bc.log_cleaner_min_cleanable_ratio.to_string(),
    );
    put("cleanup.policy", bc.log_cleanup_policy.join(","));
    put(
        "unclean.leader.election.enable",
        bc.unclean_leader_election_enable.to_string(),
    );
    put("min.insync.replicas", bc.min_insync_replicas.to_string());
    put("compression.type", bc.compression_type.clone());
    put(
        "compression.gzip.level",
        bc.compression_gzip_level.to_string(),
    );
    put(
        "compression.lz4.level",
        bc.compression_lz4_level.to_string(),
    );
    put(
        "compression.zstd.level",
        bc.compression_zstd_level.to_string(),
    );
    put("preallocate", bc.log_preallocate.to_string());
    put(
        "message.format.version",
        bc.log_message_format_version.clone(),
    );
    put(
        "message.timestamp.type",
        bc.log_message_timestamp_type.clone(),
    );
    put(
        "message.timestamp.difference.max.ms",
        bc.log_message_timestamp_difference_max_ms.to_string(),
    );
    put(
        "message.timestamp.before.max.ms",
        bc.log_message_timestamp_before_max_ms.to_string(),
    );
    put(
        "message.timestamp.after.max.ms",
        bc.log_message_timestamp_after_max_ms.to_string(),
    );
    put(
        "message.downconversion.enable",
        bc.log_message_downconversion_enable.to_string(),
    );
    m
}

impl LogConfig {
    /// Effective topic config: broker `log.*` defaults with the topic's overrides on top.
    pub fn from_overrides(
        bc: &samsa_common::config::BrokerConfig,
        overrides: &HashMap<String, String>,
    ) -> Result<LogConfig> {
        Self::with_overrides(&broker_topic_defaults(bc), overrides)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(kv: &[(&str, &str)]) -> HashMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_match_kafka() {
        let c = LogConfig::from_props(&HashMap::new()).expect("defaults");
        assert_eq!(c.segment_bytes, 1073741824);
        assert_eq!(c.segment_ms, 604800000);
        assert_eq!(c.segment_index_bytes, 10485760);
        assert_eq!(c.max_message_bytes, 1048588);
        assert_eq!(c.index_interval_bytes, 4096);
        assert_eq!(c.retention_ms, 604800000);
        assert_eq!(c.retention_bytes, -1);
        assert_eq!(c.file_delete_delay_ms, 60000);
        assert_eq!(c.delete_retention_ms, 86400000);
        assert!(c.delete && !c.compact);
        assert_eq!(c.compression_type, TopicCompression::Producer);
        assert_eq!(c.message_timestamp_type, TimestampType::CreateTime);
        assert_eq!(c.timestamp_before_max_ms(), i64::MAX);
    }

    #[test]
    fn overrides_and_errors_name_the_key() {
        let c = LogConfig::from_props(&map(&[
            ("segment.bytes", "1048576"),
            ("cleanup.policy", "compact,delete"),
            ("compression.type", "zstd"),
            ("message.timestamp.type", "LogAppendTime"),
            ("message.timestamp.difference.max.ms", "1000"),
        ]))
        .expect("valid");
        assert_eq!(c.segment_bytes, 1048576);
        assert!(c.compact && c.delete);
        assert_eq!(
            c.compression_type,
            TopicCompression::Codec(CompressionCodec::Zstd)
        );
        assert_eq!(c.timestamp_before_max_ms(), 1000);
        assert_eq!(c.timestamp_after_max_ms(), 1000);

        let err = LogConfig::from_props(&map(&[("segment.bytes", "10")])).expect_err("invalid");
        assert!(err.to_string().contains("segment.bytes"), "{err}");
        let err = LogConfig::from_props(&map(&[("cleanup.policy", "nope")])).expect_err("invalid");
        assert!(err.to_string().contains("cleanup.policy"), "{err}");
        let err = LogConfig::from_props(&map(&[("retention.ms", "x")])).expect_err("invalid");
        assert!(err.to_string().contains("retention.ms"), "{err}");
    }
}
