//! Jails on Linux.
//!
//! A jail is a set of namespaces (mount, pid, uts, ipc, cgroup, and net when `vnet` is
//! set) around a root directory `path`, held by a small init: pid 1 of the jail's pid
//! namespace. The init reaps orphans, exits when the jail is removed (SIGTERM), and,
//! without `persist`, when no other process is left in the jail. Every mount it makes
//! (its root, `/proc`, a small `/dev`) lives only in the jail's own mount namespace, so
//! nothing leaks to the host and nothing needs unmounting when the jail goes.
//!
//! Jails are recorded in a registry directory, one JSON file per jail named
//! `JID.json`, written atomically (temporary file, fsync, rename) under an exclusive
//! `flock` on `.lock`. The directory is `/run/jaildaemon/jails`, or
//! `$JAILDAEMON_REGISTRY` when set (tests use their own). An entry records the init's
//! host pid and start time; an entry whose init is gone (or whose pid was reused) is
//! stale: it is removed by the next call, never trusted.
//!
//! Attaching ([`attach`]) enters all the jail's namespaces and its root. As joining a
//! pid namespace applies to children only, a process attached this way is in the jail
//! for everything but its own pid; the processes it forks are members in full (visible
//! to `ps` and `pkill` inside the jail). The caller must be single-threaded.
//!
//! Parameters that FreeBSD enforces and Linux cannot (`allow.*`, `sysv*`,
//! `devfs_ruleset`, `linux.*`) are refused with an error. `ip4.addr`, `ip6.addr`,
//! `enforce_statfs`, `securelevel`, `children.max`, `host.hostuuid`, `host.hostid`,
//! `osrelease`, `osreldate` are recorded and read back but not enforced.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::confine::Policy;
use super::params::{JailParam, LinuxSupport, Value};
use super::{decide, Existing, Flags, JailError, JailInfo, Key, SetAction};
use crate::sys::linux as sys;

/// Environment variable that overrides the registry directory.
pub const REGISTRY_ENV: &str = "JAILDAEMON_REGISTRY";
/// Default registry directory.
pub const REGISTRY_DEFAULT: &str = "/run/jaildaemon/jails";

/// How long `remove` waits for the init to go before leaving the jail dying.
const REMOVE_WAIT: Duration = Duration::from_secs(10);

pub fn registry_dir() -> PathBuf {
    std::env::var_os(REGISTRY_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(REGISTRY_DEFAULT))
}

/// The environment a child needs to find this registry: the override, when set.
pub fn child_env() -> Vec<(std::ffi::OsString, std::ffi::OsString)> {
    std::env::var_os(REGISTRY_ENV)
        .map(|r| vec![(REGISTRY_ENV.into(), r)])
        .unwrap_or_default()
}

/// One registry file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Entry {
    pub jid: i32,
    pub name: String,
    /// Settable parameters in exported string form (jid, name and dying excluded).
    pub params: BTreeMap<String, String>,
    pub init_pid: i32,
    pub init_start: u64,
    pub dying: bool,
    /// The jail's devices cgroup (v1) directory, when the host has that controller.
    #[serde(default)]
    pub cgroup: Option<String>,
}

impl Entry {
    fn info(&self) -> JailInfo {
        let mut p = self.params.clone();
        p.insert("jid".into(), self.jid.to_string());
        p.insert("name".into(), self.name.clone());
        p.insert("dying".into(), self.dying.to_string());
        p.insert("parent".into(), "0".into());
        p.insert("children.cur".into(), "0".into());
        p.entry("persist".into()).or_insert_with(|| "false".into());
        JailInfo {
            jid: self.jid,
            name: self.name.clone(),
            dying: self.dying,
            params: p,
        }
    }

    fn alive(&self) -> bool {
        self.liveness().unwrap_or(true)
    }

    /// Whether the init still runs; an error when that cannot be told (only "no such
    /// process" or another process under its pid proves it gone).
    fn liveness(&self) -> std::io::Result<bool> {
        Ok(matches!(sys::proc_state(self.init_pid)?, Some((t, false)) if t == self.init_start))
    }

