//! The controller crate error type.

/// Why a controller action failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A ZooKeeper read or write failed.
    #[error(transparent)]
    Zk(#[from] samsa_common::error::Error),
    /// Our fenced write failed its `/controller_epoch` check: another controller was elected.
    #[error("controller moved")]
    ControllerMoved,
    /// A znode changed under us (BADVERSION) more times than we retry.
    #[error("conflicting update of {0}")]
    Conflict(String),
    /// The controller task is gone (broker shutting down).
    #[error("controller is not running")]
    NotRunning,
}

impl Error {
    /// True when the failure means we lost controllership.
    pub fn is_controller_moved(&self) -> bool {
        match self {
            Error::ControllerMoved => true,
            Error::Zk(e) => matches!(e, samsa_common::error::Error::ControllerMoved),
            _ => false,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
