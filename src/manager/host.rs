//! The test seams of the manager: what it asks of the host ([`Host`]) and of the jail
//! layer ([`JailOps`]), each with the real implementation. `tests` (unit tests) have a
//! recording fake of both that can fail any call.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::jail::exec::{self, ExecSpec, ExecStatus, ExecStdio, ExecUser};
use crate::jail::{self, Flags, JailError, JailInfo, JailParam};
use crate::sys::limits::{Applied, LimitError, Plan};
use crate::sys::tool::{self, HostCommand, Outcome, ToolError};

use super::runstate::MountRecord;

/// A mount the manager makes for a running jail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountSpec {
    /// On the host, at a path the host owns (a thin jail's root).
    Host {
        fstype: String,
        source: PathBuf,
        target: PathBuf,
        opts: String,
        what: String,
    },
    /// Inside a jail's root: `rel` is resolved by the kernel beneath `root`, so a link
    /// the jail planted cannot send it elsewhere (fstab lines, devfs, procfs, fdescfs).
    InRoot {
        root: PathBuf,
        fstype: String,
        source: PathBuf,
        rel: PathBuf,
        opts: String,
        /// Make the target directory first when the source is a directory at the
        /// time of the mount (an fstab line).
        mkdir: bool,
        /// The target may also lie on this mount, which this start made (FreeBSD's
        /// `dev/fd` on its devfs); any other mount below the root is refused.
        on_mount: Option<u64>,
        what: String,
    },
}

impl MountSpec {
    pub fn what(&self) -> &str {
        match self {
            MountSpec::Host { what, .. } | MountSpec::InRoot { what, .. } => what,
        }
    }
}

/// What the manager asks of the host.
pub trait Host: Send + Sync {
    /// Make a mount; the record says exactly what to undo.
    fn mount(&self, m: &MountSpec) -> std::io::Result<MountRecord>;
    /// Undo exactly the mount recorded.
    fn unmount(&self, m: &MountRecord) -> std::io::Result<()>;
    /// Write a file inside a jail's root (resolved beneath it), when `rel`'s directory
    /// exists there; `Ok(false)` when it does not.
    fn write_in_root(
        &self,
        root: &Path,
        rel: &Path,
        data: &[u8],
        mode: u32,
    ) -> std::io::Result<bool>;
    /// Run a host command, its output appended to `log`, killed (with its process
    /// group) after `timeout`.
    fn run_command(
        &self,
        c: &HostCommand,
        log: &File,
        timeout: Duration,
    ) -> std::io::Result<Outcome>;
    /// A host tool (`zpool`, `pkg`), its stdout returned.
    fn run_tool(&self, program: &str, args: &[String]) -> Result<String, ToolError>;
}

/// What the manager asks of the jail layer.
pub trait JailOps: Send + Sync {
    /// Create a jail; its jid.
    fn create(&self, params: &[JailParam]) -> Result<i32, JailError>;
    /// The jid of a live jail.
    fn jid(&self, name: &str) -> Option<i32>;
    fn remove(&self, name: &str) -> Result<(), JailError>;
    /// SIGTERM to every process of the jail.
    fn terminate(&self, name: &str) -> Result<(), JailError>;
    /// Does any process still run in the jail?
    fn has_processes(&self, name: &str) -> bool;
    fn list(&self) -> Result<Vec<JailInfo>, JailError>;
    /// Every parameter of a live jail.
    fn params(&self, name: &str) -> Result<Vec<JailParam>, JailError>;
    /// Resource limits (`sys::os::limits`): before jail `name` is made.
    fn limits_prepare(&self, name: &str, rec: &mut Applied) -> Result<(), LimitError>;
    /// Resource limits of live jail `name` (`jid`): `plan` over `prev`.
    fn limits_apply(
        &self,
        name: &str,
        jid: i32,
        plan: &Plan,
        prev: Option<&Applied>,
    ) -> Result<Applied, LimitError>;
    /// Remove what `rec` records.
    fn limits_release(&self, rec: &Applied) -> Result<(), LimitError>;
    /// Run `/bin/sh -c SCRIPT` in the jail as its root, output appended to `log`,
    /// killed after `timeout`.
    fn run_script(
        &self,
        name: &str,
        script: &str,
        log: &File,
        timeout: Duration,
    ) -> Result<Outcome, JailError>;
    /// Run a command in the jail with jexec(8)'s semantics, on the caller's terminal;
    /// its exit status (128+signal when killed).
    fn exec(
        &self,
        name: &str,
        user: Option<&str>,
        host_user: Option<&str>,
        cmd: &[String],
    ) -> Result<i32, JailError>;
    /// The network stack of a live jail, by a kernel handle.
    fn net_handle(&self, name: &str) -> Result<crate::sys::os::net::NetHandle, JailError> {
        crate::jail::net_handle(name)
    }
}

/// The host itself.
pub struct RealHost;

impl Host for RealHost {
    fn mount(&self, m: &MountSpec) -> std::io::Result<MountRecord> {
        match m {
            MountSpec::Host {
                fstype,
                source,
                target,
                opts,
                what,
            } => {
                tool::mount(fstype, source.as_os_str(), target, opts)
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
                Ok(MountRecord {
                    target: target.clone(),
                    what: what.clone(),
                    inside: None,
                })
            }
            MountSpec::InRoot {
                root,
                fstype,
                source,
                rel,
                opts,
                mkdir,
                on_mount,
                what,
            } => {
                let rootdir = crate::sys::os::RootDir::open(root)?;
                if *mkdir && source.is_dir() {
                    rootdir.mkdir_all(rel)?;
                }
                let (id, at) = rootdir.mount_at(source, rel, fstype, opts, *on_mount)?;
                Ok(MountRecord {
                    target: at,
                    what: what.clone(),
                    inside: Some((id, root.clone())),
                })
            }
        }
    }

