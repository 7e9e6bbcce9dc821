//! The jail layer on real Linux jails (namespaces around a busybox root), driven through
//! `jailctl jail` as an administrator would. Needs root.

mod common;

use common::Sandbox;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn create_list_and_remove() {
    let sb = Sandbox::new();
    let jid = sb.create("web01", &[]);
    assert!(jid > 0);
    assert_eq!(sb.registry_files(), vec![format!("{jid}.json")]);
    let list = sb.ok(&["jail", "list"]);
    assert!(
        list.contains("web01") || list.contains(&sb.root.display().to_string()),
        "{list}"
    );
    assert_eq!(
        sb.ok(&["jail", "list", "name", "jid"]).trim(),
        format!("web01 {jid}")
    );
    assert!(!sb.processes().is_empty(), "the jail init runs");
    sb.ok(&["jail", "remove", "web01"]);
    assert!(sb.ok(&["jail", "list", "jid"]).trim().is_empty());
    sb.assert_clean();
}

#[test]
fn hostname_inside_and_update() {
    let sb = Sandbox::new();
    sb.create(
        "h1",
        &["host.hostname=h1.example.org", "host.domainname=nisdom"],
    );
    assert_eq!(
        sb.ok(&["jail", "exec", "h1", "hostname"]).trim(),
        "h1.example.org"
    );
    assert_eq!(
        sb.ok(&["jail", "exec", "h1", "cat", "/proc/sys/kernel/domainname"])
            .trim(),
        "nisdom"
    );
    sb.ok(&["jail", "set", "h1", "host.hostname=renamed"]);
    assert_eq!(sb.ok(&["jail", "exec", "h1", "hostname"]).trim(), "renamed");
    assert_eq!(
        sb.ok(&["jail", "get", "h1", "host.hostname"]).trim(),
        "renamed"
    );
    assert_ne!(
        nix::unistd::gethostname().unwrap().to_string_lossy(),
        "renamed",
        "the host's hostname is untouched"
    );
    sb.ok(&["jail", "remove", "h1"]);
    sb.assert_clean();
}

#[test]
fn ps_inside_sees_only_the_jail() {
    let sb = Sandbox::new();
    sb.create("ps1", &[]);
    let mut host = Command::new("sleep").arg("31.4159").spawn().unwrap();
    let ps = sb.ok(&["jail", "exec", "ps1", "ps", "-o", "pid,args"]);
    assert!(
        !ps.contains("31.4159"),
        "a host process is visible inside:\n{ps}"
    );
    let pids: Vec<&str> = ps
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(pids.len(), 2, "only the jail init and ps itself:\n{ps}");
    assert!(pids.contains(&"1"), "{ps}");
    assert!(
        !ps.contains("jailctl") && !ps.contains("JAILDAEMON"),
        "the creator's command line leaks into the jail:\n{ps}"
    );
    host.kill().unwrap();
    host.wait().unwrap();
    sb.ok(&["jail", "remove", "ps1"]);
    sb.assert_clean();
}

