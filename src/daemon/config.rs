//! The configuration file: probes the administrator declares, read at start and on
//! SIGHUP (`/usr/local/etc/jaildaemon.conf` on FreeBSD, `/etc/jaildaemon.conf` on
//! Linux, `-C PATH`).
//!
//! The format is a small subset of TOML, so a file is valid TOML and editors
//! highlight it, yet it is read here line by line, so that every error is reported
//! with its line and the reading goes on (`jaildaemon -n` lists them all):
//!
//! ```text
//! # comment
//! [[probe]]
//! jail = "www"                     # required: jail name (need not exist yet)
//! title = "WWW_RESTART"            # required: unique in the jail
//! command = "service nginx restart"  # required: run on the host
//! mode = "once"                    # once (default) | after-command (-r) | immediately (-R)
//! uid = 0                          # optional
//! gid = 0                          # optional
//! rate = "10/60"                   # optional: -L COUNT/SECONDS
//! max_running = 2                  # optional: -m N
//! ```
//!
//! Strings are `"..."` (escapes `\"`, `\\`, `\n`, `\t`) or `'...'` (literal);
//! numbers are decimal integers. A declared probe always waits for its jail (`-w`).

use std::path::{Path, PathBuf};

use jaildaemon_proto::{ProbeSpec, Rate, Respawn};

/// Default configuration file (FreeBSD).
pub const DEFAULT_CONFIG_FREEBSD: &str = "/usr/local/etc/jaildaemon.conf";
/// Default configuration file (Linux).
pub const DEFAULT_CONFIG_LINUX: &str = "/etc/jaildaemon.conf";
/// Largest configuration file read.
const MAX_CONFIG: u64 = 4 << 20;

/// The default configuration file of this OS.
pub fn default_path() -> PathBuf {
    PathBuf::from(match crate::sys::OS {
        crate::sys::Os::FreeBsd => DEFAULT_CONFIG_FREEBSD,
        crate::sys::Os::Linux => DEFAULT_CONFIG_LINUX,
    })
}

/// A probe declared in the file, and the line of its `[[probe]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declared {
    pub line: usize,
    pub spec: ProbeSpec,
}

/// One error, with its line (1-based; 0: the file as a whole).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Read and parse `path`. `missing_ok`: a file that does not exist declares nothing
/// (the default path); otherwise it is an error.
pub fn load(path: &Path, missing_ok: bool) -> Result<Vec<Declared>, Vec<ConfigError>> {
    let whole = |message: String| vec![ConfigError { line: 0, message }];
    let refuse = |why: String| whole(format!("{why}: refusing to read commands from it"));
    // opened once, never through a link, checked on the opened file, read from it
    let file = match super::trusted::open(path, super::trusted::CONFIG) {
        Ok(Some(f)) => f,
        Ok(None) if missing_ok => return Ok(vec![]),
        Ok(None) => return Err(whole(format!("{}: no such file", path.display()))),
        Err(why) => return Err(refuse(why)),
    };
    // its directory writable by root only, and every directory above it root's
    super::trusted::check_dirs(path, true).map_err(refuse)?;
    let data = super::trusted::read_all(path, file, MAX_CONFIG).map_err(refuse)?;
    let text = String::from_utf8(data).map_err(|e| whole(format!("not UTF-8: {e}")))?;
    parse(&text)
}

#[derive(Default)]
struct Entry {
    line: usize,
    jail: Option<String>,
    title: Option<String>,
    command: Option<String>,
    mode: Option<Respawn>,
    uid: Option<u32>,
    gid: Option<u32>,
    rate: Option<Rate>,
    max_running: Option<u32>,
}

enum Value {
    Str(String),
    Int(u64),
}

