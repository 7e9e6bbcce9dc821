//! Descriptors, sockets and files: SCM_RIGHTS, peer credentials, timed reads,
//! directory walks that never follow links.

#[allow(unused_imports)]
use super::*;

/// A connected pair of `SOCK_SEQPACKET` unix sockets (close-on-exec): one datagram
/// per message, with descriptors passed as `SCM_RIGHTS`.
pub fn seqpacket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(io::Error::from)
}

/// Send one datagram with `fds` attached.
pub fn send_with_fds(sock: &OwnedFd, data: &[u8], fds: &[RawFd]) -> io::Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags, UnixAddr};
    use std::os::fd::AsRawFd;
    let iov = [io::IoSlice::new(data)];
    let cmsg = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &cmsg };
    sendmsg::<UnixAddr>(sock.as_raw_fd(), &iov, cmsgs, MsgFlags::empty(), None)
        .map(|_| ())
        .map_err(io::Error::from)
}

/// Receive one datagram (at most `max` bytes) and the descriptors attached to it,
/// waiting at most `timeout`. `Ok(None)` on timeout; an empty datagram means the
/// peer closed. A truncated datagram or control message is an error.
pub fn recv_with_fds(
    sock: &OwnedFd,
    max: usize,
    timeout: std::time::Duration,
) -> io::Result<Option<(Vec<u8>, Vec<OwnedFd>)>> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, UnixAddr};
    use std::os::fd::{AsFd, AsRawFd};
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let ms = PollTimeout::try_from(left.as_millis().min(i32::MAX as u128) as i32)
            .unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(sock.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, ms) {
            Ok(0) => return Ok(None),
            Ok(_) => break,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    let mut buf = vec![0u8; max];
    let mut space = nix::cmsg_space!([RawFd; 4]);
    let (n, flags, got) = {
        let mut iov = [io::IoSliceMut::new(&mut buf)];
        let msg = recvmsg::<UnixAddr>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .map_err(io::Error::from)?;
        let mut got = Vec::new();
        for c in msg.cmsgs().map_err(io::Error::from)? {
            if let ControlMessageOwned::ScmRights(v) = c {
                // SAFETY: SCM_RIGHTS descriptors are new descriptors we now own.
                got.extend(v.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }));
            }
        }
        (msg.bytes, msg.flags, got)
    };
    if flags.intersects(MsgFlags::MSG_TRUNC | MsgFlags::MSG_CTRUNC) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "message or attached descriptors truncated",
        ));
    }
    buf.truncate(n);
    Ok(Some((buf, got)))
}

/// Write all of `data` to `fd`.
pub fn write_all_fd(fd: RawFd, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        // SAFETY: writing from a valid slice.
        let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        data = &data[n as usize..];
    }
    Ok(())
}

/// Read from `fd` until EOF or `max` bytes, waiting at most `timeout` in all.
/// `Ok(None)` when the time ran out.
pub fn read_with_timeout(
    fd: &OwnedFd,
    max: usize,
    timeout: std::time::Duration,
) -> io::Result<Option<Vec<u8>>> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::{AsFd, AsRawFd};
    let deadline = std::time::Instant::now() + timeout;
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        let ms = PollTimeout::try_from(left.as_millis().min(i32::MAX as u128) as i32)
            .unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, ms) {
            Ok(0) => return Ok(None),
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
        // SAFETY: reading into a stack buffer.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 || out.len() + n as usize > max {
            out.extend_from_slice(&buf[..(n as usize).min(max - out.len())]);
            return Ok(Some(out));
        }
        out.extend_from_slice(&buf[..n as usize]);
    }
}

pub fn geteuid() -> u32 {
    // SAFETY: plain system call.
    unsafe { libc::geteuid() }
}

/// The uid of the process at the other end of a connected unix socket (the kernel's
/// record, not anything it sent).
pub fn peer_uid(fd: RawFd) -> io::Result<u32> {
    #[cfg(target_os = "linux")]
    {
        let mut cred = libc::ucred {
            pid: 0,
            uid: 0,
            gid: 0,
        };
        let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
        // SAFETY: SO_PEERCRED fills a ucred of `len` bytes.
        check(unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_PEERCRED,
                (&mut cred as *mut libc::ucred).cast(),
                &mut len,
            )
        })?;
        Ok(cred.uid)
    }
    #[cfg(target_os = "freebsd")]
    {
        let mut uid: libc::uid_t = 0;
        let mut gid: libc::gid_t = 0;
        // SAFETY: getpeereid writes two integers into locals.
        check(unsafe { libc::getpeereid(fd, &mut uid, &mut gid) })?;
        Ok(uid)
    }
}

/// Create `rel` and its missing parents, each with `mkdirat` in a parent directory
/// that `open_dir` opens (the caller's way of staying inside a root). `..` is refused.
pub fn mkdir_all_with(
    rel: &std::path::Path,
    open_dir: impl Fn(&std::path::Path) -> io::Result<OwnedFd>,
) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    use std::path::{Component, PathBuf};
    let mut cur = PathBuf::new();
    for comp in rel.components() {
        let name = match comp {
            Component::Normal(n) => n,
            Component::ParentDir => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{}: '..' is not allowed", rel.display()),
                ))
            }
            _ => continue,
        };
        let parent = open_dir(&cur)?;
        let c = CString::new(name.as_encoded_bytes())
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: mkdirat relative to a directory descriptor we hold.
        if unsafe { libc::mkdirat(parent.as_raw_fd(), c.as_ptr(), 0o755) } != 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EEXIST) {
                return Err(e);
            }
        }
        cur.push(name);
    }
    Ok(())
}

