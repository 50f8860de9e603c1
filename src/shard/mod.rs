//! A shard: one thread, pinned to one CPU, owning its connections, its part
//! of the keyspace and its event loop. Shards share nothing mutable; they
//! talk over the mesh of SPSC rings.
//!
//! Routing: a command whose keys all hash to this shard runs inline. A
//! command whose keys all hash to one other shard hops there as an `Exec`
//! message and its reply comes back into the connection's pipeline slot.
//! A command whose keys span shards runs its coordinator under a
//! transaction ([`Shard::tx`], shard/tx.rs) that locks its keys on every
//! shard involved, so no client ever observes half of it.

pub mod blocking;
pub mod clients;
pub mod dict;
pub mod exec;
pub mod keyspace;
pub mod locks;
pub mod mesh;
pub mod pubsub;
pub mod snapshot;
pub mod tx;
pub mod watch;

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bumpalo::collections::Vec as BVec;
use bumpalo::Bump;

use crate::cmd::{self, CmdSpec, Ctx, Run, SrvCtx};
use crate::conn::{Blocked, Conn, Pending, ReplyMode};
use crate::resp::{self, Out, Parsed};
use crate::server::Global;
use keyspace::{BlockReq, Keyspace};
use mesh::{Mesh, Msg};
pub use tx::Tx;

/// Per-command counters (INFO commandstats).
#[derive(Default, Clone, Copy)]
pub struct CmdStat {
    pub calls: u64,
    /// Time spent executing, in nanoseconds (INFO reports microseconds).
    pub nsec: u64,
    pub rejected: u64,
    pub failed: u64,
}

#[derive(Default)]
pub struct Stats {
    pub cmds: Vec<CmdStat>,
    pub total_commands: u64,
    pub total_connections: u64,
    pub rejected_connections: u64,
    pub net_in: u64,
    pub net_out: u64,
    pub loop_iterations: u64,
    pub submissions: u64,
    pub completions: u64,
    pub errors: hashbrown::HashMap<String, u64>,
    pub total_error_replies: u64,
    /// Counter samples taken by the cron, for the per-shard rates in INFO.
    pub window: RateWindow,
}

/// The last 16 cron samples of a shard's counters (about 1.6 s at the
/// default hz), from which INFO's per-shard rates are computed, as Redis
/// averages `instantaneous_ops_per_sec` over its last 16 samples.
#[derive(Default)]
pub struct RateWindow {
    /// (ms, commands, loop iterations, submissions, completions).
    samples: std::collections::VecDeque<(u64, u64, u64, u64, u64)>,
}

/// Rates over a shard's sample window.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Rates {
    pub ops_per_sec: u64,
    pub turns_per_sec: u64,
    pub submissions_per_turn: f64,
    pub completions_per_turn: f64,
}

impl RateWindow {
    pub fn push(&mut self, ms: u64, counters: (u64, u64, u64, u64)) {
        if self.samples.len() == 16 {
            self.samples.pop_front();
        }
        let (a, b, c, d) = counters;
        self.samples.push_back((ms, a, b, c, d));
    }

    /// The rates between the oldest and the newest sample (zeros until two
    /// samples exist).
    pub fn rates(&self) -> Rates {
        let (Some(o), Some(n)) = (self.samples.front(), self.samples.back()) else {
            return Rates::default();
        };
        let ms = n.0.saturating_sub(o.0);
        if ms == 0 {
            return Rates::default();
        }
        let per_sec =
            |a: u64, b: u64| (b.saturating_sub(a) as f64 * 1000.0 / ms as f64).round() as u64;
        let turns = n.2.saturating_sub(o.2);
        let per_turn = |a: u64, b: u64| {
            if turns == 0 {
                0.0
            } else {
                b.saturating_sub(a) as f64 / turns as f64
            }
        };
        Rates {
            ops_per_sec: per_sec(o.1, n.1),
            turns_per_sec: per_sec(o.2, n.2),
            submissions_per_turn: per_turn(o.3, n.3),
            completions_per_turn: per_turn(o.4, n.4),
        }
    }
}

/// Configuration values a shard reads on its hot path, refreshed when
/// CONFIG SET bumps the global epoch.
#[derive(Clone)]
pub struct ShardCfg {
    pub requirepass: Option<Vec<u8>>,
    pub maxclients: usize,
    pub timeout_s: u64,
    pub proto_max_bulk_len: i64,
    pub client_query_buffer_limit: usize,
    /// client-output-buffer-limit of the normal class.
    pub obuf_normal: crate::conn::OutLimit,
    /// busy-reply-threshold (ms): past it, commands that would wait for a
    /// running script get -BUSY.
    pub busy_reply_ms: u64,
    /// client-output-buffer-limit of the pubsub class (subscribed clients).
    pub obuf_pubsub: crate::conn::OutLimit,
    pub databases: usize,
    pub hz: u64,
    pub enc: keyspace::EncCfg,
}

