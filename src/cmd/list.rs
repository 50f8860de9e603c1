//! The list family (Redis's t_list.c): pushes and pops at both ends,
//! ranges, LINSERT/LSET/LREM/LTRIM/LPOS, LMOVE and LMPOP, and the blocking
//! BLPOP/BRPOP/BLMOVE/BRPOPLPUSH/BLMPOP.
//!
//! Handlers follow Redis 7.0's order of checks (options, then numbers, then
//! key lookups and types) so that error replies match exactly.
//!
//! Blocking commands first behave like their non-blocking twins (after
//! validating every argument, the timeout included, as Redis 7.0 does);
//! when no key can serve them they call [`Keyspace::block`] and write no
//! reply: the shard parks the client, re-runs the command when a key gets
//! data and replies null at the deadline. That null is the null array for
//! every one of them, BLMOVE and BRPOPLPUSH included: Redis 7.0 answers a
//! timed-out list client with `*-1` whatever the command (inside MULTI,
//! where they cannot block, BLMOVE/BRPOPLPUSH reply the null bulk `$-1`). Every command that adds elements
//! calls [`Keyspace::signal_ready`] for the key it added to.
//!
//! Multi-key commands whose keys span shards have coordinators that run
//! under one [`Shard::tx`], so that no client sees half of a move and keys
//! are checked in argument order atomically.

use super::{
    numkeys_positions, CmdSpec, Ctx, GetKeysFn, Run, SrvCtx, BLOCKING, DENYOOM, FAST, NOSCRIPT,
    READONLY, WRITE,
};
use crate::notify as N;
use crate::resp::Out;
use crate::shard::keyspace::Keyspace;
use crate::shard::Shard;
use crate::types::list::{Elem, List, Needle};
use crate::types::Value;
use crate::util::{eq_ic, parse_f64, parse_i64};

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
        group: "list",
        acl,
        summary,
        since,
        run,
        subs: &[],
        getkeys,
    }
}

const ONE: (i32, i32, i32) = (1, 1, 1);
const TWO: (i32, i32, i32) = (1, 2, 1);
/// Keys are given by a `numkeys` argument (see `getkeys`).
const MOVABLE: (i32, i32, i32) = (0, 0, 0);
const R_FAST: &str = "@read @list @fast";
const R_SLOW: &str = "@read @list @slow";
const W_FAST: &str = "@write @list @fast";
const W_SLOW: &str = "@write @list @slow";
const W_BLOCK: &str = "@write @list @slow @blocking";

#[rustfmt::skip]
pub static COMMANDS: &[CmdSpec] = &[
    spec("blmove", 6, WRITE | DENYOOM | NOSCRIPT | BLOCKING, TWO, W_BLOCK, "6.2.0", Run::KeyMulti(blmove, blmove_coord), "Pop an element from a list, push it to another list and return it; or block until one is available", None),
    spec("blmpop", -5, WRITE | BLOCKING, MOVABLE, W_BLOCK, "7.0.0", Run::KeyMulti(blmpop, blmpop_coord), "Pop elements from a list, or block until one is available", Some(blmpop_keys)),
    spec("blpop", -3, WRITE | NOSCRIPT | BLOCKING, (1, -2, 1), W_BLOCK, "2.0.0", Run::KeyMulti(blpop, blpop_coord), "Remove and get the first element in a list, or block until one is available", None),
    spec("brpop", -3, WRITE | NOSCRIPT | BLOCKING, (1, -2, 1), W_BLOCK, "2.0.0", Run::KeyMulti(brpop, brpop_coord), "Remove and get the last element in a list, or block until one is available", None),
    spec("brpoplpush", 4, WRITE | DENYOOM | NOSCRIPT | BLOCKING, TWO, W_BLOCK, "2.2.0", Run::KeyMulti(brpoplpush, brpoplpush_coord), "Pop an element from a list, push it to another list and return it; or block until one is available", None),
    spec("lindex", 3, READONLY, ONE, R_SLOW, "1.0.0", Run::Key(lindex), "Get an element from a list by its index", None),
    spec("linsert", 5, WRITE | DENYOOM, ONE, W_SLOW, "2.2.0", Run::Key(linsert), "Insert an element before or after another element in a list", None),
    spec("llen", 2, READONLY | FAST, ONE, R_FAST, "1.0.0", Run::Key(llen), "Get the length of a list", None),
    spec("lmove", 5, WRITE | DENYOOM, TWO, W_SLOW, "6.2.0", Run::KeyMulti(lmove, lmove_coord), "Pop an element from a list, push it to another list and return it", None),
    spec("lmpop", -4, WRITE, MOVABLE, W_SLOW, "7.0.0", Run::KeyMulti(lmpop, lmpop_coord), "Pop elements from a list", Some(lmpop_keys)),
    spec("lpop", -2, WRITE | FAST, ONE, W_FAST, "1.0.0", Run::Key(lpop), "Remove and get the first elements in a list", None),
    spec("lpos", -3, READONLY, ONE, R_SLOW, "6.0.6", Run::Key(lpos), "Return the index of matching elements on a list", None),
    spec("lpush", -3, WRITE | DENYOOM | FAST, ONE, W_FAST, "1.0.0", Run::Key(lpush), "Prepend one or multiple elements to a list", None),
    spec("lpushx", -3, WRITE | DENYOOM | FAST, ONE, W_FAST, "2.2.0", Run::Key(lpushx), "Prepend an element to a list, only if the list exists", None),
    spec("lrange", 4, READONLY, ONE, R_SLOW, "1.0.0", Run::Key(lrange), "Get a range of elements from a list", None),
    spec("lrem", 4, WRITE, ONE, W_SLOW, "1.0.0", Run::Key(lrem), "Remove elements from a list", None),
    spec("lset", 4, WRITE | DENYOOM, ONE, W_SLOW, "1.0.0", Run::Key(lset), "Set the value of an element in a list by its index", None),
    spec("ltrim", 4, WRITE, ONE, W_SLOW, "1.0.0", Run::Key(ltrim), "Trim a list to the specified range", None),
    spec("rpop", -2, WRITE | FAST, ONE, W_FAST, "1.0.0", Run::Key(rpop), "Remove and get the last elements in a list", None),
    spec("rpoplpush", 3, WRITE | DENYOOM, TWO, W_SLOW, "1.2.0", Run::KeyMulti(rpoplpush, rpoplpush_coord), "Remove the last element in a list, prepend it to another list and return it", None),
    spec("rpush", -3, WRITE | DENYOOM | FAST, ONE, W_FAST, "1.0.0", Run::Key(rpush), "Append one or multiple elements to a list", None),
    spec("rpushx", -3, WRITE | DENYOOM | FAST, ONE, W_FAST, "2.2.0", Run::Key(rpushx), "Append an element to a list, only if the list exists", None),
];

// ----- error texts (after "ERR ") ---------------------------------------------

const E_SYNTAX: &str = "syntax error";
const E_NO_KEY: &str = "no such key";
const E_INDEX: &str = "index out of range";
const E_POSITIVE: &str = "value is out of range, must be positive";
const E_RANK: &str = "RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list";
const E_COUNT_NEG: &str = "COUNT can't be negative";
const E_MAXLEN_NEG: &str = "MAXLEN can't be negative";
const E_NUMKEYS: &str = "numkeys should be greater than 0";
const E_COUNT_POS: &str = "count should be greater than 0";
const E_TIMEOUT: &str = "timeout is not a float or out of range";
const E_TIMEOUT_NEG: &str = "timeout is negative";

