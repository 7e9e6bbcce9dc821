//! The socket side of the daemon: accepts connections (a bounded number at once),
//! learns each peer's credentials, reads one request frame and writes the handler's
//! answer.

use std::sync::Arc;
use std::time::Duration;

use jaildaemon_proto::{self as proto, FrameError, Request};
use tokio::io::AsyncWriteExt;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{watch, Semaphore};

use super::handler;
use super::registry::ProbeRegistry;
use crate::sys::unix as sys;

/// How long a client may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once. Each is served on its own task with its own read
/// limit, so an idle client delays nobody; past this bound the daemon stops
/// accepting until one ends (further clients wait in the listen queue), which bounds
/// the descriptors connections can take.
pub const MAX_CONNECTIONS: usize = 4096;

/// Who is on the other end of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub uid: Option<u32>,
    pub pid: Option<i32>,
    /// Root of the host: uid 0 in the daemon's pid namespace (a jail's root, host uid
    /// 0 on Linux without a user namespace, is in another one).
    pub host_root: bool,
}

impl Peer {
    fn of(stream: &UnixStream) -> Peer {
        let cred = stream.peer_cred().ok();
        let uid = cred.as_ref().map(|c| c.uid());
        let pid = cred.as_ref().and_then(|c| c.pid());
        Peer {
            uid,
            pid,
            host_root: uid == Some(0) && sys::in_my_pid_namespace(pid),
        }
    }
}

pub async fn serve(
    listener: UnixListener,
    registry: Arc<ProbeRegistry>,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => p.expect("semaphore open"),
            _ = stop.changed() => return,
        };
        tokio::select! {
            conn = listener.accept() => match conn {
                Ok((stream, _)) => {
                    let registry = registry.clone();
                    tokio::spawn(async move {
                        serve_one(stream, registry).await;
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

async fn serve_one(mut stream: UnixStream, registry: Arc<ProbeRegistry>) {
    let peer = Peer::of(&stream);
    if peer.uid == Some(0) && !peer.host_root {
        tracing::warn!(pid = ?peer.pid, "refused a request from root of another pid namespace (a jail?)");
    }
    let read = proto::read_message_async::<Request, _>(&mut stream);
    let answer = match tokio::time::timeout(READ_TIMEOUT, read).await {
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
            tracing::warn!(error = %e, uid = ?peer.uid, "bad request refused");
            handler::bad_request(&e)
        }
        Ok(Ok(req)) => handler::handle(req, &peer, &registry).await,
    };
    if let Some(frame) = answer {
        let _ = tokio::time::timeout(READ_TIMEOUT, async {
            let _ = stream.write_all(&frame).await;
            let _ = stream.shutdown().await;
        })
        .await;
    }
}
