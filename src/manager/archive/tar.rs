//! Reading an untrusted tar archive (ustar, pax and GNU long names) and extracting
//! it into a fresh directory with every member checked: the path stays below the
//! target (no absolute path, no `..`), no member is written through a link (every
//! parent must be a real directory made by this extraction), hard links point at
//! regular files already extracted, device nodes are refused (but an overlay
//! whiteout, 0:0, in a thin jail's changes), setuid and setgid bits are dropped.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// What went wrong reading or extracting an archive.
#[derive(Debug, thiserror::Error)]
pub enum TarError {
    #[error("archive: {0}")]
    Bad(String),
    #[error("archive member {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

fn bad(m: impl Into<String>) -> TarError {
    TarError::Bad(m.into())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    HardLink,
    Symlink,
    Dir,
    Fifo,
    CharDev,
    BlockDev,
}

#[derive(Debug, Clone)]
pub struct Member {
    pub path: String,
    pub kind: Kind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    pub size: u64,
    pub link: String,
    pub dev: (u32, u32),
}

fn num(f: &[u8]) -> Result<u64, TarError> {
    if f.first().is_some_and(|b| b & 0x80 != 0) {
        // base-256
        let mut v: u64 = (f[0] & 0x7f) as u64;
        for b in &f[1..] {
            v = v.checked_mul(256).ok_or_else(|| bad("number too large"))? + *b as u64;
        }
        return Ok(v);
    }
    let s: String = f
        .iter()
        .take_while(|b| **b != 0)
        .map(|b| *b as char)
        .collect();
    let s = s.trim();
    if s.is_empty() {
        return Ok(0);
    }
    u64::from_str_radix(s, 8).map_err(|_| bad(format!("bad number {s:?} in a header")))
}

fn text(f: &[u8]) -> String {
    String::from_utf8_lossy(&f[..f.iter().position(|b| *b == 0).unwrap_or(f.len())]).into_owned()
}

/// pax records `LEN KEY=VALUE\n`.
fn pax(data: &[u8]) -> Result<BTreeMap<String, String>, TarError> {
    let mut m = BTreeMap::new();
    let mut rest = data;
    while !rest.is_empty() {
        let sp = rest
            .iter()
            .position(|b| *b == b' ')
            .ok_or_else(|| bad("bad pax record"))?;
        let len: usize = std::str::from_utf8(&rest[..sp])
            .ok()
            .and_then(|s| s.parse().ok())
            .filter(|l| *l > sp && *l <= rest.len())
            .ok_or_else(|| bad("bad pax record length"))?;
        let rec = &rest[sp + 1..len];
        let rec = rec.strip_suffix(b"\n").unwrap_or(rec);
        if let Some(eq) = rec.iter().position(|b| *b == b'=') {
            m.insert(
                String::from_utf8_lossy(&rec[..eq]).into_owned(),
                String::from_utf8_lossy(&rec[eq + 1..]).into_owned(),
            );
        }
        rest = &rest[len..];
    }
    Ok(m)
}

/// The members of a tar stream, each handed to `f` with a reader of its data.
pub fn walk(
    mut r: impl Read,
    mut f: impl FnMut(&Member, &mut dyn Read) -> Result<(), TarError>,
) -> Result<(), TarError> {
    let io = |source| TarError::Io {
        path: "(stream)".into(),
        source,
    };
    let mut long_name: Option<String> = None;
    let mut long_link: Option<String> = None;
    let mut ext: BTreeMap<String, String> = BTreeMap::new();
    loop {
        let mut h = [0u8; 512];
        r.read_exact(&mut h)
            .map_err(|_| bad("truncated (no end marker)"))?;
        if h.iter().all(|b| *b == 0) {
            return Ok(());
        }
        let sum: u64 = h
            .iter()
            .enumerate()
            .map(|(i, b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    *b as u64
                }
            })
            .sum();
        if num(&h[148..156])? != sum {
            return Err(bad("header checksum mismatch"));
        }
        let size = match ext.get("size") {
            Some(s) => s.parse().map_err(|_| bad("bad pax size"))?,
            None => num(&h[124..136])?,
        };
        // a hostile size cannot overflow the padding arithmetic below
        if size >= 1 << 62 {
            return Err(bad(format!("member size {size} is not plausible")));
        }
        let padded = size.div_ceil(512) * 512;
        let flag = h[156];
        if matches!(flag, b'x' | b'g' | b'L' | b'K') {
            if size > 1 << 20 {
                return Err(bad("extended header larger than 1 MiB"));
            }
            let mut data = vec![0u8; padded as usize];
            r.read_exact(&mut data).map_err(io)?;
            data.truncate(size as usize);
            match flag {
                b'x' => ext = pax(&data)?,
                b'L' => long_name = Some(text(&data)),
                b'K' => long_link = Some(text(&data)),
                _ => {}
            }
            continue;
        }
        let kind = match flag {
            b'0' | 0 | b'7' => Kind::File,
            b'1' => Kind::HardLink,
            b'2' => Kind::Symlink,
            b'3' => Kind::CharDev,
            b'4' => Kind::BlockDev,
            b'5' => Kind::Dir,
            b'6' => Kind::Fifo,
            other => {
                return Err(bad(format!(
                    "member type {:?} is not accepted",
                    other as char
                )))
            }
        };
        let ustar = &h[257..262] == b"ustar";
        let mut path = text(&h[0..100]);
        if ustar && h[345] != 0 {
            path = format!("{}/{path}", text(&h[345..500]));
        }
        let path = ext.remove("path").or(long_name.take()).unwrap_or(path);
        let link = ext
            .remove("linkpath")
            .or(long_link.take())
            .unwrap_or_else(|| text(&h[157..257]));
        let pick = |k: &str, dflt: u64| -> u64 {
            ext.get(k)
                .and_then(|v| v.split('.').next().and_then(|v| v.parse().ok()))
                .unwrap_or(dflt)
        };
        let m = Member {
            path,
            kind,
            mode: num(&h[100..108])? as u32,
            uid: pick("uid", num(&h[108..116])?) as u32,
            gid: pick("gid", num(&h[116..124])?) as u32,
            mtime: pick("mtime", num(&h[136..148])?) as i64,
            size: if matches!(kind, Kind::File) { size } else { 0 },
            link,
            dev: (num(&h[329..337])? as u32, num(&h[337..345])? as u32),
        };
        ext.clear();
        let mut data = (&mut r).take(m.size);
        f(&m, &mut data)?;
        std::io::copy(&mut data, &mut std::io::sink()).map_err(io)?;
        let rest = padded.saturating_sub(m.size);
        std::io::copy(&mut (&mut r).take(rest), &mut std::io::sink()).map_err(io)?;
    }
}

