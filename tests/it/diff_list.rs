//! Differential tests of the list family: ringkv vs a real redis-server 7.0.
//!
//! Scope:
//! * Seeded random streams (`StdRng`, fixed seeds) of LPUSH RPUSH LPUSHX
//!   RPUSHX LPOP RPOP (with and without COUNT) LLEN LRANGE LINDEX LSET
//!   LINSERT LREM LTRIM LPOS (RANK/COUNT/MAXLEN, invalid ones included)
//!   LMOVE RPOPLPUSH LMPOP, plus SET/DEL/EXISTS/TYPE/OBJECT ENCODING,
//!   wrong-arity variants and random command-name case, on a small key
//!   space (keys on both shards, the empty key, hash-tagged pairs). They
//!   run against redis-server and ringkv with `--shards 1` and `2`, over
//!   RESP2 and RESP3, one command at a time, and every reply is compared
//!   exactly (reply types and error texts included).
//! * The blocking commands (BLPOP BRPOP BLMOVE BRPOPLPUSH BLMPOP) are part
//!   of the streams only where they cannot block: the stream asks the
//!   reference whether a source key exists first, and skips the command
//!   otherwise. Invalid timeouts (always an immediate error) are included.
//! * Every seed starts with `CONFIG SET list-max-listpack-size` picked from
//!   {-2, -1, 1, 3} so that lists span many nodes (splits, merges, LSET and
//!   LINSERT in the middle of nodes), and values include 300-byte and
//!   5000-byte strings and integers that Redis packs as integers.
//! * After each seed, every key's TYPE and whole list are compared.
//!   `RINGKV_DIFF_EXTRA_SEEDS=N` adds N seeds per stream (longer local bug
//!   hunts; a failure prints its seed).
//! * Blocking behaviour (ringkv only; these exercise the shard's parking
//!   machinery): BLPOP times out with a null array after its timeout, a
//!   BLPOP / BLMOVE / BLMPOP is woken by a push from another client, also
//!   with keys on two shards, and BRPOPLPUSH and BLMOVE time out with
//!   a null array like the others (as Redis 7.0 does).
//!   They also pass against redis-server (`RINGKV_TEST_BIN`).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::common::{self, *};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use redis::Value;

const KEYS: [&str; 8] = ["l0", "l1", "l2", "l3", "{t}a", "{t}b", "", "str"];

type Args = Vec<Vec<u8>>;

fn s(x: &str) -> Vec<u8> {
    x.as_bytes().to_vec()
}

struct Gen {
    rng: StdRng,
}

