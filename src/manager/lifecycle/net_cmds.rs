//! The host commands of each network step, per OS: pure, so FreeBSD's `ifconfig` and
//! `route` lines are unit-tested on Linux too.

use super::net::{NetRecord, Step};
use crate::sys::Os;

/// Where a command runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    /// On the host.
    Host,
    /// On the host, `{ns}` in its arguments naming the jail's stack (Linux: a path to
    /// the namespace descriptor; FreeBSD: the jid).
    HostNs,
    /// In the jail's network stack (Linux: the namespace entered; FreeBSD: `-j JID`).
    Jail,
    /// Linux: each argument `KEY=VALUE` written to `/proc/sys/KEY` in the jail's
    /// network stack (the program is only a label).
    Sysctl,
}

/// One command; `{out}` and `{peer}` in its arguments are the output of the step's
/// capturing command and that name with its last letter `a` made `b` (FreeBSD's
/// epair ends).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    pub at: At,
    pub program: &'static str,
    pub args: Vec<String>,
    /// Its trimmed output becomes `{out}`.
    pub capture: bool,
    /// Recorded once the command succeeded.
    pub record: Option<NetRecord>,
}

fn cmd(at: At, program: &'static str, args: &[&str]) -> Cmd {
    Cmd {
        at,
        program,
        args: args.iter().map(|s| s.to_string()).collect(),
        capture: false,
        record: None,
    }
}

fn link(name: &str, macs: &[&String]) -> Option<NetRecord> {
    Some(NetRecord::Link {
        name: name.to_string(),
        ifindex: None,
        tmp: None,
        macs: macs.iter().map(|m| m.to_string()).collect(),
    })
}

fn bridge(name: &str) -> Option<NetRecord> {
    Some(NetRecord::Bridge {
        name: name.to_string(),
        ifindex: None,
        tmp: None,
    })
}

/// The commands of `step` (a bridge only when it is to be made).
pub fn commands(step: &Step, os: Os) -> Vec<Cmd> {
    use At::*;
    match (os, step) {
        (Os::Linux, Step::Bridge { name }) => vec![
            Cmd {
                record: bridge(name),
                ..cmd(Host, "ip", &["link", "add", "name", name, "type", "bridge"])
            },
            cmd(Host, "ip", &["link", "set", "dev", name, "up"]),
        ],
        (Os::FreeBsd, Step::Bridge { name }) => vec![
            Cmd {
                capture: true,
                ..cmd(Host, "ifconfig", &["bridge", "create"])
            },
            Cmd {
                record: bridge(name),
                ..cmd(Host, "ifconfig", &["{out}", "name", name])
            },
            cmd(Host, "ifconfig", &[name, "up"]),
        ],
        (
            Os::Linux,
            Step::Pair {
                host,
                tmp,
                inside,
                bridge,
                host_mac,
                jail_mac,
            },
        ) => vec![
            Cmd {
                record: link(host, &[host_mac, jail_mac]),
                ..cmd(
                    Host,
                    "ip",
                    &[
                        "link", "add", "name", host, "address", host_mac, "type", "veth", "peer",
                        "name", tmp, "address", jail_mac,
                    ],
                )
            },
            cmd(
                Host,
                "ip",
                &["link", "set", "dev", host, "master", bridge, "up"],
            ),
            cmd(HostNs, "ip", &["link", "set", "dev", tmp, "netns", "{ns}"]),
            cmd(Jail, "ip", &["link", "set", "dev", tmp, "name", inside]),
            cmd(Jail, "ip", &["link", "set", "dev", inside, "up"]),
        ],
        (
            Os::FreeBsd,
            Step::Pair {
                host,
                inside,
                bridge,
                host_mac,
                jail_mac,
                ..
            },
        ) => vec![
            Cmd {
                capture: true,
                ..cmd(Host, "ifconfig", &["epair", "create"])
            },
            Cmd {
                record: link(host, &[host_mac, jail_mac]),
                ..cmd(Host, "ifconfig", &["{out}", "name", host])
            },
            cmd(Host, "ifconfig", &[host, "ether", host_mac, "up"]),
            cmd(Host, "ifconfig", &[bridge, "addm", host]),
            cmd(Host, "ifconfig", &["{peer}", "ether", jail_mac]),
            cmd(HostNs, "ifconfig", &["{peer}", "vnet", "{ns}"]),
            cmd(Jail, "ifconfig", &["{peer}", "name", inside]),
            cmd(Jail, "ifconfig", &[inside, "up"]),
        ],
        (
            _,
            Step::Macvlan {
                parent,
                tmp,
                inside,
                mac,
                v6,
            },
        ) => {
            // no address nor route but the configured ones: no router advertisement
            // taken, no SLAAC, and no IPv6 at all without an IPv6 address; set while
            // the interface is still down
            let conf = format!("net/ipv6/conf/{inside}");
            let mut sysctl = vec![format!("{conf}/accept_ra=0"), format!("{conf}/autoconf=0")];
            if !v6 {
                sysctl.push(format!("{conf}/disable_ipv6=1"));
            }
            macvlan(parent, tmp, inside, mac, sysctl)
        }
        (_, Step::Alias { iface, addr }) => {
            let fam = if addr.v6() { "inet6" } else { "inet" };
            vec![Cmd {
                record: Some(NetRecord::Alias {
                    iface: iface.clone(),
                    addr: addr.cidr(),
                }),
                ..cmd(Host, "ifconfig", &[iface, fam, &addr.cidr(), "alias"])
            }]
        }
        (Os::Linux, Step::JailAddr { dev, addr }) => {
            let mut c = cmd(Jail, "ip", &["addr", "add", &addr.cidr(), "dev", dev]);
            if addr.v6() {
                c.args.push("nodad".into());
            }
            vec![c]
        }
        (Os::FreeBsd, Step::JailAddr { dev, addr }) => {
            let fam = if addr.v6() { "inet6" } else { "inet" };
            vec![cmd(Jail, "ifconfig", &[dev, fam, &addr.cidr(), "alias"])]
        }
        (Os::Linux, Step::Route { via }) => {
            let v = via.to_string();
            if via.is_ipv6() {
                vec![cmd(
                    Jail,
                    "ip",
                    &["-6", "route", "add", "default", "via", &v],
                )]
            } else {
                vec![cmd(Jail, "ip", &["route", "add", "default", "via", &v])]
            }
        }
        (Os::FreeBsd, Step::Route { via }) => {
            let v = via.to_string();
            if via.is_ipv6() {
                vec![cmd(Jail, "route", &["add", "-inet6", "default", &v])]
            } else {
                vec![cmd(Jail, "route", &["add", "default", &v])]
            }
        }
    }
}

