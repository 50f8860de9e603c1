//! The HyperLogLog family (Redis's hyperloglog.c): PFADD, PFCOUNT, PFMERGE,
//! PFDEBUG and PFSELFTEST over strings in Redis's HLL format
//! ([`crate::types::hll`]).
//!
//! PFCOUNT of one key caches the estimate in the string's header (a write,
//! as in Redis, so the bytes stay identical). PFCOUNT of several keys and
//! PFMERGE on keys spread over several shards read every source under one
//! [`Shard::tx`] and, for PFMERGE, write the destination inside it.

use super::{CmdSpec, Ctx, Run, SrvCtx, ADMIN, DENYOOM, FAST, READONLY, WRITE};
use crate::resp::Out;
use crate::shard::keyspace::Keyspace;
use crate::shard::Shard;
use crate::types::hll::{self, Corrupt, E_CORRUPT, E_NOT_HLL, REGISTERS};
use crate::types::{Str, Value};

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
        group: "hyperloglog",
        acl,
        summary,
        since,
        run,
        subs: &[],
        getkeys: None,
    }
}

#[rustfmt::skip]
pub static COMMANDS: &[CmdSpec] = &[
    spec("pfadd", -2, WRITE | DENYOOM | FAST, (1, 1, 1), "@write @hyperloglog @fast", "2.8.9", Run::Key(pfadd), "Adds the specified elements to the specified HyperLogLog."),
    spec("pfcount", -2, READONLY, (1, -1, 1), "@read @hyperloglog @slow", "2.8.9", Run::KeyMulti(pfcount, pfcount_multi), "Return the approximated cardinality of the set(s) observed by the HyperLogLog at key(s)."),
    spec("pfdebug", 3, WRITE | DENYOOM | ADMIN, (2, 2, 1), "@write @hyperloglog @admin @slow @dangerous", "2.8.9", Run::Key(pfdebug), "Internal commands for debugging HyperLogLog values"),
    spec("pfmerge", -2, WRITE | DENYOOM, (1, -1, 1), "@write @hyperloglog @slow", "2.8.9", Run::KeyMulti(pfmerge, pfmerge_multi), "Merge N different HyperLogLogs into a single one."),
    spec("pfselftest", 1, ADMIN, (0, 0, 0), "@hyperloglog @admin @slow @dangerous", "2.8.9", Run::Srv(pfselftest), "An internal command for testing HyperLogLog values"),
];

/// Why a key cannot be read as an HLL.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Bad {
    WrongType,
    NotHll,
    Corrupt,
}

impl Bad {
    fn reply(self, out: &mut Out) {
        match self {
            Bad::WrongType => out.wrongtype(),
            Bad::NotHll => out.error(E_NOT_HLL),
            Bad::Corrupt => out.error(E_CORRUPT),
        }
    }
}

impl From<Corrupt> for Bad {
    fn from(_: Corrupt) -> Bad {
        Bad::Corrupt
    }
}

/// Checks a stored value is an HLL string (Redis's `isHLLObjectOrReply`).
fn check(v: &Value) -> Result<(), Bad> {
    match v {
        Value::Str(Str::Int(_)) => Err(Bad::NotHll),
        Value::Str(Str::Emb(b)) if !hll::is_valid(b) => Err(Bad::NotHll),
        Value::Str(Str::Raw(b)) if !hll::is_valid(b) => Err(Bad::NotHll),
        Value::Str(_) => Ok(()),
        _ => Err(Bad::WrongType),
    }
}

/// The HLL at `key` for modification (raw encoding): None when missing.
fn hll_mut<'a>(
    ks: &'a mut Keyspace,
    db: usize,
    key: &[u8],
) -> Result<Option<&'a mut Vec<u8>>, Bad> {
    match ks.get_mut(db, key) {
        None => Ok(None),
        Some(v) => {
            check(v)?;
            let Value::Str(s) = v else {
                return Err(Bad::WrongType);
            };
            Ok(Some(s.make_raw()))
        }
    }
}

