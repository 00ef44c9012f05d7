//! Run-time log levels: the BROKER_LOGGER config resource (KIP-412, Kafka's
//! `Log4jController`) on top of `tracing`.
//!
//! Kafka names loggers after JVM classes and packages; Samsa logs through `tracing`,
//! whose targets are Rust module paths. A Kafka logger name therefore maps to a set of
//! tracing targets ([`KAFKA_LOGGERS`]); `root` is the default level of the filter; and a
//! Samsa module path (`samsa_broker::replica`, `samsa_controller`, ...) is accepted as a
//! logger name of its own. The level table lives here; the process's subscriber (set up in
//! `main.rs`) registers a reload callback with [`install`], and every change rebuilds the
//! `EnvFilter` directive string ([`Loggers::directives`]) and hands it to that callback.
//! As in Kafka, levels set this way are not persisted: a restart goes back to `RUST_LOG`.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};

/// Kafka's root logger name.
pub const ROOT_LOGGER: &str = "root";

/// Kafka 3.9's `LogLevelConfig.VALID_LOG_LEVELS` (no OFF), in the order its Java `HashSet`
/// lists them in the INVALID_CONFIG message.
pub const VALID_LOG_LEVELS: [&str; 6] = ["TRACE", "ERROR", "INFO", "FATAL", "DEBUG", "WARN"];

/// Levels a bare `RUST_LOG` directive may give root (tracing's, plus OFF).
const ENV_LEVELS: [&str; 6] = ["OFF", "ERROR", "WARN", "INFO", "DEBUG", "TRACE"];

/// Kafka logger names Samsa answers for, and the tracing targets each one controls.
/// Documented in docs/operations.md ("Changing log levels at run time").
pub const KAFKA_LOGGERS: &[(&str, &[&str])] = &[
    (
        "kafka",
        &["samsa_broker", "samsa_controller", "samsa_common"],
    ),
    ("kafka.server", &["samsa_broker"]),
    ("kafka.controller", &["samsa_controller"]),
    ("kafka.log", &["samsa_broker::log"]),
    ("kafka.log.LogCleaner", &["samsa_broker::log::cleaner"]),
    ("kafka.cluster", &["samsa_broker::replica"]),
    ("kafka.server.ReplicaManager", &["samsa_broker::replica"]),
    (
        "kafka.server.ReplicaFetcherThread",
        &["samsa_broker::replica::fetcher"],
    ),
    (
        "kafka.coordinator.group",
        &["samsa_broker::coordinator::group"],
    ),
    (
        "kafka.coordinator.transaction",
        &["samsa_broker::coordinator::txn"],
    ),
    (
        "kafka.network",
        &["samsa_broker::server", "samsa_broker::connection"],
    ),
    ("kafka.request.logger", &["samsa_broker::dispatch"]),
    ("kafka.zookeeper", &["samsa_common::zk"]),
    ("kafka.zk", &["samsa_common::zk"]),
    (
        "state.change.logger",
        &[
            "samsa_controller::partition_state",
            "samsa_controller::replica_state",
        ],
    ),
];

/// Crates whose module paths may be used directly as logger names.
const SAMSA_CRATES: [&str; 3] = ["samsa_broker", "samsa_controller", "samsa_common"];

/// Why a logger change was refused: (Kafka error code, message).
pub type Refusal = (i16, String);

const INVALID_REQUEST: i16 = 42;
const INVALID_CONFIG: i16 = 40;

/// One requested change: `Some(level)` sets, `None` unsets (DELETE).
pub type Change<'a> = (&'a str, Option<&'a str>);

/// The level table: root's level plus the loggers given an explicit level.
#[derive(Clone, Debug)]
pub struct Loggers {
    root: String,
    /// `RUST_LOG` directives other than a bare default level, kept as given.
    base: Vec<String>,
    set: BTreeMap<String, String>,
}

fn tracing_level(kafka_level: &str) -> &'static str {
    match kafka_level {
        "OFF" => "off",
        "FATAL" | "ERROR" => "error",
        "WARN" => "warn",
        "DEBUG" => "debug",
        "TRACE" => "trace",
        _ => "info",
    }
}

/// A Samsa module path: `samsa_x` or `samsa_x::a::b` with identifier segments.
fn is_samsa_path(name: &str) -> bool {
    let mut parts = name.split("::");
    let Some(first) = parts.next() else {
        return false;
    };
    SAMSA_CRATES.contains(&first)
        && parts.all(|p| {
            !p.is_empty()
                && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !p.starts_with(|c: char| c.is_ascii_digit())
        })
}

