//! A real ZooKeeper server for tests, and a blocking client for assertions.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use zookeeper_client as zkc;

use crate::util::{self, TestDir};

/// Debian's ZooKeeper launcher (package `zookeeper`, installed by `scripts/setup.sh`).
pub const ZK_SERVER_SH: &str = "/usr/share/zookeeper/bin/zkServer.sh";

/// A ZooKeeper server process: `zkServer.sh start-foreground` with its own zoo.cfg, data dir and client port.
/// Killed on drop (and by a watchdog if the test process dies).
pub struct ZkFixture {
    child: Child,
    watchdog: Option<Child>,
    port: u16,
    _dir: TestDir,
    log: PathBuf,
}

impl ZkFixture {
    /// Starts a fresh server and waits (30 s deadline) until it answers a session.
    pub fn start() -> Result<ZkFixture> {
        if !std::path::Path::new(ZK_SERVER_SH).exists() {
            bail!("{ZK_SERVER_SH} not found: run scripts/setup.sh");
        }
        let dir = TestDir::new("zookeeper");
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data)?;
        let port = util::free_port();
        let cfg = dir.path().join("zoo.cfg");
        // tickTime 500 ms: sessions may be as short as 1 s, so session-expiry tests stay fast.
        std::fs::write(
            &cfg,
            format!(
                "tickTime=500\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={port}\n\
                 clientPortAddress=127.0.0.1\nadmin.enableServer=false\nmaxClientCnxns=0\n\
                 maxSessionTimeout=60000\n4lw.commands.whitelist=*\n",
                data.display()
            ),
        )?;
        let log = dir.path().join("zookeeper.log");
        let out = std::fs::File::create(&log)?;
        let child = Command::new(ZK_SERVER_SH)
            .arg("start-foreground")
            .arg(&cfg)
            .current_dir(dir.path())
            .env(
                "SERVER_JVMFLAGS",
                "-Xmx192m -XX:+UseSerialGC -XX:TieredStopAtLevel=1",
            )
            .env("ZOO_LOG_DIR", dir.path())
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("spawn zkServer.sh")?;
        let watchdog = util::spawn_watchdog(child.id());
        let mut zk = ZkFixture {
            child,
            watchdog,
            port,
            _dir: dir,
            log,
        };
        let ok = util::try_wait_until(Duration::from_secs(30), || {
            if let Ok(Some(_)) = zk.child.try_wait() {
                return Some(false);
            }
            Zk::connect(&zk.connect_string(), "").ok().map(|_| true)
        });
        if ok != Some(true) {
            let text = std::fs::read_to_string(&zk.log).unwrap_or_default();
            bail!("ZooKeeper did not start on port {}:\n{text}", zk.port);
        }
        Ok(zk)
    }

    /// One server shared by all tests of this test binary (tests use distinct chroots).
    pub fn shared() -> &'static ZkFixture {
        static SHARED: OnceLock<ZkFixture> = OnceLock::new();
        SHARED.get_or_init(|| ZkFixture::start().expect("start shared ZooKeeper"))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>` (no chroot).
    pub fn connect_string(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for ZkFixture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
    }
}

/// A znode's data and stat.
#[derive(Debug, Clone)]
pub struct Node {
    pub data: Vec<u8>,
    pub stat: zkc::Stat,
}

impl Node {
    pub fn json(&self) -> Result<serde_json::Value> {
        serde_json::from_slice(&self.data).with_context(|| {
            format!(
                "znode data is not JSON: {:?}",
                String::from_utf8_lossy(&self.data)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }
}

/// Blocking ZooKeeper client for assertions. All paths are relative to `prefix` (a chroot such as `/t-1234`,
/// or "" for the real root); `Zk::at` makes a view with another prefix.
pub struct Zk {
    rt: tokio::runtime::Runtime,
    client: zkc::Client,
    prefix: String,
}

impl Zk {
    pub fn connect(servers: &str, prefix: &str) -> Result<Zk> {
        // A worker thread keeps the session's pings going between calls (a current-thread runtime
        // only runs while a call blocks, so an idle session would time out).
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let client = rt.block_on(async {
            tokio::time::timeout(
                Duration::from_secs(5),
                zkc::Client::connector()
                    .with_session_timeout(Duration::from_secs(4))
                    .connect(servers),
            )
            .await
        });
        let client = client.map_err(|_| anyhow!("ZooKeeper connect timed out"))??;
        Ok(Zk {
            rt,
            client,
            prefix: prefix.trim_end_matches('/').to_string(),
        })
    }

    fn full(&self, path: &str) -> String {
        if path == "/" || path.is_empty() {
            if self.prefix.is_empty() {
                "/".to_string()
            } else {
                self.prefix.clone()
            }
        } else {
            format!("{}{}", self.prefix, path)
        }
    }

    pub fn session_id(&self) -> i64 {
        self.client.session_id().0
    }

    /// Data + stat, or `None` if the node does not exist.
    pub fn get(&self, path: &str) -> Result<Option<Node>> {
        match self.rt.block_on(self.client.get_data(&self.full(path))) {
            Ok((data, stat)) => Ok(Some(Node { data, stat })),
            Err(zkc::Error::NoNode) => Ok(None),
            Err(e) => Err(anyhow!("get {path}: {e}")),
        }
    }

    /// Parsed JSON of an existing node (error if missing or not JSON).
    pub fn json(&self, path: &str) -> Result<serde_json::Value> {
        self.get(path)?
            .ok_or_else(|| anyhow!("znode {path} does not exist"))?
            .json()
    }

    pub fn exists(&self, path: &str) -> Result<Option<zkc::Stat>> {
        self.rt
            .block_on(self.client.check_stat(&self.full(path)))
            .map_err(|e| anyhow!("stat {path}: {e}"))
    }

    /// Sorted children, or `None` if the node does not exist.
    pub fn children(&self, path: &str) -> Result<Option<Vec<String>>> {
        match self
            .rt
            .block_on(self.client.list_children(&self.full(path)))
        {
            Ok(mut c) => {
                c.sort();
                Ok(Some(c))
            }
            Err(zkc::Error::NoNode) => Ok(None),
            Err(e) => Err(anyhow!("children {path}: {e}")),
        }
    }

    /// Creates a node (parents created as persistent nodes with no data).
    pub fn create(&self, path: &str, data: &[u8], mode: zkc::CreateMode) -> Result<String> {
        let full = self.full(path);
        if let Some(idx) = full.rfind('/') {
            if idx > 0 {
                self.mkdirs_abs(&full[..idx])?;
            }
        }
        let opts = mode.with_acls(zkc::Acls::anyone_all());
        let (_, seq) = self
            .rt
            .block_on(self.client.create(&full, data, &opts))
            .map_err(|e| anyhow!("create {path}: {e}"))?;
        Ok(
            if matches!(
                mode,
                zkc::CreateMode::PersistentSequential | zkc::CreateMode::EphemeralSequential
            ) {
                format!("{full}{seq}")
            } else {
                full
            },
        )
    }

    fn mkdirs_abs(&self, abs: &str) -> Result<()> {
        let mut cur = String::new();
        for part in abs.split('/').filter(|p| !p.is_empty()) {
            cur.push('/');
            cur.push_str(part);
            let opts = zkc::CreateMode::Persistent.with_acls(zkc::Acls::anyone_all());
            match self.rt.block_on(self.client.create(&cur, &[], &opts)) {
                Ok(_) | Err(zkc::Error::NodeExists) => {}
                Err(e) => bail!("mkdir {cur}: {e}"),
            }
        }
        Ok(())
    }

    pub fn set(&self, path: &str, data: &[u8], version: Option<i32>) -> Result<zkc::Stat> {
        self.rt
            .block_on(self.client.set_data(&self.full(path), data, version))
            .map_err(|e| anyhow!("set {path}: {e}"))
    }

    pub fn delete(&self, path: &str) -> Result<()> {
        self.rt
            .block_on(self.client.delete(&self.full(path), None))
            .map_err(|e| anyhow!("delete {path}: {e}"))
    }

    /// Waits (deadline) until `path` exists and returns it.
    pub fn wait_for(&self, path: &str, timeout: Duration) -> Node {
        util::wait_until(&format!("znode {}{path}", self.prefix), timeout, || {
            self.get(path).ok().flatten()
        })
    }

    /// Waits (deadline) until `path` no longer exists.
    pub fn wait_gone(&self, path: &str, timeout: Duration) {
        util::wait_until(
            &format!("znode {}{path} to disappear", self.prefix),
            timeout,
            || matches!(self.exists(path), Ok(None)).then_some(()),
        )
    }
}
