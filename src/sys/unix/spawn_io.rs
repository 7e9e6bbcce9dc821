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

/// The calling process's argument area `[start, end)` (where `/proc/PID/cmdline`
/// reads from): fields 48 and 49 of `/proc/self/stat`.
#[cfg(target_os = "linux")]
pub fn argv_area() -> io::Result<(u64, u64)> {
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
    Ok((start, end))
}

/// Make `title` the whole command line of the calling process, by overwriting its
/// argument area `area` (from [`argv_area`], read before any change) through
/// `/proc/self/mem`: the title, then NULs, and a last byte that is not NUL, so the
/// kernel shows the area up to the title's end (what `setproctitle` does). Fails when
/// the title does not fit. The memory written is the process's own argv strings,
/// which no Rust value refers to.
#[cfg(target_os = "linux")]
pub fn set_cmdline(area: (u64, u64), title: &str) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    let len = (area.1 - area.0) as usize;
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
    mem.write_all_at(&buf, area.0)
}
