//! Differential tests of the set family: ringkv (`--shards 1` and
//! `--shards 2`) against a real redis-server 7.0.
//!
//! * Seeded random streams (`StdRng`, fixed seeds) of SADD SREM SCARD
//!   SISMEMBER SMISMEMBER SMEMBERS SRANDMEMBER SPOP SMOVE SINTER SINTERCARD
//!   SINTERSTORE SUNION SUNIONSTORE SDIFF SDIFFSTORE SSCAN and OBJECT
//!   ENCODING, with invalid counts/cursors/options, wrong arity, string keys
//!   (WRONGTYPE) and DEL, over a small key space: untagged keys land on
//!   both shards (so multi-key commands take the cross-shard path) and
//!   `{t}` keys share one.
//! * Members mix small and huge integers (intsets of every width),
//!   strings that look like integers but are not (`007`, `-0`, `+1`, ...)
//!   and plain strings, so sets convert intset -> hashtable; one seed
//!   lowers `set-max-intset-entries` to 4 so sets also convert by size.
//! * Replies are compared exactly (reply type included: RESP3 `~` sets in
//!   the RESP3 run), except unordered ones (SMEMBERS, SINTER, SUNION,
//!   SDIFF, SSCAN's members), which are compared as sorted lists, and the
//!   random ones: SRANDMEMBER / SPOP replies are checked by type, size,
//!   distinctness (positive counts) and membership in the reference's set.
//!   After an SPOP the popped members differ between servers, so the key is
//!   re-synchronised (members and encoding) from the reference.
//! * SSCAN is also driven to completion with small COUNTs on each server
//!   and the union of members compared.
//! * After each seed every key's TYPE, members and OBJECT ENCODING are
//!   compared.

use std::collections::{BTreeSet, VecDeque};

use crate::common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use redis::Value;

/// Untagged keys spread over the shards; `{t}` keys share one shard.
/// Keys starting with `i` (after any tag) get integer members mostly.
const KEYS: [&str; 11] = [
    "s0", "s1", "s2", "i0", "i1", "{t}a", "{t}b", "{t}i", "str", "{t}str", "none",
];

