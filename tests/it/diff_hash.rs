//! Differential tests of the hash family: ringkv vs a real redis-server 7.0.
//!
//! Scope:
//! * Seeded random streams (`StdRng`, fixed seeds) of HSET HMSET HSETNX
//!   HGET HMGET HDEL HLEN HSTRLEN HEXISTS HKEYS HVALS HGETALL HINCRBY
//!   HINCRBYFLOAT HRANDFIELD HSCAN, plus SET/DEL/EXISTS/TYPE/OBJECT
//!   ENCODING, wrong-arity variants and random command-name case, on a
//!   small key space (one string key for WRONGTYPE, keys on both shards).
//!   They run against redis-server and ringkv with `--shards 1` and `2`,
//!   over RESP2 and RESP3, one command at a time; replies are compared
//!   exactly (reply types and error texts included), except:
//!   - HKEYS / HVALS / HGETALL of a hashtable-encoded hash (Redis leaves
//!     the order unspecified): compared as multisets. A listpack-encoded
//!     hash must give the exact (insertion) order.
//!   - HSCAN of a hashtable: cursors are bucket positions, which differ;
//!     each side is scanned to completion and the sets of pairs compared.
//!     A listpack hash must give the exact single reply (cursor 0).
//!   - HRANDFIELD is random: both replies must have the same shape and
//!     length, every pair must be in the hash, fields must be distinct for
//!     positive counts; a count covering the whole listpack hash must give
//!     the exact reply.
//! * Streams run with Redis's default thresholds (512 entries / 64 bytes,
//!   with occasional wide HSET commands that cross 512 fields and values
//!   over 64 bytes) and with tiny random thresholds (CONFIG SET
//!   hash-max-listpack-entries / -value) so conversions happen constantly;
//!   OBJECT ENCODING is part of the stream and of the final state check.
//! * After each seed, every key's TYPE, OBJECT ENCODING and contents are
//!   compared.
//!
//! `RINGKV_DIFF_EXTRA_SEEDS=N` runs N extra seeds per test (longer local
//! bug hunts; the printed seed of a failure reproduces it).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use redis::Value;

const KEYS: [&str; 8] = [
    "h0",
    "h1",
    "h2",
    "{t}a",
    "{t}b",
    "",
    "long:hash:key:0123456789",
    "str",
];

type Args = Vec<Vec<u8>>;

fn s(x: &str) -> Vec<u8> {
    x.as_bytes().to_vec()
}

struct Gen {
    rng: StdRng,
    /// hash-max-listpack-value of the stream (values around it matter).
    max_value: usize,
    /// Default thresholds: wide HSETs push hashes past 512 fields.
    wide: bool,
}

