//! ringkv-bench: a RESP load generator that reports what memtier and
//! redis-benchmark hide.
//!
//! * Closed loop (default): every connection keeps `--pipeline` requests
//!   in flight and sends a new one as soon as a reply comes back, like
//!   memtier_benchmark.  Latency runs from the moment a request was
//!   written (all requests of one write share that time) to the moment
//!   its reply was read.
//! * Open loop (`--rate R`): requests follow a fixed schedule of `R`
//!   requests per second in total, spread evenly over all connections
//!   (request `k` of the run is due at `start + k / R`).  Latency runs from
//!   each request's *intended* send time, so a server stall is charged to
//!   every request that should have been sent during it (no coordinated
//!   omission, as in wrk2).  The time from the actual write is reported as
//!   "service time" next to it.  In open loop `--pipeline` caps the
//!   requests in flight per connection; a due request that waits for that
//!   cap still has its latency counted from its intended time.
//!
//! Transactions (`--multi N`): one request is `MULTI`, the next N
//! commands of the command cycle and `EXEC`, written back to back; it is
//! counted once, its latency runs until the EXEC reply is read, and it is
//! an error unless the replies are `+OK`, N x `+QUEUED` and an EXEC array
//! of N replies none of which is an error (a null EXEC counts as "nil").
//!
//! Cache workload (`--cache`): every request is a GET; a nil reply (a
//! miss) makes the connection send the SET of that key right away, as a
//! look-aside cache client fills a miss.  The SET belongs to the same
//! request: GET hit ratio, GETs/s and commands/s, GET latency and GET+SET
//! latency are reported; error replies (-OOM from a server at maxmemory)
//! are counted and the run goes on.
//!
//! Replies are parsed as RESP2/RESP3 (simple strings, errors, integers,
//! bulk strings, arrays, nulls, maps, sets, attributes and push messages);
//! every request gets exactly one reply, a top-level error reply
//! (`-ERR ...`, blob error) counts as an error, a null as "nil".
//!
//! Each thread runs one epoll loop over its connections (nonblocking std
//! sockets), records latencies in HdrHistograms and hands the main thread
//! one interval histogram per second, which prints a progress line and
//! optionally appends the interval to an HdrHistogram V2 log
//! (`--hdr-log`).  At the end it prints a summary and optionally writes a
//! JSON report (`--json`).
//!
//! Exit status: 0 when every request got a reply and none was an error;
//! 1 when some reply was an error or some request went unanswered
//! (connection lost, timeout); 2 on bad arguments or when connecting
//! failed.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::time::{Duration, SystemTime};

use clap::{Parser, ValueEnum};
use hdrhistogram::serialization::interval_log::{IntervalLogWriter, IntervalLogWriterBuilder, Tag};
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::Histogram;

const SEC: u64 = 1_000_000_000;
/// Largest latency the histograms track (1 hour, in ns); larger values
/// are clamped.
const HIST_MAX: u64 = 3_600 * SEC;
/// Error reply texts kept as samples (distinct ones, per thread).
const ERROR_SAMPLES: usize = 8;
const TIMER_TOKEN: u64 = u64::MAX;

/// Set by SIGINT/SIGTERM: stop issuing requests, drain, report.
static STOP: AtomicBool = AtomicBool::new(false);

// ---------------------------------------------------------------------------
// command line
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Dist {
    /// Every key equally likely.
    Uniform,
    /// Zipf-distributed ranks (key 0 hottest), exponent `--zipf-s`.
    Zipf,
    /// Walk the key space in order (connection j takes j, j+N, ...):
    /// useful to load every key once.
    Sequential,
    /// Normal distribution centred on the middle of the key space,
    /// standard deviation `--gauss-stddev` (memtier's `--key-pattern G:G`);
    /// draws outside the key space are drawn again.
    Gaussian,
}

#[derive(Parser, Debug)]
#[command(
    name = "ringkv-bench",
    version,
    args_override_self = true,
    about = "RESP load generator: closed loop or open loop (fixed rate, latency from the \
             intended send time), exact request counts, HdrHistogram output",
    after_help = "Placeholders in --command: __key__ (or __rand_int__) is replaced by the request's \
key number, zero-padded to the width of the largest key; __value__ by --value-size bytes; \
with --multi N, __i__ by the command's index inside its transaction (0 .. N-1, zero-padded), \
while __key__ is one key number for the whole transaction.\n\
Default workload: SET key:__key__ __value__ and GET key:__key__ with --ratio 1:10.\n\
\n\
Examples:\n  ringkv-bench -p 6379 -c 50 -P 16 -n 1000000\n  \
ringkv-bench -p 6379 --rate 100000 --duration 10 --hdr-log run.hlog --json run.json\n  \
ringkv-bench -p 6379 --command 'INCR counter:__key__' --distribution zipf --zipf-s 1.1\n  \
ringkv-bench -p 6379 --command 'SET a __value__' --command 'GET a' --ratio 1:4\n  \
ringkv-bench -p 6379 --multi 10 --command 'INCR k:__key__:__i__' -P 16\n  \
ringkv-bench -p 6379 --cache --keyspace 1000000 --value-size 100 --distribution zipf -P 16 \
--duration 10\n\n\
Cache mode (--cache): a request is GET key:__key__; a nil reply (a miss) is followed at once \
by SET key:__key__ __value__ on the same connection, as part of the same request. Reported: \
hit ratio = hits / GET replies; GETs/s and commands/s (GETs + SETs); latency of the GETs and \
of the whole request (GET+SET: a hit's GET, or from a miss's GET until its SET's reply). \
--requests counts GETs. Error replies (e.g. -OOM to a SET) count as errors (exit status 1) \
but do not stop the run. In --json: a \"cache\" object; \"latency\" is the GETs'; \
\"throughput_rps\" counts all commands."
)]
struct Cli {
    /// Server host name or IP address.
    #[arg(long, default_value = "127.0.0.1", alias = "server")]
    host: String,
    /// Server port.
    #[arg(short = 'p', long, default_value_t = 6379)]
    port: u16,
    /// Worker threads, each with its own epoll loop and connections.
    #[arg(short = 't', long, default_value_t = 1)]
    threads: usize,
    /// CPUs to pin the worker threads to, e.g. "1" or "2-3,6"; thread i
    /// gets the i-th CPU of the list (wrapping).
    #[arg(long)]
    cpus: Option<String>,
    /// Connections per thread.
    #[arg(short = 'c', long, default_value_t = 50)]
    connections: usize,
    /// Requests in flight per connection (closed loop); the cap on them
    /// in open loop.
    #[arg(short = 'P', long, default_value_t = 1)]
    pipeline: usize,
    /// Total requests (exact). Default: 100000 in closed loop; in open
    /// loop the run lasts --duration (default 10 s) unless this is given.
    #[arg(short = 'n', long, conflicts_with = "duration")]
    requests: Option<u64>,
    /// Run for this many seconds (then wait for the outstanding replies).
    #[arg(long)]
    duration: Option<f64>,
    /// Open loop: total requests per second over all threads and
    /// connections, on a fixed schedule.
    #[arg(long)]
    rate: Option<f64>,
    /// Number of distinct keys (key numbers 0 .. keyspace-1).
    #[arg(long, default_value_t = 100_000)]
    keyspace: u64,
    /// Key distribution.
    #[arg(long, value_enum, default_value_t = Dist::Uniform)]
    distribution: Dist,
    /// Zipf exponent (> 0) for --distribution zipf.
    #[arg(long, default_value_t = 0.99)]
    zipf_s: f64,
    /// Standard deviation, in keys, of --distribution gaussian (default:
    /// keyspace / 6, as memtier's).
    #[arg(long)]
    gauss_stddev: Option<f64>,
    /// Cache workload: each request is `GET key:__key__`; when its reply
    /// is nil (a miss) the connection sends `SET key:__key__ __value__`
    /// as soon as it reads that reply. The SET is a follow-up command of
    /// the same request (not a request of its own): --requests counts
    /// GETs, --pipeline caps the GETs and SETs in flight (a miss's SET is
    /// sent even past the cap). Reports the GET hit ratio (hits / GET
    /// replies), GETs/s and commands/s, GET latency and GET+SET latency
    /// (a hit: its GET's; a miss: from the GET's send until the SET's
    /// reply). Error replies (e.g. -OOM to a SET) are counted, the run
    /// goes on. Not with --command, --ratio, --multi.
    #[arg(long, conflicts_with_all = ["commands", "ratio", "multi", "pubsub_subscribers"])]
    cache: bool,
    /// Size in bytes of __value__.
    #[arg(long, default_value_t = 32)]
    value_size: usize,
    /// Weights of the commands, in order, e.g. 1:10 (default workload:
    /// SET:GET). Each connection cycles through the commands with exactly
    /// these proportions.
    #[arg(long)]
    ratio: Option<String>,
    /// A command template (repeatable), e.g. "SET key:__key__ __value__".
    /// Arguments are split on blanks; "double quotes" keep blanks.
    #[arg(long = "command")]
    commands: Vec<String>,
    /// Transactions: every request is MULTI, the next N commands of the
    /// command cycle (--command/--ratio) and EXEC, sent in one write and
    /// counted as ONE request (latency: until the EXEC reply is read). It
    /// counts as an error unless MULTI answers +OK, each command +QUEUED
    /// and EXEC an array of N replies without an error among them.
    #[arg(long, value_name = "N")]
    multi: Option<usize>,
    /// Pub/Sub mode: this many subscriber connections (one thread each);
    /// subscriber i subscribes to channel `ch:<i mod channels>`. The
    /// publishers are --connections connections (one thread each) sending
    /// PUBLISH round-robin over the channels, --pipeline deep, for
    /// --duration seconds (default 10); the payload (--value-size bytes,
    /// at least 20) carries the send time. Reports published and
    /// delivered messages per second and publish-to-receive latency.
    #[arg(long, value_name = "S")]
    pubsub_subscribers: Option<usize>,
    /// Pub/Sub mode: number of channels.
    #[arg(long, default_value_t = 1)]
    pubsub_channels: usize,
    /// Password: each connection sends AUTH before the run.
    #[arg(long)]
    auth: Option<String>,
    /// Write a JSON report to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write an HdrHistogram interval log (V2 compressed histograms, one
    /// per second, values in nanoseconds) to this file.
    #[arg(long)]
    hdr_log: Option<PathBuf>,
    /// Seconds a connection may wait for a reply before it is given up
    /// (its outstanding requests then count as unanswered).
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
    /// Open loop: a request due within this many microseconds is waited
    /// for by spinning instead of sleeping on a timer (a sleeping thread
    /// wakes some microseconds late, and that lateness counts as latency).
    /// 0: always sleep (better on a CPU shared with other work).
    #[arg(long, default_value_t = 20)]
    spin_us: u64,
    /// Seed for the key generator (default: fixed).
    #[arg(long, default_value_t = 0x5eed)]
    seed: u64,
    /// No progress lines.
    #[arg(short = 'q', long)]
    quiet: bool,
}

// ---------------------------------------------------------------------------
// small utilities
// ---------------------------------------------------------------------------

/// CLOCK_MONOTONIC in nanoseconds (the clock timerfd uses).
fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * SEC + ts.tv_nsec as u64
}

/// xorshift64* pseudo-random generator.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        // splitmix64 of the seed, never zero
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Rng((z ^ (z >> 31)) | 1)
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in 0..n (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// Zipf sampler over ranks 1..=n with exponent s > 0: rejection-inversion
/// (Hörmann & Derflinger 1996, as in Apache Commons RNG), O(1) per sample.
struct Zipf {
    n: f64,
    s: f64,
    h_x1: f64,
    h_n: f64,
    cut: f64,
}

impl Zipf {
    fn new(n: u64, s: f64) -> Zipf {
        let mut z = Zipf {
            n: n as f64,
            s,
            h_x1: 0.0,
            h_n: 0.0,
            cut: 0.0,
        };
        z.h_x1 = z.h_integral(1.5) - 1.0;
        z.h_n = z.h_integral(n as f64 + 0.5);
        z.cut = 2.0 - z.h_integral_inv(z.h_integral(2.5) - z.h(2.0));
        z
    }

    fn h(&self, x: f64) -> f64 {
        (-self.s * x.ln()).exp()
    }

    fn h_integral(&self, x: f64) -> f64 {
        let lx = x.ln();
        helper2((1.0 - self.s) * lx) * lx
    }

    fn h_integral_inv(&self, x: f64) -> f64 {
        let t = (x * (1.0 - self.s)).max(-1.0);
        (helper1(t) * x).exp()
    }

    /// A rank in 1..=n (1 is the most frequent).
    fn sample(&self, rng: &mut Rng) -> u64 {
        loop {
            let u = self.h_n + rng.unit() * (self.h_x1 - self.h_n);
            let x = self.h_integral_inv(u);
            let k = (x + 0.5).floor().clamp(1.0, self.n);
            if k - x <= self.cut || u >= self.h_integral(k + 0.5) - self.h(k) {
                return k as u64;
            }
        }
    }
}

/// A key in 0..n from a normal distribution (mean, sd), by Box-Muller;
/// draws outside 0..n are drawn again (after 64 misses, the mean).
fn gaussian_key(rng: &mut Rng, n: u64, mean: f64, sd: f64) -> u64 {
    for _ in 0..64 {
        let u1 = 1.0 - rng.unit(); // (0, 1]
        let u2 = rng.unit();
        let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        let x = (mean + sd * z).round();
        if x >= 0.0 && x < n as f64 {
            return x as u64;
        }
    }
    (mean.round() as u64).min(n - 1)
}

/// log1p(x)/x, stable near 0.
fn helper1(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.ln_1p() / x
    } else {
        1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x))
    }
}

/// expm1(x)/x, stable near 0.
fn helper2(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.exp_m1() / x
    } else {
        1.0 + x * 0.5 * (1.0 + x * (1.0 / 3.0) * (1.0 + 0.25 * x))
    }
}

/// Parses a CPU list such as "0-3,8".
fn parse_cpu_list(s: &str) -> Result<Vec<usize>, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || format!("bad CPU list '{s}'");
        if let Some((a, b)) = part.split_once('-') {
            let a: usize = a.trim().parse().map_err(|_| bad())?;
            let b: usize = b.trim().parse().map_err(|_| bad())?;
            if a > b {
                return Err(bad());
            }
            out.extend(a..=b);
        } else {
            out.push(part.parse().map_err(|_| bad())?);
        }
    }
    if out.is_empty() {
        return Err(format!("empty CPU list '{s}'"));
    }
    Ok(out)
}

fn pin_to(cpu: usize) -> io::Result<()> {
    // SAFETY: cpu_set_t is plain data; we pass its exact size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// 1234567 -> "1,234,567".
fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1e3
}

