//! Connection commands: PING, ECHO, SELECT, AUTH, HELLO, QUIT, RESET and
//! the CLIENT container.

use std::sync::atomic::Ordering;

use super::*;
use crate::conn::ReplyMode;
use crate::util::{eq_ic, parse_i64};
use crate::{cmd, sub};

const CONN: &str = "connection";

#[rustfmt::skip]
pub static COMMANDS: &[CmdSpec] = &[
    cmd!("ping", -1, FAST, (0, 0, 0), CONN, "@fast @connection", Run::Srv(ping), "Ping the server"),
    cmd!("echo", 2, FAST | LOADING | STALE, (0, 0, 0), CONN, "@fast @connection", Run::Srv(echo), "Echo the given string"),
    cmd!("select", 2, FAST | LOADING | STALE, (0, 0, 0), CONN, "@fast @connection", Run::Srv(select), "Change the selected database for the current connection"),
    cmd!("auth", -2, NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY, (0, 0, 0), CONN, "@fast @connection", Run::Srv(auth), "Authenticate to the server"),
    cmd!("hello", -1, NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY, (0, 0, 0), CONN, "@fast @connection", Run::Srv(hello), "Handshake with Redis"),
    cmd!("quit", -1, ALLOW_BUSY | NOSCRIPT | LOADING | STALE | FAST | NO_AUTH, (0, 0, 0), CONN, "@fast @connection", Run::Srv(quit), "Close the connection"),
    cmd!("reset", 1, NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY, (0, 0, 0), CONN, "@fast @connection", Run::Srv(reset), "Reset the connection"),
    CmdSpec {
        name: "client",
        arity: -2,
        flags: 0,
        first_key: 0,
        last_key: 0,
        step: 0,
        group: CONN,
        acl: "@slow",
        summary: "A container for client connection commands",
        since: "2.4.0",
        run: Run::Srv(client),
        subs: CLIENT_SUBS,
        getkeys: None,
    },
];

const ADM: u32 = ADMIN | NOSCRIPT | LOADING | STALE;
const NS: u32 = NOSCRIPT | LOADING | STALE;

static CLIENT_SUBS: &[SubSpec] = &[
    sub!(
        "caching",
        3,
        NS,
        "@slow @connection",
        "Instruct the server about tracking or not keys in the next request"
    ),
    sub!(
        "getredir",
        2,
        NS,
        "@slow @connection",
        "Get tracking notifications redirection client ID if any"
    ),
    sub!(
        "tracking",
        -3,
        NS,
        "@slow @connection",
        "Enable or disable server assisted client side caching support"
    ),
    sub!(
        "trackinginfo",
        2,
        NS,
        "@slow @connection",
        "Return information about server assisted client side caching for the current connection"
    ),
    sub!(
        "getname",
        2,
        NS,
        "@slow @connection",
        "Get the current connection name"
    ),
    sub!(
        "help",
        2,
        LOADING | STALE,
        "@slow @connection",
        "Show helpful text about the different subcommands"
    ),
    sub!(
        "id",
        2,
        NS,
        "@slow @connection",
        "Returns the client ID for the current connection"
    ),
    sub!(
        "info",
        2,
        NS,
        "@slow @connection",
        "Returns information about the current client connection."
    ),
    sub!(
        "kill",
        -3,
        ADM,
        "@admin @slow @dangerous @connection",
        "Kill the connection of a client"
    ),
    sub!(
        "list",
        -2,
        ADM,
        "@admin @slow @dangerous @connection",
        "Get the list of client connections"
    ),
    sub!(
        "no-evict",
        3,
        ADM,
        "@admin @slow @dangerous @connection",
        "Set client eviction mode for the current connection"
    ),
    sub!(
        "pause",
        -3,
        ADM,
        "@admin @slow @dangerous @connection",
        "Stop processing commands from clients for some time"
    ),
    sub!(
        "reply",
        3,
        NS,
        "@slow @connection",
        "Instruct the server whether to reply to commands"
    ),
    sub!(
        "setname",
        3,
        NS,
        "@slow @connection",
        "Set the current connection name"
    ),
    sub!(
        "unblock",
        -3,
        ADM,
        "@admin @slow @dangerous @connection",
        "Unblock a client blocked in a blocking command from a different connection"
    ),
    sub!(
        "unpause",
        2,
        ADM,
        "@admin @slow @dangerous @connection",
        "Resume processing of clients that were paused"
    ),
];

