//! The manager's errors.

use crate::jail::JailError;
use crate::storage::StorageError;

use super::fetch::FetchError;
use super::props::PropError;

#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Prop(#[from] PropError),
    #[error(transparent)]
    Jail(#[from] JailError),
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("no jail matches \"{0}\" (a UUID, a unique UUID prefix or a TAG)")]
    NotFound(String),
    #[error("\"{key}\" matches several jails: {}", matches.join(", "))]
    Ambiguous { key: String, matches: Vec<String> },
    #[error("tag \"{tag}\" is already used by jail {uuid}")]
    TagInUse { tag: String, uuid: String },
    #[error("jail {0} is running; stop it first")]
    Running(String),
    #[error("jail {0} is not running")]
    NotRunning(String),
    #[error("jail {uuid} is corrupt: {why}")]
    Corrupt { uuid: String, why: String },
    #[error("jail {jail}: {step} failed: {msg}")]
    Step {
        jail: String,
        step: String,
        msg: String,
    },
    /// A step failed and undoing what was done before it failed too: both are kept.
    #[error("{error}; undoing it failed too: {}", cleanup.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Cleanup {
        error: Box<ManagerError>,
        cleanup: Vec<ManagerError>,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T> = std::result::Result<T, ManagerError>;

pub fn invalid(msg: impl Into<String>) -> ManagerError {
    ManagerError::Invalid(msg.into())
}

pub fn io_at(path: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> ManagerError {
    move |source| ManagerError::Io {
        path: path.to_string(),
        source,
    }
}

impl ManagerError {
    /// `self`, with the errors of the undo that followed it (if any).
    pub fn with_cleanup(self, cleanup: Vec<ManagerError>) -> ManagerError {
        if cleanup.is_empty() {
            self
        } else {
            ManagerError::Cleanup {
                error: Box::new(self),
                cleanup,
            }
        }
    }
}
