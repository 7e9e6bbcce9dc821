//! Snapshots on the directory backend: `jails/UUID/snapshots/NAME/` with `data/` (a
//! copy of the jail's own files: its root, or a thin jail's `upper/`; copy-on-write
//! where the file system can, else a full copy), `meta.json` (creation time, whether
//! recursive) and, for a recursive snapshot, `config.json`. A snapshot is made in
//! `.NAME.partial` and renamed into place; a rollback swaps the data through
//! `.rollback.new`/`.rollback.old`, which the next snapshot command finishes or undoes.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::{read_props, write_atomic, DirBackend, CONFIG};
use crate::storage::{check_snap_name, io_err, SnapInfo, Snapshots, StorageError};
use crate::sys::files::remove_tree;
use crate::sys::snapio::cow_copy_tree;
use crate::sys::tool::mounted_below;
use crate::sys::{Os, OS};

#[derive(serde::Serialize, serde::Deserialize)]
struct Meta {
    created: i64,
    recursive: bool,
    /// Nanoseconds since the epoch (creation order within a second).
    #[serde(default)]
    ns: u64,
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Bytes a tree occupies (allocated blocks).
fn tree_size(p: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(m) = fs::symlink_metadata(p) else {
        return 0;
    };
    let mut n = m.blocks() * 512;
    if m.is_dir() {
        if let Ok(rd) = fs::read_dir(p) {
            for e in rd.flatten() {
                n += tree_size(&e.path());
            }
        }
    }
    n
}

fn not_mounted(p: &Path) -> Result<(), StorageError> {
    let m = mounted_below(p).map_err(io_err(p))?;
    if m.is_empty() {
        Ok(())
    } else {
        Err(StorageError::Invalid(format!(
            "{} has mounts below it ({m:?}): stop the jail first",
            p.display()
        )))
    }
}

impl DirBackend {
    fn snaps(&self, uuid: &str) -> PathBuf {
        self.jail(uuid).join("snapshots")
    }

    fn own_data(&self, uuid: &str) -> PathBuf {
        let j = self.jail(uuid);
        if OS == Os::Linux && j.join("upper").is_dir() {
            j.join("upper")
        } else {
            j.join("root")
        }
    }

    /// The files of snapshot `name` of `uuid`.
    pub(super) fn snap_data(&self, uuid: &str, name: &str) -> Result<PathBuf, StorageError> {
        check_snap_name(name)?;
        let d = self.snaps(uuid).join(name).join("data");
        if !d.is_dir() {
            return Err(StorageError::Invalid(format!(
                "jail {uuid} has no snapshot {name}"
            )));
        }
        Ok(d)
    }
}

impl Snapshots for DirBackend {
    fn snapshots_while_running(&self) -> bool {
        false
    }

    fn snapshot(
        &self,
        uuid: &str,
        name: &str,
        recursive: bool,
        props: &BTreeMap<String, String>,
    ) -> Result<(), StorageError> {
        check_snap_name(name)?;
        self.sweep_snapshots(uuid)?;
        let dir = self.snaps(uuid);
        let to = dir.join(name);
        if to.exists() {
            return Err(StorageError::Invalid(format!(
                "jail {uuid} already has a snapshot {name}"
            )));
        }
        let tmp = dir.join(format!(".{name}.partial"));
        let data = tmp.join("data");
        fs::create_dir_all(&data).map_err(io_err(&data))?;
        let res = (|| {
            cow_copy_tree(&self.own_data(uuid), &data)?;
            if recursive {
                write_atomic(
                    &tmp.join(CONFIG),
                    &serde_json::to_vec_pretty(props).expect("json"),
                )?;
            }
            let meta = Meta {
                created: now(),
                recursive,
                ns: now_ns(),
            };
            write_atomic(
                &tmp.join("meta.json"),
                &serde_json::to_vec(&meta).expect("json"),
            )?;
            fs::rename(&tmp, &to).map_err(io_err(&to))
        })();
        if res.is_err() {
            let _ = remove_tree(&tmp);
        }
        res
    }

    fn snapshots(&self, uuid: &str) -> Result<Vec<SnapInfo>, StorageError> {
        let dir = self.snaps(uuid);
        let mut v = Vec::new();
        let Ok(rd) = fs::read_dir(&dir) else {
            return Ok(v);
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let meta: Meta = fs::read(e.path().join("meta.json"))
                .ok()
                .and_then(|d| serde_json::from_slice(&d).ok())
                .unwrap_or(Meta {
                    created: 0,
                    recursive: false,
                    ns: 0,
                });
            let size = tree_size(&e.path().join("data"));
            v.push(SnapInfo {
                name,
                created: meta.created,
                rsize: size,
                used: size,
                recursive: meta.recursive,
                order: if meta.ns > 0 {
                    meta.ns
                } else {
                    (meta.created.max(0) as u64).saturating_mul(1_000_000_000)
                },
            });
        }
        v.sort_by(|a, b| a.order.cmp(&b.order).then(a.name.cmp(&b.name)));
        Ok(v)
    }

