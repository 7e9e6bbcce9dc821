//! The jail Lua module under a real Lua 5.4 interpreter (`lua5.4`), on real jails.
//!
//! Every test loads the library that `cargo build -p jail-lua --release` leaves in
//! `target/release/libjail.so`, exactly as README.md ("Lua module") tells users: with
//! `LUA_CPATH="$PWD/target/release/lib?.so;;"`, or copied to `lua/5.4/jail.so` under
//! a lib directory (the install layout). Cargo does not build a cdylib for the
//! integration tests of its package, so the tests run that same `cargo build` first
//! (once, with the cargo and target directory that run them).
//!
//! The tests need root (namespaces, mounts, setns) and `lua5.4` (Debian package
//! `lua5.4`, installed by `.ci/setup`); each jail lives in the test's own registry
//! (`JAILDAEMON_REGISTRY`) and is removed at the end.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use jaildaemon::jail::params::ParamType;
use jaildaemon::jail::{JailError, ParamError};

/// `target/release` (or `target/debug`): the directory above the test's `deps/`.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().to_path_buf()
}

/// The library, built as README.md says: `cargo build -p jail-lua [--release]`.
fn build_library() -> PathBuf {
    static BUILT: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    let dir = target_dir();
    let built = BUILT.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut c = Command::new(cargo);
        c.args(["build", "-q", "-p", "jail-lua", "--manifest-path"])
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
            .arg("--target-dir")
            .arg(dir.parent().unwrap());
        if dir.file_name().is_some_and(|n| n == "release") {
            c.arg("--release");
        }
        let o = c.output().map_err(|e| format!("running cargo: {e}"))?;
        if o.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&o.stderr).into_owned())
        }
    });
    if let Err(e) = built {
        panic!("cargo build -p jail-lua failed: {e}");
    }
    dir.join("libjail.so")
}

struct Env {
    dir: tempfile::TempDir,
    root: PathBuf,
    registry: PathBuf,
    /// `LUA_CPATH` as README.md gives it.
    cpath: String,
}

