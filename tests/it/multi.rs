//! MULTI / EXEC / DISCARD / WATCH / UNWATCH, proved against a real
//! redis-server 7.0 and real clients.
//!
//! * A seeded differential (`tx_*_match_redis_*`): random sessions of
//!   transactions (valid commands on every type, keys on every shard,
//!   commands refused while queueing, commands failing inside EXEC, nested
//!   MULTI, EXEC/DISCARD without MULTI, WATCH/UNWATCH inside MULTI,
//!   blocking commands and SELECT inside MULTI, keyless commands) and of
//!   WATCH sessions where a second connection writes (or does a no-op
//!   write, or writes another db) between WATCH and EXEC, including keys
//!   that expire. Pipelined at depths 1, 16 and 50, RESP2 and RESP3, with
//!   1 and 4 shards (and 2 on the epoll backend); replies are parsed strictly and compared one by one
//!   (TIME inside EXEC by shape only). A failure prints the seed.
//! * Concurrency: WATCH retry loops on counters spread over shards, and a
//!   bank-transfer invariant checked by MGET and by MULTI/GET/EXEC readers.
//! * Real clients: redis-rs (`redis::transaction`, `pipe().atomic()`),
//!   redis-cli fed through stdin, and redis-py (a script run by python3).
//! * One test per remaining rule: CLIENT LIST inside MULTI, RESET and QUIT
//!   inside MULTI, CLIENT PAUSE WRITE and EXEC, MONITOR and SLOWLOG,
//!   a push inside EXEC waking a blocked client, WATCH versus other
//!   clients' FLUSHDB/SWAPDB/MOVE/RENAME/RESTORE/EXPIRE and no-op writes.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use crate::common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

type Args = Vec<Vec<u8>>;

fn b(x: &str) -> Vec<u8> {
    x.as_bytes().to_vec()
}

fn args(xs: &[&str]) -> Args {
    xs.iter().map(|x| b(x)).collect()
}

fn encode(args: &Args) -> Vec<u8> {
    resp_cmd(&args.iter().map(|a| a.as_slice()).collect::<Vec<_>>())
}

fn show(args: &Args) -> String {
    args.iter()
        .map(|a| format!("{:?}", String::from_utf8_lossy(a)))
        .collect::<Vec<_>>()
        .join(" ")
}

// ---------------------------------------------------------------------------
// Strict RESP reader producing a tree.
// ---------------------------------------------------------------------------

/// A parsed reply: a one-line reply (type byte and text), a bulk reply
/// (None: null bulk), or an aggregate (None: null array).
#[derive(Clone, Debug, PartialEq)]
enum R {
    Line(u8, Vec<u8>),
    Bulk(u8, Option<Vec<u8>>),
    Agg(u8, Option<Vec<R>>),
}

impl R {
    fn text(&self) -> String {
        match self {
            R::Line(t, s) => format!("{}{}", *t as char, String::from_utf8_lossy(s)),
            R::Bulk(t, None) => format!("{}-1", *t as char),
            R::Bulk(_, Some(s)) => format!("{:?}", String::from_utf8_lossy(s)),
            R::Agg(t, None) => format!("{}-1", *t as char),
            R::Agg(t, Some(v)) => format!(
                "{}[{}]",
                *t as char,
                v.iter().map(R::text).collect::<Vec<_>>().join(", ")
            ),
        }
    }

    fn is_null(&self) -> bool {
        matches!(self, R::Line(b'_', _) | R::Bulk(_, None) | R::Agg(_, None))
    }

    fn items(&self) -> &[R] {
        match self {
            R::Agg(_, Some(v)) => v,
            _ => &[],
        }
    }
}

fn read_reply(r: &mut BufReader<TcpStream>) -> Result<R, String> {
    let mut line = Vec::new();
    r.read_until(b'\n', &mut line)
        .map_err(|e| format!("read: {e}"))?;
    if line.len() < 3 || !line.ends_with(b"\r\n") {
        return Err(format!("bad line {:?}", String::from_utf8_lossy(&line)));
    }
    let body = line[1..line.len() - 2].to_vec();
    if body.contains(&b'\r') || body.contains(&b'\n') {
        return Err(format!("CR/LF inside {:?}", String::from_utf8_lossy(&line)));
    }
    let num = || -> Result<i64, String> {
        std::str::from_utf8(&body)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad length {:?}", String::from_utf8_lossy(&body)))
    };
    let t = line[0];
    match t {
        b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => Ok(R::Line(t, body)),
        b'$' | b'=' | b'!' => {
            let n = num()?;
            if n < 0 {
                return Ok(R::Bulk(t, None));
            }
            let mut data = vec![0u8; n as usize + 2];
            r.read_exact(&mut data).map_err(|e| format!("read: {e}"))?;
            if !data.ends_with(b"\r\n") {
                return Err("bulk without CRLF".into());
            }
            data.truncate(n as usize);
            Ok(R::Bulk(t, Some(data)))
        }
        b'*' | b'~' | b'>' | b'%' => {
            let n = num()?;
            if n < 0 {
                return Ok(R::Agg(t, None));
            }
            let n = if t == b'%' { n * 2 } else { n };
            let mut v = Vec::with_capacity(n as usize);
            for _ in 0..n {
                v.push(read_reply(r)?);
            }
            Ok(R::Agg(t, Some(v)))
        }
        t => Err(format!("unknown reply type {:?}", t as char)),
    }
}

struct Client {
    w: TcpStream,
    r: BufReader<TcpStream>,
}

impl Client {
    fn new(port: u16) -> Client {
        let w = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        w.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        w.set_nodelay(true).unwrap();
        let r = BufReader::new(w.try_clone().unwrap());
        Client { w, r }
    }

    /// Sends `cmds` as one write and reads one reply per command.
    fn pipeline(&mut self, cmds: &[Args]) -> Result<Vec<R>, String> {
        let mut buf = Vec::new();
        for c in cmds {
            buf.extend(encode(c));
        }
        self.w.write_all(&buf).map_err(|e| e.to_string())?;
        let mut replies = Vec::with_capacity(cmds.len());
        for (i, c) in cmds.iter().enumerate() {
            let r = read_reply(&mut self.r)
                .map_err(|e| format!("reply {i} of {} ({}): {e}", cmds.len(), show(c)))?;
            replies.push(r);
        }
        Ok(replies)
    }

    fn one(&mut self, xs: &[&str]) -> R {
        self.pipeline(&[args(xs)]).expect("reply").remove(0)
    }

    fn send(&mut self, xs: &[&str]) {
        self.w.write_all(&encode(&args(xs))).expect("send");
    }

    fn read(&mut self) -> R {
        read_reply(&mut self.r).expect("reply")
    }
}

// ---------------------------------------------------------------------------
// The differential generator.
// ---------------------------------------------------------------------------

/// Keys on every shard of 1, 2 and 4 (checked in `keys_cover_shards`),
/// a hash-tagged pair, and hostile names.
const KEYS: [&str; 10] = [
    "k0", "k1", "k2", "k3", "k4", "k5", "{t}a", "{t}b", "", "k\r\nx",
];

/// One step of a session.
enum Step {
    /// A command on connection A (pipelined). `time`: positions of the
    /// EXEC reply's elements that come from TIME (compared by shape).
    A(Args, Vec<usize>),
    /// Commands on connection B (A's pending batch is read first).
    B(Vec<Args>),
    /// Commands on A sent in one write, right now (A's batch read first).
    AFlush(Vec<Args>),
    Sleep(u64),
}

struct Gen {
    rng: StdRng,
    steps: Vec<Step>,
    /// Commands queued in the transaction being generated.
    queued: Vec<Args>,
    in_multi: bool,
}

impl Gen {
    fn pct(&mut self, p: u32) -> bool {
        self.rng.gen_range(0..100) < p
    }

    fn pick(&mut self, xs: &[&str]) -> Vec<u8> {
        b(xs[self.rng.gen_range(0..xs.len())])
    }

    fn key(&mut self) -> Vec<u8> {
        b(KEYS[self.rng.gen_range(0..KEYS.len())])
    }

    fn val(&mut self) -> Vec<u8> {
        match self.rng.gen_range(0..100) {
            0..=54 => self.rng.gen_range(-3i64..10).to_string().into_bytes(),
            55..=84 => self.pick(&["a", "b", "ab"]),
            _ => self.pick(&["", "a\r\nb", "\n", "1.5", "9223372036854775807"]),
        }
    }

    fn member(&mut self) -> Vec<u8> {
        self.rng.gen_range(0i64..6).to_string().into_bytes()
    }

    fn score(&mut self) -> Vec<u8> {
        match self.rng.gen_range(0..10) {
            0..=7 => self.rng.gen_range(-3i64..6).to_string().into_bytes(),
            8 => self.pick(&["inf", "-inf", "1.5"]),
            _ => self.pick(&["nan", "x"]),
        }
    }

