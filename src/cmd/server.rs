//! The server command family: COMMAND, CONFIG, INFO, TIME, ROLE, DEBUG,
//! SHUTDOWN, MEMORY, LOLWUT and LASTSAVE.
//!
//! Redis 7.0 (server.c, config.c, debug.c, object.c) is the reference for
//! reply shapes in RESP2 and RESP3, INFO field names and error texts.
//!
//! COMMAND output is generated from the command table only. INFO gathers
//! its per-shard figures with one [`Shard::on_all`] round, so the numbers
//! of every shard are taken at the same instant.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::cmd::{
    self, CmdSpec, Run, SrvCtx, SubSpec, ADMIN, ALLOW_BUSY, FAST, FLAG_NAMES, LOADING, NOSCRIPT,
    NO_MULTI, READONLY, STALE, WRITE,
};
use crate::config::{self, Config};
use crate::resp::Out;
use crate::server::Global;
use crate::shard::keyspace::KsStats;
use crate::shard::{CmdStat, Shard, Stats};
use crate::util::{eq_ic, glob_match, now_ms, now_us, parse_i64};

/// The Redis version ringkv reports (INFO, HELLO), for client compatibility.
pub const REDIS_VERSION: &str = "7.0.15";

const E_INVALID_CMD: &str = "Invalid command specified";
const E_NO_KEYS: &str = "The command has no key arguments";
const E_BAD_ARGC: &str = "Invalid number of arguments specified for command";
const E_BAD_ARGS: &str = "Invalid arguments specified for command";

// ----- the table ---------------------------------------------------------------

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
            group: "server",
            acl: $acl,
            summary: $summary,
            since: $since,
            run: $run,
            subs: &[],
            getkeys: None,
        }
    };
}

const CMD_FLAGS: u32 = LOADING | STALE;
const CMD_ACL: &str = "@slow @connection";
#[rustfmt::skip]
const COMMAND_SUBS: &[SubSpec] = &[
    crate::sub!("count", 2, CMD_FLAGS, CMD_ACL, "Get total number of Redis commands"),
    crate::sub!("docs", -2, CMD_FLAGS, CMD_ACL, "Get array of specific Redis command documentation"),
    crate::sub!("getkeys", -4, CMD_FLAGS, CMD_ACL, "Extract keys given a full Redis command"),
    crate::sub!("getkeysandflags", -4, CMD_FLAGS, CMD_ACL,
        "Extract keys and access flags given a full Redis command"),
    crate::sub!("help", 2, CMD_FLAGS, CMD_ACL, "Show helpful text about the different subcommands"),
    crate::sub!("info", -2, CMD_FLAGS, CMD_ACL,
        "Get array of specific Redis command details, or all when no argument is given."),
    crate::sub!("list", -2, CMD_FLAGS, CMD_ACL, "Get an array of Redis command names"),
];

const CFG_FLAGS: u32 = ADMIN | NOSCRIPT | LOADING | STALE;
const CFG_ACL: &str = "@admin @slow @dangerous";
#[rustfmt::skip]
const CONFIG_SUBS: &[SubSpec] = &[
    crate::sub!("get", -3, CFG_FLAGS, CFG_ACL, "Get the values of configuration parameters"),
    crate::sub!("help", 2, LOADING | STALE, "@slow", "Show helpful text about the different subcommands"),
    crate::sub!("resetstat", 2, CFG_FLAGS, CFG_ACL, "Reset the stats returned by INFO"),
    crate::sub!("rewrite", 2, CFG_FLAGS, CFG_ACL,
        "Rewrite the configuration file with the in memory configuration"),
    crate::sub!("set", -4, CFG_FLAGS, CFG_ACL, "Set configuration parameters to the given values"),
];

#[rustfmt::skip]
pub(crate) const MEMORY_SUBS: &[SubSpec] = &[
    crate::sub!("doctor", 2, 0, "@slow", "Outputs memory problems report"),
    crate::sub!("help", 2, LOADING | STALE, "@slow", "Show helpful text about the different subcommands"),
    crate::sub!("malloc-stats", 2, 0, "@slow", "Show allocator internal stats"),
    crate::sub!("purge", 2, 0, "@slow", "Ask the allocator to release memory"),
    crate::sub!("stats", 2, 0, "@slow", "Show memory usage details"),
    crate::sub!("usage", -3, READONLY, (2, 2, 1), "@read @slow", "Estimate the memory usage of a key"),
];

#[rustfmt::skip]
pub static COMMANDS: &[CmdSpec] = &[
    CmdSpec {
        subs: COMMAND_SUBS,
        getkeys: None,
        ..spec!("command", -1, LOADING | STALE, (0, 0, 0), CMD_ACL, "2.8.13",
            Run::Srv(command_cmd), "Get array of Redis command details")
    },
    CmdSpec {
        subs: CONFIG_SUBS,
        getkeys: None,
        ..spec!("config", -2, 0, (0, 0, 0), "@slow", "2.0.0",
            Run::Srv(config_cmd), "A container for server configuration commands")
    },
    spec!("info", -1, LOADING | STALE, (0, 0, 0), "@slow @dangerous", "1.0.0",
        Run::Srv(info_cmd), "Get information and statistics about the server"),
    spec!("time", 1, LOADING | STALE | FAST, (0, 0, 0), "@fast", "2.6.0",
        Run::Srv(time_cmd), "Return the current server time"),
    spec!("role", 1, NOSCRIPT | LOADING | STALE | FAST, (0, 0, 0), "@admin @fast @dangerous", "2.8.12",
        Run::Srv(role_cmd), "Return the role of the instance in the context of replication"),
    spec!("debug", -2, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), "@admin @slow @dangerous",
        "1.0.0", Run::Srv(debug_cmd), "A container for debugging commands"),
    spec!("shutdown", -1, ADMIN | NOSCRIPT | LOADING | STALE | NO_MULTI | ALLOW_BUSY, (0, 0, 0),
        "@admin @slow @dangerous", "1.0.0", Run::Srv(shutdown_cmd),
        "Synchronously save the dataset to disk and then shut down the server"),
    CmdSpec {
        // MEMORY USAGE's key is the third argument (COMMAND, ACL); the
        // command runs on the connection's shard and asks the key's shard
        // (cmd/memory.rs), as STATS and PURGE need every shard.
        subs: MEMORY_SUBS,
        getkeys: None,
        ..spec!("memory", -2, 0, (2, 2, 1), "@slow", "4.0.0",
            Run::Srv(super::memory::memory_cmd), "A container for memory diagnostics commands")
    },
    spec!("lolwut", -1, READONLY | FAST, (0, 0, 0), "@read @fast", "5.0.0",
        Run::Srv(lolwut_cmd), "Display some computer art and the Redis version"),
    spec!("lastsave", 1, LOADING | STALE | FAST, (0, 0, 0), "@admin @fast @dangerous", "1.0.0",
        Run::Srv(lastsave_cmd), "Get the UNIX time stamp of the last successful save to disk"),
];

// ----- shared helpers ----------------------------------------------------------

/// Redis's `addReplyHelp`: a header naming the command, the lines, and the
/// HELP entry (7.0 words it "Prints this help.").
fn help(out: &mut Out, cmd_name: &[u8], lines: &[&str]) {
    out.array(lines.len() + 3);
    out.simple(&format!(
        "{} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        String::from_utf8_lossy(cmd_name).to_ascii_uppercase()
    ));
    for l in lines {
        out.simple(l);
    }
    out.simple("HELP");
    out.simple("    Prints this help.");
}

/// Redis's `bytesToHuman`.
fn bytes_human(n: u64) -> String {
    const K: f64 = 1024.0;
    let d = n as f64;
    if n < 1024 {
        format!("{n}B")
    } else if d < K * K {
        format!("{:.2}K", d / K)
    } else if d < K * K * K {
        format!("{:.2}M", d / (K * K))
    } else if d < K * K * K * K {
        format!("{:.2}G", d / (K * K * K))
    } else if d < K * K * K * K * K {
        format!("{:.2}T", d / (K * K * K * K))
    } else if d < K * K * K * K * K * K {
        format!("{:.2}P", d / (K * K * K * K * K))
    } else {
        format!("{n}B")
    }
}

/// The highest `used_memory` seen (sampled whenever INFO or MEMORY runs).
static PEAK: AtomicU64 = AtomicU64::new(0);

/// Current used memory, raising the recorded peak if needed.
pub(crate) fn used_and_peak() -> (u64, u64) {
    let used = crate::alloc::used_memory();
    let peak = PEAK.fetch_max(used, Ordering::Relaxed).max(used);
    (used, peak)
}

/// C's `strtod` on a prefix: the longest leading part that is a number,
/// 0 when there is none (DEBUG SLEEP parses its argument this way).
fn strtod_prefix(s: &[u8]) -> f64 {
    let s = String::from_utf8_lossy(s);
    let t = s.trim_start();
    let mut best = 0.0;
    for end in 1..=t.len() {
        if !t.is_char_boundary(end) {
            continue;
        }
        let p = &t[..end];
        // Rust accepts "inf"/"nan" words; strtod does too, but a prefix of
        // digits is all DEBUG SLEEP ever needs.
        if p.bytes()
            .all(|c| c.is_ascii_digit() || b"+-.eE".contains(&c))
        {
            if let Ok(v) = p.parse::<f64>() {
                best = v;
            }
        } else {
            break;
        }
    }
    best
}

/// (system, user) CPU seconds of the process or of the calling thread.
fn rusage(who: libc::c_int) -> (libc::timeval, libc::timeval) {
    // SAFETY: getrusage only writes into the zeroed struct we pass; on
    // failure the zeroes are reported.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(who, &mut ru);
        ru
    };
    (ru.ru_stime, ru.ru_utime)
}

fn fmt_tv(tv: libc::timeval) -> String {
    format!("{}.{:06}", tv.tv_sec, tv.tv_usec)
}

// ----- the command table as COMMAND sees it ----------------------------------------

