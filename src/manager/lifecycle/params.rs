//! The kernel jail parameters a jail's configuration maps to: a pure function of the
//! configuration and the OS, so the FreeBSD mapping is unit-tested on Linux too.

use std::path::Path;

use crate::jail::{self, JailParam};
use crate::manager::config::JailConfig;
use crate::manager::error::{invalid, Result};
use crate::manager::props;
use crate::sys::Os;

/// `allow_mount_nullfs` → `allow.mount.nullfs`, `allow_raw_sockets` → `allow.raw_sockets`.
pub fn allow_param_name(prop: &str) -> String {
    prop.replacen('_', ".", 1).replace("mount_", "mount.")
}

/// FreeBSD `allow.*` parameters that exist only while their file system's module is
/// loaded, with the module: passed only when true, and then the module must be there.
pub const MODULE_ALLOWS: [(&str, &str); 5] = [
    ("allow.mount.nullfs", "nullfs"),
    ("allow.mount.tmpfs", "tmpfs"),
    ("allow.mount.zfs", "zfs"),
    ("allow.mount.fdescfs", "fdescfs"),
    ("allow.mount.linprocfs", "linprocfs"),
];

/// The parameters as `name=value` assignments (jail(8)'s syntax). `kernel_knows`
/// tells whether the kernel has a parameter (FreeBSD: a module-dependent `allow.*`
/// exists only while the module is loaded); one it lacks that the jail needs is an
/// error naming the module to load.
pub fn assignments(
    c: &JailConfig,
    kname: &str,
    root: &Path,
    os: Os,
    kernel_knows: impl Fn(&str) -> bool,
) -> Result<Vec<String>> {
    let mut a: Vec<String> = vec![
        format!("name={kname}"),
        format!("path={}", root.display()),
        format!("host.hostname={}", c.host_hostname),
        format!("host.hostuuid={}", c.host_hostuuid),
        format!("securelevel={}", c.securelevel),
        format!("children.max={}", c.children_max),
        format!("enforce_statfs={}", c.enforce_statfs),
        "persist".into(),
    ];
    if let Some(d) = &c.host_domainname {
        a.push(format!("host.domainname={d}"));
    }
    if c.vnet {
        a.push("vnet=new".into());
    } else {
        for (param, addrs) in [("ip4.addr", &c.ip4), ("ip6.addr", &c.ip6)] {
            if !addrs.is_empty() {
                a.push(format!("{param}={}", addrs.join(",")));
            }
        }
    }
    // FreeBSD gets its allow.* permissions, a module-dependent one only when true;
    // Linux those it enforces (the capabilities, filter rules and user namespace of
    // jail::confine).
    for (name, on) in &c.allow {
        let param = allow_param_name(name);
        match os {
            Os::FreeBsd => match MODULE_ALLOWS.iter().find(|(p, _)| *p == param) {
                Some(_) if !on => continue,
                Some((_, module)) if !kernel_knows(&param) => {
                    return Err(invalid(format!(
                        "{name}=1 needs the kernel's {param} parameter, which exists only while the {module} module is loaded: `kldload {module}` (or clear {name})"
                    )))
                }
                _ => a.push(format!("{param}={on}")),
            },
            Os::Linux => {
                if props::lookup(name).map(|p| p.linux).unwrap_or(false) {
                    a.push(format!("{param}={on}"));
                }
            }
        }
    }
    if os == Os::FreeBsd {
        a.push(format!("devfs_ruleset={}", c.devfs_ruleset));
    }
    Ok(a)
}

