//! The plain-directory backend: `ROOT/{jails/UUID,releases/NAME/root,templates,
//! download,images,log}` with each jail's properties in `jails/UUID/config.json`,
//! written atomically (temporary file, fsync, rename). A jail being created lives in
//! `jails/.UUID.partial` until its last step renames it into place. Thin jails are an
//! overlay (Linux) over the read-only release: `upper/` and `work/` beside `root/`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

mod snap;

use super::{io_err, Backend, Base, Record, RootLayout, StorageError};
use crate::sys::files::remove_tree;
use crate::sys::tool::{self, mounted_below};
use crate::sys::{Os, OS};

pub struct DirBackend {
    pub root: PathBuf,
}

pub(super) const CONFIG: &str = "config.json";

/// Write a file atomically (see [`crate::sys::files::write_atomic`]).
pub(super) fn write_atomic(path: &Path, data: &[u8]) -> Result<(), StorageError> {
    crate::sys::files::write_atomic(path, data).map_err(io_err(path))
}

pub(super) fn read_props(path: &Path) -> Result<BTreeMap<String, String>, String> {
    let data = fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_slice(&data).map_err(|e| format!("{}: corrupt: {e}", path.display()))
}

impl DirBackend {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DirBackend { root: root.into() }
    }

    fn jails(&self) -> PathBuf {
        self.root.join("jails")
    }

    fn partial(&self, uuid: &str) -> PathBuf {
        self.jails().join(format!(".{uuid}.partial"))
    }

    pub(super) fn jail(&self, uuid: &str) -> PathBuf {
        self.jails().join(uuid)
    }

    fn write_json(path: &Path, props: &BTreeMap<String, String>) -> Result<(), StorageError> {
        write_atomic(path, &serde_json::to_vec_pretty(props).expect("json"))
    }
}

impl Backend for DirBackend {
    fn describe(&self) -> String {
        format!("dir:{}", self.root.display())
    }

    fn ensure_layout(&self) -> Result<(), StorageError> {
        for d in super::LAYOUT {
            let p = self.root.join(d);
            fs::create_dir_all(&p).map_err(io_err(&p))?;
            super::make_private(&p)?;
        }
        Ok(())
    }

