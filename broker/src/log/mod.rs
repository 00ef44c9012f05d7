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

/// When an I/O error is the process running out of a kernel limit, which one to raise
/// (appended to the log line that takes a dir offline); empty otherwise. Running out of
/// descriptors or memory maps fails only the operation that hit it: the dir goes offline
/// as for any I/O error, nothing already written is touched.
pub fn limit_hint(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EMFILE) => {
            let (soft, hard) = nofile_limit();
            format!(
                " (the broker reached its open-files limit RLIMIT_NOFILE = {soft}, hard \
                 limit {hard}: raise it, e.g. `ulimit -n` or systemd LimitNOFILE)"
            )
        }
        Some(libc::ENFILE) => " (the system-wide open-files limit fs.file-max was reached: \
                               raise it with sysctl)"
            .to_string(),
        Some(libc::ENOMEM) => {
            let max = std::fs::read_to_string("/proc/sys/vm/max_map_count").unwrap_or_default();
            format!(
                " (out of memory maps or memory: vm.max_map_count is {}; raise it with sysctl)",
                max.trim()
            )
        }
        _ => String::new(),
    }
}

fn nofile_limit() -> (String, String) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given.
    #[allow(unsafe_code)]
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0;
    if !ok {
        return ("unknown".into(), "unknown".into());
    }
    let show = |v: libc::rlim_t| {
        if v == libc::RLIM_INFINITY {
            "unlimited".to_string()
        } else {
            v.to_string()
        }
    };
    (show(lim.rlim_cur), show(lim.rlim_max))
}