#[test]
fn exec_runs_inside_with_exit_status_and_users() {
    let sb = Sandbox::new();
    sb.create("ex1", &[]);
    assert_eq!(
        sb.ok(&["jail", "exec", "ex1", "cat", "/etc/jail-marker"])
            .trim(),
        "inside-the-jail"
    );
    assert_eq!(sb.ok(&["jail", "exec", "ex1", "pwd"]).trim(), "/");
    let ls = sb.ok(&["jail", "exec", "ex1", "ls", "/"]);
    assert!(
        ls.contains("bin") && !ls.contains("usr") && !ls.contains("boot"),
        "/ is not the jail path:\n{ls}"
    );
    let o = sb.run(&[
        "jail",
        "exec",
        "ex1",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 42",
    ]);
    assert_eq!(o.status.code(), Some(42));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "out");
    assert!(String::from_utf8_lossy(&o.stderr).contains("err"));
    assert_eq!(
        sb.run(&["jail", "exec", "ex1", "/bin/nonexistent"])
            .status
            .code(),
        Some(127)
    );
    // stdin is the caller's
    let mut child = sb
        .jailctl()
        .args(["jail", "exec", "ex1", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"through stdin\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "through stdin\n");
    // -u: the jail's passwd (uid 1001 does not exist on the host), with its groups
    assert_eq!(
        sb.ok(&["jail", "exec", "-u", "user", "ex1", "id", "-u"])
            .trim(),
        "1001"
    );
    assert_eq!(
        sb.ok(&["jail", "exec", "-u", "user", "ex1", "id", "-G"])
            .split_whitespace()
            .collect::<Vec<_>>(),
        vec!["1001", "50"]
    );
    // -U: the host's passwd
    assert_eq!(
        sb.ok(&["jail", "exec", "-U", "nobody", "ex1", "id", "-u"])
            .trim(),
        "65534"
    );
    let e = sb.fails(&["jail", "exec", "-u", "nosuchuser", "ex1", "id"]);
    assert!(e.contains("nosuchuser"), "{e}");
    sb.ok(&["jail", "remove", "ex1"]);
    sb.assert_clean();
}

#[test]
fn attach_from_a_separate_process_and_lookups() {
    let sb = Sandbox::new();
    let jid = sb.create("att1", &[]);
    // by name and by jid
    assert_eq!(
        sb.ok(&["jail", "get", "att1", "jid"]).trim(),
        jid.to_string()
    );
    assert_eq!(
        sb.ok(&["jail", "get", &jid.to_string(), "name"]).trim(),
        "att1"
    );
    assert_eq!(
        sb.ok(&["jail", "get", "att1", "jid", "name", "persist"])
            .lines()
            .collect::<Vec<_>>(),
        vec![jid.to_string().as_str(), "att1", "true"]
    );
    // A separate process attaches and stays: visible from inside, in the jail's namespaces.
    let mut bg = sb
        .jailctl()
        .args(["jail", "exec", &jid.to_string(), "sleep", "27.1828"])
        .spawn()
        .unwrap();
    assert!(
        sb.wait_for(5, || sb
            .ok(&["jail", "exec", "att1", "ps", "-o", "args"])
            .contains("27.1828")),
        "the attached process is not visible inside the jail"
    );
    let init: serde_json::Value =
        serde_json::from_slice(&std::fs::read(sb.registry.join(format!("{jid}.json"))).unwrap())
            .unwrap();
    let init_pid = init["init_pid"].as_i64().unwrap();
    let sleeper = sb
        .processes()
        .into_iter()
        .find(|p| {
            std::fs::read_to_string(format!("/proc/{p}/cmdline"))
                .unwrap_or_default()
                .starts_with("sleep\x0027.1828")
        })
        .unwrap();
    for ns in ["mnt", "pid", "uts", "ipc"] {
        let a = std::fs::read_link(format!("/proc/{sleeper}/ns/{ns}")).unwrap();
        let b = std::fs::read_link(format!("/proc/{init_pid}/ns/{ns}")).unwrap();
        assert_eq!(a, b, "{ns} namespace differs");
    }
    // removing the jail kills it
    sb.ok(&["jail", "remove", "att1"]);
    let st = bg.wait().unwrap();
    assert!(!st.success());
    sb.assert_clean();
}

#[test]
fn create_update_flags_and_duplicates() {
    let sb = Sandbox::new();
    let jid = sb.create("f1", &[]);
    // CREATE on an existing jail fails
    let e = sb.fails(&[
        "jail",
        "create",
        "name=f1",
        &format!("path={}", sb.root.display()),
        "persist",
    ]);
    assert!(e.contains("f1") && e.contains("already exists"), "{e}");
    // CREATE|UPDATE modifies it
    sb.ok(&[
        "jail",
        "create",
        "-m",
        "name=f1",
        "host.hostname=cm",
        "persist",
    ]);
    assert_eq!(sb.ok(&["jail", "exec", "f1", "hostname"]).trim(), "cm");
    // CREATE|UPDATE creates a missing one
    let other = sb.another_root("r2");
    let jid2: i32 = sb
        .ok(&[
            "jail",
            "create",
            "-m",
            "name=f2",
            &format!("path={}", other.display()),
            "persist",
        ])
        .trim()
        .parse()
        .unwrap();
    assert_ne!(jid, jid2);
    // UPDATE of a missing jail fails, naming it
    let e = sb.fails(&["jail", "set", "nosuch", "host.hostname=x"]);
    assert!(e.contains("nosuch") && e.contains("not found"), "{e}");
    // a jail name is unique; renaming onto another name is refused
    let e = sb.fails(&["jail", "set", "f2", "name=f1"]);
    assert!(e.contains("f1") && e.contains("already used"), "{e}");
    // a jid in use is refused
    let e = sb.fails(&[
        "jail",
        "create",
        &format!("jid={jid}"),
        "name=f3",
        &format!("path={}", other.display()),
        "persist",
    ]);
    assert!(e.contains("already exists"), "{e}");
    // parameters fixed at creation
    let e = sb.fails(&["jail", "set", "f1", "path=/"]);
    assert!(e.contains("path") && e.contains("cannot be changed"), "{e}");
    // rename works and the old name is free again
    sb.ok(&["jail", "set", "f2", "name=f2-renamed"]);
    assert_eq!(
        sb.ok(&["jail", "get", "f2-renamed", "jid"]).trim(),
        jid2.to_string()
    );
    sb.fails(&["jail", "get", "f2", "jid"]);
    sb.ok(&["jail", "remove", "f1"]);
    sb.ok(&["jail", "remove", &jid2.to_string()]);
    sb.assert_clean();
}

#[test]
fn persist_and_non_persist_lifetime() {
    let sb = Sandbox::new();
    // non-persistent: lives while its command runs, then goes
    let path = format!("path={}", sb.root.display());
    let mut c = sb
        .jailctl()
        .args(["jail", "create", "name=np", &path, "command=sleep", "1.5"])
        .spawn()
        .unwrap();
    assert!(
        sb.wait_for(5, || sb.run(&["jail", "get", "np", "jid"]).status.success()),
        "non-persistent jail never appeared"
    );
    assert_eq!(sb.ok(&["jail", "get", "np", "persist"]).trim(), "false");
    assert!(c.wait().unwrap().success());
    assert!(
        sb.wait_for(5, || !sb
            .run(&["jail", "get", "np", "jid"])
            .status
            .success()),
        "non-persistent jail outlived its last process"
    );
    sb.assert_clean();
    // exit status of the command is create's
    assert_eq!(
        sb.run(&[
            "jail",
            "create",
            "name=np2",
            &path,
            "command=sh",
            "-c",
            "exit 3"
        ])
        .status
        .code(),
        Some(3)
    );
    // without persist or command: refused, nothing created
    let e = sb.fails(&["jail", "create", "name=np3", &path]);
    assert!(e.contains("persist"), "{e}");
    // persistent: outlives its processes
    sb.create("p", &[]);
    sb.ok(&["jail", "exec", "p", "true"]);
    std::thread::sleep(Duration::from_millis(600));
    assert!(sb.run(&["jail", "get", "p", "jid"]).status.success());
    // turning persist off with nothing inside lets it go
    sb.ok(&["jail", "set", "p", "nopersist"]);
    assert!(
        sb.wait_for(5, || !sb.run(&["jail", "get", "p", "jid"]).status.success()),
        "jail stayed after nopersist"
    );
    sb.assert_clean();
}

#[test]
fn bad_input_is_refused_and_leaves_nothing() {
    let sb = Sandbox::new();
    let path = format!("path={}", sb.root.display());
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "name=b1".into(),
                "path=/nonexistent/dir".into(),
                "persist".into(),
            ],
            "/nonexistent/dir",
        ),
        (
            vec!["name=b1".into(), "path=relative".into(), "persist".into()],
            "absolute",
        ),
        (
            vec![
                "name=b1".into(),
                format!("{path}/etc/passwd"),
                "persist".into(),
            ],
            "not a directory",
        ),
        (
            vec![
                "name=b1".into(),
                path.clone(),
                "persist".into(),
                "nosuch.param=1".into(),
            ],
            "nosuch.param",
        ),
        (
            vec![
                "name=b1".into(),
                path.clone(),
                "persist".into(),
                "securelevel=high".into(),
            ],
            "securelevel",
        ),
        (
            vec![
                "name=b1".into(),
                path.clone(),
                "persist".into(),
                "ip4.addr=198.18.0.999".into(),
            ],
            "198.18.0.999",
        ),
        (
            vec![
                "name=b1".into(),
                path.clone(),
                "persist".into(),
                "persist=perhaps".into(),
            ],
            "perhaps",
        ),
        (
            vec![
                "name=b1".into(),
                path.clone(),
                "persist".into(),
                "allow.quotas".into(),
            ],
            "not supported",
        ),
        (
            vec![
                "name=b1".into(),
                path.clone(),
                "persist".into(),
                "linux.userns=maybe".into(),
            ],
            "disable, identity or new",
        ),
        (
            vec![
                "name=b1".into(),
                path.clone(),
                "persist".into(),
                "dying".into(),
            ],
            "read-only",
        ),
        (
            vec!["name=12345".into(), path.clone(), "persist".into()],
            "numeric",
        ),
        (
            vec!["name=a.b".into(), path.clone(), "persist".into()],
            "not allowed",
        ),
    ];
    for (args, needle) in cases {
        let mut a = vec!["jail", "create"];
        a.extend(args.iter().map(String::as_str));
        let e = sb.fails(&a);
        assert!(
            e.contains(needle),
            "{args:?}: error does not mention {needle}: {e}"
        );
        sb.assert_clean();
    }
    for args in [
        vec!["jail", "get", "ghost", "jid"],
        vec!["jail", "remove", "ghost"],
        vec!["jail", "exec", "ghost", "true"],
        vec!["jail", "set", "ghost", "persist"],
    ] {
        let e = sb.fails(&args);
        assert!(e.contains("\"ghost\" not found"), "{args:?}: {e}");
    }
    sb.assert_clean();
    // bad update: nothing changes
    sb.create("b2", &["host.hostname=keep"]);
    sb.fails(&[
        "jail",
        "set",
        "b2",
        "host.hostname=changed",
        "securelevel=x",
    ]);
    assert_eq!(sb.ok(&["jail", "exec", "b2", "hostname"]).trim(), "keep");
    assert_eq!(
        sb.ok(&["jail", "get", "b2", "host.hostname"]).trim(),
        "keep"
    );
    sb.ok(&["jail", "remove", "b2"]);
    sb.assert_clean();
}