/// Parse the text of a configuration file: every declared probe, or every error.
pub fn parse(text: &str) -> Result<Vec<Declared>, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let mut entries: Vec<Entry> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let mut err = |m: String| errors.push(ConfigError { line, message: m });
        let l = raw.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        if l.starts_with('[') {
            if strip_comment(l) == "[[probe]]" {
                entries.push(Entry {
                    line,
                    ..Entry::default()
                });
            } else {
                err(format!("{l}: the only table is [[probe]]"));
            }
            continue;
        }
        let Some((key, rest)) = l.split_once('=') else {
            err(format!("{l}: expected key = value or [[probe]]"));
            continue;
        };
        let key = key.trim();
        let Some(e) = entries.last_mut() else {
            err(format!("{key}: a setting before the first [[probe]]"));
            continue;
        };
        let v = match value(rest.trim()) {
            Ok(v) => v,
            Err(m) => {
                err(format!("{key}: {m}"));
                continue;
            }
        };
        if let Err(m) = set(e, key, v) {
            err(format!("{key}: {m}"));
        }
    }
    let mut out: Vec<Declared> = Vec::new();
    for e in entries {
        let line = e.line;
        let missing: Vec<&str> = [
            ("jail", e.jail.is_none()),
            ("title", e.title.is_none()),
            ("command", e.command.is_none()),
        ]
        .iter()
        .filter(|(_, m)| *m)
        .map(|(k, _)| *k)
        .collect();
        if !missing.is_empty() {
            errors.push(ConfigError {
                line,
                message: format!("[[probe]] without {}", missing.join(", ")),
            });
            continue;
        }
        let spec = ProbeSpec {
            command: e.command.unwrap_or_default(),
            jail: e.jail.unwrap_or_default(),
            respawn: e.mode.unwrap_or(Respawn::Never),
            uid: e.uid,
            gid: e.gid,
            title: e.title,
            rate: e.rate,
            max_running: e.max_running,
            wait: true,
        };
        if let Err(m) = spec.validate() {
            errors.push(ConfigError { line, message: m });
            continue;
        }
        if let Some(d) = out
            .iter()
            .find(|d| d.spec.jail == spec.jail && d.spec.title == spec.title)
        {
            errors.push(ConfigError {
                line,
                message: format!(
                    "title {} is already declared for jail {} on line {}: titles are unique in a jail",
                    spec.title.as_deref().unwrap_or_default(),
                    spec.jail,
                    d.line
                ),
            });
            continue;
        }
        out.push(Declared { line, spec });
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        errors.sort_by_key(|e| e.line);
        Err(errors)
    }
}

fn strip_comment(s: &str) -> &str {
    s.split('#').next().unwrap_or("").trim()
}

fn set(e: &mut Entry, key: &str, v: Value) -> Result<(), String> {
    let s = |v: Value| match v {
        Value::Str(s) => Ok(s),
        Value::Int(_) => Err("expected a string in quotes".to_string()),
    };
    let n = |v: Value| match v {
        Value::Int(n) => u32::try_from(n).map_err(|_| format!("{n} is too large")),
        Value::Str(_) => Err("expected a number without quotes".to_string()),
    };
    let dup = |set: bool| {
        if set {
            Err("given twice in one [[probe]]".to_string())
        } else {
            Ok(())
        }
    };
    match key {
        "jail" => {
            dup(e.jail.is_some())?;
            let j = s(v)?;
            if super::registry::is_jid(&j) {
                return Err(format!(
                    "jail {j:?} is a jid: a declared probe names its jail by name (jids are reused)"
                ));
            }
            e.jail = Some(j)
        }
        "title" => {
            dup(e.title.is_some())?;
            e.title = Some(s(v)?)
        }
        "command" => {
            dup(e.command.is_some())?;
            e.command = Some(s(v)?)
        }
        "mode" => {
            dup(e.mode.is_some())?;
            e.mode = Some(match s(v)?.as_str() {
                "once" => Respawn::Never,
                "after-command" | "-r" => Respawn::AfterCommand,
                "immediately" | "-R" => Respawn::Immediately,
                other => {
                    return Err(format!(
                    "{other:?}: expected \"once\", \"after-command\" (-r) or \"immediately\" (-R)"
                ))
                }
            })
        }
        "uid" => {
            dup(e.uid.is_some())?;
            e.uid = Some(n(v)?)
        }
        "gid" => {
            dup(e.gid.is_some())?;
            e.gid = Some(n(v)?)
        }
        "rate" => {
            dup(e.rate.is_some())?;
            e.rate = Some(Rate::parse(&s(v)?)?)
        }
        "max_running" => {
            dup(e.max_running.is_some())?;
            e.max_running = Some(n(v)?)
        }
        _ => {
            return Err(
                "unknown key (known: jail, title, command, mode, uid, gid, rate, max_running)"
                    .into(),
            )
        }
    }
    Ok(())
}

