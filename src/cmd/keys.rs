//! The generic (keyspace) command family: DEL, EXISTS, EXPIRE and friends,
//! TTL, KEYS, SCAN, RANDOMKEY, RENAME, COPY, MOVE, OBJECT, and the
//! whole-database commands DBSIZE, FLUSHDB, FLUSHALL and SWAPDB.
//!
//! Redis 7.0 (db.c, expire.c, object.c) is the reference for every reply,
//! error text and the order in which arguments are validated.
//!
//! Single-shard work goes through the [`Keyspace`] methods in plain
//! functions that take `&mut Keyspace`, so the keyed handlers, the
//! cross-shard coordinators and the unit tests share one implementation.

use crate::cmd::{
    CmdSpec, Ctx, Run, SrvCtx, SubSpec, DENYOOM, FAST, LOADING, READONLY, STALE, WRITE,
};
use crate::notify as N;
use crate::resp::Out;
use crate::shard::keyspace::Keyspace;
use crate::shard::Shard;
use crate::types::{Str, Value};
use crate::util::{eq_ic, glob_match, parse_i64};

// ----- error texts (Redis 7.0) ---------------------------------------------

const E_NOT_INT: &str = "ERR value is not an integer or out of range";
const E_SYNTAX: &str = "ERR syntax error";
const E_NO_KEY: &str = "ERR no such key";
const E_SAME: &str = "ERR source and destination objects are the same";
const E_DB_RANGE: &str = "ERR DB index is out of range";
const E_NX_XX: &str = "ERR NX and XX, GT or LT options at the same time are not compatible";
const E_GT_LT: &str = "ERR GT and LT options at the same time are not compatible";
const E_CURSOR: &str = "ERR invalid cursor";
const E_NOT_LFU: &str = "ERR An LFU maxmemory policy is not selected, access frequency not \
     tracked. Please note that when switching between policies at runtime LRU and LFU data \
     will take some time to adjust.";

/// Redis's `OBJ_SHARED_REFCOUNT`: what OBJECT REFCOUNT reports for the
/// shared integer objects 0..9999.
const SHARED_REFCOUNT: i64 = i32::MAX as i64;
/// Redis's `OBJ_SHARED_INTEGERS`.
const SHARED_INTEGERS: i64 = 10_000;

// ----- small helpers --------------------------------------------------------

/// `getIntFromObjectOrReply`: a strict 64-bit integer that must fit an int.
fn parse_int32(s: &[u8]) -> Option<i64> {
    parse_i64(s).filter(|&n| i32::try_from(n).is_ok())
}

