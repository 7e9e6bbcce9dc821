//! `rcboot` and `rcshutdown`: the jails with `boot=on`, started by priority, stopped
//! in reverse; a failing jail does not stop the others.

use super::error::{ManagerError, Result};
use super::{Jail, Manager};

/// What happened to one jail of a boot or shutdown sequence.
pub struct BootResult {
    pub jail: Jail,
    /// `started (jid N)` or `stopped`, or why not.
    pub outcome: std::result::Result<String, ManagerError>,
}

impl Manager {
    /// Jails with boot=on in start order (priority ascending, then tag); templates
    /// and corrupt jails are left out.
    pub fn boot_order(&self) -> Result<Vec<Jail>> {
        let mut v: Vec<(u8, Jail)> = self
            .jails()?
            .into_iter()
            .filter(|j| j.problem.is_none())
            .filter_map(|j| {
                let c = j.config().ok()?;
                (c.boot && !c.template).then_some((c.priority, j))
            })
            .collect();
        v.sort_by(|(pa, a), (pb, b)| pa.cmp(pb).then_with(|| a.tag().cmp(b.tag())));
        Ok(v.into_iter().map(|(_, j)| j).collect())
    }

    /// Start the boot jails that are down (`shutdown`: stop those that run, in
    /// reverse order). Jails already in the wanted state are skipped; `report` hears
    /// of each jail as soon as it is done. Returns how many failed.
    pub fn boot_sequence(
        &self,
        shutdown: bool,
        mut report: impl FnMut(&BootResult),
    ) -> Result<usize> {
        if !shutdown {
            for uuid in self.sweep_stale_states() {
                tracing::info!(%uuid, "removed a run state of an earlier boot");
            }
        }
        let mut jails = self.boot_order()?;
        if shutdown {
            jails.reverse();
        }
        let mut failed = 0;
        for j in jails {
            if self.is_running(&j).is_some() != shutdown {
                continue;
            }
            let outcome = if shutdown {
                self.stop(&j.uuid).map(|_| "stopped".to_string())
            } else {
                self.start(&j.uuid, false)
                    .map(|jid| format!("started (jid {jid})"))
            };
            failed += usize::from(outcome.is_err());
            report(&BootResult { jail: j, outcome });
        }
        Ok(failed)
    }
}
