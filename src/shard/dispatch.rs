//! The request path of a shard: parsing a connection's input, dispatching
//! each command (auth, arity, pauses, MULTI queueing, locks, routing) and
//! sending commands whose keys live on another shard.

use super::*;

impl Shard {
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
        if conn.eof && !self.lock_wait.contains(&idx) {
            // What the closed peer sent has run: close it now.
            conn.kill = true;
            self.to_close.push(idx);
        }
        let wrote = wbuf.len() != before;
        conn.wbuf = wbuf;
        let close = conn.kill || conn.close_after_reply;
        self.conns[idx as usize] = Some(conn);
        self.current = None;
        if wrote || close {
            self.mark_dirty(idx);
        }
        self.publish_events();
        self.send_invalidations();
        self.apply_stash();
    }

    /// Runs the requests in `buf`; returns the bytes consumed.
    pub(super) fn run_requests(
        &mut self,
        conn: &mut Conn,
        wbuf: &mut Vec<u8>,
        buf: &[u8],
        idx: u32,
    ) -> usize {
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
    pub(super) fn dispatch(
        &mut self,
        conn: &mut Conn,
        wbuf: &mut Vec<u8>,
        args: &[&[u8]],
        idx: u32,
    ) -> Flow {
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
        if self.ks.mem.maxmemory != 0 {
            if let Some(code) = self.check_oom(conn, &mut out, spec) {
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
            out.error(crate::script::busy_message());
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
                    self.ks.writer = conn.id;
                    let mut ctx = Ctx {
                        ks: &mut self.ks,
                        db: conn.db,
                        out,
                    };
                    f(&mut ctx, args);
                    if let Some(t) = self.read_tracker(idx, conn, spec) {
                        for p in spec.key_positions(args) {
                            self.ks.track_key(args[p], t);
                        }
                    }
                }
                Route::Remote(to) => {
                    let _ = out;
                    let blocking = spec.flags & cmd::BLOCKING != 0;
                    let track = self.read_tracker(idx, conn, spec);
                    let seq = self.send_exec(conn, idx, to, (f, ci, blocking), args, (skip, track));
                    end_caching(conn, spec, args);
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
                    self.tx_track = self.read_tracker(idx, conn, spec).map(|t| {
                        let keys = spec.key_positions(args).map(|p| args[p].to_vec()).collect();
                        (t, keys)
                    });
                    let mut ctx = SrvCtx {
                        sh: self,
                        conn,
                        out,
                    };
                    m(&mut ctx, args);
                    self.tx_keys = None;
                    self.tx_track = None;
                }
            },
        }
        self.ks.settle_watch();
        self.ks.writer = 0;
        end_caching(conn, spec, args);
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
        if !self.ks.invalidations.is_empty() {
            self.invalidate_current(conn, idx, wbuf);
        }
        Flow::Next
    }

    /// maxmemory (Redis's processCommand): commands that may grow memory
    /// make room first; a DENYOOM command (or EXEC of one, or anything
    /// queued in MULTI) is refused when nothing can be evicted. Returns
    /// the error code when refused.
    fn check_oom(
        &mut self,
        conn: &mut Conn,
        out: &mut Out,
        spec: &cmd::CmdSpec,
    ) -> Option<&'static str> {
        let in_multi =
            conn.multi.is_some() && !matches!(spec.name, "exec" | "discard" | "quit" | "reset");
        let denyoom = spec.flags & cmd::DENYOOM != 0
            || (spec.name == "exec"
                && conn
                    .multi
                    .as_ref()
                    .is_some_and(|m| m.flags & cmd::DENYOOM != 0));
        let script = matches!(
            spec.name,
            "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "fcall" | "fcall_ro"
        );
        if !(denyoom || in_multi || script || spec.flags & cmd::WRITE != 0) {
            return None;
        }
        let oom = self.perform_evictions() == super::evict::MemState::Fail;
        self.memg.oom = oom;
        if !oom || !(denyoom || in_multi) {
            return None;
        }
        if spec.name == "exec" {
            return Some(self.exec_refused(conn, out, super::evict::OOM_ERR));
        }
        abort_multi(conn);
        out.error(super::evict::OOM_ERR);
        Some("OOM")
    }

    pub(super) fn count_error(&mut self, code: &str) {
        self.stats.total_error_replies += 1;
        *self.stats.errors.entry_ref(code).or_insert(0) += 1;
    }

    pub(super) fn finish_reply(
        &mut self,
        conn: &mut Conn,
        direct: bool,
        skip: bool,
        scratch: Vec<u8>,
    ) {
        if conn.reply_mode == ReplyMode::Skip && skip {
            conn.reply_mode = ReplyMode::On;
        }
        if !direct && !skip {
            conn.pending.push_back(Pending::Ready(scratch));
        }
    }

    pub(super) fn route(&self, spec: &CmdSpec, args: &[&[u8]]) -> Route {
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

    pub(super) fn send_exec(
        &mut self,
        conn: &mut Conn,
        idx: u32,
        to: usize,
        (f, ci, blocking): (cmd::KeyFn, u16, bool),
        args: &[&[u8]],
        (skip, track): (bool, Option<super::tracking::TrackTarget>),
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
            client: conn.id,
            track,
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
}

/// CLIENT CACHING YES/NO applies to the next command only.
fn end_caching(conn: &mut Conn, spec: &CmdSpec, args: &[&[u8]]) {
    if let Some(t) = conn.tracking.as_deref_mut() {
        let is_caching =
            spec.name == "client" && args.len() > 1 && args[1].eq_ignore_ascii_case(b"caching");
        if t.caching.is_some() && !is_caching {
            t.caching = None;
        }
    }
}