/// A db index argument: not an integer (or out of int range) is `err_int`,
/// outside 0..ndb is "DB index is out of range".
fn parse_db(s: &[u8], ndb: usize, err_int: &'static str) -> Result<usize, &'static str> {
    let n = parse_int32(s).ok_or(err_int)?;
    if n < 0 || n as usize >= ndb {
        return Err(E_DB_RANGE);
    }
    Ok(n as usize)
}

/// The keys of `keys` grouped by the shard that owns them, in first-seen
/// order (duplicates kept: EXISTS and TOUCH count them).
fn group_by_shard(sh: &Shard, keys: &[&[u8]]) -> Vec<(usize, Vec<Vec<u8>>)> {
    let mut groups: Vec<(usize, Vec<Vec<u8>>)> = Vec::new();
    for k in keys {
        let s = sh.shard_of(k);
        match groups.iter_mut().find(|g| g.0 == s) {
            Some(g) => g.1.push(k.to_vec()),
            None => groups.push((s, vec![k.to_vec()])),
        }
    }
    groups
}

/// Runs `f` on every key of `keys` on its owning shard, all shards held in
/// one transaction, and returns how many calls returned true.
fn count_across_shards(
    ctx: &mut SrvCtx,
    keys: &[&[u8]],
    f: fn(&mut Keyspace, usize, &[u8]) -> bool,
) -> i64 {
    let db = ctx.conn.db;
    let now = crate::util::now_ms();
    let groups = group_by_shard(ctx.sh, keys);
    let shards: Vec<usize> = groups.iter().map(|g| g.0).collect();
    ctx.sh.tx(&shards, move |tx| {
        let mut total = 0i64;
        for (s, keys) in groups {
            total += tx.run(s, move |sh: &mut Shard| {
                sh.ks.now = now;
                keys.iter().filter(|k| f(&mut sh.ks, db, k)).count() as i64
            });
        }
        total
    })
}

fn count_local(ctx: &mut Ctx, keys: &[&[u8]], f: fn(&mut Keyspace, usize, &[u8]) -> bool) -> i64 {
    let db = ctx.db;
    keys.iter().filter(|k| f(ctx.ks, db, k)).count() as i64
}

fn write_keys(out: &mut Out, keys: &[Vec<u8>]) {
    out.array(keys.len());
    for k in keys {
        out.bulk(k);
    }
}

// ----- DEL / UNLINK / EXISTS / TOUCH ----------------------------------------

/// DEL frees big values in the background iff lazyfree-lazy-user-del.
fn del_one(ks: &mut Keyspace, db: usize, key: &[u8]) -> bool {
    let lazy = ks.lazy.user_del;
    del_freeing(ks, db, key, lazy)
}

/// UNLINK always frees big values in the background.
fn unlink_one(ks: &mut Keyspace, db: usize, key: &[u8]) -> bool {
    del_freeing(ks, db, key, true)
}

fn del_freeing(ks: &mut Keyspace, db: usize, key: &[u8], lazy: bool) -> bool {
    let done = ks.delete_freeing(db, key, lazy);
    if done {
        ks.notify(N::GENERIC, "del", db, key);
    }
    done
}

/// EXISTS looks keys up for reading (hits and misses count) without
/// recording an access, as in Redis.
fn exists_one(ks: &mut Keyspace, db: usize, key: &[u8]) -> bool {
    ks.get_notouch(db, key).is_some()
}

/// TOUCH records an access (LRU/LFU) of each existing key.
fn touch_one(ks: &mut Keyspace, db: usize, key: &[u8]) -> bool {
    ks.get(db, key).is_some()
}

fn del_cmd(ctx: &mut Ctx, args: &[&[u8]]) {
    let n = count_local(ctx, &args[1..], del_one);
    ctx.out.int(n);
}

fn del_multi(ctx: &mut SrvCtx, args: &[&[u8]]) {
    let n = count_across_shards(ctx, &args[1..], del_one);
    ctx.out.int(n);
}

fn unlink_cmd(ctx: &mut Ctx, args: &[&[u8]]) {
    let n = count_local(ctx, &args[1..], unlink_one);
    ctx.out.int(n);
}

fn unlink_multi(ctx: &mut SrvCtx, args: &[&[u8]]) {
    let n = count_across_shards(ctx, &args[1..], unlink_one);
    ctx.out.int(n);
}

fn exists_cmd(ctx: &mut Ctx, args: &[&[u8]]) {
    let n = count_local(ctx, &args[1..], exists_one);
    ctx.out.int(n);
}

fn exists_multi(ctx: &mut SrvCtx, args: &[&[u8]]) {
    let n = count_across_shards(ctx, &args[1..], exists_one);
    ctx.out.int(n);
}

fn touch_cmd(ctx: &mut Ctx, args: &[&[u8]]) {
    let n = count_local(ctx, &args[1..], touch_one);
    ctx.out.int(n);
}

fn touch_multi(ctx: &mut SrvCtx, args: &[&[u8]]) {
    let n = count_across_shards(ctx, &args[1..], touch_one);
    ctx.out.int(n);
}

// ----- TYPE -----------------------------------------------------------------

fn type_cmd(ctx: &mut Ctx, args: &[&[u8]]) {
    let t = ctx
        .ks
        .get_notouch(ctx.db, args[1])
        .map_or("none", Value::type_name);
    ctx.out.simple(t);
}

// ----- EXPIRE family ----------------------------------------------------------

const EXPIRE_NX: u8 = 1;
const EXPIRE_XX: u8 = 2;
const EXPIRE_GT: u8 = 4;
const EXPIRE_LT: u8 = 8;

/// `parseExtendedExpireArgumentsOrReply`.
fn parse_expire_flags(opts: &[&[u8]]) -> Result<u8, String> {
    let mut flags = 0u8;
    for o in opts {
        flags |= if eq_ic(o, "nx") {
            EXPIRE_NX
        } else if eq_ic(o, "xx") {
            EXPIRE_XX
        } else if eq_ic(o, "gt") {
            EXPIRE_GT
        } else if eq_ic(o, "lt") {
            EXPIRE_LT
        } else {
            return Err(format!(
                "ERR Unsupported option {}",
                String::from_utf8_lossy(o)
            ));
        };
    }
    if flags & EXPIRE_NX != 0 && flags & (EXPIRE_XX | EXPIRE_GT | EXPIRE_LT) != 0 {
        return Err(E_NX_XX.into());
    }
    if flags & EXPIRE_GT != 0 && flags & EXPIRE_LT != 0 {
        return Err(E_GT_LT.into());
    }
    Ok(flags)
}

/// `expireGenericCommand`: `relative` adds the command time, `secs`
/// scales by 1000. Replies 1 when the deadline was set (or the key deleted
/// because it is already in the past), 0 when the key is missing or a
/// condition failed.
fn expire_generic(ctx: &mut Ctx, args: &[&[u8]], relative: bool, secs: bool) {
    let flags = match parse_expire_flags(&args[3..]) {
        Ok(f) => f,
        Err(e) => return ctx.out.error(&e),
    };
    let Some(mut when) = parse_i64(args[2]) else {
        return ctx.out.error(E_NOT_INT);
    };
    let now = ctx.ks.now as i64;
    let bad_time = |out: &mut Out| {
        let name = String::from_utf8_lossy(args[0]).to_ascii_lowercase();
        out.error(&format!("ERR invalid expire time in '{name}' command"));
    };
    if secs {
        if !(i64::MIN / 1000..=i64::MAX / 1000).contains(&when) {
            return bad_time(&mut ctx.out);
        }
        when *= 1000;
    }
    let base = if relative { now } else { 0 };
    if when > i64::MAX - base {
        return bad_time(&mut ctx.out);
    }
    when += base;

    let (db, key) = (ctx.db, args[1]);
    if !ctx.ks.exists(db, key) {
        return ctx.out.int(0);
    }
    if flags != 0 {
        let cur = ctx.ks.get_expire(db, key).map_or(-1, |at| at as i64);
        let refused = (flags & EXPIRE_NX != 0 && cur != -1)
            || (flags & EXPIRE_XX != 0 && cur == -1)
            // No TTL counts as infinite: GT always fails on it.
            || (flags & EXPIRE_GT != 0 && (cur == -1 || when <= cur))
            || (flags & EXPIRE_LT != 0 && cur != -1 && when >= cur);
        if refused {
            return ctx.out.int(0);
        }
    }
    if when <= now {
        ctx.ks.delete(db, key);
        ctx.ks.notify(N::GENERIC, "del", db, key);
    } else {
        ctx.ks.set_expire(db, key, when as u64);
        ctx.ks.notify(N::GENERIC, "expire", db, key);
    }
    ctx.out.int(1);
}

fn expire_cmd(ctx: &mut Ctx, args: &[&[u8]]) {
    expire_generic(ctx, args, true, true);
}

fn pexpire_cmd(ctx: &mut Ctx, args: &[&[u8]]) {
    expire_generic(ctx, args, true, false);
}

fn expireat_cmd(ctx: &mut Ctx, args: &[&[u8]]) {
    expire_generic(ctx, args, false, true);
}

fn pexpireat_cmd(ctx: &mut Ctx, args: &[&[u8]]) {
    expire_generic(ctx, args, false, false);
}

/// `ttlGenericCommand`: -2 missing key, -1 no deadline; seconds round to
/// the nearest second as Redis does.
fn ttl_generic(ctx: &mut Ctx, args: &[&[u8]], ms: bool, abs: bool) {
    let (db, key) = (ctx.db, args[1]);
    if ctx.ks.get_notouch(db, key).is_none() {
        return ctx.out.int(-2);
    }
    let Some(at) = ctx.ks.get_expire(db, key) else {
        return ctx.out.int(-1);
    };
    let at = at.min(i64::MAX as u64) as i64;
    let t = if abs {
        at
    } else {
        (at - ctx.ks.now as i64).max(0)
    };
    ctx.out.int(if ms { t } else { (t + 500) / 1000 });
}

fn ttl_cmd(ctx: &mut Ctx, args: &[&[u8]]) {
    ttl_generic(ctx, args, false, false);
}

fn pttl_cmd(ctx: &mut Ctx, args: &[&[u8]]) {
    ttl_generic(ctx, args, true, false);
}

fn expiretime_cmd(ctx: &mut Ctx, args: &[&[u8]]) {
    ttl_generic(ctx, args, false, true);
}

fn pexpiretime_cmd(ctx: &mut Ctx, args: &[&[u8]]) {
    ttl_generic(ctx, args, true, true);
}

fn persist_cmd(ctx: &mut Ctx, args: &[&[u8]]) {
    let (db, key) = (ctx.db, args[1]);
    let r = ctx.ks.exists(db, key) && ctx.ks.persist(db, key);
    if r {
        ctx.ks.notify(N::GENERIC, "persist", db, key);
    }
    ctx.out.int(r as i64);
}

// ----- KEYS / SCAN / RANDOMKEY ------------------------------------------------

/// The live keys of one shard's `db` matching `pat`. Like Redis's KEYS it
/// skips logically expired keys without deleting them.
fn keys_matching(ks: &Keyspace, db: usize, pat: &[u8]) -> Vec<Vec<u8>> {
    let all = pat == b"*";
    let d = &ks.dbs[db];
    let now = ks.now;
    d.main
        .iter()
        .filter(|(k, _)| all || glob_match(pat, k, false))
        .filter(|(k, _)| !matches!(d.expires.get(k), Some(&at) if at <= now))
        .map(|(k, _)| k.to_vec())
        .collect()
}

fn keys_cmd(ctx: &mut SrvCtx, args: &[&[u8]]) {
    let db = ctx.conn.db;
    let pat = args[1].to_vec();
    let now = crate::util::now_ms();
    let parts = ctx.sh.on_all(move |sh: &mut Shard| {
        sh.ks.now = now;
        keys_matching(&sh.ks, db, &pat)
    });
    let n: usize = parts.iter().map(Vec::len).sum();
    ctx.out.array(n);
    for k in parts.iter().flatten() {
        ctx.out.bulk(k);
    }
}

/// SCAN's options after the cursor.
struct ScanOpts {
    count: usize,
    pat: Option<Vec<u8>>,
    typ: Option<Vec<u8>>,
}

fn parse_scan_opts(args: &[&[u8]]) -> Result<ScanOpts, &'static str> {
    let mut o = ScanOpts {
        count: 10,
        pat: None,
        typ: None,
    };
    let mut i = 0;
    while i < args.len() {
        let more = args.len() - i >= 2;
        if more && eq_ic(args[i], "count") {
            let n = parse_i64(args[i + 1]).ok_or(E_NOT_INT)?;
            if n < 1 {
                return Err(E_SYNTAX);
            }
            o.count = usize::try_from(n).unwrap_or(usize::MAX);
        } else if more && eq_ic(args[i], "match") {
            // "*" matches everything: skip matching altogether.
            o.pat = (args[i + 1] != b"*").then(|| args[i + 1].to_vec());
        } else if more && eq_ic(args[i], "type") {
            o.typ = Some(args[i + 1].to_vec());
        } else {
            return Err(E_SYNTAX);
        }
        i += 2;
    }
    Ok(o)
}

