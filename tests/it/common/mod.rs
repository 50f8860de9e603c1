//! Shared harness for ringkv's integration tests.
//!
//! * [`Server::ringkv`] starts the `ringkv` binary built by cargo
//!   (`CARGO_BIN_EXE_ringkv`) on an ephemeral 127.0.0.1 port with
//!   `--no-pin --save "" --enable-debug-command yes` (DEBUG is refused
//!   by default, as in Redis 7.0).
//! * [`Server::redis`] starts a real `redis-server` (the reference
//!   implementation) the same way, or returns `None` when it is not
//!   installed (panicking instead when `CI=true`).
//!
//! Override for validating the test suite itself: when the environment
//! variable `RINGKV_TEST_BIN` is set, `Server::ringkv` starts that binary
//! instead of the cargo-built one.  If the override's file name contains
//! `redis-server` (e.g. `RINGKV_TEST_BIN=/usr/bin/redis-server`), it is
//! started with redis-server's command line (`--port P --bind 127.0.0.1
//! --save "" --appendonly no --enable-debug-command yes`; the shard count
//! and extra ringkv arguments are ignored).  Running the whole suite that way must pass: it proves
//! every assertion encodes real Redis 7.0 behaviour.
//!
//! Everything binds 127.0.0.1 only, and every wait is bounded.

#![allow(dead_code)]

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use redis::{ConnectionLike, Value};

mod pipe;
pub use pipe::{read_one_reply, Pipe};

/// Shard counts every shard-sensitive test is run with.
pub const SHARD_COUNTS: [usize; 2] = [1, 2];

/// Server configurations for the protocol-heavy tests: both shard counts
/// on the default (io_uring) backend, plus the epoll backend.
pub const CONFIGS: [(usize, &[&str]); 3] = [(1, &[]), (2, &[]), (2, &["--io", "epoll"])];

/// How long a server may take to answer its first PING.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Poll interval while waiting for a server to come up.
const START_POLL: Duration = Duration::from_millis(20);
/// Start attempts (each on a fresh port) when the server exits early.
const START_ATTEMPTS: usize = 5;
/// Read/write timeout for `redis` crate connections so a hung server
/// fails a test instead of hanging it.
const CLIENT_IO_TIMEOUT: Duration = Duration::from_secs(10);

static SERVER_SEQ: AtomicUsize = AtomicUsize::new(0);

/// Which kind of process a [`Server`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// The ringkv binary under test (or the `RINGKV_TEST_BIN` override).
    Ringkv,
    /// A real redis-server (reference implementation).
    Redis,
}

/// A server child process listening on 127.0.0.1:`port`; killed on drop.
pub struct Server {
    child: Child,
    port: u16,
    dir: PathBuf,
    label: String,
    flavor: Flavor,
}

/// Looks `name` up in `$PATH` (and /usr/bin, /usr/local/bin).
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.push(PathBuf::from("/usr/bin"));
    dirs.push(PathBuf::from("/usr/local/bin"));
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

/// Returns the path of an external tool (redis-server, redis-cli,
/// redis-benchmark).  When it is missing: panics under `CI=true`,
/// otherwise prints `SKIPPED: <name> not installed` and returns `None`
/// (the caller then returns early).
pub fn require_tool(name: &str) -> Option<PathBuf> {
    if let Some(p) = find_tool(name) {
        return Some(p);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{name} missing under CI");
    }
    eprintln!("SKIPPED: {name} not installed");
    None
}

/// Picks a currently free 127.0.0.1 port (bind :0, read it, drop it).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local_addr").port()
}

fn redis_server_args(port: u16) -> Vec<String> {
    vec![
        "--port".into(),
        port.to_string(),
        "--bind".into(),
        "127.0.0.1".into(),
        "--save".into(),
        String::new(),
        "--appendonly".into(),
        "no".into(),
        "--enable-debug-command".into(),
        "yes".into(),
    ]
}

fn is_redis_server(bin: &Path) -> bool {
    bin.file_name()
        .map(|n| n.to_string_lossy().contains("redis-server"))
        .unwrap_or(false)
}