/// Folds the HLL at `key` into `max`; returns whether it is dense, None
/// when the key is missing.
fn merge_key(
    ks: &mut Keyspace,
    db: usize,
    key: &[u8],
    max: &mut [u8],
) -> Result<Option<bool>, Bad> {
    let Some(v) = ks.get(db, key) else {
        return Ok(None);
    };
    check(v)?;
    let Value::Str(s) = v else {
        return Err(Bad::WrongType);
    };
    let mut tmp = itoa::Buffer::new();
    let b = s.as_bytes(&mut tmp);
    hll::merge_into(max, b)?;
    Ok(Some(!hll::is_sparse(b)))
}

/// The registers of one key and whether it is dense: None when missing.
type KeyRegs = Result<Option<(Vec<u8>, bool)>, Bad>;

fn key_regs(ks: &mut Keyspace, db: usize, key: &[u8]) -> KeyRegs {
    let mut max = vec![0u8; REGISTERS];
    Ok(merge_key(ks, db, key, &mut max)?.map(|dense| (max, dense)))
}

/// Keys of one shard with their positions in the command.
type KeyGroup = Vec<(usize, Vec<u8>)>;

/// Reads the registers of `keys` (in argument order) from their shards.
fn gather_regs(
    tx: &mut crate::shard::tx::Tx,
    db: usize,
    keys: Vec<Vec<u8>>,
    now: u64,
) -> Vec<KeyRegs> {
    let n = keys.len();
    let mut groups: Vec<(usize, KeyGroup)> = Vec::new();
    for (i, k) in keys.into_iter().enumerate() {
        let s = tx.sh.shard_of(&k);
        match groups.iter_mut().find(|g| g.0 == s) {
            Some(g) => g.1.push((i, k)),
            None => groups.push((s, vec![(i, k)])),
        }
    }
    let mut out: Vec<KeyRegs> = (0..n).map(|_| Ok(None)).collect();
    for (s, group) in groups {
        let got = tx.run(s, move |sh: &mut Shard| {
            sh.ks.now = now;
            group
                .into_iter()
                .map(|(i, k)| (i, key_regs(&mut sh.ks, db, &k)))
                .collect::<Vec<_>>()
        });
        for (i, r) in got {
            out[i] = r;
        }
    }
    out
}

// ----- PFADD ------------------------------------------------------------------

fn pfadd(ctx: &mut Ctx, args: &[&[u8]]) {
    let (db, key) = (ctx.db, args[1]);
    let max_bytes = ctx.ks.enc.hll_sparse_max_bytes;
    let s = match hll_mut(ctx.ks, db, key) {
        Err(e) => return e.reply(&mut ctx.out),
        Ok(Some(s)) => s,
        Ok(None) => {
            let mut s = hll::new_sparse();
            for e in &args[2..] {
                // A fresh HLL cannot be corrupted.
                let _ = hll::add(&mut s, e, max_bytes);
            }
            hll::invalidate(&mut s);
            ctx.ks.set(db, key, Value::Str(Str::Raw(s)), false);
            ctx.ks.notify(crate::notify::STRING, "pfadd", db, key);
            return ctx.out.int(1);
        }
    };
    let mut updated = 0u64;
    for e in &args[2..] {
        match hll::add(s, e, max_bytes) {
            Ok(true) => updated += 1,
            Ok(false) => {}
            Err(Corrupt) => {
                // Registers already raised stay raised, as in Redis.
                ctx.ks.touch_write(updated);
                return ctx.out.error(E_CORRUPT);
            }
        }
    }
    if updated > 0 {
        hll::invalidate(s);
        ctx.ks.touch_write(updated);
        ctx.ks.notify(crate::notify::STRING, "pfadd", db, key);
    }
    ctx.out.int((updated > 0) as i64);
}

// ----- PFCOUNT ------------------------------------------------------------------