pub struct Shard {
    pub id: usize,
    pub n: usize,
    pub g: Arc<Global>,
    pub ks: Keyspace,
    pub conns: Vec<Option<Box<Conn>>>,
    free_slots: Vec<u32>,
    next_gen: u32,
    /// Connections with output to flush this turn.
    pub dirty: Vec<u32>,
    pub mesh: Mesh,
    /// Pub/Sub subscriptions here and the directory of all shards' counts.
    pub pubsub: pubsub::PubSub,
    /// Per-key intent locks of multi-shard transactions (shard/locks.rs).
    pub locks: locks::Locks,
    /// Requests from other shards that wait for locks, in arrival order.
    lock_deferred: VecDeque<(usize, Msg)>,
    /// This shard's connections whose next command waits for a lock.
    lock_wait: Vec<u32>,
    /// Keys that got data for blocked clients while locked (served after).
    locked_ready: Vec<(usize, Vec<u8>)>,
    /// Replies for connections taken out of the table while they run.
    stash: Vec<Stashed>,
    /// Connections stopped by CLIENT PAUSE, resumed when it ends.
    pub paused: Vec<u32>,
    /// The connection taken out of `conns` while its requests run.
    current: Option<u32>,
    /// The transaction this shard coordinates, while it runs.
    tx_cur: Option<tx::TxCur>,
    /// The keys (db, key) of the multi-key command being coordinated: what
    /// its transaction locks.
    pub tx_keys: Option<Vec<(usize, Vec<u8>)>>,
    bump: Bump,
    pub stats: Stats,
    pub cfg: ShardCfg,
    cfg_epoch: u64,
    /// Connection indexes to close this turn.
    pub to_close: Vec<u32>,
    /// Clients blocked on keys of this shard, in arrival order per key.
    pub waiters: hashbrown::HashMap<(usize, Vec<u8>), VecDeque<Waiter>>,
    /// This shard's own connections that are blocked (for timeouts).
    pub blocked_conns: Vec<u32>,
    /// Connections whose buffered input must run at the top of the next
    /// loop turn (never from inside a transaction or a message handler,
    /// where running a command could nest a transaction).
    resume: Vec<u32>,
    /// This shard's blocked clients that another shard asked to re-run
    /// (a key they wait on got data there); run at the top of the next
    /// loop turn, never from inside the message handler.
    retry: Vec<(u32, u32)>,
    /// Latency histograms, SLOWLOG, latency monitor (src/metrics).
    pub metrics: crate::metrics::Metrics,
    /// When the running snapshot last stepped (its CPU share).
    pub snap_last: std::time::Instant,
    /// Start-up load batches for this shard while loading dump.rdb.
    pub load_rx: Option<std::sync::mpsc::Receiver<Vec<crate::persist::LoadItem>>>,
    /// Recent peak client buffer sizes (INFO clients).
    pub peaks: clients::ClientPeaks,
}

/// A reply that arrived for the connection currently running.
type Stashed = (u32, u32, u64, Vec<u8>, Option<BlockReq>);

/// What the request loop does after a request.
#[derive(PartialEq, Eq)]
enum Flow {
    /// Go on with the next request.
    Next,
    /// Consumed; run nothing more from this client for now (it blocked).
    Stop,
    /// Not consumed (CLIENT PAUSE); keep it for later.
    Unconsumed,
}

/// The outcome of re-running a blocked client's command.
#[derive(PartialEq, Eq, Debug)]
pub enum Retry {
    Served,
    Reparked,
    Stale,
}

/// A client waiting on a key of this shard.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Waiter {
    pub shard: usize,
    pub idx: u32,
    pub gen: u32,
    pub client_id: u64,
}

/// Where a keyed command runs.
enum Route {
    Local,
    Remote(usize),
    Multi,
}

impl Shard {
    pub fn new(id: usize, g: Arc<Global>, mesh: Mesh) -> Shard {
        let cfg = g.shard_cfg();
        let n = g.nshards;
        let mut ks = Keyspace::new(cfg.databases);
        ks.enc = cfg.enc;
        let load_rx = g
            .persist
            .load_rx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(id)
            .and_then(|r| r.take());
        Shard {
            id,
            n,
            ks,
            conns: Vec::new(),
            free_slots: Vec::new(),
            next_gen: 1,
            dirty: Vec::new(),
            mesh,
            pubsub: pubsub::PubSub::default(),
            locks: locks::Locks::default(),
            lock_deferred: VecDeque::new(),
            lock_wait: Vec::new(),
            locked_ready: Vec::new(),
            stash: Vec::new(),
            paused: Vec::new(),
            current: None,
            tx_cur: None,
            tx_keys: None,
            bump: Bump::with_capacity(64 * 1024),
            stats: Stats {
                cmds: vec![CmdStat::default(); cmd::table().list.len()],
                ..Default::default()
            },
            cfg_epoch: g.config_epoch.load(Ordering::Acquire),
            cfg,
            g,
            to_close: Vec::new(),
            waiters: hashbrown::HashMap::new(),
            blocked_conns: Vec::new(),
            resume: Vec::new(),
            retry: Vec::new(),
            metrics: crate::metrics::Metrics::default(),
            snap_last: std::time::Instant::now(),
            load_rx,
            peaks: clients::ClientPeaks::default(),
        }
    }

