//! `samsa-broker PATH/server.properties [--override key=value]...`
//!
//! Same command line as `kafka-server-start.sh`. Logs go to stdout (level from
//! `RUST_LOG`, default `info`). A configuration error exits with status 1 and a
//! message naming the key; a clean SIGTERM/SIGINT shutdown exits 0.

use std::path::PathBuf;
use std::process::ExitCode;

use samsa_common::config::BrokerConfig;
use samsa_common::properties::parse_override;

const USAGE: &str = "USAGE: samsa-broker server.properties [--override property=value]*";

/// Parses Kafka's argument syntax: the properties file, then `--override k=v` pairs.
fn parse_args(args: &[String]) -> Result<(PathBuf, Vec<(String, String)>), String> {
    let mut it = args.iter();
    let path = match it.next() {
        Some(p) if !p.starts_with("--") => PathBuf::from(p),
        _ => return Err(USAGE.to_string()),
    };
    let mut overrides = Vec::new();
    while let Some(a) = it.next() {
        let kv = if a == "--override" {
            it.next()
                .ok_or_else(|| format!("--override needs key=value\n{USAGE}"))?
        } else if let Some(kv) = a.strip_prefix("--override=") {
            kv
        } else {
            return Err(format!("unexpected argument {a:?}\n{USAGE}"));
        };
        overrides.push(parse_override(kv).map_err(|e| e.to_string())?);
    }
    Ok((path, overrides))
}

/// Ignore SIGXFSZ, so that a write past the file-size limit (`RLIMIT_FSIZE`, `ulimit -f`)
/// fails with EFBIG, an I/O error handled like a full disk (the log dir goes offline), instead
/// of killing the process. The JVM running Kafka ignores it the same way.
fn ignore_sigxfsz() {
    use nix::sys::signal::{signal, SigHandler, Signal};
    // SAFETY: called once at the top of `main`, before any other thread exists; SIG_IGN
    // installs no handler code, so nothing can run in signal context.
    #[allow(unsafe_code)]
    let r = unsafe { signal(Signal::SIGXFSZ, SigHandler::SigIgn) };
    if let Err(e) = r {
        eprintln!("samsa-broker: cannot ignore SIGXFSZ: {e}");
    }
}

/// Raises the soft open-files limit (`RLIMIT_NOFILE`) to the hard limit, as a JVM started
/// with `-XX:+MaxFDLimit` (HotSpot's default on Linux) does for Kafka: every segment, index and
/// connection is a file descriptor, and a distribution's default soft limit of 1,024 runs out
/// at a few hundred partitions. Logs the limit in force, since it is the first thing to check
/// when a log dir goes offline with "Too many open files".
fn raise_open_files_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!("Cannot read the open-files limit (RLIMIT_NOFILE): {e}");
            return;
        }
    };
    if soft >= hard {
        tracing::info!("Open-files limit (RLIMIT_NOFILE) is {soft} (the hard limit)");
        return;
    }
    match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
        Ok(()) => tracing::info!(
            "Raised the open-files limit (RLIMIT_NOFILE) from {soft} to the hard limit {hard}"
        ),
        Err(e) => tracing::warn!(
            "Cannot raise the open-files limit (RLIMIT_NOFILE) from {soft} to the hard limit \
             {hard}: {e}; raise it with `ulimit -n` before starting the broker"
        ),
    }
}

/// Logs to stdout through a reloadable `EnvFilter` (from `RUST_LOG`, default `info`), so
/// IncrementalAlterConfigs on BROKER_LOGGER can change levels at run time
/// (see `samsa_broker::log_levels`).
fn init_logging() {
    use tracing_subscriber::prelude::*;
    use tracing_subscriber::{fmt, reload, EnvFilter};
    let spec = std::env::var("RUST_LOG")
        .ok()
        .filter(|s| EnvFilter::try_new(s).is_ok())
        .unwrap_or_else(|| "info".to_string());
    let (filter, handle) = reload::Layer::new(EnvFilter::new(&spec));
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt::layer().with_writer(std::io::stdout).with_ansi(false))
        .init();
    samsa_broker::log_levels::install(
        &spec,
        Box::new(move |directives| {
            let f = EnvFilter::try_new(directives).map_err(|e| e.to_string())?;
            handle.reload(f).map_err(|e| e.to_string())
        }),
    );
}

fn main() -> ExitCode {
    ignore_sigxfsz();
    init_logging();
    raise_open_files_limit();

    let args: Vec<String> = std::env::args().skip(1).collect();
    let (path, overrides) = match parse_args(&args) {
        Ok(v) => v,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(1);
        }
    };
    let config = match BrokerConfig::load(&path, &overrides) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("Exiting Kafka due to fatal exception: {e}");
            eprintln!("samsa-broker: configuration error: {e}");
            return ExitCode::from(1);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("samsa-broker: cannot start runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(samsa_broker::broker::run_until_signal(config)) {
        // Everything is flushed, checkpointed and deregistered at this point. Exit
        // without tearing the runtime down: dropping it would cancel ZooKeeper client
        // tasks mid-await, and zookeeper-client 0.11 panics on a cancelled watch.
        Ok(()) => std::process::exit(0),
        Err(e) => {
            tracing::error!("Exiting Kafka due to fatal exception during startup: {e:#}");
            eprintln!("samsa-broker: {e:#}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn kafka_argument_syntax() {
        let (p, o) = parse_args(&s(&[
            "config/server.properties",
            "--override",
            "broker.id=3",
            "--override",
            "log.dirs=/tmp/a,/tmp/b",
        ]))
        .expect("valid args");
        assert_eq!(p, PathBuf::from("config/server.properties"));
        assert_eq!(
            o,
            vec![
                ("broker.id".to_string(), "3".to_string()),
                ("log.dirs".to_string(), "/tmp/a,/tmp/b".to_string())
            ]
        );
        assert!(parse_args(&s(&[])).is_err());
        assert!(parse_args(&s(&["x", "--override"])).is_err());
        assert!(parse_args(&s(&["x", "--bogus"])).is_err());
    }
}
