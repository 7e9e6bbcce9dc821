//! Jails on FreeBSD: the kernel's, through libjail. Kept thin: parameter values go to
//! libjail in their exported string form, and libjail converts them with the kernel's
//! own `security.jail.param` types. The parameters known are the table completed by
//! the kernel's own list, read once ([`super::kernel_params`]). Lookups keep the
//! errno: only ENOENT means "no such jail".

use std::collections::BTreeMap;
use std::sync::OnceLock;

use super::error::{kernel_error, lookup_error};
use super::kernel_params::{self as kp, Known, RawParam};
use super::params::{self, JailParam, ParamSpec};
use super::{Flags, JailError, JailInfo, Key};
use crate::sys::freebsd as sys;
use crate::sys::freebsd::sysctl;

// The pure code's copies of the sysctl kinds must be the kernel's.
const _: () = {
    assert!(kp::kind::CTLTYPE == sysctl::CTLTYPE);
    assert!(kp::kind::NODE == sysctl::CTLTYPE_NODE);
    assert!(kp::kind::INT == sysctl::CTLTYPE_INT);
    assert!(kp::kind::STRING == sysctl::CTLTYPE_STRING);
    assert!(kp::kind::S64 == sysctl::CTLTYPE_S64);
    assert!(kp::kind::OPAQUE == sysctl::CTLTYPE_OPAQUE);
    assert!(kp::kind::UINT == sysctl::CTLTYPE_UINT);
    assert!(kp::kind::LONG == sysctl::CTLTYPE_LONG);
    assert!(kp::kind::ULONG == sysctl::CTLTYPE_ULONG);
    assert!(kp::kind::U64 == sysctl::CTLTYPE_U64);
    assert!(kp::kind::U32 == sysctl::CTLTYPE_U32);
    assert!(kp::kind::RD == sysctl::CTLFLAG_RD);
    assert!(kp::kind::WR == sysctl::CTLFLAG_WR);
    assert!(kp::kind::TUN == sysctl::CTLFLAG_TUN);
};

/// The parameters of this host, read from the kernel once per process.
fn registry() -> &'static [Known] {
    static KNOWN: OnceLock<Vec<Known>> = OnceLock::new();
    KNOWN.get_or_init(|| match sysctl::jail_params() {
        Ok(oids) => {
            let raws: Vec<RawParam> = oids
                .into_iter()
                .map(|o| RawParam {
                    name: o.name,
                    kind: o.kind,
                    fmt: o.fmt,
                    descr: o.descr,
                    value: o.value,
                })
                .collect();
            kp::merge(params::PARAMS, &kp::from_sysctl(&raws))
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot read security.jail.param: using the built-in parameter table");
            kp::table_only(params::PARAMS)
        }
    })
}

/// Every parameter known on this host (see [`params::known`]).
pub fn known_params() -> &'static [ParamSpec] {
    static SPECS: OnceLock<Vec<ParamSpec>> = OnceLock::new();
    SPECS.get_or_init(|| registry().iter().map(|k| k.spec).collect())
}

/// Does the running kernel have this parameter?
pub fn in_kernel(name: &str) -> bool {
    registry()
        .iter()
        .any(|k| k.spec.name == name && k.in_kernel)
}

/// The kernel holds every jail: a child needs nothing to find them.
pub fn child_env() -> Vec<(std::ffi::OsString, std::ffi::OsString)> {
    Vec::new()
}

pub fn getid(key: Key<'_>) -> Result<i32, JailError> {
    let s = key.to_string();
    sys::getid(&s).map_err(|e| lookup_error(&s, e.errno, &e.message))
}

pub fn getname(jid: i32) -> Result<String, JailError> {
    sys::getname(jid).map_err(|e| lookup_error(&jid.to_string(), e.errno, &e.message))
}

pub fn set(ps: &[JailParam], flags: Flags) -> Result<i32, JailError> {
    let values: Vec<(String, String)> = ps
        .iter()
        .map(|p| (p.name().to_string(), p.export()))
        .collect();
    let label = ps
        .iter()
        .find(|p| p.name() == "name" || p.name() == "jid")
        .map(JailParam::export)
        .unwrap_or_default();
    sys::set(&values, flags.0 as i32)
        .map_err(|e| kernel_error(&format!("jail \"{label}\""), e.errno, &e.message))
}

