//! Kafka's names for request types and error codes, as they appear in the `request` and
//! `error` tags of `kafka.network:type=RequestMetrics` MBeans (and so in the labels the
//! JMX exporter produces).

use std::sync::LazyLock;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::ApiKey;

/// Highest api key tracked (UpdateRaftVoter = 82 in kafka-protocol 0.15).
pub const MAX_API_KEY: usize = 90;
/// `RequestsPerSec` versions tracked per request type (higher versions share the last slot).
pub const VERSION_SLOTS: usize = 24;
/// Error codes tracked: -1 (UNKNOWN_SERVER_ERROR) up to 130; others share the last slot.
pub const ERROR_SLOTS: usize = 132;

/// Kafka's name for a request index ([`super::FETCH_CONSUMER`] and
/// [`super::FETCH_FOLLOWER`] included), e.g. `Produce`, `FetchFollower`.
pub fn request_name(index: usize) -> Option<&'static str> {
    REQUEST_NAMES.get(index).and_then(|n| n.as_deref())
}

static REQUEST_NAMES: LazyLock<Vec<Option<String>>> = LazyLock::new(|| {
    let mut v: Vec<Option<String>> = (0..=MAX_API_KEY)
        .map(|k| {
            i16::try_from(k)
                .ok()
                .and_then(|k| ApiKey::try_from(k).ok())
                .map(|k| format!("{k:?}"))
        })
        .collect();
    v.push(Some("FetchConsumer".into()));
    v.push(Some("FetchFollower".into()));
    v
});

/// Kafka's `Errors` enum name of a code slot (code + 1), e.g. `NONE`, `NOT_LEADER_OR_FOLLOWER`.
pub fn error_name(slot: usize) -> &'static str {
    ERROR_NAMES
        .get(slot)
        .map(String::as_str)
        .unwrap_or("UNKNOWN_SERVER_ERROR")
}

static ERROR_NAMES: LazyLock<Vec<String>> = LazyLock::new(|| {
    (0..ERROR_SLOTS)
        .map(|slot| {
            let code = slot as i16 - 1;
            match ResponseError::try_from_code(code) {
                None => "NONE".to_string(),
                Some(ResponseError::Unknown(_)) => format!("UNKNOWN_{code}"),
                Some(e) => upper_snake(&format!("{e:?}")),
            }
        })
        .collect()
});

/// `NotLeaderOrFollower` → `NOT_LEADER_OR_FOLLOWER` (kafka-protocol camel-cases Kafka's
/// enum names, so this gives them back).
fn upper_snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 8);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_names() {
        assert_eq!(request_name(0), Some("Produce"));
        assert_eq!(request_name(1), Some("Fetch"));
        assert_eq!(request_name(4), Some("LeaderAndIsr"));
        assert_eq!(request_name(18), Some("ApiVersions"));
        assert_eq!(request_name(56), Some("AlterPartition"));
        assert_eq!(
            request_name(super::super::FETCH_CONSUMER),
            Some("FetchConsumer")
        );
        assert_eq!(
            request_name(super::super::FETCH_FOLLOWER),
            Some("FetchFollower")
        );
        assert_eq!(error_name(0), "UNKNOWN_SERVER_ERROR");
        assert_eq!(error_name(1), "NONE");
        assert_eq!(error_name(7), "NOT_LEADER_OR_FOLLOWER");
        assert_eq!(error_name(18), "INVALID_TOPIC_EXCEPTION");
        assert_eq!(error_name(57), "KAFKA_STORAGE_ERROR");
    }
}
