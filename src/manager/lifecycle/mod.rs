//! The lifecycle of a jail: [`start`] (named steps, each undone on failure), [`stop`],
//! [`hooks`] (the `exec_*` commands), [`mounts`] and [`params`] (pure mappings of the
//! configuration to mounts and kernel parameters), and the verbs that act on a running
//! jail (`restart`, `exec`, `console`, `runtime`).

pub mod hooks;
pub mod limits;
pub mod mounts;
pub mod net;
mod net_apply;
pub mod net_cmds;
mod net_dhcp;
pub mod params;
pub mod start;
pub mod stop;

use super::error::{invalid, ManagerError, Result};
use super::{Jail, Manager};
use hooks::Where;

impl Manager {
    /// `restart [-s]`: full stop and start, or a soft restart (exec_stop then
    /// exec_start inside the running jail).
    pub fn restart(&self, key: &str, soft: bool) -> Result<()> {
        if soft {
            let j = self.resolve(key)?;
            let _l = self.lock_jail(&j.uuid)?;
            if self.is_running(&j).is_none() {
                return Err(ManagerError::NotRunning(j.label()));
            }
            let c = j.config()?;
            self.hook(&c, "exec_stop", Where::Jail, &c.hooks.stop)?;
            self.hook(&c, "exec_start", Where::Jail, &c.hooks.start)?;
            return Ok(());
        }
        self.stop(key)?;
        self.start(key, false).map(|_| ())
    }

    /// Run a command in a jail with jexec semantics; returns its exit status.
    pub fn exec(
        &self,
        j: &Jail,
        user: Option<&str>,
        host_user: Option<&str>,
        cmd: &[String],
    ) -> Result<i32> {
        if self.is_running(j).is_none() {
            return Err(ManagerError::NotRunning(j.label()));
        }
        Ok(self.jail_ops.exec(&j.kname(), user, host_user, cmd)?)
    }

    /// `console [-f]`: a login shell in the jail (started first with `-f`).
    pub fn console(&self, key: &str, force: bool) -> Result<i32> {
        let j = self.resolve(key)?;
        if self.is_running(&j).is_none() {
            if !force {
                return Err(invalid(format!(
                    "jail {} is not running; console -f starts it",
                    j.label()
                )));
            }
            self.start(key, false)?;
        }
        let mut cmd = vec!["login".to_string()];
        cmd.extend(j.config()?.login_flags);
        self.exec(&j, None, None, &cmd)
    }

    /// `runtime`: the kernel jail's parameters, and the live addresses of its own
    /// network stack (`net.IFACE=ADDR/PREFIX,...`).
    pub fn runtime(&self, key: &str) -> Result<Vec<(String, String)>> {
        let j = self.resolve(key)?;
        if self.is_running(&j).is_none() {
            return Err(ManagerError::NotRunning(j.label()));
        }
        let mut rt: Vec<(String, String)> = self
            .jail_ops
            .params(&j.kname())?
            .into_iter()
            .map(|p| (p.name().to_string(), p.export()))
            .collect();
        rt.extend(self.net_runtime(&j.kname()));
        Ok(rt)
    }
}
