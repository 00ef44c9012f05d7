//! `LogManager`: the broker's log dirs (Kafka `LogManager`).
//!
//! Files at the root of each `log.dirs` entry (storage spec §1.1):
//! * `.lock` — empty; an exclusive `fcntl` write lock is held while we run (the same lock
//!   Java's `FileChannel.tryLock` takes), so Kafka and Samsa can never share a dir;
//! * `meta.properties` — Java properties, ZK mode version 0: `version=0`,
//!   `broker.id=<int>`, `cluster.id=<base64 uuid>`, optional `directory.id` (kept);
//! * `.kafka_cleanshutdown` — `{"version":0,"brokerEpoch":-1}` written last at clean
//!   shutdown, deleted at startup; present = skip recovery;
//! * `recovery-point-offset-checkpoint`, `log-start-offset-checkpoint`,
//!   `replication-offset-checkpoint` — offset checkpoint text files (`0`, count,
//!   `topic partition offset` lines), written via tmp + fsync + rename.
//!
//! Partition dirs: `<topic>-<p>`; `<topic>-<p>.<uuid hex>-delete` (deleted in the
//! background); `<topic>-<p>.<uuid hex>-future` (a replica being moved here by
//! AlterReplicaLogDirs, see `future.rs`); `-stray` dirs are ignored in ZK mode.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use samsa_common::types::TopicPartition;
use uuid::Uuid;

use super::checkpoint_io as ckpt;
use super::config::LogConfig;
use super::log::{parse_partition_dir_name, DeleteQueue, DirFailureHook, LoadParams, Log};
use super::producer_state::ProducerStateConfig;
use super::segment::now_ms;
use crate::error::{Error, Result};

pub const LOCK_FILE: &str = ".lock";
pub const META_PROPERTIES: &str = "meta.properties";
pub const CLEAN_SHUTDOWN_FILE: &str = ".kafka_cleanshutdown";
pub const RECOVERY_POINT_CHECKPOINT: &str = "recovery-point-offset-checkpoint";
pub const LOG_START_OFFSET_CHECKPOINT: &str = "log-start-offset-checkpoint";
pub const REPLICATION_OFFSET_CHECKPOINT: &str = "replication-offset-checkpoint";
pub const DELETE_DIR_SUFFIX: &str = "-delete";
pub const FUTURE_DIR_SUFFIX: &str = "-future";
pub const STRAY_DIR_SUFFIX: &str = "-stray";

/// What the log manager needs from the broker config (kept separate from `BrokerConfig`
/// so the storage engine does not depend on its internals).
#[derive(Clone, Debug)]
pub struct LogManagerConfig {
    /// `log.dirs` (or `log.dir`).
    pub log_dirs: Vec<PathBuf>,
    /// Broker-level defaults (`log.*` keys) as a topic `LogConfig`.
    pub default_config: LogConfig,
    /// Per-topic effective configs known at startup (from ZooKeeper).
    pub topic_configs: HashMap<String, LogConfig>,
    /// `num.recovery.threads.per.data.dir` (1).
    pub num_recovery_threads_per_data_dir: usize,
    /// `log.retention.check.interval.ms` (300000).
    pub retention_check_interval_ms: u64,
    /// `log.flush.scheduler.interval.ms` (Long.MAX → never).
    pub flush_check_interval_ms: u64,
    /// `log.flush.offset.checkpoint.interval.ms` (60000).
    pub flush_recovery_offset_checkpoint_interval_ms: u64,
    /// `log.flush.start.offset.checkpoint.interval.ms` (60000).
    pub flush_start_offset_checkpoint_interval_ms: u64,
    /// `replica.high.watermark.checkpoint.interval.ms` (5000).
    pub high_watermark_checkpoint_interval_ms: u64,
    /// Delay before the first background run (Kafka's `InitialTaskDelayMs`, 30000).
    pub initial_task_delay_ms: u64,
    /// `producer.id.expiration.check.interval.ms` (600000).
    pub producer_id_expiration_check_interval_ms: u64,
    /// `log.cleaner.enable` (true): compaction of `cleanup.policy=compact` logs.
    pub cleaner_enable: bool,
    /// `log.cleaner.backoff.ms` (15000): pause between cleaner passes.
    pub cleaner_backoff_ms: u64,
    /// `log.cleaner.dedupe.buffer.size` / `log.cleaner.threads` (134217728).
    pub cleaner_dedupe_buffer_size: usize,
    /// `log.cleaner.io.buffer.load.factor` (0.9).
    pub cleaner_load_factor: f64,
    /// Producer-state settings every log gets (see [`producer_state_config`]).
    pub producer_state: ProducerStateConfig,
}

/// The broker-wide producer-state settings: `producer.id.expiration.ms`,
/// `transaction.partition.verification.enable` (KIP-890: a transactional producer's first
/// batch in a partition needs a verified guard) and `transaction.max.timeout.ms`.
pub fn producer_state_config(bc: &samsa_common::config::BrokerConfig) -> ProducerStateConfig {
    ProducerStateConfig {
        producer_id_expiration_ms: i64::from(bc.producer_id_expiration_ms),
        transaction_verification_enabled: bc.transaction_partition_verification_enable,
        max_transaction_timeout_ms: i64::from(bc.transaction_max_timeout_ms),
    }
}

