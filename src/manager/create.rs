//! `create`: new jails, transactionally (a jail stays incomplete, and locked, until
//! the last jail of its batch is made; anything interrupted is removed).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::error::{invalid, io_at, ManagerError, Result};
use super::locks::Lock;
use super::Manager;
use crate::storage::Base;
use crate::sys::{Os, OS};

/// Longest TAG accepted (it names the kernel jail and a ZFS user property).
pub const MAX_TAG: usize = 64;

/// Options of `create`.
#[derive(Debug, Clone, Default)]
pub struct CreateOpts {
    pub empty: bool,
    pub thick: bool,
    pub release: Option<String>,
    pub count: usize,
    pub pkglist: Option<PathBuf>,
    pub props: Vec<(String, String)>,
}

/// `YYYY-MM-DD@HH:MM:SS` in local time.
pub fn timestamp() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (y, mo, d, h, mi, s) = crate::sys::unix::local_time(now);
    format!("{y:04}-{mo:02}-{d:02}@{h:02}:{mi:02}:{s:02}")
}

/// A random (version 4) UUID.
pub fn new_uuid() -> String {
    uuid::Uuid::new_v4().hyphenated().to_string()
}

pub(super) fn check_tag(t: &str) -> Result<()> {
    if t.len() > MAX_TAG {
        return Err(invalid(format!(
            "tag: {} bytes long; at most {MAX_TAG} are accepted",
            t.len()
        )));
    }
    if t.is_empty()
        || t == "ALL"
        || t == "default"
        || t.contains('/')
        || t.contains(char::is_whitespace)
        || t.contains(',')
    {
        return Err(invalid(format!(
            "tag \"{t}\": must be non-empty, not ALL or default, without '/', ',' or spaces"
        )));
    }
    Ok(())
}

