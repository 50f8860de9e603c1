//! Pub/Sub commands: (P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE, PUBLISH, SPUBLISH
//! and the PUBSUB container. The subscription registry and the delivery
//! across shards live in shard/pubsub.rs.

use super::*;
use crate::shard::pubsub::{Kind, Sub};
use crate::sub;

const PS: &str = "pubsub";
const SUBF: u32 = PUBSUB | NOSCRIPT | LOADING | STALE;
const PUBF: u32 = PUBSUB | LOADING | STALE | FAST;

macro_rules! spec {
    ($name:expr, $arity:expr, $flags:expr, ($f:expr, $l:expr, $s:expr), $acl:expr, $since:expr,
     $run:expr, $subs:expr, $summary:expr) => {
        CmdSpec {
            name: $name,
            arity: $arity,
            flags: $flags,
            first_key: $f,
            last_key: $l,
            step: $s,
            group: PS,
            acl: $acl,
            summary: $summary,
            since: $since,
            run: Run::Srv($run),
            subs: $subs,
            getkeys: None,
        }
    };
}

#[rustfmt::skip]
pub static COMMANDS: &[CmdSpec] = &[
    spec!("subscribe", -2, SUBF, (0, 0, 0), "@pubsub @slow", "2.0.0", subscribe, &[], "Listen for messages published to the given channels"),
    spec!("unsubscribe", -1, SUBF, (0, 0, 0), "@pubsub @slow", "2.0.0", unsubscribe, &[], "Stop listening for messages posted to the given channels"),
    spec!("psubscribe", -2, SUBF, (0, 0, 0), "@pubsub @slow", "2.0.0", psubscribe, &[], "Listen for messages published to channels matching the given patterns"),
    spec!("punsubscribe", -1, SUBF, (0, 0, 0), "@pubsub @slow", "2.0.0", punsubscribe, &[], "Stop listening for messages posted to channels matching the given patterns"),
    spec!("ssubscribe", -2, SUBF, (1, -1, 1), "@pubsub @slow", "7.0.0", ssubscribe, &[], "Listen for messages published to the given shard channels"),
    spec!("sunsubscribe", -1, SUBF, (1, -1, 1), "@pubsub @slow", "7.0.0", sunsubscribe, &[], "Stop listening for messages posted to the given shard channels"),
    spec!("publish", 3, PUBF, (0, 0, 0), "@pubsub @fast", "2.0.0", publish, &[], "Post a message to a channel"),
    spec!("spublish", 3, PUBF, (1, 1, 1), "@pubsub @fast", "7.0.0", spublish, &[], "Post a message to a shard channel"),
    spec!("pubsub", -2, 0, (0, 0, 0), "@slow", "2.8.0", pubsub, PUBSUB_SUBS, "A container for Pub/Sub commands"),
];

#[rustfmt::skip]
static PUBSUB_SUBS: &[SubSpec] = &[
    sub!("channels", -2, PUBSUB | LOADING | STALE, "@pubsub @slow", "List active channels"),
    sub!("help", 2, LOADING | STALE, "@pubsub @slow", "Show helpful text about the different subcommands"),
    sub!("numpat", 2, PUBSUB | LOADING | STALE, "@pubsub @slow", "Get the count of unique patterns pattern subscriptions"),
    sub!("numsub", -2, PUBSUB | LOADING | STALE, "@pubsub @slow", "Get the count of subscribers for channels"),
    sub!("shardchannels", -2, PUBSUB | LOADING | STALE, "@pubsub @slow", "List active shard channels"),
    sub!("shardnumsub", -2, PUBSUB | LOADING | STALE, "@pubsub @slow", "Get the count of subscribers for shard channels"),
];

/// The commands a RESP2 client may send while subscribed.
pub fn allowed_when_subscribed(name: &str) -> bool {
    matches!(
        name,
        "subscribe"
            | "unsubscribe"
            | "psubscribe"
            | "punsubscribe"
            | "ssubscribe"
            | "sunsubscribe"
            | "ping"
            | "quit"
            | "reset"
    )
}

/// The subscription count a (un)subscribe confirmation carries: channels
/// and patterns together, shard channels apart (as Redis 7.0).
fn count(conn: &crate::conn::Conn, kind: Kind) -> i64 {
    match kind {
        Kind::Shard => conn.ssubs.len() as i64,
        _ => (conn.subs.len() + conn.psubs.len()) as i64,
    }
}

fn names_of(conn: &mut crate::conn::Conn, kind: Kind) -> &mut hashbrown::HashSet<Vec<u8>> {
    match kind {
        Kind::Channel => &mut conn.subs,
        Kind::Pattern => &mut conn.psubs,
        Kind::Shard => &mut conn.ssubs,
    }
}

fn confirm(c: &mut SrvCtx, what: &[u8], name: Option<&[u8]>, kind: Kind) {
    let n = count(c.conn, kind);
    c.out.push(3);
    c.out.bulk(what);
    match name {
        Some(ch) => c.out.bulk(ch),
        None => c.out.null(),
    }
    c.out.int(n);
}

fn sub_generic(c: &mut SrvCtx, args: &[&[u8]], kind: Kind, what: &[u8]) {
    let sub = Sub {
        idx: c.sh.current_idx().unwrap_or(u32::MAX),
        gen: c.conn.gen,
    };
    for &name in &args[1..] {
        if names_of(c.conn, kind).insert(name.to_vec()) {
            c.sh.ps_subscribe(kind, name, sub);
        }
        confirm(c, what, Some(name), kind);
    }
}