/// A command or one of its subcommands.
#[derive(Clone, Copy)]
enum Entry {
    Top(&'static CmdSpec),
    Sub(&'static CmdSpec, &'static SubSpec),
}

impl Entry {
    fn fullname(self) -> String {
        match self {
            Entry::Top(c) => c.name.to_string(),
            Entry::Sub(c, s) => format!("{}|{}", c.name, s.name),
        }
    }
    fn arity(self) -> i32 {
        match self {
            Entry::Top(c) => c.arity,
            Entry::Sub(_, s) => s.arity,
        }
    }
    fn flags(self) -> u32 {
        match self {
            Entry::Top(c) => c.flags,
            Entry::Sub(_, s) => s.flags,
        }
    }
    fn acl(self) -> &'static str {
        match self {
            Entry::Top(c) => c.acl,
            Entry::Sub(_, s) => s.acl,
        }
    }
    fn summary(self) -> &'static str {
        match self {
            Entry::Top(c) => c.summary,
            Entry::Sub(_, s) => s.summary,
        }
    }
    /// first, last, step. A container has no keys of its own (its key
    /// positions in the table only serve routing of its subcommands).
    fn keys(self) -> (i32, i32, i32) {
        match self {
            Entry::Top(c) if c.subs.is_empty() => (c.first_key, c.last_key, c.step),
            Entry::Top(_) => (0, 0, 0),
            Entry::Sub(_, s) => (s.first_key, s.last_key, s.step),
        }
    }
    fn parent(self) -> &'static CmdSpec {
        match self {
            Entry::Top(c) | Entry::Sub(c, _) => c,
        }
    }
    fn subs(self) -> &'static [SubSpec] {
        match self {
            Entry::Top(c) => c.subs,
            Entry::Sub(..) => &[],
        }
    }
    /// ACL categories without their '@'.
    fn categories(self) -> impl Iterator<Item = &'static str> {
        self.acl()
            .split_whitespace()
            .map(|c| c.strip_prefix('@').unwrap_or(c))
    }
}

/// Looks up "name" or "container|sub" (Redis's `lookupCommandBySds`).
fn lookup(name: &[u8]) -> Option<Entry> {
    let t = cmd::table();
    match name.iter().position(|&c| c == b'|') {
        None => t.get(name).map(|(_, c)| Entry::Top(c)),
        Some(i) => {
            let (_, c) = t.get(&name[..i])?;
            let sub = &name[i + 1..];
            if sub.contains(&b'|') {
                return None;
            }
            c.subs
                .iter()
                .find(|s| eq_ic(sub, s.name))
                .map(|s| Entry::Sub(c, s))
        }
    }
}

/// Every command and subcommand, in table order.
fn all_entries() -> impl Iterator<Item = Entry> {
    cmd::table().list.iter().flat_map(|&c| {
        std::iter::once(Entry::Top(c)).chain(c.subs.iter().map(move |s| Entry::Sub(c, s)))
    })
}

/// Key-spec flags derived from the command flags (the table carries no
/// per-key flags): writes are RW/update, reads RO/access.
fn key_flags(flags: u32) -> &'static [&'static str] {
    if flags & WRITE != 0 {
        &["RW", "update"]
    } else if flags & READONLY != 0 {
        &["RO", "access"]
    } else {
        &[]
    }
}

/// The positions of the keys in `args` (args[0] = the command name).
fn key_positions(first: i32, last: i32, step: i32, argc: usize) -> Vec<usize> {
    let n = argc as i32;
    if first <= 0 || first >= n {
        return Vec::new();
    }
    let last = if last < 0 { n + last } else { last.min(n - 1) };
    (first..=last)
        .step_by(step.max(1) as usize)
        .map(|i| i as usize)
        .collect()
}

fn reply_key_specs(out: &mut Out, e: Entry) {
    let (first, last, step) = e.keys();
    if first <= 0 {
        out.set(0);
        return;
    }
    out.set(1);
    out.map(3);
    out.bulk(b"flags");
    let kf = key_flags(e.flags());
    out.set(kf.len());
    for f in kf {
        out.simple(f);
    }
    out.bulk(b"begin_search");
    out.map(2);
    out.bulk(b"type");
    out.bulk(b"index");
    out.bulk(b"spec");
    out.map(1);
    out.bulk(b"index");
    out.int(first as i64);
    out.bulk(b"find_keys");
    out.map(2);
    out.bulk(b"type");
    out.bulk(b"range");
    out.bulk(b"spec");
    out.map(3);
    out.bulk(b"lastkey");
    // Redis's range lastkey is relative to the first key (negative: from
    // the end of the arguments).
    out.int(if last < 0 { last } else { last - first } as i64);
    out.bulk(b"keystep");
    out.int(step.max(1) as i64);
    out.bulk(b"limit");
    out.int(0);
}

/// One COMMAND INFO entry in the 7.0 format: name, arity, flags, first,
/// last, step, ACL categories, tips, key specs, subcommands.
fn reply_command_info(out: &mut Out, e: Entry) {
    let (first, last, step) = e.keys();
    out.array(10);
    out.bulk(e.fullname().as_bytes());
    out.int(e.arity() as i64);
    let flags = e.flags();
    let names: Vec<&str> = FLAG_NAMES
        .iter()
        .filter(|(bit, _)| flags & bit != 0)
        .map(|&(_, n)| n)
        .collect();
    out.set(names.len());
    for n in names {
        out.simple(n);
    }
    out.int(first as i64);
    out.int(last as i64);
    out.int(step as i64);
    let cats: Vec<&str> = e.categories().collect();
    out.set(cats.len());
    for c in cats {
        out.simple(&format!("@{c}"));
    }
    out.set(0); // tips
    reply_key_specs(out, e);
    let subs = e.subs();
    if subs.is_empty() {
        out.set(0);
    } else {
        out.array(subs.len());
        for s in subs {
            reply_command_info(out, Entry::Sub(e.parent(), s));
        }
    }
}

/// One COMMAND DOCS entry: summary, since, group, complexity (containers
/// only: the table carries none per command) and subcommands. Subcommands
/// have no `since` in the table, so it is left out for them.
fn reply_command_docs(out: &mut Out, e: Entry) {
    let subs = e.subs();
    let container = !subs.is_empty();
    let since = match e {
        Entry::Top(c) => Some(c.since),
        Entry::Sub(..) => None,
    };
    out.map(2 + since.is_some() as usize + 2 * container as usize);
    out.bulk(b"summary");
    out.bulk(e.summary().as_bytes());
    if let Some(s) = since {
        out.bulk(b"since");
        out.bulk(s.as_bytes());
    }
    out.bulk(b"group");
    out.bulk(e.parent().group.as_bytes());
    if container {
        out.bulk(b"complexity");
        out.bulk(b"Depends on subcommand.");
        out.bulk(b"subcommands");
        out.map(subs.len());
        for s in subs {
            let se = Entry::Sub(e.parent(), s);
            out.bulk(se.fullname().as_bytes());
            reply_command_docs(out, se);
        }
    }
}

/// COMMAND GETKEYS / GETKEYSANDFLAGS on `cargs` (the full command).
fn reply_getkeys(out: &mut Out, cargs: &[&[u8]], with_flags: bool) {
    let Some((_, c)) = cmd::table().get(cargs[0]) else {
        return out.err(E_INVALID_CMD);
    };
    let e = if !c.subs.is_empty() && cargs.len() >= 2 {
        match c.subs.iter().find(|s| eq_ic(cargs[1], s.name)) {
            Some(s) => Entry::Sub(c, s),
            None => return out.err(E_INVALID_CMD),
        }
    } else {
        Entry::Top(c)
    };
    let (first, last, step) = e.keys();
    let getkeys = match e {
        Entry::Top(c) => c.getkeys,
        _ => None,
    };
    if first <= 0 && getkeys.is_none() {
        return out.err(E_NO_KEYS);
    }
    let (a, n) = (e.arity(), cargs.len() as i32);
    if (a > 0 && a != n) || n < -a {
        return out.err(E_BAD_ARGC);
    }
    let pos = match getkeys {
        // Commands with `numkeys` or keyword-placed keys find their own.
        Some(f) => f(cargs),
        None => key_positions(first, last, step, cargs.len()),
    };
    if pos.is_empty() {
        return out.err(E_BAD_ARGS);
    }
    out.array(pos.len());
    let kf = key_flags(e.flags());
    for p in pos {
        if with_flags {
            out.array(2);
            out.bulk(cargs[p]);
            out.set(kf.len());
            for f in kf {
                out.simple(f);
            }
        } else {
            out.bulk(cargs[p]);
        }
    }
}

