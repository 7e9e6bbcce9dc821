//! The ZFS backend, iocage's layout: `POOL/iocage/{jails/UUID[/root],
//! releases/NAME/root,templates,download,images,log}` and `POOL/iocage/.defaults`.
//! A jail's properties are the ZFS user properties `org.freebsd.iocage:NAME` of
//! `POOL/iocage/jails/UUID`, so `zfs send | zfs receive` moves a jail with its
//! configuration. All jails are read with one recursive `zfs get`. New thin jails are
//! clones of `releases/NAME/root@base`; clones do not inherit user properties, which
//! live on the parent dataset and are written explicitly.

use crate::sys::tool;
use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{Backend, Base, Record, RootLayout, StorageError, INCOMPLETE, PROP_PREFIX};

mod pool;
mod snap;

#[allow(unused_imports)]
pub use pool::*;

/// Pool property marking the pool jailctl uses.
pub const ACTIVE_PROP: &str = "org.freebsd.ioc:active";

/// Mountpoint of `POOL/iocage` when it is created, unless `JAILCTL_MOUNTPOINT` is set.
pub const DEFAULT_MOUNTPOINT: &str = "/iocage";

pub struct ZfsBackend {
    pub pool: String,
    /// The mountpoint of `POOL/iocage`, read once per command.
    base: std::sync::OnceLock<PathBuf>,
    /// The host defaults, read once per command (and forgotten when written).
    defaults: std::sync::Mutex<Option<BTreeMap<String, String>>>,
    /// Where datasets are mounted, learnt from the host's mount table.
    mounted: std::sync::Mutex<BTreeMap<String, PathBuf>>,
}

/// Is `msg` zfs(8)'s "dataset does not exist"?
fn missing(msg: &str) -> bool {
    msg.contains("dataset does not exist")
}

impl ZfsBackend {
    pub fn new(pool: impl Into<String>) -> Self {
        ZfsBackend {
            pool: pool.into(),
            base: Default::default(),
            defaults: Default::default(),
            mounted: Default::default(),
        }
    }

    fn ds(&self, rest: &str) -> String {
        if rest.is_empty() {
            format!("{}/iocage", self.pool)
        } else {
            format!("{}/iocage/{rest}", self.pool)
        }
    }

    fn jail_ds(&self, uuid: &str) -> String {
        self.ds(&format!("jails/{uuid}"))
    }

    fn exists(&self, ds: &str) -> bool {
        zfs(&["list", "-H", "-o", "name", ds]).is_ok()
    }

    /// Where `ds` is: where the host's mount table says root mounted it (no `zfs`
    /// call), else its `mountpoint` property.
    fn mountpoint(&self, ds: &str) -> Result<PathBuf, StorageError> {
        if let Some(p) = self.mounted_at(ds) {
            return Ok(p);
        }
        Ok(PathBuf::from(
            zfs(&["get", "-H", "-o", "value", "mountpoint", ds])?.trim(),
        ))
    }

    /// Where `ds` is mounted, from the mount table (read again when `ds` is not in what
    /// was read before: it may have been mounted since).
    fn mounted_at(&self, ds: &str) -> Option<PathBuf> {
        let mut m = self.mounted.lock().expect("mount cache");
        if let Some(p) = m.get(ds) {
            return Some(p.clone());
        }
        *m = mounted_datasets(&self.pool);
        m.get(ds).cloned()
    }

    /// `zfs get ... all TARGETS` plus the host defaults (`.defaults`) in the same call:
    /// the rows of the targets; the defaults fill their cache. A missing `.defaults` (or
    /// a missing target) is not an error: zfs reports it and prints the others.
    fn get_with_defaults(&self, opts: &[&str], targets: &[&str]) -> Result<String, StorageError> {
        let defaults_ds = self.ds(".defaults");
        let mut args = vec!["get", "-H", "-p"];
        args.extend_from_slice(opts);
        args.extend(["-o", "name,property,value", "all"]);
        args.extend_from_slice(targets);
        args.push(&defaults_ds);
        let (ok, out, err) = tool::run_all("zfs", &args)?;
        let all_missing_ok =
            !err.trim().is_empty() && err.lines().filter(|l| !l.trim().is_empty()).all(missing);
        if !ok && !all_missing_ok {
            return Err(StorageError::Command {
                cmd: format!("zfs {}", args.join(" ")),
                msg: err.trim().to_string(),
            });
        }
        let mut rest = String::new();
        let mut defaults = BTreeMap::new();
        for line in out.lines() {
            match line.strip_prefix(&format!("{defaults_ds}\t")) {
                Some(row) => {
                    if let Some((p, v)) = row.split_once('\t') {
                        if let Some(p) = p.strip_prefix(PROP_PREFIX) {
                            defaults.insert(p.to_string(), v.to_string());
                        }
                    }
                }
                // the defaults' snapshots or children, if anyone made them
                None if line.starts_with(&defaults_ds) => {}
                None => {
                    rest.push_str(line);
                    rest.push('\n');
                }
            }
        }
        *self.defaults.lock().expect("defaults cache") = Some(defaults);
        Ok(rest)
    }

