//! One partition log and the log manager: Kafka 3.9 on-disk format.
//!
//! Public API (used by the replica manager and handlers): [`LogManager`] owns the log
//! dirs and hands out [`Log`]s; a `Log` appends ([`Log::append_as_leader`],
//! [`Log::append_as_follower`]) and reads ([`Log::read`] → [`FetchDataInfo`] of
//! [`FileSlice`]s for `sendfile`).

pub mod batch;
pub mod checkpoint;
mod checkpoint_io;
pub mod cleaner;
pub mod config;
pub mod down_convert;
pub mod future;
pub mod hooks;
pub mod leader_epoch;
mod loader;
#[allow(clippy::module_inception)]
pub mod log;
pub mod manager;
pub mod offset_index;
pub mod producer_state;
pub mod records;
pub mod segment;
pub mod time_index;
pub mod txn_index;
pub mod validate;

pub use config::{CompressionCodec, LogConfig, TimestampType, TopicCompression};
pub use log::{
    AbortedTransaction, AppendOrigin, FetchDataInfo, Log, LogAppendInfo, TimestampAndOffset,
    EARLIEST_TIMESTAMP, LATEST_TIMESTAMP, MAX_TIMESTAMP,
};
pub use manager::{LogManager, LogManagerConfig, MetaProperties};
pub use records::FileSlice;
pub use segment::LogOffsetMetadata;

#[cfg(test)]
mod corruption_tests;
#[cfg(test)]
pub(crate) mod tests;
