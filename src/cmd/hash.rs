//! The hash family (Redis's t_hash.c): HSET and friends, counters,
//! whole-hash reads, HRANDFIELD and HSCAN.
//!
//! Every handler follows Redis 7.0's order of checks (arity, then argument
//! syntax and numbers, then the key lookup and its type) so that error
//! replies match exactly. A key whose last field is deleted vanishes; a
//! write to a missing key creates the hash (only once it holds a field).
//! The data structure and its encodings live in [`crate::types::hash`].

use super::{CmdSpec, Ctx, Run, DENYOOM, FAST, READONLY, WRITE};
use crate::notify as N;
use crate::resp::Out;
use crate::shard::keyspace::{EncCfg, Keyspace};
use crate::types::hash::{Elem, Hash};
use crate::types::Value;
use crate::util::{eq_ic, glob_match, parse_i64};

#[allow(clippy::too_many_arguments)]
const fn spec(
    name: &'static str,
    arity: i32,
    flags: u32,
    acl: &'static str,
    since: &'static str,
    run: Run,
    summary: &'static str,
) -> CmdSpec {
    CmdSpec {
        name,
        arity,
        flags,
        first_key: 1,
        last_key: 1,
        step: 1,
        group: "hash",
        acl,
        summary,
        since,
        run,
        subs: &[],
        getkeys: None,
    }
}

const R_FAST: &str = "@read @hash @fast";
const R_SLOW: &str = "@read @hash @slow";
const W_FAST: &str = "@write @hash @fast";

#[rustfmt::skip]
pub static COMMANDS: &[CmdSpec] = &[
    spec("hdel", -3, WRITE | FAST, W_FAST, "2.0.0", Run::Key(hdel), "Delete one or more hash fields"),
    spec("hexists", 3, READONLY | FAST, R_FAST, "2.0.0", Run::Key(hexists), "Determine if a hash field exists"),
    spec("hget", 3, READONLY | FAST, R_FAST, "2.0.0", Run::Key(hget), "Get the value of a hash field"),
    spec("hgetall", 2, READONLY, R_SLOW, "2.0.0", Run::Key(hgetall), "Get all the fields and values in a hash"),
    spec("hincrby", 4, WRITE | DENYOOM | FAST, W_FAST, "2.0.0", Run::Key(hincrby), "Increment the integer value of a hash field by the given number"),
    spec("hincrbyfloat", 4, WRITE | DENYOOM | FAST, W_FAST, "2.6.0", Run::Key(hincrbyfloat), "Increment the float value of a hash field by the given amount"),
    spec("hkeys", 2, READONLY, R_SLOW, "2.0.0", Run::Key(hkeys), "Get all the fields in a hash"),
    spec("hlen", 2, READONLY | FAST, R_FAST, "2.0.0", Run::Key(hlen), "Get the number of fields in a hash"),
    spec("hmget", -3, READONLY | FAST, R_FAST, "2.0.0", Run::Key(hmget), "Get the values of all the given hash fields"),
    spec("hmset", -4, WRITE | DENYOOM | FAST, W_FAST, "2.0.0", Run::Key(hmset), "Set multiple hash fields to multiple values"),
    spec("hrandfield", -2, READONLY, R_SLOW, "6.2.0", Run::Key(hrandfield), "Get one or multiple random fields from a hash"),
    spec("hscan", -3, READONLY, R_SLOW, "2.8.0", Run::Key(hscan), "Incrementally iterate hash fields and associated values"),
    spec("hset", -4, WRITE | DENYOOM | FAST, W_FAST, "2.0.0", Run::Key(hset), "Set the string value of a hash field"),
    spec("hsetnx", 4, WRITE | DENYOOM | FAST, W_FAST, "2.0.0", Run::Key(hsetnx), "Set the value of a hash field, only if the field does not exist"),
    spec("hstrlen", 3, READONLY | FAST, R_FAST, "3.2.0", Run::Key(hstrlen), "Get the length of the value of a hash field"),
    spec("hvals", 2, READONLY, R_SLOW, "2.0.0", Run::Key(hvals), "Get all the values in a hash"),
];

// ----- helpers -------------------------------------------------------------

#[allow(unreachable_patterns)]
#[inline]
fn hash_ref(v: &Value) -> Option<&Hash> {
    match v {
        Value::Hash(h) => Some(h),
        _ => None,
    }
}

#[allow(unreachable_patterns)]
#[inline]
fn hash_mut(v: &mut Value) -> Option<&mut Hash> {
    match v {
        Value::Hash(h) => Some(h),
        _ => None,
    }
}

/// Looks a hash up for reading (counting a keyspace hit or miss):
/// Ok(None) when the key is missing, Err(()) after replying WRONGTYPE.
fn read<'a>(
    ks: &'a mut Keyspace,
    db: usize,
    key: &[u8],
    out: &mut Out,
) -> Result<Option<&'a Hash>, ()> {
    match ks.get(db, key) {
        None => Ok(None),
        Some(v) => match hash_ref(v) {
            Some(h) => Ok(Some(h)),
            None => {
                out.wrongtype();
                Err(())
            }
        },
    }
}

/// Runs `f` on the hash at `key` for writing, as Redis's
/// `hashTypeLookupWriteOrCreate`: a missing key gets a new hash, stored
/// only if `f` leaves it non-empty; another type replies WRONGTYPE. `f`
/// replies and returns the number of writes it made (for `dirty`).
/// A change records the keyspace event `event`.
fn update(
    ctx: &mut Ctx,
    key: &[u8],
    event: &'static str,
    f: impl FnOnce(&mut Hash, &mut Out, &EncCfg) -> u64,
) {
    let db = ctx.db;
    let enc = ctx.ks.enc;
    let n = match ctx.ks.get_mut(db, key) {
        Some(v) => {
            let Some(h) = hash_mut(v) else {
                ctx.out.wrongtype();
                return;
            };
            let n = f(h, &mut ctx.out, &enc);
            ctx.ks.touch_write(n);
            n
        }
        None => {
            let mut h = Hash::new();
            let n = f(&mut h, &mut ctx.out, &enc);
            if !h.is_empty() {
                ctx.ks.set(db, key, Value::Hash(Box::new(h)), false);
                ctx.ks.touch_write(n.saturating_sub(1));
            }
            n
        }
    };
    if n > 0 {
        ctx.ks.notify(N::HASH, event, db, key);
    }
}

#[inline]
fn set_field(h: &mut Hash, enc: &EncCfg, field: &[u8], value: &[u8]) -> bool {
    h.set(
        field,
        value,
        enc.hash_max_listpack_entries,
        enc.hash_max_listpack_value,
    )
}

#[inline]
fn bulk_elem(out: &mut Out, e: Elem) {
    match e {
        Elem::Str(s) => out.bulk(s),
        Elem::Int(n) => out.bulk_int(n),
    }
}

