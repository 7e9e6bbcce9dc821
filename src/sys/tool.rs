//! Host tools (`zfs`, `zpool`, `mount`, `umount`, `tar`, `cp`, `pkg`) and host command
//! processes: the one place the library spawns a program on the host.

use std::ffi::OsStr;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A host tool failed to start or exited non-zero.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{cmd}: {msg}")]
pub struct ToolError {
    /// The command line (long arguments shortened).
    pub cmd: String,
    /// Its stderr, or how it ended.
    pub msg: String,
}

/// The command line of `cmd` for messages; a long argument (a property value) is cut.
fn label(cmd: &Command) -> String {
    let mut parts = vec![cmd.get_program().to_string_lossy().into_owned()];
    for a in cmd.get_args() {
        let a = a.to_string_lossy();
        parts.push(if a.len() > 80 {
            let mut end = 60;
            while !a.is_char_boundary(end) {
                end -= 1;
            }
            format!("{}...({} bytes)", &a[..end], a.len())
        } else {
            a.into_owned()
        });
    }
    parts.join(" ")
}

/// Run `program args...`, returning its stdout; a failure carries its stderr.
pub fn run<S: AsRef<OsStr>>(program: &str, args: &[S]) -> Result<String, ToolError> {
    let mut cmd = Command::new(program);
    cmd.args(args);
    run_prepared(cmd)
}

