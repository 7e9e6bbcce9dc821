//! Whether the running kernel knows a jail parameter (`security.jail.param.NAME`).

/// Where jailctl keeps locks and run states (hier(7): `/var/run`, cleared at boot by
/// rc only in part; run states also carry [`boot_id`]).
pub const RUN_DIR: &str = "/var/run/jailctl";

/// This boot's identity: `kern.boot_id` (random, fixed for the boot) where the
/// kernel has it. Not `kern.boottime`, which moves when the clock is stepped. Without
/// it, none: rc.d/cleanvar empties /var/run at boot.
pub fn boot_id() -> Option<String> {
    let mut buf = [0u8; 64];
    let mut len = buf.len();
    // SAFETY: sysctlbyname writes at most `len` bytes into the local buffer.
    let rc = unsafe {
        libc::sysctlbyname(
            c"kern.boot_id".as_ptr(),
            buf.as_mut_ptr().cast(),
            &mut len,
            std::ptr::null(),
            0,
        )
    };
    (rc == 0 && len > 0).then(|| buf[..len].iter().map(|b| format!("{b:02x}")).collect())
}