// ----- key positions -------------------------------------------------------------

fn lmpop_keys(args: &[&[u8]]) -> Vec<usize> {
    numkeys_positions(args, 1, &[])
}

fn blmpop_keys(args: &[&[u8]]) -> Vec<usize> {
    numkeys_positions(args, 2, &[])
}

// ----- lookups and shared helpers ---------------------------------------------------

/// What a key holds, for commands that look at several keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum St {
    Missing,
    /// A list (lists are never empty: empty ones are deleted).
    List,
    Wrong,
}

/// A write lookup (no hit/miss statistics, as Redis's lookupKeyWrite).
fn state(ks: &mut Keyspace, db: usize, key: &[u8]) -> St {
    match ks.peek(db, key) {
        None => St::Missing,
        Some(Value::List(_)) => St::List,
        Some(_) => St::Wrong,
    }
}

/// A read lookup (counts a keyspace hit or miss). Err: another type.
fn read<'a>(ks: &'a mut Keyspace, db: usize, key: &[u8]) -> Result<Option<&'a List>, ()> {
    match ks.get(db, key) {
        None => Ok(None),
        Some(Value::List(l)) => Ok(Some(&**l)),
        Some(_) => Err(()),
    }
}

/// A write lookup. Err: another type.
fn write<'a>(ks: &'a mut Keyspace, db: usize, key: &[u8]) -> Result<Option<&'a mut List>, ()> {
    match ks.get_mut(db, key) {
        None => Ok(None),
        Some(Value::List(l)) => Ok(Some(&mut **l)),
        Some(_) => Err(()),
    }
}

/// Pushes `vals` onto the list at `key`, creating it unless `only_existing`.
/// Returns the new length (None: no list and not created); Err: another
/// type. Signals blocked clients.
fn push_vals(
    ks: &mut Keyspace,
    db: usize,
    key: &[u8],
    vals: &[&[u8]],
    front: bool,
    only_existing: bool,
) -> Result<Option<usize>, ()> {
    let n = vals.len() as u64;
    let len = match ks.get_mut(db, key) {
        Some(Value::List(l)) => {
            l.push_all(vals, front);
            let len = l.len();
            ks.touch_write(n);
            len
        }
        Some(_) => return Err(()),
        None if only_existing => return Ok(None),
        None => {
            let mut l = List::new(ks.enc.list_max_listpack_size);
            l.push_all(vals, front);
            let len = l.len();
            ks.set(db, key, Value::List(Box::new(l)), false);
            ks.touch_write(n.saturating_sub(1));
            len
        }
    };
    ks.signal_ready(db, key);
    ks.notify(N::LIST, push_event(front), db, key);
    Ok(Some(len))
}

fn push_event(front: bool) -> &'static str {
    if front {
        "lpush"
    } else {
        "rpush"
    }
}

fn pop_event(front: bool) -> &'static str {
    if front {
        "lpop"
    } else {
        "rpop"
    }
}

/// The events of a pop: the pop itself, then `del` if the list emptied.
fn notify_pop(ks: &mut Keyspace, db: usize, key: &[u8], front: bool, emptied: bool) {
    ks.notify(N::LIST, pop_event(front), db, key);
    if emptied {
        ks.notify(N::GENERIC, "del", db, key);
    }
}

#[inline]
fn reply_elem(out: &mut Out, e: Elem) {
    match e {
        Elem::Str(s) => out.bulk(s),
        Elem::Int(n) => out.bulk_int(n),
    }
}

/// Replies with the first (`front`) or last `n` elements, outermost first.
fn reply_ends(out: &mut Out, l: &List, front: bool, n: usize) {
    out.array(n);
    if front {
        l.iter().take(n).for_each(|e| reply_elem(out, e));
    } else {
        l.iter_rev().take(n).for_each(|e| reply_elem(out, e));
    }
}

fn remove_ends(l: &mut List, front: bool, n: usize) {
    if front {
        l.remove_front(n)
    } else {
        l.remove_back(n)
    }
}

/// Pops from the list at `key` and replies `[key, element]`, or with a
/// count `[key, [elements...]]`. Deletes the key when it empties.
fn pop_key_reply(
    ks: &mut Keyspace,
    db: usize,
    key: &[u8],
    front: bool,
    count: Option<usize>,
    out: &mut Out,
) {
    let Ok(Some(l)) = write(ks, db, key) else {
        return out.null_array();
    };
    out.array(2);
    out.bulk(key);
    let n = match count {
        None => {
            let e = if front { l.first() } else { l.last() };
            match e {
                Some(e) => reply_elem(out, e),
                None => out.null(),
            }
            1
        }
        Some(c) => {
            let n = c.min(l.len());
            reply_ends(out, l, front, n);
            n
        }
    };
    remove_ends(l, front, n);
    let empty = l.is_empty();
    ks.touch_write(n as u64);
    if empty {
        ks.delete(db, key);
    }
    notify_pop(ks, db, key, front, empty);
}

/// Pops up to `count` elements (one if None) from the list at `key` and
/// returns them; deletes the key when it empties.
fn pop_owned(
    ks: &mut Keyspace,
    db: usize,
    key: &[u8],
    front: bool,
    count: Option<usize>,
) -> Vec<Vec<u8>> {
    let Ok(Some(l)) = write(ks, db, key) else {
        return Vec::new();
    };
    let n = count.unwrap_or(1).min(l.len());
    let vals: Vec<Vec<u8>> = if front {
        l.iter().take(n).map(Elem::to_vec).collect()
    } else {
        l.iter_rev().take(n).map(Elem::to_vec).collect()
    };
    remove_ends(l, front, n);
    let empty = l.is_empty();
    ks.touch_write(n as u64);
    if empty {
        ks.delete(db, key);
    }
    notify_pop(ks, db, key, front, empty);
    vals
}

/// Index of the first key holding a list; Err if a key of another type
/// comes first.
fn first_list(ks: &mut Keyspace, db: usize, keys: &[&[u8]]) -> Result<Option<usize>, ()> {
    for (i, k) in keys.iter().enumerate() {
        match state(ks, db, k) {
            St::Missing => continue,
            St::List => return Ok(Some(i)),
            St::Wrong => return Err(()),
        }
    }
    Ok(None)
}

fn owned(keys: &[&[u8]]) -> Vec<Vec<u8>> {
    keys.iter().map(|k| k.to_vec()).collect()
}

/// LEFT / RIGHT: true for the head.
fn parse_where(a: &[u8]) -> Option<bool> {
    if eq_ic(a, "left") {
        Some(true)
    } else if eq_ic(a, "right") {
        Some(false)
    } else {
        None
    }
}

/// Redis 7.0's timeout in seconds: a float, truncated to milliseconds
/// (0 = forever; so is anything under 1 ms).
fn parse_timeout(a: &[u8]) -> Result<u64, &'static str> {
    // Whole seconds exactly (Redis computes in long double).
    if let Some(n) = parse_i64(a) {
        return match n.checked_mul(1000) {
            Some(ms) if ms >= 0 => Ok(ms as u64),
            _ => Err(E_TIMEOUT_NEG),
        };
    }
    let secs = parse_f64(a).ok_or(E_TIMEOUT)?;
    let ms = secs * 1000.0;
    // Redis casts to a long long; on x86-64 a value out of its range
    // becomes LLONG_MIN, which it then reports as negative.
    let lim = i64::MAX as f64; // 2^63
    if !(ms > -lim && ms < lim) {
        return Err(E_TIMEOUT_NEG);
    }
    let t = ms as i64;
    if t < 0 {
        Err(E_TIMEOUT_NEG)
    } else {
        Ok(t as u64)
    }
}

