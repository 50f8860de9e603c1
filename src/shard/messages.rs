//! Messages between shards: commands run for another shard's client and
//! their replies (kept in pipeline order), fire-and-forget tasks, and the
//! transaction messages (handled in tx.rs).

use super::*;

impl Shard {
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
        self.publish_events();
        self.send_invalidations();
        self.mesh.flush_overflow();
    }

    pub(super) fn handle_msg(&mut self, from: usize, m: Msg) {
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
                    self.lock_deferred.push_back((from, conn, gen, seq, call));
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
    pub(super) fn run_exec_msg(
        &mut self,
        from: usize,
        conn: u32,
        gen: u32,
        seq: u64,
        call: &mesh::ExecCall,
    ) {
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
            ctx.ks.writer = call.client;
            (call.f)(&mut ctx, &refs);
            if let Some(t) = call.track {
                let spec = crate::cmd::table().list[call.ci as usize];
                for p in spec.key_positions(&refs) {
                    self.ks.track_key(refs[p], t);
                }
            }
            self.ks.settle_watch();
            self.ks.writer = 0;
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

    pub(super) fn on_reply(
        &mut self,
        idx: u32,
        gen: u32,
        seq: u64,
        data: Vec<u8>,
        block: Option<BlockReq>,
    ) {
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
    pub(super) fn flush_ready(&mut self, idx: u32) {
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

    pub(super) fn apply_stash(&mut self) {
        if !self.pubsub.held.is_empty() {
            self.ps_flush_held();
        }
        if !self.tracking_held.is_empty() || !self.post_later.is_empty() {
            self.flush_tracking_held();
        }
        if self.stash.is_empty() {
            return;
        }
        for (idx, gen, seq, data, block) in std::mem::take(&mut self.stash) {
            self.on_reply(idx, gen, seq, data, block);
        }
    }
}