/// One SCAN step over one shard's `db`, as Redis's `scanGenericCommand`:
/// dict scan calls until `count` keys are collected (or 10*count calls),
/// then the MATCH and TYPE filters, then expired keys are deleted and left
/// out. Returns the next dict cursor (0 = this shard is done) and the keys.
fn scan_keys(ks: &mut Keyspace, db: usize, cursor: u64, o: &ScanOpts) -> (u64, Vec<Vec<u8>>) {
    let mut found: Vec<(Vec<u8>, &'static str)> = Vec::new();
    let mut cur = cursor;
    let mut budget = o.count.saturating_mul(10);
    {
        let main = &ks.dbs[db].main;
        loop {
            cur = main.scan(cur, |k, v| found.push((k.to_vec(), v.type_name())));
            if cur == 0 || budget == 0 || found.len() >= o.count {
                break;
            }
            budget -= 1;
        }
    }
    let mut keys = Vec::with_capacity(found.len());
    for (k, t) in found {
        if let Some(p) = &o.pat {
            if !glob_match(p, &k, false) {
                continue;
            }
        }
        if let Some(want) = &o.typ {
            if !want.eq_ignore_ascii_case(t.as_bytes()) {
                continue;
            }
        }
        // Deletes the key when its deadline has passed.
        if ks.exists(db, &k) {
            keys.push(k);
        }
    }
    (cur, keys)
}

/// Bits of a SCAN cursor that name the shard: the cursor is
/// `(dict_cursor << bits) | shard`, so with one shard it is exactly Redis's
/// cursor.
fn shard_bits(n: usize) -> u32 {
    if n <= 1 {
        0
    } else {
        usize::BITS - (n - 1).leading_zeros()
    }
}

/// The cursor that follows a step on `shard` that returned `next_dict`.
fn next_scan_cursor(next_dict: u64, shard: usize, n: usize) -> u64 {
    let bits = shard_bits(n);
    if next_dict != 0 {
        (next_dict << bits) | shard as u64
    } else if shard + 1 < n {
        // The next shard, from its dict cursor 0 (never 0 overall).
        (shard + 1) as u64
    } else {
        0
    }
}

fn scan_cmd(ctx: &mut SrvCtx, args: &[&[u8]]) {
    let Some(cursor) = crate::util::parse_scan_cursor(args[1]) else {
        return ctx.out.error(E_CURSOR);
    };
    let opts = match parse_scan_opts(&args[2..]) {
        Ok(o) => o,
        Err(e) => return ctx.out.error(e),
    };
    let n = ctx.sh.n;
    let bits = shard_bits(n);
    let shard = (cursor & ((1u64 << bits) - 1)) as usize;
    let (next, keys) = if shard >= n {
        // Not a cursor we handed out: the iteration is over.
        (0, Vec::new())
    } else {
        let dict_cursor = cursor >> bits;
        let db = ctx.conn.db;
        let now = crate::util::now_ms();
        let (next_dict, keys) = ctx.sh.tx(&[shard], move |tx| {
            tx.run(shard, move |sh: &mut Shard| {
                sh.ks.now = now;
                scan_keys(&mut sh.ks, db, dict_cursor, &opts)
            })
        });
        (next_scan_cursor(next_dict, shard, n), keys)
    };
    ctx.out.array(2);
    ctx.out.bulk(itoa::Buffer::new().format(next).as_bytes());
    write_keys(&mut ctx.out, &keys);
}

/// RANDOMKEY: a shard picked with probability proportional to its key
/// count, then a random key of it; all shards held so sizes stay true.
fn randomkey_cmd(ctx: &mut SrvCtx, _args: &[&[u8]]) {
    let db = ctx.conn.db;
    let now = crate::util::now_ms();
    let all = ctx.sh.all_shards();
    let key = ctx.sh.tx(&all, move |tx| {
        let n = tx.sh.n;
        let sizes: Vec<u64> = (0..n)
            .map(|s| tx.run(s, move |sh: &mut Shard| sh.ks.db_len(db) as u64))
            .collect();
        let total: u64 = sizes.iter().sum();
        if total == 0 {
            return None;
        }
        let mut pick = tx.sh.ks.rand() % total;
        let mut chosen = 0;
        for (s, &len) in sizes.iter().enumerate() {
            if pick < len {
                chosen = s;
                break;
            }
            pick -= len;
        }
        // The chosen shard may hold only expired keys: try the others.
        (0..n)
            .map(|i| (chosen + i) % n)
            .filter(|&s| sizes[s] > 0)
            .find_map(|s| {
                tx.run(s, move |sh: &mut Shard| {
                    sh.ks.now = now;
                    sh.ks.random_key(db)
                })
            })
    });
    match key {
        Some(k) => ctx.out.bulk(&k),
        None => ctx.out.null(),
    }
}

// ----- RENAME / RENAMENX -------------------------------------------------------

/// `renameGenericCommand` within one keyspace. Err = no such key; Ok(false)
/// = RENAMENX refused (or renaming a key onto itself with NX).
fn rename_local(
    ks: &mut Keyspace,
    db: usize,
    src: &[u8],
    dst: &[u8],
    nx: bool,
) -> Result<bool, ()> {
    if !ks.exists(db, src) {
        return Err(());
    }
    if src == dst {
        return Ok(!nx);
    }
    if nx && ks.exists(db, dst) {
        return Ok(false);
    }
    let (v, ttl) = ks.take(db, src).ok_or(())?;
    // Redis deletes the destination and adds the key anew ("new" fires).
    ks.delete(db, dst);
    ks.put(db, dst, v, ttl);
    ks.notify(N::GENERIC, "rename_from", db, src);
    ks.notify(N::GENERIC, "rename_to", db, dst);
    Ok(true)
}

fn rename_reply(out: &mut Out, r: Result<bool, ()>, nx: bool) {
    match r {
        Err(()) => out.error(E_NO_KEY),
        Ok(done) if nx => out.int(done as i64),
        Ok(_) => out.ok(),
    }
}

fn rename_key(ctx: &mut Ctx, args: &[&[u8]], nx: bool) {
    let r = rename_local(ctx.ks, ctx.db, args[1], args[2], nx);
    rename_reply(&mut ctx.out, r, nx);
}

/// RENAME across shards: the value and its deadline leave the source
/// shard and land on the destination shard inside one transaction.
fn rename_multi(ctx: &mut SrvCtx, args: &[&[u8]], nx: bool) {
    let db = ctx.conn.db;
    let now = crate::util::now_ms();
    let (src, dst) = (args[1].to_vec(), args[2].to_vec());
    let (ss, ds) = (ctx.sh.shard_of(&src), ctx.sh.shard_of(&dst));
    let r = ctx.sh.tx(&[ss, ds], move |tx| {
        let s2 = src.clone();
        let exists = tx.run(ss, move |sh: &mut Shard| {
            sh.ks.now = now;
            sh.ks.exists(db, &s2)
        });
        if !exists {
            return Err(());
        }
        if nx {
            let d2 = dst.clone();
            let taken = tx.run(ds, move |sh: &mut Shard| {
                sh.ks.now = now;
                sh.ks.exists(db, &d2)
            });
            if taken {
                return Ok(false);
            }
        }
        let (v, ttl) = tx
            .run(ss, move |sh: &mut Shard| {
                let r = sh.ks.take(db, &src);
                sh.ks.notify(N::GENERIC, "rename_from", db, &src);
                r
            })
            .ok_or(())?;
        tx.run(ds, move |sh: &mut Shard| {
            sh.ks.now = now;
            sh.ks.delete(db, &dst);
            sh.ks.put(db, &dst, v, ttl);
            sh.ks.notify(N::GENERIC, "rename_to", db, &dst);
        });
        Ok(true)
    });
    rename_reply(&mut ctx.out, r, nx);
}

fn rename_cmd(ctx: &mut Ctx, args: &[&[u8]]) {
    rename_key(ctx, args, false);
}

fn renamenx_cmd(ctx: &mut Ctx, args: &[&[u8]]) {
    rename_key(ctx, args, true);
}

fn rename_coord(ctx: &mut SrvCtx, args: &[&[u8]]) {
    rename_multi(ctx, args, false);
}

fn renamenx_coord(ctx: &mut SrvCtx, args: &[&[u8]]) {
    rename_multi(ctx, args, true);
}

// ----- COPY ---------------------------------------------------------------------

/// COPY's options: the destination db and REPLACE.
fn parse_copy_opts(args: &[&[u8]], db: usize, ndb: usize) -> Result<(usize, bool), &'static str> {
    let mut dst_db = db;
    let mut replace = false;
    let mut j = 3;
    while j < args.len() {
        if eq_ic(args[j], "replace") {
            replace = true;
        } else if eq_ic(args[j], "db") && j + 1 < args.len() {
            dst_db = parse_db(args[j + 1], ndb, E_NOT_INT)?;
            j += 1;
        } else {
            return Err(E_SYNTAX);
        }
        j += 1;
    }
    if dst_db == db && args[1] == args[2] {
        return Err(E_SAME);
    }
    Ok((dst_db, replace))
}