fn ping(c: &mut SrvCtx, args: &[&[u8]]) {
    if c.conn.subscribed() && !c.conn.resp3 && args.len() <= 2 {
        // In RESP2 Pub/Sub mode PING answers in the message format.
        c.out.array(2);
        c.out.bulk(b"pong");
        c.out.bulk(args.get(1).copied().unwrap_or(b""));
        return;
    }
    match args.len() {
        1 => c.out.simple("PONG"),
        2 => c.out.bulk(args[1]),
        _ => c.out.wrong_arity("ping"),
    }
}

fn echo(c: &mut SrvCtx, args: &[&[u8]]) {
    c.out.bulk(args[1]);
}

fn select(c: &mut SrvCtx, args: &[&[u8]]) {
    let Some(n) = parse_i64(args[1]) else {
        c.out.not_int();
        return;
    };
    if n < 0 || n as usize >= c.sh.ks.dbs.len() {
        c.out.err("DB index is out of range");
        return;
    }
    c.conn.db = n as usize;
    c.out.ok();
}

/// Checks a username/password pair against the default user.
fn check_auth(c: &mut SrvCtx, user: &[u8], pass: &[u8]) -> bool {
    if user != b"default" {
        return false;
    }
    match &c.sh.cfg.requirepass {
        None => true,
        Some(p) => p.as_slice() == pass,
    }
}

fn auth(c: &mut SrvCtx, args: &[&[u8]]) {
    if args.len() > 3 {
        c.out.syntax();
        return;
    }
    let (user, pass): (&[u8], &[u8]) = if args.len() == 2 {
        (b"default", args[1])
    } else {
        (args[1], args[2])
    };
    if args.len() == 2 && c.sh.cfg.requirepass.is_none() {
        c.out.err("AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?");
        return;
    }
    if check_auth(c, user, pass) {
        c.conn.authed = true;
        c.conn.user = String::from_utf8_lossy(user).into_owned();
        c.out.ok();
    } else {
        c.out
            .error("WRONGPASS invalid username-password pair or user is disabled.");
    }
}

fn valid_name(n: &[u8]) -> bool {
    n.iter().all(|&b| (b'!'..=b'~').contains(&b))
}

/// CLIENT SETNAME / HELLO SETNAME: printable ASCII without spaces; an
/// empty name removes it. On a bad name writes Redis's error, returns false.
fn set_name(c: &mut SrvCtx, n: &[u8]) -> bool {
    if !valid_name(n) {
        c.out
            .err("Client names cannot contain spaces, newlines or special characters.");
        return false;
    }
    c.conn.name = (!n.is_empty()).then(|| n.to_vec());
    true
}

