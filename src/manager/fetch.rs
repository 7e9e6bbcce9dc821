//! `fetch`: release archives from a local directory or over HTTP, checked against a
//! MANIFEST when there is one, extracted with tar(1) (xz, gzip, zstd).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{0}")]
    Invalid(String),
    #[error("{url}: {msg}")]
    Http { url: String, msg: String },
    #[error("{file}: checksum mismatch: MANIFEST says {expected}, the file has {actual}")]
    Checksum {
        file: String,
        expected: String,
        actual: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("extracting {file}: {msg}")]
    Extract { file: String, msg: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> FetchError + '_ {
    move |source| FetchError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Where release files come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Local(PathBuf),
    /// `http://host[:port]/path`
    Http {
        host: String,
        port: u16,
        path: String,
    },
}

impl Origin {
    pub fn parse_http(url: &str) -> Result<Origin, FetchError> {
        if url.starts_with("https://") || url.starts_with("ftp://") {
            return Err(FetchError::Invalid(format!(
                "ftphost={url}: only http:// is supported; or use ftplocaldir=DIR"
            )));
        }
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            FetchError::Invalid(format!("ftphost={url}: expected http://host[:port]/path"))
        })?;
        let (hostport, path) = rest
            .split_once('/')
            .map(|(h, p)| (h, format!("/{p}")))
            .unwrap_or((rest, "/".into()));
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (
                h.to_string(),
                p.parse::<u16>()
                    .map_err(|_| FetchError::Invalid(format!("ftphost={url}: bad port {p}")))?,
            ),
            None => (hostport.to_string(), 80),
        };
        if host.is_empty() {
            return Err(FetchError::Invalid(format!("ftphost={url}: no host")));
        }
        Ok(Origin::Http { host, port, path })
    }

    fn describe(&self, file: &str) -> String {
        match self {
            Origin::Local(d) => d.join(file).display().to_string(),
            Origin::Http { host, port, path } => {
                format!("http://{host}:{port}{}/{file}", path.trim_end_matches('/'))
            }
        }
    }
}

/// GET over HTTP/1.0 into `dest`; Ok(false) on 404.
/// Network time limits of a fetch (`connect_timeout=`, `read_timeout=` in seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    pub read: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            read: Duration::from_secs(30),
        }
    }
}

fn http_get(
    origin: &Origin,
    file: &str,
    dest: &Path,
    progress: bool,
    limits: Timeouts,
) -> Result<bool, FetchError> {
    let Origin::Http { host, port, path } = origin else {
        unreachable!()
    };
    let url = origin.describe(file);
    let herr = |msg: String| FetchError::Http {
        url: url.clone(),
        msg,
    };
    use std::net::ToSocketAddrs;
    let addrs: Vec<_> = (host.as_str(), *port)
        .to_socket_addrs()
        .map_err(|e| herr(format!("resolving {host}: {e}")))?
        .collect();
    let mut last = None;
    let mut conn = None;
    for a in &addrs {
        match TcpStream::connect_timeout(a, limits.connect) {
            Ok(c) => {
                conn = Some(c);
                break;
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
                ) =>
            {
                last = Some(format!(
                    "connecting to {host}:{port} ({a}) timed out after {} s (connect_timeout)",
                    limits.connect.as_secs()
                ))
            }
            Err(e) => last = Some(format!("connecting to {host}:{port} ({a}): {e}")),
        }
    }
    let mut s = conn.ok_or_else(|| herr(last.unwrap_or_else(|| format!("{host}: no address"))))?;
    s.set_read_timeout(Some(limits.read))
        .map_err(|e| herr(e.to_string()))?;
    s.set_write_timeout(Some(limits.read))
        .map_err(|e| herr(e.to_string()))?;
    let read_err = |e: std::io::Error| {
        if matches!(
            e.kind(),
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
        ) {
            herr(format!(
                "{host}:{port} sent nothing for {} s (read_timeout)",
                limits.read.as_secs()
            ))
        } else {
            herr(e.to_string())
        }
    };
    let req = format!("GET {}/{file} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: jailctl\r\nConnection: close\r\n\r\n", path.trim_end_matches('/'));
    s.write_all(req.as_bytes()).map_err(read_err)?;
    let mut r = BufReader::new(s);
    let mut status = String::new();
    r.read_line(&mut status).map_err(read_err)?;
    let code = status
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| herr(format!("bad status line {status:?}")))?;
    let mut length = None;
    loop {
        let mut h = String::new();
        r.read_line(&mut h).map_err(read_err)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse::<u64>().ok();
            }
            if k.eq_ignore_ascii_case("transfer-encoding")
                && v.trim().eq_ignore_ascii_case("chunked")
            {
                return Err(herr("chunked transfer encoding is not supported".into()));
            }
        }
    }
    if code == 404 {
        return Ok(false);
    }
    if code != 200 {
        return Err(herr(format!("HTTP status {code}")));
    }
    let mut out = File::create(dest).map_err(io(dest))?;
    copy_with_progress(&mut r, &mut out, length, file, progress).map_err(|e| {
        if matches!(
            e.kind(),
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
        ) {
            read_err(e)
        } else {
            io(dest)(e)
        }
    })?;
    if let Some(l) = length {
        let got = std::fs::metadata(dest).map_err(io(dest))?.len();
        if got != l {
            return Err(herr(format!("truncated: got {got} of {l} bytes")));
        }
    }
    Ok(true)
}