/// A small PRNG (splitmix64) seeded from the keyspace's generator, so the
/// hash can stay borrowed while random numbers are drawn.
fn rng(mut seed: u64) -> impl FnMut() -> u64 {
    move || {
        seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

// ----- writes --------------------------------------------------------------

/// HSET and HMSET (Redis's `hsetCommand`): an odd number of arguments is
/// an arity error; HSET replies the number of added fields, HMSET OK.
fn hset_generic(ctx: &mut Ctx, args: &[&[u8]], name: &str) {
    if args.len() % 2 == 1 {
        ctx.out.wrong_arity(name);
        return;
    }
    let is_hset = name == "hset";
    update(ctx, args[1], "hset", |h, out, enc| {
        let mut added = 0;
        for p in args[2..].chunks_exact(2) {
            added += set_field(h, enc, p[0], p[1]) as i64;
        }
        if is_hset {
            out.int(added);
        } else {
            out.ok();
        }
        (args.len() as u64 - 2) / 2
    });
}

fn hset(ctx: &mut Ctx, args: &[&[u8]]) {
    hset_generic(ctx, args, "hset");
}

fn hmset(ctx: &mut Ctx, args: &[&[u8]]) {
    hset_generic(ctx, args, "hmset");
}

fn hsetnx(ctx: &mut Ctx, args: &[&[u8]]) {
    let (field, value) = (args[2], args[3]);
    update(ctx, args[1], "hset", |h, out, enc| {
        if h.contains(field) {
            out.int(0);
            0
        } else {
            set_field(h, enc, field, value);
            out.int(1);
            1
        }
    });
}

fn hdel(ctx: &mut Ctx, args: &[&[u8]]) {
    let (db, key) = (ctx.db, args[1]);
    let Some(v) = ctx.ks.get_mut(db, key) else {
        ctx.out.int(0);
        return;
    };
    let Some(h) = hash_mut(v) else {
        ctx.out.wrongtype();
        return;
    };
    let mut deleted = 0u64;
    for f in &args[2..] {
        if h.remove(f) {
            deleted += 1;
            if h.is_empty() {
                break;
            }
        }
    }
    let emptied = h.is_empty();
    if emptied {
        // The key goes with its last field (delete counts one write).
        ctx.ks.delete(db, key);
        ctx.ks.touch_write(deleted - 1);
    } else {
        ctx.ks.touch_write(deleted);
    }
    if deleted > 0 {
        ctx.ks.notify(N::HASH, "hdel", db, key);
        if emptied {
            ctx.ks.notify(N::GENERIC, "del", db, key);
        }
    }
    ctx.out.int(deleted as i64);
}

fn hincrby(ctx: &mut Ctx, args: &[&[u8]]) {
    let Some(incr) = parse_i64(args[3]) else {
        ctx.out.not_int();
        return;
    };
    let field = args[2];
    update(ctx, args[1], "hincrby", |h, out, enc| {
        let cur = match h.get(field) {
            None => 0,
            Some(e) => match e.as_int() {
                Some(n) => n,
                None => {
                    out.err("hash value is not an integer");
                    return 0;
                }
            },
        };
        let Some(new) = cur.checked_add(incr) else {
            out.err("increment or decrement would overflow");
            return 0;
        };
        set_field(h, enc, field, itoa::Buffer::new().format(new).as_bytes());
        out.int(new);
        1
    });
}

fn hincrbyfloat(ctx: &mut Ctx, args: &[&[u8]]) {
    let incr = match ld::parse(args[3]) {
        Some(ld::Num::Finite(f)) => f,
        Some(ld::Num::Inf) => {
            ctx.out.err("value is NaN or Infinity");
            return;
        }
        None => {
            ctx.out.not_float();
            return;
        }
    };
    let field = args[2];
    update(ctx, args[1], "hincrbyfloat", |h, out, enc| {
        let cur = match h.get(field) {
            None => ld::Num::Finite(ld::F80::ZERO),
            Some(Elem::Int(n)) => ld::Num::Finite(ld::F80::from_i64(n)),
            Some(Elem::Str(s)) => match ld::parse(s) {
                Some(n) => n,
                None => {
                    out.err("hash value is not a float");
                    return 0;
                }
            },
        };
        let sum = match cur {
            ld::Num::Finite(a) => ld::add(a, incr),
            ld::Num::Inf => ld::Num::Inf,
        };
        let ld::Num::Finite(sum) = sum else {
            out.err("increment would produce NaN or Infinity");
            return 0;
        };
        let text = ld::format(sum);
        set_field(h, enc, field, text.as_bytes());
        out.bulk(text.as_bytes());
        1
    });
}

// ----- reads ---------------------------------------------------------------

fn hget(ctx: &mut Ctx, args: &[&[u8]]) {
    let Ok(h) = read(ctx.ks, ctx.db, args[1], &mut ctx.out) else {
        return;
    };
    match h.and_then(|h| h.get(args[2])) {
        Some(e) => bulk_elem(&mut ctx.out, e),
        None => ctx.out.null(),
    }
}

fn hmget(ctx: &mut Ctx, args: &[&[u8]]) {
    let Ok(h) = read(ctx.ks, ctx.db, args[1], &mut ctx.out) else {
        return;
    };
    ctx.out.array(args.len() - 2);
    for f in &args[2..] {
        match h.and_then(|h| h.get(f)) {
            Some(e) => bulk_elem(&mut ctx.out, e),
            None => ctx.out.null(),
        }
    }
}

fn hlen(ctx: &mut Ctx, args: &[&[u8]]) {
    let Ok(h) = read(ctx.ks, ctx.db, args[1], &mut ctx.out) else {
        return;
    };
    ctx.out.int(h.map_or(0, |h| h.len() as i64));
}

fn hstrlen(ctx: &mut Ctx, args: &[&[u8]]) {
    let Ok(h) = read(ctx.ks, ctx.db, args[1], &mut ctx.out) else {
        return;
    };
    let n = h.and_then(|h| h.get(args[2])).map_or(0, |e| e.len());
    ctx.out.int(n as i64);
}

fn hexists(ctx: &mut Ctx, args: &[&[u8]]) {
    let Ok(h) = read(ctx.ks, ctx.db, args[1], &mut ctx.out) else {
        return;
    };
    ctx.out.int(h.is_some_and(|h| h.contains(args[2])) as i64);
}

const KEYS: u8 = 1;
const VALS: u8 = 2;

/// HKEYS, HVALS and HGETALL (Redis's `genericHgetallCommand`): HGETALL
/// replies a map (RESP3) or flat array, the others an array.
fn getall_generic(ctx: &mut Ctx, key: &[u8], what: u8) {
    let Ok(h) = read(ctx.ks, ctx.db, key, &mut ctx.out) else {
        return;
    };
    let out = &mut ctx.out;
    let n = h.map_or(0, |h| h.len());
    if what == KEYS | VALS {
        out.map(n);
    } else {
        out.array(n);
    }
    let Some(h) = h else {
        return;
    };
    for (f, v) in h.iter() {
        if what & KEYS != 0 {
            bulk_elem(out, f);
        }
        if what & VALS != 0 {
            bulk_elem(out, v);
        }
    }
}

fn hkeys(ctx: &mut Ctx, args: &[&[u8]]) {
    getall_generic(ctx, args[1], KEYS);
}

fn hvals(ctx: &mut Ctx, args: &[&[u8]]) {
    getall_generic(ctx, args[1], VALS);
}

fn hgetall(ctx: &mut Ctx, args: &[&[u8]]) {
    getall_generic(ctx, args[1], KEYS | VALS);
}

// ----- HRANDFIELD ----------------------------------------------------------

/// Above this many requested fields relative to the hash size (count * 3 >
/// size), HRANDFIELD copies the hash and removes random fields instead of
/// picking (Redis's HRANDFIELD_SUB_STRATEGY_MUL).
const SUB_STRATEGY_MUL: u64 = 3;

fn hrandfield(ctx: &mut Ctx, args: &[&[u8]]) {
    if args.len() >= 3 {
        // getRangeLongFromObjectOrReply(-LONG_MAX, LONG_MAX), then syntax.
        let l = match parse_i64(args[2]) {
            None => {
                ctx.out.not_int();
                return;
            }
            Some(i64::MIN) => {
                ctx.out.err(
                    "value is out of range, value must between -9223372036854775807 and 9223372036854775807",
                );
                return;
            }
            Some(l) => l,
        };
        if args.len() > 4 || (args.len() == 4 && !eq_ic(args[3], "withvalues")) {
            ctx.out.syntax();
            return;
        }
        let withvalues = args.len() == 4;
        if withvalues && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&l) {
            ctx.out.err("value is out of range");
            return;
        }
        hrandfield_count(ctx, args[1], l, withvalues);
        return;
    }
    let mut rnd = rng(ctx.ks.rand());
    let Ok(h) = read(ctx.ks, ctx.db, args[1], &mut ctx.out) else {
        return;
    };
    match h {
        None => ctx.out.null(),
        Some(h) => {
            let (f, _) = h.sampler().pick(&mut rnd);
            bulk_elem(&mut ctx.out, f);
        }
    }
}

/// Redis's `hrandfieldWithCountCommand`, case by case. Temporary memory is
/// bounded by the hash's size, never by the requested count.
fn hrandfield_count(ctx: &mut Ctx, key: &[u8], l: i64, withvalues: bool) {
    let mut rnd = rng(ctx.ks.rand());
    let Ok(h) = read(ctx.ks, ctx.db, key, &mut ctx.out) else {
        return;
    };
    let out = &mut ctx.out;
    let Some(h) = h else {
        out.array(0);
        return;
    };
    let size = h.len() as u64;
    let (count, uniq) = if l >= 0 {
        (l as u64, true)
    } else {
        (l.unsigned_abs(), false)
    };
    if count == 0 {
        out.array(0);
        return;
    }
    // RESP3 nests each field-value pair in an array; RESP2 is flat.
    let resp3 = out.resp3;
    let header = |out: &mut Out, n: u64| {
        if withvalues && !resp3 {
            out.array(2 * n as usize);
        } else {
            out.array(n as usize);
        }
    };
    let emit = |out: &mut Out, f: Elem, v: Elem| {
        if withvalues && resp3 {
            out.array(2);
        }
        bulk_elem(out, f);
        if withvalues {
            bulk_elem(out, v);
        }
    };

    // CASE 1: a negative count (repeats allowed) or a count of 1: that
    // many independent picks, streamed.
    if !uniq || count == 1 {
        header(out, count);
        let s = h.sampler();
        for _ in 0..count {
            let (f, v) = s.pick(&mut rnd);
            emit(out, f, v);
        }
        return;
    }
    header(out, count.min(size));

    // CASE 2: at least the whole hash: all of it, in its order.
    if count >= size {
        for (f, v) in h.iter() {
            emit(out, f, v);
        }
        return;
    }

    // CASE 3: most of the hash: copy it, drop random pairs.
    if count * SUB_STRATEGY_MUL > size {
        let mut all: Vec<(Elem, Elem)> = h.iter().collect();
        while all.len() as u64 > count {
            let i = (rnd() % all.len() as u64) as usize;
            all.swap_remove(i);
        }
        for (f, v) in all {
            emit(out, f, v);
        }
        return;
    }

    // CASE 4: a small part of a big hash.
    if h.is_compact() {
        // One ordered pass picking each pair with probability
        // remaining / left (Redis's lpRandomPairsUnique).
        let (mut remaining, mut left) = (count, size);
        for (f, v) in h.iter() {
            if remaining == 0 {
                break;
            }
            if rnd() % left < remaining {
                emit(out, f, v);
                remaining -= 1;
            }
            left -= 1;
        }
    } else {
        let s = h.sampler();
        let mut picked = hashbrown::HashSet::with_capacity(count as usize);
        while (picked.len() as u64) < count {
            let (f, v) = s.pick(&mut rnd);
            if picked.insert(f) {
                emit(out, f, v);
            }
        }
    }
}

// ----- HSCAN ---------------------------------------------------------------

/// HSCAN (Redis's `hscanCommand` + `scanGenericCommand`): the cursor is
/// checked first, then the key, then the options. A compact hash returns
/// everything with cursor 0; a hashtable returns the buckets visited until
/// COUNT elements (fields and values both count) were collected or 10 *
/// COUNT buckets were visited, MATCH filtering afterwards.
fn hscan(ctx: &mut Ctx, args: &[&[u8]]) {
    let Some(cursor) = crate::util::parse_scan_cursor(args[2]) else {
        ctx.out.err("invalid cursor");
        return;
    };
    let Ok(h) = read(ctx.ks, ctx.db, args[1], &mut ctx.out) else {
        return;
    };
    let out = &mut ctx.out;
    let Some(h) = h else {
        out.raw(b"*2\r\n$1\r\n0\r\n*0\r\n");
        return;
    };
    let mut count = 10usize;
    let mut pat: Option<&[u8]> = None;
    let mut i = 3;
    while i < args.len() {
        let more = args.len() - i >= 2;
        if more && eq_ic(args[i], "count") {
            match parse_i64(args[i + 1]) {
                None => {
                    out.not_int();
                    return;
                }
                Some(n) if n < 1 => {
                    out.syntax();
                    return;
                }
                Some(n) => count = usize::try_from(n).unwrap_or(usize::MAX),
            }
        } else if more && eq_ic(args[i], "match") {
            // "*" matches everything: skip matching altogether.
            pat = (args[i + 1] != b"*").then_some(args[i + 1]);
        } else {
            out.syntax();
            return;
        }
        i += 2;
    }
    let mut found: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    // Elements visited before filtering (fields and values both count).
    let seen = std::cell::Cell::new(0usize);
    let mut tmp = itoa::Buffer::new();
    let mut visit = |f: Elem, v: Elem| {
        seen.set(seen.get() + 2);
        let fb = f.as_bytes(&mut tmp);
        if pat.is_none_or(|p| glob_match(p, fb, false)) {
            found.push((fb.to_vec(), v.to_vec()));
        }
    };
    let next = if h.is_compact() {
        h.scan(0, &mut visit)
    } else {
        let mut cur = cursor;
        let mut budget = count.saturating_mul(10);
        loop {
            cur = h.scan(cur, &mut visit);
            if cur == 0 || budget == 0 || seen.get() >= count {
                break cur;
            }
            budget -= 1;
        }
    };
    out.array(2);
    out.bulk(itoa::Buffer::new().format(next).as_bytes());
    out.array(found.len() * 2);
    for (f, v) in &found {
        out.bulk(f);
        out.bulk(v);
    }
}

// ----- long double arithmetic ----------------------------------------------

use super::string::ld;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    fn ks() -> Keyspace {
        let mut ks = Keyspace::new(16);
        ks.now = 1_700_000_000_000;
        ks
    }

    /// Runs one command against `ks` (db 0) and returns the reply bytes.
    fn run_proto(ks: &mut Keyspace, resp3: bool, args: &[&[u8]]) -> String {
        String::from_utf8_lossy(&crate::cmd::run_keyed(ks, 0, resp3, args)).into_owned()
    }

    fn run(ks: &mut Keyspace, line: &str) -> String {
        let args: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
        run_proto(ks, false, &args)
    }

    fn run3(ks: &mut Keyspace, line: &str) -> String {
        let args: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
        run_proto(ks, true, &args)
    }

    fn encoding(ks: &mut Keyspace, key: &str) -> Option<&'static str> {
        ks.peek(0, key.as_bytes()).map(|v| v.encoding())
    }

    const NIL: &str = "$-1\r\n";
    const WRONGTYPE: &str =
        "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";
    const NOT_INT: &str = "-ERR value is not an integer or out of range\r\n";
    const SYNTAX: &str = "-ERR syntax error\r\n";

    /// A parsed RESP2 reply.
    #[derive(Clone, Debug, PartialEq)]
    enum R {
        Int(i64),
        Bulk(Vec<u8>),
        Nil,
        Arr(Vec<R>),
        Err(String),
        Status(String),
    }

    fn parse(b: &[u8]) -> R {
        fn line(b: &[u8], pos: &mut usize) -> String {
            let end = *pos + b[*pos..].windows(2).position(|w| w == b"\r\n").unwrap();
            let s = String::from_utf8_lossy(&b[*pos..end]).into_owned();
            *pos = end + 2;
            s
        }
        fn one(b: &[u8], pos: &mut usize) -> R {
            let t = b[*pos];
            *pos += 1;
            let l = line(b, pos);
            match t {
                b':' => R::Int(l.parse().unwrap()),
                b'-' => R::Err(l),
                b'+' => R::Status(l),
                b'$' => {
                    let n: i64 = l.parse().unwrap();
                    if n < 0 {
                        return R::Nil;
                    }
                    let v = b[*pos..*pos + n as usize].to_vec();
                    *pos += n as usize + 2;
                    R::Bulk(v)
                }
                b'*' => {
                    let n: usize = l.parse().unwrap();
                    R::Arr((0..n).map(|_| one(b, pos)).collect())
                }
                _ => panic!("unexpected reply type {t}"),
            }
        }
        let mut pos = 0;
        let r = one(b, &mut pos);
        assert_eq!(pos, b.len(), "trailing bytes");
        r
    }

    fn bulks(r: &R) -> Vec<Vec<u8>> {
        match r {
            R::Arr(v) => v
                .iter()
                .map(|x| match x {
                    R::Bulk(b) => b.clone(),
                    o => panic!("not a bulk: {o:?}"),
                })
                .collect(),
            o => panic!("not an array: {o:?}"),
        }
    }

    fn pairs(r: &R) -> Vec<(Vec<u8>, Vec<u8>)> {
        bulks(r)
            .chunks(2)
            .map(|c| (c[0].clone(), c[1].clone()))
            .collect()
    }

    #[test]
    fn table_matches_redis() {
        // From Redis 7.0.15's command table: name, arity, flags.
        let want: &[(&str, i32, u32)] = &[
            ("hdel", -3, WRITE | FAST),
            ("hexists", 3, READONLY | FAST),
            ("hget", 3, READONLY | FAST),
            ("hgetall", 2, READONLY),
            ("hincrby", 4, WRITE | DENYOOM | FAST),
            ("hincrbyfloat", 4, WRITE | DENYOOM | FAST),
            ("hkeys", 2, READONLY),
            ("hlen", 2, READONLY | FAST),
            ("hmget", -3, READONLY | FAST),
            ("hmset", -4, WRITE | DENYOOM | FAST),
            ("hrandfield", -2, READONLY),
            ("hscan", -3, READONLY),
            ("hset", -4, WRITE | DENYOOM | FAST),
            ("hsetnx", 4, WRITE | DENYOOM | FAST),
            ("hstrlen", 3, READONLY | FAST),
            ("hvals", 2, READONLY),
        ];
        assert_eq!(COMMANDS.len(), want.len());
        for (c, w) in COMMANDS.iter().zip(want) {
            assert_eq!((c.name, c.arity, c.flags), *w);
            assert_eq!((c.first_key, c.last_key, c.step), (1, 1, 1));
            assert_eq!(c.group, "hash");
            assert_eq!(c.acl.contains("@fast"), c.flags & FAST != 0, "{}", c.name);
            assert!(c.acl.contains("@hash"));
        }
    }

    #[test]
    fn basic_replies_resp2_and_resp3() {
        let mut ks = ks();
        assert_eq!(run(&mut ks, "HSET h a 1 b hello"), ":2\r\n");
        assert_eq!(run(&mut ks, "HSET h a 2 c 3"), ":1\r\n");
        assert_eq!(run(&mut ks, "HMSET h d 4"), "+OK\r\n");
        assert_eq!(run(&mut ks, "HGET h a"), "$1\r\n2\r\n");
        assert_eq!(run(&mut ks, "HGET h zz"), NIL);
        assert_eq!(run3(&mut ks, "HGET h zz"), "_\r\n");
        assert_eq!(run(&mut ks, "HGET nokey a"), NIL);
        assert_eq!(run(&mut ks, "HMGET h b zz"), "*2\r\n$5\r\nhello\r\n$-1\r\n");
        assert_eq!(run3(&mut ks, "HMGET nokey a b"), "*2\r\n_\r\n_\r\n");
        assert_eq!(run(&mut ks, "HLEN h"), ":4\r\n");
        assert_eq!(run(&mut ks, "HLEN nokey"), ":0\r\n");
        assert_eq!(run(&mut ks, "HSTRLEN h b"), ":5\r\n");
        assert_eq!(run(&mut ks, "HSTRLEN h a"), ":1\r\n");
        assert_eq!(run(&mut ks, "HSTRLEN h zz"), ":0\r\n");
        assert_eq!(run(&mut ks, "HEXISTS h a"), ":1\r\n");
        assert_eq!(run(&mut ks, "HEXISTS h zz"), ":0\r\n");
        assert_eq!(run(&mut ks, "HSETNX h a 9"), ":0\r\n");
        assert_eq!(run(&mut ks, "HSETNX h e 5"), ":1\r\n");
        assert_eq!(
            run(&mut ks, "HKEYS h"),
            "*5\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\nd\r\n$1\r\ne\r\n"
        );
        assert_eq!(
            run(&mut ks, "HVALS h"),
            "*5\r\n$1\r\n2\r\n$5\r\nhello\r\n$1\r\n3\r\n$1\r\n4\r\n$1\r\n5\r\n"
        );
        assert_eq!(run(&mut ks, "HDEL h b d zz"), ":2\r\n");
        assert_eq!(
            run(&mut ks, "HGETALL h"),
            "*6\r\n$1\r\na\r\n$1\r\n2\r\n$1\r\nc\r\n$1\r\n3\r\n$1\r\ne\r\n$1\r\n5\r\n"
        );
        assert_eq!(
            run3(&mut ks, "HGETALL h"),
            "%3\r\n$1\r\na\r\n$1\r\n2\r\n$1\r\nc\r\n$1\r\n3\r\n$1\r\ne\r\n$1\r\n5\r\n"
        );
        assert_eq!(run(&mut ks, "HGETALL nokey"), "*0\r\n");
        assert_eq!(run3(&mut ks, "HGETALL nokey"), "%0\r\n");
        assert_eq!(run3(&mut ks, "HKEYS nokey"), "*0\r\n");
        assert_eq!(run(&mut ks, "HVALS nokey"), "*0\r\n");
        // Deleting the last field deletes the key.
        assert_eq!(run(&mut ks, "HDEL h a c e a"), ":3\r\n");
        assert!(!ks.exists(0, b"h"));
        assert_eq!(run(&mut ks, "HDEL h a"), ":0\r\n");
        assert_eq!(encoding(&mut ks, "h"), None);
    }

    #[test]
    fn errors_and_their_order() {
        let mut ks = ks();
        ks.set(
            0,
            b"s",
            Value::Str(crate::types::Str::from_bytes(b"x")),
            false,
        );
        for cmd in [
            "HSET s a 1",
            "HMSET s a 1",
            "HSETNX s a 1",
            "HGET s a",
            "HMGET s a",
            "HDEL s a",
            "HLEN s",
            "HSTRLEN s a",
            "HEXISTS s a",
            "HKEYS s",
            "HVALS s",
            "HGETALL s",
            "HINCRBY s a 1",
            "HINCRBYFLOAT s a 1",
            "HRANDFIELD s",
            "HRANDFIELD s 2",
            "HRANDFIELD s -2 WITHVALUES",
            "HSCAN s 0",
            "HSCAN s 0 BADOPT",
        ] {
            assert_eq!(run(&mut ks, cmd), WRONGTYPE, "{cmd}");
        }
        let arity = |c: &str| format!("-ERR wrong number of arguments for '{c}' command\r\n");
        assert_eq!(run(&mut ks, "HSET h a"), arity("hset"));
        assert_eq!(run(&mut ks, "HSET h a 1 b"), arity("hset"));
        assert_eq!(run(&mut ks, "hmset h a 1 b"), arity("hmset"));
        assert_eq!(run(&mut ks, "HSET s a 1 b"), arity("hset"));
        assert_eq!(run(&mut ks, "HGET h"), arity("hget"));
        // Numbers are checked before the key's type.
        assert_eq!(run(&mut ks, "HINCRBY s a x"), NOT_INT);
        assert_eq!(
            run(&mut ks, "HINCRBYFLOAT s a x"),
            "-ERR value is not a valid float\r\n"
        );
        assert_eq!(run(&mut ks, "HSCAN s x"), "-ERR invalid cursor\r\n");
        assert_eq!(run(&mut ks, "HRANDFIELD s x"), NOT_INT);
        assert_eq!(run(&mut ks, "HRANDFIELD s 1 x"), SYNTAX);
        assert_eq!(run(&mut ks, "HRANDFIELD s 1 WITHVALUES x"), SYNTAX);
        assert_eq!(
            run(&mut ks, "HRANDFIELD s -9223372036854775808"),
            "-ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807\r\n"
        );
        assert_eq!(
            run(&mut ks, "HRANDFIELD s 4611686018427387904 withvalues"),
            "-ERR value is out of range\r\n"
        );
        assert_eq!(
            run(&mut ks, "HRANDFIELD s -4611686018427387904 withvalues"),
            "-ERR value is out of range\r\n"
        );
        // HSCAN: the options are parsed after the key lookup.
        let empty_scan = "*2\r\n$1\r\n0\r\n*0\r\n";
        assert_eq!(run(&mut ks, "HSCAN nokey 0 BADOPT"), empty_scan);
        assert_eq!(run3(&mut ks, "HSCAN nokey 7"), empty_scan);
        run(&mut ks, "HSET h a 1");
        assert_eq!(run(&mut ks, "HSCAN h 0 BADOPT"), SYNTAX);
        assert_eq!(run(&mut ks, "HSCAN h 0 COUNT"), SYNTAX);
        assert_eq!(run(&mut ks, "HSCAN h 0 COUNT 0"), SYNTAX);
        assert_eq!(run(&mut ks, "HSCAN h 0 COUNT x"), NOT_INT);
        assert_eq!(run(&mut ks, "HSCAN h 0 TYPE string"), SYNTAX);
        assert_eq!(
            run(&mut ks, "HSCAN h -1"),
            "*2\r\n$1\r\n0\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n"
        );
        // Nothing above created a key.
        assert_eq!(ks.db_len(0), 2);
    }

    #[test]
    fn hincrby_cases() {
        let mut ks = ks();
        assert_eq!(run(&mut ks, "HINCRBY h n 5"), ":5\r\n");
        assert_eq!(run(&mut ks, "HINCRBY h n -10"), ":-5\r\n");
        run(&mut ks, "HSET h s abc p 007 big 9223372036854775806");
        assert_eq!(
            run(&mut ks, "HINCRBY h s 1"),
            "-ERR hash value is not an integer\r\n"
        );
        assert_eq!(
            run(&mut ks, "HINCRBY h p 1"),
            "-ERR hash value is not an integer\r\n"
        );
        assert_eq!(run(&mut ks, "HINCRBY h big 1"), ":9223372036854775807\r\n");
        assert_eq!(
            run(&mut ks, "HINCRBY h big 1"),
            "-ERR increment or decrement would overflow\r\n"
        );
        run(&mut ks, "HSET h min -9223372036854775807");
        assert_eq!(
            run(&mut ks, "HINCRBY h min -1"),
            ":-9223372036854775808\r\n"
        );
        assert_eq!(
            run(&mut ks, "HINCRBY h min -1"),
            "-ERR increment or decrement would overflow\r\n"
        );
        assert_eq!(run(&mut ks, "HINCRBY h n 01"), NOT_INT);
        assert_eq!(run(&mut ks, "HGET h big"), "$19\r\n9223372036854775807\r\n");
        // Failed increments create nothing.
        assert_eq!(run(&mut ks, "HINCRBY nokey f x"), NOT_INT);
        assert!(!ks.exists(0, b"nokey"));
    }

    #[test]
    fn hincrbyfloat_cases() {
        let mut ks = ks();
        // The examples of Redis's documentation.
        run(&mut ks, "HSET mykey field 10.50");
        assert_eq!(
            run(&mut ks, "HINCRBYFLOAT mykey field 0.1"),
            "$4\r\n10.6\r\n"
        );
        assert_eq!(run(&mut ks, "HINCRBYFLOAT mykey field -5"), "$3\r\n5.6\r\n");
        run(&mut ks, "HSET mykey field 5.0e3");
        assert_eq!(
            run(&mut ks, "HINCRBYFLOAT mykey field 2.0e2"),
            "$4\r\n5200\r\n"
        );
        assert_eq!(run(&mut ks, "HINCRBYFLOAT new f 1.5"), "$3\r\n1.5\r\n");
        assert_eq!(run(&mut ks, "HINCRBYFLOAT new g 3"), "$1\r\n3\r\n");
        // Long double rounding, exactly as Redis on x86-64.
        run(&mut ks, "HSET mykey a 630.8");
        assert_eq!(
            run(&mut ks, "HINCRBYFLOAT mykey a 0.1"),
            "$21\r\n630.89999999999999997\r\n"
        );
        run(&mut ks, "HSET mykey i 9223372036854775807");
        assert_eq!(
            run(&mut ks, "HINCRBYFLOAT mykey i 1.5"),
            "$19\r\n9223372036854775808\r\n"
        );
        assert_eq!(
            run(&mut ks, "HINCRBYFLOAT mykey a inf"),
            "-ERR value is NaN or Infinity\r\n"
        );
        assert_eq!(
            run(&mut ks, "HINCRBYFLOAT mykey a nan"),
            "-ERR value is not a valid float\r\n"
        );
        assert_eq!(
            run(&mut ks, "HINCRBYFLOAT mykey a 1e5000"),
            "-ERR value is not a valid float\r\n"
        );
        run(&mut ks, "HSET mykey s abc t inf");
        assert_eq!(
            run(&mut ks, "HINCRBYFLOAT mykey s 1"),
            "-ERR hash value is not a float\r\n"
        );
        assert_eq!(
            run(&mut ks, "HINCRBYFLOAT mykey t 1"),
            "-ERR increment would produce NaN or Infinity\r\n"
        );
        run(&mut ks, "HSET mykey huge 1e4932");
        assert_eq!(
            run(&mut ks, "HINCRBYFLOAT mykey huge 1e4932"),
            "-ERR increment would produce NaN or Infinity\r\n"
        );
        assert_eq!(run3(&mut ks, "HINCRBYFLOAT mykey x -0.0"), "$1\r\n0\r\n");
    }

    #[test]
    fn hrandfield_shapes() {
        let mut ks = ks();
        run(&mut ks, "HSET h a 1 b 2");
        assert_eq!(run(&mut ks, "HRANDFIELD nokey"), NIL);
        assert_eq!(run3(&mut ks, "HRANDFIELD nokey"), "_\r\n");
        assert_eq!(run(&mut ks, "HRANDFIELD nokey 3"), "*0\r\n");
        assert_eq!(run3(&mut ks, "HRANDFIELD nokey -3 WITHVALUES"), "*0\r\n");
        assert_eq!(run(&mut ks, "HRANDFIELD h 0"), "*0\r\n");
        assert_eq!(run(&mut ks, "HRANDFIELD h 0 withvalues"), "*0\r\n");
        // The whole hash, in order, when count >= size (huge counts too).
        let all2 = "*4\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n";
        let all3 = "*2\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n*2\r\n$1\r\nb\r\n$1\r\n2\r\n";
        assert_eq!(run(&mut ks, "HRANDFIELD h 2 WITHVALUES"), all2);
        assert_eq!(
            run(&mut ks, "HRANDFIELD h 4611686018427387903 WITHVALUES"),
            all2
        );
        assert_eq!(run3(&mut ks, "HRANDFIELD h 3 WITHVALUES"), all3);
        assert_eq!(
            run(&mut ks, "HRANDFIELD h 9223372036854775807"),
            "*2\r\n$1\r\na\r\n$1\r\nb\r\n"
        );
        // Negative counts repeat.
        run(&mut ks, "HSET one f v");
        assert_eq!(
            run(&mut ks, "HRANDFIELD one -3"),
            "*3\r\n$1\r\nf\r\n$1\r\nf\r\n$1\r\nf\r\n"
        );
        assert_eq!(
            run3(&mut ks, "HRANDFIELD one -2 WITHVALUES"),
            "*2\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n"
        );
        assert_eq!(
            run(&mut ks, "HRANDFIELD one -2 WITHVALUES"),
            "*4\r\n$1\r\nf\r\n$1\r\nv\r\n$1\r\nf\r\n$1\r\nv\r\n"
        );
        assert_eq!(run(&mut ks, "HRANDFIELD one"), "$1\r\nf\r\n");
        assert_eq!(run(&mut ks, "HRANDFIELD one 1"), "*1\r\n$1\r\nf\r\n");
    }

    /// Every HRANDFIELD strategy (both encodings, all four cases) returns
    /// distinct existing fields with their values, and covers the hash.
    #[test]
    fn hrandfield_strategies() {
        for (entries, n) in [(512usize, 30usize), (8, 30), (512, 300), (16, 300)] {
            let mut ks = ks();
            ks.enc.hash_max_listpack_entries = entries;
            let mut model = HashMap::new();
            for i in 0..n {
                let (f, v) = (format!("f{i}"), format!("{}", i * 7));
                run(&mut ks, &format!("HSET h {f} {v}"));
                model.insert(f.into_bytes(), v.into_bytes());
            }
            let want_enc = if n > entries { "hashtable" } else { "listpack" };
            assert_eq!(encoding(&mut ks, "h"), Some(want_enc));
            let mut covered = HashSet::new();
            for count in [
                1i64,
                2,
                5,
                n as i64 / 3,
                n as i64 / 2,
                n as i64 - 1,
                n as i64,
            ] {
                for _ in 0..20 {
                    let r =
                        parse(run(&mut ks, &format!("HRANDFIELD h {count} WITHVALUES")).as_bytes());
                    let ps = pairs(&r);
                    assert_eq!(ps.len(), count as usize);
                    let distinct: HashSet<&Vec<u8>> = ps.iter().map(|p| &p.0).collect();
                    assert_eq!(distinct.len(), ps.len(), "repeats for count {count}");
                    for (f, v) in &ps {
                        assert_eq!(model.get(f), Some(v));
                        covered.insert(f.clone());
                    }
                    let r = parse(run(&mut ks, &format!("HRANDFIELD h -{count}")).as_bytes());
                    let fs = bulks(&r);
                    assert_eq!(fs.len(), count as usize);
                    assert!(fs.iter().all(|f| model.contains_key(f)));
                }
            }
            assert_eq!(covered.len(), n, "some fields never picked");
            if want_enc == "listpack" {
                // lpRandomPairsUnique keeps the hash's order.
                let order: Vec<Vec<u8>> = (0..n).map(|i| format!("f{i}").into_bytes()).collect();
                let r = parse(run(&mut ks, "HRANDFIELD h 5").as_bytes());
                let got = bulks(&r);
                let pos: Vec<usize> = got
                    .iter()
                    .map(|f| order.iter().position(|o| o == f).unwrap())
                    .collect();
                assert!(pos.windows(2).all(|w| w[0] < w[1]), "{pos:?}");
            }
        }
    }

    #[test]
    fn hscan_compact_and_table() {
        let mut ks = ks();
        run(&mut ks, "HSET h a 1 b 2 ab 3");
        assert_eq!(
            run(&mut ks, "HSCAN h 123 COUNT 1 MATCH a*"),
            "*2\r\n$1\r\n0\r\n*4\r\n$1\r\na\r\n$1\r\n1\r\n$2\r\nab\r\n$1\r\n3\r\n"
        );
        for i in 0..1000 {
            run(&mut ks, &format!("HSET big field:{i} {i}"));
        }
        assert_eq!(encoding(&mut ks, "big"), Some("hashtable"));
        for (count, pat) in [(1, "*"), (10, "*"), (100, "field:1*"), (5000, "*")] {
            let mut seen = HashMap::new();
            let mut cursor = "0".to_string();
            let mut calls = 0;
            loop {
                let r = parse(
                    run(
                        &mut ks,
                        &format!("HSCAN big {cursor} COUNT {count} MATCH {pat}"),
                    )
                    .as_bytes(),
                );
                let R::Arr(parts) = r else { panic!() };
                let R::Bulk(c) = &parts[0] else { panic!() };
                let ps = pairs(&parts[1]);
                if count >= 10 {
                    assert!(
                        ps.len() <= count + 10 * 4,
                        "count {count}: {} pairs",
                        ps.len()
                    );
                }
                for (f, v) in ps {
                    let i: usize = std::str::from_utf8(&f[6..]).unwrap().parse().unwrap();
                    assert_eq!(v, i.to_string().into_bytes());
                    seen.insert(f, v);
                }
                calls += 1;
                cursor = String::from_utf8(c.clone()).unwrap();
                if cursor == "0" {
                    break;
                }
            }
            let want = (0..1000)
                .filter(|i| pat == "*" || i.to_string().starts_with('1'))
                .count();
            assert_eq!(seen.len(), want, "count {count} pattern {pat}");
            if count == 5000 {
                assert_eq!(calls, 1);
            } else if count == 1 {
                assert!(calls > 100);
            }
        }
    }

    #[test]
    fn encodings_follow_thresholds() {
        let mut ks = ks();
        ks.enc.hash_max_listpack_entries = 3;
        ks.enc.hash_max_listpack_value = 4;
        run(&mut ks, "HSET h a 1 b 2 c 3");
        assert_eq!(encoding(&mut ks, "h"), Some("listpack"));
        run(&mut ks, "HSET h d 4");
        assert_eq!(encoding(&mut ks, "h"), Some("hashtable"));
        run(&mut ks, "HDEL h a b c");
        assert_eq!(encoding(&mut ks, "h"), Some("hashtable"));
        // Field or value over the length limit, from any writer.
        run(&mut ks, "HSET v1 abcd 1234");
        assert_eq!(encoding(&mut ks, "v1"), Some("listpack"));
        run(&mut ks, "HSET v1 abcd 12345");
        assert_eq!(encoding(&mut ks, "v1"), Some("hashtable"));
        run(&mut ks, "HINCRBY v2 abcdefgh 1");
        assert_eq!(encoding(&mut ks, "v2"), Some("hashtable"));
        run(&mut ks, "HSET v3 a 1234");
        run(&mut ks, "HINCRBY v3 a 10000000");
        assert_eq!(encoding(&mut ks, "v3"), Some("hashtable"));
        run(&mut ks, "HINCRBYFLOAT v4 abcdefgh 1");
        assert_eq!(encoding(&mut ks, "v4"), Some("hashtable"));
        run(&mut ks, "HSET v5 a 1");
        assert_eq!(run(&mut ks, "HSETNX v5 a 123456789"), ":0\r\n");
        assert_eq!(encoding(&mut ks, "v5"), Some("listpack"));
        run(&mut ks, "HSETNX v5 abcdefg 1");
        assert_eq!(encoding(&mut ks, "v5"), Some("hashtable"));
        ks.enc.hash_max_listpack_entries = 0;
        run(&mut ks, "HSET v6 a 1");
        assert_eq!(encoding(&mut ks, "v6"), Some("hashtable"));
    }

    /// Seeded random command streams against a model (an ordered list of
    /// pairs per key plus the expected encoding), with small thresholds so
    /// conversions happen constantly.
    #[test]
    fn random_streams_match_model() {
        struct Rng(u64);
        impl Rng {
            fn next(&mut self) -> u64 {
                self.0 = self
                    .0
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let x = self.0;
                (x ^ (x >> 33)).wrapping_mul(0xff51afd7ed558ccd) ^ (x >> 29)
            }
            fn below(&mut self, n: u64) -> u64 {
                self.next() % n
            }
        }
        #[derive(Default)]
        struct M {
            pairs: Vec<(Vec<u8>, Vec<u8>)>,
            compact: bool,
        }
        impl M {
            fn get(&self, f: &[u8]) -> Option<&Vec<u8>> {
                self.pairs.iter().find(|p| p.0 == f).map(|p| &p.1)
            }
            fn set(&mut self, f: &[u8], v: &[u8], me: usize, mv: usize) -> bool {
                if f.len() > mv || v.len() > mv {
                    self.compact = false;
                }
                let added = match self.pairs.iter_mut().find(|p| p.0 == f) {
                    Some(p) => {
                        p.1 = v.to_vec();
                        false
                    }
                    None => {
                        self.pairs.push((f.to_vec(), v.to_vec()));
                        true
                    }
                };
                if self.pairs.len() > me {
                    self.compact = false;
                }
                added
            }
        }
        let keys = ["h0", "h1", "h2"];
        for seed in 0..30u64 {
            let mut rng = Rng(seed * 7919 + 1);
            let mut ks = ks();
            let me = rng.below(10) as usize;
            let mv = 1 + rng.below(12) as usize;
            ks.enc.hash_max_listpack_entries = me;
            ks.enc.hash_max_listpack_value = mv;
            let mut model: HashMap<&str, M> = HashMap::new();
            let field = |rng: &mut Rng| -> String {
                match rng.below(10) {
                    0 => "x".repeat(rng.below(16) as usize),
                    1 => (rng.below(200) as i64 - 100).to_string(),
                    _ => format!("f{}", rng.below(12)),
                }
            };
            let value = |rng: &mut Rng| -> String {
                match rng.below(8) {
                    0 => "v".repeat(1 + rng.below(16) as usize),
                    1 => "007".into(),
                    2 => (rng.next() as i64 >> rng.below(64)).to_string(),
                    3 => "1.5".into(),
                    _ => (rng.below(100) as i64 - 50).to_string(),
                }
            };
            for step in 0..600 {
                let key = keys[rng.below(keys.len() as u64) as usize];
                let ctx = format!("seed {seed} step {step}");
                match rng.below(12) {
                    0..=2 => {
                        let n = 1 + rng.below(3);
                        let mut cmd = format!("HSET {key}");
                        let mut added = 0;
                        let m = model.entry(key).or_insert_with(|| M {
                            compact: true,
                            ..M::default()
                        });
                        for _ in 0..n {
                            let (f, v) = (field(&mut rng), value(&mut rng));
                            cmd += &format!(" {f} {v}");
                            added += m.set(f.as_bytes(), v.as_bytes(), me, mv) as i64;
                        }
                        assert_eq!(run(&mut ks, &cmd), format!(":{added}\r\n"), "{ctx}");
                    }
                    3 => {
                        let (f, v) = (field(&mut rng), value(&mut rng));
                        let m = model.entry(key).or_insert_with(|| M {
                            compact: true,
                            ..M::default()
                        });
                        let want = if m.get(f.as_bytes()).is_some() {
                            0
                        } else {
                            m.set(f.as_bytes(), v.as_bytes(), me, mv);
                            1
                        };
                        assert_eq!(
                            run(&mut ks, &format!("HSETNX {key} {f} {v}")),
                            format!(":{want}\r\n"),
                            "{ctx}"
                        );
                    }
                    4..=5 => {
                        let fs: Vec<String> =
                            (0..1 + rng.below(3)).map(|_| field(&mut rng)).collect();
                        let mut n = 0;
                        if let Some(m) = model.get_mut(key) {
                            for f in &fs {
                                let before = m.pairs.len();
                                m.pairs.retain(|p| p.0 != f.as_bytes());
                                n += before - m.pairs.len();
                            }
                            if m.pairs.is_empty() {
                                model.remove(key);
                            }
                        }
                        assert_eq!(
                            run(&mut ks, &format!("HDEL {key} {}", fs.join(" "))),
                            format!(":{n}\r\n"),
                            "{ctx}"
                        );
                    }
                    6 => {
                        let f = field(&mut rng);
                        let incr = rng.below(2000) as i64 - 1000;
                        let cur = model.get(key).and_then(|m| m.get(f.as_bytes()).cloned());
                        let want = match cur.map(|c| crate::util::parse_i64(&c)) {
                            Some(None) => "-ERR hash value is not an integer\r\n".to_string(),
                            c => {
                                let new = c.flatten().unwrap_or(0).checked_add(incr);
                                match new {
                                    None => {
                                        "-ERR increment or decrement would overflow\r\n".to_string()
                                    }
                                    Some(n) => {
                                        let m = model.entry(key).or_insert_with(|| M {
                                            compact: true,
                                            ..M::default()
                                        });
                                        m.set(f.as_bytes(), n.to_string().as_bytes(), me, mv);
                                        format!(":{n}\r\n")
                                    }
                                }
                            }
                        };
                        assert_eq!(
                            run(&mut ks, &format!("HINCRBY {key} {f} {incr}")),
                            want,
                            "{ctx}"
                        );
                    }
                    7 => {
                        let f = field(&mut rng);
                        let r = parse(run(&mut ks, &format!("HMGET {key} {f} f1")).as_bytes());
                        let m = model.get(key);
                        let want = R::Arr(
                            [f.as_bytes(), b"f1"]
                                .iter()
                                .map(|f| match m.and_then(|m| m.get(f)) {
                                    Some(v) => R::Bulk(v.clone()),
                                    None => R::Nil,
                                })
                                .collect(),
                        );
                        assert_eq!(r, want, "{ctx}");
                        let len = m.map_or(0, |m| m.pairs.len());
                        assert_eq!(run(&mut ks, &format!("HLEN {key}")), format!(":{len}\r\n"));
                        let sl = m.and_then(|m| m.get(f.as_bytes())).map_or(0, |v| v.len());
                        assert_eq!(
                            run(&mut ks, &format!("HSTRLEN {key} {f}")),
                            format!(":{sl}\r\n"),
                            "{ctx}"
                        );
                    }
                    8 => {
                        let r = parse(run(&mut ks, &format!("HGETALL {key}")).as_bytes());
                        let mut got = pairs(&r);
                        let mut want = model.get(key).map_or(vec![], |m| m.pairs.clone());
                        if !model.get(key).is_some_and(|m| m.compact) {
                            got.sort();
                            want.sort();
                        }
                        assert_eq!(got, want, "{ctx}");
                    }
                    9 => {
                        let count = rng.below(12) as i64 - 4;
                        let r = parse(
                            run(&mut ks, &format!("HRANDFIELD {key} {count} WITHVALUES"))
                                .as_bytes(),
                        );
                        let ps = pairs(&r);
                        let m = model.get(key);
                        let size = m.map_or(0, |m| m.pairs.len());
                        let want_len = if count < 0 && size > 0 {
                            -count as usize
                        } else {
                            (count.max(0) as usize).min(size)
                        };
                        assert_eq!(ps.len(), want_len, "{ctx}");
                        for (f, v) in &ps {
                            assert_eq!(m.unwrap().get(f), Some(v), "{ctx}");
                        }
                    }
                    10 => {
                        let mut got = vec![];
                        let mut cursor = "0".to_string();
                        loop {
                            let r = parse(
                                run(&mut ks, &format!("HSCAN {key} {cursor} COUNT 3")).as_bytes(),
                            );
                            let R::Arr(parts) = r else { panic!() };
                            let R::Bulk(c) = &parts[0] else { panic!() };
                            got.extend(pairs(&parts[1]));
                            cursor = String::from_utf8(c.clone()).unwrap();
                            if cursor == "0" {
                                break;
                            }
                        }
                        let mut want = model.get(key).map_or(vec![], |m| m.pairs.clone());
                        if !model.get(key).is_some_and(|m| m.compact) {
                            got.sort();
                            got.dedup();
                            want.sort();
                        }
                        assert_eq!(got, want, "{ctx}");
                    }
                    _ => {
                        let f = field(&mut rng);
                        let v = model.get(key).and_then(|m| m.get(f.as_bytes()));
                        let want = match v {
                            Some(v) => {
                                format!("${}\r\n{}\r\n", v.len(), String::from_utf8_lossy(v))
                            }
                            None => NIL.to_string(),
                        };
                        assert_eq!(run(&mut ks, &format!("HGET {key} {f}")), want, "{ctx}");
                        let e = v.is_some() as i64;
                        assert_eq!(
                            run(&mut ks, &format!("HEXISTS {key} {f}")),
                            format!(":{e}\r\n")
                        );
                    }
                }
                for k in keys {
                    let enc = model
                        .get(k)
                        .map(|m| if m.compact { "listpack" } else { "hashtable" });
                    assert_eq!(encoding(&mut ks, k), enc, "{ctx} key {k}");
                }
            }
        }
    }
}