// ---------------------------------------------------------------------------
// workload: command templates and request encoding
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Lit(Vec<u8>),
    Key,
    Value,
    /// `__i__`: the command's index inside its transaction (--multi).
    Index,
}

/// A command template compiled to RESP pieces: literal bytes (including
/// the `*N` and `$len` headers, which are constant because keys have a
/// fixed width) and the places where the key and the value go.
#[derive(Debug, Clone)]
struct Template {
    text: String,
    pieces: Vec<Piece>,
}

/// Splits a template into arguments: blanks separate, "double quotes"
/// group (with \" and \\ escapes inside).
fn split_args(s: &str) -> Result<Vec<String>, String> {
    let mut args = Vec::new();
    let mut cur = String::new();
    let mut in_arg = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '"' {
            in_arg = true;
            loop {
                match chars.next() {
                    None => return Err(format!("unterminated quote in {s:?}")),
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some(e) => cur.push(e),
                        None => return Err(format!("dangling backslash in {s:?}")),
                    },
                    Some(o) => cur.push(o),
                }
            }
        } else if c.is_whitespace() {
            if in_arg {
                args.push(std::mem::take(&mut cur));
                in_arg = false;
            }
        } else {
            in_arg = true;
            cur.push(c);
        }
    }
    if in_arg {
        args.push(cur);
    }
    Ok(args)
}

impl Template {
    /// `index_width`: with `Some(w)` (--multi), `__i__` is a placeholder
    /// of `w` digits; without it, `__i__` is plain text.
    fn compile(
        text: &str,
        key_width: usize,
        value_size: usize,
        index_width: Option<usize>,
    ) -> Result<Template, String> {
        let args = split_args(text)?;
        if args.is_empty() {
            return Err("empty --command".into());
        }
        let mut pieces: Vec<Piece> = Vec::new();
        let push_lit = |pieces: &mut Vec<Piece>, b: &[u8]| {
            if b.is_empty() {
                return;
            }
            if let Some(Piece::Lit(v)) = pieces.last_mut() {
                v.extend_from_slice(b);
            } else {
                pieces.push(Piece::Lit(b.to_vec()));
            }
        };
        push_lit(&mut pieces, format!("*{}\r\n", args.len()).as_bytes());
        for arg in &args {
            // split the argument into literal / placeholder segments
            let mut segs: Vec<Piece> = Vec::new();
            let mut rest = arg.as_str();
            let mut len = 0usize;
            loop {
                let next = ["__key__", "__rand_int__", "__value__", "__i__"]
                    .iter()
                    .filter(|p| **p != "__i__" || index_width.is_some())
                    .filter_map(|p| rest.find(p).map(|i| (i, *p)))
                    .min();
                match next {
                    None => {
                        len += rest.len();
                        segs.push(Piece::Lit(rest.as_bytes().to_vec()));
                        break;
                    }
                    Some((i, p)) => {
                        len += i;
                        segs.push(Piece::Lit(rest.as_bytes()[..i].to_vec()));
                        if p == "__value__" {
                            len += value_size;
                            segs.push(Piece::Value);
                        } else if p == "__i__" {
                            len += index_width.unwrap_or(0);
                            segs.push(Piece::Index);
                        } else {
                            len += key_width;
                            segs.push(Piece::Key);
                        }
                        rest = &rest[i + p.len()..];
                    }
                }
            }
            push_lit(&mut pieces, format!("${len}\r\n").as_bytes());
            for s in segs {
                match s {
                    Piece::Lit(b) => push_lit(&mut pieces, &b),
                    other => pieces.push(other),
                }
            }
            push_lit(&mut pieces, b"\r\n");
        }
        Ok(Template {
            text: text.to_string(),
            pieces,
        })
    }

    fn uses_key(&self) -> bool {
        self.pieces.contains(&Piece::Key)
    }
}

/// Everything the threads need to build requests.
struct Workload {
    templates: Vec<Template>,
    weights: Vec<u64>,
    /// Template index per position of the command cycle (weights expanded).
    cycle: Vec<usize>,
    keyspace: u64,
    key_width: usize,
    dist: Dist,
    zipf: Option<Zipf>,
    zipf_s: f64,
    value: Vec<u8>,
    /// --multi: commands per transaction.
    multi: Option<usize>,
    /// Digits of `__i__` (--multi).
    index_width: usize,
    /// --cache: template 0 is the GET, template 1 the SET of a miss.
    cache: bool,
    /// --distribution gaussian: (mean, standard deviation) in keys.
    gauss: Option<(f64, f64)>,
}

/// Template indexes of the cache workload (--cache).
const CACHE_GET: usize = 0;
const CACHE_SET: usize = 1;

const MULTI_CMD: &[u8] = b"*1\r\n$5\r\nMULTI\r\n";
const EXEC_CMD: &[u8] = b"*1\r\n$4\r\nEXEC\r\n";

/// Writes `n` in decimal, zero-padded to `width` digits, into `out`;
/// returns `width`.
fn padded(n: u64, width: usize, out: &mut [u8; 24]) -> usize {
    let mut k = n;
    for i in (0..width).rev() {
        out[i] = b'0' + (k % 10) as u8;
        k /= 10;
    }
    width
}

impl Workload {
    /// Appends one command (template `t`, key number `key`, index `idx`
    /// inside its transaction) to `out`.
    fn encode_cmd(&self, t: usize, key: u64, idx: usize, out: &mut Vec<u8>) {
        let mut kbuf = [0u8; 24];
        let klen = padded(key, self.key_width, &mut kbuf);
        let mut ibuf = [0u8; 24];
        let ilen = padded(idx as u64, self.index_width, &mut ibuf);
        for p in &self.templates[t].pieces {
            match p {
                Piece::Lit(b) => out.extend_from_slice(b),
                Piece::Key => out.extend_from_slice(&kbuf[..klen]),
                Piece::Value => out.extend_from_slice(&self.value),
                Piece::Index => out.extend_from_slice(&ibuf[..ilen]),
            }
        }
    }

    /// Appends one request (template `t`, key number `key`) to `out`.
    #[cfg(test)]
    fn encode(&self, t: usize, key: u64, out: &mut Vec<u8>) {
        self.encode_cmd(t, key, 0, out);
    }

    /// Appends one request with key number `key` to `out`, taking its
    /// command(s) from the cycle at `*cycle_pos` (advanced): one command,
    /// or with --multi N a MULTI, N commands and an EXEC.
    fn encode_request(&self, cycle_pos: &mut usize, key: u64, out: &mut Vec<u8>) {
        let mut next = || {
            let t = self.cycle[*cycle_pos];
            *cycle_pos += 1;
            if *cycle_pos == self.cycle.len() {
                *cycle_pos = 0;
            }
            t
        };
        match self.multi {
            None => {
                let t = next();
                self.encode_cmd(t, key, 0, out);
            }
            Some(n) => {
                out.extend_from_slice(MULTI_CMD);
                for i in 0..n {
                    let t = next();
                    self.encode_cmd(t, key, i, out);
                }
                out.extend_from_slice(EXEC_CMD);
            }
        }
    }
}

fn build_workload(cli: &Cli) -> Result<Workload, String> {
    if cli.keyspace == 0 {
        return Err("--keyspace must be >= 1".into());
    }
    let key_width = (cli.keyspace - 1).to_string().len();
    let texts: Vec<String> = if cli.cache {
        vec![
            "GET key:__key__".to_string(),
            "SET key:__key__ __value__".to_string(),
        ]
    } else if cli.commands.is_empty() {
        vec![
            "SET key:__key__ __value__".to_string(),
            "GET key:__key__".to_string(),
        ]
    } else {
        cli.commands.clone()
    };
    let weights: Vec<u64> = match &cli.ratio {
        Some(r) => r
            .split(':')
            .map(|w| {
                w.trim()
                    .parse::<u64>()
                    .map_err(|_| format!("bad --ratio {r:?} (want e.g. 1:10)"))
            })
            .collect::<Result<_, _>>()?,
        // the cycle holds only the GET; the SET follows a miss
        None if cli.cache => vec![1, 0],
        None if cli.commands.is_empty() => vec![1, 10],
        None => vec![1; texts.len()],
    };
    if weights.len() != texts.len() {
        return Err(format!(
            "--ratio has {} weights for {} commands",
            weights.len(),
            texts.len()
        ));
    }
    let total: u64 = weights.iter().sum();
    if total == 0 || total > 1_000_000 {
        return Err("--ratio weights must add up to 1 ..= 1000000".into());
    }
    if let Some(n) = cli.multi {
        if !(1..=100_000).contains(&n) {
            return Err("--multi must be 1 ..= 100000".into());
        }
    }
    let index_width = cli.multi.map(|n| (n.max(1) - 1).to_string().len());
    let templates = texts
        .iter()
        .map(|t| Template::compile(t, key_width, cli.value_size, index_width))
        .collect::<Result<Vec<_>, _>>()?;
    let mut cycle = Vec::new();
    for (i, &w) in weights.iter().enumerate() {
        cycle.extend(std::iter::repeat_n(i, w as usize));
    }
    if cli.distribution == Dist::Zipf && !(cli.zipf_s > 0.0 && cli.zipf_s.is_finite()) {
        return Err("--zipf-s must be > 0".into());
    }
    let zipf = (cli.distribution == Dist::Zipf).then(|| Zipf::new(cli.keyspace, cli.zipf_s));
    let gauss = if cli.distribution == Dist::Gaussian {
        let sd = cli.gauss_stddev.unwrap_or(cli.keyspace as f64 / 6.0);
        if !(sd > 0.0 && sd.is_finite()) {
            return Err("--gauss-stddev must be > 0".into());
        }
        Some(((cli.keyspace - 1) as f64 / 2.0, sd))
    } else {
        None
    };
    // printable pseudo-random value bytes, fixed for the run
    let mut rng = Rng::new(cli.seed ^ 0xa11ce);
    const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let value = (0..cli.value_size)
        .map(|_| ALNUM[rng.below(ALNUM.len() as u64) as usize])
        .collect();
    Ok(Workload {
        templates,
        weights,
        cycle,
        keyspace: cli.keyspace,
        key_width,
        dist: cli.distribution,
        zipf,
        zipf_s: cli.zipf_s,
        value,
        multi: cli.multi,
        index_width: index_width.unwrap_or(0),
        cache: cli.cache,
        gauss,
    })
}

// ---------------------------------------------------------------------------
// RESP reply parser (resumable, RESP2 + RESP3)
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReplyKind {
    Ok,
    Nil,
    Error,
}

#[derive(Clone, Copy, Debug)]
struct Frame {
    remaining: u64,
    /// An attribute map: it decorates the next element and is not itself
    /// an element of its parent.
    attr: bool,
}

/// Parses a stream of replies incrementally.  Complete elements are
/// consumed (the caller's position moves past them) even while the
/// enclosing aggregate is still incomplete, so a huge array arriving in
/// many reads is parsed in linear time.
#[derive(Default)]
struct RespParser {
    stack: Vec<Frame>,
    top_kind: Option<ReplyKind>,
    top_skip: bool,
    top_error: Option<(usize, usize)>,
    top_simple: Option<(usize, usize)>,
    top_array_len: Option<u64>,
    top_child_errors: u64,
    top_child_error: Option<String>,
}

fn parse_len(line: &[u8]) -> Option<i64> {
    let (neg, digits) = match line.first() {
        Some(b'-') => (true, &line[1..]),
        _ => (false, line),
    };
    if digits.is_empty() || digits.len() > 18 {
        return None;
    }
    let mut v: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (d - b'0') as i64;
    }
    Some(if neg { -v } else { v })
}

/// One parsed top-level reply: its kind and, for errors, the byte range
/// of the error text in the buffer passed to `next_reply`.
#[derive(Debug, PartialEq, Eq)]
struct Reply {
    kind: ReplyKind,
    error: Option<(usize, usize)>,
    /// A simple string (`+...`): the byte range of its text.
    simple: Option<(usize, usize)>,
    /// A RESP array (`*n`, n >= 0): its number of elements.
    array_len: Option<u64>,
    /// Error replies among the direct elements of an aggregate, and the
    /// text of the first one (at most 200 characters).
    child_errors: u64,
    child_error: Option<String>,
}

enum Elem {
    /// A complete scalar; `kind` and error text range.
    Done(ReplyKind, Option<(usize, usize)>),
    /// An aggregate header with this many children (> 0).
    Open(u64, bool),
}

