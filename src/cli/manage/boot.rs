//! `rcboot` and `rcshutdown`: printing what the manager's boot sequence did.

use std::ffi::OsString;
use std::io::Write;
use std::process::{Child, ExitCode, Stdio};

use super::R;
use crate::manager::{Jail, Manager, Selection};

/// `rcboot` (start the boot jails by priority and `depends`) or `rcshutdown` (stop
/// them in the mirror order), at most `jobs` at once (default: twice the number of CPUs),
/// each in a child `jailctl start|stop UUID` when more than one may run at once; a
/// failing jail does not stop the others (only those depending on it), but makes the
/// exit status 1.
pub(super) fn boot_sequence(
    m: &Manager,
    sel: &Selection,
    shutdown: bool,
    jobs: Option<u32>,
    out: &mut impl Write,
) -> R {
    // A start mostly waits (mounts, hooks, the jail's own rc): twice the CPUs.
    let jobs = jobs.map(|n| n as usize).unwrap_or_else(|| {
        2 * std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let spawn = |j: &Jail, stop: bool, stderr: Stdio| -> std::io::Result<Child> {
        let mut args: Vec<OsString> = Vec::new();
        if let Some(r) = &sel.root {
            args.extend(["--root".into(), r.clone().into_os_string()]);
        }
        if let Some(p) = &sel.pool {
            args.extend(["--pool".into(), p.into()]);
        }
        args.extend([
            (if stop { "stop" } else { "start" }).into(),
            j.uuid.clone().into(),
        ]);
        crate::sys::tool::spawn_self(&args, Stdio::null(), stderr)
    };
    let failed = m.boot_run(shutdown, jobs, Some(&spawn), |r| match &r.outcome {
        Ok(what) => {
            let _ = writeln!(out, "{what}: {} ({})", r.jail.tag(), r.jail.uuid);
            let _ = out.flush();
        }
        Err(e) => eprintln!("jailctl: {e}"),
    })?;
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