impl Server {
    /// Starts ringkv with `--shards shards --no-pin --save ""` plus
    /// `extra_args` (see the module docs for the `RINGKV_TEST_BIN` override).
    pub fn ringkv(shards: usize, extra_args: &[&str]) -> Server {
        let bin = match std::env::var_os("RINGKV_TEST_BIN") {
            Some(b) if !b.is_empty() => PathBuf::from(b),
            _ => PathBuf::from(env!("CARGO_BIN_EXE_ringkv")),
        };
        if is_redis_server(&bin) {
            return Server::start(&bin, Flavor::Ringkv, &format!("{bin:?}"), redis_server_args);
        }
        let extra: Vec<String> = extra_args.iter().map(|s| s.to_string()).collect();
        let label = format!("ringkv --shards {shards} {}", extra.join(" "))
            .trim_end()
            .to_string();
        Server::start(&bin, Flavor::Ringkv, &label, move |port| {
            let mut a = vec![
                "--port".to_string(),
                port.to_string(),
                "--bind".into(),
                "127.0.0.1".into(),
                "--shards".into(),
                shards.to_string(),
                "--no-pin".into(),
                "--save".into(),
                String::new(),
                "--enable-debug-command".into(),
                "yes".into(),
            ];
            a.extend(extra.iter().cloned());
            a
        })
    }

    /// Starts a real redis-server, or returns `None` (after printing
    /// `SKIPPED: redis-server not installed`) when it is not installed.
    /// Panics with "redis-server missing under CI" when `CI=true`.
    pub fn redis() -> Option<Server> {
        let bin = require_tool("redis-server")?;
        Some(Server::start(
            &bin,
            Flavor::Redis,
            "redis-server",
            redis_server_args,
        ))
    }

    fn start(bin: &Path, flavor: Flavor, label: &str, args: impl Fn(u16) -> Vec<String>) -> Server {
        let seq = SERVER_SEQ.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("ringkv-test-{}-{seq}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create server work dir");
        let log_path = dir.join("server.log");
        let mut last_log = String::new();
        for attempt in 1..=START_ATTEMPTS {
            let port = free_port();
            let log = std::fs::File::create(&log_path).expect("create server log");
            let log2 = log.try_clone().expect("clone log handle");
            let mut child = Command::new(bin)
                .args(args(port))
                .current_dir(&dir)
                .stdin(Stdio::null())
                .stdout(Stdio::from(log))
                .stderr(Stdio::from(log2))
                .spawn()
                .unwrap_or_else(|e| panic!("cannot spawn {bin:?}: {e}"));
            let deadline = Instant::now() + START_TIMEOUT;
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    last_log = std::fs::read_to_string(&log_path).unwrap_or_default();
                    eprintln!(
                        "{label} on port {port} exited early ({status}), attempt {attempt}/{START_ATTEMPTS}"
                    );
                    break;
                }
                if ping_ok(port) && matches!(child.try_wait(), Ok(None)) {
                    return Server {
                        child,
                        port,
                        dir,
                        label: label.to_string(),
                        flavor,
                    };
                }
                if Instant::now() >= deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                    let _ = std::fs::remove_dir_all(&dir);
                    panic!(
                        "{label} did not answer PING on 127.0.0.1:{port} within {START_TIMEOUT:?}\n--- server log ---\n{log}"
                    );
                }
                std::thread::sleep(START_POLL);
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        panic!("{label} exited early {START_ATTEMPTS} times\n--- last server log ---\n{last_log}");
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn flavor(&self) -> Flavor {
        self.flavor
    }