impl RespParser {
    /// Parses from `buf[*pos..]`; returns the next complete top-level reply
    /// (RESP3 push messages and attributes are skipped), `Ok(None)` when
    /// more bytes are needed, or an error for bytes that are not RESP.
    fn next_reply(&mut self, buf: &[u8], pos: &mut usize) -> Result<Option<Reply>, String> {
        loop {
            let start = *pos;
            if start >= buf.len() {
                return Ok(None);
            }
            let Some(nl) = memchr::memchr(b'\n', &buf[start..]) else {
                if buf.len() - start > 64 * 1024 * 1024 {
                    return Err("reply line longer than 64 MiB".into());
                }
                return Ok(None);
            };
            let line_end = start + nl; // index of '\n'
            if nl < 2 || buf[line_end - 1] != b'\r' {
                return Err(format!(
                    "malformed reply line {:?}",
                    String::from_utf8_lossy(&buf[start..(line_end + 1).min(start + 80)])
                ));
            }
            let t = buf[start];
            let line = &buf[start + 1..line_end - 1];
            let after = line_end + 1;
            let bad_len = || {
                format!(
                    "bad length in reply {:?}",
                    String::from_utf8_lossy(&buf[start..line_end - 1])
                )
            };
            let (elem, consumed) = match t {
                b'+' | b':' | b'#' | b',' | b'(' => (Elem::Done(ReplyKind::Ok, None), after),
                b'_' => (Elem::Done(ReplyKind::Nil, None), after),
                b'-' => (
                    Elem::Done(ReplyKind::Error, Some((start + 1, line_end - 1))),
                    after,
                ),
                b'$' | b'!' | b'=' => {
                    let n = parse_len(line).ok_or_else(bad_len)?;
                    if n < 0 {
                        (Elem::Done(ReplyKind::Nil, None), after)
                    } else {
                        let end = after + n as usize;
                        if buf.len() < end + 2 {
                            return Ok(None);
                        }
                        if &buf[end..end + 2] != b"\r\n" {
                            return Err("bulk reply not terminated by CRLF".into());
                        }
                        if t == b'!' {
                            (Elem::Done(ReplyKind::Error, Some((after, end))), end + 2)
                        } else {
                            (Elem::Done(ReplyKind::Ok, None), end + 2)
                        }
                    }
                }
                b'*' | b'~' | b'>' | b'%' | b'|' => {
                    let n = parse_len(line).ok_or_else(bad_len)?;
                    let mult = if t == b'%' || t == b'|' { 2 } else { 1 };
                    if n < 0 {
                        (Elem::Done(ReplyKind::Nil, None), after)
                    } else if n == 0 && t != b'|' {
                        (Elem::Done(ReplyKind::Ok, None), after)
                    } else if n == 0 {
                        // empty attribute: decorates nothing, skip it
                        *pos = after;
                        continue;
                    } else {
                        (Elem::Open(n as u64 * mult, t == b'|'), after)
                    }
                }
                _ => {
                    return Err(format!(
                        "unexpected reply type byte {:?} in {:?}",
                        t as char,
                        String::from_utf8_lossy(&buf[start..(line_end + 1).min(start + 80)])
                    ))
                }
            };
            *pos = consumed;
            if self.stack.is_empty() {
                // first element of a new top-level value
                self.top_simple = (t == b'+').then_some((start + 1, line_end - 1));
                self.top_array_len = if t == b'*' {
                    parse_len(line).and_then(|n| u64::try_from(n).ok())
                } else {
                    None
                };
                self.top_child_errors = 0;
                self.top_child_error = None;
                self.top_skip = t == b'>' || t == b'|';
                self.top_kind = Some(match &elem {
                    Elem::Done(k, _) => *k,
                    Elem::Open(..) => ReplyKind::Ok,
                });
                self.top_error = match &elem {
                    Elem::Done(_, e) => *e,
                    Elem::Open(..) => None,
                };
            }
            match elem {
                Elem::Open(n, attr) => {
                    self.stack.push(Frame { remaining: n, attr });
                    continue;
                }
                Elem::Done(ReplyKind::Error, Some((a, b)))
                    if self.stack.len() == 1 && !self.stack[0].attr =>
                {
                    self.top_child_errors += 1;
                    if self.top_child_error.is_none() {
                        self.top_child_error = Some(
                            String::from_utf8_lossy(&buf[a..b])
                                .chars()
                                .take(200)
                                .collect(),
                        );
                    }
                }
                Elem::Done(..) => {}
            }
            // an element completed: propagate up
            let mut completed_attr = false;
            while let Some(top) = self.stack.last_mut() {
                if completed_attr {
                    // an attribute inside an aggregate is not an element of it
                    completed_attr = false;
                    break;
                }
                top.remaining -= 1;
                if top.remaining > 0 {
                    break;
                }
                let f = self.stack.pop().expect("frame");
                completed_attr = f.attr;
            }
            if self.stack.is_empty() && !completed_attr {
                let skip = self.top_skip;
                let kind = self.top_kind.take().unwrap_or(ReplyKind::Ok);
                let error = self.top_error.take();
                self.top_skip = false;
                if !skip {
                    return Ok(Some(Reply {
                        kind,
                        error,
                        simple: self.top_simple.take(),
                        array_len: self.top_array_len.take(),
                        child_errors: std::mem::take(&mut self.top_child_errors),
                        child_error: self.top_child_error.take(),
                    }));
                }
            } else if self.stack.is_empty() {
                // a top-level attribute finished; the reply follows
                self.top_skip = false;
                self.top_kind = None;
            }
        }
    }
}

// ---------------------------------------------------------------------------
// transactions (--multi): checking the replies of one request
// ---------------------------------------------------------------------------

/// Follows the replies of one connection's transactions: MULTI's, each
/// queued command's and EXEC's, in order.
#[derive(Default, Debug)]
struct TxCheck {
    /// Replies of the current transaction seen so far.
    seen: usize,
    /// The first thing that was wrong with them.
    problem: Option<String>,
}

fn reply_text(buf: &[u8], range: Option<(usize, usize)>) -> String {
    let (a, b) = range.unwrap_or((0, 0));
    String::from_utf8_lossy(&buf[a..b])
        .chars()
        .take(200)
        .collect()
}

impl TxCheck {
    /// Feeds the next reply of a transaction of `n` commands (`buf`: the
    /// buffer the reply's ranges point into).  After the last reply (EXEC's)
    /// returns the transaction's outcome: `Ok`; `Nil` for a null EXEC
    /// (aborted by WATCH); `Error` with a description when MULTI did not
    /// answer +OK, a command was not +QUEUED, EXEC failed, returned other
    /// than N replies, or one of them is an error.
    fn feed(&mut self, n: usize, r: &Reply, buf: &[u8]) -> Option<(ReplyKind, Option<String>)> {
        let idx = self.seen;
        if idx <= n {
            self.seen += 1;
            if self.problem.is_none() {
                let want: &[u8] = if idx == 0 { b"OK" } else { b"QUEUED" };
                if r.kind == ReplyKind::Error {
                    self.problem = Some(reply_text(buf, r.error));
                } else if r.simple.map(|(a, b)| &buf[a..b]) != Some(want) {
                    self.problem = Some(if idx == 0 {
                        "MULTI: reply is not +OK".to_string()
                    } else {
                        format!("command {idx} of {n} in MULTI: reply is not +QUEUED")
                    });
                }
            }
            return None;
        }
        self.seen = 0;
        if let Some(p) = self.problem.take() {
            return Some((ReplyKind::Error, Some(p)));
        }
        Some(match (r.kind, r.array_len) {
            (ReplyKind::Error, _) => (ReplyKind::Error, Some(reply_text(buf, r.error))),
            (ReplyKind::Nil, _) => (ReplyKind::Nil, None),
            (ReplyKind::Ok, Some(len)) if len != n as u64 => (
                ReplyKind::Error,
                Some(format!("EXEC returned {len} replies for {n} commands")),
            ),
            (ReplyKind::Ok, Some(_)) if r.child_errors > 0 => {
                (ReplyKind::Error, r.child_error.clone())
            }
            (ReplyKind::Ok, Some(_)) => (ReplyKind::Ok, None),
            (ReplyKind::Ok, None) => (
                ReplyKind::Error,
                Some("EXEC reply is not an array".to_string()),
            ),
        })
    }
}

// ---------------------------------------------------------------------------
// worker threads
// ---------------------------------------------------------------------------

fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIST_MAX, 3).expect("histogram bounds")
}

/// Counters one thread accumulates.
#[derive(Default, Clone, Copy, Debug)]
struct Counts {
    /// Commands written (with --cache: GETs and SETs).
    sent: u64,
    replies: u64,
    errors: u64,
    nils: u64,
    /// --cache: GET replies, of which hits (not nil, not an error) and
    /// errors; SET replies, of which errors.
    gets: u64,
    hits: u64,
    get_errors: u64,
    sets: u64,
    set_errors: u64,
}

impl Counts {
    fn add(&mut self, o: &Counts) {
        self.sent += o.sent;
        self.replies += o.replies;
        self.errors += o.errors;
        self.nils += o.nils;
        self.gets += o.gets;
        self.hits += o.hits;
        self.get_errors += o.get_errors;
        self.sets += o.sets;
        self.set_errors += o.set_errors;
    }

    /// --cache: hits / GET replies (None before the first GET reply).
    fn hit_ratio(&self) -> Option<f64> {
        (self.gets > 0).then(|| self.hits as f64 / self.gets as f64)
    }
}

/// End-of-run facts from one thread.
#[derive(Default, Debug)]
struct Final {
    unanswered: u64,
    conn_errors: Vec<String>,
    error_samples: Vec<String>,
    end_ns: u64,
    last_reply_ns: u64,
}

/// One thread's interval (one second, or the final partial one).
struct Report {
    thread: usize,
    tick: u64,
    lat: Histogram<u64>,
    svc: Option<Histogram<u64>>,
    /// --cache: GET+SET latency of each request.
    pair: Option<Histogram<u64>>,
    counts: Counts,
    last: Option<Final>,
}

struct Shared {
    start_ns: AtomicU64,
    abort: AtomicBool,
    connected: Barrier,
    started: Barrier,
}

struct WorkerCfg {
    id: usize,
    cpu: Option<usize>,
    addr: SocketAddr,
    conns: usize,
    /// Global index of this thread's first connection.
    conn_base: usize,
    total_conns: usize,
    pipeline: usize,
    /// Requests per connection (u64::MAX: no limit).
    quotas: Vec<u64>,
    duration_ns: Option<u64>,
    /// Open loop: ns between two requests of the whole run.
    period_ns: Option<f64>,
    auth: Option<String>,
    timeout_ns: u64,
    spin_ns: u64,
    seed: u64,
}

/// What a command in flight is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    /// A request of the command cycle (or a whole transaction).
    Plain,
    /// --cache: the GET of a request.
    Get,
    /// --cache: the SET a miss sent.
    Set,
}

/// One command in flight.
#[derive(Clone, Copy, Debug)]
struct Pending {
    /// When its request was due (open loop) or written (closed loop); a
    /// miss's SET keeps its GET's.
    intended: u64,
    /// When it was written.
    sent: u64,
    /// Its key number (the SET of a miss needs it).
    key: u64,
    op: Op,
}

struct Conn {
    stream: TcpStream,
    fd: i32,
    rbuf: Vec<u8>,
    rstart: usize,
    rend: usize,
    wbuf: Vec<u8>,
    wpos: usize,
    want_out: bool,
    parser: RespParser,
    /// --multi: where the replies of the oldest transaction stand.
    tx: TxCheck,
    /// The commands in flight, oldest first.
    inflight: VecDeque<Pending>,
    issued: u64,
    quota: u64,
    global_idx: u64,
    cycle_pos: usize,
    /// Last time a reply arrived, or when the first request in flight
    /// was sent if it was idle.
    last_rx: u64,
    dead: bool,
}

fn sync_command(stream: &mut TcpStream, args: &[&[u8]]) -> Result<Vec<u8>, String> {
    let mut req = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        req.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        req.extend_from_slice(a);
        req.extend_from_slice(b"\r\n");
    }
    stream.write_all(&req).map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut parser = RespParser::default();
    loop {
        let n = stream.read(&mut chunk).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed".into());
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut pos = 0;
        if let Some(r) = parser.next_reply(&buf, &mut pos)? {
            if r.kind == ReplyKind::Error {
                let (a, b) = r.error.unwrap_or((0, 0));
                return Err(String::from_utf8_lossy(&buf[a..b]).into_owned());
            }
            return Ok(buf);
        }
        parser = RespParser::default();
    }
}

fn connect(cfg: &WorkerCfg) -> Result<TcpStream, String> {
    let mut s = TcpStream::connect_timeout(&cfg.addr, Duration::from_secs(5))
        .map_err(|e| format!("connect {}: {e}", cfg.addr))?;
    s.set_nodelay(true).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    if let Some(pw) = &cfg.auth {
        sync_command(&mut s, &[b"AUTH", pw.as_bytes()]).map_err(|e| format!("AUTH: {e}"))?;
    }
    s.set_nonblocking(true).map_err(|e| e.to_string())?;
    Ok(s)
}

struct Worker {
    cfg: WorkerCfg,
    wl: Arc<Workload>,
    shared: Arc<Shared>,
    tx: mpsc::Sender<Report>,
    conns: Vec<Conn>,
    rng: Rng,
    ep: i32,
    timer: i32,
    timer_armed: u64,
    start: u64,
    end: Option<u64>,
    open: bool,
    /// Closed loop past --duration: issue nothing more.
    closed_stop: bool,
    /// SIGINT or abort: issue nothing more.
    hard_stop: bool,
    lat: Histogram<u64>,
    svc: Option<Histogram<u64>>,
    pair: Option<Histogram<u64>>,
    counts: Counts,
    fin: Final,
}

