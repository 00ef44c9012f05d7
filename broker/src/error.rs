//! The broker's one error type and the single mapping to Kafka wire error codes.
//!
//! Storage, replication and handlers all return [`Error`]; when a failure has to
//! travel inside a response (per partition, per topic) the handler calls
//! [`Error::code`]. Keeping the mapping in one `match` means a new variant cannot
//! silently fall through to `UNKNOWN_SERVER_ERROR` without the compiler noticing.

use kafka_protocol::ResponseError;

/// Result alias used throughout the broker crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One rejected record: its index in the batch and why (Produce v8+ `record_errors`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    pub batch_index: i32,
    pub message: Option<String>,
}

/// Every failure the broker can report. The message is for logs; the code is what
/// clients see.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A batch failed its CRC, or its framing/size fields are inconsistent.
    #[error("corrupt message: {0}")]
    CorruptMessage(String),
    /// A record failed validation (e.g. null key on a compacted topic).
    #[error("invalid record: {0}")]
    InvalidRecord(String),
    /// A batch is larger than `max.message.bytes`.
    #[error("message too large: {0}")]
    MessageTooLarge(String),
    /// A record set is larger than a segment can hold.
    #[error("record list too large: {0}")]
    RecordListTooLarge(String),
    /// A record timestamp is outside `message.timestamp.*.max.ms`.
    #[error("invalid timestamp: {0}")]
    InvalidTimestamp(String),
    /// Records of a produced batch failed validation (Kafka `RecordValidationException`):
    /// INVALID_TIMESTAMP if any timestamp is bad, else INVALID_RECORD. Produce v8+ sends
    /// `message` as the partition's error message and `record_errors` per record.
    #[error("record validation: {message}")]
    RecordValidation {
        invalid_timestamp: bool,
        message: String,
        record_errors: Vec<RecordError>,
    },
    /// The requested offset is outside `[log start, log end]`.
    #[error("offset out of range: {0}")]
    OffsetOutOfRange(String),
    /// The log directory failed (I/O error marks the dir offline).
    #[error("storage error: {0}")]
    KafkaStorageError(String),
    /// Idempotent producer sent a sequence with a gap.
    #[error("out of order sequence: {0}")]
    OutOfOrderSequence(String),
    /// Idempotent producer re-sent a batch already written.
    #[error("duplicate sequence: {0}")]
    DuplicateSequence(String),
    /// Producer epoch older than the one we know.
    #[error("invalid producer epoch: {0}")]
    InvalidProducerEpoch(String),
    /// A newer producer with the same transactional id exists.
    #[error("producer fenced: {0}")]
    ProducerFenced(String),
    /// No state for this producer id.
    #[error("unknown producer id: {0}")]
    UnknownProducerId(String),
    /// Transactional operation not valid in the current state.
    #[error("invalid transaction state: {0}")]
    InvalidTxnState(String),
    /// This broker is neither leader nor follower for the partition (or not leader when it must be).
    #[error("not leader or follower: {0}")]
    NotLeaderOrFollower(String),
    /// The request carried a leader epoch older than ours.
    #[error("fenced leader epoch: {0}")]
    FencedLeaderEpoch(String),
    /// The request carried a leader epoch newer than ours.
    #[error("unknown leader epoch: {0}")]
    UnknownLeaderEpoch(String),
    /// ISR smaller than `min.insync.replicas` before the append.
    #[error("not enough replicas: {0}")]
    NotEnoughReplicas(String),
    /// ISR shrank below `min.insync.replicas` after the append.
    #[error("not enough replicas after append: {0}")]
    NotEnoughReplicasAfterAppend(String),
    /// No such topic/partition on this broker or in the metadata cache.
    #[error("unknown topic or partition: {0}")]
    UnknownTopicOrPartition(String),
    /// No such topic id.
    #[error("unknown topic id: {0}")]
    UnknownTopicId(String),
    /// The topic id in the request does not match the log's.
    #[error("inconsistent topic id: {0}")]
    InconsistentTopicId(String),
    /// Topic name is illegal.
    #[error("invalid topic: {0}")]
    InvalidTopic(String),
    /// Topic already exists.
    #[error("topic already exists: {0}")]
    TopicAlreadyExists(String),
    /// Partition count is invalid.
    #[error("invalid partitions: {0}")]
    InvalidPartitions(String),
    /// Replication factor invalid or larger than the number of brokers.
    #[error("invalid replication factor: {0}")]
    InvalidReplicationFactor(String),
    /// Replica assignment is invalid.
    #[error("invalid replica assignment: {0}")]
    InvalidReplicaAssignment(String),
    /// A config key or value is invalid.
    #[error("invalid config: {0}")]
    InvalidConfig(String),
    /// No leader currently elected.
    #[error("leader not available: {0}")]
    LeaderNotAvailable(String),
    /// Replica not available for the partition.
    #[error("replica not available: {0}")]
    ReplicaNotAvailable(String),
    /// The request could not complete in time.
    #[error("request timed out: {0}")]
    RequestTimedOut(String),
    /// The request is malformed for its API/version.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The API version is not supported.
    #[error("unsupported version: {0}")]
    UnsupportedVersion(String),
    /// Request violates a configured policy.
    #[error("policy violation: {0}")]
    PolicyViolation(String),
    /// The controller epoch in a control request is older than the one we know.
    #[error("stale controller epoch: {0}")]
    StaleControllerEpoch(String),
    /// The broker epoch in a control request is not our current epoch.
    #[error("stale broker epoch: {0}")]
    StaleBrokerEpoch(String),
    /// This broker is not the controller.
    #[error("not controller: {0}")]
    NotController(String),
    /// Group/transaction coordinator is still loading its state.
    #[error("coordinator load in progress: {0}")]
    CoordinatorLoadInProgress(String),
    /// Coordinator not available.
    #[error("coordinator not available: {0}")]
    CoordinatorNotAvailable(String),
    /// This broker is not the coordinator for the key.
    #[error("not coordinator: {0}")]
    NotCoordinator(String),
    /// Topic deletion is disabled (`delete.topic.enable=false`).
    #[error("topic deletion disabled")]
    TopicDeletionDisabled,
    /// Compression codec not supported for this request version.
    #[error("unsupported compression type: {0}")]
    UnsupportedCompressionType(String),
    /// The broker's log dir is not configured.
    #[error("log dir not found: {0}")]
    LogDirNotFound(String),
    /// A ZooKeeper operation failed.
    #[error("zookeeper: {0}")]
    ZooKeeper(String),
    /// Any other Kafka error code raised directly (e.g. from a coordinator).
    #[error("kafka error {0:?}: {1}")]
    Kafka(ResponseError, String),
    /// Operating-system I/O failure.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// Something unexpected; a human must look.
    #[error("internal: {0}")]
    Internal(String),
}

