//! Per-client buffer limits and upkeep, kept out of the request path:
//! - client-output-buffer-limit (normal class) checked once per flush;
//! - the read pause of a client whose output piles up (see
//!   [`crate::conn::OUTPUT_PAUSE`]): the request loop stops parsing, the
//!   I/O backend stops reading, and [`Shard::maybe_resume_input`] starts
//!   both again once the output drained;
//! - the cron pass: recent peak buffer sizes for INFO and shrinking the
//!   buffers a big request or reply left behind.

use super::Shard;

/// Peak sizes of clients' buffers over the last few seconds, for INFO's
/// client_recent_max_input_buffer / client_recent_max_output_buffer
/// (one slot per second, as Redis keeps 8).
#[derive(Default)]
pub struct ClientPeaks {
    sec: u64,
    input: [usize; 8],
    output: [usize; 8],
}

impl ClientPeaks {
    /// Moves to second `now_s`, clearing the slots of the seconds skipped.
    fn advance(&mut self, now_s: u64) {
        if now_s <= self.sec {
            return;
        }
        let gap = (now_s - self.sec).min(8);
        for i in 1..=gap {
            let k = ((self.sec + i) % 8) as usize;
            self.input[k] = 0;
            self.output[k] = 0;
        }
        self.sec = now_s;
    }

    pub fn record(&mut self, now_ms: u64, input: usize, output: usize) {
        let s = now_ms / 1000;
        self.advance(s);
        let k = (s % 8) as usize;
        self.input[k] = self.input[k].max(input);
        self.output[k] = self.output[k].max(output);
    }

    /// (input, output) peaks of the last 8 seconds.
    pub fn recent(&mut self, now_ms: u64) -> (usize, usize) {
        self.advance(now_ms / 1000);
        (
            self.input.iter().copied().max().unwrap_or(0),
            self.output.iter().copied().max().unwrap_or(0),
        )
    }
}

impl Shard {
    /// Called by the I/O backends before sending a connection's output:
    /// true when the output is over the client-output-buffer-limit and the
    /// connection must be closed now (its output dropped). `kill` is set
    /// and the event logged. The common case costs one comparison.
    #[inline]
    pub fn output_limit_hit(&mut self, idx: u32) -> bool {
        let Some(Some(c)) = self.conns.get_mut(idx as usize) else {
            return false;
        };
        let (lim, class) = if c.subscribed() {
            (self.cfg.obuf_pubsub, "pubsub")
        } else {
            (self.cfg.obuf_normal, "normal")
        };
        if c.output_len() <= lim.check_at && c.soft_since_ms == 0 {
            return false;
        }
        let now = crate::util::now_ms();
        if !c.over_output_limit(&lim, now) {
            return false;
        }
        let used = c.output_len();
        c.kill = true;
        let line = c.info_line(now);
        self.peaks.record(now, 0, used);
        crate::log::warn(&format!(
            "Client {line} closed: {used} bytes of replies it has not read exceed the {class} class client-output-buffer-limit (hard {} bytes, soft {} bytes for {} s).",
            lim.hard, lim.soft, lim.soft_secs
        ));
        true
    }

    /// Called by the I/O backends after output was sent (or moved): when
    /// a client stopped for too much output has drained enough, lets it run
    /// its buffered requests again at the top of the next loop turn.
    /// Returns true when it did (the backend then reads from it again).
    #[inline]
    pub fn maybe_resume_input(&mut self, idx: u32) -> bool {
        let lim = self.cfg.obuf_normal;
        let Some(Some(c)) = self.conns.get_mut(idx as usize) else {
            return false;
        };
        if !c.parse_paused || c.kill || c.closed || !c.may_resume(&lim) {
            return false;
        }
        c.parse_paused = false;
        // A closed peer is not read again.
        c.read_paused = c.eof;
        self.resume.push(idx);
        !c.eof
    }