fn epoll_mod(ep: i32, op: i32, fd: i32, events: u32, token: u64) -> io::Result<()> {
    let mut ev = libc::epoll_event { events, u64: token };
    // SAFETY: valid epoll fd and event struct.
    if unsafe { libc::epoll_ctl(ep, op, fd, &mut ev) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn run_worker(cfg: WorkerCfg, wl: Arc<Workload>, shared: Arc<Shared>, tx: mpsc::Sender<Report>) {
    let mut fin = Final::default();
    if let Some(cpu) = cfg.cpu {
        if let Err(e) = pin_to(cpu) {
            fin.conn_errors
                .push(format!("thread {}: pin to CPU {cpu}: {e}", cfg.id));
            shared.abort.store(true, Ordering::SeqCst);
        }
    }
    let mut conns = Vec::with_capacity(cfg.conns);
    if !shared.abort.load(Ordering::SeqCst) {
        for j in 0..cfg.conns {
            match connect(&cfg) {
                Ok(stream) => {
                    let fd = stream.as_raw_fd();
                    let global_idx = (cfg.conn_base + j) as u64;
                    conns.push(Conn {
                        stream,
                        fd,
                        rbuf: vec![0; 64 * 1024],
                        rstart: 0,
                        rend: 0,
                        wbuf: Vec::with_capacity(16 * 1024),
                        wpos: 0,
                        want_out: false,
                        parser: RespParser::default(),
                        tx: TxCheck::default(),
                        inflight: VecDeque::with_capacity(cfg.pipeline.min(1 << 16)),
                        issued: 0,
                        quota: cfg.quotas[j],
                        global_idx,
                        // transactions all start at the first command
                        cycle_pos: if wl.multi.is_some() {
                            0
                        } else {
                            global_idx as usize % wl.cycle.len()
                        },
                        last_rx: 0,
                        dead: false,
                    });
                }
                Err(e) => {
                    fin.conn_errors.push(e);
                    shared.abort.store(true, Ordering::SeqCst);
                    break;
                }
            }
        }
    }
    shared.connected.wait();
    shared.started.wait();
    let start = shared.start_ns.load(Ordering::SeqCst);
    let open = cfg.period_ns.is_some();
    let mut w = Worker {
        end: cfg.duration_ns.map(|d| start + d),
        rng: Rng::new(cfg.seed ^ (cfg.id as u64).wrapping_mul(0x9e37_79b9)),
        svc: open.then(new_hist),
        pair: wl.cache.then(new_hist),
        cfg,
        wl,
        shared,
        tx,
        conns,
        ep: -1,
        timer: -1,
        timer_armed: 0,
        start,
        open,
        closed_stop: false,
        hard_stop: false,
        lat: new_hist(),
        counts: Counts::default(),
        fin,
    };
    if !w.shared.abort.load(Ordering::SeqCst) {
        if let Err(e) = w.event_loop() {
            w.fin.conn_errors.push(format!("thread {}: {e}", w.cfg.id));
            for c in &mut w.conns {
                w.fin.unanswered += c.inflight.len() as u64;
                c.inflight.clear();
            }
        }
    }
    let now = now_ns();
    w.fin.end_ns = now;
    let tick = now.saturating_sub(w.start) / SEC;
    let fin = std::mem::take(&mut w.fin);
    w.send_report(tick, Some(fin));
    // SAFETY: closing fds we created (conn sockets close on drop).
    unsafe {
        if w.ep >= 0 {
            libc::close(w.ep);
        }
        if w.timer >= 0 {
            libc::close(w.timer);
        }
    }
}

impl Worker {
    fn send_report(&mut self, tick: u64, last: Option<Final>) {
        let lat = std::mem::replace(&mut self.lat, new_hist());
        let svc = self.svc.as_mut().map(|h| std::mem::replace(h, new_hist()));
        let pair = self.pair.as_mut().map(|h| std::mem::replace(h, new_hist()));
        let counts = std::mem::take(&mut self.counts);
        let _ = self.tx.send(Report {
            thread: self.cfg.id,
            tick,
            lat,
            svc,
            pair,
            counts,
            last,
        });
    }

    fn event_loop(&mut self) -> io::Result<()> {
        // SAFETY: plain syscalls on fds we own.
        self.ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if self.ep < 0 {
            return Err(io::Error::last_os_error());
        }
        for (i, c) in self.conns.iter().enumerate() {
            epoll_mod(
                self.ep,
                libc::EPOLL_CTL_ADD,
                c.fd,
                libc::EPOLLIN as u32,
                i as u64,
            )?;
        }
        if self.open {
            // SAFETY: plain syscalls.
            unsafe {
                // wake on time, not up to 50 us late
                let one_ns: libc::c_ulong = 1;
                libc::prctl(libc::PR_SET_TIMERSLACK, one_ns);
                self.timer = libc::timerfd_create(
                    libc::CLOCK_MONOTONIC,
                    libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
                );
            }
            if self.timer < 0 {
                return Err(io::Error::last_os_error());
            }
            epoll_mod(
                self.ep,
                libc::EPOLL_CTL_ADD,
                self.timer,
                libc::EPOLLIN as u32,
                TIMER_TOKEN,
            )?;
        }
        let mut next_tick = self.start + SEC;
        let mut tick = 0u64;
        if !self.open {
            for i in 0..self.conns.len() {
                self.refill(i, self.start);
            }
        }
        let mut events: Vec<libc::epoll_event> = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
        loop {
            let now = now_ns();
            if now >= next_tick {
                while now >= next_tick {
                    self.send_report(tick, None);
                    tick += 1;
                    next_tick += SEC;
                }
                self.check_stalls(now);
            }
            if !self.hard_stop
                && (STOP.load(Ordering::Relaxed) || self.shared.abort.load(Ordering::Relaxed))
            {
                self.hard_stop = true;
            }
            if !self.open && !self.closed_stop && self.end.is_some_and(|e| now >= e) {
                self.closed_stop = true;
            }
            let mut next_due = u64::MAX;
            if self.open {
                for i in 0..self.conns.len() {
                    next_due = next_due.min(self.issue_due(i, now));
                }
            }
            if self.all_done() {
                return Ok(());
            }
            let mut wake = next_tick;
            if !self.open && !self.closed_stop {
                if let Some(e) = self.end {
                    wake = wake.min(e);
                }
            }
            let spin = self.cfg.spin_ns;
            let timeout_ms: i32 = if next_due != u64::MAX && next_due <= now + spin {
                0
            } else {
                if next_due < wake {
                    let at = next_due - spin;
                    if at != self.timer_armed {
                        self.arm_timer(at)?;
                    }
                    wake = at;
                }
                let left = wake.saturating_sub(now);
                left.div_ceil(1_000_000).min(1000) as i32
            };
            // SAFETY: events buffer is valid for its length.
            let n = unsafe {
                libc::epoll_wait(
                    self.ep,
                    events.as_mut_ptr(),
                    events.len() as i32,
                    timeout_ms,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            for ev in &events[..n as usize] {
                let token = ev.u64;
                let flags = ev.events;
                if token == TIMER_TOKEN {
                    let mut b = [0u8; 8];
                    // SAFETY: reading the timerfd expiration count.
                    unsafe { libc::read(self.timer, b.as_mut_ptr().cast(), 8) };
                    self.timer_armed = 0;
                    continue;
                }
                let i = token as usize;
                if flags & (libc::EPOLLIN | libc::EPOLLERR | libc::EPOLLHUP) as u32 != 0 {
                    self.on_readable(i);
                }
                if flags & libc::EPOLLOUT as u32 != 0 && !self.conns[i].dead {
                    self.flush(i);
                }
            }
        }
    }

    fn arm_timer(&mut self, at: u64) -> io::Result<()> {
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: (at / SEC) as libc::time_t,
                tv_nsec: (at % SEC) as libc::c_long,
            },
        };
        // SAFETY: valid timerfd and itimerspec.
        let r = unsafe {
            libc::timerfd_settime(
                self.timer,
                libc::TFD_TIMER_ABSTIME,
                &spec,
                std::ptr::null_mut(),
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        self.timer_armed = at;
        Ok(())
    }

    /// No connection will issue or receive anything more.
    fn all_done(&self) -> bool {
        self.conns
            .iter()
            .all(|c| c.dead || (c.inflight.is_empty() && self.exhausted(c)))
    }

    /// This connection will issue no more requests.
    fn exhausted(&self, c: &Conn) -> bool {
        if self.hard_stop || c.dead || c.issued >= c.quota {
            return true;
        }
        if self.open {
            self.end.is_some_and(|e| self.intended(c) >= e)
        } else {
            self.closed_stop
        }
    }

    /// Open loop: the intended send time of connection `c`'s next request.
    fn intended(&self, c: &Conn) -> u64 {
        let period = self.cfg.period_ns.unwrap_or(0.0);
        let k = c.issued as f64 * self.cfg.total_conns as f64 + c.global_idx as f64;
        self.start + (k * period) as u64
    }

    fn next_key(&mut self, c_idx: usize) -> u64 {
        let wl = &self.wl;
        match wl.dist {
            Dist::Uniform => self.rng.below(wl.keyspace),
            Dist::Zipf => wl.zipf.as_ref().expect("zipf").sample(&mut self.rng) - 1,
            Dist::Sequential => {
                let c = &self.conns[c_idx];
                (c.global_idx + c.issued * self.cfg.total_conns as u64) % wl.keyspace
            }
            Dist::Gaussian => {
                let (mean, sd) = wl.gauss.expect("gauss");
                gaussian_key(&mut self.rng, wl.keyspace, mean, sd)
            }
        }
    }

    /// Appends the connection's next request to its write buffer.
    fn issue(&mut self, i: usize, intended: u64, now: u64) {
        let key = self.next_key(i);
        let wl: &Workload = &self.wl;
        let c = &mut self.conns[i];
        wl.encode_request(&mut c.cycle_pos, key, &mut c.wbuf);
        if c.inflight.is_empty() {
            c.last_rx = now;
        }
        c.inflight.push_back(Pending {
            intended,
            sent: now,
            key,
            op: if wl.cache { Op::Get } else { Op::Plain },
        });
        c.issued += 1;
        self.counts.sent += 1;
    }

    /// Closed loop: top the connection up to `--pipeline` requests in flight.
    fn refill(&mut self, i: usize, now: u64) {
        let mut added = false;
        while !self.conns[i].dead
            && self.conns[i].inflight.len() < self.cfg.pipeline
            && !self.exhausted(&self.conns[i])
        {
            self.issue(i, now, now);
            added = true;
        }
        if added {
            self.flush(i);
        }
    }

    /// Open loop: issues every request of connection `i` that is due (as
    /// far as the in-flight cap allows); returns when the next one is due
    /// (u64::MAX: none pending, or blocked by the cap until a reply).
    fn issue_due(&mut self, i: usize, now: u64) -> u64 {
        let mut added = false;
        let next = loop {
            let c = &self.conns[i];
            if self.exhausted(c) {
                break u64::MAX;
            }
            let due = self.intended(c);
            if due > now {
                break due;
            }
            if c.inflight.len() >= self.cfg.pipeline {
                break u64::MAX;
            }
            self.issue(i, due, now);
            added = true;
        };
        if added {
            self.flush(i);
        }
        next
    }

    fn flush(&mut self, i: usize) {
        let c = &mut self.conns[i];
        while c.wpos < c.wbuf.len() {
            match (&c.stream).write(&c.wbuf[c.wpos..]) {
                Ok(n) => c.wpos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if !c.want_out {
                        c.want_out = true;
                        let _ = epoll_mod(
                            self.ep,
                            libc::EPOLL_CTL_MOD,
                            c.fd,
                            (libc::EPOLLIN | libc::EPOLLOUT) as u32,
                            i as u64,
                        );
                    }
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.kill(i, format!("write: {e}"));
                    return;
                }
            }
        }
        c.wbuf.clear();
        c.wpos = 0;
        if c.want_out {
            c.want_out = false;
            let _ = epoll_mod(
                self.ep,
                libc::EPOLL_CTL_MOD,
                c.fd,
                libc::EPOLLIN as u32,
                i as u64,
            );
        }
    }

    /// Gives up on connection `i`: its requests in flight are unanswered.
    fn kill(&mut self, i: usize, why: String) {
        let c = &mut self.conns[i];
        if c.dead {
            return;
        }
        c.dead = true;
        self.fin.unanswered += c.inflight.len() as u64;
        c.inflight.clear();
        let _ = epoll_mod(self.ep, libc::EPOLL_CTL_DEL, c.fd, 0, 0);
        let _ = c.stream.shutdown(std::net::Shutdown::Both);
        self.fin.conn_errors.push(format!(
            "thread {} connection {}: {why}",
            self.cfg.id, c.global_idx
        ));
    }

    fn check_stalls(&mut self, now: u64) {
        for i in 0..self.conns.len() {
            let c = &self.conns[i];
            if !c.dead
                && !c.inflight.is_empty()
                && now.saturating_sub(c.last_rx) > self.cfg.timeout_ns
            {
                let why = format!(
                    "no reply for {:.1} s with {} request(s) in flight",
                    (now - c.last_rx) as f64 / 1e9,
                    c.inflight.len()
                );
                self.kill(i, why);
            }
        }
    }

    fn on_readable(&mut self, i: usize) {
        loop {
            let c = &mut self.conns[i];
            if c.dead {
                return;
            }
            if c.rend == c.rbuf.len() {
                if c.rstart > 0 {
                    c.rbuf.copy_within(c.rstart..c.rend, 0);
                    c.rend -= c.rstart;
                    c.rstart = 0;
                } else {
                    let n = c.rbuf.len() * 2;
                    c.rbuf.resize(n, 0);
                }
            }
            let room = c.rbuf.len() - c.rend;
            match (&c.stream).read(&mut c.rbuf[c.rend..]) {
                Ok(0) => {
                    let inflight = c.inflight.len();
                    let why = if inflight == 0 {
                        "server closed the connection".to_string()
                    } else {
                        format!("server closed the connection with {inflight} request(s) in flight")
                    };
                    if inflight > 0 || !self.exhausted(&self.conns[i]) {
                        self.kill(i, why);
                    } else {
                        let c = &mut self.conns[i];
                        c.dead = true;
                        let _ = epoll_mod(self.ep, libc::EPOLL_CTL_DEL, c.fd, 0, 0);
                    }
                    return;
                }
                Ok(n) => {
                    c.rend += n;
                    if let Err(e) = self.process_replies(i) {
                        self.kill(i, e);
                        return;
                    }
                    if n < room {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.kill(i, format!("read: {e}"));
                    return;
                }
            }
        }
        // the SETs of the misses just read (--cache)
        let c = &self.conns[i];
        if !c.dead && c.wpos < c.wbuf.len() && !c.want_out {
            self.flush(i);
        }
        if !self.open {
            let now = now_ns();
            self.refill(i, now);
        }
    }

    fn process_replies(&mut self, i: usize) -> Result<(), String> {
        let now = now_ns();
        let multi = self.wl.multi;
        let c = &mut self.conns[i];
        let mut got = false;
        loop {
            let mut pos = c.rstart;
            let r = c.parser.next_reply(&c.rbuf[..c.rend], &mut pos);
            c.rstart = pos;
            let Some(reply) = r? else { break };
            if c.inflight.is_empty() {
                return Err("reply without a request (protocol out of sync)".into());
            }
            got = true;
            // a transaction is complete with its EXEC reply
            let (kind, problem) = match multi {
                None => (reply.kind, None),
                Some(n) => match c.tx.feed(n, &reply, &c.rbuf[..c.rend]) {
                    None => continue,
                    Some(outcome) => outcome,
                },
            };
            let p = c.inflight.pop_front().expect("in flight");
            let since_intended = now.saturating_sub(p.intended).max(1);
            if p.op != Op::Set {
                // request latency (with --cache: the GET's)
                self.lat.saturating_record(since_intended);
                if let Some(h) = self.svc.as_mut() {
                    h.saturating_record(now.saturating_sub(p.sent).max(1));
                }
            }
            self.counts.replies += 1;
            match p.op {
                Op::Plain => {}
                Op::Get => {
                    self.counts.gets += 1;
                    match kind {
                        ReplyKind::Ok => self.counts.hits += 1,
                        ReplyKind::Error => self.counts.get_errors += 1,
                        ReplyKind::Nil => {}
                    }
                    if kind == ReplyKind::Nil {
                        // a miss: fill the cache now, same request
                        self.wl.encode_cmd(CACHE_SET, p.key, 0, &mut c.wbuf);
                        c.inflight.push_back(Pending {
                            intended: p.intended,
                            sent: now,
                            key: p.key,
                            op: Op::Set,
                        });
                        self.counts.sent += 1;
                    } else if let Some(h) = self.pair.as_mut() {
                        h.saturating_record(since_intended);
                    }
                }
                Op::Set => {
                    self.counts.sets += 1;
                    if kind == ReplyKind::Error {
                        self.counts.set_errors += 1;
                    }
                    if let Some(h) = self.pair.as_mut() {
                        h.saturating_record(since_intended);
                    }
                }
            }
            match kind {
                ReplyKind::Ok => {}
                ReplyKind::Nil => self.counts.nils += 1,
                ReplyKind::Error => {
                    self.counts.errors += 1;
                    if self.fin.error_samples.len() < ERROR_SAMPLES {
                        let text =
                            problem.unwrap_or_else(|| reply_text(&c.rbuf[..c.rend], reply.error));
                        if !self.fin.error_samples.contains(&text) {
                            self.fin.error_samples.push(text);
                        }
                    }
                }
            }
        }
        if c.rstart == c.rend {
            c.rstart = 0;
            c.rend = 0;
        }
        if got {
            c.last_rx = now;
            self.fin.last_reply_ns = now;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// aggregation, output
// ---------------------------------------------------------------------------

const PCTS: [(f64, &str); 6] = [
    (50.0, "p50"),
    (90.0, "p90"),
    (99.0, "p99"),
    (99.9, "p99.9"),
    (99.99, "p99.99"),
    (100.0, "max"),
];

/// The value at percentile `p` (0..=100) of `h`.
fn pct(h: &Histogram<u64>, p: f64) -> u64 {
    if p >= 100.0 {
        h.max()
    } else {
        h.value_at_quantile(p / 100.0)
    }
}

/// One second of the whole run (all threads).
struct Interval {
    start_ns: u64,
    len_ns: u64,
    lat: Histogram<u64>,
    svc: Option<Histogram<u64>>,
    pair: Option<Histogram<u64>>,
    counts: Counts,
}

/// Opens an HdrHistogram interval log and writes the header the Java
/// `HistogramLogWriter` writes (comment, format version, StartTime,
/// BaseTime, legend).
fn hdr_log_file(
    path: &PathBuf,
    start_wall: SystemTime,
    comment: &str,
) -> io::Result<io::BufWriter<std::fs::File>> {
    let mut file = io::BufWriter::new(std::fs::File::create(path)?);
    let secs = start_wall
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    writeln!(file, "#{comment}")?;
    writeln!(
        file,
        "#Values are latencies in nanoseconds (Interval_Max in ms); untagged: latency, \
         Tag=service: service time (open loop)"
    )?;
    writeln!(file, "#[Histogram log format version 1.3]")?;
    writeln!(file, "#[StartTime: {secs:.3} (seconds since epoch)]")?;
    writeln!(file, "#[BaseTime: {secs:.3} (seconds since epoch)]")?;
    writeln!(
        file,
        "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\""
    )?;
    Ok(file)
}

type HdrWriter<'a, 'b> =
    IntervalLogWriter<'a, 'b, io::BufWriter<std::fs::File>, V2DeflateSerializer>;

fn write_interval(w: &mut HdrWriter, iv: &Interval) -> Result<(), String> {
    let start = Duration::from_nanos(iv.start_ns);
    let len = Duration::from_nanos(iv.len_ns);
    w.write_histogram(&iv.lat, start, len, None)
        .map_err(|e| e.to_string())?;
    if let Some(svc) = &iv.svc {
        w.write_histogram(svc, start, len, Tag::new("service"))
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn progress_line(iv: &Interval, total: &Counts, rate: Option<f64>, cache: bool) -> String {
    let secs = (iv.start_ns + iv.len_ns) as f64 / 1e9;
    let n = if cache {
        iv.counts.gets
    } else {
        iv.counts.replies
    };
    let rps = if iv.len_ns > 0 {
        n as f64 * 1e9 / iv.len_ns as f64
    } else {
        0.0
    };
    let unit = if cache { "GET/s" } else { "req/s" };
    let mut s = format!("[{secs:6.1}s] {:>11} {unit}", group(rps.round() as u64));
    if let Some(r) = rate {
        let _ = write!(s, " (target {})", group(r.round() as u64));
    }
    if let Some(h) = iv.counts.hit_ratio() {
        let _ = write!(s, " | hit {:.2}%", h * 100.0);
    }
    if !iv.lat.is_empty() {
        let h = &iv.lat;
        let _ = write!(
            s,
            " | p50 {:.3} p99 {:.3} p99.9 {:.3} max {:.3} ms",
            ms(pct(h, 50.0)),
            ms(pct(h, 99.0)),
            ms(pct(h, 99.9)),
            ms(h.max())
        );
    }
    let _ = write!(
        s,
        " | sent {} replies {} errors {}",
        group(total.sent),
        group(total.replies),
        group(total.errors)
    );
    s
}

/// A tiny JSON writer (objects and arrays built as strings).
fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_f(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.3}")
    } else {
        "null".into()
    }
}

fn json_hist(h: &Histogram<u64>) -> String {
    let mut s = String::from("{");
    let _ = write!(s, "\"count\": {}", h.len());
    if !h.is_empty() {
        let _ = write!(
            s,
            ", \"min_us\": {}, \"mean_us\": {}, \"stdev_us\": {}",
            json_f(us(h.min())),
            json_f(h.mean() / 1e3),
            json_f(h.stdev() / 1e3)
        );
        for (p, name) in PCTS {
            let v = pct(h, p);
            let key = if name == "max" {
                "max_us".to_string()
            } else {
                format!("{}_us", name.replace('.', "_"))
            };
            let _ = write!(s, ", \"{key}\": {}", json_f(us(v)));
        }
        s.push_str(", \"percentiles\": [");
        let mut first = true;
        for it in h.iter_quantiles(4) {
            if !first {
                s.push_str(", ");
            }
            first = false;
            let _ = write!(
                s,
                "[{:.6}, {}]",
                it.quantile_iterated_to() * 100.0,
                json_f(us(it.value_iterated_to()))
            );
        }
        s.push(']');
    }
    s.push('}');
    s
}

struct RunInfo<'a> {
    cli: &'a Cli,
    wl: &'a Workload,
    addr: SocketAddr,
    requests_target: Option<u64>,
    elapsed_ns: u64,
    total: Counts,
    unanswered: u64,
    lat: &'a Histogram<u64>,
    svc: Option<&'a Histogram<u64>>,
    /// --cache: GET+SET latency.
    pair: Option<&'a Histogram<u64>>,
    conn_errors: &'a [String],
    error_samples: &'a [String],
    intervals: &'a [(u64, u64, Counts, u64, u64, u64)],
    start_wall: SystemTime,
    cpus: &'a Option<Vec<usize>>,
}

fn json_report(r: &RunInfo) -> String {
    let cli = r.cli;
    let mut s = String::from("{\n");
    let _ = writeln!(s, "  \"tool\": \"ringkv-bench\",");
    let _ = writeln!(s, "  \"version\": {},", json_str(env!("CARGO_PKG_VERSION")));
    let _ = writeln!(
        s,
        "  \"start_unix_s\": {},",
        json_f(
            r.start_wall
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs_f64()
        )
    );
    let cmds: Vec<String> =
        r.wl.templates
            .iter()
            .zip(&r.wl.weights)
            .map(|(t, w)| format!("{{\"template\": {}, \"weight\": {w}}}", json_str(&t.text)))
            .collect();
    let _ =
        writeln!(
        s,
        "  \"config\": {{\"host\": {}, \"addr\": {}, \"port\": {}, \"mode\": {}, \"threads\": {}, \
         \"cpus\": {}, \"connections_per_thread\": {}, \"connections\": {}, \"pipeline\": {}, \
         \"requests\": {}, \"duration_s\": {}, \"rate\": {}, \"keyspace\": {}, \
         \"distribution\": {}, \"zipf_s\": {}, \"gauss_stddev\": {}, \"value_size\": {}, \
         \"multi\": {}, \"cache\": {}, \"commands\": [{}]}},",
        json_str(&cli.host),
        json_str(&r.addr.to_string()),
        cli.port,
        json_str(if cli.rate.is_some() { "open" } else { "closed" }),
        cli.threads,
        match r.cpus {
            Some(c) => format!(
                "[{}]",
                c.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", ")
            ),
            None => "null".into(),
        },
        cli.connections,
        cli.threads * cli.connections,
        cli.pipeline,
        r.requests_target
            .map_or("null".to_string(), |n| n.to_string()),
        cli.duration.map_or("null".to_string(), json_f),
        cli.rate.map_or("null".to_string(), json_f),
        r.wl.keyspace,
        json_str(match r.wl.dist {
            Dist::Uniform => "uniform",
            Dist::Zipf => "zipf",
            Dist::Sequential => "sequential",
            Dist::Gaussian => "gaussian",
        }),
        if r.wl.dist == Dist::Zipf {
            json_f(r.wl.zipf_s)
        } else {
            "null".into()
        },
        r.wl.gauss.map_or("null".to_string(), |(_, sd)| json_f(sd)),
        cli.value_size,
        r.wl.multi.map_or("null".to_string(), |n| n.to_string()),
        r.wl.cache,
        cmds.join(", ")
    );
    let _ = writeln!(
        s,
        "  \"requests\": {{\"target\": {}, \"sent\": {}, \"replies\": {}, \"errors\": {}, \
         \"nil\": {}, \"unanswered\": {}}},",
        r.requests_target
            .map_or("null".to_string(), |n| n.to_string()),
        r.total.sent,
        r.total.replies,
        r.total.errors,
        r.total.nils,
        r.unanswered
    );
    let secs = r.elapsed_ns as f64 / 1e9;
    let _ = writeln!(s, "  \"elapsed_s\": {},", json_f(secs));
    let _ = writeln!(
        s,
        "  \"throughput_rps\": {},",
        json_f(if secs > 0.0 {
            r.total.replies as f64 / secs
        } else {
            0.0
        })
    );
    let _ = writeln!(
        s,
        "  \"latency_basis\": {},",
        json_str(if cli.rate.is_some() {
            "intended send time (open loop, corrected for coordinated omission)"
        } else {
            "actual send time (closed loop)"
        })
    );
    if r.wl.cache {
        let t = &r.total;
        let per_s = |n: u64| json_f(if secs > 0.0 { n as f64 / secs } else { 0.0 });
        let _ = writeln!(
            s,
            "  \"cache\": {{\"gets\": {}, \"hits\": {}, \"misses\": {}, \"get_errors\": {}, \
             \"sets\": {}, \"set_errors\": {}, \"hit_ratio\": {}, \"get_rps\": {}, \
             \"commands_rps\": {}, \"get_latency\": {}, \"get_set_latency\": {}}},",
            t.gets,
            t.hits,
            t.gets - t.hits - t.get_errors,
            t.get_errors,
            t.sets,
            t.set_errors,
            t.hit_ratio()
                .map_or("null".to_string(), |h| format!("{h:.6}")),
            per_s(t.gets),
            per_s(t.replies),
            json_hist(r.lat),
            r.pair.map_or("null".to_string(), json_hist)
        );
    }
    let _ = writeln!(s, "  \"latency\": {},", json_hist(r.lat));
    let _ = writeln!(
        s,
        "  \"service_time\": {},",
        r.svc.map_or("null".to_string(), json_hist)
    );
    let ivs: Vec<String> = r
        .intervals
        .iter()
        .map(|(start, len, c, p50, p99, max)| {
            let cache = if r.wl.cache {
                format!(
                    ", \"gets\": {}, \"hit_ratio\": {}",
                    c.gets,
                    c.hit_ratio()
                        .map_or("null".to_string(), |h| format!("{h:.6}"))
                )
            } else {
                String::new()
            };
            format!(
                "{{\"t_s\": {}, \"len_s\": {}, \"replies\": {}, \"errors\": {}, \"rps\": {}, \
                 \"p50_us\": {}, \"p99_us\": {}, \"max_us\": {}{cache}}}",
                json_f(*start as f64 / 1e9),
                json_f(*len as f64 / 1e9),
                c.replies,
                c.errors,
                json_f(if *len > 0 {
                    c.replies as f64 * 1e9 / *len as f64
                } else {
                    0.0
                }),
                json_f(us(*p50)),
                json_f(us(*p99)),
                json_f(us(*max))
            )
        })
        .collect();
    let _ = writeln!(s, "  \"intervals\": [{}],", ivs.join(",\n    "));
    let strs = |v: &[String]| v.iter().map(|e| json_str(e)).collect::<Vec<_>>().join(", ");
    let _ = writeln!(s, "  \"error_samples\": [{}],", strs(r.error_samples));
    let _ = writeln!(s, "  \"connection_errors\": [{}]", strs(r.conn_errors));
    s.push_str("}\n");
    s
}

fn summary(r: &RunInfo) -> String {
    let cli = r.cli;
    let mut s = String::new();
    let secs = r.elapsed_ns as f64 / 1e9;
    let rps = if secs > 0.0 {
        r.total.replies as f64 / secs
    } else {
        0.0
    };
    let _ = writeln!(s, "== ringkv-bench summary ==");
    let _ = writeln!(
        s,
        "requests:   {} sent, {} replies, {} errors, {} unanswered ({} nil replies)",
        group(r.total.sent),
        group(r.total.replies),
        group(r.total.errors),
        group(r.unanswered),
        group(r.total.nils)
    );
    if let Some(n) = r.wl.multi {
        let _ = writeln!(
            s,
            "            (one request = one transaction: MULTI, {n} command(s), EXEC)"
        );
    }
    let _ = writeln!(s, "elapsed:    {secs:.3} s");
    if r.wl.cache {
        let t = &r.total;
        let per_s = |n: u64| {
            group(if secs > 0.0 {
                (n as f64 / secs).round() as u64
            } else {
                0
            })
        };
        let _ = writeln!(
            s,
            "cache:      {} GETs: {} hits, {} misses, {} errors; {} SETs (of misses), {} errors",
            group(t.gets),
            group(t.hits),
            group(t.gets - t.hits - t.get_errors),
            group(t.get_errors),
            group(t.sets),
            group(t.set_errors)
        );
        let _ = writeln!(
            s,
            "hit ratio:  {} (hits / GET replies)",
            t.hit_ratio()
                .map_or("-".to_string(), |h| format!("{:.4}%", h * 100.0))
        );
        let _ = writeln!(
            s,
            "throughput: {} GET/s, {} commands/s (GETs + SETs){}",
            per_s(t.gets),
            per_s(t.replies),
            cli.rate.map_or(String::new(), |rate| format!(
                " (target rate {} GET/s)",
                group(rate.round() as u64)
            ))
        );
    }
    match cli.rate {
        _ if r.wl.cache => {}
        Some(rate) => {
            let _ = writeln!(
                s,
                "throughput: {} req/s (target rate {} req/s)",
                group(rps.round() as u64),
                group(rate.round() as u64)
            );
        }
        None => {
            let _ = writeln!(s, "throughput: {} req/s", group(rps.round() as u64));
        }
    }
    let mut header = format!("{:<30}", "latency (ms)");
    for (_, name) in PCTS {
        let _ = write!(header, "{name:>10}");
    }
    let _ = write!(header, "{:>10}", "mean");
    let _ = writeln!(s, "{header}");
    let row = |label: &str, h: &Histogram<u64>| {
        let mut line = format!("{label:<30}");
        for (p, _) in PCTS {
            let v = pct(h, p);
            let _ = write!(line, "{:>10.3}", ms(v));
        }
        let _ = write!(line, "{:>10.3}", h.mean() / 1e6);
        line
    };
    if !r.lat.is_empty() {
        let label = match (cli.rate.is_some(), r.wl.cache) {
            (true, false) => "  from intended send time",
            (false, false) => "  from send",
            (true, true) => "  GET, from intended send",
            (false, true) => "  GET, from send",
        };
        let _ = writeln!(s, "{}", row(label, r.lat));
        if let Some(svc) = r.svc {
            let label = if r.wl.cache {
                "  GET service (actual send)"
            } else {
                "  service (from actual send)"
            };
            let _ = writeln!(s, "{}", row(label, svc));
        }
        if let Some(pair) = r.pair.filter(|h| !h.is_empty()) {
            let label = if cli.rate.is_some() {
                "  GET+SET, from intended send"
            } else {
                "  GET+SET, from send"
            };
            let _ = writeln!(s, "{}", row(label, pair));
        }
    } else {
        let _ = writeln!(s, "  (no replies)");
    }
    if !r.error_samples.is_empty() {
        let _ = writeln!(s, "error replies (samples):");
        for e in r.error_samples {
            let _ = writeln!(s, "  {e}");
        }
    }
    if !r.conn_errors.is_empty() {
        let _ = writeln!(s, "connection errors:");
        for e in r.conn_errors.iter().take(20) {
            let _ = writeln!(s, "  {e}");
        }
        if r.conn_errors.len() > 20 {
            let _ = writeln!(s, "  ... and {} more", r.conn_errors.len() - 20);
        }
    }
    s
}

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn main() {
    let cli = Cli::parse();
    std::process::exit(match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ringkv-bench: {e}");
            2
        }
    });
}

fn run(cli: Cli) -> Result<i32, String> {
    if cli.threads == 0 || cli.connections == 0 || cli.pipeline == 0 {
        return Err("--threads, --connections and --pipeline must be >= 1".into());
    }
    if let Some(r) = cli.rate {
        if !(r > 0.0 && r.is_finite()) {
            return Err("--rate must be > 0".into());
        }
    }
    if let Some(d) = cli.duration {
        if !(d > 0.0 && d.is_finite()) {
            return Err("--duration must be > 0".into());
        }
    }
    if cli.requests == Some(0) {
        return Err("--requests must be >= 1".into());
    }
    if !(cli.timeout > 0.0 && cli.timeout.is_finite()) {
        return Err("--timeout must be > 0".into());
    }
    if let Some(subs) = cli.pubsub_subscribers {
        return pubsub::run(&cli, subs);
    }
    let wl = Arc::new(build_workload(&cli)?);
    let cpus = cli.cpus.as_deref().map(parse_cpu_list).transpose()?;
    let addr = (cli.host.as_str(), cli.port)
        .to_socket_addrs()
        .map_err(|e| format!("resolve {}: {e}", cli.host))?
        .next()
        .ok_or_else(|| format!("resolve {}: no address", cli.host))?;

    let total_conns = cli.threads * cli.connections;
    // How the run ends: an exact request count, or a duration.
    let (requests_target, duration_ns) = match (cli.requests, cli.duration) {
        (Some(n), _) => (Some(n), None),
        (None, Some(d)) => (None, Some((d * 1e9) as u64)),
        (None, None) if cli.rate.is_some() => (None, Some(10 * SEC)),
        (None, None) => (Some(100_000), None),
    };
    let quota_of = |g: usize| -> u64 {
        match requests_target {
            Some(n) => n / total_conns as u64 + u64::from((g as u64) < n % total_conns as u64),
            None => u64::MAX,
        }
    };

    if !cli.quiet {
        let mode = match cli.rate {
            Some(r) => format!("open loop at {} req/s", group(r.round() as u64)),
            None => "closed loop".into(),
        };
        let end = match (requests_target, duration_ns) {
            (Some(n), _) => format!("{} requests", group(n)),
            (None, Some(d)) => format!("{:.1} s", d as f64 / 1e9),
            _ => String::new(),
        };
        let cmds: Vec<String> = if wl.cache {
            vec![format!(
                "cache: {}, then {} on a miss",
                wl.templates[CACHE_GET].text, wl.templates[CACHE_SET].text
            )]
        } else {
            wl.templates
                .iter()
                .zip(&wl.weights)
                .map(|(t, w)| format!("{} (x{w})", t.text))
                .collect()
        };
        eprintln!(
            "ringkv-bench -> {addr}: {mode}, {end}, {} thread(s) x {} connection(s), pipeline {}{}",
            cli.threads,
            cli.connections,
            cli.pipeline,
            cpus.as_ref()
                .map_or(String::new(), |c| format!(", cpus {c:?}"))
        );
        let keyed = wl.templates.iter().any(Template::uses_key);
        eprintln!(
            "  commands: {}{}{}; value {} B",
            cmds.join(", "),
            wl.multi.map_or(String::new(), |n| format!(
                "; each request is a transaction: MULTI, {n} command(s), EXEC"
            )),
            if keyed {
                format!(
                    "; keyspace {} ({})",
                    group(wl.keyspace),
                    match wl.dist {
                        Dist::Uniform => "uniform".to_string(),
                        Dist::Zipf => format!("zipf s={}", wl.zipf_s),
                        Dist::Sequential => "sequential".to_string(),
                        Dist::Gaussian =>
                            format!("gaussian stddev={}", wl.gauss.map_or(0.0, |(_, sd)| sd)),
                    }
                )
            } else {
                String::new()
            },
            cli.value_size
        );
    }

    // SAFETY: installing an async-signal-safe handler (one atomic store).
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }

    let shared = Arc::new(Shared {
        start_ns: AtomicU64::new(0),
        abort: AtomicBool::new(false),
        connected: Barrier::new(cli.threads + 1),
        started: Barrier::new(cli.threads + 1),
    });
    let (tx, rx) = mpsc::channel::<Report>();
    let period_ns = cli.rate.map(|r| 1e9 / r);
    let mut handles = Vec::new();
    for t in 0..cli.threads {
        let base = t * cli.connections;
        let cfg = WorkerCfg {
            id: t,
            cpu: cpus.as_ref().map(|c| c[t % c.len()]),
            addr,
            conns: cli.connections,
            conn_base: base,
            total_conns,
            pipeline: cli.pipeline,
            quotas: (0..cli.connections).map(|j| quota_of(base + j)).collect(),
            duration_ns,
            period_ns,
            auth: cli.auth.clone(),
            timeout_ns: (cli.timeout * 1e9) as u64,
            spin_ns: cli.spin_us.saturating_mul(1000),
            seed: cli.seed,
        };
        let (wl, shared, tx) = (Arc::clone(&wl), Arc::clone(&shared), tx.clone());
        handles.push(
            std::thread::Builder::new()
                .name(format!("bench-{t}"))
                .spawn(move || run_worker(cfg, wl, shared, tx))
                .map_err(|e| format!("spawn thread: {e}"))?,
        );
    }
    drop(tx);
    shared.connected.wait();
    let start_wall = SystemTime::now();
    let start = now_ns();
    shared.start_ns.store(start, Ordering::SeqCst);
    let aborted = shared.abort.load(Ordering::SeqCst);
    shared.started.wait();

    let mut hdr_file = None;
    let mut hdr_open_error = None;
    if let (Some(path), false) = (&cli.hdr_log, aborted) {
        let comment = format!(
            "ringkv-bench {} -> {addr}, args: {}",
            env!("CARGO_PKG_VERSION"),
            std::env::args().skip(1).collect::<Vec<_>>().join(" ")
        );
        match hdr_log_file(path, start_wall, &comment) {
            Ok(f) => hdr_file = Some(f),
            Err(e) => hdr_open_error = Some(format!("{}: {e}", path.display())),
        }
    }
    let mut serializer = V2DeflateSerializer::new();
    let mut hdr = match hdr_file.as_mut() {
        Some(f) => Some(
            IntervalLogWriterBuilder::new()
                .with_max_value_divisor(1e6)
                .begin_log_with(f, &mut serializer)
                .map_err(|e| format!("--hdr-log: {e}"))?,
        ),
        None => None,
    };
    let mut hdr_error = hdr_open_error;

    // ---- collect the threads' interval reports ----
    let nthreads = cli.threads;
    let mut last_tick: Vec<Option<u64>> = vec![None; nthreads];
    let mut finished = vec![false; nthreads];
    let mut pending: std::collections::BTreeMap<u64, Interval> = Default::default();
    let mut total_lat = new_hist();
    let mut total_svc = cli.rate.map(|_| new_hist());
    let mut total_pair = cli.cache.then(new_hist);
    let mut total = Counts::default();
    let mut unanswered = 0u64;
    let mut conn_errors = Vec::new();
    let mut error_samples: Vec<String> = Vec::new();
    let mut end_ns = start;
    let mut intervals = Vec::new();
    let mut unanswered_unknown = false;
    loop {
        let msg = rx.recv_timeout(Duration::from_millis(250));
        match msg {
            Ok(rep) => {
                let iv = pending.entry(rep.tick).or_insert_with(|| Interval {
                    start_ns: rep.tick * SEC,
                    len_ns: SEC,
                    lat: new_hist(),
                    svc: cli.rate.map(|_| new_hist()),
                    pair: cli.cache.then(new_hist),
                    counts: Counts::default(),
                });
                let _ = iv.lat.add(&rep.lat);
                if let (Some(a), Some(b)) = (iv.svc.as_mut(), rep.svc.as_ref()) {
                    let _ = a.add(b);
                }
                if let (Some(a), Some(b)) = (iv.pair.as_mut(), rep.pair.as_ref()) {
                    let _ = a.add(b);
                }
                iv.counts.add(&rep.counts);
                last_tick[rep.thread] = Some(rep.tick);
                if let Some(f) = rep.last {
                    finished[rep.thread] = true;
                    unanswered += f.unanswered;
                    conn_errors.extend(f.conn_errors);
                    for e in f.error_samples {
                        if error_samples.len() < ERROR_SAMPLES && !error_samples.contains(&e) {
                            error_samples.push(e);
                        }
                    }
                    end_ns = end_ns.max(f.last_reply_ns);
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                // every sender is gone: a thread that did not report died
                if finished.iter().any(|&f| !f) {
                    conn_errors.push("a worker thread exited without reporting".to_string());
                    unanswered_unknown = true;
                    finished.iter_mut().for_each(|f| *f = true);
                }
            }
        }
        let all_done = finished.iter().all(|&f| f);
        // Ticks every running thread has reported are complete.
        let complete_through = if all_done {
            pending.keys().next_back().copied()
        } else {
            (0..nthreads)
                .filter(|&t| !finished[t])
                .map(|t| last_tick[t])
                .min()
                .flatten()
        };
        if let Some(through) = complete_through {
            let ticks: Vec<u64> = pending.range(..=through).map(|(k, _)| *k).collect();
            for k in ticks {
                let mut iv = pending.remove(&k).expect("tick");
                let last = all_done && pending.is_empty();
                if last {
                    // the last interval ends with the last reply
                    let rel_end = end_ns.saturating_sub(start);
                    iv.len_ns = rel_end.saturating_sub(iv.start_ns).clamp(1, SEC);
                }
                total.add(&iv.counts);
                let _ = total_lat.add(&iv.lat);
                if let (Some(a), Some(b)) = (total_svc.as_mut(), iv.svc.as_ref()) {
                    let _ = a.add(b);
                }
                if let (Some(a), Some(b)) = (total_pair.as_mut(), iv.pair.as_ref()) {
                    let _ = a.add(b);
                }
                // (a last sliver of a second, the drain, is only in the summary)
                let drain_sliver = last && k > 0 && iv.len_ns < SEC / 10;
                if !cli.quiet && !drain_sliver {
                    eprintln!("{}", progress_line(&iv, &total, cli.rate, cli.cache));
                }
                if let Some(h) = hdr.as_mut() {
                    if let Err(e) = write_interval(h, &iv) {
                        hdr_error.get_or_insert(e);
                    }
                }
                intervals.push((
                    iv.start_ns,
                    iv.len_ns,
                    iv.counts,
                    pct(&iv.lat, 50.0),
                    pct(&iv.lat, 99.0),
                    iv.lat.max(),
                ));
            }
        }
        if all_done && pending.is_empty() {
            break;
        }
    }
    if unanswered_unknown {
        unanswered += total.sent.saturating_sub(total.replies + unanswered);
    }
    for h in handles {
        let _ = h.join();
    }
    drop(hdr);
    if let Some(mut f) = hdr_file {
        if let Err(e) = f.flush() {
            hdr_error.get_or_insert(e.to_string());
        }
    }
    if aborted {
        for e in &conn_errors {
            eprintln!("ringkv-bench: {e}");
        }
        return Err("could not start the run".into());
    }

    let info = RunInfo {
        cli: &cli,
        wl: &wl,
        addr,
        requests_target,
        elapsed_ns: end_ns.saturating_sub(start),
        total,
        unanswered,
        lat: &total_lat,
        svc: total_svc.as_ref(),
        pair: total_pair.as_ref(),
        conn_errors: &conn_errors,
        error_samples: &error_samples,
        intervals: &intervals,
        start_wall,
        cpus: &cpus,
    };
    print!("{}", summary(&info));
    if let Some(path) = &cli.json {
        std::fs::write(path, json_report(&info))
            .map_err(|e| format!("--json {}: {e}", path.display()))?;
    }
    if let Some(e) = hdr_error {
        return Err(format!("--hdr-log: {e}"));
    }
    let mut code = 0;
    if total.errors > 0 || unanswered > 0 || !conn_errors.is_empty() {
        code = 1;
    }
    if let Some(n) = requests_target {
        if cli.cache {
            // a request is a GET (and the SET of a miss)
            if total.gets != n {
                eprintln!(
                    "ringkv-bench: {} of {} GETs answered ({} commands sent, {} replies)",
                    total.gets, n, total.sent, total.replies
                );
                code = 1;
            }
        } else if total.sent != n || total.replies != n {
            eprintln!(
                "ringkv-bench: {} of {} requests sent, {} replies",
                total.sent, n, total.replies
            );
            code = 1;
        }
    }
    if total.sent != total.replies + unanswered {
        eprintln!(
            "ringkv-bench: internal accounting mismatch: sent {} != replies {} + unanswered {}",
            total.sent, total.replies, unanswered
        );
        code = 1;
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(input: &[u8]) -> Result<Vec<Reply>, String> {
        let mut p = RespParser::default();
        let mut pos = 0;
        let mut out = Vec::new();
        while let Some(r) = p.next_reply(input, &mut pos)? {
            out.push(r);
        }
        assert_eq!(pos, input.len(), "all consumed");
        Ok(out)
    }

    fn kinds(input: &[u8]) -> Vec<ReplyKind> {
        parse_all(input)
            .unwrap()
            .into_iter()
            .map(|r| r.kind)
            .collect()
    }

    #[test]
    fn parses_resp2_and_resp3() {
        use ReplyKind::*;
        assert_eq!(
            kinds(b"+OK\r\n-ERR bad\r\n:1\r\n$3\r\nfoo\r\n$-1\r\n*-1\r\n*0\r\n"),
            vec![Ok, Error, Ok, Ok, Nil, Nil, Ok]
        );
        assert_eq!(
            kinds(b"*3\r\n$1\r\na\r\n*2\r\n:1\r\n-ERR inner\r\n$-1\r\n+x\r\n"),
            vec![Ok, Ok]
        );
        // RESP3: null, map, set, double, bool, verbatim, blob error,
        // push (skipped), attribute (skipped, decorates the next reply)
        assert_eq!(
            kinds(
                b"_\r\n%1\r\n+k\r\n:2\r\n~2\r\n,1.5\r\n#t\r\n=7\r\ntxt:abc\r\n!3\r\nbad\r\n\
                  >2\r\n+message\r\n+x\r\n|1\r\n+key\r\n+val\r\n:5\r\n"
            ),
            vec![Nil, Ok, Ok, Ok, Error, Ok]
        );
        let r = parse_all(b"-WRONGTYPE nope\r\n").unwrap();
        assert_eq!(r[0].error, Some((1, 15)));
        assert!(parse_all(b"?x\r\n").is_err());
        assert!(parse_all(b"+OK\n").is_err());
    }

    #[test]
    fn parses_byte_by_byte() {
        let input: &[u8] =
            b"*2\r\n$5\r\nhello\r\n*1\r\n%1\r\n+a\r\n$-1\r\n-ERR x\r\n:7\r\n$0\r\n\r\n";
        let mut p = RespParser::default();
        let mut buf = Vec::new();
        let mut pos = 0;
        let mut got = Vec::new();
        for &b in input {
            buf.push(b);
            while let Some(r) = p.next_reply(&buf, &mut pos).unwrap() {
                got.push(r.kind);
            }
        }
        assert_eq!(pos, input.len());
        assert_eq!(
            got,
            vec![
                ReplyKind::Ok,
                ReplyKind::Error,
                ReplyKind::Ok,
                ReplyKind::Ok
            ]
        );
    }

    #[test]
    fn templates_encode_resp() {
        let wl = Workload {
            templates: vec![Template::compile("SET k:__key__ __value__", 4, 3, None).unwrap()],
            weights: vec![1],
            cycle: vec![0],
            keyspace: 10000,
            key_width: 4,
            dist: Dist::Uniform,
            zipf: None,
            zipf_s: 1.0,
            value: b"xyz".to_vec(),
            multi: None,
            index_width: 0,
            cache: false,
            gauss: None,
        };
        let mut out = Vec::new();
        wl.encode(0, 42, &mut out);
        assert_eq!(out, b"*3\r\n$3\r\nSET\r\n$6\r\nk:0042\r\n$3\r\nxyz\r\n");
        let t = Template::compile("HSET \"a b\" f __rand_int__", 2, 0, None).unwrap();
        assert_eq!(
            t.pieces,
            vec![
                Piece::Lit(b"*4\r\n$4\r\nHSET\r\n$3\r\na b\r\n$1\r\nf\r\n$2\r\n".to_vec()),
                Piece::Key,
                Piece::Lit(b"\r\n".to_vec())
            ]
        );
    }

    fn workload_from(args: &[&str]) -> Result<Workload, String> {
        let cli = Cli::try_parse_from(std::iter::once("ringkv-bench").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        build_workload(&cli)
    }

    /// Encodes `count` requests of a fresh connection (cycle position 0).
    fn requests(wl: &Workload, key: u64, count: usize) -> String {
        let (mut pos, mut out) = (0, Vec::new());
        for _ in 0..count {
            wl.encode_request(&mut pos, key, &mut out);
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn transactions_encode_multi_commands_exec() {
        // one key number per transaction, __i__ numbers its commands
        let wl = workload_from(&[
            "--multi",
            "3",
            "--keyspace",
            "100",
            "--command",
            "INCR k:__key__:__i__",
        ])
        .unwrap();
        assert_eq!(
            requests(&wl, 7, 1),
            "*1\r\n$5\r\nMULTI\r\n\
             *2\r\n$4\r\nINCR\r\n$6\r\nk:07:0\r\n\
             *2\r\n$4\r\nINCR\r\n$6\r\nk:07:1\r\n\
             *2\r\n$4\r\nINCR\r\n$6\r\nk:07:2\r\n\
             *1\r\n$4\r\nEXEC\r\n"
        );
        // __i__ is zero-padded to the width of N-1; the commands of a
        // transaction follow the command cycle (ratio 2:1 here)
        let wl = workload_from(&[
            "--multi",
            "11",
            "--keyspace",
            "10",
            "--value-size",
            "2",
            "--command",
            "SET {a}:__key__:__i__ __value__",
            "--command",
            "GET {b}:__key__",
            "--ratio",
            "2:1",
        ])
        .unwrap();
        let tx = requests(&wl, 3, 1);
        assert!(tx.starts_with("*1\r\n$5\r\nMULTI\r\n*3\r\n$3\r\nSET\r\n$8\r\n{a}:3:00\r\n"));
        assert!(tx.contains("$8\r\n{a}:3:10\r\n"), "{tx}");
        assert_eq!(tx.matches("$3\r\nSET\r\n").count(), 8);
        assert_eq!(tx.matches("*2\r\n$3\r\nGET\r\n$5\r\n{b}:3\r\n").count(), 3);
        assert!(tx.ends_with("*1\r\n$4\r\nEXEC\r\n"));
        // the cycle continues into the next transaction (11 = 3 * 3 + 2)
        let two = requests(&wl, 3, 2);
        assert_eq!(two.matches("GET").count(), 7);
        // without --multi, __i__ is plain text and requests are single
        let wl = workload_from(&["--keyspace", "10", "--command", "GET k:__key__:__i__"]).unwrap();
        assert_eq!(
            requests(&wl, 4, 1),
            "*2\r\n$3\r\nGET\r\n$9\r\nk:4:__i__\r\n"
        );
        assert!(workload_from(&["--multi", "0"]).is_err());
        assert!(workload_from(&["--multi", "x"]).is_err());
    }

    /// Feeds every reply in `input` to a TxCheck for transactions of `n`
    /// commands; returns the outcomes.
    fn tx_outcomes(n: usize, input: &[u8]) -> Vec<(ReplyKind, Option<String>)> {
        let mut check = TxCheck::default();
        parse_all(input)
            .unwrap()
            .iter()
            .filter_map(|r| check.feed(n, r, input))
            .collect()
    }

    #[test]
    fn transaction_replies_are_checked() {
        use ReplyKind::*;
        let ok2: &[u8] = b"+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n:1\r\n$1\r\nx\r\n";
        assert_eq!(tx_outcomes(2, ok2), vec![(Ok, None)]);
        // back to back: each EXEC ends one transaction
        assert_eq!(
            tx_outcomes(2, &[ok2, ok2].concat()),
            vec![(Ok, None), (Ok, None)]
        );
        // no MULTI (today's ringkv): the commands run, EXEC fails too; the
        // first error is the sample
        let r = tx_outcomes(
            2,
            b"-ERR unknown command 'MULTI'\r\n:1\r\n:1\r\n-ERR unknown command 'EXEC'\r\n",
        );
        assert_eq!(r, vec![(Error, Some("ERR unknown command 'MULTI'".into()))]);
        // a command rejected while queueing: EXECABORT
        let r = tx_outcomes(
            2,
            b"+OK\r\n+QUEUED\r\n-ERR wrong number of arguments for 'incr' command\r\n\
              -EXECABORT Transaction discarded because of previous errors.\r\n",
        );
        assert_eq!(
            r,
            vec![(
                Error,
                Some("ERR wrong number of arguments for 'incr' command".into())
            )]
        );
        // a command that fails inside EXEC
        let r = tx_outcomes(
            2,
            b"+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n+OK\r\n-WRONGTYPE Operation against a key\r\n",
        );
        assert_eq!(
            r,
            vec![(Error, Some("WRONGTYPE Operation against a key".into()))]
        );
        // EXEC with the wrong number of replies, or not an array
        let r = tx_outcomes(1, b"+OK\r\n+QUEUED\r\n*2\r\n:1\r\n:2\r\n");
        assert_eq!(
            r,
            vec![(Error, Some("EXEC returned 2 replies for 1 commands".into()))]
        );
        let r = tx_outcomes(1, b"+OK\r\n+QUEUED\r\n+OK\r\n");
        assert_eq!(r, vec![(Error, Some("EXEC reply is not an array".into()))]);
        // a reply that is not +QUEUED / +OK
        let r = tx_outcomes(1, b"+OK\r\n:1\r\n*1\r\n:1\r\n");
        assert_eq!(
            r,
            vec![(
                Error,
                Some("command 1 of 1 in MULTI: reply is not +QUEUED".into())
            )]
        );
        let r = tx_outcomes(1, b"+QUEUED\r\n+QUEUED\r\n*1\r\n:1\r\n");
        assert_eq!(r, vec![(Error, Some("MULTI: reply is not +OK".into()))]);
        // a null EXEC (WATCH): nil, RESP2 and RESP3
        assert_eq!(
            tx_outcomes(1, b"+OK\r\n+QUEUED\r\n*-1\r\n"),
            vec![(Nil, None)]
        );
        assert_eq!(
            tx_outcomes(1, b"+OK\r\n+QUEUED\r\n_\r\n"),
            vec![(Nil, None)]
        );
        // not finished until EXEC's reply
        assert_eq!(tx_outcomes(2, b"+OK\r\n+QUEUED\r\n+QUEUED\r\n"), vec![]);
    }

    #[test]
    fn replies_report_simple_text_array_length_and_element_errors() {
        let input: &[u8] = b"+QUEUED\r\n*3\r\n:1\r\n-ERR a\r\n*1\r\n-ERR nested\r\n*0\r\n:5\r\n";
        let r = parse_all(input).unwrap();
        assert_eq!(r[0].simple.map(|(a, b)| &input[a..b]), Some(&b"QUEUED"[..]));
        assert_eq!(r[0].array_len, None);
        assert_eq!(r[1].array_len, Some(3));
        assert_eq!(r[1].simple, None);
        // only direct elements count
        assert_eq!(r[1].child_errors, 1);
        assert_eq!(r[1].child_error.as_deref(), Some("ERR a"));
        assert_eq!(r[1].kind, ReplyKind::Ok);
        assert_eq!(r[2].array_len, Some(0));
        assert_eq!(r[2].child_errors, 0);
        assert_eq!(r[3].array_len, None);
        // split across reads, the element error text is still kept
        let mut p = RespParser::default();
        let mut buf = Vec::new();
        let mut got = Vec::new();
        let mut pos = 0;
        for chunk in [&b"*2\r\n-ERR fir"[..], b"st\r\n", b":1\r\n"] {
            buf.extend_from_slice(chunk);
            while let Some(r) = p.next_reply(&buf, &mut pos).unwrap() {
                got.push(r);
            }
        }
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].child_error.as_deref(), Some("ERR first"));
    }

    #[test]
    fn zipf_is_skewed_and_in_range() {
        let z = Zipf::new(1000, 1.0);
        let mut rng = Rng::new(1);
        let mut counts = vec![0u64; 1001];
        for _ in 0..200_000 {
            let k = z.sample(&mut rng);
            assert!((1..=1000).contains(&k));
            counts[k as usize] += 1;
        }
        // rank 1 is ~2x rank 2 and ~10x rank 10 for s = 1
        let r12 = counts[1] as f64 / counts[2] as f64;
        let r110 = counts[1] as f64 / counts[10] as f64;
        assert!((1.8..2.2).contains(&r12), "{r12}");
        assert!((8.5..11.5).contains(&r110), "{r110}");
        let mut rng = Rng::new(2);
        for _ in 0..1000 {
            assert!(rng.below(7) < 7);
            let u = rng.unit();
            assert!((0.0..1.0).contains(&u));
        }
    }

    #[test]
    fn gaussian_keys_are_in_range_and_centred() {
        let mut rng = Rng::new(3);
        let (n, mean, sd) = (10_000u64, 4999.5, 1000.0);
        let (mut within1, mut sum) = (0u64, 0f64);
        let draws = 100_000;
        for _ in 0..draws {
            let k = gaussian_key(&mut rng, n, mean, sd);
            assert!(k < n);
            sum += k as f64;
            if (k as f64 - mean).abs() <= sd {
                within1 += 1;
            }
        }
        let avg = sum / draws as f64;
        assert!((avg - mean).abs() < 30.0, "{avg}");
        // ~68.3% within one standard deviation
        let f = within1 as f64 / draws as f64;
        assert!((0.66..0.71).contains(&f), "{f}");
        // a deviation far wider than the key space still stays inside it
        for _ in 0..1000 {
            assert!(gaussian_key(&mut rng, 10, 4.5, 1e9) < 10);
        }
        assert_eq!(gaussian_key(&mut rng, 1, 0.0, 5.0), 0);
        let wl = workload_from(&["--distribution", "gaussian", "--keyspace", "600"]).unwrap();
        assert_eq!(wl.gauss, Some((299.5, 100.0)));
        assert!(workload_from(&["--distribution", "gaussian", "--gauss-stddev", "0"]).is_err());
    }

    #[test]
    fn cache_mode_gets_and_sets_a_miss() {
        let wl = workload_from(&["--cache", "--keyspace", "1000", "--value-size", "3"]).unwrap();
        assert!(wl.cache);
        // every request of the cycle is the GET
        assert_eq!(
            requests(&wl, 7, 2),
            "*2\r\n$3\r\nGET\r\n$7\r\nkey:007\r\n".repeat(2)
        );
        let mut out = Vec::new();
        wl.encode_cmd(CACHE_SET, 42, 0, &mut out);
        let set = String::from_utf8(out).unwrap();
        assert!(
            set.starts_with("*3\r\n$3\r\nSET\r\n$7\r\nkey:042\r\n$3\r\n"),
            "{set}"
        );
        for other in [
            &["--command", "PING"][..],
            &["--multi", "2"],
            &["--ratio", "1:1"],
        ] {
            let mut args = vec!["--cache"];
            args.extend_from_slice(other);
            assert!(workload_from(&args).is_err(), "{other:?}");
        }
    }

    /// A tiny RESP server for `cache_worker_against_a_fake_server`: GET
    /// answers nil for keys never SET, SET of a key number divisible by 3
    /// answers -OOM (and stores nothing). Counts (GETs, SETs, OOMs).
    fn fake_cache_server(conns: usize) -> (SocketAddr, Arc<[AtomicU64; 3]>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let counts: Arc<[AtomicU64; 3]> = Arc::new(Default::default());
        let store = Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
        let c2 = Arc::clone(&counts);
        std::thread::spawn(move || {
            for _ in 0..conns {
                let (mut s, _) = listener.accept().unwrap();
                let (counts, store) = (Arc::clone(&c2), Arc::clone(&store));
                std::thread::spawn(move || {
                    let (mut buf, mut chunk) = (Vec::new(), [0u8; 4096]);
                    loop {
                        let n = match s.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        buf.extend_from_slice(&chunk[..n]);
                        let mut out = Vec::new();
                        // complete commands: *N, then N x $len/bytes
                        while let Some((args, used)) = parse_command(&buf) {
                            buf.drain(..used);
                            let key = args[1].clone();
                            let num: u64 = std::str::from_utf8(&key[4..]).unwrap().parse().unwrap();
                            let mut st = store.lock().unwrap();
                            if args[0] == b"GET" {
                                counts[0].fetch_add(1, Ordering::SeqCst);
                                out.extend_from_slice(if st.contains(&key) {
                                    b"$1\r\nv\r\n" as &[u8]
                                } else {
                                    b"$-1\r\n"
                                });
                            } else {
                                counts[1].fetch_add(1, Ordering::SeqCst);
                                if num.is_multiple_of(3) {
                                    counts[2].fetch_add(1, Ordering::SeqCst);
                                    out.extend_from_slice(b"-OOM command not allowed\r\n");
                                } else {
                                    st.insert(key);
                                    out.extend_from_slice(b"+OK\r\n");
                                }
                            }
                        }
                        if s.write_all(&out).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (addr, counts)
    }

    fn parse_command(buf: &[u8]) -> Option<(Vec<Vec<u8>>, usize)> {
        fn line(buf: &[u8], at: usize) -> Option<(usize, usize)> {
            let nl = memchr::memchr(b'\n', buf.get(at..)?)?;
            let n = std::str::from_utf8(&buf[at + 1..at + nl - 1])
                .ok()?
                .parse()
                .ok()?;
            Some((n, at + nl + 1))
        }
        let (argc, mut at) = line(buf, 0)?;
        let mut args = Vec::new();
        for _ in 0..argc {
            let (len, start) = line(buf, at)?;
            if buf.len() < start + len + 2 {
                return None;
            }
            args.push(buf[start..start + len].to_vec());
            at = start + len + 2;
        }
        Some((args, at))
    }

    #[test]
    fn cache_worker_against_a_fake_server() {
        let (addr, server) = fake_cache_server(2);
        let wl = Arc::new(workload_from(&["--cache", "--keyspace", "60"]).unwrap());
        let shared = Arc::new(Shared {
            start_ns: AtomicU64::new(0),
            abort: AtomicBool::new(false),
            connected: Barrier::new(2),
            started: Barrier::new(2),
        });
        let (tx, rx) = mpsc::channel();
        let cfg = WorkerCfg {
            id: 0,
            cpu: None,
            addr,
            conns: 2,
            conn_base: 0,
            total_conns: 2,
            pipeline: 8,
            quotas: vec![700, 500],
            duration_ns: None,
            period_ns: None,
            auth: None,
            timeout_ns: 30 * SEC,
            spin_ns: 0,
            seed: 9,
        };
        let (w_wl, w_shared) = (Arc::clone(&wl), Arc::clone(&shared));
        let worker = std::thread::spawn(move || run_worker(cfg, w_wl, w_shared, tx));
        shared.connected.wait();
        shared.start_ns.store(now_ns(), Ordering::SeqCst);
        shared.started.wait();
        let (mut total, mut gets_lat, mut pair_lat) = (Counts::default(), 0, 0);
        let fin = loop {
            let rep = rx
                .recv_timeout(Duration::from_secs(60))
                .expect("worker report");
            total.add(&rep.counts);
            gets_lat += rep.lat.len();
            pair_lat += rep.pair.expect("pair histogram").len();
            if let Some(f) = rep.last {
                break f;
            }
        };
        worker.join().unwrap();
        assert!(fin.conn_errors.is_empty(), "{:?}", fin.conn_errors);
        assert_eq!(fin.unanswered, 0);
        assert_eq!(total.gets, 1200);
        assert_eq!((gets_lat, pair_lat), (1200, 1200));
        let misses = total.gets - total.hits;
        assert_eq!(total.get_errors, 0);
        assert_eq!(total.nils, misses);
        // a SET for every miss, no more
        assert_eq!(total.sets, misses);
        assert_eq!(total.sent, total.gets + total.sets);
        assert_eq!(total.replies, total.sent);
        assert!(total.hits > 0 && misses > 0, "{total:?}");
        // every -OOM counted as an error, and the run went on to the end
        assert_eq!(server[0].load(Ordering::SeqCst), 1200);
        assert_eq!(server[1].load(Ordering::SeqCst), total.sets);
        let ooms = server[2].load(Ordering::SeqCst);
        assert!(ooms > 0);
        assert_eq!(total.set_errors, ooms);
        assert_eq!(total.errors, ooms);
        assert_eq!(
            fin.error_samples,
            vec!["OOM command not allowed".to_string()]
        );
    }

    #[test]
    fn cpu_lists_and_grouping() {
        assert_eq!(parse_cpu_list("0-2,5").unwrap(), vec![0, 1, 2, 5]);
        assert!(parse_cpu_list("3-1").is_err());
        assert_eq!(group(1234567), "1,234,567");
        assert_eq!(group(12), "12");
    }
}

// ---------------------------------------------------------------------------
// Pub/Sub mode (--pubsub-subscribers)
// ---------------------------------------------------------------------------

mod pubsub {
    use super::*;

    /// One `message` frame's payload range in `b`, and the bytes it takes;
    /// None when incomplete. Other frames (the SUBSCRIBE confirmation) give
    /// no payload.
    fn next_frame(b: &[u8]) -> Option<(Option<(usize, usize)>, usize)> {
        let line = |p: usize| -> Option<(i64, usize)> {
            let e = memchr::memmem::find(&b[p..], b"\r\n")?;
            let n = std::str::from_utf8(&b[p + 1..p + e]).ok()?.parse().ok()?;
            Some((n, p + e + 2))
        };
        let (n, mut p) = line(0)?;
        let mut items = Vec::new();
        for _ in 0..n {
            if b.get(p) == Some(&b':') {
                let (_, q) = line(p)?;
                p = q;
                items.push((0, 0));
                continue;
            }
            let (len, q) = line(p)?;
            let end = q + len.max(0) as usize;
            if b.len() < end + 2 {
                return None;
            }
            items.push((q, end));
            p = end + 2;
        }
        let is_msg = items.len() == 3 && &b[items[0].0..items[0].1] == b"message";
        Some((is_msg.then(|| items[2]), p))
    }

    fn connect(addr: SocketAddr, auth: Option<&str>) -> Result<TcpStream, String> {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .map_err(|e| format!("connect {addr}: {e}"))?;
        s.set_nodelay(true).map_err(|e| e.to_string())?;
        if let Some(pw) = auth {
            sync_command(&mut s, &[b"AUTH", pw.as_bytes()])?;
        }
        Ok(s)
    }

    struct SubResult {
        received: u64,
        hist: Histogram<u64>,
    }

    fn subscriber(
        addr: SocketAddr,
        auth: Option<String>,
        channel: String,
        ready: Arc<Barrier>,
        stop: Arc<AtomicBool>,
    ) -> Result<SubResult, String> {
        let setup = || -> Result<(TcpStream, Vec<u8>), String> {
            let mut s = connect(addr, auth.as_deref())?;
            let sub = format!(
                "*2\r\n$9\r\nSUBSCRIBE\r\n${}\r\n{}\r\n",
                channel.len(),
                channel
            );
            s.write_all(sub.as_bytes()).map_err(|e| e.to_string())?;
            let mut buf: Vec<u8> = Vec::new();
            let mut chunk = vec![0u8; 256 * 1024];
            // The confirmation.
            loop {
                let n = s.read(&mut chunk).map_err(|e| e.to_string())?;
                if n == 0 {
                    return Err("connection closed".into());
                }
                buf.extend_from_slice(&chunk[..n]);
                if let Some((_, used)) = next_frame(&buf) {
                    buf.drain(..used);
                    break;
                }
            }
            Ok((s, buf))
        };
        // Pass the barrier even on failure: the main thread waits there.
        let r = setup();
        ready.wait();
        let (mut s, mut buf) = r?;
        let mut chunk = vec![0u8; 256 * 1024];
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .map_err(|e| e.to_string())?;
        let mut r = SubResult {
            received: 0,
            hist: new_hist(),
        };
        loop {
            match s.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => {
                    buf.extend_from_slice(&chunk[..n]);
                    let now = now_ns();
                    let mut pos = 0;
                    while let Some((payload, used)) = next_frame(&buf[pos..]) {
                        if let Some((a, b)) = payload {
                            let (a, b) = (pos + a, pos + b);
                            let sent = std::str::from_utf8(&buf[a..(a + 20).min(b)])
                                .ok()
                                .and_then(|t| t.parse::<u64>().ok())
                                .unwrap_or(now);
                            let _ = r.hist.record(now.saturating_sub(sent).clamp(1, HIST_MAX));
                            r.received += 1;
                        }
                        pos += used;
                    }
                    buf.drain(..pos);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok(r)
    }

    /// (messages published, receivers the replies reported).
    fn publisher(
        addr: SocketAddr,
        auth: Option<String>,
        first: usize,
        channels: usize,
        (size, depth): (usize, usize),
        deadline: std::time::Instant,
    ) -> Result<(u64, u64), String> {
        let mut s = connect(addr, auth.as_deref())?;
        let (mut published, mut receivers) = (0u64, 0u64);
        let mut next = first;
        let mut req = Vec::new();
        let mut buf = Vec::new();
        let mut chunk = vec![0u8; 64 * 1024];
        while std::time::Instant::now() < deadline {
            req.clear();
            for _ in 0..depth {
                let ch = format!("ch:{}", next % channels);
                next += 1;
                let mut payload = format!("{:020}", now_ns()).into_bytes();
                payload.resize(size.max(20), b'x');
                req.extend_from_slice(
                    format!(
                        "*3\r\n$7\r\nPUBLISH\r\n${}\r\n{}\r\n${}\r\n",
                        ch.len(),
                        ch,
                        payload.len()
                    )
                    .as_bytes(),
                );
                req.extend_from_slice(&payload);
                req.extend_from_slice(b"\r\n");
            }
            s.write_all(&req).map_err(|e| e.to_string())?;
            let mut got = 0;
            while got < depth {
                let n = s.read(&mut chunk).map_err(|e| e.to_string())?;
                if n == 0 {
                    return Err("connection closed".into());
                }
                buf.extend_from_slice(&chunk[..n]);
                let mut pos = 0;
                while let Some(e) = memchr::memmem::find(&buf[pos..], b"\r\n") {
                    if buf[pos] != b':' {
                        return Err(format!(
                            "PUBLISH: unexpected reply {}",
                            String::from_utf8_lossy(&buf[pos..pos + e])
                        ));
                    }
                    receivers += std::str::from_utf8(&buf[pos + 1..pos + e])
                        .ok()
                        .and_then(|t| t.parse::<u64>().ok())
                        .unwrap_or(0);
                    pos += e + 2;
                    got += 1;
                }
                buf.drain(..pos);
            }
            published += depth as u64;
        }
        Ok((published, receivers))
    }

    pub fn run(cli: &Cli, subs: usize) -> Result<i32, String> {
        if subs == 0 || cli.connections == 0 || cli.pipeline == 0 || cli.pubsub_channels == 0 {
            return Err("--pubsub-subscribers, --pubsub-channels, --connections and --pipeline must be >= 1".into());
        }
        let addr = (cli.host.as_str(), cli.port)
            .to_socket_addrs()
            .map_err(|e| format!("resolve {}: {e}", cli.host))?
            .next()
            .ok_or_else(|| format!("resolve {}: no address", cli.host))?;
        let channels = cli.pubsub_channels;
        let secs = cli.duration.unwrap_or(10.0);
        let ready = Arc::new(Barrier::new(subs + 1));
        let stop = Arc::new(AtomicBool::new(false));
        let mut sub_threads = Vec::new();
        for i in 0..subs {
            let (ready, stop, auth) = (ready.clone(), stop.clone(), cli.auth.clone());
            let ch = format!("ch:{}", i % channels);
            sub_threads.push(std::thread::spawn(move || {
                subscriber(addr, auth, ch, ready, stop)
            }));
        }
        ready.wait();
        // A subscription made on one shard reaches the other shards'
        // directories one message later.
        std::thread::sleep(Duration::from_millis(100));
        let start = std::time::Instant::now();
        let deadline = start + Duration::from_secs_f64(secs);
        let mut pubs = Vec::new();
        for p in 0..cli.connections {
            let auth = cli.auth.clone();
            let shape = (cli.value_size, cli.pipeline);
            pubs.push(std::thread::spawn(move || {
                publisher(addr, auth, p, channels, shape, deadline)
            }));
        }
        let (mut published, mut expected) = (0u64, 0u64);
        for h in pubs {
            let (p, r) = h.join().map_err(|_| "publisher panicked".to_string())??;
            published += p;
            expected += r;
        }
        let pub_secs = start.elapsed().as_secs_f64();
        stop.store(true, Ordering::Relaxed);
        let mut hist = new_hist();
        let mut received = 0u64;
        for h in sub_threads {
            let r = h.join().map_err(|_| "subscriber panicked".to_string())??;
            received += r.received;
            hist.add(&r.hist).map_err(|e| e.to_string())?;
        }
        println!(
            "pubsub: {} publishers (pipeline {}), {} subscribers, {} channels, payload {} B, {:.1} s",
            cli.connections,
            cli.pipeline,
            subs,
            channels,
            cli.value_size.max(20),
            pub_secs
        );
        println!(
            "published {} ({:.0}/s), delivered {} of {} reported ({:.0}/s)",
            published,
            published as f64 / pub_secs,
            received,
            expected,
            received as f64 / pub_secs
        );
        println!(
            "publish-to-receive latency: p50 {:.1} us, p99 {:.1} us, p99.9 {:.1} us, max {:.1} us",
            us(pct(&hist, 50.0)),
            us(pct(&hist, 99.0)),
            us(pct(&hist, 99.9)),
            us(hist.max())
        );
        if let Some(path) = &cli.json {
            let j = format!(
                "{{\"mode\":\"pubsub\",\"publishers\":{},\"subscribers\":{},\"channels\":{},\"seconds\":{},\"published\":{},\"delivered\":{},\"reported\":{},\"delivered_per_sec\":{},\"p50_us\":{},\"p99_us\":{},\"p999_us\":{}}}\n",
                cli.connections,
                subs,
                channels,
                json_f(pub_secs),
                published,
                received,
                expected,
                json_f(received as f64 / pub_secs),
                json_f(us(pct(&hist, 50.0))),
                json_f(us(pct(&hist, 99.0))),
                json_f(us(pct(&hist, 99.9)))
            );
            std::fs::write(path, j).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        Ok(if received == expected { 0 } else { 1 })
    }

    #[cfg(test)]
    mod tests {
        use super::next_frame;

        #[test]
        fn frames_parse_and_wait_for_more_bytes() {
            let m = b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$3\r\nabc\r\n";
            let (p, used) = next_frame(m).unwrap();
            assert_eq!(used, m.len());
            let (a, b) = p.unwrap();
            assert_eq!(&m[a..b], b"abc");
            assert!(next_frame(&m[..m.len() - 3]).is_none());
            let conf = b"*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n";
            assert_eq!(next_frame(conf), Some((None, conf.len())));
        }
    }
}
