//! `jailctl list`: the jail table (JID UUID BOOT STATE TAG TYPE IP4 RELEASE).

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;

use super::R;
use crate::manager::{props, Jail, Manager, ManagerError};

const COLUMNS: [&str; 8] = [
    "JID", "UUID", "BOOT", "STATE", "TAG", "TYPE", "IP4", "RELEASE",
];

pub(super) fn list(
    m: &Manager,
    templates: bool,
    sort: Option<String>,
    script: bool,
    json: bool,
    out: &mut impl Write,
) -> R {
    let running: BTreeMap<String, i32> = crate::jail::list()
        .unwrap_or_default()
        .into_iter()
        .map(|i| (i.name, i.jid))
        .collect();
    let mut rows: Vec<(Vec<String>, &Jail)> = Vec::new();
    let jails = m.jails()?;
    // A TAG borne by several jails (made by hand) is shown on each; they stay
    // reachable by UUID.
    let mut tag_count: BTreeMap<&str, usize> = BTreeMap::new();
    for j in jails.iter().filter(|j| !j.tag().is_empty()) {
        *tag_count.entry(j.tag()).or_default() += 1;
    }
    for j in jails.iter().filter(|j| {
        (j.get("istemplate") == "yes") == templates || j.problem.is_some() && !templates
    }) {
        let jid = running.get(&j.kname()).copied();
        let state = if let Some(p) = &j.problem {
            eprintln!("jailctl: jail {} is CORRUPT: {p}", j.uuid);
            "CORRUPT".to_string()
        } else if tag_count.get(j.tag()).copied().unwrap_or(0) > 1 {
            eprintln!(
                "jailctl: tag {} is borne by {} jails; use their UUIDs (jail {})",
                j.tag(),
                tag_count[j.tag()],
                j.uuid
            );
            if jid.is_some() {
                "up,DUPTAG".into()
            } else {
                "DUPTAG".into()
            }
        } else if let Some((phase, interrupted)) = m.phase(&j.uuid) {
            if interrupted {
                format!("{phase}(interrupted)")
            } else {
                phase
            }
        } else if jid.is_some() {
            "up".into()
        } else {
            "down".into()
        };
        let ip4 = match j.get("ip4_addr") {
            "none" | "" => "-".to_string(),
            v => v.to_string(),
        };
        let row = vec![
            jid.map(|x| x.to_string()).unwrap_or_else(|| "-".into()),
            j.uuid.clone(),
            j.get("boot").to_string(),
            state,
            if j.tag().is_empty() {
                "-".into()
            } else {
                j.tag().to_string()
            },
            j.get("type").to_string(),
            ip4,
            j.get("release").to_string(),
        ];
        rows.push((row, j));
    }
    if let Some(key) = &sort {
        let col = COLUMNS.iter().position(|c| c.eq_ignore_ascii_case(key));
        if col.is_none() && props::lookup(key).is_err() {
            return Err(ManagerError::Invalid(format!(
                "-s {key}: not a column ({}) or a property",
                COLUMNS.join(", ")
            )));
        }
        rows.sort_by(|a, b| {
            let (x, y) = match col {
                Some(c) => (a.0[c].clone(), b.0[c].clone()),
                None => (a.1.get(key).to_string(), b.1.get(key).to_string()),
            };
            match (x.parse::<i64>(), y.parse::<i64>()) {
                (Ok(p), Ok(q)) => p.cmp(&q),
                _ => x.cmp(&y),
            }
        });
    }
    if json {
        let v: Vec<serde_json::Value> = rows
            .iter()
            .map(|(r, j)| {
                let mut o = serde_json::Map::new();
                for (c, val) in COLUMNS.iter().zip(r) {
                    o.insert(
                        c.to_ascii_lowercase(),
                        serde_json::Value::String(val.clone()),
                    );
                }
                if let Some(p) = &j.problem {
                    o.insert("problem".into(), serde_json::Value::String(p.clone()));
                }
                serde_json::Value::Object(o)
            })
            .collect();
        let _ = writeln!(out, "{}", serde_json::to_string_pretty(&v).expect("json"));
        return Ok(ExitCode::SUCCESS);
    }
    if script {
        for (r, _) in &rows {
            let _ = writeln!(out, "{}", r.join("\t"));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut w: Vec<usize> = COLUMNS.iter().map(|c| c.len()).collect();
    for (r, _) in &rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.len());
        }
    }
    let fmt = |cells: Vec<&str>| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<width$}", width = w[i]))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let _ = writeln!(out, "{}", fmt(COLUMNS.to_vec()));
    for (r, _) in &rows {
        let _ = writeln!(out, "{}", fmt(r.iter().map(String::as_str).collect()));
    }
    Ok(ExitCode::SUCCESS)
}