    /// Human-readable description (used in assertion messages).
    pub fn label(&self) -> &str {
        &self.label
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// A RESP2 `redis` crate connection with bounded I/O timeouts.
    pub fn client(&self) -> redis::Connection {
        connect(&self.url())
    }

    /// A RESP3 connection (the crate sends `HELLO 3` on connect).
    pub fn client_resp3(&self) -> redis::Connection {
        connect(&format!("{}?protocol=resp3", self.url()))
    }

    /// Everything the server wrote to stdout/stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// Whether the child process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Asserts the server process is alive and a fresh connection gets PONG.
    pub fn assert_alive(&mut self) {
        assert!(
            self.is_running(),
            "{} died\n--- log ---\n{}",
            self.label,
            self.log()
        );
        assert!(
            ping_ok(self.port),
            "{} does not answer PING\n--- log ---\n{}",
            self.label,
            self.log()
        );
    }

    /// Opens a raw TCP connection (for protocol-level tests).
    pub fn raw_conn(&self) -> RawConn {
        RawConn::connect(self.port)
    }

    /// Sends `bytes` on a fresh connection and returns everything read
    /// until the peer closes or stays silent for 300 ms (max 5 s total).
    pub fn raw(&self, bytes: &[u8]) -> Vec<u8> {
        let mut c = self.raw_conn();
        c.send(bytes);
        c.read_idle(Duration::from_millis(300), Duration::from_secs(5))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn connect(url: &str) -> redis::Connection {
    let client = redis::Client::open(url).expect("redis client url");
    let con = client
        .get_connection_with_timeout(Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("connect {url}: {e}"));
    con.set_read_timeout(Some(CLIENT_IO_TIMEOUT))
        .expect("set_read_timeout");
    con.set_write_timeout(Some(CLIENT_IO_TIMEOUT))
        .expect("set_write_timeout");
    con
}

/// One bounded PING round trip on a fresh connection.
pub fn ping_ok(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    let _ = s.set_write_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"*1\r\n$4\r\nPING\r\n").is_err() {
        return false;
    }
    let mut buf = Vec::new();
    let mut chunk = [0u8; 64];
    while buf.len() < 7 {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    buf.starts_with(b"+PONG\r\n")
}

/// A raw socket to a server, with bounded reads.
pub struct RawConn {
    pub stream: TcpStream,
}

impl RawConn {
    pub fn connect(port: u16) -> RawConn {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
            .unwrap_or_else(|e| panic!("raw connect 127.0.0.1:{port}: {e}"));
        stream.set_nodelay(true).expect("nodelay");
        stream
            .set_write_timeout(Some(Duration::from_secs(5)))
            .expect("write timeout");
        RawConn { stream }
    }

    /// Writes all of `bytes` (panics on error).
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("raw send");
    }

    /// Writes `bytes`, returning false if the peer already closed/reset.
    pub fn try_send(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).is_ok()
    }

    /// Reads until at least `len` bytes arrived, the peer closed, or
    /// `timeout` elapsed.
    pub fn read_len(&mut self, len: usize, timeout: Duration) -> Vec<u8> {
        let deadline = Instant::now() + timeout;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 16384];
        while buf.len() < len {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            self.stream
                .set_read_timeout(Some(left))
                .expect("read timeout");
            match self.stream.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        buf
    }

    /// Reads exactly as many bytes as `expected` has (bounded by 5 s) and
    /// asserts they are equal.
    pub fn expect(&mut self, expected: &[u8]) {
        let got = self.read_len(expected.len(), Duration::from_secs(5));
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(expected),
            "raw reply mismatch"
        );
    }

    /// Reads until the peer is silent for `idle`, closes, or `max` elapsed.
    pub fn read_idle(&mut self, idle: Duration, max: Duration) -> Vec<u8> {
        let deadline = Instant::now() + max;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 16384];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            self.stream
                .set_read_timeout(Some(idle.min(left)))
                .expect("read timeout");
            match self.stream.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        buf
    }

    /// Reads until EOF (or `timeout`).  Returns the bytes and whether the
    /// peer closed the connection (EOF or reset) within the timeout.
    pub fn read_to_eof(&mut self, timeout: Duration) -> (Vec<u8>, bool) {
        let deadline = Instant::now() + timeout;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 16384];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return (buf, false);
            }
            self.stream
                .set_read_timeout(Some(left))
                .expect("read timeout");
            match self.stream.read(&mut chunk) {
                Ok(0) => return (buf, true),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return (buf, false)
                }
                // ECONNRESET and friends: the server closed on us.
                Err(_) => return (buf, true),
            }
        }
    }

    /// Half-closes our writing side.
    pub fn shutdown_write(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }
}