/// COMMAND LIST [FILTERBY MODULE m|ACLCAT c|PATTERN p].
fn reply_command_list(out: &mut Out, args: &[&[u8]]) {
    enum Filter<'a> {
        None,
        Module,
        AclCat(&'a [u8]),
        Pattern(&'a [u8]),
    }
    let mut filter = Filter::None;
    let mut i = 2;
    while i < args.len() {
        let more = args.len() - 1 - i;
        if !(eq_ic(args[i], "filterby") && more == 2) {
            return out.syntax();
        }
        let (ty, arg) = (args[i + 1], args[i + 2]);
        filter = if eq_ic(ty, "module") {
            Filter::Module
        } else if eq_ic(ty, "aclcat") {
            Filter::AclCat(arg)
        } else if eq_ic(ty, "pattern") {
            Filter::Pattern(arg)
        } else {
            return out.syntax();
        };
        i += 3;
    }
    let names: Vec<String> = all_entries()
        .filter(|e| match filter {
            Filter::None => true,
            Filter::Module => false,
            Filter::AclCat(c) => e.categories().any(|x| eq_ic(c, x)),
            Filter::Pattern(p) => glob_match(p, e.fullname().as_bytes(), true),
        })
        .map(|e| e.fullname())
        .collect();
    out.array(names.len());
    for n in names {
        out.bulk(n.as_bytes());
    }
}

const COMMAND_HELP: &[&str] = &[
    "(no subcommand)",
    "    Return details about all Redis commands.",
    "COUNT",
    "    Return the total number of commands in this Redis server.",
    "LIST",
    "    Return a list of all commands in this Redis server.",
    "INFO [<command-name> ...]",
    "    Return details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "DOCS [<command-name> ...]",
    "    Return documentation details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "GETKEYS <full-command>",
    "    Return the keys from a full Redis command.",
    "GETKEYSANDFLAGS <full-command>",
    "    Return the keys and the access flags from a full Redis command.",
];

fn command_cmd(ctx: &mut SrvCtx, args: &[&[u8]]) {
    command_reply(&mut ctx.out, args);
}

/// COMMAND and its subcommands (they need nothing but the table).
fn command_reply(out: &mut Out, args: &[&[u8]]) {
    let list = &cmd::table().list;
    if args.len() == 1 {
        out.array(list.len());
        for &c in list {
            reply_command_info(out, Entry::Top(c));
        }
        return;
    }
    let Some(sub) = cmd::find_sub(out, COMMAND_SUBS, args) else {
        return;
    };
    match sub.name {
        "count" => out.int(list.len() as i64),
        "info" if args.len() == 2 => {
            out.array(list.len());
            for &c in list {
                reply_command_info(out, Entry::Top(c));
            }
        }
        "info" => {
            out.array(args.len() - 2);
            for name in &args[2..] {
                match lookup(name) {
                    Some(e) => reply_command_info(out, e),
                    None => out.null(),
                }
            }
        }
        "docs" => {
            let found: Vec<Entry> = if args.len() == 2 {
                list.iter().map(|&c| Entry::Top(c)).collect()
            } else {
                args[2..].iter().filter_map(|n| lookup(n)).collect()
            };
            out.map(found.len());
            for e in found {
                out.bulk(e.fullname().as_bytes());
                reply_command_docs(out, e);
            }
        }
        "list" => reply_command_list(out, args),
        "getkeys" => reply_getkeys(out, &args[2..], false),
        "getkeysandflags" => reply_getkeys(out, &args[2..], true),
        _ => help(out, args[0], COMMAND_HELP),
    }
}

// ----- CONFIG ------------------------------------------------------------------

const CONFIG_HELP: &[&str] = &[
    "GET <pattern>",
    "    Return parameters matching the glob-like <pattern> and their values.",
    "SET <directive> <value>",
    "    Set the configuration <directive> to <value>.",
    "RESETSTAT",
    "    Reset statistics reported by the INFO command.",
    "REWRITE",
    "    Rewrite the configuration file.",
];

/// Parameters Redis 7.0 marks PROTECTED_CONFIG: CONFIG SET refuses them
/// unless enable-protected-configs allows it.
const PROTECTED: &[&str] = &["dir", "dbfilename"];

/// CONFIG GET: name/value pairs for every pattern. Each registered name
/// (a directive's main name or its alias) is reported once; a pattern
/// that matches both reports both, as Redis 7.0 does. An exact name (no
/// glob characters) is echoed as given.
pub fn config_get(cfg: &Config, patterns: &[&[u8]]) -> Vec<(String, String)> {
    // How CONFIG GET shows a stored value.
    let shown = |name: &str| -> String {
        let v = cfg.get(name);
        if name == "notify-keyspace-events" {
            crate::notify::to_string(crate::notify::parse(v).unwrap_or(0))
        } else {
            v.to_string()
        }
    };
    let mut seen: Vec<&'static str> = Vec::new();
    let mut out = Vec::new();
    for pat in patterns {
        if !pat.iter().any(|c| b"[*?".contains(c)) {
            let given = String::from_utf8_lossy(pat).into_owned();
            if let Some(n) = config::lookup(&given) {
                if !seen.contains(&n.name) {
                    seen.push(n.name);
                    out.push((given, shown(n.param.name)));
                }
            }
            continue;
        }
        for n in config::names() {
            if !seen.contains(&n.name) && glob_match(pat, n.name.as_bytes(), true) {
                seen.push(n.name);
                out.push((n.name.to_string(), shown(n.param.name)));
            }
        }
    }
    out
}

/// Redis's check of the `save` directive: pairs of non-negative integers.
fn valid_save(v: &str) -> bool {
    let w: Vec<&str> = v.split_whitespace().collect();
    w.len().is_multiple_of(2) && w.iter().all(|x| x.parse::<u64>().is_ok())
}

/// CONFIG SET name value [name value ...] on a copy of `cfg`: all the
/// pairs apply or none does. `pairs` excludes "CONFIG SET"; `local` says
/// whether the client is on a loopback address (enable-protected-configs
/// local). Returns the new configuration and the directives it changed
/// (main names, in argument order) for the apply step
/// ([`config::apply_all`]). The error is the full reply text after "-".
pub fn config_set(
    cfg: &Config,
    pairs: &[&[u8]],
    local: bool,
) -> Result<(Config, Vec<&'static str>), String> {
    if !pairs.len().is_multiple_of(2) {
        return Err("ERR syntax error".into());
    }
    let prot_ok = match cfg.get("enable-protected-configs") {
        "yes" => true,
        "local" => local,
        _ => false,
    };
    // First pass, as Redis: the first error wins, be it an unknown,
    // immutable, protected or duplicate name (named as given). A directive
    // and its alias are different names here: the later one wins.
    let mut unknown: Option<String> = None;
    let mut err: Option<(String, &str)> = None;
    let mut chosen: Vec<(config::Name, String)> = Vec::new();
    for pair in pairs.chunks(2) {
        let given = String::from_utf8_lossy(pair[0]).into_owned();
        let Some(n) = config::lookup(&given) else {
            if unknown.is_none() && err.is_none() {
                unknown = Some(given);
            }
            continue;
        };
        if unknown.is_some() || err.is_some() {
            continue;
        }
        let p = n.param;
        if !p.mutable {
            err = Some((given, "can't set immutable config"));
        } else if PROTECTED.contains(&p.name) && !prot_ok {
            err = Some((given, "can't set protected config"));
        } else if chosen.iter().any(|(q, _)| q.name == n.name) {
            err = Some((given, "duplicate parameter"));
        } else {
            chosen.push((n, String::from_utf8_lossy(pair[1]).into_owned()));
        }
    }
    if let Some(name) = unknown {
        return Err(format!(
            "ERR Unknown option or number of arguments for CONFIG SET - '{name}'"
        ));
    }
    if let Some((name, why)) = err {
        return Err(config_set_failed(&name, why));
    }
    // Second pass: set every value on the copy, in order; a bad value
    // fails the whole command (named by its registered name, lower case).
    let mut new = cfg.clone();
    let mut changed: Vec<&'static str> = Vec::with_capacity(chosen.len());
    for (n, v) in &chosen {
        if n.param.name == "save" && !valid_save(v) {
            return Err(config_set_failed(n.name, "Invalid save parameters"));
        }
        // One CONFIG SET argument holds the whole value, lists included.
        new.set_value(n.param.name, std::slice::from_ref(v))
            .map_err(|e| config_set_failed(n.name, &e))?;
        if !changed.contains(&n.param.name) {
            changed.push(n.param.name);
        }
    }
    Ok((new, changed))
}

fn config_set_failed(name: &str, why: &str) -> String {
    format!("ERR CONFIG SET failed (possibly related to argument '{name}') - {why}")
}

/// Is the peer address ("ip:port") a loopback one? Anything that is not
/// an IP address (a Unix socket) counts as local, as in Redis.
fn is_local(addr: &str) -> bool {
    let ip = addr.rsplit_once(':').map(|(ip, _)| ip).unwrap_or(addr);
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    match ip.parse::<std::net::IpAddr>() {
        Ok(a) => a.is_loopback(),
        Err(_) => true,
    }
}

fn config_cmd(ctx: &mut SrvCtx, args: &[&[u8]]) {
    let Some(sub) = cmd::find_sub(&mut ctx.out, CONFIG_SUBS, args) else {
        return;
    };
    let g = ctx.sh.g.clone();
    match sub.name {
        "get" => {
            let pairs = {
                let c = g.config.read().unwrap_or_else(|e| e.into_inner());
                config_get(&c, &args[2..])
            };
            ctx.out.map(pairs.len());
            for (k, v) in pairs {
                ctx.out.bulk(k.as_bytes());
                ctx.out.bulk(v.as_bytes());
            }
        }
        "set" => {
            let local = is_local(&ctx.conn.addr);
            let r = {
                let mut c = g.config.write().unwrap_or_else(|e| e.into_inner());
                config_set(&c, &args[2..], local).and_then(|(new, changed)| {
                    // Apply step: side effects run with the lock held; if
                    // one fails, those already run are undone and the old
                    // configuration stays.
                    config::apply_all(&c, &new, &changed, &mut config::apply_effect)
                        .map_err(|(name, e)| {
                            crate::log::warn(&format!(
                                "Failed applying new configuration. Possibly related to new {name} setting. Restoring previous settings."
                            ));
                            config_set_failed(name, &e)
                        })?;
                    *c = new;
                    Ok(())
                })
            };
            match r {
                Ok(()) => {
                    g.bump_config();
                    // Every shard takes the new values before the reply,
                    // so the client's next command sees them wherever its
                    // keys live (shards also refresh on their own cron).
                    ctx.sh.on_all(|sh| sh.refresh_cfg());
                    ctx.out.ok();
                }
                Err(e) => ctx.out.error(&e),
            }
        }
        "resetstat" => {
            ctx.sh.on_all(reset_shard_stats);
            PEAK.store(crate::alloc::used_memory(), Ordering::Relaxed);
            crate::lazyfree::reset_stats();
            *SAMPLE.lock().unwrap_or_else(|e| e.into_inner()) = None;
            g.stat_reset.store(now_ms(), Ordering::Relaxed);
            ctx.out.ok();
        }
        "rewrite" => {
            let r = g.config.read().unwrap_or_else(|e| e.into_inner()).rewrite();
            match r {
                Ok(()) => {
                    crate::log::notice("CONFIG REWRITE executed with success.");
                    ctx.out.ok();
                }
                Err(e) => {
                    crate::log::warn(&format!("CONFIG REWRITE failed: {e}"));
                    ctx.out.err(&e);
                }
            }
        }
        _ => help(&mut ctx.out, args[0], CONFIG_HELP),
    }
}

/// CONFIG RESETSTAT on one shard: every counter back to zero.
fn reset_shard_stats(sh: &mut Shard) {
    let n = sh.stats.cmds.len();
    sh.stats = Stats {
        cmds: vec![CmdStat::default(); n],
        ..Default::default()
    };
    sh.ks.stats = KsStats::default();
    sh.metrics.reset_histograms();
    sh.mesh.sent = 0;
    sh.mesh.received = 0;
}

// ----- INFO --------------------------------------------------------------------

/// Every INFO section, in Redis's order; `shards` is ringkv's own.
const SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "commandstats",
    "errorstats",
    "latencystats",
    "cluster",
    "keyspace",
    "shards",
];