/// Converts a Redis index (negative from the tail) to a position.
fn resolve_index(index: i64, len: usize) -> Option<usize> {
    let i = if index < 0 {
        index.checked_add(len as i64)?
    } else {
        index
    };
    (i >= 0 && (i as u64) < len as u64).then_some(i as usize)
}

/// LRANGE / LTRIM arithmetic: the first position and the count of the
/// range, or None when it is empty.
fn range_of(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let llen = len as i64;
    let mut s = if start < 0 { llen + start } else { start };
    let mut e = if end < 0 { llen + end } else { end };
    if s < 0 {
        s = 0;
    }
    if s > e || s >= llen {
        return None;
    }
    if e >= llen {
        e = llen - 1;
    }
    Some((s as usize, (e - s + 1) as usize))
}

// ----- pushes ---------------------------------------------------------------------

fn push_cmd(ctx: &mut Ctx, args: &[&[u8]], front: bool, only_existing: bool) {
    match push_vals(ctx.ks, ctx.db, args[1], &args[2..], front, only_existing) {
        Err(()) => ctx.out.wrongtype(),
        Ok(None) => ctx.out.int(0),
        Ok(Some(len)) => ctx.out.int(len as i64),
    }
}

fn lpush(ctx: &mut Ctx, args: &[&[u8]]) {
    push_cmd(ctx, args, true, false)
}

fn rpush(ctx: &mut Ctx, args: &[&[u8]]) {
    push_cmd(ctx, args, false, false)
}

fn lpushx(ctx: &mut Ctx, args: &[&[u8]]) {
    push_cmd(ctx, args, true, true)
}

fn rpushx(ctx: &mut Ctx, args: &[&[u8]]) {
    push_cmd(ctx, args, false, true)
}

// ----- pops -----------------------------------------------------------------------

fn pop_cmd(ctx: &mut Ctx, args: &[&[u8]], front: bool) {
    if args.len() > 3 {
        return ctx.out.wrong_arity(if front { "lpop" } else { "rpop" });
    }
    let count = match args.get(2) {
        None => None,
        Some(a) => match parse_i64(a) {
            Some(n) if n >= 0 => Some(n as usize),
            _ => return ctx.out.err(E_POSITIVE),
        },
    };
    let (db, key) = (ctx.db, args[1]);
    let l = match write(ctx.ks, db, key) {
        Err(()) => return ctx.out.wrongtype(),
        Ok(None) if count.is_some() => return ctx.out.null_array(),
        Ok(None) => return ctx.out.null(),
        Ok(Some(l)) => l,
    };
    let n = match count {
        Some(0) => return ctx.out.array(0),
        None => {
            let e = if front { l.first() } else { l.last() };
            match e {
                Some(e) => reply_elem(&mut ctx.out, e),
                None => ctx.out.null(),
            }
            1
        }
        Some(c) => {
            let n = c.min(l.len());
            reply_ends(&mut ctx.out, l, front, n);
            n
        }
    };
    remove_ends(l, front, n);
    let empty = l.is_empty();
    ctx.ks.touch_write(n as u64);
    if empty {
        ctx.ks.delete(db, key);
    }
    notify_pop(ctx.ks, db, key, front, empty);
}

fn lpop(ctx: &mut Ctx, args: &[&[u8]]) {
    pop_cmd(ctx, args, true)
}

fn rpop(ctx: &mut Ctx, args: &[&[u8]]) {
    pop_cmd(ctx, args, false)
}

// ----- reads ------------------------------------------------------------------------

fn llen(ctx: &mut Ctx, args: &[&[u8]]) {
    match read(ctx.ks, ctx.db, args[1]) {
        Err(()) => ctx.out.wrongtype(),
        Ok(None) => ctx.out.int(0),
        Ok(Some(l)) => ctx.out.int(l.len() as i64),
    }
}

fn lrange(ctx: &mut Ctx, args: &[&[u8]]) {
    let (Some(start), Some(end)) = (parse_i64(args[2]), parse_i64(args[3])) else {
        return ctx.out.not_int();
    };
    let l = match read(ctx.ks, ctx.db, args[1]) {
        Err(()) => return ctx.out.wrongtype(),
        Ok(None) => return ctx.out.array(0),
        Ok(Some(l)) => l,
    };
    match range_of(start, end, l.len()) {
        None => ctx.out.array(0),
        Some((s, n)) => {
            ctx.out.array(n);
            for e in l.iter_at(s, false).take(n) {
                reply_elem(&mut ctx.out, e);
            }
        }
    }
}

fn lindex(ctx: &mut Ctx, args: &[&[u8]]) {
    let l = match read(ctx.ks, ctx.db, args[1]) {
        Err(()) => return ctx.out.wrongtype(),
        Ok(None) => return ctx.out.null(),
        Ok(Some(l)) => l,
    };
    let Some(index) = parse_i64(args[2]) else {
        return ctx.out.not_int();
    };
    match resolve_index(index, l.len()).and_then(|i| l.get(i)) {
        Some(e) => reply_elem(&mut ctx.out, e),
        None => ctx.out.null(),
    }
}

fn lpos(ctx: &mut Ctx, args: &[&[u8]]) {
    let (mut rank, mut count, mut maxlen) = (1i64, None::<i64>, 0i64);
    let mut j = 3;
    while j < args.len() {
        let more = j + 1 < args.len();
        if more && eq_ic(args[j], "rank") {
            j += 1;
            match parse_i64(args[j]) {
                None => return ctx.out.not_int(),
                Some(0) => return ctx.out.err(E_RANK),
                Some(r) => rank = r,
            }
        } else if more && eq_ic(args[j], "count") {
            j += 1;
            match parse_i64(args[j]) {
                Some(c) if c >= 0 => count = Some(c),
                _ => return ctx.out.err(E_COUNT_NEG),
            }
        } else if more && eq_ic(args[j], "maxlen") {
            j += 1;
            match parse_i64(args[j]) {
                Some(m) if m >= 0 => maxlen = m,
                _ => return ctx.out.err(E_MAXLEN_NEG),
            }
        } else {
            return ctx.out.syntax();
        }
        j += 1;
    }
    // A negative rank searches from the tail. Redis negates it in C, so
    // RANK LLONG_MIN stays negative (it then matches from the first hit
    // and COUNT never stops it): the wrapping arithmetic below keeps that.
    let rev = rank < 0;
    if rev {
        rank = rank.wrapping_neg();
    }
    let l = match read(ctx.ks, ctx.db, args[1]) {
        Err(()) => return ctx.out.wrongtype(),
        Ok(None) if count.is_some() => return ctx.out.array(0),
        Ok(None) => return ctx.out.null(),
        Ok(Some(l)) => l,
    };
    let needle = Needle::new(args[2]);
    let llen = l.len() as i64;
    let iter = if rev { l.iter_rev() } else { l.iter() };
    let mut matches = 0i64;
    let mut found: Vec<i64> = Vec::new();
    for (index, e) in iter.enumerate() {
        let index = index as i64;
        if maxlen != 0 && index >= maxlen {
            break;
        }
        if !needle.matches(e) {
            continue;
        }
        matches += 1;
        if matches < rank {
            continue;
        }
        found.push(if rev { llen - index - 1 } else { index });
        match count {
            None => break,
            Some(c) if c != 0 && matches.wrapping_sub(rank).wrapping_add(1) >= c => break,
            _ => {}
        }
    }
    match count {
        Some(_) => {
            ctx.out.array(found.len());
            for i in found {
                ctx.out.int(i);
            }
        }
        None => match found.first() {
            Some(&i) => ctx.out.int(i),
            None => ctx.out.null(),
        },
    }
}

