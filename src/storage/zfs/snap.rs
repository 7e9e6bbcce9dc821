//! Snapshots on ZFS: `jails/UUID/root@NAME`, or with `-r` `jails/UUID@NAME` and its
//! children (the configuration saved beside them as `config.json` first, so that a
//! rollback can restore the user properties, which ZFS does not roll back).

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{destroy_retry, zfs, ZfsBackend};
use crate::storage::{io_err, SnapInfo, Snapshots, StorageError};

/// The configuration saved in a recursive snapshot.
const SAVED: &str = "config.json";

impl ZfsBackend {
    fn root_ds(&self, uuid: &str) -> String {
        format!("{}/root", self.jail_ds(uuid))
    }

    /// The read-only clone that `snapmount` mounts.
    fn view_ds(&self, uuid: &str, name: &str) -> String {
        format!("{}/.view-{name}", self.jail_ds(uuid))
    }
}

impl Snapshots for ZfsBackend {
    fn snapshot(
        &self,
        uuid: &str,
        name: &str,
        recursive: bool,
        props: &BTreeMap<String, String>,
    ) -> Result<(), StorageError> {
        crate::storage::check_snap_name(name)?;
        if recursive {
            let f = self.mountpoint(&self.jail_ds(uuid))?.join(SAVED);
            crate::sys::files::write_atomic(&f, &serde_json::to_vec_pretty(props).expect("json"))
                .map_err(io_err(&f))?;
            zfs(&["snapshot", "-r", &format!("{}@{name}", self.jail_ds(uuid))])?;
        } else {
            zfs(&["snapshot", &format!("{}@{name}", self.root_ds(uuid))])?;
        }
        Ok(())
    }

    fn snapshots(&self, uuid: &str) -> Result<Vec<SnapInfo>, StorageError> {
        let jail = self.jail_ds(uuid);
        let root = self.root_ds(uuid);
        let out = zfs(&[
            "get",
            "-H",
            "-p",
            "-r",
            "-d",
            "2",
            "-o",
            "name,property,value",
            "creation,referenced,used,createtxg",
            &jail,
        ])?;
        let mut top = std::collections::BTreeSet::new();
        let mut rows: BTreeMap<String, SnapInfo> = BTreeMap::new();
        for l in out.lines() {
            let f: Vec<&str> = l.split('\t').collect();
            if f.len() < 3 {
                continue;
            }
            let Some((ds, name)) = f[0].split_once('@') else {
                continue;
            };
            if ds == jail {
                top.insert(name.to_string());
            } else if ds == root {
                let s = rows.entry(name.to_string()).or_insert_with(|| SnapInfo {
                    name: name.to_string(),
                    created: 0,
                    rsize: 0,
                    used: 0,
                    recursive: false,
                    order: 0,
                });
                match f[1] {
                    "createtxg" => s.order = f[2].parse().unwrap_or(0),
                    "creation" => s.created = f[2].parse().unwrap_or(0),
                    "referenced" => s.rsize = f[2].parse().unwrap_or(0),
                    "used" => s.used = f[2].parse().unwrap_or(0),
                    _ => {}
                }
            }
        }
        let mut v: Vec<SnapInfo> = rows.into_values().collect();
        for s in &mut v {
            s.recursive = top.contains(&s.name);
        }
        v.sort_by(|a, b| a.order.cmp(&b.order).then(a.name.cmp(&b.name)));
        Ok(v)
    }

    fn remove_snapshot(&self, uuid: &str, name: &str) -> Result<(), StorageError> {
        crate::storage::check_snap_name(name)?;
        // -r: the snapshot of the jail's children too (a recursive one); retried
        // while busy (a clone's mount just gone)
        let top = format!("{}@{name}", self.jail_ds(uuid));
        if self.exists(&top) {
            destroy_retry(&top, &[])
        } else {
            destroy_retry(&format!("{}@{name}", self.root_ds(uuid)), &[])
        }
    }

    fn rollback(
        &self,
        uuid: &str,
        name: &str,
    ) -> Result<Option<BTreeMap<String, String>>, StorageError> {
        let snaps = self.snapshots(uuid)?;
        let Some(s) = snaps.iter().find(|s| s.name == name) else {
            return Err(StorageError::Invalid(format!(
                "jail {uuid} has no snapshot {name}"
            )));
        };
        let mut saved = None;
        if s.recursive {
            let jail = self.jail_ds(uuid);
            rollback_ds(&format!("{jail}@{name}"))?;
            let f = self.mountpoint(&jail)?.join(SAVED);
            let data = std::fs::read(&f).map_err(io_err(&f))?;
            saved =
                Some(serde_json::from_slice(&data).map_err(|e| {
                    StorageError::Invalid(format!("{}: corrupt: {e}", f.display()))
                })?);
        }
        rollback_ds(&format!("{}@{name}", self.root_ds(uuid)))?;
        Ok(saved)
    }

    fn snapshot_dir(&self, uuid: &str, name: &str) -> Result<PathBuf, StorageError> {
        crate::storage::check_snap_name(name)?;
        let view = self.view_ds(uuid, name);
        if !self.exists(&view) {
            zfs(&[
                "clone",
                "-o",
                "readonly=on",
                "-o",
                "setuid=off",
                "-o",
                "exec=off",
                "-o",
                "devices=off",
                &format!("{}@{name}", self.root_ds(uuid)),
                &view,
            ])?;
        }
        self.mountpoint(&view)
    }

    fn snapshot_dir_done(&self, uuid: &str, name: &str) -> Result<(), StorageError> {
        let view = self.view_ds(uuid, name);
        if self.exists(&view) {
            destroy_retry(&view, &["-f"])?;
        }
        Ok(())
    }

    fn promote(&self, uuid: &str, _origin_uuid: &str, _name: &str) -> Result<(), StorageError> {
        zfs(&["promote", &self.root_ds(uuid)])?;
        Ok(())
    }

    fn data_dir(
        &self,
        uuid: &str,
        _props: &BTreeMap<String, String>,
    ) -> Result<PathBuf, StorageError> {
        crate::storage::Backend::root_dir(self, uuid)
    }
}

/// `zfs rollback -r` (later snapshots destroyed), retried while the dataset is busy.
fn rollback_ds(snap: &str) -> Result<(), StorageError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        match zfs(&["rollback", "-r", snap]) {
            Err(StorageError::Command { msg, .. })
                if msg.contains("busy") && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            r => return r.map(|_| ()),
        }
    }
}
