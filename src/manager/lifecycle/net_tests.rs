use super::*;
use crate::manager::lifecycle::net_cmds::{commands, fill, undo_command, At};
use crate::manager::props;

const U: &str = "1a2b3c4d-5e6f-7081-92a3-b4c5d6e7f809";

fn cfg(pairs: &[(&str, &str)]) -> JailConfig {
    let mut p = props::schema_defaults();
    for (k, v) in pairs {
        p.insert(k.to_string(), v.to_string());
    }
    JailConfig::parse(U, &p).unwrap()
}

#[test]
fn entries_parse_with_prefixes_and_netmasks() {
    let a = parse_addr("em0|198.18.0.5/24", false).unwrap();
    assert_eq!(
        (a.iface.as_deref(), a.cidr()),
        (Some("em0"), "198.18.0.5/24".into())
    );
    assert_eq!(
        parse_addr("198.18.0.5/255.255.255.0", false)
            .unwrap()
            .prefix,
        24
    );
    assert_eq!(parse_addr("2001:db8::1", true).unwrap().prefix, 128);
    assert!(parse_addr("em0|198.18.0.5/33", false).is_err());
    assert!(parse_addr("em0|2001:db8::1", false).is_err());
    assert!(parse_addr("-x|198.18.0.5", false).is_err());
    assert!(parse_addr("e|198.18.0.5/255.0.255.0", false).is_err());
}

#[test]
fn names_fit_ifnamsiz_and_macs_are_distinct_unicast() {
    let n = host_name("vn", 3, U);
    assert_eq!(n, "vn3.1a2b3c4d5e");
    assert!(host_name("vn", 99, U).len() <= IFNAME_MAX);
    let (h, j) = (derived_mac(U, 0, 0), derived_mac(U, 0, 1));
    assert_ne!(h, j);
    assert_ne!(derived_mac(U, 1, 0), h);
    assert_eq!(derived_mac(U, 0, 0), h, "stable");
    let first = u8::from_str_radix(&h[..2], 16).unwrap();
    assert_eq!(first & 3, 2, "locally administered unicast: {h}");
    assert_eq!(
        parse_mac("02A0981F8B0A").as_deref(),
        Some("02:a0:98:1f:8b:0a")
    );
    assert_eq!(parse_mac("01:00:5e:00:00:01"), None);
    let c = cfg(&[("vnet0_mac", "02a0981f8b0a 02a0981f8b0b")]);
    assert_eq!(macs(&c, 0).unwrap().1, "02:a0:98:1f:8b:0b");
    assert!(macs(&cfg(&[("vnet0_mac", "02a0981f8b0a")]), 0).is_err());
}

#[test]
fn interfaces_parse() {
    assert_eq!(
        parse_interfaces("vnet0:bridge0, vnet1:br1").unwrap(),
        vec![(0, "bridge0".to_string()), (1, "br1".to_string())]
    );
    assert!(parse_interfaces("vnet0:bridge0,vnet0:b1").is_err());
    assert!(parse_interfaces("eth0:bridge0").is_err());
    assert!(parse_interfaces("vnet0:a;b").is_err());
}

#[test]
fn shared_ip_plans_per_os() {
    let c = cfg(&[
        ("ip4_addr", "em0|198.18.0.5/24,em0|198.18.0.6/24,198.18.0.7"),
        ("defaultrouter", "198.18.0.1"),
    ]);
    // Linux needs the interface of every address
    assert!(plan(&c, Os::Linux).is_err());
    let p = plan(&c, Os::FreeBsd).unwrap();
    assert_eq!(
        p.len(),
        2,
        "aliases of em0 only; no route for a shared-IP FreeBSD jail"
    );
    assert!(matches!(&p[0], Step::Alias { iface, .. } if iface == "em0"));
    let c = cfg(&[
        ("ip4_addr", "em0|198.18.0.5/24"),
        ("ip6_addr", "em0|2001:db8::5/64"),
        ("defaultrouter", "198.18.0.1"),
    ]);
    let p = plan(&c, Os::Linux).unwrap();
    assert!(
        matches!(&p[0], Step::Macvlan { parent, inside, v6: true, .. } if parent == "em0" && inside == "em0")
    );
    // before it goes up: no RA, no SLAAC (and no IPv6 at all without an address)
    let mv = commands(&p[0], Os::Linux);
    let sc = mv.iter().position(|c| c.at == At::Sysctl).unwrap();
    assert_eq!(
        mv[sc].args,
        [
            "net/ipv6/conf/em0/accept_ra=0",
            "net/ipv6/conf/em0/autoconf=0"
        ]
    );
    assert_eq!(mv[sc + 1].args, ["link", "set", "dev", "em0", "up"]);
    let p4 = plan(&cfg(&[("ip4_addr", "em0|198.18.0.5/24")]), Os::Linux).unwrap();
    let mv = commands(&p4[0], Os::Linux);
    assert!(mv.iter().any(|c| c
        .args
        .contains(&"net/ipv6/conf/em0/disable_ipv6=1".to_string())));
    assert_eq!(
        p.iter()
            .filter(|s| matches!(s, Step::JailAddr { .. }))
            .count(),
        2
    );
    assert!(matches!(p.last(), Some(Step::Route { .. })));
    assert!(plan(&cfg(&[]), Os::Linux).unwrap().is_empty());
}

