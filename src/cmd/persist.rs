//! Persistence commands: SAVE, BGSAVE, DUMP, RESTORE (LASTSAVE lives with
//! the server commands). The snapshot machinery is in src/persist.rs and
//! src/shard/snapshot.rs; the RDB format in src/rdb.

use std::sync::atomic::Ordering;

use crate::cmd::{CmdSpec, Ctx, Run, SrvCtx, ADMIN, DENYOOM, NOSCRIPT, NO_MULTI, READONLY, WRITE};
use crate::rdb::{decode, encode};
use crate::types::Value;
use crate::util::{eq_ic, parse_i64};

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

#[rustfmt::skip]
pub static COMMANDS: &[CmdSpec] = &[
    spec!("save", 1, ADMIN | NOSCRIPT | NO_MULTI, (0, 0, 0), "server", "@admin @slow @dangerous",
        "1.0.0", Run::Srv(save_cmd), "Synchronously save the dataset to disk"),
    spec!("bgsave", -1, ADMIN | NOSCRIPT, (0, 0, 0), "server", "@admin @slow @dangerous", "1.0.0",
        Run::Srv(bgsave_cmd), "Asynchronously save the dataset to disk"),
    spec!("dump", 2, READONLY, (1, 1, 1), "generic", "@keyspace @read @slow", "2.6.0",
        Run::Key(dump_cmd), "Return a serialized version of the value stored at the specified key."),
    spec!("restore", -4, WRITE | DENYOOM, (1, 1, 1), "generic",
        "@keyspace @write @slow @dangerous", "2.6.0", Run::Key(restore_cmd),
        "Create a key using the provided serialized value, previously obtained using DUMP."),
];

const E_IN_PROGRESS: &str = "Background save already in progress";

/// SAVE: a snapshot serialized while every shard is held (the server is
/// blocked, as Redis's SAVE blocks it), written and fsynced before the
/// reply.
fn save_cmd(ctx: &mut SrvCtx, _args: &[&[u8]]) {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    if let Err(e) = ctx.sh.snapshot_start(true, Some(tx)) {
        return ctx.out.err(e);
    }
    match rx.recv() {
        Ok(Ok(())) => ctx.out.ok(),
        _ => ctx.out.error("ERR"),
    }
}

fn bgsave_cmd(ctx: &mut SrvCtx, args: &[&[u8]]) {
    let schedule = match args.len() {
        1 => false,
        2 if eq_ic(args[1], "schedule") => true,
        _ => return ctx.out.syntax(),
    };
    let st = &ctx.sh.g.persist;
    if st.in_progress.load(Ordering::SeqCst) {
        if schedule {
            st.scheduled.store(true, Ordering::SeqCst);
            return ctx.out.simple("Background saving scheduled");
        }
        return ctx.out.err(E_IN_PROGRESS);
    }
    match ctx.sh.snapshot_start(false, None) {
        Ok(()) => {
            crate::log::notice("Background saving started");
            ctx.out.simple("Background saving started")
        }
        Err(e) => ctx.out.err(e),
    }
}

fn dump_cmd(ctx: &mut Ctx, args: &[&[u8]]) {
    match ctx.ks.get(ctx.db, args[1]) {
        None => ctx.out.null(),
        Some(v) => {
            let p = encode::dump_payload(v, true);
            ctx.out.bulk(&p);
        }
    }
}

/// RESTORE key ttl payload [REPLACE] [ABSTTL] [IDLETIME s] [FREQ f], with
/// Redis's checks in Redis's order.
fn restore_cmd(ctx: &mut Ctx, args: &[&[u8]]) {
    let (db, key) = (ctx.db, args[1]);
    let (mut replace, mut absttl) = (false, false);
    let (mut idle, mut freq) = (None::<i64>, None::<i64>);
    let mut j = 4;
    while j < args.len() {
        let more = j + 1 < args.len();
        let a = args[j];
        if eq_ic(a, "replace") {
            replace = true;
        } else if eq_ic(a, "absttl") {
            absttl = true;
        } else if eq_ic(a, "idletime") && more && freq.is_none() {
            let Some(v) = parse_i64(args[j + 1]) else {
                return ctx.out.not_int();
            };
            if v < 0 {
                return ctx.out.err("Invalid IDLETIME value, must be >= 0");
            }
            idle = Some(v);
            j += 1;
        } else if eq_ic(a, "freq") && more && idle.is_none() {
            let Some(v) = parse_i64(args[j + 1]) else {
                return ctx.out.not_int();
            };
            if !(0..=255).contains(&v) {
                return ctx.out.err("Invalid FREQ value, must be >= 0 and <= 255");
            }
            freq = Some(v);
            j += 1;
        } else {
            return ctx.out.syntax();
        }
        j += 1;
    }
    if !replace && ctx.ks.exists(db, key) {
        return ctx.out.error("BUSYKEY Target key name already exists.");
    }
    let Some(ttl) = parse_i64(args[2]) else {
        return ctx.out.not_int();
    };
    if ttl < 0 {
        return ctx.out.err("Invalid TTL value, must be >= 0");
    }
    let value = match decode::restore_payload(args[3], &ctx.ks.enc) {
        Ok(v) => v,
        Err(decode::RestoreError::VersionOrChecksum) => {
            return ctx.out.err("DUMP payload version or checksum are wrong")
        }
        Err(decode::RestoreError::BadFormat) => return ctx.out.err("Bad data format"),
    };
    let deleted = replace && ctx.ks.delete(db, key);
    let mut at = ttl as u64;
    if ttl > 0 && !absttl {
        at = at.saturating_add(ctx.ks.now);
    }
    if ttl > 0 && at <= ctx.ks.now {
        // Already expired: the key is not created (an old one is deleted).
        if deleted {
            ctx.ks.notify(crate::notify::GENERIC, "del", db, key);
        }
        return ctx.out.ok();
    }
    let signal = matches!(value, Value::List(_) | Value::ZSet(_) | Value::Stream(_));
    ctx.ks.put(db, key, value, (ttl > 0).then_some(at));
    // The access hints set the key's LRU/LFU word (each only under its
    // kind of policy, as in Redis).
    if let Some(s) = idle {
        ctx.ks.set_idle(db, key, s as u64);
    }
    if let Some(f) = freq {
        ctx.ks.set_freq(db, key, f as u32);
    }
    if signal {
        ctx.ks.signal_ready(db, key);
    }
    ctx.ks.notify(crate::notify::GENERIC, "restore", db, key);
    ctx.out.ok();
}
