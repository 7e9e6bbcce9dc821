//! The daemon's pidfile, safe in directories that others can write to.
//!
//! The file is opened with `O_NOFOLLOW` (a planted symlink is refused, never
//! followed), must be a regular file owned by the daemon's user, and its directory
//! must be *safe*: owned by root or the daemon's user, and writable by nobody else
//! unless it is sticky (as `/tmp` and `/var/run` are). The lock is `flock(2)`, taken
//! without waiting: a held lock means another daemon, named in the error.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;

use super::DaemonError;
use crate::sys::unix as sys;

/// Why `dir` is not safe for a file the daemon creates, if it is not.
pub fn unsafe_dir(dir: &Path) -> Option<String> {
    let m = match std::fs::metadata(dir) {
        Ok(m) => m,
        Err(e) => return Some(format!("directory {}: {e}", dir.display())),
    };
    let me = sys::geteuid();
    if m.uid() != 0 && m.uid() != me {
        return Some(format!(
            "directory {} is owned by uid {}, not by root",
            dir.display(),
            m.uid()
        ));
    }
    let sticky = m.mode() & 0o1000 != 0;
    if m.mode() & 0o022 != 0 && !sticky {
        return Some(format!(
            "directory {} is writable by others (mode {:o}) and not sticky",
            dir.display(),
            m.mode() & 0o7777
        ));
    }
    None
}

fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

pub struct Pidfile {
    path: PathBuf,
    file: Option<File>,
    /// (dev, ino) of our file, to remove only what is still ours.
    id: (u64, u64),
}

impl Pidfile {
    pub fn open(path: &Path) -> Result<Pidfile, DaemonError> {
        let err = |source: std::io::Error| DaemonError::Pidfile {
            path: path.to_path_buf(),
            source,
        };
        if let Some(why) = unsafe_dir(&parent(path)) {
            return Err(err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!("{why}: refusing to keep a pidfile there"),
            )));
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).bits())
            .open(path)
            .map_err(|e| {
                // fs.protected_regular refuses O_CREAT on another user's file in a
                // sticky directory: say whose it is.
                if e.raw_os_error() == Some(Errno::EACCES as i32) {
                    if let Ok(m) = std::fs::symlink_metadata(path) {
                        if m.uid() != sys::geteuid() {
                            return err(std::io::Error::new(
                                std::io::ErrorKind::PermissionDenied,
                                format!(
                                    "is owned by uid {}, not by the daemon's user: remove it",
                                    m.uid()
                                ),
                            ));
                        }
                    }
                }
                if e.raw_os_error() == Some(Errno::ELOOP as i32) {
                    err(std::io::Error::new(
                        e.kind(),
                        "is a symbolic link: refusing to follow it",
                    ))
                } else {
                    err(e)
                }
            })?;
        let m = file.metadata().map_err(err)?;
        if !m.file_type().is_file() {
            return Err(err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "is not a regular file",
            )));
        }
        if m.nlink() != 1 {
            return Err(err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!("has {} hard links: refusing to write through it", m.nlink()),
            )));
        }
        if m.uid() != sys::geteuid() {
            return Err(err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!(
                    "is owned by uid {}, not by the daemon's user: remove it",
                    m.uid()
                ),
            )));
        }
        match sys::try_flock(file.as_raw_fd()) {
            Ok(true) => {}
            Ok(false) => {
                let mut s = String::new();
                let _ = (&file).read_to_string(&mut s);
                return Err(DaemonError::PidfileLocked {
                    path: path.to_path_buf(),
                    pid: s.trim().parse().ok(),
                });
            }
            Err(e) => return Err(err(e)),
        }
        Ok(Pidfile {
            path: path.to_path_buf(),
            file: Some(file),
            id: (m.dev(), m.ino()),
        })
    }

    /// Write our pid (after a fork, the child's).
    pub fn write(&mut self) -> std::io::Result<()> {
        let f = self.file.as_mut().expect("pidfile open");
        f.set_len(0)?;
        f.seek(SeekFrom::Start(0))?;
        writeln!(f, "{}", std::process::id())?;
        f.sync_all()
    }

    /// Close this process's descriptor without removing the file (the parent of a
    /// fork; the child keeps the lock).
    pub fn close(&mut self) {
        self.file = None;
    }
}

impl Drop for Pidfile {
    fn drop(&mut self) {
        if self.file.is_some() {
            let still_ours = std::fs::symlink_metadata(&self.path)
                .map(|m| (m.dev(), m.ino()) == self.id)
                .unwrap_or(false);
            if still_ours {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn unsafe_directories_are_named() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(unsafe_dir(d.path()), None);
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(unsafe_dir(d.path()).unwrap().contains("writable by others"));
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
        assert_eq!(unsafe_dir(d.path()), None);
    }

    #[test]
    fn symlinks_are_refused_and_the_lock_is_exclusive() {
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("target");
        std::fs::write(&target, "keep").unwrap();
        let link = d.path().join("link.pid");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = Pidfile::open(&link).err().unwrap().to_string();
        assert!(e.contains("symbolic link"), "{e}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
        let p = d.path().join("d.pid");
        let mut a = Pidfile::open(&p).unwrap();
        a.write().unwrap();
        let e = Pidfile::open(&p).err().unwrap().to_string();
        assert!(e.contains("locked"), "{e}");
        drop(a);
        assert!(!p.exists());
    }
}
