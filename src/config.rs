//! Configuration: redis.conf-style directives from a file and from
//! `--name value` flags, validated against one table that also serves
//! CONFIG GET / SET / REWRITE.

use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug)]
pub enum Kind {
    Bool,
    Int(i64, i64),
    /// A byte count with optional k/kb/m/mb/g/gb suffix.
    Mem,
    Enum(&'static [&'static str]),
    Str,
    /// A list of words kept as one space-separated string (save, bind).
    List,
}

pub struct Param {
    pub name: &'static str,
    pub default: &'static str,
    pub kind: Kind,
    /// Can CONFIG SET change it?
    pub mutable: bool,
}

const fn p(name: &'static str, default: &'static str, kind: Kind, mutable: bool) -> Param {
    Param {
        name,
        default,
        kind,
        mutable,
    }
}

const POLICIES: &[&str] = &[
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "noeviction",
];
const YESNO_FSYNC: &[&str] = &["always", "everysec", "no"];
const LOGLEVELS: &[&str] = &["debug", "verbose", "notice", "warning", "nothing"];
const MAX: i64 = i64::MAX;

/// Every directive ringkv knows. Those ringkv does not act on yet are
/// accepted and reported by CONFIG GET so real redis.conf files load.
pub static PARAMS: &[Param] = &[
    p("port", "6379", Kind::Int(0, 65535), false),
    p("bind", "127.0.0.1 -::1", Kind::List, false),
    p("databases", "16", Kind::Int(1, 1 << 20), false),
    p("requirepass", "", Kind::Str, true),
    p("maxclients", "10000", Kind::Int(1, 1 << 30), true),
    p("timeout", "0", Kind::Int(0, i32::MAX as i64), true),
    p("tcp-keepalive", "300", Kind::Int(0, i32::MAX as i64), true),
    p("tcp-backlog", "511", Kind::Int(0, i32::MAX as i64), false),
    p("hz", "10", Kind::Int(1, 500), true),
    p("dynamic-hz", "yes", Kind::Bool, true),
    p("proto-max-bulk-len", "536870912", Kind::Mem, true),
    p("client-query-buffer-limit", "1073741824", Kind::Mem, true),
    p("loglevel", "notice", Kind::Enum(LOGLEVELS), true),
    p("logfile", "", Kind::Str, false),
    p("daemonize", "no", Kind::Bool, false),
    p("disable-thp", "yes", Kind::Bool, false),
    p(
        "supervised",
        "no",
        Kind::Enum(&["upstart", "systemd", "auto", "no"]),
        false,
    ),
    p("pidfile", "", Kind::Str, false),
    p("protected-mode", "yes", Kind::Bool, true),
    p("dir", ".", Kind::Str, true),
    p("dbfilename", "dump.rdb", Kind::Str, true),
    p("save", "3600 1 300 100 60 10000", Kind::List, true),
    p("rdbcompression", "yes", Kind::Bool, true),
    p("rdbchecksum", "yes", Kind::Bool, true),
    p("bgsave_cpulist", "", Kind::Str, false),
    p("stop-writes-on-bgsave-error", "yes", Kind::Bool, true),
    // ringkv: pacing of fork-free snapshots (see src/persist.rs).
    p("snapshot-cpu-share", "25", Kind::Int(1, 100), true),
    p("snapshot-max-bytes-per-sec", "256mb", Kind::Mem, true),
    p("appendonly", "no", Kind::Bool, true),
    p("appendfilename", "appendonly.aof", Kind::Str, false),
    p("appenddirname", "appendonlydir", Kind::Str, false),
    p("appendfsync", "everysec", Kind::Enum(YESNO_FSYNC), true),
    p("maxmemory", "0", Kind::Mem, true),
    p("maxmemory-policy", "noeviction", Kind::Enum(POLICIES), true),
    p("maxmemory-samples", "5", Kind::Int(1, 64), true),
    p("maxmemory-eviction-tenacity", "10", Kind::Int(0, 100), true),
    p("lfu-log-factor", "10", Kind::Int(0, MAX), true),
    p("lfu-decay-time", "1", Kind::Int(0, MAX), true),
    p("latency-tracking", "yes", Kind::Bool, true),
    p(
        "latency-tracking-info-percentiles",
        "50 99 99.9",
        Kind::List,
        true,
    ),
    p("latency-monitor-threshold", "0", Kind::Int(0, MAX), true),
    p("slowlog-log-slower-than", "10000", Kind::Int(-1, MAX), true),
    p("slowlog-max-len", "128", Kind::Int(0, MAX), true),
    p("notify-keyspace-events", "", Kind::Str, true),
    p("lazyfree-lazy-eviction", "no", Kind::Bool, true),
    p("lazyfree-lazy-expire", "no", Kind::Bool, true),
    p("lazyfree-lazy-server-del", "no", Kind::Bool, true),
    p("lazyfree-lazy-user-del", "no", Kind::Bool, true),
    p("lazyfree-lazy-user-flush", "no", Kind::Bool, true),
    p("io-threads", "1", Kind::Int(1, 128), false),
    p("io-threads-do-reads", "no", Kind::Bool, false),
    p("hash-max-listpack-entries", "512", Kind::Int(0, MAX), true),
    p("hash-max-listpack-value", "64", Kind::Int(0, MAX), true),
    p("list-max-listpack-size", "-2", Kind::Int(-5, MAX), true),
    p("list-compress-depth", "0", Kind::Int(0, MAX), true),
    p("set-max-intset-entries", "512", Kind::Int(0, MAX), true),
    p("zset-max-listpack-entries", "128", Kind::Int(0, MAX), true),
    p("zset-max-listpack-value", "64", Kind::Int(0, MAX), true),
    p("hll-sparse-max-bytes", "3000", Kind::Int(0, MAX), true),
    p("stream-node-max-bytes", "4096", Kind::Mem, true),
    p("stream-node-max-entries", "100", Kind::Int(0, MAX), true),
    p("activerehashing", "yes", Kind::Bool, true),
    p("activedefrag", "no", Kind::Bool, true),
    p("always-show-logo", "no", Kind::Bool, false),
    p("set-proc-title", "yes", Kind::Bool, false),
    p("appendfsync-no-rewrite", "no", Kind::Bool, true),
    p("no-appendfsync-on-rewrite", "no", Kind::Bool, true),
    p(
        "auto-aof-rewrite-percentage",
        "100",
        Kind::Int(0, MAX),
        true,
    ),
    p("auto-aof-rewrite-min-size", "67108864", Kind::Mem, true),
    p("aof-load-truncated", "yes", Kind::Bool, true),
    p("aof-use-rdb-preamble", "yes", Kind::Bool, true),
    p("aof-timestamp-enabled", "no", Kind::Bool, true),
    // ms; 0 = off. Values under 2 cron periods (2000/hz) act as that floor.
    p("watchdog-period", "0", Kind::Int(0, i32::MAX as i64), true),
    p("busy-reply-threshold", "5000", Kind::Int(0, MAX), true),
    p("cluster-enabled", "no", Kind::Bool, false),
    p("replica-read-only", "yes", Kind::Bool, true),
    p("replica-serve-stale-data", "yes", Kind::Bool, true),
    p("repl-diskless-sync", "yes", Kind::Bool, true),
    p("repl-backlog-size", "1048576", Kind::Mem, true),
    p(
        "client-output-buffer-limit",
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
        Kind::List,
        true,
    ),
    p(
        "enable-debug-command",
        "no",
        Kind::Enum(&["yes", "no", "local"]),
        false,
    ),
    p(
        "enable-protected-configs",
        "no",
        Kind::Enum(&["yes", "no", "local"]),
        false,
    ),
    p("crash-log-enabled", "yes", Kind::Bool, true),
    p(
        "oom-score-adj",
        "no",
        Kind::Enum(&["yes", "no", "relative", "absolute"]),
        true,
    ),
    p("jemalloc-bg-thread", "yes", Kind::Bool, true),
    p(
        "tracking-table-max-keys",
        "1000000",
        Kind::Int(0, MAX),
        true,
    ),
];