    fn count(&mut self) -> Vec<u8> {
        match self.rng.gen_range(0..10) {
            0..=8 => self.rng.gen_range(0i64..4).to_string().into_bytes(),
            _ => self.pick(&["-1", "x"]),
        }
    }

    fn side(&mut self) -> Vec<u8> {
        self.pick(&["LEFT", "RIGHT"])
    }

    /// A valid command (it may still fail at run time: WRONGTYPE, not an
    /// integer, ...).
    fn command(&mut self) -> Args {
        let k = self.key();
        let k2 = self.key();
        let v = self.val();
        match self.rng.gen_range(0..60) {
            0..=2 => vec![b("SET"), k, v],
            3..=4 => vec![b("GET"), k],
            5 => vec![self.pick(&["INCR", "DECR"]), k],
            6 => vec![b("INCRBY"), k, self.count()],
            7 => vec![b("APPEND"), k, v],
            8 => vec![b("MSET"), k, v, k2, self.val()],
            9 => vec![b("MGET"), k, k2, self.key()],
            10 => vec![self.pick(&["DEL", "EXISTS"]), k, k2],
            11 => vec![b("TYPE"), k],
            12 => vec![self.pick(&["RENAME", "RENAMENX"]), k, k2],
            13 => vec![b("EXPIRE"), k, b("100")],
            14 => vec![b("PERSIST"), k],
            15..=17 => vec![self.pick(&["RPUSH", "LPUSH"]), k, v, self.val()],
            18 => vec![self.pick(&["LPOP", "RPOP"]), k],
            19 => vec![b("LRANGE"), k, b("0"), b("-1")],
            20 => vec![b("LMOVE"), k, k2, self.side(), self.side()],
            21 => vec![b("LLEN"), k],
            22..=24 => vec![b("HSET"), k, self.member(), v],
            25 => vec![b("HGETALL"), k],
            26 => vec![b("HINCRBY"), k, self.member(), self.count()],
            27 => vec![b("HDEL"), k, self.member()],
            28..=30 => vec![b("SADD"), k, self.member(), self.member()],
            31 => vec![b("SREM"), k, self.member()],
            32 => vec![b("SMEMBERS"), k],
            33 => vec![b("SMOVE"), k, k2, self.member()],
            34 => vec![
                self.pick(&["SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"]),
                k,
                k2,
                self.key(),
            ],
            35..=37 => vec![b("ZADD"), k, self.score(), self.member()],
            38 => vec![b("ZRANGE"), k, b("0"), b("-1"), b("WITHSCORES")],
            39 => vec![b("ZINCRBY"), k, self.score(), self.member()],
            40 => vec![self.pick(&["ZPOPMIN", "ZPOPMAX"]), k],
            41 => vec![b("ZUNIONSTORE"), k, b("2"), k2, self.key()],
            42 => vec![b("ZSCORE"), k, self.member()],
            // Blocking commands answer at once inside MULTI, whether the
            // key is empty or not.
            43 => vec![
                self.pick(&["BLPOP", "BRPOP"]),
                k,
                k2,
                self.pick(&["0", "1"]),
            ],
            44 => vec![
                b("BLMOVE"),
                k,
                k2,
                self.side(),
                self.side(),
                self.pick(&["0", "0.5"]),
            ],
            45 => vec![b("BRPOPLPUSH"), k, k2, b("0")],
            46 => vec![self.pick(&["BZPOPMIN", "BZPOPMAX"]), k, k2, b("0")],
            47 => vec![b("BLMPOP"), b("0"), b("2"), k, k2, self.side()],
            48 => vec![b("BZMPOP"), b("1"), b("1"), k, b("MIN")],
            49 => vec![b("PING")],
            50 => vec![b("ECHO"), v],
            51 => vec![b("GETDEL"), k],
            52 => vec![b("SET"), k, v, b("GET")],
            53 => vec![b("LPUSHX"), k, v],
            54 => vec![b("SETNX"), k, v],
            55 => vec![b("HMGET"), k, self.member(), self.member()],
            56 => vec![b("SCARD"), k],
            57 => vec![b("ZCARD"), k],
            58 => vec![b("STRLEN"), k],
            _ => vec![b("COPY"), k, k2, b("REPLACE")],
        }
    }

    /// A command refused while queueing (EXEC then replies EXECABORT).
    fn refused(&mut self) -> Args {
        match self.rng.gen_range(0..8) {
            0 => vec![b("NOSUCHCMD"), b("a\r\nb")],
            1 => vec![b("GET")],
            2 => vec![b("SET"), self.key()],
            3 => vec![b("CLIENT"), b("FOO")],
            4 => vec![b("SAVE")],
            5 => vec![b("CONFIG"), b("NOSUCH\r\n")],
            6 => vec![b("ZADD")],
            _ => vec![b("OBJECT"), b("FOO"), b("k")],
        }
    }

    fn a(&mut self, c: Args) {
        if self.in_multi {
            let name = String::from_utf8_lossy(&c[0]).to_ascii_uppercase();
            if !matches!(
                name.as_str(),
                "EXEC" | "DISCARD" | "MULTI" | "WATCH" | "QUIT" | "RESET"
            ) {
                self.queued.push(c.clone());
            }
        }
        let name = String::from_utf8_lossy(&c[0]).to_ascii_uppercase();
        let mut time = Vec::new();
        match name.as_str() {
            "MULTI" if !self.in_multi => {
                self.in_multi = true;
                self.queued.clear();
            }
            "EXEC" | "DISCARD" if self.in_multi => {
                self.in_multi = false;
                if name == "EXEC" {
                    time = self
                        .queued
                        .iter()
                        .enumerate()
                        .filter(|(_, q)| q[0].eq_ignore_ascii_case(b"TIME"))
                        .map(|(i, _)| i)
                        .collect();
                }
                self.queued.clear();
            }
            _ => {}
        }
        self.steps.push(Step::A(c, time));
    }

    /// A body of queued commands: mostly valid, some keyless, rarely a
    /// refused one or a stray MULTI/WATCH/UNWATCH/SELECT.
    fn body(&mut self, dbsize_ok: bool) {
        let n = self.rng.gen_range(0..8);
        for _ in 0..n {
            let c = match self.rng.gen_range(0..100) {
                0..=79 => self.command(),
                80..=82 => self.refused(),
                83 => args(&["MULTI"]),
                84 => vec![b("WATCH"), self.key()],
                85 => args(&["UNWATCH"]),
                86 if dbsize_ok => args(&["SELECT", "1"]),
                87 if dbsize_ok => args(&["SELECT", "0"]),
                88..=89 => args(&["TIME"]),
                90..=91 if dbsize_ok => args(&["DBSIZE"]),
                92 => args(&["EXEC\r\n"]),
                93 => vec![b("SET"), b("crlf\r\nkey"), b("v\r\n*1\r\n$4\r\nPING\r\n")],
                94 if self.pct(30) => args(&["FLUSHDB"]),
                95 if dbsize_ok && self.pct(30) => args(&["SWAPDB", "0", "1"]),
                _ => self.command(),
            };
            self.a(c);
        }
    }

    /// A write by connection B that may or may not change `k` (no-op
    /// writes must not break A's WATCH), or a write to another db.
    fn b_write(&mut self, k: Vec<u8>) -> Vec<Args> {
        let m = self.member();
        let one = match self.rng.gen_range(0..33) {
            0 => vec![b("SET"), k, b("x")],
            1 => vec![b("DEL"), k],
            2 => vec![b("SREM"), k, b("nosuchmember")],
            3 => vec![b("SADD"), k, m],
            4 => vec![b("INCRBY"), k, b("0")],
            5 => vec![b("EXPIRE"), k, b("100")],
            6 => vec![b("PERSIST"), k],
            7 => vec![b("LREM"), k, b("0"), b("nosuch")],
            8 => vec![b("HDEL"), k, b("nosuch")],
            9 => vec![b("HSET"), k, m, b("1")],
            10 => vec![b("ZADD"), k, b("1"), m],
            11 => vec![b("ZADD"), k, b("XX"), b("1"), b("nosuch")],
            12 => vec![b("SET"), k, b("x"), b("NX")],
            13 => vec![b("SET"), k, b("x"), b("XX")],
            14 => vec![b("GET"), k],
            15 => vec![b("RENAME"), k.clone(), k],
            16 => vec![b("LPOP"), k],
            17 => vec![b("APPEND"), k, b("")],
            18 => vec![b("SETRANGE"), k, b("0"), b("")],
            19 => vec![b("SINTERSTORE"), k, b("nosuch1"), b("nosuch2")],
            20 => vec![b("ZREMRANGEBYSCORE"), k, b("100"), b("200")],
            21 => vec![b("SMOVE"), k.clone(), k, m],
            22 => vec![b("GETEX"), k, b("PERSIST")],
            // (Redis signals an LTRIM that trims nothing.)
            32 => vec![b("LTRIM"), k, b("0"), b("-1")],
            23 => vec![b("EXPIRE"), k, b("100"), b("NX")],
            24 => vec![b("COPY"), b("nosuchsrc"), k],
            25 => vec![b("SORT"), b("nosuchsrc"), b("STORE"), k],
            26 => vec![b("FLUSHDB")],
            27 => vec![b("MOVE"), k, b("1")],
            28 => vec![b("SWAPDB"), b("0"), b("1")],
            29 => vec![b("LPUSH"), k, b("x")],
            30 => vec![b("EXPIRE"), k, b("-1")],
            _ => vec![b("SREM"), k, m],
        };
        if self.pct(10) {
            // The same write in another db leaves db 0's WATCH alone.
            return vec![args(&["SELECT", "1"]), one, args(&["SELECT", "0"])];
        }
        vec![one]
    }

