//! Differential tests of the sorted set family: ringkv vs a real
//! redis-server 7.0.
//!
//! * Seeded random streams of sorted-set commands (all 35 of the family,
//!   with valid and invalid options, bounds, counts, weights and arities)
//!   run one command at a time against redis-server and against ringkv
//!   with `--shards 1` and `--shards 2`; every reply is compared exactly
//!   (reply type included, errors by full text), in order.
//! * Replies whose content Redis leaves to chance are normalised: for
//!   ZRANDMEMBER only the shape (nil / one member / array length) is
//!   compared, and ZSCAN (always asked with COUNT 1000, so one call covers
//!   a small set) is compared with its member/score pairs sorted.
//! * Scores are small integers, halves, `-0` and infinities, so every
//!   result formats identically; inf - inf gives Redis's NaN error.
//! * Lexicographic commands run only on "lex" keys whose members all score
//!   0 (Redis leaves mixed-score lex ranges unspecified).
//! * Some seeds lower zset-max-listpack-entries/-value (CONFIG SET on both
//!   servers) so conversions to the skiplist encoding happen constantly;
//!   OBJECT ENCODING is part of the stream and of the final snapshot.
//! * With two shards, keys spread over both (some share a `{t}` tag), so
//!   ZUNIONSTORE, ZRANGESTORE, ZMPOP, BZPOPMIN ... take the cross-shard
//!   coordinators.
//! * Blocking pops run with a 10 ms timeout (a null reply when nothing is
//!   there); `blocking_pops_wake_up` checks that a parked BZPOPMIN/BZMPOP
//!   is served by a later ZADD, on one shard and across two.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use redis::Value;

/// Keys holding scores of every kind.
const SKEYS: [&str; 8] = ["z0", "z1", "z2", "{t}z3", "{t}z4", "{t}z5", "zz", "none"];
/// Keys whose members all score 0 (lex commands).
const LKEYS: [&str; 3] = ["lex0", "{t}lex1", "lex2"];
/// A string key (WRONGTYPE).
const STR: &str = "str";
/// A plain set key (the set operations accept sets), when SADD exists.
const SET: &str = "{t}set";

const SCORES: [&str; 16] = [
    "0", "1", "2", "3", "-1", "-2", "0.5", "1.5", "-2.5", "10", "inf", "-inf", "+inf", "1e1", "-0",
    "4",
];

type Args = Vec<String>;

struct Gen {
    rng: StdRng,
    members: Vec<String>,
    sets: bool,
}

impl Gen {
    fn new(seed: u64, sets: bool) -> Gen {
        let mut members: Vec<String> = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        members.extend(
            ["1", "10", "-3", "", "aa", "ab", "b\u{0}x"]
                .iter()
                .map(|s| s.to_string()),
        );
        members.push("L".repeat(70));
        members.push("M".repeat(20));
        Gen {
            rng: StdRng::seed_from_u64(seed),
            members,
            sets,
        }
    }

    fn pct(&mut self, p: u32) -> bool {
        self.rng.gen_range(0..100) < p
    }

    fn pick(&mut self, xs: &[&str]) -> String {
        xs[self.rng.gen_range(0..xs.len())].to_string()
    }

    fn skey(&mut self) -> String {
        if self.pct(3) {
            return STR.into();
        }
        if self.sets && self.pct(4) {
            return SET.into();
        }
        self.pick(&SKEYS)
    }

    /// A key for reading: a score key, sometimes a lex key.
    fn rkey(&mut self) -> String {
        if self.pct(20) {
            self.pick(&LKEYS)
        } else {
            self.skey()
        }
    }

    fn lkey(&mut self) -> String {
        if self.pct(4) {
            STR.into()
        } else {
            self.pick(&LKEYS)
        }
    }

    fn member(&mut self) -> String {
        let i = self.rng.gen_range(0..self.members.len());
        self.members[i].clone()
    }

    fn score(&mut self) -> String {
        if self.pct(3) {
            return self.pick(&["abc", "nan", "1e400", "", " 1", "1 ", "0x10"]);
        }
        self.pick(&SCORES)
    }

    fn score_bound(&mut self) -> String {
        if self.pct(3) {
            return self.pick(&["abc", "(", "nan", "((1", ""]);
        }
        self.pick(&[
            "-inf", "+inf", "inf", "0", "1", "(1", "2", "(2", "-1", "(-1", "5", "(0", "0.5",
            "(inf", "(-inf", "1.5",
        ])
    }