impl LogManagerConfig {
    /// Kafka defaults for everything but the dirs.
    pub fn new(log_dirs: Vec<PathBuf>) -> Self {
        Self {
            log_dirs,
            default_config: LogConfig::default(),
            topic_configs: HashMap::new(),
            num_recovery_threads_per_data_dir: 1,
            retention_check_interval_ms: 300_000,
            flush_check_interval_ms: i64::MAX as u64,
            flush_recovery_offset_checkpoint_interval_ms: 60_000,
            flush_start_offset_checkpoint_interval_ms: 60_000,
            high_watermark_checkpoint_interval_ms: 5_000,
            initial_task_delay_ms: 30_000,
            producer_id_expiration_check_interval_ms: 600_000,
            cleaner_enable: true,
            cleaner_backoff_ms: 15_000,
            cleaner_dedupe_buffer_size: 128 * 1024 * 1024,
            cleaner_load_factor: 0.9,
            producer_state: ProducerStateConfig::default(),
        }
    }
}

impl LogManagerConfig {
    /// From the broker config (topic overrides are added later with `update_config` or
    /// passed in `topic_configs`).
    pub fn from_broker(bc: &samsa_common::config::BrokerConfig) -> Result<Self> {
        let pos = |v: i64| v.max(1) as u64;
        let mut c = Self::new(bc.log_dirs.clone());
        c.default_config = LogConfig::from_overrides(bc, &HashMap::new())?;
        c.num_recovery_threads_per_data_dir = bc.num_recovery_threads_per_data_dir.max(1) as usize;
        c.retention_check_interval_ms = pos(bc.log_retention_check_interval_ms);
        c.flush_check_interval_ms = pos(bc.log_flush_scheduler_interval_ms);
        c.flush_recovery_offset_checkpoint_interval_ms =
            pos(bc.log_flush_offset_checkpoint_interval_ms as i64);
        c.flush_start_offset_checkpoint_interval_ms =
            pos(bc.log_flush_start_offset_checkpoint_interval_ms as i64);
        c.high_watermark_checkpoint_interval_ms =
            pos(bc.replica_high_watermark_checkpoint_interval_ms);
        c.cleaner_enable = bc.log_cleaner_enable;
        c.cleaner_backoff_ms = pos(bc.log_cleaner_backoff_ms);
        c.cleaner_dedupe_buffer_size = (bc.log_cleaner_dedupe_buffer_size.max(1) as usize)
            / bc.log_cleaner_threads.max(1) as usize;
        c.cleaner_load_factor = bc.log_cleaner_io_buffer_load_factor;
        c.producer_id_expiration_check_interval_ms =
            pos(bc.producer_id_expiration_check_interval_ms as i64);
        c.producer_state = producer_state_config(bc);
        Ok(c)
    }
}

/// `meta.properties` contents (ZK mode, version 0). Unknown keys are preserved.
///
/// On disk: Java properties text as `Properties.store` writes it, replaced atomically:
/// ```text
/// #
/// #<date>
/// cluster.id=Xk3kqKxGQ3O0qW2J8kq1aA
/// version=0
/// broker.id=1
/// ```
/// The start-up checks against ZooKeeper live in `zk_broker::check_meta_properties`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetaProperties {
    pub version: i32,
    pub broker_id: Option<i32>,
    pub cluster_id: Option<String>,
    pub directory_id: Option<String>,
    pub other: Vec<(String, String)>,
}

impl MetaProperties {
    pub fn new(broker_id: i32, cluster_id: &str) -> Self {
        Self {
            version: 0,
            broker_id: Some(broker_id),
            cluster_id: Some(cluster_id.to_string()),
            directory_id: None,
            other: Vec::new(),
        }
    }

    /// Reads `<dir>/meta.properties`; `Ok(None)` when absent.
    pub fn read(dir: &Path) -> Result<Option<Self>> {
        let path = dir.join(META_PROPERTIES);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let mut m = Self {
            version: -1,
            broker_id: None,
            cluster_id: None,
            directory_id: None,
            other: Vec::new(),
        };
        for (k, v) in parse_java_properties(&text) {
            let bad = |what: &str| {
                Error::KafkaStorageError(format!("invalid {what} in {}", path.display()))
            };
            match k.as_str() {
                "version" => m.version = v.trim().parse().map_err(|_| bad("version"))?,
                "broker.id" => m.broker_id = Some(v.trim().parse().map_err(|_| bad("broker.id"))?),
                "node.id" if m.broker_id.is_none() => {
                    m.broker_id = Some(v.trim().parse().map_err(|_| bad("node.id"))?)
                }
                "cluster.id" => m.cluster_id = Some(v),
                "directory.id" => m.directory_id = Some(v),
                _ => m.other.push((k, v)),
            }
        }
        Ok(Some(m))
    }

    /// Writes the file like `Properties.store` (comment lines, `key=value`), atomically.
    pub fn write(&self, dir: &Path) -> Result<()> {
        let mut s = String::from("#\n#");
        s.push_str(&java_date_now());
        s.push('\n');
        if let Some(c) = &self.cluster_id {
            s.push_str(&format!("cluster.id={}\n", escape_prop(c)));
        }
        if let Some(d) = &self.directory_id {
            s.push_str(&format!("directory.id={}\n", escape_prop(d)));
        }
        s.push_str(&format!("version={}\n", self.version));
        if let Some(b) = self.broker_id {
            s.push_str(&format!("broker.id={b}\n"));
        }
        for (k, v) in &self.other {
            s.push_str(&format!("{}={}\n", escape_prop(k), escape_prop(v)));
        }
        ckpt::write_atomic(&dir.join(META_PROPERTIES), s.as_bytes())?;
        Ok(())
    }
}

