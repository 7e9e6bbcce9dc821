//! A VNET jail's network stack, named by its jid (the kernel's handle for a jail), and
//! the host's `ifconfig`/`route` run on it with their `-j JID` option: the host's own
//! programs act on the jail's stack, nothing from the jail's root is executed.

use crate::sys::tool::{run, ToolError};

/// A jail, by its jid.
#[derive(Debug, Clone, Copy)]
pub struct NetHandle(i32);

impl NetHandle {
    pub fn of_jid(jid: i32) -> NetHandle {
        NetHandle(jid)
    }

    /// A FreeBSD jail without `vnet` uses the host's stack.
    pub fn is_host(&self) -> bool {
        false
    }
}

/// Run `program -j JID args...` (`ifconfig` and `route` take `-j`).
pub fn run_in(h: &NetHandle, program: &str, args: &[String]) -> Result<String, ToolError> {
    let mut a = vec!["-j".to_string(), h.0.to_string()];
    a.extend(args.iter().cloned());
    run(program, &a)
}

/// Run `program args...` on the host; every `{ns}` in `args` becomes the jid
/// (`ifconfig epair0b vnet {ns}`).
pub fn run_with(h: &NetHandle, program: &str, args: &[String]) -> Result<String, ToolError> {
    let jid = h.0.to_string();
    let a: Vec<String> = args.iter().map(|x| x.replace("{ns}", &jid)).collect();
    run(program, &a)
}

/// Linux only: FreeBSD's shared-IP jails have no stack of their own to set.
pub fn write_sysctls(_h: &NetHandle, kv: &[String]) -> Result<String, ToolError> {
    Err(ToolError {
        cmd: format!("sysctl {}", kv.join(" ")),
        msg: "not used on FreeBSD".into(),
    })
}

/// The index of host interface `name` (if_nametoindex(3)); None when there is none.
pub fn if_index(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: a valid NUL-terminated string; the call only reads it.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (i != 0).then_some(i)
}
