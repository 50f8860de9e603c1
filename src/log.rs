//! Logging in redis-server's format: `pid:role dd Mon yyyy hh:mm:ss.mmm level message`.

use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};

pub const DEBUG: u8 = 0;
pub const VERBOSE: u8 = 1;
pub const NOTICE: u8 = 2;
pub const WARNING: u8 = 3;

static LEVEL: AtomicU8 = AtomicU8::new(NOTICE);

pub fn set_level(name: &str) -> bool {
    let l = match name {
        "debug" => DEBUG,
        "verbose" => VERBOSE,
        "notice" => NOTICE,
        "warning" => WARNING,
        "nothing" => 255,
        _ => return false,
    };
    LEVEL.store(l, Ordering::Relaxed);
    true
}

fn stamp() -> String {
    let ms = crate::util::now_ms();
    let secs = (ms / 1000) as i64;
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: localtime_r writes into our own tm from a valid time_t.
    unsafe {
        libc::localtime_r(&secs, &mut tm);
    }
    const MON: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{:02} {} {} {:02}:{:02}:{:02}.{:03}",
        tm.tm_mday,
        MON[tm.tm_mon.clamp(0, 11) as usize],
        tm.tm_year + 1900,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        ms % 1000
    )
}

pub fn log(level: u8, msg: &str) {
    if level < LEVEL.load(Ordering::Relaxed) {
        return;
    }
    let mark = match level {
        DEBUG => '.',
        VERBOSE => '-',
        NOTICE => '*',
        _ => '#',
    };
    let line = format!("{}:M {} {} {}\n", std::process::id(), stamp(), mark, msg);
    let _ = std::io::stderr().write_all(line.as_bytes());
}

pub fn notice(msg: &str) {
    log(NOTICE, msg)
}
pub fn warn(msg: &str) {
    log(WARNING, msg)
}
pub fn verbose(msg: &str) {
    log(VERBOSE, msg)
}
