//! Snapshots of a jail, on both backends. ZFS: real snapshots of `jails/UUID/root`
//! (`-r`: of `jails/UUID` and its children, the configuration with them). Directory
//! backend: `jails/UUID/snapshots/NAME/` holding a copy of the jail's own data (its
//! root, or a thin jail's `upper/`), copy-on-write where the file system can, and the
//! configuration (`config.json`) when recursive.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::StorageError;

/// One snapshot as `snaplist` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SnapInfo {
    pub name: String,
    /// Seconds since the epoch.
    pub created: i64,
    /// Bytes the snapshot refers to (RSIZE).
    pub rsize: u64,
    /// Bytes only the snapshot holds (USED); on the directory backend, its copy's size.
    pub used: u64,
    /// Taken with `-r`: the configuration is in it.
    pub recursive: bool,
    /// Creation order (ZFS: the creation txg; directory backend: nanoseconds since
    /// the epoch): snapshots taken in the same second still sort as taken.
    pub order: u64,
}

/// Accepted snapshot names: what ZFS accepts in a snapshot name, minus what a path
/// or a command line would read otherwise.
pub fn check_snap_name(n: &str) -> Result<(), StorageError> {
    let ok = !n.is_empty()
        && n.len() <= 200
        && !n.starts_with('.')
        && !n.starts_with('-')
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.'));
    if ok {
        Ok(())
    } else {
        Err(StorageError::Invalid(format!(
            "snapshot name \"{n}\": use letters, digits, '-', '_', ':' and '.', not first '.' or '-', at most 200"
        )))
    }
}

pub trait Snapshots {
    /// Take snapshot `name` of the jail (`recursive`: with its configuration, whose
    /// current value is `props`).
    fn snapshot(
        &self,
        uuid: &str,
        name: &str,
        recursive: bool,
        props: &BTreeMap<String, String>,
    ) -> Result<(), StorageError>;
    /// The jail's snapshots, oldest first.
    fn snapshots(&self, uuid: &str) -> Result<Vec<SnapInfo>, StorageError>;
    fn remove_snapshot(&self, uuid: &str, name: &str) -> Result<(), StorageError>;
    /// Roll the jail back to `name`, destroying the later snapshots; returns the
    /// configuration stored in a recursive snapshot (for the caller to write back).
    fn rollback(
        &self,
        uuid: &str,
        name: &str,
    ) -> Result<Option<BTreeMap<String, String>>, StorageError>;
    /// The directory holding the snapshot's files (mounted read-only by `snapmount`).
    fn snapshot_dir(&self, uuid: &str, name: &str) -> Result<PathBuf, StorageError>;
    /// Release what [`Snapshots::snapshot_dir`] made (ZFS: a clone for mounting).
    fn snapshot_dir_done(&self, uuid: &str, name: &str) -> Result<(), StorageError>;
    /// `promote`: the clone `uuid` stops depending on the snapshot `origin_uuid@name`,
    /// which moves to it.
    fn promote(&self, uuid: &str, origin_uuid: &str, name: &str) -> Result<(), StorageError>;
    /// Where the jail's own files are: its root, or a thin jail's changes (`upper`).
    fn data_dir(
        &self,
        uuid: &str,
        props: &BTreeMap<String, String>,
    ) -> Result<PathBuf, StorageError>;
    /// Can a snapshot be taken while the jail runs? (ZFS: atomic in the kernel. The
    /// directory backend copies the tree by path, which a running jail could steer
    /// with links swapped under the copy.)
    fn snapshots_while_running(&self) -> bool {
        true
    }
    /// Remove leftovers of an interrupted snapshot or rollback of the jail.
    fn sweep_snapshots(&self, _uuid: &str) -> Result<(), StorageError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_names() {
        for good in ["ioc-2026-11-23_10:00:00", "before.upgrade", "a"] {
            assert!(check_snap_name(good).is_ok(), "{good}");
        }
        for bad in ["", ".x", "-r", "a/b", "a@b", "a b", "../x"] {
            assert!(check_snap_name(bad).is_err(), "{bad}");
        }
    }
}
