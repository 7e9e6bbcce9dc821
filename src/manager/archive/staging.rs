//! Staging entries in `images/` of one export or import run. Each run holds an
//! flock on its own `.run-NONCE.lock` for its whole life and names its entries
//! `.run-NONCE.*`; a sweep removes only the entries of runs whose lock it can take
//! (their creator is gone), never those of a run in progress.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::manager::error::{io_at, Result};
use crate::sys::unix as sys;

const PREFIX: &str = ".run-";

/// A run's staging area: entries `images/.run-NONCE.NAME`, removed when dropped.
pub struct Stage {
    dir: PathBuf,
    nonce: String,
    lock: PathBuf,
    _file: File,
}

impl Stage {
    /// A new run in `images` (its lock taken).
    pub fn new(images: &Path) -> Result<Stage> {
        loop {
            let nonce = crate::manager::create::new_uuid();
            let lock = images.join(format!("{PREFIX}{nonce}.lock"));
            let f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&lock)
                .map_err(io_at(lock.display()))?;
            sys::flock(f.as_raw_fd(), true).map_err(io_at(lock.display()))?;
            // a sweep may have taken and removed the file between create and flock
            let held = f.metadata().map_err(io_at(lock.display()))?;
            match std::fs::symlink_metadata(&lock) {
                Ok(m) if m.ino() == held.ino() && m.dev() == held.dev() => {
                    return Ok(Stage {
                        dir: images.to_path_buf(),
                        nonce,
                        lock,
                        _file: f,
                    })
                }
                _ => continue,
            }
        }
    }

    /// The path of this run's entry `name`.
    pub fn entry(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{PREFIX}{}.{name}", self.nonce))
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        remove_run(&self.dir, &self.nonce);
        let _ = std::fs::remove_file(&self.lock);
    }
}

/// Remove every entry of run `nonce` but its lock.
fn remove_run(dir: &Path, nonce: &str) {
    let lead = format!("{PREFIX}{nonce}.");
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if n.starts_with(&lead) && !n.ends_with(".lock") {
            let p = e.path();
            let _ = if p.symlink_metadata().is_ok_and(|m| m.is_dir()) {
                crate::sys::files::remove_tree(&p)
            } else {
                std::fs::remove_file(&p)
            };
        }
    }
}

/// Remove the leftovers of runs whose creator is gone (their lock is free or
/// missing); returns how many runs were swept.
pub fn sweep(dir: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut nonces: Vec<String> = rd
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            let rest = n.strip_prefix(PREFIX)?;
            Some(rest.split('.').next()?.to_string())
        })
        .filter(|n| !n.is_empty())
        .collect();
    nonces.sort();
    nonces.dedup();
    let mut swept = 0;
    for nonce in nonces {
        let lock = dir.join(format!("{PREFIX}{nonce}.lock"));
        let f = match File::open(&lock) {
            Ok(f) => f,
            // no lock: created before its lock? Never: the lock comes first; a run
            // whose lock is gone ended (or was swept) and only left entries.
            Err(_) => {
                remove_run(dir, &nonce);
                swept += 1;
                continue;
            }
        };
        if let Ok(true) = sys::try_flock(f.as_raw_fd()) {
            remove_run(dir, &nonce);
            let _ = std::fs::remove_file(&lock);
            swept += 1;
        }
    }
    swept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_run_is_not_swept_a_dead_one_is() {
        let d = tempfile::tempdir().unwrap();
        let live = Stage::new(d.path()).unwrap();
        std::fs::create_dir(live.entry("import.partial")).unwrap();
        std::fs::write(live.entry("import.partial").join("f"), "x").unwrap();
        // a dead run: its entries, its lock file not held
        std::fs::write(d.path().join(".run-dead.lock"), "").unwrap();
        std::fs::create_dir(d.path().join(".run-dead.export.partial")).unwrap();
        assert_eq!(sweep(d.path()), 1);
        assert!(live.entry("import.partial").join("f").exists());
        assert!(!d.path().join(".run-dead.export.partial").exists());
        assert!(!d.path().join(".run-dead.lock").exists());
        let e = live.entry("import.partial");
        drop(live);
        assert!(!e.exists());
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);
    }
}