    fn unmount(&self, m: &MountRecord) -> std::io::Result<()> {
        match &m.inside {
            // Exactly the mount start made, wherever inside the root it is now.
            Some((id, root)) => crate::sys::os::RootDir::open(root)?.unmount_id(*id),
            None if !tool::mounted_below(&m.target)?.is_empty() => {
                tool::unmount(&m.target).map_err(|e| std::io::Error::other(e.to_string()))
            }
            None => Ok(()),
        }
    }

    fn write_in_root(
        &self,
        root: &Path,
        rel: &Path,
        data: &[u8],
        mode: u32,
    ) -> std::io::Result<bool> {
        let rootdir = crate::sys::os::RootDir::open(root)?;
        let dir = rel.parent().unwrap_or(Path::new(""));
        if !dir.as_os_str().is_empty() && !rootdir.is_dir(dir) {
            return Ok(false);
        }
        rootdir.write_atomic(rel, data, mode)?;
        Ok(true)
    }

    fn run_command(
        &self,
        c: &HostCommand,
        log: &File,
        timeout: Duration,
    ) -> std::io::Result<Outcome> {
        tool::spawn_host_command(c, log)?.wait_for(timeout)
    }

    fn run_tool(&self, program: &str, args: &[String]) -> Result<String, ToolError> {
        tool::run(program, args)
    }
}

/// The jail layer itself.
pub struct RealJails;

impl JailOps for RealJails {
    fn create(&self, params: &[JailParam]) -> Result<i32, JailError> {
        jail::set(params, Flags::CREATE)
    }

    fn jid(&self, name: &str) -> Option<i32> {
        jail::getid(name).ok()
    }

    fn remove(&self, name: &str) -> Result<(), JailError> {
        jail::remove(name)
    }

    fn terminate(&self, name: &str) -> Result<(), JailError> {
        jail::terminate_all(name).map(|_| ())
    }

    fn has_processes(&self, name: &str) -> bool {
        jail::processes(name)
            .map(|p| !p.is_empty())
            .unwrap_or(false)
    }

    fn list(&self) -> Result<Vec<JailInfo>, JailError> {
        jail::list()
    }

    fn params(&self, name: &str) -> Result<Vec<JailParam>, JailError> {
        jail::get(name, &[], Flags::NONE)
    }

    fn limits_prepare(&self, name: &str, rec: &mut Applied) -> Result<(), LimitError> {
        crate::sys::os::limits::prepare(name, rec)
    }

    fn limits_apply(
        &self,
        name: &str,
        jid: i32,
        plan: &Plan,
        prev: Option<&Applied>,
    ) -> Result<Applied, LimitError> {
        let pids = jail::all_processes(name).map_err(|e| {
            LimitError::os(
                format!("the processes of jail {name}"),
                std::io::Error::other(e.to_string()),
            )
        })?;
        crate::sys::os::limits::apply(name, jid, &pids, plan, prev)
    }

    fn limits_release(&self, rec: &Applied) -> Result<(), LimitError> {
        crate::sys::os::limits::release(rec)
    }

    fn run_script(
        &self,
        name: &str,
        script: &str,
        log: &File,
        timeout: Duration,
    ) -> Result<Outcome, JailError> {
        let mut spec = ExecSpec::new(
            name,
            vec!["/bin/sh".into(), "-c".into(), script.to_string()],
        );
        spec.stdio = ExecStdio::File(
            log.try_clone()
                .map_err(|e| JailError::Invalid(format!("console log: {e}")))?,
        );
        spec.own_process_group = true;
        let mut child = exec::spawn(spec)?;
        let start = Instant::now();
        loop {
            let left = timeout.saturating_sub(start.elapsed());
            match child.wait_for(left)? {
                Some(ExecStatus::Exited(0)) => return Ok(Outcome::Success),
                Some(ExecStatus::Exited(code)) => {
                    return Ok(Outcome::Failed(format!("exit status: {code}")))
                }
                Some(ExecStatus::NotStarted { code, message }) => {
                    use std::io::Write;
                    let _ = writeln!(&*log, "jailctl: {message}");
                    return Ok(Outcome::Failed(format!("exit status: {code}")));
                }
                None if start.elapsed() > timeout => {
                    if let Err(e) = child.kill_group() {
                        tracing::warn!(error = %e, "killing the timed-out command");
                    }
                    child.wait()?;
                    return Ok(Outcome::TimedOut);
                }
                None => {}
            }
        }
    }

    fn exec(
        &self,
        name: &str,
        user: Option<&str>,
        host_user: Option<&str>,
        cmd: &[String],
    ) -> Result<i32, JailError> {
        let mut spec = ExecSpec::new(name, cmd.to_vec());
        spec.user = match (user, host_user) {
            (Some(u), _) => Some(ExecUser::Jail(u.to_string())),
            (None, Some(u)) => Some(ExecUser::Host(u.to_string())),
            (None, None) => None,
        };
        match exec::run(spec)? {
            ExecStatus::Exited(code) => Ok(i32::from(code)),
            ExecStatus::NotStarted { code, message } => {
                eprintln!("jailctl: {message}");
                Ok(i32::from(code))
            }
        }
    }
}
