//! One `samsa-broker` process: its server.properties, log dirs, log file and lifecycle.
//!
//! The binary is found via `SAMSA_BROKER_BIN`, else built once per test process with
//! `cargo build -p samsa-broker` and taken from `<target>/debug/samsa-broker`.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::util;
use crate::wire;

/// Path of the broker binary (see module docs).
pub fn broker_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("SAMSA_BROKER_BIN") {
            return PathBuf::from(p);
        }
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
        let status = Command::new(cargo)
            .args(["build", "-p", "samsa-broker", "--bin", "samsa-broker"])
            .current_dir(util::repo_root())
            .status()
            .expect("run cargo build -p samsa-broker");
        assert!(status.success(), "cargo build -p samsa-broker failed");
        util::target_dir().join("debug").join("samsa-broker")
    })
    .clone()
}

/// What to start: broker id (None = leave `broker.id` unset) and extra/overriding properties.
#[derive(Debug, Clone, Default)]
pub struct BrokerSpec {
    pub id: Option<i32>,
    pub props: Vec<(String, String)>,
    /// Number of log dirs (`logs`, `logs-1`, ...); 0 or 1 = the single `logs` dir.
    pub log_dirs: usize,
    /// `RLIMIT_FSIZE` in bytes for the process: a write that would make any file larger fails
    /// with EFBIG (samsa-broker ignores SIGXFSZ), which is how tests fill a disk without
    /// mount privileges. The limit applies to `broker.log` too (it is the child's stdout).
    pub file_size_limit: Option<u64>,
    /// Extra environment of the process (e.g. `KAFKA_OPTS` naming a JAAS file).
    pub env: Vec<(String, String)>,
    /// `RLIMIT_NOFILE` (soft, hard) the process starts with.
    pub open_files_limit: Option<(u64, u64)>,
}

impl BrokerSpec {
    pub fn id(id: i32) -> BrokerSpec {
        BrokerSpec {
            id: Some(id),
            ..BrokerSpec::default()
        }
    }

    /// `n` log dirs (JBOD): `<dir>/logs`, `<dir>/logs-1`, ...
    pub fn jbod(mut self, n: usize) -> BrokerSpec {
        self.log_dirs = n;
        self
    }

    /// Starts the process with `RLIMIT_FSIZE = bytes` (see [`BrokerSpec::file_size_limit`]).
    pub fn file_size_limit(mut self, bytes: u64) -> BrokerSpec {
        self.file_size_limit = Some(bytes);
        self
    }

    /// Starts the process with `RLIMIT_NOFILE = (soft, hard)`.
    pub fn open_files_limit(mut self, soft: u64, hard: u64) -> BrokerSpec {
        self.open_files_limit = Some((soft, hard));
        self
    }

    pub fn prop(mut self, k: &str, v: impl ToString) -> BrokerSpec {
        self.props.push((k.to_string(), v.to_string()));
        self
    }

    /// An environment variable for the broker process.
    pub fn env(mut self, k: &str, v: impl ToString) -> BrokerSpec {
        self.env.push((k.to_string(), v.to_string()));
        self
    }
}

pub struct Broker {
    pub id: Option<i32>,
    pub port: u16,
    pub dir: PathBuf,
    /// The first (or only) log dir.
    pub log_dir: PathBuf,
    /// Every log dir, in `log.dirs` order.
    pub log_dirs: Vec<PathBuf>,
    pub props_path: PathBuf,
    file_size_limit: Option<u64>,
    env: Vec<(String, String)>,
    open_files_limit: Option<(u64, u64)>,
    pub log_path: PathBuf,
    child: Option<Child>,
    watchdog: Option<Child>,
    allowed_errors: Vec<String>,
}

