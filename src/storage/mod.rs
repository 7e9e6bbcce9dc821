//! Storage backends of the jail manager: ZFS (the real one, iocage's layout, properties
//! as ZFS user properties) and a plain directory (properties in one file per jail).
//! Both offer the same operations and the same behaviour.

pub mod basejail;
pub mod dir;
pub mod snap;
pub mod zfs;

pub use snap::{check_snap_name, SnapInfo, Snapshots};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Prefix of iocage's ZFS user properties.
pub const PROP_PREFIX: &str = "org.freebsd.iocage:";
/// The folders (datasets) of the layout, under the root (`POOL/iocage`).
pub const LAYOUT: [&str; 6] = [
    "jails",
    "releases",
    "templates",
    "download",
    "images",
    "log",
];
/// Make a layout folder private (mode 0700): a jail's root holds files its root made,
/// setuid-root ones included, which no other host user may reach (jail(8) gives the
/// same advice for FreeBSD jail directories).
pub fn make_private(p: &std::path::Path) -> Result<(), StorageError> {
    crate::sys::files::make_private(p).map_err(io_err(p))
}

/// Refuse a release name that is not one plain path component (a dataset name too):
/// nothing that could climb out of `releases/` (`/`, a leading `.`) or inject
/// options or extra layers into an overlay or nullfs mount (`,`, `:`), no `@`,
/// blanks or control characters. Every release path is built through it.
pub fn check_release_name(name: &str) -> Result<(), StorageError> {
    let ok = !name.is_empty()
        && name.len() <= 200
        && !name.starts_with('.')
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+'));
    if ok {
        Ok(())
    } else {
        Err(StorageError::Invalid(format!(
            "release name \"{}\": a release is one plain name of letters, digits, '-', '_', '.' and '+' (not first '.' or '-')",
            name.escape_debug()
        )))
    }
}

/// Marker property of a jail whose creation has not finished.
pub const INCOMPLETE: &str = "jailctl_incomplete";

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{cmd}: {msg}")]
    Command { cmd: String, msg: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

pub fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StorageError + '_ {
    move |source| StorageError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl From<crate::sys::tool::ToolError> for StorageError {
    fn from(e: crate::sys::tool::ToolError) -> StorageError {
        StorageError::Command {
            cmd: e.cmd,
            msg: e.msg,
        }
    }
}

/// One jail as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub uuid: String,
    pub props: BTreeMap<String, String>,
    /// Why this jail cannot be used (unreadable or corrupt configuration).
    pub problem: Option<String>,
    /// Creation did not finish.
    pub incomplete: bool,
}

/// What a new jail's root is made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    /// A thin jail sharing a fetched release (ZFS clone, or an overlay on Linux).
    Release(String),
    /// A full copy of a release.
    Thick(String),
    /// An empty root (`create -e`).
    Empty,
    /// The jail's own files from snapshot `snap` of jail `uuid` (`clone`): a ZFS
    /// clone, or a copy (copy-on-write where the file system can) on the directory
    /// backend; `thin` when they are a thin jail's changes over its release.
    Clone {
        uuid: String,
        snap: String,
        thin: bool,
    },
    /// The files extracted by `import` into `dir` (moved or copied into place):
    /// the root, or (`thin`) a thin jail's changes over its release.
    Files {
        dir: PathBuf,
        thin: bool,
        release: String,
    },
}

/// How a jail's root is built before start; the lifecycle makes the mounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootLayout {
    /// The root is in place (a dataset, a full copy, an empty root): nothing to mount.
    InPlace,
    /// A thin jail: the release's root (`lower`, read-only), the jail's own changes in
    /// `upper` (with `work`, the overlay's work directory), seen together at `target`
    /// (Linux: an overlay). On FreeBSD the root at `target` is the jail's own and
    /// writable, and the release's `shared` base directories are mounted read-only
    /// into it (see [`basejail`]).
    Thin {
        release: String,
        lower: PathBuf,
        upper: PathBuf,
        work: PathBuf,
        target: PathBuf,
        shared: Vec<PathBuf>,
    },
}

