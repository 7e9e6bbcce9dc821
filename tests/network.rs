//! Jail networking (issue 13) on the directory backend, with real kernel objects the
//! test makes itself: an "uplink" veth pair whose far end sits in a network namespace
//! of the test (the host side a shared-IP jail talks to), bridges, and the veth pairs
//! and macvlans jailctl makes. Only 198.18.0.0/15 is used; the machine's own
//! interfaces are never touched. Needs root, iproute2 and busybox.
#![cfg(target_os = "linux")]

mod common;

use std::process::Command;
use std::sync::Mutex;

use common::manager_env::{self, Env, Kind, Setup};

const SETUP: Setup = Setup {
    dir_prefix: "jd-net-",
    pool_prefix: "jdn",
    archives: &[("base.txz", "-J")],
};

fn sh(cmd: &str) -> (bool, String) {
    let o = Command::new("sh").args(["-c", cmd]).output().unwrap();
    let mut s = String::from_utf8_lossy(&o.stdout).into_owned();
    s.push_str(&String::from_utf8_lossy(&o.stderr));
    (o.status.success(), s)
}

fn must(cmd: &str) -> String {
    let (ok, out) = sh(cmd);
    assert!(ok, "{cmd}: {out}");
    out
}

/// The host's interface names.
fn links() -> Vec<String> {
    let out = must("ip -o link show");
    out.lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap().to_string())
        .collect()
}

fn busybox() -> String {
    for p in ["/bin/busybox", "/usr/bin/busybox"] {
        if std::path::Path::new(p).exists() {
            return p.into();
        }
    }
    panic!("busybox is missing on the host: apt-get install -y busybox-static");
}

/// What the test made on the host, removed even when it fails.
struct Made {
    links: Vec<String>,
    netns: Vec<String>,
}

impl Drop for Made {
    fn drop(&mut self) {
        for l in &self.links {
            let _ = sh(&format!("ip link del {l} 2>/dev/null"));
        }
        for n in &self.netns {
            let _ = sh(&format!("ip netns del {n} 2>/dev/null"));
        }
    }
}

/// The UUID's part of host-side names.
fn short_of(uuid: &str) -> String {
    uuid.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(10)
        .collect()
}

fn jail_ip(e: &Env, tag: &str, args: &str) -> String {
    let mut a = vec!["exec", tag, "/bin/busybox", "ip"];
    a.extend(args.split_whitespace());
    e.ok(&a)
}

