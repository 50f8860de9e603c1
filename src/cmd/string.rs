//! The string family (Redis's t_string.c): GET/SET and friends, counters,
//! ranges, multi-key MGET/MSET/MSETNX and LCS.
//!
//! Every handler follows Redis 7.0's order of checks (syntax, then numbers,
//! then key lookups and types) so that error replies match exactly.
//! Multi-key commands have a coordinator for keys spread over several
//! shards; it runs the whole command under one [`Shard::tx`] so that no
//! client can observe half of it.

use super::{CmdSpec, Ctx, Run, SrvCtx, DENYOOM, FAST, READONLY, WRITE};
use crate::notify as N;
use crate::resp::Out;
use crate::shard::keyspace::Keyspace;
use crate::shard::Shard;
use crate::types::{Str, Value, EMBSTR_MAX};
use crate::util::{eq_ic, parse_i64};

/// Redis's default `proto-max-bulk-len`: the largest string APPEND, SETRANGE
/// and LCS's transient table may produce.
// The configured value lives in ShardCfg, which a keyed handler cannot see.
const MAX_STRING: u64 = 512 * 1024 * 1024;

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
        group: "string",
        acl,
        summary,
        since,
        run,
        subs: &[],
        getkeys: None,
    }
}

const ONE: (i32, i32, i32) = (1, 1, 1);
const R_FAST: &str = "@read @string @fast";
const R_SLOW: &str = "@read @string @slow";
const W_FAST: &str = "@write @string @fast";
const W_SLOW: &str = "@write @string @slow";

#[rustfmt::skip]
pub static COMMANDS: &[CmdSpec] = &[
    spec("append", 3, WRITE | DENYOOM | FAST, ONE, W_FAST, "2.0.0", Run::Key(append), "Append a value to a key"),
    spec("decr", 2, WRITE | DENYOOM | FAST, ONE, W_FAST, "1.0.0", Run::Key(decr), "Decrement the integer value of a key by one"),
    spec("decrby", 3, WRITE | DENYOOM | FAST, ONE, W_FAST, "1.0.0", Run::Key(decrby), "Decrement the integer value of a key by the given number"),
    spec("get", 2, READONLY | FAST, ONE, R_FAST, "1.0.0", Run::Key(get), "Get the value of a key"),
    spec("getdel", 2, WRITE | FAST, ONE, W_FAST, "6.2.0", Run::Key(getdel), "Get the value of a key and delete the key"),
    spec("getex", -2, WRITE | FAST, ONE, W_FAST, "6.2.0", Run::Key(getex), "Get the value of a key and optionally set its expiration"),
    spec("getrange", 4, READONLY, ONE, R_SLOW, "2.4.0", Run::Key(getrange), "Get a substring of the string stored at a key"),
    spec("getset", 3, WRITE | DENYOOM | FAST, ONE, W_FAST, "1.0.0", Run::Key(getset), "Set the string value of a key and return its old value"),
    spec("incr", 2, WRITE | DENYOOM | FAST, ONE, W_FAST, "1.0.0", Run::Key(incr), "Increment the integer value of a key by one"),
    spec("incrby", 3, WRITE | DENYOOM | FAST, ONE, W_FAST, "1.0.0", Run::Key(incrby), "Increment the integer value of a key by the given amount"),
    spec("incrbyfloat", 3, WRITE | DENYOOM | FAST, ONE, W_FAST, "2.6.0", Run::Key(incrbyfloat), "Increment the float value of a key by the given amount"),
    spec("lcs", -3, READONLY, (1, 2, 1), R_SLOW, "7.0.0", Run::KeyMulti(lcs, lcs_multi), "Find longest common substring"),
    spec("mget", -2, READONLY | FAST, (1, -1, 1), R_FAST, "1.0.0", Run::KeyMulti(mget, mget_multi), "Get the values of all the given keys"),
    spec("mset", -3, WRITE | DENYOOM, (1, -1, 2), W_SLOW, "1.0.1", Run::KeyMulti(mset, mset_multi), "Set multiple keys to multiple values"),
    spec("msetnx", -3, WRITE | DENYOOM, (1, -1, 2), W_SLOW, "1.0.1", Run::KeyMulti(msetnx, msetnx_multi), "Set multiple keys to multiple values, only if none of the keys exist"),
    spec("psetex", 4, WRITE | DENYOOM, ONE, W_SLOW, "2.6.0", Run::Key(psetex), "Set the value and expiration in milliseconds of a key"),
    spec("set", -3, WRITE | DENYOOM, ONE, W_SLOW, "1.0.0", Run::Key(set), "Set the string value of a key"),
    spec("setex", 4, WRITE | DENYOOM, ONE, W_SLOW, "2.0.0", Run::Key(setex), "Set the value and expiration of a key"),
    spec("setnx", 3, WRITE | DENYOOM | FAST, ONE, W_FAST, "1.0.0", Run::Key(setnx), "Set the value of a key, only if the key does not exist"),
    spec("setrange", 4, WRITE | DENYOOM, ONE, W_SLOW, "2.2.0", Run::Key(setrange), "Overwrite part of a string at key starting at the specified offset"),
    spec("strlen", 2, READONLY | FAST, ONE, R_FAST, "2.2.0", Run::Key(strlen), "Get the length of the value stored in a key"),
    spec("substr", 4, READONLY, ONE, R_SLOW, "1.0.0", Run::Key(getrange), "Get a substring of the string stored at a key"),
];

// ----- helpers ---------------------------------------------------------

/// The string inside a value, or None for another type (WRONGTYPE).
#[allow(unreachable_patterns)]
#[inline]
fn str_ref(v: &Value) -> Option<&Str> {
    match v {
        Value::Str(s) => Some(s),
        _ => None,
    }
}

#[allow(unreachable_patterns)]
#[inline]
fn str_mut(v: &mut Value) -> Option<&mut Str> {
    match v {
        Value::Str(s) => Some(s),
        _ => None,
    }
}

/// Reads a string for replying elsewhere: Ok(None) when the key is missing,
/// Err(()) when it holds another type. Counts a keyspace hit or miss.
fn read_string(ks: &mut Keyspace, db: usize, key: &[u8]) -> Result<Option<Vec<u8>>, ()> {
    match ks.get(db, key) {
        None => Ok(None),
        Some(v) => match str_ref(v) {
            Some(s) => Ok(Some(s.as_bytes(&mut itoa::Buffer::new()).to_vec())),
            None => Err(()),
        },
    }
}

/// Redis's `checkStringLength`: may a string of `size` grow by `add` bytes?
fn check_string_length(out: &mut Out, size: u64, add: u64) -> bool {
    match size.checked_add(add) {
        Some(t) if t <= MAX_STRING => true,
        _ => {
            out.err("string exceeds maximum allowed size (proto-max-bulk-len)");
            false
        }
    }
}

/// Groups items by the shard owning their key, keeping argument order
/// within each shard.
fn group_by_shard<T>(items: impl Iterator<Item = (usize, T)>) -> Vec<(usize, Vec<T>)> {
    let mut groups: Vec<(usize, Vec<T>)> = Vec::new();
    for (s, item) in items {
        match groups.iter_mut().find(|g| g.0 == s) {
            Some(g) => g.1.push(item),
            None => groups.push((s, vec![item])),
        }
    }
    groups
}

// ----- SET and its option parser ----------------------------------------

const F_NX: u32 = 1;
const F_XX: u32 = 1 << 1;
const F_GET: u32 = 1 << 2;
const F_KEEPTTL: u32 = 1 << 3;
const F_PERSIST: u32 = 1 << 4;
const F_EX: u32 = 1 << 5;
const F_PX: u32 = 1 << 6;
const F_EXAT: u32 = 1 << 7;
const F_PXAT: u32 = 1 << 8;

/// Redis's `parseExtendedStringArgumentsOrReply` for SET (`is_set`) and
/// GETEX. Returns the flags and the expire argument, or None for a syntax
/// error.
fn parse_ext<'a>(args: &[&'a [u8]], is_set: bool) -> Option<(u32, Option<&'a [u8]>)> {
    let mut flags = 0u32;
    let mut expire = None;
    let mut j = if is_set { 3 } else { 2 };
    while j < args.len() {
        let opt = args[j];
        let next = args.get(j + 1).copied();
        let exclusive = |own: u32| {
            let others = (F_KEEPTTL | F_PERSIST | F_EX | F_PX | F_EXAT | F_PXAT) & !own;
            flags & others == 0 && next.is_some()
        };
        if is_set && eq_ic(opt, "nx") && flags & F_XX == 0 {
            flags |= F_NX;
        } else if is_set && eq_ic(opt, "xx") && flags & F_NX == 0 {
            flags |= F_XX;
        } else if is_set && eq_ic(opt, "get") {
            flags |= F_GET;
        } else if is_set
            && eq_ic(opt, "keepttl")
            && flags & (F_PERSIST | F_EX | F_PX | F_EXAT | F_PXAT) == 0
        {
            flags |= F_KEEPTTL;
        } else if !is_set
            && eq_ic(opt, "persist")
            && flags & (F_KEEPTTL | F_EX | F_PX | F_EXAT | F_PXAT) == 0
        {
            flags |= F_PERSIST;
        } else if let Some(f) = [
            ("ex", F_EX),
            ("px", F_PX),
            ("exat", F_EXAT),
            ("pxat", F_PXAT),
        ]
        .into_iter()
        .find(|&(kw, f)| eq_ic(opt, kw) && exclusive(f))
        .map(|(_, f)| f)
        {
            flags |= f;
            expire = next;
            j += 1;
        } else {
            return None;
        }
        j += 1;
    }
    Some((flags, expire))
}