/// Properties every test broker gets unless the spec overrides them.
fn default_props(
    id: Option<i32>,
    port: u16,
    log_dirs: &[PathBuf],
    zk_connect: &str,
    cluster_size: usize,
) -> Vec<(String, String)> {
    let rf = cluster_size.clamp(1, 3).to_string();
    let mut p = vec![];
    if let Some(id) = id {
        p.push(("broker.id".into(), id.to_string()));
    }
    p.extend([
        ("listeners".into(), format!("PLAINTEXT://127.0.0.1:{port}")),
        (
            "log.dirs".into(),
            log_dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(","),
        ),
        ("zookeeper.connect".into(), zk_connect.to_string()),
        // Short session: a killed broker's ephemeral znode vanishes quickly, so restarts stay fast.
        ("zookeeper.session.timeout.ms".into(), "6000".into()),
        // The last broker of a cluster cannot hand off its replicated partitions, so its
        // controlled shutdown always exhausts the retries: 3 x 500 ms instead of Kafka's 3 x 5 s.
        ("controlled.shutdown.retry.backoff.ms".into(), "500".into()),
        ("offsets.topic.replication.factor".into(), rf.clone()),
        ("offsets.topic.num.partitions".into(), "5".into()),
        ("transaction.state.log.replication.factor".into(), rf),
        ("transaction.state.log.min.isr".into(), "1".into()),
        ("transaction.state.log.num.partitions".into(), "5".into()),
        ("group.initial.rebalance.delay.ms".into(), "0".into()),
        ("num.partitions".into(), "1".into()),
    ]);
    p
}

impl Broker {
    /// Writes `<dir>/server.properties` (free port, `<dir>/logs`); does not start the process.
    pub fn configure(
        dir: &Path,
        zk_connect: &str,
        spec: &BrokerSpec,
        cluster_size: usize,
    ) -> Result<Broker> {
        std::fs::create_dir_all(dir)?;
        let port = util::free_port();
        let log_dir = dir.join("logs");
        let log_dirs: Vec<PathBuf> = std::iter::once(log_dir.clone())
            .chain((1..spec.log_dirs).map(|i| dir.join(format!("logs-{i}"))))
            .collect();
        let mut props = default_props(spec.id, port, &log_dirs, zk_connect, cluster_size);
        for (k, v) in &spec.props {
            props.retain(|(pk, _)| pk != k);
            props.push((k.clone(), v.clone()));
        }
        let port = props
            .iter()
            .find(|(k, _)| k == "listeners")
            .and_then(|(_, v)| v.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or(port);
        let text: String = props.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        let props_path = dir.join("server.properties");
        std::fs::write(&props_path, text)?;
        Ok(Broker {
            id: spec.id,
            port,
            dir: dir.to_path_buf(),
            log_dir,
            log_dirs,
            props_path,
            file_size_limit: spec.file_size_limit,
            env: spec.env.clone(),
            open_files_limit: spec.open_files_limit,
            log_path: dir.join("broker.log"),
            child: None,
            watchdog: None,
            allowed_errors: Vec::new(),
        })
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Spawns the process (stdout+stderr appended to `broker.log`); does not wait.
    pub fn spawn(&mut self) -> Result<()> {
        if self.is_running() {
            bail!("broker {:?} already running", self.id);
        }
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)?;
        let mut cmd = Command::new(broker_bin());
        if let Some(limit) = self.file_size_limit {
            set_rlimit(&mut cmd, libc::RLIMIT_FSIZE, limit, limit);
        }
        if let Some((soft, hard)) = self.open_files_limit {
            set_rlimit(&mut cmd, libc::RLIMIT_NOFILE, soft, hard);
        }
        let child = cmd
            .arg(&self.props_path)
            .current_dir(&self.dir)
            .env(
                "RUST_LOG",
                std::env::var("SAMSA_TEST_RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("NO_COLOR", "1")
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("spawn {}", broker_bin().display()))?;
        self.watchdog = util::spawn_watchdog(child.id());
        self.child = Some(child);
        Ok(())
    }

    /// Waits until the broker answers ApiVersions (error at once if the process exits).
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let addr = self.addr();
        let ok = util::try_wait_until(timeout, || {
            if let Some(status) = self.try_exit_status() {
                return Some(Err(status));
            }
            wire::api_versions(&addr)
                .ok()
                .filter(|r| r.error_code == 0)
                .map(|_| Ok(()))
        });
        match ok {
            Some(Ok(())) => Ok(()),
            Some(Err(status)) => bail!(
                "broker {:?} exited ({status}) before answering ApiVersions; log:\n{}",
                self.id,
                self.log_tail(60)
            ),
            None => bail!(
                "broker {:?} did not answer ApiVersions within {timeout:?}; log:\n{}",
                self.id,
                self.log_tail(60)
            ),
        }
    }

    pub fn start(&mut self) -> Result<()> {
        self.spawn()?;
        self.wait_ready(Duration::from_secs(60))
    }

    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The exit status if the process has exited (and reaps it).
    pub fn try_exit_status(&mut self) -> Option<ExitStatus> {
        let c = self.child.as_mut()?;
        c.try_wait().ok().flatten()
    }

    /// Waits for the process to exit by itself (e.g. a start-up that must fail).
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        util::try_wait_until(timeout, || self.try_exit_status())
    }