impl Gen {
    fn pct(&mut self, p: u32) -> bool {
        self.rng.gen_range(0..100) < p
    }

    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.rng.gen_range(0..xs.len())]
    }

    fn key(&mut self) -> Vec<u8> {
        // "str" (usually a string) is rarer than the list keys.
        if self.pct(6) {
            s("str")
        } else {
            s(KEYS[self.rng.gen_range(0..KEYS.len() - 1)])
        }
    }

    fn value(&mut self) -> Vec<u8> {
        match self.rng.gen_range(0..100) {
            0..=39 => s(self.pick(&["a", "b", "c", "a"])),
            40..=59 => self.rng.gen_range(-3i64..=12).to_string().into_bytes(),
            60..=69 => s(self.pick(&[
                "",
                "007",
                "-0",
                "+1",
                "9223372036854775807",
                "-9223372036854775808",
                "2305843009213693952",
                "1234567",
                "hello world",
            ])),
            70..=74 => vec![b'x'; 300],
            75 => vec![b'y'; 5000],
            _ => {
                let n = self.rng.gen_range(1..4);
                (0..n).map(|_| b"ab"[self.rng.gen_range(0..2)]).collect()
            }
        }
    }

    fn index(&mut self) -> Vec<u8> {
        match self.rng.gen_range(0..100) {
            0..=84 => self.rng.gen_range(-12i64..=12).to_string().into_bytes(),
            85..=94 => {
                s(self.pick(&["100", "-100", "9223372036854775807", "-9223372036854775808"]))
            }
            _ => s(self.pick(&["x", "1.5", "", "+1", "01"])),
        }
    }

    fn count(&mut self) -> Vec<u8> {
        match self.rng.gen_range(0..100) {
            0..=79 => self.rng.gen_range(0i64..=6).to_string().into_bytes(),
            80..=89 => s(self.pick(&["100", "9223372036854775807"])),
            _ => s(self.pick(&["-1", "x", "", "1.5", "-9223372036854775808"])),
        }
    }

    fn side(&mut self) -> Vec<u8> {
        match self.rng.gen_range(0..100) {
            0..=47 => s(self.pick(&["LEFT", "left"])),
            48..=95 => s(self.pick(&["RIGHT", "Right"])),
            _ => s(self.pick(&["UP", "", "leftx"])),
        }
    }

    fn timeout(&mut self) -> Vec<u8> {
        match self.rng.gen_range(0..100) {
            0..=89 => s(self.pick(&["0", "0.01", "1", "0.5"])),
            _ => s(self.pick(&["-1", "x", "inf", "-0.5", "1e300"])),
        }
    }

    fn values(&mut self, name: &str, key: Vec<u8>, max: usize) -> Args {
        let n = self.rng.gen_range(1..=max);
        let mut a = vec![s(name), key];
        a.extend((0..n).map(|_| self.value()));
        a
    }

    fn lpos(&mut self) -> Args {
        let mut a = vec![s("LPOS"), self.key(), self.value()];
        for _ in 0..self.rng.gen_range(0..=3) {
            match self.rng.gen_range(0..100) {
                0..=34 => {
                    a.push(s(self.pick(&["RANK", "rank"])));
                    let r = match self.rng.gen_range(0..100) {
                        0..=79 => self.rng.gen_range(-4i64..=4).to_string().into_bytes(),
                        80..=89 => s(self.pick(&[
                            "-9223372036854775808",
                            "9223372036854775807",
                            "-9223372036854775807",
                        ])),
                        _ => s(self.pick(&["x", ""])),
                    };
                    a.push(r);
                }
                35..=64 => {
                    a.push(s("COUNT"));
                    let c = self.count();
                    a.push(c);
                }
                65..=94 => {
                    a.push(s("MAXLEN"));
                    let c = self.count();
                    a.push(c);
                }
                _ => a.push(s(self.pick(&["RANK", "bogus", "COUNT"]))),
            }
        }
        a
    }

    /// `[B]LMPOP`'s `numkeys key... side [COUNT n]`; numkeys always
    /// matches the keys except in the deliberately invalid forms.
    fn mpop_tail(&mut self, a: &mut Args) {
        let n = self.rng.gen_range(1..=3);
        match self.rng.gen_range(0..100) {
            0..=3 => a.push(s(self.pick(&["0", "x", "-1"]))),
            4..=5 => a.push(s("9")),
            _ => a.push(n.to_string().into_bytes()),
        }
        for _ in 0..n {
            let k = self.key();
            a.push(k);
        }
        let side = self.side();
        a.push(side);
        if self.pct(50) {
            a.push(s(self.pick(&["COUNT", "count"])));
            let c = match self.rng.gen_range(0..100) {
                0..=84 => self.rng.gen_range(1i64..=5).to_string().into_bytes(),
                85..=92 => s("9223372036854775807"),
                _ => s(self.pick(&["0", "-1", "x"])),
            };
            a.push(c);
            if self.pct(3) {
                a.push(s("COUNT"));
                a.push(s("1"));
            }
        }
    }

    /// A blocking command (sent only where it cannot block).
    fn blocking(&mut self) -> Args {
        match self.rng.gen_range(0..5) {
            0 | 1 => {
                let name = if self.pct(50) { "BLPOP" } else { "BRPOP" };
                let mut a = vec![s(name)];
                for _ in 0..self.rng.gen_range(1..=3) {
                    let k = self.key();
                    a.push(k);
                }
                let t = self.timeout();
                a.push(t);
                a
            }
            2 => {
                let (src, dst, f, t) = (self.key(), self.key(), self.side(), self.side());
                let to = self.timeout();
                vec![s("BLMOVE"), src, dst, f, t, to]
            }
            3 => {
                let (src, dst, to) = (self.key(), self.key(), self.timeout());
                vec![s("BRPOPLPUSH"), src, dst, to]
            }
            _ => {
                let to = self.timeout();
                let mut a = vec![s("BLMPOP"), to];
                self.mpop_tail(&mut a);
                a
            }
        }
    }

    fn base_command(&mut self) -> Args {
        match self.rng.gen_range(0..1000) {
            0..=129 => {
                let k = self.key();
                self.values("RPUSH", k, 4)
            }
            130..=239 => {
                let k = self.key();
                self.values("LPUSH", k, 4)
            }
            240..=264 => {
                let name = self.pick(&["LPUSHX", "RPUSHX"]);
                let k = self.key();
                self.values(name, k, 2)
            }
            265..=344 => {
                let name = s(self.pick(&["LPOP", "RPOP"]));
                let k = self.key();
                if self.pct(50) {
                    let c = self.count();
                    vec![name, k, c]
                } else {
                    vec![name, k]
                }
            }
            345..=364 => vec![s("LLEN"), self.key()],
            365..=429 => {
                let (k, a, b) = (self.key(), self.index(), self.index());
                vec![s("LRANGE"), k, a, b]
            }
            430..=469 => {
                let (k, i) = (self.key(), self.index());
                vec![s("LINDEX"), k, i]
            }
            470..=514 => {
                let (k, i, v) = (self.key(), self.index(), self.value());
                vec![s("LSET"), k, i, v]
            }
            515..=569 => {
                let k = self.key();
                let w = s(self.pick(&["BEFORE", "AFTER", "after", "middle"]));
                let (p, v) = (self.value(), self.value());
                vec![s("LINSERT"), k, w, p, v]
            }
            570..=609 => {
                let k = self.key();
                let c = match self.rng.gen_range(0..100) {
                    0..=89 => self.rng.gen_range(-3i64..=3).to_string().into_bytes(),
                    _ => s(self.pick(&["x", "-9223372036854775808", "9223372036854775807"])),
                };
                let v = self.value();
                vec![s("LREM"), k, c, v]
            }
            610..=629 => {
                let k = self.key();
                let (a, b) = match self.rng.gen_range(0..100) {
                    0..=69 => (
                        self.rng.gen_range(0i64..=2).to_string().into_bytes(),
                        self.rng.gen_range(-3i64..=-1).to_string().into_bytes(),
                    ),
                    _ => (self.index(), self.index()),
                };
                vec![s("LTRIM"), k, a, b]
            }
            630..=709 => self.lpos(),
            710..=764 => {
                let (src, dst, f, t) = (self.key(), self.key(), self.side(), self.side());
                vec![s("LMOVE"), src, dst, f, t]
            }
            765..=789 => vec![s("RPOPLPUSH"), self.key(), self.key()],
            790..=839 => {
                let mut a = vec![s("LMPOP")];
                self.mpop_tail(&mut a);
                a
            }
            840..=909 => self.blocking(),
            910..=924 => vec![s("OBJECT"), s("ENCODING"), self.key()],
            925..=939 => vec![s("TYPE"), self.key()],
            940..=949 => vec![s("EXISTS"), self.key()],
            950..=964 => vec![s("DEL"), self.key()],
            _ => {
                // Only "str" becomes a string (the list keys stay lists).
                vec![s("SET"), s("str"), s("v")]
            }
        }
    }

    fn command(&mut self) -> Args {
        let mut args = self.base_command();
        let blocking = args[0].starts_with(b"B");
        if !blocking {
            match self.rng.gen_range(0..100) {
                0..=1 => {
                    let n = self.rng.gen_range(1..=args.len());
                    args.truncate(n);
                }
                2 => args.push(s("junk")),
                _ => {}
            }
        }
        if self.pct(10) {
            args[0] = args[0].to_ascii_lowercase();
        }
        args
    }
}

