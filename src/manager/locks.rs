//! Locks: one per jail (serialises its lifecycle commands) and one per backend (tag
//! allocation, releases), as flock(2)s on files in the run directory.

use std::fs::{self, File, OpenOptions};
use std::os::fd::AsRawFd;

use super::error::{io_at, Result};
use super::Manager;
use crate::sys::unix as sys;

/// An flock held until dropped.
pub struct Lock(#[allow(dead_code)] File);

impl Manager {
    fn lock_file(&self, name: &str) -> Result<File> {
        let dir = self.run.join("locks");
        fs::create_dir_all(&dir).map_err(io_at(dir.display()))?;
        let p = dir.join(format!("{name}.lock"));
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .map_err(io_at(p.display()))
    }

    /// The per-jail lock (waits).
    pub(super) fn lock_jail(&self, uuid: &str) -> Result<Lock> {
        let f = self.lock_file(uuid)?;
        sys::flock(f.as_raw_fd(), true).map_err(io_at(format!("lock of {uuid}")))?;
        Ok(Lock(f))
    }

    /// The jail's lock if nobody holds it (without waiting).
    pub(super) fn try_lock_jail(&self, uuid: &str) -> Option<Lock> {
        let f = self.lock_file(uuid).ok()?;
        match sys::try_flock(f.as_raw_fd()) {
            Ok(true) => Some(Lock(f)),
            _ => None,
        }
    }

    /// Is the jail's lock free (nobody carries out a command on it)?
    pub(super) fn lock_is_free(&self, uuid: &str) -> bool {
        self.try_lock_jail(uuid).is_some()
    }

    /// This backend's name as a file name (`dir:/var/db/x` → `dir__var_db_x`).
    pub(super) fn backend_key(&self) -> String {
        self.backend
            .describe()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect()
    }

    /// The lock of tag allocation, if nobody holds it (this process included, through
    /// another descriptor).
    pub(super) fn try_lock_global(&self) -> Option<Lock> {
        let f = self
            .lock_file(&format!(".global-{}", self.backend_key()))
            .ok()?;
        match sys::try_flock(f.as_raw_fd()) {
            Ok(true) => Some(Lock(f)),
            _ => None,
        }
    }

    /// The lock of tag allocation on this backend (waits).
    pub(super) fn lock_global(&self) -> Result<Lock> {
        let f = self.lock_file(&format!(".global-{}", self.backend_key()))?;
        sys::flock(f.as_raw_fd(), true).map_err(io_at("global lock"))?;
        Ok(Lock(f))
    }
}
