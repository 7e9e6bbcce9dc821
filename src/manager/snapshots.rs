//! `snapshot`, `snaplist`, `snapremove`, `rollback`, `snapmount`, `snapumount`: a
//! jail's snapshots on either backend (see [`crate::storage::snap`]).

use std::path::{Path, PathBuf};

use super::error::{invalid, io_at, ManagerError, Result};
use super::{Jail, Manager};
use crate::storage::{check_snap_name, SnapInfo};

/// Prefix of the snapshots `clone` takes itself (removed with their last clone).
pub const AUTO_PREFIX: &str = "clone-";

/// `UUID|TAG[@NAME]` split at its last '@'.
pub fn split_at(arg: &str) -> (&str, Option<&str>) {
    match arg.rsplit_once('@') {
        Some((j, n)) => (j, Some(n)),
        None => (arg, None),
    }
}

/// `ioc-YYYY-MM-DD_HH:MM:SS`.
fn default_name() -> String {
    format!("ioc-{}", super::timestamp().replace('@', "_"))
}

impl Manager {
    fn snap_target(&self, arg: &str) -> Result<(Jail, String)> {
        let (key, name) = split_at(arg);
        let Some(name) = name else {
            return Err(invalid(format!(
                "\"{arg}\": give the snapshot as UUID|TAG@NAME"
            )));
        };
        check_snap_name(name)?;
        Ok((self.resolve(key)?, name.to_string()))
    }

    fn stopped(&self, j: &Jail) -> Result<()> {
        if self.is_running(j).is_some() {
            return Err(ManagerError::Running(j.label()));
        }
        Ok(())
    }

    /// `snapshot [-r] UUID|TAG[@NAME]`: the name taken.
    pub fn snapshot(&self, arg: &str, recursive: bool) -> Result<(String, String)> {
        let (key, name) = split_at(arg);
        let j = self.resolve(key)?;
        let _l = self.lock_jail(&j.uuid)?;
        let j = self.reread(&j)?;
        if !self.backend.snapshots_while_running() && self.is_running(&j).is_some() {
            return Err(invalid(format!(
                "jail {} is running: the directory backend copies its files by path, which a running jail could redirect to host files; stop it first (a clone of its current state likewise)",
                j.label()
            )));
        }
        self.backend.sweep_snapshots(&j.uuid)?;
        let have: Vec<String> = self
            .backend
            .snapshots(&j.uuid)?
            .into_iter()
            .map(|s| s.name)
            .collect();
        let name = match name {
            Some(n) => {
                check_snap_name(n)?;
                if have.iter().any(|h| h == n) {
                    return Err(invalid(format!("{} already has a snapshot {n}", j.label())));
                }
                n.to_string()
            }
            None => {
                let base = default_name();
                let mut n = base.clone();
                let mut i = 1;
                while have.contains(&n) {
                    i += 1;
                    n = format!("{base}.{i}");
                }
                n
            }
        };
        self.backend
            .snapshot(&j.uuid, &name, recursive, &j.stored)?;
        Ok((j.uuid, name))
    }

    /// `snaplist UUID|TAG`, oldest first.
    pub fn snaplist(&self, key: &str) -> Result<Vec<SnapInfo>> {
        let j = self.resolve(key)?;
        Ok(self.backend.snapshots(&j.uuid)?)
    }

    /// The jails cloned from snapshot `name` of `uuid`.
    pub(super) fn clones_of_snapshot(&self, uuid: &str, name: &str) -> Result<Vec<Jail>> {
        let origin = format!("{uuid}@{name}");
        Ok(self
            .jails()?
            .into_iter()
            .filter(|j| j.stored.get("origin") == Some(&origin))
            .collect())
    }

