//! The shard side of fork-free point-in-time snapshots.
//!
//! [`Keyspace::snap_begin`] runs inside a transaction that holds every
//! shard, so all shards cut at the same instant: it gives every table a
//! new one-byte version (`Dict::set_version`). From then on:
//! - the background cursor ([`Keyspace::snap_step`]) walks each db's main
//!   table with a SCAN cursor and serializes every node not yet stamped
//!   with the snapshot version, stamping it;
//! - before any mutation of a key (write, delete, lazy or active expiry,
//!   TTL change), the keyspace calls [`Keyspace::pre_write`], which
//!   serializes the key first if it is not stamped yet;
//! - keys created after the cut are born stamped and never serialized.
//!
//! So every key that existed at the cut is written exactly once, with its
//! value and TTL at the cut. FLUSHDB/FLUSHALL/SWAPDB first serialize the
//! rest of the dbs they touch. Chunks go to the writer thread
//! (`persist.rs`); the cursor is paced by a CPU share and pauses while
//! too many bytes are queued to the writer.

use std::sync::atomic::Ordering;
use std::time::Instant;

use super::keyspace::Keyspace;
use super::Shard;
use crate::persist::{self, SnapLink, WMsg};
use crate::rdb::encode;
use crate::types::Value;

/// A shard's running snapshot.
pub struct SnapOut {
    pub ver: u8,
    buf: Vec<u8>,
    cur_db: Option<usize>,
    compress: bool,
    link: SnapLink,
    pub keys: u64,
    cursor_db: usize,
    cursor: u64,
    /// The writer went away (error or shutdown): stop serializing.
    failed: bool,
}

impl SnapOut {
    fn emit(&mut self, db: usize, key: &[u8], v: &Value, exp: Option<u64>) {
        if self.failed {
            return;
        }
        if self.cur_db != Some(db) {
            encode::write_select_db(&mut self.buf, db);
            self.cur_db = Some(db);
        }
        encode::write_entry(&mut self.buf, key, v, exp, self.compress);
        self.keys += 1;
        if self.buf.len() >= persist::CHUNK {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.buf.is_empty() || self.failed {
            return;
        }
        let fresh = self.link.buffer();
        let b = std::mem::replace(&mut self.buf, fresh);
        self.link.inflight.fetch_add(b.len(), Ordering::Relaxed);
        if self.link.tx.send(WMsg::Chunk(b)).is_err() {
            self.failed = true;
        }
        // Each chunk selects its db again: chunks of different shards
        // interleave in the file.
        self.cur_db = None;
    }
}

impl Keyspace {
    /// Cuts a snapshot of this keyspace now (called with every shard held).
    pub fn snap_begin(&mut self, link: SnapLink) {
        if self.snap.is_some() {
            self.snap_abort();
        }
        let ver = self
            .dbs
            .first()
            .map(|d| d.main.version())
            .unwrap_or(0)
            .wrapping_add(1);
        let mut buf = link.buffer();
        for (i, d) in self.dbs.iter_mut().enumerate() {
            d.main.set_version(ver);
            if !d.main.is_empty() {
                encode::write_select_db(&mut buf, i);
                encode::write_resize_db(&mut buf, d.main.len() as u64, d.expires.len() as u64);
            }
        }
        self.snap = Some(Box::new(SnapOut {
            ver,
            buf,
            cur_db: None,
            compress: link.cfg.compress,
            link,
            keys: 0,
            cursor_db: 0,
            cursor: 0,
            failed: false,
        }));
    }

    /// Serialize-before-mutate: writes `key` to the running snapshot if it
    /// has not been written yet. Every mutating keyspace method calls this.
    #[inline]
    pub(crate) fn pre_write(&mut self, db: usize, key: &[u8]) {
        if let Some(s) = self.snap.as_deref_mut() {
            let d = &mut self.dbs[db];
            if let Some((k, v)) = d.main.mark(key, s.ver) {
                let exp = if d.expires.is_empty() {
                    None
                } else {
                    d.expires.get(k).copied()
                };
                s.emit(db, k, v, exp);
            }
        }
    }

    /// Serializes every key of `db` not written yet (before FLUSHDB,
    /// FLUSHALL or SWAPDB touch it wholesale).
    pub(crate) fn pre_write_db(&mut self, db: usize) {
        let Some(s) = self.snap.as_deref_mut() else {
            return;
        };
        let d = &mut self.dbs[db];
        let expires = &d.expires;
        let mut c = 0;
        loop {
            c = d.main.scan_mark(c, s.ver, |k, v| {
                let exp = if expires.is_empty() {
                    None
                } else {
                    expires.get(k).copied()
                };
                s.emit(db, k, v, exp);
            });
            if c == 0 {
                break;
            }
        }
    }