// ----- in-place edits ---------------------------------------------------------------

fn lset(ctx: &mut Ctx, args: &[&[u8]]) {
    let l = match write(ctx.ks, ctx.db, args[1]) {
        Err(()) => return ctx.out.wrongtype(),
        Ok(None) => return ctx.out.err(E_NO_KEY),
        Ok(Some(l)) => l,
    };
    let Some(index) = parse_i64(args[2]) else {
        return ctx.out.not_int();
    };
    match resolve_index(index, l.len()) {
        Some(i) if l.set(i, args[3]) => {
            ctx.ks.touch_write(1);
            ctx.ks.notify(N::LIST, "lset", ctx.db, args[1]);
            ctx.out.ok();
        }
        _ => ctx.out.err(E_INDEX),
    }
}

fn linsert(ctx: &mut Ctx, args: &[&[u8]]) {
    let after = if eq_ic(args[2], "after") {
        true
    } else if eq_ic(args[2], "before") {
        false
    } else {
        return ctx.out.syntax();
    };
    let (db, key) = (ctx.db, args[1]);
    let l = match write(ctx.ks, db, key) {
        Err(()) => return ctx.out.wrongtype(),
        Ok(None) => return ctx.out.int(0),
        Ok(Some(l)) => l,
    };
    let Some(i) = l.position(&Needle::new(args[3])) else {
        return ctx.out.int(-1);
    };
    l.insert(i + after as usize, args[4]);
    let len = l.len();
    ctx.ks.touch_write(1);
    ctx.ks.signal_ready(db, key);
    ctx.ks.notify(N::LIST, "linsert", db, key);
    ctx.out.int(len as i64);
}

fn lrem(ctx: &mut Ctx, args: &[&[u8]]) {
    let Some(count) = parse_i64(args[2]) else {
        return ctx.out.not_int();
    };
    let (db, key) = (ctx.db, args[1]);
    let l = match write(ctx.ks, db, key) {
        Err(()) => return ctx.out.wrongtype(),
        Ok(None) => return ctx.out.int(0),
        Ok(Some(l)) => l,
    };
    let limit = usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX);
    let removed = l.remove_matching(&Needle::new(args[3]), limit, count < 0);
    let empty = l.is_empty();
    ctx.ks.touch_write(removed as u64);
    if empty {
        ctx.ks.delete(db, key);
    }
    if removed > 0 {
        ctx.ks.notify(N::LIST, "lrem", db, key);
        if empty {
            ctx.ks.notify(N::GENERIC, "del", db, key);
        }
    }
    ctx.out.int(removed as i64);
}

fn ltrim(ctx: &mut Ctx, args: &[&[u8]]) {
    let (Some(start), Some(end)) = (parse_i64(args[2]), parse_i64(args[3])) else {
        return ctx.out.not_int();
    };
    let (db, key) = (ctx.db, args[1]);
    let l = match write(ctx.ks, db, key) {
        Err(()) => return ctx.out.wrongtype(),
        Ok(None) => return ctx.out.ok(),
        Ok(Some(l)) => l,
    };
    let len = l.len();
    let (front, back) = match range_of(start, end, len) {
        None => (len, 0),
        Some((s, n)) => (s, len - s - n),
    };
    l.remove_front(front);
    l.remove_back(back);
    let empty = l.is_empty();
    ctx.ks.touch_write((front + back) as u64);
    // Redis signals the key even when nothing was trimmed (WATCH).
    ctx.ks.signal_modified(db, key);
    if empty {
        ctx.ks.delete(db, key);
    }
    ctx.ks.notify(N::LIST, "ltrim", db, key);
    if empty {
        ctx.ks.notify(N::GENERIC, "del", db, key);
    }
    ctx.out.ok();
}

// ----- LMOVE and friends ------------------------------------------------------------

/// The outcome of a move.
enum Moved {
    /// The source does not exist.
    NoSrc,
    /// The source or the destination holds another type.
    Wrong,
    Val(Vec<u8>),
}

/// LMOVE with both keys on this shard.
fn move_local(ks: &mut Keyspace, db: usize, src: &[u8], dst: &[u8], from: bool, to: bool) -> Moved {
    match state(ks, db, src) {
        St::Missing => return Moved::NoSrc,
        St::Wrong => return Moved::Wrong,
        St::List => {}
    }
    if src == dst {
        // Rotation: the list never empties on the way.
        let Ok(Some(l)) = write(ks, db, src) else {
            return Moved::NoSrc;
        };
        let Some(v) = l.pop(from) else {
            return Moved::NoSrc;
        };
        l.push(&v, to);
        ks.touch_write(1);
        ks.signal_ready(db, dst);
        ks.notify(N::LIST, push_event(to), db, dst);
        ks.notify(N::LIST, pop_event(from), db, src);
        return Moved::Val(v);
    }
    if state(ks, db, dst) == St::Wrong {
        return Moved::Wrong;
    }
    let mark = ks.events.len();
    let Some(v) = pop_owned(ks, db, src, from, None).pop() else {
        return Moved::NoSrc;
    };
    let popped = ks.events.len() - mark;
    let _ = push_vals(ks, db, dst, &[&v], to, false);
    // Redis reports the push before the pop.
    ks.events[mark..].rotate_left(popped);
    Moved::Val(v)
}

/// LMOVE across two shards, atomically: the destination's type is checked,
/// then the element leaves the source and lands on the destination, all
/// inside one transaction.
fn move_multi(ctx: &mut SrvCtx, src: &[u8], dst: &[u8], from: bool, to: bool) -> Moved {
    let db = ctx.conn.db;
    let now = crate::util::now_ms();
    let (src, dst) = (src.to_vec(), dst.to_vec());
    let (ss, ds) = (ctx.sh.shard_of(&src), ctx.sh.shard_of(&dst));
    ctx.sh.tx(&[ss, ds], move |tx| {
        let d2 = dst.clone();
        let dst_wrong = tx.run(ds, move |sh: &mut Shard| {
            sh.ks.now = now;
            state(&mut sh.ks, db, &d2) == St::Wrong
        });
        let popped = tx.run(ss, move |sh: &mut Shard| {
            sh.ks.now = now;
            match state(&mut sh.ks, db, &src) {
                St::Missing => None,
                St::Wrong => Some(Err(())),
                St::List if dst_wrong => Some(Err(())),
                St::List => Some(Ok(pop_owned(&mut sh.ks, db, &src, from, None).pop())),
            }
        });
        match popped {
            None | Some(Ok(None)) => Moved::NoSrc,
            Some(Err(())) => Moved::Wrong,
            Some(Ok(Some(v))) => tx.run(ds, move |sh: &mut Shard| {
                sh.ks.now = now;
                let _ = push_vals(&mut sh.ks, db, &dst, &[&v], to, false);
                Moved::Val(v)
            }),
        }
    })
}

fn reply_moved(out: &mut Out, m: Moved) {
    match m {
        Moved::NoSrc => out.null(),
        Moved::Wrong => out.wrongtype(),
        Moved::Val(v) => out.bulk(&v),
    }
}

