//! A jail's networking as a plan: pure functions of its configuration and the OS
//! (unit-tested for both OSes here), carried out by [`super::net_apply`].
//!
//! - Shared-IP (`vnet=off`): FreeBSD adds each `IFACE|ADDR` as an alias of IFACE
//!   (jail(8)'s way); Linux, which has no address-restricted jail, gives the jail a
//!   network namespace of its own holding a macvlan child of IFACE (named IFACE inside)
//!   with exactly those addresses, and the default route of `defaultrouter(6)`.
//! - VNET (`vnet=on`): per `interfaces` entry `vnetN:BRIDGE`, a pair (Linux veth,
//!   FreeBSD epair) whose host end `vnN.<uuid>` joins BRIDGE (made if missing) and
//!   whose other end is `vnetN` in the jail, with its addresses and default routes.
//!
//! Host-side names are made from the jail's UUID (never from anything a jail chose),
//! within IFNAMSIZ; MACs are derived from the UUID and the interface's index unless
//! `vnetN_mac` says otherwise.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::manager::config::JailConfig;
use crate::manager::error::{invalid, Result};
use crate::sys::Os;

/// Longest interface name (IFNAMSIZ less its NUL), both OSes.
pub const IFNAME_MAX: usize = 15;

/// Something start made, undone at stop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NetRecord {
    /// A host interface we created, by its name and ifindex, so that another
    /// interface given the same name since is never removed. `tmp` is the unique
    /// name it was made under (Linux) or the kernel's name it had (FreeBSD): a record
    /// still without ifindex (a start killed while making it) removes only an
    /// interface by that name, never one by the final name. `macs`: the MACs it took,
    /// which no other jail may take while it is recorded.
    Link {
        name: String,
        ifindex: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tmp: Option<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        macs: Vec<String>,
    },
    /// A bridge we created, or share with the jail that did: removed by the last
    /// user to stop, when no member is left on it. `tmp` as for a link.
    Bridge {
        name: String,
        ifindex: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tmp: Option<String>,
    },
    /// A host alias we added (FreeBSD shared-IP): not one that existed before.
    Alias { iface: String, addr: String },
}

/// An address entry: `[IFACE|]ADDR[/PREFIX]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addr {
    pub iface: Option<String>,
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Addr {
    pub fn cidr(&self) -> String {
        format!("{}/{}", self.addr, self.prefix)
    }
    pub fn v6(&self) -> bool {
        self.addr.is_ipv6()
    }
}

/// One thing to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Make bridge `name` unless it exists.
    Bridge { name: String },
    /// A pair: `host` on the host (in `bridge`), the other end `inside` in the jail.
    Pair {
        host: String,
        tmp: String,
        inside: String,
        bridge: String,
        host_mac: String,
        jail_mac: String,
    },
    /// Linux shared-IP: a macvlan child of `parent`, made as `tmp`, `inside` in the
    /// jail.
    Macvlan {
        parent: String,
        tmp: String,
        inside: String,
        mac: String,
        /// The jail has IPv6 addresses on it (otherwise IPv6 is off on it).
        v6: bool,
    },
    /// FreeBSD shared-IP: an alias on a host interface.
    Alias { iface: String, addr: Addr },
    /// An address on interface `dev` in the jail.
    JailAddr { dev: String, addr: Addr },
    /// The jail's default route.
    Route { via: IpAddr },
}

/// Parse one `ip4_addr`/`ip6_addr` entry.
pub fn parse_addr(entry: &str, v6: bool) -> Result<Addr> {
    let bad = |why: &str| {
        invalid(format!(
            "{}: bad entry \"{entry}\" ({why}); accepted: [IFACE|]ADDRESS[/PREFIX]",
            if v6 { "ip6_addr" } else { "ip4_addr" }
        ))
    };
    let (iface, rest) = match entry.trim().split_once('|') {
        Some((i, r)) => (Some(i.to_string()), r),
        None => (None, entry.trim()),
    };
    if let Some(i) = &iface {
        check_ifname(i).map_err(|_| bad("interface name"))?;
    }
    let (a, p) = match rest.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (rest, None),
    };
    let addr: IpAddr = a.parse().map_err(|_| bad("address"))?;
    if addr.is_ipv6() != v6 {
        return Err(bad("address family"));
    }
    let max = if v6 { 128 } else { 32 };
    let prefix = match p {
        None => max,
        Some(p) => match (p.parse::<u8>(), p.parse::<std::net::Ipv4Addr>()) {
            (Ok(n), _) if n <= max => n,
            (_, Ok(mask))
                if !v6 && u32::from(mask).leading_ones() == u32::from(mask).count_ones() =>
            {
                u32::from(mask).count_ones() as u8
            }
            _ => return Err(bad("prefix")),
        },
    };
    Ok(Addr {
        iface,
        addr,
        prefix,
    })
}

/// An interface name we may pass to `ip`/`ifconfig`: letters, digits, `.`, `_`, `-`,
/// not starting with `-`, within IFNAMSIZ.
pub fn check_ifname(n: &str) -> Result<()> {
    let ok = !n.is_empty()
        && n != "."
        && n != ".."
        && n.len() <= IFNAME_MAX
        && !n.starts_with('-')
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "bad interface name \"{n}\": letters, digits, '.', '_', '-', at most {IFNAME_MAX}"
        )))
    }
}