impl Gen {
    fn pct(&mut self, p: u32) -> bool {
        self.rng.gen_range(0..100) < p
    }

    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.rng.gen_range(0..xs.len())]
    }

    fn key(&mut self) -> Vec<u8> {
        // The string key rarely, so most commands hit hashes.
        if self.pct(4) {
            return s("str");
        }
        s(KEYS[self.rng.gen_range(0..KEYS.len() - 1)])
    }

    fn letters(&mut self, alphabet: &[u8], min: usize, max: usize) -> Vec<u8> {
        let n = self.rng.gen_range(min..=max);
        (0..n)
            .map(|_| alphabet[self.rng.gen_range(0..alphabet.len())])
            .collect()
    }

    fn field(&mut self) -> Vec<u8> {
        match self.rng.gen_range(0..100) {
            0..=69 => format!("f{}", self.rng.gen_range(0..12)).into_bytes(),
            70..=79 => self.rng.gen_range(-3i64..=20).to_string().into_bytes(),
            80..=84 => s(self.pick(&["", "007", "-0", "x y", "F1"])),
            85..=89 => b"\x00\xff\r\n".to_vec(),
            // Around the length threshold.
            _ => {
                let n = self.max_value + self.rng.gen_range(0..=1);
                vec![b'L'; n]
            }
        }
    }

    fn value(&mut self) -> Vec<u8> {
        match self.rng.gen_range(0..100) {
            0..=29 => self.rng.gen_range(-3i64..=30).to_string().into_bytes(),
            30..=39 => s(self.pick(&["007", "+5", "-0", " 5", "5 ", "0", "-1", "10"])),
            40..=47 => s(self.pick(&[
                "1.5", "-0.25", "2.5e1", "0.125", "-7.75", "1e2", "3.0", ".5", "0.1",
            ])),
            48..=51 => s(self.pick(&[
                "9223372036854775807",
                "-9223372036854775808",
                "9223372036854775806",
                "12345678901234567890",
                "32767",
                "-32769",
                "8388608",
                "2147483648",
            ])),
            52..=56 => s(self.pick(&["", "hello", "world", "AbC", "a b", "inf", "nan"])),
            57..=59 => b"\x00\xffbin\r\n".to_vec(),
            60..=63 => {
                let n = self.max_value + self.rng.gen_range(0..=1);
                vec![b'V'; n]
            }
            _ => self.letters(b"ab", 0, 6),
        }
    }

    fn incr_amount(&mut self) -> Vec<u8> {
        match self.rng.gen_range(0..100) {
            0..=84 => self.rng.gen_range(-100i64..=100).to_string().into_bytes(),
            85..=94 => s(self.pick(&[
                "9223372036854775807",
                "-9223372036854775808",
                "9223372036854775000",
                "-4611686018427387904",
            ])),
            _ => s(self.pick(&["x", "1.5", "", "+1", "-0", "9223372036854775808"])),
        }
    }

    fn float_amount(&mut self) -> Vec<u8> {
        s(self.pick(&[
            "0.5", "-0.25", "1.5", "2", "-3", "0", "1e2", "-2.5e1", "0.125", "10", "0.1", "-1.1",
            "abc", "", "inf", "-inf", "nan", "1e5000", "0x10", " 1",
        ]))
    }

    fn fields(&mut self, name: &str, min: usize, max: usize) -> Args {
        let mut args = vec![s(name), self.key()];
        for _ in 0..self.rng.gen_range(min..=max) {
            args.push(self.field());
        }
        args
    }

    fn pairs(&mut self, name: &str, max: usize) -> Args {
        let mut args = vec![s(name), self.key()];
        for _ in 0..self.rng.gen_range(1..=max) {
            args.push(self.field());
            args.push(self.value());
        }
        args
    }

    /// A HSET of many fields from a wide field space (crosses 512).
    fn wide_hset(&mut self) -> Args {
        let mut args = vec![s("HSET"), self.key()];
        for _ in 0..self.rng.gen_range(50..=200) {
            args.push(format!("w{}", self.rng.gen_range(0..1500)).into_bytes());
            args.push(self.rng.gen_range(0..1000).to_string().into_bytes());
        }
        args
    }

    fn count_arg(&mut self) -> Vec<u8> {
        match self.rng.gen_range(0..100) {
            0..=74 => self.rng.gen_range(-8i64..=8).to_string().into_bytes(),
            75..=84 => s(self.pick(&["100", "-100", "20", "-20"])),
            85..=92 => s(self.pick(&[
                "9223372036854775807",
                "4611686018427387903",
                "4611686018427387904",
                "-4611686018427387903",
                "-4611686018427387904",
                "-9223372036854775808",
            ])),
            _ => s(self.pick(&["x", "1.5", "", "+1"])),
        }
    }

    fn hrandfield(&mut self) -> Args {
        let mut args = vec![s("HRANDFIELD"), self.key()];
        match self.rng.gen_range(0..10) {
            0..=1 => {}
            2..=5 => args.push(self.count_arg()),
            6..=8 => {
                args.push(self.count_arg());
                args.push(s(self.pick(&["WITHVALUES", "withvalues"])));
            }
            _ => {
                args.push(self.count_arg());
                args.push(s(self.pick(&["WITHVALUE", "WITHVALUES"])));
                if self.pct(50) {
                    args.push(s("x"));
                }
            }
        }
        // A huge negative count that passes validation asks for that many
        // picks: redis-server would stream them until it runs out of
        // memory. Keep only the huge negative counts that are refused.
        if let Some(n) = args
            .get(2)
            .and_then(|c| std::str::from_utf8(c).ok()?.parse::<i64>().ok())
        {
            let withvalues = args.len() == 4 && args[3].eq_ignore_ascii_case(b"withvalues");
            let refused = n == i64::MIN || (withvalues && n < -(i64::MAX / 2));
            if n < -1000 && !refused {
                args[2] = s("-9223372036854775808");
            }
        }
        args
    }

    fn hscan(&mut self) -> Args {
        let cursor = match self.rng.gen_range(0..100) {
            0..=89 => "0",
            90..=94 => self.pick(&["7", "18446744073709551615", "-1", "+0", ""]),
            _ => self.pick(&["x", "1.5", " 1", "18446744073709551616"]),
        };
        let mut args = vec![s("HSCAN"), self.key(), s(cursor)];
        for _ in 0..self.rng.gen_range(0..=2) {
            match self.rng.gen_range(0..10) {
                0..=3 => {
                    args.push(s(self.pick(&["MATCH", "match"])));
                    args.push(s(
                        self.pick(&["*", "f*", "f1*", "*1", "w1?", "[a-f]*", "\\*"])
                    ));
                }
                4..=7 => {
                    args.push(s(self.pick(&["COUNT", "count"])));
                    let c = self.pick(&["1", "2", "5", "10", "100", "0", "-1", "x"]);
                    args.push(s(c));
                }
                8 => args.push(s(self.pick(&["COUNT", "MATCH", "TYPE"]))),
                _ => {
                    args.push(s("TYPE"));
                    args.push(s("hash"));
                }
            }
        }
        args
    }

    fn base_command(&mut self) -> Args {
        let roll = self.rng.gen_range(0..1000);
        match roll {
            0..=149 => self.pairs("HSET", 4),
            150..=179 => self.pairs("HMSET", 3),
            180..=219 => {
                let (k, f, v) = (self.key(), self.field(), self.value());
                vec![s("HSETNX"), k, f, v]
            }
            220..=289 => {
                let (k, f) = (self.key(), self.field());
                vec![s("HGET"), k, f]
            }
            290..=329 => self.fields("HMGET", 1, 4),
            330..=419 => self.fields("HDEL", 1, 4),
            420..=444 => vec![s("HLEN"), self.key()],
            445..=469 => {
                let (k, f) = (self.key(), self.field());
                vec![s("HSTRLEN"), k, f]
            }
            470..=494 => {
                let (k, f) = (self.key(), self.field());
                vec![s("HEXISTS"), k, f]
            }
            495..=519 => vec![s("HKEYS"), self.key()],
            520..=544 => vec![s("HVALS"), self.key()],
            545..=579 => vec![s("HGETALL"), self.key()],
            580..=639 => {
                let (k, f, n) = (self.key(), self.field(), self.incr_amount());
                vec![s("HINCRBY"), k, f, n]
            }
            640..=689 => {
                let (k, f, n) = (self.key(), self.field(), self.float_amount());
                vec![s("HINCRBYFLOAT"), k, f, n]
            }
            690..=779 => self.hrandfield(),
            780..=849 => self.hscan(),
            850..=879 => vec![s("OBJECT"), s("ENCODING"), self.key()],
            880..=889 => vec![s("TYPE"), self.key()],
            890..=899 => vec![s("EXISTS"), self.key()],
            900..=919 => {
                let v = self.value();
                vec![s("SET"), s("str"), v]
            }
            920..=939 if self.wide => self.wide_hset(),
            920..=939 => self.pairs("HSET", 4),
            _ => vec![s("DEL"), self.key()],
        }
    }

    fn command(&mut self) -> Args {
        let mut args = self.base_command();
        match self.rng.gen_range(0..100) {
            0..=1 => {
                let n = self.rng.gen_range(1..=args.len());
                args.truncate(n);
            }
            2 => args.push(s("junk")),
            _ => {}
        }
        if self.pct(10) {
            args[0] = args[0].to_ascii_lowercase();
        }
        args
    }
}

