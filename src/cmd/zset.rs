//! The sorted set family (Redis's t_zset.c): ZADD and friends, ranges by
//! rank, score and lex, pops (blocking too), set operations and ZSCAN.
//!
//! Every handler follows Redis 7.0's order of checks (syntax, numbers, key
//! lookups and types) so that error replies match exactly. Multi-key
//! commands have a coordinator for keys spread over several shards; it
//! runs the whole command under one [`Shard::tx`], so no client observes
//! half of it.
//!
//! Blocking commands (BZPOPMIN, BZPOPMAX, BZMPOP) check their arguments,
//! timeout included, first (as Redis does, so a bad timeout is an error
//! even when a key has data), then serve like their non-blocking twins;
//! when no key has data they ask the keyspace to park the client
//! ([`Keyspace::block`], on the coordinator's keyspace for keys over
//! several shards) and write no reply: the dispatcher re-runs them when a
//! key gets data. Everything that adds members calls
//! [`Keyspace::signal_ready`].
//!
//! Sets are accepted as inputs of ZUNION/ZINTER/ZDIFF (+STORE) and
//! ZINTERCARD, every member scoring 1, as in Redis.

use super::{
    numkeys_positions, CmdSpec, Ctx, GetKeysFn, Run, SrvCtx, BLOCKING, DENYOOM, FAST, NOSCRIPT,
    READONLY, WRITE,
};
use crate::notify as N;
use crate::resp::Out;
use crate::shard::keyspace::Keyspace;
use crate::shard::{Shard, Tx};
use crate::types::zset::{AddFlags, Added, LexRange, Limits, ScoreRange, ZSet};
use crate::types::Value;
use crate::util::{eq_ic, fmt_double, glob_match, parse_i64};

const E_SYNTAX: &str = "syntax error";
const E_NOT_INT: &str = "value is not an integer or out of range";
const E_SCORE_RANGE: &str = "min or max is not a float";
const E_LEX_RANGE: &str = "min or max not valid string range item";
const E_NAN: &str = "resulting score is not a number (NaN)";

// ----- the command table -----------------------------------------------------

#[allow(clippy::too_many_arguments)]
const fn spec(
    name: &'static str,
    arity: i32,
    flags: u32,
    keys: (i32, i32, i32),
    acl: &'static str,
    since: &'static str,
    run: Run,
    summary: &'static str,
    getkeys: Option<GetKeysFn>,
) -> CmdSpec {
    CmdSpec {
        name,
        arity,
        flags,
        first_key: keys.0,
        last_key: keys.1,
        step: keys.2,
        group: "sorted-set",
        acl,
        summary,
        since,
        run,
        subs: &[],
        getkeys,
    }
}

const ONE: (i32, i32, i32) = (1, 1, 1);
const NONE: (i32, i32, i32) = (0, 0, 0);
const R_FAST: &str = "@read @sortedset @fast";
const R_SLOW: &str = "@read @sortedset @slow";
const W_FAST: &str = "@write @sortedset @fast";
const W_SLOW: &str = "@write @sortedset @slow";
const B_FAST: &str = "@write @sortedset @fast @blocking";
const B_SLOW: &str = "@write @sortedset @slow @blocking";

fn keys_at_1(args: &[&[u8]]) -> Vec<usize> {
    numkeys_positions(args, 1, &[])
}
fn keys_store(args: &[&[u8]]) -> Vec<usize> {
    numkeys_positions(args, 2, &[1])
}
fn keys_at_2(args: &[&[u8]]) -> Vec<usize> {
    numkeys_positions(args, 2, &[])
}

pub static COMMANDS: &[CmdSpec] = &[
    spec("bzmpop", -5, WRITE | BLOCKING, NONE, B_SLOW, "7.0.0",
        Run::KeyMulti(bzmpop, bzmpop_multi),
        "Remove and return members with scores in a sorted set or block until one is available",
        Some(keys_at_2)),
    spec("bzpopmax", -3, WRITE | NOSCRIPT | FAST | BLOCKING, (1, -2, 1), B_FAST, "5.0.0",
        Run::KeyMulti(bzpopmax, bzpopmax_multi),
        "Remove and return the member with the highest score from one or more sorted sets, or block until one is available",
        None),
    spec("bzpopmin", -3, WRITE | NOSCRIPT | FAST | BLOCKING, (1, -2, 1), B_FAST, "5.0.0",
        Run::KeyMulti(bzpopmin, bzpopmin_multi),
        "Remove and return the member with the lowest score from one or more sorted sets, or block until one is available",
        None),
    spec("zadd", -4, WRITE | DENYOOM | FAST, ONE, W_FAST, "1.2.0", Run::Key(zadd),
        "Add one or more members to a sorted set, or update its score if it already exists", None),
    spec("zcard", 2, READONLY | FAST, ONE, R_FAST, "1.2.0", Run::Key(zcard),
        "Get the number of members in a sorted set", None),
    spec("zcount", 4, READONLY | FAST, ONE, R_FAST, "2.0.0", Run::Key(zcount),
        "Count the members in a sorted set with scores within the given values", None),
    spec("zdiff", -3, READONLY, NONE, R_SLOW, "6.2.0", Run::KeyMulti(zdiff, zdiff_multi),
        "Subtract multiple sorted sets", Some(keys_at_1)),
    spec("zdiffstore", -4, WRITE | DENYOOM, ONE, W_SLOW, "6.2.0",
        Run::KeyMulti(zdiffstore, zdiffstore_multi),
        "Subtract multiple sorted sets and store the resulting sorted set in a new key",
        Some(keys_store)),
    spec("zincrby", 4, WRITE | DENYOOM | FAST, ONE, W_FAST, "1.2.0", Run::Key(zincrby),
        "Increment the score of a member in a sorted set", None),
    spec("zinter", -3, READONLY, NONE, R_SLOW, "6.2.0", Run::KeyMulti(zinter, zinter_multi),
        "Intersect multiple sorted sets", Some(keys_at_1)),
    spec("zintercard", -3, READONLY, NONE, R_SLOW, "7.0.0",
        Run::KeyMulti(zintercard, zintercard_multi),
        "Intersect multiple sorted sets and return the cardinality of the result",
        Some(keys_at_1)),
    spec("zinterstore", -4, WRITE | DENYOOM, ONE, W_SLOW, "2.0.0",
        Run::KeyMulti(zinterstore, zinterstore_multi),
        "Intersect multiple sorted sets and store the resulting sorted set in a new key",
        Some(keys_store)),
    spec("zlexcount", 4, READONLY | FAST, ONE, R_FAST, "2.8.9", Run::Key(zlexcount),
        "Count the number of members in a sorted set between a given lexicographical range",
        None),
    spec("zmpop", -4, WRITE, NONE, W_SLOW, "7.0.0", Run::KeyMulti(zmpop, zmpop_multi),
        "Remove and return members with scores in a sorted set", Some(keys_at_1)),
    spec("zmscore", -3, READONLY | FAST, ONE, R_FAST, "6.2.0", Run::Key(zmscore),
        "Get the score associated with the given members in a sorted set", None),
    spec("zpopmax", -2, WRITE | FAST, ONE, W_FAST, "5.0.0", Run::Key(zpopmax),
        "Remove and return members with the highest scores in a sorted set", None),
    spec("zpopmin", -2, WRITE | FAST, ONE, W_FAST, "5.0.0", Run::Key(zpopmin),
        "Remove and return members with the lowest scores in a sorted set", None),
    spec("zrandmember", -2, READONLY, ONE, R_SLOW, "6.2.0", Run::Key(zrandmember),
        "Get one or multiple random elements from a sorted set", None),
    spec("zrange", -4, READONLY, ONE, R_SLOW, "1.2.0", Run::Key(zrange),
        "Return a range of members in a sorted set", None),
    spec("zrangebylex", -4, READONLY, ONE, R_SLOW, "2.8.9", Run::Key(zrangebylex),
        "Return a range of members in a sorted set, by lexicographical range", None),
    spec("zrangebyscore", -4, READONLY, ONE, R_SLOW, "1.0.5", Run::Key(zrangebyscore),
        "Return a range of members in a sorted set, by score", None),
    spec("zrangestore", -5, WRITE | DENYOOM, (1, 2, 1), W_SLOW, "6.2.0",
        Run::KeyMulti(zrangestore, zrangestore_multi),
        "Store a range of members from sorted set into another key", None),
    spec("zrank", 3, READONLY | FAST, ONE, R_FAST, "2.0.0", Run::Key(zrank),
        "Determine the index of a member in a sorted set", None),
    spec("zrem", -3, WRITE | FAST, ONE, W_FAST, "1.2.0", Run::Key(zrem),
        "Remove one or more members from a sorted set", None),
    spec("zremrangebylex", 4, WRITE, ONE, W_SLOW, "2.8.9", Run::Key(zremrangebylex),
        "Remove all members in a sorted set between the given lexicographical range", None),
    spec("zremrangebyrank", 4, WRITE, ONE, W_SLOW, "2.0.0", Run::Key(zremrangebyrank),
        "Remove all members in a sorted set within the given indexes", None),
    spec("zremrangebyscore", 4, WRITE, ONE, W_SLOW, "1.2.0", Run::Key(zremrangebyscore),
        "Remove all members in a sorted set within the given scores", None),
    spec("zrevrange", -4, READONLY, ONE, R_SLOW, "1.2.0", Run::Key(zrevrange),
        "Return a range of members in a sorted set, by index, with scores ordered from high to low",
        None),
    spec("zrevrangebylex", -4, READONLY, ONE, R_SLOW, "2.8.9", Run::Key(zrevrangebylex),
        "Return a range of members in a sorted set, by lexicographical range, ordered from higher to lower strings",
        None),
    spec("zrevrangebyscore", -4, READONLY, ONE, R_SLOW, "2.2.0", Run::Key(zrevrangebyscore),
        "Return a range of members in a sorted set, by score, with scores ordered from high to low",
        None),
    spec("zrevrank", 3, READONLY | FAST, ONE, R_FAST, "2.0.0", Run::Key(zrevrank),
        "Determine the index of a member in a sorted set, with scores ordered from high to low",
        None),
    spec("zscan", -3, READONLY, ONE, R_SLOW, "2.8.0", Run::Key(zscan),
        "Incrementally iterate sorted sets elements and associated scores", None),
    spec("zscore", 3, READONLY | FAST, ONE, R_FAST, "1.2.0", Run::Key(zscore),
        "Get the score associated with the given member in a sorted set", None),
    spec("zunion", -3, READONLY, NONE, R_SLOW, "6.2.0", Run::KeyMulti(zunion, zunion_multi),
        "Add multiple sorted sets", Some(keys_at_1)),
    spec("zunionstore", -4, WRITE | DENYOOM, ONE, W_SLOW, "2.0.0",
        Run::KeyMulti(zunionstore, zunionstore_multi),
        "Add multiple sorted sets and store the resulting sorted set in a new key",
        Some(keys_store)),
];

// ----- number parsing --------------------------------------------------------

#[inline]
fn is_c_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// The result of [`strtod`].
struct Strtod {
    val: f64,
    /// Bytes consumed (0: no conversion).
    used: usize,
    /// The text was "inf"/"infinity" (an infinity that is no overflow).
    inf_literal: bool,
    /// The mantissa had a non-zero digit (a zero result is an underflow).
    nonzero: bool,
}

fn hex_val(c: u8) -> u64 {
    (c as char).to_digit(16).unwrap_or(0) as u64
}

