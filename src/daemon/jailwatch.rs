//! One shared look at the jails for every probe that waits for its jail (or checks
//! whether it left): the registry of jails is read at most once per [`REFRESH`],
//! however many probes ask, and each asks its jail by name from that one reading.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::jail;

/// Age after which the reading is renewed (the waiting probes' poll interval).
pub const REFRESH: Duration = super::supervisor::REARM_POLL;

#[derive(Default)]
struct Seen {
    at: Option<Instant>,
    jids: Arc<HashMap<String, i32>>,
}

/// The jails as last read: name to jid.
#[derive(Default)]
pub struct JailWatch {
    seen: tokio::sync::Mutex<Seen>,
}

impl JailWatch {
    /// The jid of the live jail named `name`, from a reading at most [`REFRESH`] old
    /// (one reading shared by every caller; a failed reading keeps the last one).
    pub async fn jid(&self, name: &str) -> Option<i32> {
        let mut seen = self.seen.lock().await;
        if seen.at.is_none_or(|t| t.elapsed() >= REFRESH) {
            match tokio::task::spawn_blocking(jail::list).await {
                Ok(Ok(list)) => {
                    seen.jids = Arc::new(
                        list.into_iter()
                            .filter(|j| !j.dying)
                            .map(|j| (j.name, j.jid))
                            .collect(),
                    );
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "could not list the jails"),
                Err(e) => tracing::warn!(error = %e, "could not list the jails"),
            }
            seen.at = Some(Instant::now());
        }
        seen.jids.get(name).copied()
    }
}
