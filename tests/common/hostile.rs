//! What tests/containment.rs, tests/containment_more.rs and tests/daemon_security.rs
//! share: static C helpers compiled from tests/helpers (`hostile` above all, see the
//! comment at the top of hostile.c), hostile's `ALLOWED`/`DENIED` report, and the Linux
//! capability names and sets the jails are checked against.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------
// Capabilities

/// linux/capability.h, by number.
pub const CAP_NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The number of capability `name`; panics on an unknown name.
pub fn cap(name: &str) -> u32 {
    CAP_NAMES
        .iter()
        .position(|n| *n == name)
        .unwrap_or_else(|| panic!("unknown capability {name}")) as u32
}

/// The mask of the named capabilities.
pub fn mask(names: &[&str]) -> u64 {
    names.iter().fold(0, |m, n| m | 1u64 << cap(n))
}

/// What root keeps in every default jail (FreeBSD's jail root, in Linux terms).
pub const BASE: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_IPC_OWNER",
    "CAP_SYS_CHROOT",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_SETFCAP",
];

/// The names of the capabilities in mask `m` ("none" when empty).
pub fn cap_list(m: u64) -> String {
    let v: Vec<&str> = (0..64)
        .filter(|b| m & (1u64 << b) != 0)
        .map(|b| CAP_NAMES.get(b).copied().unwrap_or("CAP_?"))
        .collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(" ")
    }
}

/// The Cap* lines of a /proc/PID/status text: "CapBnd" -> mask.
pub fn caps_of(status: &str) -> BTreeMap<String, u64> {
    status
        .lines()
        .filter(|l| l.starts_with("Cap"))
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.to_string(), u64::from_str_radix(v.trim(), 16).ok()?))
        })
        .collect()
}

/// The value of line `key:` of a /proc/PID/status text.
pub fn status_field<'a>(status: &'a str, key: &str) -> Option<&'a str> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':').map(str::trim))
}

// ---------------------------------------------------------------------------------
// Static C helpers

/// Compile tests/helpers/NAME.c statically (so it runs in a busybox root and as any user)
/// into the target's test directory and return its path. Built under a name of this
/// process first and renamed, so concurrent test binaries never see a partial file.
pub fn compile_static(name: &str) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/helpers/{name}.c"));
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(dir).unwrap();
    let tmp = dir.join(format!(
        "{name}.{}.{}",
        env!("CARGO_CRATE_NAME"),
        std::process::id()
    ));
    let out = dir.join(name);
    let fix = "install a C compiler and the static C library: apt-get install -y gcc libc6-dev";
    let o = Command::new("cc")
        .args(["-static", "-O2", "-o"])
        .arg(&tmp)
        .arg(&src)
        .output()
        .unwrap_or_else(|e| panic!("cannot run cc ({e}) to build {}: {fix}", src.display()));
    assert!(
        o.status.success(),
        "compiling {} with `cc -static -O2` failed:\n{}\n{fix}",
        src.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    std::fs::rename(&tmp, &out).unwrap();
    out
}

/// tests/helpers/hostile.c, compiled once per test run.
pub fn hostile_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| compile_static("hostile"))
}

/// Put `hostile` into a jail root's /bin, and an empty /mnt.
pub fn install_hostile(root: &Path) {
    let dst = root.join("bin/hostile");
    std::fs::copy(hostile_bin(), &dst).unwrap();
    std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir_all(root.join("mnt")).unwrap();
}

// ---------------------------------------------------------------------------------
// hostile's report

/// One line of hostile's report.
#[derive(Debug, Clone, PartialEq)]
pub enum Attempt {
    Allowed(String),
    Denied(String, String),
}

/// hostile's report: what -> result, in order (the "-> target" of ALLOWED lines dropped).
pub fn attempts(out: &str) -> Vec<(String, Attempt)> {
    out.lines()
        .filter_map(|l| {
            if let Some(rest) = l.strip_prefix("ALLOWED ") {
                let what = rest.split(" -> ").next().unwrap().trim().to_string();
                Some((what.clone(), Attempt::Allowed(rest.to_string())))
            } else if let Some(rest) = l.strip_prefix("DENIED ") {
                let (what, errno) = rest.rsplit_once(' ')?;
                Some((
                    what.to_string(),
                    Attempt::Denied(what.to_string(), errno.to_string()),
                ))
            } else {
                None
            }
        })
        .collect()
}

/// Lines `ALLOWED ...` of hostile's report.
pub fn allowed_lines(out: &str) -> Vec<&str> {
    out.lines().filter(|l| l.starts_with("ALLOWED ")).collect()
}

/// The errno of the attempt `what`, None when it was allowed; panics when absent.
pub fn errno_of(out: &str, what: &str) -> Option<String> {
    match attempts(out).into_iter().find(|(w, _)| w == what) {
        Some((_, Attempt::Denied(_, e))) => Some(e),
        Some((_, Attempt::Allowed(_))) => None,
        None => panic!("hostile did not report `{what}` (killed by a filter?):\n{out}"),
    }
}

/// Assert hostile reported `what` refused, with one of `errnos`.
pub fn assert_denied_with(out: &str, what: &str, errnos: &[&str]) {
    match errno_of(out, what) {
        Some(e) => assert!(
            errnos.contains(&e.as_str()),
            "`{what}` was refused with {e}, want one of {errnos:?}\n{out}"
        ),
        None => panic!("`{what}` was ALLOWED inside the jail:\n{out}"),
    }
}

/// Assert hostile reported `what` refused (any errno).
pub fn assert_denied(out: &str, what: &str) {
    assert!(
        errno_of(out, what).is_some(),
        "`{what}` was ALLOWED inside the jail:\n{out}"
    );
}

// ---------------------------------------------------------------------------------
// Waiting

/// Poll `f` every 25 ms for `secs` seconds; its last answer.
pub fn wait_until(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    f()
}