/// How a reply is compared.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Cmp {
    Exact,
    /// An array/set of members in unspecified order.
    Unordered,
    /// SSCAN: the cursor exactly, the members in any order.
    Scan,
    /// SRANDMEMBER / SPOP: random members of the key's set.
    Random {
        distinct: bool,
        pops: bool,
    },
    /// A client-side SSCAN loop with this COUNT, compared as a union.
    ScanLoop,
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

    fn key(&mut self) -> String {
        self.pick(&KEYS).to_string()
    }

    fn member(&mut self, key: &str) -> String {
        let ints = key.trim_start_matches("{t}").starts_with('i');
        let r = self.rng.gen_range(0..100);
        if ints && r < 93 || r < 55 {
            return self.rng.gen_range(-5i64..=25).to_string();
        }
        match r {
            55..=61 => self
                .pick(&[
                    "70000",
                    "-70000",
                    "2147483648",
                    "-9223372036854775808",
                    "9223372036854775807",
                ])
                .to_string(),
            62..=81 => self.pick(&["a", "b", "c", "d", "e", "f"]).to_string(),
            82..=91 => self
                .pick(&["007", "-0", "+1", "", "1.5", "x y", "9223372036854775808"])
                .to_string(),
            _ => format!("m{}", self.rng.gen_range(0..40)),
        }
    }

    fn members(&mut self, key: &str, min: usize, max: usize) -> Vec<String> {
        let n = self.rng.gen_range(min..=max);
        (0..n).map(|_| self.member(key)).collect()
    }

    fn keys(&mut self, min: usize, max: usize) -> Vec<String> {
        let n = self.rng.gen_range(min..=max);
        (0..n).map(|_| self.key()).collect()
    }

    fn command(&mut self) -> (Vec<String>, Cmp) {
        let key = self.key();
        let c = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let with = |name: &str, rest: Vec<String>| {
            let mut v = vec![name.to_string()];
            v.extend(rest);
            v
        };
        let r = self.rng.gen_range(0..100);
        match r {
            0..=17 => {
                let mut v = c(&["SADD", &key]);
                v.extend(self.members(&key, 1, 4));
                (v, Cmp::Exact)
            }
            18..=25 => {
                let mut v = c(&["SREM", &key]);
                v.extend(self.members(&key, 1, 3));
                (v, Cmp::Exact)
            }
            26..=28 => (c(&["SCARD", &key]), Cmp::Exact),
            29..=32 => {
                let m = self.member(&key);
                (c(&["SISMEMBER", &key, &m]), Cmp::Exact)
            }
            33..=35 => {
                let mut v = c(&["SMISMEMBER", &key]);
                v.extend(self.members(&key, 1, 4));
                (v, Cmp::Exact)
            }
            36..=40 => (c(&["SMEMBERS", &key]), Cmp::Unordered),
            41..=46 => {
                let count = match self.rng.gen_range(0..100) {
                    0..=14 => None,
                    15..=19 => Some(
                        self.pick(&["abc", "-9223372036854775808", "1.5"])
                            .to_string(),
                    ),
                    _ => Some(self.rng.gen_range(-6i64..=12).to_string()),
                };
                let distinct = count.as_deref().is_none_or(|c| !c.starts_with('-'));
                let mut v = c(&["SRANDMEMBER", &key]);
                v.extend(count);
                if self.pct(3) {
                    v.push("1".into());
                }
                (
                    v,
                    Cmp::Random {
                        distinct,
                        pops: false,
                    },
                )
            }
            47..=52 => {
                let count = match self.rng.gen_range(0..100) {
                    0..=29 => None,
                    30..=34 => Some(self.pick(&["-1", "abc", "-0"]).to_string()),
                    _ => Some(self.rng.gen_range(0i64..=10).to_string()),
                };
                let mut v = c(&["SPOP", &key]);
                v.extend(count);
                if self.pct(3) {
                    v.push("1".into());
                }
                (
                    v,
                    Cmp::Random {
                        distinct: true,
                        pops: true,
                    },
                )
            }
            53..=58 => {
                let dst = if self.pct(10) {
                    key.clone()
                } else {
                    self.key()
                };
                let m = self.member(&key);
                (c(&["SMOVE", &key, &dst, &m]), Cmp::Exact)
            }
            59..=63 => (with("SINTER", self.keys(1, 4)), Cmp::Unordered),
            64..=67 => (with("SUNION", self.keys(1, 4)), Cmp::Unordered),
            68..=72 => (with("SDIFF", self.keys(1, 5)), Cmp::Unordered),
            73..=81 => {
                let name = self.pick(&["SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE", "SDIFFSTORE"]);
                let mut v = c(&[name, &key]);
                // Repeated subtrahends make SDIFF pick its second algorithm
                // (which leaves a hashtable even when only integers remain).
                v.extend(self.keys(1, 5));
                if name == "SDIFFSTORE" && v.len() >= 4 && self.pct(40) {
                    let k = v[v.len() - 1].clone();
                    v.push(k.clone());
                    v.push(k);
                }
                (v, Cmp::Exact)
            }
            82..=86 => {
                let keys = self.keys(1, 4);
                let numkeys = match self.rng.gen_range(0..100) {
                    0..=4 => self.pick(&["0", "-1", "abc", "9"]).to_string(),
                    _ => keys.len().to_string(),
                };
                let mut v = c(&["SINTERCARD", &numkeys]);
                v.extend(keys);
                match self.rng.gen_range(0..100) {
                    0..=49 => {}
                    50..=89 => {
                        v.push(self.pick(&["LIMIT", "limit"]).into());
                        v.push(self.rng.gen_range(0..5).to_string());
                    }
                    _ => {
                        let extra = self.pick(&["LIMIT", "LIMIT -1", "FOO 1", "LIMIT x"]);
                        v.extend(extra.split(' ').map(String::from));
                    }
                }
                (v, Cmp::Exact)
            }
            87..=90 => {
                if self.pct(30) {
                    let count = self.rng.gen_range(1..4).to_string();
                    return (c(&["SSCAN", &key, "0", "COUNT", &count]), Cmp::ScanLoop);
                }
                let cursor = if self.pct(8) {
                    self.pick(&["abc", "-", " 1"])
                } else {
                    "0"
                };
                let mut v = c(&["SSCAN", &key, cursor]);
                if self.pct(40) {
                    v.push("MATCH".into());
                    v.push(self.pick(&["*", "1*", "?", "[a-c]", "*0", "-*"]).into());
                }
                match self.rng.gen_range(0..100) {
                    0..=4 => v.extend(c(&[self.pick(&["COUNT", "TYPE", "NOPE"]), "0"])),
                    5..=7 => v.extend(c(&["COUNT", "x"])),
                    _ => v.extend(c(&["COUNT", "1000"])),
                }
                (v, Cmp::Scan)
            }
            91..=94 => (c(&["OBJECT", "ENCODING", &key]), Cmp::Exact),
            95 => {
                let k = if self.pct(50) {
                    self.pick(&["str", "{t}str"]).to_string()
                } else {
                    key
                };
                (c(&["SET", &k, "v"]), Cmp::Exact)
            }
            96..=97 => (c(&["DEL", &key]), Cmp::Exact),
            _ => {
                // Wrong arity.
                let v = self.pick(&[
                    "SADD k",
                    "SREM k",
                    "SCARD",
                    "SCARD a b",
                    "SISMEMBER k",
                    "SMISMEMBER k",
                    "SMEMBERS",
                    "SRANDMEMBER",
                    "SPOP",
                    "SMOVE a b",
                    "SINTER",
                    "SINTERCARD 1",
                    "SINTERSTORE d",
                    "SUNIONSTORE d",
                    "SDIFFSTORE d",
                    "SSCAN k",
                ]);
                (v.split(' ').map(|s| s.to_string()).collect(), Cmp::Exact)
            }
        }
    }
}