    /// Read every user property below `ds` with one recursive call.
    fn user_props(
        &self,
        ds: &str,
    ) -> Result<BTreeMap<String, BTreeMap<String, String>>, StorageError> {
        let out = zfs(&[
            "get",
            "-H",
            "-p",
            "-r",
            "-s",
            "local",
            "-o",
            "name,property,value",
            "all",
            ds,
        ])?;
        let mut map: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for line in out.lines() {
            let mut f = line.splitn(3, '\t');
            let (Some(name), Some(prop), Some(value)) = (f.next(), f.next(), f.next()) else {
                continue;
            };
            let entry = map.entry(name.to_string()).or_default();
            if let Some(p) = prop.strip_prefix(PROP_PREFIX) {
                entry.insert(p.to_string(), value.to_string());
            }
        }
        Ok(map)
    }

    fn set_props(
        &self,
        ds: &str,
        old: &BTreeMap<String, String>,
        new: &BTreeMap<String, String>,
    ) -> Result<(), StorageError> {
        for (k, v) in new {
            if old.get(k) != Some(v) {
                if v.is_empty() {
                    zfs(&["inherit", &format!("{PROP_PREFIX}{k}"), ds])?;
                } else {
                    zfs(&["set", &format!("{PROP_PREFIX}{k}={v}"), ds])?;
                }
            }
        }
        for k in old.keys().filter(|k| !new.contains_key(*k)) {
            zfs(&["inherit", &format!("{PROP_PREFIX}{k}"), ds])?;
        }
        Ok(())
    }
}

impl Backend for ZfsBackend {
    fn describe(&self) -> String {
        format!("zfs:{}", self.pool)
    }

    fn ensure_layout(&self) -> Result<(), StorageError> {
        let top = self.ds("");
        // Laid out already when root has every dataset of the layout mounted: no call.
        let wanted: Vec<String> = super::LAYOUT.into_iter().map(|d| self.ds(d)).collect();
        let table = mounted_datasets(&self.pool);
        let defaults = self.ds(".defaults");
        if [&top, &defaults]
            .into_iter()
            .chain(&wanted)
            .all(|d| table.contains_key(d))
        {
            for d in &wanted {
                super::make_private(&table[d])?;
            }
            *self.mounted.lock().expect("mount cache") = table;
            return Ok(());
        }
        // what exists, in one call
        let present: Vec<String> = match zfs(&["list", "-H", "-o", "name", "-r", "-d", "1", &top]) {
            Ok(out) => out.lines().map(str::to_string).collect(),
            Err(StorageError::Command { msg, .. }) if missing(&msg) => Vec::new(),
            Err(e) => return Err(e),
        };
        if !present.contains(&top) {
            let mp = std::env::var("JAILCTL_MOUNTPOINT")
                .unwrap_or_else(|_| DEFAULT_MOUNTPOINT.to_string());
            zfs(&["create", "-o", &format!("mountpoint={mp}"), &top])?;
        }
        for d in super::LAYOUT.into_iter().chain([".defaults"]) {
            let ds = self.ds(d);
            if !present.contains(&ds) {
                zfs(&["create", &ds])?;
            }
            if d != ".defaults" {
                super::make_private(&self.mountpoint(&ds)?)?;
            }
        }
        Ok(())
    }

