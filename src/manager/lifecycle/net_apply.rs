//! Carrying out a jail's network plan ([`super::net`]) and undoing exactly what was
//! recorded. Everything is done under one host-wide lock (bridges, names and MACs are
//! shared by all jails), and each object made is recorded in the run state before
//! the next command runs.

use std::fs;

use super::net::{self, NetRecord, Step};
use super::net_cmds::{self, At, Cmd};
use crate::manager::config::JailConfig;
use crate::manager::error::{invalid, io_at, ManagerError, Result};
use crate::manager::runstate::RunState;
use crate::manager::Manager;
use crate::sys::os::net::{if_index, run_in, run_with, write_sysctls, NetHandle};
use crate::sys::tool::{run, ToolError};
use crate::sys::{Os, OS};

/// The lock of the host's shared network objects (in the run directory's locks).
const HOST_LOCK: &str = "host-network";

/// A host interface's ifindex, if there is one by that name.
fn link_index(name: &str) -> Option<u32> {
    if_index(name)
}

/// A unique name to make an interface under (renamed once its ifindex is
/// recorded): nobody else makes one by it.
fn temp_name() -> String {
    let u = uuid::Uuid::new_v4().simple().to_string();
    format!("jt{}", &u[..12])
}

/// How many interfaces are members of bridge `name`.
fn bridge_members(name: &str) -> std::result::Result<usize, ToolError> {
    Ok(match OS {
        Os::Linux => {
            let out = run("ip", &["-j", "link", "show", "master", name])?;
            serde_json::from_str::<serde_json::Value>(&out)
                .ok()
                .and_then(|v| v.as_array().map(Vec::len))
                .unwrap_or(0)
        }
        Os::FreeBsd => run("ifconfig", &[name])?
            .lines()
            .filter(|l| l.trim_start().starts_with("member:"))
            .count(),
    })
}

/// The MACs of the host's interfaces.
fn host_macs() -> std::result::Result<Vec<String>, ToolError> {
    Ok(match OS {
        Os::Linux => {
            let out = run("ip", &["-j", "link", "show"])?;
            serde_json::from_str::<serde_json::Value>(&out)
                .ok()
                .and_then(|v| v.as_array().cloned())
                .unwrap_or_default()
                .iter()
                .filter_map(|l| l["address"].as_str().map(str::to_ascii_lowercase))
                .collect()
        }
        Os::FreeBsd => run("ifconfig", &["-a"])?
            .lines()
            .filter_map(|l| l.trim().strip_prefix("ether "))
            .map(|m| m.trim().to_ascii_lowercase())
            .collect(),
    })
}

/// Whether a FreeBSD host interface already carries `addr` (an alias we must neither
/// add nor remove).
fn host_has_addr(iface: &str, addr: &net::Addr) -> bool {
    let fam = if addr.v6() { "inet6" } else { "inet" };
    let want = format!("{fam} {} ", addr.addr);
    run("ifconfig", &[iface])
        .map(|o| {
            o.lines()
                .any(|l| format!("{} ", l.trim()).starts_with(&want))
        })
        .unwrap_or(false)
}

impl Manager {
    fn bridges_path(&self) -> std::path::PathBuf {
        self.run.join("net-bridges.json")
    }