/// Redis's `getExpireMillisecondsOrReply`: the absolute deadline in Unix ms
/// for an EX/PX/EXAT/PXAT argument, or None after replying an error.
fn expire_at(out: &mut Out, arg: &[u8], flags: u32, now: u64, cmd: &str) -> Option<u64> {
    let Some(mut ms) = parse_i64(arg) else {
        out.not_int();
        return None;
    };
    let invalid = |out: &mut Out| out.err(&format!("invalid expire time in '{cmd}' command"));
    let seconds = flags & (F_EX | F_EXAT) != 0;
    if ms <= 0 || (seconds && ms > i64::MAX / 1000) {
        invalid(out);
        return None;
    }
    if seconds {
        ms *= 1000;
    }
    if flags & (F_EX | F_PX) != 0 {
        match ms.checked_add(now as i64) {
            Some(v) => ms = v,
            None => {
                invalid(out);
                return None;
            }
        }
    }
    Some(ms as u64)
}

/// Replies the string at `key` (or null). Returns false after a WRONGTYPE.
fn get_generic(ctx: &mut Ctx, key: &[u8]) -> bool {
    match ctx.ks.get(ctx.db, key) {
        None => ctx.out.null(),
        Some(v) => match str_ref(v) {
            Some(s) => ctx.out.bulk(s.as_bytes(&mut itoa::Buffer::new())),
            None => {
                ctx.out.wrongtype();
                return false;
            }
        },
    }
    true
}

/// Redis's `setGenericCommand`. `replies` are the (ok, aborted) replies for
/// SETNX; None means +OK / null.
#[allow(clippy::too_many_arguments)]
fn set_generic(
    ctx: &mut Ctx,
    flags: u32,
    key: &[u8],
    val: &[u8],
    expire: Option<&[u8]>,
    cmd: &str,
    replies: Option<(i64, i64)>,
) {
    let at = match expire {
        Some(e) => match expire_at(&mut ctx.out, e, flags, ctx.ks.now, cmd) {
            Some(at) => Some(at),
            None => return,
        },
        None => None,
    };
    if flags & F_GET != 0 && !get_generic(ctx, key) {
        return;
    }
    // Only NX/XX need a lookup before the write (plain SET is one lookup).
    let found = flags & (F_NX | F_XX) != 0 && ctx.ks.exists(ctx.db, key);
    if (flags & F_NX != 0 && found) || (flags & F_XX != 0 && !found) {
        if flags & F_GET == 0 {
            match replies {
                Some((_, abort)) => ctx.out.int(abort),
                None => ctx.out.null(),
            }
        }
        return;
    }
    let v = Value::Str(Str::from_bytes(val));
    match at {
        Some(at) => ctx.ks.set_with_expire(ctx.db, key, v, at),
        None => ctx.ks.set(ctx.db, key, v, flags & F_KEEPTTL != 0),
    }
    ctx.ks.notify(N::STRING, "set", ctx.db, key);
    if at.is_some() {
        ctx.ks.notify(N::GENERIC, "expire", ctx.db, key);
    }
    if flags & F_GET == 0 {
        match replies {
            Some((ok, _)) => ctx.out.int(ok),
            None => ctx.out.ok(),
        }
    }
}

fn set(ctx: &mut Ctx, args: &[&[u8]]) {
    let Some((flags, expire)) = parse_ext(args, true) else {
        ctx.out.syntax();
        return;
    };
    set_generic(ctx, flags, args[1], args[2], expire, "set", None);
}

fn setnx(ctx: &mut Ctx, args: &[&[u8]]) {
    set_generic(ctx, F_NX, args[1], args[2], None, "setnx", Some((1, 0)));
}

fn setex(ctx: &mut Ctx, args: &[&[u8]]) {
    set_generic(ctx, F_EX, args[1], args[3], Some(args[2]), "setex", None);
}

fn psetex(ctx: &mut Ctx, args: &[&[u8]]) {
    set_generic(ctx, F_PX, args[1], args[3], Some(args[2]), "psetex", None);
}

// ----- GET and friends ---------------------------------------------------

fn get(ctx: &mut Ctx, args: &[&[u8]]) {
    get_generic(ctx, args[1]);
}

fn getex(ctx: &mut Ctx, args: &[&[u8]]) {
    let Some((flags, expire)) = parse_ext(args, false) else {
        ctx.out.syntax();
        return;
    };
    let (db, key, now) = (ctx.db, args[1], ctx.ks.now);
    let at = {
        let Some(v) = ctx.ks.get(db, key) else {
            ctx.out.null();
            return;
        };
        let Some(s) = str_ref(v) else {
            ctx.out.wrongtype();
            return;
        };
        let at = match expire {
            Some(e) => match expire_at(&mut ctx.out, e, flags, now, "getex") {
                Some(at) => Some(at),
                None => return,
            },
            None => None,
        };
        ctx.out.bulk(s.as_bytes(&mut itoa::Buffer::new()));
        at
    };
    if let Some(at) = at {
        // A deadline already past (EXAT/PXAT) deletes the key.
        ctx.ks.set_expire(db, key, at);
        let event = if at <= now { "del" } else { "expire" };
        ctx.ks.notify(N::GENERIC, event, db, key);
    } else if flags & F_PERSIST != 0 && ctx.ks.persist(db, key) {
        ctx.ks.notify(N::GENERIC, "persist", db, key);
    }
}

fn getdel(ctx: &mut Ctx, args: &[&[u8]]) {
    if get_generic(ctx, args[1]) && ctx.ks.delete(ctx.db, args[1]) {
        ctx.ks.notify(N::GENERIC, "del", ctx.db, args[1]);
    }
}

fn getset(ctx: &mut Ctx, args: &[&[u8]]) {
    if get_generic(ctx, args[1]) {
        let v = Value::Str(Str::from_bytes(args[2]));
        ctx.ks.set(ctx.db, args[1], v, false);
        ctx.ks.notify(N::STRING, "set", ctx.db, args[1]);
    }
}

fn strlen(ctx: &mut Ctx, args: &[&[u8]]) {
    match ctx.ks.get(ctx.db, args[1]) {
        None => ctx.out.int(0),
        Some(v) => match str_ref(v) {
            Some(s) => ctx.out.int(s.len() as i64),
            None => ctx.out.wrongtype(),
        },
    }
}

