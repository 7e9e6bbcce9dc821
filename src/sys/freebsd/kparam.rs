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