fn to_cmd(args: &[String]) -> redis::Cmd {
    let mut c = redis::cmd(&args[0]);
    for a in &args[1..] {
        c.arg(a.as_bytes());
    }
    c
}

/// The elements of an array or set reply.
fn elements(v: &Value) -> Option<&Vec<Value>> {
    match v {
        Value::Array(a) | Value::Set(a) => Some(a),
        _ => None,
    }
}

fn bytes(v: &Value) -> Vec<u8> {
    match v {
        Value::BulkString(b) => b.clone(),
        other => panic!("expected a bulk string, got {other:?}"),
    }
}

/// Sorts the members of an unordered reply (keeping its type).
fn sorted(v: &Value) -> Value {
    match v {
        Value::Array(a) => {
            let mut a = a.clone();
            a.sort_by_key(bytes);
            Value::Array(a)
        }
        Value::Set(a) => {
            let mut a = a.clone();
            a.sort_by_key(bytes);
            Value::Set(a)
        }
        other => other.clone(),
    }
}

fn normalize(cmp: Cmp, r: &Reply) -> Reply {
    match (cmp, r) {
        (Cmp::Unordered, Ok(v)) => Ok(sorted(v)),
        (Cmp::Scan, Ok(Value::Array(parts))) if parts.len() == 2 => {
            Ok(Value::Array(vec![parts[0].clone(), sorted(&parts[1])]))
        }
        _ => r.clone(),
    }
}

fn run_args(con: &mut redis::Connection, args: &[&str]) -> Reply {
    exec(con, &cmd(args))
}

/// The members of `key` (sorted) when it holds a set.
fn set_members(con: &mut redis::Connection, key: &str) -> Option<BTreeSet<Vec<u8>>> {
    match run_args(con, &["TYPE", key]) {
        Ok(Value::SimpleString(t)) if t == "set" => {}
        _ => return None,
    }
    let r = run_args(con, &["SMEMBERS", key]).expect("SMEMBERS");
    Some(
        elements(&r)
            .expect("SMEMBERS reply")
            .iter()
            .map(bytes)
            .collect(),
    )
}

fn encoding(con: &mut redis::Connection, key: &str) -> Reply {
    run_args(con, &["OBJECT", "ENCODING", key])
}