/// The alternative names Redis 7.0 registers for some directives
/// (alias, main name): every `createXXXConfig(name, alias, ...)` of its
/// config.c. An alias names the same setting as its main name in CONFIG
/// GET/SET, redis.conf and flags. An alias whose main directive ringkv does
/// not know (replication, cluster) is unknown like that main name.
pub static ALIASES: &[(&str, &str)] = &[
    ("cluster-slave-no-failover", "cluster-replica-no-failover"),
    ("slave-lazy-flush", "replica-lazy-flush"),
    ("slave-serve-stale-data", "replica-serve-stale-data"),
    ("slave-read-only", "replica-read-only"),
    ("slave-ignore-maxmemory", "replica-ignore-maxmemory"),
    ("slave-announce-ip", "replica-announce-ip"),
    (
        "cluster-slave-validity-factor",
        "cluster-replica-validity-factor",
    ),
    ("list-max-ziplist-size", "list-max-listpack-size"),
    ("slave-priority", "replica-priority"),
    ("slave-announce-port", "replica-announce-port"),
    ("repl-ping-slave-period", "repl-ping-replica-period"),
    ("min-slaves-to-write", "min-replicas-to-write"),
    ("min-slaves-max-lag", "min-replicas-max-lag"),
    ("lua-time-limit", "busy-reply-threshold"),
    ("hash-max-ziplist-entries", "hash-max-listpack-entries"),
    ("zset-max-ziplist-entries", "zset-max-listpack-entries"),
    ("hash-max-ziplist-value", "hash-max-listpack-value"),
    ("zset-max-ziplist-value", "zset-max-listpack-value"),
    ("slaveof", "replicaof"),
];

