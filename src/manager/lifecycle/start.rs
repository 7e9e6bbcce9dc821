//! `start`, as a list of named steps. Every step that changes the host records its
//! undo in the run state before the next step runs (a mount, the kernel jail); when a
//! step fails, everything recorded is undone, last first.

use std::path::{Path, PathBuf};

use super::hooks::Where;
use super::{mounts, params};
use crate::manager::config::{JailConfig, Resolver};
use crate::manager::error::{ManagerError, Result};
use crate::manager::host::MountSpec;
use crate::manager::runstate::{Phase, RunState};
use crate::manager::status::Status;
use crate::manager::{Jail, Manager};
use crate::sys::OS;

/// The steps of start, in order.
pub const STEPS: [&str; 12] = [
    "keep the jails' folder private",
    "mount the root",
    "exec_prestart",
    "fstab",
    "devfs, fdescfs, procfs",
    "resolv.conf",
    "create the jail",
    "resource limits",
    "network",
    "exec_start",
    "exec_poststart",
    "record last_started",
];

/// One start under way: the jail, its configuration and what has been made so far.
struct Start<'a> {
    m: &'a Manager,
    j: &'a Jail,
    c: JailConfig,
    root: PathBuf,
    st: RunState,
}

impl Start<'_> {
    fn step_err(&self, step: &str, e: impl std::fmt::Display) -> ManagerError {
        ManagerError::Step {
            jail: self.c.label(),
            step: step.to_string(),
            msg: e.to_string(),
        }
    }

    fn run(&mut self) -> Result<i32> {
        self.m.write_state(&self.j.uuid, &self.st)?;
        self.private()?;
        self.mount_root()?;
        let c = self.c.clone();
        self.m
            .hook(&c, "exec_prestart", Where::Host, &c.hooks.prestart)?;
        self.fstab()?;
        self.filesystems()?;
        self.resolver()?;
        self.m.prepare_limits(self.j, &mut self.st)?;
        let jid = self.create()?;
        self.m.apply_limits(self.j, jid, &mut self.st)?;
        self.network()?;
        self.m.hook(&c, "exec_start", Where::Jail, &c.hooks.start)?;
        self.m
            .hook(&c, "exec_poststart", Where::Host, &c.hooks.poststart)?;
        self.m.mark_started(&self.j.uuid)?;
        self.st.phase = None;
        self.m.write_state(&self.j.uuid, &self.st)?;
        Ok(jid)
    }

    /// The jails' folder stays private (a jail's setuid files are out of other users'
    /// reach), even if someone opened it up since it was made.
    fn private(&self) -> Result<()> {
        if let Some(jails) = self.m.backend.jail_dir(&self.j.uuid)?.parent() {
            crate::storage::make_private(jails)?;
        }
        Ok(())
    }

    /// Make a mount and record it before anything else happens.
    fn mount(&mut self, spec: &MountSpec, step: &str) -> Result<()> {
        let rec = self
            .m
            .host
            .mount(spec)
            .map_err(|e| self.step_err(step, e))?;
        self.st.mounts.push(rec);
        self.m.write_state(&self.j.uuid, &self.st)
    }

    fn mount_root(&mut self) -> Result<()> {
        let layout = self.m.backend.root_layout(&self.j.uuid, &self.j.props())?;
        for spec in mounts::root_mounts(&layout, OS) {
            let what = spec.what().to_string();
            self.mount(&spec, &format!("mount {what}"))?;
        }
        Ok(())
    }

    fn fstab(&mut self) -> Result<()> {
        let fstab = self.m.backend.jail_dir(&self.j.uuid)?.join("fstab");
        let Ok(text) = std::fs::read_to_string(&fstab) else {
            return Ok(());
        };
        for spec in mounts::fstab_mounts(&text, &fstab, &self.root)? {
            let what = spec.what().to_string();
            self.mount(&spec, &what)?;
        }
        Ok(())
    }

    fn filesystems(&mut self) -> Result<()> {
        for mut spec in mounts::filesystem_mounts(&self.c, &self.root, OS) {
            let what = spec.what().to_string();
            // fdescfs goes on dev/fd of the devfs mounted just before
            if let MountSpec::InRoot { on_mount, .. } = &mut spec {
                if what == "mount_fdescfs" {
                    *on_mount = self
                        .st
                        .mounts
                        .iter()
                        .rev()
                        .find(|m| m.what == "mount_devfs")
                        .and_then(|m| m.inside.as_ref().map(|(id, _)| *id));
                }
            }
            self.mount(&spec, &what)?;
        }
        Ok(())
    }

    /// The resolver, written inside the jail's root (never through a link it
    /// planted), when the jail has an /etc.
    fn resolver(&self) -> Result<()> {
        let conf = match &self.c.resolver {
            Resolver::Host => std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
            Resolver::Lines(lines) => lines.iter().map(|l| format!("{l}\n")).collect(),
        };
        if conf.is_empty() {
            return Ok(());
        }
        self.m
            .host
            .write_in_root(
                &self.root,
                Path::new("etc/resolv.conf"),
                conf.as_bytes(),
                0o644,
            )
            .map_err(|e| self.step_err("write /etc/resolv.conf", e))?;
        Ok(())
    }

    /// Interfaces, addresses and routes (see `lifecycle::net`), each recorded.
    fn network(&mut self) -> Result<()> {
        let (c, kname) = (self.c.clone(), self.j.kname());
        self.m
            .network(&c, &kname, &self.j.uuid, &mut self.st)
            .map_err(|e| self.step_err("network", e))?;
        // DHCP leases, taken by the jail's own client (nothing on the host to undo)
        self.m
            .dhcp(&c, &kname, &self.root)
            .map_err(|e| self.step_err("network", e))
    }

    fn create(&mut self) -> Result<i32> {
        let p = params::jail_params(&self.c, &self.j.kname(), &self.root, OS)?;
        let jid = self.m.jail_ops.create(&p)?;
        self.st.jid = Some(jid);
        self.m.write_state(&self.j.uuid, &self.st)?;
        Ok(jid)
    }
}

