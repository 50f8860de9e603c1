//! Multi-shard transactions: the coordinator's side of the per-key intent
//! locks (shard/locks.rs has the lock table and the argument why there is
//! no deadlock).
//!
//! A coordinator (the shard of the client whose command spans shards)
//! takes a sequence number from one global counter, sends `Lock` with the
//! keys it needs to each shard involved (locking its own directly), and
//! waits for every `Granted`. Then its body runs: work on another shard is
//! a `TxOp` that shard runs as soon as it reads it, between its own
//! commands, since the keys are locked for the transaction. At the end
//! `Unlock` goes to every shard. A `Refused` makes it unlock everywhere and
//! start again with a new number.
//!
//! While it waits (for grants or for an operation's result) the coordinator
//! keeps serving its inbox (lock requests, other transactions' operations,
//! commands of other shards' clients on keys that are not locked), so
//! transactions on disjoint keys proceed in parallel, including on the
//! coordinator's shard. It does not run its own clients' input meanwhile,
//! so a coordinator never starts a second transaction while one is open.

use std::any::Any;

use super::locks::{Lock, LockSet};
use super::*;

/// The transaction this shard coordinates.
pub struct TxCur {
    seq: u64,
    /// Shards locked (or asked), this one included when it takes part.
    shards: Vec<usize>,
    granted: usize,
    refused: bool,
    /// The result of the operation in flight on another shard.
    reply: Option<Result<Box<dyn Any + Send>, ()>>,
}

/// What a transaction body uses to run work on the shards it locked.
pub struct Tx<'a> {
    pub sh: &'a mut Shard,
}

impl Tx<'_> {
    /// Runs `f` on `shard` (which must be part of this transaction) and
    /// returns its result.
    pub fn run<R: Send + 'static>(
        &mut self,
        shard: usize,
        f: impl FnOnce(&mut Shard) -> R + Send + 'static,
    ) -> R {
        if shard == self.sh.id {
            return f(self.sh);
        }
        let job: mesh::TxJob = Box::new(move |sh: &mut Shard| Box::new(f(sh)));
        self.sh.mesh.send(shard, Msg::TxOp(job));
        self.sh.mesh.flush_overflow();
        self.sh.g.wakers[shard].wake();
        let mut spins = 0u32;
        loop {
            let cur = self
                .sh
                .tx_cur
                .as_mut()
                .expect("Tx::run outside a transaction");
            if let Some(r) = cur.reply.take() {
                return match r {
                    Ok(v) => *v.downcast::<R>().expect("transaction reply type"),
                    // Propagates to the coordinator's `tx`, which unlocks.
                    Err(()) => panic!("a transaction operation failed on shard {shard}"),
                };
            }
            if self.sh.pump() {
                spins = 0;
            } else {
                backoff(&mut spins);
            }
        }
    }

    pub fn id(&self) -> usize {
        self.sh.id
    }
}

impl Shard {
    /// Runs `body` atomically with respect to every other client: the keys
    /// of the command being coordinated (`tx_keys`) are locked on each of
    /// `shards`, or the whole shard where no such key lives (or when the
    /// command named no keys).
    ///
    /// Called inside a transaction this shard already coordinates (a
    /// command inside EXEC), `body` runs under the outer locks, which
    /// EXEC chose to cover it.
    pub fn tx<R>(&mut self, shards: &[usize], body: impl FnOnce(&mut Tx) -> R) -> R {
        if self.tx_cur.is_some() {
            return body(&mut Tx { sh: self });
        }
        let mut shards = shards.to_vec();
        shards.sort_unstable();
        shards.dedup();
        let hint = self.tx_keys.as_deref().unwrap_or_default();
        let sets = shards
            .iter()
            .map(|&s| {
                let keys: hashbrown::HashSet<(usize, Vec<u8>)> = hint
                    .iter()
                    .filter(|(_, k)| self.shard_of(k) == s)
                    .cloned()
                    .collect();
                if keys.is_empty() {
                    (s, LockSet::All)
                } else {
                    (s, LockSet::Keys(keys))
                }
            })
            .collect();
        self.tx_with(sets, body)
    }