/// The tests compare the host's link list before and after: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn shared_ip_vnet_bridges_and_exact_teardown() {
    let _g = serial();
    assert!(
        sh("command -v ip").0,
        "iproute2 is missing: apt-get install -y iproute2"
    );
    let bb = busybox();
    let id = std::process::id() % 100000;
    let peer_ns = format!("jnp{id}");
    let (up, up_peer, pre_br, new_br) = (
        format!("jup{id}"),
        format!("jupp{id}"),
        format!("jbp{id}"),
        format!("jbn{id}"),
    );
    let _made = Made {
        links: vec![up.clone(), pre_br.clone(), new_br.clone()],
        netns: vec![peer_ns.clone()],
    };
    // the uplink: a veth pair, its far end in the test's namespace at 198.18.0.1
    must(&format!("ip netns add {peer_ns}"));
    must(&format!("ip link add {up} type veth peer name {up_peer}"));
    must(&format!("ip link set {up_peer} netns {peer_ns}"));
    must(&format!(
        "ip -n {peer_ns} addr add 198.18.0.1/24 dev {up_peer} && ip -n {peer_ns} link set {up_peer} up && ip link set {up} up"
    ));
    // a pre-existing bridge with a host address on it
    must(&format!(
        "ip link add {pre_br} type bridge && ip addr add 198.18.1.1/24 dev {pre_br} && ip link set {pre_br} up"
    ));
    // the test's own uplink takes no router advertisement (it is the host's)
    for k in ["accept_ra", "autoconf"] {
        std::fs::write(format!("/proc/sys/net/ipv6/conf/{up}/{k}"), "0").unwrap();
    }
    must(&format!(
        "ip -n {peer_ns} addr add fe80::1/64 dev {up_peer} nodad"
    ));
    let send_ra = common::hostile::compile_static("send_ra");
    let before = links();

    let e = Env::setup(Kind::Dir, &SETUP);
    e.fetch();

    // ---- shared-IP: a macvlan of the uplink carrying exactly its address
    e.create(&[
        "tag=s1",
        &format!("ip4_addr={up}|198.18.0.10/24"),
        "defaultrouter=198.18.0.1",
    ]);
    e.ok(&["start", "s1"]);
    let a = jail_ip(&e, "s1", "-o addr show");
    // the addresses but for link-local ones: lo's and its own, nothing of the host's
    let inet: Vec<&str> = a
        .lines()
        .filter(|l| (l.contains(" inet ") || l.contains(" inet6 ")) && !l.contains(" fe80:"))
        .filter_map(|l| l.split_whitespace().nth(3))
        .collect();
    assert_eq!(
        inet,
        ["127.0.0.1/8", "::1/128", "198.18.0.10/24"],
        "only lo and its own address:\n{a}"
    );
    assert!(
        a.contains("inet 198.18.0.10/24") && a.contains("inet 127.0.0.1/8"),
        "{a}"
    );
    assert!(
        a.contains(&format!(": {up} ")) || a.contains(&format!(": {up}@")),
        "named as the uplink inside:\n{a}"
    );
    let r = jail_ip(&e, "s1", "route show");
    assert!(r.contains("default via 198.18.0.1"), "{r}");
    must(&format!(
        "ip netns exec {peer_ns} {bb} ping -c1 -W3 198.18.0.10"
    ));
    // the jail cannot add an address of its choosing
    let o = e.run(&[
        "exec",
        "s1",
        "/bin/busybox",
        "ip",
        "addr",
        "add",
        "198.18.0.99/24",
        "dev",
        &up,
    ]);
    assert!(
        !o.status.success(),
        "a shared-IP jail changed its addresses"
    );
    assert!(!jail_ip(&e, "s1", "-o addr show").contains("198.18.0.99"));
    // a router on the LAN advertises a prefix and itself: a shared-IP jail takes
    // neither (only its own addresses), with or without IPv6 addresses of its own
    e.create(&["tag=s6", &format!("ip6_addr={up}|2001:db8:7::10/64")]);
    e.ok(&["start", "s6"]);
    must(&format!(
        "ip netns exec {peer_ns} {} {up_peer} 10",
        send_ra.display()
    ));
    std::thread::sleep(std::time::Duration::from_millis(500));
    for t in ["s1", "s6"] {
        let a = jail_ip(&e, t, "-o addr show");
        assert!(
            !a.contains("2001:db8:42:"),
            "{t} took a SLAAC address:\n{a}"
        );
        let r = jail_ip(&e, t, "-6 route show");
        assert!(
            !r.contains("default"),
            "{t} took an RA's default route:\n{r}"
        );
    }
    let a = jail_ip(&e, "s1", "-o addr show");
    assert!(
        !a.contains(" inet6 fe80:"),
        "IPv6 is on without ip6_addr:\n{a}"
    );
    let a = jail_ip(&e, "s6", "-o addr show");
    assert!(a.contains("inet6 2001:db8:7::10/64"), "{a}");
    for t in ["s1", "s6"] {
        e.ok(&["stop", t]);
    }
    assert_eq!(
        links(),
        before,
        "a shared-IP jail's stop left or took interfaces"
    );

    // ---- VNET: two jails on the pre-existing bridge, one on a bridge we make
    for (tag, addr) in [("v1", "198.18.1.11"), ("v2", "198.18.1.12")] {
        e.create(&[
            &format!("tag={tag}"),
            "vnet=on",
            &format!("interfaces=vnet0:{pre_br}"),
            &format!("ip4_addr=vnet0|{addr}/24"),
            "defaultrouter=198.18.1.1",
            // ping needs a raw socket, as on FreeBSD
            "allow_raw_sockets=1",
        ]);
        e.ok(&["start", tag]);
    }
    let u1 = e.ok(&["get", "uuid", "v1"]).trim().to_string();
    let host_end = format!("vn0.{}", short_of(&u1));
    assert!(host_end.len() <= 15);
    let l = must(&format!("ip -o link show dev {host_end}"));
    assert!(l.contains(&format!("master {pre_br}")), "{l}");
    let a1 = jail_ip(&e, "v1", "-o addr show dev vnet0");
    assert!(a1.contains("inet 198.18.1.11/24"), "{a1}");
    let rt = e.ok(&["runtime", "v1"]);
    assert!(rt.lines().any(|l| l == "net.vnet0=198.18.1.11/24"), "{rt}");
    let r1 = jail_ip(&e, "v1", "route show");
    assert!(r1.contains("default via 198.18.1.1"), "{r1}");
    // host end, jail end and the other jail: distinct MACs, stable across restarts
    let mac = |tag: &str| {
        let o = jail_ip(&e, tag, "-o link show dev vnet0");
        o.split("link/ether ")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .to_string()
    };
    let (m1, m2) = (mac("v1"), mac("v2"));
    let hm1 = must(&format!("cat /sys/class/net/{host_end}/address"))
        .trim()
        .to_string();
    assert!(m1 != m2 && m1 != hm1 && m2 != hm1, "{m1} {m2} {hm1}");
    // they reach the host side on the bridge and each other
    must(&format!("{bb} ping -c1 -W3 198.18.1.11"));
    must(&format!("{bb} ping -c1 -W3 198.18.1.12"));
    let o = e.run(&[
        "exec",
        "v1",
        "/bin/busybox",
        "ping",
        "-c1",
        "-W3",
        "198.18.1.12",
    ]);
    assert!(
        o.status.success(),
        "v1 cannot ping v2: {}",
        common::manager_env::text(&o.stderr)
    );
    e.ok(&["restart", "v1"]);
    assert_eq!(mac("v1"), m1, "vnet0's MAC changed over a restart");
    // a bridge that does not exist is made, and removed with its last jail
    e.create(&[
        "tag=v3",
        "vnet=on",
        &format!("interfaces=vnet0:{new_br}"),
        "ip4_addr=vnet0|198.18.2.3/24",
    ]);
    e.ok(&["start", "v3"]);
    assert!(links().contains(&new_br), "{new_br} was not made");
    for t in ["v1", "v2", "v3"] {
        e.ok(&["stop", t]);
    }
    assert_eq!(
        links(),
        before,
        "stop left interfaces or bridges, or removed some"
    );
    let b = must(&format!("ip -o addr show dev {pre_br}"));
    assert!(
        b.contains("198.18.1.1/24"),
        "the bridge's own address went: {b}"
    );

    // ---- a failed start (the second interface's route is not reachable) leaves
    // nothing behind
    let f1 = e.create(&[
        "tag=f1",
        "vnet=on",
        &format!("interfaces=vnet0:{new_br},vnet1:{pre_br}"),
        "ip4_addr=vnet0|198.18.3.5/24,vnet1|198.18.1.20/24",
        "defaultrouter=198.18.99.1",
    ]);
    let err = e.fails(&["start", "f1"]);
    assert!(err.contains("network"), "{err}");
    assert_eq!(links(), before, "a failed start left interfaces: {err}");
    // list -H: JID UUID BOOT STATE TAG ..., tab-separated
    let row = e.row(&f1).expect("f1 is listed");
    assert_eq!(
        (row[4].as_str(), row[3].as_str()),
        ("f1", "down"),
        "{row:?}"
    );

    // ---- a start killed (-9) once the network is made: the next stop removes all
    let k = e.create(&[
        "tag=k1",
        "vnet=on",
        &format!("interfaces=vnet0:{new_br}"),
        "ip4_addr=vnet0|198.18.2.7/24",
        "exec_poststart=sleep 5",
    ]);
    let k_end = format!("vn0.{}", short_of(&k));
    let mut kid = e.spawn(&["start", "k1"], &[]);
    let t0 = std::time::Instant::now();
    while !links().contains(&k_end) && t0.elapsed() < std::time::Duration::from_secs(60) {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(links().contains(&k_end), "k1's network was never made");
    std::thread::sleep(std::time::Duration::from_millis(300));
    kid.kill9();
    assert!(links().contains(&new_br));
    e.ok(&["stop", "k1"]);
    assert_eq!(
        links(),
        before,
        "a killed start, then stop, left interfaces"
    );
    drop(e);
    let _ = manager_env::CMD_LIMIT;
}

