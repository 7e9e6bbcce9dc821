//! `jailctl cap`, `uncap`, `limits` and `inuse`: the resource limits of running jails.

use std::io::Write;
use std::process::ExitCode;

use super::R;
use crate::manager::Manager;

/// Print rows under `columns`: a table, tab-separated without header (`-H`), or a
/// JSON list of objects keyed by the lower-cased column names.
fn table(columns: &[String], rows: &[Vec<String>], script: bool, json: bool, out: &mut impl Write) {
    if json {
        let v: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                let o: serde_json::Map<String, serde_json::Value> = columns
                    .iter()
                    .zip(r)
                    .map(|(c, v)| (c.to_ascii_lowercase(), serde_json::Value::String(v.clone())))
                    .collect();
                serde_json::Value::Object(o)
            })
            .collect();
        let _ = writeln!(out, "{}", serde_json::to_string_pretty(&v).expect("json"));
        return;
    }
    if script {
        for r in rows {
            let _ = writeln!(out, "{}", r.join("\t"));
        }
        return;
    }
    super::list::aligned(columns, rows, out);
}

pub(super) fn cap(m: &Manager, jail: &str) -> R {
    for n in m.cap(jail)? {
        eprintln!("jailctl: note: {n}");
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn uncap(m: &Manager, jail: &str) -> R {
    m.uncap(jail)?;
    Ok(ExitCode::SUCCESS)
}

/// `[-H] [--json] [UUID|TAG]` of `limits` and `inuse`.
#[derive(Debug, clap::Args)]
pub struct TableArgs {
    /// Tab-separated, without header (for scripts).
    #[arg(short = 'H')]
    script: bool,
    #[arg(long)]
    json: bool,
    jail: Option<String>,
}

pub(super) fn limits(m: &Manager, a: &TableArgs, out: &mut impl Write) -> R {
    let (jail, script, json) = (a.jail.as_deref(), a.script, a.json);
    let cols = ["UUID", "TAG", "RESOURCE", "CONFIGURED", "APPLIED"].map(String::from);
    let rows: Vec<Vec<String>> = m
        .limits(jail)?
        .into_iter()
        .map(|l| vec![l.uuid, l.tag, l.resource, l.configured, l.applied])
        .collect();
    table(&cols, &rows, script, json, out);
    Ok(ExitCode::SUCCESS)
}

pub(super) fn inuse(m: &Manager, a: &TableArgs, out: &mut impl Write) -> R {
    let (jail, script, json) = (a.jail.as_deref(), a.script, a.json);
    let usage = m.inuse(jail)?;
    let mut keys: Vec<String> = Vec::new();
    for u in &usage {
        for (k, _) in &u.values {
            if !keys.contains(k) {
                keys.push(k.clone());
            }
        }
    }
    let mut cols = vec!["UUID".to_string(), "TAG".to_string()];
    cols.extend(keys.iter().map(|k| k.to_ascii_uppercase()));
    let rows: Vec<Vec<String>> = usage
        .into_iter()
        .map(|u| {
            let mut r = vec![u.uuid, u.tag];
            for k in &keys {
                let v = u
                    .values
                    .iter()
                    .find(|(x, _)| x == k)
                    .map(|(_, v)| v.clone());
                r.push(v.unwrap_or_else(|| "-".into()));
            }
            r
        })
        .collect();
    table(&cols, &rows, script, json, out);
    Ok(ExitCode::SUCCESS)
}