    fn lex_bound(&mut self) -> String {
        if self.pct(3) {
            return self.pick(&["a", "+a", "", "-x"]);
        }
        self.pick(&[
            "-", "+", "[a", "(a", "[c", "(c", "[e", "[f", "(g", "[", "(", "[b", "(ab", "[1",
        ])
    }

    fn index(&mut self) -> String {
        if self.pct(2) {
            return "x".into();
        }
        self.rng.gen_range(-6i64..=7).to_string()
    }

    fn limit(&mut self, a: &mut Args) {
        if self.pct(30) {
            a.push("LIMIT".into());
            a.push(self.rng.gen_range(-1i64..=4).to_string());
            a.push(self.rng.gen_range(-1i64..=4).to_string());
        }
    }

    /// Several distinct-ish keys for set operations.
    fn keys(&mut self, n: usize) -> Vec<String> {
        (0..n).map(|_| self.rkey()).collect()
    }

    fn setop(&mut self, name: &str, store: bool) -> Args {
        let mut a = vec![name.to_string()];
        if store {
            a.push(self.pick(&SKEYS));
        }
        let n = self.rng.gen_range(1..=3);
        if self.pct(4) {
            a.push(self.pick(&["0", "-1", "x", "9"]));
        } else {
            a.push(n.to_string());
        }
        a.extend(self.keys(n));
        let diff = name.starts_with("ZDIFF");
        let card = name == "ZINTERCARD";
        if !diff && !card && self.pct(40) {
            a.push("WEIGHTS".into());
            let k = if self.pct(90) { n } else { n + 1 };
            for _ in 0..k {
                let w = self.pick(&["1", "2", "0.5", "0", "-1", "1.5"]);
                a.push(if self.pct(3) { "w".into() } else { w });
            }
        }
        if !diff && !card && self.pct(40) {
            a.push("AGGREGATE".into());
            a.push(self.pick(&["SUM", "MIN", "MAX", "max", "avg"]));
        }
        if card && self.pct(50) {
            a.push("LIMIT".into());
            a.push(self.pick(&["0", "1", "2", "-1", "x"]));
        }
        if !store && !card && self.pct(50) {
            a.push("WITHSCORES".into());
        }
        if self.pct(3) {
            a.push("BOGUS".into());
        }
        a
    }

    fn zadd(&mut self, lex: bool) -> Args {
        let key = if lex { self.lkey() } else { self.skey() };
        let mut a = vec!["ZADD".to_string(), key];
        for f in ["NX", "XX", "GT", "LT", "CH", "INCR"] {
            if self.pct(if f == "CH" { 15 } else { 7 }) {
                a.push(if self.pct(50) {
                    f.to_lowercase()
                } else {
                    f.into()
                });
            }
        }
        let n = if self.pct(70) {
            1
        } else {
            self.rng.gen_range(2..=4)
        };
        for _ in 0..n {
            a.push(if lex { "0".into() } else { self.score() });
            a.push(self.member());
        }
        if self.pct(3) {
            a.pop();
        }
        a
    }

    fn range_cmd(&mut self) -> Args {
        let lexy = self.pct(25);
        let key = if lexy { self.lkey() } else { self.rkey() };
        let mut a = vec!["ZRANGE".to_string(), key];
        let by = if lexy {
            "BYLEX"
        } else if self.pct(50) {
            "BYSCORE"
        } else {
            ""
        };
        let rev = self.pct(40);
        let (lo, hi) = match by {
            "BYLEX" => (self.lex_bound(), self.lex_bound()),
            "BYSCORE" => (self.score_bound(), self.score_bound()),
            _ => (self.index(), self.index()),
        };
        a.push(lo);
        a.push(hi);
        let mut opts: Vec<Args> = Vec::new();
        if !by.is_empty() {
            opts.push(vec![by.into()]);
        }
        if rev {
            opts.push(vec!["REV".into()]);
        }
        if self.pct(40) {
            opts.push(vec!["WITHSCORES".into()]);
        }
        let mut lim = Vec::new();
        if !by.is_empty() || self.pct(10) {
            self.limit(&mut lim);
        }
        if !lim.is_empty() {
            opts.push(lim);
        }
        // Options may come in any order.
        for i in (1..opts.len()).rev() {
            let j = self.rng.gen_range(0..=i);
            opts.swap(i, j);
        }
        a.extend(opts.into_iter().flatten());
        a
    }

