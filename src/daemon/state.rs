//! The state file: every registration (spec, id, counts) and every live probe's
//! identity (pid and start time), written atomically (temporary file, fsync, rename)
//! on every change, so that a new daemon finds the probes of the one before it.
//!
//! The directory is created 0700 and must belong to root (or the daemon's user) and
//! not be writable by group or others (no sticky exception); the file is opened
//! without following a link and must be the daemon's own regular file, one link,
//! mode 0600 or tighter: otherwise the daemon refuses to start. A lock file beside it
//! (`probes.json.lock`) is held for the daemon's life: two daemons never share one
//! state file. A state file that does not parse is renamed `.bad` and the daemon
//! starts empty (logged as an error). Pids from the file are never trusted alone: a
//! process is killed only if its start time matches too (see [`super::restore`]).

use std::fs;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use jaildaemon_proto::ProbeSpec;
use serde::{Deserialize, Serialize};

use crate::sys::unix as sys;

/// Default state file (FreeBSD).
pub const DEFAULT_STATE_FREEBSD: &str = "/var/db/jaildaemon/probes.json";
/// Default state file (Linux).
pub const DEFAULT_STATE_LINUX: &str = "/var/lib/jaildaemon/probes.json";
/// Version of the file's layout.
pub const STATE_VERSION: u32 = 1;
/// Largest state file read.
const MAX_STATE: u64 = 64 << 20;

/// The default state file of this OS.
pub fn default_path() -> PathBuf {
    PathBuf::from(match crate::sys::OS {
        crate::sys::Os::FreeBsd => DEFAULT_STATE_FREEBSD,
        crate::sys::Os::Linux => DEFAULT_STATE_LINUX,
    })
}

/// A live probe's identity: pid, start time ([`sys::process_start`]) and jail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedProcess {
    pub pid: i32,
    pub start: u64,
    pub jid: i32,
}

