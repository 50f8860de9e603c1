//! The set family (Redis's t_set.c): SADD SREM SCARD SISMEMBER SMISMEMBER
//! SMEMBERS SRANDMEMBER SPOP SMOVE SINTER SINTERCARD SINTERSTORE SUNION
//! SUNIONSTORE SDIFF SDIFFSTORE SSCAN.
//!
//! Every handler follows Redis 7.0.15's order of checks (arguments, then
//! key lookups and types) and reply types (sets are `~` in RESP3 where
//! Redis uses `addReplySetLen`). The multi-key algorithms work on a list of
//! `Option<&Set>` (None = missing key) so the single-shard handlers and the
//! cross-shard coordinators share them; a coordinator copies the input sets
//! out of their shards and writes the destination inside one
//! [`Shard::tx`], so the whole command is atomic.

use super::{numkeys_positions, CmdSpec, Ctx, Run, SrvCtx, DENYOOM, FAST, READONLY, WRITE};
use crate::notify as N;
use crate::resp::Out;
use crate::shard::keyspace::Keyspace;
use crate::shard::{Shard, Tx};
use crate::types::set::{Member, Set};
use crate::types::Value;
use crate::util::{eq_ic, glob_match, parse_i64};

// ----- the command table -------------------------------------------------------

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
) -> CmdSpec {
    CmdSpec {
        name,
        arity,
        flags,
        first_key: keys.0,
        last_key: keys.1,
        step: keys.2,
        group: "set",
        acl,
        summary,
        since,
        run,
        subs: &[],
        getkeys: None,
    }
}

const ONE: (i32, i32, i32) = (1, 1, 1);
const ALL: (i32, i32, i32) = (1, -1, 1);
const R_FAST: &str = "@read @set @fast";
const R_SLOW: &str = "@read @set @slow";
const W_FAST: &str = "@write @set @fast";
const W_SLOW: &str = "@write @set @slow";

/// SINTERCARD's keys: `numkeys` at 1, the keys after it.
fn sintercard_keys(args: &[&[u8]]) -> Vec<usize> {
    numkeys_positions(args, 1, &[])
}

#[rustfmt::skip]
pub static COMMANDS: &[CmdSpec] = &[
    spec("sadd", -3, WRITE | DENYOOM | FAST, ONE, W_FAST, "1.0.0", Run::Key(sadd), "Add one or more members to a set"),
    spec("scard", 2, READONLY | FAST, ONE, R_FAST, "1.0.0", Run::Key(scard), "Get the number of members in a set"),
    spec("sdiff", -2, READONLY, ALL, R_SLOW, "1.0.0", Run::KeyMulti(sdiff, sdiff_multi), "Subtract multiple sets"),
    spec("sdiffstore", -3, WRITE | DENYOOM, ALL, W_SLOW, "1.0.0", Run::KeyMulti(sdiffstore, sdiffstore_multi), "Subtract multiple sets and store the resulting set in a key"),
    spec("sinter", -2, READONLY, ALL, R_SLOW, "1.0.0", Run::KeyMulti(sinter, sinter_multi), "Intersect multiple sets"),
    CmdSpec {
        getkeys: Some(sintercard_keys),
        ..spec(
            "sintercard",
            -3,
            READONLY,
            (0, 0, 0),
            R_SLOW,
            "7.0.0",
            Run::KeyMulti(sintercard, sintercard_multi),
            "Intersect multiple sets and return the cardinality of the result",
        )
    },
    spec("sinterstore", -3, WRITE | DENYOOM, ALL, W_SLOW, "1.0.0", Run::KeyMulti(sinterstore, sinterstore_multi), "Intersect multiple sets and store the resulting set in a key"),
    spec("sismember", 3, READONLY | FAST, ONE, R_FAST, "1.0.0", Run::Key(sismember), "Determine if a given value is a member of a set"),
    spec("smembers", 2, READONLY, ONE, R_SLOW, "1.0.0", Run::Key(smembers), "Get all the members in a set"),
    spec("smismember", -3, READONLY | FAST, ONE, R_FAST, "6.2.0", Run::Key(smismember), "Returns the membership associated with the given elements for a set"),
    spec("smove", 4, WRITE | FAST, (1, 2, 1), W_FAST, "1.0.0", Run::KeyMulti(smove, smove_multi), "Move a member from one set to another"),
    spec("spop", -2, WRITE | FAST, ONE, W_FAST, "1.0.0", Run::Key(spop), "Remove and return one or multiple random members from a set"),
    spec("srandmember", -2, READONLY, ONE, R_SLOW, "1.0.0", Run::Key(srandmember), "Get one or multiple random members from a set"),
    spec("srem", -3, WRITE | FAST, ONE, W_FAST, "1.0.0", Run::Key(srem), "Remove one or more members from a set"),
    spec("sscan", -3, READONLY, ONE, R_SLOW, "2.8.0", Run::Key(sscan), "Incrementally iterate Set elements"),
    spec("sunion", -2, READONLY, ALL, R_SLOW, "1.0.0", Run::KeyMulti(sunion, sunion_multi), "Add multiple sets"),
    spec("sunionstore", -3, WRITE | DENYOOM, ALL, W_SLOW, "1.0.0", Run::KeyMulti(sunionstore, sunionstore_multi), "Add multiple sets and store the resulting set in a key"),
];

// ----- error texts (Redis 7.0) ----------------------------------------------------

const E_POSITIVE: &str = "value is out of range, must be positive";
const E_LONG_RANGE: &str =
    "value is out of range, value must between -9223372036854775807 and 9223372036854775807";
const E_NUMKEYS: &str = "numkeys should be greater than 0";
const E_NUMKEYS_ARGS: &str = "Number of keys can't be greater than number of args";
const E_LIMIT: &str = "LIMIT can't be negative";
const E_CURSOR: &str = "invalid cursor";
/// Not a Redis error: Redis would build the whole reply whatever its size.
const E_REPLY_TOO_BIG: &str =
    "SRANDMEMBER reply would exceed proto-max-bulk-len; use a smaller count";

// ----- small helpers ---------------------------------------------------------------

/// A splitmix64 generator seeded from the keyspace's, one per command.
struct Rng(u64);

impl Rng {
    fn new(ks: &mut Keyspace) -> Rng {
        Rng(ks.rand())
    }

    #[inline]
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in 0..n (n > 0).
    #[inline]
    fn below(&mut self, n: usize) -> usize {
        ((self.next() as u128 * n as u128) >> 64) as usize
    }
}

#[inline]
fn write_member(out: &mut Out, m: Member) {
    match m {
        Member::Int(v) => out.bulk_int(v),
        Member::Str(b) => out.bulk(b),
    }
}

/// Writes a whole set as a RESP3 set (an array in RESP2).
fn write_set(out: &mut Out, s: &Set) {
    out.set(s.len());
    for m in s.iter() {
        write_member(out, m);
    }
}

/// What a key holds, for the type checks.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Missing,
    Set,
    Other,
}

fn kind_of(v: Option<&Value>) -> Kind {
    match v {
        None => Kind::Missing,
        Some(Value::Set(_)) => Kind::Set,
        Some(_) => Kind::Other,
    }
}

/// A set for reading (counts a keyspace hit or miss). Err = wrong type.
fn read_set<'a>(ks: &'a mut Keyspace, db: usize, key: &[u8]) -> Result<Option<&'a Set>, ()> {
    match ks.get(db, key) {
        None => Ok(None),
        Some(Value::Set(s)) => Ok(Some(s)),
        Some(_) => Err(()),
    }
}