fn copy_with_progress(
    r: &mut impl Read,
    w: &mut impl Write,
    total: Option<u64>,
    name: &str,
    progress: bool,
) -> std::io::Result<u64> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut done = 0u64;
    let mut last_pct = u64::MAX;
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        w.write_all(&buf[..n])?;
        done += n as u64;
        if progress {
            if let Some(t) = total.filter(|t| *t > 0) {
                let pct = done * 100 / t;
                if pct != last_pct {
                    last_pct = pct;
                    let bar = "#".repeat((pct / 4) as usize);
                    eprint!("\r{name:<12} [{bar:<25}] {pct:>3}%");
                }
            }
        }
    }
    if progress {
        eprintln!();
    }
    Ok(done)
}

/// Fetch one file into `dest`; Ok(false) when it does not exist at the origin.
fn obtain(
    origin: &Origin,
    file: &str,
    dest: &Path,
    progress: bool,
    limits: Timeouts,
) -> Result<bool, FetchError> {
    match origin {
        Origin::Local(dir) => {
            let src = dir.join(file);
            if !src.exists() {
                return Ok(false);
            }
            let mut r = File::open(&src).map_err(io(&src))?;
            let total = r.metadata().ok().map(|m| m.len());
            let mut w = File::create(dest).map_err(io(dest))?;
            copy_with_progress(&mut r, &mut w, total, file, progress).map_err(io(dest))?;
            Ok(true)
        }
        Origin::Http { .. } => http_get(origin, file, dest, progress, limits),
    }
}

/// FreeBSD's MANIFEST: `file<TAB>sha256<TAB>...` per line.
pub fn parse_manifest(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split('\t');
            Some((
                f.next()?.trim().to_string(),
                f.next()?.trim().to_ascii_lowercase(),
            ))
        })
        .filter(|(_, h)| h.len() == 64)
        .collect()
}

pub fn sha256_file(p: &Path) -> Result<String, FetchError> {
    let mut f = File::open(p).map_err(io(p))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf).map_err(io(p))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Download (or copy) `files` into `download`, check them, and extract them in order
/// into `root`. Returns the files' checksums.
pub fn fetch_into(
    origin: &Origin,
    files: &[String],
    download: &Path,
    root: &Path,
    progress: bool,
    limits: Timeouts,
) -> Result<Vec<(String, String)>, FetchError> {
    std::fs::create_dir_all(download).map_err(io(download))?;
    let mpath = download.join("MANIFEST");
    let manifest = if obtain(origin, "MANIFEST", &mpath, false, limits)? {
        Some(parse_manifest(
            &std::fs::read_to_string(&mpath).map_err(io(&mpath))?,
        ))
    } else {
        None
    };
    let mut sums = Vec::new();
    for f in files {
        if f.contains('/') || f.is_empty() {
            return Err(FetchError::Invalid(format!(
                "ftpfiles: \"{f}\" is not a file name"
            )));
        }
        let dest = download.join(f);
        if !obtain(origin, f, &dest, progress, limits)? {
            return Err(FetchError::Invalid(format!(
                "{} does not exist",
                origin.describe(f)
            )));
        }
        let actual = sha256_file(&dest)?;
        if let Some(m) = &manifest {
            match m.get(f) {
                Some(expected) if *expected != actual => {
                    return Err(FetchError::Checksum {
                        file: f.clone(),
                        expected: expected.clone(),
                        actual,
                    })
                }
                Some(_) => {}
                None => {
                    return Err(FetchError::Invalid(format!(
                        "{f} is not listed in the MANIFEST"
                    )))
                }
            }
        }
        crate::sys::tool::extract(&dest, root).map_err(|e| FetchError::Extract {
            file: f.clone(),
            msg: e.msg,
        })?;
        sums.push((f.clone(), actual));
    }
    Ok(sums)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            Origin::parse_http("http://127.0.0.1:8080/rel/14.0").unwrap(),
            Origin::Http {
                host: "127.0.0.1".into(),
                port: 8080,
                path: "/rel/14.0".into()
            }
        );
        assert_eq!(
            Origin::parse_http("http://mirror").unwrap(),
            Origin::Http {
                host: "mirror".into(),
                port: 80,
                path: "/".into()
            }
        );
        assert!(Origin::parse_http("https://x/")
            .unwrap_err()
            .to_string()
            .contains("only http"));
        assert!(Origin::parse_http("mirror/x").is_err());
    }

    #[test]
    fn manifest() {
        let m = parse_manifest(&format!(
            "base.txz\t{}\t123\tbase\t\"Base system\"\ton\nbad line\n",
            "a".repeat(64)
        ));
        assert_eq!(m.len(), 1);
        assert_eq!(m["base.txz"], "a".repeat(64));
    }
}