impl Manager {
    /// `start`: every failing step undoes the earlier ones.
    pub fn start(&self, key: &str, force_template: bool) -> Result<i32> {
        let j = self.resolve(key)?;
        let c = j.config()?;
        let stored = match &j.problem {
            Some(why) => Status::Corrupt(why.clone()),
            None if c.template => Status::Template,
            None => Status::Down,
        };
        stored.can_start(&j.label(), &j.uuid, force_template)?;
        let _l = self.lock_jail(&j.uuid)?;
        self.finish_interrupted(&j)?;
        if let Some(jid) = self.is_running(&j) {
            Status::Up(jid).can_start(&j.label(), &j.uuid, force_template)?;
        }
        // leftovers of an interrupted start or stop
        self.undo_network(&j.uuid)?;
        self.unmount_recorded(&j.uuid)?;
        let mut s = Start {
            m: self,
            j: &j,
            c,
            root: self.backend.root_dir(&j.uuid)?,
            st: RunState {
                phase: Some(Phase::Starting),
                ..Default::default()
            },
        };
        s.run().map_err(|e| {
            let cleanup = self.undo_start(&j);
            e.with_cleanup(cleanup)
        })
    }

    /// Undo what a failed start recorded: the kernel jail, then the mounts, last
    /// first. Returns what could not be undone.
    fn undo_start(&self, j: &Jail) -> Vec<ManagerError> {
        let mut cleanup = Vec::new();
        if self.jail_ops.jid(&j.kname()).is_some() {
            if let Err(e) = self.jail_ops.remove(&j.kname()) {
                cleanup.push(e.into());
            }
        }
        if let Err(e) = self.undo_network(&j.uuid) {
            cleanup.push(e);
        }
        if let Err(e) = self.unmount_recorded(&j.uuid) {
            cleanup.push(e);
        }
        cleanup
    }
}