/// An interface name for output: letters, digits and `.`, `_`, `-`, `@` as they are,
/// any other byte as `\xNN`.
pub fn escape_name(n: &str) -> String {
    let mut o = String::new();
    for b in n.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@') {
            o.push(b as char);
        } else {
            o.push_str(&format!("\\x{b:02x}"));
        }
    }
    o
}

/// `interfaces`: `vnetN:BRIDGE` pairs, as (N, BRIDGE).
pub fn parse_interfaces(s: &str) -> Result<Vec<(u32, String)>> {
    let mut out: Vec<(u32, String)> = Vec::new();
    for e in s
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty() && *e != "none")
    {
        let bad = || {
            invalid(format!(
                "interfaces: bad entry \"{e}\"; accepted: vnetN:BRIDGE,... (N 0 to 99)"
            ))
        };
        let (v, b) = e.split_once(':').ok_or_else(bad)?;
        let n: u32 = v
            .strip_prefix("vnet")
            .and_then(|n| n.parse().ok())
            .filter(|n| *n < 100)
            .ok_or_else(bad)?;
        check_ifname(b)?;
        if out.iter().any(|(m, _)| *m == n) {
            return Err(bad());
        }
        out.push((n, b.to_string()));
    }
    Ok(out)
}

/// The jail's part of host-side names: the first 10 letters or digits of its UUID.
pub fn short_id(uuid: &str) -> String {
    uuid.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(10)
        .collect::<String>()
        .to_ascii_lowercase()
}

/// A host-side name: `PREFIX<index>.<short uuid>` (at most 15 characters).
pub fn host_name(prefix: &str, index: u32, uuid: &str) -> String {
    let mut n = format!("{prefix}{index}.{}", short_id(uuid));
    n.truncate(IFNAME_MAX);
    n
}

/// A locally administered unicast MAC derived from the UUID, the interface's index
/// and its role (0: host end, 1: jail end).
pub fn derived_mac(uuid: &str, index: u32, role: u8) -> String {
    // FNV-1a, 64 bits: stable across builds and versions (unlike std's hasher)
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in uuid.bytes().chain(index.to_le_bytes()).chain([role]) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let b = h.to_be_bytes();
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        (b[0] & 0xfc) | 0x02,
        b[1],
        b[2],
        b[3],
        b[4],
        b[5]
    )
}

/// A MAC as written in `vnetN_mac` (12 hex digits, colons optional), as `aa:bb:..`.
pub fn parse_mac(s: &str) -> Option<String> {
    let hex: String = s.chars().filter(|c| *c != ':').collect();
    if hex.len() != 12 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let b = u8::from_str_radix(&hex[..2], 16).ok()?;
    if b & 1 == 1 {
        return None; // multicast
    }
    let h = hex.to_ascii_lowercase();
    Some(
        (0..6)
            .map(|i| &h[2 * i..2 * i + 2])
            .collect::<Vec<_>>()
            .join(":"),
    )
}

/// The MACs of vnetN: `vnetN_mac` ("HOST JAIL") when set, else derived.
pub fn macs(c: &JailConfig, n: u32) -> Result<(String, String)> {
    match c.vnet_macs.get(n as usize).cloned().flatten() {
        None => Ok((derived_mac(&c.uuid, n, 0), derived_mac(&c.uuid, n, 1))),
        Some(v) => {
            let parts: Vec<Option<String>> = v.split_whitespace().map(parse_mac).collect();
            match parts.as_slice() {
                [Some(h), Some(j)] if h != j => Ok((h.clone(), j.clone())),
                _ => Err(invalid(format!(
                    "vnet{n}_mac: bad value \"{v}\"; accepted: none, or two distinct \
                     unicast MACs (host end, jail end) separated by a space"
                ))),
            }
        }
    }
}