fn escape_prop(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '=' | ':' | '#' | '!' => {
                o.push('\\');
                o.push(c);
            }
            '\n' => o.push_str("\\n"),
            _ => o.push(c),
        }
    }
    o
}

/// Minimal Java `.properties` reader: comments, `=`/`:`/space separators, `\` escapes and
/// line continuations.
pub fn parse_java_properties(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut logical = String::new();
    let mut lines = text.lines().peekable();
    while let Some(raw) = lines.next() {
        let line = raw.trim_start();
        if logical.is_empty() && (line.is_empty() || line.starts_with('#') || line.starts_with('!'))
        {
            continue;
        }
        let trailing_bs = line.chars().rev().take_while(|&c| c == '\\').count();
        if trailing_bs % 2 == 1 {
            logical.push_str(&line[..line.len() - 1]);
            if lines.peek().is_some() {
                continue;
            }
        } else {
            logical.push_str(line);
        }
        let l = std::mem::take(&mut logical);
        let mut key = String::new();
        let mut chars = l.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    if let Some(n) = chars.next() {
                        key.push(unescape(n));
                    }
                }
                '=' | ':' | ' ' | '\t' => break,
                _ => key.push(c),
            }
        }
        while let Some(&c) = chars.peek() {
            if c == ' ' || c == '\t' || c == '=' || c == ':' {
                chars.next();
                if c == '=' || c == ':' {
                    while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
                        chars.next();
                    }
                    break;
                }
            } else {
                break;
            }
        }
        let mut value = String::new();
        while let Some(c) = chars.next() {
            if c == '\\' {
                if let Some(n) = chars.next() {
                    value.push(unescape(n));
                }
            } else {
                value.push(c);
            }
        }
        out.push((key, value));
    }
    out
}

fn unescape(c: char) -> char {
    match c {
        'n' => '\n',
        't' => '\t',
        'r' => '\r',
        other => other,
    }
}

fn java_date_now() -> String {
    // `java.util.Date.toString()` style, in UTC: "Tue Nov 24 03:12:50 UTC 2026".
    let secs = now_ms() / 1000;
    let days = secs.div_euclid(86400);
    let tod = secs.rem_euclid(86400);
    let (y, m, d) = civil_from_days(days);
    const WD: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MO: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{} {} {:02} {:02}:{:02}:{:02} UTC {}",
        WD[days.rem_euclid(7) as usize],
        MO[(m - 1) as usize],
        d,
        tod / 3600,
        tod % 3600 / 60,
        tod % 60,
        y
    )
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Dirs locked by this process (POSIX locks do not conflict within one process, Java's
/// do; this keeps two managers in one process from sharing a dir).
fn locked_in_process() -> &'static Mutex<HashSet<PathBuf>> {
    static S: OnceLock<Mutex<HashSet<PathBuf>>> = OnceLock::new();
    S.get_or_init(|| Mutex::new(HashSet::new()))
}

/// An exclusive `fcntl` lock on `<dir>/.lock`, released on drop.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
    dir: PathBuf,
}

impl DirLock {
    pub fn acquire(dir: &Path) -> Result<Self> {
        let canon = dir.canonicalize()?;
        let path = dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        let fl = libc::flock {
            l_type: libc::F_WRLCK as libc::c_short,
            l_whence: libc::SEEK_SET as libc::c_short,
            l_start: 0,
            l_len: i64::MAX,
            l_pid: 0,
        };
        let taken = {
            let mut set = locked_in_process()
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if set.contains(&canon) {
                false
            } else {
                let ok =
                    nix::fcntl::fcntl(file.as_raw_fd(), nix::fcntl::FcntlArg::F_SETLK(&fl)).is_ok();
                if ok {
                    set.insert(canon.clone());
                }
                ok
            }
        };
        if !taken {
            return Err(Error::KafkaStorageError(format!(
                "Failed to acquire lock on file .lock in {}. A Kafka instance in another process or thread is using this directory.",
                dir.display()
            )));
        }
        Ok(Self {
            _file: file,
            dir: canon,
        })
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        locked_in_process()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.dir);
    }
}

type LoadedLog = (bool, TopicPartition, Arc<Log>);

struct LogDir {
    path: PathBuf,
    lock: Mutex<Option<DirLock>>,
    offline: AtomicBool,
    had_clean_shutdown: bool,
    loaded_all: AtomicBool,
    /// One lock per root checkpoint file: every writer of a file uses the same
    /// `<name>.tmp`, so the periodic tasks, the replica manager and shutdown must not
    /// interleave their tmp-write + fsync + rename. Held only around that write.
    checkpoint_locks: CheckpointLocks,
}

#[derive(Default)]
struct CheckpointLocks {
    recovery_point: Mutex<()>,
    log_start_offset: Mutex<()>,
    replication_offset: Mutex<()>,
    other: Mutex<()>,
}

impl CheckpointLocks {
    fn for_file(&self, name: &str) -> &Mutex<()> {
        match name {
            RECOVERY_POINT_CHECKPOINT => &self.recovery_point,
            LOG_START_OFFSET_CHECKPOINT => &self.log_start_offset,
            REPLICATION_OFFSET_CHECKPOINT => &self.replication_offset,
            _ => &self.other,
        }
    }
}