/// The components of a member path: relative, no `..`, `.` and empty ones dropped.
pub fn components(p: &str) -> Result<Vec<&str>, TarError> {
    if p.starts_with('/') {
        return Err(bad(format!("{p}: an absolute path")));
    }
    let c: Vec<&str> = p
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    if c.contains(&"..") {
        return Err(bad(format!("{p}: a path with '..'")));
    }
    Ok(c)
}

/// Extracts members below `target`; counts what was changed on the way.
pub struct Extractor {
    pub target: PathBuf,
    /// Whiteouts (char 0:0) are accepted: a thin jail's changes.
    pub whiteouts: bool,
    /// The archive's top directory that `target` stands for (hard link targets).
    pub strip: Option<String>,
    pub stripped_setid: usize,
    /// Keep setuid/setgid bits (a trusted archive).
    pub keep_setid: bool,
}

impl Extractor {
    /// `target/c...`, every parent a real directory (made if missing).
    fn place(&self, comps: &[&str]) -> Result<PathBuf, TarError> {
        let mut p = self.target.clone();
        for c in &comps[..comps.len().saturating_sub(1)] {
            p.push(c);
            match fs::symlink_metadata(&p) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(bad(format!(
                        "{}: a parent is not a directory (a link?)",
                        comps.join("/")
                    )))
                }
                Err(_) => fs::create_dir(&p).map_err(|e| ioe(&p, e))?,
            }
        }
        if let Some(last) = comps.last() {
            p.push(last);
        }
        Ok(p)
    }

    /// Extract member `m` whose path below the target is `comps` (empty: the
    /// target itself).
    pub fn put(&mut self, m: &Member, comps: &[&str], data: &mut dyn Read) -> Result<(), TarError> {
        let p = self.place(comps)?;
        let mut mode = m.mode & 0o7777;
        if !self.keep_setid {
            if mode & 0o6000 != 0 && m.kind != Kind::Dir {
                self.stripped_setid += 1;
            }
            mode &= !0o6000;
        }
        let exists = fs::symlink_metadata(&p).ok();
        if exists
            .as_ref()
            .is_some_and(|e| !(e.is_dir() && m.kind == Kind::Dir))
        {
            return Err(bad(format!("{}: appears twice", m.path)));
        }
        match m.kind {
            Kind::Dir => {
                if exists.is_none() {
                    fs::create_dir(&p).map_err(|e| ioe(&p, e))?;
                }
                fs::set_permissions(&p, fs::Permissions::from_mode(mode))
                    .map_err(|e| ioe(&p, e))?;
            }
            Kind::File => {
                let mut f = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&p)
                    .map_err(|e| ioe(&p, e))?;
                let n = std::io::copy(data, &mut f).map_err(|e| ioe(&p, e))?;
                if n != m.size {
                    return Err(bad(format!("{}: truncated", m.path)));
                }
                f.set_permissions(fs::Permissions::from_mode(mode))
                    .map_err(|e| ioe(&p, e))?;
                let t =
                    std::time::UNIX_EPOCH + std::time::Duration::from_secs(m.mtime.max(0) as u64);
                let _ = f.set_modified(t);
            }
            Kind::Symlink => std::os::unix::fs::symlink(&m.link, &p).map_err(|e| ioe(&p, e))?,
            Kind::HardLink => {
                let lc = components(&m.link)?;
                let first = self.strip.as_deref();
                let lc = strip_first(&lc, first)
                    .ok_or_else(|| bad(format!("{}: a hard link out of the tree", m.path)))?;
                let to = self.place(lc)?;
                match fs::symlink_metadata(&to) {
                    Ok(t) if t.is_file() => {}
                    _ => return Err(bad(format!("{}: a hard link to no regular file", m.path))),
                }
                fs::hard_link(&to, &p).map_err(|e| ioe(&p, e))?;
                return Ok(());
            }
            Kind::Fifo => crate::sys::snapio::make_fifo(&p, mode).map_err(|e| ioe(&p, e))?,
            Kind::CharDev if self.whiteouts && m.dev == (0, 0) => {
                crate::sys::snapio::make_whiteout(&p).map_err(|e| ioe(&p, e))?
            }
            Kind::CharDev | Kind::BlockDev => {
                return Err(bad(format!("{}: device nodes are not accepted", m.path)))
            }
        }
        std::os::unix::fs::lchown(&p, Some(m.uid), Some(m.gid)).map_err(|e| ioe(&p, e))
    }
}