impl Env {
    fn new() -> Env {
        assert!(
            nix::unistd::geteuid().is_root(),
            "the Lua module tests create real jails and need root: run them as root, as CI does"
        );
        let v = Command::new("lua5.4").arg("-v").output();
        assert!(
            v.is_ok_and(|o| o.status.success()),
            "lua5.4 is missing: apt-get install -y lua5.4 (.ci/setup installs it)"
        );
        let so = build_library();
        assert!(
            so.is_file(),
            "{} is missing: cargo build -p jail-lua --release builds it",
            so.display()
        );
        let dir = tempfile::Builder::new()
            .prefix("jd-lua-")
            .tempdir_in("/tmp")
            .unwrap();
        let root = dir.path().join("root");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/busybox-root.sh");
        let o = Command::new("sh").arg(&script).arg(&root).output().unwrap();
        assert!(
            o.status.success(),
            "building a busybox root failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let registry = dir.path().join("registry");
        Env {
            cpath: format!("{}/lib?.so;;", target_dir().display()),
            dir,
            root,
            registry,
        }
    }

    fn root(&self) -> String {
        std::fs::canonicalize(&self.root)
            .unwrap()
            .display()
            .to_string()
    }

    /// A `lua5.4 SCRIPT` command with this test's registry and `LUA_CPATH`.
    fn command(&self, script: &str) -> Command {
        let f = self.dir.path().join(format!(
            "script-{}.lua",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::write(&f, script).unwrap();
        let mut c = Command::new("lua5.4");
        c.arg(&f)
            .env("LUA_CPATH", &self.cpath)
            .env("JAILDAEMON_REGISTRY", &self.registry);
        c
    }

    fn run(&self, script: &str) -> Output {
        self.command(script).output().unwrap()
    }

    /// Run a script that must succeed; its standard output.
    fn ok(&self, script: &str) -> String {
        let o = self.run(script);
        assert!(
            o.status.success(),
            "lua5.4 failed on:\n{script}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    /// The registry entry of a jail, read from outside the module.
    fn entry(&self, jid: i32) -> Option<serde_json::Value> {
        let s = std::fs::read_to_string(self.registry.join(format!("{jid}.json"))).ok()?;
        Some(serde_json::from_str(&s).unwrap())
    }

    fn init_pid(&self, jid: i32) -> i32 {
        let e = self.entry(jid).expect("the jail is in the registry");
        e["init_pid"].as_i64().unwrap() as i32
    }

    fn registry_files(&self) -> Vec<String> {
        std::fs::read_dir(&self.registry)
            .map(|rd| {
                rd.flatten()
                    .map(|d| d.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.ends_with(".json"))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        // Remove whatever a failed test left, through the module itself, then make
        // sure of it from outside.
        let _ = self.run(
            "local jail = require('jail')\n\
             local ids = {}\n\
             for jid in jail.list() do ids[#ids + 1] = jid end\n\
             for _, jid in ipairs(ids) do jail.remove(jid) end\n",
        );
        for f in self.registry_files() {
            if let Some(jid) = f.strip_suffix(".json").and_then(|j| j.parse().ok()) {
                if let Some(e) = self.entry(jid) {
                    if let Some(pid) = e["init_pid"].as_i64() {
                        let _ = nix::sys::signal::kill(
                            nix::unistd::Pid::from_raw(pid as i32),
                            nix::sys::signal::Signal::SIGKILL,
                        );
                    }
                }
            }
        }
    }
}

fn ns(pid: i32, name: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{name}"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/ns/{name}: {e}"))
        .display()
        .to_string()
}

/// The hostname in the UTS namespace of `pid`, seen from the host.
fn hostname_of(pid: i32) -> String {
    let o = Command::new("nsenter")
        .args(["-t", &pid.to_string(), "-u", "hostname"])
        .output()
        .expect("nsenter (util-linux) is needed: apt-get install -y util-linux");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().next())
                .map(|st| st != "Z")
                .unwrap_or(false)
        })
        .unwrap_or(false)
}

fn wait_for(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    f()
}

/// A Lua string literal.
fn lq(s: &str) -> String {
    format!("{s:?}")
}

fn create(env: &Env, name: &str, hostname: &str) -> i32 {
    let out = env.ok(&format!(
        "local jail = require('jail')\n\
         local jid, err = jail.setparams({name}, {{path={path}, [\"host.hostname\"]={host}, persist=\"true\"}}, jail.CREATE)\n\
         if not jid then error(err) end\n\
         print(math.type(jid), jid)\n",
        name = lq(name),
        path = lq(&env.root()),
        host = lq(hostname),
    ));
    let (ty, jid) = out.trim().split_once('\t').expect("type and jid");
    assert_eq!(ty, "integer", "setparams returns an integer jid");
    jid.parse().unwrap()
}

#[test]
fn create_read_back_update_and_remove() {
    let env = Env::new();
    let jid = create(&env, "luaweb", "web.lua.test");

    // The jail is real: an init in its own namespaces, rooted at path, named so.
    let init = env.init_pid(jid);
    assert!(alive(init));
    assert_ne!(ns(init, "mnt"), ns(std::process::id() as i32, "mnt"));
    assert_eq!(hostname_of(init), "web.lua.test");
    assert_eq!(env.entry(jid).unwrap()["name"], "luaweb");

    // Read back through the module: getparams by name, by jid and by jid string;
    // getid by name and jid string; getname.
    let out = env.ok(&format!(
        "local jail = require('jail')\n\
         local jid, res = jail.getparams('luaweb', {{'path', 'host.hostname', 'persist', 'jid', 'name'}})\n\
         assert(jid, res)\n\
         print(jid, res.path, res['host.hostname'], res.persist, res.jid, res.name)\n\
         local j2, r2 = jail.getparams({jid}, {{'name'}})\n\
         print(j2, r2.name)\n\
         local j3, r3 = jail.getparams('{jid}', {{'host.hostname'}})\n\
         print(j3, r3['host.hostname'])\n\
         print(jail.getid('luaweb'), jail.getid('{jid}'), math.type(jail.getid('luaweb')))\n\
         print(jail.getname({jid}))\n",
    ));
    let root = env.root();
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            format!("{jid}\t{root}\tweb.lua.test\ttrue\t{jid}\tluaweb"),
            format!("{jid}\tluaweb"),
            format!("{jid}\tweb.lua.test"),
            format!("{jid}\t{jid}\tinteger"),
            "luaweb".to_string(),
        ]
    );