    /// The shard that owns `key`.
    #[inline]
    pub fn shard_of(&self, key: &[u8]) -> usize {
        if self.n == 1 {
            0
        } else {
            crate::util::key_slot(key) as usize % self.n
        }
    }

    /// Re-reads configuration when CONFIG SET changed it.
    pub fn refresh_cfg(&mut self) {
        let e = self.g.config_epoch.load(Ordering::Acquire);
        if e != self.cfg_epoch {
            self.cfg_epoch = e;
            self.cfg = self.g.shard_cfg();
            self.ks.enc = self.cfg.enc;
        }
    }

    // ----- connections -------------------------------------------------

    /// Registers a new connection; returns its slot index and generation.
    pub fn add_conn(&mut self, fd: i32, addr: String, laddr: String) -> (u32, u32) {
        let id = self.g.next_client_id.fetch_add(1, Ordering::Relaxed);
        let authed = self.cfg.requirepass.is_none();
        let gen = self.next_gen;
        self.next_gen = self.next_gen.wrapping_add(1).max(1);
        let conn = Box::new(Conn::new(id, fd, gen, addr, laddr, authed));
        self.stats.total_connections += 1;
        self.g.connected_clients.fetch_add(1, Ordering::Relaxed);
        let idx = if let Some(i) = self.free_slots.pop() {
            self.conns[i as usize] = Some(conn);
            i
        } else {
            self.conns.push(Some(conn));
            (self.conns.len() - 1) as u32
        };
        (idx, gen)
    }

    /// Frees a connection slot (the backend closed the socket and has no
    /// operation in flight on its buffers).
    pub fn remove_conn(&mut self, idx: u32) {
        if let Some(slot) = self.conns.get_mut(idx as usize) {
            if let Some(mut c) = slot.take() {
                // A client that disconnects while blocked leaves no trace.
                let id = c.id;
                for b in [c.blocked.take(), c.hold_prev.take()].into_iter().flatten() {
                    self.unregister_waits(&b, id);
                }
                let watched = std::mem::take(&mut c.watched);
                self.unwatch_keys(id, watched);
                if c.subscribed() {
                    self.ps_drop_conn(&mut c, idx);
                }
                self.blocked_conns.retain(|&i| i != idx);
                self.free_slots.push(idx);
                self.g.connected_clients.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    /// The slot of the connection whose requests are running right now
    /// (it is out of `conns` meanwhile).
    pub fn current_idx(&self) -> Option<u32> {
        self.current
    }

    #[inline]
    pub fn conn(&mut self, idx: u32) -> Option<&mut Conn> {
        self.conns.get_mut(idx as usize)?.as_deref_mut()
    }

    pub fn mark_dirty(&mut self, idx: u32) {
        if let Some(c) = self
            .conns
            .get_mut(idx as usize)
            .and_then(|c| c.as_deref_mut())
        {
            if !c.in_dirty {
                c.in_dirty = true;
                self.dirty.push(idx);
            }
        }
    }

    /// Feeds received bytes to a connection: parses and runs every complete
    /// request, appending replies to its output.
    pub fn on_input(&mut self, idx: u32, data: &[u8]) {
        let Some(mut conn) = self.conns.get_mut(idx as usize).and_then(|c| c.take()) else {
            return;
        };
        self.current = Some(idx);
        conn.net_in += data.len() as u64;
        self.stats.net_in += data.len() as u64;
        // One clock read per batch: every command of the batch sees the
        // same "now" (as Redis caches the time per command).
        let now = crate::util::now_ms();
        self.ks.now = now;
        conn.last_ms = now;
        let mut wbuf = std::mem::take(&mut conn.wbuf);
        let before = wbuf.len();
        if conn.kill || conn.close_after_reply {
            // Input after QUIT or an error is ignored.
        } else if conn.blocked.is_some() || conn.hold_seq.is_some() {
            // A blocked client's next requests wait until it is served.
            conn.rbuf.extend_from_slice(data);
        } else {
            // A bug in a handler must not take the shard down: the panic is
            // caught here, logged, answered with an error, and only this
            // connection is closed.
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                if conn.rbuf.is_empty() && !data.is_empty() {
                    let used = self.run_requests(&mut conn, &mut wbuf, data, idx);
                    if used < data.len() {
                        conn.rbuf.extend_from_slice(&data[used..]);
                    }
                } else {
                    conn.rbuf.extend_from_slice(data);
                    if conn.rbuf.len() >= conn.need {
                        let rbuf = std::mem::take(&mut conn.rbuf);
                        let used = self.run_requests(&mut conn, &mut wbuf, &rbuf, idx);
                        let mut rbuf = rbuf;
                        rbuf.drain(..used);
                        conn.rbuf = rbuf;
                    }
                }
            }));
            if r.is_err() {
                crate::log::warn(&format!(
                    "internal error while serving client {} (last command '{}'); closing that connection",
                    conn.addr, conn.last_cmd
                ));
                wbuf.extend_from_slice(b"-ERR internal error (see the server log)\r\n");
                conn.rbuf.clear();
                conn.close_after_reply = true;
            }
        }
        if conn.rbuf.len() > self.cfg.client_query_buffer_limit {
            crate::log::warn(&format!(
                "closing client {}: query buffer over client-query-buffer-limit",
                conn.addr
            ));
            conn.kill = true;
        }
        let wrote = wbuf.len() != before;
        conn.wbuf = wbuf;
        let close = conn.kill || conn.close_after_reply;
        self.conns[idx as usize] = Some(conn);
        self.current = None;
        if wrote || close {
            self.mark_dirty(idx);
        }
        self.apply_stash();
    }

