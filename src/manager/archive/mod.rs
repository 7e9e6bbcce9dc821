//! `export` and `import`. An archive is `images/UUID_YYYY-MM-DD_HHMMSS.tar.gz` with
//! `UUID_....tar.gz.sha256` beside it: a gzip-compressed pax tar of `jail.json` (the
//! format, the layout and the jail's properties) and the jail's own files (`root/`,
//! or a thin directory-backend jail's changes, `upper/`). The same format on both
//! backends, so an archive moves between them; its members can be checked one by one
//! before anything is created (a `zfs send` stream could not be, and would be parsed
//! by the kernel). Import verifies the checksum first, then every member, then
//! extracts into a staging directory and creates the jail from it, incomplete until
//! its last step: an interrupted import leaves nothing the next command keeps.

mod props;
mod staging;
mod tar;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::create::{check_tag, new_uuid};
use super::error::{invalid, io_at, ManagerError, Result};
use super::Manager;
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

/// Options of `import`.
#[derive(Debug, Default, Clone)]
pub struct ImportOpts {
    /// Keep every property and setuid/setgid bit of the archive (one the admin made).
    pub trust: bool,
    /// Refuse an archive that unpacks to more bytes (default: see [`default_max_size`]).
    pub max_size: Option<u64>,
}

/// What `import` did.
#[derive(Debug)]
pub struct ImportReport {
    pub uuid: String,
    /// Files whose setuid/setgid bits were dropped.
    pub setid_dropped: usize,
    /// `name=value` of the archive's properties that were not imported.
    pub props_dropped: Vec<String>,
}

/// Most members an archive may have.
pub const MAX_MEMBERS: u64 = 2_000_000;

/// The default bound on what an archive unpacks to: 8 times its compressed size,
/// at least 256 MiB (a jail's files compress 2-4 times with gzip; a decompression
/// bomb far more).
pub fn default_max_size(compressed: u64) -> u64 {
    compressed.saturating_mul(8).max(256 << 20)
}

fn check_limits(total: u64, count: u64, max: u64) -> std::result::Result<(), TarError> {
    if total > max {
        return Err(TarError::Bad(format!(
            "the archive unpacks to more than {max} bytes (the import size limit; give a larger one with --max-size)"
        )));
    }
    if count > MAX_MEMBERS {
        return Err(TarError::Bad(format!(
            "the archive has more than {MAX_MEMBERS} members (the import member limit)"
        )));
    }
    Ok(())
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
        // leftovers of interrupted exports and imports (never those of a live one)
        staging::sweep(&d);
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
        let run = staging::Stage::new(&images)?;
        let stage = run.entry("export.partial");
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
        let tmp = run.entry(&format!("{name}.partial"));
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

    /// `import [--trust] [--max-size BYTES] UUID|prefix [property=value ...]`.
    pub fn import(
        &self,
        prefix: &str,
        given: &[(String, String)],
        opts: &ImportOpts,
    ) -> Result<ImportReport> {
        let archive = self.find_archive(prefix)?;
        // 1. the checksum, before anything else (integrity only: an archive from
        // elsewhere is untrusted whatever its checksum)
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
        // 2. every member checked, the metadata read, the sizes summed
        let compressed = std::fs::metadata(&archive)
            .map_err(io_at(archive.display()))?
            .len();
        let max_size = opts
            .max_size
            .unwrap_or_else(|| default_max_size(compressed));
        let (mut total, mut count) = (0u64, 0u64);
        let mut meta: Option<Meta> = None;
        read_archive(&archive, |m, data| {
            count += 1;
            total = total.saturating_add(m.size);
            check_limits(total, count, max_size)?;
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
        let thin = meta.layout == "upper";
        let defaults = self.defaults()?;
        let imp = props::filter(
            &meta.props,
            &defaults,
            thin,
            &self.backend.releases()?,
            opts.trust,
        )?;
        let images = self.images()?;
        let free = crate::sys::snapio::free_bytes(&images).map_err(io_at(images.display()))?;
        if total > free {
            return Err(invalid(format!(
                "import: the archive unpacks to {total} bytes; {} has {free} free",
                images.display()
            )));
        }
        // 3. extract into this run's staging directory
        let run = staging::Stage::new(&images)?;
        let stage = run.entry("import.partial");
        let target = stage.join("data");
        std::fs::create_dir_all(&target).map_err(io_at(target.display()))?;
        let mut ex = tar::Extractor {
            target: target.clone(),
            whiteouts: thin,
            strip: Some(meta.layout.clone()),
            stripped_setid: 0,
            keep_setid: opts.trust,
        };
        let (mut total, mut count) = (0u64, 0u64);
        let res = read_archive(&archive, |m, data| {
            // the archive cannot have changed (images/ is 0700), checked again anyway
            count += 1;
            total = total.saturating_add(m.size);
            check_limits(total, count, max_size)?;
            let c = tar::components(&m.path)?;
            match tar::strip_first(&c, Some(&meta.layout)) {
                Some(rest) => ex.put(m, rest, data),
                None => Ok(()),
            }
        })
        .and_then(|_| self.import_create(&imp, &defaults, given, &target, thin));
        let _ = crate::sys::files::remove_tree(&stage);
        drop(run);
        res.map(|uuid| ImportReport {
            uuid,
            setid_dropped: ex.stripped_setid,
            props_dropped: imp.dropped,
        })
    }

    fn import_create(
        &self,
        imp: &props::Imported,
        defaults: &BTreeMap<String, String>,
        given: &[(String, String)],
        dir: &Path,
        thin: bool,
    ) -> Result<String> {
        let given: BTreeMap<String, String> = given.iter().cloned().collect();
        let renamed = given.contains_key("tag");
        let mut p = defaults.clone();
        p.extend(imp.props.clone());
        p.extend(given);
        p.insert("type".into(), imp.ty.into());
        p.insert("release".into(), imp.release.clone());
        p.insert("last_started".into(), "none".into());
        p.remove("origin");
        p.retain(|_, v| !v.is_empty());
        let release = imp.release.clone();
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
        let uuid = match &imp.uuid {
            Some(old) if !all.iter().any(|j| &j.uuid == old) => old.clone(),
            Some(old) if !renamed => {
                return Err(invalid(format!(
                    "import: jail {old} exists: import it as a new jail with tag=NAME"
                )))
            }
            // a copy, or an archive without a proper UUID
            _ => new_uuid(),
        };
        p.insert("uuid".into(), uuid.clone());
        p.insert("host_hostuuid".into(), uuid.clone());
        if p.get("jail_zfs_dataset").is_none_or(String::is_empty) {
            p.insert(
                "jail_zfs_dataset".into(),
                format!("iocage/jails/{uuid}/root/data"),
            );
        }
        if !p.contains_key("host_hostname") {
            p.insert("host_hostname".into(), uuid.clone());
        }
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