    fn list_jails(&self) -> Result<Vec<Record>, StorageError> {
        let jails = self.ds("jails");
        // One call for every jail and the host defaults: depth 1 skips the root
        // datasets; the "none" source adds read-only rows (such as `type`) so a jail
        // without properties still shows.
        let out = self.get_with_defaults(&["-r", "-d", "1", "-s", "local,none"], &[&jails])?;
        let mut all: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for line in out.lines() {
            let mut f = line.splitn(3, '\t');
            let (Some(name), Some(prop), Some(value)) = (f.next(), f.next(), f.next()) else {
                continue;
            };
            // the jails' folder itself, and snapshots (a recursive `zfs snapshot -r`
            // of the pool, as sanoid makes) are no jails
            if name == jails || name.contains('@') || name.contains('#') {
                continue;
            }
            let entry = all.entry(name.to_string()).or_default();
            if let Some(p) = prop.strip_prefix(PROP_PREFIX) {
                entry.insert(p.to_string(), value.to_string());
            }
        }
        let mut out = Vec::new();
        for (name, mut props) in all {
            let uuid = name.rsplit('/').next().unwrap_or(&name).to_string();
            let incomplete = props.remove(INCOMPLETE).is_some();
            let problem = if incomplete {
                None
            } else if props.is_empty() {
                Some(format!("{name} has no {PROP_PREFIX}* properties"))
            } else if props.get("uuid") != Some(&uuid) {
                Some(format!(
                    "{name}: uuid property is {:?}, not the dataset's name",
                    props.get("uuid")
                ))
            } else {
                None
            };
            out.push(Record {
                uuid,
                props,
                problem,
                incomplete,
            });
        }
        Ok(out)
    }

    fn read_jail(&self, uuid: &str) -> Result<Option<Record>, StorageError> {
        let ds = self.jail_ds(uuid);
        if uuid.contains('/') || uuid.is_empty() {
            return Ok(None);
        }
        // One call for the jail and the host defaults; a jail that does not exist
        // has no rows.
        let out = self.get_with_defaults(&["-s", "local,none"], &[&ds])?;
        if !out.lines().any(|l| l.starts_with(&format!("{ds}\t"))) {
            return Ok(None);
        }
        let mut props: BTreeMap<String, String> = out
            .lines()
            .filter_map(|l| l.strip_prefix(&format!("{ds}\t")))
            .filter_map(|l| l.split_once('\t'))
            .filter_map(|(p, v)| {
                p.strip_prefix(PROP_PREFIX)
                    .map(|p| (p.to_string(), v.to_string()))
            })
            .collect();
        let incomplete = props.remove(INCOMPLETE).is_some();
        let problem =
            (!incomplete && props.get("uuid").map(String::as_str) != Some(uuid)).then(|| {
                format!(
                    "{ds}: uuid property is {:?}, not the dataset's name",
                    props.get("uuid")
                )
            });
        Ok(Some(Record {
            uuid: uuid.to_string(),
            props,
            problem,
            incomplete,
        }))
    }

    fn create_jail(
        &self,
        uuid: &str,
        props: &BTreeMap<String, String>,
        base: &Base,
    ) -> Result<(), StorageError> {
        let ds = self.jail_ds(uuid);
        let mut args: Vec<String> = vec![
            "create".into(),
            "-o".into(),
            format!("{PROP_PREFIX}{INCOMPLETE}={}", std::process::id()),
        ];
        for (k, v) in props.iter().filter(|(_, v)| !v.is_empty()) {
            args.push("-o".into());
            args.push(format!("{PROP_PREFIX}{k}={v}"));
        }
        for native in ["compression", "quota", "reservation", "dedup"] {
            if let Some(v) = props.get(native) {
                args.push("-o".into());
                args.push(format!("{native}={v}"));
            }
        }
        args.push(ds.clone());
        zfs(&args.iter().map(String::as_str).collect::<Vec<_>>())?;
        let root = format!("{ds}/root");
        match base {
            Base::Release(r) => {
                super::check_release_name(r)?;
                let snap = format!("{}@base", self.ds(&format!("releases/{r}/root")));
                zfs(&["clone", &snap, &root])?;
            }
            Base::Thick(r) => {
                zfs(&["create", &root])?;
                tool::copy_tree(&self.release_root(r)?, &self.mountpoint(&root)?)?;
            }
            Base::Empty => {
                zfs(&["create", &root])?;
            }
            Base::Clone {
                uuid: from, snap, ..
            } => {
                zfs(&[
                    "clone",
                    &format!("{}/root@{snap}", self.jail_ds(from)),
                    &root,
                ])?;
            }
            Base::Files { dir, thin, .. } => {
                if *thin {
                    return Err(StorageError::Invalid(
                        "the archive holds a thin directory-backend jail's changes only: import it with the directory backend".into(),
                    ));
                }
                zfs(&["create", &root])?;
                crate::sys::snapio::cow_copy_tree(dir, &self.mountpoint(&root)?)?;
            }
        }
        let fstab = self.mountpoint(&ds)?.join("fstab");
        std::fs::File::create(&fstab).map_err(super::io_err(&fstab))?;
        Ok(())
    }