    /// Runs the requests in `buf`; returns the bytes consumed.
    fn run_requests(&mut self, conn: &mut Conn, wbuf: &mut Vec<u8>, buf: &[u8], idx: u32) -> usize {
        let mut bump = std::mem::take(&mut self.bump);
        let lim = resp::Limits {
            max_bulk: self.cfg.proto_max_bulk_len,
            authenticated: conn.authed,
        };
        let mut pos = 0;
        conn.need = 0;
        {
            let mut args: BVec<&[u8]> = BVec::new_in(&bump);
            while pos < buf.len() {
                if conn.kill || conn.close_after_reply {
                    pos = buf.len();
                    break;
                }
                if conn.pause_if_full(wbuf.len(), &self.cfg.obuf_normal) {
                    // Too much output waits: keep the rest for later.
                    break;
                }
                args.clear();
                match resp::parse(&buf[pos..], &bump, &mut args, lim) {
                    Ok(Parsed::Done { consumed }) => {
                        if args.is_empty() {
                            pos += consumed;
                            continue;
                        }
                        // For CLIENT LIST: the input from this request on,
                        // and the running command's arguments.
                        conn.cur_qbuf = buf.len() - pos;
                        conn.cur_argv = args.iter().map(|a| a.len()).sum();
                        conn.cur_argc = args.len();
                        let flow = self.dispatch(conn, wbuf, &args, idx);
                        (conn.cur_qbuf, conn.cur_argv, conn.cur_argc) = (0, 0, 0);
                        match flow {
                            Flow::Next => pos += consumed,
                            Flow::Stop => {
                                pos += consumed;
                                break;
                            }
                            // Paused: leave this request unconsumed.
                            Flow::Unconsumed => break,
                        }
                    }
                    Ok(Parsed::More { need }) => {
                        conn.need = need.saturating_sub(0);
                        break;
                    }
                    Err(e) => {
                        let mut out = Out::new(wbuf, conn.resp3);
                        out.err(&e);
                        crate::log::verbose(&format!("protocol error from {}: {}", conn.addr, e));
                        conn.close_after_reply = true;
                        pos = buf.len();
                        break;
                    }
                }
            }
        }
        bump.reset();
        self.bump = bump;
        pos
    }

