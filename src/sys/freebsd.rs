//! Every FreeBSD system and library call of the project that needs `unsafe`: libjail
//! (jail(3)), jail_attach(2), jail_remove(2), credentials.
//!
//! Parameters go through libjail, which converts them with the kernel's own
//! `security.jail.param` sysctl types.

use std::ffi::{CStr, CString};
use std::io;
use std::os::raw::{c_char, c_int, c_uint, c_void};

/// `struct jailparam` of `<jail.h>`.
#[repr(C)]
struct JailParamC {
    jp_name: *mut c_char,
    jp_value: *mut c_void,
    jp_valuelen: libc::size_t,
    jp_elemlen: libc::size_t,
    jp_ctltype: c_int,
    jp_structtype: c_int,
    jp_flags: c_uint,
}

const JAIL_ERRMSGLEN: usize = 1024;

#[link(name = "jail")]
extern "C" {
    static jail_errmsg: [c_char; JAIL_ERRMSGLEN];
    fn jail_getid(name: *const c_char) -> c_int;
    fn jail_getname(jid: c_int) -> *mut c_char;
    fn jailparam_init(jp: *mut JailParamC, name: *const c_char) -> c_int;
    fn jailparam_import(jp: *mut JailParamC, value: *const c_char) -> c_int;
    fn jailparam_set(jp: *mut JailParamC, njp: c_uint, flags: c_int) -> c_int;
    fn jailparam_get(jp: *mut JailParamC, njp: c_uint, flags: c_int) -> c_int;
    fn jailparam_export(jp: *mut JailParamC) -> *mut c_char;
    fn jailparam_free(jp: *mut JailParamC, njp: c_uint);
}

fn errmsg() -> String {
    // SAFETY: jail_errmsg is a NUL-terminated buffer owned by libjail; we copy it out
    // at once (the process is single-threaded where libjail is used).
    let s = unsafe { CStr::from_ptr(std::ptr::addr_of!(jail_errmsg).cast::<c_char>()) };
    let m = s.to_string_lossy().into_owned();
    if m.is_empty() {
        io::Error::last_os_error().to_string()
    } else {
        m
    }
}

/// A list of initialised libjail parameters, freed on drop.
struct Params(Vec<JailParamC>);

impl Params {
    fn new() -> Self {
        Params(Vec::new())
    }

    /// `jailparam_init` (+ `jailparam_import` when a value is given).
    fn push(&mut self, name: &str, value: Option<&str>) -> Result<(), String> {
        let cname = CString::new(name).map_err(|_| format!("{name}: NUL in name"))?;
        // SAFETY: a zeroed jailparam is what jailparam_init expects to fill.
        let mut jp: JailParamC = unsafe { std::mem::zeroed() };
        // SAFETY: jp is a valid jailparam; cname is NUL-terminated.
        if unsafe { jailparam_init(&mut jp, cname.as_ptr()) } != 0 {
            return Err(errmsg());
        }
        self.0.push(jp);
        if let Some(v) = value {
            let cv = CString::new(v).map_err(|_| format!("{name}: NUL in value"))?;
            let last = self.0.last_mut().expect("just pushed");
            // SAFETY: `last` was initialised by jailparam_init; cv is NUL-terminated.
            if unsafe { jailparam_import(last, cv.as_ptr()) } != 0 {
                return Err(errmsg());
            }
        }
        Ok(())
    }

    fn export(&mut self, i: usize) -> Option<String> {
        // SAFETY: index i holds an initialised jailparam; the returned string is ours
        // to free.
        unsafe {
            let p = jailparam_export(&mut self.0[i]);
            if p.is_null() {
                return None;
            }
            let s = CStr::from_ptr(p).to_string_lossy().into_owned();
            libc::free(p.cast());
            Some(s)
        }
    }

    fn name(&self, i: usize) -> String {
        // SAFETY: jp_name was set by jailparam_init to a NUL-terminated string.
        unsafe {
            CStr::from_ptr(self.0[i].jp_name)
                .to_string_lossy()
                .into_owned()
        }
    }
}

impl Drop for Params {
    fn drop(&mut self) {
        // SAFETY: every element was initialised by jailparam_init.
        unsafe { jailparam_free(self.0.as_mut_ptr(), self.0.len() as c_uint) };
    }
}

/// `jail_getid`.
pub fn getid(name: &str) -> Result<i32, String> {
    let c = CString::new(name).map_err(|_| "NUL in jail name".to_string())?;
    // SAFETY: c is NUL-terminated.
    let jid = unsafe { jail_getid(c.as_ptr()) };
    if jid < 0 {
        Err(errmsg())
    } else {
        Ok(jid)
    }
}

/// `jail_getname`.
pub fn getname(jid: i32) -> Result<String, String> {
    // SAFETY: jail_getname returns a malloc'd string or NULL.
    unsafe {
        let p = jail_getname(jid);
        if p.is_null() {
            return Err(errmsg());
        }
        let s = CStr::from_ptr(p).to_string_lossy().into_owned();
        libc::free(p.cast());
        Ok(s)
    }
}

/// `jailparam_set` with string values.
pub fn set(values: &[(String, String)], flags: i32) -> Result<i32, String> {
    let mut ps = Params::new();
    for (n, v) in values {
        ps.push(n, Some(v))?;
    }
    // SAFETY: all parameters were initialised and imported.
    let jid = unsafe { jailparam_set(ps.0.as_mut_ptr(), ps.0.len() as c_uint, flags) };
    if jid < 0 {
        Err(errmsg())
    } else {
        Ok(jid)
    }
}

/// `jailparam_get`: the key (`jid`, `name` or `lastjid`) with its value, then the
/// names to read; names the running kernel does not know are skipped.
pub fn get(
    key: (&str, &str),
    names: &[&str],
    flags: i32,
) -> Result<(i32, Vec<(String, String)>), String> {
    let mut ps = Params::new();
    ps.push(key.0, Some(key.1))?;
    for n in names {
        if *n != key.0 {
            let _ = ps.push(n, None);
        }
    }
    // SAFETY: all parameters were initialised; the key was imported.
    let jid = unsafe { jailparam_get(ps.0.as_mut_ptr(), ps.0.len() as c_uint, flags) };
    if jid < 0 {
        return Err(errmsg());
    }
    let mut out = Vec::new();
    for i in 0..ps.0.len() {
        let name = ps.name(i);
        if let Some(v) = ps.export(i) {
            out.push((name, v));
        }
    }
    Ok((jid, out))
}

/// `jail_remove(2)`.
pub fn remove(jid: i32) -> io::Result<()> {
    // SAFETY: plain system call.
    if unsafe { libc::jail_remove(jid) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `jail_attach(2)`.
pub fn attach(jid: i32) -> io::Result<()> {
    // SAFETY: plain system call.
    if unsafe { libc::jail_attach(jid) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
