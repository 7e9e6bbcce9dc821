//! jexec(8) as a library call: run a command inside a jail from a process that stays
//! on the host (`jailctl jail exec`, the manager's `exec` and `exec_start`).
//!
//! [`spawn`] forks a child (the *jexec child*). The child attaches to the jail
//! ([`super::attach`]: on Linux its namespaces, root and confinement; joining a pid
//! namespace applies to children, so the child then spawns the command, which is a
//! full member of the jail), looks the user up, and reports with one typed
//! [`Handoff`] over a `SOCK_SEQPACKET` pair: `Ready` once the command runs, or
//! `Failed { step, errno }`. It then waits for the command and exits with jexec's
//! code for it. The caller turns a failed setup step into a [`JailError`] naming the
//! step, and a command that could not be started into [`ExecStatus::NotStarted`].
//!
//! **The caller must be single-threaded** (the child forks from it and then
//! allocates): [`spawn`] checks it where the OS tells (Linux) and refuses otherwise.
//! A multi-threaded program (a test harness, the daemon's runtime) runs
//! `jailctl jail exec` instead.
//!
//! What a hostile jail cannot do to the caller: make it wait forever for the setup
//! (the handoff is awaited at most [`SETUP_TIMEOUT`], then the child is killed), make
//! it read a host file as the jail's passwd (see [`super::users`]), or make it act
//! on a pid it names (no pid travels in the handoff; the caller only signals the
//! child it forked, and its process group, while that child is not reaped, so the
//! pid cannot have been reused). Waiting for the command itself is the caller's
//! business: [`ExecChild::try_wait`] and [`ExecChild::kill_group`] bound it.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::time::Duration;

mod child;
mod report;

pub use child::run_attached;
pub use report::{failure, Failure};

use super::handoff::Handoff;
use super::users;
use super::JailError;
use crate::sys::unix as sys;

/// How long the jexec child may take to attach and start the command.
pub const SETUP_TIMEOUT: Duration = Duration::from_secs(30);

/// `PATH` of a clean environment.
pub use crate::sys::tool::CLEAN_PATH;

/// Whose credentials the command runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecUser {
    /// A user of the jail's own passwd database (jexec `-u`).
    Jail(String),
    /// A user of the host's passwd database (jexec `-U`).
    Host(String),
}

/// Where the command's standard descriptors go.
#[derive(Debug, Default)]
pub enum ExecStdio {
    /// The caller's stdin, stdout and stderr.
    #[default]
    Inherit,
    /// The host's /dev/null for all three.
    Null,
    /// stdout and stderr to this file, stdin from the host's /dev/null.
    File(File),
}

/// What to run where.
#[derive(Debug)]
pub struct ExecSpec {
    /// The jail: a jid or a name.
    pub jail: String,
    /// Run as this user (root, the caller's credentials in the jail, when `None`).
    pub user: Option<ExecUser>,
    /// The program and its arguments (at least the program).
    pub command: Vec<String>,
    pub stdio: ExecStdio,
    /// Start from an empty environment: `PATH` ([`CLEAN_PATH`]), `TERM` kept, and
    /// `USER`, `HOME`, `SHELL` of the user when one is given (jexec `-l`).
    pub clean_env: bool,
    /// Put the jexec child and the command in a new process group (led by the child),
    /// so that [`ExecChild::kill_group`] reaches everything the command started. (A
    /// background group that reads the terminal is stopped: use it with `Null` or
    /// `File` stdio.)
    pub own_process_group: bool,
}

impl ExecSpec {
    /// Run `command` in `jail` as root, with the caller's stdio and environment.
    pub fn new(jail: impl Into<String>, command: Vec<String>) -> ExecSpec {
        ExecSpec {
            jail: jail.into(),
            user: None,
            command,
            stdio: ExecStdio::Inherit,
            clean_env: false,
            own_process_group: false,
        }
    }
}

/// How the command ended, with jexec's exit code for it ([`ExecStatus::code`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecStatus {
    /// The command ran; its exit code, or 128+signal when a signal ended it (or the
    /// jexec child).
    Exited(u8),
    /// The command could not be started: 127 when it was not found, 126 otherwise;
    /// `message` says why (`PROG: error`).
    NotStarted { code: u8, message: String },
}

