//! `export` and `import`. An archive is `images/UUID_YYYY-MM-DD_HHMMSS.tar.gz` with
//! `UUID_....tar.gz.sha256` beside it: a gzip-compressed pax tar of `jail.json` (the
//! format, the layout and the jail's properties) and the jail's own files (`root/`,
//! or a thin directory-backend jail's changes, `upper/`). The same format on both
//! backends, so an archive moves between them; its members can be checked one by one
//! before anything is created (a `zfs send` stream could not be, and would be parsed
//! by the kernel). Import verifies the checksum first, then every member, then
//! extracts into a staging directory and creates the jail from it, incomplete until
//! its last step: an interrupted import leaves nothing the next command keeps.

mod tar;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::create::{check_tag, new_uuid};
use super::error::{invalid, io_at, ManagerError, Result};
use super::{props, Manager};
use crate::storage::{Base, StorageError};
pub use tar::TarError;

const META: &str = "jail.json";
const FORMAT: u32 = 1;

#[derive(serde::Serialize, serde::Deserialize)]
struct Meta {
    format: u32,
    /// `root` or `upper`.
    layout: String,
    props: BTreeMap<String, String>,
}

fn sha256_file(p: &Path) -> Result<String> {
    let mut f = std::fs::File::open(p).map_err(io_at(p.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(io_at(p.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

fn tar_err(e: TarError) -> ManagerError {
    ManagerError::Invalid(e.to_string())
}

/// Read the archive's stream (gunzipped) with `f`; the decompressor must succeed.
fn read_archive(
    archive: &Path,
    f: impl FnMut(&tar::Member, &mut dyn Read) -> std::result::Result<(), TarError>,
) -> Result<()> {
    let mut child = crate::sys::snapio::gunzip(archive).map_err(io_at(archive.display()))?;
    let out = child.stdout.take().expect("piped");
    let res = tar::walk(std::io::BufReader::new(out), f);
    let _ = child.kill();
    let st = child.wait().map_err(io_at("gzip"))?;
    res.map_err(tar_err)?;
    if !st.success() && st.code().is_some() {
        return Err(invalid(format!(
            "{}: not a gzip archive ({st})",
            archive.display()
        )));
    }
    Ok(())
}

impl Manager {
    fn images(&self) -> Result<PathBuf> {
        self.backend.ensure_layout()?;
        let d = self.backend.base_dir()?.join("images");
        // leftovers of an interrupted export or import
        if let Ok(rd) = std::fs::read_dir(&d) {
            for e in rd.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if n.starts_with('.') && n.contains(".partial") {
                    let _ = if e.path().is_dir() {
                        crate::sys::files::remove_tree(&e.path())
                    } else {
                        std::fs::remove_file(e.path())
                    };
                }
            }
        }
        Ok(d)
    }

    /// `export UUID|TAG`: the archive written.
    pub fn export(&self, key: &str) -> Result<PathBuf> {
        let j = self.resolve(key)?;
        let _l = self.lock_jail(&j.uuid)?;
        let j = self.reread(&j)?;
        if self.is_running(&j).is_some() {
            return Err(ManagerError::Running(j.label()));
        }
        let images = self.images()?;
        let data = self.backend.data_dir(&j.uuid, &j.stored)?;
        let layout = data
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let stage = images.join(format!(".{}.partial", j.uuid));
        std::fs::create_dir_all(&stage).map_err(io_at(stage.display()))?;
        let meta = Meta {
            format: FORMAT,
            layout: layout.clone(),
            props: j.stored.clone(),
        };
        let mp = stage.join(META);
        std::fs::write(&mp, serde_json::to_vec_pretty(&meta).expect("json"))
            .map_err(io_at(mp.display()))?;
        let name = format!(
            "{}_{}.tar.gz",
            j.uuid,
            super::timestamp().replace('@', "_").replace(':', "")
        );
        let tmp = images.join(format!(".{name}.partial"));
        let parent = data.parent().unwrap_or(Path::new("/"));
        let res = crate::sys::snapio::tar_create(&tmp, &[(&stage, META), (parent, &layout)])
            .map_err(StorageError::from)
            .map_err(ManagerError::from)
            .and_then(|_| sha256_file(&tmp))
            .and_then(|sum| {
                let to = images.join(&name);
                std::fs::rename(&tmp, &to).map_err(io_at(to.display()))?;
                let s = images.join(format!("{name}.sha256"));
                crate::sys::files::write_atomic(&s, format!("{sum}  {name}\n").as_bytes())
                    .map_err(io_at(s.display()))?;
                Ok(to)
            });
        let _ = crate::sys::files::remove_tree(&stage);
        let _ = std::fs::remove_file(&tmp);
        res
    }

    /// The one archive in `images/` whose name starts with `prefix`.
    fn find_archive(&self, prefix: &str) -> Result<PathBuf> {
        if prefix.is_empty() || prefix.contains('/') || prefix.starts_with('.') {
            return Err(invalid(format!(
                "import: \"{prefix}\" is no UUID or prefix"
            )));
        }
        let images = self.images()?;
        let mut found: Vec<PathBuf> = std::fs::read_dir(&images)
            .map_err(io_at(images.display()))?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(prefix) && n.ends_with(".tar.gz"))
            .map(|n| images.join(n))
            .collect();
        found.sort();
        match found.len() {
            1 => Ok(found.remove(0)),
            0 => Err(invalid(format!(
                "import: no archive {prefix}*.tar.gz in {}",
                images.display()
            ))),
            _ => Err(invalid(format!(
                "import: \"{prefix}\" matches several archives: {}",
                found
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    /// `import UUID|prefix [property=value ...]`: the new jail's UUID and how many
    /// setuid/setgid bits were dropped.
    pub fn import(&self, prefix: &str, given: &[(String, String)]) -> Result<(String, usize)> {
        let archive = self.find_archive(prefix)?;
        // 1. the checksum, before anything else
        let sumfile = PathBuf::from(format!("{}.sha256", archive.display()));
        let want = std::fs::read_to_string(&sumfile)
            .map_err(|e| invalid(format!("import: checksum file {}: {e}", sumfile.display())))?;
        let want = want
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        let have = sha256_file(&archive)?;
        if want != have {
            return Err(invalid(format!(
                "import: {} does not match its checksum (sha256 {have}, expected {want}): refused, nothing was created",
                archive.display()
            )));
        }
        // 2. every member checked, the metadata read
        let mut meta: Option<Meta> = None;
        read_archive(&archive, |m, data| {
            let c = tar::components(&m.path)?;
            match (c.as_slice(), &meta) {
                ([], _) => Ok(()),
                ([n], None) if *n == META && m.kind == tar::Kind::File && m.size < 1 << 20 => {
                    let mut b = Vec::new();
                    data.read_to_end(&mut b)
                        .map_err(|e| TarError::Bad(e.to_string()))?;
                    meta = Some(
                        serde_json::from_slice(&b)
                            .map_err(|e| TarError::Bad(format!("{META}: {e}")))?,
                    );
                    Ok(())
                }
                ([first, ..], Some(mt)) if *first == mt.layout => match m.kind {
                    tar::Kind::CharDev if mt.layout == "upper" && m.dev == (0, 0) => Ok(()),
                    tar::Kind::CharDev | tar::Kind::BlockDev => Err(TarError::Bad(format!(
                        "{}: device nodes are not accepted",
                        m.path
                    ))),
                    _ => Ok(()),
                },
                _ => Err(TarError::Bad(format!(
                    "{}: not a member of a jail archive ({META} first, then root/ or upper/)",
                    m.path
                ))),
            }
        })?;
        let meta =
            meta.ok_or_else(|| invalid(format!("import: {}: no {META}", archive.display())))?;
        if meta.format != FORMAT || !matches!(meta.layout.as_str(), "root" | "upper") {
            return Err(invalid(format!(
                "import: format {} layout {} is not known",
                meta.format, meta.layout
            )));
        }
        let mut p = meta.props;
        for (k, v) in &p {
            let prop = props::lookup(k)?;
            if prop.kind != props::Kind::ReadOnly {
                props::validate(k, v)?;
            }
        }
        p.remove("origin");
        let given: BTreeMap<String, String> = given.iter().cloned().collect();
        let renamed = given.contains_key("tag");
        p.extend(given);
        let thin = meta.layout == "upper";
        let release = p.get("release").cloned().unwrap_or_default();
        if meta.layout == "root"
            && p.get("type").map(String::as_str) == Some("basejail")
            && self.backend.describe().starts_with("dir:")
        {
            // a full root: on the directory backend that is a thick jail
            p.insert("type".into(), "thickjail".into());
        }
        // 3. extract into a staging directory
        let images = self.images()?;
        let stage = images.join(format!(".import-{}.partial", new_uuid()));
        let target = stage.join("data");
        std::fs::create_dir_all(&target).map_err(io_at(target.display()))?;
        let mut ex = tar::Extractor {
            target: target.clone(),
            whiteouts: thin,
            strip: Some(meta.layout.clone()),
            stripped_setid: 0,
        };
        let res = read_archive(&archive, |m, data| {
            let c = tar::components(&m.path)?;
            match tar::strip_first(&c, Some(&meta.layout)) {
                Some(rest) => ex.put(m, rest, data),
                None => Ok(()),
            }
        })
        .and_then(|_| self.import_create(p, renamed, &target, thin, &release));
        let _ = crate::sys::files::remove_tree(&stage);
        res.map(|u| (u, ex.stripped_setid))
    }

    fn import_create(
        &self,
        mut p: BTreeMap<String, String>,
        renamed: bool,
        dir: &Path,
        thin: bool,
        release: &str,
    ) -> Result<String> {
        let _g = self.lock_global()?;
        let all = self.jails()?;
        let tag = p.get("tag").cloned().unwrap_or_default();
        check_tag(&tag)?;
        if let Some(o) = all.iter().find(|j| j.tag() == tag) {
            return Err(invalid(format!(
                "import: tag {tag} is used by jail {}: give another with tag=NAME",
                o.uuid
            )));
        }
        let old = p.get("uuid").cloned().unwrap_or_default();
        let uuid = if super::resolve::is_uuid(&old) && !all.iter().any(|j| j.uuid == old) {
            old
        } else if renamed {
            new_uuid()
        } else {
            return Err(invalid(format!(
                "import: jail {old} exists: import it as a new jail with tag=NAME"
            )));
        };
        p.insert("uuid".into(), uuid.clone());
        p.insert("host_hostuuid".into(), uuid.clone());
        let base = Base::Files {
            dir: dir.to_path_buf(),
            thin,
            release: release.to_string(),
        };
        let _l = self.lock_jail(&uuid)?;
        let res = self
            .index_put(&tag, &uuid)
            .and_then(|_| Ok(self.backend.create_jail(&uuid, &p, &base)?))
            .and_then(|_| Ok(self.backend.finish_jail(&uuid)?));
        if let Err(e) = res {
            let mut cleanup = Vec::new();
            if let Err(c) = self.backend.destroy_jail(&uuid) {
                cleanup.push(c.into());
            }
            self.index_forget(&tag, &uuid);
            return Err(e.with_cleanup(cleanup));
        }
        Ok(uuid)
    }
}