    // UPDATE changes the running jail: its hostname, seen from outside.
    let out = env.ok("local jail = require('jail')\n\
         print(jail.setparams('luaweb', {['host.hostname']='two.lua.test'}, jail.UPDATE))\n\
         local _, res = jail.getparams('luaweb', {'host.hostname'})\n\
         print(res['host.hostname'])\n");
    assert_eq!(out, format!("{jid}\ntwo.lua.test\n"));
    assert_eq!(hostname_of(init), "two.lua.test");

    // remove: true; the init is gone, the registry empty, the jail unknown.
    let out = env.ok("local jail = require('jail')\n\
         print(jail.remove('luaweb'))\n\
         print(jail.getid('luaweb'))\n");
    assert_eq!(
        out,
        format!(
            "true\nnil\t{}\n",
            JailError::NotFound {
                jail: "luaweb".into()
            }
        )
    );
    assert!(
        wait_for(5, || !alive(init)),
        "the jail's init survived remove"
    );
    assert!(
        env.registry_files().is_empty(),
        "{:?}",
        env.registry_files()
    );
}

/// The literal blocks of the manual page's EXAMPLES section.
fn manual_examples() -> Vec<String> {
    let page =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../man/jail.3lua"))
            .unwrap();
    let examples = page
        .split_once(".Sh EXAMPLES\n")
        .expect("the page has EXAMPLES")
        .1;
    let examples = examples.split("\n.Sh ").next().unwrap();
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    for line in examples.lines() {
        if line.starts_with(".Bd -literal") {
            cur = Some(String::new());
        } else if line == ".Ed" {
            out.push(cur.take().expect(".Ed after .Bd"));
        } else if let Some(c) = cur.as_mut() {
            assert!(
                !line.starts_with('.') && !line.contains('\\'),
                "an example line the test cannot take literally: {line}"
            );
            c.push_str(line);
            c.push('\n');
        }
    }
    out
}

#[test]
fn manual_page_examples_run_unchanged() {
    let env = Env::new();
    let ex = manual_examples();
    assert_eq!(
        ex.len(),
        5,
        "create, set hostname, get hostname, list, remove"
    );
    // The install layout: jail.so in lua/5.4 of a lib directory.
    let lib = env.dir.path().join("lib/lua/5.4");
    std::fs::create_dir_all(&lib).unwrap();
    std::fs::copy(target_dir().join("libjail.so"), lib.join("jail.so")).unwrap();
    let run = |script: &str| -> String {
        let o = env
            .command(script)
            .env("LUA_CPATH", format!("{}/?.so;;", lib.display()))
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "the example failed:\n{script}\nstderr: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    };
    // The first example's path is the only thing changed: the test's own root.
    assert!(ex[0].contains("\"/jails/foo\""), "{}", ex[0]);
    let jid: i32 = run(&ex[0].replace("/jails/foo", &env.root()))
        .trim()
        .parse()
        .expect("the create example prints the jid");
    let init = env.init_pid(jid);
    assert_eq!(hostname_of(init), "foo");
    // The two examples of FreeBSD's page, as they are.
    assert!(ex[1].contains("jail.setparams(\"foo\", {[\"host.hostname\"]=\"foo.bar\"},"));
    assert_eq!(run(&ex[1]), "");
    assert_eq!(hostname_of(init), "foo.bar");
    assert!(ex[2].contains("jail.getparams(\"foo\", {\"host.hostname\"})"));
    assert_eq!(run(&ex[2]), "foo.bar\n");
    assert_eq!(run(&ex[3]), format!("{jid}\tfoo\t{}\n", env.root()));
    assert_eq!(run(&ex[4]), "");
    assert!(
        wait_for(5, || !alive(init)),
        "the jail's init survived remove"
    );
    assert_eq!(run(&ex[3]), "");
}

#[test]
fn list_iterates_over_jails() {
    let env = Env::new();
    let a = create(&env, "lista", "a.lua.test");
    let b = create(&env, "listb", "b.lua.test");
    let out = env.ok("local jail = require('jail')\n\
         for jid, p in jail.list({'host.hostname'}) do\n\
             print(math.type(jid), jid, p.jid, p.name, p['host.hostname'], p.path)\n\
         end\n\
         local n = 0\n\
         for jid, p in jail.list() do\n\
             assert(p.path and p.persist == 'true' and p.name, 'every parameter')\n\
             n = n + 1\n\
         end\n\
         print(n)\n\
         print(jail.list({'host.nosuch'}))\n");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            format!("integer\t{a}\t{a}\tlista\ta.lua.test\tnil"),
            format!("integer\t{b}\t{b}\tlistb\tb.lua.test\tnil"),
            "2".to_string(),
            format!(
                "nil\t{}",
                ParamError::Unknown {
                    name: "host.nosuch".into()
                }
            ),
        ]
    );
    // Only DYING is a flag of list; another raises.
    let o = env.run("local jail = require('jail')\nlocal ok, e = pcall(jail.list, {}, jail.CREATE)\nassert(not ok)\nprint(tostring(e))\n");
    assert!(String::from_utf8_lossy(&o.stdout)
        .contains("bad argument #2 to 'list' (only the DYING flag is valid)"));
}