fn pfcount(ctx: &mut Ctx, args: &[&[u8]]) {
    if args.len() > 2 {
        let mut max = vec![0u8; REGISTERS];
        for k in &args[1..] {
            if let Err(e) = merge_key(ctx.ks, ctx.db, k, &mut max) {
                return e.reply(&mut ctx.out);
            }
        }
        return ctx.out.int(hll::estimate(&hll::raw_histogram(&max)) as i64);
    }
    let (db, key) = (ctx.db, args[1]);
    // Counted as a read (keyspace hit or miss), then modified in place.
    if ctx.ks.get(db, key).is_none() {
        return ctx.out.int(0);
    }
    let s = match hll_mut(ctx.ks, db, key) {
        Err(e) => return e.reply(&mut ctx.out),
        Ok(None) => return ctx.out.int(0),
        Ok(Some(s)) => s,
    };
    if let Some(card) = hll::cached_card(s) {
        return ctx.out.int(card as i64);
    }
    let (h, invalid) = hll::histogram(s);
    if invalid {
        return ctx.out.error(E_CORRUPT);
    }
    let card = hll::estimate(&h);
    hll::set_card(s, card);
    ctx.ks.touch_write(1);
    ctx.out.int(card as i64);
}

fn pfcount_multi(ctx: &mut SrvCtx, args: &[&[u8]]) {
    let db = ctx.conn.db;
    let now = crate::util::now_ms();
    let keys: Vec<Vec<u8>> = args[1..].iter().map(|k| k.to_vec()).collect();
    let mut shards: Vec<usize> = keys.iter().map(|k| ctx.sh.shard_of(k)).collect();
    shards.sort_unstable();
    shards.dedup();
    let regs = ctx.sh.tx(&shards, move |tx| gather_regs(tx, db, keys, now));
    let mut max = vec![0u8; REGISTERS];
    for r in regs {
        match r {
            Err(e) => return e.reply(&mut ctx.out),
            Ok(None) => {}
            Ok(Some((regs, _))) => {
                for (m, r) in max.iter_mut().zip(regs) {
                    *m = (*m).max(r);
                }
            }
        }
    }
    ctx.out.int(hll::estimate(&hll::raw_histogram(&max)) as i64);
}

// ----- PFMERGE ------------------------------------------------------------------

/// Writes merged registers into the destination (created when missing),
/// dense when any source was dense. Err: the destination is corrupted.
fn merge_store(
    ks: &mut Keyspace,
    db: usize,
    dst: &[u8],
    max: &[u8],
    dense: bool,
) -> Result<(), Bad> {
    let max_bytes = ks.enc.hll_sparse_max_bytes;
    let created = match hll_mut(ks, db, dst)? {
        Some(_) => false,
        None => {
            ks.set(db, dst, Value::Str(Str::Raw(hll::new_sparse())), false);
            true
        }
    };
    let s = hll_mut(ks, db, dst)?.expect("destination exists");
    if dense && hll::is_sparse(s) {
        *s = hll::sparse_to_dense(s)?;
    }
    for (i, &m) in max.iter().enumerate() {
        if m > 0 {
            // As in Redis, a corrupted destination stops nothing here: its
            // sparse edits fail and the registers stay as they are.
            let _ = hll::set(s, i, m, max_bytes);
        }
    }
    hll::invalidate(s);
    if !created {
        ks.touch_write(1);
    }
    ks.notify(crate::notify::STRING, "pfadd", db, dst);
    Ok(())
}

fn pfmerge(ctx: &mut Ctx, args: &[&[u8]]) {
    let mut max = vec![0u8; REGISTERS];
    let mut dense = false;
    for k in &args[1..] {
        match merge_key(ctx.ks, ctx.db, k, &mut max) {
            Ok(d) => dense |= d == Some(true),
            Err(e) => return e.reply(&mut ctx.out),
        }
    }
    match merge_store(ctx.ks, ctx.db, args[1], &max, dense) {
        Ok(()) => ctx.out.ok(),
        Err(e) => e.reply(&mut ctx.out),
    }
}

