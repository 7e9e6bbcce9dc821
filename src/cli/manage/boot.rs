//! `rcboot` and `rcshutdown`: printing what the manager's boot sequence did.

use std::io::Write;
use std::process::ExitCode;

use super::R;
use crate::manager::Manager;

/// `rcboot` (start the boot jails by priority) or `rcshutdown` (stop them in reverse);
/// a failing jail does not stop the others, but makes the exit status 1.
pub(super) fn boot_sequence(m: &Manager, shutdown: bool, out: &mut impl Write) -> R {
    let failed = m.boot_sequence(shutdown, |r| match &r.outcome {
        Ok(what) => {
            let _ = writeln!(out, "{what}: {} ({})", r.jail.tag(), r.jail.uuid);
        }
        Err(e) => eprintln!("jailctl: {e}"),
    })?;
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