/// The value of a live key and its deadline (COPY's source lookup counts
/// as a read).
fn read_with_ttl(ks: &mut Keyspace, db: usize, key: &[u8]) -> Option<(Value, Option<u64>)> {
    let v = ks.get(db, key)?.clone();
    Some((v, ks.get_expire(db, key)))
}

/// Stores a copy unless the destination exists and REPLACE was not given.
fn copy_into(
    ks: &mut Keyspace,
    db: usize,
    key: &[u8],
    item: (Value, Option<u64>),
    replace: bool,
) -> bool {
    if !replace && ks.exists(db, key) {
        return false;
    }
    ks.delete(db, key);
    ks.put(db, key, item.0, item.1);
    ks.notify(N::GENERIC, "copy_to", db, key);
    true
}

fn copy_cmd(ctx: &mut Ctx, args: &[&[u8]]) {
    let (dst_db, replace) = match parse_copy_opts(args, ctx.db, ctx.ks.dbs.len()) {
        Ok(o) => o,
        Err(e) => return ctx.out.error(e),
    };
    let done = match read_with_ttl(ctx.ks, ctx.db, args[1]) {
        Some(item) => copy_into(ctx.ks, dst_db, args[2], item, replace),
        None => false,
    };
    ctx.out.int(done as i64);
}

fn copy_coord(ctx: &mut SrvCtx, args: &[&[u8]]) {
    let db = ctx.conn.db;
    let (dst_db, replace) = match parse_copy_opts(args, db, ctx.sh.ks.dbs.len()) {
        Ok(o) => o,
        Err(e) => return ctx.out.error(e),
    };
    let now = crate::util::now_ms();
    let (src, dst) = (args[1].to_vec(), args[2].to_vec());
    let (ss, ds) = (ctx.sh.shard_of(&src), ctx.sh.shard_of(&dst));
    let done = ctx.sh.tx(&[ss, ds], move |tx| {
        let item = tx.run(ss, move |sh: &mut Shard| {
            sh.ks.now = now;
            read_with_ttl(&mut sh.ks, db, &src)
        });
        match item {
            Some(item) => tx.run(ds, move |sh: &mut Shard| {
                sh.ks.now = now;
                copy_into(&mut sh.ks, dst_db, &dst, item, replace)
            }),
            None => false,
        }
    });
    ctx.out.int(done as i64);
}

// ----- MOVE ---------------------------------------------------------------------

fn move_cmd(ctx: &mut Ctx, args: &[&[u8]]) {
    let (db, key) = (ctx.db, args[1]);
    let dst_db = match parse_db(args[2], ctx.ks.dbs.len(), E_NOT_INT) {
        Ok(d) => d,
        Err(e) => return ctx.out.error(e),
    };
    if dst_db == db {
        return ctx.out.error(E_SAME);
    }
    if !ctx.ks.exists(db, key) || ctx.ks.exists(dst_db, key) {
        return ctx.out.int(0);
    }
    match ctx.ks.take(db, key) {
        Some((v, ttl)) => {
            ctx.ks.put(dst_db, key, v, ttl);
            ctx.ks.notify(N::GENERIC, "move_from", db, key);
            ctx.ks.notify(N::GENERIC, "move_to", dst_db, key);
            ctx.out.int(1);
        }
        None => ctx.out.int(0),
    }
}

// ----- DBSIZE / FLUSHDB / FLUSHALL / SWAPDB --------------------------------------

fn dbsize_cmd(ctx: &mut SrvCtx, _args: &[&[u8]]) {
    let db = ctx.conn.db;
    let n: usize = ctx
        .sh
        .on_all(move |sh: &mut Shard| sh.ks.db_len(db))
        .into_iter()
        .sum();
    ctx.out.int(n as i64);
}

/// Whether a FLUSHDB/FLUSHALL frees in the background: ASYNC yes, SYNC no,
/// no argument as lazyfree-lazy-user-flush says (`user_flush`). None for
/// bad arguments.
fn flush_mode(args: &[&[u8]], user_flush: bool) -> Option<bool> {
    match args.len() {
        1 => Some(user_flush),
        2 if eq_ic(args[1], "sync") => Some(false),
        2 if eq_ic(args[1], "async") => Some(true),
        _ => None,
    }
}

fn flushdb_cmd(ctx: &mut SrvCtx, args: &[&[u8]]) {
    let Some(lazy) = flush_mode(args, ctx.sh.ks.lazy.user_flush) else {
        return ctx.out.error(E_SYNTAX);
    };
    let db = ctx.conn.db;
    ctx.sh.on_all(move |sh: &mut Shard| {
        sh.ks.flush_db_freeing(db, lazy);
        sh.tracking_flush();
    });
    flushed_for_tracking(ctx);
    ctx.out.ok();
}

/// The flushing client itself, if it tracks, is told to drop everything
/// too (after the reply, as Redis does).
fn flushed_for_tracking(ctx: &mut SrvCtx) {
    if ctx.conn.tracking.is_some() {
        if let Some(idx) = ctx.sh.current_idx() {
            ctx.sh.deliver_invalidation(idx, ctx.conn.gen, None);
        }
    }
}

fn flushall_cmd(ctx: &mut SrvCtx, args: &[&[u8]]) {
    let Some(lazy) = flush_mode(args, ctx.sh.ks.lazy.user_flush) else {
        return ctx.out.error(E_SYNTAX);
    };
    ctx.sh.on_all(move |sh: &mut Shard| {
        sh.ks.flush_all_freeing(lazy);
        sh.tracking_flush();
    });
    flushed_for_tracking(ctx);
    ctx.out.ok();
}

fn swapdb_cmd(ctx: &mut SrvCtx, args: &[&[u8]]) {
    let ndb = ctx.sh.ks.dbs.len();
    let Some(a) = parse_int32(args[1]) else {
        return ctx.out.error("ERR invalid first DB index");
    };
    let Some(b) = parse_int32(args[2]) else {
        return ctx.out.error("ERR invalid second DB index");
    };
    let in_range = |i: i64| i >= 0 && (i as usize) < ndb;
    if !in_range(a) || !in_range(b) {
        return ctx.out.error(E_DB_RANGE);
    }
    let (a, b) = (a as usize, b as usize);
    if a != b {
        ctx.sh.on_all(move |sh: &mut Shard| sh.ks.swap_db(a, b));
    }
    ctx.out.ok();
}

// ----- OBJECT -------------------------------------------------------------------

const OBJECT_HELP: &[&str] = &[
    "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
    "HELP",
    "    Print this help.",
];

const E_LFU_NO_IDLE: &str = "ERR An LFU maxmemory policy is selected, idle time not tracked. \
Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.";

/// OBJECT REFCOUNT as Redis reports it: the integers 0..9999 are shared
/// objects, everything else is referenced once.
fn refcount(v: &Value) -> i64 {
    match v {
        Value::Str(Str::Int(n)) if (0..SHARED_INTEGERS).contains(n) => SHARED_REFCOUNT,
        _ => 1,
    }
}

fn object_cmd(ctx: &mut Ctx, args: &[&[u8]]) {
    let sub = args[1];
    let known = ["help", "encoding", "freq", "idletime", "refcount"]
        .into_iter()
        .find(|s| eq_ic(sub, s));
    let Some(sub) = known else {
        let name = String::from_utf8_lossy(&sub[..sub.len().min(128)]).into_owned();
        return ctx.out.error(&format!(
            "ERR unknown subcommand '{name}'. Try OBJECT HELP."
        ));
    };
    let arity = if sub == "help" { 2 } else { 3 };
    if args.len() != arity {
        return ctx.out.wrong_arity(&format!("object|{sub}"));
    }
    if sub == "help" {
        ctx.out.array(OBJECT_HELP.len());
        for l in OBJECT_HELP {
            ctx.out.simple(l);
        }
        return;
    }
    let lfu = ctx.ks.mem.policy.is_lfu();
    let Some(v) = ctx.ks.get_notouch(ctx.db, args[2]) else {
        return ctx.out.null();
    };
    match sub {
        "encoding" => {
            let e = v.encoding();
            ctx.out.bulk(e.as_bytes());
        }
        "refcount" => {
            let n = refcount(v);
            ctx.out.int(n);
        }
        "freq" if !lfu => ctx.out.error(E_NOT_LFU),
        "freq" => {
            let f = ctx.ks.lfu_freq(ctx.db, args[2]).unwrap_or(0);
            ctx.out.int(f as i64)
        }
        _ if lfu => ctx.out.error(E_LFU_NO_IDLE),
        _ => {
            let s = ctx.ks.idle_secs(ctx.db, args[2]).unwrap_or(0);
            ctx.out.int(s as i64)
        }
    }
}

