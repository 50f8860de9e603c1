//! One client connection: buffers, pipeline reply ordering and the
//! per-client state commands read and change (db, protocol, name, auth).

use std::collections::VecDeque;

/// A reply slot for pipeline order when a command ran on another shard.
pub enum Pending {
    Ready(Vec<u8>),
    Wait(u64),
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ReplyMode {
    On,
    Off,
    /// Skip the reply of the next command only.
    SkipNext,
    /// Skipping the current command's reply (was SkipNext).
    Skip,
}

/// A client parked by a blocking command (BLPOP, BZPOPMIN, ...).
pub struct Blocked {
    /// The command, re-run when one of its keys receives data.
    pub args: Vec<Vec<u8>>,
    /// (owner shard, key) of every key it waits on.
    pub keys: Vec<(usize, Vec<u8>)>,
    pub db: usize,
    /// Unix ms; 0 = forever.
    pub deadline_ms: u64,
    pub null_array: bool,
}

/// A transaction being queued (MULTI ... EXEC).
#[derive(Default)]
pub struct MultiState {
    /// The queued commands: table index and arguments.
    pub cmds: Vec<(u16, Vec<Vec<u8>>)>,
    /// The union of the queued commands' flags (EXEC under CLIENT PAUSE
    /// WRITE waits only if one of them writes).
    pub flags: u32,
    /// A command was refused while queueing: EXEC replies EXECABORT.
    pub aborted: bool,
    /// Bytes of queued arguments (CLIENT LIST multi-mem).
    pub mem: usize,
}

/// Parsing stops while more than this many replies wait for other shards
/// (the pipeline-order slots of `pending`); it resumes at half of it.
/// Replies of commands already sent to other shards cannot be held back,
/// so this bounds what a client that does not read can make them produce
/// on top of [`OUTPUT_PAUSE`] (64 replies, whatever their size).
pub const PENDING_PAUSE: usize = 64;

/// Parsing stops while a client's unsent output is over this many bytes,
/// whatever its class limit (the normal class has none by default); it
/// resumes when half of it was sent. Reading stops meanwhile too, so a
/// client that never reads its replies holds at most about this much
/// server memory (plus one reply) and TCP flow control pushes back on it.
pub const OUTPUT_PAUSE: usize = 64 << 20;

/// The client-output-buffer-limit of one client class, in bytes and
/// seconds (0 = no limit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutLimit {
    pub hard: u64,
    pub soft: u64,
    pub soft_secs: u64,
    /// Output length over which the limit must be checked: the smaller
    /// non-zero one of hard and soft (usize::MAX when both are 0).
    pub check_at: usize,
    /// Output length at which parsing stops: [`OUTPUT_PAUSE`], or the hard
    /// limit when it is lower.
    pub stop_at: usize,
}

impl OutLimit {
    pub fn new(hard: u64, soft: u64, soft_secs: u64) -> OutLimit {
        let nz = |v: u64| if v == 0 { u64::MAX } else { v };
        let check_at = match nz(hard).min(nz(soft)) {
            u64::MAX => usize::MAX,
            m => usize::try_from(m - 1).unwrap_or(usize::MAX),
        };
        let stop_at = OUTPUT_PAUSE.min(usize::try_from(nz(hard)).unwrap_or(usize::MAX));
        OutLimit {
            hard,
            soft,
            soft_secs,
            check_at,
            stop_at,
        }
    }
}

impl Default for OutLimit {
    fn default() -> Self {
        OutLimit::new(0, 0, 0)
    }
}