fn lmove_wheres(out: &mut Out, args: &[&[u8]]) -> Option<(bool, bool)> {
    match (parse_where(args[3]), parse_where(args[4])) {
        (Some(f), Some(t)) => Some((f, t)),
        _ => {
            out.syntax();
            None
        }
    }
}

fn lmove(ctx: &mut Ctx, args: &[&[u8]]) {
    let Some((from, to)) = lmove_wheres(&mut ctx.out, args) else {
        return;
    };
    let m = move_local(ctx.ks, ctx.db, args[1], args[2], from, to);
    reply_moved(&mut ctx.out, m);
}

fn lmove_coord(ctx: &mut SrvCtx, args: &[&[u8]]) {
    let Some((from, to)) = lmove_wheres(&mut ctx.out, args) else {
        return;
    };
    let m = move_multi(ctx, args[1], args[2], from, to);
    reply_moved(&mut ctx.out, m);
}

fn rpoplpush(ctx: &mut Ctx, args: &[&[u8]]) {
    let m = move_local(ctx.ks, ctx.db, args[1], args[2], false, true);
    reply_moved(&mut ctx.out, m);
}

fn rpoplpush_coord(ctx: &mut SrvCtx, args: &[&[u8]]) {
    let m = move_multi(ctx, args[1], args[2], false, true);
    reply_moved(&mut ctx.out, m);
}

/// BLMOVE's and BRPOPLPUSH's arguments: (from, to, timeout ms).
fn blmove_args(out: &mut Out, args: &[&[u8]]) -> Option<(bool, bool, u64)> {
    let (from, to, t) = if args.len() == 6 {
        let (f, t) = lmove_wheres(out, args)?;
        (f, t, args[5])
    } else {
        (false, true, args[3])
    };
    match parse_timeout(t) {
        Ok(ms) => Some((from, to, ms)),
        Err(e) => {
            out.err(e);
            None
        }
    }
}

fn blmove(ctx: &mut Ctx, args: &[&[u8]]) {
    let Some((from, to, ms)) = blmove_args(&mut ctx.out, args) else {
        return;
    };
    match move_local(ctx.ks, ctx.db, args[1], args[2], from, to) {
        Moved::NoSrc => ctx.ks.block(vec![args[1].to_vec()], ms, true),
        m => reply_moved(&mut ctx.out, m),
    }
}

fn blmove_coord(ctx: &mut SrvCtx, args: &[&[u8]]) {
    let Some((from, to, ms)) = blmove_args(&mut ctx.out, args) else {
        return;
    };
    match move_multi(ctx, args[1], args[2], from, to) {
        Moved::NoSrc => ctx.sh.ks.block(vec![args[1].to_vec()], ms, true),
        m => reply_moved(&mut ctx.out, m),
    }
}

fn brpoplpush(ctx: &mut Ctx, args: &[&[u8]]) {
    blmove(ctx, args)
}

fn brpoplpush_coord(ctx: &mut SrvCtx, args: &[&[u8]]) {
    blmove_coord(ctx, args)
}

// ----- LMPOP, BLPOP, BRPOP, BLMPOP -----------------------------------------------------

/// Checks `keys` in order across their shards inside one transaction and
/// pops from the first one holding a list: up to `count` elements, or one
/// if None. Err: a key of another type came first.
type Popped = Result<Option<(Vec<u8>, Vec<Vec<u8>>)>, ()>;

fn mpop_multi(ctx: &mut SrvCtx, keys: &[&[u8]], front: bool, count: Option<usize>) -> Popped {
    let db = ctx.conn.db;
    let now = crate::util::now_ms();
    let keys = owned(keys);
    let owner: Vec<usize> = keys.iter().map(|k| ctx.sh.shard_of(k)).collect();
    let mut shards = owner.clone();
    shards.sort_unstable();
    shards.dedup();
    let involved = shards.clone();
    ctx.sh.tx(&involved, move |tx| {
        let mut states = vec![St::Missing; keys.len()];
        for s in shards {
            let mine: Vec<(usize, Vec<u8>)> = keys
                .iter()
                .enumerate()
                .filter(|&(i, _)| owner[i] == s)
                .map(|(i, k)| (i, k.clone()))
                .collect();
            let got = tx.run(s, move |sh: &mut Shard| {
                sh.ks.now = now;
                mine.into_iter()
                    .map(|(i, k)| (i, state(&mut sh.ks, db, &k)))
                    .collect::<Vec<_>>()
            });
            for (i, st) in got {
                states[i] = st;
            }
        }
        for (i, st) in states.into_iter().enumerate() {
            match st {
                St::Missing => continue,
                St::Wrong => return Err(()),
                St::List => {
                    let k = keys[i].clone();
                    let vals = tx.run(owner[i], move |sh: &mut Shard| {
                        sh.ks.now = now;
                        pop_owned(&mut sh.ks, db, &k, front, count)
                    });
                    return Ok(Some((keys[i].clone(), vals)));
                }
            }
        }
        Ok(None)
    })
}

/// `[key, element]`, or `[key, [elements...]]` when `nested`.
fn reply_popped(out: &mut Out, key: &[u8], vals: &[Vec<u8>], nested: bool) {
    out.array(2);
    out.bulk(key);
    if nested {
        out.array(vals.len());
        vals.iter().for_each(|v| out.bulk(v));
    } else {
        match vals.first() {
            Some(v) => out.bulk(v),
            None => out.null(),
        }
    }
}

/// LMPOP/BLMPOP's parsed arguments.
struct MPop {
    /// Index of the first key and the number of keys.
    first: usize,
    n: usize,
    front: bool,
    count: usize,
}

/// Parses `numkeys key... LEFT|RIGHT [COUNT count]` with `numkeys` at
/// `at`. Err: the error text.
fn parse_mpop(args: &[&[u8]], at: usize) -> Result<MPop, &'static str> {
    let n = match parse_i64(args[at]) {
        Some(n) if n >= 1 => n as u64,
        _ => return Err(E_NUMKEYS),
    };
    let where_at = (at as u64).saturating_add(n).saturating_add(1);
    if where_at >= args.len() as u64 {
        return Err(E_SYNTAX);
    }
    let where_at = where_at as usize;
    let front = parse_where(args[where_at]).ok_or(E_SYNTAX)?;
    let mut count = None;
    let mut j = where_at + 1;
    while j < args.len() {
        if count.is_none() && j + 1 < args.len() && eq_ic(args[j], "count") {
            j += 1;
            match parse_i64(args[j]) {
                Some(c) if c >= 1 => count = Some(c as usize),
                _ => return Err(E_COUNT_POS),
            }
        } else {
            return Err(E_SYNTAX);
        }
        j += 1;
    }
    Ok(MPop {
        first: at + 1,
        n: n as usize,
        front,
        count: count.unwrap_or(1),
    })
}

/// BLMPOP's arguments (the timeout is checked after the rest); None after
/// replying with an error.
fn blmpop_args(out: &mut Out, args: &[&[u8]]) -> Option<(MPop, u64)> {
    let p = match parse_mpop(args, 2) {
        Ok(p) => p,
        Err(e) => {
            out.err(e);
            return None;
        }
    };
    match parse_timeout(args[1]) {
        Ok(ms) => Some((p, ms)),
        Err(e) => {
            out.err(e);
            None
        }
    }
}