#[test]
fn vnet_plans_and_their_commands() {
    let c = cfg(&[
        ("vnet", "on"),
        ("interfaces", "vnet0:bridge0,vnet1:bridge0"),
        ("ip4_addr", "vnet0|198.18.0.5/24,vnet1|198.18.1.5/24"),
        ("defaultrouter", "198.18.0.1"),
        ("defaultrouter6", "2001:db8::1"),
    ]);
    let p = plan(&c, Os::FreeBsd).unwrap();
    assert_eq!(
        p.iter()
            .filter(|s| matches!(s, Step::Bridge { .. }))
            .count(),
        1
    );
    let pair = p.iter().find(|s| matches!(s, Step::Pair { .. })).unwrap();
    let fb = commands(pair, Os::FreeBsd);
    assert_eq!(fb[0].args, ["epair", "create"]);
    assert!(fb[0].capture);
    assert_eq!(
        fill(&fb[1].args, "epair7a"),
        ["epair7a", "name", "vn0.1a2b3c4d5e"]
    );
    assert_eq!(fb[5].at, At::HostNs);
    assert_eq!(fill(&fb[5].args, "epair7a"), ["epair7b", "vnet", "{ns}"]);
    assert_eq!(fb[6].at, At::Jail);
    assert_eq!(fill(&fb[6].args, "epair7a"), ["epair7b", "name", "vnet0"]);
    let lx = commands(pair, Os::Linux);
    assert_eq!(
        lx[0].args[..5],
        ["link", "add", "name", "vn0.1a2b3c4d5e", "address"]
    );
    assert_eq!(
        lx[2].args,
        ["link", "set", "dev", "vj0.1a2b3c4d5e", "netns", "{ns}"]
    );
    let routes: Vec<_> = p
        .iter()
        .filter(|s| matches!(s, Step::Route { .. }))
        .collect();
    assert_eq!(
        commands(routes[0], Os::FreeBsd)[0].args,
        ["add", "default", "198.18.0.1"]
    );
    assert_eq!(
        commands(routes[1], Os::FreeBsd)[0].args,
        ["add", "-inet6", "default", "2001:db8::1"]
    );
    assert_eq!(commands(routes[1], Os::Linux)[0].args[..2], ["-6", "route"]);
    // an address on an interface the jail does not have
    let c = cfg(&[
        ("vnet", "on"),
        ("interfaces", "vnet0:b0"),
        ("ip4_addr", "vnet1|198.18.0.5/24"),
    ]);
    assert!(plan(&c, Os::Linux).is_err());
}

