//! Small helpers: repository paths, free ports, deadline waits, per-test directories, watchdogs.

use std::collections::HashSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The repository root (parent of this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The cargo target directory (honours `CARGO_TARGET_DIR`).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => {
            let p = PathBuf::from(d);
            if p.is_absolute() {
                p
            } else {
                repo_root().join(p)
            }
        }
        None => repo_root().join("target"),
    }
}

static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A free TCP port on 127.0.0.1, never handed out twice by this process.
pub fn free_port() -> u16 {
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("bind 127.0.0.1:0");
        let mut guard = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
        if guard.get_or_insert_with(HashSet::new).insert(port) {
            return port;
        }
    }
}

/// Polls `f` every 50 ms until it returns `Some`, or panics after `timeout` naming `what`.
pub fn wait_until<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    match try_wait_until(timeout, &mut f) {
        Some(v) => v,
        None => panic!("timed out after {timeout:?} waiting for {what}"),
    }
}

/// Like [`wait_until`] but returns `None` on timeout.
pub fn try_wait_until<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A per-test directory under `target/e2e/`; deleted when the test passes, kept (path printed) when it fails.
pub struct TestDir {
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
}

impl TestDir {
    pub fn new(name: &str) -> TestDir {
        let base = target_dir().join("e2e");
        std::fs::create_dir_all(&base).expect("create target/e2e");
        let dir = tempfile::Builder::new()
            .prefix(&format!("{name}-"))
            .tempdir_in(&base)
            .expect("create test dir");
        let path = dir.path().to_path_buf();
        TestDir {
            dir: Some(dir),
            path,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            if let Some(d) = self.dir.take() {
                let kept = d.keep();
                eprintln!("test failed; files kept in {}", kept.display());
            }
        }
    }
}

/// Starts a tiny shell process that SIGKILLs `child_pid` once this test process is gone, so a crashed or
/// killed test binary never leaves ZooKeeper or brokers behind. It exits by itself when the child ends.
pub fn spawn_watchdog(child_pid: u32) -> Option<Child> {
    let me = std::process::id();
    let script = format!(
        "while kill -0 {me} 2>/dev/null && kill -0 {child_pid} 2>/dev/null; do sleep 1; done; \
         kill -0 {child_pid} 2>/dev/null && kill -9 {child_pid}; exit 0"
    );
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()
}

/// Is something accepting TCP connections on 127.0.0.1:`port`?
pub fn port_open(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(200),
    )
    .is_ok()
}

/// A short random lowercase suffix for topic names, chroots, ...
pub fn unique(prefix: &str) -> String {
    use rand::Rng;
    let n: u32 = rand::thread_rng().gen();
    format!("{prefix}-{n:08x}")
}
