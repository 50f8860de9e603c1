//! What each shard's loop is doing, readable from other threads: when its
//! current loop turn began and the last command it dispatched. The main
//! thread reads it at shutdown to name a shard that does not stop, and the
//! watchdog thread (`watchdog-period`) reads it to log a shard whose turn
//! runs too long.
//!
//! Writers are the shard threads (two relaxed stores per loop turn, one per
//! command); readers only report, so relaxed ordering is enough.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;
use std::time::Instant;

use super::Global;

/// Milliseconds on a monotonic clock, never 0 (0 means "idle").
pub fn mono_ms() -> u64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    BASE.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1
}

/// One shard's state, on its own cache lines (128-byte aligned: adjacent
/// lines are prefetched in pairs) so shards writing theirs on every command
/// do not contend.
#[derive(Default)]
#[repr(align(128))]
pub struct ShardHealth {
    /// `mono_ms()` when the current loop turn began; 0 while the loop
    /// waits for I/O.
    turn_start: AtomicU64,
    /// 1 + index in `cmd::table().list` of the last dispatched command;
    /// 0 before the first.
    cmd: AtomicU32,
}

impl ShardHealth {
    /// The loop woke up: a turn begins. Returns its start time.
    #[inline]
    pub fn begin_turn(&self) -> u64 {
        let now = mono_ms();
        self.turn_start.store(now, Relaxed);
        now
    }

    /// The loop is about to wait for I/O. Returns how long the turn that
    /// began at `start` took, in ms.
    #[inline]
    pub fn end_turn(&self, start: u64) -> u64 {
        self.turn_start.store(0, Relaxed);
        mono_ms().saturating_sub(start)
    }

    /// Dispatch is about to run command `ci` (its index in the table).
    #[inline]
    pub fn set_cmd(&self, ci: u16) {
        self.cmd.store(ci as u32 + 1, Relaxed);
    }

    /// How long the current turn has run (ms), or None when idle.
    pub fn busy_for(&self) -> Option<u64> {
        match self.turn_start.load(Relaxed) {
            0 => None,
            t => Some(mono_ms().saturating_sub(t)),
        }
    }

    /// Name of the last command dispatched ("none" before the first).
    pub fn cmd_name(&self) -> &'static str {
        match self.cmd.load(Relaxed) {
            0 => "none",
            n => crate::cmd::table()
                .list
                .get(n as usize - 1)
                .map(|s| s.name)
                .unwrap_or("?"),
        }
    }

    /// "running 'debug' for 1234 ms" or "idle".
    pub fn describe(&self) -> String {
        match self.busy_for() {
            Some(ms) => format!(
                "its loop turn has run for {ms} ms, last command '{}'",
                self.cmd_name()
            ),
            None => format!("waiting, last command '{}'", self.cmd_name()),
        }
    }
}

/// Redis's floor for watchdog-period: twice the cron period (1000/hz).
pub fn watchdog_min_ms(hz: i64) -> u64 {
    (1000 / hz.max(1) as u64) * 2
}

/// The software watchdog: while `watchdog-period` is non-zero, logs every
/// shard whose loop turn has run longer than the period (again each time
/// the stall doubles). It cannot print the stuck thread's stack: that
/// would mean interrupting the shard thread with a signal and unwinding
/// inside the handler, which is not async-signal-safe in Rust.
pub fn spawn_watchdog(g: std::sync::Arc<Global>) {
    let r = std::thread::Builder::new()
        .name("watchdog".into())
        .spawn(move || {
            // Per shard: the turn length last logged (0: none this turn).
            let mut logged = vec![0u64; g.nshards];
            while !g.shutdown.load(Relaxed) {
                let (period, hz) = {
                    let c = g.config.read().unwrap_or_else(|e| e.into_inner());
                    (c.get_i64("watchdog-period").max(0) as u64, c.get_i64("hz"))
                };
                if period == 0 {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                    continue;
                }
                let period = period.max(watchdog_min_ms(hz));
                for (id, h) in g.health.iter().enumerate() {
                    let ms = h.busy_for().unwrap_or(0);
                    if ms < logged[id] {
                        // The stuck turn ended; a new one may start over.
                        logged[id] = 0;
                    }
                    // First past the period, then each time the turn has
                    // doubled in length, so a long stall logs a few lines.
                    if ms > period && ms >= 2 * logged[id] {
                        logged[id] = ms;
                        crate::log::warn(&format!(
                            "--- WATCHDOG TIMER EXPIRED --- shard {id} has not finished a loop turn for {ms} ms (watchdog-period {period} ms), last command '{}' (no stack trace: see docs/architecture.md)",
                            h.cmd_name()
                        ));
                    }
                }
                std::thread::sleep(std::time::Duration::from_millis((period / 4).clamp(10, 100)));
            }
        });
    if let Err(e) = r {
        crate::log::warn(&format!("could not start the watchdog thread: {e}"));
    }
}
