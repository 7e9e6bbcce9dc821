//! `jail_set` on Linux: creating a jail (its init, namespaces, root, confinement)
//! and updating one.

#[allow(unused_imports)]
use super::*;

pub(super) fn check_settable(p: &JailParam) -> Result<(), JailError> {
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

pub(super) fn str_of(params: &[JailParam], name: &str) -> Option<String> {
    params
        .iter()
        .rev()
        .find(|p| p.name() == name)
        .map(JailParam::export)
}

pub(super) fn valid_name(name: &str, jid: i32) -> Result<(), JailError> {
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

pub(super) fn create(
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
    // A jail with addresses of its own (`ip4=new`, `ip6=new`) gets a network stack of
    // its own too, which the host configures; only `vnet=new` lets the jail do so.
    let vnet = ["vnet", "ip4", "ip6"]
        .iter()
        .any(|k| stored.get(*k).map(String::as_str) == Some("new"));
    let persist = stored.get("persist").map(|v| v == "true").unwrap_or(false);
    let cstr = |s: &str, what: &str| {
        CString::new(s).map_err(|_| JailError::Invalid(format!("{what}: contains a NUL byte")))
    };
    let policy =
        Policy::from_params(jid, &stored).map_err(|e| JailError::Invalid(e.to_string()))?;
    if stored.get("allow.set_hostname").map(String::as_str) == Some("true")
        && policy.userns == crate::jail::confine::UserNs::Disabled
    {
        tracing::info!(jail = %name, "allow.set_hostname: refused on Linux without a user namespace (linux.userns=identity|new)");
    }
    let cgroup = make_devices_cgroup(jid)?;
    let cgroup_procs = cgroup
        .as_ref()
        .map(|c| cstr(&c.join("cgroup.procs").display().to_string(), "cgroup"))
        .transpose()?;
    let limit_cgroups = sys::limits::existing_dirs(&name);
    let limit_procs = limit_cgroups
        .iter()
        .map(|c| cstr(&c.join("cgroup.procs").display().to_string(), "cgroup"))
        .collect::<Result<Vec<_>, _>>()?;
    let cfg = sys::InitConfig {
        confine: confinement(&policy),
        userns: match policy.userns {
            crate::jail::confine::UserNs::Disabled => sys::UserNsMode::None,
            crate::jail::confine::UserNs::Identity => sys::UserNsMode::Identity,
            crate::jail::confine::UserNs::Mapped { base } => sys::UserNsMode::Mapped { base },
        },
        cgroup_procs,
        limit_procs,
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
        limit_cgroups: limit_cgroups
            .iter()
            .map(|c| c.display().to_string())
            .collect(),
    };
    // On any error from here on, dropping `handle` uncommitted makes the init exit.
    if let Err(e) = reg.write(&entry) {
        drop(handle);
        entry.remove_cgroup();
        return Err(e);
    }
    if flags.contains(Flags::ATTACH) {
        let attached = entry.confinement().and_then(|c| {
            sys::attach(handle.pid, init_start, &c, &entry.cgroup_procs())
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

pub(super) fn update(
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
        sys::attach(e.init_pid, e.init_start, &c, &e.cgroup_procs())
            .map_err(|err| JailError::os(format!("jail \"{label}\": attach"), err))?;
    }
    Ok(e.jid)
}