pub struct Conn {
    pub id: u64,
    pub fd: i32,
    /// Slot generation, to ignore stale completions after reuse.
    pub gen: u32,
    pub addr: String,
    pub laddr: String,
    /// Unparsed input (the tail of a partial request).
    pub rbuf: Vec<u8>,
    /// Buffered length needed before parsing again (0 = unknown).
    pub need: usize,
    /// Replies not yet handed to the kernel.
    pub wbuf: Vec<u8>,
    /// Reply slots waiting for other shards, in pipeline order.
    pub pending: VecDeque<Pending>,
    pub next_seq: u64,
    pub db: usize,
    pub resp3: bool,
    pub name: Option<Vec<u8>>,
    pub authed: bool,
    pub user: String,
    pub lib_name: Option<Vec<u8>>,
    pub lib_ver: Option<Vec<u8>>,
    pub created_ms: u64,
    pub last_ms: u64,
    /// Full name of the last command ("client|list"), "NULL" after an
    /// unknown one (CLIENT LIST's cmd=).
    pub last_cmd: &'static str,
    /// While a command runs: the bytes of input from its request on (it
    /// and what was pipelined after it), and its arguments' total length
    /// and count. All 0 between commands (CLIENT LIST's qbuf, argv-mem).
    pub cur_qbuf: usize,
    pub cur_argv: usize,
    pub cur_argc: usize,
    pub reply_mode: ReplyMode,
    pub no_evict: bool,
    /// Close once the output is flushed (QUIT, protocol error, KILL).
    pub close_after_reply: bool,
    /// Close now, dropping output.
    pub kill: bool,
    /// In the shard's list of connections with output to flush.
    pub in_dirty: bool,
    // I/O backend state.
    pub sending: Vec<u8>,
    pub send_off: usize,
    pub send_inflight: bool,
    pub recv_armed: bool,
    pub inflight_ops: u32,
    pub closed: bool,
    pub want_write: bool,
    /// Bytes received in total (for CLIENT LIST tot-net-in).
    pub net_in: u64,
    pub net_out: u64,
    pub cmds: u64,
    /// Parked by a blocking command.
    pub blocked: Option<Box<Blocked>>,
    /// A blocking command is out on another shard (this is its pipeline
    /// sequence number): run nothing else from this client until that
    /// command's reply (or its parking) comes back. Replies to earlier
    /// commands of the pipeline may arrive first and do not end the hold.
    pub hold_seq: Option<u64>,
    /// That command's arguments, and the waits it had before (if it is a
    /// retry), for when the other shard answers.
    pub hold_args: Option<Vec<Vec<u8>>>,
    pub hold_prev: Option<Box<Blocked>>,
    /// Requests stay unparsed until the output drained (see
    /// [`Conn::pause_if_full`]).
    pub parse_paused: bool,
    /// Reading stopped too: the pause is for output bytes.
    pub read_paused: bool,
    /// When the output first went over the soft limit (Unix ms; 0 = not
    /// over it).
    pub soft_since_ms: u64,
    /// The epoll backend's current interest set for this socket.
    pub ep_events: u32,
    /// Inside MULTI: the queued transaction.
    pub multi: Option<Box<MultiState>>,
    /// Keys this client WATCHes (db, key); the records live on the keys'
    /// owner shards (shard/watch.rs).
    pub watched: Vec<(usize, Vec<u8>)>,
    /// The peer closed while complete requests of it waited for a
    /// transaction's locks: they still run, then the connection is closed.
    pub eof: bool,
    /// CLIENT TRACKING state (None = off).
    pub tracking: Option<Box<crate::shard::tracking::ClientTracking>>,
    /// Pub/Sub subscriptions: channels, patterns, shard channels.
    pub subs: hashbrown::HashSet<Vec<u8>>,
    pub psubs: hashbrown::HashSet<Vec<u8>>,
    pub ssubs: hashbrown::HashSet<Vec<u8>>,
}

impl Conn {
    pub fn new(id: u64, fd: i32, gen: u32, addr: String, laddr: String, authed: bool) -> Conn {
        let now = crate::util::now_ms();
        Conn {
            id,
            fd,
            gen,
            addr,
            laddr,
            rbuf: Vec::new(),
            need: 0,
            wbuf: Vec::with_capacity(1024),
            pending: VecDeque::new(),
            next_seq: 0,
            db: 0,
            resp3: false,
            name: None,
            authed,
            user: "default".into(),
            lib_name: None,
            lib_ver: None,
            created_ms: now,
            last_ms: now,
            last_cmd: "NULL",
            cur_qbuf: 0,
            cur_argv: 0,
            cur_argc: 0,
            reply_mode: ReplyMode::On,
            no_evict: false,
            close_after_reply: false,
            kill: false,
            in_dirty: false,
            sending: Vec::new(),
            send_off: 0,
            send_inflight: false,
            recv_armed: false,
            inflight_ops: 0,
            closed: false,
            want_write: false,
            net_in: 0,
            net_out: 0,
            cmds: 0,
            blocked: None,
            hold_seq: None,
            hold_args: None,
            hold_prev: None,
            parse_paused: false,
            read_paused: false,
            soft_since_ms: 0,
            ep_events: libc::EPOLLIN as u32,
            multi: None,
            watched: Vec::new(),
            tracking: None,
            eof: false,
            subs: hashbrown::HashSet::new(),
            psubs: hashbrown::HashSet::new(),
            ssubs: hashbrown::HashSet::new(),
        }
    }