/// A set for writing. Err = wrong type.
fn write_lookup<'a>(
    ks: &'a mut Keyspace,
    db: usize,
    key: &[u8],
) -> Result<Option<&'a mut Set>, ()> {
    match ks.get_mut(db, key) {
        None => Ok(None),
        Some(Value::Set(s)) => Ok(Some(s)),
        Some(_) => Err(()),
    }
}

/// Removes `m` from the set at `key` (which must be a set), deleting the
/// key when it empties. Returns whether `m` was there.
fn remove_one(ks: &mut Keyspace, db: usize, key: &[u8], m: &[u8]) -> bool {
    let (removed, empty) = match write_lookup(ks, db, key) {
        Ok(Some(s)) => (s.remove(m), s.is_empty()),
        _ => (false, false),
    };
    if removed {
        ks.touch_write(1);
        ks.notify(N::SET, "srem", db, key);
        if empty {
            ks.delete(db, key);
            ks.notify(N::GENERIC, "del", db, key);
        }
    }
    removed
}

/// Adds `m` to the set at `key`, creating it (Redis's `setTypeCreate`)
/// when missing. The key must not hold another type.
fn add_one(ks: &mut Keyspace, db: usize, key: &[u8], m: &[u8], max: usize) -> bool {
    match write_lookup(ks, db, key) {
        Ok(Some(s)) => {
            let added = s.add(m, max);
            if added {
                ks.touch_write(1);
                ks.notify(N::SET, "sadd", db, key);
            }
            added
        }
        _ => {
            let mut s = Set::for_member(m);
            s.add(m, max);
            ks.set(db, key, Value::Set(Box::new(s)), false);
            ks.notify(N::SET, "sadd", db, key);
            true
        }
    }
}

/// Stores a *STORE result: a non-empty set replaces the destination
/// (whatever it held, TTL cleared), an empty one deletes it. Returns the
/// reply (the result's cardinality).
fn store_result(ks: &mut Keyspace, db: usize, dst: &[u8], r: Set, op: Op) -> i64 {
    if r.is_empty() {
        if ks.delete(db, dst) {
            ks.notify(N::GENERIC, "del", db, dst);
        }
        0
    } else {
        let n = r.len() as i64;
        ks.set(db, dst, Value::Set(Box::new(r)), false);
        let event = match op {
            Op::Union => "sunionstore",
            Op::Diff => "sdiffstore",
            _ => "sinterstore",
        };
        ks.notify(N::SET, event, db, dst);
        n
    }
}

// ----- single-key commands -------------------------------------------------------

fn sadd(ctx: &mut Ctx, args: &[&[u8]]) {
    let (db, key) = (ctx.db, args[1]);
    let max = ctx.ks.enc.set_max_intset_entries;
    let added = match write_lookup(ctx.ks, db, key) {
        Err(()) => return ctx.out.wrongtype(),
        Ok(Some(s)) => {
            let n = args[2..].iter().filter(|m| s.add(m, max)).count();
            ctx.ks.touch_write(n as u64);
            n
        }
        Ok(None) => {
            // The first member decides the starting encoding (setTypeCreate).
            let mut s = Set::for_member(args[2]);
            let n = args[2..].iter().filter(|m| s.add(m, max)).count();
            ctx.ks.set(db, key, Value::Set(Box::new(s)), false);
            n
        }
    };
    if added > 0 {
        ctx.ks.notify(N::SET, "sadd", db, key);
    }
    ctx.out.int(added as i64);
}

fn srem(ctx: &mut Ctx, args: &[&[u8]]) {
    let (db, key) = (ctx.db, args[1]);
    let (deleted, empty) = match write_lookup(ctx.ks, db, key) {
        Err(()) => return ctx.out.wrongtype(),
        Ok(None) => return ctx.out.int(0),
        Ok(Some(s)) => {
            let mut deleted = 0;
            for m in &args[2..] {
                if s.remove(m) {
                    deleted += 1;
                    if s.is_empty() {
                        break;
                    }
                }
            }
            (deleted, s.is_empty())
        }
    };
    if deleted > 0 {
        ctx.ks.touch_write(deleted as u64);
        ctx.ks.notify(N::SET, "srem", db, key);
        if empty {
            ctx.ks.delete(db, key);
            ctx.ks.notify(N::GENERIC, "del", db, key);
        }
    }
    ctx.out.int(deleted);
}

fn scard(ctx: &mut Ctx, args: &[&[u8]]) {
    match read_set(ctx.ks, ctx.db, args[1]) {
        Err(()) => ctx.out.wrongtype(),
        Ok(None) => ctx.out.int(0),
        Ok(Some(s)) => ctx.out.int(s.len() as i64),
    }
}

fn sismember(ctx: &mut Ctx, args: &[&[u8]]) {
    match read_set(ctx.ks, ctx.db, args[1]) {
        Err(()) => ctx.out.wrongtype(),
        Ok(None) => ctx.out.int(0),
        Ok(Some(s)) => ctx.out.int(s.contains(args[2]) as i64),
    }
}

fn smismember(ctx: &mut Ctx, args: &[&[u8]]) {
    // A missing key is an empty set: a series of zeros.
    let s = match read_set(ctx.ks, ctx.db, args[1]) {
        Err(()) => return ctx.out.wrongtype(),
        Ok(s) => s,
    };
    ctx.out.array(args.len() - 2);
    for m in &args[2..] {
        ctx.out.int(s.is_some_and(|s| s.contains(m)) as i64);
    }
}

/// SMEMBERS is SINTER of one key in Redis 7.0: an empty set when missing.
fn smembers(ctx: &mut Ctx, args: &[&[u8]]) {
    match read_set(ctx.ks, ctx.db, args[1]) {
        Err(()) => ctx.out.wrongtype(),
        Ok(None) => ctx.out.set(0),
        Ok(Some(s)) => write_set(&mut ctx.out, s),
    }
}

fn srandmember(ctx: &mut Ctx, args: &[&[u8]]) {
    if args.len() == 3 {
        return srandmember_count(ctx, args);
    }
    if args.len() > 3 {
        return ctx.out.syntax();
    }
    let mut rng = Rng::new(ctx.ks);
    match read_set(ctx.ks, ctx.db, args[1]) {
        Err(()) => ctx.out.wrongtype(),
        Ok(None) => ctx.out.null(),
        Ok(Some(s)) => match s.random(|| rng.next()) {
            Some(m) => write_member(&mut ctx.out, m),
            None => ctx.out.null(),
        },
    }
}

