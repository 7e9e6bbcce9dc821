//! The TAG index: `RUN/tags/BACKEND/HEX(TAG)` holds the UUID of the jail with that TAG, so
//! that naming a jail by TAG reads that jail alone.
//!
//! It is a cache that cannot go stale silently: an entry is written (under the
//! global lock) before the jail carries the TAG and removed after it no longer does;
//! every use checks the entry against the jail's own `tag`; a disagreement, or a key
//! found nowhere, rebuilds the whole index from a full scan (as do `clean` and
//! `reindex`). Entries are renamed into place without fsync: after a crash the index
//! is checked on use like any other time.

use std::fs;
use std::path::PathBuf;

use super::error::{io_at, Result};
use super::{Jail, Manager};

const DIR: &str = "tags";

fn file_name(tag: &str) -> String {
    tag.bytes().map(|b| format!("{b:02x}")).collect()
}

fn tag_of(file: &str) -> Option<String> {
    if file.len() % 2 != 0 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..file.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(file.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

impl Manager {
    /// In the run directory, one per backend: a cache, built again after a reboot.
    fn index_dir(&self) -> Result<PathBuf> {
        let name: String = self
            .backend
            .describe()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        Ok(self.run.join(DIR).join(name))
    }

    /// The UUID the index gives for `tag`.
    pub(super) fn index_get(&self, tag: &str) -> Option<String> {
        let p = self.index_dir().ok()?.join(file_name(tag));
        let uuid = fs::read_to_string(p).ok()?;
        let uuid = uuid.trim();
        super::resolve::is_uuid(uuid).then(|| uuid.to_string())
    }

    /// Record that `tag` names `uuid` (call with the global lock held).
    pub(super) fn index_put(&self, tag: &str, uuid: &str) -> Result<()> {
        let dir = self.index_dir()?;
        fs::create_dir_all(&dir).map_err(io_at(dir.display()))?;
        let p = dir.join(file_name(tag));
        let tmp = dir.join(format!(".{}.{}", file_name(tag), std::process::id()));
        fs::write(&tmp, uuid)
            .and_then(|_| fs::rename(&tmp, &p))
            .map_err(io_at(p.display()))
    }

    /// Forget `tag` if it still names `uuid` (call with the global lock held).
    pub(super) fn index_forget(&self, tag: &str, uuid: &str) {
        if self.index_get(tag).as_deref() == Some(uuid) {
            if let Ok(d) = self.index_dir() {
                let _ = fs::remove_file(d.join(file_name(tag)));
            }
        }
    }

    /// Forget `tag` whatever it names (a TAG found on several jails).
    pub(super) fn index_drop(&self, tag: &str) {
        if let Ok(d) = self.index_dir() {
            let _ = fs::remove_file(d.join(file_name(tag)));
        }
    }

    /// After a full scan (`all`, sorted by tag), cheaply: a TAG borne by several jails
    /// (given by hand) names none of them, and a unique TAG the index lacks (given by
    /// hand, or made before the index) is added. One directory read.
    pub(super) fn sync_index(&self, all: &[Jail]) {
        let Ok(dir) = self.index_dir() else {
            return;
        };
        let present: std::collections::BTreeSet<String> = match fs::read_dir(&dir) {
            Ok(rd) => rd
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => Default::default(),
        };
        for (i, j) in all.iter().enumerate() {
            let t = j.tag();
            if t.is_empty() {
                continue;
            }
            let dup =
                all.get(i + 1).is_some_and(|n| n.tag() == t) || i > 0 && all[i - 1].tag() == t;
            if dup {
                self.index_drop(t);
            } else if !present.contains(&file_name(t)) {
                if let Err(e) = self.index_put(t, &j.uuid) {
                    tracing::warn!(error = %e, "could not write the tag index");
                    return;
                }
            }
        }
    }

    /// The jail that holds `tag` as far as the index knows, checked against the
    /// jail's own tag (a jail still being made holds it too: its creator wrote the
    /// entry first). An index never built is built first, from a scan.
    pub(super) fn tag_holder(&self, tag: &str) -> Result<Option<String>> {
        if !self.index_dir()?.is_dir() {
            self.jails()?;
        }
        let Some(uuid) = self.index_get(tag) else {
            return Ok(None);
        };
        Ok(match self.backend.read_jail(&uuid)? {
            // left by a create or destroy that was killed: removed, unless its lock
            // shows it is under way
            Some(r) if r.incomplete => {
                self.clean_incomplete(&r);
                if self.backend.read_jail(&uuid)?.is_some() {
                    Some(uuid)
                } else {
                    self.index_drop(tag);
                    None
                }
            }
            Some(r) if r.props.get("tag").map(String::as_str) == Some(tag) => Some(uuid),
            _ => {
                self.index_drop(tag);
                None
            }
        })
    }

    /// Rebuild the index from `all` (every jail, one full scan): entries for unique
    /// tags, nothing else. Errors are reported, never fatal: the index is a cache.
    pub(super) fn reindex_from(&self, all: &[Jail]) {
        let Ok(dir) = self.index_dir() else {
            return;
        };
        let mut count: std::collections::BTreeMap<&str, usize> = Default::default();
        for j in all.iter().filter(|j| !j.tag().is_empty()) {
            *count.entry(j.tag()).or_default() += 1;
        }
        for j in all {
            if count.get(j.tag()) == Some(&1) && self.index_get(j.tag()).as_deref() != Some(&j.uuid)
            {
                if let Err(e) = self.index_put(j.tag(), &j.uuid) {
                    tracing::warn!(error = %e, "could not write the tag index");
                    return;
                }
            }
        }
        // Entries of tags the scan did not find go, unless they name a jail being
        // made right now (incomplete: its creator wrote the entry first).
        let known: std::collections::BTreeMap<&str, &str> =
            all.iter().map(|j| (j.uuid.as_str(), j.tag())).collect();
        if let Ok(rd) = fs::read_dir(&dir) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let Some(tag) = tag_of(&name) else {
                    continue;
                };
                match count.get(tag.as_str()) {
                    Some(1) => continue,
                    Some(_) => {
                        let _ = fs::remove_file(e.path());
                        continue;
                    }
                    None => {}
                }
                let uuid = fs::read_to_string(e.path()).unwrap_or_default();
                let stale = match known.get(uuid.trim()) {
                    Some(t) => *t != tag,
                    None => {
                        !matches!(self.backend.read_jail(uuid.trim()), Ok(Some(r)) if r.incomplete)
                    }
                };
                if stale {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
    }

    /// `reindex`: rebuild the TAG index from a full scan, under the global lock.
    pub fn reindex(&self) -> Result<usize> {
        let _g = self.lock_global()?;
        let all = self.jails()?;
        self.reindex_from(&all);
        Ok(all.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip_through_file_names() {
        for t in ["web", "2026-11-23@01:02:03", ".", "..", "é"] {
            let f = file_name(t);
            assert!(f.chars().all(|c| c.is_ascii_hexdigit()), "{f}");
            assert_eq!(tag_of(&f).as_deref(), Some(t));
        }
        assert_eq!(tag_of(".x.123"), None);
    }
}