    /// In Pub/Sub mode (any subscription).
    #[inline]
    pub fn subscribed(&self) -> bool {
        !self.subs.is_empty() || !self.psubs.is_empty() || !self.ssubs.is_empty()
    }

    /// Bytes of output this connection holds: replies not handed to the
    /// kernel yet, plus the buffer being sent (all of it: it stays
    /// allocated until the kernel took its last byte).
    #[inline]
    pub fn output_len(&self) -> usize {
        self.wbuf.len() + self.sending.len()
    }

    /// Called by the request loop before each request: true when it must
    /// stop because too much output waits for this client. `wbuf_len` is
    /// the length of the output buffer the loop appends to (taken out of
    /// the connection meanwhile). Over [`OutLimit::stop_at`] bytes, reading
    /// stops too; over [`PENDING_PAUSE`] replies out on other shards, only
    /// parsing does (those replies come back soon). The common case costs
    /// an addition and two comparisons.
    #[inline]
    pub fn pause_if_full(&mut self, wbuf_len: usize, lim: &OutLimit) -> bool {
        let bytes = wbuf_len + self.sending.len() > lim.stop_at;
        if !bytes && self.pending.len() <= PENDING_PAUSE {
            return false;
        }
        self.parse_paused = true;
        self.read_paused |= bytes;
        true
    }

    /// Whether a client stopped by [`Conn::pause_if_full`] may run requests
    /// again: its output drained to half the bounds.
    #[inline]
    pub fn may_resume(&self, lim: &OutLimit) -> bool {
        self.output_len() <= lim.stop_at / 2 && self.pending.len() <= PENDING_PAUSE / 2
    }

    /// Checks the output against the client's class limits: true when the
    /// client must be closed (over the hard limit, or over the soft limit
    /// for longer than its seconds). Call only when `output_len()` is over
    /// `lim.check_at` or the soft-limit clock runs.
    pub fn over_output_limit(&mut self, lim: &OutLimit, now_ms: u64) -> bool {
        let used = self.output_len() as u64;
        if lim.hard > 0 && used >= lim.hard {
            return true;
        }
        if lim.soft > 0 && used >= lim.soft {
            if self.soft_since_ms == 0 {
                self.soft_since_ms = now_ms.max(1);
                return false;
            }
            return now_ms.saturating_sub(self.soft_since_ms) > lim.soft_secs * 1000;
        }
        self.soft_since_ms = 0;
        false
    }

    /// Gives back query buffer memory a big request left behind (as
    /// Redis's clientsCronResizeQueryBuffer): only when at least 4 KB are
    /// unused, and then when the client is idle for over 2 s, or when the
    /// buffer is over 32 KB and less than half of it is used. Idle output
    /// buffers over 64 KB are released too. Run from the shard cron.
    pub fn shrink_buffers(&mut self, now_ms: u64) {
        let cap = self.rbuf.capacity();
        let len = self.rbuf.len();
        if cap - len > 4096 {
            let idle = now_ms.saturating_sub(self.last_ms) > 2000;
            if idle || (cap > 32 * 1024 && len < cap / 2) {
                // Keep room for the request being received.
                let keep = len.max(self.need.min(cap));
                if keep == 0 {
                    self.rbuf = Vec::new();
                } else {
                    self.rbuf.shrink_to(keep);
                }
            }
        }
        if self.wbuf.is_empty() && self.wbuf.capacity() > 64 * 1024 {
            self.wbuf = Vec::with_capacity(1024);
        }
        // The I/O backend owns `sending` while a send is in flight.
        if self.sending.is_empty() && !self.send_inflight && self.sending.capacity() > 64 * 1024 {
            self.sending = Vec::new();
        }
    }