    /// What processes entering this jail may do.
    fn confinement(&self) -> Result<sys::Confinement, JailError> {
        let policy = Policy::from_params(self.jid, &self.params)
            .map_err(|e| JailError::Invalid(e.to_string()))?;
        Ok(confinement(&policy))
    }

    fn cgroup_procs(&self) -> Option<PathBuf> {
        self.cgroup
            .as_ref()
            .map(|c| Path::new(c).join("cgroup.procs"))
    }

    /// Remove the jail's devices cgroup once its processes are gone.
    fn remove_cgroup(&self) {
        if let Some(c) = &self.cgroup {
            for _ in 0..100 {
                match fs::remove_dir(c) {
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                        std::thread::sleep(Duration::from_millis(5))
                    }
                    _ => return,
                }
            }
            tracing::warn!(cgroup = %c, "the jail's devices cgroup is still busy; left in place");
        }
    }
}

fn confinement(policy: &Policy) -> sys::Confinement {
    sys::Confinement {
        caps: policy.caps,
        filters: super::confine::filters(policy),
    }
}

/// Where the jails' devices cgroups (v1) live.
const DEVICES_CGROUP: &str = "/sys/fs/cgroup/devices";

/// Device nodes a jail may use: those of FreeBSD's default devfs ruleset (null, zero,
/// full, random, urandom, tty, ptmx and the pts of its own devpts).
const DEVICES_ALLOWED: &[&str] = &[
    "c 1:3 rwm",
    "c 1:5 rwm",
    "c 1:7 rwm",
    "c 1:8 rwm",
    "c 1:9 rwm",
    "c 5:0 rwm",
    "c 5:2 rwm",
    "c 136:* rwm",
];