fn hello(c: &mut SrvCtx, args: &[&[u8]]) {
    let mut ver = None;
    let mut i = 1;
    if args.len() >= 2 {
        match parse_i64(args[1]) {
            Some(v) => ver = Some(v),
            None => {
                c.out
                    .err("Protocol version is not an integer or out of range");
                return;
            }
        }
        i = 2;
        if !(2..=3).contains(&ver.unwrap_or(0)) {
            c.out.error("NOPROTO unsupported protocol version");
            return;
        }
    }
    // Options take effect in order, as in Redis 7.0: a name set before a
    // later option fails (or before the NOAUTH check) stays set.
    while i < args.len() {
        let more = args.len() - i - 1;
        if eq_ic(args[i], "auth") && more >= 2 {
            if !check_auth(c, args[i + 1], args[i + 2]) {
                c.out
                    .error("WRONGPASS invalid username-password pair or user is disabled.");
                return;
            }
            c.conn.authed = true;
            c.conn.user = String::from_utf8_lossy(args[i + 1]).into_owned();
            i += 3;
        } else if eq_ic(args[i], "setname") && more >= 1 {
            if !set_name(c, args[i + 1]) {
                return;
            }
            i += 2;
        } else {
            c.out.err(&format!(
                "Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(args[i])
            ));
            return;
        }
    }
    if !c.conn.authed {
        c.out.error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
        return;
    }
    if let Some(v) = ver {
        c.conn.resp3 = v == 3;
        c.out.resp3 = v == 3;
    }
    let out = &mut c.out;
    out.map(7);
    out.bulk(b"server");
    out.bulk(b"redis");
    out.bulk(b"version");
    out.bulk(crate::REDIS_VERSION.as_bytes());
    out.bulk(b"proto");
    out.int(if c.conn.resp3 { 3 } else { 2 });
    out.bulk(b"id");
    out.int(c.conn.id as i64);
    out.bulk(b"mode");
    out.bulk(b"standalone");
    out.bulk(b"role");
    out.bulk(b"master");
    out.bulk(b"modules");
    out.array(0);
}

fn quit(c: &mut SrvCtx, _args: &[&[u8]]) {
    c.out.ok();
    c.conn.close_after_reply = true;
}

