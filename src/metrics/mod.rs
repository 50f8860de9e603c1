//! Per-shard latency metrics: command histograms, SLOWLOG, the latency
//! monitor, and MONITOR feeds. Placeholder until the latency issue fills it in.

use crate::conn::Conn;
use crate::shard::Shard;

/// Per-shard metrics state.
#[derive(Default)]
pub struct Metrics {}

impl Metrics {
    /// Called by dispatch after every executed command with its index in
    /// `cmd::table().list`, its execution time and its arguments.
    #[inline]
    pub fn on_command(&mut self, _cmd: u16, _ns: u64, _args: &[&[u8]], _conn: &Conn) {}
}

/// Called by dispatch for every command while `Global::monitors` > 0.
pub fn feed_monitors(_sh: &mut Shard, _conn: &Conn, _args: &[&[u8]]) {}
