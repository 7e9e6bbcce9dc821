//! The utility's side of the socket: one request, one response.

use std::io;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jaildaemon_proto::{self as proto, FrameError, Request, Response};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no jaildaemon is running on {}: start it with `jaildaemon -D`", .0.display())]
    NoDaemon(PathBuf),
    #[error("permission denied on {}: only root may talk to jaildaemon", .0.display())]
    PermissionDenied(PathBuf),
    #[error("talking to jaildaemon on {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("talking to jaildaemon on {}: {source}", path.display())]
    Frame { path: PathBuf, source: FrameError },
    #[error("refusing to talk to {}: the process listening there runs as uid {uid}, not root", path.display())]
    NotRoot { path: PathBuf, uid: u32 },
}

/// Send `req` and wait up to `timeout` for the answer.
pub fn request(socket: &Path, req: &Request, timeout: Duration) -> Result<Response, ClientError> {
    let mut s = UnixStream::connect(socket).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => {
            ClientError::NoDaemon(socket.into())
        }
        io::ErrorKind::PermissionDenied => ClientError::PermissionDenied(socket.into()),
        _ => ClientError::Io {
            path: socket.into(),
            source: e,
        },
    })?;
    let io_err = |e: io::Error| ClientError::Io {
        path: socket.into(),
        source: e,
    };
    // Nothing is sent to a server that is not root's: a fake daemon learns nothing.
    let uid = crate::sys::unix::peer_uid(std::os::fd::AsRawFd::as_raw_fd(&s)).map_err(io_err)?;
    if uid != 0 {
        return Err(ClientError::NotRoot {
            path: socket.into(),
            uid,
        });
    }
    s.set_read_timeout(Some(timeout)).map_err(io_err)?;
    s.set_write_timeout(Some(timeout)).map_err(io_err)?;
    let fr = |e: FrameError| ClientError::Frame {
        path: socket.into(),
        source: e,
    };
    proto::write_message(&mut s, req).map_err(fr)?;
    let body = proto::read_frame(&mut s).map_err(fr)?;
    proto::decode(&body).map_err(fr)
}

/// Every probe, a page at a time.
pub fn list_all(
    socket: &Path,
    timeout: Duration,
) -> Result<Result<Vec<proto::ProbeInfo>, String>, ClientError> {
    let mut all = Vec::new();
    let mut after = 0;
    loop {
        match request(socket, &Request::List { after }, timeout)? {
            Response::Probes { probes, next } => {
                all.extend(probes);
                match next {
                    Some(n) if n > after => after = n,
                    Some(_) => return Ok(Err("the daemon's list did not advance".into())),
                    None => return Ok(Ok(all)),
                }
            }
            Response::Error { message } => return Ok(Err(message)),
            other => return Ok(Err(format!("unexpected answer from the daemon: {other:?}"))),
        }
    }
}

/// The pid of the daemon answering on `socket`, if one does.
pub fn ping(socket: &Path) -> Option<u32> {
    match request(socket, &Request::Ping, Duration::from_secs(2)) {
        Ok(Response::Pong { pid, .. }) => Some(pid),
        _ => None,
    }
}