fn pfmerge_multi(ctx: &mut SrvCtx, args: &[&[u8]]) {
    let db = ctx.conn.db;
    let now = crate::util::now_ms();
    let keys: Vec<Vec<u8>> = args[1..].iter().map(|k| k.to_vec()).collect();
    let dst = args[1].to_vec();
    let ds = ctx.sh.shard_of(&dst);
    let mut shards: Vec<usize> = keys.iter().map(|k| ctx.sh.shard_of(k)).collect();
    shards.sort_unstable();
    shards.dedup();
    let r = ctx.sh.tx(&shards, move |tx| {
        let mut max = vec![0u8; REGISTERS];
        let mut dense = false;
        for r in gather_regs(tx, db, keys, now) {
            if let Some((regs, d)) = r? {
                dense |= d;
                for (m, r) in max.iter_mut().zip(regs) {
                    *m = (*m).max(r);
                }
            }
        }
        tx.run(ds, move |sh: &mut Shard| {
            sh.ks.now = now;
            merge_store(&mut sh.ks, db, &dst, &max, dense)
        })
    });
    match r {
        Ok(()) => ctx.out.ok(),
        Err(e) => e.reply(&mut ctx.out),
    }
}

// ----- PFDEBUG / PFSELFTEST -----------------------------------------------------

fn pfdebug(ctx: &mut Ctx, args: &[&[u8]]) {
    let sub = args[1];
    let s = match hll_mut(ctx.ks, ctx.db, args[2]) {
        Ok(None) => return ctx.out.err("The specified key does not exist"),
        Err(e) => return e.reply(&mut ctx.out),
        Ok(Some(s)) => s,
    };
    let name = String::from_utf8_lossy(sub);
    let is = |n: &str| sub.eq_ignore_ascii_case(n.as_bytes());
    let mut converted = false;
    if is("getreg") || is("todense") {
        if hll::is_sparse(s) {
            match hll::sparse_to_dense(s) {
                Ok(d) => *s = d,
                Err(Corrupt) => return ctx.out.error(E_CORRUPT),
            }
            converted = true;
        }
        if is("getreg") {
            reply_regs(&mut ctx.out, s);
        } else {
            ctx.out.int(converted as i64);
        }
    } else if is("decode") {
        if !hll::is_sparse(s) {
            return ctx.out.err("HLL encoding is not sparse");
        }
        let text = hll::decode(s);
        ctx.out.bulk(text.as_bytes());
    } else if is("encoding") {
        ctx.out
            .simple(if hll::is_sparse(s) { "sparse" } else { "dense" });
    } else {
        ctx.out.err(&format!("Unknown PFDEBUG subcommand '{name}'"));
    }
    if converted {
        ctx.ks.touch_write(1);
    }
}

fn reply_regs(out: &mut Out, s: &[u8]) {
    out.array(REGISTERS);
    for i in 0..REGISTERS {
        out.int(hll::get_reg(&s[hll::HDR..], i) as i64);
    }
}

/// PFSELFTEST: register packing round trips, then sparse and dense HLLs
/// fed the same 10M elements must agree and stay within the error bound
/// at every power of ten.
fn pfselftest(ctx: &mut SrvCtx, _args: &[&[u8]]) {
    match selftest(ctx.sh.ks.enc.hll_sparse_max_bytes) {
        Ok(()) => ctx.out.ok(),
        Err(e) => ctx.out.error(&e),
    }
}

