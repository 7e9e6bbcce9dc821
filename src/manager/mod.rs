//! The jail manager core, following iocage(8): UUID/TAG identity, typed properties
//! stored with the jail (ZFS user properties, or a file), releases, and the jail
//! lifecycle over the jail layer.
//!
//! Reliability: `create` is transactional (a jail is incomplete until its last step;
//! an interrupted create is rolled back, or cleaned by the next command once no live
//! process holds the jail's lock); a per-jail lock serialises lifecycle commands; a
//! global lock makes concurrent creates of one TAG let exactly one win; one corrupt
//! jail never breaks the others.

pub mod fetch;
pub mod props;

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::jail::{self, Flags, JailError};
use crate::storage::{
    self, dir::DirBackend, zfs::ZfsBackend, Backend, Base, MountRecord, Record, StorageError,
};
use crate::sys::unix as sys;
use props::PropError;

/// Default root of the directory backend.
pub const DEFAULT_ROOT: &str = "/var/db/jailctl";
/// Default directory of locks and runtime state.
pub const DEFAULT_RUN: &str = "/run/jailctl";

#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Prop(#[from] PropError),
    #[error(transparent)]
    Jail(#[from] JailError),
    #[error(transparent)]
    Fetch(#[from] fetch::FetchError),
    #[error("no jail matches \"{0}\" (a UUID, a unique UUID prefix or a TAG)")]
    NotFound(String),
    #[error("\"{key}\" matches several jails: {}", matches.join(", "))]
    Ambiguous { key: String, matches: Vec<String> },
    #[error("tag \"{tag}\" is already used by jail {uuid}")]
    TagInUse { tag: String, uuid: String },
    #[error("jail {0} is running; stop it first")]
    Running(String),
    #[error("jail {0} is not running")]
    NotRunning(String),
    #[error("jail {uuid} is corrupt: {why}")]
    Corrupt { uuid: String, why: String },
    #[error("jail {jail}: {step} failed: {msg}")]
    Step {
        jail: String,
        step: String,
        msg: String,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

type Result<T> = std::result::Result<T, ManagerError>;

fn invalid(msg: impl Into<String>) -> ManagerError {
    ManagerError::Invalid(msg.into())
}

/// Which backend to use (global options `--root` / `--pool`).
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub root: Option<PathBuf>,
    pub pool: Option<String>,
}

/// A jail as the manager sees it.
#[derive(Debug, Clone)]
pub struct Jail {
    pub uuid: String,
    /// What is stored on the jail itself.
    pub stored: BTreeMap<String, String>,
    /// Schema defaults overlaid with the host defaults, shared by all jails.
    pub defaults: Arc<BTreeMap<String, String>>,
    pub problem: Option<String>,
}

impl Jail {
    pub fn tag(&self) -> &str {
        self.get("tag")
    }

    /// An effective property: the jail's own value, else the default.
    pub fn get(&self, k: &str) -> &str {
        self.stored
            .get(k)
            .or_else(|| self.defaults.get(k))
            .map(String::as_str)
            .unwrap_or("")
    }

    /// Every effective property.
    pub fn props(&self) -> BTreeMap<String, String> {
        let mut p = (*self.defaults).clone();
        p.extend(self.stored.clone());
        p
    }

    /// Kernel jail name.
    pub fn kname(&self) -> String {
        kernel_name(&self.uuid)
    }

    fn label(&self) -> String {
        format!("{} ({})", self.tag(), self.uuid)
    }
}

pub fn kernel_name(uuid: &str) -> String {
    format!("ioc-{uuid}")
}

/// Runtime state of a started jail: what start made, so stop removes exactly that.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct RunState {
    mounts: Vec<MountRecord>,
    jid: Option<i32>,
    /// `starting` or `stopping` while that is under way; recorded before the first
    /// step, cleared after the last. Found with the jail's lock free, it marks an
    /// interrupted start or stop, which the next command finishes (by stopping).
    #[serde(default)]
    phase: Option<String>,
}

/// An flock held until dropped.
pub struct Lock(#[allow(dead_code)] File);

pub struct Manager {
    pub backend: Box<dyn Backend>,
    run: PathBuf,
    exe: PathBuf,
}

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

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `YYYY-MM-DD@HH:MM:SS` in local time.
pub fn timestamp() -> String {
    let (y, mo, d, h, mi, s) = sys::local_time(now());
    format!("{y:04}-{mo:02}-{d:02}@{h:02}:{mi:02}:{s:02}")
}

/// A random (version 4) UUID.
pub fn new_uuid() -> String {
    let mut b = [0u8; 16];
    let ok = File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
        .is_ok();
    assert!(ok, "/dev/urandom is readable");
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Properties that identify a jail and survive `reset`.
const KEEP_ON_RESET: &[&str] = &[
    "uuid",
    "tag",
    "host_hostuuid",
    "release",
    "type",
    "last_started",
    "istemplate",
    "jail_zfs_dataset",
    "hostid",
];

impl Manager {
    /// Pick the backend: `--root`/`JAILCTL_ROOT` (directory), `--pool`/`JAILCTL_POOL`
    /// (ZFS), the active pool, or the directory default.
    pub fn open(sel: &Selection) -> Result<Manager> {
        let root = sel
            .root
            .clone()
            .or_else(|| std::env::var_os("JAILCTL_ROOT").map(PathBuf::from));
        let pool = sel
            .pool
            .clone()
            .or_else(|| std::env::var("JAILCTL_POOL").ok());
        let backend: Box<dyn Backend> = match (root, pool) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "give either a directory (--root) or a pool (--pool), not both",
                ))
            }
            (Some(r), None) => Box::new(DirBackend::new(r)),
            (None, Some(p)) => Box::new(ZfsBackend::new(p)),
            (None, None) => {
                let active = storage::zfs::active_pools().unwrap_or_default();
                match active.len() {
                    0 => Box::new(DirBackend::new(DEFAULT_ROOT)),
                    1 => Box::new(ZfsBackend::new(active[0].clone())),
                    _ => {
                        return Err(invalid(format!(
                            "more than one pool is active: {}; deactivate all but one",
                            active.join(", ")
                        )))
                    }
                }
            }
        };
        let run = std::env::var_os("JAILCTL_RUN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_RUN));
        let exe = std::env::current_exe().map_err(|e| ManagerError::Io {
            path: "current executable".into(),
            source: e,
        })?;
        Ok(Manager { backend, run, exe })
    }

    fn lock_file(&self, name: &str) -> Result<File> {
        let dir = self.run.join("locks");
        fs::create_dir_all(&dir).map_err(|e| ManagerError::Io {
            path: dir.display().to_string(),
            source: e,
        })?;
        let p = dir.join(format!("{name}.lock"));
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .map_err(|e| ManagerError::Io {
                path: p.display().to_string(),
                source: e,
            })
    }

    /// The per-jail lock (waits).
    fn lock_jail(&self, uuid: &str) -> Result<Lock> {
        let f = self.lock_file(uuid)?;
        sys::flock(f.as_raw_fd(), true).map_err(|e| ManagerError::Io {
            path: format!("lock of {uuid}"),
            source: e,
        })?;
        Ok(Lock(f))
    }

    /// The lock of tag allocation on this backend (waits).
    fn lock_global(&self) -> Result<Lock> {
        let name: String = self
            .backend
            .describe()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let f = self.lock_file(&format!(".global-{name}"))?;
        sys::flock(f.as_raw_fd(), true).map_err(|e| ManagerError::Io {
            path: "global lock".into(),
            source: e,
        })?;
        Ok(Lock(f))
    }

    fn state_path(&self, uuid: &str) -> PathBuf {
        self.run.join("state").join(format!("{uuid}.json"))
    }

    fn read_state(&self, uuid: &str) -> RunState {
        fs::read(self.state_path(uuid))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    fn write_state(&self, uuid: &str, st: &RunState) -> Result<()> {
        let p = self.state_path(uuid);
        fs::create_dir_all(p.parent().unwrap()).map_err(|e| ManagerError::Io {
            path: p.display().to_string(),
            source: e,
        })?;
        storage::dir::write_atomic(&p, &serde_json::to_vec(st).expect("json"))?;
        Ok(())
    }

    /// Schema defaults overlaid with the host defaults.
    pub fn defaults(&self) -> Result<BTreeMap<String, String>> {
        let mut d = props::schema_defaults();
        d.extend(self.backend.defaults()?);
        Ok(d)
    }

    /// Every jail, one read of the backend. Leftovers of interrupted creates whose
    /// creator is gone are removed on the way.
    pub fn jails(&self) -> Result<Vec<Jail>> {
        let defaults = Arc::new(self.defaults()?);
        let mut out = Vec::new();
        for r in self.backend.list_jails()? {
            if r.incomplete {
                self.clean_incomplete(&r);
                continue;
            }
            out.push(self.to_jail(r, &defaults));
        }
        out.sort_by(|a, b| a.tag().cmp(b.tag()).then(a.uuid.cmp(&b.uuid)));
        Ok(out)
    }

    fn to_jail(&self, r: Record, defaults: &Arc<BTreeMap<String, String>>) -> Jail {
        let mut problem = r.problem;
        if problem.is_none() {
            for (k, v) in &r.props {
                if let Err(e) = props::lookup(k).and_then(|p| {
                    if p.kind == props::Kind::ReadOnly {
                        Ok(String::new())
                    } else {
                        props::validate(k, v)
                    }
                }) {
                    problem = Some(format!("stored property {k}={v}: {e}"));
                    break;
                }
            }
        }
        Jail {
            uuid: r.uuid,
            stored: r.props,
            defaults: defaults.clone(),
            problem,
        }
    }

    fn clean_incomplete(&self, r: &Record) {
        let Ok(f) = self.lock_file(&r.uuid) else {
            return;
        };
        if let Ok(true) = sys::try_flock(f.as_raw_fd()) {
            match self.backend.destroy_jail(&r.uuid) {
                Ok(()) => eprintln!(
                    "jailctl: removed jail {} left incomplete by an interrupted create or destroy",
                    r.uuid
                ),
                Err(e) => eprintln!("jailctl: could not remove incomplete jail {}: {e}", r.uuid),
            }
        }
    }

    /// UUID, unique UUID prefix, or TAG. A full UUID reads that jail alone.
    pub fn resolve(&self, key: &str) -> Result<Jail> {
        if is_uuid(key) {
            if let Some(r) = self.backend.read_jail(key)? {
                if !r.incomplete {
                    return Ok(self.to_jail(r, &Arc::new(self.defaults()?)));
                }
            }
        }
        let all = self.jails()?;
        resolve_in(all, key)
    }

    /// The jail as stored now (call with its lock held, before a read-modify-write).
    fn reread(&self, j: &Jail) -> Result<Jail> {
        match self.backend.read_jail(&j.uuid)? {
            Some(r) => Ok(self.to_jail(r, &Arc::new(self.defaults()?))),
            None => Err(ManagerError::NotFound(j.uuid.clone())),
        }
    }

    /// `ALL` or one jail.
    pub fn resolve_many(&self, key: &str) -> Result<Vec<Jail>> {
        if key == "ALL" {
            return Ok(self
                .jails()?
                .into_iter()
                .filter(|j| j.problem.is_none())
                .collect());
        }
        Ok(vec![self.resolve(key)?])
    }

    /// The jails that are running, with their jid: one read of the jail layer.
    pub fn running(&self) -> Result<Vec<(Jail, i32)>> {
        let kernel: BTreeMap<String, i32> =
            jail::list()?.into_iter().map(|i| (i.name, i.jid)).collect();
        Ok(self
            .jails()?
            .into_iter()
            .filter_map(|j| kernel.get(&j.kname()).map(|&jid| (j, jid)))
            .collect())
    }

    pub fn is_running(&self, j: &Jail) -> Option<i32> {
        jail::getid(&j.kname()).ok()
    }

    // ---------------------------------------------------------------- pools

    pub fn activate(pool: &str) -> Result<()> {
        storage::run(Command::new("zpool").args(["list", "-H", "-o", "name", pool]))
            .map_err(|e| invalid(format!("pool {pool}: {e}")))?;
        let others: Vec<String> = storage::zfs::active_pools()?
            .into_iter()
            .filter(|p| p != pool)
            .collect();
        if !others.is_empty() {
            return Err(invalid(format!(
                "pool {} is already active; deactivate it first",
                others.join(", ")
            )));
        }
        storage::zfs::zfs(&["set", &format!("{}=yes", storage::zfs::ACTIVE_PROP), pool])?;
        ZfsBackend::new(pool).ensure_layout()?;
        Ok(())
    }

    pub fn deactivate(pool: &str) -> Result<()> {
        storage::zfs::zfs(&["inherit", storage::zfs::ACTIVE_PROP, pool])?;
        Ok(())
    }

    // ---------------------------------------------------------------- releases

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
            sys::stderr_is_tty(),
            limits,
        ) {
            Ok(sums) => {
                let _ = fs::remove_dir_all(&download);
                self.backend.commit_release(release)?;
                Ok(sums)
            }
            Err(e) => {
                let _ = self.backend.drop_release(release);
                let _ = fs::remove_dir_all(&download);
                Err(e.into())
            }
        }
    }

    pub fn releases(&self) -> Result<Vec<String>> {
        Ok(self.backend.releases()?)
    }

    // ---------------------------------------------------------------- create

    pub fn create(&self, o: &CreateOpts) -> Result<Vec<String>> {
        if o.pkglist.is_some() && !cfg!(target_os = "freebsd") {
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
        let releases = self.backend.releases()?;
        let base = if o.empty {
            Base::Empty
        } else {
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
            if o.thick {
                Base::Thick(rel)
            } else {
                Base::Release(rel)
            }
        };
        let defaults = self.defaults()?;
        let _g = self.lock_global()?;
        let existing = self.jails()?;
        let base_tag = given.get("tag").cloned().unwrap_or_else(timestamp);
        let tags: Vec<String> = if count == 1 {
            vec![base_tag.clone()]
        } else {
            (1..=count).map(|i| format!("{base_tag}_{i}")).collect()
        };
        for t in &tags {
            check_tag(t)?;
            if let Some(other) = existing.iter().find(|j| j.tag() == t) {
                return Err(ManagerError::TagInUse {
                    tag: t.clone(),
                    uuid: other.uuid.clone(),
                });
            }
        }
        let mut created: Vec<String> = Vec::new();
        let mut locks: Vec<Lock> = Vec::new();
        for (i, tag) in tags.iter().enumerate() {
            let uuid = new_uuid();
            let mut p = defaults.clone();
            p.extend(given.clone());
            p.insert("uuid".into(), uuid.clone());
            p.insert("tag".into(), tag.clone());
            p.insert("host_hostuuid".into(), uuid.clone());
            if let Some(h) = given.get("host_hostname") {
                p.insert(
                    "host_hostname".into(),
                    if count > 1 {
                        format!("{h}_{}", i + 1)
                    } else {
                        h.clone()
                    },
                );
            } else {
                p.insert("host_hostname".into(), uuid.clone());
            }
            let (ty, rel) = match &base {
                Base::Release(r) => ("basejail", r.clone()),
                Base::Thick(r) => ("thickjail", r.clone()),
                Base::Empty => ("emptyjail", "none".to_string()),
            };
            p.insert("type".into(), ty.into());
            p.insert("release".into(), rel);
            p.insert("last_started".into(), "none".into());
            if p.get("jail_zfs_dataset")
                .map(String::is_empty)
                .unwrap_or(true)
            {
                p.insert(
                    "jail_zfs_dataset".into(),
                    format!("iocage/jails/{uuid}/root/data"),
                );
            }
            if p.get("hostid").map(String::is_empty).unwrap_or(true) {
                p.insert("hostid".into(), host_id());
            }
            p.retain(|_, v| !v.is_empty());
            // Every jail of a batch stays incomplete (and locked) until all of them
            // are made: a batch interrupted midway leaves nothing the next command
            // does not remove.
            locks.push(self.lock_jail(&uuid)?);
            if let Err(e) = self.create_one(&uuid, &p, &base, o) {
                let _ = self.backend.destroy_jail(&uuid);
                for u in &created {
                    let _ = self.backend.destroy_jail(u);
                }
                return Err(e);
            }
            created.push(uuid);
        }
        for (i, u) in created.iter().enumerate() {
            if let Err(e) = self.backend.finish_jail(u) {
                for v in &created[i..] {
                    let _ = self.backend.destroy_jail(v);
                }
                return Err(e.into());
            }
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
            let pkgs = fs::read_to_string(list).map_err(|e| ManagerError::Io {
                path: list.display().to_string(),
                source: e,
            })?;
            let names: Vec<&str> = pkgs
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .collect();
            if !names.is_empty() {
                storage::run(
                    Command::new("pkg")
                        .arg("-r")
                        .arg(&root)
                        .args(["install", "-y"])
                        .args(&names),
                )?;
            }
        }
        Ok(())
    }

    // ---------------------------------------------------------------- properties

    /// `set prop=value ... UUID|TAG|default`. Returns notes for the user.
    pub fn set(&self, assignments: &[(String, String)], key: &str) -> Result<Vec<String>> {
        if key == "default" {
            let old = self.backend.defaults()?;
            let mut new = old.clone();
            for (k, v) in assignments {
                if k == "tag" {
                    return Err(invalid("tag: every jail has its own; it has no default"));
                }
                new.insert(k.clone(), v.clone());
            }
            self.backend.write_defaults(&old, &new)?;
            return Ok(vec![]);
        }
        let _g = if assignments.iter().any(|(k, _)| k == "tag") {
            Some(self.lock_global()?)
        } else {
            None
        };
        let j = self.resolve(key)?;
        if let Some(why) = &j.problem {
            return Err(ManagerError::Corrupt {
                uuid: j.uuid.clone(),
                why: why.clone(),
            });
        }
        let _l = self.lock_jail(&j.uuid)?;
        // Read-modify-write under the jail's lock: what was read before it may be stale.
        let j = self.reread(&j)?;
        if let Some((_, t)) = assignments.iter().find(|(k, _)| k == "tag") {
            check_tag(t)?;
            if let Some(o) = self
                .jails()?
                .iter()
                .find(|o| o.tag() == t && o.uuid != j.uuid)
            {
                return Err(ManagerError::TagInUse {
                    tag: t.clone(),
                    uuid: o.uuid.clone(),
                });
            }
        }
        let mut new = j.stored.clone();
        let running = self.is_running(&j).is_some();
        let mut notes = Vec::new();
        for (k, v) in assignments {
            new.insert(k.clone(), v.clone());
            let p = props::lookup(k)?;
            if running && p.restart {
                notes.push(format!(
                    "{k}: takes effect when jail {} is restarted",
                    j.tag()
                ));
            }
            if cfg!(target_os = "linux") && !p.linux {
                notes.push(format!("{k}: stored; it has no effect on Linux"));
            }
        }
        self.backend.write_props(&j.uuid, &j.stored, &new)?;
        Ok(notes)
    }

    /// `reset UUID|TAG|ALL`: back to the defaults, identity kept.
    pub fn reset(&self, key: &str) -> Result<Vec<String>> {
        let defaults = self.defaults()?;
        let mut done = Vec::new();
        for j in self.resolve_many(key)? {
            let _l = self.lock_jail(&j.uuid)?;
            let j = self.reread(&j)?;
            let mut new = defaults.clone();
            for k in KEEP_ON_RESET {
                if let Some(v) = j.stored.get(*k) {
                    new.insert(k.to_string(), v.clone());
                }
            }
            new.insert("host_hostname".into(), j.uuid.clone());
            new.retain(|_, v| !v.is_empty());
            self.backend.write_props(&j.uuid, &j.stored, &new)?;
            done.push(j.uuid);
        }
        Ok(done)
    }

    // ---------------------------------------------------------------- destroy

    pub fn destroy(&self, key: &str) -> Result<String> {
        let j = self.resolve(key)?;
        let _l = self.lock_jail(&j.uuid)?;
        if self.is_running(&j).is_some() {
            return Err(ManagerError::Running(j.label()));
        }
        self.unmount_state(&j.uuid)?;
        self.backend.destroy_jail(&j.uuid)?;
        let _ = fs::remove_file(self.state_path(&j.uuid));
        Ok(j.uuid)
    }

    pub fn clean(&self, what: &str) -> Result<()> {
        let running: Vec<String> = self
            .running()?
            .iter()
            .map(|(j, _)| j.tag().to_string())
            .collect();
        if matches!(what, "all" | "jails") && !running.is_empty() {
            return Err(invalid(format!(
                "jails are running ({}); stop them first",
                running.join(", ")
            )));
        }
        if what == "releases" {
            let used: Vec<String> = self
                .jails()?
                .iter()
                .filter(|j| j.get("type") == "basejail")
                .map(|j| j.tag().to_string())
                .collect();
            if !used.is_empty() {
                return Err(invalid(format!(
                    "basejails use the releases ({}); destroy them first",
                    used.join(", ")
                )));
            }
        }
        let _g = self.lock_global()?;
        for g in self.backend.sweep_staging()? {
            tracing::info!(what = %g, "removed what an interrupted fetch left");
        }
        self.backend.clean(what)?;
        Ok(())
    }

    // ---------------------------------------------------------------- lifecycle

    fn host_command(&self, j: &Jail, step: &str, cmd: &str) -> Result<()> {
        if cmd.trim().is_empty() || cmd.trim() == "/usr/bin/true" {
            return Ok(());
        }
        let mut c = Command::new("/bin/sh");
        c.arg("-c").arg(cmd).current_dir("/").stdin(Stdio::null());
        if j.get("exec_clean") == "1" {
            c.env_clear().env(
                "PATH",
                "/sbin:/bin:/usr/sbin:/usr/bin:/usr/local/sbin:/usr/local/bin",
            );
        }
        c.env("IOCAGE_UUID", &j.uuid)
            .env("IOCAGE_TAG", j.tag())
            .env("JAILCTL_UUID", &j.uuid)
            .env("JAILCTL_TAG", j.tag());
        self.run_timed(j, step, c)
    }

    /// Run a command inside the running jail (as jexec(8)), output into the console log.
    fn jail_command(&self, j: &Jail, step: &str, cmd: &str) -> Result<()> {
        if cmd.trim().is_empty() || cmd.trim() == "/usr/bin/true" {
            return Ok(());
        }
        let mut c = Command::new(&self.exe);
        c.args(["jail", "exec", &j.kname(), "/bin/sh", "-c", cmd])
            .stdin(Stdio::null());
        self.run_timed(j, step, c)
    }

    fn console_log(&self, uuid: &str) -> PathBuf {
        self.backend
            .base_dir()
            .map(|b| b.join("log"))
            .unwrap_or_else(|_| PathBuf::from("/var/log"))
            .join(format!("{uuid}-console.log"))
    }

    fn run_timed(&self, j: &Jail, step: &str, mut c: Command) -> Result<()> {
        let log = self.console_log(&j.uuid);
        if let Some(d) = log.parent() {
            let _ = fs::create_dir_all(d);
        }
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|e| ManagerError::Io {
                path: log.display().to_string(),
                source: e,
            })?;
        let err = out.try_clone().map_err(|e| ManagerError::Io {
            path: log.display().to_string(),
            source: e,
        })?;
        c.stdout(out).stderr(err);
        let timeout = Duration::from_secs(j.get("exec_timeout").parse().unwrap_or(60));
        let fail = |msg: String| ManagerError::Step {
            jail: j.label(),
            step: step.to_string(),
            msg,
        };
        // Its own process group, so that a timeout kills everything it started.
        std::os::unix::process::CommandExt::process_group(&mut c, 0);
        let mut child = c.spawn().map_err(|e| fail(e.to_string()))?;
        let start = Instant::now();
        loop {
            match child.try_wait().map_err(|e| fail(e.to_string()))? {
                Some(st) if st.success() => return Ok(()),
                Some(st) => return Err(fail(format!("{st} (output in {})", log.display()))),
                None if start.elapsed() > timeout => {
                    let _ = crate::sys::unix::signal(-(child.id() as i32), libc::SIGKILL);
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(fail(format!(
                        "did not finish within exec_timeout={}s",
                        timeout.as_secs()
                    )));
                }
                None => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    /// The jail parameters the properties map to.
    fn jail_params(&self, j: &Jail, root: &Path) -> Result<Vec<jail::JailParam>> {
        let mut a: Vec<String> = vec![
            format!("name={}", j.kname()),
            format!("path={}", root.display()),
            format!("host.hostname={}", j.get("host_hostname")),
            format!("host.hostuuid={}", j.get("host_hostuuid")),
            format!("securelevel={}", j.get("securelevel")),
            format!("children.max={}", j.get("children_max")),
            format!("enforce_statfs={}", j.get("enforce_statfs")),
            "persist".into(),
        ];
        if !matches!(j.get("host_domainname"), "none" | "") {
            a.push(format!("host.domainname={}", j.get("host_domainname")));
        }
        if j.get("vnet") == "on" {
            a.push("vnet=new".into());
        }
        for (prop, param) in [("ip4_addr", "ip4.addr"), ("ip6_addr", "ip6.addr")] {
            let v = j.get(prop);
            let addrs: Vec<&str> = v
                .split(',')
                .filter(|e| !e.ends_with('|') && *e != "none" && !e.is_empty())
                .collect();
            if !addrs.is_empty() && j.get("vnet") != "on" {
                a.push(format!("{param}={}", addrs.join(",")));
            }
        }
        // FreeBSD gets every allow.* permission; Linux those it enforces (the
        // capabilities, filter rules and user namespace of jail::confine).
        for p in props::PROPS
            .iter()
            .filter(|p| p.name.starts_with("allow_") && (cfg!(target_os = "freebsd") || p.linux))
        {
            a.push(format!(
                "{}={}",
                p.name.replacen('_', ".", 1).replace("mount_", "mount."),
                if j.get(p.name) == "1" {
                    "true"
                } else {
                    "false"
                }
            ));
        }
        if cfg!(target_os = "freebsd") {
            a.push(format!("devfs_ruleset={}", j.get("devfs_ruleset")));
        }
        Ok(jail::parse_assignments(&a)?)
    }

    fn unmount_state(&self, uuid: &str) -> Result<()> {
        let mut st = self.read_state(uuid);
        while let Some(m) = st.mounts.pop() {
            let res = match &m.inside {
                // Exactly the mount start made, wherever inside the root it is now.
                Some((id, root)) => crate::sys::os::RootDir::open(root)
                    .and_then(|r| r.unmount_id(*id))
                    .map_err(|e| ManagerError::Step {
                        jail: uuid.to_string(),
                        step: format!("unmount {} ({})", m.target.display(), m.what),
                        msg: e.to_string(),
                    }),
                None if !storage::mounted_below(&m.target).is_empty() => {
                    storage::run(Command::new("umount").arg(&m.target))
                        .map(|_| ())
                        .map_err(ManagerError::from)
                }
                None => Ok(()),
            };
            if let Err(e) = res {
                st.mounts.push(m);
                self.write_state(uuid, &st)?;
                return Err(e);
            }
            self.write_state(uuid, &st)?;
        }
        let _ = fs::remove_file(self.state_path(uuid));
        Ok(())
    }

    /// The phase recorded for a jail, and whether it was interrupted (nobody holds
    /// the jail's lock, so nobody is carrying it out): for `list`.
    pub fn phase(&self, uuid: &str) -> Option<(String, bool)> {
        let phase = self.read_state(uuid).phase?;
        let interrupted = self
            .lock_file(uuid)
            .ok()
            .and_then(|f| sys::try_flock(f.as_raw_fd()).ok())
            .unwrap_or(false);
        Some((phase, interrupted))
    }

    /// With the jail's lock held: a start or stop that was interrupted (its process
    /// killed) is finished by stopping the jail, and said so.
    fn finish_interrupted(&self, j: &Jail) -> Result<()> {
        let Some(phase) = self.read_state(&j.uuid).phase else {
            return Ok(());
        };
        eprintln!(
            "jailctl: jail {} was left {phase} by an interrupted command; stopping it first",
            j.label()
        );
        if let Ok(id) = jail::getid(&j.kname()) {
            jail::remove(&id.to_string())?;
        }
        self.unmount_state(&j.uuid)
    }

    /// `start`: every failing step undoes the earlier ones.
    pub fn start(&self, key: &str, force_template: bool) -> Result<i32> {
        let j = self.resolve(key)?;
        if let Some(why) = &j.problem {
            return Err(ManagerError::Corrupt {
                uuid: j.uuid.clone(),
                why: why.clone(),
            });
        }
        if j.get("istemplate") == "yes" && !force_template {
            return Err(invalid(format!(
                "{} is a template; use start -f to start it for editing",
                j.label()
            )));
        }
        let _l = self.lock_jail(&j.uuid)?;
        self.finish_interrupted(&j)?;
        if let Some(jid) = self.is_running(&j) {
            return Err(invalid(format!(
                "jail {} is already running (jid {jid})",
                j.label()
            )));
        }
        // leftovers of an interrupted start or stop
        self.unmount_state(&j.uuid)?;
        match self.start_steps(&j) {
            Ok(jid) => Ok(jid),
            Err(e) => {
                if let Ok(id) = jail::getid(&j.kname()) {
                    let _ = jail::remove(&id.to_string());
                }
                let _ = self.unmount_state(&j.uuid);
                Err(e)
            }
        }
    }

    fn start_steps(&self, j: &Jail) -> Result<i32> {
        // The jails' folder stays private (a jail's setuid files are out of other
        // users' reach), even if someone opened it up since it was made.
        if let Some(jails) = self.backend.jail_dir(&j.uuid)?.parent() {
            storage::make_private(jails)?;
        }
        let mut st = RunState {
            phase: Some("starting".into()),
            ..Default::default()
        };
        self.write_state(&j.uuid, &st)?;
        for m in self.backend.mount_root(&j.uuid, &j.props())? {
            st.mounts.push(m);
            self.write_state(&j.uuid, &st)?;
        }
        let root = self.backend.root_dir(&j.uuid)?;
        self.host_command(j, "exec_prestart", j.get("exec_prestart"))?;
        // the jail's fstab: "source target type options" (target inside the jail)
        let fstab = self.backend.jail_dir(&j.uuid)?.join("fstab");
        if let Ok(text) = fs::read_to_string(&fstab) {
            for (n, line) in text
                .lines()
                .enumerate()
                .map(|(n, l)| (n + 1, l.trim()))
                .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
            {
                let f: Vec<&str> = line.split_whitespace().collect();
                if f.len() < 3 {
                    return Err(invalid(format!(
                        "{}:{n}: expected \"source target type [options]\"",
                        fstab.display()
                    )));
                }
                // The target is inside the jail: resolved by the kernel inside its
                // root, so a symlink the jail planted cannot send the mount elsewhere.
                let rel = match Path::new(f[1]).strip_prefix(&root) {
                    Ok(r) => r.to_path_buf(),
                    Err(_) => PathBuf::from(f[1].trim_start_matches('/')),
                };
                let opts = f.get(3).copied().unwrap_or("rw");
                let step = |e: std::io::Error| ManagerError::Step {
                    jail: j.label(),
                    step: format!("fstab line {n}"),
                    msg: e.to_string(),
                };
                let rootdir = crate::sys::os::RootDir::open(&root).map_err(step)?;
                if Path::new(f[0]).is_dir() {
                    rootdir.mkdir_all(&rel).map_err(step)?;
                }
                let (id, at) = rootdir
                    .mount_at(Path::new(f[0]), &rel, f[2], opts)
                    .map_err(step)?;
                st.mounts.push(MountRecord {
                    target: at,
                    what: format!("fstab line {n}"),
                    inside: Some((id, root.clone())),
                });
                self.write_state(&j.uuid, &st)?;
            }
        }
        // FreeBSD's devfs, fdescfs and procfs (a Linux jail has its own /proc and /dev)
        if cfg!(target_os = "freebsd") {
            let ruleset = format!("ruleset={}", j.get("devfs_ruleset"));
            for (prop, fstype, dir, opts) in [
                ("mount_devfs", "devfs", "dev", ruleset.as_str()),
                ("mount_fdescfs", "fdescfs", "dev/fd", "rw"),
                ("mount_procfs", "procfs", "proc", "rw"),
            ] {
                if j.get(prop) == "1" {
                    let target = root.join(dir);
                    storage::run(
                        Command::new("mount")
                            .args(["-t", fstype, "-o", opts, fstype])
                            .arg(&target),
                    )
                    .map_err(|e| ManagerError::Step {
                        jail: j.label(),
                        step: prop.to_string(),
                        msg: e.to_string(),
                    })?;
                    st.mounts.push(MountRecord {
                        target,
                        what: prop.to_string(),
                        inside: None,
                    });
                    self.write_state(&j.uuid, &st)?;
                }
            }
        }
        // resolver: written inside the jail's root, never through a link it planted
        let rootdir = crate::sys::os::RootDir::open(&root).map_err(|e| ManagerError::Step {
            jail: j.label(),
            step: "open the jail's root".into(),
            msg: e.to_string(),
        })?;
        let etc_is_dir = rootdir
            .open_at(Path::new("etc"), libc::O_DIRECTORY | libc::O_RDONLY, 0)
            .is_ok();
        if etc_is_dir {
            let conf = match j.get("resolver") {
                "none" | "" => fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
                r => r.split(';').map(|l| format!("{}\n", l.trim())).collect(),
            };
            if !conf.is_empty() {
                rootdir
                    .write_atomic(Path::new("etc/resolv.conf"), conf.as_bytes(), 0o644)
                    .map_err(|e| ManagerError::Step {
                        jail: j.label(),
                        step: "write /etc/resolv.conf".into(),
                        msg: e.to_string(),
                    })?;
            }
        }
        let params = self.jail_params(j, &root)?;
        let jid = jail::set(&params, Flags::CREATE)?;
        st.jid = Some(jid);
        self.write_state(&j.uuid, &st)?;
        self.jail_command(j, "exec_start", j.get("exec_start"))?;
        self.host_command(j, "exec_poststart", j.get("exec_poststart"))?;
        let j = self.reread(j)?;
        let mut new = j.stored.clone();
        new.insert("last_started".into(), timestamp());
        self.backend.write_props(&j.uuid, &j.stored, &new)?;
        let mut st = self.read_state(&j.uuid);
        st.phase = None;
        self.write_state(&j.uuid, &st)?;
        Ok(jid)
    }

    /// `stop`: idempotent; removes exactly what start made.
    pub fn stop(&self, key: &str) -> Result<bool> {
        let j = self.resolve(key)?;
        let _l = self.lock_jail(&j.uuid)?;
        let was_running = self.is_running(&j).is_some();
        if was_running {
            let mut st = self.read_state(&j.uuid);
            st.phase = Some("stopping".into());
            self.write_state(&j.uuid, &st)?;
            if let Err(e) = self.host_command(&j, "exec_prestop", j.get("exec_prestop")) {
                eprintln!("jailctl: {e}");
            }
            if let Err(e) = self.jail_command(&j, "exec_stop", j.get("exec_stop")) {
                eprintln!("jailctl: {e}");
            }
            let kname = j.kname();
            if jail::signal_processes(&kname, libc::SIGTERM).is_ok() {
                let deadline = Instant::now()
                    + Duration::from_secs(j.get("stop_timeout").parse().unwrap_or(30));
                while Instant::now() < deadline
                    && jail::processes(&kname)
                        .map(|p| !p.is_empty())
                        .unwrap_or(false)
                {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            jail::remove(&kname)?;
            if let Err(e) = self.host_command(&j, "exec_poststop", j.get("exec_poststop")) {
                eprintln!("jailctl: {e}");
            }
        }
        self.unmount_state(&j.uuid)?;
        Ok(was_running)
    }

    /// `restart [-s]`: full stop and start, or a soft restart (exec_stop then
    /// exec_start inside the running jail).
    pub fn restart(&self, key: &str, soft: bool) -> Result<()> {
        if soft {
            let j = self.resolve(key)?;
            let _l = self.lock_jail(&j.uuid)?;
            if self.is_running(&j).is_none() {
                return Err(ManagerError::NotRunning(j.label()));
            }
            self.jail_command(&j, "exec_stop", j.get("exec_stop"))?;
            self.jail_command(&j, "exec_start", j.get("exec_start"))?;
            return Ok(());
        }
        self.stop(key)?;
        self.start(key, false).map(|_| ())
    }

    /// Jails with boot=on in start order (priority ascending, then tag).
    pub fn boot_order(&self) -> Result<Vec<Jail>> {
        let mut v: Vec<Jail> = self
            .jails()?
            .into_iter()
            .filter(|j| {
                j.problem.is_none() && j.get("boot") == "on" && j.get("istemplate") != "yes"
            })
            .collect();
        v.sort_by_key(|j| {
            (
                j.get("priority").parse::<u32>().unwrap_or(99),
                j.tag().to_string(),
            )
        });
        Ok(v)
    }

    /// Run a command in a jail with jexec semantics; returns its exit status.
    pub fn exec(
        &self,
        j: &Jail,
        user: Option<&str>,
        host_user: Option<&str>,
        cmd: &[String],
    ) -> Result<i32> {
        if self.is_running(j).is_none() {
            return Err(ManagerError::NotRunning(j.label()));
        }
        let mut c = Command::new(&self.exe);
        c.args(["jail", "exec"]);
        if let Some(u) = user {
            c.args(["-u", u]);
        }
        if let Some(u) = host_user {
            c.args(["-U", u]);
        }
        c.arg(j.kname()).args(cmd);
        let st = c.status().map_err(|e| ManagerError::Io {
            path: self.exe.display().to_string(),
            source: e,
        })?;
        use std::os::unix::process::ExitStatusExt;
        Ok(st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0)))
    }

    pub fn console(&self, key: &str, force: bool) -> Result<i32> {
        let j = self.resolve(key)?;
        if self.is_running(&j).is_none() {
            if !force {
                return Err(invalid(format!(
                    "jail {} is not running; console -f starts it",
                    j.label()
                )));
            }
            self.start(key, false)?;
        }
        let mut cmd = vec!["login".to_string()];
        cmd.extend(j.get("login_flags").split_whitespace().map(String::from));
        self.exec(&j, None, None, &cmd)
    }

    /// `runtime`: the kernel jail's parameters.
    pub fn runtime(&self, key: &str) -> Result<Vec<(String, String)>> {
        let j = self.resolve(key)?;
        if self.is_running(&j).is_none() {
            return Err(ManagerError::NotRunning(j.label()));
        }
        Ok(jail::get(&j.kname(), &[], Flags::NONE)?
            .into_iter()
            .map(|p| (p.name().to_string(), p.export()))
            .collect())
    }
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.chars().enumerate().all(|(i, c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

/// Longest TAG accepted (it names the kernel jail and a ZFS user property).
pub const MAX_TAG: usize = 64;

fn check_tag(t: &str) -> Result<()> {
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
    fs::read_to_string("/etc/hostid")
        .or_else(|_| fs::read_to_string("/etc/machine-id"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// Resolve a key among jails: exact UUID, exact TAG, then unique UUID prefix.
pub fn resolve_in(all: Vec<Jail>, key: &str) -> Result<Jail> {
    if key.is_empty() {
        return Err(ManagerError::NotFound(key.into()));
    }
    if let Some(j) = all.iter().find(|j| j.uuid == key) {
        return Ok(j.clone());
    }
    let by_tag: Vec<&Jail> = all.iter().filter(|j| j.tag() == key).collect();
    if by_tag.len() == 1 {
        return Ok(by_tag[0].clone());
    }
    let by_prefix: Vec<&Jail> = all.iter().filter(|j| j.uuid.starts_with(key)).collect();
    match (by_tag.len(), by_prefix.len()) {
        (0, 1) => Ok(by_prefix[0].clone()),
        (0, 0) => Err(ManagerError::NotFound(key.into())),
        _ => Err(ManagerError::Ambiguous {
            key: key.into(),
            matches: by_tag
                .iter()
                .chain(by_prefix.iter())
                .map(|j| format!("{} ({})", j.uuid, j.tag()))
                .collect(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn j(uuid: &str, tag: &str) -> Jail {
        let mut props = BTreeMap::new();
        props.insert("tag".to_string(), tag.to_string());
        Jail {
            uuid: uuid.into(),
            stored: props,
            defaults: Arc::new(BTreeMap::new()),
            problem: None,
        }
    }

    #[test]
    fn identity_resolution() {
        let all = vec![
            j("1234abcd-0000", "web"),
            j("1299ffff-0000", "db"),
            j("5555aaaa-0000", "5555"),
        ];
        assert_eq!(
            resolve_in(all.clone(), "web").unwrap().uuid,
            "1234abcd-0000"
        );
        assert_eq!(resolve_in(all.clone(), "1234").unwrap().tag(), "web");
        assert_eq!(
            resolve_in(all.clone(), "1299ffff-0000").unwrap().tag(),
            "db"
        );
        let e = resolve_in(all.clone(), "12").unwrap_err().to_string();
        assert!(
            e.contains("1234abcd-0000") && e.contains("1299ffff-0000"),
            "{e}"
        );
        assert!(matches!(
            resolve_in(all.clone(), "nope"),
            Err(ManagerError::NotFound(_))
        ));
        // a tag that is also a prefix of its own uuid names that one jail
        assert_eq!(resolve_in(all, "5555").unwrap().uuid, "5555aaaa-0000");
    }

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
}
