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
    p("lua-time-limit", "5000", Kind::Int(0, MAX), true),
    // ms; 0 = off. Values under 2 cron periods (2000/hz) act as that floor.
    p("watchdog-period", "0", Kind::Int(0, i32::MAX as i64), true),
    p(
        "enable-debug-command",
        "no",
        Kind::Enum(&["no", "yes", "local"]),
        false,
    ),
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

pub fn param(name: &str) -> Option<&'static Param> {
    let n = name.to_ascii_lowercase();
    PARAMS.iter().find(|p| p.name == n)
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
        Kind::Mem => parse_mem(&vals[0])
            .map(|v| v.to_string())
            .ok_or_else(|| "argument must be a memory value".to_string()),
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

    /// Applies one directive; Err is the message to print.
    pub fn apply(&mut self, name: &str, vals: &[String]) -> Result<(), String> {
        let p =
            param(name).ok_or_else(|| "Bad directive or wrong number of arguments".to_string())?;
        let v = normalise(p, vals)?;
        if p.name == "loglevel" {
            crate::log::set_level(&v);
        }
        self.values.insert(p.name, v);
        Ok(())
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
            let name = t
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_ascii_lowercase();
            if t.starts_with('#') || t.is_empty() || param(&name).is_none() {
                out.push_str(line);
                out.push('\n');
                continue;
            }
            if written.insert(name.clone()) {
                let p = param(&name).unwrap();
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
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-3,8").unwrap(), vec![0, 1, 2, 3, 8]);
        assert!(parse_cpu_list("3-1").is_err());
        assert!(parse_cpu_list("a").is_err());
    }
}
