//! Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH. The queueing
//! happens in dispatch (shard/mod.rs), the execution and the WATCH
//! records in shard/exec.rs and shard/watch.rs.

use super::*;
use crate::conn::MultiState;

const TX: &str = "transactions";

macro_rules! spec {
    ($name:expr, $arity:expr, $flags:expr, ($f:expr, $l:expr, $s:expr), $acl:expr, $since:expr,
     $run:expr, $summary:expr) => {
        CmdSpec {
            name: $name,
            arity: $arity,
            flags: $flags,
            first_key: $f,
            last_key: $l,
            step: $s,
            group: TX,
            acl: $acl,
            summary: $summary,
            since: $since,
            run: Run::Srv($run),
            subs: &[],
            getkeys: None,
        }
    };
}

const BASE: u32 = NOSCRIPT | LOADING | STALE;

#[rustfmt::skip]
pub static COMMANDS: &[CmdSpec] = &[
    spec!("multi", 1, BASE | FAST | ALLOW_BUSY, (0, 0, 0), "@fast @transaction", "1.2.0", multi,
        "Mark the start of a transaction block"),
    spec!("exec", 1, BASE, (0, 0, 0), "@slow @transaction", "1.2.0", exec,
        "Execute all commands issued after MULTI"),
    spec!("discard", 1, BASE | FAST | ALLOW_BUSY, (0, 0, 0), "@fast @transaction", "2.0.0", discard,
        "Discard all commands issued after MULTI"),
    spec!("watch", -2, BASE | FAST | ALLOW_BUSY, (1, -1, 1), "@fast @transaction", "2.2.0", watch,
        "Watch the given keys to determine execution of the MULTI/EXEC block"),
    spec!("unwatch", 1, BASE | FAST | ALLOW_BUSY, (0, 0, 0), "@fast @transaction", "2.2.0", unwatch,
        "Forget about all watched keys"),
];

fn multi(c: &mut SrvCtx, _args: &[&[u8]]) {
    if c.conn.multi.is_some() {
        return c.out.err("MULTI calls can not be nested");
    }
    c.conn.multi = Some(Box::default());
    c.out.ok();
}

fn exec(c: &mut SrvCtx, _args: &[&[u8]]) {
    let Some(m) = c.conn.multi.take() else {
        return c.out.err("EXEC without MULTI");
    };
    c.sh.run_exec(c.conn, &mut c.out, *m);
}

fn discard(c: &mut SrvCtx, _args: &[&[u8]]) {
    if c.conn.multi.take().is_none() {
        return c.out.err("DISCARD without MULTI");
    }
    let w = std::mem::take(&mut c.conn.watched);
    c.sh.unwatch_keys(c.conn.id, w);
    c.out.ok();
}

fn watch(c: &mut SrvCtx, args: &[&[u8]]) {
    if c.conn.multi.is_some() {
        return c.out.err("WATCH inside MULTI is not allowed");
    }
    c.sh.watch_keys(c.conn, &args[1..]);
    c.out.ok();
}

fn unwatch(c: &mut SrvCtx, _args: &[&[u8]]) {
    let w = std::mem::take(&mut c.conn.watched);
    c.sh.unwatch_keys(c.conn.id, w);
    c.out.ok();
}

/// RESET and friends: leaves MULTI and forgets the watched keys.
pub fn reset_tx(c: &mut SrvCtx) {
    c.conn.multi = None::<Box<MultiState>>;
    let w = std::mem::take(&mut c.conn.watched);
    c.sh.unwatch_keys(c.conn.id, w);
}