    /// Runs one request. Returns false when the client is paused and the
    /// request must stay unconsumed.
    fn dispatch(&mut self, conn: &mut Conn, wbuf: &mut Vec<u8>, args: &[&[u8]], idx: u32) -> Flow {
        let t = cmd::table();
        let start = crate::clock::now();
        self.stats.total_commands += 1;
        conn.cmds += 1;
        // Reply routing: straight into the output buffer unless an earlier
        // command's reply is still out on another shard.
        let direct = conn.pending.is_empty();
        if conn.reply_mode == ReplyMode::SkipNext {
            conn.reply_mode = ReplyMode::Skip;
        }
        let mut scratch = Vec::new();
        let mut discard = Vec::new();
        // CLIENT REPLY itself is always answered (ON replies +OK even
        // after OFF); everything else honours the reply mode.
        let skip = conn.reply_mode != ReplyMode::On
            && !(args.len() > 1
                && args[0].eq_ignore_ascii_case(b"client")
                && args[1].eq_ignore_ascii_case(b"reply"));
        let out_buf: &mut Vec<u8> = if skip {
            &mut discard
        } else if direct {
            wbuf
        } else {
            &mut scratch
        };
        let mut out = Out::new(out_buf, conn.resp3);

        let Some((ci, spec)) = t.get(args[0]) else {
            conn.last_cmd = "NULL";
            abort_multi(conn);
            out.err(&cmd::unknown_command(args));
            self.count_error("ERR");
            self.finish_reply(conn, direct, skip, scratch);
            return Flow::Next;
        };
        conn.last_cmd = cmd::full_name(spec, args).unwrap_or("NULL");
        self.g.health[self.id].set_cmd(ci);
        if !conn.authed && spec.flags & cmd::NO_AUTH == 0 {
            abort_multi(conn);
            let code = if spec.name == "exec" {
                self.exec_refused(conn, &mut out, "NOAUTH Authentication required.")
            } else {
                out.error("NOAUTH Authentication required.");
                "NOAUTH"
            };
            self.stats.cmds[ci as usize].rejected += 1;
            self.count_error(code);
            self.finish_reply(conn, direct, skip, scratch);
            return Flow::Next;
        }
        if !spec.arity_ok(args.len()) {
            abort_multi(conn);
            let code = if spec.name == "exec" {
                self.exec_refused(
                    conn,
                    &mut out,
                    "wrong number of arguments for 'exec' command",
                )
            } else {
                out.wrong_arity(spec.name);
                "ERR"
            };
            self.stats.cmds[ci as usize].rejected += 1;
            self.count_error(code);
            self.finish_reply(conn, direct, skip, scratch);
            return Flow::Next;
        }
        if conn.subscribed() && !conn.resp3 && !cmd::pubsub::allowed_when_subscribed(spec.name) {
            out.err(&format!(
                "Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
                conn.last_cmd
            ));
            self.count_error("ERR");
            self.finish_reply(conn, direct, skip, scratch);
            return Flow::Next;
        }
        let gate = self.g.persist.gate.load(Ordering::Relaxed);
        if gate != 0 {
            let refuse = if gate & crate::persist::GATE_MISCONF != 0
                && (spec.flags & cmd::WRITE != 0 || spec.name == "ping")
            {
                Some(("MISCONF", crate::persist::MISCONF_ERR))
            } else if gate & crate::persist::GATE_LOADING != 0 && spec.flags & cmd::LOADING == 0 {
                Some(("LOADING", "LOADING Redis is loading the dataset in memory"))
            } else {
                None
            };
            if let Some((code, msg)) = refuse {
                abort_multi(conn);
                out.error(msg);
                self.stats.cmds[ci as usize].rejected += 1;
                self.count_error(code);
                self.finish_reply(conn, direct, skip, scratch);
                return Flow::Next;
            }
        }
        let writes = spec.flags & cmd::WRITE != 0
            || (spec.name == "exec"
                && conn
                    .multi
                    .as_ref()
                    .is_some_and(|m| m.flags & cmd::WRITE != 0));
        if self.g.is_paused(writes) {
            if !self.paused.contains(&idx) {
                self.paused.push(idx);
            }
            return Flow::Unconsumed;
        }
        if conn.multi.is_some()
            && !matches!(
                spec.name,
                "exec" | "discard" | "multi" | "watch" | "quit" | "reset"
            )
        {
            self.queue_in_multi(conn, &mut out, ci, spec, args);
            self.finish_reply(conn, direct, skip, scratch);
            return Flow::Next;
        }
        if crate::script::any_running()
            && crate::script::busy_for(self.cfg.busy_reply_ms)
            && crate::metrics::effective_flags(spec, args).is_none_or(|f| f & cmd::ALLOW_BUSY == 0)
        {
            // A script has run past busy-reply-threshold (on another
            // shard: this one would not be dispatching).
            out.error(
                "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.",
            );
            self.count_error("BUSY");
            self.finish_reply(conn, direct, skip, scratch);
            return Flow::Next;
        }
        if !self.locks.idle() && self.must_wait_for_locks(spec, args, conn.db) {
            if !self.lock_wait.contains(&idx) {
                self.lock_wait.push(idx);
            }
            return Flow::Unconsumed;
        }
        let err_before = out.buf.len();
        match spec.run {
            Run::Srv(f) => {
                let mut ctx = SrvCtx {
                    sh: self,
                    conn,
                    out,
                };
                f(&mut ctx, args);
            }
            Run::Key(f) | Run::KeyMulti(f, _) => match self.route(spec, args) {
                Route::Local => {
                    let mut ctx = Ctx {
                        ks: &mut self.ks,
                        db: conn.db,
                        out,
                    };
                    f(&mut ctx, args);
                }
                Route::Remote(to) => {
                    let _ = out;
                    let blocking = spec.flags & cmd::BLOCKING != 0;
                    let seq = self.send_exec(conn, idx, to, (f, ci, blocking), args, skip);
                    self.stats.cmds[ci as usize].calls += 1;
                    if self.g.monitors.load(std::sync::atomic::Ordering::Relaxed) > 0 {
                        crate::metrics::feed_monitors(self, conn, args);
                    }
                    if conn.reply_mode == ReplyMode::Skip {
                        conn.reply_mode = ReplyMode::On;
                    }
                    if spec.flags & cmd::BLOCKING != 0 {
                        // It may park: nothing else from this client runs
                        // until the owner answers.
                        conn.hold_seq = Some(seq);
                        conn.hold_args = Some(args.iter().map(|a| a.to_vec()).collect());
                        return Flow::Stop;
                    }
                    return Flow::Next;
                }
                Route::Multi => {
                    let Run::KeyMulti(_, m) = spec.run else {
                        out.error("CROSSSLOT Keys in request don't hash to the same slot");
                        self.finish_reply(conn, direct, skip, scratch);
                        return Flow::Next;
                    };
                    // What its transaction locks.
                    self.tx_keys = Some(
                        spec.key_positions(args)
                            .map(|p| (conn.db, args[p].to_vec()))
                            .collect(),
                    );
                    let mut ctx = SrvCtx {
                        sh: self,
                        conn,
                        out,
                    };
                    m(&mut ctx, args);
                    self.tx_keys = None;
                }
            },
        }
        self.ks.settle_watch();
        if let Some(req) = self.ks.block_request.take() {
            // The command found nothing to serve and asked to wait.
            self.park(conn, idx, args.iter().map(|a| a.to_vec()).collect(), req);
            self.finish_reply(conn, direct, skip, scratch);
            return Flow::Stop;
        }
        let ns = crate::clock::elapsed_ns(start);
        let st = &mut self.stats.cmds[ci as usize];
        st.calls += 1;
        st.nsec += ns;
        self.metrics.on_command(ci, ns, args, conn);
        if self.g.monitors.load(std::sync::atomic::Ordering::Relaxed) > 0 {
            crate::metrics::feed_monitors(self, conn, args);
        }
        // An error reply counts as a failed call.
        let buf: &[u8] = if skip {
            &discard
        } else if direct {
            wbuf
        } else {
            &scratch
        };
        if buf.len() > err_before && buf[err_before] == b'-' {
            self.stats.cmds[ci as usize].failed += 1;
            let code = buf[err_before + 1..]
                .split(|&c| c == b' ' || c == b'\r')
                .next()
                .unwrap_or(b"ERR");
            let code = String::from_utf8_lossy(code).into_owned();
            self.count_error(&code);
        }
        if conn.reply_mode == ReplyMode::Skip {
            conn.reply_mode = ReplyMode::On;
        }
        self.finish_reply(conn, direct, skip, scratch);
        Flow::Next
    }