/// A Lua process enters the jail (by `attach`, or by `setparams` with ATTACH), then
/// waits on its standard input; the test looks at it from outside.
/// With `create_first` false, `how` creates the jail itself (CREATE | ATTACH).
fn check_attach(env: &Env, how: &str, create_first: bool) {
    if create_first {
        create(env, "luain", "in.lua.test");
    }
    let me = std::process::id() as i32;
    let mut child = env
        .command(&format!(
            "local jail = require('jail')\n\
             local ok, err = {how}\n\
             if not ok then io.stderr:write(err, '\\n') os.exit(1) end\n\
             local h = io.popen('hostname'):read('l')\n\
             print('attached ' .. h)\n\
             io.stdout:flush()\n\
             io.read('l')\n"
        ))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    if line.is_empty() {
        let o = child.wait_with_output().unwrap();
        panic!(
            "{how} failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        );
    }
    // A command it starts runs in the jail (the jail's hostname, the jail's sh).
    assert_eq!(line, "attached in.lua.test\n");
    let files = env.registry_files();
    assert_eq!(files.len(), 1, "{files:?}");
    let jid: i32 = files[0].strip_suffix(".json").unwrap().parse().unwrap();
    let init = env.init_pid(jid);
    assert_ne!(ns(me, "mnt"), ns(init, "mnt"));
    // From outside: the Lua process has the jail's namespaces, and its children
    // go to the jail's process namespace.
    for n in ["mnt", "uts", "ipc", "cgroup", "net"] {
        assert_eq!(ns(pid, n), ns(init, n), "{how}: {n} namespace");
    }
    assert_eq!(ns(pid, "pid_for_children"), ns(init, "pid"));
    assert_ne!(ns(pid, "mnt"), ns(me, "mnt"));
    assert_eq!(hostname_of(pid), "in.lua.test");
    child.stdin.take().unwrap().write_all(b"\n").unwrap();
    assert!(child.wait().unwrap().success());
    let out = env.ok("local jail = require('jail')\nprint(jail.remove('luain'))\n");
    assert_eq!(out, "true\n");
    assert!(
        wait_for(5, || !alive(init)),
        "the jail's init survived remove"
    );
}

#[test]
fn attach_moves_the_lua_process_into_the_jail() {
    let env = Env::new();
    check_attach(&env, "jail.attach('luain')", true);
    check_attach(
        &env,
        "jail.setparams('luain', {persist='true'}, jail.UPDATE | jail.ATTACH)",
        true,
    );
    let create_attach = format!(
        "jail.setparams('luain', {{path={}, ['host.hostname']='in.lua.test', persist='true'}}, jail.CREATE | jail.ATTACH)",
        lq(&env.root())
    );
    check_attach(&env, &create_attach, false);
    assert!(
        env.registry_files().is_empty(),
        "{:?}",
        env.registry_files()
    );
}

#[test]
fn errors_are_nil_and_the_jail_layers_message() {
    let env = Env::new();
    create(&env, "luaerr", "err.lua.test");
    let root = lq(&env.root());
    let out = env.ok(&format!(
        "local jail = require('jail')\n\
         print(jail.getid('nosuch'))\n\
         print(jail.getname(4242))\n\
         print(jail.getparams('nosuch', {{'host.hostname'}}))\n\
         print(jail.setparams('nosuch', {{['host.hostname']='x'}}, jail.UPDATE))\n\
         print(jail.attach('nosuch'))\n\
         print(jail.remove('nosuch'))\n\
         print(jail.setparams('luaerr', {{['host.nosuch']='x'}}, jail.UPDATE))\n\
         print(jail.getparams('luaerr', {{'host.nosuch'}}))\n\
         print(jail.setparams('luaerr', {{persist='maybe'}}, jail.UPDATE))\n\
         print(jail.setparams('luaerr', {{path={root}}}, jail.CREATE))\n\
         print(jail.setparams('luanew', {{path={root}, ['host.nosuch']='x'}}, jail.CREATE))\n\
         print(jail.getid('luanew'))\n"
    ));
    let not_found = |j: &str| JailError::NotFound { jail: j.into() }.to_string();
    let unknown = ParamError::Unknown {
        name: "host.nosuch".into(),
    }
    .to_string();
    let bad_value = ParamError::BadValue {
        name: "persist".into(),
        value: "maybe".into(),
        expected: ParamType::Bool.to_string(),
    }
    .to_string();
    let exists = JailError::Exists {
        jail: "luaerr".into(),
    }
    .to_string();
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            format!("nil\t{}", not_found("nosuch")),
            format!("nil\t{}", not_found("4242")),
            format!("nil\t{}", not_found("nosuch")),
            format!("nil\t{}", not_found("nosuch")),
            format!("nil\t{}", not_found("nosuch")),
            format!("nil\t{}", not_found("nosuch")),
            format!("nil\t{unknown}"),
            format!("nil\t{unknown}"),
            format!("nil\t{bad_value}"),
            format!("nil\t{exists}"),
            format!("nil\t{unknown}"),
            format!("nil\t{}", not_found("luanew")),
        ]
    );
    assert_eq!(env.registry_files().len(), 1, "no partial state");
    // The jail is as it was.
    let out = env.ok("local jail = require('jail')\n\
         local _, r = jail.getparams('luaerr', {'persist', 'host.hostname'})\n\
         print(r.persist, r['host.hostname'])\n");
    assert_eq!(out, "true\terr.lua.test\n");

    // Wrong argument types raise, with luaL_argerror's words.
    for (call, msg) in [
        (
            "jail.getid({})",
            "bad argument #1 to 'getid' (string expected, got table)",
        ),
        (
            "jail.getname('x')",
            "bad argument #1 to 'getname' (number expected, got string)",
        ),
        (
            "jail.getparams('luaerr', 'host.hostname')",
            "bad argument #2 to 'getparams' (table expected, got string)",
        ),
        (
            "jail.getparams('luaerr', {'persist'}, jail.CREATE)",
            "bad argument #3 to 'getparams' (only the DYING flag is valid)",
        ),
        (
            "jail.setparams('luaerr', nil, jail.UPDATE)",
            "bad argument #2 to 'setparams' (table expected, got no value)",
        ),
        (
            "jail.setparams('luaerr', {persist=true}, jail.UPDATE)",
            "bad argument #2 to 'setparams' (value of persist must be a string, got boolean)",
        ),
        (
            "jail.setparams('luaerr', {'x'}, jail.UPDATE)",
            "bad argument #2 to 'setparams' (parameter names are strings, got integer)",
        ),
        (
            "jail.remove({})",
            "bad argument #1 to 'remove' (jid or name expected, got table)",
        ),
    ] {
        let o = env.run(&format!(
            "local jail = require('jail')\n\
             local ok, e = pcall(function() return {call} end)\n\
             print(ok)\n\
             print(tostring(e))\n"
        ));
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.starts_with("false\n"), "{call} did not raise: {out}");
        assert!(out.contains(msg), "{call}: {out}");
    }
}