/// A macvlan `tmp` of `parent` moved into the jail and named `inside` there; the
/// `sysctl` writes are made before it goes up.
fn macvlan(parent: &str, tmp: &str, inside: &str, mac: &str, sysctl: Vec<String>) -> Vec<Cmd> {
    use At::*;
    vec![
        Cmd {
            record: link(tmp, &[&mac.to_string()]),
            ..cmd(
                Host,
                "ip",
                &[
                    "link", "add", "link", parent, "name", tmp, "address", mac, "type", "macvlan",
                    "mode", "bridge",
                ],
            )
        },
        cmd(HostNs, "ip", &["link", "set", "dev", tmp, "netns", "{ns}"]),
        cmd(Jail, "ip", &["link", "set", "dev", tmp, "name", inside]),
        Cmd {
            args: sysctl,
            ..cmd(Sysctl, "sysctl", &[])
        },
        cmd(Jail, "ip", &["link", "set", "dev", inside, "up"]),
    ]
}

/// The undo of a record, run on the host (after checks by the caller).
pub fn undo_command(r: &NetRecord, os: Os) -> Cmd {
    use At::Host;
    match (os, r) {
        (Os::Linux, NetRecord::Link { name, .. } | NetRecord::Bridge { name, .. }) => {
            cmd(Host, "ip", &["link", "del", "dev", name])
        }
        (Os::FreeBsd, NetRecord::Link { name, .. } | NetRecord::Bridge { name, .. }) => {
            cmd(Host, "ifconfig", &[name, "destroy"])
        }
        (_, NetRecord::Alias { iface, addr }) => {
            let fam = if addr.contains(':') { "inet6" } else { "inet" };
            let a = addr.split('/').next().unwrap_or(addr);
            cmd(Host, "ifconfig", &[iface, fam, a, "-alias"])
        }
    }
}

/// Substitute `{out}` and `{peer}`.
pub fn fill(args: &[String], out: &str) -> Vec<String> {
    let peer = match out.strip_suffix('a') {
        Some(stem) => format!("{stem}b"),
        None => out.to_string(),
    };
    args.iter()
        .map(|a| a.replace("{out}", out).replace("{peer}", &peer))
        .collect()
}