    fn command(&mut self) -> Args {
        let r = self.rng.gen_range(0..1000);
        let mut a: Args = match r {
            0..=139 => self.zadd(false),
            140..=179 => self.zadd(true),
            180..=209 => {
                let k = self.skey();
                let (inc, m) = (self.score(), self.member());
                vec!["ZINCRBY".into(), k, inc, m]
            }
            210..=249 => {
                let mut a = vec!["ZREM".to_string(), self.rkey()];
                for _ in 0..self.rng.gen_range(1..=3) {
                    a.push(self.member());
                }
                a
            }
            250..=264 => vec!["ZCARD".into(), self.rkey()],
            265..=289 => vec!["ZSCORE".into(), self.rkey(), self.member()],
            290..=304 => {
                let mut a = vec!["ZMSCORE".to_string(), self.rkey()];
                for _ in 0..self.rng.gen_range(1..=3) {
                    a.push(self.member());
                }
                a
            }
            305..=329 => {
                let name = self.pick(&["ZRANK", "ZREVRANK"]);
                vec![name, self.rkey(), self.member()]
            }
            330..=349 => vec![
                "ZCOUNT".into(),
                self.rkey(),
                self.score_bound(),
                self.score_bound(),
            ],
            350..=369 => vec![
                "ZLEXCOUNT".into(),
                self.lkey(),
                self.lex_bound(),
                self.lex_bound(),
            ],
            370..=449 => self.range_cmd(),
            450..=479 => {
                let name = self.pick(&["ZRANGEBYSCORE", "ZREVRANGEBYSCORE"]);
                let mut a = vec![name, self.rkey(), self.score_bound(), self.score_bound()];
                if self.pct(40) {
                    a.push("WITHSCORES".into());
                }
                self.limit(&mut a);
                if self.pct(3) {
                    a.push("REV".into());
                }
                a
            }
            480..=504 => {
                let name = self.pick(&["ZRANGEBYLEX", "ZREVRANGEBYLEX"]);
                let mut a = vec![name, self.lkey(), self.lex_bound(), self.lex_bound()];
                self.limit(&mut a);
                if self.pct(3) {
                    a.push("WITHSCORES".into());
                }
                a
            }
            505..=519 => {
                let mut a = vec![
                    "ZREVRANGE".to_string(),
                    self.rkey(),
                    self.index(),
                    self.index(),
                ];
                if self.pct(40) {
                    a.push("WITHSCORES".into());
                }
                a
            }
            520..=539 => {
                let mut r = self.range_cmd();
                r.retain(|x| x != "WITHSCORES");
                r[0] = "ZRANGESTORE".into();
                r.insert(1, self.pick(&SKEYS));
                if self.pct(3) {
                    r.push("WITHSCORES".into());
                }
                r
            }
            540..=554 => vec![
                "ZREMRANGEBYRANK".into(),
                self.rkey(),
                self.index(),
                self.index(),
            ],
            555..=569 => vec![
                "ZREMRANGEBYSCORE".into(),
                self.rkey(),
                self.score_bound(),
                self.score_bound(),
            ],
            570..=584 => vec![
                "ZREMRANGEBYLEX".into(),
                self.lkey(),
                self.lex_bound(),
                self.lex_bound(),
            ],
            585..=619 => {
                let name = self.pick(&["ZPOPMIN", "ZPOPMAX"]);
                let mut a = vec![name, self.rkey()];
                if self.pct(50) {
                    a.push(self.pick(&["0", "1", "2", "5", "-1", "x"]));
                }
                a
            }
            620..=639 => {
                let name = self.pick(&["BZPOPMIN", "BZPOPMAX"]);
                let mut a = vec![name];
                for _ in 0..self.rng.gen_range(1..=3) {
                    a.push(self.rkey());
                }
                a.push(if self.pct(90) {
                    "0.01".into()
                } else {
                    self.pick(&["-1", "abc", "inf"])
                });
                a
            }
            640..=669 => {
                let block = self.pct(40);
                let mut a = vec![if block { "BZMPOP" } else { "ZMPOP" }.to_string()];
                if block {
                    a.push(if self.pct(95) {
                        "0.01".into()
                    } else {
                        "-1".into()
                    });
                }
                let n = self.rng.gen_range(1..=3);
                a.push(if self.pct(5) {
                    self.pick(&["0", "x", "5"])
                } else {
                    n.to_string()
                });
                for _ in 0..n {
                    a.push(self.rkey());
                }
                a.push(self.pick(&["MIN", "MAX", "min", "max", "MID"]));
                if self.pct(50) {
                    a.push("COUNT".into());
                    a.push(self.pick(&["1", "2", "10", "0", "-1"]));
                }
                a
            }
            670..=699 => {
                let mut a = vec!["ZRANDMEMBER".to_string(), self.rkey()];
                if self.pct(70) {
                    a.push(self.pick(&["0", "1", "2", "5", "100", "-1", "-5", "x"]));
                    if self.pct(50) {
                        a.push(if self.pct(95) {
                            "WITHSCORES".into()
                        } else {
                            "WS".into()
                        });
                    }
                }
                a
            }
            700..=849 => {
                let name = self.pick(&[
                    "ZUNION",
                    "ZINTER",
                    "ZDIFF",
                    "ZINTERCARD",
                    "ZUNIONSTORE",
                    "ZINTERSTORE",
                    "ZDIFFSTORE",
                ]);
                let store = name.ends_with("STORE");
                self.setop(&name, store)
            }
            850..=879 => {
                let mut a = vec!["ZSCAN".to_string(), self.rkey()];
                a.push(if self.pct(95) {
                    "0".into()
                } else {
                    "abc".into()
                });
                if self.pct(40) {
                    a.push("MATCH".into());
                    a.push(self.pick(&["*", "a*", "[a-c]", "*1*", "?"]));
                }
                a.push("COUNT".into());
                a.push(if self.pct(97) {
                    "1000".into()
                } else {
                    "0".into()
                });
                a
            }
            880..=909 => vec!["OBJECT".into(), "ENCODING".into(), self.rkey()],
            910..=929 => vec!["TYPE".into(), self.rkey()],
            930..=944 => vec!["DEL".into(), self.rkey()],
            945..=954 => vec!["SET".into(), STR.into(), "v".into()],
            955..=969 if self.sets => {
                let mut a = vec!["SADD".to_string(), SET.into()];
                for _ in 0..self.rng.gen_range(1..=3) {
                    a.push(self.member());
                }
                a
            }
            _ => vec!["EXISTS".into(), self.rkey()],
        };
        // Wrong arity now and then.
        // (ZSCAN keeps its COUNT 1000: below that, Redis's hash order shows.)
        if self.pct(2) && a.len() > 1 {
            let max = if a[0] == "ZSCAN" { 3 } else { a.len() };
            a.truncate(self.rng.gen_range(1..max));
        }
        if self.pct(30) {
            a[0] = a[0].to_lowercase();
        }
        a
    }
}