/// The hexadecimal part of a C float after "0x": (value, bytes, nonzero).
fn strtod_hex(s: &[u8]) -> Option<(f64, usize, bool)> {
    let (mut mant, mut exp, mut j, mut digits, mut nonzero) = (0u64, 0i64, 0, 0, false);
    let mut frac = false;
    while j < s.len() {
        let c = s[j];
        if c == b'.' && !frac {
            frac = true;
        } else if c.is_ascii_hexdigit() {
            let d = hex_val(c);
            nonzero |= d != 0;
            if mant >> 56 == 0 {
                mant = mant * 16 + d;
                if frac {
                    exp -= 4;
                }
            } else if !frac {
                exp += 4;
            }
            digits += 1;
        } else {
            break;
        }
        j += 1;
    }
    if digits == 0 {
        return None;
    }
    if j < s.len() && (s[j] | 0x20) == b'p' {
        let mut k = j + 1;
        let neg = k < s.len() && s[k] == b'-';
        if k < s.len() && (s[k] == b'-' || s[k] == b'+') {
            k += 1;
        }
        if k < s.len() && s[k].is_ascii_digit() {
            let mut e: i64 = 0;
            while k < s.len() && s[k].is_ascii_digit() {
                e = (e * 10 + (s[k] - b'0') as i64).min(1 << 20);
                k += 1;
            }
            exp += if neg { -e } else { e };
            j = k;
        }
    }
    let v = (mant as f64) * 2f64.powi(exp.clamp(-2000, 2000) as i32);
    Some((v, j, nonzero))
}

/// C's `strtod` over `s` (which need not be NUL-terminated).
fn strtod(s: &[u8]) -> Strtod {
    let mut i = 0;
    while i < s.len() && is_c_space(s[i]) {
        i += 1;
    }
    let num_start = i;
    let mut neg = false;
    if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
        neg = s[i] == b'-';
        i += 1;
    }
    let rest = &s[i..];
    let starts = |p: &[u8]| rest.len() >= p.len() && rest[..p.len()].eq_ignore_ascii_case(p);
    if starts(b"inf") {
        let n = if starts(b"infinity") { 8 } else { 3 };
        return Strtod {
            val: if neg {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            },
            used: i + n,
            inf_literal: true,
            nonzero: true,
        };
    }
    if starts(b"nan") {
        let mut j = i + 3;
        if j < s.len() && s[j] == b'(' {
            let mut k = j + 1;
            while k < s.len() && (s[k].is_ascii_alphanumeric() || s[k] == b'_') {
                k += 1;
            }
            if k < s.len() && s[k] == b')' {
                j = k + 1;
            }
        }
        return Strtod {
            val: f64::NAN,
            used: j,
            inf_literal: false,
            nonzero: true,
        };
    }
    if rest.len() >= 2 && rest[0] == b'0' && (rest[1] | 0x20) == b'x' {
        if let Some((v, n, nonzero)) = strtod_hex(&rest[2..]) {
            return Strtod {
                val: if neg { -v } else { v },
                used: i + 2 + n,
                inf_literal: false,
                nonzero,
            };
        }
    }
    let mut j = i;
    let mut digits = 0;
    let mut nonzero = false;
    while j < s.len() && s[j].is_ascii_digit() {
        nonzero |= s[j] != b'0';
        j += 1;
        digits += 1;
    }
    if j < s.len() && s[j] == b'.' {
        let mut k = j + 1;
        while k < s.len() && s[k].is_ascii_digit() {
            nonzero |= s[k] != b'0';
            k += 1;
            digits += 1;
        }
        if digits > 0 {
            j = k;
        }
    }
    if digits == 0 {
        return Strtod {
            val: 0.0,
            used: 0,
            inf_literal: false,
            nonzero: false,
        };
    }
    if j < s.len() && (s[j] | 0x20) == b'e' {
        let mut k = j + 1;
        if k < s.len() && (s[k] == b'+' || s[k] == b'-') {
            k += 1;
        }
        if k < s.len() && s[k].is_ascii_digit() {
            while k < s.len() && s[k].is_ascii_digit() {
                k += 1;
            }
            j = k;
        }
    }
    let text = std::str::from_utf8(&s[num_start..j]).unwrap_or("0");
    Strtod {
        val: text.parse().unwrap_or(0.0),
        used: j,
        inf_literal: false,
        nonzero,
    }
}

/// A float argument as Redis's `getDoubleFromObject` reads it (scores,
/// increments, weights): the whole string, no leading space, no overflow
/// or underflow, no NaN.
pub(crate) fn parse_float_arg(s: &[u8]) -> Option<f64> {
    if s.is_empty() || is_c_space(s[0]) {
        return None;
    }
    let r = strtod(s);
    if r.used != s.len() || r.val.is_nan() {
        return None;
    }
    if (r.val.is_infinite() && !r.inf_literal) || (r.val == 0.0 && r.nonzero) {
        return None;
    }
    Some(r.val)
}

/// One end of a score interval as `zslParseRange` reads it: an optional
/// '(' then plain `strtod` (so leading spaces and "" are accepted).
fn parse_score_bound(s: &[u8]) -> Option<(f64, bool)> {
    let (ex, body) = match s.first() {
        Some(b'(') => (true, &s[1..]),
        _ => (false, s),
    };
    let r = strtod(body);
    let ends = r.used == body.len() || body[r.used] == 0;
    (ends && !r.val.is_nan()).then_some((r.val, ex))
}

fn parse_score_range(min: &[u8], max: &[u8]) -> Option<ScoreRange> {
    let (min, minex) = parse_score_bound(min)?;
    let (max, maxex) = parse_score_bound(max)?;
    Some(ScoreRange {
        min,
        max,
        minex,
        maxex,
    })
}

/// A blocking timeout in seconds (`getTimeoutFromObjectOrReply`), as
/// relative milliseconds (0 = forever).
fn parse_timeout(s: &[u8], now: u64) -> Result<u64, &'static str> {
    const BAD: &str = "timeout is not a float or out of range";
    if s.is_empty() || is_c_space(s[0]) {
        return Err(BAD);
    }
    let r = strtod(s);
    if r.used != s.len() || r.val.is_nan() {
        return Err(BAD);
    }
    let ms = r.val * 1000.0;
    // C's conversion of an out-of-range value gives LLONG_MIN on x86.
    let t = if ms.is_finite() && ms.abs() < 9.223_372_036_854_775e18 {
        ms as i64
    } else {
        i64::MIN
    };
    if t < 0 {
        return Err("timeout is negative");
    }
    // Redis 7.0 adds the clock without an overflow check; a deadline that
    // wraps is never reached, so such a client waits forever.
    if t > i64::MAX - now as i64 {
        return Ok(0);
    }
    Ok(t as u64)
}

// ----- shared helpers --------------------------------------------------------

/// Result members with their scores.
type Items = Vec<(Box<[u8]>, f64)>;
/// Keys of one shard with their positions in the command.
type KeyGroup = Vec<(usize, Vec<u8>)>;

fn limits(ks: &Keyspace) -> Limits {
    Limits {
        max_entries: ks.enc.zset_max_listpack_entries,
        max_value: ks.enc.zset_max_listpack_value,
    }
}

/// A key looked up for reading: Ok(None) when missing, Err on wrong type.
fn read_zset<'a>(ks: &'a mut Keyspace, db: usize, key: &[u8]) -> Result<Option<&'a ZSet>, ()> {
    match ks.get(db, key) {
        None => Ok(None),
        Some(Value::ZSet(z)) => Ok(Some(z)),
        Some(_) => Err(()),
    }
}

/// A key looked up for writing: Ok(None) when missing, Err on wrong type.
fn write_zset<'a>(ks: &'a mut Keyspace, db: usize, key: &[u8]) -> Result<Option<&'a mut ZSet>, ()> {
    match ks.get_mut(db, key) {
        None => Ok(None),
        Some(Value::ZSet(z)) => Ok(Some(z)),
        Some(_) => Err(()),
    }
}

/// Writes one result member, with its score when asked (a [member, score]
/// pair in RESP3).
#[inline]
fn emit_pair(out: &mut Out, m: &[u8], s: f64, withscores: bool) {
    if withscores && out.resp3 {
        out.array(2);
    }
    out.bulk(m);
    if withscores {
        out.double(s);
    }
}

/// The array header for `n` results (flat member/score pairs in RESP2).
fn pairs_header(out: &mut Out, n: usize, withscores: bool) {
    out.array(if withscores && !out.resp3 { 2 * n } else { n });
}

fn cmp_score_member(a: &(Box<[u8]>, f64), b: &(Box<[u8]>, f64)) -> std::cmp::Ordering {
    match a.1.partial_cmp(&b.1) {
        Some(std::cmp::Ordering::Equal) | None => a.0.cmp(&b.0),
        Some(o) => o,
    }
}

/// Stores a computed result at `dst` (deleting `dst` when it is empty, as
/// Redis does) and returns the reply: the result's size.
/// `event` is the keyspace event of a stored result.
fn store_result(
    ks: &mut Keyspace,
    db: usize,
    dst: &[u8],
    items: Items,
    event: &'static str,
) -> i64 {
    if items.is_empty() {
        if ks.delete(db, dst) {
            ks.notify(N::GENERIC, "del", db, dst);
        }
        return 0;
    }
    let n = items.len() as i64;
    let z = ZSet::from_sorted(items, limits(ks));
    ks.set(db, dst, Value::ZSet(Box::new(z)), false);
    ks.signal_ready(db, dst);
    ks.notify(N::ZSET, event, db, dst);
    n
}

/// The distinct shards owning `keys`.
fn shards_of<'a>(sh: &Shard, keys: impl IntoIterator<Item = &'a [u8]>) -> Vec<usize> {
    let mut v: Vec<usize> = keys.into_iter().map(|k| sh.shard_of(k)).collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Clones the values of `keys` out of their shards (inside a transaction).
fn gather(tx: &mut Tx, db: usize, keys: &[Vec<u8>]) -> Vec<Option<Value>> {
    let mut groups: Vec<(usize, KeyGroup)> = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        let s = tx.sh.shard_of(k);
        match groups.iter_mut().find(|g| g.0 == s) {
            Some(g) => g.1.push((i, k.clone())),
            None => groups.push((s, vec![(i, k.clone())])),
        }
    }
    let mut out: Vec<Option<Value>> = vec![None; keys.len()];
    for (s, ks) in groups {
        let got = tx.run(s, move |sh: &mut Shard| {
            ks.into_iter()
                .map(|(i, k)| (i, sh.ks.get(db, &k).cloned()))
                .collect::<Vec<_>>()
        });
        for (i, v) in got {
            out[i] = v;
        }
    }
    out
}

/// Looks `keys` up (lazy expiry, statistics) and borrows their values.
fn local_vals<'a>(ks: &'a mut Keyspace, db: usize, keys: &[&[u8]]) -> Vec<Option<&'a Value>> {
    for k in keys {
        ks.get(db, k);
    }
    let main = &ks.dbs[db].main;
    keys.iter().map(|k| main.get(k)).collect()
}

// ----- ZADD / ZINCRBY / ZREM -------------------------------------------------

#[derive(Default)]
struct AddStats {
    added: u64,
    updated: u64,
    processed: u64,
    score: f64,
    nan: bool,
}

fn apply_adds(z: &mut ZSet, pairs: &[&[u8]], scores: &[f64], f: AddFlags, lim: Limits) -> AddStats {
    let mut st = AddStats::default();
    for (j, &score) in scores.iter().enumerate() {
        match z.add(pairs[2 * j + 1], score, f, lim) {
            Added::New(s) => {
                st.added += 1;
                st.processed += 1;
                st.score = s;
            }
            Added::Updated(s) => {
                st.updated += 1;
                st.processed += 1;
                st.score = s;
            }
            Added::Same(s) => {
                st.processed += 1;
                st.score = s;
            }
            Added::Nop => {}
            Added::Nan => {
                st.nan = true;
                break;
            }
        }
    }
    st
}