/// The sections INFO prints for `args` (args[0] = "INFO"), as a bit set
/// over [`SECTIONS`].
fn info_sections(args: &[&[u8]]) -> u32 {
    let bit = |name: &str| 1u32 << SECTIONS.iter().position(|s| *s == name).unwrap_or(31);
    let all = (1u32 << SECTIONS.len()) - 1;
    let default = all & !bit("commandstats") & !bit("latencystats");
    if args.len() < 2 {
        return default;
    }
    let mut set = 0;
    for a in &args[1..] {
        let a = String::from_utf8_lossy(a).to_ascii_lowercase();
        match a.as_str() {
            "default" => set |= default,
            "all" | "everything" => set |= all,
            s => {
                if let Some(i) = SECTIONS.iter().position(|x| *x == s) {
                    set |= 1 << i;
                }
            }
        }
    }
    set
}

/// One shard's figures for INFO.
struct ShardFig {
    id: usize,
    /// (keys, expires, avg_ttl) per db.
    dbs: Vec<(u64, u64, u64)>,
    dirty: u64,
    ks: KsStats,
    cmds: Vec<CmdStat>,
    total_commands: u64,
    total_connections: u64,
    rejected_connections: u64,
    net_in: u64,
    net_out: u64,
    loop_iterations: u64,
    submissions: u64,
    completions: u64,
    rates: crate::shard::Rates,
    errors: Vec<(String, u64)>,
    total_error_replies: u64,
    conns: usize,
    msgs_sent: u64,
    msgs_received: u64,
    cpu: (libc::timeval, libc::timeval),
    blocked: usize,
    /// Recent peak client input and output buffer sizes.
    peak_in: usize,
    peak_out: usize,
    /// Channels, patterns and shard channels with subscribers (every
    /// shard's directory covers all shards).
    pubsub: (usize, usize, usize),
    /// Client-side caching tables: (keys, items, prefixes).
    tracking: (usize, usize, usize),
    /// Table overheads and client buffers (INFO memory).
    mem: super::memory::MemFig,
}

fn shard_fig(sh: &mut Shard, with_cmds: bool) -> ShardFig {
    let (peak_in, peak_out) = sh.peaks.recent(now_ms());
    let st = &sh.stats;
    use crate::shard::pubsub::Kind;
    let pubsub = (
        sh.pubsub.names(Kind::Channel).count(),
        sh.pubsub.names(Kind::Pattern).count(),
        sh.pubsub.names(Kind::Shard).count(),
    );
    ShardFig {
        pubsub,
        tracking: sh.tracking_figures(),
        mem: super::memory::mem_fig(sh),
        id: sh.id,
        dbs: sh
            .ks
            .dbs
            .iter()
            .map(|d| (d.main.len() as u64, d.expires.len() as u64, d.avg_ttl))
            .collect(),
        dirty: sh.ks.dirty,
        ks: sh.ks.stats,
        cmds: if with_cmds {
            st.cmds.clone()
        } else {
            Vec::new()
        },
        total_commands: st.total_commands,
        total_connections: st.total_connections,
        rejected_connections: st.rejected_connections,
        net_in: st.net_in,
        net_out: st.net_out,
        loop_iterations: st.loop_iterations,
        submissions: st.submissions,
        completions: st.completions,
        rates: st.window.rates(),
        errors: st.errors.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        total_error_replies: st.total_error_replies,
        conns: sh.conns.iter().filter(|c| c.is_some()).count(),
        blocked: sh.blocked_conns.len(),
        peak_in,
        peak_out,
        msgs_sent: sh.mesh.sent,
        msgs_received: sh.mesh.received,
        // This closure runs on the shard's own thread.
        cpu: rusage(libc::RUSAGE_THREAD),
    }
}

/// The last throughput sample: (time ms, commands, net in, net out) and
/// the rates computed from the sample before it.
struct Sample {
    ms: u64,
    cmds: u64,
    net_in: u64,
    net_out: u64,
    ops: u64,
    in_kbps: f64,
    out_kbps: f64,
}

static SAMPLE: Mutex<Option<Sample>> = Mutex::new(None);

/// instantaneous_ops_per_sec and the kbps figures: the rates between the
/// previous INFO's sample and this one (kept for 100 ms so that INFO
/// called in a burst reports the same figures). The first INFO reports 0.
fn instantaneous(cmds: u64, net_in: u64, net_out: u64) -> (u64, f64, f64) {
    let now = now_ms();
    let mut s = SAMPLE.lock().unwrap_or_else(|e| e.into_inner());
    let (ops, ik, ok) = match &*s {
        Some(p) if now.saturating_sub(p.ms) < 100 => return (p.ops, p.in_kbps, p.out_kbps),
        Some(p) => {
            let dt = (now - p.ms) as f64 / 1000.0;
            (
                (cmds.saturating_sub(p.cmds) as f64 / dt).round() as u64,
                net_in.saturating_sub(p.net_in) as f64 / dt / 1024.0,
                net_out.saturating_sub(p.net_out) as f64 / dt / 1024.0,
            )
        }
        None => (0, 0.0, 0.0),
    };
    *s = Some(Sample {
        ms: now,
        cmds,
        net_in,
        net_out,
        ops,
        in_kbps: ik,
        out_kbps: ok,
    });
    (ops, ik, ok)
}

fn os_name() -> String {
    // SAFETY: uname fills the zeroed struct; its fields are NUL-terminated
    // C strings inside the struct.
    unsafe {
        let mut u: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut u) != 0 {
            return "Linux".into();
        }
        let f = |a: &[libc::c_char]| {
            std::ffi::CStr::from_ptr(a.as_ptr())
                .to_string_lossy()
                .into_owned()
        };
        format!("{} {} {}", f(&u.sysname), f(&u.release), f(&u.machine))
    }
}

fn total_system_memory() -> u64 {
    // SAFETY: sysconf only reads system constants.
    let (pages, size) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    (pages.max(0) as u64).saturating_mul(size.max(0) as u64)
}

/// A replication ID for this process (there is no replication: it only
/// has to look like Redis's).
fn master_replid() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        let mut x = now_us() ^ 0x5DEE_CE66_D1A4_F87D ^ ((std::process::id() as u64) << 20);
        (0..40)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                char::from_digit((x % 16) as u32, 16).unwrap_or('0')
            })
            .collect()
    })
}

/// Appends `field:value\r\n`.
macro_rules! kv {
    ($s:expr, $k:expr, $($v:tt)*) => {{
        let _ = write!($s, "{}:", $k);
        let _ = write!($s, $($v)*);
        $s.push_str("\r\n");
    }};
}