    fn remove_snapshot(&self, uuid: &str, name: &str) -> Result<(), StorageError> {
        check_snap_name(name)?;
        let p = self.snaps(uuid).join(name);
        if !p.exists() {
            return Err(StorageError::Invalid(format!(
                "jail {uuid} has no snapshot {name}"
            )));
        }
        not_mounted(&p)?;
        // renamed to a leftover's name first: a removal killed midway is finished by
        // the next snapshot command
        let tmp = self.snaps(uuid).join(format!(".{name}.partial"));
        let _ = remove_tree(&tmp);
        fs::rename(&p, &tmp).map_err(io_err(&p))?;
        remove_tree(&tmp).map_err(io_err(&tmp))
    }

    fn rollback(
        &self,
        uuid: &str,
        name: &str,
    ) -> Result<Option<BTreeMap<String, String>>, StorageError> {
        self.sweep_snapshots(uuid)?;
        let from = self.snap_data(uuid, name)?;
        let all = self.snapshots(uuid)?;
        let me = all.iter().position(|s| s.name == name).expect("listed");
        let data = self.own_data(uuid);
        not_mounted(&data)?;
        let j = self.jail(uuid);
        let new = j.join(".rollback.new");
        let old = j.join(".rollback.old");
        fs::create_dir_all(&new).map_err(io_err(&new))?;
        if let Err(e) = cow_copy_tree(&from, &new) {
            let _ = remove_tree(&new);
            return Err(e.into());
        }
        // the marker says which directory the swap replaces
        fs::write(
            j.join(".rollback.target"),
            data.file_name().unwrap().as_encoded_bytes(),
        )
        .map_err(io_err(&j))?;
        fs::rename(&data, &old).map_err(io_err(&data))?;
        fs::rename(&new, &data).map_err(io_err(&data))?;
        let _ = fs::remove_file(j.join(".rollback.target"));
        remove_tree(&old).map_err(io_err(&old))?;
        for later in &all[me + 1..] {
            self.remove_snapshot(uuid, &later.name)?;
        }
        let saved = if all[me].recursive {
            let p = self.snaps(uuid).join(name).join(CONFIG);
            Some(read_props(&p).map_err(StorageError::Invalid)?)
        } else {
            None
        };
        Ok(saved)
    }

    fn snapshot_dir(&self, uuid: &str, name: &str) -> Result<PathBuf, StorageError> {
        self.snap_data(uuid, name)
    }

    fn snapshot_dir_done(&self, _uuid: &str, _name: &str) -> Result<(), StorageError> {
        Ok(())
    }

    fn promote(&self, uuid: &str, origin_uuid: &str, name: &str) -> Result<(), StorageError> {
        // The clone's files are its own already (a copy); the snapshot moves to it, as
        // ZFS moves an origin snapshot to the promoted clone.
        let from = self.snaps(origin_uuid).join(name);
        let dir = self.snaps(uuid);
        let to = dir.join(name);
        if !from.is_dir() || to.exists() {
            return Ok(());
        }
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        fs::rename(&from, &to).map_err(io_err(&to))
    }

    fn data_dir(
        &self,
        uuid: &str,
        _props: &BTreeMap<String, String>,
    ) -> Result<PathBuf, StorageError> {
        Ok(self.own_data(uuid))
    }

    fn sweep_snapshots(&self, uuid: &str) -> Result<(), StorageError> {
        let j = self.jail(uuid);
        let marker = j.join(".rollback.target");
        if let Ok(t) = fs::read_to_string(&marker) {
            // a swap was interrupted: put the old data back if it is gone
            let data = j.join(t.trim());
            let old = j.join(".rollback.old");
            if !data.exists() && old.exists() && t.trim() != "" && !t.contains('/') {
                fs::rename(&old, &data).map_err(io_err(&data))?;
            }
            let _ = fs::remove_file(&marker);
        }
        for p in [j.join(".rollback.new"), j.join(".rollback.old")] {
            remove_tree(&p).map_err(io_err(&p))?;
        }
        if let Ok(rd) = fs::read_dir(self.snaps(uuid)) {
            for e in rd.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if n.starts_with('.') && n.ends_with(".partial") {
                    remove_tree(&e.path()).map_err(io_err(&e.path()))?;
                }
            }
        }
        Ok(())
    }
}