    fn list_jails(&self) -> Result<Vec<Record>, StorageError> {
        let mut out = Vec::new();
        let dir = self.jails();
        let rd = match fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(io_err(&dir)(e)),
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(uuid) = name
                .strip_prefix('.')
                .and_then(|n| n.strip_suffix(".partial"))
            {
                out.push(Record {
                    uuid: uuid.to_string(),
                    props: BTreeMap::new(),
                    problem: None,
                    incomplete: true,
                });
                continue;
            }
            if name.starts_with('.') || !e.path().is_dir() {
                continue;
            }
            match read_props(&e.path().join(CONFIG)) {
                Ok(props) => out.push(Record {
                    uuid: name,
                    props,
                    problem: None,
                    incomplete: false,
                }),
                Err(why) => out.push(Record {
                    uuid: name,
                    props: BTreeMap::new(),
                    problem: Some(why),
                    incomplete: false,
                }),
            }
        }
        Ok(out)
    }

    fn census(&self) -> Result<Option<Vec<(String, Option<String>)>>, StorageError> {
        let dir = self.jails();
        let rd = match fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Some(vec![])),
            Err(e) => return Err(io_err(&dir)(e)),
        };
        let now = std::time::SystemTime::now();
        let mut out = Vec::new();
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(uuid) = name
                .strip_prefix('.')
                .and_then(|n| n.strip_suffix(".partial"))
            {
                out.push((uuid.to_string(), None));
                continue;
            }
            if name.starts_with('.') {
                continue;
            }
            let stamp = match fs::symlink_metadata(e.path().join(CONFIG)) {
                Ok(m) => config_stamp(&m, now),
                // a folder without a configuration: read, it says what is wrong
                Err(_) if e.path().is_dir() => None,
                Err(_) => continue,
            };
            out.push((name, stamp));
        }
        Ok(Some(out))
    }

    fn census_stamp(&self, uuid: &str) -> Option<String> {
        if uuid.starts_with('.') || uuid.contains('/') {
            return None;
        }
        let m = fs::symlink_metadata(self.jail(uuid).join(CONFIG)).ok()?;
        config_stamp(&m, std::time::SystemTime::now())
    }

    fn read_jail(&self, uuid: &str) -> Result<Option<Record>, StorageError> {
        let d = self.jail(uuid);
        if !d.is_dir() || uuid.starts_with('.') || uuid.contains('/') {
            return Ok(None);
        }
        Ok(Some(match read_props(&d.join(CONFIG)) {
            Ok(props) => Record {
                uuid: uuid.to_string(),
                props,
                problem: None,
                incomplete: false,
            },
            Err(why) => Record {
                uuid: uuid.to_string(),
                props: BTreeMap::new(),
                problem: Some(why),
                incomplete: false,
            },
        }))
    }

    fn create_jail(
        &self,
        uuid: &str,
        props: &BTreeMap<String, String>,
        base: &Base,
    ) -> Result<(), StorageError> {
        let tmp = self.partial(uuid);
        fs::create_dir_all(&tmp).map_err(io_err(&tmp))?;
        match base {
            Base::Release(r) => {
                let rel = self.release_root(r)?;
                if !rel.is_dir() {
                    return Err(StorageError::Invalid(format!("release {r} is not fetched")));
                }
                for d in ["root", "upper", "work"] {
                    fs::create_dir_all(tmp.join(d)).map_err(io_err(&tmp))?;
                }
                if OS == Os::FreeBsd {
                    super::basejail::make_root(&rel, &tmp.join("root"))?;
                }
            }
            Base::Thick(r) => copy_release(&self.release_root(r)?, &tmp.join("root"))?,
            Base::Empty => fs::create_dir_all(tmp.join("root")).map_err(io_err(&tmp))?,
            Base::Clone {
                uuid: from,
                snap,
                thin,
            } => {
                let data = self.snap_data(from, snap)?;
                for d in ["root", "upper", "work"] {
                    if *thin || d == "root" {
                        fs::create_dir_all(tmp.join(d)).map_err(io_err(&tmp))?;
                    }
                }
                // a thin jail's own files: the overlay's upper layer on Linux, its
                // root (the release mounted into it) on FreeBSD
                let to = tmp.join(if *thin && OS == Os::Linux {
                    "upper"
                } else {
                    "root"
                });
                crate::sys::snapio::cow_copy_tree(&data, &to)?;
            }
            Base::Files { dir, thin, release } => {
                if *thin && !self.release_root(release)?.is_dir() {
                    return Err(StorageError::Invalid(format!(
                        "release {release} is not fetched"
                    )));
                }
                let to = if *thin {
                    for d in ["root", "work"] {
                        fs::create_dir_all(tmp.join(d)).map_err(io_err(&tmp))?;
                    }
                    tmp.join("upper")
                } else {
                    tmp.join("root")
                };
                if fs::rename(dir, &to).is_err() {
                    fs::create_dir_all(&to).map_err(io_err(&to))?;
                    crate::sys::snapio::cow_copy_tree(dir, &to)?;
                }
            }
        }
        fs::File::create(tmp.join("fstab")).map_err(io_err(&tmp))?;
        Self::write_json(&tmp.join(CONFIG), props)
    }

    fn finish_jail(&self, uuid: &str) -> Result<(), StorageError> {
        let from = self.partial(uuid);
        let to = self.jail(uuid);
        fs::rename(&from, &to).map_err(io_err(&to))?;
        fs::File::open(self.jails())
            .and_then(|d| d.sync_all())
            .map_err(io_err(&to))
    }

    fn write_props(
        &self,
        uuid: &str,
        _old: &BTreeMap<String, String>,
        props: &BTreeMap<String, String>,
    ) -> Result<(), StorageError> {
        Self::write_json(&self.jail(uuid).join(CONFIG), props)
    }

    fn destroy_jail(&self, uuid: &str) -> Result<(), StorageError> {
        for p in [self.jail(uuid), self.partial(uuid)] {
            if !p.exists() {
                continue;
            }
            let m = mounted_below(&p).map_err(io_err(&p))?;
            if !m.is_empty() {
                return Err(StorageError::Invalid(format!(
                    "{} is still mounted: {m:?}",
                    p.display()
                )));
            }
        }
        // Renamed to its incomplete name first (atomic): a destroy killed midway
        // leaves a jail the next command finishes destroying.
        let live = self.jail(uuid);
        let partial = self.partial(uuid);
        if live.exists() {
            if partial.exists() {
                remove_tree(&partial).map_err(io_err(&partial))?;
            }
            fs::rename(&live, &partial).map_err(io_err(&live))?;
        }
        if partial.exists() {
            remove_tree(&partial).map_err(io_err(&partial))?;
        }
        Ok(())
    }

    fn jail_dir(&self, uuid: &str) -> Result<PathBuf, StorageError> {
        Ok(self.jail(uuid))
    }

    fn root_dir(&self, uuid: &str) -> Result<PathBuf, StorageError> {
        Ok(self.jail(uuid).join("root"))
    }

    fn root_layout(
        &self,
        uuid: &str,
        props: &BTreeMap<String, String>,
    ) -> Result<RootLayout, StorageError> {
        if props.get("type").map(String::as_str) != Some("basejail") {
            return Ok(RootLayout::InPlace);
        }
        let release = props.get("release").cloned().unwrap_or_default();
        let lower = self.release_root(&release)?;
        if !lower.is_dir() {
            return Err(StorageError::Invalid(format!(
                "release {release} of jail {uuid} is missing ({})",
                lower.display()
            )));
        }
        let j = self.jail(uuid);
        Ok(RootLayout::Thin {
            release,
            shared: super::basejail::shared_dirs(&lower),
            lower,
            upper: j.join("upper"),
            work: j.join("work"),
            target: j.join("root"),
        })
    }

    fn releases(&self) -> Result<Vec<String>, StorageError> {
        let dir = self.root.join("releases");
        let mut v: Vec<String> = match fs::read_dir(&dir) {
            Ok(rd) => rd
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect(),
            Err(_) => vec![],
        };
        v.sort();
        Ok(v)
    }

    fn begin_release(&self, name: &str) -> Result<PathBuf, StorageError> {
        let tmp = self.root.join("releases").join(format!(".{name}.partial"));
        if tmp.exists() {
            remove_tree(&tmp).map_err(io_err(&tmp))?;
        }
        let root = tmp.join("root");
        fs::create_dir_all(&root).map_err(io_err(&root))?;
        Ok(root)
    }

    fn commit_release(&self, name: &str) -> Result<(), StorageError> {
        let rels = self.root.join("releases");
        let tmp = rels.join(format!(".{name}.partial"));
        let to = rels.join(name);
        if to.exists() {
            let old = rels.join(format!(".{name}.old"));
            if old.exists() {
                remove_tree(&old).map_err(io_err(&old))?;
            }
            fs::rename(&to, &old).map_err(io_err(&to))?;
            if let Err(e) = fs::rename(&tmp, &to) {
                let _ = fs::rename(&old, &to);
                return Err(io_err(&to)(e));
            }
            remove_tree(&old).map_err(io_err(&old))?;
        } else {
            fs::rename(&tmp, &to).map_err(io_err(&to))?;
        }
        fs::File::open(&rels)
            .and_then(|d| d.sync_all())
            .map_err(io_err(&rels))
    }

    fn drop_release(&self, name: &str) -> Result<(), StorageError> {
        let p = self.root.join("releases").join(format!(".{name}.partial"));
        if p.exists() {
            remove_tree(&p).map_err(io_err(&p))?;
        }
        Ok(())
    }

    fn sweep_staging(&self) -> Result<Vec<String>, StorageError> {
        let mut gone = Vec::new();
        let rels = self.root.join("releases");
        if let Ok(rd) = fs::read_dir(&rels) {
            for e in rd.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if n.starts_with('.') && (n.ends_with(".partial") || n.ends_with(".old")) {
                    let p = e.path();
                    if n.ends_with(".old") {
                        // an interrupted swap: put the release back if it is missing
                        let name = &n[1..n.len() - 4];
                        let to = rels.join(name);
                        if !to.exists() && fs::rename(&p, &to).is_ok() {
                            gone.push(format!("restored release {name}"));
                            continue;
                        }
                    }
                    remove_tree(&p).map_err(io_err(&p))?;
                    gone.push(p.display().to_string());
                }
            }
        }
        let dl = self.root.join("download");
        if let Ok(rd) = fs::read_dir(&dl) {
            for e in rd.flatten() {
                let p = e.path();
                let _ = if p.is_dir() {
                    remove_tree(&p)
                } else {
                    fs::remove_file(&p)
                };
                gone.push(p.display().to_string());
            }
        }
        Ok(gone)
    }

    fn release_root(&self, name: &str) -> Result<PathBuf, StorageError> {
        super::check_release_name(name)?;
        Ok(self.root.join("releases").join(name).join("root"))
    }

    fn defaults(&self) -> Result<BTreeMap<String, String>, StorageError> {
        let p = self.root.join("defaults.json");
        if !p.exists() {
            return Ok(BTreeMap::new());
        }
        read_props(&p).map_err(StorageError::Invalid)
    }

    fn write_defaults(
        &self,
        _old: &BTreeMap<String, String>,
        new: &BTreeMap<String, String>,
    ) -> Result<(), StorageError> {
        fs::create_dir_all(&self.root).map_err(io_err(&self.root))?;
        Self::write_json(&self.root.join("defaults.json"), new)
    }

    fn clean(&self, what: &str) -> Result<(), StorageError> {
        let targets: Vec<PathBuf> = match what {
            "all" => vec![self.root.clone()],
            other => vec![self.root.join(other)],
        };
        for t in targets {
            let m = mounted_below(&t).map_err(io_err(&t))?;
            if !m.is_empty() {
                return Err(StorageError::Invalid(format!(
                    "{} has mounts below it: {m:?}",
                    t.display()
                )));
            }
            if t.exists() {
                remove_tree(&t).map_err(io_err(&t))?;
            }
        }
        if what != "all" {
            self.ensure_layout()?;
        }
        Ok(())
    }

    fn base_dir(&self) -> Result<PathBuf, StorageError> {
        Ok(self.root.clone())
    }
}