    /// Runs `body` with the given locks taken (one set per shard).
    pub(crate) fn tx_with<R>(
        &mut self,
        sets: Vec<(usize, LockSet)>,
        body: impl FnOnce(&mut Tx) -> R,
    ) -> R {
        if self.tx_cur.is_some() {
            // Nested: the outer transaction's locks cover it.
            return body(&mut Tx { sh: self });
        }
        if sets.iter().all(|(s, _)| *s == self.id) && self.locks.empty() {
            // Only this shard, and no transaction has or wants a lock
            // here: nothing can interleave with a body that runs now.
            let r = body(&mut Tx { sh: self });
            self.record_tx_track();
            return r;
        }
        let shards: Vec<usize> = sets.iter().map(|(s, _)| *s).collect();
        let mut attempt = 0u32;
        loop {
            let seq = self.g.tx_seq.fetch_add(1, Ordering::Relaxed) + 1;
            self.tx_cur = Some(TxCur {
                seq,
                shards: shards.clone(),
                granted: 0,
                refused: false,
                reply: None,
            });
            for (s, set) in &sets {
                if *s == self.id {
                    match self.locks.lock(seq, self.id, set.clone()) {
                        Lock::Granted => self.note_granted(seq),
                        Lock::Refused => self.note_refused(seq),
                        Lock::Queued => {}
                    }
                } else {
                    self.mesh.send(
                        *s,
                        Msg::Lock {
                            seq,
                            set: set.clone(),
                        },
                    );
                }
            }
            self.mesh.flush_overflow();
            self.mesh.wake_targets(&self.g.wakers);
            let mut spins = 0u32;
            loop {
                let c = self.tx_cur.as_ref().expect("transaction");
                if c.refused || c.granted == c.shards.len() {
                    break;
                }
                if self.pump() {
                    spins = 0;
                } else {
                    backoff(&mut spins);
                }
            }
            if self.tx_cur.as_ref().is_some_and(|c| c.refused) {
                self.tx_cur = None;
                self.unlock_everywhere(seq, &shards);
                attempt += 1;
                // Let the transaction that was ahead finish first.
                for _ in 0..attempt.min(64) {
                    self.pump();
                    std::hint::spin_loop();
                }
                continue;
            }
            break;
        }
        self.ks.now = crate::util::now_ms();
        // Unlock everywhere even if the body panics.
        let r =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(&mut Tx { sh: self })));
        let cur = self.tx_cur.take().expect("transaction");
        self.record_tx_track();
        self.unlock_everywhere(cur.seq, &cur.shards);
        r.unwrap_or_else(|p| std::panic::resume_unwind(p))
    }

    fn note_granted(&mut self, seq: u64) {
        if let Some(c) = self.tx_cur.as_mut() {
            if c.seq == seq {
                c.granted += 1;
            }
        }
    }

    fn note_refused(&mut self, seq: u64) {
        if let Some(c) = self.tx_cur.as_mut() {
            if c.seq == seq {
                c.refused = true;
            }
        }
    }

    fn unlock_everywhere(&mut self, seq: u64, shards: &[usize]) {
        for &s in shards {
            if s == self.id {
                self.unlock_local(seq);
            } else {
                self.mesh.send(s, Msg::Unlock { seq });
            }
        }
        self.mesh.flush_overflow();
        self.mesh.wake_targets(&self.g.wakers);
    }

    /// Drops a transaction's locks here and tells the coordinators of the
    /// requests that became granted; then lets waiting work through.
    fn unlock_local(&mut self, seq: u64) {
        for (coord, s) in self.locks.unlock(seq) {
            if coord == self.id {
                self.note_granted(s);
            } else {
                self.mesh.send(coord, Msg::Granted { seq: s });
            }
        }
        self.after_unlock();
    }

    /// Runs deferred requests whose keys are free again (in order), and
    /// lets local clients and blocked-client wake-ups that waited retry.
    fn after_unlock(&mut self) {
        while let Some((.., call)) = self.lock_deferred.front() {
            if self.exec_blocked(call) {
                break;
            }
            if let Some((from, conn, gen, seq, call)) = self.lock_deferred.pop_front() {
                self.run_exec_msg(from, conn, gen, seq, &call);
            }
        }
        if !self.lock_wait.is_empty() {
            let w = std::mem::take(&mut self.lock_wait);
            self.resume.extend(w);
        }
        if !self.locked_ready.is_empty() {
            let r = std::mem::take(&mut self.locked_ready);
            for k in r {
                if !self.ks.ready_keys.contains(&k) {
                    self.ks.ready_keys.push(k);
                }
            }
        }
    }

    /// Handles one round of inbound messages while this shard waits inside
    /// a transaction. Returns whether anything arrived.
    pub(super) fn pump(&mut self) -> bool {
        let mut any = false;
        for from in 0..self.n {
            if from == self.id {
                continue;
            }
            for _ in 0..64 {
                let Some(m) = self.mesh.try_recv(from) else {
                    break;
                };
                any = true;
                self.handle_msg(from, m);
            }
        }
        self.mesh.flush_overflow();
        self.mesh.wake_targets(&self.g.wakers);
        any
    }

    /// The transaction messages of `handle_msg`.
    pub(super) fn handle_tx_msg(&mut self, from: usize, m: Msg) {
        match m {
            Msg::Lock { seq, set } => match self.locks.lock(seq, from, set) {
                Lock::Granted => self.reply_to(from, Msg::Granted { seq }),
                Lock::Refused => self.reply_to(from, Msg::Refused { seq }),
                Lock::Queued => {}
            },
            Msg::Unlock { seq } => self.unlock_local(seq),
            Msg::Granted { seq } => self.note_granted(seq),
            Msg::Refused { seq } => self.note_refused(seq),
            Msg::TxOp(f) => {
                self.ks.now = crate::util::now_ms();
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(self)));
                self.ks.settle_watch();
                let reply = r.map(Msg::TxReply).unwrap_or_else(|_| {
                    crate::log::warn("internal error in a transaction operation");
                    Msg::TxPanic
                });
                self.reply_to(from, reply);
            }
            Msg::TxReply(r) => {
                if let Some(c) = self.tx_cur.as_mut() {
                    c.reply = Some(Ok(r));
                }
            }
            Msg::TxPanic => {
                if let Some(c) = self.tx_cur.as_mut() {
                    c.reply = Some(Err(()));
                }
            }
            Msg::Exec { .. } | Msg::Reply { .. } | Msg::Run(_) => {
                unreachable!("handled by handle_msg")
            }
        }
    }

    fn reply_to(&mut self, to: usize, m: Msg) {
        self.mesh.send(to, m);
        self.mesh.flush_overflow();
        self.g.wakers[to].wake();
    }

    /// Whether a command from another shard must wait: its keys are
    /// locked, or earlier deferred requests wait (order is kept).
    pub(super) fn exec_must_wait(&self, call: &mesh::ExecCall) -> bool {
        !self.lock_deferred.is_empty() || (!self.locks.idle() && self.exec_blocked(call))
    }

    fn exec_blocked(&self, call: &mesh::ExecCall) -> bool {
        if self.locks.idle() {
            return false;
        }
        let spec = cmd::table().list[call.ci as usize];
        let refs: Vec<&[u8]> = call.args.iter().map(|a| a.as_slice()).collect();
        spec.key_positions(&refs)
            .any(|p| self.locks.blocks(call.db, refs[p]))
    }

    /// Whether a command of a local client must wait for a transaction:
    /// a keyed one running here whose keys are locked, or any command
    /// while a transaction holds the whole shard. (Commands spanning
    /// shards take their own locks and queue behind.)
    pub(super) fn must_wait_for_locks(
        &self,
        spec: &'static CmdSpec,
        args: &[&[u8]],
        db: usize,
    ) -> bool {
        match spec.run {
            // SCRIPT KILL, SHUTDOWN, AUTH, ... run even while a script or a
            // whole-shard transaction holds this shard.
            Run::Srv(_) => {
                self.locks.all_granted()
                    && crate::metrics::effective_flags(spec, args)
                        .is_none_or(|f| f & cmd::ALLOW_BUSY == 0)
            }
            Run::Key(_) | Run::KeyMulti(..) => {
                let mut here = true;
                let mut blocked = false;
                for p in spec.key_positions(args) {
                    if self.shard_of(args[p]) != self.id {
                        here = false;
                        break;
                    }
                    blocked |= self.locks.blocks(db, args[p]);
                }
                here && (blocked || self.locks.all_granted())
            }
        }
    }

    /// Whether a blocked client's command may not be retried now because
    /// one of its keys here is locked.
    pub(super) fn retry_blocked_by_locks(&self, args: &[Vec<u8>], db: usize) -> bool {
        if self.locks.idle() {
            return false;
        }
        let refs: Vec<&[u8]> = args.iter().map(|a| a.as_slice()).collect();
        let Some((_, spec)) = cmd::table().get(refs[0]) else {
            return false;
        };
        spec.key_positions(&refs)
            .any(|p| self.shard_of(refs[p]) == self.id && self.locks.blocks(db, refs[p]))
    }

    /// All shard indexes.
    pub fn all_shards(&self) -> Vec<usize> {
        (0..self.n).collect()
    }

    /// Runs `f` on every shard atomically (each shard locked whole) and
    /// collects the results in shard order.
    pub fn on_all<R: Send + 'static>(
        &mut self,
        f: impl Fn(&mut Shard) -> R + Send + Sync + Clone + 'static,
    ) -> Vec<R> {
        let sets = (0..self.n).map(|s| (s, LockSet::All)).collect();
        self.tx_with(sets, |tx| {
            (0..tx.sh.n).map(|s| tx.run(s, f.clone())).collect()
        })
    }
}