/// Checks a SRANDMEMBER/SPOP reply against the reference's: same type and
/// size, members taken from `pool` (the key's members before the command),
/// distinct where Redis guarantees it.
fn check_random(expected: &Reply, got: &Reply, pool: &BTreeSet<Vec<u8>>, distinct: bool) -> bool {
    match (expected, got) {
        (Err(a), Err(b)) => a == b,
        (Ok(Value::Nil), Ok(Value::Nil)) => true,
        (Ok(Value::BulkString(_)), Ok(Value::BulkString(b))) => pool.contains(b),
        (Ok(a), Ok(b)) => {
            let same_kind = matches!(
                (a, b),
                (Value::Array(_), Value::Array(_)) | (Value::Set(_), Value::Set(_))
            );
            let (Some(ea), Some(eb)) = (elements(a), elements(b)) else {
                return false;
            };
            let members: Vec<Vec<u8>> = eb.iter().map(bytes).collect();
            let uniq: BTreeSet<&Vec<u8>> = members.iter().collect();
            same_kind
                && ea.len() == eb.len()
                && members.iter().all(|m| pool.contains(m))
                && (!distinct || uniq.len() == members.len())
        }
        _ => false,
    }
}

/// Runs SSCAN from cursor 0 to the end with `count`; returns the members.
fn scan_all(
    con: &mut redis::Connection,
    key: &str,
    count: &str,
) -> Result<BTreeSet<Vec<u8>>, String> {
    let mut cursor = b"0".to_vec();
    let mut seen = BTreeSet::new();
    for _ in 0..10_000 {
        let r = exec(
            con,
            redis::cmd("SSCAN")
                .arg(key)
                .arg(&cursor[..])
                .arg("COUNT")
                .arg(count),
        )?;
        let Value::Array(parts) = r else {
            panic!("SSCAN reply {r:?}");
        };
        cursor = bytes(&parts[0]);
        for m in elements(&parts[1]).expect("SSCAN members") {
            seen.insert(bytes(m));
        }
        if cursor == b"0" {
            return Ok(seen);
        }
    }
    panic!("SSCAN of {key} did not finish");
}

/// Makes `key` on `target` hold what it holds on the reference, encoding
/// included (after an SPOP the two popped different members).
fn resync(reference: &mut redis::Connection, target: &mut redis::Connection, key: &str) {
    let want = set_members(reference, key);
    let want_enc = encoding(reference, key);
    if set_members(target, key) == want && encoding(target, key) == want_enc {
        return;
    }
    run_args(target, &["DEL", key]).expect("DEL");
    let Some(want) = want else { return };
    let members: Vec<String> = want
        .iter()
        .map(|m| String::from_utf8(m.clone()).unwrap())
        .collect();
    let hashtable = want_enc == Ok(Value::BulkString(b"hashtable".to_vec()));
    let tmp = "\u{1}resync";
    if hashtable {
        run_args(target, &["SADD", key, tmp]).expect("SADD");
    }
    let mut args = vec!["SADD", key];
    args.extend(members.iter().map(|s| s.as_str()));
    run_args(target, &args).expect("SADD");
    if hashtable {
        run_args(target, &["SREM", key, tmp]).expect("SREM");
    }
    assert_eq!(encoding(target, key), want_enc, "resync of {key}");
}

