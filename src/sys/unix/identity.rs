//! A process's identity across a restart of the daemon: its pid and its start time,
//! which differs for every process that ever held that pid.

#[allow(unused_imports)]
use super::*;

/// Start time of live process `pid` (Linux: clock ticks since boot, field 22 of
/// /proc/PID/stat; FreeBSD: `ki_start` of its `kinfo_proc`, in microseconds since
/// the epoch). `Ok(None)`: no such process, or a zombie.
pub fn process_start(pid: i32) -> io::Result<Option<u64>> {
    #[cfg(target_os = "linux")]
    return Ok(crate::sys::os::proc_state(pid)?.and_then(|(t, zombie)| (!zombie).then_some(t)));
    #[cfg(target_os = "freebsd")]
    return Ok(super::signals::kinfo(pid)
        .filter(|kp| kp.ki_stat != libc::SZOMB)
        .map(|kp| kp.ki_start.tv_sec as u64 * 1_000_000 + kp.ki_start.tv_usec as u64));
}

/// SIGKILL process `pid` only if it is alive and started at `start`. On Linux a pidfd
/// is opened first and the start time checked after, so the signal reaches exactly
/// the process that was checked (a pid reused in between has another start time).
/// On FreeBSD the check and the kill are two calls; the caller checks the process is
/// in the jail it expects. Returns whether a signal was sent.
pub fn kill_if_started_at(pid: i32, start: u64) -> io::Result<bool> {
    if pid <= 1 {
        return Ok(false);
    }
    #[cfg(target_os = "linux")]
    {
        let fd = match pidfd_open(pid) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Ok(false),
            Err(e) => return Err(e),
        };
        if process_start(pid)? != Some(start) {
            return Ok(false);
        }
        match pidfd_kill(&fd) {
            Ok(()) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(false),
            Err(e) => Err(e),
        }
    }
    #[cfg(target_os = "freebsd")]
    {
        if process_start(pid)? != Some(start) {
            return Ok(false);
        }
        // SAFETY: kill(2) has no memory-safety preconditions.
        if unsafe { libc::kill(pid, libc::SIGKILL) } != 0 {
            let e = io::Error::last_os_error();
            return if e.raw_os_error() == Some(libc::ESRCH) {
                Ok(false)
            } else {
                Err(e)
            };
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_start_time_is_stable_and_a_reused_start_is_refused() {
        let me = std::process::id() as i32;
        let t = process_start(me).unwrap().expect("I am alive");
        assert_eq!(process_start(me).unwrap(), Some(t));
        // a wrong start time never kills (here: ourselves)
        assert!(!kill_if_started_at(me, t + 1).unwrap());
        assert_eq!(process_start(i32::MAX).unwrap(), None);
    }
}
