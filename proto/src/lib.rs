//! The wire protocol between the `jaildaemon` utility and the daemon.
//!
//! # Transport
//! A unix stream socket (default `/var/run/jaildaemon.pipe`, mode 0600). The client
//! sends one request frame; the daemon answers with exactly one response frame and
//! closes the connection.
//!
//! # Framing
//! A frame is a 4-byte big-endian unsigned length `N` followed by `N` bytes of UTF-8
//! JSON. `N` is at most [`MAX_FRAME`]; a longer announced length is refused without
//! reading the body. A connection that closes before a whole frame arrived carries no
//! request and gets no action.
//!
//! # Messages
//! Every frame body is an [`Envelope`]: `{"version": 1, "body": ...}`. The body of a
//! request is a [`Request`], the body of a response a [`Response`] (serde's externally
//! tagged enums: `{"Register": {...}}`, `"Ping"`). A request whose version is not
//! [`PROTOCOL_VERSION`] is answered with [`Response::Error`] naming both versions and
//! is not acted on. Unknown fields are refused.
//!
//! # Semantics
//! * `Ping` -> `Pong`: anyone may ask; used to detect a running daemon.
//! * `Register` -> `Registered` once the probe runs in the jail, or `Error` with the
//!   reason (no such jail, attach failed, bad uid, a title the jail already has ...).
//!   Root only. With `wait` (`-w`) a jail that does not exist is waited for and the
//!   answer comes at once (`jid` and `pid` 0). `wait` is sent only when set, so an
//!   older daemon still reads every other request.
//! * `List { after }` -> `Probes { probes, next }`: the probes with ids above `after`,
//!   as many as fit in one frame; `next` is the `after` of the next page, `None` on the
//!   last one. Root only.
//! * `Remove` -> `Removed` once the probe process is gone, or `Error`. Root only.

use std::io::{self, Read, Write};

use serde::{de::DeserializeOwned, Deserialize, Serialize};

/// Version of the messages below. Bumped on any incompatible change.
pub const PROTOCOL_VERSION: u32 = 2;

/// Largest frame body accepted, in bytes.
pub const MAX_FRAME: usize = 64 * 1024;

/// Longest command accepted, in bytes.
pub const MAX_COMMAND: usize = 32 * 1024;

/// Longest probe title accepted, in bytes.
pub const MAX_TITLE: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope<T> {
    pub version: u32,
    pub body: T,
}

/// When a probe is spawned again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Respawn {
    /// Single shot (default): the probe fires once.
    Never,
    /// `-r`: a new probe after the command has completed.
    AfterCommand,
    /// `-R`: a new probe at once; commands may overlap.
    Immediately,
}

impl Respawn {
    pub fn flag(self) -> &'static str {
        match self {
            Respawn::Never => "once",
            Respawn::AfterCommand => "-r",
            Respawn::Immediately => "-R",
        }
    }
}

/// What `jaildaemon -c` asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeSpec {
    /// Run with `/bin/sh -c` on the host when the probe is triggered.
    pub command: String,
    /// Jail id or name.
    pub jail: String,
    pub respawn: Respawn,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// Process title of the probe; a default is chosen when absent.
    pub title: Option<String>,
    /// Sustained rate of commands (`-L COUNT/SECONDS`); the daemon's default if absent.
    #[serde(default)]
    pub rate: Option<Rate>,
    /// Commands of this probe running at once (`-m N`); the daemon's default if absent.
    #[serde(default)]
    pub max_running: Option<u32>,
    /// `-w`: a jail that does not exist (yet) is waited for, without limit; the probe
    /// is armed when it appears and re-armed each time it is created again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub wait: bool,
}

/// A token bucket: at most `count` commands at once, refilled at `count` per `secs`
/// seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    pub count: u32,
    pub secs: u32,
}

/// The daemon's default rate: 10 commands, refilled over a minute.
pub const DEFAULT_RATE: Rate = Rate {
    count: 10,
    secs: 60,
};
/// The daemon's default number of commands a probe may have running at once.
pub const DEFAULT_MAX_RUNNING: u32 = 2;
/// Largest `-m` accepted.
pub const MAX_MAX_RUNNING: u32 = 1024;