/// Make a devices cgroup for a new jail that denies every device but
/// [`DEVICES_ALLOWED`]. `None` when the host has no v1 devices controller (cgroup v2
/// only): the jail then relies on its nodev root and the missing CAP_MKNOD.
fn make_devices_cgroup(jid: i32) -> Result<Option<PathBuf>, JailError> {
    let base = Path::new(DEVICES_CGROUP);
    if !base.join("devices.deny").exists() {
        tracing::warn!("no cgroup v1 devices controller at {DEVICES_CGROUP}: jails rely on a nodev root and no CAP_MKNOD");
        return Ok(None);
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir = base
        .join("jaildaemon")
        .join(format!("{jid}-{}-{nanos}", std::process::id()));
    let err = |e: std::io::Error| JailError::os(format!("devices cgroup {}", dir.display()), e);
    fs::create_dir_all(&dir).map_err(err)?;
    let rules = (|| {
        fs::write(dir.join("devices.deny"), "a")?;
        for r in DEVICES_ALLOWED {
            fs::write(dir.join("devices.allow"), r)?;
        }
        Ok(())
    })();
    if let Err(e) = rules {
        let _ = fs::remove_dir(&dir);
        return Err(err(e));
    }
    Ok(Some(dir))
}

/// The locked registry.
struct Registry {
    dir: PathBuf,
    lock: File,
}

fn reg_err(path: &Path, source: std::io::Error) -> JailError {
    JailError::Registry {
        path: path.display().to_string(),
        source,
    }
}

impl Registry {
    fn open() -> Result<Registry, JailError> {
        let dir = registry_dir();
        fs::create_dir_all(&dir).map_err(|e| reg_err(&dir, e))?;
        let _ = fs::set_permissions(&dir, fs::Permissions::from_mode(0o700));
        let lp = dir.join(".lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(&lp)
            .map_err(|e| reg_err(&lp, e))?;
        crate::sys::unix::flock(lock.as_raw_fd(), true).map_err(|e| reg_err(&lp, e))?;
        Ok(Registry { dir, lock })
    }

    fn path_of(&self, jid: i32) -> PathBuf {
        self.dir.join(format!("{jid}.json"))
    }

    /// All valid entries; stale ones are removed, corrupt ones logged and skipped.
    fn entries(&self) -> Result<Vec<Entry>, JailError> {
        let mut out = Vec::new();
        let rd = fs::read_dir(&self.dir).map_err(|e| reg_err(&self.dir, e))?;
        for de in rd.flatten() {
            let path = de.path();
            let fname = de.file_name().to_string_lossy().into_owned();
            if fname.starts_with(".tmp-") {
                let _ = fs::remove_file(&path);
                continue;
            }
            if !fname.ends_with(".json") {
                continue;
            }
            let parsed = fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<Entry>(&b).map_err(|e| e.to_string()));
            match parsed {
                Ok(e) => match e.liveness() {
                    Ok(true) => out.push(e),
                    Err(err) => {
                        tracing::warn!(jid = e.jid, name = %e.name, error = %err, "cannot tell whether the jail's init runs; keeping its entry");
                        out.push(e);
                    }
                    Ok(false) => {
                        tracing::info!(jid = e.jid, name = %e.name, "removing stale jail registry entry (its init is gone)");
                        let _ = fs::remove_file(&path);
                        e.remove_cgroup();
                    }
                },
                Err(why) => {
                    tracing::warn!(path = %path.display(), %why, "ignoring corrupt jail registry entry")
                }
            }
        }
        out.sort_by_key(|e| e.jid);
        Ok(out)
    }

    fn write(&self, e: &Entry) -> Result<(), JailError> {
        let path = self.path_of(e.jid);
        let tmp = self
            .dir
            .join(format!(".tmp-{}-{}", e.jid, std::process::id()));
        let data = serde_json::to_vec_pretty(e).expect("entry serializes");
        let res = (|| {
            let mut f = OpenOptions::new()
                .create(true)
                .truncate(true)
                .write(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&data)?;
            f.sync_all()?;
            fs::rename(&tmp, &path)?;
            File::open(&self.dir)?.sync_all()
        })();
        if let Err(err) = res {
            let _ = fs::remove_file(&tmp);
            return Err(reg_err(&path, err));
        }
        Ok(())
    }

    fn delete(&self, jid: i32) {
        let _ = fs::remove_file(self.path_of(jid));
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = crate::sys::unix::flock(self.lock.as_raw_fd(), false);
    }
}

fn find<'a>(entries: &'a [Entry], key: Key<'_>, dying: bool) -> Option<&'a Entry> {
    let matches = |e: &&Entry| match key {
        Key::Jid(j) => e.jid == j,
        Key::Name(n) => e.name == n,
    };
    entries
        .iter()
        .filter(matches)
        .find(|e| !e.dying)
        .or_else(|| {
            if dying {
                entries.iter().find(|e| matches(e))
            } else {
                None
            }
        })
}

pub fn lookup(key: Key<'_>, dying: bool) -> Result<JailInfo, JailError> {
    let reg = Registry::open()?;
    let entries = reg.entries()?;
    find(&entries, key, dying)
        .map(Entry::info)
        .ok_or_else(|| JailError::NotFound {
            jail: key.to_string(),
        })
}

pub fn getid(key: Key<'_>) -> Result<i32, JailError> {
    lookup(key, false).map(|i| i.jid)
}

pub fn getname(jid: i32) -> Result<String, JailError> {
    lookup(Key::Jid(jid), false).map(|i| i.name)
}

pub fn list() -> Result<Vec<JailInfo>, JailError> {
    Ok(Registry::open()?
        .entries()?
        .iter()
        .map(Entry::info)
        .collect())
}

/// The entry's init pid and start time, for attaching and signalling (used by the probe).
pub fn init_of(key: Key<'_>) -> Result<(i32, u64), JailError> {
    let reg = Registry::open()?;
    let entries = reg.entries()?;
    find(&entries, key, false)
        .map(|e| (e.init_pid, e.init_start))
        .ok_or_else(|| JailError::NotFound {
            jail: key.to_string(),
        })
}

fn check_settable(p: &JailParam) -> Result<(), JailError> {
    match p.spec.linux {
        LinuxSupport::Enforced | LinuxSupport::Recorded => Ok(()),
        LinuxSupport::ReadOnly => Err(JailError::ReadOnly {
            name: p.name().into(),
        }),
        LinuxSupport::Unsupported => Err(JailError::Unsupported {
            name: p.name().into(),
            why: "not supported by jails on Linux (FreeBSD only)".into(),
        }),
    }
}

fn str_of(params: &[JailParam], name: &str) -> Option<String> {
    params
        .iter()
        .rev()
        .find(|p| p.name() == name)
        .map(JailParam::export)
}

fn valid_name(name: &str, jid: i32) -> Result<(), JailError> {
    if name.is_empty() {
        return Err(JailError::Invalid("name: must not be empty".into()));
    }
    if name.contains('.') || name.contains('/') {
        return Err(JailError::Invalid(format!(
            "name \"{name}\": '.' and '/' are not allowed in a jail name"
        )));
    }
    if let Ok(n) = name.parse::<i64>() {
        if n != jid as i64 {
            return Err(JailError::Invalid(format!(
                "name \"{name}\": a numeric name must equal the jid ({jid})"
            )));
        }
    }
    Ok(())
}

pub fn set(params: &[JailParam], flags: Flags) -> Result<i32, JailError> {
    let reg = Registry::open()?;
    let entries = reg.entries()?;
    let jid_param = params
        .iter()
        .rev()
        .find(|p| p.name() == "jid")
        .and_then(|p| match p.value {
            Some(Value::Int(j)) => Some(j),
            _ => None,
        });
    if let Some(j) = jid_param {
        if j <= 0 {
            return Err(JailError::Invalid(format!(
                "jid: {j} is not a valid jail id (must be > 0)"
            )));
        }
    }
    let name_param = str_of(params, "name");
    let dying_flag = flags.contains(Flags::DYING);
    let existing = match (jid_param, &name_param) {
        (Some(j), _) => entries.iter().find(|e| e.jid == j),
        (None, Some(n)) => find(&entries, Key::Name(n), true),
        (None, None) => None,
    };
    let label = jid_param
        .map(|j| j.to_string())
        .or(name_param.clone())
        .unwrap_or_else(|| "(new)".into());
    let state = existing.map(|e| {
        if e.dying {
            Existing::Dying
        } else {
            Existing::Alive
        }
    });
    // A dying jail keeps its jid until it is gone: never hand it out again.
    if state == Some(Existing::Dying)
        && !dying_flag
        && jid_param.is_some()
        && flags.contains(Flags::CREATE)
    {
        return Err(JailError::Dying { jail: label });
    }
    match decide(&label, state, flags)? {
        SetAction::Create => create(&reg, &entries, params, flags, jid_param, name_param),
        SetAction::Update => update(
            &reg,
            &entries,
            existing.expect("update has a jail").clone(),
            params,
            flags,
        ),
    }
}

fn create(
    reg: &Registry,
    entries: &[Entry],
    params: &[JailParam],
    flags: Flags,
    jid: Option<i32>,
    name: Option<String>,
) -> Result<i32, JailError> {
    for p in params {
        if p.name() != "jid" {
            check_settable(p)?;
        }
    }
    let jid = jid.unwrap_or_else(|| {
        (1..)
            .find(|j| !entries.iter().any(|e| e.jid == *j))
            .expect("a free jid")
    });
    let name = name.unwrap_or_else(|| jid.to_string());
    valid_name(&name, jid)?;
    if let Some(other) = entries.iter().find(|e| e.name == name && !e.dying) {
        return Err(JailError::NameInUse {
            name,
            jid: other.jid,
        });
    }
    let path = str_of(params, "path").unwrap_or_else(|| "/".into());
    let pp = Path::new(&path);
    if !pp.is_absolute() {
        return Err(JailError::BadPath {
            path,
            why: "must be an absolute path".into(),
        });
    }
    match fs::metadata(pp) {
        Err(e) => {
            return Err(JailError::BadPath {
                path,
                why: e.to_string(),
            })
        }
        Ok(m) if !m.is_dir() => {
            return Err(JailError::BadPath {
                path,
                why: "not a directory".into(),
            })
        }
        Ok(_) => {}
    }
    let path = fs::canonicalize(pp)
        .map_err(|e| JailError::BadPath {
            path: path.clone(),
            why: e.to_string(),
        })?
        .display()
        .to_string();

    let mut stored: BTreeMap<String, String> = BTreeMap::new();
    for p in params {
        if !matches!(p.name(), "jid" | "name") {
            stored.insert(p.name().into(), p.export());
        }
    }
    stored.insert("path".into(), path.clone());
    let hostname = stored.get("host.hostname").cloned();
    stored
        .entry("host.hostname".into())
        .or_insert_with(sys::hostname);
    for (k, v) in [
        ("vnet", "inherit"),
        ("host", "new"),
        ("children.max", "0"),
        ("enforce_statfs", "2"),
        ("securelevel", "-1"),
        ("persist", "false"),
        ("host.domainname", ""),
    ] {
        stored.entry(k.into()).or_insert_with(|| v.into());
    }
    let vnet = stored.get("vnet").map(|v| v == "new").unwrap_or(false);
    let persist = stored.get("persist").map(|v| v == "true").unwrap_or(false);
    let cstr = |s: &str, what: &str| {
        CString::new(s).map_err(|_| JailError::Invalid(format!("{what}: contains a NUL byte")))
    };
    let policy =
        Policy::from_params(jid, &stored).map_err(|e| JailError::Invalid(e.to_string()))?;
    if stored.get("allow.set_hostname").map(String::as_str) == Some("true")
        && policy.userns == super::confine::UserNs::Disabled
    {
        tracing::info!(jail = %name, "allow.set_hostname: refused on Linux without a user namespace (linux.userns=identity|new)");
    }
    let cgroup = make_devices_cgroup(jid)?;
    let cgroup_procs = cgroup
        .as_ref()
        .map(|c| cstr(&c.join("cgroup.procs").display().to_string(), "cgroup"))
        .transpose()?;
    let cfg = sys::InitConfig {
        confine: confinement(&policy),
        userns: match policy.userns {
            super::confine::UserNs::Disabled => sys::UserNsMode::None,
            super::confine::UserNs::Identity => sys::UserNsMode::Identity,
            super::confine::UserNs::Mapped { base } => sys::UserNsMode::Mapped { base },
        },
        cgroup_procs,
        path: cstr(&path, "path")?,
        hostname: hostname
            .as_deref()
            .map(|h| cstr(h, "host.hostname"))
            .transpose()?,
        domainname: str_of(params, "host.domainname")
            .as_deref()
            .map(|d| cstr(d, "host.domainname"))
            .transpose()?,
        vnet,
        persist,
    };
    let drop_cgroup = || {
        if let Some(c) = &cgroup {
            let _ = fs::remove_dir(c);
        }
    };
    let handle = sys::spawn_jail_init(&cfg).map_err(|(stage, e)| {
        drop_cgroup();
        JailError::os(format!("jail \"{name}\": {stage}"), e)
    })?;
    let init_start = sys::proc_start_time(handle.pid)
        .map(|t| t.0)
        .ok_or_else(|| {
            JailError::os(
                format!("jail \"{name}\": jail init vanished"),
                std::io::Error::from_raw_os_error(libc::ESRCH),
            )
        })?;
    let entry = Entry {
        jid,
        name: name.clone(),
        params: stored,
        init_pid: handle.pid,
        init_start,
        dying: false,
        cgroup: cgroup.as_ref().map(|c| c.display().to_string()),
    };
    // On any error from here on, dropping `handle` uncommitted makes the init exit.
    if let Err(e) = reg.write(&entry) {
        drop(handle);
        entry.remove_cgroup();
        return Err(e);
    }
    if flags.contains(Flags::ATTACH) {
        let attached = entry.confinement().and_then(|c| {
            sys::attach(handle.pid, init_start, &c, entry.cgroup_procs().as_deref())
                .map_err(|e| JailError::os(format!("jail \"{name}\": attach"), e))
        });
        if let Err(e) = attached {
            reg.delete(jid);
            drop(handle);
            entry.remove_cgroup();
            return Err(e);
        }
    }
    if let Err(e) = handle.commit() {
        reg.delete(jid);
        entry.remove_cgroup();
        return Err(JailError::os(
            format!("jail \"{name}\": starting the jail init"),
            e,
        ));
    }
    tracing::debug!(jid, %name, %path, "created jail");
    Ok(jid)
}

fn update(
    reg: &Registry,
    entries: &[Entry],
    mut e: Entry,
    params: &[JailParam],
    flags: Flags,
) -> Result<i32, JailError> {
    let label = e.name.clone();
    let mut new_host = None;
    let mut new_domain = None;
    let mut persist_change = None;
    for p in params {
        let v = p.export();
        match p.name() {
            "jid" => continue,
            "name" => {
                if v != e.name {
                    valid_name(&v, e.jid)?;
                    if let Some(o) = entries
                        .iter()
                        .find(|o| o.name == v && !o.dying && o.jid != e.jid)
                    {
                        return Err(JailError::NameInUse {
                            name: v,
                            jid: o.jid,
                        });
                    }
                }
                continue;
            }
            _ => check_settable(p)?,
        }
        let current = e.params.get(p.name()).cloned().unwrap_or_default();
        if p.spec.create_only {
            let same = if p.name() == "path" {
                fs::canonicalize(&v)
                    .map(|c| c.display().to_string() == current)
                    .unwrap_or(false)
            } else {
                v == current
            };
            if !same {
                return Err(JailError::CreateOnly {
                    jail: label,
                    name: p.name().into(),
                });
            }
            continue;
        }
        match p.name() {
            "host.hostname" if v != current => new_host = Some(v.clone()),
            "host.domainname" if v != current => new_domain = Some(v.clone()),
            "persist" if v != current => persist_change = Some(v == "true"),
            _ => {}
        }
    }
    if new_host.is_some() || new_domain.is_some() {
        let h = new_host
            .as_deref()
            .map(CString::new)
            .transpose()
            .map_err(|_| JailError::Invalid("host.hostname: contains a NUL byte".into()))?;
        let d = new_domain
            .as_deref()
            .map(CString::new)
            .transpose()
            .map_err(|_| JailError::Invalid("host.domainname: contains a NUL byte".into()))?;
        sys::set_names_in(e.init_pid, h.as_deref(), d.as_deref())
            .map_err(|err| JailError::os(format!("jail \"{label}\": set names"), err))?;
    }
    for p in params {
        match p.name() {
            "jid" => {}
            "name" => e.name = p.export(),
            n => {
                e.params.insert(n.into(), p.export());
            }
        }
    }
    reg.write(&e)?;
    if let Some(on) = persist_change {
        let _ =
            crate::sys::unix::signal(e.init_pid, if on { libc::SIGUSR1 } else { libc::SIGUSR2 });
    }
    if flags.contains(Flags::ATTACH) {
        let c = e.confinement()?;
        sys::attach(e.init_pid, e.init_start, &c, e.cgroup_procs().as_deref())
            .map_err(|err| JailError::os(format!("jail \"{label}\": attach"), err))?;
    }
    Ok(e.jid)
}

/// Remove a jail: every process in it is killed, then the init exits. If the init has
/// not gone after a while the jail stays dying (and is cleaned when it goes).
pub fn remove(jid: i32) -> Result<(), JailError> {
    let e = {
        let reg = Registry::open()?;
        let entries = reg.entries()?;
        let mut e = entries
            .into_iter()
            .find(|e| e.jid == jid && !e.dying)
            .ok_or(JailError::NotFound {
                jail: jid.to_string(),
            })?;
        e.dying = true;
        reg.write(&e)?;
        e
    };
    kill_members(&e);
    crate::sys::unix::signal(e.init_pid, libc::SIGTERM)
        .map_err(|err| JailError::os(format!("jail \"{}\": signal init", e.name), err))?;
    let deadline = Instant::now() + REMOVE_WAIT;
    while e.alive() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let reg = Registry::open()?;
    if !e.alive() {
        reg.delete(jid);
        e.remove_cgroup();
    } else {
        tracing::warn!(jid, name = %e.name, "jail init still running after removal; the jail stays dying");
    }
    Ok(())
}

/// Kill what is left of the jail, from the host: the processes attached with setns
/// that are not in its pid namespace (the init takes care of those that are).
fn kill_members(e: &Entry) {
    signal_members(e.init_pid, libc::SIGKILL);
}

/// Signal the members of the jail whose init is `init` (the caller excluded): each
/// through a pidfd opened *before* its membership is checked again, so a pid freed
/// and reused by a host process in between is never signalled.
fn signal_members(init: i32, sig: i32) -> usize {
    let me = std::process::id() as i32;
    let Some(id) = JailNs::of(init) else {
        return 0;
    };
    let mut n = 0;
    for pid in members(init) {
        if pid == me {
            continue;
        }
        let p = crate::sys::unix::ProcessRef::new(pid);
        if p.has_pidfd() && id.holds(pid) && p.signal(sig).is_ok() {
            n += 1;
        }
    }
    n
}

/// Signal every process of a jail (see [`signal_members`]); returns how many.
pub fn signal_processes(key: Key<'_>, sig: i32) -> Result<usize, JailError> {
    let (init, _) = init_of(key)?;
    Ok(signal_members(init, sig))
}

/// Enter the jail, confined as its own processes are (see [`super::confine`]).
pub fn attach(key: Key<'_>) -> Result<(), JailError> {
    let e = {
        let reg = Registry::open()?;
        let entries = reg.entries()?;
        find(&entries, key, false)
            .cloned()
            .ok_or_else(|| JailError::NotFound {
                jail: key.to_string(),
            })?
    };
    let c = e.confinement()?;
    sys::attach(e.init_pid, e.init_start, &c, e.cgroup_procs().as_deref())
        .map_err(|err| JailError::os(format!("jail {key}: attach"), err))
}

/// Host pids of the processes in the jail's pid namespace, and of processes attached
/// to its mount namespace, its init excluded.
pub fn processes(key: Key<'_>) -> Result<Vec<i32>, JailError> {
    let (init, _) = init_of(key)?;
    Ok(members(init))
}

/// One scan of /proc for the live members of the jail whose init is `init`: its pid
/// namespace, or its mount namespace (attached but not forked yet); zombies and the
/// init excluded.
fn members(init: i32) -> Vec<i32> {
    let Some(id) = JailNs::of(init) else {
        return vec![];
    };
    let Ok(rd) = fs::read_dir("/proc") else {
        return vec![];
    };
    rd.flatten()
        .filter_map(|d| d.file_name().to_str().and_then(|s| s.parse::<i32>().ok()))
        .filter(|&pid| pid != init && matches!(sys::proc_start_time(pid), Some((_, false))))
        .filter(|&pid| id.holds(pid))
        .collect()
}

/// The pid and mount namespaces of a jail's init.
struct JailNs {
    pid: std::path::PathBuf,
    mnt: Option<(u64, u64)>,
}

impl JailNs {
    fn of(init: i32) -> Option<JailNs> {
        Some(JailNs {
            pid: fs::read_link(format!("/proc/{init}/ns/pid")).ok()?,
            mnt: sys::mnt_ns_id(init),
        })
    }

    /// Whether `pid` is in the jail's pid namespace, or attached to its mount
    /// namespace. A process whose namespaces cannot be read is not.
    fn holds(&self, pid: i32) -> bool {
        fs::read_link(format!("/proc/{pid}/ns/pid")).ok().as_ref() == Some(&self.pid)
            || (self.mnt.is_some() && sys::mnt_ns_id(pid) == self.mnt)
    }
}