    fn count_error(&mut self, code: &str) {
        self.stats.total_error_replies += 1;
        *self.stats.errors.entry_ref(code).or_insert(0) += 1;
    }

    fn finish_reply(&mut self, conn: &mut Conn, direct: bool, skip: bool, scratch: Vec<u8>) {
        if conn.reply_mode == ReplyMode::Skip && skip {
            conn.reply_mode = ReplyMode::On;
        }
        if !direct && !skip {
            conn.pending.push_back(Pending::Ready(scratch));
        }
    }

    fn route(&self, spec: &CmdSpec, args: &[&[u8]]) -> Route {
        if self.n == 1 {
            return Route::Local;
        }
        let mut target = None;
        for p in spec.key_positions(args) {
            let s = self.shard_of(args[p]);
            match target {
                None => target = Some(s),
                Some(t) if t != s => return Route::Multi,
                _ => {}
            }
        }
        match target {
            None => Route::Local,
            Some(t) if t == self.id => Route::Local,
            Some(t) => Route::Remote(t),
        }
    }

    fn send_exec(
        &mut self,
        conn: &mut Conn,
        idx: u32,
        to: usize,
        (f, ci, blocking): (cmd::KeyFn, u16, bool),
        args: &[&[u8]],
        skip: bool,
    ) -> u64 {
        let owned: Vec<Vec<u8>> = args.iter().map(|a| a.to_vec()).collect();
        let origin = self.id;
        let db = conn.db;
        let resp3 = conn.resp3;
        let seq = conn.next_seq;
        conn.next_seq += 1;
        if !skip {
            conn.pending.push_back(Pending::Wait(seq));
        }
        let call = Box::new(mesh::ExecCall {
            f,
            ci,
            db,
            resp3,
            skip,
            origin,
            args: owned,
        });
        self.mesh.send(
            to,
            Msg::Exec {
                conn: idx,
                gen: conn.gen,
                // A skipped reply is not sent back, except a blocking
                // command's: its client holds its input until the answer.
                seq: if skip && !blocking { u64::MAX } else { seq },
                call,
            },
        );
        seq
    }

    // ----- messages ----------------------------------------------------

    /// Handles every message waiting in the inbound rings.
    pub fn drain_inbox(&mut self) {
        for from in 0..self.n {
            if from == self.id {
                continue;
            }
            // Bounded per turn so one busy peer cannot starve the loop.
            for _ in 0..4096 {
                let Some(m) = self.mesh.try_recv(from) else {
                    break;
                };
                self.handle_msg(from, m);
            }
        }
        self.mesh.flush_overflow();
    }