fn zadd_generic(ctx: &mut Ctx, args: &[&[u8]], incr: bool) {
    let mut f = AddFlags {
        incr,
        ..Default::default()
    };
    let mut ch = false;
    let mut i = 2;
    while i < args.len() {
        let a = args[i];
        if eq_ic(a, "nx") {
            f.nx = true;
        } else if eq_ic(a, "xx") {
            f.xx = true;
        } else if eq_ic(a, "ch") {
            ch = true;
        } else if eq_ic(a, "incr") {
            f.incr = true;
        } else if eq_ic(a, "gt") {
            f.gt = true;
        } else if eq_ic(a, "lt") {
            f.lt = true;
        } else {
            break;
        }
        i += 1;
    }
    let rest = args.len() - i;
    if rest == 0 || rest % 2 == 1 {
        ctx.out.syntax();
        return;
    }
    let n = rest / 2;
    if f.nx && f.xx {
        ctx.out
            .err("XX and NX options at the same time are not compatible");
        return;
    }
    if (f.nx && (f.gt || f.lt)) || (f.gt && f.lt) {
        ctx.out
            .err("GT, LT, and/or NX options at the same time are not compatible");
        return;
    }
    if f.incr && n > 1 {
        ctx.out
            .err("INCR option supports a single increment-element pair");
        return;
    }
    let pairs = &args[i..];
    let mut scores = Vec::with_capacity(n);
    for j in 0..n {
        match parse_float_arg(pairs[2 * j]) {
            Some(s) => scores.push(s),
            None => {
                ctx.out.not_float();
                return;
            }
        }
    }
    let lim = limits(ctx.ks);
    let key = args[1];
    let st = match write_zset(ctx.ks, ctx.db, key) {
        Err(()) => {
            ctx.out.wrongtype();
            return;
        }
        Ok(Some(z)) => apply_adds(z, pairs, &scores, f, lim),
        Ok(None) if f.xx => AddStats::default(),
        Ok(None) => {
            let mut z = ZSet::for_first(pairs[1].len(), lim);
            let st = apply_adds(&mut z, pairs, &scores, f, lim);
            ctx.ks.set(ctx.db, key, Value::ZSet(Box::new(z)), false);
            st
        }
    };
    ctx.ks.touch_write(st.added + st.updated);
    if st.added > 0 {
        ctx.ks.signal_ready(ctx.db, key);
    }
    if st.added + st.updated > 0 {
        let event = if f.incr { "zincr" } else { "zadd" };
        ctx.ks.notify(N::ZSET, event, ctx.db, key);
    }
    if st.nan {
        ctx.out.err(E_NAN);
    } else if f.incr {
        if st.processed > 0 {
            ctx.out.double(st.score);
        } else {
            ctx.out.null();
        }
    } else {
        ctx.out
            .int((if ch { st.added + st.updated } else { st.added }) as i64);
    }
}

fn zadd(ctx: &mut Ctx, args: &[&[u8]]) {
    zadd_generic(ctx, args, false);
}

fn zincrby(ctx: &mut Ctx, args: &[&[u8]]) {
    zadd_generic(ctx, args, true);
}

fn zrem(ctx: &mut Ctx, args: &[&[u8]]) {
    let z = match write_zset(ctx.ks, ctx.db, args[1]) {
        Err(()) => return ctx.out.wrongtype(),
        Ok(None) => return ctx.out.int(0),
        Ok(Some(z)) => z,
    };
    let mut deleted = 0;
    for m in &args[2..] {
        if z.remove(m) {
            deleted += 1;
        }
        if z.is_empty() {
            break;
        }
    }
    let emptied = z.is_empty();
    if emptied {
        ctx.ks.delete(ctx.db, args[1]);
    }
    ctx.ks.touch_write(deleted);
    if deleted > 0 {
        ctx.ks.notify(N::ZSET, "zrem", ctx.db, args[1]);
        if emptied {
            ctx.ks.notify(N::GENERIC, "del", ctx.db, args[1]);
        }
    }
    ctx.out.int(deleted as i64);
}

// ----- single-key reads ------------------------------------------------------

fn zcard(ctx: &mut Ctx, args: &[&[u8]]) {
    match read_zset(ctx.ks, ctx.db, args[1]) {
        Err(()) => ctx.out.wrongtype(),
        Ok(z) => ctx.out.int(z.map_or(0, |z| z.len() as i64)),
    }
}

fn zscore(ctx: &mut Ctx, args: &[&[u8]]) {
    match read_zset(ctx.ks, ctx.db, args[1]) {
        Err(()) => ctx.out.wrongtype(),
        Ok(z) => match z.and_then(|z| z.score(args[2])) {
            Some(s) => ctx.out.double(s),
            None => ctx.out.null(),
        },
    }
}

fn zmscore(ctx: &mut Ctx, args: &[&[u8]]) {
    match read_zset(ctx.ks, ctx.db, args[1]) {
        Err(()) => ctx.out.wrongtype(),
        Ok(z) => {
            ctx.out.array(args.len() - 2);
            for m in &args[2..] {
                match z.and_then(|z| z.score(m)) {
                    Some(s) => ctx.out.double(s),
                    None => ctx.out.null(),
                }
            }
        }
    }
}

fn zrank_generic(ctx: &mut Ctx, args: &[&[u8]], rev: bool) {
    match read_zset(ctx.ks, ctx.db, args[1]) {
        Err(()) => ctx.out.wrongtype(),
        Ok(z) => match z.and_then(|z| z.rank(args[2]).map(|r| (r, z.len()))) {
            Some((r, len)) => ctx.out.int((if rev { len - 1 - r } else { r }) as i64),
            None => ctx.out.null(),
        },
    }
}

fn zrank(ctx: &mut Ctx, args: &[&[u8]]) {
    zrank_generic(ctx, args, false);
}

fn zrevrank(ctx: &mut Ctx, args: &[&[u8]]) {
    zrank_generic(ctx, args, true);
}

fn zcount(ctx: &mut Ctx, args: &[&[u8]]) {
    let Some(r) = parse_score_range(args[2], args[3]) else {
        return ctx.out.err(E_SCORE_RANGE);
    };
    match read_zset(ctx.ks, ctx.db, args[1]) {
        Err(()) => ctx.out.wrongtype(),
        Ok(None) => ctx.out.int(0),
        Ok(Some(z)) => {
            let (s, e) = z.score_span(&r);
            ctx.out.int((e - s) as i64);
        }
    }
}

fn zlexcount(ctx: &mut Ctx, args: &[&[u8]]) {
    let Some(r) = LexRange::parse(args[2], args[3]) else {
        return ctx.out.err(E_LEX_RANGE);
    };
    match read_zset(ctx.ks, ctx.db, args[1]) {
        Err(()) => ctx.out.wrongtype(),
        Ok(None) => ctx.out.int(0),
        Ok(Some(z)) => {
            let n = z.lex_first(&r).map_or(0, |s| z.lex_run_end(s, &r) - s);
            ctx.out.int(n as i64);
        }
    }
}

// ----- ranges ------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum RangeType {
    Auto,
    Rank,
    Score,
    Lex,
}

#[derive(Clone)]
enum RangeKind {
    Rank(i64, i64),
    Score(ScoreRange),
    Lex(LexRange),
}

/// A parsed Z[REV]RANGE[BYSCORE|BYLEX] / ZRANGESTORE request.
#[derive(Clone)]
struct RangeReq {
    kind: RangeKind,
    rev: bool,
    withscores: bool,
    offset: i64,
    limit: i64,
}

/// Redis's `zrangeGenericCommand` argument handling: `start` is the index
/// of the source key; `rev` is None where REV is accepted.
fn parse_range_req(
    args: &[&[u8]],
    start: usize,
    store: bool,
    mut rt: RangeType,
    mut rev: Option<bool>,
) -> Result<RangeReq, &'static str> {
    let (mut withscores, mut offset, mut limit) = (false, 0i64, -1i64);
    let mut j = start + 3;
    while j < args.len() {
        let left = args.len() - j - 1;
        let a = args[j];
        if !store && eq_ic(a, "withscores") {
            withscores = true;
        } else if eq_ic(a, "limit") && left >= 2 {
            offset = parse_i64(args[j + 1]).ok_or(E_NOT_INT)?;
            limit = parse_i64(args[j + 2]).ok_or(E_NOT_INT)?;
            j += 2;
        } else if rev.is_none() && eq_ic(a, "rev") {
            rev = Some(true);
        } else if rt == RangeType::Auto && eq_ic(a, "bylex") {
            rt = RangeType::Lex;
        } else if rt == RangeType::Auto && eq_ic(a, "byscore") {
            rt = RangeType::Score;
        } else {
            return Err(E_SYNTAX);
        }
        j += 1;
    }
    let rev = rev.unwrap_or(false);
    if rt == RangeType::Auto {
        rt = RangeType::Rank;
    }
    if limit != -1 && rt == RangeType::Rank {
        return Err(
            "syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        );
    }
    if withscores && rt == RangeType::Lex {
        return Err("syntax error, WITHSCORES not supported in combination with BYLEX");
    }
    let (mut lo, mut hi) = (args[start + 1], args[start + 2]);
    if rev && rt != RangeType::Rank {
        std::mem::swap(&mut lo, &mut hi);
    }
    let kind = match rt {
        RangeType::Score => RangeKind::Score(parse_score_range(lo, hi).ok_or(E_SCORE_RANGE)?),
        RangeType::Lex => RangeKind::Lex(LexRange::parse(lo, hi).ok_or(E_LEX_RANGE)?),
        _ => RangeKind::Rank(
            parse_i64(lo).ok_or(E_NOT_INT)?,
            parse_i64(hi).ok_or(E_NOT_INT)?,
        ),
    };
    Ok(RangeReq {
        kind,
        rev,
        withscores: withscores || store,
        offset,
        limit,
    })
}

/// From rank `start`, skips `offset` members, then emits members while
/// `cond` holds, at most `limit` (negative: no limit) — Redis's walk.
fn walk_limited(
    z: &ZSet,
    start: Option<usize>,
    rev: bool,
    offset: i64,
    limit: i64,
    cond: impl Fn(f64, &[u8]) -> bool,
    mut f: impl FnMut(&[u8], f64),
) -> usize {
    let Some(start) = start else { return 0 };
    if offset < 0 {
        return 0;
    }
    let first = if rev {
        start.checked_sub(offset as usize)
    } else {
        start.checked_add(offset as usize).filter(|&x| x < z.len())
    };
    let Some(first) = first else { return 0 };
    let (mut n, mut limit) = (0, limit);
    z.walk(first, rev, |m, s| {
        if limit == 0 || !cond(s, m) {
            return false;
        }
        if limit > 0 {
            limit -= 1;
        }
        f(m, s);
        n += 1;
        true
    });
    n
}

/// Runs a range request, calling `f` on each result in reply order.
fn run_range(z: &ZSet, req: &RangeReq, mut f: impl FnMut(&[u8], f64)) -> usize {
    match &req.kind {
        RangeKind::Rank(start, end) => {
            let llen = z.len() as i64;
            let (mut s, mut e) = (*start, *end);
            if s < 0 {
                s += llen;
            }
            if e < 0 {
                e += llen;
            }
            if s < 0 {
                s = 0;
            }
            if s > e || s >= llen {
                return 0;
            }
            if e >= llen {
                e = llen - 1;
            }
            let (s, e, l) = (s as usize, e as usize, llen as usize);
            if req.rev {
                z.range(l - 1 - e, l - s, true, &mut f);
            } else {
                z.range(s, e + 1, false, &mut f);
            }
            e - s + 1
        }
        RangeKind::Score(r) => {
            if req.offset > 0 && req.offset as u64 >= z.len() as u64 {
                return 0;
            }
            let start = if req.rev {
                z.score_last(r)
            } else {
                z.score_first(r)
            };
            let rev = req.rev;
            let cond = |s: f64, _: &[u8]| if rev { r.gte_min(s) } else { r.lte_max(s) };
            walk_limited(z, start, rev, req.offset, req.limit, cond, f)
        }
        RangeKind::Lex(r) => {
            let start = if req.rev {
                z.lex_last(r)
            } else {
                z.lex_first(r)
            };
            let rev = req.rev;
            let cond = |_: f64, m: &[u8]| if rev { r.gte_min(m) } else { r.lte_max(m) };
            walk_limited(z, start, rev, req.offset, req.limit, cond, f)
        }
    }
}

/// A range's results as (member, score), in reply order (ZRANGESTORE).
fn range_items(z: &ZSet, req: &RangeReq) -> Items {
    let mut v: Items = Vec::new();
    run_range(z, req, |m, s| v.push((m.into(), s)));
    v
}