/// A VNET jail's root has CAP_NET_ADMIN over its own stack only: once its veth links
/// it to the host's netns (the kernel gives the host's netns an id in the jail's), it
/// still cannot list, delete or change a host interface through IFLA_TARGET_NETNSID.
#[test]
fn vnet_jail_cannot_reach_the_host_stack_by_netns_id() {
    let _g = serial();
    let id = std::process::id() % 100000;
    let (victim, victim_peer, br) = (format!("jvv{id}"), format!("jvw{id}"), format!("jbv{id}"));
    let _made = Made {
        links: vec![victim.clone(), br.clone()],
        netns: vec![],
    };
    must(&format!(
        "ip link add {victim} type veth peer name {victim_peer}"
    ));
    let before = links();
    let attack = common::hostile::compile_static("nsid_attack");

    let e = Env::setup(Kind::Dir, &SETUP);
    e.fetch();
    let u = e.create(&[
        "tag=a1",
        "vnet=on",
        &format!("interfaces=vnet0:{br}"),
        "ip4_addr=vnet0|198.18.4.2/24",
    ]);
    e.ok(&["start", "a1"]);
    let dst = e.root(&u).join("bin/nsid_attack");
    std::fs::copy(&attack, &dst).unwrap();
    let out = e.ok(&["exec", "a1", "/bin/nsid_attack", &victim]);
    // the jail does see its veth's peer netns by id: the attack path is there
    assert!(
        out.lines().any(|l| l.starts_with("LINKNSID ")),
        "no link-netnsid seen inside the jail (test premise):\n{out}"
    );
    let tries: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("GET ") || l.starts_with("DEL "))
        .collect();
    assert!(tries.len() >= 16, "{out}");
    for t in &tries {
        let err: i32 = t.rsplit(' ').next().unwrap().parse().unwrap();
        assert_ne!(err, 0, "a VNET jail reached the host's stack: {t}\n{out}");
    }
    // with the host's id: refused for want of a capability there
    let host_ids: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("LINKNSID "))
        .collect();
    for t in &tries {
        let mut w = t.split(' ');
        let (_, nsid, err) = (w.next(), w.next().unwrap(), w.next().unwrap());
        if host_ids.contains(&nsid) {
            assert!(
                err == "1" || err == "13",
                "not refused with EPERM/EACCES: {t}\n{out}"
            );
        }
    }
    assert!(links().contains(&victim), "the host's {victim} went");
    e.ok(&["stop", "a1"]);
    assert_eq!(links(), before, "stop left or took interfaces");
    drop(e);
}

