//! The common crate error type.
//!
//! One enum for everything the shared crate can fail at: reading and validating
//! configuration, talking to ZooKeeper, and the small Kafka client. Messages name
//! the offending key / path / API so an operator can act on them.

use std::io;

/// Errors raised by the shared pieces (config, ZooKeeper session and znodes, admin helpers, client).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    // ---- configuration ----
    /// A config file could not be read.
    #[error("cannot read config file {path}: {source}")]
    ConfigFile {
        path: String,
        #[source]
        source: io::Error,
    },
    /// A config value failed to parse or validate; `key` is the server.properties name.
    #[error("Invalid value {value} for configuration {key}: {reason}")]
    InvalidConfig {
        key: String,
        value: String,
        reason: String,
    },
    /// A required key has no value (e.g. `zookeeper.connect`).
    #[error("Missing required configuration \"{0}\" which has no default value.")]
    MissingConfig(String),
    /// A malformed `--override` argument or properties line.
    #[error("malformed property: {0}")]
    Properties(String),

    // ---- ZooKeeper ----
    /// A ZooKeeper operation failed (connection loss, NONODE, NODEEXISTS, BADVERSION ...).
    #[error("zookeeper error on {path}: {source}")]
    Zk {
        path: String,
        #[source]
        source: zookeeper_client::Error,
    },
    /// A ZooKeeper operation without a single path (connect, multi) failed.
    #[error("zookeeper error: {0}")]
    ZkSession(#[from] zookeeper_client::Error),
    /// A znode holds bytes we cannot decode; names the znode so a human can look.
    #[error("invalid znode {path}: {reason}")]
    InvalidZnode { path: String, reason: String },
    /// The controller epoch zkVersion check of a fenced write failed: another controller took over.
    #[error("controller moved (epoch zkVersion check failed)")]
    ControllerMoved,
    /// The ZooKeeper session expired; callers must re-register with a fresh session.
    #[error("zookeeper session expired")]
    SessionExpired,
    /// A topic name or request argument is not valid.
    #[error("{0}")]
    InvalidArgument(String),

    // ---- Kafka client ----
    /// Could not connect to a Kafka endpoint.
    #[error("cannot connect to {addr}: {message}")]
    Connect { addr: String, message: String },
    /// A request or connect did not finish in time.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The connection to a Kafka endpoint closed (possibly mid-request).
    #[error("connection to {0} closed")]
    Disconnected(String),
    /// A frame or message could not be encoded/decoded.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The peer does not support the API/version we need.
    #[error("unsupported version: {0}")]
    UnsupportedVersion(String),
    /// Plain I/O.
    #[error(transparent)]
    Io(#[from] io::Error),

    /// A Kafka `ApiException` raised by an admin helper (`zk::admin`): the error code a client
    /// sees (e.g. 36 TOPIC_ALREADY_EXISTS) and Kafka's message.
    #[error("{message}")]
    Api { code: i16, message: String },

    /// Other failures with a message.
    #[error("{0}")]
    Other(String),
}

impl Error {
    /// Shorthand for a config validation failure.
    pub fn invalid(key: &str, value: &str, reason: impl Into<String>) -> Self {
        Error::InvalidConfig {
            key: key.to_string(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    /// A Kafka API error with its wire code.
    pub fn api(code: i16, message: impl Into<String>) -> Self {
        Error::Api {
            code,
            message: message.into(),
        }
    }

    /// The Kafka error code of an [`Error::Api`].
    pub fn api_code(&self) -> Option<i16> {
        match self {
            Error::Api { code, .. } => Some(*code),
            _ => None,
        }
    }

    pub fn zk(path: impl Into<String>, source: zookeeper_client::Error) -> Self {
        Error::Zk {
            path: path.into(),
            source,
        }
    }

    /// The underlying ZooKeeper error, if any (for NONODE/NODEEXISTS/BADVERSION matching).
    pub fn zk_code(&self) -> Option<&zookeeper_client::Error> {
        match self {
            Error::Zk { source, .. } => Some(source),
            Error::ZkSession(e) => Some(e),
            _ => None,
        }
    }

    pub fn is_no_node(&self) -> bool {
        matches!(self.zk_code(), Some(zookeeper_client::Error::NoNode))
    }

    pub fn is_node_exists(&self) -> bool {
        matches!(self.zk_code(), Some(zookeeper_client::Error::NodeExists))
    }

    pub fn is_bad_version(&self) -> bool {
        matches!(self.zk_code(), Some(zookeeper_client::Error::BadVersion))
    }
}

/// Result alias for the common crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