/// `SRANDMEMBER key count`: distinct members for a positive count, with
/// repetitions (and in random order) for a negative one.
fn srandmember_count(ctx: &mut Ctx, args: &[&[u8]]) {
    let l = match parse_i64(args[2]) {
        None => return ctx.out.not_int(),
        Some(i64::MIN) => return ctx.out.err(E_LONG_RANGE),
        Some(l) => l,
    };
    let (count, uniq) = (l.unsigned_abs(), l >= 0);
    let limit = ctx.ks.enc.proto_max_bulk_len;
    let mut rng = Rng::new(ctx.ks);
    let s = match read_set(ctx.ks, ctx.db, args[1]) {
        Err(()) => return ctx.out.wrongtype(),
        Ok(None) => return ctx.out.array(0),
        Ok(Some(s)) => s,
    };
    if count == 0 {
        return ctx.out.array(0);
    }
    let size = s.len();
    let out = &mut ctx.out;

    // CASE 1: repetitions allowed (or a single member): sample each time.
    if !uniq || count == 1 {
        // Every member costs at least 6 bytes of reply ("$0\r\n\r\n"); refuse
        // replies that cannot fit proto-max-bulk-len rather than build them.
        if count as u128 * 6 > limit as u128 {
            return out.err(E_REPLY_TOO_BIG);
        }
        let start = out.buf.len();
        out.array(count as usize);
        for _ in 0..count {
            if let Some(m) = s.random(|| rng.next()) {
                write_member(out, m);
            }
            if out.buf.len() - start > limit {
                out.buf.truncate(start);
                return out.err(E_REPLY_TOO_BIG);
            }
        }
        return;
    }
    let count = count as usize;

    // CASE 2: the whole set.
    if count >= size {
        out.array(size);
        for m in s.iter() {
            write_member(out, m);
        }
        return;
    }

    // CASE 3: most of the set: a random subset by a partial shuffle.
    if count * 3 > size {
        let mut all: Vec<Member> = s.iter().collect();
        for i in 0..count {
            let j = i + rng.below(size - i);
            all.swap(i, j);
        }
        out.array(count);
        for m in &all[..count] {
            write_member(out, *m);
        }
        return;
    }

    // CASE 4: a small part of a big set: sample until enough distinct.
    let mut picked: hashbrown::HashSet<Member> = hashbrown::HashSet::with_capacity(count);
    let mut order: Vec<Member> = Vec::with_capacity(count);
    while order.len() < count {
        let Some(m) = s.random(|| rng.next()) else {
            break;
        };
        if picked.insert(m) {
            order.push(m);
        }
    }
    out.array(order.len());
    for m in order {
        write_member(out, m);
    }
}

/// SPOP_MOVE_STRATEGY_MUL in Redis: above this ratio of remaining to
/// popped members, pop one by one; below it, keep a rebuilt remainder.
const SPOP_MOVE_STRATEGY_MUL: usize = 5;

fn spop(ctx: &mut Ctx, args: &[&[u8]]) {
    if args.len() == 3 {
        return spop_count(ctx, args);
    }
    if args.len() > 3 {
        return ctx.out.syntax();
    }
    let (db, key) = (ctx.db, args[1]);
    let mut rng = Rng::new(ctx.ks);
    let (popped, empty) = match write_lookup(ctx.ks, db, key) {
        Err(()) => return ctx.out.wrongtype(),
        Ok(None) => return ctx.out.null(),
        Ok(Some(s)) => (s.pop_random(|| rng.next()), s.is_empty()),
    };
    match popped {
        Some(m) => ctx.out.bulk(&m),
        None => ctx.out.null(),
    }
    ctx.ks.touch_write(1);
    ctx.ks.notify(N::SET, "spop", db, key);
    if empty {
        ctx.ks.delete(db, key);
        ctx.ks.notify(N::GENERIC, "del", db, key);
    }
}

fn spop_count(ctx: &mut Ctx, args: &[&[u8]]) {
    let Some(count) = parse_i64(args[2]).filter(|&n| n >= 0) else {
        return ctx.out.err(E_POSITIVE);
    };
    let (db, key) = (ctx.db, args[1]);
    let max = ctx.ks.enc.set_max_intset_entries;
    let mut rng = Rng::new(ctx.ks);
    let s = match write_lookup(ctx.ks, db, key) {
        Err(()) => return ctx.out.wrongtype(),
        Ok(None) => return ctx.out.set(0),
        Ok(Some(s)) => s,
    };
    if count == 0 {
        return ctx.out.set(0);
    }
    let size = s.len();
    let out = &mut ctx.out;
    // CASE 1: everything: reply with the whole set and delete the key.
    if count as u64 >= size as u64 {
        write_set(out, s);
        ctx.ks.delete(db, key);
        ctx.ks.touch_write(size as u64);
        ctx.ks.notify(N::SET, "spop", db, key);
        ctx.ks.notify(N::GENERIC, "del", db, key);
        return;
    }
    let count = count as usize;
    let remaining = size - count;
    out.set(count);
    if remaining * SPOP_MOVE_STRATEGY_MUL > count {
        // CASE 2: pop random members one by one.
        for _ in 0..count {
            if let Some(m) = s.pop_random(|| rng.next()) {
                out.bulk(&m);
            }
        }
    } else {
        // CASE 3: move the members that stay into a new set (which gets
        // the encoding Redis's setTypeCreate/setTypeAdd would give it)
        // and reply with what is left of the old one.
        let mut kept: Option<Set> = None;
        for _ in 0..remaining {
            let Some(m) = s.pop_random(|| rng.next()) else {
                break;
            };
            kept.get_or_insert_with(|| Set::for_member(&m)).add(&m, max);
        }
        let old = std::mem::replace(s, kept.unwrap_or_default());
        for m in old.iter() {
            write_member(out, m);
        }
    }
    ctx.ks.touch_write(count as u64);
    ctx.ks.notify(N::SET, "spop", db, key);
}

// ----- SSCAN -------------------------------------------------------------------

/// SSCAN's COUNT and MATCH (TYPE is a syntax error for a key's scan).
fn parse_sscan_opts<'a>(args: &[&'a [u8]], out: &mut Out) -> Option<(usize, Option<&'a [u8]>)> {
    let (mut count, mut pat) = (10usize, None);
    let mut i = 0;
    while i < args.len() {
        let more = args.len() - i >= 2;
        if more && eq_ic(args[i], "count") {
            let Some(n) = parse_i64(args[i + 1]) else {
                out.not_int();
                return None;
            };
            if n < 1 {
                out.syntax();
                return None;
            }
            count = usize::try_from(n).unwrap_or(usize::MAX);
        } else if more && eq_ic(args[i], "match") {
            // "*" matches everything: no filtering at all.
            pat = (args[i + 1] != b"*").then_some(args[i + 1]);
        } else {
            out.syntax();
            return None;
        }
        i += 2;
    }
    Some((count, pat))
}

fn sscan(ctx: &mut Ctx, args: &[&[u8]]) {
    let Some(cursor) = crate::util::parse_scan_cursor(args[2]) else {
        return ctx.out.err(E_CURSOR);
    };
    let s = match read_set(ctx.ks, ctx.db, args[1]) {
        Err(()) => return ctx.out.wrongtype(),
        Ok(None) => {
            ctx.out.array(2);
            ctx.out.bulk(b"0");
            return ctx.out.array(0);
        }
        Ok(Some(s)) => s,
    };
    let Some((count, pat)) = parse_sscan_opts(&args[3..], &mut ctx.out) else {
        return;
    };
    let mut found: Vec<Member> = Vec::new();
    let mut cur = cursor;
    if s.is_intset() {
        cur = s.scan(0, |m| found.push(m));
    } else {
        let mut budget = count.saturating_mul(10);
        loop {
            cur = s.scan(cur, |m| found.push(m));
            if cur == 0 || budget == 0 || found.len() >= count {
                break;
            }
            budget -= 1;
        }
    }
    if let Some(p) = pat {
        found.retain(|m| m.with_bytes(|b| glob_match(p, b, false)));
    }
    ctx.out.array(2);
    ctx.out.bulk(itoa::Buffer::new().format(cur).as_bytes());
    ctx.out.array(found.len());
    for m in found {
        write_member(&mut ctx.out, m);
    }
}

// ----- SMOVE -------------------------------------------------------------------

fn smove(ctx: &mut Ctx, args: &[&[u8]]) {
    let (db, src, dst, m) = (ctx.db, args[1], args[2], args[3]);
    let max = ctx.ks.enc.set_max_intset_entries;
    match kind_of(ctx.ks.peek(db, src)) {
        Kind::Missing => return ctx.out.int(0),
        Kind::Other => return ctx.out.wrongtype(),
        Kind::Set => {}
    }
    if kind_of(ctx.ks.peek(db, dst)) == Kind::Other {
        return ctx.out.wrongtype();
    }
    if src == dst {
        let is = matches!(ctx.ks.peek(db, src), Some(Value::Set(s)) if s.contains(m));
        return ctx.out.int(is as i64);
    }
    if !remove_one(ctx.ks, db, src, m) {
        return ctx.out.int(0);
    }
    add_one(ctx.ks, db, dst, m, max);
    ctx.out.int(1);
}