/// The local (one shard) body of LMPOP/BLMPOP/BLPOP/BRPOP: pops and
/// replies, or returns false when no key holds a list.
fn mpop_local(ctx: &mut Ctx, keys: &[&[u8]], front: bool, count: Option<usize>) -> bool {
    match first_list(ctx.ks, ctx.db, keys) {
        Err(()) => ctx.out.wrongtype(),
        Ok(Some(i)) => pop_key_reply(ctx.ks, ctx.db, keys[i], front, count, &mut ctx.out),
        Ok(None) => return false,
    }
    true
}

fn lmpop(ctx: &mut Ctx, args: &[&[u8]]) {
    let p = match parse_mpop(args, 1) {
        Ok(p) => p,
        Err(e) => return ctx.out.err(e),
    };
    if !mpop_local(ctx, &args[p.first..p.first + p.n], p.front, Some(p.count)) {
        ctx.out.null_array();
    }
}

fn lmpop_coord(ctx: &mut SrvCtx, args: &[&[u8]]) {
    let p = match parse_mpop(args, 1) {
        Ok(p) => p,
        Err(e) => return ctx.out.err(e),
    };
    match mpop_multi(ctx, &args[p.first..p.first + p.n], p.front, Some(p.count)) {
        Err(()) => ctx.out.wrongtype(),
        Ok(Some((k, vals))) => reply_popped(&mut ctx.out, &k, &vals, true),
        Ok(None) => ctx.out.null_array(),
    }
}

fn blmpop(ctx: &mut Ctx, args: &[&[u8]]) {
    let Some((p, ms)) = blmpop_args(&mut ctx.out, args) else {
        return;
    };
    let keys = &args[p.first..p.first + p.n];
    if !mpop_local(ctx, keys, p.front, Some(p.count)) {
        ctx.ks.block(owned(keys), ms, true);
    }
}

fn blmpop_coord(ctx: &mut SrvCtx, args: &[&[u8]]) {
    let Some((p, ms)) = blmpop_args(&mut ctx.out, args) else {
        return;
    };
    let keys = &args[p.first..p.first + p.n];
    match mpop_multi(ctx, keys, p.front, Some(p.count)) {
        Err(()) => ctx.out.wrongtype(),
        Ok(Some((k, vals))) => reply_popped(&mut ctx.out, &k, &vals, true),
        Ok(None) => ctx.sh.ks.block(owned(keys), ms, true),
    }
}

fn bpop(ctx: &mut Ctx, args: &[&[u8]], front: bool) {
    let n = args.len();
    let ms = match parse_timeout(args[n - 1]) {
        Ok(ms) => ms,
        Err(e) => return ctx.out.err(e),
    };
    let keys = &args[1..n - 1];
    if !mpop_local(ctx, keys, front, None) {
        ctx.ks.block(owned(keys), ms, true);
    }
}

fn bpop_coord(ctx: &mut SrvCtx, args: &[&[u8]], front: bool) {
    let n = args.len();
    let ms = match parse_timeout(args[n - 1]) {
        Ok(ms) => ms,
        Err(e) => return ctx.out.err(e),
    };
    let keys = &args[1..n - 1];
    match mpop_multi(ctx, keys, front, None) {
        Err(()) => ctx.out.wrongtype(),
        Ok(Some((k, vals))) => reply_popped(&mut ctx.out, &k, &vals, false),
        Ok(None) => ctx.sh.ks.block(owned(keys), ms, true),
    }
}

fn blpop(ctx: &mut Ctx, args: &[&[u8]]) {
    bpop(ctx, args, true)
}

fn brpop(ctx: &mut Ctx, args: &[&[u8]]) {
    bpop(ctx, args, false)
}

fn blpop_coord(ctx: &mut SrvCtx, args: &[&[u8]]) {
    bpop_coord(ctx, args, true)
}

fn brpop_coord(ctx: &mut SrvCtx, args: &[&[u8]]) {
    bpop_coord(ctx, args, false)
}

#[cfg(test)]
mod tests {
    use super::*;

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

    const OK: &str = "+OK\r\n";
    const NIL: &str = "$-1\r\n";
    const NIL_ARR: &str = "*-1\r\n";
    const EMPTY: &str = "*0\r\n";
    const WRONGTYPE: &str =
        "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";
    const SYNTAX: &str = "-ERR syntax error\r\n";
    const NOT_INT: &str = "-ERR value is not an integer or out of range\r\n";

    fn bulks(items: &[&str]) -> String {
        let mut s = format!("*{}\r\n", items.len());
        for i in items {
            s.push_str(&format!("${}\r\n{i}\r\n", i.len()));
        }
        s
    }

    #[test]
    fn push_pop_and_ranges() {
        let mut ks = ks();
        assert_eq!(run(&mut ks, "rpush l a b c"), ":3\r\n");
        assert_eq!(run(&mut ks, "lpush l 1 2"), ":5\r\n");
        assert_eq!(
            run(&mut ks, "lrange l 0 -1"),
            bulks(&["2", "1", "a", "b", "c"])
        );
        assert_eq!(run(&mut ks, "lrange l -2 100"), bulks(&["b", "c"]));
        assert_eq!(run(&mut ks, "lrange l 3 1"), EMPTY);
        assert_eq!(run(&mut ks, "lrange l x 1"), NOT_INT);
        assert_eq!(run(&mut ks, "lrange nokey 0 x"), NOT_INT);
        assert_eq!(run(&mut ks, "lrange nokey 0 1"), EMPTY);
        assert_eq!(run(&mut ks, "llen l"), ":5\r\n");
        assert_eq!(run(&mut ks, "lindex l -1"), "$1\r\nc\r\n");
        assert_eq!(run(&mut ks, "lindex l 0"), "$1\r\n2\r\n");
        assert_eq!(run(&mut ks, "lindex l 5"), NIL);
        assert_eq!(run(&mut ks, "lindex l x"), NOT_INT);
        assert_eq!(run(&mut ks, "lindex nokey x"), NIL);
        assert_eq!(run(&mut ks, "lpop l"), "$1\r\n2\r\n");
        assert_eq!(run(&mut ks, "rpop l 2"), bulks(&["c", "b"]));
        assert_eq!(run(&mut ks, "lpop l 0"), EMPTY);
        assert_eq!(
            run(&mut ks, "lpop l -1"),
            "-ERR value is out of range, must be positive\r\n"
        );
        assert_eq!(
            run(&mut ks, "lpop l x"),
            "-ERR value is out of range, must be positive\r\n"
        );
        assert_eq!(
            run(&mut ks, "lpop l 1 2"),
            "-ERR wrong number of arguments for 'lpop' command\r\n"
        );
        assert_eq!(
            run(&mut ks, "lpop l 9223372036854775807"),
            bulks(&["1", "a"])
        );
        assert!(!ks.exists(0, b"l"), "an emptied list is deleted");
        assert_eq!(run(&mut ks, "lpop l"), NIL);
        assert_eq!(run(&mut ks, "lpop l 1"), NIL_ARR);
        assert_eq!(run(&mut ks, "lpop l 0"), NIL_ARR);
        assert_eq!(run3(&mut ks, "lpop l 1"), "_\r\n");
        assert_eq!(run3(&mut ks, "rpop l"), "_\r\n");
        assert_eq!(run(&mut ks, "lpushx l a"), ":0\r\n");
        assert_eq!(run(&mut ks, "rpushx l a"), ":0\r\n");
        assert!(!ks.exists(0, b"l"));
        assert_eq!(run(&mut ks, "rpush l x"), ":1\r\n");
        assert_eq!(run(&mut ks, "rpushx l y z"), ":3\r\n");
        assert_eq!(run(&mut ks, "lpushx l w"), ":4\r\n");
        assert_eq!(run(&mut ks, "lrange l 0 -1"), bulks(&["w", "x", "y", "z"]));
        assert_eq!(ks.peek(0, b"l").unwrap().encoding(), "quicklist");
    }

