//! A real ZooKeeper server for tests (`TestZk`), available to other crates with the
//! `test-util` feature of `samsa-common`.
//!
//! Starts `/usr/share/zookeeper/bin/zkServer.sh start-foreground <cfg>` on a free port with a
//! temporary data dir (admin server off), waits until the port accepts, kills it on drop.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::zk::session::ZkSession;

const ZK_SERVER: &str = "/usr/share/zookeeper/bin/zkServer.sh";

/// A running standalone ZooKeeper, killed (and its data dir removed) on drop.
pub struct TestZk {
    child: Child,
    port: u16,
    dir: PathBuf,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port")
}

impl TestZk {
    /// Start a server and wait (≤ 60 s) until it accepts connections. Panics if it cannot.
    pub fn start() -> TestZk {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!(
            "samsa-testzk-{}-{}-{}",
            std::process::id(),
            port,
            rand::random::<u32>()
        ));
        let data = dir.join("data");
        let logs = dir.join("logs");
        std::fs::create_dir_all(&data).expect("mkdir data");
        std::fs::create_dir_all(&logs).expect("mkdir logs");
        let cfg = dir.join("zoo.cfg");
        std::fs::write(
            &cfg,
            format!(
                "tickTime=500\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={port}\n\
                 clientPortAddress=127.0.0.1\nadmin.enableServer=false\nmaxSessionTimeout=60000\n\
                 minSessionTimeout=1000\n4lw.commands.whitelist=*\n",
                data.display()
            ),
        )
        .expect("write zoo.cfg");
        let child = Command::new(ZK_SERVER)
            .arg("start-foreground")
            .arg(&cfg)
            .env("ZOO_LOG_DIR", &logs)
            .env(
                "JVMFLAGS",
                "-Xmx128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1",
            )
            .stdin(Stdio::null())
            .stdout(Stdio::from(
                std::fs::File::create(logs.join("stdout.log")).expect("log file"),
            ))
            .stderr(Stdio::from(
                std::fs::File::create(logs.join("stderr.log")).expect("log file"),
            ))
            .spawn()
            .expect("spawn zkServer.sh");
        let mut zk = TestZk { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            if let Ok(Some(status)) = zk.child.try_wait() {
                panic!(
                    "zookeeper exited early ({status}); see {}",
                    zk.dir.display()
                );
            }
            assert!(
                Instant::now() < deadline,
                "zookeeper did not start on {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        zk
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Freeze the server (SIGSTOP): connections stay open but nothing answers, as with a
    /// ZooKeeper stuck in a long GC pause or an overloaded host.
    pub fn pause(&self) {
        self.signal("STOP");
    }

    /// Undo [`TestZk::pause`] (SIGCONT).
    pub fn resume(&self) {
        self.signal("CONT");
    }

    fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{sig} zookeeper failed");
    }

    /// `127.0.0.1:<port>`.
    pub fn connect_string(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:<port><chroot>` (chroot starts with `/`).
    pub fn connect_string_with_chroot(&self, chroot: &str) -> String {
        format!("127.0.0.1:{}{}", self.port, chroot)
    }

    /// Force the expiry of `session`: attach a second client to the same session and close it,
    /// which ends the session on the server; the original client then sees `Expired`.
    ///
    /// The close is sent in the background when the attached client is dropped, and it races
    /// the original client reconnecting (which takes the session back and can make the close
    /// go nowhere). So this repeats attach-and-close until an attach is refused with
    /// `SessionExpired`: only then is the session known to be gone on the server.
    pub async fn expire_session(&self, session: &ZkSession) {
        self.expire_session_info(session.session_info(), session.config().session_timeout)
            .await
    }

    /// [`TestZk::expire_session`] for a raw `zookeeper-client` session.
    pub async fn expire_session_info(
        &self,
        info: zookeeper_client::SessionInfo,
        session_timeout: Duration,
    ) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        let per_attempt = session_timeout.max(Duration::from_secs(5));
        let mut last = String::from("no attempt");
        while tokio::time::Instant::now() < deadline {
            let attempt = tokio::time::timeout(
                per_attempt,
                zookeeper_client::Client::connector()
                    .with_session(info.clone())
                    .with_session_timeout(session_timeout)
                    .with_connection_timeout(per_attempt)
                    .connect(&self.connect_string()),
            )
            .await;
            match attempt {
                // Attached: dropping it sends CloseSession; check again on the next round.
                Ok(Ok(other)) => {
                    drop(other);
                    last = "session still alive after close".into();
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
                Ok(Err(zookeeper_client::Error::SessionExpired)) => return,
                Ok(Err(e)) => last = e.to_string(),
                Err(_) => last = format!("attempt timed out after {per_attempt:?}"),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("could not expire session {}: {last}", info.id());
    }
}

impl Drop for TestZk {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
