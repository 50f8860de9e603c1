//! MULTI/EXEC on the shard: queueing, WATCH registration and running a
//! queued transaction atomically.
//!
//! EXEC runs every queued command back to back on the connection's shard.
//! With one shard nothing else can run meanwhile. With several, EXEC is a
//! transaction (shard/tx.rs): it locks the keys of its commands and its
//! watched keys on their shards, or every shard whole if one of its
//! commands has no keys (it may read any shard: DBSIZE, FLUSHALL, ...);
//! the transactions such commands open inside it run under EXEC's locks.
//! A command whose keys live on another shard runs there as a transaction
//! operation, so no client observes part of an EXEC.

use super::locks::LockSet;
use super::*;
use crate::conn::MultiState;

impl Shard {
    /// Queues a command sent inside MULTI (dispatch already checked it
    /// exists, its arity and auth). Replies +QUEUED, or an error that
    /// makes EXEC fail.
    pub(super) fn queue_in_multi(
        &mut self,
        conn: &mut Conn,
        out: &mut Out,
        ci: u16,
        spec: &'static CmdSpec,
        args: &[&[u8]],
    ) {
        // Not processed yet: counted in total_commands_processed if EXEC
        // runs it (dispatch counted it already).
        self.stats.total_commands = self.stats.total_commands.saturating_sub(1);
        let flags = if spec.subs.is_empty() || args.len() < 2 {
            spec.flags
        } else {
            match cmd::find_sub(out, spec.subs, args) {
                Some(sub) => sub.flags,
                None => {
                    abort_multi(conn);
                    self.count_error("ERR");
                    return;
                }
            }
        };
        if flags & cmd::NO_MULTI != 0 {
            abort_multi(conn);
            out.err("Command not allowed inside a transaction");
            self.stats.cmds[ci as usize].rejected += 1;
            self.count_error("ERR");
            return;
        }
        let Some(m) = conn.multi.as_mut() else {
            return;
        };
        m.flags |= flags;
        m.mem += args.iter().map(|a| a.len()).sum::<usize>();
        m.cmds.push((ci, args.iter().map(|a| a.to_vec()).collect()));
        out.simple("QUEUED");
    }

    /// WATCH: records each key on its owner shard (other shards' records
    /// are written before WATCH replies).
    pub(crate) fn watch_keys(&mut self, conn: &mut Conn, keys: &[&[u8]]) {
        let (db, id) = (conn.db, conn.id);
        let mut remote: Vec<(usize, Vec<u8>)> = Vec::new();
        for &k in keys {
            if conn.watched.iter().any(|(d, x)| *d == db && x == k) {
                continue;
            }
            conn.watched.push((db, k.to_vec()));
            let s = self.shard_of(k);
            if s == self.id {
                self.ks.watch_add(db, k, id);
            } else {
                remote.push((s, k.to_vec()));
            }
        }
        if remote.is_empty() {
            return;
        }
        let shards: Vec<usize> = remote.iter().map(|r| r.0).collect();
        let saved = self
            .tx_keys
            .replace(remote.iter().map(|(_, k)| (db, k.clone())).collect());
        self.tx(&shards, move |tx| {
            for (s, k) in remote {
                tx.run(s, move |sh| sh.ks.watch_add(db, &k, id));
            }
        });
        self.tx_keys = saved;
    }

    /// Forgets a client's WATCH records (UNWATCH, DISCARD, RESET,
    /// disconnect). Other shards drop theirs when the message arrives,
    /// before anything else this shard sends them later.
    pub(crate) fn unwatch_keys(&mut self, id: u64, keys: Vec<(usize, Vec<u8>)>) {
        for (db, k) in keys {
            let s = self.shard_of(&k);
            if s == self.id {
                self.ks.watch_take(db, &k, id);
            } else {
                self.post(s, move |sh| {
                    sh.ks.watch_take(db, &k, id);
                });
            }
        }
    }

