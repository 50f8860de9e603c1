//! MONITOR: clients that receive one line per command run by any shard.
//!
//! Registrations live in one process-wide list (MONITOR is rare; the lock
//! is only taken while `Global::monitors` > 0, which dispatch checks
//! before calling [`feed_monitors`]). The shard that ran a command formats
//! its line once and appends it to each monitor: directly for its own
//! connections, through a posted task for other shards'. A registration
//! whose connection is gone (slot freed or reused: the generation no
//! longer matches) is dropped the next time a line is delivered.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use crate::cmd;
use crate::conn::{Conn, Pending};
use crate::shard::Shard;

struct Reg {
    shard: usize,
    idx: u32,
    gen: u32,
    client_id: u64,
}

static REGS: Mutex<Vec<Reg>> = Mutex::new(Vec::new());

fn regs() -> std::sync::MutexGuard<'static, Vec<Reg>> {
    REGS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Puts the running connection `conn` (slot `idx` of shard `sh`) in
/// monitor mode. Returns false if it already is (Redis then replies
/// nothing).
pub fn register(sh: &mut Shard, conn: &Conn, idx: u32) -> bool {
    let mut r = regs();
    if r.iter().any(|x| x.client_id == conn.id) {
        return false;
    }
    r.push(Reg {
        shard: sh.id,
        idx,
        gen: conn.gen,
        client_id: conn.id,
    });
    sh.g.monitors.fetch_add(1, Ordering::AcqRel);
    true
}

/// Takes a client out of monitor mode (RESET); returns whether it was in.
pub fn unregister(sh: &mut Shard, client_id: u64) -> bool {
    let mut r = regs();
    let before = r.len();
    r.retain(|x| x.client_id != client_id);
    let gone = before - r.len();
    if gone > 0 {
        sh.g.monitors.fetch_sub(gone, Ordering::AcqRel);
    }
    gone > 0
}

/// Whether a client is in monitor mode.
pub fn is_monitor(client_id: u64) -> bool {
    regs().iter().any(|x| x.client_id == client_id)
}

/// Called by dispatch for every command while `Global::monitors` > 0.
/// Admin commands (CONFIG SET, DEBUG, MONITOR itself ...) are not shown,
/// as in Redis.
pub fn feed_monitors(sh: &mut Shard, conn: &Conn, args: &[&[u8]]) {
    let Some(first) = args.first() else {
        return;
    };
    let Some((_, spec)) = cmd::table().get(first) else {
        return;
    };
    match super::effective_flags(spec, args) {
        Some(flags) if flags & cmd::ADMIN == 0 => {}
        _ => return,
    }
    let mut targets: Vec<usize> = regs().iter().map(|r| r.shard).collect();
    if targets.is_empty() {
        return;
    }
    targets.sort_unstable();
    targets.dedup();
    let line: Arc<[u8]> = format_line(conn, spec.name, args).into();
    for s in targets {
        if s == sh.id {
            deliver(sh, &line);
        } else {
            let line = line.clone();
            sh.post(s, move |sh: &mut Shard| deliver(sh, &line));
        }
    }
}

/// Appends `line` to every monitor connection of this shard.
fn deliver(sh: &mut Shard, line: &[u8]) {
    let running = sh.current_idx();
    let mut wrote = Vec::new();
    let mut stale = 0;
    regs().retain(|r| {
        if r.shard != sh.id {
            return true;
        }
        match sh.conns.get_mut(r.idx as usize) {
            Some(Some(c)) if c.gen == r.gen && c.id == r.client_id => {
                if c.closed || c.kill {
                    stale += 1;
                    return false;
                }
                // Behind replies still out on other shards, keep order.
                if c.pending.is_empty() {
                    c.wbuf.extend_from_slice(line);
                } else {
                    c.pending.push_back(Pending::Ready(line.to_vec()));
                }
                wrote.push(r.idx);
                true
            }
            // Out of the table because it is running right now: its line
            // is skipped (it sees the other clients' commands).
            Some(None) if running == Some(r.idx) => true,
            _ => {
                stale += 1;
                false
            }
        }
    });
    for idx in wrote {
        sh.mark_dirty(idx);
    }
    if stale > 0 {
        sh.g.monitors.fetch_sub(stale, Ordering::AcqRel);
    }
}

/// `+<sec>.<usec> [<db> <addr>] "arg" "arg" ...\r\n` as Redis's
/// `replicationFeedMonitors` writes it.
pub fn format_line(conn: &Conn, cmd_name: &str, args: &[&[u8]]) -> Vec<u8> {
    let us = crate::util::now_us();
    let mut head = String::with_capacity(48);
    let _ = write!(
        head,
        "+{}.{:06} [{} {}] ",
        us / 1_000_000,
        us % 1_000_000,
        conn.db,
        conn.addr
    );
    let redacted = super::slowlog::redacted_positions(cmd_name, args);
    let mut out = head.into_bytes();
    for (j, a) in args.iter().enumerate() {
        if j > 0 {
            out.push(b' ');
        }
        if redacted.contains(&j) {
            repr(&mut out, b"(redacted)");
        } else {
            repr(&mut out, a);
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Redis's `sdscatrepr`: a double-quoted string with C-style escapes.
pub fn repr(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for &c in s {
        match c {
            b'\\' | b'"' => {
                out.push(b'\\');
                out.push(c);
            }
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x07 => out.extend_from_slice(b"\\a"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x20..=0x7e => out.push(c),
            _ => out.extend_from_slice(format!("\\x{c:02x}").as_bytes()),
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_sdscatrepr() {
        let mut v = Vec::new();
        repr(&mut v, b"a\"b\\c\n\r\t\x07\x08\x00\xff ok");
        assert_eq!(v, b"\"a\\\"b\\\\c\\n\\r\\t\\a\\b\\x00\\xff ok\"".to_vec());
    }

    #[test]
    fn line_format() {
        let mut c = Conn::new(1, -1, 1, "127.0.0.1:5000".into(), String::new(), true);
        c.db = 3;
        let l = format_line(&c, "auth", &[b"AUTH", b"secret"]);
        let s = String::from_utf8(l).unwrap();
        assert!(s.starts_with('+'));
        assert!(
            s.ends_with(" [3 127.0.0.1:5000] \"AUTH\" \"(redacted)\"\r\n"),
            "{s}"
        );
        let ts = &s[1..s.find(' ').unwrap()];
        let (sec, usec) = ts.split_once('.').unwrap();
        assert!(sec.parse::<u64>().is_ok());
        assert_eq!(usec.len(), 6);
    }
}