/// CLIENT TRACKING ON|OFF [REDIRECT id] [PREFIX p]... [BCAST] [OPTIN]
/// [OPTOUT] [NOLOOP], with Redis 7.0's checks in its order.
fn client_tracking(c: &mut SrvCtx, args: &[&[u8]]) {
    let on = if eq_ic(args[2], "on") {
        true
    } else if eq_ic(args[2], "off") {
        false
    } else {
        return c.out.syntax();
    };
    let (mut redirect, mut bcast, mut optin, mut optout, mut noloop) =
        (0u64, false, false, false, false);
    let mut redirect_at = None;
    let mut prefixes: Vec<Vec<u8>> = Vec::new();
    let mut j = 3;
    while j < args.len() {
        let more = j + 1 < args.len();
        let a = args[j];
        if eq_ic(a, "redirect") && more {
            j += 1;
            if redirect != 0 {
                return c
                    .out
                    .err("A client can only redirect to a single other client");
            }
            let Some(id) = parse_i64(args[j]) else {
                return c.out.not_int();
            };
            redirect = id as u64;
            redirect_at = find_client(c, redirect);
            if redirect_at.is_none() {
                return c
                    .out
                    .err("The client ID you want redirect to does not exist");
            }
        } else if eq_ic(a, "bcast") {
            bcast = true;
        } else if eq_ic(a, "optin") {
            optin = true;
        } else if eq_ic(a, "optout") {
            optout = true;
        } else if eq_ic(a, "noloop") {
            noloop = true;
        } else if eq_ic(a, "prefix") && more {
            j += 1;
            prefixes.push(args[j].to_vec());
        } else {
            return c.out.syntax();
        }
        j += 1;
    }
    if !on {
        c.sh.tracking_off(c.conn);
        return c.out.ok();
    }
    if !bcast && !prefixes.is_empty() {
        return c.out.err("PREFIX option requires BCAST mode to be enabled");
    }
    if let Some(t) = &c.conn.tracking {
        if t.bcast != bcast {
            return c.out.err("You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.");
        }
    }
    if bcast && (optin || optout) {
        return c.out.err("OPTIN and OPTOUT are not compatible with BCAST");
    }
    if optin && optout {
        return c
            .out
            .err("You can't specify both OPTIN mode and OPTOUT mode");
    }
    if let Some(t) = &c.conn.tracking {
        if (optin && t.optout) || (optout && t.optin) {
            return c.out.err("You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.");
        }
    }
    if bcast {
        let old: &[Vec<u8>] = c.conn.tracking.as_ref().map_or(&[], |t| &t.prefixes[..]);
        for (i, p) in prefixes.iter().enumerate() {
            if let Some(o) = old
                .iter()
                .find(|o| *o != p && (o.starts_with(p) || p.starts_with(o)))
            {
                return c.out.err(&format!(
                    "Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single client must not overlap.",
                    String::from_utf8_lossy(p),
                    String::from_utf8_lossy(o)
                ));
            }
            if let Some(o) = prefixes[i + 1..]
                .iter()
                .find(|o| o.starts_with(p) || p.starts_with(o))
            {
                return c.out.err(&format!(
                    "Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a single client must not overlap.",
                    String::from_utf8_lossy(p),
                    String::from_utf8_lossy(o)
                ));
            }
        }
    }
    let was_on = c.conn.tracking.is_some();
    if !was_on {
        crate::shard::tracking::TRACKING_CLIENTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    let t = c.conn.tracking.get_or_insert_with(Default::default);
    // The mode flags are the ones given now (Redis replaces them).
    t.bcast = bcast;
    t.optin = optin;
    t.optout = optout;
    t.noloop = noloop;
    t.redirect = redirect;
    t.redirect_at = redirect_at;
    t.broken = false;
    if bcast {
        if prefixes.is_empty() && t.prefixes.is_empty() {
            prefixes.push(Vec::new());
        }
        for p in prefixes {
            if !t.prefixes.contains(&p) {
                t.prefixes.push(p);
            }
        }
        let all = t.prefixes.clone();
        let idx = c.sh.current_idx().unwrap_or(u32::MAX);
        if let Some(target) = c.sh.track_target(idx, c.conn) {
            c.sh.on_all(move |sh| sh.ks.bcast_add(&all, target));
        }
    }
    c.out.ok();
}

/// Where the client with this id lives: (shard, slot, generation).
fn find_client(c: &mut SrvCtx, id: u64) -> Option<(usize, u32, u32)> {
    if c.conn.id == id {
        let idx = c.sh.current_idx()?;
        return Some((c.sh.id, idx, c.conn.gen));
    }
    c.sh.on_all(move |sh| {
        sh.conns.iter().enumerate().find_map(|(i, cn)| {
            let cn = cn.as_deref()?;
            (cn.id == id && !cn.kill).then_some((sh.id, i as u32, cn.gen))
        })
    })
    .into_iter()
    .flatten()
    .next()
}

fn client_caching(c: &mut SrvCtx, args: &[&[u8]]) {
    let Some(t) = c.conn.tracking.as_mut() else {
        return c.out.err("CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled");
    };
    if eq_ic(args[2], "yes") {
        if !t.optin {
            return c
                .out
                .err("CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.");
        }
        t.caching = Some(true);
    } else if eq_ic(args[2], "no") {
        if !t.optout {
            return c
                .out
                .err("CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.");
        }
        t.caching = Some(false);
    } else {
        return c.out.syntax();
    }
    c.out.ok();
}

fn client_trackinginfo(c: &mut SrvCtx) {
    let t = c.conn.tracking.as_deref();
    let mut flags: Vec<&str> = Vec::new();
    match t {
        None => flags.push("off"),
        Some(t) => {
            flags.push("on");
            if t.bcast {
                flags.push("bcast");
            }
            if t.optin {
                flags.push("optin");
                if t.caching == Some(true) {
                    flags.push("caching-yes");
                }
            }
            if t.optout {
                flags.push("optout");
                if t.caching == Some(false) {
                    flags.push("caching-no");
                }
            }
            if t.noloop {
                flags.push("noloop");
            }
            if t.broken {
                flags.push("broken_redirect");
            }
        }
    }
    c.out.map(3);
    c.out.bulk(b"flags");
    c.out.set(flags.len());
    for f in flags {
        c.out.bulk(f.as_bytes());
    }
    c.out.bulk(b"redirect");
    c.out.int(t.map_or(-1, |t| t.redirect as i64));
    c.out.bulk(b"prefixes");
    let prefixes: &[Vec<u8>] = t.map_or(&[], |t| &t.prefixes[..]);
    c.out.array(prefixes.len());
    for p in prefixes {
        c.out.bulk(p);
    }
}

fn reset(c: &mut SrvCtx, _args: &[&[u8]]) {
    c.conn.db = 0;
    c.conn.resp3 = false;
    c.out.resp3 = false;
    c.conn.name = None;
    c.conn.reply_mode = ReplyMode::On;
    c.conn.no_evict = false;
    c.conn.authed = c.sh.cfg.requirepass.is_none();
    c.conn.user = "default".into();
    // RESET also leaves monitor mode and any transaction.
    crate::metrics::monitor::unregister(c.sh, c.conn.id);
    super::multi::reset_tx(c);
    super::pubsub::unsubscribe_all(c);
    c.sh.tracking_off(c.conn);
    c.out.simple("RESET");
}

/// Filters of CLIENT KILL (new form) and CLIENT LIST.
#[derive(Clone, Default)]
struct Filter {
    ids: Vec<u64>,
    addr: Option<String>,
    laddr: Option<String>,
    user: Option<String>,
    ty: Option<String>,
    skipme: bool,
}

impl Filter {
    fn matches(&self, c: &crate::conn::Conn, me: u64) -> bool {
        if self.skipme && c.id == me {
            return false;
        }
        if !self.ids.is_empty() && !self.ids.contains(&c.id) {
            return false;
        }
        if let Some(a) = &self.addr {
            if &c.addr != a {
                return false;
            }
        }
        if let Some(a) = &self.laddr {
            if &c.laddr != a {
                return false;
            }
        }
        if let Some(u) = &self.user {
            if &c.user != u {
                return false;
            }
        }
        if let Some(t) = &self.ty {
            // Every client here is a normal client.
            if t != "normal" {
                return false;
            }
        }
        true
    }
}

fn client(c: &mut SrvCtx, args: &[&[u8]]) {
    let Some(sub) = find_sub(&mut c.out, CLIENT_SUBS, args) else {
        return;
    };
    match sub.name {
        "id" => c.out.int(c.conn.id as i64),
        "getname" => match &c.conn.name {
            Some(n) => c.out.bulk(n),
            None => c.out.null(),
        },
        "setname" => {
            if set_name(c, args[2]) {
                c.out.ok();
            }
        }
        "info" => {
            let mut line = c.conn.info_line(crate::util::now_ms());
            line.push('\n');
            c.out.verbatim(line.as_bytes());
        }
        "list" => client_list(c, args),
        "kill" => client_kill(c, args),
        "tracking" => client_tracking(c, args),
        "caching" => client_caching(c, args),
        "getredir" => {
            let r = c.conn.tracking.as_ref().map_or(-1, |t| t.redirect as i64);
            c.out.int(r);
        }
        "trackinginfo" => client_trackinginfo(c),
        "reply" => {
            let a = args[2];
            if eq_ic(a, "on") {
                c.conn.reply_mode = ReplyMode::On;
                c.out.ok();
            } else if eq_ic(a, "off") {
                c.conn.reply_mode = ReplyMode::Off;
            } else if eq_ic(a, "skip") {
                if c.conn.reply_mode == ReplyMode::On {
                    c.conn.reply_mode = ReplyMode::SkipNext;
                }
            } else {
                c.out.syntax();
            }
        }
        "no-evict" => {
            if eq_ic(args[2], "on") {
                c.conn.no_evict = true;
                c.out.ok();
            } else if eq_ic(args[2], "off") {
                c.conn.no_evict = false;
                c.out.ok();
            } else {
                c.out.syntax();
            }
        }
        "pause" => {
            let Some(ms) = parse_i64(args[2]).filter(|&v| v >= 0) else {
                c.out.err("timeout is not an integer or out of range");
                return;
            };
            let writes_only = match args.get(3) {
                None => false,
                Some(a) if eq_ic(a, "write") => true,
                Some(a) if eq_ic(a, "all") => false,
                Some(_) => {
                    c.out.syntax();
                    return;
                }
            };
            if args.len() > 4 {
                c.out.syntax();
                return;
            }
            let g = &c.sh.g;
            let until = crate::util::now_ms().saturating_add(ms as u64);
            // A new pause never shortens or weakens one in force.
            let cur = g.pause_until.load(Ordering::Relaxed);
            let active = cur > crate::util::now_ms();
            if !active || until > cur {
                g.pause_until.store(until, Ordering::Relaxed);
            }
            if !active || !writes_only {
                g.pause_writes_only.store(writes_only, Ordering::Relaxed);
            }
            c.out.ok();
        }
        "unblock" => {
            let Some(id) = parse_i64(args[2]) else {
                c.out.not_int();
                return;
            };
            let error = match args.get(3) {
                None => false,
                Some(a) if eq_ic(a, "timeout") => false,
                Some(a) if eq_ic(a, "error") => true,
                Some(_) => {
                    c.out.err("CLIENT UNBLOCK reason should be TIMEOUT or ERROR");
                    return;
                }
            };
            if args.len() > 4 {
                c.out.syntax();
                return;
            }
            let hit = c
                .sh
                .on_all(move |sh| sh.unblock_client(id as u64, error))
                .into_iter()
                .any(|b| b);
            c.out.int(hit as i64);
        }
        "unpause" => {
            c.sh.g.pause_until.store(0, Ordering::Relaxed);
            for s in 0..c.sh.n {
                c.sh.post(s, |sh| sh.resume_paused());
            }
            c.out.ok();
        }
        "help" => help_reply(
            &mut c.out,
            "CLIENT",
            &[
                "GETNAME",
                "    Return the name of the current connection.",
                "ID",
                "    Return the ID of the current connection.",
                "INFO",
                "    Return information about the current client connection.",
                "KILL <ip:port>",
                "    Kill connection made from <ip:port>.",
                "KILL <option> <value> [<option> <value> [...]]",
                "    Kill connections. Options are: ID <client-id>, ADDR <ip:port>, LADDR <ip:port>, USER <username>, TYPE <normal|master|replica|pubsub>, SKIPME (YES|NO).",
                "LIST [options ...]",
                "    Return information about client connections. Options: TYPE <normal|master|replica|pubsub>, ID id [id ...].",
                "UNPAUSE",
                "    Stop the current client pause, resuming traffic.",
                "UNBLOCK <clientid> [TIMEOUT|ERROR]",
                "    Unblock the specified blocked client.",
                "PAUSE <timeout> [WRITE|ALL]",
                "    Suspend all, or just write, clients for <timeout> milliseconds.",
                "REPLY (ON|OFF|SKIP)",
                "    Control the replies sent to the current connection.",
                "SETNAME <name>",
                "    Assign the name <name> to the current connection.",
                "NO-EVICT (ON|OFF)",
                "    Protect current client connection from eviction.",
            ],
        ),
        _ => c.out.err("unknown subcommand"),
    }
}

fn client_list(c: &mut SrvCtx, args: &[&[u8]]) {
    let mut f = Filter::default();
    let mut i = 2;
    while i < args.len() {
        if eq_ic(args[i], "type") && i + 1 < args.len() {
            let t = String::from_utf8_lossy(args[i + 1]).to_ascii_lowercase();
            let t = if t == "slave" {
                "replica".to_string()
            } else {
                t
            };
            if !["normal", "master", "replica", "pubsub"].contains(&t.as_str()) {
                c.out.err(&format!(
                    "Unknown client type '{}'",
                    String::from_utf8_lossy(args[i + 1])
                ));
                return;
            }
            f.ty = Some(t);
            i += 2;
        } else if eq_ic(args[i], "id") && i + 1 < args.len() {
            i += 1;
            while i < args.len() {
                match parse_i64(args[i]).filter(|&v| v > 0) {
                    Some(v) => f.ids.push(v as u64),
                    None => {
                        c.out.err("Invalid client ID");
                        return;
                    }
                }
                i += 1;
            }
        } else {
            c.out.syntax();
            return;
        }
    }
    let now = crate::util::now_ms();
    let me = c.conn.id;
    let f2 = f.clone();
    let mut lines: Vec<(u64, String)> =
        c.sh.on_all(move |sh| {
            sh.conns
                .iter()
                .flatten()
                .filter(|cn| !cn.closed && f2.matches(cn, u64::MAX))
                .map(|cn| (cn.id, cn.info_line(now)))
                .collect::<Vec<_>>()
        })
        .into_iter()
        .flatten()
        .collect();
    if f.matches(c.conn, u64::MAX) {
        lines.push((me, c.conn.info_line(now)));
    }
    lines.sort_by_key(|(id, _)| *id);
    let mut text = String::new();
    for (_, l) in lines {
        text.push_str(&l);
        text.push('\n');
    }
    c.out.verbatim(text.as_bytes());
}

fn client_kill(c: &mut SrvCtx, args: &[&[u8]]) {
    let mut f = Filter {
        skipme: true,
        ..Default::default()
    };
    let old_form = args.len() == 3;
    if old_form {
        f.addr = Some(String::from_utf8_lossy(args[2]).into_owned());
        f.skipme = false;
    } else {
        // Options are checked in order, as Redis does: an option without
        // a value is a syntax error only when reached.
        for pair in args[2..].chunks(2) {
            let &[k, v] = pair else {
                c.out.syntax();
                return;
            };
            let vs = String::from_utf8_lossy(v).into_owned();
            if eq_ic(k, "id") {
                // Like Redis, the last ID given is the one that counts.
                match parse_i64(v).filter(|&x| x > 0) {
                    Some(x) => f.ids = vec![x as u64],
                    None => {
                        c.out.err("client-id should be greater than 0");
                        return;
                    }
                }
            } else if eq_ic(k, "addr") {
                f.addr = Some(vs);
            } else if eq_ic(k, "laddr") {
                f.laddr = Some(vs);
            } else if eq_ic(k, "user") {
                // ringkv has no ACL users besides "default".
                if vs != "default" {
                    c.out.err(&format!("No such user '{vs}'"));
                    return;
                }
                f.user = Some(vs);
            } else if eq_ic(k, "type") {
                let t = vs.to_ascii_lowercase();
                if !["normal", "master", "replica", "slave", "pubsub"].contains(&t.as_str()) {
                    c.out.err(&format!("Unknown client type '{vs}'"));
                    return;
                }
                f.ty = Some(if t == "slave" { "replica".into() } else { t });
            } else if eq_ic(k, "skipme") {
                if eq_ic(v, "yes") {
                    f.skipme = true;
                } else if eq_ic(v, "no") {
                    f.skipme = false;
                } else {
                    c.out.syntax();
                    return;
                }
            } else {
                c.out.syntax();
                return;
            }
        }
    }
    let me = c.conn.id;
    let f2 = f.clone();
    let killed: usize =
        c.sh.on_all(move |sh| {
            let mut n = 0;
            for i in 0..sh.conns.len() {
                if let Some(cn) = sh.conns[i].as_deref_mut() {
                    if !cn.closed && !cn.kill && f2.matches(cn, me) {
                        cn.kill = true;
                        sh.to_close.push(i as u32);
                        n += 1;
                    }
                }
            }
            n
        })
        .into_iter()
        .sum::<usize>();
    let mut killed = killed;
    if f.matches(c.conn, if f.skipme { me } else { u64::MAX }) {
        c.conn.close_after_reply = true;
        killed += 1;
    }
    if old_form {
        if killed == 0 {
            c.out.err("No such client");
        } else {
            c.out.ok();
        }
    } else {
        c.out.int(killed as i64);
    }
}