/// After SPOP's "keep the remainder" strategy: the remaining members were
/// re-added to a fresh set, so the encoding follows from them alone.
fn check_rebuilt(con: &mut redis::Connection, key: &str, max: usize) {
    let Some(left) = set_members(con, key) else {
        return;
    };
    let ints = left.iter().all(|m| {
        std::str::from_utf8(m)
            .ok()
            .and_then(|s| s.parse::<i64>().ok())
            .is_some_and(|n| n.to_string().as_bytes() == &m[..])
    });
    let want = if ints && left.len() <= max {
        "intset"
    } else {
        "hashtable"
    };
    assert_eq!(
        encoding(con, key),
        Ok(Value::BulkString(want.as_bytes().to_vec())),
        "encoding after SPOP rebuilt {key} = {left:?}"
    );
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

/// Per-key state at the end of a seed: key, TYPE, members, encoding.
type KeyState = (String, Reply, Option<BTreeSet<Vec<u8>>>, Reply);

/// The state of every key of the stream.
fn snapshot(con: &mut redis::Connection) -> Vec<KeyState> {
    KEYS.iter()
        .map(|k| {
            (
                k.to_string(),
                run_args(con, &["TYPE", k]),
                set_members(con, k),
                encoding(con, k),
            )
        })
        .collect()
}

fn run_streams(seeds: &[u64], commands: usize, resp3: bool, max_intset: Option<&str>) {
    // The stream needs untagged keys on both shards for cross-shard paths.
    let shards: BTreeSet<usize> = ["s0", "s1", "s2", "i0", "i1"]
        .iter()
        .map(|k| shard_of(k, 2))
        .collect();
    assert_eq!(shards.len(), 2, "keys must span both shards");
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
    if let Some(m) = max_intset {
        for t in std::iter::once(&mut reference).chain(targets.iter_mut()) {
            assert_eq!(
                run_args(&mut t.con, &["CONFIG", "SET", "set-max-intset-entries", m]),
                Ok(Value::Okay)
            );
        }
        // Other shards pick configuration changes up on their next cron.
        std::thread::sleep(std::time::Duration::from_millis(400));
    }
    let max: usize = max_intset.map_or(512, |m| m.parse().unwrap());
    let (mut random_checked, mut errors, mut cross, mut rebuilt) = (0usize, 0, 0, 0);
    for &seed in seeds {
        for t in std::iter::once(&mut reference).chain(targets.iter_mut()) {
            assert_eq!(run_args(&mut t.con, &["FLUSHALL"]), Ok(Value::Okay));
        }
        let mut gen = Gen {
            rng: StdRng::seed_from_u64(seed),
        };
        let mut history: VecDeque<String> = VecDeque::new();
        for i in 0..commands {
            let (args, cmp) = gen.command();
            let shown = args.join(" ");
            let key_of_random = args.get(1).cloned().unwrap_or_default();
            let spans = args[1..]
                .iter()
                .filter(|a| KEYS.contains(&a.as_str()))
                .map(|k| shard_of(k, 2))
                .collect::<BTreeSet<_>>()
                .len()
                > 1;
            cross += spans as usize;
            if cmp == Cmp::ScanLoop {
                let count = args[4].clone();
                let want = scan_all(&mut reference.con, &key_of_random, &count);
                for t in targets.iter_mut() {
                    let got = scan_all(&mut t.con, &key_of_random, &count);
                    assert_eq!(
                        want,
                        got,
                        "SSCAN loop mismatch (seed {seed}, command #{i}, target `{}`): {shown}",
                        t.server.label()
                    );
                }
                continue;
            }
            let pool = match cmp {
                Cmp::Random { .. } => {
                    set_members(&mut reference.con, &key_of_random).unwrap_or_default()
                }
                _ => BTreeSet::new(),
            };
            let c = to_cmd(&args);
            // SPOP's third strategy (few members stay) rebuilds the rest
            // from scratch: an intset iff they are all integers that fit.
            let rebuilds = match (cmp, args.get(2).and_then(|a| a.parse::<usize>().ok())) {
                (Cmp::Random { pops: true, .. }, Some(n)) if args.len() == 3 => {
                    n < pool.len() && (pool.len() - n) * 5 <= n
                }
                _ => false,
            };
            let expected = normalize(cmp, &exec(&mut reference.con, &c));
            if rebuilds {
                check_rebuilt(&mut reference.con, &key_of_random, max);
                rebuilt += 1;
            }
            errors += expected.is_err() as usize;
            for t in targets.iter_mut() {
                let got = normalize(cmp, &exec(&mut t.con, &c));
                let ok = match cmp {
                    Cmp::Random { distinct, .. } => {
                        random_checked += 1;
                        check_random(&expected, &got, &pool, distinct)
                    }
                    _ => expected == got,
                };
                if !ok {
                    panic!(
                        "set differential mismatch (seed {seed}, command #{i}, target `{}`, resp3 {resp3})\n\
                         command: {shown}\nredis:   {expected:?}\nringkv:  {got:?}\n\
                         --- previous commands (reply from redis) ---\n{}",
                        t.server.label(),
                        history.iter().cloned().collect::<Vec<_>>().join("\n")
                    );
                }
                if rebuilds {
                    check_rebuilt(&mut t.con, &key_of_random, max);
                }
                if let Cmp::Random { pops: true, .. } = cmp {
                    resync(&mut reference.con, &mut t.con, &key_of_random);
                }
            }
            history.push_back(format!("#{i} {shown} -> {expected:?}"));
            if history.len() > 30 {
                history.pop_front();
            }
        }
        let want = snapshot(&mut reference.con);
        for t in targets.iter_mut() {
            assert_eq!(
                want,
                snapshot(&mut t.con),
                "final state differs (seed {seed}, target `{}`)",
                t.server.label()
            );
        }
    }
    let total = seeds.len() * commands;
    eprintln!(
        "diff_set: {} seeds x {commands} (resp3 {resp3}): {errors} errors, {random_checked} random checks, \
         {cross} cross-shard, {rebuilt} SPOP rebuilds",
        seeds.len()
    );
    assert!(
        errors > 0 && errors * 4 < total,
        "error share off: {errors}/{total}"
    );
    assert!(random_checked > 0 && cross > total / 10);
}

#[test]
fn differential_sets_resp2() {
    run_streams(&[1, 2, 3], 2500, false, None);
}

#[test]
fn differential_sets_resp3() {
    run_streams(&[11], 2000, true, None);
}

/// A small intset limit: sets convert by size, *STORE results and SPOP's
/// rebuilt remainder pick their encodings by size too.
#[test]
fn differential_sets_small_intsets() {
    run_streams(&[21, 22], 2000, false, Some("4"));
}

/// Fixed scripts for edge cases a random stream rarely reaches, compared
/// exactly (unordered replies sorted). Each script runs with plain key
/// names (spread over the shards) and with every key in one `{t}` slot.
#[test]
fn differential_sets_scripted() {
    let mut many = vec!["SADD".to_string(), "@iset".to_string()];
    many.extend((1..=512).map(|i| i.to_string()));
    let many = many.join(" ");
    let script: Vec<&str> = vec![
        // SDIFF's second algorithm keeps a hashtable of integers.
        "SADD @big 1 2 3 4 5 6 7 8 9 10 x",
        "SADD @bx x",
        "SADD @by y",
        "SDIFFSTORE @d @big @bx @by",
        "OBJECT ENCODING @d",
        "SDIFFSTORE @d @big @bx",
        "OBJECT ENCODING @d",
        "SDIFFSTORE @d @big @bx @bx @bx",
        "OBJECT ENCODING @d",
        "SDIFF @big @bx @by",
        "SDIFF @big @big",
        "SDIFF @nokey @big",
        "SINTERSTORE @d @big @bx",
        "OBJECT ENCODING @d",
        "SINTERSTORE @d @big @big",
        "OBJECT ENCODING @d",
        "SUNIONSTORE @d @bx @by @nokey",
        "SMEMBERS @d",
        "SINTERCARD 2 @big @big LIMIT 3",
        "SINTERCARD 3 @big @bx @nokey",
        "SINTERCARD 1 @big LIMIT 0",
        // Stores overwrite any type; empty results delete.
        "SET @str v",
        "SUNIONSTORE @str @bx",
        "TYPE @str",
        "OBJECT ENCODING @str",
        "SET @str v",
        "SINTERSTORE @str @big @nokey",
        "EXISTS @str",
        "SET @str v",
        "SDIFFSTORE @str @bx @bx",
        "EXISTS @str",
        "SET @str v",
        "SINTER @nokey @str",
        "SUNION @big @str",
        "SDIFFSTORE @d @str",
        "SINTERCARD 2 @nokey @str",
        "SMOVE @big @str 1",
        "SMOVE @str @big 1",
        "SMOVE @nokey @str 1",
        // SMOVE creates the destination with setTypeCreate's encoding.
        "SMOVE @big @n1 5",
        "OBJECT ENCODING @n1",
        "SMOVE @big @n2 x",
        "OBJECT ENCODING @n2",
        "SMOVE @big @n1 5",
        "SMOVE @big @big 6",
        "SMOVE @big @big 5",
        "SMOVE @bx @n1 x",
        "EXISTS @bx",
        "OBJECT ENCODING @n1",
        "SMEMBERS @n1",
        // Intset widths and integer look-alikes.
        "SADD @w 1 70000 -9223372036854775808 9223372036854775807",
        "OBJECT ENCODING @w",
        "SMEMBERS @w",
        "SSCAN @w 12345 MATCH *0*",
        "SISMEMBER @w 070000",
        "SMISMEMBER @w 1 2 70000 -0",
        "SADD @w -0",
        "OBJECT ENCODING @w",
        "SREM @w -0 1 70000 -9223372036854775808 9223372036854775807",
        "EXISTS @w",
        "SSCAN @big 0 MATCH 1* COUNT 100",
        "SSCAN @n1 0 COUNT 100 MATCH ?",
        "SSCAN @nokey abc",
        "SSCAN @big 0 TYPE set",
        // Size conversions.
        &many,
        "OBJECT ENCODING @iset",
        "SADD @iset 0",
        "OBJECT ENCODING @iset",
        "SUNIONSTORE @d @iset",
        "OBJECT ENCODING @d",
        "SINTERSTORE @d @iset @iset",
        "OBJECT ENCODING @d",
        "SRANDMEMBER @iset -9223372036854775808",
        "SRANDMEMBER @iset 513",
        "SPOP @iset 0",
        "SPOP @iset -1",
        "SPOP @iset 1000",
        "EXISTS @iset",
    ];
    let Some(reference) = Server::redis() else {
        return;
    };
    for resp3 in [false, true] {
        let mut rcon = connect(&reference, resp3);
        let servers: Vec<Server> = SHARD_COUNTS
            .iter()
            .map(|&n| Server::ringkv(n, &[]))
            .collect();
        let mut cons: Vec<redis::Connection> = servers.iter().map(|s| connect(s, resp3)).collect();
        for prefix in ["", "{t}"] {
            for con in std::iter::once(&mut rcon).chain(cons.iter_mut()) {
                assert_eq!(run_args(con, &["FLUSHALL"]), Ok(Value::Okay));
            }
            let mut spread = BTreeSet::new();
            for line in &script {
                let args: Vec<String> = line
                    .split(' ')
                    .map(|a| match a.strip_prefix('@') {
                        Some(k) => {
                            let k = format!("{prefix}{k}");
                            spread.insert(shard_of(&k, 2));
                            k
                        }
                        None => a.to_string(),
                    })
                    .collect();
                let name = args[0].to_ascii_uppercase();
                let cmp = match name.as_str() {
                    "SMEMBERS" | "SINTER" | "SUNION" | "SDIFF" | "SPOP" | "SRANDMEMBER" => {
                        Cmp::Unordered
                    }
                    "SSCAN" => Cmp::Scan,
                    _ => Cmp::Exact,
                };
                let c = to_cmd(&args);
                let want = normalize(cmp, &exec(&mut rcon, &c));
                for (con, server) in cons.iter_mut().zip(&servers) {
                    let got = normalize(cmp, &exec(con, &c));
                    assert_eq!(
                        want,
                        got,
                        "scripted mismatch on `{}` (resp3 {resp3}): {}",
                        server.label(),
                        args.join(" ")
                    );
                }
            }
            assert_eq!(spread.len(), if prefix.is_empty() { 2 } else { 1 });
        }
    }
}

/// Cross-shard commands are atomic: while one client moves a member back
/// and forth between two sets on different shards (SMOVE), another never
/// sees it in both or in neither (SUNION, SINTERCARD, SUNIONSTORE).
#[test]
fn cross_shard_commands_are_atomic() {
    let (a, b) = keys_on_different_shards("atom:");
    let server = Server::ringkv(2, &[]);
    let mut con = server.client();
    assert_eq!(run_args(&mut con, &["SADD", &a, "m", "x"]), Ok(int(2)));
    assert_eq!(run_args(&mut con, &["SADD", &b, "y"]), Ok(int(1)));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mover = {
        let (a, b, stop) = (a.clone(), b.clone(), stop.clone());
        let mut con = server.client();
        std::thread::spawn(move || {
            let mut moves = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let (from, to) = if moves % 2 == 0 { (&a, &b) } else { (&b, &a) };
                assert_eq!(run_args(&mut con, &["SMOVE", from, to, "m"]), Ok(int(1)));
                moves += 1;
            }
            moves
        })
    };
    for i in 0..1500 {
        let u = run_args(&mut con, &["SUNION", &a, &b]).expect("SUNION");
        assert_eq!(elements(&u).map(|e| e.len()), Some(3), "round {i}: {u:?}");
        assert_eq!(run_args(&mut con, &["SINTERCARD", "2", &a, &b]), Ok(int(0)));
        assert_eq!(
            run_args(&mut con, &["SUNIONSTORE", "dst", &a, &b]),
            Ok(int(3))
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let moves = mover.join().expect("mover thread");
    assert!(moves > 0);
}