/// Stores ZRANGESTORE's result (`items` in reply order). Redis adds them
/// one by one to a set created from a size hint (the count for ranges by
/// rank, none otherwise): a listpack when the hint fits, converting once
/// over the limits. Members added while it is a listpack lose a -0 sign,
/// as listpacks store integral scores as integers.
fn store_range(ks: &mut Keyspace, db: usize, dst: &[u8], mut items: Items, req: &RangeReq) -> i64 {
    let lim = limits(ks);
    let hint = match req.kind {
        RangeKind::Rank(..) => items.len(),
        _ => 0,
    };
    if hint <= lim.max_entries {
        let conv = items
            .iter()
            .enumerate()
            .position(|(i, (m, _))| i + 1 > lim.max_entries || m.len() > lim.max_value);
        for it in &mut items[..conv.unwrap_or(0)] {
            if it.1 == 0.0 {
                it.1 = 0.0;
            }
        }
    }
    if req.rev {
        items.reverse();
    }
    store_result(ks, db, dst, items, "zrangestore")
}

fn reply_range(out: &mut Out, z: Option<&ZSet>, req: &RangeReq) {
    let Some(z) = z else { return out.array(0) };
    let mut buf = Vec::new();
    let mut tmp = Out::new(&mut buf, out.resp3);
    let n = run_range(z, req, |m, s| emit_pair(&mut tmp, m, s, req.withscores));
    pairs_header(out, n, req.withscores);
    out.raw(&buf);
}

fn zrange_client(ctx: &mut Ctx, args: &[&[u8]], rt: RangeType, rev: Option<bool>) {
    let req = match parse_range_req(args, 1, false, rt, rev) {
        Ok(r) => r,
        Err(e) => return ctx.out.err(e),
    };
    match read_zset(ctx.ks, ctx.db, args[1]) {
        Err(()) => ctx.out.wrongtype(),
        Ok(z) => reply_range(&mut ctx.out, z, &req),
    }
}

fn zrange(ctx: &mut Ctx, args: &[&[u8]]) {
    zrange_client(ctx, args, RangeType::Auto, None);
}
fn zrevrange(ctx: &mut Ctx, args: &[&[u8]]) {
    zrange_client(ctx, args, RangeType::Rank, Some(true));
}
fn zrangebyscore(ctx: &mut Ctx, args: &[&[u8]]) {
    zrange_client(ctx, args, RangeType::Score, Some(false));
}
fn zrevrangebyscore(ctx: &mut Ctx, args: &[&[u8]]) {
    zrange_client(ctx, args, RangeType::Score, Some(true));
}
fn zrangebylex(ctx: &mut Ctx, args: &[&[u8]]) {
    zrange_client(ctx, args, RangeType::Lex, Some(false));
}
fn zrevrangebylex(ctx: &mut Ctx, args: &[&[u8]]) {
    zrange_client(ctx, args, RangeType::Lex, Some(true));
}

/// ZRANGESTORE's source read: Err on wrong type.
fn rangestore_src(ks: &mut Keyspace, db: usize, src: &[u8], req: &RangeReq) -> Result<Items, ()> {
    Ok(read_zset(ks, db, src)?.map_or_else(Vec::new, |z| range_items(z, req)))
}

fn zrangestore(ctx: &mut Ctx, args: &[&[u8]]) {
    let req = match parse_range_req(args, 2, true, RangeType::Auto, None) {
        Ok(r) => r,
        Err(e) => return ctx.out.err(e),
    };
    match rangestore_src(ctx.ks, ctx.db, args[2], &req) {
        Err(()) => ctx.out.wrongtype(),
        Ok(items) => {
            let n = store_range(ctx.ks, ctx.db, args[1], items, &req);
            ctx.out.int(n);
        }
    }
}

fn zrangestore_multi(ctx: &mut SrvCtx, args: &[&[u8]]) {
    let req = match parse_range_req(args, 2, true, RangeType::Auto, None) {
        Ok(r) => r,
        Err(e) => return ctx.out.err(e),
    };
    let db = ctx.conn.db;
    let (dst, src) = (args[1].to_vec(), args[2].to_vec());
    let (ds, ss) = (ctx.sh.shard_of(&dst), ctx.sh.shard_of(&src));
    let r = ctx.sh.tx(&[ds, ss], move |tx| {
        let req2 = req.clone();
        let items = tx.run(ss, move |sh: &mut Shard| {
            rangestore_src(&mut sh.ks, db, &src, &req2)
        })?;
        Ok(tx.run(ds, move |sh: &mut Shard| {
            store_range(&mut sh.ks, db, &dst, items, &req)
        }))
    });
    match r {
        Err(()) => ctx.out.wrongtype(),
        Ok(n) => ctx.out.int(n),
    }
}

// ----- removal by range ------------------------------------------------------

enum RemRange {
    Rank(i64, i64),
    Score(ScoreRange),
    Lex(LexRange),
}

fn zremrange_generic(ctx: &mut Ctx, args: &[&[u8]], r: RemRange) {
    let z = match write_zset(ctx.ks, ctx.db, args[1]) {
        Err(()) => return ctx.out.wrongtype(),
        Ok(None) => return ctx.out.int(0),
        Ok(Some(z)) => z,
    };
    let (start, end) = match &r {
        RemRange::Rank(s, e) => {
            let llen = z.len() as i64;
            let (mut s, mut e) = (*s, *e);
            if s < 0 {
                s += llen;
            }
            if e < 0 {
                e += llen;
            }
            if s < 0 {
                s = 0;
            }
            if s > e || s >= llen {
                return ctx.out.int(0);
            }
            (s as usize, (e.min(llen - 1) + 1) as usize)
        }
        RemRange::Score(r) => z.score_span(r),
        RemRange::Lex(r) => match z.lex_first(r) {
            Some(s) => (s, z.lex_run_end(s, r)),
            None => (0, 0),
        },
    };
    let n = z.remove_range(start, end);
    let emptied = z.is_empty();
    if emptied {
        ctx.ks.delete(ctx.db, args[1]);
    }
    ctx.ks.touch_write(n as u64);
    if n > 0 {
        let event = match r {
            RemRange::Rank(..) => "zremrangebyrank",
            RemRange::Score(_) => "zremrangebyscore",
            RemRange::Lex(_) => "zremrangebylex",
        };
        ctx.ks.notify(N::ZSET, event, ctx.db, args[1]);
        if emptied {
            ctx.ks.notify(N::GENERIC, "del", ctx.db, args[1]);
        }
    }
    ctx.out.int(n as i64);
}

fn zremrangebyrank(ctx: &mut Ctx, args: &[&[u8]]) {
    match (parse_i64(args[2]), parse_i64(args[3])) {
        (Some(s), Some(e)) => zremrange_generic(ctx, args, RemRange::Rank(s, e)),
        _ => ctx.out.not_int(),
    }
}

fn zremrangebyscore(ctx: &mut Ctx, args: &[&[u8]]) {
    match parse_score_range(args[2], args[3]) {
        Some(r) => zremrange_generic(ctx, args, RemRange::Score(r)),
        None => ctx.out.err(E_SCORE_RANGE),
    }
}

fn zremrangebylex(ctx: &mut Ctx, args: &[&[u8]]) {
    match LexRange::parse(args[2], args[3]) {
        Some(r) => zremrange_generic(ctx, args, RemRange::Lex(r)),
        None => ctx.out.err(E_LEX_RANGE),
    }
}

// ----- pops ------------------------------------------------------------------

/// Reply shapes of the pop commands.
#[derive(Clone, Copy)]
enum PopFmt {
    /// ZPOPMIN/ZPOPMAX: member/score pairs, nested in RESP3 with COUNT.
    Plain { nested: bool },
    /// BZPOPMIN/BZPOPMAX: [key, member, score].
    Key,
    /// ZMPOP/BZMPOP: [key, [[member, score], ...]].
    KeyNested,
}

/// Pops up to `count` members (-1: one, plain) from `key` if it exists.
/// Returns false when the key is missing (nothing written); otherwise the
/// reply (or WRONGTYPE) has been written.
fn pop_key(
    ks: &mut Keyspace,
    db: usize,
    key: &[u8],
    max: bool,
    count: i64,
    fmt: PopFmt,
    out: &mut Out,
) -> bool {
    let z = match write_zset(ks, db, key) {
        Ok(None) => return false,
        Err(()) => {
            out.wrongtype();
            return true;
        }
        Ok(Some(z)) => z,
    };
    if count == 0 {
        out.array(0);
        return true;
    }
    let n = if count < 0 { 1 } else { count as usize }.min(z.len());
    let nested = match fmt {
        PopFmt::Plain { nested } => {
            out.array(if nested { n } else { 2 * n });
            nested
        }
        PopFmt::Key => {
            out.array(2 * n + 1);
            out.bulk(key);
            false
        }
        PopFmt::KeyNested => {
            out.array(2);
            out.bulk(key);
            out.array(n);
            true
        }
    };
    for _ in 0..n {
        let Some((m, s)) = z.pop(max) else { break };
        if nested {
            out.array(2);
        }
        out.bulk(&m);
        out.double(s);
    }
    let emptied = z.is_empty();
    if emptied {
        ks.delete(db, key);
    }
    ks.touch_write(n as u64);
    ks.notify(N::ZSET, if max { "zpopmax" } else { "zpopmin" }, db, key);
    if emptied {
        ks.notify(N::GENERIC, "del", db, key);
    }
    true
}

/// Pops from the first existing key of `keys`, across shards, atomically.
/// Returns the reply bytes, or None when no key exists.
fn pop_multi(
    ctx: &mut SrvCtx,
    keys: Vec<Vec<u8>>,
    max: bool,
    count: i64,
    fmt: PopFmt,
) -> Option<Vec<u8>> {
    let db = ctx.conn.db;
    let resp3 = ctx.out.resp3;
    let shards = shards_of(ctx.sh, keys.iter().map(|k| &k[..]));
    ctx.sh.tx(&shards, move |tx| {
        for k in keys {
            let s = tx.sh.shard_of(&k);
            let r = tx.run(s, move |sh: &mut Shard| {
                let mut buf = Vec::new();
                let found = pop_key(
                    &mut sh.ks,
                    db,
                    &k,
                    max,
                    count,
                    fmt,
                    &mut Out::new(&mut buf, resp3),
                );
                found.then_some(buf)
            });
            if r.is_some() {
                return r;
            }
        }
        None
    })
}

fn zpop_generic(ctx: &mut Ctx, args: &[&[u8]], max: bool) {
    if args.len() > 3 {
        return ctx.out.syntax();
    }
    let count = if args.len() == 3 {
        match parse_i64(args[2]).filter(|&c| c >= 0) {
            None => return ctx.out.err("value is out of range, must be positive"),
            Some(c) => c,
        }
    } else {
        -1
    };
    let fmt = PopFmt::Plain {
        nested: ctx.out.resp3 && count != -1,
    };
    if !pop_key(ctx.ks, ctx.db, args[1], max, count, fmt, &mut ctx.out) {
        ctx.out.array(0);
    }
}

fn zpopmin(ctx: &mut Ctx, args: &[&[u8]]) {
    zpop_generic(ctx, args, false);
}
fn zpopmax(ctx: &mut Ctx, args: &[&[u8]]) {
    zpop_generic(ctx, args, true);
}

fn owned(keys: &[&[u8]]) -> Vec<Vec<u8>> {
    keys.iter().map(|k| k.to_vec()).collect()
}

fn bzpop_generic(ctx: &mut Ctx, args: &[&[u8]], max: bool) {
    let keys = &args[1..args.len() - 1];
    let timeout = match parse_timeout(args[args.len() - 1], ctx.ks.now) {
        Ok(t) => t,
        Err(e) => return ctx.out.err(e),
    };
    for k in keys {
        if pop_key(ctx.ks, ctx.db, k, max, -1, PopFmt::Key, &mut ctx.out) {
            return;
        }
    }
    ctx.ks.block(owned(keys), timeout, true);
}

fn bzpop_multi_generic(ctx: &mut SrvCtx, args: &[&[u8]], max: bool) {
    let keys = &args[1..args.len() - 1];
    let timeout = match parse_timeout(args[args.len() - 1], ctx.sh.ks.now) {
        Ok(t) => t,
        Err(e) => return ctx.out.err(e),
    };
    match pop_multi(ctx, owned(keys), max, -1, PopFmt::Key) {
        Some(b) => ctx.out.raw(&b),
        None => ctx.sh.ks.block(owned(keys), timeout, true),
    }
}