/// All logs of this broker.
pub struct LogManager {
    config: LogManagerConfig,
    dirs: Vec<LogDir>,
    pub(super) logs: RwLock<HashMap<TopicPartition, Arc<Log>>>,
    /// Replicas being moved to another dir (Kafka's `futureLogs`), see `future.rs`.
    pub(super) future_logs: RwLock<HashMap<TopicPartition, Arc<Log>>>,
    /// Dirs AlterReplicaLogDirs chose for replicas not created yet (Kafka's
    /// `preferredLogDirs`); used once, when the log is created.
    pub(super) preferred_dirs: Mutex<HashMap<TopicPartition, PathBuf>>,
    topic_configs: RwLock<HashMap<String, LogConfig>>,
    /// Broker defaults for topics without a known config; starts as
    /// `config.default_config`, replaced by dynamic broker config changes.
    default_config: RwLock<LogConfig>,
    pub(super) deletes: Arc<DeleteQueue>,
    pub(super) dir_deletes: Mutex<Vec<(i64, PathBuf)>>,
    pub(super) create_lock: Mutex<()>,
    shutdown_tx: tokio::sync::watch::Sender<bool>,
    is_shut_down: AtomicBool,
    /// Each periodic task run holds a read guard; `shutdown()` takes the write guard
    /// once, so it waits for in-flight runs and no run starts after it (they check
    /// `is_shut_down` under the guard) before the final checkpoints are written.
    task_gate: RwLock<()>,
    /// Kafka's `LogDirFailureChannel`: each dir is queued once, when it goes offline,
    /// for the broker's log-dir failure handler (see `replica::log_dir_failure`).
    failed_dirs_tx: tokio::sync::mpsc::UnboundedSender<PathBuf>,
    failed_dirs_rx: Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<PathBuf>>>,
}