    /// One session.
    fn session(&mut self) {
        match self.rng.gen_range(0..100) {
            // A plain transaction.
            0..=39 => {
                self.a(args(&["MULTI"]));
                self.body(true);
                if self.pct(10) {
                    self.a(args(&["DISCARD"]));
                } else {
                    self.a(args(&["EXEC"]));
                }
            }
            // A transaction with a command refused while queueing.
            40..=49 => {
                self.a(args(&["MULTI"]));
                self.body(true);
                let r = self.refused();
                self.a(r);
                self.body(true);
                self.a(args(&["EXEC"]));
            }
            // Stray transaction commands outside MULTI.
            50..=54 => {
                let c = self.pick(&["EXEC", "DISCARD", "UNWATCH"]);
                self.a(vec![c]);
            }
            // WATCH, writes from B (or from A itself), then EXEC.
            55..=84 => {
                let nk = self.rng.gen_range(1..4);
                let keys: Vec<Vec<u8>> = (0..nk).map(|_| self.key()).collect();
                let mut w = vec![b("WATCH")];
                w.extend(keys.iter().cloned());
                self.a(w);
                if self.pct(15) {
                    let k = self.key();
                    self.a(vec![b("WATCH"), k]);
                }
                // B writes between WATCH and MULTI, or while A queues.
                let mut b_writes = None;
                if self.pct(50) {
                    let k = keys[self.rng.gen_range(0..keys.len())].clone();
                    let k = if self.pct(70) { k } else { self.key() };
                    b_writes = Some(self.b_write(k));
                }
                let b_mid = self.pct(40);
                if !b_mid {
                    if let Some(ws) = b_writes.take() {
                        self.steps.push(Step::B(ws));
                    }
                }
                if self.pct(10) {
                    // A command of A's own outside MULTI: never a blocking
                    // one (it could wait forever there).
                    let c = loop {
                        let c = self.command();
                        if !c[0].starts_with(b"B") {
                            break c;
                        }
                    };
                    self.a(c);
                }
                if self.pct(10) {
                    self.a(args(&["UNWATCH"]));
                }
                self.a(args(&["MULTI"]));
                self.body(true);
                if let Some(ws) = b_writes {
                    self.steps.push(Step::B(ws));
                    self.body(true);
                }
                self.a(args(&["EXEC"]));
            }
            // Keys that expire around WATCH.
            85..=92 => {
                let k = self.key();
                let kind = self.rng.gen_range(0..3);
                if kind == 0 {
                    // Live at WATCH, expired by EXEC: EXEC fails.
                    self.steps.push(Step::AFlush(vec![
                        vec![b("SET"), k.clone(), b("v"), b("PX"), b("150")],
                        vec![b("WATCH"), k.clone()],
                    ]));
                    self.steps.push(Step::Sleep(200));
                } else {
                    // Expired at WATCH: its deletion is no change, a new
                    // value is.
                    self.steps.push(Step::AFlush(vec![vec![
                        b("SET"),
                        k.clone(),
                        b("v"),
                        b("PX"),
                        b("1"),
                    ]]));
                    self.steps.push(Step::Sleep(5));
                    self.a(vec![b("WATCH"), k.clone()]);
                    let touch = if kind == 1 {
                        vec![b("EXISTS"), k.clone()]
                    } else {
                        vec![b("SET"), k.clone(), b("new")]
                    };
                    if self.pct(70) {
                        self.steps.push(Step::B(vec![touch]));
                    }
                }
                self.a(args(&["MULTI"]));
                self.body(false);
                self.a(vec![b("GET"), k.clone()]);
                self.a(args(&["EXEC"]));
                // Purge it on both servers (DBSIZE must agree later).
                self.a(vec![b("EXISTS"), k]);
            }
            // Empty transaction, nested MULTI, WATCH inside MULTI.
            _ => {
                self.a(args(&["MULTI"]));
                if self.pct(50) {
                    self.a(args(&["MULTI"]));
                    let c = self.command();
                    self.a(c);
                    let k = self.key();
                    self.a(vec![b("WATCH"), k]);
                }
                self.a(args(&["EXEC"]));
            }
        }
        // Back to db 0 when a queued SELECT moved A elsewhere: both
        // servers see the same, but B writes db 0.
        if self.pct(50) {
            self.a(args(&["SELECT", "0"]));
        }
    }
}

/// Normalises the TIME elements of an EXEC reply (their shape is checked).
fn mask_time(r: &mut R, time: &[usize]) -> Result<(), String> {
    if time.is_empty() {
        return Ok(());
    }
    let R::Agg(_, Some(v)) = r else {
        return Ok(());
    };
    for &i in time {
        let Some(e) = v.get_mut(i) else { continue };
        let ok = matches!(e, R::Agg(b'*', Some(parts)) if parts.len() == 2
            && parts.iter().all(|p| matches!(p, R::Bulk(b'$', Some(d)) if !d.is_empty() && d.iter().all(u8::is_ascii_digit))));
        if !ok {
            return Err(format!("TIME inside EXEC replied {}", e.text()));
        }
        *e = R::Line(b'?', b("time"));
    }
    Ok(())
}

struct Pair {
    a: Client,
    b: Client,
}