fn bzpopmin(ctx: &mut Ctx, args: &[&[u8]]) {
    bzpop_generic(ctx, args, false);
}
fn bzpopmax(ctx: &mut Ctx, args: &[&[u8]]) {
    bzpop_generic(ctx, args, true);
}
fn bzpopmin_multi(ctx: &mut SrvCtx, args: &[&[u8]]) {
    bzpop_multi_generic(ctx, args, false);
}
fn bzpopmax_multi(ctx: &mut SrvCtx, args: &[&[u8]]) {
    bzpop_multi_generic(ctx, args, true);
}

/// ZMPOP/BZMPOP arguments after the key count at `idx`.
struct MpopReq {
    first: usize,
    n: usize,
    max: bool,
    count: i64,
}

fn parse_mpop(args: &[&[u8]], idx: usize) -> Result<MpopReq, &'static str> {
    const E_NUMKEYS: &str = "numkeys should be greater than 0";
    let n = parse_i64(args[idx]).filter(|&n| n >= 1).ok_or(E_NUMKEYS)?;
    let where_idx = (idx as u64)
        .checked_add(n as u64 + 1)
        .filter(|&w| w < args.len() as u64)
        .ok_or(E_SYNTAX)? as usize;
    let max = if eq_ic(args[where_idx], "min") {
        false
    } else if eq_ic(args[where_idx], "max") {
        true
    } else {
        return Err(E_SYNTAX);
    };
    let mut count = -1;
    let mut j = where_idx + 1;
    while j < args.len() {
        let more = args.len() - 1 - j;
        if count == -1 && eq_ic(args[j], "count") && more > 0 {
            j += 1;
            count = parse_i64(args[j])
                .filter(|&c| c >= 1)
                .ok_or("count should be greater than 0")?;
        } else {
            return Err(E_SYNTAX);
        }
        j += 1;
    }
    Ok(MpopReq {
        first: idx + 1,
        n: n as usize,
        max,
        count: count.max(1),
    })
}

fn zmpop(ctx: &mut Ctx, args: &[&[u8]]) {
    let r = match parse_mpop(args, 1) {
        Ok(r) => r,
        Err(e) => return ctx.out.err(e),
    };
    for k in &args[r.first..r.first + r.n] {
        if pop_key(
            ctx.ks,
            ctx.db,
            k,
            r.max,
            r.count,
            PopFmt::KeyNested,
            &mut ctx.out,
        ) {
            return;
        }
    }
    ctx.out.null_array();
}

fn zmpop_multi(ctx: &mut SrvCtx, args: &[&[u8]]) {
    let r = match parse_mpop(args, 1) {
        Ok(r) => r,
        Err(e) => return ctx.out.err(e),
    };
    let keys = owned(&args[r.first..r.first + r.n]);
    match pop_multi(ctx, keys, r.max, r.count, PopFmt::KeyNested) {
        Some(b) => ctx.out.raw(&b),
        None => ctx.out.null_array(),
    }
}

fn bzmpop(ctx: &mut Ctx, args: &[&[u8]]) {
    let r = match parse_mpop(args, 2) {
        Ok(r) => r,
        Err(e) => return ctx.out.err(e),
    };
    let timeout = match parse_timeout(args[1], ctx.ks.now) {
        Ok(t) => t,
        Err(e) => return ctx.out.err(e),
    };
    let keys = &args[r.first..r.first + r.n];
    for k in keys {
        if pop_key(
            ctx.ks,
            ctx.db,
            k,
            r.max,
            r.count,
            PopFmt::KeyNested,
            &mut ctx.out,
        ) {
            return;
        }
    }
    ctx.ks.block(owned(keys), timeout, true);
}

fn bzmpop_multi(ctx: &mut SrvCtx, args: &[&[u8]]) {
    let r = match parse_mpop(args, 2) {
        Ok(r) => r,
        Err(e) => return ctx.out.err(e),
    };
    let timeout = match parse_timeout(args[1], ctx.sh.ks.now) {
        Ok(t) => t,
        Err(e) => return ctx.out.err(e),
    };
    let keys = owned(&args[r.first..r.first + r.n]);
    match pop_multi(ctx, keys.clone(), r.max, r.count, PopFmt::KeyNested) {
        Some(b) => ctx.out.raw(&b),
        None => ctx.sh.ks.block(keys, timeout, true),
    }
}

// ----- ZRANDMEMBER / ZSCAN -----------------------------------------------------

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn zrandmember(ctx: &mut Ctx, args: &[&[u8]]) {
    let mut rng = XorShift(ctx.ks.rand() | 1);
    if args.len() >= 3 {
        let l = match parse_i64(args[2]) {
            None => return ctx.out.not_int(),
            Some(i64::MIN) => {
                return ctx.out.err(
                    "value is out of range, value must between -9223372036854775807 and 9223372036854775807",
                )
            }
            Some(l) => l,
        };
        if args.len() > 4 || (args.len() == 4 && !eq_ic(args[3], "withscores")) {
            return ctx.out.syntax();
        }
        let withscores = args.len() == 4;
        if withscores && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&l) {
            return ctx.out.err("value is out of range");
        }
        let z = match read_zset(ctx.ks, ctx.db, args[1]) {
            Err(()) => return ctx.out.wrongtype(),
            Ok(None) => return ctx.out.array(0),
            Ok(Some(z)) => z,
        };
        return randmember_count(&mut ctx.out, z, l, withscores, &mut rng);
    }
    match read_zset(ctx.ks, ctx.db, args[1]) {
        Err(()) => ctx.out.wrongtype(),
        Ok(None) => ctx.out.null(),
        Ok(Some(z)) => match z.get(rng.below(z.len())) {
            Some((m, _)) => ctx.out.bulk(m),
            None => ctx.out.null(),
        },
    }
}

fn randmember_count(out: &mut Out, z: &ZSet, l: i64, withscores: bool, rng: &mut XorShift) {
    let (count, uniq) = if l >= 0 {
        (l as u64, true)
    } else {
        (l.unsigned_abs(), false)
    };
    let size = z.len();
    if count == 0 || size == 0 {
        return out.array(0);
    }
    // Repeats allowed: independent picks.
    if !uniq || count == 1 {
        pairs_header(out, count as usize, withscores);
        for _ in 0..count {
            if let Some((m, s)) = z.get(rng.below(size)) {
                emit_pair(out, m, s, withscores);
            }
        }
        return;
    }
    // The whole set (Redis walks it from the highest score).
    if count >= size as u64 {
        pairs_header(out, size, withscores);
        z.range(0, size, true, |m, s| emit_pair(out, m, s, withscores));
        return;
    }
    let count = count as usize;
    pairs_header(out, count, withscores);
    if count * 3 > size {
        // Close to the whole set: a partial shuffle of all ranks.
        let mut idx: Vec<usize> = (0..size).collect();
        for i in 0..count {
            let j = i + rng.below(size - i);
            idx.swap(i, j);
        }
        for &r in &idx[..count] {
            if let Some((m, s)) = z.get(r) {
                emit_pair(out, m, s, withscores);
            }
        }
    } else {
        let mut seen = hashbrown::HashSet::with_capacity(count);
        while seen.len() < count {
            let r = rng.below(size);
            if seen.insert(r) {
                if let Some((m, s)) = z.get(r) {
                    emit_pair(out, m, s, withscores);
                }
            }
        }
    }
}

fn zscan(ctx: &mut Ctx, args: &[&[u8]]) {
    let Some(mut cursor) = crate::util::parse_scan_cursor(args[2]) else {
        return ctx.out.err("invalid cursor");
    };
    let z = match read_zset(ctx.ks, ctx.db, args[1]) {
        Err(()) => return ctx.out.wrongtype(),
        Ok(None) => {
            ctx.out.array(2);
            ctx.out.bulk(b"0");
            return ctx.out.array(0);
        }
        Ok(Some(z)) => z,
    };
    let (mut count, mut pat) = (10usize, None);
    let mut i = 3;
    while i < args.len() {
        let j = args.len() - i;
        if eq_ic(args[i], "count") && j >= 2 {
            match parse_i64(args[i + 1]) {
                None => return ctx.out.not_int(),
                Some(n) if n < 1 => return ctx.out.syntax(),
                Some(n) => count = usize::try_from(n).unwrap_or(usize::MAX),
            }
        } else if eq_ic(args[i], "match") && j >= 2 {
            pat = (args[i + 1] != b"*").then_some(args[i + 1]);
        } else {
            return ctx.out.syntax();
        }
        i += 2;
    }
    let mut items: Vec<(Vec<u8>, f64)> = Vec::new();
    if z.is_listpack() {
        cursor = z.scan(0, |m, s| items.push((m.to_vec(), s)));
    } else {
        // As Redis: until `count` members or 10*count steps.
        let mut budget = count.saturating_mul(10);
        loop {
            cursor = z.scan(cursor, |m, s| items.push((m.to_vec(), s)));
            if cursor == 0 || budget == 0 || items.len() >= count {
                break;
            }
            budget -= 1;
        }
    }
    if let Some(p) = pat {
        items.retain(|(m, _)| glob_match(p, m, false));
    }
    ctx.out.array(2);
    ctx.out.bulk(itoa::Buffer::new().format(cursor).as_bytes());
    ctx.out.array(items.len() * 2);
    for (m, s) in &items {
        ctx.out.bulk(m);
        ctx.out.bulk(fmt_double(*s).as_bytes());
    }
}

// ----- set operations ----------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum SetOp {
    Union,
    Inter,
    Diff,
}

#[derive(Clone, Copy)]
enum Agg {
    Sum,
    Min,
    Max,
}

/// Which command of the family runs.
#[derive(Clone, Copy)]
struct OpCmd {
    op: SetOp,
    /// Index of numkeys.
    idx: usize,
    store: bool,
    card: bool,
    name: &'static str,
}

const ZUNION: OpCmd = OpCmd {
    op: SetOp::Union,
    idx: 1,
    store: false,
    card: false,
    name: "zunion",
};
const ZINTER: OpCmd = OpCmd {
    op: SetOp::Inter,
    name: "zinter",
    ..ZUNION
};
const ZDIFF: OpCmd = OpCmd {
    op: SetOp::Diff,
    name: "zdiff",
    ..ZUNION
};
const ZINTERCARD: OpCmd = OpCmd {
    op: SetOp::Inter,
    card: true,
    name: "zintercard",
    ..ZUNION
};
const ZUNIONSTORE: OpCmd = OpCmd {
    idx: 2,
    store: true,
    name: "zunionstore",
    ..ZUNION
};
const ZINTERSTORE: OpCmd = OpCmd {
    op: SetOp::Inter,
    name: "zinterstore",
    ..ZUNIONSTORE
};
const ZDIFFSTORE: OpCmd = OpCmd {
    op: SetOp::Diff,
    name: "zdiffstore",
    ..ZUNIONSTORE
};

/// One input of a set operation.
enum Src<'a> {
    None,
    Z(&'a ZSet),
    /// A plain set: every member scores 1.
    S(&'a crate::types::set::Set),
}

impl Src<'_> {
    fn len(&self) -> usize {
        match self {
            Src::None => 0,
            Src::Z(z) => z.len(),
            Src::S(s) => s.len(),
        }
    }
    fn for_each(&self, mut f: impl FnMut(&[u8], f64)) {
        match self {
            Src::None => {}
            Src::Z(z) => z.range(0, z.len(), false, f),
            Src::S(s) => s.iter().for_each(|m| m.with_bytes(|b| f(b, 1.0))),
        }
    }
    fn find(&self, m: &[u8]) -> Option<f64> {
        match self {
            Src::None => None,
            Src::Z(z) => z.score(m),
            Src::S(s) => s.contains(m).then_some(1.0),
        }
    }
}

/// Redis's `zunionInterAggregate`.
#[inline]
fn aggregate(target: &mut f64, val: f64, agg: Agg) {
    match agg {
        Agg::Sum => {
            *target += val;
            if target.is_nan() {
                *target = 0.0;
            }
        }
        Agg::Min => {
            if val < *target {
                *target = val;
            }
        }
        Agg::Max => {
            if val > *target {
                *target = val;
            }
        }
    }
}

enum SetRes {
    WrongType,
    Err(String),
    Card(u64),
    Items(Items, bool),
}