impl Rate {
    /// Parse `COUNT/SECONDS` (both positive integers).
    pub fn parse(s: &str) -> Result<Rate, String> {
        let bad = || format!("-L {s}: expected COUNT/SECONDS with positive integers, e.g. 10/60");
        let (c, t) = s.split_once('/').ok_or_else(bad)?;
        let count: u32 = c.trim().parse().map_err(|_| bad())?;
        let secs: u32 = t.trim().parse().map_err(|_| bad())?;
        if count == 0 || secs == 0 || count > 1_000_000 || secs > 86_400 * 365 {
            return Err(bad());
        }
        Ok(Rate { count, secs })
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.count, self.secs)
    }
}

/// A character that must not appear in a title: control characters and the Unicode
/// bidirectional controls (which make `ps` show something else than what `pkill -f`
/// matches).
pub fn bad_title_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

impl ProbeSpec {
    /// Check what can be checked without the daemon: sizes and characters.
    pub fn validate(&self) -> Result<(), String> {
        if self.command.trim().is_empty() {
            return Err("the command is empty".into());
        }
        if self.command.len() > MAX_COMMAND {
            return Err(format!(
                "the command is {} bytes long; at most {MAX_COMMAND} are accepted",
                self.command.len()
            ));
        }
        if self.command.contains('\0') {
            return Err("the command contains a NUL byte".into());
        }
        if self.jail.is_empty() || self.jail.contains('\0') {
            return Err("the jail is empty or contains a NUL byte".into());
        }
        if let Some(t) = &self.title {
            if t.is_empty() {
                return Err("the title is empty".into());
            }
            if t.len() > MAX_TITLE {
                return Err(format!(
                    "the title is {} bytes long; at most {MAX_TITLE} are accepted",
                    t.len()
                ));
            }
            if t.chars().any(bad_title_char) {
                return Err(
                    "the title contains control or bidirectional-override characters (newline, ESC, U+202E, ...); use printable text"
                        .into(),
                );
            }
        }
        if let Some(r) = &self.rate {
            Rate::parse(&r.to_string())?;
        }
        if let Some(m) = self.max_running {
            if m == 0 || m > MAX_MAX_RUNNING {
                return Err(format!(
                    "-m {m}: the number of commands running at once must be 1 to {MAX_MAX_RUNNING}"
                ));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Request {
    Ping,
    Register(ProbeSpec),
    List { after: u64 },
    Remove { id: u64 },
}

/// State of a registered probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProbeState {
    /// The probe process waits in the jail for its SIGHUP.
    Armed,
    /// Triggered; the command runs (no probe in the jail under `-r`).
    Running,
    /// Waiting for the jail to come back before re-arming.
    WaitingForJail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeInfo {
    pub id: u64,
    pub jail: String,
    pub jid: i32,
    pub title: String,
    pub uid: u32,
    pub gid: u32,
    pub respawn: Respawn,
    pub command: String,
    pub state: ProbeState,
    /// Host pid of the probe process while armed.
    pub pid: Option<i32>,
    pub triggers: u64,
    /// Unix time (seconds) of the last trigger.
    pub last_trigger: Option<u64>,
    /// Commands currently running for this probe.
    pub running_commands: u32,
    /// Triggers that ran no command of their own: coalesced into a later one because
    /// of the rate limit or the cap on running commands.
    pub coalesced: u64,
    /// A command is waiting for the rate limit or a free slot.
    pub pending: bool,
    /// The rate limit: `rate_count` commands refilled over `rate_secs` seconds.
    pub rate_count: u32,
    pub rate_secs: u32,
    /// Commands of this probe that may run at once.
    pub max_running: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Response {
    Pong {
        pid: u32,
        version: u32,
    },
    Registered {
        id: u64,
        jid: i32,
        jail: String,
        pid: i32,
        title: String,
    },
    Probes {
        probes: Vec<ProbeInfo>,
        next: Option<u64>,
    },
    Removed {
        id: u64,
    },
    Error {
        message: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {0} bytes is larger than the {MAX_FRAME} bytes allowed")]
    TooLarge(usize),
    #[error("connection closed in the middle of a frame")]
    Truncated,
    #[error("connection closed before any frame")]
    Closed,
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error("protocol version {got} is not supported (this side speaks {PROTOCOL_VERSION})")]
    Version { got: u32 },
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Encode a message as one frame (length prefix included).
pub fn encode<T: Serialize>(body: &T) -> Result<Vec<u8>, FrameError> {
    let env = Envelope {
        version: PROTOCOL_VERSION,
        body,
    };
    let json = serde_json::to_vec(&env).map_err(|e| FrameError::Malformed(e.to_string()))?;
    if json.len() > MAX_FRAME {
        return Err(FrameError::TooLarge(json.len()));
    }
    let mut out = Vec::with_capacity(4 + json.len());
    out.extend_from_slice(&(json.len() as u32).to_be_bytes());
    out.extend_from_slice(&json);
    Ok(out)
}

/// Decode a frame body (without the length prefix), checking the version.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, FrameError> {
    #[derive(Deserialize)]
    struct VersionOnly {
        version: u32,
    }
    let v: VersionOnly =
        serde_json::from_slice(body).map_err(|e| FrameError::Malformed(e.to_string()))?;
    if v.version != PROTOCOL_VERSION {
        return Err(FrameError::Version { got: v.version });
    }
    let env: Envelope<T> =
        serde_json::from_slice(body).map_err(|e| FrameError::Malformed(e.to_string()))?;
    Ok(env.body)
}

/// Check a length prefix.
pub fn frame_len(prefix: [u8; 4]) -> Result<usize, FrameError> {
    let n = u32::from_be_bytes(prefix) as usize;
    if n > MAX_FRAME {
        return Err(FrameError::TooLarge(n));
    }
    Ok(n)
}

/// Read one frame body from a blocking reader.
pub fn read_frame(r: &mut impl Read) -> Result<Vec<u8>, FrameError> {
    let mut prefix = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut prefix[got..])? {
            0 if got == 0 => return Err(FrameError::Closed),
            0 => return Err(FrameError::Truncated),
            n => got += n,
        }
    }
    let n = frame_len(prefix)?;
    let mut body = vec![0u8; n];
    r.read_exact(&mut body).map_err(truncated)?;
    Ok(body)
}

/// A short read inside a frame is a truncated frame.
fn truncated(e: io::Error) -> FrameError {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        FrameError::Truncated
    } else {
        e.into()
    }
}

/// Read one frame body from an async reader: the same rules as [`read_frame`]
/// (`Closed` before any byte, `Truncated` in the middle, the length checked before
/// the body is read).
#[cfg(feature = "tokio")]
pub async fn read_frame_async<R>(r: &mut R) -> Result<Vec<u8>, FrameError>
where
    R: tokio::io::AsyncRead + Unpin + ?Sized,
{
    use tokio::io::AsyncReadExt;
    let mut prefix = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut prefix[got..]).await? {
            0 if got == 0 => return Err(FrameError::Closed),
            0 => return Err(FrameError::Truncated),
            n => got += n,
        }
    }
    let n = frame_len(prefix)?;
    let mut body = vec![0u8; n];
    r.read_exact(&mut body).await.map_err(truncated)?;
    Ok(body)
}

