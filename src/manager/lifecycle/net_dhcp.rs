//! DHCP for VNET jails (`ip4_addr="vnet0|DHCP"`, or `dhcp=on` for vnet0): once the
//! jail's interfaces are made, the jail's own DHCP client takes a lease on its own
//! network stack. It runs *inside* the jail (the jail layer's exec), so nothing a
//! DHCP server or the jail says is ever acted on by the host; the host only checks
//! afterwards, on the jail's stack by its kernel handle, that the interface has an
//! IPv4 address.
//!
//! - Linux: busybox `udhcpc -i IF -f -q -n -t 5 -T 1 -s /etc/jailctl-udhcpc.sh`, with a
//!   lease script jailctl writes into the jail's root. Packet sockets need
//!   CAP_NET_RAW in the jail: `allow_raw_sockets=1` is required.
//! - FreeBSD: `dhclient -c /etc/jailctl-dhclient.conf IF` (`timeout 5; retry 1;`).
//!
//! Nothing is made on the host: the address and routes live in the jail's stack and
//! go with it, so there is nothing to record or undo beyond the interfaces.

use std::path::Path;
use std::time::Duration;

use super::net;
use crate::manager::config::JailConfig;
use crate::manager::error::{invalid, Result};
use crate::manager::Manager;
use crate::sys::os::net::run_in;
use crate::sys::tool::Outcome;
use crate::sys::{Os, OS};

/// How long the DHCP client may take, all tries included, before start fails (fixed;
/// the client itself gives up after 5 discovers 1 s apart).
pub const DHCP_TIMEOUT: Duration = Duration::from_secs(20);

/// Where the Linux lease script goes, relative to the jail's root.
pub const LINUX_SCRIPT: &str = "etc/jailctl-udhcpc.sh";
/// Where the FreeBSD client configuration goes, relative to the jail's root.
pub const FREEBSD_CONF: &str = "etc/jailctl-dhclient.conf";

/// The interface of an `ip4_addr` entry `[IFACE|]DHCP` (vnet0 without IFACE).
pub fn dhcp_entry(e: &str) -> Option<String> {
    let (iface, a) = match e.trim().split_once('|') {
        Some((i, a)) => (i, a),
        None => ("vnet0", e.trim()),
    };
    a.eq_ignore_ascii_case("DHCP").then(|| iface.to_string())
}

/// The jail's interfaces that take a DHCP lease, checked: only a VNET jail, only its
/// own `vnetN` of `interfaces`, and (Linux) with packet sockets allowed.
pub fn dhcp_ifaces(c: &JailConfig, os: Os) -> Result<Vec<String>> {
    let mut out: Vec<String> = c.ip4.iter().filter_map(|e| dhcp_entry(e)).collect();
    if c.dhcp && !out.iter().any(|i| i == "vnet0") {
        out.insert(0, "vnet0".into());
    }
    if out.is_empty() {
        return Ok(out);
    }
    if !c.vnet {
        return Err(invalid(format!(
            "jail {}: DHCP (ip4_addr IFACE|DHCP or dhcp=on) needs vnet=on",
            c.label()
        )));
    }
    let ifs = net::parse_interfaces(&c.interfaces)?;
    for i in &out {
        if !ifs.iter().any(|(n, _)| format!("vnet{n}") == *i) {
            return Err(invalid(format!(
                "{i}|DHCP: interface {i} of a vnet jail is not in interfaces=\"{}\"",
                c.interfaces
            )));
        }
    }
    if os == Os::Linux && !c.allowed("allow_raw_sockets") {
        return Err(invalid(format!(
            "jail {}: its DHCP client needs packet sockets: set allow_raw_sockets=1",
            c.label()
        )));
    }
    Ok(out)
}

/// The Linux lease script (busybox udhcpc's `-s`): sets the leased address, and the
/// leased router as default route unless `defaultrouter` names one (`own_router`).
/// It runs in the jail, as the jail's root, on the jail's own stack.
pub fn lease_script(own_router: bool) -> String {
    let route = if own_router {
        ""
    } else {
        "        [ -n \"$router\" ] && ip route replace default via \"${router%% *}\" dev \"$interface\"\n"
    };
    format!(
        "#!/bin/sh\n\
         # written by jailctl at each start: the lease of a DHCP jail\n\
         case \"$1\" in\n\
         deconfig)\n        ip -4 addr flush dev \"$interface\"\n        ip link set dev \"$interface\" up\n        ;;\n\
         bound|renew)\n        ip -4 addr flush dev \"$interface\"\n        ip addr add \"$ip/${{mask:-24}}\" dev \"$interface\"\n{route}        ;;\n\
         esac\n\
         exit 0\n"
    )
}