/// Checks numkeys as Redis does before any lookup; returns the key count.
fn setop_numkeys(args: &[&[u8]], c: OpCmd) -> Result<usize, String> {
    let n = parse_i64(args[c.idx]).ok_or(E_NOT_INT)?;
    if n < 1 {
        return Err(format!(
            "at least 1 input key is needed for '{}' command",
            c.name
        ));
    }
    if n > (args.len() - c.idx - 1) as i64 {
        return Err(E_SYNTAX.into());
    }
    Ok(n as usize)
}

/// The rest of `zunionInterDiffGenericCommand`, given the input values in
/// key order: type checks, options, then the operation.
fn setop_exec(args: &[&[u8]], c: OpCmd, n: usize, vals: &[Option<&Value>]) -> SetRes {
    let mut srcs: Vec<(Src, f64)> = Vec::with_capacity(n);
    for v in vals {
        srcs.push((
            match v {
                None => Src::None,
                Some(Value::ZSet(z)) => Src::Z(z),
                Some(Value::Set(s)) => Src::S(s),
                Some(_) => return SetRes::WrongType,
            },
            1.0,
        ));
    }
    let (mut agg, mut withscores, mut limit) = (Agg::Sum, false, 0u64);
    let mut j = c.idx + 1 + n;
    while j < args.len() {
        let rem = args.len() - j;
        let a = args[j];
        if c.op != SetOp::Diff && !c.card && rem > n && eq_ic(a, "weights") {
            j += 1;
            for src in srcs.iter_mut() {
                match parse_float_arg(args[j]) {
                    Some(w) => src.1 = w,
                    None => return SetRes::Err("weight value is not a float".into()),
                }
                j += 1;
            }
        } else if c.op != SetOp::Diff && !c.card && rem >= 2 && eq_ic(a, "aggregate") {
            let v = args[j + 1];
            agg = if eq_ic(v, "sum") {
                Agg::Sum
            } else if eq_ic(v, "min") {
                Agg::Min
            } else if eq_ic(v, "max") {
                Agg::Max
            } else {
                return SetRes::Err(E_SYNTAX.into());
            };
            j += 2;
        } else if !c.store && !c.card && eq_ic(a, "withscores") {
            withscores = true;
            j += 1;
        } else if c.card && rem >= 2 && eq_ic(a, "limit") {
            match parse_i64(args[j + 1]).filter(|&l| l >= 0) {
                Some(l) => limit = l as u64,
                None => return SetRes::Err("LIMIT can't be negative".into()),
            }
            j += 2;
        } else {
            return SetRes::Err(E_SYNTAX.into());
        }
    }
    if c.op != SetOp::Diff {
        // Smallest first (a stable sort, as glibc's qsort is here).
        srcs.sort_by_key(|s| s.0.len());
    }
    let mut items: Items = Vec::new();
    match c.op {
        SetOp::Inter => {
            let mut card = 0u64;
            if srcs[0].0.len() > 0 {
                let (first, rest) = srcs.split_first().expect("one input at least");
                let mut done = false;
                first.0.for_each(|m, s| {
                    if done {
                        return;
                    }
                    let mut score = first.1 * s;
                    if score.is_nan() {
                        score = 0.0;
                    }
                    for (src, w) in rest {
                        match src.find(m) {
                            Some(v) => aggregate(&mut score, v * w, agg),
                            None => return,
                        }
                    }
                    if c.card {
                        card += 1;
                        done = limit > 0 && card >= limit;
                    } else {
                        items.push((m.into(), score));
                    }
                });
            }
            if c.card {
                return SetRes::Card(card);
            }
        }
        SetOp::Union => {
            let mut acc: hashbrown::HashMap<Vec<u8>, f64> = hashbrown::HashMap::new();
            for (src, w) in &srcs {
                src.for_each(|m, s| {
                    let mut score = w * s;
                    if score.is_nan() {
                        score = 0.0;
                    }
                    match acc.get_mut(m) {
                        Some(t) => aggregate(t, score, agg),
                        None => {
                            acc.insert(m.to_vec(), score);
                        }
                    }
                });
            }
            items = acc
                .into_iter()
                .map(|(m, s)| (m.into_boxed_slice(), s))
                .collect();
        }
        SetOp::Diff => {
            let (first, rest) = srcs.split_first().expect("one input at least");
            first.0.for_each(|m, s| {
                if rest.iter().all(|(src, _)| src.find(m).is_none()) {
                    items.push((m.into(), s));
                }
            });
        }
    }
    items.sort_by(cmp_score_member);
    SetRes::Items(items, withscores)
}

/// Writes the reply of a non-store set operation (or an error).
fn setop_reply(out: &mut Out, res: SetRes) {
    match res {
        SetRes::WrongType => out.wrongtype(),
        SetRes::Err(e) => out.err(&e),
        SetRes::Card(n) => out.int(n as i64),
        SetRes::Items(items, withscores) => {
            pairs_header(out, items.len(), withscores);
            for (m, s) in &items {
                emit_pair(out, m, *s, withscores);
            }
        }
    }
}

fn setop_local(ctx: &mut Ctx, args: &[&[u8]], c: OpCmd) {
    let n = match setop_numkeys(args, c) {
        Ok(n) => n,
        Err(e) => return ctx.out.err(&e),
    };
    let keys = &args[c.idx + 1..c.idx + 1 + n];
    let res = {
        let vals = local_vals(ctx.ks, ctx.db, keys);
        setop_exec(args, c, n, &vals)
    };
    match res {
        SetRes::Items(items, _) if c.store => {
            let n = store_result(ctx.ks, ctx.db, args[1], items, c.name);
            ctx.out.int(n);
        }
        res => setop_reply(&mut ctx.out, res),
    }
}

fn setop_multi(ctx: &mut SrvCtx, args: &[&[u8]], c: OpCmd) {
    let n = match setop_numkeys(args, c) {
        Ok(n) => n,
        Err(e) => return ctx.out.err(&e),
    };
    let db = ctx.conn.db;
    let keys = owned(&args[c.idx + 1..c.idx + 1 + n]);
    let dst = c.store.then(|| args[1].to_vec());
    let mut all: Vec<&[u8]> = keys.iter().map(|k| &k[..]).collect();
    if let Some(d) = &dst {
        all.push(d);
    }
    let shards = shards_of(ctx.sh, all);
    let res = ctx.sh.tx(&shards, |tx| {
        let vals = gather(tx, db, &keys);
        let refs: Vec<Option<&Value>> = vals.iter().map(|v| v.as_ref()).collect();
        match (setop_exec(args, c, n, &refs), dst) {
            (SetRes::Items(items, _), Some(dst)) => {
                let s = tx.sh.shard_of(&dst);
                let n = tx.run(s, move |sh: &mut Shard| {
                    store_result(&mut sh.ks, db, &dst, items, c.name)
                });
                SetRes::Card(n as u64)
            }
            (res, _) => res,
        }
    });
    setop_reply(&mut ctx.out, res);
}

