//! Runtime state of a started jail: what start made (mounts, the jail), so that stop
//! removes exactly that; and the phase of a start or stop under way. Kept in the
//! run directory (`/run/jailctl/state/UUID.json`): it describes this boot only.

use std::fs;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::error::{io_at, Result};
use super::Manager;

/// A mount made on the host for a running jail, undone at stop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountRecord {
    pub target: PathBuf,
    pub what: String,
    /// For a mount inside a jail's root: the kernel's id of the mount (Linux mount id,
    /// FreeBSD fsid) and the root it was made in. Stop unmounts exactly that mount,
    /// wherever the jail moved it, and never anything outside the root.
    #[serde(default)]
    pub inside: Option<(u64, PathBuf)>,
}

/// A phase of the lifecycle under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Starting,
    Stopping,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::Stopping => "stopping",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunState {
    /// In the order they were made.
    pub mounts: Vec<MountRecord>,
    pub jid: Option<i32>,
    /// Network objects start made (interfaces, bridges, aliases), in that order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub net: Vec<super::lifecycle::net::NetRecord>,
    /// Recorded before the first step of a start or stop, cleared after its last.
    /// Found with the jail's lock free, it marks an interrupted start or stop, which
    /// the next command finishes (by stopping).
    #[serde(default)]
    pub phase: Option<Phase>,
    /// The boot it was recorded in: a state from an earlier boot describes nothing
    /// that still exists (a host whose run directory survives a reboot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot: Option<String>,
    /// The resource limits applied (cgroups, rctl rules), removed at stop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<crate::sys::limits::Applied>,
}

impl RunState {
    /// This state if it was recorded in boot `now`; a state without a boot (written
    /// by an earlier jailctl) is taken as current.
    pub fn current(self, now: Option<&str>) -> RunState {
        match (&self.boot, now) {
            (Some(b), Some(n)) if b != n => RunState::default(),
            _ => self,
        }
    }
}

impl Manager {
    fn state_path(&self, uuid: &str) -> PathBuf {
        self.run.join("state").join(format!("{uuid}.json"))
    }

    pub(super) fn read_state(&self, uuid: &str) -> RunState {
        fs::read(self.state_path(uuid))
            .ok()
            .and_then(|b| serde_json::from_slice::<RunState>(&b).ok())
            .unwrap_or_default()
            .current(crate::sys::os::boot_id().as_deref())
    }

    pub(super) fn write_state(&self, uuid: &str, st: &RunState) -> Result<()> {
        let p = self.state_path(uuid);
        let dir = self.run.join("state");
        fs::create_dir_all(&dir).map_err(io_at(dir.display()))?;
        let st = RunState {
            boot: crate::sys::os::boot_id(),
            ..st.clone()
        };
        crate::sys::files::write_atomic(&p, &serde_json::to_vec(&st).expect("json"))
            .map_err(io_at(p.display()))
    }

    /// Remove the run states of earlier boots (at `rcboot`): what they recorded is
    /// gone with the reboot. Returns the jails whose state went.
    pub fn sweep_stale_states(&self) -> Vec<String> {
        let now = crate::sys::os::boot_id();
        let Ok(rd) = fs::read_dir(self.run.join("state")) else {
            return vec![];
        };
        let mut gone = Vec::new();
        for e in rd.flatten() {
            let p = e.path();
            let Some(uuid) = p.file_stem().map(|s| s.to_string_lossy().into_owned()) else {
                continue;
            };
            let stale = fs::read(&p)
                .ok()
                .and_then(|b| serde_json::from_slice::<RunState>(&b).ok())
                .is_some_and(|st| st.boot.is_some() && st.boot != now);
            if stale && self.lock_is_free(&uuid) && fs::remove_file(&p).is_ok() {
                gone.push(uuid);
            }
        }
        gone
    }

    pub(super) fn forget_state(&self, uuid: &str) {
        let p = self.state_path(uuid);
        if let Err(e) = fs::remove_file(&p) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(path = %p.display(), error = %e, "could not remove a run state");
            }
        }
    }

    /// The phase recorded for a jail, and whether it was interrupted (nobody holds
    /// the jail's lock, so nobody is carrying it out): for `list`.
    pub fn phase(&self, uuid: &str) -> Option<(String, bool)> {
        let phase = self.read_state(uuid).phase?;
        Some((phase.as_str().to_string(), self.lock_is_free(uuid)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_file_format_is_kept() {
        // what a jailctl of the previous layout wrote for a running jail
        let old = br#"{"mounts":[{"target":"/j/root","what":"release r","inside":null}],"jid":3,"phase":"starting"}"#;
        let st: RunState = serde_json::from_slice(old).unwrap();
        assert_eq!(st.jid, Some(3));
        assert_eq!(st.phase, Some(Phase::Starting));
        assert_eq!(st.mounts[0].what, "release r");
        let st: RunState = serde_json::from_slice(br#"{"mounts":[],"jid":null}"#).unwrap();
        assert_eq!(st.phase, None);
        // no boot recorded: taken as this boot's
        assert_eq!(st.clone().current(Some("b")), st);
    }

    #[test]
    fn a_state_of_an_earlier_boot_is_void() {
        let st = RunState {
            mounts: vec![],
            jid: Some(4),
            net: vec![],
            phase: Some(Phase::Stopping),
            boot: Some("1700000000.000001".into()),
            limits: None,
        };
        assert_eq!(st.clone().current(Some("1700000000.000001")), st);
        assert_eq!(st.current(Some("1710000000.123456")), RunState::default());
    }
}