    fn finish_jail(&self, uuid: &str) -> Result<(), StorageError> {
        zfs(&[
            "inherit",
            &format!("{PROP_PREFIX}{INCOMPLETE}"),
            &self.jail_ds(uuid),
        ])
        .map(|_| ())
    }

    fn set_prop(&self, uuid: &str, key: &str, value: &str) -> Result<(), StorageError> {
        let ds = self.jail_ds(uuid);
        zfs(&["set", &format!("{PROP_PREFIX}{key}={value}"), &ds]).map(|_| ())
    }

    fn census(&self) -> Result<Option<Vec<(String, Option<String>)>>, StorageError> {
        // The jails' datasets root has mounted, from the mount table: no `zfs` call.
        // ZFS keeps no change time for a property, so the stamp only says "mounted":
        // a tag changed with zfs(8) behind jailctl's back is seen by the next full
        // read (`list`, `reindex`).
        let prefix = format!("{}/", self.ds("jails"));
        let table = mounted_datasets(&self.pool);
        *self.mounted.lock().expect("mount cache") = table.clone();
        let mut out: Vec<(String, Option<String>)> = table
            .into_keys()
            .filter_map(|name| {
                let uuid = name.strip_prefix(&prefix)?;
                (!uuid.contains('/') && !uuid.is_empty())
                    .then(|| (uuid.to_string(), Some("mounted".to_string())))
            })
            .collect();
        out.sort();
        out.dedup();
        Ok(Some(out))
    }

    fn write_props(
        &self,
        uuid: &str,
        old: &BTreeMap<String, String>,
        props: &BTreeMap<String, String>,
    ) -> Result<(), StorageError> {
        let ds = self.jail_ds(uuid);
        self.set_props(&ds, old, props)?;
        for (k, native) in [
            ("quota", "quota"),
            ("reservation", "reservation"),
            ("compression", "compression"),
            ("dedup", "dedup"),
        ] {
            if let Some(v) = props.get(k).filter(|v| old.get(k) != Some(*v)) {
                zfs(&["set", &format!("{native}={v}"), &ds])?;
            }
        }
        Ok(())
    }