pub trait Backend: Snapshots {
    /// `zfs:POOL` or `dir:/path`.
    fn describe(&self) -> String;
    /// Create the layout (jails, releases, templates, download, images, log).
    fn ensure_layout(&self) -> Result<(), StorageError>;
    /// Every jail with all its properties, in one read.
    fn list_jails(&self) -> Result<Vec<Record>, StorageError>;
    /// One jail by its exact UUID, without reading the others.
    fn read_jail(&self, uuid: &str) -> Result<Option<Record>, StorageError> {
        Ok(self.list_jails()?.into_iter().find(|r| r.uuid == uuid))
    }
    /// Create a jail's storage with its properties; the jail is marked incomplete
    /// until [`Backend::finish_jail`].
    fn create_jail(
        &self,
        uuid: &str,
        props: &BTreeMap<String, String>,
        base: &Base,
    ) -> Result<(), StorageError>;
    fn finish_jail(&self, uuid: &str) -> Result<(), StorageError>;
    /// Set one property of a jail (the caller holds the jail's lock).
    fn set_prop(&self, uuid: &str, key: &str, value: &str) -> Result<(), StorageError> {
        let Some(r) = self.read_jail(uuid)? else {
            return Err(StorageError::Invalid(format!("jail {uuid} does not exist")));
        };
        let mut new = r.props.clone();
        new.insert(key.to_string(), value.to_string());
        self.write_props(uuid, &r.props, &new)
    }
    /// The jails present, without reading their properties, each with a stamp that
    /// changes whenever its properties may have (`None`: none can be given; read it).
    /// `None` when the backend has no such cheap census.
    fn census(&self) -> Result<Option<Vec<(String, Option<String>)>>, StorageError> {
        Ok(None)
    }
    /// The census stamp of one jail (as [`Backend::census`] gives it), without a
    /// census of them all where the backend can.
    fn census_stamp(&self, uuid: &str) -> Option<String> {
        self.census()
            .ok()
            .flatten()?
            .into_iter()
            .find(|(u, _)| u == uuid)
            .and_then(|(_, s)| s)
    }
    /// Replace the stored properties of a jail with `props` (validated by the caller).
    fn write_props(
        &self,
        uuid: &str,
        old: &BTreeMap<String, String>,
        props: &BTreeMap<String, String>,
    ) -> Result<(), StorageError>;
    fn destroy_jail(&self, uuid: &str) -> Result<(), StorageError>;
    /// The jail's own directory (where `fstab` and the console log live).
    fn jail_dir(&self, uuid: &str) -> Result<PathBuf, StorageError>;
    /// The jail's root directory.
    fn root_dir(&self, uuid: &str) -> Result<PathBuf, StorageError>;
    /// How the jail's root is built (the lifecycle mounts what it needs).
    fn root_layout(
        &self,
        uuid: &str,
        props: &BTreeMap<String, String>,
    ) -> Result<RootLayout, StorageError>;
    fn releases(&self) -> Result<Vec<String>, StorageError>;
    /// A fresh, empty *staging* root to extract release `name` into; an existing
    /// release of that name is not touched.
    fn begin_release(&self, name: &str) -> Result<PathBuf, StorageError>;
    /// Swap the staged release in for `name` (replacing an existing one only now).
    fn commit_release(&self, name: &str) -> Result<(), StorageError>;
    /// Remove the staging area of `name`; the release itself stays as it was.
    fn drop_release(&self, name: &str) -> Result<(), StorageError>;
    /// Remove every staging area left by an interrupted fetch (call under the global
    /// lock); returns what was removed.
    fn sweep_staging(&self) -> Result<Vec<String>, StorageError>;
    fn release_root(&self, name: &str) -> Result<PathBuf, StorageError>;
    fn defaults(&self) -> Result<BTreeMap<String, String>, StorageError>;
    fn write_defaults(
        &self,
        old: &BTreeMap<String, String>,
        new: &BTreeMap<String, String>,
    ) -> Result<(), StorageError>;
    /// `clean`: destroy all jails (`jails`), releases, templates, or everything.
    fn clean(&self, what: &str) -> Result<(), StorageError>;
    /// Base directory (mountpoint of POOL/iocage, or the root directory).
    fn base_dir(&self) -> Result<PathBuf, StorageError>;
}