/// Encodes a command as a RESP multibulk request.
pub fn resp_cmd(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A reply as seen by a client: a value, or the full error line text
/// (e.g. `"ERR syntax error"`, `"WRONGTYPE Operation against ..."`).
pub type Reply = Result<Value, String>;

fn redis_error_text(e: &redis::RedisError) -> String {
    match (e.code(), e.detail()) {
        (Some(c), Some(d)) => format!("{c} {d}"),
        (Some(c), None) => c.to_string(),
        _ => format!("{e}"),
    }
}

/// RESP encoding of a command given as strings.
pub fn resp_strs(args: &[&str]) -> Vec<u8> {
    let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
    resp_cmd(&a)
}

/// A reply as text with HELLO's client id (which differs between
/// servers) replaced by `<id>`.
pub fn mask_hello_id(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b).into_owned();
    match s.find("$2\r\nid\r\n:") {
        Some(i) => {
            let rest = &s[i + 9..];
            let end = rest.find("\r\n").unwrap_or(0);
            format!("{}<id>{}", &s[..i + 9], &rest[end..])
        }
        None => s,
    }
}

/// Sends one command and returns the raw reply, with server errors
/// turned into `Err(text)`.  I/O and parse failures panic.
pub fn exec(con: &mut redis::Connection, cmd: &redis::Cmd) -> Reply {
    match con.req_command(cmd) {
        // Render the error back into its wire text (`CODE detail`).
        Ok(Value::ServerError(e)) => Err(match e.details() {
            Some(d) => format!("{} {d}", e.code()),
            None => e.code().to_string(),
        }),
        Ok(v) => Ok(v),
        Err(e)
            if e.kind() == redis::ErrorKind::IoError
                || e.kind() == redis::ErrorKind::ParseError =>
        {
            panic!("I/O failure running {:?}: {e}", cmd_text(cmd))
        }
        Err(e) => Err(redis_error_text(&e)),
    }
}

/// Builds a command from string arguments.
pub fn cmd(args: &[&str]) -> redis::Cmd {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c
}

/// Runs a command given as string arguments (see [`exec`]).
pub fn run(con: &mut redis::Connection, args: &[&str]) -> Reply {
    exec(con, &cmd(args))
}

/// Runs a command that must succeed and returns its reply.
pub fn ok(con: &mut redis::Connection, args: &[&str]) -> Value {
    match run(con, args) {
        Ok(v) => v,
        Err(e) => panic!("{args:?} failed: {e}"),
    }
}

/// Runs a command that must fail and returns its error text.
pub fn err(con: &mut redis::Connection, args: &[&str]) -> String {
    match run(con, args) {
        Ok(v) => panic!("{args:?} unexpectedly succeeded: {v:?}"),
        Err(e) => e,
    }
}