    /// Runs the background cursor until `deadline` or the end. Returns
    /// true when this shard's part is complete (and reported).
    pub fn snap_step(&mut self, deadline: Option<Instant>) -> bool {
        let Some(s) = self.snap.as_deref_mut() else {
            return true;
        };
        let mut n = 0u32;
        while s.cursor_db < self.dbs.len() && !s.failed {
            let db = s.cursor_db;
            let d = &mut self.dbs[db];
            let expires = &d.expires;
            s.cursor = d.main.scan_mark(s.cursor, s.ver, |k, v| {
                let exp = if expires.is_empty() {
                    None
                } else {
                    expires.get(k).copied()
                };
                s.emit(db, k, v, exp);
            });
            if s.cursor == 0 {
                s.cursor_db += 1;
            }
            n += 1;
            if n.is_multiple_of(16) {
                if let Some(dl) = deadline {
                    if Instant::now() >= dl {
                        return false;
                    }
                }
                if s.link.inflight.load(Ordering::Relaxed) > persist::MAX_INFLIGHT {
                    return false;
                }
            }
        }
        let mut s = self.snap.take().expect("snapshot");
        if s.failed {
            self.abandon(s.ver);
            return true;
        }
        s.flush();
        let _ = s.link.tx.send(WMsg::Done { keys: s.keys });
        true
    }

    /// Stops the running snapshot (its writer is gone or we shut down).
    /// Stamps every node so the next snapshot starts from a clean state.
    pub fn snap_abort(&mut self) {
        if let Some(s) = self.snap.take() {
            self.abandon(s.ver);
        }
    }

    fn abandon(&mut self, ver: u8) {
        for d in &mut self.dbs {
            d.main.mark_all(ver);
        }
    }
}

impl Shard {
    /// Cuts a snapshot on every shard at one instant (a transaction holding
    /// them all) and starts the writer. With `foreground` (SAVE) each
    /// shard serializes everything before the transaction ends.
    pub fn snapshot_start(
        &mut self,
        foreground: bool,
        notify: Option<std::sync::mpsc::SyncSender<Result<(), String>>>,
    ) -> Result<(), &'static str> {
        let st = &self.g.persist;
        if st
            .in_progress
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return Err("Background save already in progress");
        }
        st.scheduled.store(false, Ordering::SeqCst);
        let cfg = persist::SnapCfg::from_global(&self.g);
        st.dirty_at_cut.store(0, Ordering::SeqCst);
        st.keys_total.store(0, Ordering::SeqCst);
        let link = persist::start_writer(&self.g, cfg, notify);
        let t = Instant::now();
        self.on_all(move |sh| {
            // The cut: counters first (the writer may finish as soon as
            // the last shard reports Done).
            let p = &sh.g.persist;
            p.dirty_at_cut.fetch_add(sh.ks.dirty, Ordering::SeqCst);
            p.shard_dirty[sh.id].store(sh.ks.dirty, Ordering::Relaxed);
            let total: u64 = sh.ks.dbs.iter().map(|d| d.main.len() as u64).sum();
            p.keys_total.fetch_add(total, Ordering::SeqCst);
            sh.ks.snap_begin(link.clone());
            sh.snap_last = Instant::now();
            if foreground {
                // SAVE: everything now, waiting for the writer when too
                // much is queued (the server is blocked meanwhile, as
                // Redis's SAVE blocks it).
                while !sh.ks.snap_step(None) {
                    std::thread::sleep(std::time::Duration::from_micros(200));
                }
            }
        });
        // The cut holds every shard: it is the pause a fork is in Redis.
        let ev = if foreground {
            "snapshot-save"
        } else {
            "snapshot-cut"
        };
        self.metrics.add_event(ev, t.elapsed().as_millis() as u64);
        Ok(())
    }

    /// One paced step of the background snapshot; returns whether one is
    /// still running (the loop then sleeps at most 1 ms).
    pub fn snap_tick(&mut self) -> bool {
        let Some(s) = self.ks.snap.as_deref() else {
            return false;
        };
        if s.failed {
            self.ks.snap_step(None);
            return false;
        }
        if s.link.inflight.load(Ordering::Relaxed) > persist::MAX_INFLIGHT {
            return true;
        }
        let share = s.link.cfg.cpu_share.clamp(1, 100) as u32;
        let now = Instant::now();
        let since = now.duration_since(self.snap_last);
        // Our share of the time since the last step, between 20 us and
        // 2 ms, so a busy shard interleaves short slices with its clients.
        let slice = (since * share / 100).clamp(
            std::time::Duration::from_micros(20),
            std::time::Duration::from_millis(2),
        );
        self.snap_last = now;
        let done = self.ks.snap_step(Some(now + slice));
        self.snap_last = Instant::now();
        self.metrics.add_event(
            "snapshot-step",
            self.snap_last.duration_since(now).as_millis() as u64,
        );
        !done
    }

    /// Takes start-up load batches from the loader, if loading.
    pub fn load_tick(&mut self) -> bool {
        let Some(rx) = self.load_rx.as_ref() else {
            return false;
        };
        loop {
            match rx.try_recv() {
                Ok(batch) => {
                    for it in batch {
                        if !self.ks.load_insert(it.db, it.key, it.value, it.expire_ms) {
                            crate::log::warn("RDB has duplicated keys: refusing to start");
                            std::process::exit(1);
                        }
                    }
                }
                Err(std::sync::mpsc::TryRecvError::Empty) => return true,
                Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                    self.load_rx = None;
                    persist::shard_loaded(&self.g);
                    return false;
                }
            }
        }
    }
}