/// SMOVE across shards: the checks, the removal and the insertion run in
/// one transaction, in Redis's order.
fn smove_multi(ctx: &mut SrvCtx, args: &[&[u8]]) {
    let db = ctx.conn.db;
    let now = crate::util::now_ms();
    let max = ctx.sh.ks.enc.set_max_intset_entries;
    let (src, dst, m) = (args[1].to_vec(), args[2].to_vec(), args[3].to_vec());
    let (ss, ds) = (ctx.sh.shard_of(&src), ctx.sh.shard_of(&dst));
    let r: Result<bool, ()> = ctx.sh.tx(&[ss, ds], move |tx| {
        let s2 = src.clone();
        let sk = tx.run(ss, move |sh: &mut Shard| {
            sh.ks.now = now;
            kind_of(sh.ks.peek(db, &s2))
        });
        match sk {
            Kind::Missing => return Ok(false),
            Kind::Other => return Err(()),
            Kind::Set => {}
        }
        let d2 = dst.clone();
        let dk = tx.run(ds, move |sh: &mut Shard| {
            sh.ks.now = now;
            kind_of(sh.ks.peek(db, &d2))
        });
        if dk == Kind::Other {
            return Err(());
        }
        let m2 = m.clone();
        if !tx.run(ss, move |sh: &mut Shard| {
            remove_one(&mut sh.ks, db, &src, &m2)
        }) {
            return Ok(false);
        }
        tx.run(ds, move |sh: &mut Shard| {
            add_one(&mut sh.ks, db, &dst, &m, max)
        });
        Ok(true)
    });
    match r {
        Err(()) => ctx.out.wrongtype(),
        Ok(moved) => ctx.out.int(moved as i64),
    }
}

// ----- the multi-key algorithms ------------------------------------------------

/// The set operation of a multi-key command.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Op {
    Inter,
    /// SINTERCARD with its LIMIT (0 = none).
    InterCard(u64),
    Union,
    Diff,
}

/// Calls `f` with every member of the intersection, iterating the
/// smallest set (Redis's `sinterGenericCommand`); `f` returns false to
/// stop. A missing key makes the intersection empty.
fn inter_each<'a>(sets: &[Option<&'a Set>], mut f: impl FnMut(Member<'a>) -> bool) {
    let Some(mut sorted) = sets.iter().copied().collect::<Option<Vec<&Set>>>() else {
        return;
    };
    if sorted.is_empty() {
        return;
    }
    sorted.sort_by_key(|s| s.len());
    let first = sorted[0];
    for m in first.iter() {
        let all = sorted[1..]
            .iter()
            .all(|s| std::ptr::eq(*s, first) || s.contains_member(m));
        if all && !f(m) {
            break;
        }
    }
}

/// SUNION / SDIFF into a fresh set that starts as an empty intset, as
/// Redis's `sunionDiffGenericCommand` (the algorithm choice for SDIFF
/// matters: it decides the encoding of an SDIFFSTORE result).
fn union_diff(sets: &[Option<&Set>], diff: bool, max: usize) -> Set {
    let mut dst = Set::new();
    if !diff {
        for s in sets.iter().flatten() {
            for m in s.iter() {
                dst.add_member(m, max);
            }
        }
        return dst;
    }
    let Some(first) = sets.first().copied().flatten() else {
        return dst;
    };
    let (mut algo_one, mut algo_two) = (0u64, 0u64);
    for s in sets.iter().flatten() {
        algo_one += first.len() as u64;
        algo_two += s.len() as u64;
    }
    algo_one /= 2;
    if algo_one <= algo_two {
        // Algorithm 1: members of the first set found in no other set
        // (the others by decreasing size, to find duplicates sooner).
        let mut others: Vec<&Set> = sets[1..].iter().flatten().copied().collect();
        others.sort_by_key(|s| std::cmp::Reverse(s.len()));
        for m in first.iter() {
            if !others.iter().any(|s| s.contains_member(m)) {
                dst.add_member(m, max);
            }
        }
    } else {
        // Algorithm 2: add the first set, remove every other.
        for (j, s) in sets.iter().enumerate() {
            let Some(s) = s else { continue };
            for m in s.iter() {
                if j == 0 {
                    dst.add_member(m, max);
                } else {
                    dst.remove_member(m);
                }
            }
            if dst.is_empty() {
                break;
            }
        }
    }
    dst
}

/// The result set of a *STORE command.
fn store_set(sets: &[Option<&Set>], op: Op, max: usize) -> Set {
    match op {
        Op::Union => union_diff(sets, false, max),
        Op::Diff => union_diff(sets, true, max),
        Op::Inter | Op::InterCard(_) => {
            let mut dst = Set::new();
            inter_each(sets, |m| {
                dst.add_member(m, max);
                true
            });
            dst
        }
    }
}

/// Writes the reply of SINTER / SINTERCARD / SUNION / SDIFF.
fn reply_op(out: &mut Out, sets: &[Option<&Set>], op: Op, max: usize) {
    match op {
        Op::Inter => {
            let mut found = Vec::new();
            inter_each(sets, |m| {
                found.push(m);
                true
            });
            out.set(found.len());
            for m in found {
                write_member(out, m);
            }
        }
        Op::InterCard(limit) => {
            let mut n = 0u64;
            inter_each(sets, |_| {
                n += 1;
                limit == 0 || n < limit
            });
            out.int(n as i64);
        }
        Op::Union | Op::Diff => write_set(out, &union_diff(sets, op == Op::Diff, max)),
    }
}

/// A multi-key command on one shard: every key is looked up (and
/// type-checked) first, as Redis does, then the operation runs on
/// references into the keyspace.
fn setop_local(ctx: &mut Ctx, op: Op, dst: Option<&[u8]>, keys: &[&[u8]]) {
    let db = ctx.db;
    let max = ctx.ks.enc.set_max_intset_entries;
    for k in keys {
        if kind_of(ctx.ks.get(db, k)) == Kind::Other {
            return ctx.out.wrongtype();
        }
    }
    let main = &ctx.ks.dbs[db].main;
    let sets: Vec<Option<&Set>> = keys
        .iter()
        .map(|k| match main.get(k) {
            Some(Value::Set(s)) => Some(&**s),
            _ => None,
        })
        .collect();
    match dst {
        None => reply_op(&mut ctx.out, &sets, op, max),
        Some(d) => {
            let r = store_set(&sets, op, max);
            let n = store_result(ctx.ks, db, d, r, op);
            ctx.out.int(n);
        }
    }
}

/// Keys (with their argument index) grouped by the shard owning them.
type ShardGroups = Vec<(usize, Vec<(usize, Vec<u8>)>)>;

/// Copies of the sets at `keys` (None = missing), read on their shards
/// inside the caller's transaction. Err = a key holds another type.
fn gather_sets(tx: &mut Tx, keys: &[Vec<u8>], db: usize, now: u64) -> Result<Vec<Option<Set>>, ()> {
    let mut groups: ShardGroups = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        let s = tx.sh.shard_of(k);
        match groups.iter_mut().find(|g| g.0 == s) {
            Some(g) => g.1.push((i, k.clone())),
            None => groups.push((s, vec![(i, k.clone())])),
        }
    }
    let mut sets: Vec<Option<Set>> = (0..keys.len()).map(|_| None).collect();
    for (s, ks) in groups {
        let got = tx.run(s, move |sh: &mut Shard| {
            sh.ks.now = now;
            let mut got = Vec::with_capacity(ks.len());
            for (i, k) in ks {
                match sh.ks.get(db, &k) {
                    None => {}
                    Some(Value::Set(st)) => got.push((i, (**st).clone())),
                    Some(_) => return Err(()),
                }
            }
            Ok(got)
        })?;
        for (i, st) in got {
            sets[i] = Some(st);
        }
    }
    Ok(sets)
}

