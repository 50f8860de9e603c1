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
pub mod dispatch;
pub mod evict;
pub mod exec;
pub mod keyspace;
pub mod locks;
pub mod mesh;
pub mod messages;
pub mod notify;
pub mod pubsub;
pub mod snapshot;
pub mod tracking;
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
    pub lazy: keyspace::LazyCfg,
    /// notify-keyspace-events as flags (crate::notify::effective).
    pub notify: u32,
    /// This shard's share of tracking-table-max-keys (0 = no limit).
    pub track_max: usize,
    /// maxmemory and its policy.
    pub mem: evict::MemCfg,
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
    /// (from, conn, gen, seq, command) of each `Msg::Exec` deferred.
    lock_deferred: VecDeque<(usize, u32, u32, u64, Box<mesh::ExecCall>)>,
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
    /// A multi-shard read by a tracking client: where to record its keys
    /// before the transaction unlocks (tracking.rs).
    pub tx_track: Option<(tracking::TrackTarget, Vec<Vec<u8>>)>,
    /// Invalidations for the connection that was running (tracking.rs).
    pub tracking_held: Vec<tracking::Held>,
    /// Work that waits for the running connection to be back in its slot.
    pub post_later: Vec<tracking::Later>,
    /// The memory check's cached view of used_memory (evict.rs).
    pub memg: evict::MemGuard,
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
        ks.lazy = cfg.lazy;
        ks.notify_flags = cfg.notify;
        ks.track_max = cfg.track_max;
        ks.mem = cfg.mem;
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
            tx_track: None,
            tracking_held: Vec::new(),
            post_later: Vec::new(),
            memg: Default::default(),
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
            self.ks.lazy = self.cfg.lazy;
            self.ks.notify_flags = self.cfg.notify;
            self.ks.track_max = self.cfg.track_max;
            if self.ks.mem.policy != self.cfg.mem.policy {
                self.ks.evict_reset();
            }
            self.ks.mem = self.cfg.mem;
            self.memg.slack = 0;
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
                self.tracking_off(&mut c);
                self.blocked_conns.retain(|&i| i != idx);
                self.free_slots.push(idx);
                self.g.connected_clients.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    /// The peer of `idx` closed. Redis runs every complete request it read
    /// before the close; here some may still wait for a transaction's locks
    /// (which Redis does not have). Then the connection stays, unread, until
    /// they ran (returns true); otherwise it is to be closed now. (Requests
    /// held by CLIENT PAUSE are dropped with the connection, as in Redis.)
    pub fn peer_closed(&mut self, idx: u32) -> bool {
        let waiting = self.lock_wait.contains(&idx);
        match self.conns.get_mut(idx as usize) {
            Some(Some(c)) if waiting && !c.rbuf.is_empty() && !c.kill => {
                c.eof = true;
                c.read_paused = true;
                true
            }
            _ => false,
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
        self.evict_tick();
        self.serve_ready();
        self.check_block_timeouts();
        self.publish_events();
        self.send_invalidations();
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
            || self.memg.evicting
    }

    // ----- housekeeping ------------------------------------------------

    /// Periodic work (every 1000/hz ms): active expiry, rehashing, idle
    /// client timeouts, paused clients.
    pub fn cron(&mut self) {
        self.refresh_cfg();
        let budget = 25_000 / self.cfg.hz.max(1) * 10 / 10;
        let t = std::time::Instant::now();
        if self.g.active_expire.load(Ordering::Relaxed) {
            self.ks.active_expire_cycle(budget.min(25_000));
        }
        self.publish_events();
        self.send_invalidations();
        self.metrics
            .add_event("expire-cycle", t.elapsed().as_millis() as u64);
        self.ks.cron();
        self.evict_cron();
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