    /// The cron's pass over this shard's clients: samples their buffer
    /// sizes for INFO and shrinks buffers left big and idle.
    pub(super) fn clients_cron(&mut self, now_ms: u64) {
        let (mut max_in, mut max_out) = (0, 0);
        for c in self.conns.iter_mut().flatten() {
            max_in = max_in.max(c.rbuf.capacity());
            max_out = max_out.max(c.output_len());
            c.shrink_buffers(now_ms);
        }
        self.peaks.record(now_ms, max_in, max_out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::{Conn, OutLimit, OUTPUT_PAUSE};

    #[test]
    fn peaks_cover_the_last_eight_seconds() {
        let mut p = ClientPeaks::default();
        p.record(10_000, 5, 7);
        p.record(10_500, 3, 9);
        assert_eq!(p.recent(11_000), (5, 9));
        p.record(14_000, 1, 1);
        assert_eq!(p.recent(17_999), (5, 9));
        // Second 10 falls out of the window at second 18.
        assert_eq!(p.recent(18_000), (1, 1));
        assert_eq!(p.recent(40_000), (0, 0));
    }

    #[test]
    fn output_limits() {
        let mut c = Conn::new(1, -1, 1, String::new(), String::new(), true);
        let unlimited = OutLimit::default();
        assert_eq!(unlimited.check_at, usize::MAX);
        assert_eq!(unlimited.stop_at, OUTPUT_PAUSE);
        let hard = OutLimit::new(1000, 0, 0);
        assert_eq!((hard.check_at, hard.stop_at), (999, 1000));
        c.wbuf.resize(999, b'x');
        assert!(!c.over_output_limit(&hard, 1));
        assert!(!c.pause_if_full(c.wbuf.len(), &hard));
        c.sending.resize(1, b'x');
        assert!(c.over_output_limit(&hard, 1));
        c.sending.resize(2, b'x');
        assert!(c.pause_if_full(c.wbuf.len(), &hard));
        assert!(c.parse_paused && c.read_paused);
        assert!(!c.may_resume(&hard));
        c.wbuf.truncate(400);
        assert!(c.may_resume(&hard));
        // Too many replies out on other shards pause parsing only.
        let mut d = Conn::new(2, -1, 1, String::new(), String::new(), true);
        for s in 0..=crate::conn::PENDING_PAUSE as u64 {
            d.pending.push_back(crate::conn::Pending::Wait(s));
        }
        assert!(d.pause_if_full(0, &unlimited));
        assert!(d.parse_paused && !d.read_paused);
        assert!(!d.may_resume(&unlimited));
        d.pending.truncate(crate::conn::PENDING_PAUSE / 2);
        assert!(d.may_resume(&unlimited));

        // Soft: over it for longer than its seconds.
        let soft = OutLimit::new(0, 100, 2);
        assert_eq!(soft.check_at, 99);
        assert!(!c.over_output_limit(&soft, 5_000));
        assert!(!c.over_output_limit(&soft, 7_000));
        assert!(c.over_output_limit(&soft, 7_001));
        // Going under the soft limit resets its clock.
        c.wbuf.clear();
        c.sending.clear();
        assert!(!c.over_output_limit(&soft, 8_000));
        assert_eq!(c.soft_since_ms, 0);
    }

    #[test]
    fn big_idle_buffers_shrink() {
        let mut c = Conn::new(1, -1, 1, String::new(), String::new(), true);
        c.last_ms = 10_000;
        c.rbuf.reserve(10 << 20);
        c.rbuf.extend_from_slice(b"*1\r\n$4\r\nPI");
        c.shrink_buffers(10_100);
        assert!(c.rbuf.capacity() < 64 * 1024, "{}", c.rbuf.capacity());
        assert_eq!(c.rbuf, b"*1\r\n$4\r\nPI");
        // A request being received keeps the room it needs.
        c.rbuf = Vec::with_capacity(1 << 20);
        c.rbuf.extend_from_slice(&[b'x'; 1000]);
        c.need = 600_000;
        c.shrink_buffers(10_100);
        assert!(c.rbuf.capacity() >= 600_000);
        // Small buffers stay while the client is active, go when idle.
        c.rbuf = Vec::with_capacity(16 * 1024);
        c.need = 0;
        c.shrink_buffers(10_100);
        assert_eq!(c.rbuf.capacity(), 16 * 1024);
        c.shrink_buffers(12_001);
        assert_eq!(c.rbuf.capacity(), 0);
        c.wbuf = Vec::with_capacity(1 << 20);
        c.shrink_buffers(12_001);
        assert!(c.wbuf.capacity() < 64 * 1024);
    }
}