/// A multi-key command whose keys span shards: the inputs are copied out
/// of their shards and the destination written, all in one transaction.
fn setop_multi(ctx: &mut SrvCtx, op: Op, dst: Option<&[u8]>, keys: &[&[u8]]) {
    let db = ctx.conn.db;
    let now = crate::util::now_ms();
    let max = ctx.sh.ks.enc.set_max_intset_entries;
    let keys: Vec<Vec<u8>> = keys.iter().map(|k| k.to_vec()).collect();
    let mut shards: Vec<usize> = keys.iter().map(|k| ctx.sh.shard_of(k)).collect();
    let dst: Option<(usize, Vec<u8>)> = dst.map(|d| (ctx.sh.shard_of(d), d.to_vec()));
    if let Some((ds, _)) = &dst {
        shards.push(*ds);
    }
    shards.sort_unstable();
    shards.dedup();
    /// What the transaction hands back.
    enum Done {
        Read(Vec<Option<Set>>),
        Stored(i64),
    }
    let r = ctx.sh.tx(&shards, move |tx| {
        let sets = gather_sets(tx, &keys, db, now)?;
        let Some((ds, d)) = dst else {
            return Ok(Done::Read(sets));
        };
        let refs: Vec<Option<&Set>> = sets.iter().map(|s| s.as_ref()).collect();
        let r = store_set(&refs, op, max);
        drop(refs);
        drop(sets);
        let n = tx.run(ds, move |sh: &mut Shard| {
            sh.ks.now = now;
            store_result(&mut sh.ks, db, &d, r, op)
        });
        Ok(Done::Stored(n))
    });
    match r {
        Err(()) => ctx.out.wrongtype(),
        Ok(Done::Stored(n)) => ctx.out.int(n),
        Ok(Done::Read(sets)) => {
            let refs: Vec<Option<&Set>> = sets.iter().map(|s| s.as_ref()).collect();
            reply_op(&mut ctx.out, &refs, op, max);
        }
    }
}

// ----- SINTER / SUNION / SDIFF and their STORE forms ----------------------------

fn sinter(ctx: &mut Ctx, args: &[&[u8]]) {
    setop_local(ctx, Op::Inter, None, &args[1..]);
}

fn sinter_multi(ctx: &mut SrvCtx, args: &[&[u8]]) {
    setop_multi(ctx, Op::Inter, None, &args[1..]);
}

fn sinterstore(ctx: &mut Ctx, args: &[&[u8]]) {
    setop_local(ctx, Op::Inter, Some(args[1]), &args[2..]);
}

fn sinterstore_multi(ctx: &mut SrvCtx, args: &[&[u8]]) {
    setop_multi(ctx, Op::Inter, Some(args[1]), &args[2..]);
}

fn sunion(ctx: &mut Ctx, args: &[&[u8]]) {
    setop_local(ctx, Op::Union, None, &args[1..]);
}

fn sunion_multi(ctx: &mut SrvCtx, args: &[&[u8]]) {
    setop_multi(ctx, Op::Union, None, &args[1..]);
}

fn sunionstore(ctx: &mut Ctx, args: &[&[u8]]) {
    setop_local(ctx, Op::Union, Some(args[1]), &args[2..]);
}

fn sunionstore_multi(ctx: &mut SrvCtx, args: &[&[u8]]) {
    setop_multi(ctx, Op::Union, Some(args[1]), &args[2..]);
}

fn sdiff(ctx: &mut Ctx, args: &[&[u8]]) {
    setop_local(ctx, Op::Diff, None, &args[1..]);
}

fn sdiff_multi(ctx: &mut SrvCtx, args: &[&[u8]]) {
    setop_multi(ctx, Op::Diff, None, &args[1..]);
}

fn sdiffstore(ctx: &mut Ctx, args: &[&[u8]]) {
    setop_local(ctx, Op::Diff, Some(args[1]), &args[2..]);
}

fn sdiffstore_multi(ctx: &mut SrvCtx, args: &[&[u8]]) {
    setop_multi(ctx, Op::Diff, Some(args[1]), &args[2..]);
}

// ----- SINTERCARD ----------------------------------------------------------------

/// `SINTERCARD numkeys key [key ...] [LIMIT limit]`: the number of keys and
/// the limit, or the error Redis gives (checked before any key lookup).
fn parse_sintercard(args: &[&[u8]]) -> Result<(usize, u64), &'static str> {
    let numkeys = match parse_i64(args[1]) {
        Some(n) if n >= 1 => n as u64,
        _ => return Err(E_NUMKEYS),
    };
    if numkeys > (args.len() - 2) as u64 {
        return Err(E_NUMKEYS_ARGS);
    }
    let numkeys = numkeys as usize;
    let mut limit = 0u64;
    let mut j = 2 + numkeys;
    while j < args.len() {
        let more = args.len() - 1 - j;
        if eq_ic(args[j], "limit") && more > 0 {
            j += 1;
            limit = match parse_i64(args[j]) {
                Some(n) if n >= 0 => n as u64,
                _ => return Err(E_LIMIT),
            };
        } else {
            return Err("syntax error");
        }
        j += 1;
    }
    Ok((numkeys, limit))
}

fn sintercard(ctx: &mut Ctx, args: &[&[u8]]) {
    match parse_sintercard(args) {
        Err(e) => ctx.out.err(e),
        Ok((n, limit)) => setop_local(ctx, Op::InterCard(limit), None, &args[2..2 + n]),
    }
}