    /// EXEC refused before it runs (wrong arity, NOAUTH): as in Redis
    /// 7.0, the transaction (if any) and the WATCHes are dropped and the
    /// reply is EXECABORT with the reason. Returns the error code counted.
    pub(super) fn exec_refused(
        &mut self,
        conn: &mut Conn,
        out: &mut Out,
        reason: &str,
    ) -> &'static str {
        conn.multi = None;
        let w = std::mem::take(&mut conn.watched);
        self.unwatch_keys(conn.id, w);
        out.error(&format!(
            "EXECABORT Transaction discarded because of: {reason}"
        ));
        "EXECABORT"
    }

    /// EXEC: runs the queued commands atomically and replies with the
    /// array of their replies (or EXECABORT, or null when a watched key
    /// changed).
    pub(crate) fn run_exec(&mut self, conn: &mut Conn, out: &mut Out, m: MultiState) {
        let watched = std::mem::take(&mut conn.watched);
        if m.aborted {
            self.unwatch_keys(conn.id, watched);
            return out.error("EXECABORT Transaction discarded because of previous errors.");
        }
        if self.n == 1 {
            self.exec_body(conn, out, &m, watched);
            conn.last_cmd = "exec";
            return;
        }
        // What the transaction locks: the keys of its commands and the
        // watched keys on their shards, or every shard whole if a command
        // has no keys (it may read any shard: DBSIZE, KEYS, FLUSHALL...).
        let t = cmd::table();
        let mut keys: Vec<(usize, Vec<u8>)> = watched.clone();
        let mut whole = false;
        let db = conn.db;
        for (ci, args) in &m.cmds {
            let spec = t.list[*ci as usize];
            match spec.run {
                Run::Srv(_) => {
                    whole = true;
                    break;
                }
                Run::Key(_) | Run::KeyMulti(..) => {
                    let refs: Vec<&[u8]> = args.iter().map(|a| a.as_slice()).collect();
                    keys.extend(spec.key_positions(&refs).map(|p| (db, refs[p].to_vec())));
                }
            }
        }
        let sets: Vec<(usize, LockSet)> = if whole {
            (0..self.n).map(|s| (s, LockSet::All)).collect()
        } else {
            let mut per: Vec<hashbrown::HashSet<(usize, Vec<u8>)>> =
                (0..self.n).map(|_| hashbrown::HashSet::new()).collect();
            for k in keys {
                per[self.shard_of(&k.1)].insert(k);
            }
            per.into_iter()
                .enumerate()
                .filter(|(_, ks)| !ks.is_empty())
                .map(|(s, ks)| (s, LockSet::Keys(ks)))
                .collect()
        };
        self.tx_with(sets, |tx| tx.sh.exec_body(conn, out, &m, watched));
        // CLIENT LIST shows cmd=exec afterwards, not the last queued one.
        conn.last_cmd = "exec";
    }

    fn exec_body(
        &mut self,
        conn: &mut Conn,
        out: &mut Out,
        m: &MultiState,
        watched: Vec<(usize, Vec<u8>)>,
    ) {
        let id = conn.id;
        let mut dirty = false;
        for (db, k) in watched {
            let s = self.shard_of(&k);
            dirty |= Tx { sh: self }.run(s, move |sh| sh.ks.watch_take(db, &k, id));
        }
        if dirty {
            return out.null_array();
        }
        let t = cmd::table();
        out.array(m.cmds.len());
        for (ci, args) in &m.cmds {
            let spec = t.list[*ci as usize];
            let refs: Vec<&[u8]> = args.iter().map(|a| a.as_slice()).collect();
            conn.last_cmd = cmd::full_name(spec, &refs).unwrap_or("NULL");
            self.stats.total_commands += 1;
            let start = crate::clock::now();
            let before = out.buf.len();
            self.exec_one(conn, out, spec, &refs);
            let ns = crate::clock::elapsed_ns(start);
            let st = &mut self.stats.cmds[*ci as usize];
            st.calls += 1;
            st.nsec += ns;
            if out.buf.get(before) == Some(&b'-') {
                self.stats.cmds[*ci as usize].failed += 1;
                let code = out.buf[before + 1..]
                    .split(|&c| c == b' ' || c == b'\r')
                    .next()
                    .unwrap_or(b"ERR");
                let code = String::from_utf8_lossy(code).into_owned();
                self.count_error(&code);
            }
            self.metrics.on_command(*ci, ns, &refs, conn);
            if self.g.monitors.load(Ordering::Relaxed) > 0 {
                crate::metrics::feed_monitors(self, conn, &refs);
            }
        }
    }

    /// Runs one queued command inside EXEC (or a script's redis.call), its
    /// reply appended to `out`. A blocking command does not block: it
    /// answers at once (null). The keys a read-only command read are
    /// remembered for a tracking client (client-side caching) on their
    /// shards, which the caller holds.
    pub(crate) fn exec_one(
        &mut self,
        conn: &mut Conn,
        out: &mut Out,
        spec: &'static CmdSpec,
        args: &[&[u8]],
    ) {
        self.exec_one_inner(conn, out, spec, args);
        let Some(idx) = self.current_idx() else {
            return;
        };
        if let Some(t) = self.read_tracker(idx, conn, spec) {
            for p in spec.key_positions(args) {
                let k = args[p].to_vec();
                let s = self.shard_of(&k);
                Tx { sh: self }.run(s, move |sh| sh.ks.track_key(&k, t));
            }
        }
    }

    fn exec_one_inner(
        &mut self,
        conn: &mut Conn,
        out: &mut Out,
        spec: &'static CmdSpec,
        args: &[&[u8]],
    ) {
        let resp3 = conn.resp3;
        let (f, multi) = match spec.run {
            // A client inside EXEC expects one reply per command: it
            // cannot turn into a monitor (Redis 7.0's answer).
            Run::Srv(_) if spec.name == "monitor" => {
                return out.err("MONITOR isn't allowed for DENY BLOCKING client");
            }
            // Redis does not start a save inside EXEC: it schedules one
            // for its cron (unless one is running already).
            Run::Srv(_)
                if spec.name == "bgsave"
                    && (args.len() == 1
                        || (args.len() == 2 && args[1].eq_ignore_ascii_case(b"schedule")))
                    && !self.g.persist.in_progress.load(Ordering::SeqCst) =>
            {
                self.g.persist.scheduled.store(true, Ordering::SeqCst);
                return out.simple("Background saving scheduled");
            }
            Run::Srv(f) => {
                let mut ctx = SrvCtx {
                    sh: self,
                    conn,
                    out: Out::new(out.buf, resp3),
                };
                f(&mut ctx, args);
                self.ks.settle_watch();
                return;
            }
            Run::Key(f) => (f, None),
            Run::KeyMulti(f, m) => (f, Some(m)),
        };
        let s = match self.route(spec, args) {
            Route::Local => self.id,
            Route::Remote(s) => s,
            Route::Multi => {
                match multi {
                    Some(m) => {
                        let mut ctx = SrvCtx {
                            sh: self,
                            conn,
                            out: Out::new(out.buf, resp3),
                        };
                        m(&mut ctx, args);
                        self.ks.settle_watch();
                        // A blocking command across shards asks this shard's
                        // keyspace to park the client: answer empty instead
                        // (left there, it would park the EXEC itself).
                        if self.ks.block_request.take().is_some() {
                            empty_reply(out, resp3, spec);
                        }
                    }
                    None => out.error("CROSSSLOT Keys in request don't hash to the same slot"),
                }
                return;
            }
        };
        let db = conn.db;
        if s == self.id {
            let mut ctx = Ctx {
                ks: &mut self.ks,
                db,
                out: Out::new(out.buf, resp3),
            };
            f(&mut ctx, args);
            self.ks.settle_watch();
            if self.ks.block_request.take().is_some() {
                empty_reply(out, resp3, spec);
            }
            return;
        }
        let owned: Vec<Vec<u8>> = args.iter().map(|a| a.to_vec()).collect();
        let (bytes, blocked) = Tx { sh: self }.run(s, move |sh| {
            let refs: Vec<&[u8]> = owned.iter().map(|a| a.as_slice()).collect();
            let mut buf = Vec::new();
            let mut ctx = Ctx {
                ks: &mut sh.ks,
                db,
                out: Out::new(&mut buf, resp3),
            };
            f(&mut ctx, &refs);
            sh.ks.settle_watch();
            let blocked = sh.ks.block_request.take().is_some();
            (buf, blocked)
        });
        out.raw(&bytes);
        if blocked {
            empty_reply(out, resp3, spec);
        }
    }
}

/// What a blocking command that finds nothing replies inside MULTI. Not
/// always its timeout reply: Redis 7.0 answers BLMOVE and BRPOPLPUSH with
/// a null bulk there (their timeout reply is a null array).
fn empty_reply(out: &mut Out, resp3: bool, spec: &CmdSpec) {
    let mut o = Out::new(out.buf, resp3);
    if !matches!(spec.name, "blmove" | "brpoplpush") {
        o.null_array();
    } else {
        o.null();
    }
}