    fn refuse_if_cloned(&self, j: &Jail, name: &str) -> Result<()> {
        let c = self.clones_of_snapshot(&j.uuid, name)?;
        if !c.is_empty() {
            return Err(invalid(format!(
                "snapshot {name} of {} is the origin of {}: destroy or promote them first",
                j.label(),
                c.iter().map(Jail::label).collect::<Vec<_>>().join(", ")
            )));
        }
        Ok(())
    }

    /// `snapremove UUID|TAG@NAME` (NAME `ALL`: every snapshot): the names removed.
    pub fn snapremove(&self, arg: &str) -> Result<Vec<String>> {
        let (key, name) = split_at(arg);
        let j = self.resolve(key)?;
        let _l = self.lock_jail(&j.uuid)?;
        let names: Vec<String> = match name {
            Some("ALL") => self
                .backend
                .snapshots(&j.uuid)?
                .into_iter()
                .map(|s| s.name)
                .collect(),
            Some(n) => vec![n.to_string()],
            None => {
                return Err(invalid(format!(
                    "snapremove: give UUID|TAG@NAME or UUID|TAG@ALL, not \"{arg}\""
                )))
            }
        };
        for n in &names {
            check_snap_name(n)?;
            self.refuse_if_cloned(&j, n)?;
        }
        for n in &names {
            self.backend.remove_snapshot(&j.uuid, n)?;
        }
        Ok(names)
    }

    /// The snapshots a rollback to `UUID|TAG@NAME` destroys (those taken after it).
    pub fn rollback_plan(&self, arg: &str) -> Result<Vec<String>> {
        let (j, name) = self.snap_target(arg)?;
        let all = self.backend.snapshots(&j.uuid)?;
        let Some(i) = all.iter().position(|s| s.name == name) else {
            return Err(invalid(format!("{} has no snapshot {name}", j.label())));
        };
        Ok(all[i + 1..].iter().map(|s| s.name.clone()).collect())
    }

    /// `rollback UUID|TAG@NAME`: the jail stopped; the later snapshots are destroyed;
    /// with a recursive snapshot its configuration comes back too (UUID and TAG kept).
    pub fn rollback(&self, arg: &str) -> Result<Vec<String>> {
        let (j, name) = self.snap_target(arg)?;
        let _l = self.lock_jail(&j.uuid)?;
        let j = self.reread(&j)?;
        self.stopped(&j)?;
        let later = self.rollback_plan(arg)?;
        for n in &later {
            self.refuse_if_cloned(&j, n)?;
        }
        if let Some(mut saved) = self.backend.rollback(&j.uuid, &name)? {
            for k in ["uuid", "tag", "origin"] {
                match j.stored.get(k) {
                    Some(v) => saved.insert(k.to_string(), v.clone()),
                    None => saved.remove(k),
                };
            }
            self.backend.write_props(&j.uuid, &j.stored, &saved)?;
        }
        Ok(later)
    }

    fn snapmount_record(&self, uuid: &str, name: &str) -> PathBuf {
        self.run.join("snapmounts").join(format!("{uuid}@{name}"))
    }