// ----- the table ------------------------------------------------------------------

macro_rules! spec {
    ($name:expr, $arity:expr, $flags:expr, ($f:expr, $l:expr, $s:expr), $group:expr, $acl:expr,
     $since:expr, $run:expr, $summary:expr) => {
        CmdSpec {
            name: $name,
            arity: $arity,
            flags: $flags,
            first_key: $f,
            last_key: $l,
            step: $s,
            group: $group,
            acl: $acl,
            summary: $summary,
            since: $since,
            run: $run,
            subs: &[],
            getkeys: None,
        }
    };
}

const OBJECT_SUBS: &[SubSpec] = &[
    SubSpec {
        name: "encoding",
        arity: 3,
        flags: READONLY,
        first_key: 2,
        last_key: 2,
        step: 1,
        acl: "@keyspace @read @slow",
        summary: "Inspect the internal encoding of a Redis object",
    },
    SubSpec {
        name: "freq",
        arity: 3,
        flags: READONLY,
        first_key: 2,
        last_key: 2,
        step: 1,
        acl: "@keyspace @read @slow",
        summary: "Get the logarithmic access frequency counter of a Redis object",
    },
    SubSpec {
        name: "help",
        arity: 2,
        flags: LOADING | STALE,
        first_key: 0,
        last_key: 0,
        step: 0,
        acl: "@keyspace @slow",
        summary: "Show helpful text about the different subcommands",
    },
    SubSpec {
        name: "idletime",
        arity: 3,
        flags: READONLY,
        first_key: 2,
        last_key: 2,
        step: 1,
        acl: "@keyspace @read @slow",
        summary: "Get the time since a Redis object was last accessed",
    },
    SubSpec {
        name: "refcount",
        arity: 3,
        flags: READONLY,
        first_key: 2,
        last_key: 2,
        step: 1,
        acl: "@keyspace @read @slow",
        summary: "Get the number of references to the value of the key",
    },
];