/// The FreeBSD dhclient configuration: give up after 5 s.
pub fn dhclient_conf() -> String {
    "timeout 5;\nretry 1;\n".to_string()
}

/// The shell line run in the jail for interface `iface`.
pub fn client_command(os: Os, iface: &str) -> String {
    match os {
        Os::Linux => format!("udhcpc -i {iface} -f -q -n -t 5 -T 1 -s /{LINUX_SCRIPT}"),
        Os::FreeBsd => format!("/sbin/dhclient -c /{FREEBSD_CONF} {iface}"),
    }
}

/// Whether the live view of interface `iface` (`ip -o -4 addr show dev IF` or
/// `ifconfig IF inet`) has an IPv4 address.
pub fn has_lease(out: &str, os: Os, iface: &str) -> bool {
    net::parse_live(out, os)
        .iter()
        .any(|(i, a)| i == iface && a.iter().any(|a| !a.contains(':')))
}

impl Manager {
    /// Take the DHCP leases of a started jail (part of step "network"). Fails, naming
    /// DHCP, when the client gets none within [`DHCP_TIMEOUT`].
    pub(super) fn dhcp(&self, c: &JailConfig, kname: &str, root: &Path) -> Result<()> {
        let ifs = dhcp_ifaces(c, OS)?;
        if ifs.is_empty() {
            return Ok(());
        }
        let (rel, body) = match OS {
            Os::Linux => (LINUX_SCRIPT, lease_script(c.defaultrouter.is_some())),
            Os::FreeBsd => (FREEBSD_CONF, dhclient_conf()),
        };
        let written = self
            .host
            .write_in_root(root, Path::new(rel), body.as_bytes(), 0o755)
            .map_err(|e| invalid(format!("DHCP: writing /{rel} in the jail: {e}")))?;
        if !written {
            return Err(invalid(format!(
                "DHCP: the jail's root has no /etc for /{rel}"
            )));
        }
        let h = self.jail_ops.net_handle(kname)?;
        let (log, out) = self.open_console_log(&c.uuid)?;
        for i in &ifs {
            let cmd = client_command(OS, i);
            let fail = |why: String| {
                invalid(format!(
                    "DHCP on {i}: {why} (client: {cmd}; output in {})",
                    log.display()
                ))
            };
            match self
                .jail_ops
                .run_script(kname, &cmd, &out, DHCP_TIMEOUT)
                .map_err(|e| fail(e.to_string()))?
            {
                Outcome::Success => {}
                Outcome::Failed(st) => return Err(fail(format!("no lease ({st})"))),
                Outcome::TimedOut => {
                    return Err(fail(format!("no lease within {}s", DHCP_TIMEOUT.as_secs())))
                }
            }
            let args: Vec<String> = match OS {
                Os::Linux => ["-o", "-4", "addr", "show", "dev", i]
                    .map(String::from)
                    .into(),
                Os::FreeBsd => [i.as_str(), "inet"].map(String::from).into(),
            };
            let live = match OS {
                Os::Linux => run_in(&h, "ip", &args),
                Os::FreeBsd => run_in(&h, "ifconfig", &args),
            }
            .map_err(|e| fail(e.to_string()))?;
            if !has_lease(&live, OS, i) {
                return Err(fail("the client ended without an address".into()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_and_commands() {
        assert_eq!(dhcp_entry("vnet1|DHCP").as_deref(), Some("vnet1"));
        assert_eq!(dhcp_entry("dhcp").as_deref(), Some("vnet0"));
        assert_eq!(dhcp_entry("vnet0|198.18.0.2/24"), None);
        assert_eq!(
            client_command(Os::Linux, "vnet0"),
            "udhcpc -i vnet0 -f -q -n -t 5 -T 1 -s /etc/jailctl-udhcpc.sh"
        );
        assert_eq!(
            client_command(Os::FreeBsd, "vnet1"),
            "/sbin/dhclient -c /etc/jailctl-dhclient.conf vnet1"
        );
        assert!(dhclient_conf().contains("timeout 5;"));
        let s = lease_script(false);
        assert!(s.starts_with("#!/bin/sh\n"));
        assert!(s.contains("ip addr add \"$ip/${mask:-24}\" dev \"$interface\""));
        assert!(s.contains("ip route replace default"));
        assert!(!lease_script(true).contains("route"));
        assert!(has_lease(
            "5: vnet0    inet 198.18.2.50/24 brd 198.18.2.255 scope global vnet0\\n",
            Os::Linux,
            "vnet0"
        ));
        assert!(!has_lease("", Os::Linux, "vnet0"));
        assert!(has_lease(
            "vnet0: flags=8843<UP> mtu 1500\n\tinet 198.18.2.50 netmask 0xffffff00\n",
            Os::FreeBsd,
            "vnet0"
        ));
    }
}
