//! The socket side of the daemon: one request frame in, one response frame out.

use std::sync::Arc;
use std::time::Duration;

use jaildaemon_proto::{self as proto, FrameError, Request, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{watch, Semaphore};

use super::probes::Manager;

/// How long a client may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once. Each is served on its own task with its own read
/// limit, so an idle client delays nobody; past this bound the daemon stops
/// accepting until one ends (further clients wait in the listen queue), which bounds
/// the descriptors connections can take.
pub const MAX_CONNECTIONS: usize = 4096;

pub async fn serve(listener: UnixListener, mgr: Arc<Manager>, mut stop: watch::Receiver<bool>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => p.expect("semaphore open"),
            _ = stop.changed() => return,
        };
        tokio::select! {
            conn = listener.accept() => match conn {
                Ok((stream, _)) => {
                    let mgr = mgr.clone();
                    tokio::spawn(async move {
                        handle(stream, mgr).await;
                        drop(permit);
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = stop.changed() => return,
        }
    }
}

async fn read_request(stream: &mut UnixStream) -> Result<Request, FrameError> {
    let mut prefix = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match stream.read(&mut prefix[got..]).await? {
            0 if got == 0 => return Err(FrameError::Closed),
            0 => return Err(FrameError::Truncated),
            n => got += n,
        }
    }
    let n = proto::frame_len(prefix)?;
    let mut body = vec![0u8; n];
    stream.read_exact(&mut body).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            FrameError::Truncated
        } else {
            e.into()
        }
    })?;
    proto::decode(&body)
}

/// Whether a peer with uid 0 is host root and not a jail's root that can reach the
/// socket (Linux: its pid namespace must be the daemon's; a process in a jail has
/// host uid 0 unless the jail has a user namespace).
fn host_peer(pid: Option<i32>) -> bool {
    #[cfg(target_os = "linux")]
    {
        let Some(pid) = pid.filter(|p| *p > 0) else {
            return false;
        };
        let mine = std::fs::read_link("/proc/self/ns/pid");
        let theirs = std::fs::read_link(format!("/proc/{pid}/ns/pid"));
        matches!((mine, theirs), (Ok(a), Ok(b)) if a == b)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = pid;
        true
    }
}

async fn handle(mut stream: UnixStream, mgr: Arc<Manager>) {
    let cred = stream.peer_cred().ok();
    let uid = cred.as_ref().map(|c| c.uid());
    // Root of the host only: a jail's root (host uid 0) is in another pid namespace.
    let host_root = uid == Some(0) && host_peer(cred.as_ref().and_then(|c| c.pid()));
    if uid == Some(0) && !host_root {
        tracing::warn!(pid = ?cred.as_ref().and_then(|c| c.pid()), "refused a request from root of another pid namespace (a jail?)");
    }
    let req = match tokio::time::timeout(READ_TIMEOUT, read_request(&mut stream)).await {
        Err(_) => {
            tracing::debug!("client sent no request in time; dropped");
            return;
        }
        Ok(Err(FrameError::Closed | FrameError::Truncated)) => {
            tracing::debug!("client closed before a whole request; dropped");
            return;
        }
        Ok(Err(FrameError::Io(e))) => {
            tracing::debug!(error = %e, "client read failed");
            return;
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, ?uid, "bad request refused");
            reply(
                &mut stream,
                &Response::Error {
                    message: format!("bad request: {e}"),
                },
            )
            .await;
            return;
        }
        Ok(Ok(r)) => r,
    };
    let resp = match (&req, host_root) {
        (Request::Ping, _) => Response::Pong {
            pid: std::process::id(),
            version: proto::PROTOCOL_VERSION,
        },
        (_, true) => match req {
            Request::Register(spec) => mgr.register(spec).await,
            Request::List { after } => {
                let (probes, next) = mgr.list_page(after, proto::MAX_FRAME - 4096);
                Response::Probes { probes, next }
            }
            Request::Remove { id } => mgr.remove(id).await,
            Request::Ping => unreachable!(),
        },
        (_, false) => {
            tracing::warn!(?uid, "refused a request from a non-root peer");
            Response::Error {
                message: format!(
                    "permission denied: only root may register, list or remove probes (peer uid {})",
                    uid.map(|u| u.to_string()).unwrap_or_else(|| "unknown".into())
                ),
            }
        }
    };
    reply(&mut stream, &resp).await;
}

async fn reply(stream: &mut UnixStream, resp: &Response) {
    let frame = match proto::encode(resp) {
        Ok(f) => f,
        Err(e) => match proto::encode(&Response::Error {
            message: format!("response too large: {e}"),
        }) {
            Ok(f) => f,
            Err(_) => return,
        },
    };
    let _ = tokio::time::timeout(READ_TIMEOUT, async {
        let _ = stream.write_all(&frame).await;
        let _ = stream.shutdown().await;
    })
    .await;
}