impl Error {
    /// The Kafka wire error code for this error (never 0).
    pub fn code(&self) -> i16 {
        self.response_error().code()
    }

    /// The Kafka error kind for this error.
    pub fn response_error(&self) -> ResponseError {
        use ResponseError as R;
        match self {
            Error::CorruptMessage(_) => R::CorruptMessage,
            Error::InvalidRecord(_) => R::InvalidRecord,
            Error::MessageTooLarge(_) => R::MessageTooLarge,
            Error::RecordListTooLarge(_) => R::RecordListTooLarge,
            Error::InvalidTimestamp(_) => R::InvalidTimestamp,
            Error::RecordValidation {
                invalid_timestamp: true,
                ..
            } => R::InvalidTimestamp,
            Error::RecordValidation { .. } => R::InvalidRecord,
            Error::OffsetOutOfRange(_) => R::OffsetOutOfRange,
            Error::KafkaStorageError(_) => R::KafkaStorageError,
            Error::OutOfOrderSequence(_) => R::OutOfOrderSequenceNumber,
            Error::DuplicateSequence(_) => R::DuplicateSequenceNumber,
            Error::InvalidProducerEpoch(_) => R::InvalidProducerEpoch,
            Error::ProducerFenced(_) => R::ProducerFenced,
            Error::UnknownProducerId(_) => R::UnknownProducerId,
            Error::InvalidTxnState(_) => R::InvalidTxnState,
            Error::NotLeaderOrFollower(_) => R::NotLeaderOrFollower,
            Error::FencedLeaderEpoch(_) => R::FencedLeaderEpoch,
            Error::UnknownLeaderEpoch(_) => R::UnknownLeaderEpoch,
            Error::NotEnoughReplicas(_) => R::NotEnoughReplicas,
            Error::NotEnoughReplicasAfterAppend(_) => R::NotEnoughReplicasAfterAppend,
            Error::UnknownTopicOrPartition(_) => R::UnknownTopicOrPartition,
            Error::UnknownTopicId(_) => R::UnknownTopicId,
            Error::InconsistentTopicId(_) => R::InconsistentTopicId,
            Error::InvalidTopic(_) => R::InvalidTopicException,
            Error::TopicAlreadyExists(_) => R::TopicAlreadyExists,
            Error::InvalidPartitions(_) => R::InvalidPartitions,
            Error::InvalidReplicationFactor(_) => R::InvalidReplicationFactor,
            Error::InvalidReplicaAssignment(_) => R::InvalidReplicaAssignment,
            Error::InvalidConfig(_) => R::InvalidConfig,
            Error::LeaderNotAvailable(_) => R::LeaderNotAvailable,
            Error::ReplicaNotAvailable(_) => R::ReplicaNotAvailable,
            Error::RequestTimedOut(_) => R::RequestTimedOut,
            Error::InvalidRequest(_) => R::InvalidRequest,
            Error::UnsupportedVersion(_) => R::UnsupportedVersion,
            Error::PolicyViolation(_) => R::PolicyViolation,
            Error::StaleControllerEpoch(_) => R::StaleControllerEpoch,
            Error::StaleBrokerEpoch(_) => R::StaleBrokerEpoch,
            Error::NotController(_) => R::NotController,
            Error::CoordinatorLoadInProgress(_) => R::CoordinatorLoadInProgress,
            Error::CoordinatorNotAvailable(_) => R::CoordinatorNotAvailable,
            Error::NotCoordinator(_) => R::NotCoordinator,
            Error::TopicDeletionDisabled => R::TopicDeletionDisabled,
            Error::UnsupportedCompressionType(_) => R::UnsupportedCompressionType,
            Error::LogDirNotFound(_) => R::LogDirNotFound,
            Error::Kafka(e, _) => *e,
            // A failed disk read/write is reported like Kafka's KafkaStorageException.
            Error::Io(_) => R::KafkaStorageError,
            Error::ZooKeeper(_) | Error::Internal(_) => R::UnknownServerError,
        }
    }
}

