//! Whether the running kernel knows a jail parameter (`security.jail.param.NAME`).

use std::ffi::CString;

/// Does `security.jail.param.<name>` exist (module-dependent parameters exist only
/// while their module is loaded)?
pub fn param_exists(name: &str) -> bool {
    let Ok(c) = CString::new(format!("security.jail.param.{name}")) else {
        return false;
    };
    let mut mib = [0 as libc::c_int; 24];
    let mut len = mib.len();
    // SAFETY: sysctlnametomib writes at most `len` ints into `mib` and updates `len`.
    unsafe { libc::sysctlnametomib(c.as_ptr(), mib.as_mut_ptr(), &mut len) == 0 }
}

/// Where jailctl keeps locks and run states (hier(7): `/var/run`, cleared at boot by
/// rc only in part; run states also carry [`boot_id`]).
pub const RUN_DIR: &str = "/var/run/jailctl";

/// This boot's identity: `kern.boottime`, seconds and microseconds.
pub fn boot_id() -> Option<String> {
    let mut tv: libc::timeval = libc::timeval {
        tv_sec: 0,
        tv_usec: 0,
    };
    let mut len = std::mem::size_of::<libc::timeval>();
    // SAFETY: sysctlbyname writes at most `len` bytes into the local timeval.
    let rc = unsafe {
        libc::sysctlbyname(
            c"kern.boottime".as_ptr(),
            (&mut tv as *mut libc::timeval).cast(),
            &mut len,
            std::ptr::null(),
            0,
        )
    };
    (rc == 0).then(|| format!("{}.{:06}", tv.tv_sec, tv.tv_usec))
}