fn unsub_generic(c: &mut SrvCtx, args: &[&[u8]], kind: Kind, what: &[u8]) {
    let sub = Sub {
        idx: c.sh.current_idx().unwrap_or(u32::MAX),
        gen: c.conn.gen,
    };
    let names: Vec<Vec<u8>> = if args.len() > 1 {
        args[1..].iter().map(|a| a.to_vec()).collect()
    } else {
        let mut v: Vec<Vec<u8>> = names_of(c.conn, kind).iter().cloned().collect();
        v.sort();
        v
    };
    if names.is_empty() {
        return confirm(c, what, None, kind);
    }
    for name in names {
        if names_of(c.conn, kind).remove(&name) {
            c.sh.ps_unsubscribe(kind, &name, sub);
        }
        confirm(c, what, Some(&name), kind);
    }
}

fn subscribe(c: &mut SrvCtx, args: &[&[u8]]) {
    sub_generic(c, args, Kind::Channel, b"subscribe");
}
fn unsubscribe(c: &mut SrvCtx, args: &[&[u8]]) {
    unsub_generic(c, args, Kind::Channel, b"unsubscribe");
}
fn psubscribe(c: &mut SrvCtx, args: &[&[u8]]) {
    sub_generic(c, args, Kind::Pattern, b"psubscribe");
}
fn punsubscribe(c: &mut SrvCtx, args: &[&[u8]]) {
    unsub_generic(c, args, Kind::Pattern, b"punsubscribe");
}
fn ssubscribe(c: &mut SrvCtx, args: &[&[u8]]) {
    sub_generic(c, args, Kind::Shard, b"ssubscribe");
}
fn sunsubscribe(c: &mut SrvCtx, args: &[&[u8]]) {
    unsub_generic(c, args, Kind::Shard, b"sunsubscribe");
}

fn publish(c: &mut SrvCtx, args: &[&[u8]]) {
    let n = c.sh.ps_publish(false, args[1], args[2]);
    own_messages_first(c);
    c.out.int(n as i64);
}

fn spublish(c: &mut SrvCtx, args: &[&[u8]]) {
    let n = c.sh.ps_publish(true, args[1], args[2]);
    own_messages_first(c);
    c.out.int(n as i64);
}

/// A (RESP3) client publishing to a channel it is subscribed to gets the
/// message before the reply, as in Redis.
fn own_messages_first(c: &mut SrvCtx) {
    if c.sh.pubsub.held.is_empty() {
        return;
    }
    let me = c.sh.current_idx();
    let resp3 = c.conn.resp3;
    let held = std::mem::take(&mut c.sh.pubsub.held);
    for (sub, kind, pat, ch, msg) in held {
        if Some(sub.idx) == me && sub.gen == c.conn.gen {
            c.out.raw(&crate::shard::pubsub::frame(
                resp3,
                kind,
                pat.as_deref(),
                &ch,
                &msg,
            ));
        } else {
            c.sh.pubsub.held.push((sub, kind, pat, ch, msg));
        }
    }
}

/// Leaves every subscription (RESET).
pub fn unsubscribe_all(c: &mut SrvCtx) {
    let idx = c.sh.current_idx().unwrap_or(u32::MAX);
    c.sh.ps_drop_conn(c.conn, idx);
}

fn list_names(c: &mut SrvCtx, args: &[&[u8]], kind: Kind) {
    let pat = args.get(2).copied();
    let mut names: Vec<Vec<u8>> =
        c.sh.pubsub
            .names(kind)
            .filter(|n| pat.is_none_or(|p| crate::util::glob_match(p, n, false)))
            .cloned()
            .collect();
    names.sort();
    c.out.array(names.len());
    for n in names {
        c.out.bulk(&n);
    }
}

fn numsub(c: &mut SrvCtx, args: &[&[u8]], kind: Kind) {
    c.out.array((args.len() - 2) * 2);
    for &ch in &args[2..] {
        let n = c.sh.pubsub.count(kind, ch);
        c.out.bulk(ch);
        c.out.int(n as i64);
    }
}

fn pubsub(c: &mut SrvCtx, args: &[&[u8]]) {
    let Some(sub) = find_sub(&mut c.out, PUBSUB_SUBS, args) else {
        return;
    };
    match sub.name {
        "channels" if args.len() <= 3 => list_names(c, args, Kind::Channel),
        "shardchannels" if args.len() <= 3 => list_names(c, args, Kind::Shard),
        "numsub" => numsub(c, args, Kind::Channel),
        "shardnumsub" => numsub(c, args, Kind::Shard),
        "numpat" => {
            let n = c.sh.pubsub.names(Kind::Pattern).count();
            c.out.int(n as i64);
        }
        "help" => help_reply(
            &mut c.out,
            "PUBSUB",
            &[
                "CHANNELS [<pattern>]",
                "    List the channels that have subscribers (only those matching <pattern>).",
                "NUMPAT",
                "    Count the distinct patterns subscribed to.",
                "NUMSUB [<channel> ...]",
                "    For each channel, the number of its subscribers (pattern subscriptions",
                "    not included).",
                "SHARDCHANNELS [<pattern>]",
                "    List the shard channels that have subscribers (only those matching <pattern>).",
                "SHARDNUMSUB [<shardchannel> ...]",
                "    For each shard channel, the number of its subscribers.",
            ],
        ),
        _ => c.out.err(&format!(
            "unknown subcommand or wrong number of arguments for '{}'. Try PUBSUB HELP.",
            String::from_utf8_lossy(args[1])
        )),
    }
}