fn to_cmd(args: &[String]) -> redis::Cmd {
    let mut c = redis::Cmd::new();
    for a in args {
        c.arg(a.as_bytes());
    }
    c
}

fn sort_key(v: &Value) -> String {
    format!("{v:?}")
}

/// Puts replies whose content Redis leaves to chance into a canonical form.
fn normalize(name: &str, r: Reply) -> Reply {
    match (name, r) {
        ("ZRANDMEMBER", Ok(Value::Array(items))) => Ok(Value::Int(items.len() as i64)),
        ("ZRANDMEMBER", Ok(Value::BulkString(_))) => Ok(Value::BulkString(b"*".to_vec())),
        ("ZSCAN", Ok(Value::Array(mut parts))) if parts.len() == 2 => {
            if let Value::Array(flat) = &parts[1] {
                let mut pairs: Vec<Vec<Value>> = flat.chunks(2).map(|c| c.to_vec()).collect();
                pairs.sort_by_key(|p| sort_key(&Value::Array(p.clone())));
                parts[1] = Value::Array(pairs.into_iter().flatten().collect());
            }
            Ok(Value::Array(parts))
        }
        (_, r) => r,
    }
}

struct Target {
    server: Server,
    con: redis::Connection,
}

fn connect(server: &Server, resp3: bool) -> redis::Connection {
    if resp3 {
        server.client_resp3()
    } else {
        server.client()
    }
}