impl ExecStatus {
    /// jexec's exit code: the command's; 126 not executable; 127 not found;
    /// 128+signal.
    pub fn code(&self) -> u8 {
        match self {
            ExecStatus::Exited(c) => *c,
            ExecStatus::NotStarted { code, .. } => *code,
        }
    }
}

/// The jexec code of a process status: its exit code, or 128+signal.
pub fn exit_code(st: sys::ExitStatus) -> u8 {
    match st {
        sys::ExitStatus::Code(c) => c as u8,
        sys::ExitStatus::Signal(s) => 128u8.wrapping_add(s as u8),
    }
}

/// The jexec code of a command that could not be started: 127 when not found.
pub fn not_started_code(e: &std::io::Error) -> u8 {
    if e.kind() == std::io::ErrorKind::NotFound {
        127
    } else {
        126
    }
}

/// A running jexec child (see the module documentation).
#[derive(Debug)]
pub struct ExecChild {
    pid: i32,
    group: bool,
    /// Set once the child is reaped, or from the start when the command could not be
    /// started.
    status: Option<ExecStatus>,
    reaped: bool,
}

impl ExecChild {
    /// Host pid of the jexec child (attached to the jail, the command's parent); with
    /// `own_process_group`, also the process group id.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Wait for the command to end, however long it runs (bound it with
    /// [`ExecChild::try_wait`] and [`ExecChild::kill_group`]). An `ExecChild` dropped
    /// before it is reaped stays a zombie until the caller exits.
    pub fn wait(&mut self) -> Result<ExecStatus, JailError> {
        self.reap(true)
            .map(|s| s.expect("a blocking wait returns a status"))
    }

    /// The status if the command has ended, without waiting.
    pub fn try_wait(&mut self) -> Result<Option<ExecStatus>, JailError> {
        self.reap(false)
    }

    /// SIGKILL the jexec child and, with `own_process_group`, every process of its
    /// group (what the command started there). Does nothing once the child is reaped:
    /// its pid may name another process by then.
    pub fn kill_group(&mut self) -> Result<(), JailError> {
        if self.reaped {
            return Ok(());
        }
        // The child itself is killed even when its group cannot be (it is unreaped:
        // its pid is still ours), so a wait that follows always ends.
        let group = if self.group {
            sys::kill_process_group(self.pid)
                .map_err(|e| JailError::os(format!("jexec: kill group {}", self.pid), e))
        } else {
            Ok(())
        };
        sys::kill_process(self.pid)
            .map_err(|e| JailError::os(format!("jexec: kill {}", self.pid), e))?;
        group
    }

    /// Wait at most `timeout` for the command to end (woken as it ends, not polled,
    /// where the OS allows): its status, or `None` if it still runs.
    pub fn wait_for(&mut self, timeout: Duration) -> Result<Option<ExecStatus>, JailError> {
        if !self.reaped {
            let st = sys::wait_child_for(self.pid, timeout)
                .map_err(|e| JailError::os(format!("jexec: wait for {}", self.pid), e))?;
            let Some(st) = st else {
                return Ok(None);
            };
            self.reaped = true;
            if self.status.is_none() {
                self.status = Some(ExecStatus::Exited(exit_code(st)));
            }
        }
        Ok(self.status.clone())
    }

    fn reap(&mut self, block: bool) -> Result<Option<ExecStatus>, JailError> {
        if !self.reaped {
            match sys::wait_child(self.pid, block)
                .map_err(|e| JailError::os(format!("jexec: wait for {}", self.pid), e))?
            {
                None => return Ok(None),
                Some(st) => {
                    self.reaped = true;
                    if self.status.is_none() {
                        self.status = Some(ExecStatus::Exited(exit_code(st)));
                    }
                }
            }
        }
        Ok(self.status.clone())
    }
}

/// Run the command and wait for it: [`spawn`] then [`ExecChild::wait`].
pub fn run(spec: ExecSpec) -> Result<ExecStatus, JailError> {
    spawn(spec)?.wait()
}

/// Refuse a caller with other threads (when the OS tells).
fn check_single_threaded() -> Result<(), JailError> {
    match sys::thread_count() {
        Some(n) if n > 1 => Err(JailError::Invalid(format!(
            "jexec: the caller has {n} threads; jail::exec forks and needs a single-threaded caller (run `jailctl jail exec` instead)"
        ))),
        _ => Ok(()),
    }
}

