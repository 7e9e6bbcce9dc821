//! The `exec_*` commands: on the host (`exec_prestart`, `exec_poststart`,
//! `exec_prestop`, `exec_poststop`) or inside the jail (`exec_start`, `exec_stop`),
//! each under `exec_timeout`, its output in the jail's console log.

use std::fs::{File, OpenOptions};
use std::path::PathBuf;

use crate::manager::config::JailConfig;
use crate::manager::error::{io_at, ManagerError, Result};
use crate::manager::Manager;
use crate::sys::tool::{HostCommand, Outcome};

/// Where a hook runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Where {
    Host,
    /// Inside the jail, as its root (jexec(8)).
    Jail,
}

/// A hook that does nothing: empty, or iocage's `/usr/bin/true` default.
fn is_noop(script: &str) -> bool {
    matches!(script.trim(), "" | "/usr/bin/true")
}

impl Manager {
    fn console_log(&self, uuid: &str) -> PathBuf {
        self.backend
            .base_dir()
            .map(|b| b.join("log"))
            .unwrap_or_else(|_| PathBuf::from("/var/log"))
            .join(format!("{uuid}-console.log"))
    }

    pub(super) fn open_console_log(&self, uuid: &str) -> Result<(PathBuf, File)> {
        let log = self.console_log(uuid);
        if let Some(d) = log.parent() {
            std::fs::create_dir_all(d).map_err(io_at(d.display()))?;
        }
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(io_at(log.display()))?;
        Ok((log, f))
    }

    /// Run the hook `step` (`exec_start`, ...) with `script`.
    pub(crate) fn hook(&self, c: &JailConfig, step: &str, at: Where, script: &str) -> Result<()> {
        if is_noop(script) {
            return Ok(());
        }
        let (log, out) = self.open_console_log(&c.uuid)?;
        let fail = |msg: String| ManagerError::Step {
            jail: c.label(),
            step: step.to_string(),
            msg,
        };
        let outcome = match at {
            Where::Host => {
                let cmd = HostCommand {
                    script: script.to_string(),
                    clean_env: c.exec_clean,
                    env: vec![
                        ("IOCAGE_UUID".into(), c.uuid.clone()),
                        ("IOCAGE_TAG".into(), c.tag.clone()),
                        ("JAILCTL_UUID".into(), c.uuid.clone()),
                        ("JAILCTL_TAG".into(), c.tag.clone()),
                    ],
                };
                self.host
                    .run_command(&cmd, &out, c.exec_timeout)
                    .map_err(|e| fail(e.to_string()))?
            }
            Where::Jail => self
                .jail_ops
                .run_script(
                    &super::super::kernel_name(&c.uuid),
                    script,
                    &out,
                    c.exec_timeout,
                )
                .map_err(|e| fail(e.to_string()))?,
        };
        match outcome {
            Outcome::Success => Ok(()),
            Outcome::Failed(st) => Err(fail(format!("{st} (output in {})", log.display()))),
            Outcome::TimedOut => Err(fail(format!(
                "did not finish within exec_timeout={}s",
                c.exec_timeout.as_secs()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn noop_hooks() {
        assert!(super::is_noop(""));
        assert!(super::is_noop(" /usr/bin/true "));
        assert!(!super::is_noop("/usr/bin/true && reboot"));
    }
}