/// Runs seeded sessions against ringkv and redis-server and compares
/// every reply.
fn run_sessions(rk_port: u16, rd_port: u16, seed: u64, depth: usize, n: usize, label: &str) {
    let mut g = Gen {
        rng: StdRng::seed_from_u64(seed),
        steps: Vec::new(),
        queued: Vec::new(),
        in_multi: false,
    };
    while g.steps.len() < n {
        g.session();
    }
    let resp3 = seed % 2 == 1;
    let open = |port: u16| {
        let mut p = Pair {
            a: Client::new(port),
            b: Client::new(port),
        };
        p.a.pipeline(&[args(&["FLUSHALL"])]).unwrap();
        if resp3 {
            p.a.pipeline(&[args(&["HELLO", "3"])]).unwrap();
            p.b.pipeline(&[args(&["HELLO", "3"])]).unwrap();
        }
        p
    };
    let mut rk = open(rk_port);
    let mut rd = open(rd_port);
    let ctx = |what: &str| format!("{label} seed {seed} depth {depth} resp3 {resp3}: {what}");
    let compare =
        |cmds: &[Args], got: Vec<R>, want: Vec<R>, times: &[Vec<usize>], history: &str| {
            for (i, (mut g, mut w)) in got.into_iter().zip(want).enumerate() {
                if let Err(e) = mask_time(&mut g, &times[i]) {
                    panic!("{}", ctx(&format!("ringkv: {e}")));
                }
                mask_time(&mut w, &times[i]).unwrap_or_else(|e| panic!("redis-server: {e}"));
                if g != w {
                    panic!(
                        "{}\n  command: {}\n  ringkv: {}\n  redis:  {}\n  recent: {}",
                        ctx("reply mismatch"),
                        show(&cmds[i]),
                        g.text(),
                        w.text(),
                        history
                    );
                }
            }
        };
    let mut batch: Vec<Args> = Vec::new();
    let mut times: Vec<Vec<usize>> = Vec::new();
    let mut history: Vec<String> = Vec::new();
    let flush = |rk: &mut Pair,
                 rd: &mut Pair,
                 batch: &mut Vec<Args>,
                 times: &mut Vec<Vec<usize>>,
                 history: &[String]| {
        if batch.is_empty() {
            return;
        }
        let want =
            rd.a.pipeline(batch)
                .unwrap_or_else(|e| panic!("redis-server: {e}"));
        let h = history[history.len().saturating_sub(40)..].join(" | ");
        let got = rk.a.pipeline(batch).unwrap_or_else(|e| {
            panic!(
                "{}\n  recent: {h}",
                ctx(&format!("reply stream broken: {e}"))
            )
        });
        compare(batch, got, want, times, &h);
        batch.clear();
        times.clear();
    };
    for step in g.steps {
        match step {
            Step::A(c, t) => {
                history.push(format!("A: {}", show(&c)));
                batch.push(c);
                times.push(t);
                if batch.len() >= depth {
                    flush(&mut rk, &mut rd, &mut batch, &mut times, &history);
                }
            }
            Step::B(cs) => {
                flush(&mut rk, &mut rd, &mut batch, &mut times, &history);
                for c in &cs {
                    history.push(format!("B: {}", show(c)));
                }
                let want = rd.b.pipeline(&cs).unwrap();
                let got =
                    rk.b.pipeline(&cs)
                        .unwrap_or_else(|e| panic!("{}", ctx(&format!("B stream broken: {e}"))));
                let t = vec![Vec::new(); cs.len()];
                let h = history[history.len().saturating_sub(40)..].join(" | ");
                compare(&cs, got, want, &t, &h);
            }
            Step::AFlush(cs) => {
                flush(&mut rk, &mut rd, &mut batch, &mut times, &history);
                for c in &cs {
                    history.push(format!("A: {}", show(c)));
                }
                // Both servers get the pair at about the same moment.
                let t = vec![Vec::new(); cs.len()];
                let want = rd.a.pipeline(&cs).unwrap();
                let got = rk.a.pipeline(&cs).unwrap();
                let h = history[history.len().saturating_sub(40)..].join(" | ");
                compare(&cs, got, want, &t, &h);
            }
            Step::Sleep(ms) => {
                flush(&mut rk, &mut rd, &mut batch, &mut times, &history);
                std::thread::sleep(Duration::from_millis(ms));
            }
        }
    }
    flush(&mut rk, &mut rd, &mut batch, &mut times, &history);
    // Same data at the end, and both connections still in sync.
    let end: Vec<Args> = vec![
        args(&["DISCARD"]),
        args(&["SELECT", "0"]),
        args(&["DBSIZE"]),
        args(&["PING"]),
    ];
    let got = rk.a.pipeline(&end).unwrap();
    let want = rd.a.pipeline(&end).unwrap();
    assert_eq!(got[2], want[2], "{}", ctx("DBSIZE at the end"));
    assert!(
        got[3] == R::Line(b'+', b("PONG")),
        "{}",
        ctx("PING at the end")
    );
    for k in KEYS {
        let dump = |c: &mut Client| {
            let r = c.pipeline(&[vec![b("TYPE"), b(k)]]).unwrap();
            r[0].text()
        };
        assert_eq!(
            dump(&mut rk.b),
            dump(&mut rd.b),
            "{}",
            ctx(&format!("TYPE {k:?}"))
        );
    }
}

fn seeds_per_config() -> u64 {
    std::env::var("RINGKV_TX_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2)
}

fn diff_config(shards: usize, base: u64, extra: &[&str]) {
    let Some(redis) = Server::redis() else {
        eprintln!("SKIPPED: redis-server not installed, no MULTI differential");
        return;
    };
    let ringkv = Server::ringkv(shards, extra);
    for depth in [1usize, 16, 50] {
        for s in 0..seeds_per_config() {
            let seed = base + depth as u64 * 1000 + s;
            run_sessions(
                ringkv.port(),
                redis.port(),
                seed,
                depth,
                500,
                &format!("--shards {shards} {}", extra.join(" ")),
            );
        }
    }
}

#[test]
fn keys_cover_shards() {
    let on: std::collections::HashSet<usize> = KEYS.iter().map(|k| shard_of(k, 4)).collect();
    assert_eq!(on.len(), 4, "the differential's keys must cover 4 shards");
}

#[test]
fn tx_sessions_match_redis_1_shard() {
    diff_config(1, 100_000, &[]);
}

#[test]
fn tx_sessions_match_redis_4_shards() {
    diff_config(4, 400_000, &[]);
}

#[test]
fn tx_sessions_match_redis_2_shards_epoll() {
    diff_config(2, 200_000, &["--io", "epoll"]);
}

/// Fixed adversarial transactions: CR/LF in queued arguments, 10,000
/// queued commands, an empty EXEC, in both protocols.
#[test]
fn tx_adversarial_match_redis() {
    let Some(redis) = Server::redis() else {
        eprintln!("SKIPPED: redis-server not installed");
        return;
    };
    for shards in [1, 4] {
        let ringkv = Server::ringkv(shards, &[]);
        for resp3 in [false, true] {
            let mut script: Vec<Args> = vec![args(&["FLUSHALL"])];
            if resp3 {
                script.push(args(&["HELLO", "3"]));
            }
            script.push(args(&["MULTI"]));
            script.push(args(&["EXEC"]));
            script.push(args(&["MULTI"]));
            script.push(vec![b("SET"), b("a\r\nb"), b("*1\r\n$4\r\nPING\r\n")]);
            script.push(vec![b("GET"), b("a\r\nb")]);
            script.push(vec![b("ECHO"), b("\r\n-ERR fake\r\n")]);
            script.push(vec![b("NOSUCH\r\n"), b("x\r\ny")]);
            script.push(args(&["EXEC"]));
            script.push(args(&["MULTI"]));
            script.push(vec![b("RPUSH"), b("q\r\n"), b("+OK\r\n")]);
            script.push(vec![b("LRANGE"), b("q\r\n"), b("0"), b("-1")]);
            script.push(args(&["EXEC"]));
            script.push(args(&["MULTI"]));
            for i in 0..10_000 {
                let k = KEYS[i % 6];
                script.push(match i % 4 {
                    0 => vec![b("INCR"), b(k)],
                    1 => vec![b("RPUSH"), b(&format!("l{k}")), b(&i.to_string())],
                    2 => vec![b("GET"), b(k)],
                    _ => vec![b("SADD"), b(&format!("s{k}")), b(&(i % 50).to_string())],
                });
            }
            script.push(args(&["EXEC"]));
            script.push(args(&["MULTI"]));
            for k in &KEYS[..6] {
                script.push(vec![b("LLEN"), b(&format!("l{k}"))]);
                script.push(vec![b("SCARD"), b(&format!("s{k}"))]);
                script.push(vec![b("GET"), b(k)]);
            }
            script.push(args(&["EXEC"]));
            let run = |port: u16| {
                let mut c = Client::new(port);
                let mut out = Vec::new();
                for chunk in script.chunks(500) {
                    out.extend(c.pipeline(chunk).unwrap_or_else(|e| panic!("{e}")));
                }
                out
            };
            let want = run(redis.port());
            let got = run(ringkv.port());
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                if i == 1 && resp3 {
                    continue; // HELLO names the server
                }
                assert_eq!(
                    g,
                    w,
                    "--shards {shards} resp3 {resp3}: {}\n ringkv {}\n redis {}",
                    show(&script[i]),
                    g.text(),
                    w.text()
                );
            }
            assert_eq!(got.len(), want.len());
        }
    }
}

// ---------------------------------------------------------------------------
// Concurrency.
// ---------------------------------------------------------------------------

/// `n` keys named `prefix<i>` on `n` different shards of `shards`.
fn keys_on_shards(prefix: &str, n: usize, shards: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut used = Vec::new();
    for i in 0..10_000 {
        let k = format!("{prefix}{i}");
        let s = shard_of(&k, shards);
        if !used.contains(&s) {
            used.push(s);
            out.push(k);
            if out.len() == n {
                return out;
            }
        }
    }
    panic!("no {n} keys on different shards");
}

fn int_of(v: &redis::Value) -> i64 {
    match v {
        redis::Value::Nil => 0,
        redis::Value::BulkString(b) => String::from_utf8_lossy(b).parse().unwrap(),
        redis::Value::Int(i) => *i,
        v => panic!("not a number: {v:?}"),
    }
}

