//! `rcboot` and `rcshutdown`. (The boot policy belongs to the manager: issue #10 moves
//! it to `manager/boot.rs`; until then it stays here, unchanged.)

use std::io::Write;
use std::process::ExitCode;

use super::R;
use crate::manager::Manager;

/// `rcboot` (start the boot jails by priority) or `rcshutdown` (stop them in reverse);
/// a failing jail does not stop the others, but makes the exit status 1.
pub(super) fn boot_sequence(m: &Manager, shutdown: bool, out: &mut impl Write) -> R {
    let mut jails = m.boot_order()?;
    if shutdown {
        jails.reverse();
    }
    let mut failed = 0;
    for j in jails {
        if m.is_running(&j).is_some() != shutdown {
            continue;
        }
        let res = if shutdown {
            m.stop(&j.uuid).map(|_| "stopped".to_string())
        } else {
            m.start(&j.uuid, false)
                .map(|jid| format!("started (jid {jid})"))
        };
        match res {
            Ok(what) => {
                let _ = writeln!(out, "{what}: {} ({})", j.tag(), j.uuid);
            }
            Err(e) => {
                failed += 1;
                eprintln!("jailctl: {e}");
            }
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