/// A value and what follows it (nothing, or a comment).
fn value(s: &str) -> Result<Value, String> {
    let (v, rest) = if let Some(body) = s.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = body.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    end = Some(i + 1);
                    break;
                }
                '\\' => match chars.next().map(|(_, c)| c) {
                    Some('"') => out.push('"'),
                    Some('\\') => out.push('\\'),
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some(c) => {
                        return Err(format!("unknown escape \\{c} (known: \\\" \\\\ \\n \\t)"))
                    }
                    None => return Err("unterminated string".into()),
                },
                c => out.push(c),
            }
        }
        let end = end.ok_or("unterminated string")?;
        (Value::Str(out), &body[end..])
    } else if let Some(body) = s.strip_prefix('\'') {
        let end = body.find('\'').ok_or("unterminated string")?;
        (Value::Str(body[..end].to_string()), &body[end + 1..])
    } else {
        let tok = s.split('#').next().unwrap_or("").trim();
        let n = tok
            .parse::<u64>()
            .map_err(|_| format!("{tok:?}: expected a \"string\" or a number"))?;
        (Value::Int(n), &s[s.find('#').unwrap_or(s.len())..])
    };
    let rest = rest.trim();
    if !rest.is_empty() && !rest.starts_with('#') {
        return Err(format!("unexpected {rest:?} after the value"));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_good_file() {
        let d = parse(
            "# probes\n[[probe]]\njail = \"www\"\ntitle = 'WWW_RESTART'\ncommand = \"echo \\\"hi\\\" # not a comment\" # a comment\nmode = \"after-command\"\nuid = 80\nrate = \"5/10\"\n\n[[probe]]\njail=\"db\"\ntitle=\"X\"\ncommand=\"true\"\n",
        )
        .unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].line, 2);
        assert_eq!(d[0].spec.command, "echo \"hi\" # not a comment");
        assert_eq!(d[0].spec.respawn, Respawn::AfterCommand);
        assert_eq!(d[0].spec.uid, Some(80));
        assert_eq!(d[0].spec.rate, Some(Rate { count: 5, secs: 10 }));
        assert!(d[0].spec.wait);
        assert_eq!(d[1].spec.respawn, Respawn::Never);
        assert_eq!(parse("").unwrap(), vec![]);
    }

    #[test]
    fn every_error_has_its_line() {
        let e = parse(
            "[[probe]]\njail = \"www\"\ntitle = \"A\"\ncommand = \"true\"\nmode = \"sometimes\"\n[[probe]]\njail = \"www\"\ncommand = \"true\"\nuid = \"x\"\nfoo = 1\n[[probe]]\njail = \"www\"\ntitle = \"A\"\ncommand = \"x\"\n[table]\njail = \"unterminated\n",
        )
        .unwrap_err();
        let lines: Vec<usize> = e.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![5, 6, 9, 10, 11, 15, 16], "{e:?}");
        assert!(e[0].message.contains("sometimes"));
        assert!(e[1].message.contains("without title"));
        assert!(e[4].message.contains("already declared"), "{e:?}");
    }
}