#[test]
fn killed_holder_leaves_a_stale_entry_that_is_cleaned() {
    let sb = Sandbox::new();
    let jid = sb.create("stale", &[]);
    let entry: serde_json::Value =
        serde_json::from_slice(&std::fs::read(sb.registry.join(format!("{jid}.json"))).unwrap())
            .unwrap();
    let pid = entry["init_pid"].as_i64().unwrap() as i32;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL).unwrap();
    // dead: gone, or a zombie (kill(2) returns before the process has finished exiting)
    let dead = || common::stat_fields(pid).is_none_or(|f| f[0] == "Z");
    assert!(sb.wait_for(5, dead), "the jail init survived SIGKILL");
    assert!(sb.wait_for(5, || sb.processes().is_empty()));
    assert_eq!(
        sb.registry_files().len(),
        1,
        "the entry is still on disk until the next call"
    );
    assert!(
        sb.ok(&["jail", "list", "jid"]).trim().is_empty(),
        "a dead jail is listed"
    );
    assert!(
        sb.registry_files().is_empty(),
        "the stale entry was not cleaned"
    );
    // the name is free again
    let jid2 = sb.create("stale", &[]);
    assert_eq!(jid2, jid, "the jid of a dead jail is free again");
    sb.ok(&["jail", "remove", "stale"]);
    sb.assert_clean();
}