/// Builds the INFO text for the sections in `set` from the shards'
/// figures; `me` is the shard running INFO.
fn info_text(g: &Global, me: usize, figs: &[ShardFig], set: u32, latencystats: &str) -> String {
    let on = |name: &str| {
        SECTIONS
            .iter()
            .position(|s| *s == name)
            .is_some_and(|i| set & (1 << i) != 0)
    };
    let cfg = g.config.read().unwrap_or_else(|e| e.into_inner()).clone();
    let sum = |f: fn(&ShardFig) -> u64| figs.iter().map(f).sum::<u64>();
    let now = now_ms();
    let mut sections: Vec<String> = Vec::new();

    if on("server") {
        let mut s = String::from("# Server\r\n");
        let uptime = now.saturating_sub(g.start_ms) / 1000;
        kv!(s, "redis_version", "{REDIS_VERSION}");
        kv!(s, "ringkv_version", "{}", env!("CARGO_PKG_VERSION"));
        kv!(s, "redis_git_sha1", "00000000");
        kv!(s, "redis_git_dirty", "0");
        kv!(s, "redis_build_id", "0");
        kv!(s, "redis_mode", "standalone");
        kv!(s, "os", "{}", os_name());
        kv!(s, "arch_bits", "{}", usize::BITS);
        kv!(s, "monotonic_clock", "POSIX clock_gettime");
        let io = match g.io {
            config::IoKind::Uring => "io_uring",
            config::IoKind::Epoll => "epoll",
        };
        kv!(s, "multiplexing_api", "{io}");
        kv!(s, "atomicvar_api", "c11-builtin");
        kv!(s, "gcc_version", "0.0.0");
        kv!(s, "process_id", "{}", std::process::id());
        kv!(s, "process_supervised", "no");
        kv!(s, "run_id", "{}", g.run_id);
        kv!(s, "tcp_port", "{}", g.port);
        kv!(s, "server_time_usec", "{}", now_us());
        kv!(s, "uptime_in_seconds", "{uptime}");
        kv!(s, "uptime_in_days", "{}", uptime / 86400);
        kv!(s, "hz", "{}", cfg.get("hz"));
        kv!(s, "configured_hz", "{}", cfg.get("hz"));
        kv!(s, "lru_clock", "{}", (now / 1000) & ((1 << 24) - 1));
        let exe = std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        kv!(s, "executable", "{exe}");
        let file = g
            .config_file
            .as_ref()
            .map(|f| {
                std::fs::canonicalize(f)
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|_| f.clone())
            })
            .unwrap_or_default();
        kv!(s, "config_file", "{file}");
        kv!(s, "io_threads_active", "0");
        sections.push(s);
    }

    if on("clients") {
        let mut s = String::from("# Clients\r\n");
        kv!(
            s,
            "connected_clients",
            "{}",
            g.connected_clients.load(Ordering::Relaxed)
        );
        kv!(s, "cluster_connections", "0");
        kv!(s, "maxclients", "{}", cfg.get("maxclients"));
        kv!(
            s,
            "client_recent_max_input_buffer",
            "{}",
            figs.iter().map(|f| f.peak_in).max().unwrap_or(0)
        );
        kv!(
            s,
            "client_recent_max_output_buffer",
            "{}",
            figs.iter().map(|f| f.peak_out).max().unwrap_or(0)
        );
        kv!(
            s,
            "blocked_clients",
            "{}",
            figs.iter().map(|f| f.blocked).sum::<usize>()
        );
        kv!(
            s,
            "tracking_clients",
            "{}",
            crate::shard::tracking::TRACKING_CLIENTS.load(std::sync::atomic::Ordering::Relaxed)
        );
        kv!(s, "clients_in_timeout_table", "0");
        sections.push(s);
    }

    if on("memory") {
        let mut s = String::from("# Memory\r\n");
        let (used, peak) = used_and_peak();
        let r = super::memory::MemReport::new(figs.iter().map(|f| &f.mem), used, peak);
        let rss = r.rss;
        let sysmem = total_system_memory();
        let maxmem = cfg.get_i64("maxmemory").max(0) as u64;
        let ratio = super::memory::ratio;
        let diff = |a: u64, b: u64| a as i64 - b as i64;
        kv!(s, "used_memory", "{used}");
        kv!(s, "used_memory_human", "{}", bytes_human(used));
        kv!(s, "used_memory_rss", "{rss}");
        kv!(s, "used_memory_rss_human", "{}", bytes_human(rss));
        kv!(s, "used_memory_peak", "{peak}");
        kv!(s, "used_memory_peak_human", "{}", bytes_human(peak));
        kv!(s, "used_memory_peak_perc", "{:.2}%", r.peak_perc());
        kv!(s, "used_memory_overhead", "{}", r.overhead);
        kv!(s, "used_memory_startup", "{}", r.startup);
        kv!(s, "used_memory_dataset", "{}", r.dataset);
        kv!(s, "used_memory_dataset_perc", "{:.2}%", r.dataset_perc());
        kv!(s, "allocator_allocated", "{}", r.allocated);
        kv!(s, "allocator_active", "{}", r.active);
        kv!(s, "allocator_resident", "{}", r.resident);
        kv!(s, "total_system_memory", "{sysmem}");
        kv!(s, "total_system_memory_human", "{}", bytes_human(sysmem));
        kv!(s, "maxmemory", "{maxmem}");
        kv!(s, "maxmemory_human", "{}", bytes_human(maxmem));
        kv!(s, "maxmemory_policy", "{}", cfg.get("maxmemory-policy"));
        kv!(
            s,
            "allocator_frag_ratio",
            "{:.2}",
            ratio(r.active, r.allocated)
        );
        kv!(s, "allocator_frag_bytes", "{}", diff(r.active, r.allocated));
        kv!(
            s,
            "allocator_rss_ratio",
            "{:.2}",
            ratio(r.resident, r.active)
        );
        kv!(s, "allocator_rss_bytes", "{}", diff(r.resident, r.active));
        kv!(s, "rss_overhead_ratio", "{:.2}", ratio(rss, r.resident));
        kv!(s, "rss_overhead_bytes", "{}", diff(rss, r.resident));
        kv!(s, "mem_fragmentation_ratio", "{:.2}", ratio(rss, used));
        kv!(s, "mem_fragmentation_bytes", "{}", diff(rss, used));
        kv!(
            s,
            "mem_not_counted_for_evict",
            "{}",
            crate::shard::evict::FIXED_IO.load(Ordering::Relaxed)
        );
        kv!(s, "mem_replication_backlog", "0");
        kv!(s, "mem_total_replication_buffers", "0");
        kv!(s, "mem_clients_slaves", "0");
        kv!(s, "mem_clients_normal", "{}", r.clients);
        kv!(s, "mem_cluster_links", "0");
        kv!(s, "mem_aof_buffer", "0");
        kv!(
            s,
            "mem_allocator",
            "mimalloc-{}",
            crate::alloc::allocator_version()
        );
        kv!(s, "active_defrag_running", "0");
        kv!(
            s,
            "lazyfree_pending_objects",
            "{}",
            crate::lazyfree::pending_objects()
        );
        kv!(
            s,
            "lazyfreed_objects",
            "{}",
            crate::lazyfree::freed_objects()
        );
        sections.push(s);
    }

    if on("persistence") {
        let mut s = String::from("# Persistence\r\n");
        let ps = &g.persist;
        let ld = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        let loading = ps.loading();
        kv!(s, "loading", "{}", loading as u8);
        kv!(s, "async_loading", "0");
        if loading {
            kv!(s, "loading_start_time", "{}", ld(&ps.loading_start_secs));
        }
        let in_prog = ps.in_progress.load(std::sync::atomic::Ordering::Relaxed);
        kv!(s, "current_cow_peak", "0");
        kv!(s, "current_cow_size", "0");
        kv!(s, "current_cow_size_age", "0");
        kv!(s, "current_fork_perc", "0.00");
        kv!(
            s,
            "current_save_keys_processed",
            "{}",
            if in_prog { ld(&ps.keys_processed) } else { 0 }
        );
        kv!(
            s,
            "current_save_keys_total",
            "{}",
            if in_prog { ld(&ps.keys_total) } else { 0 }
        );
        kv!(
            s,
            "rdb_changes_since_last_save",
            "{}",
            sum(|f| f.dirty).saturating_sub(ld(&ps.dirty_saved))
        );
        kv!(s, "rdb_bgsave_in_progress", "{}", in_prog as u8);
        kv!(s, "rdb_last_save_time", "{}", ld(&ps.last_save_secs));
        kv!(
            s,
            "rdb_last_bgsave_status",
            "{}",
            if ps.last_ok.load(std::sync::atomic::Ordering::Relaxed) {
                "ok"
            } else {
                "err"
            }
        );
        kv!(
            s,
            "rdb_last_bgsave_time_sec",
            "{}",
            ps.last_duration_secs
                .load(std::sync::atomic::Ordering::Relaxed)
        );
        kv!(
            s,
            "rdb_current_bgsave_time_sec",
            "{}",
            if in_prog {
                (crate::util::now_ms().saturating_sub(ld(&ps.start_ms)) / 1000) as i64
            } else {
                -1
            }
        );
        kv!(s, "rdb_saves", "{}", ld(&ps.saves));
        kv!(s, "rdb_last_cow_size", "0");
        kv!(
            s,
            "rdb_last_load_keys_expired",
            "{}",
            ld(&ps.load_keys_expired)
        );
        kv!(
            s,
            "rdb_last_load_keys_loaded",
            "{}",
            ld(&ps.load_keys_loaded)
        );
        kv!(s, "aof_enabled", "0");
        kv!(s, "aof_rewrite_in_progress", "0");
        kv!(s, "aof_rewrite_scheduled", "0");
        kv!(s, "aof_last_rewrite_time_sec", "-1");
        kv!(s, "aof_current_rewrite_time_sec", "-1");
        kv!(s, "aof_last_bgrewrite_status", "ok");
        kv!(s, "aof_rewrites", "0");
        kv!(s, "aof_rewrites_consecutive_failures", "0");
        kv!(s, "aof_last_write_status", "ok");
        kv!(s, "aof_last_cow_size", "0");
        kv!(s, "module_fork_in_progress", "0");
        kv!(s, "module_fork_last_cow_size", "0");
        sections.push(s);
    }

    if on("stats") {
        let mut s = String::from("# Stats\r\n");
        let cmds = sum(|f| f.total_commands);
        let (net_in, net_out) = (sum(|f| f.net_in), sum(|f| f.net_out));
        let (ops, ik, ok) = instantaneous(cmds, net_in, net_out);
        kv!(
            s,
            "total_connections_received",
            "{}",
            sum(|f| f.total_connections)
        );
        kv!(s, "total_commands_processed", "{cmds}");
        kv!(s, "instantaneous_ops_per_sec", "{ops}");
        kv!(s, "total_net_input_bytes", "{net_in}");
        kv!(s, "total_net_output_bytes", "{net_out}");
        kv!(s, "total_net_repl_input_bytes", "0");
        kv!(s, "total_net_repl_output_bytes", "0");
        kv!(s, "instantaneous_input_kbps", "{ik:.2}");
        kv!(s, "instantaneous_output_kbps", "{ok:.2}");
        kv!(s, "instantaneous_input_repl_kbps", "0.00");
        kv!(s, "instantaneous_output_repl_kbps", "0.00");
        kv!(
            s,
            "rejected_connections",
            "{}",
            sum(|f| f.rejected_connections)
        );
        kv!(s, "sync_full", "0");
        kv!(s, "sync_partial_ok", "0");
        kv!(s, "sync_partial_err", "0");
        kv!(s, "expired_keys", "{}", sum(|f| f.ks.expired_keys));
        let stale = if figs.is_empty() {
            0.0
        } else {
            figs.iter().map(|f| f.ks.expired_stale_perc).sum::<f64>() / figs.len() as f64
        };
        kv!(s, "expired_stale_perc", "{stale:.2}");
        kv!(
            s,
            "expired_time_cap_reached_count",
            "{}",
            sum(|f| f.ks.expired_time_cap_reached)
        );
        kv!(s, "expire_cycle_cpu_milliseconds", "0");
        kv!(s, "evicted_keys", "{}", sum(|f| f.ks.evicted_keys));
        kv!(s, "evicted_clients", "0");
        kv!(s, "total_eviction_exceeded_time", "0");
        kv!(s, "current_eviction_exceeded_time", "0");
        kv!(s, "keyspace_hits", "{}", sum(|f| f.ks.keyspace_hits));
        kv!(s, "keyspace_misses", "{}", sum(|f| f.ks.keyspace_misses));
        let ps = figs.get(me).map_or((0, 0, 0), |f| f.pubsub);
        kv!(s, "pubsub_channels", "{}", ps.0);
        kv!(s, "pubsub_patterns", "{}", ps.1);
        kv!(s, "pubsubshard_channels", "{}", ps.2);
        kv!(s, "latest_fork_usec", "0");
        kv!(s, "total_forks", "0");
        kv!(s, "migrate_cached_sockets", "0");
        kv!(s, "slave_expires_tracked_keys", "0");
        kv!(s, "active_defrag_hits", "0");
        kv!(s, "active_defrag_misses", "0");
        kv!(s, "active_defrag_key_hits", "0");
        kv!(s, "active_defrag_key_misses", "0");
        kv!(s, "total_active_defrag_time", "0");
        kv!(s, "current_active_defrag_time", "0");
        kv!(
            s,
            "tracking_total_keys",
            "{}",
            figs.iter().map(|f| f.tracking.0).sum::<usize>()
        );
        kv!(
            s,
            "tracking_total_items",
            "{}",
            figs.iter().map(|f| f.tracking.1).sum::<usize>()
        );
        // Every shard holds every prefix: one shard's count.
        kv!(
            s,
            "tracking_total_prefixes",
            "{}",
            figs.get(me).map_or(0, |f| f.tracking.2)
        );
        kv!(s, "unexpected_error_replies", "0");
        kv!(
            s,
            "total_error_replies",
            "{}",
            sum(|f| f.total_error_replies)
        );
        kv!(s, "dump_payload_sanitizations", "0");
        kv!(s, "io_threaded_reads_processed", "0");
        kv!(s, "io_threaded_writes_processed", "0");
        sections.push(s);
    }

    if on("replication") {
        let mut s = String::from("# Replication\r\n");
        kv!(s, "role", "master");
        kv!(s, "connected_slaves", "0");
        kv!(s, "master_failover_state", "no-failover");
        kv!(s, "master_replid", "{}", master_replid());
        kv!(s, "master_replid2", "{}", "0".repeat(40));
        kv!(s, "master_repl_offset", "0");
        kv!(s, "second_repl_offset", "-1");
        kv!(s, "repl_backlog_active", "0");
        kv!(s, "repl_backlog_size", "{}", cfg.get("repl-backlog-size"));
        kv!(s, "repl_backlog_first_byte_offset", "0");
        kv!(s, "repl_backlog_histlen", "0");
        sections.push(s);
    }

    if on("cpu") {
        let mut s = String::from("# CPU\r\n");
        let (sys, user) = rusage(libc::RUSAGE_SELF);
        let (csys, cuser) = rusage(libc::RUSAGE_CHILDREN);
        let (tsys, tuser) = figs
            .iter()
            .find(|f| f.id == me)
            .map(|f| f.cpu)
            .unwrap_or_else(|| rusage(libc::RUSAGE_THREAD));
        kv!(s, "used_cpu_sys", "{}", fmt_tv(sys));
        kv!(s, "used_cpu_user", "{}", fmt_tv(user));
        kv!(s, "used_cpu_sys_children", "{}", fmt_tv(csys));
        kv!(s, "used_cpu_user_children", "{}", fmt_tv(cuser));
        kv!(s, "used_cpu_sys_main_thread", "{}", fmt_tv(tsys));
        kv!(s, "used_cpu_user_main_thread", "{}", fmt_tv(tuser));
        sections.push(s);
    }

    if on("modules") {
        sections.push("# Modules\r\n".into());
    }

    if on("commandstats") {
        let mut s = String::from("# Commandstats\r\n");
        let list = &cmd::table().list;
        for (i, c) in list.iter().enumerate() {
            let mut t = CmdStat::default();
            for f in figs {
                if let Some(x) = f.cmds.get(i) {
                    t.calls += x.calls;
                    t.nsec += x.nsec;
                    t.rejected += x.rejected;
                    t.failed += x.failed;
                }
            }
            if t.calls == 0 && t.rejected == 0 && t.failed == 0 {
                continue;
            }
            let per = if t.calls == 0 {
                0.0
            } else {
                t.nsec as f64 / 1000.0 / t.calls as f64
            };
            kv!(
                s,
                format!("cmdstat_{}", c.name),
                "calls={},usec={},usec_per_call={per:.2},rejected_calls={},failed_calls={}",
                t.calls,
                t.nsec / 1000,
                t.rejected,
                t.failed
            );
        }
        sections.push(s);
    }

    if on("errorstats") {
        let mut s = String::from("# Errorstats\r\n");
        let mut errs: std::collections::BTreeMap<&str, u64> = Default::default();
        for f in figs {
            for (k, v) in &f.errors {
                *errs.entry(k.as_str()).or_insert(0) += v;
            }
        }
        for (k, v) in errs {
            kv!(s, format!("errorstat_{k}"), "count={v}");
        }
        sections.push(s);
    }

    if on("latencystats") {
        sections.push(latencystats.to_string());
    }

    if on("cluster") {
        sections.push("# Cluster\r\ncluster_enabled:0\r\n".into());
    }

    if on("keyspace") {
        let mut s = String::from("# Keyspace\r\n");
        let ndb = figs.iter().map(|f| f.dbs.len()).max().unwrap_or(0);
        for db in 0..ndb {
            let (mut keys, mut expires, mut ttl_weighted) = (0u64, 0u64, 0u128);
            for f in figs {
                if let Some(&(k, e, t)) = f.dbs.get(db) {
                    keys += k;
                    expires += e;
                    ttl_weighted += t as u128 * e as u128;
                }
            }
            if keys == 0 && expires == 0 {
                continue;
            }
            let avg = if expires > 0 {
                ttl_weighted / expires as u128
            } else {
                0
            };
            kv!(
                s,
                format!("db{db}"),
                "keys={keys},expires={expires},avg_ttl={avg}"
            );
        }
        sections.push(s);
    }

    if on("shards") {
        let mut s = String::from("# Shards\r\n");
        for f in figs {
            let cpu = g
                .cpus
                .get(f.id)
                .copied()
                .flatten()
                .map(|c| c.to_string())
                .unwrap_or_else(|| "any".into());
            let keys: u64 = f.dbs.iter().map(|d| d.0).sum();
            let expires: u64 = f.dbs.iter().map(|d| d.1).sum();
            // The connection running INFO is out of its shard's table
            // while its command runs.
            let conns = f.conns + (f.id == me) as usize;
            kv!(
                s,
                format!("shard{}", f.id),
                "cpu={cpu},keys={keys},expires={expires},commands={},ops_per_sec={},connections={conns},\
                 loop_iterations={},loops_per_sec={},submissions={},completions={},\
                 submissions_per_loop={:.2},completions_per_loop={:.2},msgs_sent={},msgs_received={},\
                 used_cpu_sys={},used_cpu_user={}",
                f.total_commands,
                f.rates.ops_per_sec,
                f.loop_iterations,
                f.rates.turns_per_sec,
                f.submissions,
                f.completions,
                f.rates.submissions_per_turn,
                f.rates.completions_per_turn,
                f.msgs_sent,
                f.msgs_received,
                fmt_tv(f.cpu.0),
                fmt_tv(f.cpu.1)
            );
        }
        sections.push(s);
    }

    sections.join("\r\n")
}