/// GETRANGE and SUBSTR.
fn getrange(ctx: &mut Ctx, args: &[&[u8]]) {
    let (Some(mut start), Some(mut end)) = (parse_i64(args[2]), parse_i64(args[3])) else {
        ctx.out.not_int();
        return;
    };
    let Some(v) = ctx.ks.get(ctx.db, args[1]) else {
        ctx.out.bulk(b"");
        return;
    };
    let Some(s) = str_ref(v) else {
        ctx.out.wrongtype();
        return;
    };
    let mut tmp = itoa::Buffer::new();
    let b = s.as_bytes(&mut tmp);
    let len = b.len() as i64;
    if start < 0 && end < 0 && start > end {
        ctx.out.bulk(b"");
        return;
    }
    if start < 0 {
        start += len;
    }
    if end < 0 {
        end += len;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= len {
        end = len - 1;
    }
    if start > end || len == 0 {
        ctx.out.bulk(b"");
    } else {
        ctx.out.bulk(&b[start as usize..=end as usize]);
    }
}

// ----- in-place modification -------------------------------------------

fn append(ctx: &mut Ctx, args: &[&[u8]]) {
    let (db, key, add) = (ctx.db, args[1], args[2]);
    match ctx.ks.get_mut(db, key) {
        None => {
            let s = Str::from_bytes(add);
            let len = s.len();
            ctx.ks.set(db, key, Value::Str(s), false);
            ctx.ks.notify(N::STRING, "append", db, key);
            ctx.out.int(len as i64);
        }
        Some(v) => {
            let Some(s) = str_mut(v) else {
                ctx.out.wrongtype();
                return;
            };
            if !check_string_length(&mut ctx.out, s.len() as u64, add.len() as u64) {
                return;
            }
            let buf = s.make_raw();
            buf.extend_from_slice(add);
            let len = buf.len();
            ctx.ks.touch_write(1);
            ctx.ks.notify(N::STRING, "append", db, key);
            ctx.out.int(len as i64);
        }
    }
}

fn setrange(ctx: &mut Ctx, args: &[&[u8]]) {
    let (db, key, val) = (ctx.db, args[1], args[3]);
    let Some(offset) = parse_i64(args[2]) else {
        ctx.out.not_int();
        return;
    };
    if offset < 0 {
        ctx.out.err("offset is out of range");
        return;
    }
    let offset = offset as usize;
    match ctx.ks.get_mut(db, key) {
        None => {
            if val.is_empty() {
                ctx.out.int(0);
                return;
            }
            if !check_string_length(&mut ctx.out, offset as u64, val.len() as u64) {
                return;
            }
            let mut buf = vec![0u8; offset + val.len()];
            buf[offset..].copy_from_slice(val);
            let len = buf.len();
            ctx.ks.set(db, key, Value::Str(Str::Raw(buf)), false);
            ctx.ks.notify(N::STRING, "setrange", db, key);
            ctx.out.int(len as i64);
        }
        Some(v) => {
            let Some(s) = str_mut(v) else {
                ctx.out.wrongtype();
                return;
            };
            if val.is_empty() {
                ctx.out.int(s.len() as i64);
                return;
            }
            if !check_string_length(&mut ctx.out, offset as u64, val.len() as u64) {
                return;
            }
            let buf = s.make_raw();
            let end = offset + val.len();
            if buf.len() < end {
                buf.resize(end, 0);
            }
            buf[offset..end].copy_from_slice(val);
            let len = buf.len();
            ctx.ks.touch_write(1);
            ctx.ks.notify(N::STRING, "setrange", db, key);
            ctx.out.int(len as i64);
        }
    }
}

// ----- counters ----------------------------------------------------------

/// Redis's `incrDecrCommand`.
fn incr_decr(ctx: &mut Ctx, key: &[u8], incr: i64) {
    let db = ctx.db;
    match ctx.ks.get_mut(db, key) {
        None => {
            ctx.ks.set(db, key, Value::Str(Str::Int(incr)), false);
            ctx.ks.notify(N::STRING, "incrby", db, key);
            ctx.out.int(incr);
        }
        Some(v) => {
            let Some(s) = str_mut(v) else {
                ctx.out.wrongtype();
                return;
            };
            let Some(old) = s.as_int() else {
                ctx.out.not_int();
                return;
            };
            let Some(new) = old.checked_add(incr) else {
                ctx.out.err("increment or decrement would overflow");
                return;
            };
            // Overwriting in place keeps the TTL, as dbOverwrite does.
            *s = Str::Int(new);
            ctx.ks.touch_write(1);
            ctx.ks.notify(N::STRING, "incrby", db, key);
            ctx.out.int(new);
        }
    }
}

fn incr(ctx: &mut Ctx, args: &[&[u8]]) {
    incr_decr(ctx, args[1], 1);
}

fn decr(ctx: &mut Ctx, args: &[&[u8]]) {
    incr_decr(ctx, args[1], -1);
}

fn incrby(ctx: &mut Ctx, args: &[&[u8]]) {
    match parse_i64(args[2]) {
        Some(n) => incr_decr(ctx, args[1], n),
        None => ctx.out.not_int(),
    }
}

fn decrby(ctx: &mut Ctx, args: &[&[u8]]) {
    match parse_i64(args[2]) {
        Some(i64::MIN) => ctx.out.err("decrement would overflow"),
        Some(n) => incr_decr(ctx, args[1], -n),
        None => ctx.out.not_int(),
    }
}

fn incrbyfloat(ctx: &mut Ctx, args: &[&[u8]]) {
    let (db, key) = (ctx.db, args[1]);
    let slot = ctx.ks.get_mut(db, key);
    let cur = match &slot {
        None => Some(ld::Num::Finite(ld::F80::ZERO)),
        Some(v) => match str_ref(v) {
            None => {
                ctx.out.wrongtype();
                return;
            }
            Some(Str::Int(n)) => Some(ld::Num::Finite(ld::F80::from_i64(*n))),
            Some(s) => ld::parse(s.as_bytes(&mut itoa::Buffer::new())),
        },
    };
    let (Some(cur), Some(incr)) = (cur, ld::parse(args[2])) else {
        ctx.out.not_float();
        return;
    };
    let sum = match (cur, incr) {
        (ld::Num::Finite(a), ld::Num::Finite(b)) => ld::add(a, b),
        _ => ld::Num::Inf,
    };
    let ld::Num::Finite(sum) = sum else {
        ctx.out.err("increment would produce NaN or Infinity");
        return;
    };
    let text = ld::format(sum).into_bytes();
    ctx.out.bulk(&text);
    // Stored as a plain string (createStringObject), never int-encoded.
    let new = if text.len() <= EMBSTR_MAX {
        Str::Emb(text.into_boxed_slice())
    } else {
        Str::Raw(text)
    };
    match slot {
        Some(v) => {
            // Overwriting in place keeps the TTL.
            *v = Value::Str(new);
            ctx.ks.touch_write(1);
        }
        None => ctx.ks.set(db, key, Value::Str(new), false),
    }
    ctx.ks.notify(N::STRING, "incrbyfloat", db, key);
}

/// INCRBYFLOAT's arithmetic as Redis does it on x86-64: `strtold` parsing
/// into an x87 80-bit `long double` (64-bit mantissa), one addition rounded
/// to nearest-even, and `%.17Lf` formatting with trailing zeros removed.
/// Emulated exactly in software, so results match Redis digit for digit
/// (e.g. 630.8 + 0.1 is "630.90000000000000002", and integers up to 2^64
/// stay exact).
pub(crate) mod ld {
    use std::cmp::Ordering;

    /// Exponent of the smallest normal and of every subnormal (scale of the
    /// mantissa's lowest bit).
    const MIN_EXP: i32 = -16445;
    /// Exponent of the largest finite values.
    const MAX_EXP: i32 = 16320;
    /// Redis's MAX_LONG_DOUBLE_CHARS: longer inputs are refused.
    const MAX_CHARS: usize = 5 * 1024;

    /// A finite long double: (-1)^neg * mant * 2^exp, normalized (top
    /// mantissa bit set) unless subnormal (exp == MIN_EXP) or zero.
    #[derive(Clone, Copy, Debug, PartialEq)]
    pub struct F80 {
        pub neg: bool,
        pub mant: u64,
        pub exp: i32,
    }

    #[derive(Clone, Copy, Debug, PartialEq)]
    pub enum Num {
        Finite(F80),
        /// Either infinity (the sign never matters: any sum with it fails).
        Inf,
    }

    impl F80 {
        pub const ZERO: F80 = F80 {
            neg: false,
            mant: 0,
            exp: MIN_EXP,
        };

        /// Exact: every i64 fits the 64-bit mantissa.
        pub fn from_i64(v: i64) -> F80 {
            if v == 0 {
                return F80::ZERO;
            }
            let m = v.unsigned_abs();
            let lz = m.leading_zeros();
            F80 {
                neg: v < 0,
                mant: m << lz,
                exp: -(lz as i32),
            }
        }
    }

    /// A little-endian arbitrary-precision natural number (no high zero
    /// limbs), just what parsing and formatting need.
    #[derive(Clone, Debug)]
    struct Big(Vec<u32>);

    impl Big {
        fn from_u128(v: u128) -> Big {
            let mut b = Big((0..4).map(|i| (v >> (32 * i)) as u32).collect());
            b.trim();
            b
        }

        fn trim(&mut self) {
            while self.0.last() == Some(&0) {
                self.0.pop();
            }
        }

        fn is_zero(&self) -> bool {
            self.0.is_empty()
        }

        /// self = self * m + a
        fn mul_add(&mut self, m: u32, a: u32) {
            let mut carry = a as u64;
            for l in &mut self.0 {
                let v = *l as u64 * m as u64 + carry;
                *l = v as u32;
                carry = v >> 32;
            }
            if carry > 0 {
                self.0.push(carry as u32);
            }
            self.trim();
        }

        fn mul_pow10(&mut self, mut n: usize) {
            while n >= 9 {
                self.mul_add(1_000_000_000, 0);
                n -= 9;
            }
            if n > 0 {
                self.mul_add(10u32.pow(n as u32), 0);
            }
        }

        fn bitlen(&self) -> usize {
            match self.0.last() {
                None => 0,
                Some(&top) => self.0.len() * 32 - top.leading_zeros() as usize,
            }
        }

        fn bit(&self, i: usize) -> bool {
            self.0
                .get(i / 32)
                .is_some_and(|&l| (l >> (i % 32)) & 1 == 1)
        }

        /// Whether any bit below position `i` is set.
        fn any_below(&self, i: usize) -> bool {
            let full = (i / 32).min(self.0.len());
            if self.0[..full].iter().any(|&l| l != 0) {
                return true;
            }
            let rem = i % 32;
            rem > 0
                && self
                    .0
                    .get(i / 32)
                    .is_some_and(|&l| l & ((1u32 << rem) - 1) != 0)
        }

        fn shl(&mut self, n: usize) {
            if self.is_zero() {
                return;
            }
            let bits = n % 32;
            if bits > 0 {
                let mut carry = 0u32;
                for l in &mut self.0 {
                    let v = *l;
                    *l = (v << bits) | carry;
                    carry = v >> (32 - bits);
                }
                if carry > 0 {
                    self.0.push(carry);
                }
            }
            self.0.splice(0..0, std::iter::repeat_n(0, n / 32));
        }

        fn shr(&mut self, n: usize) {
            let limbs = n / 32;
            if limbs >= self.0.len() {
                self.0.clear();
                return;
            }
            self.0.drain(..limbs);
            let bits = n % 32;
            if bits > 0 {
                let len = self.0.len();
                for i in 0..len {
                    let hi = if i + 1 < len { self.0[i + 1] } else { 0 };
                    self.0[i] = (self.0[i] >> bits) | (hi << (32 - bits));
                }
            }
            self.trim();
        }

        fn cmp(&self, o: &Big) -> Ordering {
            self.0
                .len()
                .cmp(&o.0.len())
                .then_with(|| self.0.iter().rev().cmp(o.0.iter().rev()))
        }

        /// self -= o, for self >= o.
        fn sub(&mut self, o: &Big) {
            let mut borrow = 0u64;
            for (i, l) in self.0.iter_mut().enumerate() {
                let r = o.0.get(i).copied().unwrap_or(0) as u64 + borrow;
                let v = *l as u64;
                if v >= r {
                    *l = (v - r) as u32;
                    borrow = 0;
                } else {
                    *l = (v + (1 << 32) - r) as u32;
                    borrow = 1;
                }
            }
            self.trim();
        }

        /// self /= d, returning the remainder.
        fn div_small(&mut self, d: u32) -> u32 {
            let mut rem = 0u64;
            for l in self.0.iter_mut().rev() {
                let v = (rem << 32) | *l as u64;
                *l = (v / d as u64) as u32;
                rem = v % d as u64;
            }
            self.trim();
            rem as u32
        }

        fn low_u128(&self) -> u128 {
            self.0
                .iter()
                .take(4)
                .enumerate()
                .fold(0, |acc, (i, &l)| acc | (l as u128) << (32 * i))
        }

        /// The top `bits` bits, whether anything below them is set, and the
        /// shift applied.
        fn top_bits(mut self, bits: usize) -> (u128, bool, i64) {
            let bl = self.bitlen();
            if bl <= bits {
                return (self.low_u128(), false, 0);
            }
            let s = bl - bits;
            let sticky = self.any_below(s);
            self.shr(s);
            (self.low_u128(), sticky, s as i64)
        }

        fn into_decimal(mut self) -> String {
            let mut chunks = Vec::new();
            while !self.is_zero() {
                chunks.push(self.div_small(1_000_000_000));
            }
            let mut s = chunks.pop().unwrap_or(0).to_string();
            for c in chunks.iter().rev() {
                s.push_str(&format!("{c:09}"));
            }
            s
        }
    }

    /// floor(a / b) when the quotient is below 2^127, and whether the
    /// division was inexact.
    fn div(mut a: Big, b: &Big) -> (u128, bool) {
        let (la, lb) = (a.bitlen(), b.bitlen());
        if la < lb {
            return (0, !a.is_zero());
        }
        let mut shift = la - lb;
        let mut bs = b.clone();
        bs.shl(shift);
        let mut q: u128 = 0;
        loop {
            q <<= 1;
            if a.cmp(&bs) != Ordering::Less {
                a.sub(&bs);
                q |= 1;
            }
            if shift == 0 {
                break;
            }
            shift -= 1;
            bs.shr(1);
        }
        (q, !a.is_zero())
    }

    /// Rounds (q + f) * 2^e2 to the nearest long double, ties to even, where
    /// 0 <= f < 1 is nonzero exactly when `sticky`.
    fn round(neg: bool, q: u128, sticky: bool, e2: i64) -> Num {
        if q == 0 {
            return Num::Finite(F80 { neg, ..F80::ZERO });
        }
        let bl = 128 - q.leading_zeros() as i64;
        let mut shift = bl - 64;
        if e2 + shift < MIN_EXP as i64 {
            shift = MIN_EXP as i64 - e2;
        }
        let mut exp = e2 + shift;
        let mant = if shift <= 0 {
            (q << (-shift)) as u64
        } else {
            let (m, half, rest) = if shift > 128 {
                (0, false, true)
            } else if shift == 128 {
                (0, q >> 127 == 1, q & ((1 << 127) - 1) != 0 || sticky)
            } else {
                let s = shift as u32;
                let mask = (1u128 << (s - 1)) - 1;
                (
                    (q >> s) as u64,
                    (q >> (s - 1)) & 1 == 1,
                    q & mask != 0 || sticky,
                )
            };
            if half && (rest || m & 1 == 1) {
                match m.checked_add(1) {
                    Some(m) => m,
                    None => {
                        exp += 1;
                        1 << 63
                    }
                }
            } else {
                m
            }
        };
        if exp > MAX_EXP as i64 {
            return Num::Inf;
        }
        if mant == 0 {
            return Num::Finite(F80 { neg, ..F80::ZERO });
        }
        Num::Finite(F80 {
            neg,
            mant,
            exp: exp as i32,
        })
    }

    /// x + y, rounded as the x87 FPU does in extended precision.
    pub fn add(x: F80, y: F80) -> Num {
        if x.mant == 0 && y.mant == 0 {
            return Num::Finite(F80 {
                neg: x.neg && y.neg,
                ..F80::ZERO
            });
        }
        if x.mant == 0 {
            return Num::Finite(y);
        }
        if y.mant == 0 {
            return Num::Finite(x);
        }
        let (a, b) = if x.exp >= y.exp { (x, y) } else { (y, x) };
        let d = (a.exp - b.exp) as u32;
        // Work in units of 2^(a.exp - 63): a is exact in 127 bits; a b more
        // than 63 places lower is truncated with a sticky bit (a is normal
        // then, so that far below its rounding position only "nonzero"
        // matters).
        let base = a.exp as i64 - 63;
        let ua = (a.mant as u128) << 63;
        let (ub, sticky) = if d <= 63 {
            ((b.mant as u128) << (63 - d), false)
        } else if d - 63 >= 64 {
            (0, true)
        } else {
            let s = d - 63;
            ((b.mant >> s) as u128, b.mant & ((1u64 << s) - 1) != 0)
        };
        if a.neg == b.neg {
            return round(a.neg, ua + ub, sticky, base);
        }
        if sticky {
            // ua - (ub + f) = (ua - ub - 1) + (1 - f)
            return round(a.neg, ua - ub - 1, true, base);
        }
        match ua.cmp(&ub) {
            Ordering::Greater => round(a.neg, ua - ub, false, base),
            Ordering::Less => round(b.neg, ub - ua, false, base),
            Ordering::Equal => Num::Finite(F80::ZERO),
        }
    }

    /// Redis's `string2ld`: the whole input must be one `strtold` number
    /// (decimal, hex, inf or infinity; no spaces, no NaN) that neither
    /// overflows nor underflows to zero.
    pub fn parse(s: &[u8]) -> Option<Num> {
        if s.is_empty() || s.len() >= MAX_CHARS {
            return None;
        }
        let (neg, rest) = match s[0] {
            b'-' => (true, &s[1..]),
            b'+' => (false, &s[1..]),
            _ => (false, s),
        };
        if rest.eq_ignore_ascii_case(b"inf") || rest.eq_ignore_ascii_case(b"infinity") {
            return Some(Num::Inf);
        }
        let r = if rest.len() > 2 && rest[0] == b'0' && rest[1] | 0x20 == b'x' {
            parse_hex(neg, &rest[2..])?
        } else {
            parse_dec(neg, rest)?
        };
        match r {
            // Overflow (ERANGE with HUGE_VAL) is refused.
            Num::Inf => None,
            n => Some(n),
        }
    }

    /// An exponent: optional sign and at least one digit, saturated.
    fn parse_exp(s: &[u8]) -> Option<i64> {
        let (neg, digits) = match s.first() {
            Some(b'-') => (true, &s[1..]),
            Some(b'+') => (false, &s[1..]),
            _ => (false, s),
        };
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let v = digits
            .iter()
            .fold(0i64, |acc, &c| (acc * 10 + (c - b'0') as i64).min(1 << 40));
        Some(if neg { -v } else { v })
    }

    /// Integer digits, fraction digits, and what follows an exponent marker.
    type Parts<'a> = (&'a [u8], &'a [u8], Option<&'a [u8]>);

    /// Splits `s` into mantissa digits before/after the point and the rest
    /// after an exponent marker. None unless there is at least one digit.
    fn split_number(s: &[u8], is_digit: fn(&u8) -> bool, marker: u8) -> Option<Parts<'_>> {
        let int_end = s.iter().position(|c| !is_digit(c)).unwrap_or(s.len());
        let (int, mut rest) = s.split_at(int_end);
        let mut frac: &[u8] = &[];
        if rest.first() == Some(&b'.') {
            let f_end = rest[1..]
                .iter()
                .position(|c| !is_digit(c))
                .unwrap_or(rest.len() - 1);
            frac = &rest[1..1 + f_end];
            rest = &rest[1 + f_end..];
        }
        if int.is_empty() && frac.is_empty() {
            return None;
        }
        let exp = match rest.first() {
            None => None,
            Some(&c) if c | 0x20 == marker => Some(&rest[1..]),
            Some(_) => return None,
        };
        Some((int, frac, exp))
    }

    fn parse_dec(neg: bool, s: &[u8]) -> Option<Num> {
        let (int, frac, exp) = split_number(s, u8::is_ascii_digit, b'e')?;
        let mut e10 = match exp {
            Some(e) => parse_exp(e)?,
            None => 0,
        } - frac.len() as i64;
        let all = int.iter().chain(frac.iter());
        let digits: Vec<u8> = all.skip_while(|&&c| c == b'0').copied().collect();
        let trailing = digits.iter().rev().take_while(|&&c| c == b'0').count();
        let digits = &digits[..digits.len() - trailing];
        e10 += trailing as i64;
        if digits.is_empty() {
            return Some(Num::Finite(F80 { neg, ..F80::ZERO }));
        }
        let n = digits.len() as i64;
        if n - 1 + e10 >= 4933 {
            return Some(Num::Inf);
        }
        if n + e10 < -4951 {
            return None; // underflows to zero: ERANGE, refused
        }
        let mut num = Big(Vec::new());
        for chunk in digits.chunks(9) {
            let v = chunk
                .iter()
                .fold(0u32, |acc, &c| acc * 10 + (c - b'0') as u32);
            num.mul_add(10u32.pow(chunk.len() as u32), v);
        }
        let r = if e10 >= 0 {
            num.mul_pow10(e10 as usize);
            let (q, sticky, sh) = num.top_bits(120);
            round(neg, q, sticky, sh)
        } else {
            let mut den = Big::from_u128(1);
            den.mul_pow10((-e10) as usize);
            let j = num.bitlen() as i64 - den.bitlen() as i64 - 68;
            if j >= 0 {
                den.shl(j as usize);
            } else {
                num.shl((-j) as usize);
            }
            let (q, sticky) = div(num, &den);
            round(neg, q, sticky, j)
        };
        nonzero(r)
    }

    fn parse_hex(neg: bool, s: &[u8]) -> Option<Num> {
        let (int, frac, exp) = split_number(s, u8::is_ascii_hexdigit, b'p')?;
        let e2 = match exp {
            Some(e) => parse_exp(e)?,
            None => 0,
        } - 4 * frac.len() as i64;
        let mut num = Big(Vec::new());
        for &c in int.iter().chain(frac.iter()) {
            num.mul_add(16, (c as char).to_digit(16).unwrap_or(0));
        }
        if num.is_zero() {
            return Some(Num::Finite(F80 { neg, ..F80::ZERO }));
        }
        let top = num.bitlen() as i64 + e2;
        if top > 16385 {
            return Some(Num::Inf);
        }
        if top < MIN_EXP as i64 - 2 {
            return None;
        }
        let (q, sticky, sh) = num.top_bits(120);
        nonzero(round(neg, q, sticky, e2 + sh))
    }

    /// A nonzero input that rounded to zero underflowed: refused.
    fn nonzero(r: Num) -> Option<Num> {
        match r {
            Num::Finite(f) if f.mant == 0 => None,
            r => Some(r),
        }
    }

    /// `%.17Lf` with trailing zeros (and a bare point) removed, and "-0"
    /// turned into "0", as Redis's `ld2string(LD_STR_HUMAN)`.
    pub fn format(x: F80) -> String {
        let mut n = Big::from_u128(x.mant as u128);
        n.mul_pow10(17);
        if x.exp >= 0 {
            n.shl(x.exp as usize);
        } else {
            let s = (-x.exp) as usize;
            let half = n.bit(s - 1);
            let rest = n.any_below(s - 1);
            n.shr(s);
            if half && (rest || n.bit(0)) {
                n.mul_add(1, 1);
            }
        }
        let mut digits = n.into_decimal();
        if digits.len() < 18 {
            digits.insert_str(0, &"0".repeat(18 - digits.len()));
        }
        let (ip, fp) = digits.split_at(digits.len() - 17);
        let fp = fp.trim_end_matches('0');
        let mut out = String::with_capacity(digits.len() + 2);
        if x.neg {
            out.push('-');
        }
        out.push_str(ip);
        if !fp.is_empty() {
            out.push('.');
            out.push_str(fp);
        }
        if out == "-0" {
            out.remove(0);
        }
        out
    }
}