fn copy_release(from: &Path, to: &Path) -> Result<(), StorageError> {
    if !from.is_dir() {
        return Err(StorageError::Invalid(format!(
            "release root {} is missing",
            from.display()
        )));
    }
    std::fs::create_dir_all(to).map_err(io_err(to))?;
    Ok(tool::copy_tree(from, to)?)
}

/// A stamp of a jail's configuration file that changes whenever the file may have:
/// its inode (every write replaces it), size, and change and modification times.
/// `None` while the change time is less than two seconds old: a write within the
/// same tick of the file system's clock would keep the stamp (so such a file is read
/// every time until it has aged).
fn config_stamp(m: &fs::Metadata, now: std::time::SystemTime) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let ctime = std::time::UNIX_EPOCH
        + std::time::Duration::new(
            m.ctime().max(0) as u64,
            m.ctime_nsec().clamp(0, 999_999_999) as u32,
        );
    let aged = now
        .duration_since(ctime)
        .is_ok_and(|d| d >= std::time::Duration::from_secs(2));
    aged.then(|| {
        format!(
            "{}:{}:{}:{}.{}:{}.{}",
            m.dev(),
            m.ino(),
            m.size(),
            m.ctime(),
            m.ctime_nsec(),
            m.mtime(),
            m.mtime_nsec()
        )
    })
}