/// The names a read asks for: those the running kernel has. Asking libjail for one
/// it lacks would make it try to load a module (linux.ko for `linux.*`, tmpfs.ko for
/// `allow.mount.tmpfs`): a read must not change the host.
fn all_names() -> Vec<&'static str> {
    registry()
        .iter()
        .filter(|k| k.in_kernel)
        .map(|k| k.spec.name)
        .collect()
}

fn info(jid: i32, values: Vec<(String, String)>) -> JailInfo {
    let params: BTreeMap<String, String> = values.into_iter().collect();
    JailInfo {
        jid,
        name: params
            .get("name")
            .cloned()
            .unwrap_or_else(|| jid.to_string()),
        dying: params.get("dying").map(|d| d == "true").unwrap_or(false),
        params,
    }
}

pub fn lookup(key: Key<'_>, dying: bool) -> Result<JailInfo, JailError> {
    let (k, v) = match key {
        Key::Jid(j) => ("jid", j.to_string()),
        Key::Name(n) => ("name", n.to_string()),
    };
    let flags = if dying { Flags::DYING.0 as i32 } else { 0 };
    let (jid, values) = sys::get((k, &v), &all_names(), flags)
        .map_err(|e| lookup_error(&key.to_string(), e.errno, &e.message))?;
    Ok(info(jid, values))
}

/// Every jail, dying ones included (jls -d): `lastjid` walks them in jid order until
/// the kernel says there is none after (ENOENT); any other error is reported.
pub fn list() -> Result<Vec<JailInfo>, JailError> {
    let names = all_names();
    let mut out = Vec::new();
    let mut last = 0;
    loop {
        match sys::get(
            ("lastjid", &last.to_string()),
            &names,
            Flags::DYING.0 as i32,
        ) {
            Ok((jid, values)) => {
                out.push(info(jid, values));
                last = jid;
            }
            Err(e) => match lookup_error("", e.errno, &e.message) {
                JailError::NotFound { .. } => break,
                _ => {
                    let what = format!("jail list (after jid {last})");
                    return Err(kernel_error(&what, e.errno, &e.message));
                }
            },
        }
    }
    Ok(out)
}

pub fn remove(jid: i32) -> Result<(), JailError> {
    sys::remove(jid).map_err(|e| JailError::os(format!("jail {jid}: remove"), e))
}

pub fn attach(key: Key<'_>) -> Result<(), JailError> {
    let jid = getid(key)?;
    sys::attach(jid).map_err(|e| JailError::os(format!("jail {jid}: attach"), e))
}

/// Every process of the jail (FreeBSD jails have no init of ours).
pub fn all_processes(key: Key<'_>) -> Result<Vec<i32>, JailError> {
    processes(key)
}

/// Pids of the processes in a jail, from pgrep(1) `-j`.
pub fn processes(key: Key<'_>) -> Result<Vec<i32>, JailError> {
    let jid = getid(key)?;
    let out = std::process::Command::new("pgrep")
        .args(["-j", &jid.to_string(), "."])
        .output()
        .map_err(|e| JailError::os("pgrep", e))?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect())
}

/// Signal every process of the jail (`pkill -j JID`: the kernel matches by jail, so a
/// reused pid outside it is never hit).
pub fn signal_processes(key: Key<'_>, sig: i32) -> Result<usize, JailError> {
    let before = processes(key)?.len();
    let jid = getid(key)?;
    std::process::Command::new("pkill")
        .args([&format!("-{sig}"), "-j", &jid.to_string(), "."])
        .status()
        .map_err(|e| JailError::os("pkill", e))?;
    Ok(before)
}

/// The jail's network stack, by its jid.
pub fn net_handle(key: Key<'_>) -> Result<sys::net::NetHandle, JailError> {
    Ok(sys::net::NetHandle::of_jid(getid(key)?))
}