// ----- multi-key -----------------------------------------------------------

fn mget(ctx: &mut Ctx, args: &[&[u8]]) {
    ctx.out.array(args.len() - 1);
    for key in &args[1..] {
        match ctx.ks.get(ctx.db, key).and_then(str_ref) {
            Some(s) => ctx.out.bulk(s.as_bytes(&mut itoa::Buffer::new())),
            None => ctx.out.null(),
        }
    }
}

fn mget_multi(ctx: &mut SrvCtx, args: &[&[u8]]) {
    let db = ctx.conn.db;
    let now = crate::util::now_ms();
    let n = args.len() - 1;
    let groups = group_by_shard(
        args[1..]
            .iter()
            .enumerate()
            .map(|(i, k)| (ctx.sh.shard_of(k), (i, k.to_vec()))),
    );
    let shards: Vec<usize> = groups.iter().map(|g| g.0).collect();
    let vals = ctx.sh.tx(&shards, move |tx| {
        let mut vals: Vec<Option<Vec<u8>>> = vec![None; n];
        for (s, keys) in groups {
            let got = tx.run(s, move |sh: &mut Shard| {
                sh.ks.now = now;
                keys.into_iter()
                    .map(|(i, k)| (i, read_string(&mut sh.ks, db, &k).ok().flatten()))
                    .collect::<Vec<_>>()
            });
            for (i, v) in got {
                vals[i] = v;
            }
        }
        vals
    });
    ctx.out.array(n);
    for v in vals {
        match v {
            Some(b) => ctx.out.bulk(&b),
            None => ctx.out.null(),
        }
    }
}