impl Loggers {
    /// From the start-up filter (`RUST_LOG`, default `info`): a bare level becomes root's.
    pub fn from_env_filter(spec: &str) -> Self {
        let mut root = "INFO".to_string();
        let mut base = Vec::new();
        for d in spec.split(',').map(str::trim).filter(|d| !d.is_empty()) {
            let upper = d.to_ascii_uppercase();
            if ENV_LEVELS.contains(&upper.as_str()) {
                root = upper;
            } else {
                base.push(d.to_string());
            }
        }
        Loggers {
            root,
            base,
            set: BTreeMap::new(),
        }
    }

    /// Kafka's `Log4jController.loggerExists`.
    pub fn exists(&self, name: &str) -> bool {
        name == ROOT_LOGGER || KAFKA_LOGGERS.iter().any(|(n, _)| *n == name) || is_samsa_path(name)
    }

    /// Kafka's `Log4jController.loggers`: root, then every known logger with its own
    /// level or, when it has none, root's.
    pub fn describe(&self) -> Vec<(String, String)> {
        let mut out: BTreeMap<String, String> = BTreeMap::new();
        for (n, _) in KAFKA_LOGGERS {
            out.insert(n.to_string(), self.root.clone());
        }
        for (n, l) in &self.set {
            out.insert(n.clone(), l.clone());
        }
        out.insert(ROOT_LOGGER.to_string(), self.root.clone());
        out.into_iter().collect()
    }

    /// Kafka's `ConfigAdminManager.validateLogLevelConfigs`, one operation.
    pub fn validate(&self, name: &str, level: Option<&str>) -> Result<(), Refusal> {
        if !self.exists(name) {
            return Err((INVALID_CONFIG, format!("Logger {name} does not exist!")));
        }
        match level {
            Some(l) if !VALID_LOG_LEVELS.contains(&l) => Err((
                INVALID_CONFIG,
                format!(
                    "Cannot set the log level of {name} to {l} as it is not a supported log \
                     level. Valid log levels are {}",
                    VALID_LOG_LEVELS.join(", ")
                ),
            )),
            None if name == ROOT_LOGGER => Err((
                INVALID_REQUEST,
                format!("Removing the log level of the {ROOT_LOGGER} logger is not allowed"),
            )),
            _ => Ok(()),
        }
    }

    /// Apply validated changes (Kafka's `Log4jController.logLevel` / `unsetLogLevel`).
    pub fn apply(&mut self, changes: &[Change<'_>]) {
        for (name, level) in changes {
            match (name, level) {
                (&ROOT_LOGGER, Some(l)) => self.root = l.to_string(),
                (n, Some(l)) => {
                    self.set.insert(n.to_string(), l.to_string());
                }
                (n, None) => {
                    self.set.remove(*n);
                }
            }
        }
    }

    /// The `EnvFilter` directive string: root's level, `RUST_LOG`'s own directives, then one
    /// directive per target of each logger with a level. Kafka names are applied before
    /// module paths, so an explicit module level wins over the Kafka logger covering it.
    pub fn directives(&self) -> String {
        let mut targets: BTreeMap<&str, &str> = BTreeMap::new();
        let kafka = self.set.iter().filter(|(n, _)| !is_samsa_path(n));
        let modules = self.set.iter().filter(|(n, _)| is_samsa_path(n));
        for (n, l) in kafka.chain(modules) {
            let level = tracing_level(l);
            match KAFKA_LOGGERS.iter().find(|(k, _)| *k == n.as_str()) {
                Some((_, ts)) => {
                    for t in ts.iter() {
                        targets.insert(*t, level);
                    }
                }
                None => {
                    targets.insert(n.as_str(), level);
                }
            }
        }
        let mut out = vec![tracing_level(&self.root).to_string()];
        for d in &self.base {
            let target = d.split(['=', '[']).next().unwrap_or("");
            if !targets.contains_key(target) {
                out.push(d.clone());
            }
        }
        out.extend(targets.into_iter().map(|(t, l)| format!("{t}={l}")));
        out.join(",")
    }
}

/// Rebuilds the process's log filter from a directive string.
pub type Reload = Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

struct Global {
    loggers: Mutex<Loggers>,
    reload: Option<Reload>,
}

static GLOBAL: OnceLock<Global> = OnceLock::new();

fn global() -> &'static Global {
    GLOBAL.get_or_init(|| Global {
        loggers: Mutex::new(Loggers::from_env_filter("info")),
        reload: None,
    })
}