/// A name CONFIG GET/SET knows: a directive's main name or one of its
/// aliases, with the directive it stands for.
#[derive(Clone, Copy)]
pub struct Name {
    /// The registered name (lower case): `param.name` or an alias.
    pub name: &'static str,
    pub param: &'static Param,
}

/// Looks a name up case-insensitively among main names and aliases.
pub fn lookup(name: &str) -> Option<Name> {
    let n = name.to_ascii_lowercase();
    if let Some(p) = PARAMS.iter().find(|p| p.name == n) {
        return Some(Name {
            name: p.name,
            param: p,
        });
    }
    let &(alias, main) = ALIASES.iter().find(|(a, _)| *a == n)?;
    let param = PARAMS.iter().find(|p| p.name == main)?;
    Some(Name { name: alias, param })
}

/// Every registered name in table order, each directive followed by its
/// alias when it has one.
pub fn names() -> impl Iterator<Item = Name> {
    PARAMS.iter().flat_map(|p| {
        let alias = ALIASES
            .iter()
            .find(|(_, m)| *m == p.name)
            .map(|&(a, _)| Name { name: a, param: p });
        std::iter::once(Name {
            name: p.name,
            param: p,
        })
        .chain(alias)
    })
}

/// The directive `name` (a main name or an alias) stands for.
pub fn param(name: &str) -> Option<&'static Param> {
    lookup(name).map(|n| n.param)
}

/// Parses a memory amount as redis.conf does (1k = 1000, 1kb = 1024).
pub fn parse_mem(s: &str) -> Option<i64> {
    let l = s.to_ascii_lowercase();
    let (num, mul) = if let Some(n) = l.strip_suffix("gb") {
        (n, 1i64 << 30)
    } else if let Some(n) = l.strip_suffix("mb") {
        (n, 1 << 20)
    } else if let Some(n) = l.strip_suffix("kb") {
        (n, 1 << 10)
    } else if let Some(n) = l.strip_suffix('g') {
        (n, 1_000_000_000)
    } else if let Some(n) = l.strip_suffix('m') {
        (n, 1_000_000)
    } else if let Some(n) = l.strip_suffix('k') {
        (n, 1000)
    } else if let Some(n) = l.strip_suffix('b') {
        (n, 1)
    } else {
        (l.as_str(), 1)
    };
    let v: i64 = num.parse().ok()?;
    if v < 0 {
        return None;
    }
    v.checked_mul(mul)
}