    #[test]
    fn wrong_types() {
        let mut ks = ks();
        ks.set(
            0,
            b"s",
            Value::Str(crate::types::Str::from_bytes(b"v")),
            false,
        );
        for c in [
            "lpush s a",
            "rpushx s a",
            "lpop s",
            "rpop s 2",
            "llen s",
            "lrange s 0 1",
            "lindex s 0",
            "lset s 0 x",
            "linsert s before a b",
            "lrem s 0 a",
            "ltrim s 0 1",
            "lpos s a",
            "lmove s d left left",
            "rpoplpush s d",
            "lmpop 2 nokey s left",
            "blpop nokey s 0",
            "blmove s d left left 0",
        ] {
            assert_eq!(run(&mut ks, c), WRONGTYPE, "{c}");
        }
        run(&mut ks, "rpush l a");
        assert_eq!(run(&mut ks, "lmove l s left left"), WRONGTYPE);
        assert_eq!(run(&mut ks, "lmove nokey s left left"), NIL);
        assert_eq!(run(&mut ks, "llen l"), ":1\r\n");
    }

    #[test]
    fn lset_linsert_lrem_ltrim() {
        let mut ks = ks();
        assert_eq!(run(&mut ks, "lset l 0 x"), "-ERR no such key\r\n");
        run(&mut ks, "rpush l a b a c a");
        assert_eq!(run(&mut ks, "lset l x y"), NOT_INT);
        assert_eq!(run(&mut ks, "lset l 5 y"), "-ERR index out of range\r\n");
        assert_eq!(run(&mut ks, "lset l -6 y"), "-ERR index out of range\r\n");
        assert_eq!(run(&mut ks, "lset l -1 z"), OK);
        assert_eq!(run(&mut ks, "linsert l middle a x"), SYNTAX);
        assert_eq!(run(&mut ks, "linsert nokey middle a x"), SYNTAX);
        assert_eq!(run(&mut ks, "linsert nokey before a x"), ":0\r\n");
        assert_eq!(run(&mut ks, "linsert l before nope x"), ":-1\r\n");
        assert_eq!(run(&mut ks, "linsert l AFTER a x"), ":6\r\n");
        assert_eq!(run(&mut ks, "linsert l before z y"), ":7\r\n");
        assert_eq!(
            run(&mut ks, "lrange l 0 -1"),
            bulks(&["a", "x", "b", "a", "c", "y", "z"])
        );
        assert_eq!(run(&mut ks, "lrem l x a"), NOT_INT);
        assert_eq!(run(&mut ks, "lrem l -1 a"), ":1\r\n");
        assert_eq!(
            run(&mut ks, "lrange l 0 -1"),
            bulks(&["a", "x", "b", "c", "y", "z"])
        );
        assert_eq!(run(&mut ks, "lrem l 0 a"), ":1\r\n");
        assert_eq!(run(&mut ks, "lrem nokey 0 a"), ":0\r\n");
        assert_eq!(run(&mut ks, "ltrim l 1 -2"), OK);
        assert_eq!(run(&mut ks, "lrange l 0 -1"), bulks(&["b", "c", "y"]));
        assert_eq!(run(&mut ks, "ltrim l x 1"), NOT_INT);
        assert_eq!(run(&mut ks, "ltrim nokey 0 1"), OK);
        assert_eq!(run(&mut ks, "ltrim l 5 10"), OK);
        assert!(!ks.exists(0, b"l"));
        run(&mut ks, "rpush l 1 1 1");
        assert_eq!(run(&mut ks, "lrem l -9223372036854775808 1"), ":3\r\n");
        assert!(!ks.exists(0, b"l"));
    }

    #[test]
    fn lpos_options_and_errors() {
        let mut ks = ks();
        run(&mut ks, "rpush k a b a c a");
        assert_eq!(run(&mut ks, "lpos k a"), ":0\r\n");
        assert_eq!(run(&mut ks, "lpos k a rank 2"), ":2\r\n");
        assert_eq!(run(&mut ks, "lpos k a rank -1"), ":4\r\n");
        assert_eq!(
            run(&mut ks, "lpos k a rank -1 count 0"),
            "*3\r\n:4\r\n:2\r\n:0\r\n"
        );
        assert_eq!(run(&mut ks, "lpos k a count 2"), "*2\r\n:0\r\n:2\r\n");
        assert_eq!(
            run(&mut ks, "lpos k a count 0 maxlen 3"),
            "*2\r\n:0\r\n:2\r\n"
        );
        assert_eq!(run(&mut ks, "lpos k a rank 4"), NIL);
        assert_eq!(run(&mut ks, "lpos k a rank 4 count 1"), EMPTY);
        assert_eq!(
            run(&mut ks, "lpos k a rank -9223372036854775808 count 1"),
            "*3\r\n:4\r\n:2\r\n:0\r\n"
        );
        assert_eq!(
            run(&mut ks, "lpos k a rank 9223372036854775807 count 1"),
            EMPTY
        );
        assert_eq!(
            run(&mut ks, "lpos nokey a rank 0"),
            "-ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list\r\n"
        );
        assert_eq!(run(&mut ks, "lpos k a rank x"), NOT_INT);
        assert_eq!(
            run(&mut ks, "lpos k a count x"),
            "-ERR COUNT can't be negative\r\n"
        );
        assert_eq!(
            run(&mut ks, "lpos k a maxlen -1"),
            "-ERR MAXLEN can't be negative\r\n"
        );
        assert_eq!(run(&mut ks, "lpos k a rank"), SYNTAX);
        assert_eq!(run(&mut ks, "lpos k a foo 1"), SYNTAX);
        assert_eq!(run(&mut ks, "lpos nokey a"), NIL);
        assert_eq!(run(&mut ks, "lpos nokey a count 1"), EMPTY);
        assert_eq!(run3(&mut ks, "lpos nokey a"), "_\r\n");
    }

    #[test]
    fn lmove_and_rpoplpush() {
        let mut ks = ks();
        run(&mut ks, "rpush src a b c");
        assert_eq!(run(&mut ks, "lmove src src left right"), "$1\r\na\r\n");
        assert_eq!(run(&mut ks, "lrange src 0 -1"), bulks(&["b", "c", "a"]));
        assert_eq!(run(&mut ks, "lmove src dst up right"), SYNTAX);
        assert_eq!(run(&mut ks, "lmove src dst right left"), "$1\r\na\r\n");
        assert_eq!(run(&mut ks, "rpoplpush src dst"), "$1\r\nc\r\n");
        assert_eq!(run(&mut ks, "lmove src dst LEFT RIGHT"), "$1\r\nb\r\n");
        assert!(!ks.exists(0, b"src"));
        assert_eq!(run(&mut ks, "lrange dst 0 -1"), bulks(&["c", "a", "b"]));
        assert_eq!(run(&mut ks, "rpoplpush src dst"), NIL);
        assert_eq!(run3(&mut ks, "rpoplpush src dst"), "_\r\n");
        run(&mut ks, "rpush one x");
        assert_eq!(run(&mut ks, "rpoplpush one one"), "$1\r\nx\r\n");
        assert_eq!(run(&mut ks, "llen one"), ":1\r\n");
    }

