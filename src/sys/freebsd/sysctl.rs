//! sysctl(3) by MIB, to read the kernel's own description of its jail parameters the
//! way libjail's `jailparam_all` and `jailparam_type` do: the leaves below
//! `security.jail.param`, walked with `sysctl.next` ({0,2}), each named with
//! `sysctl.name` ({0,1}) and typed with `sysctl.oidfmt` ({0,4}); `sysctl.oiddescr`
//! ({0,5}) gives its description, and a string parameter's value is its maximum
//! length. `sysctl.name2oid` ({0,3}) finds the subtree.
//!
//! Raw data only: what it means (names, types) is decided by the jail layer's
//! `kernel_params`, which is unit-tested on every OS.

use std::io;
use std::os::raw::{c_int, c_uint, c_void};

/// The sysctl subtree of jail parameters.
pub const JAIL_PARAM_ROOT: &str = "security.jail.param";

/// The kernel's kind bits and type values, re-exported so the jail layer can check
/// at compile time that its own copies (used in its pure, OS-independent code) agree.
pub const CTLTYPE: u32 = libc::CTLTYPE as u32;
pub const CTLTYPE_NODE: u32 = libc::CTLTYPE_NODE as u32;
pub const CTLTYPE_INT: u32 = libc::CTLTYPE_INT as u32;
pub const CTLTYPE_STRING: u32 = libc::CTLTYPE_STRING as u32;
pub const CTLTYPE_S64: u32 = libc::CTLTYPE_S64 as u32;
pub const CTLTYPE_OPAQUE: u32 = libc::CTLTYPE_OPAQUE as u32;
pub const CTLTYPE_UINT: u32 = libc::CTLTYPE_UINT as u32;
pub const CTLTYPE_LONG: u32 = libc::CTLTYPE_LONG as u32;
pub const CTLTYPE_ULONG: u32 = libc::CTLTYPE_ULONG as u32;
pub const CTLTYPE_U64: u32 = libc::CTLTYPE_U64 as u32;
pub const CTLTYPE_U32: u32 = libc::CTLTYPE_U32 as u32;
pub const CTLFLAG_RD: u32 = libc::CTLFLAG_RD as u32;
pub const CTLFLAG_WR: u32 = libc::CTLFLAG_WR as u32;
pub const CTLFLAG_TUN: u32 = libc::CTLFLAG_TUN as u32;

const MAXNAME: usize = libc::CTL_MAXNAME as usize;
/// Room for a name, a format or a description (libjail uses MAXPATHLEN).
const TEXT_MAX: usize = 1024;

/// One leaf below `security.jail.param`, as the kernel describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidInfo {
    /// The full sysctl name (`security.jail.param.allow.mount.`).
    pub name: String,
    /// `oid_kind`: type and flags.
    pub kind: u32,
    /// The format string (`I`, `B`, `E,jailsys`, `S,in_addr,a`, `A`, ...).
    pub fmt: String,
    pub descr: String,
    /// For a string leaf, its value: the maximum length as a decimal string.
    pub value: Option<String>,
}

/// sysctl(3): read into `out` (its length is the room), writing `new` if given;
/// returns the length read.
fn call(mib: &[c_int], out: &mut [u8], new: Option<&[u8]>) -> io::Result<usize> {
    let mut len: libc::size_t = out.len();
    let (np, nl) = match new {
        Some(n) => (n.as_ptr().cast::<c_void>(), n.len()),
        None => (std::ptr::null(), 0),
    };
    // SAFETY: mib, out and new are valid for the lengths given; the kernel writes at
    // most `len` bytes into out and updates len.
    let r = unsafe {
        libc::sysctl(
            mib.as_ptr(),
            mib.len() as c_uint,
            out.as_mut_ptr().cast::<c_void>(),
            &mut len,
            np,
            nl,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(len.min(out.len()))
}

fn ints(bytes: &[u8]) -> Vec<c_int> {
    bytes
        .chunks_exact(std::mem::size_of::<c_int>())
        .map(|c| c_int::from_ne_bytes(c.try_into().expect("chunk of an int's size")))
        .collect()
}

fn text(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

fn meta(op: c_int, oid: &[c_int]) -> Vec<c_int> {
    let mut mib = vec![0, op];
    mib.extend_from_slice(oid);
    mib
}

/// `sysctl.name2oid`: the MIB of a sysctl name.
pub fn name2oid(name: &str) -> io::Result<Vec<c_int>> {
    let mut out = [0u8; MAXNAME * std::mem::size_of::<c_int>()];
    let n = call(&[0, 3], &mut out, Some(name.as_bytes()))?;
    Ok(ints(&out[..n]))
}

/// `sysctl.next`: the leaf after `oid` in the whole tree, or None at its end.
pub fn next(oid: &[c_int]) -> io::Result<Option<Vec<c_int>>> {
    let mut out = [0u8; MAXNAME * std::mem::size_of::<c_int>()];
    match call(&meta(2, oid), &mut out, None) {
        Ok(n) => Ok(Some(ints(&out[..n]))),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// `sysctl.name`: the dotted name of a MIB.
pub fn name(oid: &[c_int]) -> io::Result<String> {
    let mut out = [0u8; TEXT_MAX];
    let n = call(&meta(1, oid), &mut out, None)?;
    Ok(text(&out[..n]))
}

/// `sysctl.oidfmt`: the kind (type and flags) and the format string of a MIB.
pub fn oidfmt(oid: &[c_int]) -> io::Result<(u32, String)> {
    let mut out = [0u8; 4 + TEXT_MAX];
    let n = call(&meta(4, oid), &mut out, None)?;
    if n < 4 {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let kind = u32::from_ne_bytes(out[..4].try_into().expect("four bytes"));
    Ok((kind, text(&out[4..n])))
}

/// `sysctl.oiddescr`: the description of a MIB (empty when it has none).
pub fn oiddescr(oid: &[c_int]) -> String {
    let mut out = [0u8; TEXT_MAX];
    call(&meta(5, oid), &mut out, None)
        .map(|n| text(&out[..n]))
        .unwrap_or_default()
}

/// The value of a string sysctl.
pub fn string_value(oid: &[c_int]) -> io::Result<String> {
    let mut out = [0u8; 64];
    let n = call(oid, &mut out, None)?;
    Ok(text(&out[..n]))
}

/// Every leaf below `security.jail.param`, in the kernel's order.
pub fn jail_params() -> io::Result<Vec<OidInfo>> {
    let root = name2oid(JAIL_PARAM_ROOT)?;
    let mut out = Vec::new();
    let mut cur = root.clone();
    while let Some(oid) = next(&cur)? {
        if !oid.starts_with(&root) {
            break;
        }
        let (kind, fmt) = oidfmt(&oid)?;
        let value = if kind & CTLTYPE == CTLTYPE_STRING {
            string_value(&oid).ok()
        } else {
            None
        };
        out.push(OidInfo {
            name: name(&oid)?,
            kind,
            fmt,
            descr: oiddescr(&oid),
            value,
        });
        cur = oid;
    }
    Ok(out)
}