    /// `snapmount UUID|TAG@NAME DESTINATION`: the snapshot's files at DESTINATION
    /// (an existing empty directory of the host that only root can change, outside
    /// the layout), mounted read-only, nosuid, nodev and noexec in one step: the
    /// files came from the jail, whose root may have made them setuid root.
    pub fn snapmount(&self, arg: &str, dest: &Path) -> Result<PathBuf> {
        let (j, name) = self.snap_target(arg)?;
        let _l = self.lock_jail(&j.uuid)?;
        if !dest.is_absolute() {
            return Err(invalid(format!(
                "snapmount: {}: give an absolute path",
                dest.display()
            )));
        }
        let dest = crate::sys::snapio::check_root_only_dir(dest).map_err(|e| {
            invalid(format!(
                "snapmount: {e}: give a directory only root can change"
            ))
        })?;
        let base = self.backend.base_dir()?;
        let base = std::fs::canonicalize(&base).unwrap_or(base);
        if dest.starts_with(&base) || base.starts_with(&dest) {
            return Err(invalid(format!(
                "snapmount: {} is inside jailctl's layout {} (a jail's root?): give a directory outside it",
                dest.display(),
                base.display()
            )));
        }
        // nor in the root of any other jail (made with `jail create path=...`)
        for k in crate::jail::list().unwrap_or_default() {
            let Some(p) = k.param("path").filter(|p| *p != "/") else {
                continue;
            };
            let p = std::fs::canonicalize(p).unwrap_or_else(|_| PathBuf::from(p));
            if dest.starts_with(&p) {
                return Err(invalid(format!(
                    "snapmount: {} is inside the root {} of jail {}: give a directory outside every jail",
                    dest.display(),
                    p.display(),
                    k.name
                )));
            }
        }
        let (Some(parent), Some(leaf)) = (dest.parent(), dest.file_name()) else {
            return Err(invalid("snapmount: / is no destination".to_string()));
        };
        let empty = std::fs::read_dir(&dest)
            .map_err(io_at(dest.display()))?
            .next()
            .is_none();
        if !empty {
            return Err(invalid(format!(
                "snapmount: {} is not an empty directory",
                dest.display()
            )));
        }
        let rec = self.snapmount_record(&j.uuid, &name);
        if rec.exists() {
            return Err(invalid(format!(
                "snapshot {name} of {} is mounted already; snapumount it first",
                j.label()
            )));
        }
        let src = self.backend.snapshot_dir(&j.uuid, &name)?;
        let dir = rec.parent().expect("a directory");
        std::fs::create_dir_all(dir).map_err(io_at(dir.display()))?;
        // the undo is recorded before the mount is made, its id as soon as known
        let write = |id: Option<u64>| {
            let text = format!(
                "{}\n{}\n",
                id.map(|i| i.to_string()).unwrap_or_default(),
                dest.display()
            );
            crate::sys::files::write_atomic(&rec, text.as_bytes()).map_err(io_at(rec.display()))
        };
        write(None)?;
        let opts = match crate::sys::OS {
            crate::sys::Os::Linux => "ro,nosuid,nodev,noexec",
            crate::sys::Os::FreeBsd => "ro,nosuid,noexec",
        };
        let made = crate::sys::os::RootDir::open(parent)
            .and_then(|p| p.mount_at(&src, Path::new(leaf), "bind", opts, None));
        match made {
            Ok((id, _)) => write(Some(id))?,
            Err(e) => {
                let _ = std::fs::remove_file(&rec);
                let _ = self.backend.snapshot_dir_done(&j.uuid, &name);
                return Err(io_at(dest.display())(e));
            }
        }
        Ok(dest)
    }

    /// `snapumount UUID|TAG@NAME`: unmounts exactly the mount `snapmount` made (by
    /// its id, wherever it is now; a mount that is gone is no error).
    pub fn snapumount(&self, arg: &str) -> Result<PathBuf> {
        let (j, name) = self.snap_target(arg)?;
        let _l = self.lock_jail(&j.uuid)?;
        let rec = self.snapmount_record(&j.uuid, &name);
        let text = std::fs::read_to_string(&rec)
            .map_err(|_| invalid(format!("snapshot {name} of {} is not mounted", j.label())))?;
        let mut lines = text.lines();
        let id = lines.next().and_then(|l| l.trim().parse::<u64>().ok());
        let dest = PathBuf::from(lines.next().unwrap_or_default());
        if let (Some(id), Some(parent)) = (id, dest.parent()) {
            crate::sys::os::RootDir::open(parent)
                .and_then(|p| p.unmount_id(id))
                .map_err(io_at(dest.display()))?;
        }
        self.backend.snapshot_dir_done(&j.uuid, &name)?;
        std::fs::remove_file(&rec).map_err(io_at(rec.display()))?;
        Ok(dest)
    }
}