impl std::fmt::Debug for LogManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogManager")
            .field(
                "dirs",
                &self.dirs.iter().map(|d| &d.path).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// An index map unused this long is dropped by the idle sweep (it runs twice as often).
pub const INDEX_IDLE: Duration = Duration::from_secs(30);

impl LogManager {
    /// Creates missing dirs, locks them, and loads every partition (recovering after an
    /// unclean stop). A dir that cannot be used is marked offline; all offline is fatal.
    pub fn open(config: LogManagerConfig) -> Result<Arc<LogManager>> {
        if config.log_dirs.is_empty() {
            return Err(Error::InvalidConfig("log.dirs is empty".into()));
        }
        let mut seen = HashSet::new();
        let mut dirs = Vec::new();
        for d in &config.log_dirs {
            std::fs::create_dir_all(d).map_err(|e| {
                Error::KafkaStorageError(format!("failed to create log dir {}: {e}", d.display()))
            })?;
            let canon = d.canonicalize()?;
            if !seen.insert(canon.clone()) {
                return Err(Error::InvalidConfig(format!(
                    "Duplicate log directory found: {}",
                    d.display()
                )));
            }
            let lock = DirLock::acquire(d)?;
            let marker = d.join(CLEAN_SHUTDOWN_FILE);
            let clean = marker.exists();
            if clean {
                std::fs::remove_file(&marker)?;
            }
            dirs.push(LogDir {
                path: d.clone(),
                lock: Mutex::new(Some(lock)),
                offline: AtomicBool::new(false),
                had_clean_shutdown: clean,
                loaded_all: AtomicBool::new(false),
                checkpoint_locks: CheckpointLocks::default(),
            });
        }
        let (tx, _rx) = tokio::sync::watch::channel(false);
        let (failed_dirs_tx, failed_dirs_rx) = tokio::sync::mpsc::unbounded_channel();
        let mgr = Arc::new(LogManager {
            failed_dirs_tx,
            failed_dirs_rx: Mutex::new(Some(failed_dirs_rx)),
            topic_configs: RwLock::new(config.topic_configs.clone()),
            default_config: RwLock::new(config.default_config.clone()),
            config,
            dirs,
            logs: RwLock::new(HashMap::new()),
            future_logs: RwLock::new(HashMap::new()),
            preferred_dirs: Mutex::new(HashMap::new()),
            deletes: Arc::new(DeleteQueue::default()),
            dir_deletes: Mutex::new(Vec::new()),
            create_lock: Mutex::new(()),
            shutdown_tx: tx,
            is_shut_down: AtomicBool::new(false),
            task_gate: RwLock::new(()),
        });
        for i in 0..mgr.dirs.len() {
            if let Err(e) = mgr.load_dir(i) {
                tracing::error!("error loading log dir {}: {e}", mgr.dirs[i].path.display());
                // Logs loaded before the error go offline with the dir.
                let path = mgr.dirs[i].path.clone();
                mgr.mark_dir_offline(&path);
            }
        }
        if mgr.dirs.iter().all(|d| d.offline.load(Ordering::Acquire)) {
            return Err(Error::KafkaStorageError(
                "all log dirs failed to load".into(),
            ));
        }
        Ok(mgr)
    }

    pub(super) fn failure_hook(self: &Arc<Self>) -> DirFailureHook {
        let weak = Arc::downgrade(self);
        Arc::new(move |dir: &Path| {
            if let Some(m) = weak.upgrade() {
                m.mark_dir_offline(dir);
            }
        })
    }

    fn load_dir(self: &Arc<Self>, i: usize) -> Result<()> {
        let d = &self.dirs[i];
        let rp = ckpt::read_or_empty(&d.path.join(RECOVERY_POINT_CHECKPOINT))?;
        let ls = ckpt::read_or_empty(&d.path.join(LOG_START_OFFSET_CHECKPOINT))?;
        let hw = ckpt::read_or_empty(&d.path.join(REPLICATION_OFFSET_CHECKPOINT))?;
        let mut jobs = Vec::new();
        for e in std::fs::read_dir(&d.path)? {
            let e = e?;
            if !e.file_type()?.is_dir() {
                continue;
            }
            let Some(name) = e.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if name == "remote-log-index-cache" || name.ends_with(STRAY_DIR_SUFFIX) {
                continue;
            }
            if name.ends_with(FUTURE_DIR_SUFFIX) {
                // A move cut short by a stop: the current replica is intact elsewhere, so
                // the partial copy goes (Kafka would resume it; the move must be re-issued).
                if parse_partition_dir_name(&name).is_some() {
                    tracing::warn!(
                        "abandoning the unfinished replica move in {}",
                        e.path().display()
                    );
                    self.dir_deletes
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push((now_ms(), e.path()));
                }
                continue;
            }
            let Some(tp) = parse_partition_dir_name(&name) else {
                continue;
            };
            jobs.push((name.ends_with(DELETE_DIR_SUFFIX), tp, e.path()));
        }
        let threads = self.config.num_recovery_threads_per_data_dir.max(1);
        let queue = Mutex::new(jobs);
        let results: Mutex<Vec<Result<LoadedLog>>> = Mutex::new(Vec::new());
        let hook = self.failure_hook();
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| loop {
                    let job = queue.lock().unwrap_or_else(|p| p.into_inner()).pop();
                    let Some((is_delete, tp, path)) = job else {
                        break;
                    };
                    let config = self.config_for(&tp.topic);
                    let params = LoadParams {
                        had_clean_shutdown: d.had_clean_shutdown,
                        recovery_point: rp.get(&tp).copied().unwrap_or(0),
                        log_start_offset_checkpoint: ls.get(&tp).copied().unwrap_or(0),
                        high_watermark_checkpoint: hw.get(&tp).copied(),
                        is_delete_dir: is_delete,
                        producer_state: self.config.producer_state,
                    };
                    let r = Log::open(
                        &path,
                        tp.clone(),
                        config,
                        params,
                        self.deletes.clone(),
                        Some(hook.clone()),
                    )
                    .map(|l| (is_delete, tp, l));
                    results.lock().unwrap_or_else(|p| p.into_inner()).push(r);
                });
            }
        });
        let now = now_ms();
        for r in results.into_inner().unwrap_or_else(|p| p.into_inner()) {
            let (is_delete, tp, log) = r?;
            if is_delete {
                let due = now.saturating_add(log.config().file_delete_delay_ms);
                self.dir_deletes
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((due, log.dir()));
                continue;
            }
            let mut logs = self.logs.write().unwrap_or_else(|p| p.into_inner());
            if let Some(prev) = logs.get(&tp) {
                return Err(Error::KafkaStorageError(format!(
                    "Duplicate log directories for {tp} are found in both {} and {}",
                    prev.dir().display(),
                    log.dir().display()
                )));
            }
            logs.insert(tp, log);
        }
        d.loaded_all.store(true, Ordering::Release);
        Ok(())
    }

    pub(super) fn config_for(&self, topic: &str) -> LogConfig {
        self.topic_configs
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(topic)
            .cloned()
            .unwrap_or_else(|| self.default_config())
    }

    pub(super) fn producer_state_config(&self) -> ProducerStateConfig {
        self.config.producer_state
    }

    /// The broker-level default topic config.
    pub fn default_config(&self) -> LogConfig {
        self.default_config
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// New broker-level defaults (a dynamic broker config change). Existing logs are
    /// updated by the caller through [`Self::update_config`].
    pub fn set_default_config(&self, config: LogConfig) {
        *self
            .default_config
            .write()
            .unwrap_or_else(|p| p.into_inner()) = config;
    }

    /// Online log dirs.
    pub fn live_dirs(&self) -> Vec<PathBuf> {
        self.dirs
            .iter()
            .filter(|d| !d.offline.load(Ordering::Acquire))
            .map(|d| d.path.clone())
            .collect()
    }
    pub fn offline_dirs(&self) -> Vec<PathBuf> {
        self.dirs
            .iter()
            .filter(|d| d.offline.load(Ordering::Acquire))
            .map(|d| d.path.clone())
            .collect()
    }
    /// Whether the dir had a clean-shutdown marker at startup.
    pub fn had_clean_shutdown(&self, dir: &Path) -> bool {
        self.dirs
            .iter()
            .any(|d| d.path == dir && d.had_clean_shutdown)
    }

    /// Takes a dir offline after an I/O error: its logs refuse reads and writes
    /// (KAFKA_STORAGE_ERROR) and no marker is written for it at shutdown.
    pub fn mark_dir_offline(&self, dir: &Path) {
        for d in &self.dirs {
            if d.path == dir && !d.offline.swap(true, Ordering::AcqRel) {
                tracing::error!("Stopped serving replicas in dir {}", dir.display());
                let _ = self.failed_dirs_tx.send(d.path.clone());
            }
        }
        for l in self.all_logs().into_iter().chain(self.future_logs()) {
            if l.parent_dir() == dir {
                l.mark_offline();
            }
        }
    }

    /// Closes the descriptors and maps of every log in the failed `dir` (the failure
    /// handler calls this outside any log's locks, once the dir is offline).
    pub fn close_dir_handles(&self, dir: &Path) {
        for l in self.all_logs() {
            if l.parent_dir() == dir {
                l.close_handles();
            }
        }
    }

    /// The queue of dirs that went offline (each once), for the one failure handler;
    /// `None` after the first call.
    pub fn take_failed_dirs(&self) -> Option<tokio::sync::mpsc::UnboundedReceiver<PathBuf>> {
        self.failed_dirs_rx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    pub fn get_log(&self, tp: &TopicPartition) -> Option<Arc<Log>> {
        self.logs
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(tp)
            .cloned()
    }

    pub fn all_logs(&self) -> Vec<Arc<Log>> {
        self.logs
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Returns the log, creating it in the online dir with the fewest partitions.
    /// `topic_id`, when given, is checked against / written to `partition.metadata`.
    pub fn get_or_create_log(
        self: &Arc<Self>,
        tp: &TopicPartition,
        topic_id: Option<Uuid>,
        config: LogConfig,
    ) -> Result<Arc<Log>> {
        let _g = self.create_lock.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(l) = self.get_log(tp) {
            if let Some(id) = topic_id {
                l.assign_topic_id(id)?;
            }
            return Ok(l);
        }
        // The name becomes a directory: a topic no Kafka tool could create (`..`, `/`, 300
        // characters, from a forged LeaderAndIsr or a znode written by hand) or a negative
        // partition must not escape the log dir, fail as an I/O error and so take the whole
        // dir offline, or load back as another partition after a restart.
        if let Err(e) = samsa_common::zk::admin::validate_topic_name(&tp.topic) {
            return Err(Error::InvalidTopic(e.to_string()));
        }
        if tp.partition < 0 {
            return Err(Error::InvalidTopic(format!("invalid partition {tp}")));
        }
        let live = self.live_dirs();
        let preferred = self
            .preferred_dirs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(tp)
            .filter(|d| live.contains(d));
        // Else the dir with the fewest logs; counting them costs a pass over every log, which
        // creating 10,000 partitions one by one would turn quadratic: only JBOD pays it.
        let dir = match preferred {
            Some(d) => Some(d),
            None if live.len() == 1 => live.into_iter().next(),
            None => {
                let counts: HashMap<&Path, usize> = {
                    let logs = self.logs.read().unwrap_or_else(|p| p.into_inner());
                    let mut c = HashMap::new();
                    for d in &live {
                        c.insert(d.as_path(), 0);
                    }
                    for l in logs.values() {
                        if let Some(n) = c.get_mut(l.parent_dir()) {
                            *n += 1;
                        }
                    }
                    c
                };
                live.iter()
                    .min_by_key(|d| counts.get(d.as_path()).copied().unwrap_or(0))
                    .cloned()
            }
        }
        .ok_or_else(|| Error::KafkaStorageError("no online log dir".into()))?;
        let path = dir.join(tp.to_string());
        let log = Log::open(
            &path,
            tp.clone(),
            config.clone(),
            LoadParams {
                producer_state: self.config.producer_state,
                ..LoadParams::default()
            },
            self.deletes.clone(),
            Some(self.failure_hook()),
        )
        .inspect_err(|e| {
            let hint = match e {
                Error::Io(io) => super::limit_hint(io),
                _ => String::new(),
            };
            tracing::error!(
                "Error while creating the log of {tp} in dir {}: {e}{hint}",
                dir.display()
            );
            self.mark_dir_offline(&dir);
            // Out of descriptors or maps is process-wide: free this dir's at once, or the
            // next partition created in another dir fails the same way before the failure
            // handler gets to it, and the broker halts with every dir offline.
            if !hint.is_empty() {
                self.close_dir_handles(&dir);
            }
        })?;
        if let Some(id) = topic_id {
            log.assign_topic_id(id)?;
        }
        self.topic_configs
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .entry(tp.topic.clone())
            .or_insert(config);
        self.logs
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(tp.clone(), log.clone());
        Ok(log)
    }

    /// Removes the log: renames its dir to `<tp>.<uuid>-delete` and deletes it after
    /// `file.delete.delay.ms`.
    pub fn delete_log(&self, tp: &TopicPartition) -> Result<Option<Arc<Log>>> {
        self.remove_future_log(tp);
        let Some(log) = self
            .logs
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(tp)
        else {
            return Ok(None);
        };
        self.rename_for_deletion(&log)?;
        self.checkpoint_all()?;
        Ok(Some(log))
    }

    /// Renames a log dir to `<tp>.<uuid>-delete` and queues it for deletion after
    /// `file.delete.delay.ms`.
    pub(super) fn rename_for_deletion(&self, log: &Log) -> Result<()> {
        let tp = log.topic_partition();
        let suffix = format!(".{}{DELETE_DIR_SUFFIX}", Uuid::new_v4().simple());
        let mut base = tp.to_string();
        let max_topic = 255usize.saturating_sub(suffix.len());
        if base.len() > max_topic {
            let p = format!("-{}", tp.partition);
            let keep = max_topic.saturating_sub(p.len());
            base = format!("{}{p}", &tp.topic[..keep.min(tp.topic.len())]);
        }
        let new_dir = log.parent_dir().join(format!("{base}{suffix}"));
        log.rename_dir(&new_dir)?;
        let due = now_ms().saturating_add(log.config().file_delete_delay_ms);
        self.dir_deletes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((due, new_dir));
        Ok(())
    }

    /// New effective config for a topic (after a `/config/changes` notification).
    /// Effective config of `topic`: its overrides if known, else the broker defaults.
    pub fn topic_config(&self, topic: &str) -> LogConfig {
        self.topic_configs
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(topic)
            .cloned()
            .unwrap_or_else(|| self.default_config())
    }

    pub fn update_config(&self, topic: &str, config: LogConfig) {
        self.topic_configs
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(topic.to_string(), config.clone());
        for l in self.all_logs() {
            if l.topic_partition().topic == topic {
                l.update_config(config.clone());
            }
        }
    }

    /// One retention pass over all logs (compact-only topics only lose segments below the
    /// log start offset). Returns segments deleted.
    pub fn cleanup_logs(&self) -> usize {
        let now = now_ms();
        let mut n = 0;
        for l in self.all_logs() {
            if l.is_offline() {
                continue;
            }
            match l.delete_old_segments(now) {
                Ok(k) => n += k,
                Err(e) => tracing::warn!("retention for {} failed: {e}", l.topic_partition()),
            }
        }
        n
    }

    /// One log-cleaner pass over every online dir (compaction, see `cleaner.rs`),
    /// updating each dir's `cleaner-offset-checkpoint`. Returns logs cleaned.
    pub fn clean_logs(&self) -> usize {
        let cfg = super::cleaner::CleanerConfig {
            dedupe_buffer_size: self.config.cleaner_dedupe_buffer_size,
            load_factor: self.config.cleaner_load_factor,
        };
        let now = now_ms();
        let mut n = 0;
        for d in self.live_dirs() {
            match super::log::clean_dir_once(&d, &self.logs_in(&d), &cfg, now) {
                Ok(k) => n += k,
                Err(e) => tracing::warn!("log cleaner pass on {} failed: {e}", d.display()),
            }
        }
        n
    }

    /// Deletes `.deleted` segments and `-delete` dirs whose delay has passed.
    pub fn run_pending_deletions(&self, now: i64) {
        self.deletes.run_due(now);
        let due: Vec<PathBuf> = {
            let mut q = self.dir_deletes.lock().unwrap_or_else(|p| p.into_inner());
            let (due, keep): (Vec<_>, Vec<_>) = q.drain(..).partition(|(t, _)| *t <= now);
            *q = keep;
            due.into_iter().map(|(_, p)| p).collect()
        };
        for p in due {
            if let Err(e) = std::fs::remove_dir_all(&p) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!("could not delete {}: {e}", p.display());
                }
            }
        }
    }

    /// Applies `flush.ms` to every log.
    pub fn flush_dirty_logs(&self) {
        let now = now_ms();
        for l in self.all_logs() {
            if let Err(e) = l.flush_if_due(now) {
                tracing::warn!("flush of {} failed: {e}", l.topic_partition());
            }
        }
    }

    fn logs_in(&self, dir: &Path) -> Vec<Arc<Log>> {
        self.all_logs()
            .into_iter()
            .filter(|l| l.parent_dir() == dir)
            .collect()
    }

    /// Writes `recovery-point-offset-checkpoint` in every online dir.
    pub fn checkpoint_recovery_points(&self) -> Result<()> {
        for d in self.live_dirs() {
            let m: Vec<_> = self
                .logs_in(&d)
                .iter()
                .map(|l| (l.topic_partition().clone(), l.recovery_point()))
                .collect();
            self.write_ckpt(&d, RECOVERY_POINT_CHECKPOINT, &m);
            for l in self.logs_in(&d) {
                if let Err(e) = l.delete_snapshots_after_recovery_point_checkpoint() {
                    tracing::warn!("snapshot cleanup of {} failed: {e}", l.topic_partition());
                }
            }
        }
        Ok(())
    }

    /// Expires idle producers in every log (`producer.id.expiration.ms`).
    pub fn remove_expired_producers(&self) {
        let now = now_ms();
        for l in self.all_logs() {
            l.remove_expired_producers(now);
        }
    }

    /// Writes `log-start-offset-checkpoint`: only logs whose start is above their first
    /// segment's base.
    pub fn checkpoint_log_start_offsets(&self) -> Result<()> {
        for d in self.live_dirs() {
            let m: Vec<_> = self
                .logs_in(&d)
                .iter()
                .filter(|l| {
                    let first = l.segments().first().map(|s| s.base_offset()).unwrap_or(0);
                    l.log_start_offset() > first
                })
                .map(|l| (l.topic_partition().clone(), l.log_start_offset()))
                .collect();
            self.write_ckpt(&d, LOG_START_OFFSET_CHECKPOINT, &m);
        }
        Ok(())
    }

    /// Writes `replication-offset-checkpoint` (high watermarks) in every online dir.
    pub fn checkpoint_high_watermarks(&self) -> Result<()> {
        for d in self.live_dirs() {
            let m: Vec<_> = self
                .logs_in(&d)
                .iter()
                .map(|l| (l.topic_partition().clone(), l.high_watermark()))
                .collect();
            self.write_ckpt(&d, REPLICATION_OFFSET_CHECKPOINT, &m);
        }
        Ok(())
    }

    fn write_ckpt(&self, dir: &Path, name: &str, entries: &[(TopicPartition, i64)]) {
        let lock = self
            .dirs
            .iter()
            .find(|d| d.path == dir)
            .map(|d| d.checkpoint_locks.for_file(name));
        let r = {
            let _guard = lock.map(|l| l.lock().unwrap_or_else(|p| p.into_inner()));
            ckpt::write(&dir.join(name), entries)
        };
        if let Err(e) = r {
            tracing::error!("failed to write {name} in {}: {e}", dir.display());
            self.mark_dir_offline(dir);
        }
    }

    pub(super) fn checkpoint_all(&self) -> Result<()> {
        self.checkpoint_recovery_points()?;
        self.checkpoint_log_start_offsets()?;
        self.checkpoint_high_watermarks()
    }

    /// Starts the periodic tasks on the current tokio runtime: retention, flush,
    /// checkpoints, delayed deletions. They stop at `shutdown()`.
    pub fn start_background_tasks(self: &Arc<Self>) {
        let c = &self.config;
        let init = c.initial_task_delay_ms;
        self.spawn_periodic("log-retention", init, c.retention_check_interval_ms, |m| {
            m.cleanup_logs();
        });
        self.spawn_periodic("log-flusher", init, c.flush_check_interval_ms, |m| {
            m.flush_dirty_logs()
        });
        self.spawn_periodic(
            "recovery-point-checkpoint",
            init,
            c.flush_recovery_offset_checkpoint_interval_ms,
            |m| {
                let _ = m.checkpoint_recovery_points();
            },
        );
        self.spawn_periodic(
            "log-start-offset-checkpoint",
            init,
            c.flush_start_offset_checkpoint_interval_ms,
            |m| {
                let _ = m.checkpoint_log_start_offsets();
            },
        );
        self.spawn_periodic(
            "highwatermark-checkpoint",
            c.high_watermark_checkpoint_interval_ms,
            c.high_watermark_checkpoint_interval_ms,
            |m| {
                let _ = m.checkpoint_high_watermarks();
            },
        );
        self.spawn_periodic(
            "producer-expiration",
            c.producer_id_expiration_check_interval_ms,
            c.producer_id_expiration_check_interval_ms,
            |m| m.remove_expired_producers(),
        );
        if c.cleaner_enable {
            self.spawn_periodic("log-cleaner", init, c.cleaner_backoff_ms, |m| {
                m.clean_logs();
            });
        }
        self.spawn_periodic("delete-pending", 1000, 1000, |m| {
            m.run_pending_deletions(now_ms())
        });
        let sweep = INDEX_IDLE.as_millis() as u64 / 2;
        self.spawn_periodic("index-unmapper", sweep, sweep, |m| {
            m.unmap_idle_indexes();
        });
    }

    /// Drops the memory maps of indexes no read or append used for [`INDEX_IDLE`]: maps
    /// are made on demand (lazy indexes), and this keeps their number to the partitions
    /// in use, not all partitions (`vm.max_map_count` is 65,530 by default). Returns how
    /// many maps were dropped.
    pub fn unmap_idle_indexes(&self) -> usize {
        let mut dropped = 0;
        for l in self.all_logs() {
            for s in l.segments() {
                dropped += s.unmap_idle_indexes(INDEX_IDLE);
            }
        }
        dropped
    }

    fn spawn_periodic(
        self: &Arc<Self>,
        name: &'static str,
        initial_ms: u64,
        period_ms: u64,
        f: fn(&LogManager),
    ) {
        if period_ms >= i64::MAX as u64 / 2 {
            return;
        }
        let weak = Arc::downgrade(self);
        let mut rx = self.shutdown_tx.subscribe();
        tokio::spawn(async move {
            let mut wait = Duration::from_millis(initial_ms);
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = rx.changed() => break,
                }
                let Some(m) = weak.upgrade() else { break };
                let r = tokio::task::spawn_blocking(move || {
                    let _running = m.task_gate.read().unwrap_or_else(|p| p.into_inner());
                    if m.is_shut_down.load(Ordering::Acquire) {
                        return false;
                    }
                    f(&m);
                    true
                })
                .await;
                match r {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(e) => tracing::error!("background task {name} panicked: {e}"),
                }
                wait = Duration::from_millis(period_ms.max(1));
            }
        });
    }

    /// Clean shutdown (Kafka order): stop tasks, close every log (flush, final index
    /// entries, trimmed indexes, producer snapshot), write the checkpoints, then the
    /// `.kafka_cleanshutdown` marker for each dir that was clean or fully loaded, and
    /// release the locks.
    pub fn shutdown(&self) -> Result<()> {
        if self.is_shut_down.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let _ = self.shutdown_tx.send(true);
        // Wait for periodic runs already in flight (e.g. a high-watermark checkpoint);
        // later runs see `is_shut_down` and stop, so the final checkpoints below are
        // the last writes.
        drop(self.task_gate.write().unwrap_or_else(|p| p.into_inner()));
        let mut first_err = None;
        for d in &self.dirs {
            if d.offline.load(Ordering::Acquire) {
                continue;
            }
            let mut ok = true;
            let futures = self
                .future_logs()
                .into_iter()
                .filter(|l| l.parent_dir() == d.path);
            for l in self.logs_in(&d.path).into_iter().chain(futures) {
                if let Err(e) = l.close() {
                    tracing::error!("close of {} failed: {e}", l.topic_partition());
                    ok = false;
                    first_err.get_or_insert(e);
                }
            }
            if d.offline.load(Ordering::Acquire) {
                continue;
            }
            let _ = self.checkpoint_all();
            if ok && (d.had_clean_shutdown || d.loaded_all.load(Ordering::Acquire)) {
                let r = ckpt::write_atomic(
                    &d.path.join(CLEAN_SHUTDOWN_FILE),
                    br#"{"version":0,"brokerEpoch":-1}"#,
                );
                if let Err(e) = r {
                    first_err.get_or_insert(e);
                }
            }
        }
        for d in &self.dirs {
            d.lock.lock().unwrap_or_else(|p| p.into_inner()).take();
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Drop for LogManager {
    fn drop(&mut self) {
        let _ = self.shutdown_tx.send(true);
    }
}