fn info_cmd(ctx: &mut SrvCtx, args: &[&[u8]]) {
    let set = info_sections(args);
    let cmds_bit = 1
        << SECTIONS
            .iter()
            .position(|s| *s == "commandstats")
            .unwrap_or(0);
    let with_cmds = set & cmds_bit != 0;
    let figs = ctx
        .sh
        .on_all(move |sh: &mut Shard| shard_fig(sh, with_cmds));
    let g = ctx.sh.g.clone();
    let lat_bit = 1
        << SECTIONS
            .iter()
            .position(|s| *s == "latencystats")
            .unwrap_or(0);
    let lat = if set & lat_bit != 0 {
        crate::metrics::info_latencystats(ctx.sh)
    } else {
        String::new()
    };
    let text = info_text(&g, ctx.sh.id, &figs, set, &lat);
    ctx.out.verbatim(text.as_bytes());
}

// ----- TIME, ROLE, LASTSAVE, LOLWUT ----------------------------------------------

fn time_cmd(ctx: &mut SrvCtx, _args: &[&[u8]]) {
    let us = now_us();
    ctx.out.array(2);
    ctx.out.bulk_int((us / 1_000_000) as i64);
    ctx.out.bulk_int((us % 1_000_000) as i64);
}

fn role_cmd(ctx: &mut SrvCtx, _args: &[&[u8]]) {
    ctx.out.array(3);
    ctx.out.bulk(b"master");
    ctx.out.int(0);
    ctx.out.array(0);
}

fn lastsave_cmd(ctx: &mut SrvCtx, _args: &[&[u8]]) {
    // The start time until the first save, as Redis.
    let t = ctx
        .sh
        .g
        .persist
        .last_save_secs
        .load(std::sync::atomic::Ordering::Relaxed);
    ctx.out.int(t as i64);
}

fn lolwut_cmd(ctx: &mut SrvCtx, args: &[&[u8]]) {
    if args.len() >= 3 && eq_ic(args[1], "version") && parse_i64(args[2]).is_none() {
        return ctx.out.not_int();
    }
    let text = format!("ringkv ver. {}\n", env!("CARGO_PKG_VERSION"));
    ctx.out.verbatim(text.as_bytes());
}

// ----- DEBUG -------------------------------------------------------------------