/// A network undo that fails (here: the host's `ip` refuses to delete our bridge) keeps
/// its records in the run state, after a failed start as after a stop, and the next
/// `stop` or `destroy` removes what is left.
#[test]
fn a_failed_network_undo_is_kept_and_finished_later() {
    let _g = serial();
    let id = std::process::id() % 100000;
    let br = format!("jbd{id}");
    let wrap = std::env::temp_dir().join(format!("jd-netwrap-{id}"));
    let _made = Made {
        links: vec![br.clone()],
        netns: vec![],
    };
    let real_ip = must("command -v ip").trim().to_string();
    std::fs::create_dir_all(&wrap).unwrap();
    let script = wrap.join("ip");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ncase \" $* \" in *\" del\"*\" {br} \"*) echo 'ip: refused by the test' >&2; exit 1;; esac\nexec {real_ip} \"$@\"\n"
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        wrap.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let before = links();

    let e = Env::setup(Kind::Dir, &SETUP);
    e.fetch();
    let wrapped = |args: &[&str]| {
        let mut c = e.cmd();
        c.env("PATH", &path).args(args);
        c.output().unwrap()
    };
    for (tag, finish) in [("d1", "stop"), ("d2", "destroy")] {
        e.create(&[
            &format!("tag={tag}"),
            "vnet=on",
            &format!("interfaces=vnet0:{br}"),
            "ip4_addr=vnet0|198.18.5.2/24",
            // not reachable: the start fails at step "network", after the bridge
            "defaultrouter=198.18.99.1",
        ]);
        let o = wrapped(&["start", tag]);
        let err = common::manager_env::text(&o.stderr);
        assert!(!o.status.success(), "{tag} started");
        assert!(err.contains("refused by the test"), "{err}");
        assert!(links().contains(&br), "{br} went despite the refusal");
        // recorded still: the next command finishes the undo
        let o = if finish == "stop" {
            e.run(&["stop", tag])
        } else {
            e.run(&["destroy", "-f", tag])
        };
        assert!(
            o.status.success(),
            "{finish} {tag}: {}",
            common::manager_env::text(&o.stderr)
        );
        assert_eq!(
            links(),
            before,
            "{finish} after a failed undo left or took interfaces"
        );
    }
    // the same after a stop whose undo failed
    e.create(&[
        "tag=d3",
        "vnet=on",
        &format!("interfaces=vnet0:{br}"),
        "ip4_addr=vnet0|198.18.5.3/24",
    ]);
    e.ok(&["start", "d3"]);
    let o = wrapped(&["stop", "d3"]);
    assert!(!o.status.success(), "the refused delete was not reported");
    assert!(links().contains(&br));
    e.ok(&["destroy", "-f", "d3"]);
    assert_eq!(
        links(),
        before,
        "destroy after a failed stop left interfaces"
    );
    drop(e);
    let _ = std::fs::remove_dir_all(&wrap);
}