/// The typed parameters for `jail_set`.
pub fn jail_params(c: &JailConfig, kname: &str, root: &Path, os: Os) -> Result<Vec<JailParam>> {
    let a = assignments(c, kname, root, os, |p| jail::kernel_knows(p))?;
    Ok(jail::parse_assignments(&a)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> JailConfig {
        let mut p = props::schema_defaults();
        p.insert("host_hostname".into(), "h".into());
        p.insert("host_hostuuid".into(), "u".into());
        for (k, v) in pairs {
            p.insert(k.to_string(), v.to_string());
        }
        JailConfig::parse("u", &p).unwrap()
    }

    fn has(a: &[String], s: &str) -> bool {
        a.iter().any(|x| x == s)
    }

    #[test]
    fn freebsd_gets_every_allow_and_the_devfs_ruleset() {
        let c = cfg(&[("allow_mount_zfs", "1"), ("allow_quotas", "1")]);
        let a = assignments(&c, "ioc-u", Path::new("/j/root"), Os::FreeBsd, |_| true).unwrap();
        assert!(has(&a, "name=ioc-u") && has(&a, "path=/j/root") && has(&a, "persist"));
        assert!(has(&a, "allow.mount.zfs=true"), "{a:?}");
        assert!(has(&a, "allow.quotas=true"));
        assert!(has(&a, "allow.raw_sockets=false"));
        assert!(has(&a, "allow.set_hostname=true"));
        // a module-dependent permission that is off is not passed at all
        assert!(
            !a.iter().any(|x| x.starts_with("allow.mount.tmpfs")),
            "{a:?}"
        );
        assert!(has(&a, "devfs_ruleset=4"));
        assert!(has(&a, "securelevel=2") && has(&a, "enforce_statfs=2"));
        // the whole list parses as jail parameters
        assert!(jail_params(&c, "ioc-u", Path::new("/j/root"), Os::FreeBsd).is_ok());
    }

    #[test]
    fn a_module_dependent_allow_names_the_missing_module() {
        let c = cfg(&[("allow_mount_zfs", "1")]);
        let e = assignments(&c, "n", Path::new("/r"), Os::FreeBsd, |p| {
            p != "allow.mount.zfs"
        })
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("kldload zfs") && e.contains("allow_mount_zfs"),
            "{e}"
        );
        // off: the missing module does not matter
        let c = cfg(&[]);
        assert!(assignments(&c, "n", Path::new("/r"), Os::FreeBsd, |p| !p
            .starts_with("allow.mount."))
        .is_ok());
    }

    #[test]
    fn linux_gets_only_the_allows_it_enforces() {
        let c = cfg(&[("allow_mount_zfs", "1"), ("allow_raw_sockets", "1")]);
        let a = assignments(&c, "ioc-u", Path::new("/r"), Os::Linux, |_| true).unwrap();
        assert!(!a.iter().any(|x| x.starts_with("allow.mount.zfs")), "{a:?}");
        assert!(!a.iter().any(|x| x.starts_with("allow.quotas")));
        assert!(has(&a, "allow.raw_sockets=true"));
        assert!(!a.iter().any(|x| x.starts_with("devfs_ruleset")));
    }

    #[test]
    fn addresses_unless_vnet_and_the_domain_unless_none() {
        let c = cfg(&[
            ("ip4_addr", "em0|10.0.0.5/24,lo0|"),
            ("ip6_addr", "none"),
            ("host_domainname", "example.org"),
        ]);
        let a = assignments(&c, "n", Path::new("/r"), Os::FreeBsd, |_| true).unwrap();
        assert!(has(&a, "ip4.addr=em0|10.0.0.5/24"), "{a:?}");
        assert!(!a.iter().any(|x| x.starts_with("ip6.addr")));
        assert!(has(&a, "host.domainname=example.org"));
        let c = cfg(&[("vnet", "on"), ("ip4_addr", "10.0.0.5")]);
        let a = assignments(&c, "n", Path::new("/r"), Os::FreeBsd, |_| true).unwrap();
        assert!(has(&a, "vnet=new"));
        assert!(!a.iter().any(|x| x.starts_with("ip4.addr")));
        assert!(!a.iter().any(|x| x.starts_with("host.domainname")));
    }

    #[test]
    fn allow_names() {
        assert_eq!(allow_param_name("allow_mount_nullfs"), "allow.mount.nullfs");
        assert_eq!(allow_param_name("allow_raw_sockets"), "allow.raw_sockets");
        assert_eq!(allow_param_name("allow_set_hostname"), "allow.set_hostname");
    }
}