const DEBUG_HELP: &[&str] = &[
    "SET-ACTIVE-EXPIRE <0|1>",
    "    Setting it to 0 disables expiring keys in background when they are not",
    "    accessed (otherwise the Redis behavior). Setting it to 1 reenables back the",
    "    default.",
    "SLEEP <seconds>",
    "    Stop the server for <seconds>. Decimals allowed.",
];

/// Whether `enable-debug-command` (no | yes | local) lets this client run
/// DEBUG; `local` means a loopback peer (127.0.0.1 or ::1), as in Redis.
fn debug_allowed(ctx: &SrvCtx) -> bool {
    let mode = ctx
        .sh
        .g
        .config
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .get("enable-debug-command")
        .to_string();
    match mode.as_str() {
        "yes" => true,
        "local" => is_loopback_peer(&ctx.conn.addr),
        _ => false,
    }
}

/// "ip:port" of a loopback peer (IPv4 127.0.0.1 or IPv6 ::1)?
fn is_loopback_peer(addr: &str) -> bool {
    matches!(addr.rsplit_once(':'), Some(("127.0.0.1" | "::1", _)))
}

fn debug_cmd(ctx: &mut SrvCtx, args: &[&[u8]]) {
    if !debug_allowed(ctx) {
        return ctx.out.err(
            "DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.",
        );
    }
    let sub = String::from_utf8_lossy(args[1]).to_ascii_lowercase();
    match (sub.as_str(), args.len()) {
        ("help", 2) => help(&mut ctx.out, args[0], DEBUG_HELP),
        ("sleep", 3) => {
            // Stops this shard's thread only; the other shards keep serving.
            let secs = strtod_prefix(args[2]);
            if secs > 0.0 && secs.is_finite() {
                std::thread::sleep(std::time::Duration::from_secs_f64(secs.min(1e9)));
            }
            ctx.out.ok();
        }
        ("set-active-expire", 3) => {
            // atoi: anything but a non-zero number turns it off.
            let on = strtod_prefix(args[2]) as i64 != 0;
            ctx.sh.g.active_expire.store(on, Ordering::Relaxed);
            ctx.out.ok();
        }
        _ => ctx.out.err(&format!(
            "unknown subcommand or wrong number of arguments for '{}'. Try DEBUG HELP.",
            String::from_utf8_lossy(&args[1][..args[1].len().min(128)])
        )),
    }
}

// ----- SHUTDOWN ----------------------------------------------------------------