pub static COMMANDS: &[CmdSpec] = &[
    spec!("copy", -3, WRITE | DENYOOM, (1, 2, 1), "generic", "@keyspace @write @slow", "6.2.0",
        Run::KeyMulti(copy_cmd, copy_coord), "Copy a key"),
    spec!("del", -2, WRITE, (1, -1, 1), "generic", "@keyspace @write @slow", "1.0.0",
        Run::KeyMulti(del_cmd, del_multi), "Delete a key"),
    spec!("unlink", -2, WRITE | FAST, (1, -1, 1), "generic", "@keyspace @write @fast", "4.0.0",
        Run::KeyMulti(unlink_cmd, unlink_multi),
        "Delete a key asynchronously in another thread. Otherwise it is just as DEL, but non blocking."),
    spec!("exists", -2, READONLY | FAST, (1, -1, 1), "generic", "@keyspace @read @fast", "1.0.0",
        Run::KeyMulti(exists_cmd, exists_multi), "Determine if a key exists"),
    spec!("touch", -2, READONLY | FAST, (1, -1, 1), "generic", "@keyspace @read @fast", "3.2.1",
        Run::KeyMulti(touch_cmd, touch_multi),
        "Alters the last access time of a key(s). Returns the number of existing keys specified."),
    spec!("type", 2, READONLY | FAST, (1, 1, 1), "generic", "@keyspace @read @fast", "1.0.0",
        Run::Key(type_cmd), "Determine the type stored at key"),
    spec!("expire", -3, WRITE | FAST, (1, 1, 1), "generic", "@keyspace @write @fast", "1.0.0",
        Run::Key(expire_cmd), "Set a key's time to live in seconds"),
    spec!("pexpire", -3, WRITE | FAST, (1, 1, 1), "generic", "@keyspace @write @fast", "2.6.0",
        Run::Key(pexpire_cmd), "Set a key's time to live in milliseconds"),
    spec!("expireat", -3, WRITE | FAST, (1, 1, 1), "generic", "@keyspace @write @fast", "1.2.0",
        Run::Key(expireat_cmd), "Set the expiration for a key as a UNIX timestamp"),
    spec!("pexpireat", -3, WRITE | FAST, (1, 1, 1), "generic", "@keyspace @write @fast", "2.6.0",
        Run::Key(pexpireat_cmd),
        "Set the expiration for a key as a UNIX timestamp specified in milliseconds"),
    spec!("ttl", 2, READONLY | FAST, (1, 1, 1), "generic", "@keyspace @read @fast", "1.0.0",
        Run::Key(ttl_cmd), "Get the time to live for a key in seconds"),
    spec!("pttl", 2, READONLY | FAST, (1, 1, 1), "generic", "@keyspace @read @fast", "2.6.0",
        Run::Key(pttl_cmd), "Get the time to live for a key in milliseconds"),
    spec!("expiretime", 2, READONLY | FAST, (1, 1, 1), "generic", "@keyspace @read @fast", "7.0.0",
        Run::Key(expiretime_cmd), "Get the expiration Unix timestamp for a key"),
    spec!("pexpiretime", 2, READONLY | FAST, (1, 1, 1), "generic", "@keyspace @read @fast", "7.0.0",
        Run::Key(pexpiretime_cmd), "Get the expiration Unix timestamp for a key in milliseconds"),
    spec!("persist", 2, WRITE | FAST, (1, 1, 1), "generic", "@keyspace @write @fast", "2.2.0",
        Run::Key(persist_cmd), "Remove the expiration from a key"),
    spec!("keys", 2, READONLY, (0, 0, 0), "generic", "@keyspace @read @slow @dangerous", "1.0.0",
        Run::Srv(keys_cmd), "Find all keys matching the given pattern"),
    spec!("scan", -2, READONLY, (0, 0, 0), "generic", "@keyspace @read @slow", "2.8.0",
        Run::Srv(scan_cmd), "Incrementally iterate the keys space"),
    spec!("randomkey", 1, READONLY, (0, 0, 0), "generic", "@keyspace @read @slow", "1.0.0",
        Run::Srv(randomkey_cmd), "Return a random key from the keyspace"),
    spec!("rename", 3, WRITE, (1, 2, 1), "generic", "@keyspace @write @slow", "1.0.0",
        Run::KeyMulti(rename_cmd, rename_coord), "Rename a key"),
    spec!("renamenx", 3, WRITE | FAST, (1, 2, 1), "generic", "@keyspace @write @fast", "1.0.0",
        Run::KeyMulti(renamenx_cmd, renamenx_coord),
        "Rename a key, only if the new key does not exist"),
    spec!("move", 3, WRITE | FAST, (1, 1, 1), "generic", "@keyspace @write @fast", "1.0.0",
        Run::Key(move_cmd), "Move a key to another database"),
    CmdSpec {
        // The key of OBJECT's subcommands is its third argument; a keyless
        // OBJECT HELP runs locally.
        subs: OBJECT_SUBS,
        getkeys: None,
        ..spec!("object", -2, 0, (2, 2, 1), "generic", "@slow", "2.2.3",
            Run::Key(object_cmd), "A container for object introspection commands")
    },
    spec!("dbsize", 1, READONLY | FAST, (0, 0, 0), "server", "@keyspace @read @fast", "1.0.0",
        Run::Srv(dbsize_cmd), "Return the number of keys in the selected database"),
    spec!("flushdb", -1, WRITE, (0, 0, 0), "server", "@keyspace @write @slow @dangerous", "1.0.0",
        Run::Srv(flushdb_cmd), "Remove all keys from the current database"),
    spec!("flushall", -1, WRITE, (0, 0, 0), "server", "@keyspace @write @slow @dangerous", "1.0.0",
        Run::Srv(flushall_cmd), "Remove all keys from all databases"),
    spec!("swapdb", 3, WRITE | FAST, (0, 0, 0), "server", "@keyspace @write @fast @dangerous", "4.0.0",
        Run::Srv(swapdb_cmd), "Swaps two Redis databases"),
];

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000_000;

    fn ks() -> Keyspace {
        let mut ks = Keyspace::new(16);
        ks.now = NOW;
        ks
    }

    /// Runs a keyed command of this family on `db` and returns the RESP2
    /// reply, checking arity the way the dispatcher does.
    fn call_db(ks: &mut Keyspace, db: usize, args: &[&str]) -> String {
        let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
        String::from_utf8(crate::cmd::run_keyed(ks, db, false, &a)).unwrap()
    }

    fn call(ks: &mut Keyspace, args: &[&str]) -> String {
        call_db(ks, 0, args)
    }

    fn set(ks: &mut Keyspace, db: usize, k: &str, v: &str) {
        ks.set(
            db,
            k.as_bytes(),
            Value::Str(Str::from_bytes(v.as_bytes())),
            false,
        );
    }

    fn get(ks: &mut Keyspace, db: usize, k: &str) -> Option<Vec<u8>> {
        ks.get(db, k.as_bytes()).map(|v| match v {
            Value::Str(s) => s.as_bytes(&mut itoa::Buffer::new()).to_vec(),
            other => panic!("test expects a string, found {}", other.type_name()),
        })
    }

    #[test]
    fn table_is_consistent() {
        for c in COMMANDS {
            assert_eq!(c.name, c.name.to_ascii_lowercase());
            assert!(c.arity != 0);
        }
        let obj = COMMANDS.iter().find(|c| c.name == "object").unwrap();
        assert_eq!(obj.subs.len(), 5);
    }

    #[test]
    fn del_exists_touch_count() {
        let mut ks = ks();
        set(&mut ks, 0, "a", "1");
        set(&mut ks, 0, "b", "2");
        assert_eq!(call(&mut ks, &["EXISTS", "a", "a", "b", "nope"]), ":3\r\n");
        assert_eq!(call(&mut ks, &["TOUCH", "a", "nope"]), ":1\r\n");
        assert_eq!(call(&mut ks, &["DEL", "a", "a", "nope"]), ":1\r\n");
        assert_eq!(call(&mut ks, &["UNLINK", "b"]), ":1\r\n");
        assert_eq!(call(&mut ks, &["EXISTS", "a", "b"]), ":0\r\n");
        assert_eq!(
            call(&mut ks, &["DEL"]),
            "-ERR wrong number of arguments for 'del' command\r\n"
        );
    }

    #[test]
    fn type_reports_none_and_string() {
        let mut ks = ks();
        assert_eq!(call(&mut ks, &["TYPE", "k"]), "+none\r\n");
        set(&mut ks, 0, "k", "v");
        assert_eq!(call(&mut ks, &["TYPE", "k"]), "+string\r\n");
    }

    #[test]
    fn ttl_missing_and_persistent() {
        let mut ks = ks();
        for c in ["TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME"] {
            assert_eq!(call(&mut ks, &[c, "k"]), ":-2\r\n", "{c}");
        }
        set(&mut ks, 0, "k", "v");
        for c in ["TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME"] {
            assert_eq!(call(&mut ks, &[c, "k"]), ":-1\r\n", "{c}");
        }
        assert_eq!(call(&mut ks, &["PEXPIRE", "k", "1499"]), ":1\r\n");
        assert_eq!(call(&mut ks, &["PTTL", "k"]), ":1499\r\n");
        // Rounded to the nearest second.
        assert_eq!(call(&mut ks, &["TTL", "k"]), ":1\r\n");
        assert_eq!(
            call(&mut ks, &["PEXPIRETIME", "k"]),
            format!(":{}\r\n", NOW + 1499)
        );
        assert_eq!(
            call(&mut ks, &["EXPIRETIME", "k"]),
            format!(":{}\r\n", (NOW + 1499 + 500) / 1000)
        );
        assert_eq!(call(&mut ks, &["PERSIST", "k"]), ":1\r\n");
        assert_eq!(call(&mut ks, &["PERSIST", "k"]), ":0\r\n");
        assert_eq!(call(&mut ks, &["PERSIST", "missing"]), ":0\r\n");
        assert_eq!(call(&mut ks, &["TTL", "k"]), ":-1\r\n");
    }

    #[test]
    fn expire_conditions() {
        let mut ks = ks();
        assert_eq!(call(&mut ks, &["EXPIRE", "k", "100"]), ":0\r\n");
        set(&mut ks, 0, "k", "v");
        // No TTL: XX and GT fail, LT succeeds (no TTL = infinite).
        assert_eq!(call(&mut ks, &["EXPIRE", "k", "100", "XX"]), ":0\r\n");
        assert_eq!(call(&mut ks, &["EXPIRE", "k", "100", "GT"]), ":0\r\n");
        assert_eq!(call(&mut ks, &["EXPIRE", "k", "100", "lt"]), ":1\r\n");
        assert_eq!(call(&mut ks, &["EXPIRE", "k", "200", "NX"]), ":0\r\n");
        assert_eq!(call(&mut ks, &["EXPIRE", "k", "200", "XX"]), ":1\r\n");
        assert_eq!(call(&mut ks, &["EXPIRE", "k", "100", "GT"]), ":0\r\n");
        assert_eq!(call(&mut ks, &["EXPIRE", "k", "200", "GT"]), ":0\r\n");
        assert_eq!(call(&mut ks, &["EXPIRE", "k", "300", "GT"]), ":1\r\n");
        assert_eq!(call(&mut ks, &["EXPIRE", "k", "400", "LT"]), ":0\r\n");
        assert_eq!(call(&mut ks, &["EXPIRE", "k", "150", "LT", "XX"]), ":1\r\n");
        assert_eq!(call(&mut ks, &["TTL", "k"]), ":150\r\n");
        assert_eq!(ks.get_expire(0, b"k"), Some(NOW + 150_000));
        set(&mut ks, 0, "n", "v");
        assert_eq!(call(&mut ks, &["EXPIRE", "n", "100", "NX"]), ":1\r\n");
        let at = (NOW / 1000 + 50).to_string();
        assert_eq!(call(&mut ks, &["EXPIREAT", "n", &at]), ":1\r\n");
        assert_eq!(ks.get_expire(0, b"n"), Some((NOW / 1000 + 50) * 1000));
        let pat = (NOW + 777).to_string();
        assert_eq!(call(&mut ks, &["PEXPIREAT", "n", &pat]), ":1\r\n");
        assert_eq!(call(&mut ks, &["PTTL", "n"]), ":777\r\n");
    }

    #[test]
    fn expire_errors_in_redis_order() {
        let mut ks = ks();
        set(&mut ks, 0, "k", "v");
        assert_eq!(
            call(&mut ks, &["EXPIRE", "k", "100", "NX", "XX"]),
            "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n"
        );
        assert_eq!(
            call(&mut ks, &["EXPIRE", "k", "100", "NX", "GT"]),
            "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n"
        );
        assert_eq!(
            call(&mut ks, &["EXPIRE", "k", "100", "GT", "LT"]),
            "-ERR GT and LT options at the same time are not compatible\r\n"
        );
        // Options are checked before the number, even on a missing key.
        assert_eq!(
            call(&mut ks, &["EXPIRE", "missing", "abc", "FOO"]),
            "-ERR Unsupported option FOO\r\n"
        );
        assert_eq!(
            call(&mut ks, &["EXPIRE", "k", "abc"]),
            "-ERR value is not an integer or out of range\r\n"
        );
        assert_eq!(
            call(&mut ks, &["EXPIRE", "k", "9223372036854775807"]),
            "-ERR invalid expire time in 'expire' command\r\n"
        );
        assert_eq!(
            call(&mut ks, &["pexpire", "k", "9223372036854775807"]),
            "-ERR invalid expire time in 'pexpire' command\r\n"
        );
        assert_eq!(
            call(&mut ks, &["EXPIREAT", "k", "-9223372036854775808"]),
            "-ERR invalid expire time in 'expireat' command\r\n"
        );
        assert_eq!(
            call(&mut ks, &["EXPIRE", "k"]),
            "-ERR wrong number of arguments for 'expire' command\r\n"
        );
        assert_eq!(call(&mut ks, &["TTL", "k"]), ":-1\r\n");
    }

    #[test]
    fn non_positive_ttl_deletes() {
        let mut ks = ks();
        set(&mut ks, 0, "k", "v");
        assert_eq!(call(&mut ks, &["EXPIRE", "k", "0"]), ":1\r\n");
        assert_eq!(call(&mut ks, &["EXISTS", "k"]), ":0\r\n");
        set(&mut ks, 0, "k", "v");
        assert_eq!(call(&mut ks, &["PEXPIRE", "k", "-5"]), ":1\r\n");
        assert_eq!(call(&mut ks, &["EXISTS", "k"]), ":0\r\n");
        set(&mut ks, 0, "k", "v");
        assert_eq!(call(&mut ks, &["PEXPIREAT", "k", "-1"]), ":1\r\n");
        assert_eq!(call(&mut ks, &["TTL", "k"]), ":-2\r\n");
        // A key whose deadline passed is missing for EXPIRE.
        set(&mut ks, 0, "k", "v");
        assert_eq!(call(&mut ks, &["PEXPIRE", "k", "10"]), ":1\r\n");
        ks.now += 10;
        assert_eq!(call(&mut ks, &["EXPIRE", "k", "10"]), ":0\r\n");
        assert_eq!(call(&mut ks, &["PTTL", "k"]), ":-2\r\n");
    }

    #[test]
    fn rename_and_renamenx() {
        let mut ks = ks();
        assert_eq!(call(&mut ks, &["RENAME", "a", "b"]), "-ERR no such key\r\n");
        assert_eq!(
            call(&mut ks, &["RENAMENX", "a", "b"]),
            "-ERR no such key\r\n"
        );
        assert_eq!(call(&mut ks, &["RENAME", "a", "a"]), "-ERR no such key\r\n");
        set(&mut ks, 0, "a", "va");
        assert_eq!(call(&mut ks, &["EXPIRE", "a", "100"]), ":1\r\n");
        assert_eq!(call(&mut ks, &["RENAME", "a", "b"]), "+OK\r\n");
        assert_eq!(get(&mut ks, 0, "a"), None);
        assert_eq!(get(&mut ks, 0, "b"), Some(b"va".to_vec()));
        assert_eq!(call(&mut ks, &["TTL", "b"]), ":100\r\n");
        assert_eq!(call(&mut ks, &["RENAME", "b", "b"]), "+OK\r\n");
        assert_eq!(call(&mut ks, &["RENAMENX", "b", "b"]), ":0\r\n");
        set(&mut ks, 0, "c", "vc");
        assert_eq!(call(&mut ks, &["RENAMENX", "b", "c"]), ":0\r\n");
        assert_eq!(get(&mut ks, 0, "c"), Some(b"vc".to_vec()));
        assert_eq!(call(&mut ks, &["RENAMENX", "b", "a"]), ":1\r\n");
        // RENAME over a volatile key: the destination takes the source's
        // (absent) TTL.
        assert_eq!(call(&mut ks, &["EXPIRE", "c", "100"]), ":1\r\n");
        assert_eq!(call(&mut ks, &["PERSIST", "a"]), ":1\r\n");
        assert_eq!(call(&mut ks, &["RENAME", "a", "c"]), "+OK\r\n");
        assert_eq!(get(&mut ks, 0, "c"), Some(b"va".to_vec()));
        assert_eq!(call(&mut ks, &["TTL", "c"]), ":-1\r\n");
        assert_eq!(ks.db_len(0), 1);
    }

    #[test]
    fn copy_replace_and_db() {
        let mut ks = ks();
        assert_eq!(call(&mut ks, &["COPY", "missing", "a"]), ":0\r\n");
        set(&mut ks, 0, "s", "v1");
        assert_eq!(call(&mut ks, &["PEXPIRE", "s", "5000"]), ":1\r\n");
        set(&mut ks, 0, "d", "old");
        assert_eq!(call(&mut ks, &["COPY", "s", "d"]), ":0\r\n");
        assert_eq!(get(&mut ks, 0, "d"), Some(b"old".to_vec()));
        assert_eq!(call(&mut ks, &["COPY", "s", "d", "REPLACE"]), ":1\r\n");
        assert_eq!(get(&mut ks, 0, "d"), Some(b"v1".to_vec()));
        assert_eq!(call(&mut ks, &["PTTL", "d"]), ":5000\r\n");
        assert_eq!(get(&mut ks, 0, "s"), Some(b"v1".to_vec()));
        assert_eq!(
            call(&mut ks, &["COPY", "s", "s"]),
            "-ERR source and destination objects are the same\r\n"
        );
        assert_eq!(
            call(&mut ks, &["COPY", "s", "s", "DB", "0"]),
            "-ERR source and destination objects are the same\r\n"
        );
        assert_eq!(call(&mut ks, &["COPY", "s", "s", "DB", "3"]), ":1\r\n");
        assert_eq!(get(&mut ks, 3, "s"), Some(b"v1".to_vec()));
        assert_eq!(call_db(&mut ks, 3, &["PTTL", "s"]), ":5000\r\n");
        assert_eq!(
            call(&mut ks, &["COPY", "s", "x", "DB", "16"]),
            "-ERR DB index is out of range\r\n"
        );
        assert_eq!(
            call(&mut ks, &["COPY", "s", "x", "DB", "-1"]),
            "-ERR DB index is out of range\r\n"
        );
        assert_eq!(
            call(&mut ks, &["COPY", "s", "x", "DB", "nope"]),
            "-ERR value is not an integer or out of range\r\n"
        );
        assert_eq!(
            call(&mut ks, &["COPY", "s", "x", "DB"]),
            "-ERR syntax error\r\n"
        );
        assert_eq!(
            call(&mut ks, &["COPY", "s", "x", "BOGUS"]),
            "-ERR syntax error\r\n"
        );
        // The copy keeps the encoding and is independent of the source.
        set(&mut ks, 0, "n", "42");
        assert_eq!(call(&mut ks, &["COPY", "n", "m"]), ":1\r\n");
        assert_eq!(call(&mut ks, &["OBJECT", "ENCODING", "m"]), "$3\r\nint\r\n");
        set(&mut ks, 0, "n", "43");
        assert_eq!(get(&mut ks, 0, "m"), Some(b"42".to_vec()));
    }

    #[test]
    fn move_between_dbs() {
        let mut ks = ks();
        set(&mut ks, 0, "k", "v");
        assert_eq!(call(&mut ks, &["PEXPIRE", "k", "9000"]), ":1\r\n");
        assert_eq!(call(&mut ks, &["MOVE", "k", "1"]), ":1\r\n");
        assert_eq!(call(&mut ks, &["EXISTS", "k"]), ":0\r\n");
        assert_eq!(get(&mut ks, 1, "k"), Some(b"v".to_vec()));
        assert_eq!(call_db(&mut ks, 1, &["PTTL", "k"]), ":9000\r\n");
        set(&mut ks, 0, "k", "again");
        assert_eq!(call(&mut ks, &["MOVE", "k", "1"]), ":0\r\n");
        assert_eq!(get(&mut ks, 0, "k"), Some(b"again".to_vec()));
        assert_eq!(call(&mut ks, &["MOVE", "missing", "1"]), ":0\r\n");
        assert_eq!(
            call(&mut ks, &["MOVE", "k", "0"]),
            "-ERR source and destination objects are the same\r\n"
        );
        assert_eq!(
            call(&mut ks, &["MOVE", "missing", "0"]),
            "-ERR source and destination objects are the same\r\n"
        );
        assert_eq!(
            call(&mut ks, &["MOVE", "k", "99"]),
            "-ERR DB index is out of range\r\n"
        );
        assert_eq!(
            call(&mut ks, &["MOVE", "k", "x"]),
            "-ERR value is not an integer or out of range\r\n"
        );
        assert_eq!(
            call(&mut ks, &["MOVE", "k", "4294967296"]),
            "-ERR value is not an integer or out of range\r\n"
        );
    }

    #[test]
    fn object_subcommands() {
        let mut ks = ks();
        set(&mut ks, 0, "n", "12345");
        set(&mut ks, 0, "big", "12345678901234567890");
        set(&mut ks, 0, "s", "hello");
        set(&mut ks, 0, "r", &"x".repeat(45));
        assert_eq!(call(&mut ks, &["OBJECT", "ENCODING", "n"]), "$3\r\nint\r\n");
        assert_eq!(
            call(&mut ks, &["object", "encoding", "big"]),
            "$6\r\nembstr\r\n"
        );
        assert_eq!(
            call(&mut ks, &["OBJECT", "ENCODING", "s"]),
            "$6\r\nembstr\r\n"
        );
        assert_eq!(call(&mut ks, &["OBJECT", "ENCODING", "r"]), "$3\r\nraw\r\n");
        assert_eq!(call(&mut ks, &["OBJECT", "ENCODING", "missing"]), "$-1\r\n");
        assert_eq!(call(&mut ks, &["OBJECT", "REFCOUNT", "missing"]), "$-1\r\n");
        assert_eq!(call(&mut ks, &["OBJECT", "REFCOUNT", "s"]), ":1\r\n");
        assert_eq!(call(&mut ks, &["OBJECT", "REFCOUNT", "n"]), ":1\r\n");
        set(&mut ks, 0, "small", "7");
        assert_eq!(
            call(&mut ks, &["OBJECT", "REFCOUNT", "small"]),
            ":2147483647\r\n"
        );
        assert_eq!(call(&mut ks, &["OBJECT", "IDLETIME", "s"]), ":0\r\n");
        assert_eq!(call(&mut ks, &["OBJECT", "FREQ", "missing"]), "$-1\r\n");
        assert_eq!(
            call(&mut ks, &["OBJECT", "FREQ", "s"]),
            format!("-{E_NOT_LFU}\r\n")
        );
        assert_eq!(
            call(&mut ks, &["OBJECT", "ENCODING"]),
            "-ERR wrong number of arguments for 'object|encoding' command\r\n"
        );
        assert_eq!(
            call(&mut ks, &["OBJECT", "HELP", "x"]),
            "-ERR wrong number of arguments for 'object|help' command\r\n"
        );
        assert_eq!(
            call(&mut ks, &["OBJECT", "FOO", "n"]),
            "-ERR unknown subcommand 'FOO'. Try OBJECT HELP.\r\n"
        );
        assert_eq!(
            call(&mut ks, &["OBJECT"]),
            "-ERR wrong number of arguments for 'object' command\r\n"
        );
        let help = call(&mut ks, &["OBJECT", "help"]);
        assert!(help.starts_with(
            "*15\r\n+OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:\r\n"
        ));
        assert!(help.ends_with("+HELP\r\n+    Print this help.\r\n"));
    }

    #[test]
    fn keys_skip_expired_without_deleting() {
        let mut ks = ks();
        for k in ["foo", "foobar", "fxo", "hello", "a*b"] {
            set(&mut ks, 0, k, "1");
        }
        ks.set_with_expire(0, b"fold", Value::Str(Str::from_bytes(b"x")), NOW + 1);
        let sorted = |mut v: Vec<Vec<u8>>| {
            v.sort();
            v
        };
        assert_eq!(
            sorted(keys_matching(&ks, 0, b"f*")),
            vec![
                b"fold".to_vec(),
                b"foo".to_vec(),
                b"foobar".to_vec(),
                b"fxo".to_vec()
            ]
        );
        ks.now = NOW + 1;
        assert_eq!(
            sorted(keys_matching(&ks, 0, b"f*")),
            vec![b"foo".to_vec(), b"foobar".to_vec(), b"fxo".to_vec()]
        );
        assert_eq!(ks.db_len(0), 6);
        assert_eq!(keys_matching(&ks, 0, b"a\\*b"), vec![b"a*b".to_vec()]);
        assert_eq!(keys_matching(&ks, 0, b"*").len(), 5);
        assert!(keys_matching(&ks, 1, b"*").is_empty());
    }

    #[test]
    fn scan_visits_every_key_once_through_the_cursor() {
        let mut ks = ks();
        for i in 0..500 {
            set(&mut ks, 0, &format!("scan:{i}"), "v");
        }
        let opts = parse_scan_opts(&[b"COUNT", b"10"]).unwrap();
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0;
        let mut calls = 0;
        loop {
            let (next, keys) = scan_keys(&mut ks, 0, cursor, &opts);
            calls += 1;
            seen.extend(keys);
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        assert_eq!(seen.len(), 500);
        assert!(calls > 1);

        let opts = parse_scan_opts(&[b"MATCH", b"scan:1?", b"count", b"1000"]).unwrap();
        let (next, mut keys) = scan_keys(&mut ks, 0, 0, &opts);
        keys.sort();
        let mut want: Vec<Vec<u8>> = (10..20).map(|i| format!("scan:{i}").into_bytes()).collect();
        want.sort();
        assert_eq!((next, keys), (0, want));
        let opts = parse_scan_opts(&[b"TYPE", b"STRING", b"COUNT", b"1000"]).unwrap();
        assert_eq!(scan_keys(&mut ks, 0, 0, &opts).1.len(), 500);
        let opts = parse_scan_opts(&[b"TYPE", b"list", b"COUNT", b"1000"]).unwrap();
        assert!(scan_keys(&mut ks, 0, 0, &opts).1.is_empty());

        // Expired keys are left out and deleted.
        ks.set_with_expire(0, b"scan:0", Value::Str(Str::from_bytes(b"v")), NOW + 5);
        ks.now = NOW + 5;
        let opts = parse_scan_opts(&[b"COUNT", b"100000"]).unwrap();
        assert_eq!(scan_keys(&mut ks, 0, 0, &opts).1.len(), 499);
        assert_eq!(ks.db_len(0), 499);
    }

    #[test]
    fn scan_argument_errors() {
        assert_eq!(crate::util::parse_scan_cursor(b"0"), Some(0));
        assert_eq!(
            crate::util::parse_scan_cursor(b"18446744073709551615"),
            Some(u64::MAX)
        );
        assert_eq!(
            crate::util::parse_scan_cursor(b"18446744073709551616"),
            None
        );
        assert_eq!(crate::util::parse_scan_cursor(b"abc"), None);
        assert_eq!(crate::util::parse_scan_cursor(b" 1"), None);
        assert_eq!(crate::util::parse_scan_cursor(b"1 "), None);
        assert_eq!(crate::util::parse_scan_cursor(b"+5"), Some(5));
        assert_eq!(crate::util::parse_scan_cursor(b"-1"), Some(u64::MAX));
        assert_eq!(crate::util::parse_scan_cursor(b"-"), None);
        assert_eq!(parse_scan_opts(&[b"COUNT", b"0"]).err(), Some(E_SYNTAX));
        assert_eq!(parse_scan_opts(&[b"COUNT", b"x"]).err(), Some(E_NOT_INT));
        assert_eq!(parse_scan_opts(&[b"BOGUS", b"1"]).err(), Some(E_SYNTAX));
        assert_eq!(parse_scan_opts(&[b"MATCH"]).err(), Some(E_SYNTAX));
        let o = parse_scan_opts(&[b"match", b"*", b"type", b"hash"]).unwrap();
        assert_eq!((o.count, o.pat, o.typ), (10, None, Some(b"hash".to_vec())));
    }

    #[test]
    fn scan_cursor_encodes_the_shard() {
        assert_eq!(shard_bits(1), 0);
        assert_eq!(shard_bits(2), 1);
        assert_eq!(shard_bits(3), 2);
        assert_eq!(shard_bits(4), 2);
        assert_eq!(shard_bits(5), 3);
        // One shard: Redis's own cursor.
        assert_eq!(next_scan_cursor(12, 0, 1), 12);
        assert_eq!(next_scan_cursor(0, 0, 1), 0);
        // Several: dict cursor above the shard bits, then the next shard.
        assert_eq!(next_scan_cursor(12, 1, 3), (12 << 2) | 1);
        assert_eq!(next_scan_cursor(0, 1, 3), 2);
        assert_eq!(next_scan_cursor(0, 2, 3), 0);
    }

    #[test]
    fn flush_and_swapdb_argument_checks() {
        assert_eq!(flush_mode(&[b"FLUSHDB"], false), Some(false));
        assert_eq!(flush_mode(&[b"FLUSHDB"], true), Some(true));
        assert_eq!(flush_mode(&[b"FLUSHDB", b"async"], false), Some(true));
        assert_eq!(flush_mode(&[b"FLUSHALL", b"SYNC"], true), Some(false));
        assert_eq!(flush_mode(&[b"FLUSHDB", b"BOGUS"], false), None);
        assert_eq!(flush_mode(&[b"FLUSHDB", b"SYNC", b"SYNC"], false), None);
        assert_eq!(parse_db(b"15", 16, E_NOT_INT), Ok(15));
        assert_eq!(parse_db(b"16", 16, E_NOT_INT), Err(E_DB_RANGE));
        assert_eq!(
            parse_db(b"x", 16, "ERR invalid first DB index"),
            Err("ERR invalid first DB index")
        );
    }
}