fn zunion(ctx: &mut Ctx, args: &[&[u8]]) {
    setop_local(ctx, args, ZUNION);
}
fn zinter(ctx: &mut Ctx, args: &[&[u8]]) {
    setop_local(ctx, args, ZINTER);
}
fn zdiff(ctx: &mut Ctx, args: &[&[u8]]) {
    setop_local(ctx, args, ZDIFF);
}
fn zintercard(ctx: &mut Ctx, args: &[&[u8]]) {
    setop_local(ctx, args, ZINTERCARD);
}
fn zunionstore(ctx: &mut Ctx, args: &[&[u8]]) {
    setop_local(ctx, args, ZUNIONSTORE);
}
fn zinterstore(ctx: &mut Ctx, args: &[&[u8]]) {
    setop_local(ctx, args, ZINTERSTORE);
}
fn zdiffstore(ctx: &mut Ctx, args: &[&[u8]]) {
    setop_local(ctx, args, ZDIFFSTORE);
}
fn zunion_multi(ctx: &mut SrvCtx, args: &[&[u8]]) {
    setop_multi(ctx, args, ZUNION);
}
fn zinter_multi(ctx: &mut SrvCtx, args: &[&[u8]]) {
    setop_multi(ctx, args, ZINTER);
}
fn zdiff_multi(ctx: &mut SrvCtx, args: &[&[u8]]) {
    setop_multi(ctx, args, ZDIFF);
}
fn zintercard_multi(ctx: &mut SrvCtx, args: &[&[u8]]) {
    setop_multi(ctx, args, ZINTERCARD);
}
fn zunionstore_multi(ctx: &mut SrvCtx, args: &[&[u8]]) {
    setop_multi(ctx, args, ZUNIONSTORE);
}
fn zinterstore_multi(ctx: &mut SrvCtx, args: &[&[u8]]) {
    setop_multi(ctx, args, ZINTERSTORE);
}
fn zdiffstore_multi(ctx: &mut SrvCtx, args: &[&[u8]]) {
    setop_multi(ctx, args, ZDIFFSTORE);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ks() -> Keyspace {
        let mut ks = Keyspace::new(16);
        ks.now = 1_700_000_000_000;
        ks
    }

    /// Runs a command of this family (single-shard path) and returns the
    /// reply bytes as text, checking arity as the dispatcher does.
    fn call3(ks: &mut Keyspace, resp3: bool, args: &[&str]) -> String {
        let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
        String::from_utf8(crate::cmd::run_keyed(ks, 0, resp3, &a)).unwrap()
    }

    fn call(ks: &mut Keyspace, args: &[&str]) -> String {
        call3(ks, false, args)
    }

    fn err(msg: &str) -> String {
        format!("-ERR {msg}\r\n")
    }

    #[test]
    fn table_matches_the_spec() {
        assert_eq!(COMMANDS.len(), 35);
        for c in COMMANDS {
            assert_eq!(c.group, "sorted-set");
            assert!(c.acl.contains("@sortedset"), "{}", c.name);
        }
        let keys = |name: &str, args: &[&str]| -> Vec<usize> {
            let c = COMMANDS.iter().find(|c| c.name == name).unwrap();
            let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
            c.key_positions(&a).collect()
        };
        assert_eq!(
            keys(
                "zunionstore",
                &["zunionstore", "d", "2", "a", "b", "WEIGHTS", "1", "2"]
            ),
            vec![1, 3, 4]
        );
        assert_eq!(keys("zinter", &["zinter", "2", "a", "b"]), vec![2, 3]);
        assert_eq!(
            keys("bzmpop", &["bzmpop", "0", "2", "a", "b", "MIN"]),
            vec![3, 4]
        );
        assert_eq!(keys("zmpop", &["zmpop", "1", "a", "MIN"]), vec![2]);
        assert_eq!(keys("bzpopmin", &["bzpopmin", "a", "b", "0"]), vec![1, 2]);
        assert_eq!(
            keys("zrangestore", &["zrangestore", "d", "s", "0", "-1"]),
            vec![1, 2]
        );
    }

    #[test]
    fn float_parsing_follows_redis() {
        for (s, v) in [
            ("1", 1.0),
            ("-2.5", -2.5),
            ("inf", f64::INFINITY),
            ("+inf", f64::INFINITY),
            ("-Infinity", f64::NEG_INFINITY),
            ("1e3", 1000.0),
            ("0x10", 16.0),
            (".5", 0.5),
            ("5.", 5.0),
            ("-0", 0.0),
            ("1e-310", 1e-310),
        ] {
            assert_eq!(parse_float_arg(s.as_bytes()), Some(v), "{s}");
        }
        for s in [
            "", " 1", "1 ", "abc", "nan", "1e400", "1e-400", "1e", ".", "-", "1x", "inf1",
        ] {
            assert_eq!(parse_float_arg(s.as_bytes()), None, "{s:?}");
        }
        assert!(parse_float_arg(b"-0").unwrap().is_sign_negative());
        // Range ends: plain strtod, so "" and leading spaces are fine.
        assert_eq!(parse_score_bound(b""), Some((0.0, false)));
        assert_eq!(parse_score_bound(b"("), Some((0.0, true)));
        assert_eq!(parse_score_bound(b" 1"), Some((1.0, false)));
        assert_eq!(parse_score_bound(b"(1.5"), Some((1.5, true)));
        assert_eq!(parse_score_bound(b"1e400"), Some((f64::INFINITY, false)));
        assert_eq!(parse_score_bound(b"  "), None);
        assert_eq!(parse_score_bound(b"nan"), None);
        assert_eq!(parse_score_bound(b"((1"), None);
        assert_eq!(parse_score_bound(b"1 "), None);
    }

    #[test]
    fn timeouts_follow_redis() {
        let now = 1_700_000_000_000;
        assert_eq!(parse_timeout(b"0", now), Ok(0));
        assert_eq!(parse_timeout(b"1.5", now), Ok(1500));
        assert_eq!(parse_timeout(b"0.0001", now), Ok(0));
        assert_eq!(parse_timeout(b"-0.0001", now), Ok(0));
        assert_eq!(parse_timeout(b"-1", now), Err("timeout is negative"));
        assert_eq!(parse_timeout(b"inf", now), Err("timeout is negative"));
        assert_eq!(parse_timeout(b"1e400", now), Err("timeout is negative"));
        assert_eq!(parse_timeout(b"9e15", now), Ok(9_000_000_000_000_000_000));
        assert_eq!(
            parse_timeout(b"9223372036854", now),
            Ok(9_223_372_036_854_000)
        );
        assert_eq!(parse_timeout(b"9.223372e15", now), Ok(0));
        for bad in ["abc", "", " 1", "1 ", "nan"] {
            assert_eq!(
                parse_timeout(bad.as_bytes(), now),
                Err("timeout is not a float or out of range"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn zadd_options_and_errors() {
        let mut k = ks();
        assert_eq!(call(&mut k, &["ZADD", "z", "1", "a", "2", "b"]), ":2\r\n");
        assert_eq!(
            call(&mut k, &["ZADD", "z", "CH", "5", "a", "3", "c"]),
            ":2\r\n"
        );
        assert_eq!(call(&mut k, &["ZADD", "z", "NX", "9", "a"]), ":0\r\n");
        assert_eq!(call(&mut k, &["ZADD", "z", "XX", "9", "x"]), ":0\r\n");
        assert_eq!(call(&mut k, &["ZADD", "z", "GT", "CH", "1", "a"]), ":0\r\n");
        assert_eq!(call(&mut k, &["ZADD", "z", "LT", "CH", "1", "a"]), ":1\r\n");
        assert_eq!(
            call(&mut k, &["ZADD", "z", "INCR", "2", "a"]),
            "$1\r\n3\r\n"
        );
        assert_eq!(
            call3(&mut k, true, &["ZADD", "z", "INCR", "0.5", "a"]),
            ",3.5\r\n"
        );
        assert_eq!(
            call(&mut k, &["ZADD", "z", "XX", "INCR", "1", "nope"]),
            "$-1\r\n"
        );
        assert_eq!(
            call3(&mut k, true, &["ZADD", "z", "GT", "INCR", "-1", "a"]),
            "_\r\n"
        );
        assert_eq!(
            call(&mut k, &["ZADD", "z", "NX", "XX", "1", "a"]),
            err("XX and NX options at the same time are not compatible")
        );
        assert_eq!(
            call(&mut k, &["ZADD", "z", "GT", "LT", "1", "a"]),
            err("GT, LT, and/or NX options at the same time are not compatible")
        );
        assert_eq!(
            call(&mut k, &["ZADD", "z", "NX", "GT", "1", "a"]),
            err("GT, LT, and/or NX options at the same time are not compatible")
        );
        assert_eq!(
            call(&mut k, &["ZADD", "z", "INCR", "1", "a", "2", "b"]),
            err("INCR option supports a single increment-element pair")
        );
        assert_eq!(
            call(&mut k, &["ZADD", "z", "1", "a", "2"]),
            err("syntax error")
        );
        assert_eq!(
            call(&mut k, &["ZADD", "z", "NX", "CH"]),
            err("syntax error")
        );
        assert_eq!(
            call(&mut k, &["ZADD", "z", "1", "a", "x", "b"]),
            err("value is not a valid float")
        );
        assert_eq!(
            call(&mut k, &["ZADD", "z", "nan", "a"]),
            err("value is not a valid float")
        );
        assert_eq!(call(&mut k, &["ZADD", "z", "inf", "i"]), ":1\r\n");
        assert_eq!(
            call(&mut k, &["ZINCRBY", "z", "-inf", "i"]),
            err("resulting score is not a number (NaN)")
        );
        assert_eq!(call(&mut k, &["ZINCRBY", "z", "1", "new"]), "$1\r\n1\r\n");
        // ZINCRBY shares ZADD's option scan: "nx" is taken as an option.
        assert_eq!(
            call(&mut k, &["ZINCRBY", "z", "nx", "m"]),
            err("syntax error")
        );
        ks_set_string(&mut k, "s");
        assert_eq!(
            call(&mut k, &["ZADD", "s", "1", "a"]),
            "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
        );
        // Syntax and float errors come before the type check.
        assert_eq!(
            call(&mut k, &["ZADD", "s", "x", "a"]),
            err("value is not a valid float")
        );
        assert_eq!(call(&mut k, &["ZADD", "nokey", "XX", "1", "a"]), ":0\r\n");
        assert!(k.get(0, b"nokey").is_none());
    }

    fn ks_set_string(k: &mut Keyspace, key: &str) {
        k.set(
            0,
            key.as_bytes(),
            Value::Str(crate::types::Str::from_bytes(b"v")),
            false,
        );
    }

    #[test]
    fn replies_in_resp2_and_resp3() {
        let mut k = ks();
        call(&mut k, &["ZADD", "z", "1", "a", "2.5", "b", "inf", "c"]);
        assert_eq!(call(&mut k, &["ZSCORE", "z", "b"]), "$3\r\n2.5\r\n");
        assert_eq!(call3(&mut k, true, &["ZSCORE", "z", "b"]), ",2.5\r\n");
        assert_eq!(call3(&mut k, true, &["ZSCORE", "z", "c"]), ",inf\r\n");
        assert_eq!(call3(&mut k, true, &["ZSCORE", "z", "x"]), "_\r\n");
        assert_eq!(
            call(&mut k, &["ZMSCORE", "z", "a", "x"]),
            "*2\r\n$1\r\n1\r\n$-1\r\n"
        );
        assert_eq!(call(&mut k, &["ZMSCORE", "nokey", "a"]), "*1\r\n$-1\r\n");
        assert_eq!(
            call(&mut k, &["ZRANGE", "z", "0", "1", "WITHSCORES"]),
            "*4\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$3\r\n2.5\r\n"
        );
        assert_eq!(
            call3(&mut k, true, &["ZRANGE", "z", "0", "1", "WITHSCORES"]),
            "*2\r\n*2\r\n$1\r\na\r\n,1\r\n*2\r\n$1\r\nb\r\n,2.5\r\n"
        );
        assert_eq!(
            call3(
                &mut k,
                true,
                &[
                    "ZRANGEBYSCORE",
                    "z",
                    "(1",
                    "+inf",
                    "WITHSCORES",
                    "LIMIT",
                    "1",
                    "5"
                ]
            ),
            "*1\r\n*2\r\n$1\r\nc\r\n,inf\r\n"
        );
        assert_eq!(call(&mut k, &["ZRANK", "z", "c"]), ":2\r\n");
        assert_eq!(call(&mut k, &["ZREVRANK", "z", "c"]), ":0\r\n");
        assert_eq!(call3(&mut k, true, &["ZRANK", "z", "x"]), "_\r\n");
        assert_eq!(call(&mut k, &["ZCARD", "z"]), ":3\r\n");
        assert_eq!(call(&mut k, &["ZCOUNT", "z", "(1", "inf"]), ":2\r\n");
        // Pops: flat without COUNT, nested in RESP3 with it.
        assert_eq!(
            call3(&mut k, true, &["ZPOPMIN", "z"]),
            "*2\r\n$1\r\na\r\n,1\r\n"
        );
        assert_eq!(
            call3(&mut k, true, &["ZPOPMAX", "z", "1"]),
            "*1\r\n*2\r\n$1\r\nc\r\n,inf\r\n"
        );
        assert_eq!(call(&mut k, &["ZPOPMAX", "z", "0"]), "*0\r\n");
        assert_eq!(
            call(&mut k, &["ZPOPMIN", "z", "5"]),
            "*2\r\n$1\r\nb\r\n$3\r\n2.5\r\n"
        );
        assert!(k.get(0, b"z").is_none(), "empty keys vanish");
        assert_eq!(call(&mut k, &["ZPOPMIN", "z"]), "*0\r\n");
        assert_eq!(
            call(&mut k, &["ZPOPMIN", "z", "-1"]),
            err("value is out of range, must be positive")
        );
        assert_eq!(
            call(&mut k, &["ZPOPMIN", "z", "1", "2"]),
            err("syntax error")
        );
        // ZMPOP: null array when nothing is there.
        assert_eq!(call(&mut k, &["ZMPOP", "1", "z", "MIN"]), "*-1\r\n");
        assert_eq!(call3(&mut k, true, &["ZMPOP", "1", "z", "MIN"]), "_\r\n");
        call(&mut k, &["ZADD", "y", "1", "a", "2", "b"]);
        assert_eq!(
            call3(&mut k, true, &["ZMPOP", "2", "z", "y", "MAX", "COUNT", "5"]),
            "*2\r\n$1\r\ny\r\n*2\r\n*2\r\n$1\r\nb\r\n,2\r\n*2\r\n$1\r\na\r\n,1\r\n"
        );
        assert_eq!(
            call(&mut k, &["ZMPOP", "0", "z", "MIN"]),
            err("numkeys should be greater than 0")
        );
        assert_eq!(
            call(&mut k, &["ZMPOP", "2", "z", "MIN"]),
            err("syntax error")
        );
        assert_eq!(
            call(&mut k, &["ZMPOP", "1", "z", "MIN", "COUNT", "0"]),
            err("count should be greater than 0")
        );
        assert_eq!(
            call(
                &mut k,
                &["ZMPOP", "1", "z", "MIN", "COUNT", "1", "COUNT", "1"]
            ),
            err("syntax error")
        );
    }

    #[test]
    fn range_option_errors_in_redis_order() {
        let mut k = ks();
        call(&mut k, &["ZADD", "z", "0", "a", "0", "b", "0", "c"]);
        assert_eq!(
            call(&mut k, &["ZRANGE", "z", "0", "1", "LIMIT", "0", "1"]),
            err(
                "syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"
            )
        );
        // LIMIT 0 -1 is the default, so it passes.
        assert_eq!(
            call(&mut k, &["ZRANGE", "z", "0", "0", "LIMIT", "0", "-1"]),
            "*1\r\n$1\r\na\r\n"
        );
        assert_eq!(
            call(&mut k, &["ZRANGE", "z", "-", "+", "BYLEX", "WITHSCORES"]),
            err("syntax error, WITHSCORES not supported in combination with BYLEX")
        );
        assert_eq!(
            call(&mut k, &["ZRANGEBYSCORE", "z", "0", "1", "REV"]),
            err("syntax error")
        );
        assert_eq!(
            call(&mut k, &["ZRANGE", "z", "x", "1"]),
            err("value is not an integer or out of range")
        );
        assert_eq!(
            call(&mut k, &["ZRANGE", "z", "a", "1", "BYSCORE"]),
            err("min or max is not a float")
        );
        assert_eq!(
            call(&mut k, &["ZRANGE", "z", "a", "+", "BYLEX"]),
            err("min or max not valid string range item")
        );
        assert_eq!(
            call(&mut k, &["ZRANGE", "z", "+", "(a", "BYLEX", "REV"]),
            "*2\r\n$1\r\nc\r\n$1\r\nb\r\n"
        );
        assert_eq!(
            call(
                &mut k,
                &["ZREVRANGEBYLEX", "z", "+", "-", "LIMIT", "1", "1"]
            ),
            "*1\r\n$1\r\nb\r\n"
        );
        assert_eq!(
            call(
                &mut k,
                &["ZRANGEBYLEX", "z", "(a", "[c", "LIMIT", "-1", "5"]
            ),
            "*0\r\n"
        );
        assert_eq!(call(&mut k, &["ZLEXCOUNT", "z", "(a", "+"]), ":2\r\n");
        assert_eq!(
            call(&mut k, &["ZLEXCOUNT", "z", "a", "+"]),
            err("min or max not valid string range item")
        );
        assert_eq!(
            call(&mut k, &["ZRANGESTORE", "d", "z", "0", "-1", "WITHSCORES"]),
            err("syntax error")
        );
        assert_eq!(
            call(&mut k, &["ZRANGESTORE", "d", "z", "[b", "+", "BYLEX"]),
            ":2\r\n"
        );
        assert_eq!(
            call(&mut k, &["ZRANGE", "d", "0", "-1"]),
            "*2\r\n$1\r\nb\r\n$1\r\nc\r\n"
        );
        assert_eq!(
            call(&mut k, &["ZRANGESTORE", "d", "nokey", "0", "-1"]),
            ":0\r\n"
        );
        assert!(k.get(0, b"d").is_none());
        assert_eq!(call(&mut k, &["ZREMRANGEBYLEX", "z", "[b", "+"]), ":2\r\n");
        assert_eq!(call(&mut k, &["ZREMRANGEBYRANK", "z", "0", "0"]), ":1\r\n");
        assert!(k.get(0, b"z").is_none());
    }

    #[test]
    fn set_operations() {
        let mut k = ks();
        call(&mut k, &["ZADD", "a", "1", "x", "2", "y", "inf", "z"]);
        call(&mut k, &["ZADD", "b", "10", "y", "-inf", "z", "3", "w"]);
        assert_eq!(
            call(&mut k, &["ZUNION", "2", "a", "b", "WITHSCORES"]),
            "*8\r\n$1\r\nz\r\n$1\r\n0\r\n$1\r\nx\r\n$1\r\n1\r\n$1\r\nw\r\n$1\r\n3\r\n$1\r\ny\r\n$2\r\n12\r\n"
        );
        assert_eq!(
            call(
                &mut k,
                &[
                    "ZINTER",
                    "2",
                    "a",
                    "b",
                    "WEIGHTS",
                    "2",
                    "0.5",
                    "AGGREGATE",
                    "MAX",
                    "WITHSCORES"
                ]
            ),
            "*4\r\n$1\r\ny\r\n$1\r\n5\r\n$1\r\nz\r\n$3\r\ninf\r\n"
        );
        assert_eq!(call(&mut k, &["ZDIFF", "2", "a", "b"]), "*1\r\n$1\r\nx\r\n");
        assert_eq!(
            call(&mut k, &["ZINTERCARD", "2", "a", "b", "LIMIT", "1"]),
            ":1\r\n"
        );
        assert_eq!(
            call(&mut k, &["ZINTERSTORE", "d", "2", "a", "nokey"]),
            ":0\r\n"
        );
        assert_eq!(
            call(
                &mut k,
                &["ZUNIONSTORE", "d", "2", "a", "b", "AGGREGATE", "MIN"]
            ),
            ":4\r\n"
        );
        assert_eq!(call(&mut k, &["ZSCORE", "d", "y"]), "$1\r\n2\r\n");
        assert_eq!(
            call(&mut k, &["ZUNION", "0", "a"]),
            err("at least 1 input key is needed for 'zunion' command")
        );
        assert_eq!(
            call(&mut k, &["ZUNIONSTORE", "d", "0", "a"]),
            err("at least 1 input key is needed for 'zunionstore' command")
        );
        assert_eq!(
            call(&mut k, &["ZUNION", "3", "a", "b"]),
            err("syntax error")
        );
        assert_eq!(
            call(&mut k, &["ZUNION", "x", "a"]),
            err("value is not an integer or out of range")
        );
        assert_eq!(
            call(&mut k, &["ZUNION", "1", "a", "WEIGHTS", "x"]),
            err("weight value is not a float")
        );
        assert_eq!(
            call(&mut k, &["ZUNION", "1", "a", "AGGREGATE", "avg"]),
            err("syntax error")
        );
        assert_eq!(
            call(&mut k, &["ZDIFF", "1", "a", "WEIGHTS", "1"]),
            err("syntax error")
        );
        assert_eq!(
            call(&mut k, &["ZUNIONSTORE", "d", "1", "a", "WITHSCORES"]),
            err("syntax error")
        );
        assert_eq!(
            call(&mut k, &["ZINTERCARD", "1", "a", "LIMIT", "-1"]),
            err("LIMIT can't be negative")
        );
        assert_eq!(
            call(&mut k, &["ZINTERCARD", "1", "a", "WITHSCORES"]),
            err("syntax error")
        );
        ks_set_string(&mut k, "s");
        // WRONGTYPE comes before option errors.
        assert_eq!(
            call(&mut k, &["ZUNION", "2", "a", "s", "BOGUS"]),
            "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
        );
    }

    #[test]
    fn blocking_pops_park_or_serve() {
        let mut k = ks();
        assert_eq!(call(&mut k, &["BZPOPMIN", "a", "b", "1.5"]), "");
        let req = k.block_request.take().expect("asked to block");
        assert_eq!(req.keys, vec![b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(req.deadline_ms, k.now + 1500);
        assert!(req.null_array);
        call(&mut k, &["ZADD", "b", "1", "m"]);
        assert_eq!(
            call3(&mut k, true, &["BZPOPMIN", "a", "b", "0"]),
            "*3\r\n$1\r\nb\r\n$1\r\nm\r\n,1\r\n"
        );
        assert!(k.block_request.is_none());
        // The timeout is checked first, even when data is there.
        call(&mut k, &["ZADD", "b", "1", "m"]);
        assert_eq!(
            call(&mut k, &["BZPOPMAX", "b", "-1"]),
            err("timeout is negative")
        );
        assert_eq!(
            call(&mut k, &["BZMPOP", "0", "1", "b", "MAX"]),
            "*2\r\n$1\r\nb\r\n*1\r\n*2\r\n$1\r\nm\r\n$1\r\n1\r\n"
        );
        assert_eq!(call(&mut k, &["BZMPOP", "0", "1", "b", "MAX"]), "");
        assert_eq!(k.block_request.take().unwrap().deadline_ms, 0);
        assert_eq!(
            call(&mut k, &["BZMPOP", "x", "1", "b", "MAX"]),
            err("timeout is not a float or out of range")
        );
        assert_eq!(
            call(&mut k, &["BZMPOP", "x", "1", "b", "MID"]),
            err("syntax error")
        );
    }

    #[test]
    fn randmember_and_scan() {
        let mut k = ks();
        call(&mut k, &["ZADD", "z", "1", "a", "2", "b", "3", "c"]);
        assert_eq!(call(&mut k, &["ZRANDMEMBER", "nokey"]), "$-1\r\n");
        assert_eq!(call(&mut k, &["ZRANDMEMBER", "nokey", "3"]), "*0\r\n");
        assert_eq!(call(&mut k, &["ZRANDMEMBER", "z", "0"]), "*0\r\n");
        // The whole set, highest score first, as Redis walks it.
        assert_eq!(
            call(&mut k, &["ZRANDMEMBER", "z", "10", "WITHSCORES"]),
            "*6\r\n$1\r\nc\r\n$1\r\n3\r\n$1\r\nb\r\n$1\r\n2\r\n$1\r\na\r\n$1\r\n1\r\n"
        );
        assert!(call(&mut k, &["ZRANDMEMBER", "z", "-5"]).starts_with("*5\r\n"));
        assert!(
            call3(&mut k, true, &["ZRANDMEMBER", "z", "-2", "WITHSCORES"])
                .starts_with("*2\r\n*2\r\n")
        );
        assert!(call(&mut k, &["ZRANDMEMBER", "z", "2"]).starts_with("*2\r\n"));
        assert_eq!(
            call(&mut k, &["ZRANDMEMBER", "z", "-9223372036854775808"]),
            err("value is out of range, value must between -9223372036854775807 and 9223372036854775807")
        );
        assert_eq!(
            call(
                &mut k,
                &["ZRANDMEMBER", "z", "-5000000000000000000", "WITHSCORES"]
            ),
            err("value is out of range")
        );
        assert_eq!(
            call(&mut k, &["ZRANDMEMBER", "z", "1", "x"]),
            err("syntax error")
        );
        // ZSCAN of a listpack: everything at once, scores as bulk strings.
        assert_eq!(
            call3(&mut k, true, &["ZSCAN", "z", "0", "MATCH", "[ab]"]),
            "*2\r\n$1\r\n0\r\n*4\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n"
        );
        assert_eq!(
            call(&mut k, &["ZSCAN", "nokey", "0", "COUNT", "0"]),
            "*2\r\n$1\r\n0\r\n*0\r\n"
        );
        assert_eq!(
            call(&mut k, &["ZSCAN", "z", "0", "COUNT", "0"]),
            err("syntax error")
        );
        assert_eq!(call(&mut k, &["ZSCAN", "z", "x"]), err("invalid cursor"));
    }

    #[test]
    fn encodings_convert_like_redis() {
        let mut k = ks();
        k.enc.zset_max_listpack_entries = 4;
        k.enc.zset_max_listpack_value = 8;
        let enc = |k: &mut Keyspace, key: &str| k.get(0, key.as_bytes()).unwrap().encoding();
        call(
            &mut k,
            &["ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d"],
        );
        assert_eq!(enc(&mut k, "z"), "listpack");
        call(&mut k, &["ZADD", "z", "5", "e"]);
        assert_eq!(enc(&mut k, "z"), "skiplist");
        call(&mut k, &["ZREM", "z", "a", "b", "c"]);
        assert_eq!(
            enc(&mut k, "z"),
            "skiplist",
            "no conversion back on removal"
        );
        call(&mut k, &["ZUNIONSTORE", "u", "1", "z"]);
        assert_eq!(
            enc(&mut k, "u"),
            "listpack",
            "results convert back when they fit"
        );
        call(&mut k, &["ZADD", "long", "1", "123456789"]);
        assert_eq!(enc(&mut k, "long"), "skiplist");
        call(&mut k, &["ZRANGESTORE", "r", "long", "0", "-1"]);
        assert_eq!(enc(&mut k, "r"), "skiplist");
        // -0 survives in the skiplist encoding only (listpacks store 0).
        call(&mut k, &["ZADD", "long", "-0", "n"]);
        assert_eq!(call(&mut k, &["ZSCORE", "long", "n"]), "$2\r\n-0\r\n");
        call(&mut k, &["ZADD", "small", "-0", "n"]);
        assert_eq!(call(&mut k, &["ZSCORE", "small", "n"]), "$1\r\n0\r\n");
        assert_eq!(
            call(&mut k, &["ZINCRBY", "small2", "-0", "n"]),
            "$2\r\n-0\r\n"
        );
    }

    #[test]
    fn large_leaderboard_ranks() {
        // A big set through the commands: ranks, ranges, removals.
        let mut k = ks();
        let n = 20_000;
        for i in 0..n {
            let (s, m) = (((i * 7919) % n).to_string(), format!("p{i}"));
            call(&mut k, &["ZADD", "lb", &s, &m]);
        }
        assert_eq!(call(&mut k, &["ZCARD", "lb"]), format!(":{n}\r\n"));
        for i in (0..n).step_by(997) {
            let m = format!("p{i}");
            let score = (i * 7919) % n;
            assert_eq!(call(&mut k, &["ZRANK", "lb", &m]), format!(":{score}\r\n"));
            assert_eq!(
                call(&mut k, &["ZREVRANK", "lb", &m]),
                format!(":{}\r\n", n - 1 - score)
            );
        }
        let r = call(&mut k, &["ZRANGE", "lb", "100", "101", "WITHSCORES"]);
        assert!(
            r.starts_with("*4\r\n") && r.contains("$3\r\n100\r\n") && r.ends_with("$3\r\n101\r\n")
        );
        assert_eq!(call(&mut k, &["ZCOUNT", "lb", "(100", "200"]), ":100\r\n");
        assert_eq!(
            call(&mut k, &["ZREMRANGEBYSCORE", "lb", "-inf", "(10000"]),
            ":10000\r\n"
        );
        assert_eq!(
            call(&mut k, &["ZREMRANGEBYRANK", "lb", "0", "99"]),
            ":100\r\n"
        );
        assert_eq!(
            call(&mut k, &["ZRANGE", "lb", "0", "0", "WITHSCORES"])
                .matches("10100")
                .count(),
            1
        );
    }
}