/// The keys a blocking command would wait on (its sources).
fn block_sources(args: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let name = String::from_utf8_lossy(&args[0]).to_ascii_uppercase();
    match name.as_str() {
        "BLPOP" | "BRPOP" => args[1..args.len() - 1].to_vec(),
        "BLMOVE" | "BRPOPLPUSH" => vec![args[1].clone()],
        "BLMPOP" => {
            // Keys follow numkeys; an invalid numkeys errors at once.
            match std::str::from_utf8(&args[2])
                .ok()
                .and_then(|n| n.parse::<usize>().ok())
            {
                Some(n) if n >= 1 && 3 + n < args.len() => args[3..3 + n].to_vec(),
                _ => vec![],
            }
        }
        _ => vec![],
    }
}

/// Whether a blocking command would block on the reference: all its
/// source keys are missing and its arguments are valid enough to get
/// there. Conservative: any doubt counts as blocking.
fn would_block(con: &mut redis::Connection, args: &[Vec<u8>]) -> bool {
    let name = String::from_utf8_lossy(&args[0]).to_ascii_uppercase();
    if !name.starts_with('B') {
        return false;
    }
    if name == "BLMPOP" && block_sources(args).is_empty() {
        // numkeys is invalid (0, x, -1) or too large: an immediate error.
        return false;
    }
    !block_sources(args).iter().any(|k| {
        matches!(
            exec(con, redis::cmd("EXISTS").arg(&k[..])),
            Ok(Value::Int(1))
        )
    })
}