/// Output buffer limits per client class: (class, (hard bytes, soft
/// bytes, soft seconds)).
type ObufLimits = Vec<(&'static str, (u64, u64, u64))>;

/// Parses client-output-buffer-limit's "class hard soft seconds ..."
/// (`replica` is another name of `slave`), with Redis's error texts.
fn parse_obuf_limits(v: &str) -> Result<ObufLimits, String> {
    let w: Vec<&str> = v.split_whitespace().collect();
    if !w.len().is_multiple_of(4) {
        return Err("Wrong number of arguments in buffer limit configuration.".into());
    }
    let mut out: ObufLimits = Vec::new();
    for g in w.chunks(4) {
        let class = match g[0].to_ascii_lowercase().as_str() {
            "normal" => "normal",
            "slave" | "replica" => "slave",
            "pubsub" => "pubsub",
            _ => {
                return Err("Invalid client class specified in buffer limit configuration.".into())
            }
        };
        let bad = || "Error in hard, soft or soft_seconds setting in buffer limit configuration.";
        let hard = parse_mem(g[1]).ok_or_else(bad)?;
        let soft = parse_mem(g[2]).ok_or_else(bad)?;
        let secs = crate::util::parse_i64(g[3].as_bytes())
            .filter(|&s| s >= 0)
            .ok_or_else(bad)?;
        let lim = (hard as u64, soft as u64, secs as u64);
        match out.iter_mut().find(|(c, _)| *c == class) {
            Some(slot) => slot.1 = lim,
            None => out.push((class, lim)),
        }
    }
    Ok(out)
}

/// Formats limits the way CONFIG GET shows them: classes in Redis's order.
fn format_obuf_limits(l: &ObufLimits) -> String {
    ["normal", "slave", "pubsub"]
        .iter()
        .filter_map(|class| l.iter().find(|(c, _)| c == class))
        .map(|(c, (h, s, t))| format!("{c} {h} {s} {t}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One class's limits from a client-output-buffer-limit value (no limit
/// when it is missing or unreadable).
pub fn obuf_limit(v: &str, class: &str) -> crate::conn::OutLimit {
    parse_obuf_limits(v)
        .ok()
        .and_then(|l| l.into_iter().find(|(c, _)| *c == class))
        .map(|(_, (h, s, t))| crate::conn::OutLimit::new(h, s, t))
        .unwrap_or_default()
}

/// Validates and normalises a value for `p`; the error text follows
/// Redis's CONFIG SET wording.
pub fn normalise(p: &Param, vals: &[String]) -> Result<String, String> {
    match p.kind {
        Kind::List if p.name == "save" => {
            let v = vals.join(" ");
            crate::persist::parse_save_params(&v)
                .map(|_| v.split_whitespace().collect::<Vec<_>>().join(" "))
                .map_err(|_| "Invalid save parameters".to_string())
        }
        Kind::List if p.name == "client-output-buffer-limit" => {
            parse_obuf_limits(&vals.join(" ")).map(|l| format_obuf_limits(&l))
        }
        Kind::List => Ok(vals.join(" ")),
        Kind::Str if p.name == "dir" && vals.len() == 1 => {
            if std::path::Path::new(&vals[0]).is_dir() {
                Ok(vals[0].clone())
            } else {
                Err("No such file or directory".into())
            }
        }
        Kind::Str if p.name == "dbfilename" && vals.len() == 1 => {
            if vals[0].contains('/') || vals[0].is_empty() {
                Err("dbfilename can't be a path, just a filename".into())
            } else {
                Ok(vals[0].clone())
            }
        }
        _ if vals.len() != 1 => Err("wrong number of arguments".into()),
        Kind::Bool => match vals[0].to_ascii_lowercase().as_str() {
            "yes" => Ok("yes".into()),
            "no" => Ok("no".into()),
            _ => Err("argument must be 'yes' or 'no'".into()),
        },
        Kind::Int(lo, hi) => {
            let v: i64 = vals[0]
                .parse()
                .map_err(|_| "argument couldn't be parsed into an integer".to_string())?;
            if v < lo || v > hi {
                return Err(format!("argument must be between {lo} and {hi} inclusive"));
            }
            Ok(v.to_string())
        }
        Kind::Mem => {
            let v =
                parse_mem(&vals[0]).ok_or_else(|| "argument must be a memory value".to_string())?;
            // Redis refuses limits under 1 MB for these two.
            let min = match p.name {
                "proto-max-bulk-len" | "client-query-buffer-limit" => 1 << 20,
                _ => 0,
            };
            if v < min {
                return Err(format!(
                    "argument must be between {min} and {MAX} inclusive"
                ));
            }
            Ok(v.to_string())
        }
        Kind::Enum(opts) => {
            let v = vals[0].to_ascii_lowercase();
            if opts.contains(&v.as_str()) {
                Ok(v)
            } else {
                Err("argument(s) must be one of the following: ".to_string() + &opts.join(", "))
            }
        }
        Kind::Str => Ok(vals[0].clone()),
    }
}

/// The side effect of a directive taking `value` outside the stored
/// configuration (most settings are read from it where they are used and
/// have none). Err is the reason, as CONFIG SET reports it.
pub fn apply_effect(name: &str, value: &str) -> Result<(), String> {
    match name {
        "loglevel" => {
            if crate::log::set_level(value) {
                Ok(())
            } else {
                Err("Invalid log level".into())
            }
        }
        // Snapshots are written there: it must still be a directory when
        // the change takes effect, not only when it was validated.
        "dir" if !std::path::Path::new(value).is_dir() => {
            Err("No such file or directory".to_string())
        }
        _ => Ok(()),
    }
}

/// The apply step of a multi-parameter CONFIG SET: runs `effect` for each
/// changed directive of `changed` with its value in `new`, in order. When
/// one fails, the effects already run are undone with the values of `old`
/// (last first) and the failing directive and reason are returned; the
/// caller then keeps `old`, so nothing of the command remains.
pub fn apply_all(
    old: &Config,
    new: &Config,
    changed: &[&'static str],
    effect: &mut dyn FnMut(&str, &str) -> Result<(), String>,
) -> Result<(), (&'static str, String)> {
    for (i, &name) in changed.iter().enumerate() {
        if let Err(e) = effect(name, new.get(name)) {
            for &done in changed[..i].iter().rev() {
                // Restoring a value that was in force cannot fail in a
                // way we could do anything about.
                let _ = effect(done, old.get(done));
            }
            return Err((name, e));
        }
    }
    Ok(())
}

/// The live configuration: every parameter's normalised value.
#[derive(Clone, Debug)]
pub struct Config {
    pub values: BTreeMap<&'static str, String>,
    /// The file it was loaded from, for CONFIG REWRITE.
    pub file: Option<String>,
    // ringkv's own start-up settings (not redis.conf directives).
    pub shards: Option<usize>,
    pub cpus: Option<Vec<usize>>,
    pub pin: bool,
    pub io: IoKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoKind {
    Uring,
    Epoll,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            values: PARAMS
                .iter()
                .map(|p| (p.name, p.default.to_string()))
                .collect(),
            file: None,
            shards: None,
            cpus: None,
            pin: true,
            io: IoKind::Uring,
        }
    }
}

impl Config {
    pub fn get(&self, name: &str) -> &str {
        self.values.get(name).map(|s| s.as_str()).unwrap_or("")
    }
    pub fn get_i64(&self, name: &str) -> i64 {
        self.get(name).parse().unwrap_or(0)
    }
    pub fn get_bool(&self, name: &str) -> bool {
        self.get(name) == "yes"
    }

    /// Applies one directive (a main name or an alias) and its side
    /// effects; Err is the message to print.
    pub fn apply(&mut self, name: &str, vals: &[String]) -> Result<(), String> {
        let p = self.set_value(name, vals)?;
        apply_effect(p.name, self.get(p.name))
    }

    /// Stores one directive's normalised value, without side effects;
    /// returns the directive.
    pub fn set_value(&mut self, name: &str, vals: &[String]) -> Result<&'static Param, String> {
        let p =
            param(name).ok_or_else(|| "Bad directive or wrong number of arguments".to_string())?;
        let mut v = normalise(p, vals)?;
        if p.name == "client-output-buffer-limit" {
            // Only the classes given change.
            let mut all = parse_obuf_limits(self.get(p.name)).unwrap_or_default();
            for (class, lim) in parse_obuf_limits(&v)? {
                match all.iter_mut().find(|(c, _)| *c == class) {
                    Some(slot) => slot.1 = lim,
                    None => all.push((class, lim)),
                }
            }
            v = format_obuf_limits(&all);
        }
        if p.name == "notify-keyspace-events" {
            let f = crate::notify::parse(&v).ok_or_else(|| crate::notify::BAD_CLASS.to_string())?;
            v = crate::notify::canonical(f);
        }
        self.values.insert(p.name, v);
        Ok(p)
    }

    /// Loads directives from redis.conf-style text.
    pub fn load_text(&mut self, text: &str, origin: &str) -> Result<(), String> {
        for (i, line) in text.lines().enumerate() {
            let t = line.trim();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            let words = split_conf_line(t).ok_or_else(|| {
                fatal(
                    origin,
                    i + 1,
                    line,
                    "Unbalanced quotes in configuration line",
                )
            })?;
            if words.is_empty() {
                continue;
            }
            if words[0].eq_ignore_ascii_case("include") {
                if words.len() != 2 {
                    return Err(fatal(
                        origin,
                        i + 1,
                        line,
                        "Bad directive or wrong number of arguments",
                    ));
                }
                let inc = std::fs::read_to_string(&words[1]).map_err(|e| {
                    fatal(
                        origin,
                        i + 1,
                        line,
                        &format!("Can't open the include file: {e}"),
                    )
                })?;
                self.load_text(&inc, &words[1])?;
                continue;
            }
            self.apply(&words[0], &words[1..])
                .map_err(|e| fatal(origin, i + 1, line, &e))?;
        }
        Ok(())
    }

    /// CONFIG REWRITE: rewrites the config file with the current values of
    /// every parameter that differs from its default, keeping comments.
    pub fn rewrite(&self) -> Result<(), String> {
        let Some(path) = &self.file else {
            return Err("The server is running without a config file".into());
        };
        let old = std::fs::read_to_string(path).unwrap_or_default();
        let mut out = String::new();
        let mut written = std::collections::HashSet::new();
        for line in old.lines() {
            let t = line.trim();
            let name = t.split_whitespace().next().unwrap_or("");
            // An alias's line stands for its main directive (and is
            // rewritten under the main name, as Redis does).
            let p = match param(name) {
                Some(p) if !t.starts_with('#') => p,
                _ => {
                    out.push_str(line);
                    out.push('\n');
                    continue;
                }
            };
            if written.insert(p.name) {
                out.push_str(&format!("{} {}\n", p.name, quote_conf(self.get(p.name), p)));
            }
        }
        let mut header = false;
        for p in PARAMS {
            if !written.contains(p.name) && self.get(p.name) != p.default {
                if !header {
                    out.push_str("# Generated by CONFIG REWRITE\n");
                    header = true;
                }
                out.push_str(&format!("{} {}\n", p.name, quote_conf(self.get(p.name), p)));
            }
        }
        let tmp = format!("{path}.tmp-{}", std::process::id());
        std::fs::write(&tmp, out).map_err(|e| format!("Rewriting config file: {e}"))?;
        std::fs::rename(&tmp, path).map_err(|e| format!("Rewriting config file: {e}"))
    }
}

fn quote_conf(v: &str, p: &Param) -> String {
    if matches!(p.kind, Kind::List) && !v.is_empty() {
        return v.to_string();
    }
    if v.is_empty() || v.contains(' ') || v.contains('"') {
        format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        v.to_string()
    }
}

fn fatal(origin: &str, line_no: usize, line: &str, msg: &str) -> String {
    format!(
        "\n*** FATAL CONFIG FILE ERROR (ringkv {}) ***\nReading the configuration file {}, at line {}\n>>> '{}'\n{}",
        env!("CARGO_PKG_VERSION"),
        origin,
        line_no,
        line.trim(),
        msg
    )
}

/// Splits a config line into words with redis.conf quoting.
pub fn split_conf_line(line: &str) -> Option<Vec<String>> {
    let bump = bumpalo::Bump::new();
    let mut args = bumpalo::collections::Vec::new_in(&bump);
    crate::resp::parser::split_args(line.as_bytes(), &bump, &mut args)?;
    Some(
        args.iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect(),
    )
}

/// Parses a CPU list such as "0-3,8".
pub fn parse_cpu_list(s: &str) -> Result<Vec<usize>, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if let Some((a, b)) = part.split_once('-') {
            let a: usize = a
                .trim()
                .parse()
                .map_err(|_| format!("bad CPU list '{s}'"))?;
            let b: usize = b
                .trim()
                .parse()
                .map_err(|_| format!("bad CPU list '{s}'"))?;
            if a > b || b > 4096 {
                return Err(format!("bad CPU range '{part}'"));
            }
            out.extend(a..=b);
        } else {
            let c: usize = part.parse().map_err(|_| format!("bad CPU list '{s}'"))?;
            if c > 4096 {
                return Err(format!("bad CPU '{part}'"));
            }
            out.push(c);
        }
    }
    if out.is_empty() {
        return Err(format!("empty CPU list '{s}'"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_units() {
        assert_eq!(parse_mem("1kb"), Some(1024));
        assert_eq!(parse_mem("1k"), Some(1000));
        assert_eq!(parse_mem("2GB"), Some(2 << 30));
        assert_eq!(parse_mem("x"), None);
    }

    #[test]
    fn config_file_errors_name_the_line() {
        let mut c = Config::default();
        assert!(c.load_text("port 7000\nmaxclients 5\n", "t.conf").is_ok());
        assert_eq!(c.get("port"), "7000");
        let e = c
            .load_text("# ok\nbogus-directive 1\n", "t.conf")
            .unwrap_err();
        assert!(e.contains("line 2") && e.contains("bogus-directive"), "{e}");
        let e = c.load_text("maxclients abc\n", "t.conf").unwrap_err();
        assert!(e.contains("integer"), "{e}");
        assert!(c.load_text("save \"\"\n", "t.conf").is_ok());
        assert_eq!(c.get("save"), "");
    }

    #[test]
    fn alias_table_matches_redis_7_0() {
        // Redis 7.0 registers 19 aliases; each is distinct from every
        // main name and names a main directive that is not itself an alias.
        assert_eq!(ALIASES.len(), 19);
        for (a, m) in ALIASES {
            assert!(
                PARAMS.iter().all(|p| p.name != *a),
                "{a} is also a main name"
            );
            assert!(ALIASES.iter().all(|(x, _)| x != m), "{m}");
            // Resolves exactly when ringkv knows the main directive.
            match (lookup(a), param(m)) {
                (Some(n), Some(p)) => {
                    assert_eq!(n.name, *a);
                    assert!(std::ptr::eq(n.param, p));
                }
                (None, None) => {}
                _ => panic!("{a} -> {m} resolves inconsistently"),
            }
        }
        for a in [
            "list-max-ziplist-size",
            "hash-max-ziplist-entries",
            "hash-max-ziplist-value",
            "zset-max-ziplist-entries",
            "zset-max-ziplist-value",
            "lua-time-limit",
            "slave-read-only",
            "SLAVE-SERVE-STALE-DATA",
        ] {
            assert!(lookup(a).is_some(), "{a}");
        }
        assert_eq!(
            param("Hash-Max-Ziplist-Entries").unwrap().name,
            "hash-max-listpack-entries"
        );
        // Every registered name is listed once by names().
        let all: Vec<&str> = names().map(|n| n.name).collect();
        let mut dedup = all.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(all.len(), dedup.len());
        assert!(all.contains(&"zset-max-ziplist-value") && all.contains(&"hz"));
    }

    #[test]
    fn config_file_accepts_ziplist_names_and_rewrites_them() {
        let mut c = Config::default();
        c.load_text(
            "hash-max-ziplist-entries 64\nHASH-MAX-ZIPLIST-VALUE 32\nlist-max-ziplist-size -3\n\
             zset-max-ziplist-entries 16\nzset-max-ziplist-value 8\nlua-time-limit 1000\n",
            "t.conf",
        )
        .unwrap();
        let got: Vec<&str> = [
            "hash-max-listpack-entries",
            "hash-max-listpack-value",
            "list-max-listpack-size",
            "zset-max-listpack-entries",
            "zset-max-listpack-value",
            "busy-reply-threshold",
        ]
        .iter()
        .map(|n| c.get(n))
        .collect();
        assert_eq!(got, ["64", "32", "-3", "16", "8", "1000"]);
        let e = c
            .load_text("hash-max-ziplist-entries x\n", "t.conf")
            .unwrap_err();
        assert!(e.contains("integer"), "{e}");
        // CONFIG REWRITE puts an alias's line under the main name, once.
        let dir = std::env::temp_dir().join(format!("ringkv-cfg-alias-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("r.conf");
        std::fs::write(
            &path,
            "# keep\nhash-max-ziplist-entries 64\nhash-max-listpack-entries 70\n",
        )
        .unwrap();
        let mut c = Config::default();
        c.load_text(&std::fs::read_to_string(&path).unwrap(), "r.conf")
            .unwrap();
        c.file = Some(path.display().to_string());
        c.set_value("hash-max-ziplist-entries", &["99".to_string()])
            .unwrap();
        c.rewrite().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(text, "# keep\nhash-max-listpack-entries 99\n");
    }

    #[test]
    fn output_buffer_limits() {
        let mut c = Config::default();
        let p = param("client-output-buffer-limit").unwrap();
        assert_eq!(c.get(p.name), p.default);
        let set = |c: &mut Config, v: &str| c.apply(p.name, &[v.to_string()]);
        set(&mut c, "pubsub 1mb 2kb 30 replica 1k 2 3").unwrap();
        assert_eq!(
            c.get(p.name),
            "normal 0 0 0 slave 1000 2 3 pubsub 1048576 2048 30"
        );
        // Nothing given changes nothing.
        set(&mut c, "").unwrap();
        assert_eq!(
            c.get(p.name),
            "normal 0 0 0 slave 1000 2 3 pubsub 1048576 2048 30"
        );
        // A config file line's words.
        let words: Vec<String> = ["NORMAL", "1mb", "0", "0"].map(String::from).into();
        c.apply(p.name, &words).unwrap();
        assert_eq!(obuf_limit(c.get(p.name), "normal").hard, 1 << 20);
        assert_eq!(obuf_limit(c.get(p.name), "pubsub").soft_secs, 30);
        for (v, e) in [
            ("normal 1 2", "Wrong number"),
            ("master 1 1 1", "Invalid client class"),
            ("normal 10mbs 1 1", "Error in hard"),
            ("normal 1 1 x", "Error in hard"),
            ("normal 1 1 -1", "Error in hard"),
            ("normal -1 1 1", "Error in hard"),
        ] {
            let err = set(&mut c, v).unwrap_err();
            assert!(err.starts_with(e), "{v}: {err}");
        }
        assert_eq!(
            obuf_limit("junk", "normal"),
            crate::conn::OutLimit::default()
        );
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-3,8").unwrap(), vec![0, 1, 2, 3, 8]);
        assert!(parse_cpu_list("3-1").is_err());
        assert!(parse_cpu_list("a").is_err());
    }
}