/// Start the command in the jail (see the module documentation). Errors: the jail is
/// not found, the host user (`-U`) is unknown, or the child failed a setup step.
pub fn spawn(spec: ExecSpec) -> Result<ExecChild, JailError> {
    if spec.command.is_empty() {
        return Err(JailError::Invalid("jexec: no command".into()));
    }
    check_single_threaded()?;
    let jid = super::getid(&spec.jail)?;
    let host_user = match &spec.user {
        Some(ExecUser::Host(u)) => {
            Some(users::lookup_host(u).map_err(|e| JailError::Invalid(e.to_string()))?)
        }
        _ => None,
    };
    let null = match spec.stdio {
        ExecStdio::Inherit => None,
        _ => Some(
            File::options()
                .read(true)
                .write(true)
                .open("/dev/null")
                .map_err(|e| JailError::os("jexec: /dev/null", e))?,
        ),
    };
    let (mine, theirs) =
        sys::seqpacket_pair().map_err(|e| JailError::os("jexec: socketpair", e))?;
    match sys::fork().map_err(|e| JailError::os("jexec: fork", e))? {
        sys::Forked::Child => {
            drop(mine);
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                child::main(&spec, jid, host_user, null, &theirs)
            }))
            .unwrap_or(126);
            sys::exit_now(code)
        }
        sys::Forked::Parent(pid) => {
            drop(theirs);
            if spec.own_process_group {
                // Also done by the child: whichever runs first, the group exists
                // before the command starts and before the caller can kill it.
                let _ = sys::set_process_group(pid, pid);
            }
            let mut child = ExecChild {
                pid,
                group: spec.own_process_group,
                status: None,
                reaped: false,
            };
            match await_handoff(&mine, &spec.jail) {
                Ok(Handoff::Ready) => Ok(child),
                Ok(Handoff::Failed { step, errno }) => match failure(&step, errno) {
                    Failure::NotStarted(st) => {
                        child.status = Some(st);
                        Ok(child)
                    }
                    Failure::Setup(e) => {
                        child.abandon();
                        Err(e)
                    }
                },
                Err(e) => {
                    child.abandon();
                    Err(e)
                }
            }
        }
    }
}

impl ExecChild {
    /// Kill and reap a child whose setup failed (it is ours and unreaped: its pid
    /// names nothing else).
    fn abandon(&mut self) {
        let _ = self.kill_group();
        let _ = self.reap(true);
    }
}

/// The child's one report, waited for at most [`SETUP_TIMEOUT`].
fn await_handoff(sock: &OwnedFd, jail: &str) -> Result<Handoff, JailError> {
    let err = |why: String| JailError::Invalid(format!("jail {jail}: exec: {why}"));
    match sys::recv_with_fds(sock, 4096, SETUP_TIMEOUT) {
        Ok(Some((bytes, _fds))) if bytes.is_empty() => {
            Err(err("the jexec child ended before reporting".into()))
        }
        Ok(Some((bytes, _fds))) => Handoff::decode(&bytes)
            .ok_or_else(|| err("the jexec child sent a malformed report".into())),
        Ok(None) => Err(err(format!(
            "setup did not finish within {}s",
            SETUP_TIMEOUT.as_secs()
        ))),
        Err(e) => Err(err(format!("reading the jexec child's report: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_jexec() {
        assert_eq!(exit_code(sys::ExitStatus::Code(0)), 0);
        assert_eq!(exit_code(sys::ExitStatus::Code(42)), 42);
        assert_eq!(exit_code(sys::ExitStatus::Signal(9)), 137);
        assert_eq!(exit_code(sys::ExitStatus::Signal(15)), 143);
        let nf = std::io::Error::from(std::io::ErrorKind::NotFound);
        assert_eq!(not_started_code(&nf), 127);
        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert_eq!(not_started_code(&denied), 126);
        let st = ExecStatus::NotStarted {
            code: 127,
            message: "x".into(),
        };
        assert_eq!((st.code(), ExecStatus::Exited(3).code()), (127, 3));
    }

    #[test]
    fn a_multi_threaded_caller_is_refused() {
        // The test harness runs this on a thread of its own.
        if sys::thread_count().is_some_and(|n| n > 1) {
            let e = spawn(ExecSpec::new("1", vec!["true".into()])).unwrap_err();
            assert!(e.to_string().contains("single-threaded"), "{e}");
        }
    }
}