fn show(args: &[Vec<u8>]) -> String {
    args.iter()
        .map(|a| {
            let t = String::from_utf8_lossy(a);
            if t.len() > 40 {
                format!("{:?}..({} bytes)", &t[..20], a.len())
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

fn bytes(v: &Value) -> Vec<u8> {
    match v {
        Value::BulkString(b) => b.clone(),
        other => panic!("expected a bulk string, got {other:?}"),
    }
}

/// Field-value pairs of an HGETALL/HSCAN-style reply (flat array or map).
fn flat_pairs(v: &Value) -> Vec<(Vec<u8>, Vec<u8>)> {
    match v {
        Value::Array(items) => items
            .chunks(2)
            .map(|c| (bytes(&c[0]), bytes(&c[1])))
            .collect(),
        Value::Map(m) => m.iter().map(|(k, v)| (bytes(k), bytes(v))).collect(),
        other => panic!("expected pairs, got {other:?}"),
    }
}

/// The encoding of `key` on a server (None when missing or not a hash).
fn encoding(con: &mut redis::Connection, key: &[u8]) -> Option<String> {
    match exec(con, redis::cmd("OBJECT").arg("ENCODING").arg(key)) {
        Ok(Value::BulkString(b)) => Some(String::from_utf8(b).unwrap()),
        _ => None,
    }
}

fn hash_contents(con: &mut redis::Connection, key: &[u8]) -> HashMap<Vec<u8>, Vec<u8>> {
    match exec(con, redis::cmd("HGETALL").arg(key)) {
        Ok(v) => flat_pairs(&v).into_iter().collect(),
        Err(_) => HashMap::new(),
    }
}

/// Scans `key` to completion starting from the reply `first` of `args`
/// (cursor at index 2), returning the sorted, deduplicated pairs.
fn finish_scan(
    con: &mut redis::Connection,
    args: &[Vec<u8>],
    first: &Value,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut all = Vec::new();
    let mut reply = first.clone();
    for _ in 0..100_000 {
        let Value::Array(parts) = &reply else {
            panic!("HSCAN reply {reply:?}");
        };
        all.extend(flat_pairs(&parts[1]));
        let cursor = bytes(&parts[0]);
        if cursor == b"0" {
            all.sort();
            all.dedup();
            return all;
        }
        let mut next = args.to_vec();
        next[2] = cursor;
        reply = exec(con, &to_cmd(&next)).expect("HSCAN continuation");
    }
    panic!("HSCAN never finished");
}

/// A HRANDFIELD item: a field, with its value under WITHVALUES.
type RandItem = (Vec<u8>, Option<Vec<u8>>);

/// HRANDFIELD's reply as items, checking the RESP2/RESP3 shape.
fn rand_items(v: &Value, withvalues: bool, resp3: bool) -> Result<Vec<RandItem>, String> {
    let Value::Array(items) = v else {
        return Err(format!("not an array: {v:?}"));
    };
    if !withvalues {
        return Ok(items.iter().map(|i| (bytes(i), None)).collect());
    }
    if resp3 {
        items
            .iter()
            .map(|i| match i {
                Value::Array(p) if p.len() == 2 => Ok((bytes(&p[0]), Some(bytes(&p[1])))),
                o => Err(format!("RESP3 pair expected, got {o:?}")),
            })
            .collect()
    } else {
        if items.len() % 2 != 0 {
            return Err("odd flat array".into());
        }
        Ok(items
            .chunks(2)
            .map(|c| (bytes(&c[0]), Some(bytes(&c[1]))))
            .collect())
    }
}

struct Target {
    server: Server,
    con: redis::Connection,
}

#[derive(Default, Debug)]
struct Stats {
    commands: usize,
    errors: usize,
    wrongtype: usize,
    unordered: usize,
    scans_continued: usize,
    random_checked: usize,
    hashtable_seen: usize,
}

struct Run<'a> {
    reference: &'a mut Target,
    targets: &'a mut [Target],
    resp3: bool,
    stats: Stats,
}

impl Run<'_> {
    /// Runs one command everywhere and compares; Err describes a mismatch.
    fn step(&mut self, args: &[Vec<u8>]) -> Result<Reply, String> {
        let cmd = to_cmd(args);
        let name = String::from_utf8_lossy(&args[0]).to_ascii_uppercase();
        let expected = exec(&mut self.reference.con, &cmd);
        self.stats.commands += 1;
        if let Err(e) = &expected {
            self.stats.errors += 1;
            if e.starts_with("WRONGTYPE") {
                self.stats.wrongtype += 1;
            }
        }
        let key = args.get(1).cloned().unwrap_or_default();
        let ref_enc = if args.len() >= 2 {
            encoding(&mut self.reference.con, &key)
        } else {
            None
        };
        if ref_enc.as_deref() == Some("hashtable") {
            self.stats.hashtable_seen += 1;
        }
        for t in self.targets.iter_mut() {
            let got = exec(&mut t.con, &cmd);
            if name == "HRANDFIELD" {
                if let Err(why) = check_random(
                    args,
                    &expected,
                    &got,
                    self.resp3,
                    &mut self.reference.con,
                    ref_enc.as_deref(),
                ) {
                    return Err(format!(
                        "target `{}`: {why}\nredis:  {expected:?}\nringkv: {got:?}",
                        t.server.label()
                    ));
                }
                self.stats.random_checked += 1;
                continue;
            }
            if got == expected {
                continue;
            }
            let unordered = ref_enc.as_deref() == Some("hashtable")
                && encoding(&mut t.con, &key).as_deref() == Some("hashtable");
            let ok = match (&*name, &expected, &got) {
                ("HKEYS" | "HVALS", Ok(Value::Array(a)), Ok(Value::Array(b))) if unordered => {
                    let mut a: Vec<Vec<u8>> = a.iter().map(bytes).collect();
                    let mut b: Vec<Vec<u8>> = b.iter().map(bytes).collect();
                    a.sort();
                    b.sort();
                    a == b
                }
                ("HGETALL", Ok(a), Ok(b)) if unordered => {
                    let mut a = flat_pairs(a);
                    let mut b = flat_pairs(b);
                    a.sort();
                    b.sort();
                    a == b
                }
                ("HSCAN", Ok(a @ Value::Array(_)), Ok(b @ Value::Array(_))) if unordered => {
                    self.stats.scans_continued += 1;
                    if args[2] != b"0" {
                        // A cursor of our own choosing means different
                        // buckets on each side: only the shape is comparable.
                        true
                    } else {
                        let a = finish_scan(&mut self.reference.con, args, a);
                        let b = finish_scan(&mut t.con, args, b);
                        a == b
                    }
                }
                _ => false,
            };
            if !ok {
                return Err(format!(
                    "target `{}` (encoding there: {:?}, in redis: {ref_enc:?})\nredis:  {expected:?}\nringkv: {got:?}",
                    t.server.label(),
                    encoding(&mut t.con, &key)
                ));
            }
            self.stats.unordered += 1;
        }
        Ok(expected)
    }
}

/// Checks a HRANDFIELD reply against redis's (see the module docs).
fn check_random(
    args: &[Vec<u8>],
    expected: &Reply,
    got: &Reply,
    resp3: bool,
    reference: &mut redis::Connection,
    ref_enc: Option<&str>,
) -> Result<(), String> {
    let (Ok(e), Ok(g)) = (expected, got) else {
        return if expected == got {
            Ok(())
        } else {
            Err("error replies differ".into())
        };
    };
    let hash = hash_contents(reference, &args[1]);
    if args.len() == 2 {
        return match (e, g) {
            (Value::Nil, Value::Nil) => Ok(()),
            (Value::BulkString(_), Value::BulkString(f)) if hash.contains_key(f) => Ok(()),
            _ => Err("single HRANDFIELD differs".into()),
        };
    }
    let count: i64 = String::from_utf8_lossy(&args[2]).parse().unwrap();
    let withvalues = args.len() == 4;
    let ei = rand_items(e, withvalues, resp3)?;
    let gi = rand_items(g, withvalues, resp3)?;
    if ei.len() != gi.len() {
        return Err("lengths differ".into());
    }
    for (f, v) in &gi {
        match hash.get(f) {
            None => return Err(format!("{f:?} is not in the hash")),
            Some(hv) if v.as_ref().is_some_and(|v| v != hv) => {
                return Err(format!("wrong value for {f:?}"))
            }
            _ => {}
        }
    }
    if count > 0 {
        let mut fs: Vec<&Vec<u8>> = gi.iter().map(|i| &i.0).collect();
        fs.sort();
        fs.dedup();
        if fs.len() != gi.len() {
            return Err("repeated fields for a positive count".into());
        }
        if count as usize >= hash.len() && ref_enc == Some("listpack") && e != g {
            return Err("the whole listpack hash must come in order".into());
        }
    }
    Ok(())
}

fn connect(server: &Server, resp3: bool) -> redis::Connection {
    if resp3 {
        server.client_resp3()
    } else {
        server.client()
    }
}

/// Runs `seeds` streams of `commands` commands, with Redis's default
/// thresholds or (`tiny`) random small ones drawn per seed.
fn run_streams(seeds: &[u64], commands: usize, resp3: bool, tiny: bool) {
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
    let started = Instant::now();
    let mut total = Stats::default();
    for &seed in seeds {
        let mut rng = StdRng::seed_from_u64(seed);
        let (entries, value) = if tiny {
            (rng.gen_range(0..=8usize), rng.gen_range(1..=12usize))
        } else {
            (512, 64)
        };
        for t in std::iter::once(&mut reference).chain(targets.iter_mut()) {
            assert_eq!(run(&mut t.con, &["FLUSHALL"]), Ok(Value::Okay));
            for (p, v) in [
                ("hash-max-listpack-entries", entries),
                ("hash-max-listpack-value", value),
            ] {
                let v = v.to_string();
                assert_eq!(run(&mut t.con, &["CONFIG", "SET", p, &v]), Ok(Value::Okay));
            }
        }
        // Other shards pick configuration changes up on their next tick.
        std::thread::sleep(Duration::from_millis(250));
        let mut gen = Gen {
            rng,
            max_value: value,
            wide: !tiny,
        };
        let mut r = Run {
            reference: &mut reference,
            targets: &mut targets,
            resp3,
            stats: Stats::default(),
        };
        let mut history: VecDeque<String> = VecDeque::new();
        for i in 0..commands {
            let args = gen.command();
            match r.step(&args) {
                Ok(reply) => {
                    let mut shown = format!("{reply:?}");
                    if shown.len() > 200 {
                        shown.truncate(200);
                        shown.push_str("...");
                    }
                    history.push_back(format!("#{i} {} -> {shown}", show(&args)));
                    if history.len() > 25 {
                        history.pop_front();
                    }
                }
                Err(why) => panic!(
                    "hash differential mismatch (seed {seed}, resp3 {resp3}, thresholds {entries}/{value}, command #{i})\n\
                     command: {}\n{why}\n--- previous commands (reply from redis) ---\n{}",
                    show(&args),
                    history.iter().cloned().collect::<Vec<_>>().join("\n"),
                ),
            }
        }
        // Final state of every key.
        for key in KEYS {
            let k = key.as_bytes();
            let state = |con: &mut redis::Connection| {
                let ty = exec(con, redis::cmd("TYPE").arg(k));
                let enc = encoding(con, k);
                let mut pairs: Vec<_> = hash_contents(con, k).into_iter().collect();
                pairs.sort();
                (ty, enc, pairs)
            };
            let want = state(&mut r.reference.con);
            for t in r.targets.iter_mut() {
                assert_eq!(
                    want,
                    state(&mut t.con),
                    "final state of {key:?} differs (seed {seed}, target `{}`)",
                    t.server.label()
                );
            }
        }
        let s = r.stats;
        total.commands += s.commands;
        total.errors += s.errors;
        total.wrongtype += s.wrongtype;
        total.unordered += s.unordered;
        total.scans_continued += s.scans_continued;
        total.random_checked += s.random_checked;
        total.hashtable_seen += s.hashtable_seen;
    }
    eprintln!(
        "hash streams (resp3 {resp3}, tiny {tiny}): {} seeds x {commands} in {:?}: {total:?}",
        seeds.len(),
        started.elapsed()
    );
    assert!(total.errors > 0 && total.wrongtype > 0, "{total:?}");
    assert!(
        total.errors * 3 < total.commands,
        "too many errors: {total:?}"
    );
    assert!(
        total.hashtable_seen > 0 && total.random_checked > 0,
        "{total:?}"
    );
}

/// The fixed seeds plus `RINGKV_DIFF_EXTRA_SEEDS=N` more
/// (`base*1000 + 1 ..= base*1000 + N`).
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
fn diff_hash_default_thresholds() {
    run_streams(&seeds(&[1, 2, 3], 1), 1500, false, false);
}

#[test]
fn diff_hash_tiny_thresholds() {
    run_streams(&seeds(&[11, 12, 13, 14], 2), 1500, false, true);
}

#[test]
fn diff_hash_resp3() {
    run_streams(&seeds(&[21, 22], 3), 1500, true, true);
    run_streams(&seeds(&[23], 4), 1500, true, false);
}