#[test]
fn vnet_jail_has_its_own_network_stack() {
    let sb = Sandbox::new();
    sb.create("net1", &["vnet=new"]);
    let links = sb.ok(&["jail", "exec", "net1", "ip", "-o", "link"]);
    assert_eq!(
        links.lines().count(),
        1,
        "only lo inside a vnet jail:\n{links}"
    );
    assert!(links.contains("lo") && links.contains("UP"), "{links}");
    sb.create_named_in("net2", &sb.another_root("r2"), &[]);
    let host_links = sb.ok(&["jail", "exec", "net2", "ip", "-o", "link"]);
    assert!(host_links.lines().count() >= 1);
    sb.ok(&["jail", "remove", "net1"]);
    sb.ok(&["jail", "remove", "net2"]);
    sb.assert_clean();
}

#[test]
fn fifty_create_remove_cycles_leave_nothing() {
    let sb = Sandbox::new();
    for i in 0..50 {
        let jid = sb.create("cycle", &[&format!("host.hostname=c{i}")]);
        assert_eq!(
            sb.ok(&["jail", "get", "cycle", "jid"]).trim(),
            jid.to_string()
        );
        sb.ok(&["jail", "remove", "cycle"]);
    }
    sb.assert_clean();
}

#[test]
fn params_listing_names_types() {
    let sb = Sandbox::new();
    let out = sb.ok(&["jail", "params"]);
    assert!(
        out.contains("host.hostname")
            && out.contains("allow.raw_sockets")
            && out.contains("not supported on Linux")
    );
}