    #[test]
    fn lmpop_parsing_and_replies() {
        let mut ks = ks();
        run(&mut ks, "rpush b 1 2 3");
        assert_eq!(
            run(&mut ks, "lmpop 0 b left"),
            "-ERR numkeys should be greater than 0\r\n"
        );
        assert_eq!(
            run(&mut ks, "lmpop x b left"),
            "-ERR numkeys should be greater than 0\r\n"
        );
        assert_eq!(run(&mut ks, "lmpop 9223372036854775807 b left"), SYNTAX);
        assert_eq!(run(&mut ks, "lmpop 2 b left"), SYNTAX);
        assert_eq!(run(&mut ks, "lmpop 1 b up"), SYNTAX);
        assert_eq!(
            run(&mut ks, "lmpop 1 b left count 0"),
            "-ERR count should be greater than 0\r\n"
        );
        assert_eq!(run(&mut ks, "lmpop 1 b left count 1 count 1"), SYNTAX);
        assert_eq!(run(&mut ks, "lmpop 1 b left count"), SYNTAX);
        assert_eq!(
            run(&mut ks, "lmpop 2 a b right count 2"),
            "*2\r\n$1\r\nb\r\n*2\r\n$1\r\n3\r\n$1\r\n2\r\n"
        );
        assert_eq!(
            run(&mut ks, "lmpop 2 a b left"),
            "*2\r\n$1\r\nb\r\n*1\r\n$1\r\n1\r\n"
        );
        assert_eq!(run(&mut ks, "lmpop 2 a b left"), NIL_ARR);
        assert_eq!(run3(&mut ks, "lmpop 2 a b left"), "_\r\n");
        let spec = COMMANDS.iter().find(|c| c.name == "lmpop").unwrap();
        let args: Vec<&[u8]> = vec![b"lmpop", b"2", b"a", b"b", b"left"];
        assert_eq!(spec.key_positions(&args).collect::<Vec<_>>(), vec![2, 3]);
        let spec = COMMANDS.iter().find(|c| c.name == "blmpop").unwrap();
        let args: Vec<&[u8]> = vec![b"blmpop", b"0", b"2", b"a", b"b", b"left"];
        assert_eq!(spec.key_positions(&args).collect::<Vec<_>>(), vec![3, 4]);
        let spec = COMMANDS.iter().find(|c| c.name == "blpop").unwrap();
        let args: Vec<&[u8]> = vec![b"blpop", b"a", b"b", b"0"];
        assert_eq!(spec.key_positions(&args).collect::<Vec<_>>(), vec![1, 2]);
    }

    #[test]
    fn blocking_commands_serve_or_block() {
        let mut ks = ks();
        run(&mut ks, "rpush b 1 2");
        assert_eq!(run(&mut ks, "blpop a b 0"), "*2\r\n$1\r\nb\r\n$1\r\n1\r\n");
        assert_eq!(
            run(&mut ks, "brpop a b 0.5"),
            "*2\r\n$1\r\nb\r\n$1\r\n2\r\n"
        );
        assert!(ks.block_request.is_none());
        // Nothing to serve: no reply, a block request instead.
        assert_eq!(run(&mut ks, "blpop a b 1.5"), "");
        let req = ks.block_request.take().expect("block request");
        assert_eq!(req.keys, vec![b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(req.deadline_ms, ks.now + 1500);
        assert!(req.null_array);
        assert_eq!(run(&mut ks, "brpoplpush a b 0"), "");
        let req = ks.block_request.take().expect("block request");
        assert_eq!(
            (req.keys, req.deadline_ms, req.null_array),
            (vec![b"a".to_vec()], 0, true)
        );
        assert_eq!(run(&mut ks, "blmove a b left right 0.0001"), "");
        assert_eq!(ks.block_request.take().unwrap().deadline_ms, 0);
        assert_eq!(run(&mut ks, "blmpop 0.01 2 a b left count 3"), "");
        let req = ks.block_request.take().expect("block request");
        assert_eq!((req.deadline_ms, req.null_array), (ks.now + 10, true));
        // Timeout errors come first, even when data is there.
        run(&mut ks, "rpush a x");
        let e_float = "-ERR timeout is not a float or out of range\r\n";
        let e_neg = "-ERR timeout is negative\r\n";
        for (c, want) in [
            ("blpop a x", e_float),
            ("blpop a -1", e_neg),
            ("blpop a inf", e_neg),
            ("blpop a 1e300", e_neg),
            ("brpoplpush a b nan", e_float),
            ("blmove a b left up x", SYNTAX),
            ("blmove a b left left -0.5", e_neg),
            ("blmpop x 1 a left", e_float),
            (
                "blmpop x 0 a left",
                "-ERR numkeys should be greater than 0\r\n",
            ),
            ("blmpop -1 1 a left", e_neg),
        ] {
            assert_eq!(run(&mut ks, c), want, "{c}");
        }
        assert!(ks.block_request.is_none());
        assert_eq!(
            run(&mut ks, "blmpop 0 1 a left"),
            "*2\r\n$1\r\na\r\n*1\r\n$1\r\nx\r\n"
        );
        assert_eq!(run(&mut ks, "blpop a -0.0001"), "");
        assert_eq!(ks.block_request.take().unwrap().deadline_ms, 0);
    }

    #[test]
    fn pushes_signal_blocked_keys() {
        let mut ks = ks();
        ks.blocking_keys.insert((0, b"w".to_vec()));
        run(&mut ks, "rpush other a");
        assert!(ks.ready_keys.is_empty());
        run(&mut ks, "lpushx w a");
        assert!(ks.ready_keys.is_empty());
        run(&mut ks, "rpoplpush other w");
        assert_eq!(ks.ready_keys, vec![(0, b"w".to_vec())]);
        ks.ready_keys.clear();
        run(&mut ks, "linsert w before a b");
        assert_eq!(ks.ready_keys, vec![(0, b"w".to_vec())]);
        ks.ready_keys.clear();
        ks.delete(0, b"w");
        run(&mut ks, "rpush w a");
        assert_eq!(ks.ready_keys, vec![(0, b"w".to_vec())]);
    }

    #[test]
    fn timeouts_and_indexes() {
        assert_eq!(parse_timeout(b"0"), Ok(0));
        assert_eq!(parse_timeout(b"0.2"), Ok(200));
        assert_eq!(parse_timeout(b"1.0019"), Ok(1001));
        assert_eq!(
            parse_timeout(b"9223372036854775"),
            Ok(9_223_372_036_854_775_000)
        );
        assert_eq!(parse_timeout(b"9223372036854776"), Err(E_TIMEOUT_NEG));
        assert_eq!(parse_timeout(b" 1"), Err(E_TIMEOUT));
        assert_eq!(resolve_index(-1, 3), Some(2));
        assert_eq!(resolve_index(i64::MIN, 3), None);
        assert_eq!(resolve_index(3, 3), None);
        assert_eq!(range_of(i64::MIN, i64::MAX, 4), Some((0, 4)));
        assert_eq!(range_of(-1, -2, 4), None);
    }

    #[test]
    fn table_matches_redis() {
        for c in COMMANDS {
            assert_eq!(c.group, "list");
            assert_eq!(c.acl.contains("@fast"), c.flags & FAST != 0, "{}", c.name);
            assert_eq!(
                c.acl.contains("@blocking"),
                c.flags & BLOCKING != 0,
                "{}",
                c.name
            );
            assert_eq!(c.acl.contains("@write"), c.flags & WRITE != 0, "{}", c.name);
        }
        assert_eq!(COMMANDS.len(), 22);
    }
}