    /// Bridges jailctl made and that are still in use, with their ifindex.
    fn our_bridges(&self) -> Vec<(String, Option<u32>)> {
        fs::read(self.bridges_path())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    fn write_bridges(&self, b: &[(String, Option<u32>)]) -> Result<()> {
        let p = self.bridges_path();
        crate::sys::files::write_atomic(&p, &serde_json::to_vec(b).expect("json"))
            .map_err(io_at(p.display()))
    }

    /// Make the jail's network (step "network" of start), recording each object in
    /// `st` (written out) before the next command.
    pub(super) fn network(
        &self,
        c: &JailConfig,
        kname: &str,
        uuid: &str,
        st: &mut RunState,
    ) -> Result<()> {
        let steps = net::plan(c, OS)?;
        if steps.is_empty() {
            return Ok(());
        }
        let _l = self.lock_jail(HOST_LOCK)?;
        let h = self.jail_ops.net_handle(kname)?;
        if OS == Os::Linux && h.is_host() {
            return Err(invalid(format!(
                "jail {}: it shares the host's network stack; its addresses would be the host's",
                c.label()
            )));
        }
        // MACs: none the host's interfaces or another jail's recorded ones have, and
        // each once in this jail
        let mut used: Vec<(String, String)> = host_macs()
            .map_err(|e| invalid(e.to_string()))?
            .into_iter()
            .map(|m| (m, "an interface of the host".to_string()))
            .collect();
        used.extend(self.jail_macs(uuid));
        for s in &steps {
            let (inside, mine) = match s {
                Step::Pair {
                    host_mac,
                    jail_mac,
                    inside,
                    ..
                } => (inside, vec![host_mac, jail_mac]),
                Step::Macvlan { inside, mac, .. } => (inside, vec![mac]),
                _ => continue,
            };
            for m in mine {
                if let Some((_, by)) = used.iter().find(|(u, _)| u == m) {
                    return Err(invalid(format!(
                        "{inside}: MAC {m} is in use by {by}; set other MACs with {inside}_mac"
                    )));
                }
                used.push((m.clone(), format!("this jail's {inside}")));
            }
        }
        for s in &steps {
            match s {
                Step::Bridge { name } => {
                    if let Some(idx) = link_index(name) {
                        // shared with the jails that use it if we made it; an
                        // administrator's bridge is only used
                        if self.our_bridges().contains(&(name.clone(), Some(idx))) {
                            self.record(
                                uuid,
                                st,
                                NetRecord::Bridge {
                                    name: name.clone(),
                                    ifindex: Some(idx),
                                    tmp: None,
                                },
                            )?;
                        }
                        continue;
                    }
                }
                Step::Alias { iface, addr } if host_has_addr(iface, addr) => {
                    // another running jail's (added by it): shared, and removed by the
                    // last one to stop; otherwise the host's own, only used
                    if self.alias_of_others(uuid, iface, &addr.cidr()) {
                        self.record(
                            uuid,
                            st,
                            NetRecord::Alias {
                                iface: iface.clone(),
                                addr: addr.cidr(),
                            },
                        )?;
                    }
                    continue;
                }
                _ => {}
            }
            self.run_step(s, &h, uuid, st)?;
        }
        Ok(())
    }

    /// The network records of the other jails' run states, with their UUIDs.
    fn other_records(&self, uuid: &str) -> Vec<(String, NetRecord)> {
        let Ok(rd) = fs::read_dir(self.run.join("state")) else {
            return vec![];
        };
        let mut out = Vec::new();
        for e in rd.flatten() {
            let p = e.path();
            let Some(other) = p.file_stem().map(|s| s.to_string_lossy().into_owned()) else {
                continue;
            };
            if other == uuid || p.extension().is_none_or(|x| x != "json") {
                continue;
            }
            for r in self.read_state(&other).net {
                out.push((other.clone(), r));
            }
        }
        out
    }

    /// The MACs other jails' run states record, with who has them.
    fn jail_macs(&self, uuid: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (other, r) in self.other_records(uuid) {
            if let NetRecord::Link { macs, .. } = r {
                out.extend(macs.into_iter().map(|m| (m, format!("jail {other}"))));
            }
        }
        out
    }

    /// Whether another jail recorded alias `iface`/`addr` (one of ours, shared).
    fn alias_of_others(&self, uuid: &str, iface: &str, addr: &str) -> bool {
        self.other_records(uuid).iter().any(
            |(_, r)| matches!(r, NetRecord::Alias { iface: i, addr: a } if i == iface && a == addr),
        )
    }

    fn record(&self, uuid: &str, st: &mut RunState, r: NetRecord) -> Result<()> {
        if let NetRecord::Bridge { name, ifindex, .. } = &r {
            let mut b = self.our_bridges();
            if !b.contains(&(name.clone(), *ifindex)) {
                b.push((name.clone(), *ifindex));
                self.write_bridges(&b)?;
            }
        }
        st.net.push(r);
        self.write_state(uuid, st)
    }

    fn run_step(&self, s: &Step, h: &NetHandle, uuid: &str, st: &mut RunState) -> Result<()> {
        let mut out = String::new();
        for Cmd {
            at,
            program,
            args,
            capture,
            record,
        } in net_cmds::commands(s, OS)
        {
            let mut args = net_cmds::fill(&args, &out);
            let mut record = record;
            // An interface about to be made: its name must be free (under the host
            // lock nobody of ours takes it meanwhile). It is recorded before it
            // exists, under the unique name it is made with (Linux) or the kernel's
            // name it has (FreeBSD), so that a start killed right after making it
            // leaves it recorded and nothing else is ever taken for it.
            if let Some(NetRecord::Link { name, tmp, .. } | NetRecord::Bridge { name, tmp, .. }) =
                &mut record
            {
                if link_index(name).is_some() {
                    return Err(invalid(format!(
                        "interface {name} exists on the host already; it is not ours to use"
                    )));
                }
                match OS {
                    Os::Linux => {
                        let t = temp_name();
                        for a in args.iter_mut().filter(|a| **a == *name) {
                            *a = t.clone();
                        }
                        *tmp = Some(t);
                    }
                    Os::FreeBsd => *tmp = Some(out.clone()),
                }
            }
            if let Some(r) = &record {
                st.net.push(r.clone());
                self.write_state(uuid, st)?;
            }
            let res = match at {
                At::Host => run(program, &args),
                At::HostNs => run_with(h, program, &args),
                At::Jail => run_in(h, program, &args),
                At::Sysctl => write_sysctls(h, &args),
            };
            let o = res.map_err(|e| invalid(e.to_string()))?;
            if capture {
                out = o.trim().to_string();
            }
            if let Some(mut r) = record {
                if let NetRecord::Link {
                    name, ifindex, tmp, ..
                }
                | NetRecord::Bridge {
                    name, ifindex, tmp, ..
                } = &mut r
                {
                    let made_as = match (OS, &tmp) {
                        (Os::Linux, Some(t)) => t.clone(),
                        _ => name.clone(),
                    };
                    *ifindex = link_index(&made_as);
                    let name = name.clone();
                    st.net.pop(); // the pending record, now with its ifindex
                    st.net.push(r.clone());
                    self.write_state(uuid, st)?;
                    if made_as != name {
                        run("ip", &["link", "set", "dev", &made_as, "name", &name])
                            .map_err(|e| invalid(e.to_string()))?;
                    }
                }
                st.net.pop();
                self.record(uuid, st, r)?;
            }
        }
        Ok(())
    }

    /// `runtime`'s view of a running jail's network: `net.IFACE=ADDR/PREFIX,...` for
    /// each interface of its own stack with addresses (none for a jail that shares
    /// the host's).
    pub(crate) fn net_runtime(&self, kname: &str) -> Vec<(String, String)> {
        let Ok(h) = self.jail_ops.net_handle(kname) else {
            return vec![];
        };
        if h.is_host() {
            return vec![];
        }
        let out = match OS {
            Os::Linux => run_in(&h, "ip", &["-o".into(), "addr".into(), "show".into()]),
            Os::FreeBsd => run_in(&h, "ifconfig", &["-a".into()]),
        };
        net::parse_live(&out.unwrap_or_default(), OS)
            .into_iter()
            .map(|(i, a)| (format!("net.{i}"), a.join(",")))
            .collect()
    }

    /// Undo what start recorded of the network, last first: an interface only if it
    /// is still the one we made (same name and ifindex), a bridge only when no member
    /// is left on it, an alias as recorded. Idempotent; what fails stays recorded.
    pub(crate) fn undo_network(&self, uuid: &str) -> Result<()> {
        let mut st = self.read_state(uuid);
        if st.net.is_empty() {
            return Ok(());
        }
        let _l = self.lock_jail(HOST_LOCK)?;
        let mut failed: Option<ManagerError> = None;
        let mut keep = Vec::new();
        while let Some(r) = st.net.pop() {
            if let Err(e) = self.undo_one(uuid, &r) {
                failed.get_or_insert(ManagerError::Step {
                    jail: uuid.to_string(),
                    step: "remove network objects".into(),
                    msg: e.to_string(),
                });
                keep.push(r);
            }
            let mut left = st.clone();
            left.net.extend(keep.iter().rev().cloned());
            self.write_state(uuid, &left)?;
        }
        failed.map_or(Ok(()), Err)
    }

    fn undo_one(&self, uuid: &str, r: &NetRecord) -> std::result::Result<(), ToolError> {
        match r {
            NetRecord::Link {
                name, ifindex, tmp, ..
            } => {
                // the interface that is still the one we made, under either name;
                // without ifindex only one by the unique name we made it under
                let Some(here) = ours_now(name, *ifindex, tmp) else {
                    return Ok(());
                };
                let cmd = net_cmds::undo_command(
                    &NetRecord::Link {
                        name: here.clone(),
                        ifindex: None,
                        tmp: None,
                        macs: vec![],
                    },
                    OS,
                );
                // a veth end goes with the jail's namespace, on the kernel's time
                if let Err(e) = run(cmd.program, &cmd.args) {
                    if link_index(&here).is_some() {
                        return Err(e);
                    }
                }
            }
            NetRecord::Bridge {
                name, ifindex, tmp, ..
            } => {
                let ours = (name.clone(), *ifindex);
                let forget = || {
                    let mut b = self.our_bridges();
                    b.retain(|x| *x != ours);
                    let _ = self.write_bridges(&b);
                };
                let Some(here) = ours_now(name, *ifindex, tmp) else {
                    // gone, or another bridge by that name now: not ours any more
                    forget();
                    return Ok(());
                };
                if bridge_members(&here)? == 0 {
                    let cmd = net_cmds::undo_command(
                        &NetRecord::Bridge {
                            name: here,
                            ifindex: None,
                            tmp: None,
                        },
                        OS,
                    );
                    run(cmd.program, &cmd.args)?;
                    forget();
                }
            }
            NetRecord::Alias { iface, addr } if self.alias_of_others(uuid, iface, addr) => {
                // still used by another running jail: the last one removes it
            }
            NetRecord::Alias { iface, addr } => {
                // recorded before it was added: only if it is there
                let there = net::parse_addr(&format!("{iface}|{addr}"), addr.contains(':'))
                    .map(|a| host_has_addr(iface, &a))
                    .unwrap_or(true);
                if there {
                    let cmd = net_cmds::undo_command(r, OS);
                    run(cmd.program, &cmd.args)?;
                }
            }
        }
        Ok(())
    }
}

/// The name under which the interface a record describes is on the host now, if it
/// is still the one we made: the final name or the one it was made under, with the
/// recorded ifindex; for a record still without ifindex, only the unique (Linux) or
/// kernel-given (FreeBSD) name it was made under, never the final name alone.
fn ours_now(name: &str, ifindex: Option<u32>, tmp: &Option<String>) -> Option<String> {
    match ifindex {
        Some(i) => std::iter::once(name)
            .chain(tmp.as_deref())
            .find(|n| link_index(n) == Some(i))
            .map(str::to_string),
        None => tmp
            .as_deref()
            .filter(|t| link_index(t).is_some())
            .map(str::to_string),
    }
}
