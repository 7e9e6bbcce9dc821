//! Jails on FreeBSD: the kernel's, through libjail. Kept thin: parameter values go to
//! libjail in their exported string form, and libjail converts them with the kernel's
//! own `security.jail.param` types.

use std::collections::BTreeMap;

use super::params::{self, JailParam};
use super::{Flags, JailError, JailInfo, Key};
use crate::sys::freebsd as sys;

fn kernel_err(what: String, msg: String) -> JailError {
    JailError::Os {
        what,
        source: std::io::Error::other(msg),
    }
}

/// The kernel holds every jail: a child needs nothing to find them.
pub fn child_env() -> Vec<(std::ffi::OsString, std::ffi::OsString)> {
    Vec::new()
}

pub fn getid(key: Key<'_>) -> Result<i32, JailError> {
    let s = key.to_string();
    sys::getid(&s).map_err(|_| JailError::NotFound { jail: s })
}

pub fn getname(jid: i32) -> Result<String, JailError> {
    sys::getname(jid).map_err(|_| JailError::NotFound {
        jail: jid.to_string(),
    })
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
    sys::set(&values, flags.0 as i32).map_err(|m| kernel_err(format!("jail \"{label}\""), m))
}

fn all_names() -> Vec<&'static str> {
    params::PARAMS.iter().map(|p| p.name).collect()
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
    let (jid, values) =
        sys::get((k, &v), &all_names(), flags).map_err(|_| JailError::NotFound {
            jail: key.to_string(),
        })?;
    Ok(info(jid, values))
}

pub fn list() -> Result<Vec<JailInfo>, JailError> {
    let mut out = Vec::new();
    let mut last = 0;
    while let Ok((jid, values)) = sys::get(("lastjid", &last.to_string()), &all_names(), 0) {
        out.push(info(jid, values));
        last = jid;
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

// ---- issue 11, item 4 (manager side): module-dependent allow.* parameters -------

/// Does the running kernel know parameter `name`?
pub fn kernel_knows(name: &str) -> bool {
    sys::param_exists(name)
}