    /// `kill -9`: no clean shutdown.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.reap_watchdog();
    }

    /// SIGTERM and wait (deadline) for a clean exit; returns the exit status.
    pub fn stop(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let Some(c) = self.child.as_mut() else {
            bail!("broker {:?} not running", self.id)
        };
        if let Ok(Some(status)) = c.try_wait() {
            self.child = None;
            return Ok(status);
        }
        let pid = nix::unistd::Pid::from_raw(c.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).context("SIGTERM")?;
        let status = util::try_wait_until(timeout, || c.try_wait().ok().flatten());
        match status {
            Some(s) => {
                self.child = None;
                self.reap_watchdog();
                Ok(s)
            }
            None => {
                self.kill9();
                bail!(
                    "broker {:?} did not exit within {timeout:?} after SIGTERM",
                    self.id
                )
            }
        }
    }

    /// Sends a signal (e.g. SIGSTOP/SIGCONT) to the process.
    pub fn signal(&self, sig: nix::sys::signal::Signal) -> Result<()> {
        let pid = self.pid().context("not running")?;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig)?;
        Ok(())
    }

    fn reap_watchdog(&mut self) {
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn log_tail(&self, n: usize) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// ERROR lines containing `pattern` are expected by this test (not reported by [`Broker::error_lines`]).
    pub fn allow_error(&mut self, pattern: &str) {
        self.allowed_errors.push(pattern.to_string());
    }

    /// Unexpected `ERROR`-level lines and panics in the broker log.
    pub fn error_lines(&self) -> Vec<String> {
        self.log_text()
            .lines()
            .filter(|l| is_error_line(l))
            .filter(|l| !self.allowed_errors.iter().any(|a| l.contains(a.as_str())))
            .filter(|l| !KNOWN_BROKER_BUGS.iter().any(|a| l.contains(a)))
            .map(str::to_string)
            .collect()
    }
}

/// Sets a resource limit (soft, hard) in the child between fork and exec.
fn set_rlimit(cmd: &mut Command, resource: libc::__rlimit_resource_t, soft: u64, hard: u64) {
    use std::os::unix::process::CommandExt;
    let lim = libc::rlimit {
        rlim_cur: soft as libc::rlim_t,
        rlim_max: hard as libc::rlim_t,
    };
    // SAFETY: the closure runs in the forked child before exec and only calls setrlimit, which
    // is async-signal-safe; it touches no memory shared with the parent and takes no locks.
    #[allow(unsafe_code)]
    unsafe {
        cmd.pre_exec(move || {
            if libc::setrlimit(resource, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// ERROR lines from known, reported broker bugs, tolerated so main stays green; remove each entry
/// when its bug is fixed. (None at present.)
const KNOWN_BROKER_BUGS: &[&str] = &[];

/// A tracing ERROR line (level is one of the first tokens) or a Rust panic message.
pub fn is_error_line(line: &str) -> bool {
    line.contains("panicked at")
        || line
            .split_whitespace()
            .take(3)
            .any(|t| t == "ERROR" || t == "ERROR:")
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill9();
    }
}
