//! Blocked clients (BLPOP, BLMOVE, BZPOPMIN, ...): parking, the per-key
//! waiter queues, re-running a waiter when its key gets data, timeouts and
//! CLIENT UNBLOCK. docs/architecture.md ("Blocking clients") describes the
//! protocol between the client's shard and the keys' shards.

use super::*;

impl Shard {
    /// Parks a client whose blocking command found nothing to serve: it
    /// waits on every key's owner shard, in arrival order.
    pub(super) fn park(
        &mut self,
        conn: &mut Conn,
        idx: u32,
        args: Vec<Vec<u8>>,
        mut req: BlockReq,
    ) {
        let args = req.args.take().unwrap_or(args);
        let keep = conn.hold_prev.take().map(|p| p.deadline_ms);
        let keys: Vec<(usize, Vec<u8>)> = req
            .keys
            .into_iter()
            .map(|k| (self.shard_of(&k), k))
            .collect();
        let w = Waiter {
            shard: self.id,
            idx,
            gen: conn.gen,
            client_id: conn.id,
        };
        let db = conn.db;
        for (s, k) in &keys {
            let k = k.clone();
            self.post(*s, move |sh| sh.add_waiter(db, k, w));
        }
        conn.blocked = Some(Box::new(Blocked {
            args,
            keys,
            db,
            deadline_ms: keep.unwrap_or(req.deadline_ms),
            null_array: req.null_array,
        }));
        if !self.blocked_conns.contains(&idx) {
            self.blocked_conns.push(idx);
        }
    }

    /// Registers a waiter on a key of this shard (idempotent: a client
    /// re-parked after a failed retry keeps its place).
    pub fn add_waiter(&mut self, db: usize, key: Vec<u8>, w: Waiter) {
        let q = self.waiters.entry((db, key.clone())).or_default();
        if q.iter().any(|x| x.client_id == w.client_id) {
            return;
        }
        q.push_back(w);
        self.ks.blocking_keys.insert((db, key.clone()));
        // Data may have arrived between the check and this registration
        // (the waiter's shard is not this one): look again.
        self.ks.now = crate::util::now_ms();
        if self.ks.exists(db, &key) {
            self.ks.signal_ready(db, &key);
        }
    }

    pub fn remove_waiter(&mut self, db: usize, key: &[u8], client_id: u64) {
        let k = (db, key.to_vec());
        if let Some(q) = self.waiters.get_mut(&k) {
            q.retain(|w| w.client_id != client_id);
            if q.is_empty() {
                self.waiters.remove(&k);
                self.ks.blocking_keys.remove(&k);
            }
        }
    }

    pub(super) fn unregister_waits(&mut self, b: &Blocked, client_id: u64) {
        let db = b.db;
        for (s, k) in &b.keys {
            let k = k.clone();
            self.post(*s, move |sh| sh.remove_waiter(db, &k, client_id));
        }
    }

    /// Serves clients blocked on keys that received data, first come first
    /// served per key.
    pub fn serve_ready(&mut self) {
        for (idx, gen) in std::mem::take(&mut self.retry) {
            // Stale: the client went away; its shard cleaned up on close.
            let _ = self.retry_blocked(idx, gen);
        }
        for _ in 0..16 {
            if self.ks.ready_keys.is_empty() {
                return;
            }
            for (db, key) in std::mem::take(&mut self.ks.ready_keys) {
                if !self.locks.idle() && self.locks.blocks(db, &key) {
                    // A transaction holds it: serve its waiters after.
                    if !self.locked_ready.contains(&(db, key.clone())) {
                        self.locked_ready.push((db, key));
                    }
                    continue;
                }
                let Some(q) = self.waiters.get(&(db, key.clone())) else {
                    continue;
                };
                let list: Vec<Waiter> = q.iter().copied().collect();
                for w in list {
                    if w.shard != self.id {
                        // Re-run there at its next turn: running a command
                        // from inside a message handler could start a
                        // transaction while that shard waits in another.
                        self.post(w.shard, move |sh| sh.retry.push((w.idx, w.gen)));
                        continue;
                    }
                    match self.retry_blocked(w.idx, w.gen) {
                        Retry::Served => {}
                        Retry::Stale => self.remove_waiter(db, &key, w.client_id),
                        // The key has nothing more for the next waiters.
                        Retry::Reparked => break,
                    }
                }
            }
        }
    }