    /// Bytes of output waiting (Redis's omem) and the client's whole
    /// memory (tot-mem): this struct, its buffers, the running command's
    /// arguments (their lengths plus one pointer each, as Redis counts
    /// them) and the replies parked for pipeline order.
    pub fn memory(&self) -> (usize, usize) {
        let parked: usize = self
            .pending
            .iter()
            .map(|p| match p {
                Pending::Ready(v) => v.capacity(),
                Pending::Wait(_) => 0,
            })
            .sum();
        let obuf = self.wbuf.len() + self.sending.len() - self.send_off.min(self.sending.len());
        let total = std::mem::size_of::<Conn>()
            + self.rbuf.capacity()
            + self.wbuf.capacity()
            + self.sending.capacity()
            + self.pending.capacity() * std::mem::size_of::<Pending>()
            + parked
            + self.cur_argv
            + self.cur_argc * std::mem::size_of::<usize>()
            + self.name.as_ref().map_or(0, |n| n.capacity());
        (obuf, total)
    }

    /// The CLIENT LIST / CLIENT INFO line for this client, with Redis
    /// 7.0's fields. Where ringkv's buffers differ from Redis's:
    /// `qbuf` counts the unparsed input, plus while a command runs the
    /// bytes from its request on (so the caller sees its own request, as
    /// in Redis); `qbuf-free` is the spare room of the partial-request
    /// buffer, which only exists while a request is incomplete (input is
    /// parsed in place from the read buffer); `rbs` is the reply buffer's
    /// capacity and `rbp` is not tracked (0); `multi` is the number of
    /// queued commands (-1 outside MULTI), `multi-mem` their arguments' bytes; `sub`/`psub`/`ssub` count
    /// subscriptions. lib-name/lib-ver are Redis 7.2's fields.
    pub fn info_line(&self, now_ms: u64) -> String {
        let name = self
            .name
            .as_deref()
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .unwrap_or_default();
        // Redis's letters, in its order.
        let mut flags = String::new();
        if self.subscribed() {
            flags.push('P');
        }
        if self.multi.is_some() {
            flags.push('x');
        }
        if self.blocked.is_some() {
            flags.push('b');
        }
        if let Some(t) = &self.tracking {
            flags.push('t');
            if t.broken {
                flags.push('R');
            }
            if t.bcast {
                flags.push('B');
            }
        }
        if self.close_after_reply {
            flags.push('c');
        }
        if self.no_evict {
            flags.push('e');
        }

        if flags.is_empty() {
            flags.push('N');
        }
        let (omem, tot_mem) = self.memory();
        format!(
            "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} multi={} qbuf={} qbuf-free={} argv-mem={} multi-mem={} rbs={} rbp=0 obl=0 oll={} omem={} tot-mem={} events=r cmd={} user={} redir={} resp={} lib-name={} lib-ver={}",
            self.id,
            self.addr,
            self.laddr,
            self.fd,
            name,
            now_ms.saturating_sub(self.created_ms) / 1000,
            now_ms.saturating_sub(self.last_ms) / 1000,
            flags,
            self.db,
            self.subs.len(),
            self.psubs.len(),
            self.ssubs.len(),
            self.multi.as_ref().map_or(-1, |m| m.cmds.len() as i64),
            self.rbuf.len() + self.cur_qbuf,
            self.rbuf.capacity() - self.rbuf.len(),
            self.cur_argv,
            self.multi.as_ref().map_or(0, |m| m.mem),
            self.wbuf.capacity(),
            self.pending.len(),
            omem,
            tot_mem,
            self.last_cmd,
            self.user,
            self.tracking.as_ref().map_or(-1, |t| t.redirect as i64),
            if self.resp3 { 3 } else { 2 },
            self.lib_name.as_deref().map(String::from_utf8_lossy).unwrap_or_default(),
            self.lib_ver.as_deref().map(String::from_utf8_lossy).unwrap_or_default(),
        )
    }
}