/// Read and decode one message from an async reader.
#[cfg(feature = "tokio")]
pub async fn read_message_async<T, R>(r: &mut R) -> Result<T, FrameError>
where
    T: DeserializeOwned,
    R: tokio::io::AsyncRead + Unpin + ?Sized,
{
    decode(&read_frame_async(r).await?)
}

/// Write one message as a frame to a blocking writer.
pub fn write_message<T: Serialize>(w: &mut impl Write, msg: &T) -> Result<(), FrameError> {
    w.write_all(&encode(msg)?)?;
    w.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ProbeSpec {
        ProbeSpec {
            command: "echo hi".into(),
            jail: "www01".into(),
            respawn: Respawn::AfterCommand,
            uid: Some(80),
            gid: None,
            title: Some("T".into()),
            rate: None,
            max_running: None,
            wait: false,
        }
    }

    #[test]
    fn round_trip() {
        let f = encode(&Request::Register(spec())).unwrap();
        let body = read_frame(&mut &f[..]).unwrap();
        assert_eq!(decode::<Request>(&body).unwrap(), Request::Register(spec()));
        let f = encode(&Response::Error {
            message: "jail www01 does not exist".into(),
        })
        .unwrap();
        let r: Response = decode(&read_frame(&mut &f[..]).unwrap()).unwrap();
        assert!(matches!(r, Response::Error { .. }));
    }

    #[test]
    fn bad_frames() {
        assert!(matches!(read_frame(&mut &[][..]), Err(FrameError::Closed)));
        assert!(matches!(
            read_frame(&mut &[0, 0][..]),
            Err(FrameError::Truncated)
        ));
        assert!(matches!(
            read_frame(&mut &[0, 0, 0, 10, b'{'][..]),
            Err(FrameError::Truncated)
        ));
        assert!(matches!(
            read_frame(&mut &[0xff, 0xff, 0xff, 0xff][..]),
            Err(FrameError::TooLarge(_))
        ));
        assert!(matches!(
            decode::<Request>(b"not json"),
            Err(FrameError::Malformed(_))
        ));
        assert!(matches!(
            decode::<Request>(br#"{"version":99,"body":"Ping"}"#),
            Err(FrameError::Version { got: 99 })
        ));
        assert!(matches!(
            decode::<Request>(br#"{"version":2,"body":"Launch"}"#),
            Err(FrameError::Malformed(_))
        ));
        assert!(matches!(
            decode::<Request>(br#"{"version":2,"body":"Ping","extra":1}"#),
            Err(FrameError::Malformed(_))
        ));
        assert_eq!(
            decode::<Request>(br#"{"version":2,"body":"Ping"}"#).unwrap(),
            Request::Ping
        );
    }

    #[cfg(feature = "tokio")]
    #[test]
    fn async_reader_reads_the_same_frames() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let f = encode(&Request::Register(spec())).unwrap();
            assert_eq!(read_frame_async(&mut &f[..]).await.unwrap(), f[4..]);
            let r: Request = read_message_async(&mut &f[..]).await.unwrap();
            assert_eq!(r, Request::Register(spec()));
            // One byte at a time: the prefix may arrive in pieces.
            let mut slow = tokio::io::BufReader::with_capacity(1, &f[..]);
            assert_eq!(read_frame_async(&mut slow).await.unwrap(), f[4..]);
            let cases: [(&[u8], fn(&FrameError) -> bool); 4] = [
                (&[], |e| matches!(e, FrameError::Closed)),
                (&[0, 0], |e| matches!(e, FrameError::Truncated)),
                (&[0, 0, 0, 10, b'{'], |e| matches!(e, FrameError::Truncated)),
                (&[0xff, 0xff, 0xff, 0xff], |e| {
                    matches!(e, FrameError::TooLarge(_))
                }),
            ];
            for (bytes, want) in cases {
                let e = read_frame_async(&mut &bytes[..]).await.unwrap_err();
                assert!(want(&e), "{bytes:?}: {e}");
            }
        });
    }

    #[test]
    fn oversized_message_is_refused_on_encode() {
        let mut s = spec();
        s.command = "x".repeat(MAX_FRAME + 1);
        assert!(matches!(
            encode(&Request::Register(s)),
            Err(FrameError::TooLarge(_))
        ));
    }

    #[test]
    fn validation() {
        assert!(spec().validate().is_ok());
        let mut s = spec();
        s.command = "x".repeat(MAX_COMMAND + 1);
        assert!(s.validate().unwrap_err().contains("at most"));
        let mut s = spec();
        s.title = Some("a\nb".into());
        assert!(s.validate().is_err());
        let mut s = spec();
        s.title = Some("t".repeat(MAX_TITLE + 1));
        assert!(s.validate().unwrap_err().contains("title"));
        for evil in ["evil\u{202E}txt", "a\u{1b}[2Jb", "x\u{2066}y"] {
            s.title = Some(evil.into());
            assert!(
                s.validate().unwrap_err().contains("bidirectional"),
                "{evil:?}"
            );
        }
        s.title = Some("WWW_RESTART é".into());
        assert!(s.validate().is_ok());
        s.max_running = Some(0);
        assert!(s.validate().unwrap_err().contains("-m 0"));
        s.max_running = Some(3);
        assert_eq!(Rate::parse("3/60"), Ok(Rate { count: 3, secs: 60 }));
        for bad in ["0/0", "x", "3/", "/5", "3/0", "-1/5"] {
            assert!(Rate::parse(bad).unwrap_err().contains("-L"), "{bad}");
        }
        let mut s = spec();
        s.command = "  ".into();
        assert!(s.validate().is_err());
    }
}