#[test]
fn dying_jails_are_hidden_unless_asked_for() {
    let sb = Sandbox::new();
    let jid = sb.create("dy", &[]);
    let entry: serde_json::Value =
        serde_json::from_slice(&std::fs::read(sb.registry.join(format!("{jid}.json"))).unwrap())
            .unwrap();
    let init = nix::unistd::Pid::from_raw(entry["init_pid"].as_i64().unwrap() as i32);
    // A stopped init cannot finish the removal: the jail stays dying.
    nix::sys::signal::kill(init, nix::sys::signal::SIGSTOP).unwrap();
    sb.ok(&["jail", "remove", "dy"]);
    let e = sb.fails(&["jail", "get", "dy", "jid"]);
    assert!(e.contains("not found"), "{e}");
    assert_eq!(sb.ok(&["jail", "get", "-d", "dy", "dying"]).trim(), "true");
    assert!(sb.ok(&["jail", "list", "-d", "name"]).contains("dy"));
    assert!(!sb.ok(&["jail", "list", "name"]).contains("dy"));
    // its name is free for a new jail; its jid is not reused while it is dying
    let other = sb.another_root("r2");
    let jid2 = sb.create_named_in("dy", &other, &[]);
    assert_ne!(jid2, jid);
    let e = sb.fails(&[
        "jail",
        "create",
        &format!("jid={jid}"),
        "name=dy3",
        &format!("path={}", other.display()),
        "persist",
    ]);
    assert!(e.contains("dying"), "{e}");
    // once the init may go, the dying entry goes too
    nix::sys::signal::kill(init, nix::sys::signal::SIGCONT).unwrap();
    assert!(sb.wait_for(10, || !sb
        .ok(&["jail", "list", "-d", "jid"])
        .lines()
        .any(|l| l.trim() == jid.to_string())));
    sb.ok(&["jail", "remove", "dy"]);
    sb.assert_clean();
}