/// No two jails (nor two interfaces of one) get the same MAC, and an undo never takes
/// an interface by its name alone: a record a killed start left without ifindex
/// removes only the unique name the interface was being made under.
#[test]
fn unique_macs_and_no_removal_by_name_alone() {
    let _g = serial();
    let id = std::process::id() % 100000;
    let br = format!("jbm{id}");
    let _made = Made {
        links: vec![br.clone()],
        netns: vec![],
    };
    let before = links();
    let e = Env::setup(Kind::Dir, &SETUP);
    e.fetch();
    let mac = "02:aa:00:00:00:01 02:aa:00:00:00:02";
    let vnet = |tag: &str, extra: &[&str]| {
        let mut a = vec![
            format!("tag={tag}"),
            "vnet=on".to_string(),
            format!("interfaces=vnet0:{br}"),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        e.create(&a)
    };
    vnet("m1", &[&format!("vnet0_mac={mac}")]);
    // the same jail end (in m1's own stack, invisible on the host)
    vnet("m2", &["vnet0_mac=02:aa:00:00:00:09 02:aa:00:00:00:02"]);
    e.ok(&["start", "m1"]);
    let err = e.fails(&["start", "m2"]);
    assert!(
        err.contains("02:aa:00:00:00:02") && err.contains("in use by jail"),
        "{err}"
    );
    e.ok(&["stop", "m1"]);
    // once m1 is stopped its MACs are free
    e.ok(&["start", "m2"]);
    e.ok(&["stop", "m2"]);
    // the same MAC on two interfaces of one jail
    let bad = vnet(
        "m3",
        &[
            &format!("interfaces=vnet0:{br},vnet1:{br}"),
            &format!("vnet0_mac={mac}"),
            "vnet1_mac=02:aa:00:00:00:03 02:aa:00:00:00:02",
        ],
    );
    let err = e.fails(&["start", "m3"]);
    assert!(err.contains("this jail's vnet0"), "{err}");
    assert_eq!(links(), before, "refused starts left interfaces");

    // a record left without ifindex: an interface by the final name is not ours
    // (an administrator's made since); one by the unique name it was made under is
    let final_name = format!("vn0.{}", short_of(&bad));
    let tmp = format!("jt{:012x}", id);
    let _made2 = Made {
        links: vec![final_name.clone(), tmp.clone()],
        netns: vec![],
    };
    must(&format!(
        "ip link add name {final_name} type veth peer name jvq{id}"
    ));
    must(&format!(
        "ip link add name {tmp} type veth peer name jvr{id}"
    ));
    let run = e
        .cmd()
        .get_envs()
        .find(|(k, _)| *k == "JAILCTL_RUN")
        .and_then(|(_, v)| v.map(std::path::PathBuf::from))
        .unwrap();
    std::fs::create_dir_all(run.join("state")).unwrap();
    for (name, t) in [(&final_name, None), (&final_name, Some(&tmp))] {
        let rec = match t {
            None => format!(r#"{{"kind":"link","name":"{name}","ifindex":null}}"#),
            Some(t) => format!(r#"{{"kind":"link","name":"{name}","ifindex":null,"tmp":"{t}"}}"#),
        };
        std::fs::write(
            run.join("state").join(format!("{bad}.json")),
            format!(r#"{{"mounts":[],"jid":null,"net":[{rec}],"phase":"starting"}}"#),
        )
        .unwrap();
        e.ok(&["stop", "m3"]);
        assert!(
            links().contains(&final_name),
            "{final_name}, not made by us, was removed by name"
        );
    }
    assert!(
        !links().contains(&tmp),
        "{tmp}, made under a unique name, was not removed"
    );
    must(&format!("ip link del dev {final_name}"));
    assert_eq!(links(), before);
    drop(e);
}

/// A dnsmasq the test started, killed when dropped.
struct Dnsmasq(std::process::Child);

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A DHCP jail's lease from a dnsmasq of the test, and a clean failure without one,
/// on both backends (the directory one, then ZFS).
#[test]
fn a_dhcp_jail_gets_its_lease_and_fails_cleanly_without_a_server() {
    let _g = serial();
    assert!(
        sh("command -v dnsmasq").0,
        "dnsmasq is missing: apt-get install -y dnsmasq-base"
    );
    let id = std::process::id() % 100000;
    let (ns, br, v, vp) = (
        format!("jdd{id}"),
        format!("jbd{id}"),
        format!("jdv{id}"),
        format!("jdvp{id}"),
    );
    let _made = Made {
        links: vec![v.clone(), br.clone()],
        netns: vec![ns.clone()],
    };
    // the server's side: a namespace of the test at 198.18.4.1, on the test's bridge
    must(&format!("ip netns add {ns}"));
    must(&format!(
        "ip link add {br} type bridge && ip link set {br} up && \
         ip link add {v} type veth peer name {vp} && ip link set {v} master {br} up && \
         ip link set {vp} netns {ns} && ip -n {ns} addr add 198.18.4.1/24 dev {vp} && \
         ip -n {ns} link set {vp} up"
    ));
    let leases = tempfile_path(&format!("jd-leases-{id}"));
    let server = || {
        Dnsmasq(
            Command::new("ip")
                .args(["netns", "exec", &ns, "dnsmasq", "--keep-in-foreground"])
                .args(["--conf-file=/dev/null", "--port=0", "--user=root"])
                .arg(format!("--interface={vp}"))
                .args(["--bind-interfaces", "--no-hosts", "--no-resolv"])
                .arg("--dhcp-range=198.18.4.50,198.18.4.99,255.255.255.0,1h")
                .arg("--dhcp-option=3,198.18.4.1")
                .arg(format!("--dhcp-leasefile={}", leases.display()))
                .arg(format!("--pid-file={}.pid", leases.display()))
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("dnsmasq runs"),
        )
    };
    let before = links();
    manager_env::both(&SETUP, |e| {
        e.fetch();
        let d = e.create(&[
            "tag=d1",
            "vnet=on",
            &format!("interfaces=vnet0:{br}"),
            "ip4_addr=vnet0|DHCP",
            // the client's packet sockets
            "allow_raw_sockets=1",
        ]);
        {
            let _srv = server();
            std::thread::sleep(std::time::Duration::from_millis(500));
            e.ok(&["start", "d1"]);
            let a = jail_ip(e, "d1", "-o -4 addr show dev vnet0");
            assert!(a.contains("inet 198.18.4."), "no lease on vnet0:\n{a}");
            let r = jail_ip(e, "d1", "route show");
            assert!(r.contains("default via 198.18.4.1"), "{r}");
            let rt = e.ok(&["runtime", "d1"]);
            assert!(
                rt.lines().any(|l| l.starts_with("net.vnet0=198.18.4.")),
                "{rt}"
            );
            // the host reaches the jail from the server's side
            let addr = a.split("inet ").nth(1).unwrap().split('/').next().unwrap();
            must(&format!(
                "ip netns exec {ns} {} ping -c1 -W3 {addr}",
                busybox()
            ));
            e.ok(&["stop", "d1"]);
            assert_eq!(links(), before, "stop left or took interfaces");
        }
        // no server: start fails within the bound, naming DHCP, and leaves nothing
        let (o, took) = e.timed(&["start", "d1"]);
        let err = common::manager_env::text(&o.stderr);
        assert!(!o.status.success(), "started without a DHCP server");
        assert!(err.contains("DHCP") && err.contains("network"), "{err}");
        assert!(took < std::time::Duration::from_secs(30), "took {took:?}");
        assert_eq!(
            links(),
            before,
            "a failed DHCP start left interfaces: {err}"
        );
        let row = e.row(&d).expect("d1 is listed");
        assert_eq!(row[3].as_str(), "down", "{row:?}");
    });
    let _ = std::fs::remove_file(&leases);
    let _ = std::fs::remove_file(format!("{}.pid", leases.display()));
}

fn tempfile_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(name)
}

/// The basics on both backends (the directory one, then ZFS): a shared-IP jail sees
/// only its own address and is reachable at it; two VNET jails on a bridge of the
/// test reach the host side and each other; stop leaves the host's links as before.
#[test]
fn shared_ip_and_vnet_basics_on_both_backends() {
    let _g = serial();
    let bb = busybox();
    let id = std::process::id() % 100000;
    let (ns, up, up_peer, br) = (
        format!("jbn{id}"),
        format!("jbu{id}"),
        format!("jbup{id}"),
        format!("jbb{id}"),
    );
    let _made = Made {
        links: vec![up.clone(), br.clone()],
        netns: vec![ns.clone()],
    };
    must(&format!("ip netns add {ns}"));
    must(&format!(
        "ip link add {up} type veth peer name {up_peer} && ip link set {up_peer} netns {ns} && \
         ip -n {ns} addr add 198.18.5.1/24 dev {up_peer} && ip -n {ns} link set {up_peer} up && \
         ip link set {up} up && \
         ip link add {br} type bridge && ip addr add 198.18.6.1/24 dev {br} && ip link set {br} up"
    ));
    let before = links();
    manager_env::both(&SETUP, |e| {
        e.fetch();
        e.create(&[
            "tag=b1",
            &format!("ip4_addr={up}|198.18.5.10/24"),
            "defaultrouter=198.18.5.1",
        ]);
        e.ok(&["start", "b1"]);
        let a = jail_ip(e, "b1", "-o addr show");
        let inet: Vec<&str> = a
            .lines()
            .filter(|l| (l.contains(" inet ") || l.contains(" inet6 ")) && !l.contains(" fe80:"))
            .filter_map(|l| l.split_whitespace().nth(3))
            .collect();
        assert_eq!(inet, ["127.0.0.1/8", "::1/128", "198.18.5.10/24"], "{a}");
        let r = jail_ip(e, "b1", "route show");
        assert!(r.contains("default via 198.18.5.1"), "{r}");
        // the previous backend's jail had this address with another MAC
        must(&format!(
            "ip -n {ns} neigh flush all && ip neigh flush dev {br}"
        ));
        must(&format!("ip netns exec {ns} {bb} ping -c1 -W3 198.18.5.10"));
        for (t, addr) in [("b2", "198.18.6.11"), ("b3", "198.18.6.12")] {
            e.create(&[
                &format!("tag={t}"),
                "vnet=on",
                &format!("interfaces=vnet0:{br}"),
                &format!("ip4_addr=vnet0|{addr}/24"),
                "defaultrouter=198.18.6.1",
                "allow_raw_sockets=1",
            ]);
            e.ok(&["start", t]);
            must(&format!("{bb} ping -c1 -W3 {addr}"));
        }
        e.ok(&[
            "exec",
            "b2",
            "/bin/busybox",
            "ping",
            "-c1",
            "-W3",
            "198.18.6.12",
        ]);
        for t in ["b1", "b2", "b3"] {
            e.ok(&["stop", t]);
        }
        assert_eq!(links(), before, "stop left or took interfaces");
    });
}

/// `ip4=disable` (or `ip6=disable`): on Linux a network stack of the jail's own with
/// only lo; without it (and without addresses) the jail shares the host's.
#[test]
fn ip4_disable_leaves_only_lo() {
    let _g = serial();
    let before = links();
    let e = Env::setup(Kind::Dir, &SETUP);
    e.fetch();
    e.create(&["tag=n1", "ip4=disable"]);
    e.create(&["tag=n2", "ip4=inherit"]);
    e.ok(&["start", "n1"]);
    e.ok(&["start", "n2"]);
    let l = jail_ip(&e, "n1", "-o link show");
    let names: Vec<&str> = l.lines().filter_map(|l| l.split(": ").nth(1)).collect();
    assert_eq!(names, ["lo"], "{l}");
    let a = jail_ip(&e, "n1", "-o -4 addr show");
    assert!(
        a.lines().all(|l| l.contains(" lo ")),
        "an address other than lo's: {a}"
    );
    let l2 = jail_ip(&e, "n2", "-o link show");
    assert!(l2.lines().count() > 1, "inherit: the host's links:\n{l2}");
    // disable with addresses is refused, naming both
    e.create(&["tag=n3", "ip4=disable", "ip4_addr=lo|198.18.9.9/32"]);
    let err = e.fails(&["start", "n3"]);
    assert!(
        err.contains("ip4=disable") && err.contains("ip4_addr"),
        "{err}"
    );
    // and so is disable on a VNET jail, which configures its own stack
    e.create(&["tag=n4", "ip4=disable", "vnet=on"]);
    let err = e.fails(&["start", "n4"]);
    assert!(err.contains("ip4=disable with vnet=on"), "{err}");
    for t in ["n1", "n2"] {
        e.ok(&["stop", t]);
    }
    assert_eq!(links(), before);
}