fn host_id() -> String {
    std::fs::read_to_string("/etc/hostid")
        .or_else(|_| std::fs::read_to_string("/etc/machine-id"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// The stored properties of the `i`-th (0-based) jail of a batch of `count`.
pub(super) fn initial_props(
    defaults: &BTreeMap<String, String>,
    given: &BTreeMap<String, String>,
    uuid: &str,
    tag: &str,
    base: &Base,
    i: usize,
    count: usize,
) -> BTreeMap<String, String> {
    let mut p = defaults.clone();
    p.extend(given.clone());
    p.insert("uuid".into(), uuid.to_string());
    p.insert("tag".into(), tag.to_string());
    p.insert("host_hostuuid".into(), uuid.to_string());
    let hostname = match given.get("host_hostname") {
        Some(h) if count > 1 => format!("{h}_{}", i + 1),
        Some(h) => h.clone(),
        None => uuid.to_string(),
    };
    p.insert("host_hostname".into(), hostname);
    let (ty, rel) = match base {
        Base::Release(r) => ("basejail", r.clone()),
        Base::Thick(r) => ("thickjail", r.clone()),
        Base::Empty => ("emptyjail", "none".to_string()),
        // `clone` sets the type and release of its source
        Base::Clone { .. } | Base::Files { .. } => ("thickjail", "none".to_string()),
    };
    p.insert("type".into(), ty.into());
    p.insert("release".into(), rel);
    p.insert("last_started".into(), "none".into());
    if p.get("jail_zfs_dataset").is_none_or(String::is_empty) {
        p.insert(
            "jail_zfs_dataset".into(),
            format!("iocage/jails/{uuid}/root/data"),
        );
    }
    if p.get("hostid").is_none_or(String::is_empty) {
        p.insert("hostid".into(), host_id());
    }
    p.retain(|_, v| !v.is_empty());
    p
}

impl Manager {
    /// What the new jails' roots are made from.
    fn base_of(&self, o: &CreateOpts) -> Result<Base> {
        if o.empty {
            return Ok(Base::Empty);
        }
        let releases = self.backend.releases()?;
        let rel = match &o.release {
            Some(r) => r.clone(),
            None if releases.len() == 1 => releases[0].clone(),
            None if releases.is_empty() => return Err(invalid("no release is fetched: `jailctl fetch release=NAME ftplocaldir=DIR` first, or create -e")),
            None => return Err(invalid(format!("several releases are fetched ({}): give release=NAME", releases.join(", ")))),
        };
        if !releases.contains(&rel) {
            return Err(invalid(format!(
                "release {rel} is not fetched (fetched: {})",
                if releases.is_empty() {
                    "none".into()
                } else {
                    releases.join(", ")
                }
            )));
        }
        Ok(if o.thick {
            Base::Thick(rel)
        } else {
            Base::Release(rel)
        })
    }

    pub fn create(&self, o: &CreateOpts) -> Result<Vec<String>> {
        if o.pkglist.is_some() && OS != Os::FreeBsd {
            return Err(invalid(
                "pkglist: installing packages needs pkg(8) and is supported on FreeBSD only",
            ));
        }
        if let Some(p) = &o.pkglist {
            if !p.is_file() {
                return Err(invalid(format!("pkglist={}: no such file", p.display())));
            }
        }
        let count = o.count.max(1);
        let given: BTreeMap<String, String> = o.props.iter().cloned().collect();
        self.backend.ensure_layout()?;
        let base = self.base_of(o)?;
        let defaults = self.defaults()?;
        let _g = self.lock_global()?;
        let existing = self.tags_in_use()?;
        let base_tag = given.get("tag").cloned().unwrap_or_else(timestamp);
        let tags: Vec<String> = if count == 1 {
            vec![base_tag.clone()]
        } else {
            (1..=count).map(|i| format!("{base_tag}_{i}")).collect()
        };
        for t in &tags {
            check_tag(t)?;
            // Uniqueness from the census under the global lock (the index only ever
            // answers "this jail has this tag", never "no jail has it").
            if let Some((_, uuid)) = existing.iter().find(|(tag, _)| tag == t) {
                return Err(ManagerError::TagInUse {
                    tag: t.clone(),
                    uuid: uuid.clone(),
                });
            }
        }
        let mut created: Vec<String> = Vec::new();
        let mut locks: Vec<Lock> = Vec::new();
        for (i, tag) in tags.iter().enumerate() {
            let uuid = new_uuid();
            let p = initial_props(&defaults, &given, &uuid, tag, &base, i, count);
            // Every jail of a batch stays incomplete (and locked) until all of them
            // are made: a batch interrupted midway leaves nothing the next command
            // does not remove.
            locks.push(self.lock_jail(&uuid)?);
            // The TAG index learns the jail before the jail has its tag.
            let res = self
                .index_put(tag, &uuid)
                .and_then(|_| self.create_one(&uuid, &p, &base, o));
            if let Err(e) = res {
                let mut cleanup = Vec::new();
                // created[k] has tags[k]; this one, then the earlier ones, last first
                let made = created.iter().zip(&tags).rev();
                for (u, t) in std::iter::once((&uuid, tag)).chain(made) {
                    if let Err(c) = self.backend.destroy_jail(u) {
                        cleanup.push(c.into());
                    }
                    self.index_forget(t, u);
                }
                return Err(e.with_cleanup(cleanup));
            }
            created.push(uuid);
        }
        for (i, u) in created.iter().enumerate() {
            if let Err(e) = self.backend.finish_jail(u) {
                let mut cleanup = Vec::new();
                for (v, t) in created[i..].iter().zip(&tags[i..]) {
                    if let Err(c) = self.backend.destroy_jail(v) {
                        cleanup.push(c.into());
                    }
                    self.index_forget(t, v);
                }
                return Err(ManagerError::from(e).with_cleanup(cleanup));
            }
        }
        for (u, t) in created.iter().zip(&tags) {
            self.census_note(u, t);
        }
        drop(locks);
        Ok(created)
    }

    fn create_one(
        &self,
        uuid: &str,
        p: &BTreeMap<String, String>,
        base: &Base,
        o: &CreateOpts,
    ) -> Result<()> {
        self.backend.create_jail(uuid, p, base)?;
        if let Ok(ms) = std::env::var("JAILCTL_CREATE_DELAY_MS") {
            // A testing aid: widen the window in which a create can be interrupted.
            std::thread::sleep(Duration::from_millis(ms.parse().unwrap_or(0)));
        }
        if let Some(list) = &o.pkglist {
            let root = self.backend.root_dir(uuid)?;
            let pkgs = std::fs::read_to_string(list).map_err(io_at(list.display()))?;
            let names: Vec<String> = pkgs
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(String::from)
                .collect();
            if !names.is_empty() {
                let mut args = vec![
                    "-r".to_string(),
                    root.display().to_string(),
                    "install".into(),
                    "-y".into(),
                ];
                args.extend(names);
                self.host
                    .run_tool("pkg", &args)
                    .map_err(|e| crate::storage::StorageError::from(e))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_v4() {
        let u = new_uuid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"));
        assert_ne!(u, new_uuid());
    }

    #[test]
    fn tags() {
        assert!(check_tag("www01").is_ok());
        assert!(check_tag("2026-11-23@01:02:03").is_ok());
        for bad in ["", "ALL", "default", "a b", "a/b"] {
            assert!(check_tag(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_batch_numbers_tags_and_hostnames() {
        let d = BTreeMap::new();
        let mut g = BTreeMap::new();
        g.insert("host_hostname".to_string(), "web".to_string());
        let p = initial_props(&d, &g, "u", "t_2", &Base::Empty, 1, 3);
        assert_eq!(p["host_hostname"], "web_2");
        assert_eq!(p["type"], "emptyjail");
        assert_eq!(p["release"], "none");
        assert_eq!(p["jail_zfs_dataset"], "iocage/jails/u/root/data");
        let p = initial_props(
            &d,
            &BTreeMap::new(),
            "u",
            "t",
            &Base::Release("r".into()),
            0,
            1,
        );
        assert_eq!(p["host_hostname"], "u");
        assert_eq!(p["type"], "basejail");
    }
}