fn ioe(p: &Path, source: std::io::Error) -> TarError {
    TarError::Io {
        path: p.display().to_string(),
        source,
    }
}

/// `comps` without its first component if that is `first`.
pub fn strip_first<'a, 'b>(comps: &'a [&'b str], first: Option<&str>) -> Option<&'a [&'b str]> {
    match (comps.first(), first) {
        (Some(c), Some(f)) if *c == f => Some(&comps[1..]),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_paths() {
        assert_eq!(
            components("./root/etc/passwd").unwrap(),
            ["root", "etc", "passwd"]
        );
        assert!(components("/etc/passwd").is_err());
        assert!(components("root/../../etc").is_err());
        assert!(components("root/a/..").is_err());
        assert_eq!(strip_first(&["root", "a"], Some("root")).unwrap(), ["a"]);
        assert!(strip_first(&["upper", "a"], Some("root")).is_none());
    }

    #[test]
    fn pax_records() {
        let m = pax(b"16 path=a/b/cde\n12 uid=1000\n").unwrap();
        assert_eq!(m["path"], "a/b/cde");
        assert_eq!(m["uid"], "1000");
        assert!(pax(b"99 path=x\n").is_err());
    }

    fn header(name: &str, flag: u8, size: usize) -> [u8; 512] {
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..107].copy_from_slice(b"0000644");
        h[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
        h[156] = flag;
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        let sum: u64 = h
            .iter()
            .enumerate()
            .map(|(i, b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    *b as u64
                }
            })
            .sum();
        h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        h
    }

    #[test]
    fn a_hostile_pax_size_is_refused_not_wrapped() {
        let rec = b"29 size=18446744073709551615\n";
        let mut s = header("x", b'x', rec.len()).to_vec();
        let mut data = rec.to_vec();
        data.resize(512, 0);
        s.extend(data);
        s.extend(header("root/a", b'0', 0));
        s.extend([0u8; 1024]);
        let err = walk(&s[..], |_, _| Ok(())).unwrap_err();
        assert!(err.to_string().contains("not plausible"), "{err}");
    }
}