fn show(args: &[String]) -> String {
    args.iter()
        .map(|a| format!("{a:?}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Every key: TYPE, and for sorted sets their contents and encoding.
fn snapshot(con: &mut redis::Connection) -> Vec<(String, Reply, Reply, Reply)> {
    let mut keys: Vec<&str> = SKEYS.iter().chain(LKEYS.iter()).copied().collect();
    keys.push(STR);
    keys.push(SET);
    keys.iter()
        .map(|k| {
            let ty = run(con, &["TYPE", k]);
            let (body, enc) = if ty == Ok(Value::SimpleString("zset".into())) {
                (
                    run(con, &["ZRANGE", k, "0", "-1", "WITHSCORES"]),
                    run(con, &["OBJECT", "ENCODING", k]),
                )
            } else {
                (Ok(Value::Nil), Ok(Value::Nil))
            };
            (k.to_string(), ty, body, enc)
        })
        .collect()
}

#[derive(Default, Debug)]
struct Stats {
    errors: usize,
    wrongtype: usize,
    nil: usize,
    arrays: usize,
    ints: usize,
}

/// Whether this ringkv answers SADD (the set family may not exist yet).
fn has_sets(con: &mut redis::Connection) -> bool {
    let r = run(con, &["SADD", "probe:set", "x"]);
    let _ = run(con, &["DEL", "probe:set"]);
    r.is_ok()
}

fn run_streams(seeds: &[u64], commands: usize, resp3: bool, small: bool) {
    let Some(reference) = Server::redis() else {
        return;
    };
    let mut reference = Target {
        con: connect(&reference, resp3),
        server: reference,
    };
    let mut targets: Vec<Target> = SHARD_COUNTS
        .iter()
        .map(|&n| {
            let server = Server::ringkv(n, &[]);
            Target {
                con: connect(&server, resp3),
                server,
            }
        })
        .collect();
    let sets = targets.iter_mut().all(|t| has_sets(&mut t.con));
    let (entries, value) = if small { ("8", "16") } else { ("128", "64") };
    for t in std::iter::once(&mut reference).chain(targets.iter_mut()) {
        for (p, v) in [
            ("zset-max-listpack-entries", entries),
            ("zset-max-listpack-value", value),
        ] {
            assert_eq!(run(&mut t.con, &["CONFIG", "SET", p, v]), Ok(Value::Okay));
        }
    }
    // Other shards pick the configuration up on their next tick.
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let mut stats = Stats::default();
    for &seed in seeds {
        for t in std::iter::once(&mut reference).chain(targets.iter_mut()) {
            assert_eq!(run(&mut t.con, &["FLUSHALL"]), Ok(Value::Okay));
        }
        let mut gen = Gen::new(seed, sets);
        let mut history: VecDeque<String> = VecDeque::new();
        for i in 0..commands {
            let args = gen.command();
            let cmd = to_cmd(&args);
            let name = args[0].to_ascii_uppercase();
            let expected = normalize(&name, exec(&mut reference.con, &cmd));
            match &expected {
                Err(e) => {
                    stats.errors += 1;
                    stats.wrongtype += e.starts_with("WRONGTYPE") as usize;
                }
                Ok(Value::Nil) => stats.nil += 1,
                Ok(Value::Array(_)) => stats.arrays += 1,
                Ok(Value::Int(_)) => stats.ints += 1,
                _ => {}
            }
            for t in targets.iter_mut() {
                let t0 = Instant::now();
                let got = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    exec(&mut t.con, &cmd)
                }))
                .unwrap_or_else(|_| {
                    panic!(
                        "no reply (seed {seed}, command #{i}, target `{}`): {}\n{}",
                        t.server.label(),
                        show(&args),
                        t.server.log()
                    )
                });
                if t0.elapsed() > Duration::from_secs(1) {
                    eprintln!(
                        "slow reply ({:?}, seed {seed}, command #{i}, target `{}`): {}",
                        t0.elapsed(),
                        t.server.label(),
                        show(&args)
                    );
                }
                let got = normalize(&name, got);
                if got != expected {
                    panic!(
                        "zset differential mismatch (seed {seed}, resp3 {resp3}, small {small}, command #{i}, target `{}`)\n\
                         command:  {}\n\
                         redis:    {expected:?}\n\
                         ringkv:   {got:?}\n\
                         --- previous commands (reply from redis) ---\n{}",
                        t.server.label(),
                        show(&args),
                        history.iter().cloned().collect::<Vec<_>>().join("\n"),
                    );
                }
            }
            history.push_back(format!("#{i} {} -> {expected:?}", show(&args)));
            if history.len() > 30 {
                history.pop_front();
            }
        }
        let expected = snapshot(&mut reference.con);
        for t in targets.iter_mut() {
            assert_eq!(
                expected,
                snapshot(&mut t.con),
                "final keyspace differs (seed {seed}, target `{}`)",
                t.server.label()
            );
        }
    }
    eprintln!(
        "zset streams (resp3 {resp3}, small {small}, sets {sets}): {} seeds x {commands} in {:?}: {stats:?}",
        seeds.len(),
        started.elapsed()
    );
    let total = (seeds.len() * commands) as f64;
    assert!(
        (stats.errors as f64) < total * 0.4,
        "too many errors: {stats:?}"
    );
    assert!(stats.wrongtype > 0 && stats.nil > 0 && stats.arrays > 0 && stats.ints > 0);
}