/// WATCH/GET/MULTI/SET/EXEC retry loops from 8 threads on counters that
/// live on 4 different shards, some transactions incrementing two counters
/// at once: no increment is lost or doubled.
#[test]
fn watch_retry_loops_lose_no_increment() {
    let server = Server::ringkv(4, &[]);
    let counters = keys_on_shards("ctr", 4, 4);
    const THREADS: usize = 8;
    const PER_THREAD: usize = 60;
    let mut handles = Vec::new();
    for t in 0..THREADS {
        let url = server.url();
        let counters = counters.clone();
        handles.push(std::thread::spawn(move || {
            let mut con = redis::Client::open(url)
                .unwrap()
                .get_connection_with_timeout(Duration::from_secs(5))
                .unwrap();
            con.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut rng = StdRng::seed_from_u64(t as u64);
            let mut added = [0i64; 4];
            let mut retries = 0u64;
            for _ in 0..PER_THREAD {
                let i = rng.gen_range(0..4);
                let j = if rng.gen_bool(0.4) {
                    Some((i + 1 + rng.gen_range(0..3)) % 4)
                } else {
                    None
                };
                let keys: Vec<&str> = std::iter::once(i)
                    .chain(j)
                    .map(|x| counters[x].as_str())
                    .collect();
                loop {
                    let mut w = redis::cmd("WATCH");
                    for k in &keys {
                        w.arg(*k);
                    }
                    let _: () = w.query(&mut con).unwrap();
                    let vals: Vec<i64> = keys
                        .iter()
                        .map(|k| {
                            let v: redis::Value =
                                redis::cmd("GET").arg(*k).query(&mut con).unwrap();
                            int_of(&v)
                        })
                        .collect();
                    let mut p = redis::pipe();
                    p.atomic();
                    for (k, v) in keys.iter().zip(&vals) {
                        p.cmd("SET").arg(*k).arg(v + 1).ignore();
                    }
                    let r: Option<()> = p.query(&mut con).unwrap();
                    if r.is_some() {
                        break;
                    }
                    retries += 1;
                    assert!(retries < 100_000, "livelock");
                }
                added[i] += 1;
                if let Some(j) = j {
                    added[j] += 1;
                }
            }
            (added, retries)
        }));
    }
    let mut total = [0i64; 4];
    let mut retries = 0;
    for h in handles {
        let (a, r) = h.join().expect("thread");
        for i in 0..4 {
            total[i] += a[i];
        }
        retries += r;
    }
    let mut con = server.client();
    for i in 0..4 {
        let v = ok(&mut con, &["GET", &counters[i]]);
        assert_eq!(
            int_of(&v),
            total[i],
            "counter {} (retries {retries})",
            counters[i]
        );
    }
    eprintln!("watch_retry_loops: {retries} retries");
}

/// Bank transfers: 10 accounts over 4 shards; writers move money with
/// MULTI/DECRBY/INCRBY/EXEC and with WATCH + MSET; readers see the total
/// intact through MGET and through MULTI/GET.../EXEC.
#[test]
fn bank_transfers_keep_the_total() {
    let server = Server::ringkv(4, &[]);
    let accounts: Vec<String> = (1..=10).map(|i| format!("acct{i}")).collect();
    let used: std::collections::HashSet<usize> = accounts.iter().map(|k| shard_of(k, 4)).collect();
    assert!(used.len() >= 3, "accounts on {used:?}");
    let mut con = server.client();
    for a in &accounts {
        ok(&mut con, &["SET", a, "1000"]);
    }
    const WRITERS: usize = 6;
    const OPS: usize = 150;
    let done = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(WRITERS + 2));
    let connect = |url: String| {
        let con = redis::Client::open(url)
            .unwrap()
            .get_connection_with_timeout(Duration::from_secs(5))
            .unwrap();
        con.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        con
    };
    let mut writers = Vec::new();
    for t in 0..WRITERS {
        let (url, accounts, start) = (server.url(), accounts.clone(), start.clone());
        writers.push(std::thread::spawn(move || {
            let mut con = connect(url);
            let mut rng = StdRng::seed_from_u64(100 + t as u64);
            start.wait();
            for _ in 0..OPS {
                let a = &accounts[rng.gen_range(0..10)];
                let b = &accounts[rng.gen_range(0..10)];
                let x: i64 = rng.gen_range(1..50);
                if rng.gen_bool(0.7) {
                    let r: (i64, i64) = redis::pipe()
                        .atomic()
                        .cmd("DECRBY")
                        .arg(a)
                        .arg(x)
                        .cmd("INCRBY")
                        .arg(b)
                        .arg(x)
                        .query(&mut con)
                        .unwrap();
                    let _ = r;
                } else {
                    // An optimistic transfer written as one MSET.
                    loop {
                        let _: () = redis::cmd("WATCH").arg(a).arg(b).query(&mut con).unwrap();
                        let v: Vec<redis::Value> =
                            redis::cmd("MGET").arg(a).arg(b).query(&mut con).unwrap();
                        let (va, vb) = (int_of(&v[0]), int_of(&v[1]));
                        let (na, nb) = if a == b { (va, vb) } else { (va - x, vb + x) };
                        let r: Option<()> = redis::pipe()
                            .atomic()
                            .cmd("MSET")
                            .arg(a)
                            .arg(na)
                            .arg(b)
                            .arg(nb)
                            .ignore()
                            .query(&mut con)
                            .unwrap();
                        if r.is_some() {
                            break;
                        }
                    }
                }
            }
        }));
    }
    let mut readers = Vec::new();
    for _ in 0..2 {
        let (url, accounts, done, start) =
            (server.url(), accounts.clone(), done.clone(), start.clone());
        readers.push(std::thread::spawn(move || {
            let mut con = connect(url);
            let mut checks = 0u64;
            start.wait();
            loop {
                let mut m = redis::cmd("MGET");
                for a in &accounts {
                    m.arg(a);
                }
                let v: Vec<redis::Value> = m.query(&mut con).unwrap();
                let sum: i64 = v.iter().map(int_of).sum();
                assert_eq!(sum, 10_000, "MGET saw {v:?}");
                let mut p = redis::pipe();
                p.atomic();
                for a in &accounts {
                    p.cmd("GET").arg(a);
                }
                let v: Vec<redis::Value> = p.query(&mut con).unwrap();
                let sum: i64 = v.iter().map(int_of).sum();
                assert_eq!(sum, 10_000, "MULTI/GET/EXEC saw {v:?}");
                checks += 1;
                if done.load(Ordering::Relaxed) {
                    break;
                }
            }
            checks
        }));
    }
    for w in writers {
        w.join().expect("writer");
    }
    done.store(true, Ordering::Relaxed);
    for r in readers {
        let checks = r.join().expect("reader");
        assert!(checks > 0);
    }
    let mut m = redis::cmd("MGET");
    for a in &accounts {
        m.arg(a);
    }
    let v: Vec<redis::Value> = m.query(&mut con).unwrap();
    assert_eq!(v.iter().map(int_of).sum::<i64>(), 10_000);
}

// ---------------------------------------------------------------------------
// Real clients.
// ---------------------------------------------------------------------------

/// redis-rs: `redis::transaction` retries when another connection changes
/// a watched key, and `pipe().atomic()` returns the transaction's replies.
#[test]
fn redis_rs_transaction_and_atomic_pipe() {
    use redis::Commands;
    for shards in [1, 4] {
        let server = Server::ringkv(shards, &[]);
        let mut con = server.client();
        let mut other = server.client();
        let keys = keys_on_shards("rs", if shards == 1 { 2 } else { 4 }, shards.max(2));
        let (k, k2) = (keys[0].clone(), keys[1].clone());
        let _: () = con.set(&k, 10).unwrap();
        let mut attempts = 0;
        let (v, v2): (i64, i64) = redis::transaction(&mut con, &[&k, &k2], |con, pipe| {
            attempts += 1;
            let cur: i64 = con.get(&k)?;
            if attempts <= 2 {
                // Another client changes a watched key: EXEC must fail.
                let key = if attempts == 1 { &k } else { &k2 };
                let _: () = other.incr(key, 1).unwrap();
            }
            pipe.set(&k, cur * 2)
                .ignore()
                .get(&k)
                .incr(&k2, 100)
                .query(con)
        })
        .unwrap();
        assert_eq!(attempts, 3, "--shards {shards}");
        assert_eq!((v, v2), (22, 101), "--shards {shards}");

        let (a, b, c, l): (String, i64, Vec<String>, i64) = redis::pipe()
            .atomic()
            .set(&keys[0], "x")
            .ignore()
            .get(&keys[0])
            .incr(&keys[1], 5)
            .lrange("rslist", 0, -1)
            .rpush("rslist", &["a", "b"])
            .query(&mut con)
            .unwrap();
        assert_eq!((a.as_str(), b, c.len(), l), ("x", 106, 0, 2));
        // A transaction with a failing command: the others still ran.
        let r: redis::RedisResult<(i64, i64)> = redis::pipe()
            .atomic()
            .incr(&keys[0], 1)
            .incr(&keys[1], 1)
            .query(&mut con);
        assert!(
            r.is_err(),
            "INCR of a non-integer inside EXEC must fail: {r:?}"
        );
        assert_eq!(ok(&mut con, &["GET", &keys[1]]), bulk("107"));
    }
}

