//! SLOWLOG entries. Each shard keeps its own log; ids come from one
//! process-wide counter so that SLOWLOG GET can merge the shards' logs
//! newest first.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::conn::Conn;

/// Redis's SLOWLOG_ENTRY_MAX_ARGC and SLOWLOG_ENTRY_MAX_STRING.
const MAX_ARGC: usize = 32;
const MAX_STRING: usize = 128;

/// The next slow log entry id (Redis's `server.slowlog_entry_id`; SLOWLOG
/// RESET does not reset it).
pub static NEXT_ID: AtomicU64 = AtomicU64::new(0);

#[derive(Clone, Debug)]
pub struct SlowEntry {
    pub id: u64,
    /// Unix time (seconds) the command was logged.
    pub time: i64,
    pub duration_us: u64,
    pub args: Vec<Vec<u8>>,
    pub addr: String,
    pub name: Vec<u8>,
}

impl SlowEntry {
    /// An entry for `args` (already known slow), without client fields.
    pub fn new(cmd_name: &str, args: &[&[u8]], duration_us: u64) -> SlowEntry {
        let redacted = redacted_positions(cmd_name, args);
        let argc = args.len();
        let n = argc.min(MAX_ARGC);
        let mut out = Vec::with_capacity(n);
        for (j, a) in args.iter().take(n).enumerate() {
            if n != argc && j == n - 1 {
                out.push(format!("... ({} more arguments)", argc - n + 1).into_bytes());
            } else if redacted.contains(&j) {
                out.push(b"(redacted)".to_vec());
            } else if a.len() > MAX_STRING {
                let mut s = a[..MAX_STRING].to_vec();
                s.extend_from_slice(
                    format!("... ({} more bytes)", a.len() - MAX_STRING).as_bytes(),
                );
                out.push(s);
            } else {
                out.push(a.to_vec());
            }
        }
        SlowEntry {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            time: crate::util::now_ms() as i64 / 1000,
            duration_us,
            args: out,
            addr: String::new(),
            name: Vec::new(),
        }
    }

    /// Fills the client's address ("ip:port") and name.
    pub fn set_client(&mut self, c: &Conn) {
        self.addr = c.addr.clone();
        self.name = c.name.clone().unwrap_or_default();
    }
}

/// Argument positions Redis 7.0 replaces with "(redacted)" in the slow log
/// and MONITOR output: passwords of AUTH, HELLO ... AUTH, MIGRATE ... AUTH
/// / AUTH2, and CONFIG SET of sensitive parameters.
pub fn redacted_positions(cmd_name: &str, args: &[&[u8]]) -> Vec<usize> {
    use crate::util::eq_ic;
    let mut v = Vec::new();
    match cmd_name {
        "auth" => v.extend(1..args.len()),
        "hello" => {
            let mut j = 2;
            while j < args.len() {
                if eq_ic(args[j], "auth") && j + 2 < args.len() {
                    v.extend([j + 1, j + 2]);
                    j += 3;
                } else if eq_ic(args[j], "setname") {
                    j += 2;
                } else {
                    j += 1;
                }
            }
        }
        "migrate" => {
            for (j, a) in args.iter().enumerate().skip(6) {
                if eq_ic(a, "auth") {
                    v.push(j + 1);
                } else if eq_ic(a, "auth2") {
                    v.extend([j + 1, j + 2]);
                }
            }
        }
        "config" if args.len() >= 4 && eq_ic(args[1], "set") => {
            let mut j = 2;
            while j + 1 < args.len() {
                if eq_ic(args[j], "requirepass") || eq_ic(args[j], "masterauth") {
                    v.push(j + 1);
                }
                j += 2;
            }
        }
        _ => {}
    }
    v.retain(|&j| j < args.len());
    v
}

/// Merges the shards' logs (each newest first) into the `count` newest
/// entries overall.
pub fn merge(logs: Vec<Vec<SlowEntry>>, count: usize) -> Vec<SlowEntry> {
    let mut all: Vec<SlowEntry> = logs.into_iter().flatten().collect();
    all.sort_unstable_by_key(|e| std::cmp::Reverse(e.id));
    all.truncate(count);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_like_redis() {
        let long = vec![b'x'; 200];
        let e = SlowEntry::new("set", &[b"set", b"k", &long], 5);
        assert_eq!(e.args[2].len(), 128 + "... (72 more bytes)".len());
        assert!(e.args[2].ends_with(b"... (72 more bytes)"));
        let many: Vec<Vec<u8>> = (0..40).map(|i| format!("a{i}").into_bytes()).collect();
        let refs: Vec<&[u8]> = many.iter().map(|a| a.as_slice()).collect();
        let e = SlowEntry::new("rpush", &refs, 5);
        assert_eq!(e.args.len(), 32);
        assert_eq!(e.args[31], b"... (9 more arguments)");
        assert_eq!(e.args[30], b"a30");
    }

    #[test]
    fn redacts_passwords() {
        let e = SlowEntry::new("auth", &[b"AUTH", b"user", b"pw"], 1);
        assert_eq!(
            e.args,
            vec![
                b"AUTH".to_vec(),
                b"(redacted)".to_vec(),
                b"(redacted)".to_vec()
            ]
        );
        let p = redacted_positions("hello", &[b"hello", b"3", b"AUTH", b"u", b"p"]);
        assert_eq!(p, vec![3, 4]);
        let p = redacted_positions("config", &[b"config", b"set", b"requirepass", b"x"]);
        assert_eq!(p, vec![3]);
    }

    #[test]
    fn merges_newest_first() {
        let mk = |id| SlowEntry {
            id,
            time: 0,
            duration_us: 0,
            args: vec![],
            addr: String::new(),
            name: vec![],
        };
        let m = merge(vec![vec![mk(5), mk(2)], vec![mk(4), mk(3), mk(1)]], 4);
        assert_eq!(m.iter().map(|e| e.id).collect::<Vec<_>>(), vec![5, 4, 3, 2]);
    }
}