fn show(args: &[Vec<u8>]) -> String {
    args.iter()
        .map(|a| {
            let t = String::from_utf8_lossy(a);
            if t.len() > 40 {
                format!("{:?}..({} bytes)", &t[..20], t.len())
            } else {
                format!("{t:?}")
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn to_cmd(args: &[Vec<u8>]) -> redis::Cmd {
    let mut c = redis::Cmd::new();
    for a in args {
        c.arg(&a[..]);
    }
    c
}

fn connect(server: &Server, resp3: bool) -> redis::Connection {
    if resp3 {
        server.client_resp3()
    } else {
        server.client()
    }
}

/// (key, TYPE, LRANGE 0 -1 for lists).
fn snapshot(con: &mut redis::Connection) -> Vec<(String, Reply, Reply)> {
    KEYS.iter()
        .map(|k| {
            let ty = run(con, &["TYPE", k]);
            let items = if ty == Ok(Value::SimpleString("list".into())) {
                run(con, &["LRANGE", k, "0", "-1"])
            } else {
                Ok(Value::Nil)
            };
            (k.to_string(), ty, items)
        })
        .collect()
}

#[derive(Default, Debug)]
struct Stats {
    errors: usize,
    wrongtype: usize,
    nil: usize,
    arrays: usize,
    blocking: usize,
    skipped: usize,
}

fn run_streams(seeds: &[u64], commands: usize, resp3: bool) {
    let Some(reference) = Server::redis() else {
        return;
    };
    let mut rcon = connect(&reference, resp3);
    let targets: Vec<Server> = SHARD_COUNTS
        .iter()
        .map(|&n| Server::ringkv(n, &[]))
        .collect();
    let mut tcons: Vec<redis::Connection> = targets.iter().map(|t| connect(t, resp3)).collect();
    let started = Instant::now();
    let mut stats = Stats::default();
    for &seed in seeds {
        let mut gen = Gen {
            rng: StdRng::seed_from_u64(seed),
        };
        let fill = gen.pick(&["-2", "-1", "1", "3"]);
        for c in std::iter::once(&mut rcon).chain(tcons.iter_mut()) {
            assert_eq!(run(c, &["FLUSHALL"]), Ok(Value::Okay));
            assert_eq!(
                run(c, &["CONFIG", "SET", "list-max-listpack-size", fill]),
                Ok(Value::Okay)
            );
        }
        let mut history: VecDeque<String> = VecDeque::new();
        for i in 0..commands {
            let args = gen.command();
            if would_block(&mut rcon, &args) {
                stats.skipped += 1;
                continue;
            }
            let cmd = to_cmd(&args);
            let expected = exec(&mut rcon, &cmd);
            match &expected {
                Err(e) => {
                    stats.errors += 1;
                    stats.wrongtype += e.starts_with("WRONGTYPE") as usize;
                }
                Ok(Value::Nil) => stats.nil += 1,
                Ok(Value::Array(_)) => stats.arrays += 1,
                _ => {}
            }
            if args[0].starts_with(b"B") || args[0].starts_with(b"b") {
                stats.blocking += 1;
            }
            for (t, con) in targets.iter().zip(tcons.iter_mut()) {
                let got = exec(con, &cmd);
                if got != expected {
                    panic!(
                        "list differential mismatch (seed {seed}, fill {fill}, resp3 {resp3}, command #{i}, target `{}`)\n\
                         command:  {}\n\
                         redis:    {expected:?}\n\
                         ringkv:   {got:?}\n\
                         --- previous commands (reply from redis) ---\n{}",
                        t.label(),
                        show(&args),
                        history.iter().cloned().collect::<Vec<_>>().join("\n"),
                    );
                }
            }
            let mut line = format!("#{i} {} -> {expected:?}", show(&args));
            line.truncate(300);
            history.push_back(line);
            if history.len() > 20 {
                history.pop_front();
            }
        }
        let expected = snapshot(&mut rcon);
        for (t, con) in targets.iter().zip(tcons.iter_mut()) {
            assert_eq!(
                expected,
                snapshot(con),
                "final keyspace differs (seed {seed}, target `{}`)",
                t.label()
            );
        }
    }
    eprintln!(
        "list streams (resp3 {resp3}): {} seeds x {commands} in {:?}: {stats:?}",
        seeds.len(),
        started.elapsed()
    );
    let total = (seeds.len() * commands) as f64;
    assert!((stats.errors as f64) < total * 0.3, "{stats:?}");
    assert!(
        stats.nil > 0 && stats.arrays > 0 && stats.blocking > 0,
        "{stats:?}"
    );
}

#[test]
fn keys_span_both_shards() {
    let shards: std::collections::HashSet<usize> = KEYS.iter().map(|k| shard_of(k, 2)).collect();
    assert_eq!(shards.len(), 2);
    assert_eq!(shard_of("{t}a", 2), shard_of("{t}b", 2));
}

/// The fixed seeds, plus `RINGKV_DIFF_EXTRA_SEEDS=N` more (seeds
/// `base*1000 + 1 ..= base*1000 + N`) for longer local bug hunts.
fn seeds(fixed: &[u64], base: u64) -> Vec<u64> {
    let extra: u64 = std::env::var("RINGKV_DIFF_EXTRA_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut v = fixed.to_vec();
    v.extend((1..=extra).map(|i| base * 1000 + i));
    v
}

#[test]
fn diff_list_resp2() {
    run_streams(&seeds(&[1, 2, 3], 1), 1500, false);
}

#[test]
fn diff_list_resp3() {
    run_streams(&seeds(&[11], 2), 1500, true);
}

// ----- blocking (ringkv's parking machinery) ------------------------------------

fn raw_cmd(c: &mut RawConn, args: &[&str]) {
    let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
    c.send(&resp_cmd(&a));
}

/// Sends a command and reads exactly `reply` (bounded).
fn raw_expect(c: &mut RawConn, args: &[&str], reply: &[u8]) {
    raw_cmd(c, args);
    c.expect(reply);
}

#[test]
fn blpop_times_out_with_null() {
    for &n in &SHARD_COUNTS {
        let srv = Server::ringkv(n, &[]);
        let mut c = srv.raw_conn();
        let t = Instant::now();
        raw_expect(&mut c, &["BLPOP", "nolist", "0.2"], b"*-1\r\n");
        let waited = t.elapsed();
        assert!(
            waited >= Duration::from_millis(150) && waited < Duration::from_secs(3),
            "{}: BLPOP 0.2 returned after {waited:?}",
            srv.label()
        );
        // The connection still works, and RESP3 gets `_`.
        raw_cmd(&mut c, &["HELLO", "3"]);
        let hello = c.read_idle(Duration::from_millis(100), Duration::from_secs(2));
        assert!(
            hello.starts_with(b"%"),
            "{}",
            String::from_utf8_lossy(&hello)
        );
        raw_expect(&mut c, &["BRPOP", "a", "b", "0.05"], b"_\r\n");
        // BRPOPLPUSH and BLMOVE time out with a null array too (Redis 7.0
        // replies `*-1` to every timed-out list client).
        let mut c = srv.raw_conn();
        raw_expect(&mut c, &["BRPOPLPUSH", "x", "y", "0.05"], b"*-1\r\n");
        raw_expect(
            &mut c,
            &["BLMOVE", "x", "y", "LEFT", "LEFT", "0.05"],
            b"*-1\r\n",
        );
        raw_expect(&mut c, &["PING"], b"+PONG\r\n");
    }
}

#[test]
fn blpop_is_woken_by_a_push() {
    for &n in &SHARD_COUNTS {
        let srv = Server::ringkv(n, &[]);
        let (k1, k2) = keys_on_different_shards("wake");
        let mut waiter = srv.raw_conn();
        let mut pusher = srv.client();
        let t = Instant::now();
        raw_cmd(&mut waiter, &["BLPOP", &k1, "5"]);
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(run(&mut pusher, &["LPUSH", &k1, "v1"]), Ok(int(1)));
        waiter.expect(format!("*2\r\n${}\r\n{k1}\r\n$2\r\nv1\r\n", k1.len()).as_bytes());
        assert!(t.elapsed() < Duration::from_secs(4), "{}", srv.label());
        assert_eq!(run(&mut pusher, &["EXISTS", &k1]), Ok(int(0)));

        // Two keys on two shards; data arrives on the second.
        raw_cmd(&mut waiter, &["BRPOP", &k1, &k2, "5"]);
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(run(&mut pusher, &["RPUSH", &k2, "a", "b"]), Ok(int(2)));
        waiter.expect(format!("*2\r\n${}\r\n{k2}\r\n$1\r\nb\r\n", k2.len()).as_bytes());
        assert_eq!(
            run(&mut pusher, &["LRANGE", &k2, "0", "-1"]),
            Ok(arr(vec![bulk("a")]))
        );

        // BLMOVE across shards: the element lands on the destination.
        assert_eq!(run(&mut pusher, &["DEL", &k1, &k2]), Ok(int(1)));
        raw_cmd(&mut waiter, &["BLMOVE", &k1, &k2, "LEFT", "RIGHT", "5"]);
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(run(&mut pusher, &["RPUSH", &k1, "m"]), Ok(int(1)));
        waiter.expect(b"$1\r\nm\r\n");
        assert_eq!(run(&mut pusher, &["EXISTS", &k1]), Ok(int(0)));
        assert_eq!(
            run(&mut pusher, &["LRANGE", &k2, "0", "-1"]),
            Ok(arr(vec![bulk("m")]))
        );

        // BLMPOP with a count, woken by a push of several elements.
        raw_cmd(
            &mut waiter,
            &["BLMPOP", "5", "1", &k1, "LEFT", "COUNT", "5"],
        );
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(run(&mut pusher, &["RPUSH", &k1, "p", "q"]), Ok(int(2)));
        waiter.expect(
            format!(
                "*2\r\n${}\r\n{k1}\r\n*2\r\n$1\r\np\r\n$1\r\nq\r\n",
                k1.len()
            )
            .as_bytes(),
        );
        raw_expect(&mut waiter, &["PING"], b"+PONG\r\n");
    }
}

/// Concurrent LMOVE / RPOPLPUSH / LMPOP / pushes between keys on two shards:
/// no element is ever lost or duplicated (each cross-shard move runs as one
/// transaction).
#[test]
fn cross_shard_moves_keep_every_element() {
    let srv = Server::ringkv(2, &[]);
    let (k1, k2) = keys_on_different_shards("mv");
    let mut c = srv.client();
    let items: Vec<String> = (0..100).map(|i| format!("e{i}")).collect();
    let mut push = vec!["RPUSH", k1.as_str()];
    push.extend(items.iter().map(|s| s.as_str()));
    assert_eq!(run(&mut c, &push), Ok(int(100)));
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let (url, a, b) = (srv.url(), k1.clone(), k2.clone());
            std::thread::spawn(move || {
                let mut con = redis::Client::open(url).unwrap().get_connection().unwrap();
                for i in 0..150 {
                    let (src, dst) = if (i + w) % 2 == 0 { (&a, &b) } else { (&b, &a) };
                    let r = match i % 3 {
                        0 => run(&mut con, &["LMOVE", src, dst, "LEFT", "RIGHT"]),
                        1 => run(&mut con, &["RPOPLPUSH", src, dst]),
                        _ => {
                            // Pop from whichever key has data and put it back.
                            match run(&mut con, &["LMPOP", "2", src, dst, "RIGHT", "COUNT", "2"]) {
                                Ok(Value::Array(kv)) => {
                                    let Value::Array(vals) = &kv[1] else {
                                        panic!("{kv:?}")
                                    };
                                    let mut cmd = redis::cmd("LPUSH");
                                    cmd.arg(dst.as_str());
                                    for v in vals {
                                        let Value::BulkString(b) = v else {
                                            panic!("{v:?}")
                                        };
                                        cmd.arg(&b[..]);
                                    }
                                    exec(&mut con, &cmd)
                                }
                                other => other,
                            }
                        }
                    };
                    assert!(r.is_ok(), "{r:?}");
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("worker");
    }
    let mut all: Vec<String> = Vec::new();
    for k in [&k1, &k2] {
        if let Ok(Value::Array(v)) = run(&mut c, &["LRANGE", k, "0", "-1"]) {
            all.extend(v.into_iter().map(|x| match x {
                Value::BulkString(b) => String::from_utf8(b).unwrap(),
                other => panic!("{other:?}"),
            }));
        }
    }
    all.sort();
    let mut want = items.clone();
    want.sort();
    assert_eq!(all, want);
}

#[test]
fn client_unblock_ends_a_wait() {
    let rk = common::Server::ringkv(2, &[]);
    let mut waiter = rk.client();
    let id: i64 = redis::cmd("CLIENT").arg("ID").query(&mut waiter).unwrap();
    let t = std::thread::spawn(move || {
        let r: redis::RedisResult<redis::Value> = redis::cmd("BLPOP")
            .arg("nothing:here")
            .arg(5)
            .query(&mut waiter);
        let r2: redis::RedisResult<redis::Value> = redis::cmd("BLPOP")
            .arg("nothing:here")
            .arg(5)
            .query(&mut waiter);
        (r, r2)
    });
    let mut ctl = rk.client();
    let start = std::time::Instant::now();
    // Wait (bounded) until the client shows as blocked, then unblock it twice.
    let mut unblocked = 0;
    while unblocked < 2 && start.elapsed() < std::time::Duration::from_secs(4) {
        let reason = if unblocked == 0 { "TIMEOUT" } else { "ERROR" };
        let n: i64 = redis::cmd("CLIENT")
            .arg("UNBLOCK")
            .arg(id)
            .arg(reason)
            .query(&mut ctl)
            .unwrap();
        unblocked += n;
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let (r, r2) = t.join().unwrap();
    assert_eq!(unblocked, 2);
    assert_eq!(r.unwrap(), redis::Value::Nil);
    let e = r2.unwrap_err();
    assert!(format!("{e}").contains("UNBLOCKED"), "{e}");
    assert!(start.elapsed() < std::time::Duration::from_secs(4));
    let n: i64 = redis::cmd("CLIENT")
        .arg("UNBLOCK")
        .arg(id)
        .query(&mut ctl)
        .unwrap();
    assert_eq!(n, 0);
}