#[test]
fn undo_commands() {
    let r = NetRecord::Alias {
        iface: "em0".into(),
        addr: "198.18.0.5/24".into(),
    };
    assert_eq!(
        undo_command(&r, Os::FreeBsd).args,
        ["em0", "inet", "198.18.0.5", "-alias"]
    );
    let r = NetRecord::Link {
        name: "vn0.x".into(),
        ifindex: Some(9),
        tmp: Some("jt0123456789ab".into()),
        macs: vec!["02:00:00:00:00:01".into()],
    };
    // the run state's form, and the earlier one without tmp/macs still read
    let j = serde_json::to_string(&r).unwrap();
    assert_eq!(serde_json::from_str::<NetRecord>(&j).unwrap(), r);
    let old: NetRecord =
        serde_json::from_str(r#"{"kind":"link","name":"vn0.y","ifindex":3}"#).unwrap();
    assert!(matches!(old, NetRecord::Link { tmp: None, ref macs, .. } if macs.is_empty()));
    assert_eq!(undo_command(&r, Os::FreeBsd).args, ["vn0.x", "destroy"]);
    assert_eq!(
        undo_command(&r, Os::Linux).args,
        ["link", "del", "dev", "vn0.x"]
    );
    let a = Step::Alias {
        iface: "em0".into(),
        addr: parse_addr("em0|2001:db8::5/64", true).unwrap(),
    };
    assert_eq!(
        commands(&a, Os::FreeBsd)[0].args,
        ["em0", "inet6", "2001:db8::5/64", "alias"]
    );
}

#[test]
fn live_names_are_escaped_and_addresses_checked() {
    let out = "7: a=b\x1b[2J    inet 198.18.1.11/24 scope global\n8: c    inet x=1/24 scope\n";
    assert_eq!(
        parse_live(out, Os::Linux),
        vec![(
            "a\\x3db\\x1b\\x5b2J".to_string(),
            vec!["198.18.1.11/24".to_string()]
        )]
    );
    assert_eq!(escape_name("vn0.ab-c_d@x"), "vn0.ab-c_d@x");
    assert_eq!(escape_name("a\nb"), "a\\x0ab");
}

#[test]
fn live_addresses_per_os() {
    let linux = "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever
1: lo    inet6 ::1/128 scope host \\       valid_lft forever
7: vnet0    inet 198.18.1.11/24 brd 198.18.1.255 scope global vnet0\\       valid_lft forever
7: vnet0    inet6 fe80::1/64 scope link \\       valid_lft forever";
    assert_eq!(
        parse_live(linux, Os::Linux),
        vec![
            (
                "lo".to_string(),
                vec!["127.0.0.1/8".to_string(), "::1/128".to_string()]
            ),
            ("vnet0".to_string(), vec!["198.18.1.11/24".to_string()]),
        ]
    );
    let fbsd = "lo0: flags=8049<UP,LOOPBACK,RUNNING,MULTICAST> metric 0 mtu 16384
\tinet 127.0.0.1 netmask 0xff000000
\tinet6 fe80::1%lo0 prefixlen 64 scopeid 0x1
vnet0: flags=8863<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST> metric 0 mtu 1500
\tether 02:a0:98:1f:8b:0b
\tinet 198.18.1.11 netmask 0xffffff00 broadcast 198.18.1.255
\tinet6 2001:db8::5 prefixlen 64
";
    assert_eq!(
        parse_live(fbsd, Os::FreeBsd),
        vec![
            ("lo0".to_string(), vec!["127.0.0.1/8".to_string()]),
            (
                "vnet0".to_string(),
                vec!["198.18.1.11/24".to_string(), "2001:db8::5/64".to_string()]
            ),
        ]
    );
}

#[test]
fn dhcp_entries_are_planned_apart_and_checked() {
    use crate::manager::lifecycle::net_dhcp::dhcp_ifaces;
    let base = [
        ("vnet", "on"),
        ("interfaces", "vnet0:br0,vnet1:br1"),
        ("allow_raw_sockets", "1"),
    ];
    let mut p = base.to_vec();
    p.push(("ip4_addr", "vnet0|DHCP,vnet1|198.18.0.5/24"));
    let c = cfg(&p);
    assert_eq!(dhcp_ifaces(&c, Os::Linux).unwrap(), vec!["vnet0"]);
    let steps = plan(&c, Os::Linux).unwrap();
    let addrs: Vec<_> = steps
        .iter()
        .filter(|s| matches!(s, Step::JailAddr { .. }))
        .collect();
    assert_eq!(addrs.len(), 1, "only vnet1's static address: {steps:?}");
    // dhcp=on means vnet0
    let mut p = base.to_vec();
    p.push(("dhcp", "on"));
    assert_eq!(dhcp_ifaces(&cfg(&p), Os::FreeBsd).unwrap(), vec!["vnet0"]);
    // not a vnet jail; an interface not in `interfaces`; no packet sockets (Linux)
    let e = plan(&cfg(&[("ip4_addr", "em0|DHCP")]), Os::Linux).unwrap_err();
    assert!(e.to_string().contains("needs vnet=on"), "{e}");
    let mut p = base.to_vec();
    p.push(("ip4_addr", "vnet2|DHCP"));
    assert!(plan(&cfg(&p), Os::Linux).is_err());
    let c = cfg(&[
        ("vnet", "on"),
        ("interfaces", "vnet0:br0"),
        ("ip4_addr", "vnet0|DHCP"),
    ]);
    let e = plan(&c, Os::Linux).unwrap_err();
    assert!(e.to_string().contains("allow_raw_sockets=1"), "{e}");
    assert!(plan(&c, Os::FreeBsd).is_ok());
}