    fn destroy_jail(&self, uuid: &str) -> Result<(), StorageError> {
        let ds = self.jail_ds(uuid);
        // Marked incomplete first: a destroy killed midway leaves a jail that the next
        // command finishes destroying, never a half-deleted "down" jail.
        match zfs(&[
            "set",
            &format!("{PROP_PREFIX}{INCOMPLETE}={}", std::process::id()),
            &ds,
        ]) {
            Ok(_) => destroy_retry(&ds, &["-f"]),
            Err(StorageError::Command { msg, .. }) if missing(&msg) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn jail_dir(&self, uuid: &str) -> Result<PathBuf, StorageError> {
        self.mountpoint(&self.jail_ds(uuid))
    }

    fn root_dir(&self, uuid: &str) -> Result<PathBuf, StorageError> {
        self.mountpoint(&format!("{}/root", self.jail_ds(uuid)))
    }

    fn root_layout(
        &self,
        _uuid: &str,
        _props: &BTreeMap<String, String>,
    ) -> Result<RootLayout, StorageError> {
        // Thin jails are ZFS clones of the release: the root is a dataset.
        Ok(RootLayout::InPlace)
    }

    fn releases(&self) -> Result<Vec<String>, StorageError> {
        let rel = self.ds("releases");
        let out = match zfs(&["list", "-H", "-t", "snapshot", "-r", "-o", "name", &rel]) {
            Ok(o) => o,
            Err(_) => return Ok(vec![]),
        };
        let mut v: Vec<String> = out
            .lines()
            .filter_map(|l| {
                l.trim()
                    .strip_prefix(&format!("{rel}/"))
                    .and_then(|r| r.strip_suffix("/root@base"))
                    .filter(|r| !r.starts_with('.'))
                    .map(String::from)
            })
            .collect();
        v.sort();
        Ok(v)
    }

    fn begin_release(&self, name: &str) -> Result<PathBuf, StorageError> {
        let ds = self.ds(&format!("releases/.{name}.partial"));
        if self.exists(&ds) {
            destroy_retry(&ds, &["-f"])?;
        }
        zfs(&["create", "-p", &format!("{ds}/root")])?;
        self.mountpoint(&format!("{ds}/root"))
    }

    fn commit_release(&self, name: &str) -> Result<(), StorageError> {
        let staging = self.ds(&format!("releases/.{name}.partial"));
        let to = self.ds(&format!("releases/{name}"));
        zfs(&["snapshot", &format!("{staging}/root@base")])?;
        if self.exists(&to) {
            let old = self.ds(&format!("releases/.{name}.old"));
            if self.exists(&old) {
                destroy_retry(&old, &["-f"])?;
            }
            rename_ds(&to, &old)?;
            if let Err(e) = rename_ds(&staging, &to) {
                let _ = rename_ds(&old, &to);
                return Err(e);
            }
            destroy_retry(&old, &["-f"])?;
        } else {
            rename_ds(&staging, &to)?;
        }
        Ok(())
    }

    fn drop_release(&self, name: &str) -> Result<(), StorageError> {
        let ds = self.ds(&format!("releases/.{name}.partial"));
        if self.exists(&ds) {
            destroy_retry(&ds, &["-f"])?;
        }
        Ok(())
    }

    fn sweep_staging(&self) -> Result<Vec<String>, StorageError> {
        let rel = self.ds("releases");
        let out = zfs(&["list", "-H", "-d", "1", "-o", "name", &rel]).unwrap_or_default();
        let mut gone = Vec::new();
        for ds in out.lines().map(str::trim) {
            let Some(n) = ds.strip_prefix(&format!("{rel}/")) else {
                continue;
            };
            if n.starts_with('.') && (n.ends_with(".partial") || n.ends_with(".old")) {
                if n.ends_with(".old") {
                    let name = &n[1..n.len() - 4];
                    let to = self.ds(&format!("releases/{name}"));
                    if !self.exists(&to) && rename_ds(ds, &to).is_ok() {
                        gone.push(format!("restored release {name}"));
                        continue;
                    }
                }
                match destroy_retry(ds, &["-f"]) {
                    Ok(()) => gone.push(ds.to_string()),
                    Err(e) => gone.push(format!("{ds} not removed: {e}")),
                }
            }
        }
        if let Ok(base) = self.base_dir() {
            let dl = base.join("download");
            if let Ok(rd) = std::fs::read_dir(&dl) {
                for e in rd.flatten() {
                    let p = e.path();
                    let _ = if p.is_dir() {
                        crate::sys::files::remove_tree(&p)
                    } else {
                        std::fs::remove_file(&p)
                    };
                    gone.push(p.display().to_string());
                }
            }
        }
        Ok(gone)
    }

    fn release_root(&self, name: &str) -> Result<PathBuf, StorageError> {
        super::check_release_name(name)?;
        self.mountpoint(&self.ds(&format!("releases/{name}/root")))
    }

    fn defaults(&self) -> Result<BTreeMap<String, String>, StorageError> {
        if let Some(d) = self.defaults.lock().expect("defaults cache").clone() {
            return Ok(d);
        }
        let ds = self.ds(".defaults");
        let d = match self.user_props(&ds) {
            Ok(mut all) => all.remove(&ds).unwrap_or_default(),
            Err(StorageError::Command { msg, .. }) if missing(&msg) => BTreeMap::new(),
            Err(e) => return Err(e),
        };
        *self.defaults.lock().expect("defaults cache") = Some(d.clone());
        Ok(d)
    }

    fn write_defaults(
        &self,
        old: &BTreeMap<String, String>,
        new: &BTreeMap<String, String>,
    ) -> Result<(), StorageError> {
        *self.defaults.lock().expect("defaults cache") = None;
        self.ensure_layout()?;
        self.set_props(&self.ds(".defaults"), old, new)
    }

    fn clean(&self, what: &str) -> Result<(), StorageError> {
        let ds = if what == "all" {
            self.ds("")
        } else {
            self.ds(what)
        };
        if self.exists(&ds) {
            destroy_retry(&ds, &["-R", "-f"])?;
        }
        if what != "all" {
            self.ensure_layout()?;
        }
        Ok(())
    }

    fn base_dir(&self) -> Result<PathBuf, StorageError> {
        if let Some(b) = self.base.get() {
            return Ok(b.clone());
        }
        let b = self.mountpoint(&self.ds(""))?;
        Ok(self.base.get_or_init(|| b).clone())
    }
}

/// The datasets of `pool` that root has mounted, and where, from the host's mount
/// table. A dataset seen mounted twice is left out (its place is the property's).
fn mounted_datasets(pool: &str) -> BTreeMap<String, PathBuf> {
    let mut seen: BTreeMap<String, Option<PathBuf>> = BTreeMap::new();
    let prefix = format!("{pool}/");
    for (src, at) in crate::sys::os::mount_sources("zfs").unwrap_or_default() {
        if src == pool || src.starts_with(&prefix) {
            seen.entry(src)
                .and_modify(|p| *p = None)
                .or_insert(Some(at));
        }
    }
    seen.into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect()
}
