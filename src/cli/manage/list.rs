//! `jailctl list`: the jail table (JID UUID BOOT STATE TAG TYPE IP4 RELEASE).

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
    let listed = m.listing(templates)?;
    let mut rows: Vec<(Vec<String>, &Jail)> = Vec::new();
    for l in &listed {
        if let Some(w) = &l.warning {
            eprintln!("jailctl: {w}");
        }
        let (j, jid, state) = (&l.jail, l.jid, l.state.clone());
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
    let header: Vec<String> = COLUMNS.iter().map(|c| c.to_string()).collect();
    let cells: Vec<Vec<String>> = rows.into_iter().map(|(r, _)| r).collect();
    aligned(&header, &cells, out);
    Ok(ExitCode::SUCCESS)
}

/// Print rows under `columns` as a table of left-aligned columns two spaces apart.
pub(super) fn aligned(columns: &[String], rows: &[Vec<String>], out: &mut impl Write) {
    let mut w: Vec<usize> = columns.iter().map(String::len).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.len());
        }
    }
    let line = |cells: &[String]| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<width$}", width = w[i]))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let _ = writeln!(out, "{}", line(columns));
    for r in rows {
        let _ = writeln!(out, "{}", line(r));
    }
}