fn sintercard_multi(ctx: &mut SrvCtx, args: &[&[u8]]) {
    match parse_sintercard(args) {
        Err(e) => ctx.out.err(e),
        Ok((n, limit)) => setop_multi(ctx, Op::InterCard(limit), None, &args[2..2 + n]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn ks() -> Keyspace {
        let mut ks = Keyspace::new(16);
        ks.now = 1_700_000_000_000;
        ks
    }

    /// Runs a command of this family on db 0 and returns the raw reply,
    /// checking arity as the dispatcher does.
    fn call_proto(ks: &mut Keyspace, resp3: bool, args: &[&[u8]]) -> Vec<u8> {
        crate::cmd::run_keyed(ks, 0, resp3, args)
    }

    fn call3(ks: &mut Keyspace, args: &[&str]) -> String {
        let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
        String::from_utf8(call_proto(ks, true, &a)).unwrap()
    }

    fn call(ks: &mut Keyspace, args: &[&str]) -> String {
        let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
        String::from_utf8(call_proto(ks, false, &a)).unwrap()
    }

    /// The members of an array/set reply of bulk strings, sorted.
    fn members(reply: &str) -> Vec<String> {
        let lines: Vec<&str> = reply.split("\r\n").collect();
        assert!(
            lines[0].starts_with('*') || lines[0].starts_with('~'),
            "{reply}"
        );
        let n: usize = lines[0][1..].parse().unwrap();
        let mut v: Vec<String> = (0..n).map(|i| lines[2 + 2 * i].to_string()).collect();
        v.sort();
        v
    }

    fn encoding(ks: &mut Keyspace, key: &str) -> &'static str {
        ks.peek(0, key.as_bytes())
            .map(|v| v.encoding())
            .unwrap_or("none")
    }

    fn strs(v: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
        v.sort();
        v
    }

    #[test]
    fn sadd_srem_scard_and_encodings() {
        let mut ks = ks();
        assert_eq!(call(&mut ks, &["SADD", "s", "3", "1", "2", "1"]), ":3\r\n");
        assert_eq!(encoding(&mut ks, "s"), "intset");
        assert_eq!(
            call(&mut ks, &["SMEMBERS", "s"]),
            "*3\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n"
        );
        assert_eq!(
            call3(&mut ks, &["SMEMBERS", "s"]),
            "~3\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n"
        );
        assert_eq!(call(&mut ks, &["SADD", "s", "a"]), ":1\r\n");
        assert_eq!(encoding(&mut ks, "s"), "hashtable");
        assert_eq!(call(&mut ks, &["SCARD", "s"]), ":4\r\n");
        assert_eq!(call(&mut ks, &["SREM", "s", "a", "x", "1"]), ":2\r\n");
        assert_eq!(encoding(&mut ks, "s"), "hashtable");
        assert_eq!(call(&mut ks, &["SREM", "s", "2", "3", "4"]), ":2\r\n");
        assert_eq!(call(&mut ks, &["SCARD", "s"]), ":0\r\n");
        assert!(ks.peek(0, b"s").is_none(), "an emptied set vanishes");
        assert_eq!(call(&mut ks, &["SREM", "s", "1"]), ":0\r\n");
        // A set whose first member is not an integer starts as a hashtable.
        assert_eq!(call(&mut ks, &["SADD", "h", "x", "1"]), ":2\r\n");
        assert_eq!(encoding(&mut ks, "h"), "hashtable");
        // Limit conversions.
        ks.enc.set_max_intset_entries = 3;
        assert_eq!(call(&mut ks, &["SADD", "i", "1", "2", "3"]), ":3\r\n");
        assert_eq!(encoding(&mut ks, "i"), "intset");
        assert_eq!(call(&mut ks, &["SADD", "i", "4"]), ":1\r\n");
        assert_eq!(encoding(&mut ks, "i"), "hashtable");
        assert_eq!(
            call(&mut ks, &["SADD", "i"]),
            "-ERR wrong number of arguments for 'sadd' command\r\n"
        );
    }

    #[test]
    fn wrong_type_everywhere() {
        let mut ks = ks();
        ks.set(
            0,
            b"str",
            Value::Str(crate::types::Str::from_bytes(b"v")),
            false,
        );
        call(&mut ks, &["SADD", "s", "1"]);
        let wt = "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";
        for c in [
            &["SADD", "str", "1"][..],
            &["SREM", "str", "1"],
            &["SCARD", "str"],
            &["SISMEMBER", "str", "1"],
            &["SMISMEMBER", "str", "1"],
            &["SMEMBERS", "str"],
            &["SRANDMEMBER", "str"],
            &["SRANDMEMBER", "str", "2"],
            &["SPOP", "str"],
            &["SPOP", "str", "2"],
            &["SSCAN", "str", "0"],
            &["SMOVE", "str", "s", "1"],
            &["SMOVE", "s", "str", "1"],
            &["SINTER", "missing", "str"],
            &["SINTERCARD", "2", "missing", "str"],
            &["SINTERSTORE", "d", "missing", "str"],
            &["SUNION", "s", "str"],
            &["SDIFF", "missing", "str"],
            &["SDIFFSTORE", "d", "s", "str"],
        ] {
            assert_eq!(call(&mut ks, c), wt, "{c:?}");
        }
        // SMOVE from a missing source answers 0 before checking the target.
        assert_eq!(call(&mut ks, &["SMOVE", "missing", "str", "1"]), ":0\r\n");
        assert!(ks.peek(0, b"d").is_none());
    }

    #[test]
    fn missing_keys_and_reply_types() {
        let mut ks = ks();
        assert_eq!(call(&mut ks, &["SMEMBERS", "m"]), "*0\r\n");
        assert_eq!(call3(&mut ks, &["SMEMBERS", "m"]), "~0\r\n");
        assert_eq!(call(&mut ks, &["SRANDMEMBER", "m"]), "$-1\r\n");
        assert_eq!(call3(&mut ks, &["SRANDMEMBER", "m"]), "_\r\n");
        assert_eq!(call3(&mut ks, &["SRANDMEMBER", "m", "3"]), "*0\r\n");
        assert_eq!(call3(&mut ks, &["SPOP", "m"]), "_\r\n");
        assert_eq!(call3(&mut ks, &["SPOP", "m", "3"]), "~0\r\n");
        assert_eq!(call(&mut ks, &["SPOP", "m", "3"]), "*0\r\n");
        assert_eq!(
            call(&mut ks, &["SMISMEMBER", "m", "a", "b"]),
            "*2\r\n:0\r\n:0\r\n"
        );
        assert_eq!(
            call(&mut ks, &["SSCAN", "m", "0", "COUNT", "0"]),
            "*2\r\n$1\r\n0\r\n*0\r\n"
        );
        assert_eq!(call3(&mut ks, &["SINTER", "m", "n"]), "~0\r\n");
        assert_eq!(call3(&mut ks, &["SUNION", "m", "n"]), "~0\r\n");
        assert_eq!(call3(&mut ks, &["SDIFF", "m", "n"]), "~0\r\n");
        assert_eq!(call(&mut ks, &["SINTERCARD", "1", "m"]), ":0\r\n");
        call(&mut ks, &["SADD", "s", "a", "b"]);
        assert_eq!(call3(&mut ks, &["SISMEMBER", "s", "a"]), ":1\r\n");
        assert_eq!(
            call3(&mut ks, &["SMISMEMBER", "s", "a", "z"]),
            "*2\r\n:1\r\n:0\r\n"
        );
        assert_eq!(call3(&mut ks, &["SPOP", "s", "0"]), "~0\r\n");
        assert_eq!(call3(&mut ks, &["SRANDMEMBER", "s", "0"]), "*0\r\n");
        assert_eq!(
            call3(&mut ks, &["SRANDMEMBER", "s", "-2"]).lines().next(),
            Some("*2")
        );
        assert_eq!(
            call3(&mut ks, &["SPOP", "s", "1"]).lines().next(),
            Some("~1")
        );
    }

    #[test]
    fn argument_errors() {
        let mut ks = ks();
        call(&mut ks, &["SADD", "s", "1", "2"]);
        let pos = "-ERR value is out of range, must be positive\r\n";
        assert_eq!(call(&mut ks, &["SPOP", "s", "-1"]), pos);
        assert_eq!(call(&mut ks, &["SPOP", "missing", "abc"]), pos);
        assert_eq!(
            call(&mut ks, &["SPOP", "s", "1", "2"]),
            "-ERR syntax error\r\n"
        );
        assert_eq!(
            call(&mut ks, &["SRANDMEMBER", "missing", "abc"]),
            "-ERR value is not an integer or out of range\r\n"
        );
        assert_eq!(
            call(&mut ks, &["SRANDMEMBER", "s", "-9223372036854775808"]),
            format!("-ERR {E_LONG_RANGE}\r\n")
        );
        assert_eq!(
            call(&mut ks, &["SRANDMEMBER", "s", "1", "2"]),
            "-ERR syntax error\r\n"
        );
        // Huge negative counts are refused instead of building the reply.
        assert!(call(&mut ks, &["SRANDMEMBER", "s", "-9223372036854775807"]).starts_with("-ERR"));
        for (args, want) in [
            (&["SINTERCARD", "0", "s"][..], E_NUMKEYS),
            (&["SINTERCARD", "-1", "s"], E_NUMKEYS),
            (&["SINTERCARD", "abc", "s"], E_NUMKEYS),
            (&["SINTERCARD", "2", "s"], E_NUMKEYS_ARGS),
            (&["SINTERCARD", "9223372036854775807", "s"], E_NUMKEYS_ARGS),
            (&["SINTERCARD", "1", "s", "LIMIT"], "syntax error"),
            (&["SINTERCARD", "1", "s", "LIMIT", "-1"], E_LIMIT),
            (&["SINTERCARD", "1", "s", "LIMIT", "x"], E_LIMIT),
            (&["SINTERCARD", "1", "s", "foo"], "syntax error"),
        ] {
            assert_eq!(call(&mut ks, args), format!("-ERR {want}\r\n"), "{args:?}");
        }
        assert_eq!(
            call(
                &mut ks,
                &["SINTERCARD", "1", "s", "limit", "1", "LIMIT", "0"]
            ),
            ":2\r\n"
        );
        assert_eq!(
            call(&mut ks, &["SINTERCARD", "1", "s", "LIMIT", "1"]),
            ":1\r\n"
        );
        assert_eq!(
            call(&mut ks, &["SSCAN", "s", "abc"]),
            "-ERR invalid cursor\r\n"
        );
        assert_eq!(
            call(&mut ks, &["SSCAN", "missing", "abc"]),
            "-ERR invalid cursor\r\n"
        );
        assert_eq!(
            call(&mut ks, &["SSCAN", "s", "0", "COUNT", "0"]),
            "-ERR syntax error\r\n"
        );
        assert_eq!(
            call(&mut ks, &["SSCAN", "s", "0", "TYPE", "set"]),
            "-ERR syntax error\r\n"
        );
        assert_eq!(
            call(&mut ks, &["SSCAN", "s", "0", "MATCH"]),
            "-ERR syntax error\r\n"
        );
        assert_eq!(
            call(&mut ks, &["SSCAN", "s", "0", "COUNT", "x"]),
            "-ERR value is not an integer or out of range\r\n"
        );
    }

    #[test]
    fn sscan_intset_and_hashtable() {
        let mut ks = ks();
        call(&mut ks, &["SADD", "i", "10", "2", "33"]);
        // An intset comes back whole, cursor 0, whatever the cursor given.
        assert_eq!(
            call(&mut ks, &["SSCAN", "i", "77", "MATCH", "*3*"]),
            "*2\r\n$1\r\n0\r\n*1\r\n$2\r\n33\r\n"
        );
        let mut want = HashSet::new();
        for i in 0..500 {
            let m = format!("m{i}");
            call(&mut ks, &["SADD", "h", &m]);
            want.insert(m);
        }
        let mut seen = HashSet::new();
        let mut cursor = "0".to_string();
        let mut rounds = 0;
        loop {
            let r = call(&mut ks, &["SSCAN", "h", &cursor, "COUNT", "7"]);
            let lines: Vec<&str> = r.split("\r\n").collect();
            cursor = lines[2].to_string();
            let n: usize = lines[3][1..].parse().unwrap();
            for i in 0..n {
                seen.insert(lines[5 + 2 * i].to_string());
            }
            rounds += 1;
            if cursor == "0" {
                break;
            }
        }
        assert_eq!(seen, want);
        assert!(rounds > 10);
        let r = call(
            &mut ks,
            &["SSCAN", "h", "0", "COUNT", "100000", "MATCH", "m1?"],
        );
        assert_eq!(members(&r[r.find("\r\n*").unwrap() + 2..]).len(), 10);
    }

    #[test]
    fn srandmember_counts() {
        let mut ks = ks();
        for enc_limit in [512usize, 0] {
            ks.enc.set_max_intset_entries = enc_limit;
            ks.delete(0, b"s");
            let all: Vec<String> = (0..20).map(|i| i.to_string()).collect();
            let mut args = vec!["SADD", "s"];
            args.extend(all.iter().map(|s| s.as_str()));
            call(&mut ks, &args);
            for count in [1usize, 3, 6, 7, 15, 19, 20, 25] {
                let got = members(&call(&mut ks, &["SRANDMEMBER", "s", &count.to_string()]));
                assert_eq!(got.len(), count.min(20));
                let uniq: HashSet<&String> = got.iter().collect();
                assert_eq!(uniq.len(), got.len(), "distinct for a positive count");
                assert!(got.iter().all(|m| all.contains(m)));
            }
            let got = members(&call(&mut ks, &["SRANDMEMBER", "s", "-100"]));
            assert_eq!(got.len(), 100);
            assert!(got.iter().all(|m| all.contains(m)));
            assert_eq!(call(&mut ks, &["SCARD", "s"]), ":20\r\n");
        }
    }

    #[test]
    fn spop_strategies_and_encodings() {
        let mut ks = ks();
        // CASE 3 rebuilds the remainder: a hashtable whose remaining members
        // are all integers becomes an intset again, as in Redis.
        call(&mut ks, &["SADD", "h", "a", "1", "2", "3", "4", "5"]);
        let popped = members(&call(&mut ks, &["SPOP", "h", "5"]));
        assert_eq!(popped.len(), 5);
        let left = members(&call(&mut ks, &["SMEMBERS", "h"]));
        assert_eq!(left.len(), 1);
        let mut all = popped.clone();
        all.extend(left.clone());
        all.sort();
        assert_eq!(all, strs(&["1", "2", "3", "4", "5", "a"]));
        let want = if left[0] == "a" {
            "hashtable"
        } else {
            "intset"
        };
        assert_eq!(encoding(&mut ks, "h"), want);
        // CASE 2 pops one by one, CASE 1 takes everything and deletes.
        let mut args = vec!["SADD".to_string(), "p".to_string()];
        args.extend((0..100).map(|i| format!("m{i}")));
        let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        call(&mut ks, &a);
        assert_eq!(members(&call(&mut ks, &["SPOP", "p", "10"])).len(), 10);
        assert_eq!(call(&mut ks, &["SCARD", "p"]), ":90\r\n");
        assert_eq!(members(&call(&mut ks, &["SPOP", "p", "80"])).len(), 80);
        assert_eq!(call(&mut ks, &["SCARD", "p"]), ":10\r\n");
        assert_eq!(encoding(&mut ks, "p"), "hashtable");
        assert_eq!(members(&call(&mut ks, &["SPOP", "p", "1000"])).len(), 10);
        assert!(ks.peek(0, b"p").is_none());
        call(&mut ks, &["SADD", "one", "x"]);
        assert_eq!(call(&mut ks, &["SPOP", "one"]), "$1\r\nx\r\n");
        assert!(ks.peek(0, b"one").is_none());
    }

    #[test]
    fn smove_cases() {
        let mut ks = ks();
        call(&mut ks, &["SADD", "a", "1", "2"]);
        assert_eq!(call(&mut ks, &["SMOVE", "a", "a", "1"]), ":1\r\n");
        assert_eq!(call(&mut ks, &["SMOVE", "a", "a", "9"]), ":0\r\n");
        assert_eq!(call(&mut ks, &["SMOVE", "a", "b", "9"]), ":0\r\n");
        assert!(ks.peek(0, b"b").is_none());
        assert_eq!(call(&mut ks, &["SMOVE", "a", "b", "1"]), ":1\r\n");
        assert_eq!(encoding(&mut ks, "b"), "intset");
        call(&mut ks, &["SADD", "c", "2"]);
        assert_eq!(call(&mut ks, &["SMOVE", "a", "c", "2"]), ":1\r\n");
        assert!(ks.peek(0, b"a").is_none(), "emptied source vanishes");
        assert_eq!(call(&mut ks, &["SMEMBERS", "c"]), "*1\r\n$1\r\n2\r\n");
        call(&mut ks, &["SADD", "a", "x"]);
        assert_eq!(call(&mut ks, &["SMOVE", "a", "n", "x"]), ":1\r\n");
        assert_eq!(encoding(&mut ks, "n"), "hashtable");
    }

    #[test]
    fn set_algebra_and_store_encodings() {
        let mut ks = ks();
        call(&mut ks, &["SADD", "a", "1", "2", "3", "4", "x"]);
        call(&mut ks, &["SADD", "b", "2", "3", "x", "y"]);
        call(&mut ks, &["SADD", "c", "3", "4", "x"]);
        assert_eq!(
            members(&call(&mut ks, &["SINTER", "a", "b", "c"])),
            strs(&["3", "x"])
        );
        assert_eq!(members(&call(&mut ks, &["SINTER", "a", "a"])).len(), 5);
        assert_eq!(call(&mut ks, &["SINTERCARD", "3", "a", "b", "c"]), ":2\r\n");
        assert_eq!(
            call(&mut ks, &["SINTERCARD", "2", "a", "b", "LIMIT", "2"]),
            ":2\r\n"
        );
        assert_eq!(
            members(&call(&mut ks, &["SUNION", "a", "b", "missing"])),
            strs(&["1", "2", "3", "4", "x", "y"])
        );
        assert_eq!(
            members(&call(&mut ks, &["SDIFF", "a", "b"])),
            strs(&["1", "4"])
        );
        assert_eq!(members(&call(&mut ks, &["SDIFF", "a", "a"])).len(), 0);
        assert_eq!(members(&call(&mut ks, &["SDIFF", "missing", "a"])).len(), 0);
        // Store results are intsets when every member is an integer.
        assert_eq!(call(&mut ks, &["SINTERSTORE", "d", "a", "b"]), ":3\r\n");
        assert_eq!(encoding(&mut ks, "d"), "hashtable");
        assert_eq!(call(&mut ks, &["SDIFFSTORE", "d", "a", "b"]), ":2\r\n");
        assert_eq!(encoding(&mut ks, "d"), "intset");
        // SDIFF's second algorithm adds the whole first set and keeps the
        // hashtable encoding even when only integers remain (as Redis).
        call(
            &mut ks,
            &[
                "SADD", "big", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "x",
            ],
        );
        call(&mut ks, &["SADD", "bx", "x"]);
        call(&mut ks, &["SADD", "by", "y"]);
        assert_eq!(
            call(&mut ks, &["SDIFFSTORE", "d", "big", "bx", "by"]),
            ":10\r\n"
        );
        assert_eq!(encoding(&mut ks, "d"), "hashtable");
        assert_eq!(call(&mut ks, &["SDIFFSTORE", "d", "big", "bx"]), ":10\r\n");
        assert_eq!(encoding(&mut ks, "d"), "intset");
        // Empty results delete the destination, whatever it held.
        ks.set(
            0,
            b"str",
            Value::Str(crate::types::Str::from_bytes(b"v")),
            false,
        );
        assert_eq!(
            call(&mut ks, &["SINTERSTORE", "str", "a", "missing"]),
            ":0\r\n"
        );
        assert!(ks.peek(0, b"str").is_none());
        ks.set(
            0,
            b"str",
            Value::Str(crate::types::Str::from_bytes(b"v")),
            false,
        );
        assert_eq!(call(&mut ks, &["SUNIONSTORE", "str", "a"]), ":5\r\n");
        assert_eq!(encoding(&mut ks, "str"), "hashtable");
        // The destination may be a source.
        assert_eq!(call(&mut ks, &["SDIFFSTORE", "a", "a", "b"]), ":2\r\n");
        assert_eq!(
            members(&call(&mut ks, &["SMEMBERS", "a"])),
            strs(&["1", "4"])
        );
        // Large results convert past the limit.
        ks.enc.set_max_intset_entries = 2;
        assert_eq!(call(&mut ks, &["SUNIONSTORE", "u", "a", "c"]), ":4\r\n");
        assert_eq!(encoding(&mut ks, "u"), "hashtable");
    }

    /// Random command streams against a HashSet model: replies and the
    /// intset/hashtable encoding rules.
    #[test]
    fn random_streams_match_a_model() {
        use std::collections::HashMap;
        let mut rng = Rng(0x1234_5678);
        for round in 0..4 {
            let mut ks = ks();
            let max = [512usize, 4, 16, 0][round];
            ks.enc.set_max_intset_entries = max;
            let mut model: HashMap<String, HashSet<String>> = HashMap::new();
            let keys = ["a", "b", "c"];
            for _ in 0..3000 {
                let key = keys[rng.below(3)];
                let m = if rng.below(8) == 0 {
                    format!("s{}", rng.below(10))
                } else {
                    (rng.below(30) as i64 - 10).to_string()
                };
                match rng.below(6) {
                    0 | 1 => {
                        let r = call(&mut ks, &["SADD", key, &m]);
                        let added = model.entry(key.into()).or_default().insert(m.clone());
                        assert_eq!(r, format!(":{}\r\n", added as i32));
                    }
                    2 => {
                        let r = call(&mut ks, &["SREM", key, &m]);
                        let removed = model.get_mut(key).is_some_and(|s| s.remove(&m));
                        assert_eq!(r, format!(":{}\r\n", removed as i32));
                    }
                    3 => {
                        let r = call(&mut ks, &["SISMEMBER", key, &m]);
                        let is = model.get(key).is_some_and(|s| s.contains(&m));
                        assert_eq!(r, format!(":{}\r\n", is as i32));
                    }
                    4 => {
                        let r = members(&call(&mut ks, &["SPOP", key, "2"]));
                        for p in r {
                            assert!(model.get_mut(key).unwrap().remove(&p));
                        }
                    }
                    _ => {
                        let dst = keys[rng.below(3)];
                        let r = call(&mut ks, &["SMOVE", key, dst, &m]);
                        let moved = model.get_mut(key).is_some_and(|s| s.remove(&m));
                        if moved {
                            model.entry(dst.into()).or_default().insert(m.clone());
                        }
                        assert_eq!(r, format!(":{}\r\n", moved as i32));
                    }
                }
                model.retain(|_, s| !s.is_empty());
                for k in keys {
                    let got = members(&call(&mut ks, &["SMEMBERS", k]));
                    let mut want: Vec<String> = model
                        .get(k)
                        .map(|s| s.iter().cloned().collect())
                        .unwrap_or_default();
                    want.sort();
                    assert_eq!(got, want);
                    if let Some(s) = model.get(k) {
                        if s.iter().any(|m| parse_i64(m.as_bytes()).is_none()) || s.len() > max {
                            assert_eq!(encoding(&mut ks, k), "hashtable");
                        }
                    } else {
                        assert!(ks.peek(0, k.as_bytes()).is_none());
                    }
                }
            }
        }
    }

    #[test]
    fn table_matches_the_spec() {
        let names: Vec<&str> = COMMANDS.iter().map(|c| c.name).collect();
        assert_eq!(names.len(), 17);
        let sic = COMMANDS.iter().find(|c| c.name == "sintercard").unwrap();
        let args: Vec<&[u8]> = vec![b"sintercard", b"2", b"a", b"b", b"LIMIT", b"1"];
        assert_eq!(sic.key_positions(&args).collect::<Vec<_>>(), vec![2, 3]);
        let sm = COMMANDS.iter().find(|c| c.name == "smove").unwrap();
        let args: Vec<&[u8]> = vec![b"smove", b"a", b"b", b"m"];
        assert_eq!(sm.key_positions(&args).collect::<Vec<_>>(), vec![1, 2]);
    }
}