/// Printable form of a command's arguments (for failure messages).
pub fn cmd_text(cmd: &redis::Cmd) -> String {
    cmd.args_iter()
        .map(|a| match a {
            redis::Arg::Simple(b) => format!("{:?}", String::from_utf8_lossy(b)),
            redis::Arg::Cursor => "<cursor>".to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Shorthand constructors for expected values.
pub fn bulk(s: &str) -> Value {
    Value::BulkString(s.as_bytes().to_vec())
}

pub fn int(i: i64) -> Value {
    Value::Int(i)
}

pub fn arr(v: Vec<Value>) -> Value {
    Value::Array(v)
}

pub fn status(s: &str) -> Value {
    Value::SimpleString(s.to_string())
}

/// CRC16/XMODEM as used by Redis Cluster key slots.
pub fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in data {
        crc ^= (b as u16) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// Redis Cluster hash slot of `key` (honouring `{hash tags}`).
pub fn key_slot(key: &[u8]) -> u16 {
    let mut k = key;
    if let Some(open) = key.iter().position(|&c| c == b'{') {
        if let Some(len) = key[open + 1..].iter().position(|&c| c == b'}') {
            if len > 0 {
                k = &key[open + 1..open + 1 + len];
            }
        }
    }
    crc16(k) % 16384
}

/// The shard a key is expected to live on with `shards` shards
/// (slot mod shards).  Only used to make sure tests spread keys.
pub fn shard_of(key: &str, shards: usize) -> usize {
    key_slot(key.as_bytes()) as usize % shards
}

/// Finds two keys with the given prefix that live on different shards
/// (with 2 shards).  Deterministic.
pub fn keys_on_different_shards(prefix: &str) -> (String, String) {
    let a = format!("{prefix}0");
    let sa = shard_of(&a, 2);
    for i in 1..1000 {
        let b = format!("{prefix}{i}");
        if shard_of(&b, 2) != sa {
            return (a, b);
        }
    }
    unreachable!("no key on the other shard")
}

// ---------------------------------------------------------------------------
// Added for tests/it/rdb_interop.rs: servers started with a data directory (and
// other redis.conf directives), processes expected to exit on their own, and
// access to a server's pid / work dir. Nothing above is changed.
// ---------------------------------------------------------------------------

/// The binary [`Server::ringkv`] starts: `RINGKV_TEST_BIN` when set, else
/// the cargo-built ringkv.
pub fn ringkv_bin() -> PathBuf {
    match std::env::var_os("RINGKV_TEST_BIN") {
        Some(b) if !b.is_empty() => PathBuf::from(b),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_ringkv")),
    }
}

/// The full command line [`Server::ringkv_in_dir`] uses: ringkv's usual
/// arguments (`--port P --bind 127.0.0.1 --shards N --no-pin --save ""`)
/// then `--dir dir` then `extra_args`. Under a `redis-server` override the
/// redis-server arguments replace ringkv's (shard count dropped) and
/// `--dir dir` plus `extra_args` (which must then be redis.conf directives
/// both servers accept, e.g. `--save "3600 1"`, `--dbfilename f`) follow.
pub fn ringkv_dir_args(shards: usize, port: u16, dir: &Path, extra_args: &[&str]) -> Vec<String> {
    let mut a = if is_redis_server(&ringkv_bin()) {
        redis_server_args(port)
    } else {
        vec![
            "--port".to_string(),
            port.to_string(),
            "--bind".into(),
            "127.0.0.1".into(),
            "--shards".into(),
            shards.to_string(),
            "--no-pin".into(),
            "--save".into(),
            String::new(),
            "--enable-debug-command".into(),
            "yes".into(),
        ]
    };
    a.push("--dir".into());
    a.push(dir.display().to_string());
    a.extend(extra_args.iter().map(|s| s.to_string()));
    a
}

impl Server {
    /// Starts ringkv (or the `RINGKV_TEST_BIN` override) like
    /// [`Server::ringkv`], with `--dir dir` (the directory it loads
    /// `dump.rdb` from and saves to) and `extra_args`; see
    /// [`ringkv_dir_args`]. The server's cwd/log dir is still its own
    /// private work dir; `dir` is left alone on drop.
    pub fn ringkv_in_dir(shards: usize, dir: &Path, extra_args: &[&str]) -> Server {
        let bin = ringkv_bin();
        let dir = dir.to_path_buf();
        let extra: Vec<String> = extra_args.iter().map(|s| s.to_string()).collect();
        let label = format!(
            "ringkv --shards {shards} --dir {} {}",
            dir.display(),
            extra.join(" ")
        )
        .trim_end()
        .to_string();
        Server::start(&bin, Flavor::Ringkv, &label, move |port| {
            let e: Vec<&str> = extra.iter().map(|s| s.as_str()).collect();
            ringkv_dir_args(shards, port, &dir, &e)
        })
    }

    /// Starts a real redis-server with its usual arguments plus
    /// `extra_args` (e.g. `--dir D --dbfilename dump.rdb`), or returns
    /// `None` when it is not installed (see [`Server::redis`]).
    pub fn redis_with(extra_args: &[&str]) -> Option<Server> {
        let bin = require_tool("redis-server")?;
        let extra: Vec<String> = extra_args.iter().map(|s| s.to_string()).collect();
        let label = format!("redis-server {}", extra.join(" "))
            .trim_end()
            .to_string();
        Some(Server::start(&bin, Flavor::Redis, &label, move |port| {
            let mut a = redis_server_args(port);
            a.extend(extra.iter().cloned());
            a
        }))
    }

    /// The server's private work directory (its cwd; holds server.log;
    /// removed on drop). redis-server saves its dump.rdb here by default.
    pub fn work_dir(&self) -> &Path {
        &self.dir
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `timeout` for the process to exit on its own (after
    /// SHUTDOWN or a signal); `None` if it is still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(st);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(START_POLL);
        }
    }
}

/// Runs `bin args` with cwd `cwd`, stdout+stderr captured to a file in
/// `cwd`, and waits up to `timeout` for it to exit. Returns its exit status
/// (`None`: still running at the deadline, then killed) and its output.
pub fn run_until_exit(
    bin: &Path,
    args: &[String],
    cwd: &Path,
    timeout: Duration,
) -> (Option<std::process::ExitStatus>, String) {
    let seq = SERVER_SEQ.fetch_add(1, Ordering::SeqCst);
    let log_path = cwd.join(format!("exit-run-{seq}.log"));
    let log = std::fs::File::create(&log_path).expect("create run log");
    let log2 = log.try_clone().expect("clone log handle");
    let mut child = Command::new(bin)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log2))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot spawn {bin:?}: {e}"));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Ok(Some(st)) = child.try_wait() {
            break Some(st);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(START_POLL);
    };
    let out = std::fs::read_to_string(&log_path).unwrap_or_default();
    let _ = std::fs::remove_file(&log_path);
    (status, out)
}

impl Server {
    /// Starts ringkv with `conf` as its config file (the first argument,
    /// as redis-server wants it) followed by ringkv's usual arguments and
    /// `extra_args`.
    pub fn ringkv_conf(conf: &Path, extra_args: &[&str]) -> Server {
        let bin = ringkv_bin();
        let conf = conf.display().to_string();
        let extra: Vec<String> = extra_args.iter().map(|s| s.to_string()).collect();
        let label = format!("ringkv {conf} {}", extra.join(" "));
        Server::start(&bin, Flavor::Ringkv, &label, move |port| {
            let mut a = vec![conf.clone()];
            if is_redis_server(&ringkv_bin()) {
                a.extend(redis_server_args(port));
            } else {
                a.extend(
                    [
                        "--port",
                        &port.to_string(),
                        "--bind",
                        "127.0.0.1",
                        "--shards",
                        "1",
                        "--no-pin",
                        "--save",
                        "",
                    ]
                    .map(String::from),
                );
            }
            a.extend(extra.iter().cloned());
            a
        })
    }

    /// Starts a real redis-server with `conf` as its config file, then
    /// its usual arguments and `extra_args`; `None` when not installed.
    pub fn redis_conf(conf: &Path, extra_args: &[&str]) -> Option<Server> {
        let bin = require_tool("redis-server")?;
        let conf = conf.display().to_string();
        let extra: Vec<String> = extra_args.iter().map(|s| s.to_string()).collect();
        let label = format!("redis-server {conf} {}", extra.join(" "));
        Some(Server::start(&bin, Flavor::Redis, &label, move |port| {
            let mut a = vec![conf.clone()];
            a.extend(redis_server_args(port));
            a.extend(extra.iter().cloned());
            a
        }))
    }
}

/// python3 with redis-py importable; None (with a loud message) only when
/// python3 itself is missing. Fails when redis-py cannot be imported.
pub fn python_with_redis() -> Option<std::path::PathBuf> {
    let Some(py) = find_tool("python3") else {
        eprintln!("!!!!! SKIPPED: python3 is not installed, redis-py test not run !!!!!");
        return None;
    };
    let out = Command::new(&py)
        .args(["-c", "import redis; print(redis.__version__)"])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "python3 cannot `import redis` (apt-get install python3-redis, or pip install redis): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(py)
}

/// Runs a redis-py script (`text`, saved as `name`) against `port`; it
/// must exit 0 and print `ok` last.
pub fn run_py(py: &std::path::Path, name: &str, text: &str, port: u16, label: &str) {
    let dir = std::env::temp_dir().join(format!("ringkv-py-{}-{}", std::process::id(), name));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join(name);
    std::fs::write(&script, text).unwrap();
    let mut child = Command::new(py)
        .arg(&script)
        .arg(port.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{label}: redis-py script hung");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.ends_with(b"ok\n"),
        "{label}: redis-py script failed\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