    fn handle_msg(&mut self, from: usize, m: Msg) {
        match m {
            Msg::Exec {
                conn,
                gen,
                seq,
                call,
            } => {
                if self.exec_must_wait(&call) {
                    // Its keys are locked by a transaction (or requests
                    // deferred before it wait): keep the order.
                    self.lock_deferred.push_back((
                        from,
                        Msg::Exec {
                            conn,
                            gen,
                            seq,
                            call,
                        },
                    ));
                } else {
                    self.run_exec_msg(from, conn, gen, seq, &call);
                }
            }
            Msg::Reply {
                conn,
                gen,
                seq,
                data,
                block,
            } => self.on_reply(conn, gen, seq, data, block),
            Msg::Run(f) => {
                self.ks.now = crate::util::now_ms();
                if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(self))).is_err() {
                    crate::log::warn("internal error in a task from another shard");
                }
                self.ks.settle_watch();
            }
            m => self.handle_tx_msg(from, m),
        }
    }

    /// Runs a command another shard sent for one of its clients and sends
    /// the reply back.
    fn run_exec_msg(&mut self, from: usize, conn: u32, gen: u32, seq: u64, call: &mesh::ExecCall) {
        let refs: Vec<&[u8]> = call.args.iter().map(|a| a.as_slice()).collect();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut buf = Vec::new();
            self.ks.now = crate::util::now_ms();
            let mut ctx = Ctx {
                ks: &mut self.ks,
                db: call.db,
                out: Out::new(&mut buf, call.resp3),
            };
            let start = crate::clock::now();
            (call.f)(&mut ctx, &refs);
            self.ks.settle_watch();
            if call.skip {
                buf.clear();
            }
            let block = self.ks.block_request.take();
            if block.is_none() {
                let ns = crate::clock::elapsed_ns(start);
                crate::metrics::on_hop(self, call.ci, ns, &refs, call.origin, conn, gen);
            }
            (buf, block)
        }));
        let (data, block) = r.unwrap_or_else(|_| {
            crate::log::warn("internal error in a command run for another shard");
            (
                b"-ERR internal error (see the server log)\r\n".to_vec(),
                None,
            )
        });
        if seq != u64::MAX || block.is_some() {
            self.mesh.send(
                from,
                Msg::Reply {
                    conn,
                    gen,
                    seq,
                    data,
                    block,
                },
            );
        }
    }

    fn on_reply(&mut self, idx: u32, gen: u32, seq: u64, data: Vec<u8>, block: Option<BlockReq>) {
        match self.conns.get_mut(idx as usize) {
            Some(Some(c)) if c.gen == gen => {
                let mut resume = false;
                if c.hold_seq == Some(seq) {
                    // The answer to a blocking command run on another shard.
                    c.hold_seq = None;
                    let args = c.hold_args.take().unwrap_or_default();
                    if let Some(req) = block {
                        c.pending
                            .retain(|p| !matches!(p, Pending::Wait(s) if *s == seq));
                        let mut conn = self.conns[idx as usize].take().expect("conn");
                        self.park(&mut conn, idx, args, req);
                        self.conns[idx as usize] = Some(conn);
                        self.flush_ready(idx);
                        return;
                    }
                    if let Some(p) = c.hold_prev.take() {
                        let id = c.id;
                        self.unregister_waits(&p, id);
                        self.blocked_conns.retain(|&i| i != idx);
                    }
                    resume = true;
                }
                let Some(Some(c)) = self.conns.get_mut(idx as usize) else {
                    return;
                };
                for p in c.pending.iter_mut() {
                    if matches!(p, Pending::Wait(s) if *s == seq) {
                        *p = Pending::Ready(data);
                        break;
                    }
                }
                self.flush_ready(idx);
                if resume {
                    // Run what the client sent while it waited.
                    self.resume.push(idx);
                }
            }
            Some(None) if self.current == Some(idx) => {
                self.stash.push((idx, gen, seq, data, block))
            }
            // The connection is gone: drop its reply.
            _ => {}
        }
    }

    /// Moves replies that are ready, in pipeline order, to the output.
    fn flush_ready(&mut self, idx: u32) {
        let Some(Some(c)) = self.conns.get_mut(idx as usize) else {
            return;
        };
        let mut wrote = false;
        while let Some(Pending::Ready(_)) = c.pending.front() {
            if let Some(Pending::Ready(d)) = c.pending.pop_front() {
                c.wbuf.extend_from_slice(&d);
                wrote = true;
            }
        }
        if wrote {
            self.mark_dirty(idx);
        }
    }

    fn apply_stash(&mut self) {
        if !self.pubsub.held.is_empty() {
            self.ps_flush_held();
        }
        if self.stash.is_empty() {
            return;
        }
        for (idx, gen, seq, data, block) in std::mem::take(&mut self.stash) {
            self.on_reply(idx, gen, seq, data, block);
        }
    }

    /// Sends fire-and-forget work to another shard (or runs it here).
    pub fn post(&mut self, to: usize, f: impl FnOnce(&mut Shard) + Send + 'static) {
        if to == self.id {
            f(self);
        } else {
            self.mesh.send(to, Msg::Run(Box::new(f)));
            self.g.wakers[to].wake();
        }
    }

    /// Work a loop turn does besides I/O: serve clients whose keys got
    /// data, time out blocked ones. Returns the longest the loop may sleep
    /// (ms) given blocked clients' deadlines, if any.
    pub fn turn_work(&mut self) -> Option<u64> {
        for idx in std::mem::take(&mut self.resume) {
            self.on_input(idx, &[]);
        }
        self.serve_ready();
        self.check_block_timeouts();
        // Background work that must not wait for I/O: loading dump.rdb and
        // a running snapshot poll every millisecond.
        let mut poll = false;
        if self.load_rx.is_some() {
            poll |= self.load_tick();
        }
        if self.ks.snap.is_some() {
            poll |= self.snap_tick();
        }
        let sleep = self
            .next_block_deadline()
            .map(|d| d.saturating_sub(crate::util::now_ms()).max(1));
        if poll {
            Some(sleep.unwrap_or(1).min(1))
        } else {
            sleep
        }
    }

    /// Whether the loop must not sleep (work is already waiting).
    pub fn busy(&self) -> bool {
        self.mesh.has_input()
            || self.mesh.has_overflow()
            || !self.dirty.is_empty()
            || !self.ks.ready_keys.is_empty()
            || !self.resume.is_empty()
            || !self.retry.is_empty()
    }

    // ----- housekeeping ------------------------------------------------

    /// Periodic work (every 1000/hz ms): active expiry, rehashing, idle
    /// client timeouts, paused clients.
    pub fn cron(&mut self) {
        self.refresh_cfg();
        let budget = 25_000 / self.cfg.hz.max(1) * 10 / 10;
        let t = std::time::Instant::now();
        self.ks.active_expire_cycle(budget.min(25_000));
        self.metrics
            .add_event("expire-cycle", t.elapsed().as_millis() as u64);
        self.ks.cron();
        self.g.persist.shard_dirty[self.id].store(self.ks.dirty, Ordering::Relaxed);
        if self.id == 0 {
            self.save_points_cron();
        }
        let now = crate::util::now_ms();
        let st = &mut self.stats;
        let counters = (
            st.total_commands,
            st.loop_iterations,
            st.submissions,
            st.completions,
        );
        st.window.push(now, counters);
        self.clients_cron(now);
        if self.cfg.timeout_s > 0 {
            let limit = self.cfg.timeout_s * 1000;
            for i in 0..self.conns.len() {
                if let Some(c) = self.conns[i].as_deref_mut() {
                    if now.saturating_sub(c.last_ms) > limit && c.pending.is_empty() && !c.kill {
                        c.kill = true;
                        self.to_close.push(i as u32);
                    }
                }
            }
        }
        self.resume_paused();
    }

    /// Starts a background save when a `save` point is reached or one was
    /// scheduled (BGSAVE SCHEDULE). Runs on shard 0's cron.
    fn save_points_cron(&mut self) {
        let st = &self.g.persist;
        if !st.last_ok.load(Ordering::Relaxed) {
            // CONFIG SET stop-writes-on-bgsave-error / save may lift MISCONF.
            crate::persist::refresh_misconf(&self.g);
        }
        if st.loading() || st.in_progress.load(Ordering::Relaxed) {
            return;
        }
        let now_s = crate::util::now_ms() / 1000;
        let mut go = st.scheduled.load(Ordering::Relaxed);
        if !go {
            let save = {
                let c = self.g.config.read().unwrap_or_else(|e| e.into_inner());
                c.get("save").to_string()
            };
            let points = crate::persist::parse_save_params(&save).unwrap_or_default();
            if points.is_empty() {
                return;
            }
            let changes = st.changes_since_save();
            let last = st.last_save_secs.load(Ordering::Relaxed);
            // After a failure, retry no sooner than every 5 seconds.
            let retry_ok = st.last_ok.load(Ordering::Relaxed)
                || now_s.saturating_sub(st.last_try_secs.load(Ordering::Relaxed)) >= 5;
            go = retry_ok
                && points
                    .iter()
                    .any(|&(secs, ch)| changes >= ch && now_s.saturating_sub(last) >= secs);
            if go {
                crate::log::notice(&format!(
                    "{changes} changes in the last save window. Saving..."
                ));
            }
        }
        if go && self.snapshot_start(false, None).is_ok() {
            crate::log::notice("Background saving started");
        }
    }

    /// Re-runs clients stopped by CLIENT PAUSE once it is over.
    pub fn resume_paused(&mut self) {
        if self.paused.is_empty() || self.g.is_paused(false) {
            return;
        }
        let paused = std::mem::take(&mut self.paused);
        self.resume.extend(paused);
    }
}

