//! The kernel jail parameters a jail's configuration maps to: a pure function of the
//! configuration and the OS, so the FreeBSD mapping is unit-tested on Linux too.

use std::path::Path;

use crate::jail::{self, JailParam};
use crate::manager::config::JailConfig;
use crate::manager::error::Result;
use crate::manager::props;
use crate::sys::Os;

/// `allow_mount_nullfs` → `allow.mount.nullfs`, `allow_raw_sockets` → `allow.raw_sockets`.
pub fn allow_param_name(prop: &str) -> String {
    prop.replacen('_', ".", 1).replace("mount_", "mount.")
}

/// The parameters as `name=value` assignments (jail(8)'s syntax).
///
/// On FreeBSD an `allow.mount.FS` parameter exists only while file system FS is
/// registered (its module loaded), and its kernel default is false: it is passed only
/// when true, and libjail then loads the module itself (as jail(8) does). Every other
/// `allow.*` is passed with its value, so a default changed by a host sysctl never
/// decides for the jail.
pub fn assignments(c: &JailConfig, kname: &str, root: &Path, os: Os) -> Vec<String> {
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
        // Linux: a network stack of the jail's own, which the host configures (see
        // lifecycle::net)
        // ip4/ip6=disable: no addresses at all (Linux: a stack with only lo)
        let disable = c.ip4_mode == "disable" || c.ip6_mode == "disable";
        if os == Os::Linux && (disable || !(c.ip4.is_empty() && c.ip6.is_empty())) {
            a.push("ip4=new".into());
        }
        if os == Os::FreeBsd {
            for (p, mode) in [("ip4", &c.ip4_mode), ("ip6", &c.ip6_mode)] {
                if mode == "disable" {
                    a.push(format!("{p}=disable"));
                }
            }
        }
    }
    // FreeBSD gets its allow.* permissions (a file system's only when true); Linux
    // those it enforces (the capabilities, filter rules and user namespace of
    // jail::confine).
    for (name, on) in &c.allow {
        let param = allow_param_name(name);
        let passed = match os {
            Os::FreeBsd => *on || !param.starts_with("allow.mount."),
            Os::Linux => props::lookup(name).map(|p| p.linux).unwrap_or(false),
        };
        if passed {
            a.push(format!("{param}={on}"));
        }
    }
    if os == Os::FreeBsd {
        a.push(format!("devfs_ruleset={}", c.devfs_ruleset));
    }
    a
}

/// The typed parameters for `jail_set`.
pub fn jail_params(c: &JailConfig, kname: &str, root: &Path, os: Os) -> Result<Vec<JailParam>> {
    for (p, mode, addrs) in [("ip4", &c.ip4_mode, &c.ip4), ("ip6", &c.ip6_mode, &c.ip6)] {
        if mode == "disable" && !addrs.is_empty() {
            return Err(crate::manager::error::invalid(format!(
                "{p}=disable but {p}_addr is set; accepted: {p}=new with addresses, \
                 or {p}=disable with {p}_addr=none"
            )));
        }
        // a VNET jail configures its own stack: disable could not hold there
        if mode == "disable" && c.vnet {
            return Err(crate::manager::error::invalid(format!(
                "{p}=disable with vnet=on: a VNET jail configures its own network stack; \
                 accepted: {p}=disable with vnet=off"
            )));
        }
    }
    Ok(jail::parse_assignments(&assignments(c, kname, root, os))?)
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
        let a = assignments(&c, "ioc-u", Path::new("/j/root"), Os::FreeBsd);
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
    fn a_file_system_allow_is_passed_only_when_true() {
        // its parameter exists only while the file system is registered
        let c = cfg(&[]);
        let a = assignments(&c, "n", Path::new("/r"), Os::FreeBsd);
        assert!(!a.iter().any(|x| x.starts_with("allow.mount.")), "{a:?}");
        assert!(has(&a, "allow.mount=false") && has(&a, "allow.sysvipc=false"));
        let c = cfg(&[("allow_mount_tmpfs", "1"), ("allow_mount_devfs", "1")]);
        let a = assignments(&c, "n", Path::new("/r"), Os::FreeBsd);
        assert!(has(&a, "allow.mount.tmpfs=true") && has(&a, "allow.mount.devfs=true"));
        assert!(!a.iter().any(|x| x.starts_with("allow.mount.zfs")));
    }

    #[test]
    fn linux_gets_only_the_allows_it_enforces() {
        let c = cfg(&[("allow_mount_zfs", "1"), ("allow_raw_sockets", "1")]);
        let a = assignments(&c, "ioc-u", Path::new("/r"), Os::Linux);
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
        let a = assignments(&c, "n", Path::new("/r"), Os::FreeBsd);
        assert!(has(&a, "ip4.addr=em0|10.0.0.5/24"), "{a:?}");
        assert!(!a.iter().any(|x| x.starts_with("ip6.addr")));
        assert!(has(&a, "host.domainname=example.org"));
        let c = cfg(&[("ip4", "disable")]);
        let a = assignments(&c, "j", Path::new("/r"), Os::Linux);
        assert!(has(&a, "ip4=new"), "{a:?}");
        let a = assignments(&c, "j", Path::new("/r"), Os::FreeBsd);
        assert!(has(&a, "ip4=disable"), "{a:?}");
        assert!(jail_params(&c, "j", Path::new("/r"), Os::Linux).is_ok());
        let c = cfg(&[("ip6", "disable"), ("ip6_addr", "em0|2001:db8::5")]);
        assert!(jail_params(&c, "j", Path::new("/r"), Os::Linux).is_err());
        let c = cfg(&[("vnet", "on"), ("ip4_addr", "10.0.0.5")]);
        let a = assignments(&c, "n", Path::new("/r"), Os::FreeBsd);
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