/// Called once by `main` after installing the subscriber: `spec` is the start-up filter.
/// Without it (tests, embedded brokers) changes are recorded but filter nothing.
pub fn install(spec: &str, reload: Reload) {
    let _ = GLOBAL.set(Global {
        loggers: Mutex::new(Loggers::from_env_filter(spec)),
        reload: Some(reload),
    });
}

fn lock() -> std::sync::MutexGuard<'static, Loggers> {
    global()
        .loggers
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The current levels, as DescribeConfigs on BROKER_LOGGER reports them.
pub fn describe() -> Vec<(String, String)> {
    lock().describe()
}

/// Validates all `changes`, then (unless `validate_only`) applies them and reloads the
/// filter. Nothing is applied when any change is refused.
pub fn alter(changes: &[Change<'_>], validate_only: bool) -> Result<(), Refusal> {
    let mut l = lock();
    for (name, level) in changes {
        l.validate(name, *level)?;
    }
    if validate_only {
        return Ok(());
    }
    for (name, level) in changes {
        match level {
            Some(v) => tracing::info!("Updating the log level of {name} to {v}"),
            None => tracing::info!("Unset the log level of {name}"),
        }
    }
    l.apply(changes);
    let directives = l.directives();
    drop(l);
    if let Some(reload) = &global().reload {
        if let Err(e) = reload(&directives) {
            tracing::warn!("Cannot reload the log filter with {directives:?}: {e}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_filter_parsing_and_directives() {
        let l = Loggers::from_env_filter("warn,samsa_common::zk=debug");
        assert_eq!(l.directives(), "warn,samsa_common::zk=debug");
        let d = l.describe();
        assert_eq!(d[0], ("kafka".to_string(), "WARN".to_string()));
        assert!(d.contains(&("root".to_string(), "WARN".to_string())));
        assert!(Loggers::from_env_filter("").directives() == "info");
    }

    #[test]
    fn validation_follows_kafka() {
        let l = Loggers::from_env_filter("info");
        assert!(l.validate("kafka.server", Some("DEBUG")).is_ok());
        assert!(l.validate("samsa_broker::replica", Some("TRACE")).is_ok());
        assert!(l.validate("root", Some("FATAL")).is_ok());
        // Kafka 3.9 does not accept OFF.
        assert_eq!(
            l.validate("root", Some("OFF")).expect_err("OFF").0,
            INVALID_CONFIG
        );
        let e = l
            .validate("kafka.server", Some("debug"))
            .expect_err("lower case");
        assert_eq!(e.0, INVALID_CONFIG);
        assert!(e
            .1
            .starts_with("Cannot set the log level of kafka.server to debug"));
        let e = l
            .validate("no.such.logger", Some("INFO"))
            .expect_err("unknown");
        assert_eq!(
            e,
            (
                INVALID_CONFIG,
                "Logger no.such.logger does not exist!".into()
            )
        );
        assert_eq!(
            l.validate("root", None).expect_err("root").0,
            INVALID_REQUEST
        );
        assert!(l.validate("samsa_broker::", Some("INFO")).is_err());
        assert!(l.validate("other_crate", Some("INFO")).is_err());
        assert!(l.validate("kafka.server", None).is_ok());
    }

    #[test]
    fn set_and_unset_map_to_targets() {
        let mut l = Loggers::from_env_filter("info,samsa_broker=warn");
        l.apply(&[
            ("kafka.server", Some("DEBUG")),
            ("samsa_broker::replica", Some("FATAL")),
            ("root", Some("WARN")),
        ]);
        // RUST_LOG's samsa_broker directive is replaced by the logger's.
        assert_eq!(
            l.directives(),
            "warn,samsa_broker=debug,samsa_broker::replica=error"
        );
        let d = l.describe();
        assert!(d.contains(&("kafka.server".into(), "DEBUG".into())));
        assert!(d.contains(&("samsa_broker::replica".into(), "FATAL".into())));
        assert!(d.contains(&("kafka.log".into(), "WARN".into())));
        l.apply(&[("kafka.server", None), ("samsa_broker::replica", None)]);
        assert_eq!(l.directives(), "warn,samsa_broker=warn");
        assert!(!l
            .describe()
            .iter()
            .any(|(n, _)| n == "samsa_broker::replica"));
    }

    #[test]
    fn every_directive_string_parses() {
        let mut l = Loggers::from_env_filter("info");
        let all: Vec<(&str, Option<&str>)> = KAFKA_LOGGERS
            .iter()
            .map(|(n, _)| (*n, Some("TRACE")))
            .collect();
        l.apply(&all);
        l.apply(&[("root", Some("OFF")), ("samsa_common", Some("FATAL"))]);
        tracing_subscriber::EnvFilter::try_new(l.directives()).expect("valid directives");
    }
}