/// `RINGKV_DIFF_EXTRA_SEEDS=N` adds N seeds per stream (local bug hunts);
/// `RINGKV_DIFF_SEED=S` runs only seed S (to replay a failure).
fn seeds(fixed: &[u64], base: u64) -> Vec<u64> {
    if let Some(s) = std::env::var("RINGKV_DIFF_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return vec![s];
    }
    let extra: u64 = std::env::var("RINGKV_DIFF_EXTRA_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut v = fixed.to_vec();
    v.extend((1..=extra).map(|i| base * 1000 + i));
    v
}

#[test]
fn zset_streams_small_encodings() {
    run_streams(&seeds(&[1, 2, 3], 51), 2500, false, true);
}

#[test]
fn zset_streams_default_encodings() {
    run_streams(&seeds(&[11, 12], 52), 2500, false, false);
}

#[test]
fn zset_streams_resp3() {
    run_streams(&seeds(&[21, 22], 53), 2500, true, true);
}

/// A parked BZPOPMIN / BZMPOP is served by a later ZADD (same shard and
/// across shards), and times out with a null reply otherwise.
#[test]
fn blocking_pops_wake_up() {
    let (a, b) = keys_on_different_shards("bz");
    let mut servers: Vec<Server> = SHARD_COUNTS
        .iter()
        .map(|&n| Server::ringkv(n, &[]))
        .collect();
    if let Some(r) = Server::redis() {
        servers.push(r);
    }
    for s in &servers {
        let mut c = s.client();
        let mut w = s.client();
        // Timeout: null array.
        let t = Instant::now();
        assert_eq!(
            run(&mut c, &["BZPOPMIN", &a, &b, "0.05"]),
            Ok(Value::Nil),
            "{}",
            s.label()
        );
        assert!(t.elapsed() >= Duration::from_millis(40));
        // Woken by a ZADD on the second key.
        let (a2, b2) = (a.clone(), b.clone());
        let waiter = std::thread::spawn(move || {
            let r = run(&mut c, &["BZPOPMAX", &a2, &b2, "5"]);
            (r, c)
        });
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(
            run(&mut w, &["ZADD", &b, "1", "x", "2", "y"]),
            Ok(Value::Int(2))
        );
        let (r, mut c) = waiter.join().unwrap();
        assert_eq!(
            r,
            Ok(Value::Array(vec![bulk(&b), bulk("y"), bulk("2")])),
            "{}",
            s.label()
        );
        // BZMPOP woken by ZADD on the first key.
        let (a2, b2) = (a.clone(), b.clone());
        let waiter = std::thread::spawn(move || {
            run(
                &mut c,
                &["BZMPOP", "5", "2", &a2, "nokey", "MIN", "COUNT", "5"],
            )
        });
        std::thread::sleep(Duration::from_millis(100));
        let _ = b2;
        assert_eq!(
            run(&mut w, &["ZADD", &a, "3", "p", "4", "q"]),
            Ok(Value::Int(2))
        );
        assert_eq!(
            waiter.join().unwrap(),
            Ok(Value::Array(vec![
                bulk(&a),
                Value::Array(vec![
                    Value::Array(vec![bulk("p"), bulk("3")]),
                    Value::Array(vec![bulk("q"), bulk("4")]),
                ]),
            ])),
            "{}",
            s.label()
        );
        assert_eq!(run(&mut w, &["EXISTS", &a]), Ok(Value::Int(0)));
        assert_eq!(run(&mut w, &["ZCARD", &b]), Ok(Value::Int(1)));
    }
}