/// One registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedProbe {
    pub id: u64,
    pub spec: ProbeSpec,
    /// From the configuration file (reloaded with it), not from `jaildaemon -c`.
    #[serde(default)]
    pub declared: bool,
    pub triggers: u64,
    pub last_trigger: Option<u64>,
    #[serde(default)]
    pub coalesced: u64,
    pub process: Option<SavedProcess>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedState {
    pub version: u32,
    /// The boot the processes' identities belong to: on another boot they are gone
    /// (pids and start times repeat), never killed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot: Option<String>,
    pub probes: Vec<SavedProbe>,
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state file {}: {why}", path.display())]
    Unsafe { path: PathBuf, why: String },
    #[error("state file {} is in use by another jaildaemon (its lock {} is held)", path.display(), lock.display())]
    InUse { path: PathBuf, lock: PathBuf },
    #[error("state file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The daemon's state file, locked for its life.
pub struct StateFile {
    path: PathBuf,
    dir: PathBuf,
    _lock: fs::File,
    /// One write at a time (the temporary file's name is shared); true once the
    /// last write is done.
    writing: std::sync::Mutex<bool>,
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

impl StateFile {
    /// Create the directory (0700) if needed, check it, take the lock.
    pub fn open(path: &Path) -> Result<StateFile, StateError> {
        let io_err = |source| StateError::Io {
            path: path.to_path_buf(),
            source,
        };
        if path.file_name().is_none() {
            return Err(StateError::Unsafe {
                path: path.to_path_buf(),
                why: "not a file name".into(),
            });
        }
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        if !dir.exists() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(io_err)?;
        }
        if let Some(why) = super::trusted::strict_dir(&dir) {
            return Err(StateError::Unsafe {
                path: path.to_path_buf(),
                why,
            });
        }
        let lock_path = with_suffix(path, ".lock");
        let lock = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&lock_path)
            .map_err(io_err)?;
        use std::os::fd::AsRawFd;
        if !sys::try_flock(lock.as_raw_fd()).map_err(io_err)? {
            return Err(StateError::InUse {
                path: path.to_path_buf(),
                lock: lock_path,
            });
        }
        Ok(StateFile {
            path: path.to_path_buf(),
            dir,
            _lock: lock,
            writing: std::sync::Mutex::new(false),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The saved state; a missing file is an empty state, one that does not parse is
    /// renamed `.bad` (an error is logged) and the state is empty. A file that is not
    /// the daemon's own (a link, another owner, readable by others, two links) is an
    /// error: the daemon does not start on it.
    pub fn load(&self) -> Result<SavedState, StateError> {
        let data = match super::trusted::read(&self.path, super::trusted::STATE, MAX_STATE) {
            Ok(Some(d)) => d,
            Ok(None) => return Ok(SavedState::default()),
            Err(why) => {
                return Err(StateError::Unsafe {
                    path: self.path.clone(),
                    why: format!("{why}; refusing to start on it"),
                })
            }
        };
        let mut s = match parse(&data) {
            Ok(s) => s,
            Err(why) => return Ok(self.set_aside(&why)),
        };
        let now = crate::sys::os::boot_id();
        if s.boot.is_none() || s.boot != now {
            // another boot (or unknown): no process of the file can be alive
            for p in &mut s.probes {
                p.process = None;
            }
        }
        Ok(s)
    }

    fn set_aside(&self, why: &str) -> SavedState {
        let bad = with_suffix(&self.path, ".bad");
        let moved = fs::rename(&self.path, &bad);
        tracing::error!(state = %self.path.display(), error = why, kept_as = %bad.display(), renamed = moved.is_ok(), "the state file is unreadable: it is kept aside and the daemon starts without the registrations it held");
        SavedState::default()
    }

    /// Write the state: temporary file, fsync, rename.
    pub fn save(&self, state: &SavedState) -> std::io::Result<()> {
        let done = self.writing.lock().unwrap_or_else(|e| e.into_inner());
        if *done {
            return Ok(());
        }
        self.write(state)
    }

    /// The last write: after any write in flight, and no write after it.
    pub fn save_last(&self, state: &SavedState) -> std::io::Result<()> {
        let mut done = self.writing.lock().unwrap_or_else(|e| e.into_inner());
        *done = true;
        self.write(state)
    }

    fn write(&self, state: &SavedState) -> std::io::Result<()> {
        let mut state = state.clone();
        state.boot = crate::sys::os::boot_id();
        let data = serde_json::to_vec_pretty(&state).map_err(std::io::Error::other)?;
        let dir = fs::File::open(&self.dir)?;
        let name = self.path.file_name().expect("checked at open");
        sys::replace_in_dir(&dir.into(), name, &data, 0o600)
    }
}

/// Parse a state file's bytes.
pub fn parse(data: &[u8]) -> Result<SavedState, String> {
    let s: SavedState = serde_json::from_slice(data).map_err(|e| e.to_string())?;
    if s.version != STATE_VERSION {
        return Err(format!(
            "version {} (this daemon reads version {STATE_VERSION})",
            s.version
        ));
    }
    let mut ids = std::collections::BTreeSet::new();
    for p in &s.probes {
        if p.id == 0 || p.id >= 1 << 53 {
            return Err(format!("probe id {} is out of range (1 to 2^53-1)", p.id));
        }
        if !ids.insert(p.id) {
            return Err(format!("probe id {} appears twice", p.id));
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_bad_file_and_lock() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sub/probes.json");
        let f = StateFile::open(&p).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(d.path().join("sub"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        assert!(matches!(StateFile::open(&p), Err(StateError::InUse { .. })));
        assert_eq!(f.load().unwrap(), SavedState::default());
        let st = SavedState {
            version: STATE_VERSION,
            boot: crate::sys::os::boot_id(),
            probes: vec![SavedProbe {
                id: 7,
                spec: ProbeSpec {
                    command: "true".into(),
                    jail: "www".into(),
                    respawn: jaildaemon_proto::Respawn::AfterCommand,
                    uid: None,
                    gid: None,
                    title: Some("T".into()),
                    rate: None,
                    max_running: None,
                    wait: true,
                },
                declared: false,
                triggers: 3,
                last_trigger: Some(5),
                coalesced: 0,
                process: Some(SavedProcess {
                    pid: 10,
                    start: 99,
                    jid: 1,
                }),
            }],
        };
        f.save(&st).unwrap();
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(f.load().unwrap(), st);
        // another boot: the identities are dropped
        let mut other = st.clone();
        other.boot = Some("another-boot".into());
        f.save(&other).unwrap();
        let txt = fs::read_to_string(&p).unwrap().replace(
            &format!("{:?}", st.boot.clone().unwrap_or_default()),
            "\"another-boot\"",
        );
        fs::write(&p, txt).unwrap();
        assert!(f.load().unwrap().probes[0].process.is_none());
        // duplicate ids
        let mut dup = st.clone();
        dup.probes.push(dup.probes[0].clone());
        assert!(parse(&serde_json::to_vec(&dup).unwrap())
            .unwrap_err()
            .contains("appears twice"));
        fs::write(&p, b"{not json").unwrap();
        assert_eq!(f.load().unwrap(), SavedState::default());
        assert!(!p.exists());
        assert_eq!(
            fs::read(d.path().join("sub/probes.json.bad")).unwrap(),
            b"{not json"
        );
    }
}
