//! Storage backends of the jail manager: ZFS (the real one, iocage's layout, properties
//! as ZFS user properties) and a plain directory (properties in one file per jail).
//! Both offer the same operations and the same behaviour.

pub mod dir;
pub mod zfs;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

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
    use std::os::unix::fs::PermissionsExt;
    let m = std::fs::metadata(p).map_err(io_err(p))?;
    if m.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o700)).map_err(io_err(p))?;
    }
    Ok(())
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

/// Run a command, returning its stdout; a failure carries its stderr.
pub fn run(cmd: &mut Command) -> Result<String, StorageError> {
    let label = format!(
        "{} {}",
        cmd.get_program().to_string_lossy(),
        cmd.get_args()
            .map(|a| {
                // Keep errors short: a long argument (a property value) is cut.
                let a = a.to_string_lossy();
                if a.len() > 80 {
                    let mut end = 60;
                    while !a.is_char_boundary(end) {
                        end -= 1;
                    }
                    format!("{}...({} bytes)", &a[..end], a.len())
                } else {
                    a.into_owned()
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    );
    let out = cmd.output().map_err(|e| StorageError::Command {
        cmd: label.clone(),
        msg: e.to_string(),
    })?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(StorageError::Command {
            cmd: label,
            msg: if msg.is_empty() {
                format!("exited with {}", out.status)
            } else {
                msg
            },
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
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
}

/// A mount made on the host for a running jail, undone at stop.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MountRecord {
    pub target: PathBuf,
    pub what: String,
    /// For a mount inside a jail's root: the kernel's id of the mount (Linux mount id,
    /// FreeBSD fsid) and the root it was made in. Stop unmounts exactly that mount,
    /// wherever the jail moved it, and never anything outside the root.
    #[serde(default)]
    pub inside: Option<(u64, PathBuf)>,
}

pub trait Backend {
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
    /// Mounts the root needs on the host before start (an overlay on a directory
    /// backend); returned so stop undoes exactly them.
    fn mount_root(
        &self,
        uuid: &str,
        props: &BTreeMap<String, String>,
    ) -> Result<Vec<MountRecord>, StorageError>;
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

/// Copy a tree with `cp -a` (thick jails).
pub fn copy_tree(from: &Path, to: &Path) -> Result<(), StorageError> {
    std::fs::create_dir_all(to).map_err(io_err(to))?;
    run(Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", from.display()))
        .arg(to))
    .map(|_| ())
}

/// Is anything mounted at or below `path` on the host?
pub fn mounted_below(path: &Path) -> Vec<PathBuf> {
    let p = path.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4).map(PathBuf::from))
        .filter(|m| m.display().to_string() == p || m.starts_with(path))
        .collect()
}
