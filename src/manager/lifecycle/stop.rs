//! `stop`: idempotent; removes exactly what start recorded.

use std::time::{Duration, Instant};

use super::hooks::Where;
use crate::manager::error::Result;
use crate::manager::runstate::Phase;
use crate::manager::{Jail, Manager};

impl Manager {
    /// `stop`: exec_prestop, exec_stop (in the jail), SIGTERM to its processes and up
    /// to `stop_timeout` for them to end, removal, exec_poststop; then the recorded
    /// mounts. A failing hook is reported and the stop goes on.
    pub fn stop(&self, key: &str) -> Result<bool> {
        let j = self.resolve(key)?;
        let _l = self.lock_jail(&j.uuid)?;
        let was_running = self.is_running(&j).is_some();
        if was_running {
            self.stop_running(&j)?;
        }
        self.undo_network(&j.uuid)?;
        self.unmount_recorded(&j.uuid)?;
        Ok(was_running)
    }

    fn stop_running(&self, j: &Jail) -> Result<()> {
        let c = j.config()?;
        let mut st = self.read_state(&j.uuid);
        st.phase = Some(Phase::Stopping);
        self.write_state(&j.uuid, &st)?;
        for (step, at, script) in [
            ("exec_prestop", Where::Host, &c.hooks.prestop),
            ("exec_stop", Where::Jail, &c.hooks.stop),
        ] {
            if let Err(e) = self.hook(&c, step, at, script) {
                eprintln!("jailctl: {e}");
            }
        }
        let kname = j.kname();
        if self.jail_ops.terminate(&kname).is_ok() {
            let deadline = Instant::now() + c.stop_timeout;
            let mut pace = crate::sys::tool::Pacer::new(Duration::from_millis(20));
            while Instant::now() < deadline && self.jail_ops.has_processes(&kname) {
                pace.pause();
            }
        }
        self.jail_ops.remove(&kname)?;
        if let Err(e) = self.hook(&c, "exec_poststop", Where::Host, &c.hooks.poststop) {
            eprintln!("jailctl: {e}");
        }
        Ok(())
    }

    /// With the jail's lock held: a start or stop that was interrupted (its process
    /// killed) is finished by stopping the jail, and said so.
    pub(crate) fn finish_interrupted(&self, j: &Jail) -> Result<()> {
        let Some(phase) = self.read_state(&j.uuid).phase else {
            return Ok(());
        };
        eprintln!(
            "jailctl: jail {} was left {} by an interrupted command; stopping it first",
            j.label(),
            phase.as_str()
        );
        if self.jail_ops.jid(&j.kname()).is_some() {
            self.jail_ops.remove(&j.kname())?;
        }
        self.undo_network(&j.uuid)?;
        self.unmount_recorded(&j.uuid)
    }
}