/// Error code helper for response fields: `0` for success.
pub fn code_of<T>(r: &Result<T>) -> i16 {
    match r {
        Ok(_) => 0,
        Err(e) => e.code(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pins every variant to the code Kafka 3.9 uses (Errors.java).
    #[test]
    fn codes_match_kafka() {
        let s = String::new;
        let cases: Vec<(Error, i16)> = vec![
            (Error::CorruptMessage(s()), 2),
            (Error::InvalidRecord(s()), 87),
            (Error::MessageTooLarge(s()), 10),
            (Error::RecordListTooLarge(s()), 18),
            (Error::InvalidTimestamp(s()), 32),
            (
                Error::RecordValidation {
                    invalid_timestamp: true,
                    message: s(),
                    record_errors: vec![],
                },
                32,
            ),
            (
                Error::RecordValidation {
                    invalid_timestamp: false,
                    message: s(),
                    record_errors: vec![],
                },
                87,
            ),
            (Error::OffsetOutOfRange(s()), 1),
            (Error::KafkaStorageError(s()), 56),
            (Error::OutOfOrderSequence(s()), 45),
            (Error::DuplicateSequence(s()), 46),
            (Error::InvalidProducerEpoch(s()), 47),
            (Error::ProducerFenced(s()), 90),
            (Error::UnknownProducerId(s()), 59),
            (Error::InvalidTxnState(s()), 48),
            (Error::NotLeaderOrFollower(s()), 6),
            (Error::FencedLeaderEpoch(s()), 74),
            (Error::UnknownLeaderEpoch(s()), 75),
            (Error::NotEnoughReplicas(s()), 19),
            (Error::NotEnoughReplicasAfterAppend(s()), 20),
            (Error::UnknownTopicOrPartition(s()), 3),
            (Error::UnknownTopicId(s()), 100),
            (Error::InconsistentTopicId(s()), 103),
            (Error::InvalidTopic(s()), 17),
            (Error::TopicAlreadyExists(s()), 36),
            (Error::InvalidPartitions(s()), 37),
            (Error::InvalidReplicationFactor(s()), 38),
            (Error::InvalidReplicaAssignment(s()), 39),
            (Error::InvalidConfig(s()), 40),
            (Error::LeaderNotAvailable(s()), 5),
            (Error::ReplicaNotAvailable(s()), 9),
            (Error::RequestTimedOut(s()), 7),
            (Error::InvalidRequest(s()), 42),
            (Error::UnsupportedVersion(s()), 35),
            (Error::PolicyViolation(s()), 44),
            (Error::StaleControllerEpoch(s()), 11),
            (Error::StaleBrokerEpoch(s()), 77),
            (Error::NotController(s()), 41),
            (Error::CoordinatorLoadInProgress(s()), 14),
            (Error::CoordinatorNotAvailable(s()), 15),
            (Error::NotCoordinator(s()), 16),
            (Error::TopicDeletionDisabled, 73),
            (Error::UnsupportedCompressionType(s()), 76),
            (Error::LogDirNotFound(s()), 57),
            (Error::ZooKeeper(s()), -1),
            (Error::Internal(s()), -1),
            (Error::Kafka(ResponseError::GroupIdNotFound, s()), 69),
            (Error::Io(std::io::Error::other("disk")), 56),
        ];
        for (e, code) in cases {
            assert_eq!(e.code(), code, "{e:?}");
        }
        assert_eq!(code_of::<()>(&Ok(())), 0);
    }
}