fn selftest(max_bytes: usize) -> Result<(), String> {
    let mut rng = crate::util::now_us() | 1;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut regs = vec![0u8; hll::DENSE_SIZE - hll::HDR];
    let mut want = vec![0u8; REGISTERS];
    for _ in 0..1000 {
        for (i, w) in want.iter_mut().enumerate() {
            *w = (next() & 63) as u8;
            hll::set_reg(&mut regs, i, *w);
        }
        for (i, &w) in want.iter().enumerate() {
            let got = hll::get_reg(&regs, i);
            if got != w {
                return Err(format!(
                    "TESTFAILED Register {i} should be {w} but is {got}"
                ));
            }
        }
    }
    let mut dense =
        hll::sparse_to_dense(&hll::new_sparse()).map_err(|_| "TESTFAILED".to_string())?;
    let mut sparse = hll::new_sparse();
    let relerr = 1.04 / (REGISTERS as f64).sqrt();
    let seed = next();
    let mut checkpoint: u64 = 1;
    for j in 1..=10_000_000u64 {
        let ele = (j ^ seed).to_ne_bytes();
        let _ = hll::add(&mut dense, &ele, max_bytes);
        let _ = hll::add(&mut sparse, &ele, max_bytes);
        if j != checkpoint {
            continue;
        }
        if (j as usize) < max_bytes / 2 && !hll::is_sparse(&sparse) {
            return Err("TESTFAILED sparse encoding not used".into());
        }
        let card = hll::estimate(&hll::histogram(&dense).0);
        if card != hll::estimate(&hll::histogram(&sparse).0) {
            return Err("TESTFAILED dense/sparse disagree".into());
        }
        let abserr = (checkpoint as i64 - card as i64).unsigned_abs();
        let maxerr = if j == 10 {
            1
        } else {
            (relerr * 6.0 * checkpoint as f64).ceil() as u64
        };
        if abserr > maxerr {
            return Err(format!(
                "TESTFAILED Too big error. card:{checkpoint} abserr:{abserr}"
            ));
        }
        checkpoint *= 10;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::run_keyed;

    fn run(ks: &mut Keyspace, args: &[&[u8]]) -> Vec<u8> {
        run_keyed(ks, 0, false, args)
    }

    #[test]
    fn pf_commands_follow_redis() {
        let mut ks = Keyspace::new(1);
        assert_eq!(run(&mut ks, &[b"pfadd", b"h", b"a", b"b", b"c"]), b":1\r\n");
        assert_eq!(run(&mut ks, &[b"pfadd", b"h", b"a"]), b":0\r\n");
        assert_eq!(run(&mut ks, &[b"pfcount", b"h"]), b":3\r\n");
        assert_eq!(run(&mut ks, &[b"pfadd", b"e"]), b":1\r\n");
        assert_eq!(run(&mut ks, &[b"pfcount", b"e", b"h", b"nokey"]), b":3\r\n");
        assert_eq!(
            run(&mut ks, &[b"pfdebug", b"encoding", b"h"]),
            b"+sparse\r\n"
        );
        assert_eq!(run(&mut ks, &[b"pfmerge", b"m", b"h", b"e"]), b"+OK\r\n");
        assert_eq!(run(&mut ks, &[b"pfcount", b"m"]), b":3\r\n");
        assert_eq!(run(&mut ks, &[b"set", b"s", b"12"]), b"+OK\r\n");
        let not_hll = format!("-{E_NOT_HLL}\r\n").into_bytes();
        assert_eq!(run(&mut ks, &[b"pfadd", b"s", b"x"]), not_hll);
        assert_eq!(run(&mut ks, &[b"pfcount", b"s"]), not_hll);
        assert_eq!(
            run(&mut ks, &[b"pfdebug", b"nope", b"nokey"]),
            b"-ERR The specified key does not exist\r\n"
        );
        assert_eq!(
            run(&mut ks, &[b"pfdebug", b"nope", b"h"]),
            b"-ERR Unknown PFDEBUG subcommand 'nope'\r\n"
        );
        assert_eq!(run(&mut ks, &[b"pfdebug", b"todense", b"h"]), b":1\r\n");
        assert_eq!(
            run(&mut ks, &[b"pfdebug", b"decode", b"h"]),
            b"-ERR HLL encoding is not sparse\r\n"
        );
        assert_eq!(run(&mut ks, &[b"pfcount", b"h"]), b":3\r\n");
        // A sparse string whose runs do not cover every register.
        let mut bad = hll::new_sparse();
        bad.truncate(hll::HDR);
        bad.push(0x80);
        hll::invalidate(&mut bad);
        assert_eq!(run(&mut ks, &[b"set", b"bad", &bad]), b"+OK\r\n");
        let corrupt = format!("-{E_CORRUPT}\r\n").into_bytes();
        assert_eq!(run(&mut ks, &[b"pfcount", b"bad"]), corrupt);
        assert_eq!(run(&mut ks, &[b"pfcount", b"bad", b"h"]), corrupt);
        assert_eq!(run(&mut ks, &[b"pfmerge", b"h", b"bad"]), corrupt);
        assert_eq!(run(&mut ks, &[b"pfdebug", b"getreg", b"bad"]), corrupt);
    }

    #[test]
    fn selftest_passes() {
        assert_eq!(selftest(3000), Ok(()));
    }
}