/// Replace `name` in the directory `dir` (a real, not O_PATH, descriptor) with
/// `data`: a temporary file made with `O_EXCL|O_NOFOLLOW`, fsync, then `renameat`
/// over `name`, which replaces a symlink there instead of following it.
pub fn replace_in_dir(
    dir: &OwnedFd,
    name: &std::ffi::OsStr,
    data: &[u8],
    mode: u32,
) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let tmp = CString::new(format!(
        ".{}.jailctl-{}",
        name.to_string_lossy(),
        std::process::id()
    ))
    .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let fname = CString::new(name.as_encoded_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: unlinkat/openat relative to the caller's directory descriptor.
    let fd = unsafe {
        libc::unlinkat(dir.as_raw_fd(), tmp.as_ptr(), 0);
        libc::openat(
            dir.as_raw_fd(),
            tmp.as_ptr(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            mode as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new descriptor we own.
    let f = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let res = (|| {
        use std::io::Write;
        (&f).write_all(data)?;
        f.sync_all()?;
        // SAFETY: renameat within one directory; the final name is replaced.
        if unsafe {
            libc::renameat(
                dir.as_raw_fd(),
                tmp.as_ptr(),
                dir.as_raw_fd(),
                fname.as_ptr(),
            )
        } != 0
        {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    })();
    if res.is_err() {
        // SAFETY: as above.
        unsafe { libc::unlinkat(dir.as_raw_fd(), tmp.as_ptr(), 0) };
    }
    res
}

/// `rel` as a path relative to a directory descriptor (a leading `/` dropped; `.`
/// for the directory itself).
pub(crate) fn rel_of(rel: &std::path::Path) -> CString {
    let s = rel.to_string_lossy();
    let t = s.trim_start_matches('/');
    CString::new(if t.is_empty() { "." } else { t }).unwrap_or_else(|_| c".".to_owned())
}

/// An error with what was being done in front of it.
pub(crate) fn ctx(e: io::Error, what: String) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

// ---- daemon and probe helpers (the daemon split of issue #10) ----------------------

/// Read a regular file of at most `max` bytes from an open descriptor; anything else
/// (a FIFO, a device, a directory) or a larger file is refused.
pub(super) fn read_regular(fd: OwnedFd, what: &std::path::Path, max: u64) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let mut f = std::fs::File::from(fd);
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: not a regular file", what.display()),
        ));
    }
    let mut out = Vec::new();
    (&mut f).take(max + 1).read_to_end(&mut out)?;
    if out.len() as u64 > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: larger than {max} bytes", what.display()),
        ));
    }
    Ok(out)
}

/// Read the regular file `path` (at most `max` bytes), opened without blocking, so a
/// FIFO or a device planted in its place cannot make the caller wait.
pub fn read_regular_file(path: &std::path::Path, max: u64) -> io::Result<Vec<u8>> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    read_regular(f.into(), path, max)
}

/// [`read_regular_file`] for `rel` resolved inside `root` (see `RootDir`).
pub fn read_regular_file_in(
    root: &crate::sys::os::RootDir,
    rel: &std::path::Path,
    max: u64,
) -> io::Result<Vec<u8>> {
    let fd = root.open_at(rel, libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY, 0)?;
    read_regular(fd, rel, max)
}

/// close_range(2) of `lo..=hi`.
pub(super) fn close_fd_range(lo: u32, hi: u32) {
    #[cfg(target_os = "linux")]
    // SAFETY: close_range only closes descriptors; the caller no longer uses them.
    let rc = unsafe { libc::syscall(libc::SYS_close_range, lo, hi, 0u32) } as i32;
    #[cfg(target_os = "freebsd")]
    // SAFETY: as above.
    let rc = unsafe { libc::close_range(lo, hi, 0) };
    if rc != 0 {
        // No close_range (Linux before 5.9): one by one, up to the descriptor limit.
        // SAFETY: getrlimit fills a local struct.
        let limit = unsafe {
            let mut r: libc::rlimit = std::mem::zeroed();
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 {
                r.rlim_cur.min(1 << 20) as u32
            } else {
                1024
            }
        };
        for fd in lo..=hi.min(limit) {
            // SAFETY: as above.
            unsafe { libc::close(fd as i32) };
        }
    }
}

/// Close every descriptor from 3 up but those in `keep` (a forked child dropping what
/// it inherited from its parent: locks, sockets, files).
pub fn close_fds_except(keep: &[RawFd]) {
    let mut keep: Vec<u32> = keep
        .iter()
        .filter(|&&f| f >= 3)
        .map(|&f| f as u32)
        .collect();
    keep.sort_unstable();
    keep.dedup();
    let mut lo = 3u32;
    for k in keep {
        if k > lo {
            close_fd_range(lo, k - 1);
        }
        lo = k + 1;
    }
    close_fd_range(lo, u32::MAX);
}
