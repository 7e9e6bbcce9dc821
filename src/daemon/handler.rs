//! Requests to domain calls, domain results and errors to responses: the only code of
//! the daemon that knows [`Response`].

use std::sync::Arc;

use jaildaemon_proto::{self as proto, FrameError, Request, Response};

use super::registry::{ProbeRegistry, Registered};
use super::server::Peer;

/// The answer to one request from `peer`, as a frame.
pub async fn handle(req: Request, peer: &Peer, registry: &Arc<ProbeRegistry>) -> Option<Vec<u8>> {
    frame(&respond(req, peer, registry).await)
}

/// The answer to a request that could not be read, as a frame.
pub fn bad_request(e: &FrameError) -> Option<Vec<u8>> {
    frame(&Response::Error {
        message: format!("bad request: {e}"),
    })
}

async fn respond(req: Request, peer: &Peer, registry: &Arc<ProbeRegistry>) -> Response {
    let error = |e: super::registry::RegistryError| Response::Error {
        message: e.to_string(),
    };
    match (req, peer.host_root) {
        (Request::Ping, _) => Response::Pong {
            pid: std::process::id(),
            version: proto::PROTOCOL_VERSION,
        },
        (Request::Register(spec), true) => match registry.register(spec).await {
            Ok(Registered {
                id,
                jid,
                jail,
                pid,
                title,
            }) => Response::Registered {
                id,
                jid,
                jail,
                pid,
                title,
            },
            Err(e) => error(e),
        },
        (Request::List { after }, true) => {
            let (probes, next) = registry.list_page(after, proto::MAX_FRAME - 4096);
            Response::Probes { probes, next }
        }
        (Request::Remove { id }, true) => match registry.remove(id).await {
            Ok(()) => Response::Removed { id },
            Err(e) => error(e),
        },
        (_, false) => {
            tracing::warn!(uid = ?peer.uid, "refused a request from a non-root peer");
            Response::Error {
                message: format!(
                    "permission denied: only root may register, list or remove probes (peer uid {})",
                    peer.uid
                        .map(|u| u.to_string())
                        .unwrap_or_else(|| "unknown".into())
                ),
            }
        }
    }
}

/// A response as one frame; one too large becomes an error that fits.
fn frame(resp: &Response) -> Option<Vec<u8>> {
    match proto::encode(resp) {
        Ok(f) => Some(f),
        Err(e) => proto::encode(&Response::Error {
            message: format!("response too large: {e}"),
        })
        .ok(),
    }
}
