//! Coordinators hosted on this broker: classic consumer groups and transactions.

pub mod group;
pub(crate) mod leadership;
pub(crate) mod record_reader;
pub mod txn;

/// Java `String.hashCode` (over UTF-16 code units, wrapping): the hash Kafka uses to pick the
/// internal-topic partition of a group or transactional id.
pub fn java_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, u| h.wrapping_mul(31).wrapping_add(i32::from(u)))
}

/// Kafka's `Utils.abs`: like `abs`, except `i32::MIN` maps to 0.
pub fn kafka_abs(n: i32) -> i32 {
    if n == i32::MIN {
        0
    } else {
        n.abs()
    }
}

/// Partition of an internal topic with `partitions` partitions that owns `key`.
pub fn partition_for(key: &str, partitions: i32) -> i32 {
    kafka_abs(java_hash(key)) % partitions.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_choice_matches_kafka() {
        assert_eq!(partition_for("", 50), 0);
        assert_eq!(java_hash("my-group"), -1906497762);
        assert_eq!(partition_for("my-group", 50), 12);
        assert_eq!(partition_for("test-group", 50), 12);
        assert_eq!(partition_for("tx-1", 50), 20);
        assert_eq!(java_hash("polygenelubricants"), i32::MIN);
        assert_eq!(partition_for("polygenelubricants", 50), 0);
        assert_eq!(partition_for("😀", 50), 49);
    }
}
