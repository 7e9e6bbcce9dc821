//! Why the registry refuses a registration or a removal.

use crate::jail;
use crate::probe::ProbeError;

/// Why a registration or a removal was refused.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The spec does not validate.
    #[error("{0}")]
    Invalid(String),
    #[error("jaildaemon is shutting down")]
    ShuttingDown,
    #[error("jaildaemon holds {0} probes, its capacity (one descriptor each; raise the daemon's descriptor limit, e.g. LimitNOFILE)")]
    Full(usize),
    #[error("jail {0} does not exist")]
    NoSuchJail(String),
    #[error("jail {jail}: {source}")]
    Jail {
        jail: String,
        source: jail::JailError,
    },
    #[error(transparent)]
    Probe(#[from] ProbeError),
    #[error("no probe with id {0}")]
    NoSuchProbe(u64),
    #[error("probe {0} is already going away")]
    GoingAway(u64),
    #[error("probe {0}: removal timed out")]
    RemoveTimeout(u64),
    #[error(
        "jail {jail} already has a probe titled {title} (probe {id}); titles are unique in a jail"
    )]
    DuplicateTitle {
        jail: String,
        title: String,
        id: u64,
    },
}