/// Run a host tool's command prepared by an OS layer (a descriptor passed, a
/// namespace entered before exec), as [`run`] does.
pub fn run_prepared(mut cmd: Command) -> Result<String, ToolError> {
    cmd.stdin(Stdio::null());
    let l = label(&cmd);
    let out = cmd.output().map_err(|e| ToolError {
        cmd: l.clone(),
        msg: e.to_string(),
    })?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(ToolError {
            cmd: l,
            msg: if msg.is_empty() {
                format!("exited with {}", out.status)
            } else {
                msg
            },
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Start `program args...` for the caller to read its stdout (a stream too large
/// for [`run`]); its stderr is discarded, so it can never block on it. The caller
/// waits for the child and checks its status.
pub fn spawn_reader<S: AsRef<OsStr>>(program: &str, args: &[S]) -> std::io::Result<Child> {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
}

/// Run `program args...` to its end: whether it succeeded, its stdout and its stderr
/// (a tool that reports on several objects may fail for one and print the others).
pub fn run_all<S: AsRef<OsStr>>(
    program: &str,
    args: &[S],
) -> Result<(bool, String, String), ToolError> {
    let mut cmd = Command::new(program);
    cmd.args(args).stdin(Stdio::null());
    let out = cmd.output().map_err(|e| ToolError {
        cmd: label(&cmd),
        msg: e.to_string(),
    })?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// `mount -t FSTYPE -o OPTS SOURCE TARGET` on the host.
pub fn mount(fstype: &str, source: &OsStr, target: &Path, opts: &str) -> Result<(), ToolError> {
    run(
        "mount",
        &[
            OsStr::new("-t"),
            OsStr::new(fstype),
            OsStr::new("-o"),
            OsStr::new(opts),
            source,
            target.as_os_str(),
        ],
    )
    .map(|_| ())
}

/// `umount TARGET` on the host.
pub fn unmount(target: &Path) -> Result<(), ToolError> {
    run("umount", &[target]).map(|_| ())
}

/// Copy a tree with `cp -a`, owners, modes and links kept.
pub fn copy_tree(from: &Path, to: &Path) -> Result<(), ToolError> {
    run(
        "cp",
        &[
            OsStr::new("-a"),
            OsStr::new(&format!("{}/.", from.display())),
            to.as_os_str(),
        ],
    )
    .map(|_| ())
}

/// Copy one file, link or device with `cp -a` (owners, modes and links kept).
pub fn copy_entry(from: &Path, to: &Path) -> Result<(), ToolError> {
    run("cp", &[OsStr::new("-a"), from.as_os_str(), to.as_os_str()]).map(|_| ())
}

/// Extract an archive with `tar -xpf` (modes, owners and flags kept) into `dir`.
pub fn extract(archive: &Path, dir: &Path) -> Result<(), ToolError> {
    run(
        "tar",
        &[
            OsStr::new("-xpf"),
            archive.as_os_str(),
            OsStr::new("-C"),
            dir.as_os_str(),
        ],
    )
    .map(|_| ())
}

/// The host's mount points at or below `path` (Linux's /proc/self/mountinfo,
/// FreeBSD's getfsstat(2)), compared on the path with its links resolved, as the
/// kernel records mount points. A table that cannot be read is an error: the callers
/// guard deletions with this.
pub fn mounted_below(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    Ok(at_or_below(super::os::mount_points()?, &path))
}

/// Of `points`, those at `path` or below it (whole components: `/j/root2` is not
/// below `/j/root`).
pub fn at_or_below(points: impl IntoIterator<Item = PathBuf>, path: &Path) -> Vec<PathBuf> {
    points.into_iter().filter(|m| m.starts_with(path)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_below_a_jail_on_a_freebsd_host() {
        // `mount -p` of a FreeBSD 14 host running a directory-backend basejail
        let mount_p = "zroot/ROOT/default	/	zfs	rw,nfsv4acls	0 0
devfs	/dev	devfs	rw	0 0
/var/db/jailctl/releases/14.1-RELEASE/root/bin	/var/db/jailctl/jails/5d1c/root/bin	nullfs	ro	0 0
/var/db/jailctl/releases/14.1-RELEASE/root/usr/lib	/var/db/jailctl/jails/5d1c/root/usr/lib	nullfs	ro	0 0
devfs	/var/db/jailctl/jails/5d1c/root/dev	devfs	rw	0 0
fdescfs	/var/db/jailctl/jails/5d1c/root/dev/fd	fdescfs	rw	0 0
/data/shared	/var/db/jailctl/jails/5d1c/root/mnt/data	nullfs	ro	0 0
devfs	/var/db/jailctl/jails/5d1c2/root/dev	devfs	rw	0 0";
        let points: Vec<PathBuf> = mount_p
            .lines()
            .map(|l| PathBuf::from(l.split('\t').nth(1).unwrap()))
            .collect();
        let jail = Path::new("/var/db/jailctl/jails/5d1c");
        let below = at_or_below(points.clone(), jail);
        assert_eq!(below.len(), 5, "{below:?}");
        assert!(below.contains(&PathBuf::from("/var/db/jailctl/jails/5d1c/root/mnt/data")));
        // a sibling whose name starts alike is not below it
        assert!(!below
            .iter()
            .any(|p| p.starts_with("/var/db/jailctl/jails/5d1c2")));
        assert!(at_or_below(points, Path::new("/var/db/jailctl/jails/other")).is_empty());
    }
}

/// The `PATH` of a command started with a clean environment (`exec_clean`).
pub const CLEAN_PATH: &str = "/sbin:/bin:/usr/sbin:/usr/bin:/usr/local/sbin:/usr/local/bin";

/// How a host command is run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostCommand {
    /// Given to `/bin/sh -c`.
    pub script: String,
    /// Start from an empty environment but for a standard `PATH`.
    pub clean_env: bool,
    /// Added to the environment.
    pub env: Vec<(String, String)>,
}

/// Paces a poll: sleeps of 1 ms, doubling up to `cap`, so that something that ends
/// at once is seen at once and something slow costs few wake-ups.
pub struct Pacer {
    next: Duration,
    cap: Duration,
}

impl Pacer {
    pub fn new(cap: Duration) -> Pacer {
        Pacer {
            next: Duration::from_millis(1),
            cap,
        }
    }

    /// Sleep for the next interval.
    pub fn pause(&mut self) {
        std::thread::sleep(self.next);
        self.next = (self.next * 2).min(self.cap);
    }
}

/// How a command run with a time limit ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// Ended otherwise (`exit status: 1`, `signal: 9 (SIGKILL)`).
    Failed(String),
    /// Killed, with its process group, at the time limit.
    TimedOut,
}

/// A host command or a jail command running in its own process group.
pub struct Running {
    child: Child,
}

impl Running {
    /// Wait at most `timeout`; on timeout the whole process group is killed.
    pub fn wait_for(mut self, timeout: Duration) -> std::io::Result<Outcome> {
        let start = Instant::now();
        let pid = self.child.id() as i32;
        loop {
            // woken as the child ends (it stays unreaped for `try_wait`)
            super::unix::await_child_exit(pid, timeout.saturating_sub(start.elapsed()))?;
            match self.child.try_wait()? {
                Some(st) if st.success() => return Ok(Outcome::Success),
                Some(st) => return Ok(Outcome::Failed(st.to_string())),
                None if start.elapsed() >= timeout => {
                    let _ = super::unix::kill_process_group(self.child.id() as i32);
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return Ok(Outcome::TimedOut);
                }
                None => {}
            }
        }
    }
}

/// `/bin/sh -c SCRIPT`, to be completed and spawned by the caller (the daemon's
/// registered commands, which its reaper owns).
pub fn shell(script: &str) -> Command {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c").arg(script);
    cmd
}

/// Start `/bin/sh -c SCRIPT` on the host in `/`, stdin from /dev/null, stdout and
/// stderr into `log`, in a process group of its own (so a timeout kills all of it).
pub fn spawn_host_command(c: &HostCommand, log: &File) -> std::io::Result<Running> {
    let mut cmd = shell(&c.script);
    cmd.current_dir("/")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log.try_clone()?);
    if c.clean_env {
        cmd.env_clear().env("PATH", CLEAN_PATH);
    }
    cmd.envs(c.env.iter().map(|(k, v)| (k, v)));
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    Ok(Running {
        child: cmd.spawn()?,
    })
}

// ---- spawn_self (rcboot/rcshutdown -j): this program run again as a child ----

/// Run this program again (`std::env::current_exe()`) with `args`, stdin from
/// /dev/null and the stdout and stderr given: `rcboot -j N` starts each jail in such
/// a child (`jailctl start UUID`), since a start forks and must not do so from a
/// multi-threaded process.
pub fn spawn_self<S: AsRef<OsStr>>(
    args: &[S],
    stdout: Stdio,
    stderr: Stdio,
) -> std::io::Result<Child> {
    Command::new(std::env::current_exe()?)
        .args(args)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
}
