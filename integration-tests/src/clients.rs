//! Running real clients as child processes: Python (confluent-kafka, kafka-python), Java (Kafka client
//! 3.9.1 jars in `.tools/jars/`, single-file programs in `integration-tests/java/`) and kcat.
//! Each call has a deadline; on failure the error carries the program's stderr.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::util;

/// Runs `cmd` with optional stdin, killing it after `timeout`.
pub fn run(mut cmd: Command, stdin: Option<&[u8]>, timeout: Duration) -> Result<Output> {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let desc = format!("{cmd:?}");
    let mut child = cmd.spawn().with_context(|| format!("spawn {desc}"))?;
    if let (Some(data), Some(mut w)) = (stdin, child.stdin.take()) {
        let data = data.to_vec();
        std::thread::spawn(move || {
            let _ = w.write_all(&data);
        });
    }
    let mut out = child.stdout.take().context("stdout")?;
    let mut err = child.stderr.take().context("stderr")?;
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let status = util::try_wait_until(timeout, || child.try_wait().ok().flatten());
    let status = match status {
        Some(s) => s,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            let e = t_err.join().unwrap_or_default();
            bail!(
                "{desc} timed out after {timeout:?}; stderr:\n{}",
                String::from_utf8_lossy(&e)
            );
        }
    };
    let stdout = t_out.join().unwrap_or_default();
    let stderr = t_err.join().unwrap_or_default();
    Ok(Output {
        status,
        stdout,
        stderr,
    })
}

fn check(desc: &str, out: Output) -> Result<String> {
    if !out.status.success() {
        bail!(
            "{desc} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Last non-empty stdout line parsed as JSON (programs print their result there).
pub fn last_json(stdout: &str) -> Result<serde_json::Value> {
    let line = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .context("no output")?;
    serde_json::from_str(line).with_context(|| format!("not JSON: {line}"))
}

pub fn python_dir() -> PathBuf {
    util::repo_root().join("integration-tests").join("python")
}

/// Runs `integration-tests/python/<script>` with args; returns its last stdout line as JSON.
pub fn python(script: &str, args: &[String], timeout: Duration) -> Result<serde_json::Value> {
    let mut cmd = Command::new(std::env::var("PYTHON").unwrap_or_else(|_| "python3".into()));
    cmd.arg(python_dir().join(script)).args(args);
    let stdout = check(script, run(cmd, None, timeout)?)?;
    last_json(&stdout)
}

pub fn jars_dir() -> PathBuf {
    util::repo_root().join(".tools").join("jars")
}

/// The command that runs `integration-tests/java/<prog>.java` (single-file source launch) with the
/// Kafka client jars, for tests that spawn a Java program and watch or kill it themselves.
pub fn java_command(prog: &str, args: &[String]) -> Result<Command> {
    let jars = jars_dir();
    if !jars.join("kafka-clients.jar").exists() {
        bail!(
            "{} missing: run scripts/setup.sh",
            jars.join("kafka-clients.jar").display()
        );
    }
    let src = util::repo_root()
        .join("integration-tests")
        .join("java")
        .join(format!("{prog}.java"));
    let mut cmd = Command::new("java");
    cmd.arg("-XX:+UseSerialGC")
        .arg("-XX:TieredStopAtLevel=1")
        .arg("-Xshare:auto")
        .arg("-cp")
        .arg(format!("{}/*", jars.display()))
        .arg(src)
        .args(args);
    Ok(cmd)
}

/// Runs `integration-tests/java/<prog>.java` (single-file source launch) with the Kafka client jars.
/// Returns the last stdout line as JSON.
pub fn java(prog: &str, args: &[String], timeout: Duration) -> Result<serde_json::Value> {
    let cmd = java_command(prog, args)?;
    let stdout = check(prog, run(cmd, None, timeout)?)?;
    last_json(&stdout)
}

/// `kcat` with the system librdkafka: cargo's test environment puts the rdkafka-sys build
/// (no OpenSSL) on `LD_LIBRARY_PATH`, which would make kcat refuse `security.protocol=SSL`.
pub fn kcat_command() -> Command {
    let mut cmd = Command::new("kcat");
    cmd.env_remove("LD_LIBRARY_PATH");
    cmd
}

/// Runs Debian's kcat with `args` (and optional stdin); returns stdout. Fails on a non-zero exit.
pub fn kcat(args: &[&str], stdin: Option<&[u8]>, timeout: Duration) -> Result<String> {
    let mut cmd = kcat_command();
    cmd.args(args);
    check("kcat", run(cmd, stdin, timeout)?)
}
