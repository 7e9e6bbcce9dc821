//! What the probe spawner needs of the OS (see `probe::spawner`): a bounded send on
//! its request socket, and rewriting the process's own argument area, so that a
//! worker forked from the spawner shows its probe's title (`/proc/PID/cmdline`)
//! without an exec.

#[allow(unused_imports)]
use super::*;

/// Send one datagram with `fds` attached, waiting at most `timeout` for room on the
/// socket. A peer that is gone is `BrokenPipe` (or `ConnectionReset`).
pub fn send_with_fds_timeout(
    sock: &OwnedFd,
    data: &[u8],
    fds: &[RawFd],
    timeout: std::time::Duration,
) -> io::Result<()> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags, UnixAddr};
    use std::os::fd::{AsFd, AsRawFd};
    let deadline = std::time::Instant::now() + timeout;
    let iov = [io::IoSlice::new(data)];
    let cmsg = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &cmsg };
    loop {
        match sendmsg::<UnixAddr>(
            sock.as_raw_fd(),
            &iov,
            cmsgs,
            MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL,
            None,
        ) {
            Ok(_) => return Ok(()),
            Err(nix::errno::Errno::EAGAIN) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(io::Error::from(io::ErrorKind::TimedOut));
        }
        let ms = PollTimeout::try_from(left.as_millis().clamp(1, i32::MAX as u128) as i32)
            .unwrap_or(PollTimeout::MAX);
        let mut p = [PollFd::new(sock.as_fd(), PollFlags::POLLOUT)];
        match poll(&mut p, ms) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// Whether `fd` has something to read (or its peer is gone) right now.
pub fn readable_now(fd: &OwnedFd) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let mut p = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    matches!(poll(&mut p, PollTimeout::ZERO), Ok(n) if n > 0)
}

/// Whether the peer of a connected socket is gone, or has shut the connection down
/// (`POLLHUP`/`POLLERR`), right now. What is still queued may be readable.
pub fn peer_gone(fd: &OwnedFd) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let mut p = [PollFd::new(fd.as_fd(), PollFlags::empty())];
    match poll(&mut p, PollTimeout::ZERO) {
        Ok(n) if n > 0 => p[0]
            .revents()
            .is_some_and(|r| r.intersects(PollFlags::POLLHUP | PollFlags::POLLERR)),
        _ => false,
    }
}

/// Shut a connected socket down both ways: the peer's sends fail from now on
/// (`EPIPE`), what it sent before stays readable here.
pub fn shutdown_socket(fd: &OwnedFd) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    nix::sys::socket::shutdown(fd.as_raw_fd(), nix::sys::socket::Shutdown::Both)
        .map_err(io::Error::from)
}

/// `CLOCK_MONOTONIC` in milliseconds: one clock for every process of the host (jails
/// cannot have a time namespace), so a deadline taken by the daemon holds in a helper.
pub fn monotonic_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into a local timespec.
    unsafe {
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
    }
    (ts.tv_sec as u64) * 1000 + (ts.tv_nsec as u64) / 1_000_000
}

/// The calling process's argument area (where `/proc/PID/cmdline` reads from), as
/// [`argv_area`] read it. Only `argv_area` makes one, so [`set_cmdline`] writes
/// nothing but this process's (or a forked copy's) own argv strings.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub struct ArgvArea {
    start: u64,
    end: u64,
}

/// The calling process's argument area `[start, end)`: fields 48 and 49 of
/// `/proc/self/stat`. Read it before any change to the area.
#[cfg(target_os = "linux")]
pub fn argv_area() -> io::Result<ArgvArea> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // The command name (field 2) may hold spaces and parentheses: count from the last
    // ')', which ends it; what follows is field 3.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "/proc/self/stat"))?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| -> io::Result<u64> {
        f.get(n - 3)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "/proc/self/stat"))
    };
    let (start, end) = (field(48)?, field(49)?);
    if start == 0 || end <= start {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "no argument area in /proc/self/stat",
        ));
    }
    Ok(ArgvArea { start, end })
}

/// Make `title` the whole command line of the calling process, by overwriting its
/// argument area `area` through `/proc/self/mem`: the title, then NULs, and a last
/// byte that is not NUL, so the kernel shows the area up to the title's end (what
/// `setproctitle` does). Fails when the title does not fit. The memory written is the
/// process's own argv strings (an [`ArgvArea`] names nothing else), which no Rust
/// value refers to.
#[cfg(target_os = "linux")]
pub fn set_cmdline(area: ArgvArea, title: &str) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    let len = (area.end - area.start) as usize;
    if title.len() + 2 > len || title.as_bytes().contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "the title ({} bytes) does not fit the spawner's argument area ({len} bytes)",
                title.len()
            ),
        ));
    }
    let mut buf = vec![0u8; len];
    buf[..title.len()].copy_from_slice(title.as_bytes());
    buf[len - 1] = b' ';
    let mem = std::fs::OpenOptions::new()
        .write(true)
        .open("/proc/self/mem")?;
    mem.write_all_at(&buf, area.start)
}

/// Keep SIGCHLD pending instead of acted on (its default is to be discarded), so that
/// [`wait_sigchld`] can wait for a child to end without missing one that already has.
pub fn block_sigchld() {
    // SAFETY: signal-state system calls on a local set.
    unsafe {
        libc::signal(libc::SIGCHLD, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// Wait at most `timeout` for a SIGCHLD (blocked by [`block_sigchld`]); one that came
/// before the call returns at once. The caller then reaps.
#[cfg(target_os = "linux")]
pub fn wait_sigchld(timeout: std::time::Duration) {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: sigtimedwait reads a local set and timespec; no siginfo is asked for.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        libc::sigtimedwait(&set, std::ptr::null_mut(), &ts);
    }
}

/// Bound the life of a worker the spawner (`parent`) just forked, by the kernel alone:
/// SIGKILL when the spawner dies (Linux `PR_SET_PDEATHSIG`), and SIGALRM, whose
/// default action ends it, after `limit`. Returns false when the spawner is already
/// gone (it died before the parent-death signal was asked for): the worker must exit.
#[cfg(target_os = "linux")]
pub fn bound_worker(parent: i32, limit: std::time::Duration) -> bool {
    if die_with_parent() != parent {
        return false;
    }
    // SAFETY: signal-state system calls on a local set; alarm takes an integer.
    unsafe {
        libc::signal(libc::SIGALRM, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGALRM);
        libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::alarm(limit.as_secs().max(1) as libc::c_uint);
    }
    true
}
