//! The jexec child: from the fork to its exit, inside the jail.

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Command, Stdio};

use super::report::{failed, failed_jail, STEP_EXEC};
use super::{exit_code, not_started_code, ExecSpec, ExecStatus, ExecStdio, ExecUser, CLEAN_PATH};
use crate::jail::handoff::{self, Handoff};
use crate::jail::users::{self, User};
use crate::sys::unix as sys;

/// The jexec child: attach, resolve the user, start the command, report, wait.
/// Returns the exit code.
pub(super) fn main(
    spec: &ExecSpec,
    jid: i32,
    host_user: Option<User>,
    null: Option<File>,
    sock: &OwnedFd,
) -> i32 {
    let report = |h: &Handoff| {
        let _ = sys::send_with_fds(sock, &handoff::encode(h), &[]);
    };
    // Nothing of the caller's (its locks, sockets, files) goes into the jail.
    let mut keep = vec![sock.as_raw_fd()];
    keep.extend(null.as_ref().map(File::as_raw_fd));
    if let ExecStdio::File(f) = &spec.stdio {
        keep.push(f.as_raw_fd());
    }
    sys::close_fds_except(&keep);
    if spec.own_process_group {
        if let Err(e) = sys::set_process_group(0, 0) {
            report(&failed("setpgid", "jexec: setpgid".into(), Some(&e)));
            return 1;
        }
    }
    // It carries a copy of the caller's memory (every jail's properties): the jail's
    // root must not be able to trace or inspect it once it is attached.
    if let Err(e) = sys::make_untraceable() {
        report(&failed(
            "untraceable",
            "jexec: make untraceable".into(),
            Some(&e),
        ));
        return 1;
    }
    if let Err(e) = crate::jail::attach(&jid.to_string()) {
        report(&failed_jail("attach", &e));
        return 1;
    }
    let user = match &spec.user {
        Some(ExecUser::Jail(name)) => match users::lookup(name) {
            Ok(u) => Some(u),
            Err(e) => {
                report(&failed("user", format!("in jail {}: {e}", spec.jail), None));
                return 1;
            }
        },
        _ => host_user,
    };
    let mut cmd = build_command(&spec.command, user.as_ref(), spec.clean_env);
    if let Err(e) = set_stdio(&mut cmd, &spec.stdio, null) {
        report(&failed("stdio", "jexec: stdio".into(), Some(&e)));
        return 1;
    }
    match cmd.spawn() {
        Err(e) => {
            report(&failed(STEP_EXEC, spec.command[0].clone(), Some(&e)));
            not_started_code(&e) as i32
        }
        Ok(mut c) => {
            report(&Handoff::Ready);
            match c.wait() {
                Ok(st) => exit_code(status_of(st)) as i32,
                Err(_) => 126,
            }
        }
    }
}

fn status_of(st: std::process::ExitStatus) -> sys::ExitStatus {
    use std::os::unix::process::ExitStatusExt;
    match st.code() {
        Some(c) => sys::ExitStatus::Code(c),
        None => sys::ExitStatus::Signal(st.signal().unwrap_or(0)),
    }
}

fn set_stdio(cmd: &mut Command, stdio: &ExecStdio, null: Option<File>) -> std::io::Result<()> {
    match (stdio, null) {
        (ExecStdio::Inherit, _) | (_, None) => {}
        (ExecStdio::Null, Some(n)) => {
            cmd.stdin(n.try_clone()?)
                .stdout(n.try_clone()?)
                .stderr(Stdio::from(n));
        }
        (ExecStdio::File(f), Some(n)) => {
            cmd.stdin(n).stdout(f.try_clone()?).stderr(f.try_clone()?);
        }
    }
    Ok(())
}

/// The command as jexec(8) runs it: in `/`, as `user` (groups, gid, uid) with its
/// `USER` and `HOME`, in a clean environment if asked.
fn build_command(argv: &[String], user: Option<&User>, clean_env: bool) -> Command {
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]).current_dir("/");
    if clean_env {
        let term = std::env::var_os("TERM");
        cmd.env_clear().env("PATH", CLEAN_PATH);
        if let Some(t) = term {
            cmd.env("TERM", t);
        }
        if let Some(u) = user {
            cmd.env("SHELL", &u.shell);
        }
    }
    if let Some(u) = user {
        sys::command_as(&mut cmd, u.uid, u.gid, u.groups.clone());
        cmd.env("USER", &u.name).env("HOME", &u.home);
    }
    cmd
}

/// Run `command` from a process already attached to a jail (`jail create ...
/// command=`), wait, and return its status.
pub fn run_attached(command: &[String], user: Option<&User>) -> ExecStatus {
    if command.is_empty() {
        return ExecStatus::NotStarted {
            code: 126,
            message: "no command".into(),
        };
    }
    match build_command(command, user, false).status() {
        Ok(st) => ExecStatus::Exited(exit_code(status_of(st))),
        Err(e) => ExecStatus::NotStarted {
            code: not_started_code(&e),
            message: format!("{}: {e}", command[0]),
        },
    }
}