/// `jailctl jail exec` is a thin caller of the library's `jail::exec::run` (which
/// forks, so it needs a single-threaded caller: the multi-threaded test harness
/// drives it through jailctl). Exit codes, setup failures, and a hostile jail's
/// passwd.
#[test]
fn exec_library_codes_setup_errors_and_hostile_passwd() {
    let sb = Sandbox::new();
    sb.create("ex2", &[]);
    let code = |args: &[&str]| {
        let mut a = vec!["jail", "exec"];
        a.extend_from_slice(args);
        let o = sb.run(&a);
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).to_string(),
        )
    };
    // 128+signal when the command is killed
    assert_eq!(code(&["ex2", "sh", "-c", "kill -9 $$"]).0, Some(137));
    assert_eq!(code(&["ex2", "sh", "-c", "kill -TERM $$"]).0, Some(143));
    // 126: not executable; 127: not found; both say why
    let (c, e) = code(&["ex2", "/etc/jail-marker"]);
    assert_eq!(c, Some(126), "{e}");
    assert!(e.contains("jailctl: /etc/jail-marker: "), "{e}");
    let (c, e) = code(&["ex2", "/bin/nonexistent"]);
    assert_eq!(c, Some(127), "{e}");
    assert!(e.contains("jailctl: /bin/nonexistent: "), "{e}");
    // as a user: its credentials, USER and HOME, in /
    assert_eq!(
        sb.ok(&[
            "jail",
            "exec",
            "-u",
            "www",
            "ex2",
            "sh",
            "-c",
            "echo $(id -u):$(id -g) $USER $HOME $(pwd)"
        ])
        .trim(),
        "80:80 www /var/www /"
    );
    // a setup failure is an error naming the step, not an exit status of the command
    let (c, e) = code(&["-u", "nosuchuser", "ex2", "true"]);
    assert_eq!(c, Some(1));
    assert!(
        e.contains("in jail ex2: unknown user \"nosuchuser\" (not in /etc/passwd)"),
        "{e}"
    );
    let (c, e) = code(&["-U", "nosuchuser", "ex2", "true"]);
    assert_eq!(c, Some(1));
    assert!(e.contains("unknown user \"nosuchuser\""), "{e}");
    // The jail's /etc/passwd is the jail's: a symlink to a host path resolves inside.
    let host_pw = sb.dir.path().join("host-only-passwd");
    std::fs::write(&host_pw, "hostonly:x:4242:4242::/:/bin/sh\n").unwrap();
    let pw = sb.root.join("etc/passwd");
    std::fs::rename(&pw, sb.root.join("etc/passwd.real")).unwrap();
    std::os::unix::fs::symlink(&host_pw, &pw).unwrap();
    let (c, e) = code(&["-u", "hostonly", "ex2", "id", "-u"]);
    assert_eq!(c, Some(1), "the host's file was read: {e}");
    assert!(e.contains("/etc/passwd"), "{e}");
    // A FIFO in its place makes the lookup fail, not hang.
    std::fs::remove_file(&pw).unwrap();
    nix::unistd::mkfifo(&pw, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    let mut child = sb
        .jailctl()
        .args(["jail", "exec", "-u", "user", "ex2", "true"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut st = None;
    let ended = sb.wait_for(10, || {
        st = child.try_wait().unwrap();
        st.is_some()
    });
    if !ended {
        let _ = child.kill();
    }
    assert!(ended, "jail exec hangs on a FIFO as /etc/passwd");
    assert_eq!(st.unwrap().code(), Some(1));
    let mut e = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut e).unwrap();
    assert!(e.contains("not a regular file"), "{e}");
    std::fs::remove_file(&pw).unwrap();
    std::fs::rename(sb.root.join("etc/passwd.real"), &pw).unwrap();
    assert_eq!(
        sb.ok(&["jail", "exec", "-u", "user", "ex2", "id", "-u"])
            .trim(),
        "1001"
    );
    sb.ok(&["jail", "remove", "ex2"]);
    sb.assert_clean();
}
