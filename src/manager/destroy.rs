//! `destroy` and `clean`.

use super::error::{invalid, ManagerError, Result};
use super::Manager;

impl Manager {
    pub fn destroy(&self, key: &str) -> Result<String> {
        let j = self.resolve(key)?;
        let _l = self.lock_jail(&j.uuid)?;
        if self.is_running(&j).is_some() {
            return Err(ManagerError::Running(j.label()));
        }
        self.refuse_if_dependants(&j)?;
        // what an interrupted start or a failed stop left on the host, first
        self.undo_network(&j.uuid)?;
        self.unmount_recorded(&j.uuid)?;
        self.backend.destroy_jail(&j.uuid)?;
        self.forget_state(&j.uuid);
        self.census_forget(&j.uuid);
        if let Some(o) = j.stored.get("origin") {
            self.drop_origin(o);
        }
        // Its TAG's index entry, if any, fails its check on next use and goes then.
        Ok(j.uuid)
    }

    pub fn clean(&self, what: &str) -> Result<()> {
        let running: Vec<String> = self
            .running()?
            .iter()
            .map(|(j, _)| j.tag().to_string())
            .collect();
        if matches!(what, "all" | "jails") && !running.is_empty() {
            return Err(invalid(format!(
                "jails are running ({}); stop them first",
                running.join(", ")
            )));
        }
        if what == "releases" {
            let used: Vec<String> = self
                .jails()?
                .iter()
                .filter(|j| j.get("type") == "basejail")
                .map(|j| j.tag().to_string())
                .collect();
            if !used.is_empty() {
                return Err(invalid(format!(
                    "basejails use the releases ({}); destroy them first",
                    used.join(", ")
                )));
            }
        }
        let _g = self.lock_global()?;
        for g in self.backend.sweep_staging()? {
            tracing::info!(what = %g, "removed what an interrupted fetch left");
        }
        self.backend.clean(what)?;
        Ok(())
    }
}
