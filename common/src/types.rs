//! Typed ids shared by every crate.
//!
//! Kafka's wire types are plain integers; these aliases and small structs keep
//! signatures readable without forcing conversions at every protocol boundary.

use std::fmt;

/// A broker's `broker.id`.
pub type BrokerId = i32;
/// A log offset (next offset to write is the log end offset).
pub type Offset = i64;
/// A partition leader epoch; -1 means "none".
pub type LeaderEpoch = i32;
/// The controller epoch stored in `/controller_epoch`.
pub type ControllerEpoch = i32;
/// The broker epoch: czxid of the broker's `/brokers/ids/<id>` znode.
pub type BrokerEpoch = i64;

/// A topic name plus partition index, Kafka's `TopicPartition`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        Self {
            topic: topic.into(),
            partition,
        }
    }
}

impl fmt::Display for TopicPartition {
    /// Kafka's `toString` and partition directory name: `<topic>-<partition>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// Kafka `Uuid` text form helpers: 16 bytes, URL-safe base64 without padding (22 chars).
///
/// Topic ids and `/cluster/id` use this form. Kafka never hands out a topic id that is all-zero,
/// equals the metadata topic id (0,1), or whose text starts with `-` (it would look like a CLI flag).
pub mod kafka_uuid {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    pub use uuid::Uuid;

    /// Kafka's `Uuid.ZERO_UUID`: "no topic id".
    pub const ZERO: Uuid = Uuid::nil();
    /// Kafka's `Uuid.METADATA_TOPIC_ID` (most=0, least=1), reserved.
    pub const METADATA_TOPIC_ID: Uuid = Uuid::from_u64_pair(0, 1);

    /// 22-char URL-safe base64 text of a Uuid, as Kafka's `Uuid.toString`.
    pub fn to_base64(id: &Uuid) -> String {
        URL_SAFE_NO_PAD.encode(id.as_bytes())
    }

    /// Parse Kafka's text form; `None` unless it decodes to exactly 16 bytes.
    pub fn from_base64(s: &str) -> Option<Uuid> {
        let bytes = URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok()?;
        let arr: [u8; 16] = bytes.try_into().ok()?;
        Some(Uuid::from_bytes(arr))
    }

    /// A fresh id usable as a topic id (Kafka's `Uuid.randomUuid`).
    pub fn random_topic_id() -> Uuid {
        loop {
            let id = Uuid::new_v4();
            if id != ZERO && id != METADATA_TOPIC_ID && !to_base64(&id).starts_with('-') {
                return id;
            }
        }
    }

    /// A fresh cluster id (Kafka's `CoreUtils.generateUuidAsBase64`: any random UUID, may start with `-`).
    pub fn random_cluster_id() -> String {
        to_base64(&Uuid::new_v4())
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn base64_round_trip_and_kafka_examples() {
            // Kafka's UuidTest: Uuid(0, 1) prints "AAAAAAAAAAAAAAAAAAAAAQ".
            assert_eq!(to_base64(&METADATA_TOPIC_ID), "AAAAAAAAAAAAAAAAAAAAAQ");
            assert_eq!(to_base64(&ZERO), "AAAAAAAAAAAAAAAAAAAAAA");
            assert_eq!(
                from_base64("AAAAAAAAAAAAAAAAAAAAAQ"),
                Some(METADATA_TOPIC_ID)
            );
            assert_eq!(from_base64("short"), None);
            for _ in 0..200 {
                let id = random_topic_id();
                let s = to_base64(&id);
                assert_eq!(s.len(), 22);
                assert!(!s.starts_with('-'));
                assert_eq!(from_base64(&s), Some(id));
            }
            assert_eq!(random_cluster_id().len(), 22);
        }
    }
}