fn mset(ctx: &mut Ctx, args: &[&[u8]]) {
    if args.len().is_multiple_of(2) {
        ctx.out.wrong_arity("mset");
        return;
    }
    for kv in args[1..].chunks_exact(2) {
        ctx.ks
            .set(ctx.db, kv[0], Value::Str(Str::from_bytes(kv[1])), false);
        ctx.ks.notify(N::STRING, "set", ctx.db, kv[0]);
    }
    ctx.out.ok();
}

fn msetnx(ctx: &mut Ctx, args: &[&[u8]]) {
    if args.len().is_multiple_of(2) {
        ctx.out.wrong_arity("msetnx");
        return;
    }
    if args[1..]
        .iter()
        .step_by(2)
        .any(|k| ctx.ks.exists(ctx.db, k))
    {
        ctx.out.int(0);
        return;
    }
    for kv in args[1..].chunks_exact(2) {
        ctx.ks
            .set(ctx.db, kv[0], Value::Str(Str::from_bytes(kv[1])), false);
        ctx.ks.notify(N::STRING, "set", ctx.db, kv[0]);
    }
    ctx.out.int(1);
}

type Pairs = Vec<(Vec<u8>, Value)>;

/// The key/value pairs of MSET/MSETNX grouped by owning shard.
fn mset_groups(sh: &Shard, args: &[&[u8]]) -> Vec<(usize, Pairs)> {
    group_by_shard(args[1..].chunks_exact(2).map(|kv| {
        (
            sh.shard_of(kv[0]),
            (kv[0].to_vec(), Value::Str(Str::from_bytes(kv[1]))),
        )
    }))
}

fn set_pairs(ks: &mut Keyspace, db: usize, pairs: Pairs) {
    for (k, v) in pairs {
        ks.set(db, &k, v, false);
        ks.notify(N::STRING, "set", db, &k);
    }
}

fn mset_multi(ctx: &mut SrvCtx, args: &[&[u8]]) {
    if args.len().is_multiple_of(2) {
        ctx.out.wrong_arity("mset");
        return;
    }
    let db = ctx.conn.db;
    let now = crate::util::now_ms();
    let groups = mset_groups(ctx.sh, args);
    let shards: Vec<usize> = groups.iter().map(|g| g.0).collect();
    ctx.sh.tx(&shards, move |tx| {
        for (s, pairs) in groups {
            tx.run(s, move |sh: &mut Shard| {
                sh.ks.now = now;
                set_pairs(&mut sh.ks, db, pairs);
            });
        }
    });
    ctx.out.ok();
}

fn msetnx_multi(ctx: &mut SrvCtx, args: &[&[u8]]) {
    if args.len().is_multiple_of(2) {
        ctx.out.wrong_arity("msetnx");
        return;
    }
    let db = ctx.conn.db;
    let now = crate::util::now_ms();
    let groups = mset_groups(ctx.sh, args);
    let shards: Vec<usize> = groups.iter().map(|g| g.0).collect();
    let done = ctx.sh.tx(&shards, move |tx| {
        // Check every key on every shard first; the pairs travel there and
        // back so that the second phase needs no copies.
        let mut checked = Vec::with_capacity(groups.len());
        for (s, pairs) in groups {
            let (found, pairs) = tx.run(s, move |sh: &mut Shard| {
                sh.ks.now = now;
                let found = pairs.iter().any(|(k, _)| sh.ks.exists(db, k));
                (found, pairs)
            });
            if found {
                return false;
            }
            checked.push((s, pairs));
        }
        for (s, pairs) in checked {
            tx.run(s, move |sh: &mut Shard| set_pairs(&mut sh.ks, db, pairs));
        }
        true
    });
    ctx.out.int(done as i64);
}

// ----- LCS ---------------------------------------------------------------

fn lcs(ctx: &mut Ctx, args: &[&[u8]]) {
    let a = read_string(ctx.ks, ctx.db, args[1]);
    let b = read_string(ctx.ks, ctx.db, args[2]);
    lcs_reply(&mut ctx.out, a, b, args);
}

fn lcs_multi(ctx: &mut SrvCtx, args: &[&[u8]]) {
    let db = ctx.conn.db;
    let now = crate::util::now_ms();
    let (ka, kb) = (args[1].to_vec(), args[2].to_vec());
    let (sa, sb) = (ctx.sh.shard_of(&ka), ctx.sh.shard_of(&kb));
    let (a, b) = ctx.sh.tx(&[sa, sb], move |tx| {
        let a = tx.run(sa, move |sh: &mut Shard| {
            sh.ks.now = now;
            read_string(&mut sh.ks, db, &ka)
        });
        let b = tx.run(sb, move |sh: &mut Shard| {
            sh.ks.now = now;
            read_string(&mut sh.ks, db, &kb)
        });
        (a, b)
    });
    lcs_reply(&mut ctx.out, a, b, args);
}

type Fetched = Result<Option<Vec<u8>>, ()>;