/// redis-cli fed a MULTI session on stdin prints what it prints for
/// redis-server.
#[test]
fn redis_cli_multi_session() {
    let Some(cli) = require_tool("redis-cli") else {
        return;
    };
    let input = "MULTI\nSET k 1\nINCR k\nGET k\nRPUSH {x}l a b\nLRANGE {x}l 0 -1\nPING\nEXEC\n\
                 MULTI\nSET k 5\nNOSUCH\nEXEC\nGET k\nEXEC\nDISCARD\n\
                 WATCH k\nSET k 9\nMULTI\nINCR k\nEXEC\nGET k\n";
    let run = |port: u16| {
        let mut child = Command::new(&cli)
            .args(["-p", &port.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("redis-cli");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("redis-cli hung");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // (redis-cli prints an empty line after an error reply and for a
    // null EXEC.)
    let expect = "OK\nQUEUED\nQUEUED\nQUEUED\nQUEUED\nQUEUED\nQUEUED\nOK\n2\n2\n2\na\nb\nPONG\n\
                  OK\nQUEUED\nERR unknown command 'NOSUCH', with args beginning with: \n\n\
                  EXECABORT Transaction discarded because of previous errors.\n\n2\n\
                  ERR EXEC without MULTI\n\nERR DISCARD without MULTI\n\n\
                  OK\nOK\nOK\nQUEUED\n\n9\n";
    if let Some(redis) = Server::redis() {
        assert_eq!(
            run(redis.port()),
            expect,
            "the expected text is redis-server's"
        );
    }
    for shards in [1, 4] {
        let server = Server::ringkv(shards, &[]);
        assert_eq!(run(server.port()), expect, "--shards {shards}");
    }
}

/// The redis-py script (run by python3 against a server's port).
const PY_TX: &str = r#"
import sys, threading
import redis

port = int(sys.argv[1])
def client():
    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=10)

r = client()
other = client()
r.flushall()

# pipeline(transaction=True): MULTI ... EXEC with the replies in order.
p = r.pipeline(transaction=True)
p.set("a", "1").incr("a").get("a").rpush("l", "x", "y").lrange("l", 0, -1)
p.sadd("s", "m").hset("h", "f", "v").zadd("z", {"m": 2}).mget("a", "b")
res = p.execute()
assert res == [True, 2, b"2", 2, [b"x", b"y"], 1, 1, 1, [b"2", None]], res

# A command failing inside EXEC: the others still ran.
p = r.pipeline(transaction=True)
p.set("str", "x").incr("str").set("after", "1")
res = p.execute(raise_on_error=False)
assert res[0] is True and isinstance(res[1], redis.ResponseError) and res[2] is True, res
assert r.get("after") == b"1"

# A command refused while queueing: EXECABORT, nothing ran.
p = r.pipeline(transaction=True)
p.set("never", "1").execute_command("NOSUCHCMD", "x")
try:
    p.execute()
    raise AssertionError("EXECABORT expected")
except redis.ResponseError:
    pass
assert r.get("never") is None
assert r.ping()

# transaction(): WATCH retries when another client writes a watched key.
r.set("w", 5)
attempts = []
def body(pipe):
    attempts.append(1)
    v = int(pipe.get("w"))
    if len(attempts) == 1:
        other.incr("w")
    pipe.multi()
    pipe.set("w", v * 10)
    pipe.set("w2", v)
res = r.transaction(body, "w", "w2")
assert len(attempts) == 2, attempts
assert r.get("w") == b"60" and r.get("w2") == b"6", (r.get("w"), r.get("w2"))

# transaction() under concurrent writers: read-modify-write increments
# from several threads, none lost.
r.set("ctr", 0)
stop = threading.Event()
def noise():
    c = client()
    while not stop.is_set():
        c.set("noise", "x")
        c.get("ctr")
def worker(n):
    c = client()
    def inc(pipe):
        v = int(pipe.get("ctr"))
        pipe.multi()
        pipe.set("ctr", v + 1)
    for _ in range(n):
        c.transaction(inc, "ctr")
threads = [threading.Thread(target=worker, args=(40,)) for _ in range(4)]
nt = threading.Thread(target=noise)
nt.start()
for t in threads:
    t.start()
for t in threads:
    t.join()
stop.set()
nt.join()
assert r.get("ctr") == b"160", r.get("ctr")

# WATCH / MULTI by hand with pipeline().
with r.pipeline() as pipe:
    pipe.watch("hand")
    assert pipe.get("hand") is None
    other.set("hand", "theirs")
    pipe.multi()
    pipe.set("hand", "mine")
    try:
        pipe.execute()
        raise AssertionError("WatchError expected")
    except redis.WatchError:
        pass
assert r.get("hand") == b"theirs"
with r.pipeline() as pipe:
    pipe.watch("hand", "k1", "k2", "k3")
    v = pipe.get("hand")
    pipe.multi()
    pipe.set("hand", v + b"+mine")
    pipe.mset({"k1": "1", "k2": "2", "k3": "3"})
    pipe.mget("k1", "k2", "k3")
    assert pipe.execute() == [True, True, [b"1", b"2", b"3"]]
assert r.get("hand") == b"theirs+mine"

# unwatch(), reset of a pipeline, then an empty transaction.
with r.pipeline() as pipe:
    pipe.watch("hand")
    other.set("hand", "again")
    pipe.unwatch()
    pipe.multi()
    pipe.get("hand")
    assert pipe.execute() == [b"again"]
assert r.pipeline(transaction=True).execute() == []
print("ok")
"#;

/// redis-py: pipeline(transaction=True), transaction() with WATCH retries
/// under concurrent writers, and WATCH/MULTI by hand.
#[test]
fn redis_py_transactions() {
    let Some(py) = python_with_redis() else {
        return;
    };
    if let Some(redis) = Server::redis() {
        run_py(&py, "test_tx.py", PY_TX, redis.port(), "redis-server");
    }
    for shards in [1, 4] {
        let server = Server::ringkv(shards, &[]);
        run_py(
            &py,
            "test_tx.py",
            PY_TX,
            server.port(),
            &format!("ringkv --shards {shards}"),
        );
    }
}

// ---------------------------------------------------------------------------
// One rule each.
// ---------------------------------------------------------------------------

/// Servers to check a rule on: redis-server (when installed) first, so the
/// expectations are proved to be Redis's, then ringkv with 1 and 4 shards.
fn servers() -> Vec<Server> {
    let mut v = Vec::new();
    if let Some(r) = Server::redis() {
        v.push(r);
    }
    v.push(Server::ringkv(1, &[]));
    v.push(Server::ringkv(4, &[]));
    v
}

/// Another client's CLIENT LIST shows a client inside MULTI with `flags=x`
/// and `multi=<queued>`, and `multi=-1` and `cmd=exec` after EXEC.
#[test]
fn client_list_shows_multi() {
    for s in servers() {
        let mut a = Client::new(s.port());
        let mut o = Client::new(s.port());
        a.one(&["CLIENT", "SETNAME", "txc"]);
        a.one(&["MULTI"]);
        a.one(&["SET", "a", "1"]);
        a.one(&["GET", "abc"]);
        let line = |o: &mut Client| {
            let R::Bulk(_, Some(l)) = o.one(&["CLIENT", "LIST"]) else {
                panic!("CLIENT LIST")
            };
            let l = String::from_utf8(l).unwrap();
            l.lines()
                .find(|x| x.contains(" name=txc "))
                .unwrap_or_else(|| panic!("{l}"))
                .to_string()
        };
        let l = line(&mut o);
        assert!(
            l.contains(" flags=x ") && l.contains(" multi=2 "),
            "{}: {l}",
            s.label()
        );
        a.one(&["EXEC"]);
        let l = line(&mut o);
        assert!(
            l.contains(" flags=N ") && l.contains(" multi=-1 "),
            "{}: {l}",
            s.label()
        );
        // The last command is EXEC, not the last queued one.
        assert!(l.contains(" cmd=exec "), "{}: {l}", s.label());
    }
}

/// RESET inside MULTI leaves the transaction (EXEC then fails) and forgets
/// WATCH; QUIT inside MULTI closes without running the queue.
#[test]
fn reset_and_quit_inside_multi() {
    for s in servers() {
        let l = s.label().to_string();
        let mut a = Client::new(s.port());
        let mut o = Client::new(s.port());
        a.one(&["WATCH", "w"]);
        a.one(&["MULTI"]);
        assert_eq!(a.one(&["SET", "r", "1"]), R::Line(b'+', b("QUEUED")));
        assert_eq!(a.one(&["RESET"]), R::Line(b'+', b("RESET")));
        assert_eq!(
            a.one(&["EXEC"]),
            R::Line(b'-', b("ERR EXEC without MULTI")),
            "{l}"
        );
        assert!(o.one(&["GET", "r"]).is_null(), "{l}");
        // WATCH was forgotten: another client's write does not matter.
        o.one(&["SET", "w", "2"]);
        a.one(&["MULTI"]);
        a.one(&["GET", "w"]);
        assert_eq!(
            a.one(&["EXEC"]),
            R::Agg(b'*', Some(vec![R::Bulk(b'$', Some(b("2")))])),
            "{l}"
        );
        // QUIT inside MULTI.
        a.one(&["MULTI"]);
        a.one(&["SET", "q", "1"]);
        assert_eq!(a.one(&["QUIT"]), R::Line(b'+', b("OK")), "{l}");
        let mut rest = Vec::new();
        let _ = a.r.read_to_end(&mut rest);
        assert!(rest.is_empty(), "{l}: {rest:?}");
        assert!(o.one(&["GET", "q"]).is_null(), "{l}");
    }
}

/// A reply held by a 700 ms pause comes at least this long after the
/// CLIENT PAUSE was sent (the server's pause clock is its cached
/// millisecond time, which may lag a little behind ours).
const HELD: Duration = Duration::from_millis(600);

/// CLIENT PAUSE WRITE holds an EXEC whose queue writes until the pause
/// ends, and not one that only reads; it also holds the queueing of a
/// write command.
#[test]
fn client_pause_write_holds_only_writing_exec() {
    for s in servers() {
        let l = s.label().to_string();
        let mut a = Client::new(s.port());
        let mut o = Client::new(s.port());
        a.one(&["SET", "p", "1"]);
        // A read-only EXEC is answered during a long pause (ended early).
        a.one(&["MULTI"]);
        a.one(&["GET", "p"]);
        let t0 = Instant::now();
        assert_eq!(
            o.one(&["CLIENT", "PAUSE", "8000", "WRITE"]),
            R::Line(b'+', b("OK"))
        );
        let r = a.one(&["EXEC"]);
        let waited = t0.elapsed();
        o.one(&["CLIENT", "UNPAUSE"]);
        assert_eq!(r.items(), &[R::Bulk(b'$', Some(b("1")))], "{l}");
        assert!(
            waited < Duration::from_millis(8000),
            "{l}: read-only EXEC was held"
        );
        // A writing EXEC waits for the pause's end.
        a.one(&["MULTI"]);
        a.one(&["GET", "p"]);
        a.one(&["INCR", "p"]);
        let t0 = Instant::now();
        assert_eq!(
            o.one(&["CLIENT", "PAUSE", "700", "WRITE"]),
            R::Line(b'+', b("OK"))
        );
        let r = a.one(&["EXEC"]);
        let waited = t0.elapsed();
        assert_eq!(r.items().len(), 2, "{l}: {}", r.text());
        assert_eq!(r.items()[1], R::Line(b':', b("2")), "{l}");
        assert!(
            waited >= HELD,
            "{l}: writing EXEC answered after {waited:?}, inside the pause"
        );
        // Queueing a write command waits for the pause's end too (Redis
        // checks the pause before queueing).
        a.one(&["MULTI"]);
        let t0 = Instant::now();
        assert_eq!(
            o.one(&["CLIENT", "PAUSE", "700", "WRITE"]),
            R::Line(b'+', b("OK"))
        );
        assert_eq!(a.one(&["SET", "p", "5"]), R::Line(b'+', b("QUEUED")), "{l}");
        let waited = t0.elapsed();
        assert!(
            waited >= HELD,
            "{l}: a write was queued after {waited:?}, inside the pause"
        );
        assert_eq!(a.one(&["EXEC"]).items(), &[R::Line(b'+', b("OK"))], "{l}");
    }
}

/// MONITOR shows MULTI when it runs, then the queued commands and EXEC
/// (in that order) when EXEC runs.
#[test]
fn monitor_shows_transaction_in_order() {
    for s in servers() {
        let l = s.label().to_string();
        let mut m = s.raw_conn();
        m.send(&resp_cmd(&[b"MONITOR"]));
        m.expect(b"+OK\r\n");
        let mut a = Client::new(s.port());
        a.one(&["MULTI"]);
        a.one(&["SET", "mk", "v"]);
        a.one(&["GET", "mk"]);
        // Everything the monitor shows up to EXEC: MULTI (waited for),
        // then anything else within a short quiet period.
        let mut before = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !String::from_utf8_lossy(&before).contains("\"MULTI\"") && Instant::now() < deadline {
            before.extend(m.read_idle(Duration::from_millis(100), Duration::from_millis(500)));
        }
        before.extend(m.read_idle(Duration::from_millis(200), Duration::from_secs(1)));
        a.one(&["EXEC"]);
        let mut after = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !String::from_utf8_lossy(&after).contains("\"EXEC\"") && Instant::now() < deadline {
            after.extend(m.read_idle(Duration::from_millis(100), Duration::from_millis(500)));
        }
        let cmds = |raw: &[u8]| -> Vec<String> {
            String::from_utf8_lossy(raw)
                .split("\r\n")
                .filter(|x| !x.is_empty())
                .map(|x| {
                    x.split_once("] ")
                        .map(|p| p.1.to_string())
                        .unwrap_or(x.to_string())
                })
                .collect()
        };
        assert_eq!(cmds(&before), vec!["\"MULTI\""], "{l}");
        assert_eq!(
            cmds(&after),
            vec!["\"SET\" \"mk\" \"v\"", "\"GET\" \"mk\"", "\"EXEC\""],
            "{l}"
        );
    }
}

/// SLOWLOG logs the commands run by EXEC, not EXEC itself.
#[test]
fn slowlog_logs_queued_commands_not_exec() {
    for s in servers() {
        let l = s.label().to_string();
        let mut a = Client::new(s.port());
        a.one(&["CONFIG", "SET", "slowlog-log-slower-than", "0"]);
        a.one(&["SLOWLOG", "RESET"]);
        a.one(&["MULTI"]);
        a.one(&["SET", "sk", "1"]);
        a.one(&["INCR", "sk"]);
        a.one(&["EXEC"]);
        a.one(&["CONFIG", "SET", "slowlog-log-slower-than", "10000"]);
        let log = a.one(&["SLOWLOG", "GET", "100"]);
        let names: Vec<String> = log
            .items()
            .iter()
            .map(|e| match &e.items()[3].items()[0] {
                R::Bulk(_, Some(n)) => String::from_utf8_lossy(n).to_ascii_lowercase(),
                x => panic!("{}", x.text()),
            })
            .collect();
        assert!(!names.contains(&"exec".to_string()), "{l}: {names:?}");
        for want in ["multi", "set", "incr"] {
            assert!(names.contains(&want.to_string()), "{l}: {names:?}");
        }
    }
}

/// A push inside EXEC wakes a client blocked on the list, with the value
/// the transaction left there.
#[test]
fn push_inside_exec_wakes_blocked_client() {
    for s in servers() {
        let l = s.label().to_string();
        for key in ["bq0", "bq1", "bq2", "bq3"] {
            let mut w = Client::new(s.port());
            w.send(&["BLPOP", key, "10"]);
            // Let the BLPOP park (bounded; the EXEC below would
            // otherwise satisfy it as a plain LPOP, which is fine too).
            std::thread::sleep(Duration::from_millis(50));
            let mut a = Client::new(s.port());
            a.one(&["MULTI"]);
            a.one(&["RPUSH", key, "x", "y"]);
            a.one(&["LPOP", key]);
            let r = a.one(&["EXEC"]);
            assert_eq!(r.items().len(), 2, "{l}: {}", r.text());
            let got = w.read();
            assert_eq!(
                got,
                R::Agg(
                    b'*',
                    Some(vec![
                        R::Bulk(b'$', Some(b(key))),
                        R::Bulk(b'$', Some(b("y")))
                    ])
                ),
                "{l}"
            );
        }
    }
}

/// WATCH then another client's FLUSHDB/FLUSHALL/SWAPDB/MOVE/RENAME/
/// RESTORE/EXPIRE/... makes EXEC fail; no-op writes (SREM of a missing
/// member, INCRBY on a wrong type, EXPIRE of a missing key...) do not.
#[test]
fn watch_against_other_clients_commands() {
    let dirty: &[&[&str]] = &[
        &["FLUSHDB"],
        &["FLUSHALL"],
        &["SWAPDB", "0", "1"],
        &["MOVE", "wk", "1"],
        &["RENAME", "wk", "wk2"],
        &["RENAME", "src", "wk"],
        &["RESTORE", "wk", "0", "$DUMP", "REPLACE"],
        &["EXPIRE", "wk", "100"],
        &["PEXPIRE", "wk", "-1"],
        &["DEL", "wk"],
        &["SADD", "wk", "new"],
        &["SREM", "wk", "m"],
        &["SPOP", "wk"],
        &["SMOVE", "wk", "other", "m"],
        &["SINTERSTORE", "wk", "src"],
        &["COPY", "src", "wk", "REPLACE"],
        &["SORT", "src", "ALPHA", "STORE", "wk"],
        &["LTRIM", "wl", "0", "-1"],
        &["LSET", "wl", "0", "a"],
    ];
    let clean: &[&[&str]] = &[
        &["SREM", "wk", "nosuch"],
        &["INCRBY", "wk", "1"],
        &["EXPIRE", "missing", "100"],
        &["PERSIST", "wk"],
        &["SADD", "wk", "m"],
        &["SMOVE", "wk", "wk", "m"],
        &["RENAME", "wk", "wk"],
        &["SMEMBERS", "wk"],
        &["SET", "wk", "x", "NX"],
        &["SWAPDB", "2", "3"],
        &["MOVE", "nosuch", "1"],
        &["FLUSHDB", "ASYNC"],
        &["LREM", "wl", "0", "nosuch"],
        &["LPOS", "wl", "a"],
        &["LTRIM", "nosuch", "0", "-1"],
    ];
    for s in servers() {
        let l = s.label().to_string();
        let mut a = Client::new(s.port());
        let mut o = Client::new(s.port());
        o.one(&["SADD", "dumpsrc", "m", "z"]);
        let R::Bulk(_, Some(dump)) = o.one(&["DUMP", "dumpsrc"]) else {
            panic!("DUMP")
        };
        let mut check = |cmd: &[&str], want_null: bool| {
            // FLUSHDB ASYNC is only clean when db 0 holds no watched key:
            // watch a key of db 5 for it.
            let db = if cmd == ["FLUSHDB", "ASYNC"] {
                "5"
            } else {
                "0"
            };
            o.one(&["FLUSHALL"]);
            o.one(&["SADD", "wk", "m"]);
            o.one(&["SADD", "src", "m", "n"]);
            o.one(&["RPUSH", "wl", "a", "b"]);
            a.one(&["SELECT", db]);
            a.one(&["WATCH", "wk", "wl"]);
            let c: Args = cmd
                .iter()
                .map(|x| if *x == "$DUMP" { dump.clone() } else { b(x) })
                .collect();
            let r = o.pipeline(&[c]).unwrap().remove(0);
            a.one(&["MULTI"]);
            a.one(&["PING"]);
            let e = a.one(&["EXEC"]);
            a.one(&["SELECT", "0"]);
            assert_eq!(
                e.is_null(),
                want_null,
                "{l}: WATCH wk wl; other client: {cmd:?} -> {}; EXEC -> {}",
                r.text(),
                e.text()
            );
        };
        for c in dirty {
            check(c, true);
        }
        for c in clean {
            check(c, false);
        }
    }
}

/// INFO after transactions: a NO_MULTI command refused while queueing
/// counts as rejected, errors inside EXEC count as failed calls of their
/// command and in errorstats, queued commands count once in
/// total_commands_processed, and a command of an EXEC that failed its
/// WATCH is not counted at all.
#[test]
fn info_counts_transactions_like_redis() {
    let mut seen: Vec<(String, Vec<String>)> = Vec::new();
    for s in servers() {
        let mut a = Client::new(s.port());
        a.one(&["CONFIG", "RESETSTAT"]);
        let script: Vec<Args> = vec![
            args(&["MULTI"]),
            args(&["SAVE"]),
            args(&["EXEC"]),
            args(&["MULTI"]),
            args(&["SET", "k", "v"]),
            args(&["INCR", "k"]),
            args(&["EXEC"]),
            args(&["WATCH", "k"]),
            args(&["SET", "k", "1"]),
            args(&["MULTI"]),
            args(&["GET", "k"]),
            args(&["EXEC"]),
        ];
        a.pipeline(&script).unwrap();
        let mut lines = Vec::new();
        for section in ["commandstats", "errorstats", "stats"] {
            let R::Bulk(_, Some(text)) = a.one(&["INFO", section]) else {
                panic!("INFO")
            };
            for l in String::from_utf8_lossy(&text).lines() {
                let keep = ["set", "save", "exec", "watch", "multi", "incr", "get"]
                    .iter()
                    .any(|c| l.starts_with(&format!("cmdstat_{c}:")))
                    || l.starts_with("errorstat_")
                    || l.starts_with("total_error_replies:")
                    || l.starts_with("total_commands_processed:");
                if !keep {
                    continue;
                }
                // Drop the timings.
                let l: Vec<&str> = l.split(',').filter(|f| !f.contains("usec")).collect();
                lines.push(l.join(","));
            }
        }
        lines.sort();
        seen.push((s.label().to_string(), lines));
    }
    for (label, lines) in &seen[1..] {
        assert_eq!(lines, &seen[0].1, "{label} vs {}", seen[0].0);
    }
}

/// MONITOR queued in a transaction fails inside EXEC (a client inside
/// EXEC expects one reply per command) and the client stays a normal one.
#[test]
fn monitor_inside_multi_is_refused() {
    for s in servers() {
        let l = s.label().to_string();
        let mut a = Client::new(s.port());
        let r = a.pipeline(&[
            args(&["MULTI"]),
            args(&["MONITOR"]),
            args(&["SET", "mon", "1"]),
            args(&["EXEC"]),
            args(&["PING"]),
            args(&["GET", "mon"]),
        ]);
        let r = r.unwrap_or_else(|e| panic!("{l}: {e}"));
        assert_eq!(
            r[3],
            R::Agg(
                b'*',
                Some(vec![
                    R::Line(
                        b'-',
                        b("ERR MONITOR isn't allowed for DENY BLOCKING client")
                    ),
                    R::Line(b'+', b("OK")),
                ])
            ),
            "{l}: {}",
            r[3].text()
        );
        assert_eq!(r[4], R::Line(b'+', b("PONG")), "{l}");
        assert_eq!(r[5], R::Bulk(b'$', Some(b("1"))), "{l}");
    }
}

/// EXEC refused before it runs (wrong arity, NOAUTH) replies EXECABORT
/// with the reason and drops the transaction and the WATCHes, inside
/// MULTI or not (Redis 7.0).
#[test]
fn refused_exec_discards_the_transaction() {
    for s in servers() {
        let l = s.label().to_string();
        let mut a = Client::new(s.port());
        let mut o = Client::new(s.port());
        let abort = |why: &str| {
            R::Line(
                b'-',
                b(&format!(
                    "EXECABORT Transaction discarded because of: {why}"
                )),
            )
        };
        let arity = "wrong number of arguments for 'exec' command";
        let r = a
            .pipeline(&[
                args(&["MULTI"]),
                args(&["SET", "q", "1"]),
                args(&["EXEC", "x"]),
                args(&["EXEC"]),
                args(&["GET", "q"]),
            ])
            .unwrap();
        assert_eq!(r[2], abort(arity), "{l}: {}", r[2].text());
        assert_eq!(r[3], R::Line(b'-', b("ERR EXEC without MULTI")), "{l}");
        assert!(r[4].is_null(), "{l}");
        // Outside MULTI it drops the WATCHes.
        a.one(&["WATCH", "wx"]);
        assert_eq!(a.one(&["EXEC", "x"]), abort(arity), "{l}");
        o.one(&["SET", "wx", "2"]);
        a.one(&["MULTI"]);
        assert_eq!(a.one(&["EXEC"]), R::Agg(b'*', Some(vec![])), "{l}");
        // NOAUTH.
        o.one(&["CONFIG", "SET", "requirepass", "pw"]);
        let mut n = Client::new(s.port());
        assert_eq!(
            n.one(&["EXEC"]),
            abort("NOAUTH Authentication required."),
            "{l}"
        );
        o.one(&["AUTH", "pw"]);
        o.one(&["CONFIG", "SET", "requirepass", ""]);
    }
}

/// BGSAVE inside EXEC is scheduled (Redis does not fork inside EXEC), and
/// the scheduled save then runs.
#[test]
fn bgsave_inside_exec_is_scheduled() {
    for s in servers() {
        let l = s.label().to_string();
        let mut a = Client::new(s.port());
        a.one(&["SET", "bg", "1"]);
        let r = a.pipeline(&[args(&["MULTI"]), args(&["BGSAVE"]), args(&["EXEC"])]);
        let r = r.unwrap_or_else(|e| panic!("{l}: {e}"));
        assert_eq!(
            r[2],
            R::Agg(
                b'*',
                Some(vec![R::Line(b'+', b("Background saving scheduled"))])
            ),
            "{l}: {}",
            r[2].text()
        );
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let R::Bulk(_, Some(info)) = a.one(&["INFO", "persistence"]) else {
                panic!("INFO")
            };
            let info = String::from_utf8_lossy(&info).into_owned();
            if info.contains("rdb_changes_since_last_save:0\r")
                && info.contains("rdb_bgsave_in_progress:0\r")
            {
                assert!(info.contains("rdb_last_bgsave_status:ok\r"), "{l}: {info}");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{l}: the scheduled save did not run\n{info}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
