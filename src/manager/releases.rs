//! Releases (`fetch`, the list) and pools (`activate`, `deactivate`).

use super::error::{invalid, Result};
use super::{fetch, Manager};
use crate::storage::zfs;

/// The downloads of a fetch go once it has ended; what cannot be removed is said
/// (the next fetch sweeps it).
fn remove_download(d: &std::path::Path) {
    if let Err(e) = crate::sys::files::remove_tree(d) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(path = %d.display(), error = %e, "could not remove the downloads");
        }
    }
}

impl Manager {
    pub fn activate(pool: &str) -> Result<()> {
        Ok(zfs::activate(pool)?)
    }

    pub fn deactivate(pool: &str) -> Result<()> {
        Ok(zfs::deactivate(pool)?)
    }

    /// `fetch`: extract release archives into a new release; nothing is left on error.
    pub fn fetch(
        &self,
        release: &str,
        origin: &fetch::Origin,
        files: &[String],
        limits: fetch::Timeouts,
    ) -> Result<Vec<(String, String)>> {
        if release.is_empty()
            || release.contains('/')
            || release.starts_with('.')
            || release.contains(char::is_whitespace)
        {
            return Err(invalid(format!(
                "release=\"{release}\": not a valid release name"
            )));
        }
        self.backend.ensure_layout()?;
        let _g = self.lock_global()?;
        if self.backend.releases()?.iter().any(|r| r == release) {
            let used: Vec<String> = self
                .jails()?
                .into_iter()
                .filter(|j| j.get("release") == release)
                .map(|j| j.tag().to_string())
                .collect();
            if !used.is_empty() {
                return Err(invalid(format!(
                    "release {release} is used by jails {}; it cannot be fetched again",
                    used.join(", ")
                )));
            }
        }
        // What an interrupted fetch left (staging areas, downloads) goes first.
        for g in self.backend.sweep_staging()? {
            tracing::info!(what = %g, "removed what an interrupted fetch left");
        }
        let root = self.backend.begin_release(release)?;
        let download = self.backend.base_dir()?.join("download").join(release);
        match fetch::fetch_into(
            origin,
            files,
            &download,
            &root,
            crate::sys::unix::stderr_is_tty(),
            limits,
        ) {
            Ok(sums) => {
                remove_download(&download);
                self.backend.commit_release(release)?;
                Ok(sums)
            }
            Err(e) => {
                let mut cleanup = Vec::new();
                if let Err(c) = self.backend.drop_release(release) {
                    cleanup.push(c.into());
                }
                remove_download(&download);
                Err(super::ManagerError::from(e).with_cleanup(cleanup))
            }
        }
    }

    pub fn releases(&self) -> Result<Vec<String>> {
        Ok(self.backend.releases()?)
    }
}