/// Redis 7.0's `lcsCommand` once both keys are looked up.
fn lcs_reply(out: &mut Out, a: Fetched, b: Fetched, args: &[&[u8]]) {
    let (Ok(a), Ok(b)) = (a, b) else {
        out.err("The specified keys must contain string values");
        return;
    };
    let (a, b) = (a.unwrap_or_default(), b.unwrap_or_default());
    let (mut getidx, mut getlen, mut withmatchlen) = (false, false, false);
    let mut minmatchlen: u64 = 0;
    let mut j = 3;
    while j < args.len() {
        let opt = args[j];
        if eq_ic(opt, "idx") {
            getidx = true;
        } else if eq_ic(opt, "len") {
            getlen = true;
        } else if eq_ic(opt, "withmatchlen") {
            withmatchlen = true;
        } else if eq_ic(opt, "minmatchlen") && j + 1 < args.len() {
            let Some(n) = parse_i64(args[j + 1]) else {
                out.not_int();
                return;
            };
            minmatchlen = n.max(0) as u64;
            j += 1;
        } else {
            out.syntax();
            return;
        }
        j += 1;
    }
    if getidx && getlen {
        out.err("If you want both the length and indexes, please just use IDX.");
        return;
    }
    if a.len() as u64 >= u32::MAX as u64 - 1 || b.len() as u64 >= u32::MAX as u64 - 1 {
        out.err("String too long for LCS");
        return;
    }
    let (alen, blen) = (a.len(), b.len());
    let cells = (alen as u64 + 1) * (blen as u64 + 1);
    if cells * 4 > MAX_STRING {
        out.err("Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len");
        return;
    }
    let mut lcs: Vec<u32> = Vec::new();
    if lcs.try_reserve_exact(cells as usize).is_err() {
        out.err("Insufficient memory, failed allocating transient memory for LCS");
        return;
    }
    // LCS(i, j) = length of the LCS of a[..i] and b[..j], row-major.
    let w = blen + 1;
    lcs.resize(cells as usize, 0);
    for i in 1..=alen {
        for j in 1..=blen {
            lcs[i * w + j] = if a[i - 1] == b[j - 1] {
                lcs[(i - 1) * w + j - 1] + 1
            } else {
                lcs[(i - 1) * w + j].max(lcs[i * w + j - 1])
            };
        }
    }
    let total = lcs[alen * w + blen];
    if getlen {
        out.int(total as i64);
        return;
    }
    // Walk back from the end, building the string and the match ranges
    // exactly as Redis does (ranges come out last to first).
    let mut result = vec![0u8; total as usize];
    let mut ranges: Vec<[u32; 5]> = Vec::new();
    let mut idx = total as usize;
    let (mut i, mut j) = (alen, blen);
    let unset = alen as u32;
    let (mut as_, mut ae, mut bs, mut be) = (unset, 0u32, 0u32, 0u32);
    while i > 0 && j > 0 {
        let mut emit = false;
        if a[i - 1] == b[j - 1] {
            result[idx - 1] = a[i - 1];
            if as_ == unset {
                as_ = (i - 1) as u32;
                ae = as_;
                bs = (j - 1) as u32;
                be = bs;
            } else if as_ == i as u32 && bs == j as u32 {
                as_ -= 1;
                bs -= 1;
            } else {
                emit = true;
            }
            if as_ == 0 || bs == 0 {
                emit = true;
            }
            idx -= 1;
            i -= 1;
            j -= 1;
        } else {
            if lcs[(i - 1) * w + j] > lcs[i * w + j - 1] {
                i -= 1;
            } else {
                j -= 1;
            }
            if as_ != unset {
                emit = true;
            }
        }
        if emit {
            let match_len = ae.wrapping_sub(as_).wrapping_add(1);
            if minmatchlen == 0 || match_len as u64 >= minmatchlen {
                ranges.push([as_, ae, bs, be, match_len]);
            }
            as_ = unset;
        }
    }
    if !getidx {
        out.bulk(&result);
        return;
    }
    out.map(2);
    out.bulk(b"matches");
    out.array(ranges.len());
    for r in &ranges {
        out.array(2 + withmatchlen as usize);
        out.array(2);
        out.int(r[0] as i64);
        out.int(r[1] as i64);
        out.array(2);
        out.int(r[2] as i64);
        out.int(r[3] as i64);
        if withmatchlen {
            out.int(r[4] as i64);
        }
    }
    out.bulk(b"len");
    out.int(total as i64);
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000_000;

    fn ks() -> Keyspace {
        let mut ks = Keyspace::new(16);
        ks.now = NOW;
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
    const SYNTAX: &str = "-ERR syntax error\r\n";
    const NOT_INT: &str = "-ERR value is not an integer or out of range\r\n";
    const NOT_FLOAT: &str = "-ERR value is not a valid float\r\n";

    fn encoding(ks: &mut Keyspace, key: &str) -> &'static str {
        ks.peek(0, key.as_bytes()).unwrap().encoding()
    }

    #[test]
    fn table_matches_redis() {
        assert_eq!(COMMANDS.len(), 22);
        let find = |n: &str| COMMANDS.iter().find(|c| c.name == n).unwrap();
        let mset = find("mset");
        assert_eq!(
            (mset.arity, mset.first_key, mset.last_key, mset.step),
            (-3, 1, -1, 2)
        );
        let mget = find("mget");
        assert_eq!(
            (mget.arity, mget.first_key, mget.last_key, mget.step),
            (-2, 1, -1, 1)
        );
        let lcs = find("lcs");
        assert_eq!(
            (lcs.arity, lcs.first_key, lcs.last_key, lcs.step),
            (-3, 1, 2, 1)
        );
        assert_eq!(find("get").flags, READONLY | FAST);
        assert_eq!(find("set").acl, "@write @string @slow");
        let keys: Vec<usize> = mset
            .key_positions(&[b"mset", b"a", b"1", b"b", b"2"])
            .collect();
        assert_eq!(keys, vec![1, 3]);
        for c in COMMANDS {
            assert!(matches!(c.run, Run::Key(_) | Run::KeyMulti(..)));
            assert_eq!(c.acl.contains("@fast"), c.flags & FAST != 0, "{}", c.name);
        }
    }

    #[test]
    fn get_set_basic() {
        let mut ks = ks();
        assert_eq!(run(&mut ks, "GET k"), NIL);
        assert_eq!(run(&mut ks, "SET k hello"), OK);
        assert_eq!(run(&mut ks, "GET k"), "$5\r\nhello\r\n");
        assert_eq!(run(&mut ks, "SET n 123"), OK);
        assert_eq!(encoding(&mut ks, "n"), "int");
        assert_eq!(run(&mut ks, "GET n"), "$3\r\n123\r\n");
        assert_eq!(
            run(&mut ks, "get"),
            "-ERR wrong number of arguments for 'get' command\r\n"
        );
        assert_eq!(run3(&mut ks, "GET nope"), "_\r\n");
    }

    #[test]
    fn set_nx_xx_get() {
        let mut ks = ks();
        assert_eq!(run(&mut ks, "SET k v NX"), OK);
        assert_eq!(run(&mut ks, "SET k v NX"), NIL);
        assert_eq!(run(&mut ks, "SET x v XX"), NIL);
        assert_eq!(run(&mut ks, "GET x"), NIL);
        assert_eq!(run(&mut ks, "SET k w XX"), OK);
        assert_eq!(run(&mut ks, "SET k v NX XX"), SYNTAX);
        assert_eq!(run(&mut ks, "SET k v XX NX"), SYNTAX);
        assert_eq!(run(&mut ks, "SET k v nx nx"), NIL);
        assert_eq!(run(&mut ks, "SET k v2 GET"), "$1\r\nw\r\n");
        assert_eq!(run(&mut ks, "SET new v GET"), NIL);
        assert_eq!(run(&mut ks, "GET new"), "$1\r\nv\r\n");
        // NX + GET: returns the old value and does not set.
        assert_eq!(run(&mut ks, "SET k zz NX GET"), "$2\r\nv2\r\n");
        assert_eq!(run(&mut ks, "GET k"), "$2\r\nv2\r\n");
        // XX + GET on a missing key: nil, not set.
        assert_eq!(run(&mut ks, "SET missing v XX GET"), NIL);
        assert_eq!(run(&mut ks, "GET missing"), NIL);
        assert_eq!(run(&mut ks, "SET k v BOGUS"), SYNTAX);
    }

    #[test]
    fn set_expire_options() {
        let mut ks = ks();
        assert_eq!(run(&mut ks, "SET k v EX 10"), OK);
        assert_eq!(ks.get_expire(0, b"k"), Some(NOW + 10_000));
        assert_eq!(run(&mut ks, "SET k v PX 1500"), OK);
        assert_eq!(ks.get_expire(0, b"k"), Some(NOW + 1500));
        let at = (NOW / 1000 + 100).to_string();
        assert_eq!(run(&mut ks, &format!("SET k v EXAT {at}")), OK);
        assert_eq!(ks.get_expire(0, b"k"), Some((NOW / 1000 + 100) * 1000));
        assert_eq!(run(&mut ks, &format!("SET k v PXAT {}", NOW + 5)), OK);
        assert_eq!(ks.get_expire(0, b"k"), Some(NOW + 5));
        assert_eq!(run(&mut ks, "SET k v2 KEEPTTL"), OK);
        assert_eq!(ks.get_expire(0, b"k"), Some(NOW + 5));
        assert_eq!(run(&mut ks, "SET k v3"), OK);
        assert_eq!(ks.get_expire(0, b"k"), None);
        // A deadline in the past: OK, and the key is gone.
        assert_eq!(run(&mut ks, "SET k v PXAT 1000"), OK);
        assert_eq!(run(&mut ks, "GET k"), NIL);

        let inv = "-ERR invalid expire time in 'set' command\r\n";
        assert_eq!(run(&mut ks, "SET k v EX 0"), inv);
        assert_eq!(run(&mut ks, "SET k v EX -5"), inv);
        assert_eq!(run(&mut ks, "SET k v PXAT 0"), inv);
        assert_eq!(run(&mut ks, "SET k v EX 9223372036854775"), inv);
        assert_eq!(run(&mut ks, "SET k v PX 9223372036854775807"), inv);
        assert_eq!(run(&mut ks, "SET k v EX abc"), NOT_INT);
        assert_eq!(run(&mut ks, "SET k v EX 10 PX 10"), SYNTAX);
        assert_eq!(run(&mut ks, "SET k v EX 10 KEEPTTL"), SYNTAX);
        assert_eq!(run(&mut ks, "SET k v KEEPTTL PXAT 10"), SYNTAX);
        assert_eq!(run(&mut ks, "SET k v EX"), SYNTAX);
        assert_eq!(run(&mut ks, "SET k v PERSIST"), SYNTAX);
        // The same option twice is accepted; the last value wins.
        assert_eq!(run(&mut ks, "SET k v EX 10 EX 20"), OK);
        assert_eq!(ks.get_expire(0, b"k"), Some(NOW + 20_000));
        // Invalid expire is reported before anything else happens.
        assert_eq!(run(&mut ks, "SET k other GET EX 0"), inv);
        assert_eq!(run(&mut ks, "GET k"), "$1\r\nv\r\n");
    }

    #[test]
    fn setnx_setex_psetex() {
        let mut ks = ks();
        assert_eq!(run(&mut ks, "SETNX k v"), ":1\r\n");
        assert_eq!(run(&mut ks, "SETNX k w"), ":0\r\n");
        assert_eq!(run(&mut ks, "GET k"), "$1\r\nv\r\n");
        assert_eq!(run(&mut ks, "SETEX k 10 w"), OK);
        assert_eq!(ks.get_expire(0, b"k"), Some(NOW + 10_000));
        assert_eq!(run(&mut ks, "PSETEX k 10 w"), OK);
        assert_eq!(ks.get_expire(0, b"k"), Some(NOW + 10));
        assert_eq!(
            run(&mut ks, "SETEX k 0 w"),
            "-ERR invalid expire time in 'setex' command\r\n"
        );
        assert_eq!(
            run(&mut ks, "PSETEX k -1 w"),
            "-ERR invalid expire time in 'psetex' command\r\n"
        );
        assert_eq!(run(&mut ks, "SETEX k x w"), NOT_INT);
        assert_eq!(
            run(&mut ks, "SETEX k 10"),
            "-ERR wrong number of arguments for 'setex' command\r\n"
        );
    }

    #[test]
    fn getex_getdel_getset() {
        let mut ks = ks();
        assert_eq!(run(&mut ks, "GETEX k"), NIL);
        // Missing key wins over a bad expire time.
        assert_eq!(run(&mut ks, "GETEX k EX 0"), NIL);
        assert_eq!(run(&mut ks, "GETEX k NX"), SYNTAX);
        assert_eq!(run(&mut ks, "SET k v"), OK);
        assert_eq!(run(&mut ks, "GETEX k EX 100"), "$1\r\nv\r\n");
        assert_eq!(ks.get_expire(0, b"k"), Some(NOW + 100_000));
        assert_eq!(run(&mut ks, "GETEX k PERSIST"), "$1\r\nv\r\n");
        assert_eq!(ks.get_expire(0, b"k"), None);
        assert_eq!(run(&mut ks, "GETEX k PX 5"), "$1\r\nv\r\n");
        assert_eq!(ks.get_expire(0, b"k"), Some(NOW + 5));
        assert_eq!(run(&mut ks, "GETEX k"), "$1\r\nv\r\n");
        assert_eq!(ks.get_expire(0, b"k"), Some(NOW + 5));
        assert_eq!(
            run(&mut ks, "GETEX k EX 0"),
            "-ERR invalid expire time in 'getex' command\r\n"
        );
        assert_eq!(run(&mut ks, "GETEX k EX 10 PERSIST"), SYNTAX);
        assert_eq!(run(&mut ks, "GETEX k PERSIST EX 10"), SYNTAX);
        assert_eq!(run(&mut ks, "GETEX k KEEPTTL"), SYNTAX);
        assert_eq!(run(&mut ks, "GETEX k GET"), SYNTAX);
        assert_eq!(run(&mut ks, "GETEX k EX"), SYNTAX);
        assert_eq!(run(&mut ks, "GETEX k EX abc"), NOT_INT);
        // An absolute deadline in the past returns the value, then deletes.
        assert_eq!(run(&mut ks, "GETEX k EXAT 1"), "$1\r\nv\r\n");
        assert_eq!(run(&mut ks, "GET k"), NIL);

        assert_eq!(run(&mut ks, "SET k 42"), OK);
        assert_eq!(run(&mut ks, "GETDEL k"), "$2\r\n42\r\n");
        assert_eq!(run(&mut ks, "GETDEL k"), NIL);
        assert_eq!(run(&mut ks, "GET k"), NIL);

        assert_eq!(run(&mut ks, "GETSET k a"), NIL);
        assert_eq!(run(&mut ks, "GET k"), "$1\r\na\r\n");
    }

    #[test]
    fn getset_clears_ttl() {
        let mut ks = ks();
        assert_eq!(run(&mut ks, "SET k a EX 100"), OK);
        assert_eq!(run(&mut ks, "GETSET k b"), "$1\r\na\r\n");
        assert_eq!(ks.get_expire(0, b"k"), None);
        assert_eq!(run(&mut ks, "GET k"), "$1\r\nb\r\n");
    }

    #[test]
    fn mget_mset_msetnx() {
        let mut ks = ks();
        assert_eq!(run(&mut ks, "MSET a 1 b 2 a 3"), OK);
        assert_eq!(
            run(&mut ks, "MGET a b c"),
            "*3\r\n$1\r\n3\r\n$1\r\n2\r\n$-1\r\n"
        );
        assert_eq!(
            run(&mut ks, "MSET a 1 b"),
            "-ERR wrong number of arguments for 'mset' command\r\n"
        );
        assert_eq!(
            run(&mut ks, "MSETNX a 1 b"),
            "-ERR wrong number of arguments for 'msetnx' command\r\n"
        );
        assert_eq!(run(&mut ks, "MSETNX c 1 a 2"), ":0\r\n");
        assert_eq!(run(&mut ks, "GET c"), NIL);
        assert_eq!(run(&mut ks, "MSETNX c 1 d 2 c 5"), ":1\r\n");
        assert_eq!(run(&mut ks, "MGET c d"), "*2\r\n$1\r\n5\r\n$1\r\n2\r\n");
        assert_eq!(run3(&mut ks, "MGET zz c"), "*2\r\n_\r\n$1\r\n5\r\n");
        // MSET clears TTLs.
        assert_eq!(run(&mut ks, "SET t v EX 100"), OK);
        assert_eq!(run(&mut ks, "MSET t w"), OK);
        assert_eq!(ks.get_expire(0, b"t"), None);
    }

    #[test]
    fn append_strlen() {
        let mut ks = ks();
        assert_eq!(run(&mut ks, "STRLEN k"), ":0\r\n");
        assert_eq!(run(&mut ks, "APPEND k Hello"), ":5\r\n");
        assert_eq!(run(&mut ks, "APPEND k _World"), ":11\r\n");
        assert_eq!(run(&mut ks, "GET k"), "$11\r\nHello_World\r\n");
        assert_eq!(run(&mut ks, "STRLEN k"), ":11\r\n");
        assert_eq!(encoding(&mut ks, "k"), "raw");
        assert_eq!(run(&mut ks, "SET n 12 EX 100"), OK);
        assert_eq!(run(&mut ks, "STRLEN n"), ":2\r\n");
        assert_eq!(run(&mut ks, "APPEND n 3"), ":3\r\n");
        assert_eq!(run(&mut ks, "GET n"), "$3\r\n123\r\n");
        assert_eq!(encoding(&mut ks, "n"), "raw");
        // APPEND keeps the TTL.
        assert_eq!(ks.get_expire(0, b"n"), Some(NOW + 100_000));
        assert_eq!(run(&mut ks, "APPEND i 7"), ":1\r\n");
        assert_eq!(encoding(&mut ks, "i"), "int");
    }

    #[test]
    fn getrange_indexes() {
        let mut ks = ks();
        run_proto(&mut ks, false, &[b"SET", b"mykey", b"This is a string"]);
        let r = |ks: &mut Keyspace, a: &str, b: &str| {
            run_proto(
                ks,
                false,
                &[b"GETRANGE", b"mykey", a.as_bytes(), b.as_bytes()],
            )
        };
        assert_eq!(r(&mut ks, "0", "3"), "$4\r\nThis\r\n");
        assert_eq!(r(&mut ks, "-3", "-1"), "$3\r\ning\r\n");
        assert_eq!(r(&mut ks, "0", "-1"), "$16\r\nThis is a string\r\n");
        assert_eq!(r(&mut ks, "10", "100"), "$6\r\nstring\r\n");
        assert_eq!(r(&mut ks, "-100", "3"), "$4\r\nThis\r\n");
        assert_eq!(r(&mut ks, "-1", "-5"), "$0\r\n\r\n");
        assert_eq!(r(&mut ks, "5", "2"), "$0\r\n\r\n");
        assert_eq!(r(&mut ks, "100", "200"), "$0\r\n\r\n");
        assert_eq!(r(&mut ks, "0", "-100"), "$1\r\nT\r\n");
        assert_eq!(r(&mut ks, "a", "1"), NOT_INT);
        assert_eq!(run(&mut ks, "GETRANGE nokey 0 -1"), "$0\r\n\r\n");
        assert_eq!(run(&mut ks, "GETRANGE nokey x 1"), NOT_INT);
        assert_eq!(run(&mut ks, "SUBSTR mykey 0 3"), "$4\r\nThis\r\n");
        assert_eq!(run(&mut ks, "SET n 12345"), OK);
        assert_eq!(run(&mut ks, "GETRANGE n 1 2"), "$2\r\n23\r\n");
        assert_eq!(run(&mut ks, "SET e x"), OK);
        assert_eq!(
            run(
                &mut ks,
                "GETRANGE e -9223372036854775808 9223372036854775807"
            ),
            "$1\r\nx\r\n"
        );
    }

    #[test]
    fn setrange_pads_and_checks() {
        let mut ks = ks();
        run_proto(&mut ks, false, &[b"SET", b"key1", b"Hello World"]);
        assert_eq!(run(&mut ks, "SETRANGE key1 6 Redis"), ":11\r\n");
        assert_eq!(run(&mut ks, "GET key1"), "$11\r\nHello Redis\r\n");
        assert_eq!(run(&mut ks, "SETRANGE key2 6 Redis"), ":11\r\n");
        assert_eq!(run(&mut ks, "GET key2"), "$11\r\n\0\0\0\0\0\0Redis\r\n");
        assert_eq!(encoding(&mut ks, "key2"), "raw");
        assert_eq!(run(&mut ks, "SETRANGE key1 13 !"), ":14\r\n");
        assert_eq!(run(&mut ks, "GET key1"), "$14\r\nHello Redis\0\0!\r\n");
        assert_eq!(
            run(&mut ks, "SETRANGE key1 -1 x"),
            "-ERR offset is out of range\r\n"
        );
        assert_eq!(run(&mut ks, "SETRANGE key1 x x"), NOT_INT);
        let big = "-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n";
        assert_eq!(run(&mut ks, "SETRANGE key1 536870912 x"), big);
        assert_eq!(run(&mut ks, "SETRANGE key3 536870912 x"), big);
        assert_eq!(run(&mut ks, "SETRANGE key3 536870911 x"), ":536870912\r\n");
        ks.delete(0, b"key3");
        // Empty value: nothing created, existing length returned.
        run_proto(&mut ks, false, &[b"SETRANGE", b"key4", b"5", b""]);
        assert!(ks.peek(0, b"key4").is_none());
        assert_eq!(
            run_proto(&mut ks, false, &[b"SETRANGE", b"key4", b"5", b""]),
            ":0\r\n"
        );
        assert_eq!(
            run_proto(&mut ks, false, &[b"SETRANGE", b"key1", b"100", b""]),
            ":14\r\n"
        );
        // On an integer.
        assert_eq!(run(&mut ks, "SET n 1234"), OK);
        assert_eq!(run(&mut ks, "SETRANGE n 1 9"), ":4\r\n");
        assert_eq!(run(&mut ks, "GET n"), "$4\r\n1934\r\n");
    }

    #[test]
    fn incr_decr_family() {
        let mut ks = ks();
        assert_eq!(run(&mut ks, "INCR c"), ":1\r\n");
        assert_eq!(run(&mut ks, "INCRBY c 10"), ":11\r\n");
        assert_eq!(run(&mut ks, "DECR c"), ":10\r\n");
        assert_eq!(run(&mut ks, "DECRBY c 20"), ":-10\r\n");
        assert_eq!(encoding(&mut ks, "c"), "int");
        assert_eq!(run(&mut ks, "DECR new"), ":-1\r\n");
        assert_eq!(run(&mut ks, "SET s abc"), OK);
        assert_eq!(run(&mut ks, "INCR s"), NOT_INT);
        run_proto(&mut ks, false, &[b"SET", b"s", b" 1"]);
        assert_eq!(run(&mut ks, "INCR s"), NOT_INT);
        assert_eq!(run(&mut ks, "INCRBY c x"), NOT_INT);
        assert_eq!(run(&mut ks, "INCRBY c 1.5"), NOT_INT);
        assert_eq!(run(&mut ks, "SET m 9223372036854775807"), OK);
        let ovf = "-ERR increment or decrement would overflow\r\n";
        assert_eq!(run(&mut ks, "INCR m"), ovf);
        assert_eq!(run(&mut ks, "DECRBY m -1"), ovf);
        assert_eq!(run(&mut ks, "DECRBY m 9223372036854775807"), ":0\r\n");
        assert_eq!(
            run(&mut ks, "DECRBY m -9223372036854775808"),
            "-ERR decrement would overflow\r\n"
        );
        assert_eq!(run(&mut ks, "SET m -9223372036854775808"), OK);
        assert_eq!(run(&mut ks, "DECR m"), ovf);
        assert_eq!(run(&mut ks, "INCRBY m -1"), ovf);
        // The TTL survives INCR.
        assert_eq!(run(&mut ks, "SET t 5 EX 100"), OK);
        assert_eq!(run(&mut ks, "INCR t"), ":6\r\n");
        assert_eq!(ks.get_expire(0, b"t"), Some(NOW + 100_000));
        // Strings holding a number are accepted.
        run_proto(&mut ks, false, &[b"SET", b"r", b"12"]);
        assert_eq!(run(&mut ks, "APPEND r 3"), ":3\r\n");
        assert_eq!(run(&mut ks, "INCR r"), ":124\r\n");
        assert_eq!(encoding(&mut ks, "r"), "int");
    }

    #[test]
    fn incrbyfloat_cases() {
        let mut ks = ks();
        assert_eq!(run(&mut ks, "SET mykey 10.50"), OK);
        assert_eq!(run(&mut ks, "INCRBYFLOAT mykey 0.1"), "$4\r\n10.6\r\n");
        assert_eq!(run(&mut ks, "INCRBYFLOAT mykey -5"), "$3\r\n5.6\r\n");
        assert_eq!(run(&mut ks, "SET mykey 5.0e3"), OK);
        assert_eq!(run(&mut ks, "INCRBYFLOAT mykey 2.0e2"), "$4\r\n5200\r\n");
        assert_eq!(encoding(&mut ks, "mykey"), "embstr");
        assert_eq!(run(&mut ks, "INCRBYFLOAT f 10.5"), "$4\r\n10.5\r\n");
        assert_eq!(run(&mut ks, "INCRBYFLOAT f 0.1"), "$4\r\n10.6\r\n");
        assert_eq!(run(&mut ks, "INCRBYFLOAT i 3"), "$1\r\n3\r\n");
        assert_eq!(encoding(&mut ks, "i"), "embstr");
        assert_eq!(run(&mut ks, "INCRBYFLOAT i x"), NOT_FLOAT);
        assert_eq!(
            run(&mut ks, "INCRBYFLOAT i inf"),
            "-ERR increment would produce NaN or Infinity\r\n"
        );
        assert_eq!(run(&mut ks, "INCRBYFLOAT i nan"), NOT_FLOAT);
        assert_eq!(run(&mut ks, "SET s abc"), OK);
        assert_eq!(run(&mut ks, "INCRBYFLOAT s 1"), NOT_FLOAT);
        assert_eq!(run(&mut ks, "SET t 1 EX 100"), OK);
        assert_eq!(run(&mut ks, "INCRBYFLOAT t 1.5"), "$3\r\n2.5\r\n");
        assert_eq!(ks.get_expire(0, b"t"), Some(NOW + 100_000));
        assert_eq!(run(&mut ks, "INCRBYFLOAT z -0.0"), "$1\r\n0\r\n");
    }

    /// Results checked against redis-server 7.0.15 on x86-64 (80-bit
    /// long double arithmetic).
    #[test]
    fn incrbyfloat_long_double_exactness() {
        let mut ks = ks();
        let mut case = |v: &str, incr: &str, want: &str| {
            run_proto(&mut ks, false, &[b"SET", b"f", v.as_bytes()]);
            let got = run_proto(&mut ks, false, &[b"INCRBYFLOAT", b"f", incr.as_bytes()]);
            let want = if want.starts_with('-') && want.contains(' ') {
                format!("{want}\r\n")
            } else {
                format!("${}\r\n{want}\r\n", want.len())
            };
            assert_eq!(got, want, "{v} + {incr}");
        };
        case("630.8", "0.1", "630.89999999999999997");
        case("0.1", "0.2", "0.3");
        case("9223372036854775807", "-0.1", "9223372036854775807");
        case("9223372036854775807", "1", "9223372036854775808");
        case(
            "18446744073709551616",
            "9223372036854775808",
            "27670116110564327424",
        );
        // %.17Lf rounds ties to even.
        case(
            "35184372088832.000003814697265625",
            "0",
            "35184372088832.00000381469726562",
        );
        case(
            "35184372088832.000011444091796875",
            "0",
            "35184372088832.00001144409179688",
        );
        case("-0.000000000000000005", "0", "0");
        case("-0.000000000000000015", "0", "-0.00000000000000002");
        // strtold syntax: hex floats, signs, bare points, exponents.
        case("0x10", "-0.1", "15.9");
        case("-0x1.8p-2", "0X.8", "0.125");
        case("+.5", "5.", "5.5");
        case("00012.500", "1e1", "22.5");
        case("4e-4951", "4e-4951", "0");
        let bad = "-ERR value is not a valid float";
        for v in [
            "0x", "0x1p", "1e", "1e+", ".", "-.", " 1", "1 ", "1e4933", "1e-4952", "nan", "1,5",
        ] {
            case(v, "1", bad);
            case("1", v, bad);
        }
        let inf = "-ERR increment would produce NaN or Infinity";
        case("1e4932", "1e4932", inf);
        case("inf", "1", inf);
        case("1", "-Infinity", inf);
        case("1.18973149535723176502e4932", "1e4913", inf);
        // The largest long double prints in full.
        run(&mut ks, "SET f 1.18973149535723176502e4932");
        let r = run(&mut ks, "INCRBYFLOAT f 0");
        assert!(r.starts_with("$4933\r\n118973149535723176502126385303097020516906332229462"));
    }

    #[test]
    fn lcs_examples() {
        let mut ks = ks();
        assert_eq!(run(&mut ks, "MSET key1 ohmytext key2 mynewtext"), OK);
        assert_eq!(run(&mut ks, "LCS key1 key2"), "$6\r\nmytext\r\n");
        assert_eq!(run(&mut ks, "LCS key1 key2 LEN"), ":6\r\n");
        assert_eq!(
            run(&mut ks, "LCS key1 key2 IDX"),
            "*4\r\n$7\r\nmatches\r\n*2\r\n\
             *2\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n\
             *2\r\n*2\r\n:2\r\n:3\r\n*2\r\n:0\r\n:1\r\n\
             $3\r\nlen\r\n:6\r\n"
        );
        assert_eq!(
            run(&mut ks, "LCS key1 key2 IDX MINMATCHLEN 4 WITHMATCHLEN"),
            "*4\r\n$7\r\nmatches\r\n*1\r\n\
             *3\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n:4\r\n\
             $3\r\nlen\r\n:6\r\n"
        );
        assert_eq!(
            run3(&mut ks, "LCS key1 key2 IDX MINMATCHLEN 4"),
            "%2\r\n$7\r\nmatches\r\n*1\r\n\
             *2\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n\
             $3\r\nlen\r\n:6\r\n"
        );
        assert_eq!(
            run(&mut ks, "LCS key1 key2 IDX LEN"),
            "-ERR If you want both the length and indexes, please just use IDX.\r\n"
        );
        assert_eq!(run(&mut ks, "LCS key1 key2 FOO"), SYNTAX);
        assert_eq!(run(&mut ks, "LCS key1 key2 MINMATCHLEN"), SYNTAX);
        assert_eq!(run(&mut ks, "LCS key1 key2 MINMATCHLEN x"), NOT_INT);
        assert_eq!(run(&mut ks, "LCS key1 nokey"), "$0\r\n\r\n");
        assert_eq!(run(&mut ks, "LCS nokey nokey2 LEN"), ":0\r\n");
        assert_eq!(
            run(&mut ks, "LCS nokey nokey2 IDX"),
            "*4\r\n$7\r\nmatches\r\n*0\r\n$3\r\nlen\r\n:0\r\n"
        );
    }
}