/// What start makes for the jail's network, in order. Empty for a jail without
/// addresses and without `vnet`.
pub fn plan(c: &JailConfig, os: Os) -> Result<Vec<Step>> {
    let mut addrs = Vec::new();
    super::net_dhcp::dhcp_ifaces(c, os)?; // `[IFACE|]DHCP`: a lease after the plan
    for e in c
        .ip4
        .iter()
        .filter(|e| super::net_dhcp::dhcp_entry(e).is_none())
    {
        addrs.push(parse_addr(e, false)?);
    }
    for e in &c.ip6 {
        addrs.push(parse_addr(e, true)?);
    }
    let mut steps = Vec::new();
    let routes = || -> Result<Vec<Step>> {
        let mut r = Vec::new();
        for (v, v6) in [(&c.defaultrouter, false), (&c.defaultrouter6, true)] {
            if let Some(v) = v {
                let via: IpAddr = v
                    .parse()
                    .ok()
                    .filter(|a: &IpAddr| a.is_ipv6() == v6)
                    .ok_or_else(|| {
                        invalid(format!(
                            "defaultrouter{}: bad address \"{v}\"",
                            if v6 { "6" } else { "" }
                        ))
                    })?;
                r.push(Step::Route { via });
            }
        }
        Ok(r)
    };
    if c.vnet {
        let ifs = parse_interfaces(&c.interfaces)?;
        for (n, bridge) in &ifs {
            if !steps.contains(&Step::Bridge {
                name: bridge.clone(),
            }) {
                steps.push(Step::Bridge {
                    name: bridge.clone(),
                });
            }
            let (host_mac, jail_mac) = macs(c, *n)?;
            steps.push(Step::Pair {
                host: host_name("vn", *n, &c.uuid),
                tmp: host_name("vj", *n, &c.uuid),
                inside: format!("vnet{n}"),
                bridge: bridge.clone(),
                host_mac,
                jail_mac,
            });
        }
        for a in addrs {
            let dev = a.iface.clone().unwrap_or_else(|| "vnet0".into());
            if !ifs.iter().any(|(n, _)| format!("vnet{n}") == dev) {
                return Err(invalid(format!(
                    "{}: interface {dev} of a vnet jail is not in interfaces=\"{}\"",
                    a.cidr(),
                    c.interfaces
                )));
            }
            steps.push(Step::JailAddr { dev, addr: a });
        }
        steps.extend(routes()?);
        return Ok(steps);
    }
    match os {
        Os::FreeBsd => {
            // addresses without an interface are the kernel's only (ip4.addr)
            for a in addrs {
                if let Some(iface) = a.iface.clone() {
                    steps.push(Step::Alias { iface, addr: a });
                }
            }
        }
        Os::Linux => {
            let mut parents: Vec<String> = Vec::new();
            for a in &addrs {
                let Some(i) = &a.iface else {
                    return Err(invalid(format!(
                        "{}: a shared-IP jail on Linux needs the host interface: IFACE|{}",
                        a.addr,
                        a.cidr()
                    )));
                };
                if !parents.contains(i) {
                    parents.push(i.clone());
                }
            }
            for (k, p) in parents.iter().enumerate() {
                steps.push(Step::Macvlan {
                    parent: p.clone(),
                    tmp: host_name("mv", k as u32, &c.uuid),
                    inside: p.clone(),
                    mac: derived_mac(&c.uuid, 100 + k as u32, 1),
                    v6: addrs.iter().any(|a| a.v6() && a.iface.as_ref() == Some(p)),
                });
            }
            for a in addrs {
                let dev = a.iface.clone().expect("checked above");
                steps.push(Step::JailAddr { dev, addr: a });
            }
            if !steps.is_empty() {
                steps.extend(routes()?);
            }
        }
    }
    Ok(steps)
}

/// The live addresses of a jail's interfaces, from `ip -o addr show` (Linux) or
/// `ifconfig -a` (FreeBSD) run on its stack: `(IFACE, [ADDR/PREFIX...])`, link-local
/// addresses left out, in the order shown.
pub fn parse_live(out: &str, os: Os) -> Vec<(String, Vec<String>)> {
    let mut v: Vec<(String, Vec<String>)> = Vec::new();
    let mut add = |iface: &str, a: String| {
        // a VNET jail names its interfaces: shown escaped; only real addresses kept
        let iface = &escape_name(iface);
        let valid = a.split_once('/').is_some_and(|(ip, p)| {
            ip.parse::<IpAddr>().is_ok() && p.parse::<u8>().is_ok_and(|p| p <= 128)
        });
        if a.starts_with("fe80:") || !valid {
            return;
        }
        match v.iter_mut().find(|(i, _)| i == iface) {
            Some((_, l)) => l.push(a),
            None => v.push((iface.to_string(), vec![a])),
        }
    };
    match os {
        Os::Linux => {
            for l in out.lines() {
                let f: Vec<&str> = l.split_whitespace().collect();
                if f.len() > 3 && matches!(f[2], "inet" | "inet6") {
                    add(f[1], f[3].to_string());
                }
            }
        }
        Os::FreeBsd => {
            let mut iface = String::new();
            for l in out.lines() {
                if !l.starts_with(char::is_whitespace) {
                    iface = l.split(':').next().unwrap_or("").to_string();
                    continue;
                }
                let f: Vec<&str> = l.split_whitespace().collect();
                let field = |k: &str| f.iter().position(|x| *x == k).and_then(|i| f.get(i + 1));
                match f.first() {
                    Some(&"inet") if f.len() > 1 => {
                        let bits = field("netmask")
                            .and_then(|m| u32::from_str_radix(m.trim_start_matches("0x"), 16).ok())
                            .map(u32::count_ones)
                            .unwrap_or(32);
                        add(&iface, format!("{}/{bits}", f[1]));
                    }
                    Some(&"inet6") if f.len() > 1 => {
                        let p = field("prefixlen").copied().unwrap_or("128");
                        let a = f[1].split('%').next().unwrap_or(f[1]);
                        add(&iface, format!("{a}/{p}"));
                    }
                    _ => {}
                }
            }
        }
    }
    v
}

#[cfg(test)]
#[path = "net_tests.rs"]
mod tests;