fn shutdown_cmd(ctx: &mut SrvCtx, args: &[&[u8]]) {
    let (mut nosave, mut save, mut now, mut force, mut abort) = (false, false, false, false, false);
    for a in &args[1..] {
        if eq_ic(a, "nosave") {
            nosave = true;
        } else if eq_ic(a, "save") {
            save = true;
        } else if eq_ic(a, "now") {
            now = true;
        } else if eq_ic(a, "force") {
            force = true;
        } else if eq_ic(a, "abort") {
            abort = true;
        } else {
            return ctx.out.syntax();
        }
    }
    if (abort && (nosave || save || now || force)) || (nosave && save) {
        return ctx.out.syntax();
    }
    if abort {
        // Shutdown is immediate, so there is never one in progress.
        return ctx.out.err("No shutdown in progress.");
    }
    crate::log::notice("User requested shutdown...");
    let mode = if nosave {
        crate::persist::SHUTDOWN_NOSAVE
    } else if save {
        crate::persist::SHUTDOWN_SAVE
    } else {
        crate::persist::SHUTDOWN_DEFAULT
    };
    ctx.sh
        .g
        .persist
        .shutdown_mode
        .store(mode, std::sync::atomic::Ordering::SeqCst);
    // No reply: the connection closes as the server goes down.
    ctx.conn.close_after_reply = true;
    ctx.sh.g.request_shutdown();
    // SAFETY: sending SIGTERM to our own process; the main thread waits for
    // it in sigwait and then joins the shard threads.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGTERM);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(f: impl FnOnce(&mut Out), resp3: bool) -> Vec<u8> {
        let mut v = Vec::new();
        let mut o = Out::new(&mut v, resp3);
        f(&mut o);
        v
    }

    fn s(v: &[u8]) -> String {
        String::from_utf8_lossy(v).into_owned()
    }

    fn args(v: &[&'static str]) -> Vec<&'static [u8]> {
        v.iter().map(|a| a.as_bytes()).collect()
    }

    static GET_LIKE: CmdSpec = spec!(
        "xget",
        2,
        READONLY | FAST,
        (1, 1, 1),
        "@read @string @fast",
        "1.0.0",
        Run::Srv(time_cmd),
        "Get the value of a key"
    );

    #[test]
    fn command_info_entry_matches_redis_shape() {
        let v = run(|o| reply_command_info(o, Entry::Top(&GET_LIKE)), false);
        let want = "*10\r\n$4\r\nxget\r\n:2\r\n*2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n\
                    *3\r\n+@read\r\n+@string\r\n+@fast\r\n*0\r\n\
                    *1\r\n*6\r\n$5\r\nflags\r\n*2\r\n+RO\r\n+access\r\n\
                    $12\r\nbegin_search\r\n*4\r\n$4\r\ntype\r\n$5\r\nindex\r\n$4\r\nspec\r\n*2\r\n$5\r\nindex\r\n:1\r\n\
                    $9\r\nfind_keys\r\n*4\r\n$4\r\ntype\r\n$5\r\nrange\r\n$4\r\nspec\r\n*6\r\n\
                    $7\r\nlastkey\r\n:0\r\n$7\r\nkeystep\r\n:1\r\n$5\r\nlimit\r\n:0\r\n*0\r\n";
        assert_eq!(s(&v), want);
        // RESP3: flags, categories, tips and key specs are sets.
        let v = run(|o| reply_command_info(o, Entry::Top(&GET_LIKE)), true);
        assert!(
            s(&v).starts_with("*10\r\n$4\r\nxget\r\n:2\r\n~2\r\n"),
            "{}",
            s(&v)
        );
        assert!(s(&v).ends_with(":0\r\n~0\r\n"));
    }

    #[test]
    fn container_info_has_subcommands_and_no_keys() {
        let mem = lookup(b"memory").unwrap();
        assert_eq!(mem.keys(), (0, 0, 0));
        let v = s(&run(|o| reply_command_info(o, mem), false));
        assert!(
            v.contains("$12\r\nmemory|usage\r\n:-3\r\n*1\r\n+readonly\r\n:2\r\n:2\r\n:1\r\n"),
            "{v}"
        );
        assert!(v.contains(&format!("*{}\r\n*10\r\n", MEMORY_SUBS.len())));
        assert!(lookup(b"CONFIG|GET").is_some());
        assert!(lookup(b"config|nope").is_none());
        assert!(lookup(b"config|get|x").is_none());
    }

    #[test]
    fn command_docs_and_count() {
        let v = s(&run(
            |o| command_reply(o, &args(&["command", "docs", "config", "nosuch"])),
            false,
        ));
        assert!(
            v.starts_with("*2\r\n$6\r\nconfig\r\n*10\r\n$7\r\nsummary\r\n"),
            "{v}"
        );
        assert!(
            v.contains("$11\r\nsubcommands\r\n*10\r\n$10\r\nconfig|get\r\n*4\r\n"),
            "{v}"
        );
        let v = s(&run(
            |o| command_reply(o, &args(&["command", "count"])),
            false,
        ));
        assert_eq!(v, format!(":{}\r\n", cmd::table().list.len()));
        let v = s(&run(
            |o| command_reply(o, &args(&["command", "info", "nosuch", "time"])),
            false,
        ));
        assert!(v.starts_with("*2\r\n$-1\r\n*10\r\n$4\r\ntime\r\n"), "{v}");
    }

    #[test]
    fn command_list_filters() {
        let v = s(&run(
            |o| command_list_test(o, &["command", "list", "filterby", "pattern", "conf*"]),
            false,
        ));
        assert!(v.starts_with("*6\r\n$6\r\nconfig\r\n"), "{v}");
        let v = s(&run(
            |o| command_list_test(o, &["command", "list", "filterby", "module", "x"]),
            false,
        ));
        assert_eq!(v, "*0\r\n");
        let v = s(&run(
            |o| command_list_test(o, &["command", "list", "filterby", "x", "y"]),
            false,
        ));
        assert_eq!(v, "-ERR syntax error\r\n");
        let v = s(&run(
            |o| command_list_test(o, &["command", "list", "foo"]),
            false,
        ));
        assert_eq!(v, "-ERR syntax error\r\n");
        let v = s(&run(
            |o| command_list_test(o, &["command", "list", "filterby", "aclcat", "DANGEROUS"]),
            false,
        ));
        assert!(
            v.contains("$8\r\nshutdown\r\n") && !v.contains("$4\r\ntime\r\n"),
            "{v}"
        );
    }

    fn command_list_test(o: &mut Out, a: &[&'static str]) {
        reply_command_list(o, &args(a));
    }

    #[test]
    fn getkeys_errors_and_keys() {
        let g = |a: &[&'static str], fl: bool| s(&run(|o| reply_getkeys(o, &args(a), fl), false));
        assert_eq!(
            g(&["nosuch", "a"], false),
            "-ERR Invalid command specified\r\n"
        );
        assert_eq!(
            g(&["time", "a"], false),
            "-ERR The command has no key arguments\r\n"
        );
        assert_eq!(
            g(&["memory", "nope", "k"], false),
            "-ERR Invalid command specified\r\n"
        );
        assert_eq!(
            g(&["memory", "usage"], false),
            "-ERR Invalid number of arguments specified for command\r\n"
        );
        assert_eq!(g(&["memory", "usage", "k"], false), "*1\r\n$1\r\nk\r\n");
        assert_eq!(
            g(&["MEMORY", "USAGE", "k"], true),
            "*1\r\n*2\r\n$1\r\nk\r\n*2\r\n+RO\r\n+access\r\n"
        );
    }

    #[test]
    fn key_position_ranges() {
        assert_eq!(key_positions(1, -1, 2, 5), vec![1, 3]);
        assert_eq!(key_positions(1, 1, 1, 3), vec![1]);
        assert_eq!(key_positions(2, 2, 1, 2), Vec::<usize>::new());
        assert_eq!(key_positions(1, -2, 1, 4), vec![1, 2]);
    }

    #[test]
    fn config_get_patterns() {
        let c = Config::default();
        let r = config_get(&c, &[b"MAXCLIENTS", b"maxclients", b"hz"]);
        assert_eq!(r[0], ("MAXCLIENTS".to_string(), "10000".to_string()));
        assert_eq!(r.len(), 2);
        let r = config_get(&c, &[b"max*", b"maxmemory"]);
        assert!(r.iter().all(|(k, _)| k.starts_with("max")));
        assert!(r.iter().any(|(k, _)| k == "maxmemory-policy"));
        assert_eq!(r.iter().filter(|(k, _)| k == "maxmemory").count(), 1);
        assert!(config_get(&c, &[b"nosuch"]).is_empty());
    }

    #[test]
    fn config_set_is_all_or_nothing() {
        let c = Config::default();
        let set = |p: &[&[u8]]| config_set(&c, p, true).map(|(n, _)| n);
        let n = set(&[b"maxclients", b"50", b"hz", b"20"]).unwrap();
        assert_eq!((n.get("maxclients"), n.get("hz")), ("50", "20"));
        assert_eq!(set(&[b"maxclients"]).unwrap_err(), "ERR syntax error");
        assert_eq!(
            set(&[b"maxclients", b"50", b"Nosuch", b"1"]).unwrap_err(),
            "ERR Unknown option or number of arguments for CONFIG SET - 'Nosuch'"
        );
        assert_eq!(
            set(&[b"maxclients", b"abc"]).unwrap_err(),
            "ERR CONFIG SET failed (possibly related to argument 'maxclients') - argument couldn't be parsed into an integer"
        );
        assert_eq!(
            set(&[b"MAXCLIENTS", b"1", b"maxclients", b"2"]).unwrap_err(),
            "ERR CONFIG SET failed (possibly related to argument 'maxclients') - duplicate parameter"
        );
        assert_eq!(
            set(&[b"databases", b"3", b"nosuch", b"1"]).unwrap_err(),
            "ERR CONFIG SET failed (possibly related to argument 'databases') - can't set immutable config"
        );
        assert!(set(&[b"dir", b"/tmp"])
            .unwrap_err()
            .contains("can't set protected config"));
        assert!(set(&[b"save", b"100 x"])
            .unwrap_err()
            .contains("Invalid save parameters"));
        assert_eq!(
            set(&[b"save", b"100 1 60 5"]).unwrap().get("save"),
            "100 1 60 5"
        );
        assert_eq!(set(&[b"save", b""]).unwrap().get("save"), "");
        assert!(set(&[b"maxmemory", b"1x"])
            .unwrap_err()
            .ends_with("argument must be a memory value"));
        assert_eq!(
            set(&[b"maxmemory", b"1kb"]).unwrap().get("maxmemory"),
            "1024"
        );
    }

    #[test]
    fn config_get_reports_aliases_like_redis() {
        let c = Config::default();
        // A pattern matching a directive and its alias reports both.
        let r = config_get(&c, &[b"list-max-*"]);
        let names: Vec<&str> = r.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["list-max-listpack-size", "list-max-ziplist-size"]);
        assert!(r.iter().all(|(_, v)| v == "-2"));
        let r = config_get(&c, &[b"*ziplist*"]);
        assert_eq!(r.len(), 5, "{r:?}");
        // Exact names: each once (case-insensitively), echoed as given; a
        // name and its alias are two entries.
        let r = config_get(
            &c,
            &[
                b"HASH-MAX-ZIPLIST-ENTRIES",
                b"hash-max-ziplist-entries",
                b"hash-max-listpack-entries",
                b"hash-max-*",
            ],
        );
        let names: Vec<&str> = r.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "HASH-MAX-ZIPLIST-ENTRIES",
                "hash-max-listpack-entries",
                "hash-max-listpack-value",
                "hash-max-ziplist-value"
            ]
        );
        assert_eq!(config_get(&c, &[b"lua-time-limit"])[0].1, "5000");
        // Aliases of directives ringkv lacks are unknown like those.
        assert!(config_get(&c, &[b"slaveof", b"slave-priority"]).is_empty());
    }

    #[test]
    fn config_set_aliases_like_redis() {
        let c = Config::default();
        let set = |p: &[&[u8]]| config_set(&c, p, true);
        let (n, changed) = set(&[b"list-max-ziplist-size", b"5"]).unwrap();
        assert_eq!(n.get("list-max-listpack-size"), "5");
        assert_eq!(changed, ["list-max-listpack-size"]);
        // Not a duplicate in Redis 7.0: the later one wins.
        let (n, _) = set(&[
            b"list-max-ziplist-size",
            b"5",
            b"list-max-listpack-size",
            b"7",
        ])
        .unwrap();
        assert_eq!(n.get("list-max-listpack-size"), "7");
        let (n, _) = set(&[b"lua-time-limit", b"6000"]).unwrap();
        assert_eq!(n.get("busy-reply-threshold"), "6000");
        let (n, _) = set(&[b"slave-read-only", b"no"]).unwrap();
        assert_eq!(n.get("replica-read-only"), "no");
        // A bad value names the alias, lower case; name errors name the
        // argument as given.
        assert_eq!(
            set(&[b"LIST-max-ziplist-size", b"abc"]).unwrap_err(),
            "ERR CONFIG SET failed (possibly related to argument 'list-max-ziplist-size') - argument couldn't be parsed into an integer"
        );
        assert_eq!(
            set(&[b"Hz", b"5", b"HZ", b"6"]).unwrap_err(),
            "ERR CONFIG SET failed (possibly related to argument 'HZ') - duplicate parameter"
        );
        // Name errors come before any value check.
        assert_eq!(
            set(&[b"hz", b"5", b"maxmemory-policy", b"nope", b"hz", b"7"]).unwrap_err(),
            "ERR CONFIG SET failed (possibly related to argument 'hz') - duplicate parameter"
        );
        assert_eq!(
            set(&[b"hz", b"5", b"DAEMONIZE", b"yes", b"nosuch", b"1"]).unwrap_err(),
            "ERR CONFIG SET failed (possibly related to argument 'DAEMONIZE') - can't set immutable config"
        );
        assert_eq!(
            set(&[b"hz", b"5", b"slaveof", b"1 2"]).unwrap_err(),
            "ERR Unknown option or number of arguments for CONFIG SET - 'slaveof'"
        );
        assert!(set(&[b"hz", b"20", b"maxmemory-policy", b"nope"])
            .unwrap_err()
            .starts_with("ERR CONFIG SET failed (possibly related to argument 'maxmemory-policy') - argument(s) must be one of the following: volatile-lru,"));
    }

    #[test]
    fn config_set_apply_failure_rolls_back() {
        let old = Config::default();
        let pairs: &[&[u8]] = &[b"hz", b"20", b"maxclients", b"50", b"timeout", b"9"];
        let (new, changed) = config_set(&old, pairs, true).unwrap();
        assert_eq!(changed, ["hz", "maxclients", "timeout"]);
        // An effect log standing for the server's state: the third apply
        // fails, so the first two are undone with the old values.
        let mut log: Vec<(String, String)> = Vec::new();
        let r = config::apply_all(&old, &new, &changed, &mut |name, v| {
            log.push((name.to_string(), v.to_string()));
            if name == "timeout" {
                Err("cannot apply".into())
            } else {
                Ok(())
            }
        });
        assert_eq!(r, Err(("timeout", "cannot apply".to_string())));
        let want: Vec<(String, String)> = [
            ("hz", "20"),
            ("maxclients", "50"),
            ("timeout", "9"),
            ("maxclients", "10000"),
            ("hz", "10"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(log, want);
        // With the real effects: loglevel changes only once the whole
        // command applies.
        let (new, changed) = config_set(&old, &[b"loglevel", b"warning"], true).unwrap();
        assert!(config::apply_all(&old, &new, &changed, &mut config::apply_effect).is_ok());
        assert!(config::apply_all(&new, &old, &changed, &mut config::apply_effect).is_ok());
    }

    #[test]
    fn locality() {
        assert!(is_local("127.0.0.1:5000"));
        assert!(is_local("::1:5000"));
        assert!(!is_local("10.1.2.3:5000"));
    }

    #[test]
    fn info_section_selection() {
        let bit = |n: &str| 1u32 << SECTIONS.iter().position(|s| *s == n).unwrap();
        let d = info_sections(&args(&["info"]));
        assert!(d & bit("server") != 0 && d & bit("shards") != 0);
        assert!(d & bit("commandstats") == 0 && d & bit("latencystats") == 0);
        assert_eq!(info_sections(&args(&["info", "default"])), d);
        let a = info_sections(&args(&["info", "ALL"]));
        assert!(a & bit("commandstats") != 0);
        assert_eq!(info_sections(&args(&["info", "foo"])), 0);
        assert_eq!(
            info_sections(&args(&["info", "Cluster", "server"])),
            bit("cluster") | bit("server")
        );
    }

    #[test]
    fn human_bytes_and_strtod() {
        assert_eq!(bytes_human(0), "0B");
        assert_eq!(bytes_human(941592), "919.52K");
        assert_eq!(bytes_human(12279808), "11.71M");
        assert_eq!(strtod_prefix(b"0.5"), 0.5);
        assert_eq!(strtod_prefix(b"abc"), 0.0);
        assert_eq!(strtod_prefix(b"2x"), 2.0);
        assert_eq!(strtod_prefix(b"1e-3"), 0.001);
    }

    #[test]
    fn help_text() {
        let v = s(&run(|o| help(o, b"config", CONFIG_HELP), false));
        assert!(v.starts_with(
            "*11\r\n+CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:\r\n"
        ));
        assert!(v.ends_with("+HELP\r\n+    Prints this help.\r\n"));
    }
}
