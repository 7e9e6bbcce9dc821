//! The registry of Linux jails: one JSON file per jail under a locked directory,
//! its entries checked against the live init.

#[allow(unused_imports)]
use super::*;

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
    /// The jail's resource-limit cgroups (`jailctl/NAME`), found by its name when it
    /// was made: its init joined them, and every process entering it joins them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub limit_cgroups: Vec<String>,
}

impl Entry {
    pub(super) fn info(&self) -> JailInfo {
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

    pub(super) fn alive(&self) -> bool {
        self.liveness().unwrap_or(true)
    }

    /// Whether the init still runs; an error when that cannot be told (only "no such
    /// process" or another process under its pid proves it gone).
    pub(super) fn liveness(&self) -> std::io::Result<bool> {
        Ok(matches!(sys::proc_state(self.init_pid)?, Some((t, false)) if t == self.init_start))
    }

    /// What processes entering this jail may do.
    pub(super) fn confinement(&self) -> Result<sys::Confinement, JailError> {
        let policy = Policy::from_params(self.jid, &self.params)
            .map_err(|e| JailError::Invalid(e.to_string()))?;
        Ok(confinement(&policy))
    }

    /// The `cgroup.procs` files a process entering the jail writes itself to.
    pub(super) fn cgroup_procs(&self) -> Vec<PathBuf> {
        self.cgroup
            .iter()
            .chain(&self.limit_cgroups)
            .map(|c| Path::new(c).join("cgroup.procs"))
            .collect()
    }

    /// Remove the jail's devices cgroup once its processes are gone.
    pub(super) fn remove_cgroup(&self) {
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

pub(super) fn confinement(policy: &Policy) -> sys::Confinement {
    sys::Confinement {
        caps: policy.caps,
        filters: crate::jail::confine::filters(policy),
    }
}

/// Where the jails' devices cgroups (v1) live.
pub(super) const DEVICES_CGROUP: &str = "/sys/fs/cgroup/devices";

/// Device nodes a jail may use: those of FreeBSD's default devfs ruleset (null, zero,
/// full, random, urandom, tty, ptmx and the pts of its own devpts).
pub(super) const DEVICES_ALLOWED: &[&str] = &[
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
pub(super) fn make_devices_cgroup(jid: i32) -> Result<Option<PathBuf>, JailError> {
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
pub(super) struct Registry {
    pub(super) dir: PathBuf,
    pub(super) lock: File,
}

pub(super) fn reg_err(path: &Path, source: std::io::Error) -> JailError {
    JailError::Registry {
        path: path.display().to_string(),
        source,
    }
}

impl Registry {
    pub(super) fn open() -> Result<Registry, JailError> {
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

    pub(super) fn path_of(&self, jid: i32) -> PathBuf {
        self.dir.join(format!("{jid}.json"))
    }

    /// All valid entries; stale ones are removed, corrupt ones logged and skipped.
    pub(super) fn entries(&self) -> Result<Vec<Entry>, JailError> {
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

    pub(super) fn write(&self, e: &Entry) -> Result<(), JailError> {
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

    pub(super) fn delete(&self, jid: i32) {
        let _ = fs::remove_file(self.path_of(jid));
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = crate::sys::unix::flock(self.lock.as_raw_fd(), false);
    }
}

pub(super) fn find<'a>(entries: &'a [Entry], key: Key<'_>, dying: bool) -> Option<&'a Entry> {
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