    /// Re-runs a blocked client's command.
    pub fn retry_blocked(&mut self, idx: u32, gen: u32) -> Retry {
        match self.conns.get(idx as usize) {
            Some(Some(c)) if c.gen == gen && c.blocked.is_some() && !c.kill && !c.closed => {
                let b = c.blocked.as_ref().expect("blocked");
                if self.retry_blocked_by_locks(&b.args, b.db) {
                    // Its keys here are locked: stay parked; the unlock
                    // signals the keys again.
                    for k in b.keys.iter().filter(|(s, _)| *s == self.id) {
                        let k = (b.db, k.1.clone());
                        if !self.locked_ready.contains(&k) {
                            self.locked_ready.push(k);
                        }
                    }
                    return Retry::Reparked;
                }
            }
            _ => return Retry::Stale,
        }
        let mut conn = self.conns[idx as usize].take().expect("conn");
        self.current = Some(idx);
        let b = conn.blocked.take().expect("blocked");
        let mut wbuf = std::mem::take(&mut conn.wbuf);
        self.ks.now = crate::util::now_ms();
        let saved_db = conn.db;
        conn.db = b.db;
        let args: Vec<&[u8]> = b.args.iter().map(|a| a.as_slice()).collect();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.dispatch(&mut conn, &mut wbuf, &args, idx)
        }));
        conn.db = saved_db;
        let outcome = if r.is_err() {
            wbuf.extend_from_slice(b"-ERR internal error (see the server log)\r\n");
            conn.close_after_reply = true;
            self.unregister_waits(&b, conn.id);
            Retry::Served
        } else if let Some(nb) = conn.blocked.as_mut() {
            // Still nothing for it: keep its original deadline.
            nb.deadline_ms = b.deadline_ms;
            Retry::Reparked
        } else if conn.hold_seq.is_some() {
            // Re-run on the key's shard; its answer decides.
            conn.hold_prev = Some(b);
            Retry::Served
        } else {
            self.unregister_waits(&b, conn.id);
            Retry::Served
        };
        let served = outcome == Retry::Served && conn.hold_seq.is_none();
        if served {
            self.blocked_conns.retain(|&i| i != idx);
        }
        conn.wbuf = wbuf;
        self.conns[idx as usize] = Some(conn);
        self.current = None;
        self.mark_dirty(idx);
        self.apply_stash();
        if served {
            self.resume.push(idx);
        }
        outcome
    }

    /// Ends a client's wait with the timeout reply (or an error, for
    /// CLIENT UNBLOCK ... ERROR).
    pub(super) fn unblock_with(&mut self, idx: u32, error: Option<&str>) {
        let Some(Some(c)) = self.conns.get_mut(idx as usize) else {
            return;
        };
        let Some(b) = c.blocked.take() else {
            return;
        };
        let mut reply = Vec::new();
        {
            let mut out = Out::new(&mut reply, c.resp3);
            match error {
                Some(e) => out.error(e),
                None if b.null_array => out.null_array(),
                None => out.null(),
            }
        }
        if c.reply_mode == ReplyMode::On {
            if c.pending.is_empty() {
                c.wbuf.extend_from_slice(&reply);
            } else {
                c.pending.push_back(Pending::Ready(reply));
            }
        }
        let id = c.id;
        self.unregister_waits(&b, id);
        self.blocked_conns.retain(|&i| i != idx);
        self.mark_dirty(idx);
        self.resume.push(idx);
    }

    /// Times out blocked clients whose deadline has passed.
    pub fn check_block_timeouts(&mut self) {
        if self.blocked_conns.is_empty() {
            return;
        }
        let now = crate::util::now_ms();
        for idx in self.blocked_conns.clone() {
            let due = matches!(self.conns.get(idx as usize), Some(Some(c))
                if matches!(&c.blocked, Some(b) if b.deadline_ms != 0 && b.deadline_ms <= now));
            if due {
                self.unblock_with(idx, None);
            }
        }
    }

    /// The nearest blocked-client deadline (Unix ms), if any.
    pub fn next_block_deadline(&self) -> Option<u64> {
        self.blocked_conns
            .iter()
            .filter_map(|&i| {
                self.conns
                    .get(i as usize)?
                    .as_ref()?
                    .blocked
                    .as_ref()
                    .map(|b| b.deadline_ms)
            })
            .filter(|&d| d != 0)
            .min()
    }

    /// CLIENT UNBLOCK: returns whether a client with that id was blocked here.
    pub fn unblock_client(&mut self, client_id: u64, error: bool) -> bool {
        let found = self
            .conns
            .iter()
            .position(|c| matches!(c, Some(c) if c.id == client_id && c.blocked.is_some()));
        match found {
            Some(i) => {
                self.unblock_with(
                    i as u32,
                    error.then_some("UNBLOCKED client unblocked via CLIENT UNBLOCK"),
                );
                true
            }
            None => false,
        }
    }
}