/// A command refused while a transaction is queued makes EXEC fail.
fn abort_multi(conn: &mut Conn) {
    if let Some(m) = conn.multi.as_mut() {
        m.aborted = true;
    }
}

#[inline]
fn backoff(spins: &mut u32) {
    *spins += 1;
    if *spins < 64 {
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
}

impl Drop for Shard {
    /// Hands the keyspace to the main thread for the shutdown save.
    fn drop(&mut self) {
        if self.g.shutdown.load(Ordering::SeqCst) {
            self.ks.snap_abort();
            let ks = std::mem::replace(&mut self.ks, Keyspace::new(0));
            if let Ok(mut f) = self.g.persist.final_ks.lock() {
                if let Some(slot) = f.get_mut(self.id) {
                    *slot = Some(ks);
                }
            }
        }
    }
}

#[cfg(test)]
mod rate_tests {
    use super::*;

    #[test]
    fn rates_come_from_the_oldest_and_newest_samples() {
        let mut w = RateWindow::default();
        assert_eq!(w.rates(), Rates::default());
        w.push(1000, (0, 0, 0, 0));
        assert_eq!(w.rates(), Rates::default());
        w.push(1500, (500, 100, 100, 300));
        let r = w.rates();
        assert_eq!(r.ops_per_sec, 1000);
        assert_eq!(r.turns_per_sec, 200);
        assert_eq!(r.submissions_per_turn, 1.0);
        assert_eq!(r.completions_per_turn, 3.0);
        // Only the last 16 samples count.
        for i in 0..16u64 {
            w.push(2000 + i * 100, (10_000 + i * 10, 1000, 1000, 1000));
        }
        assert_eq!(w.rates().ops_per_sec, 100);
        assert_eq!(w.rates().turns_per_sec, 0);
        assert_eq!(w.rates().completions_per_turn, 0.0);
    }
}
