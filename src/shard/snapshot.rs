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

/// A big value (a hashtable hash or set, a skiplist zset, a long list)
/// met by the cursor, serialized a piece per step so that no single step
/// stalls the shard. It cannot change meanwhile: a write to it first
/// finishes it ([`Keyspace::pre_write`]).
struct BigJob {
    db: usize,
    key: Vec<u8>,
    /// The record so far (SELECTDB, expiry, type, key, body) in chunk
    /// buffers from the pool: no buffer grows to the record's size (a
    /// multi-megabyte realloc, and fresh pages to fault in, would stall
    /// the shard), and the writer gets them as one `WMsg::Record`.
    segs: Vec<Vec<u8>>,
    cur: Vec<u8>,
    /// Where the next piece starts (None: at the length header).
    pos: Option<u64>,
}

/// Writes the next piece of `job`; returns true when the record is complete.
fn run_piece(
    job: &mut BigJob,
    dbs: &[super::keyspace::Db],
    compress: bool,
    link: &SnapLink,
) -> bool {
    if job.cur.len() >= persist::CHUNK / 2 {
        let full = std::mem::replace(&mut job.cur, link.buffer());
        job.segs.push(full);
    }
    match dbs[job.db].main.get(&job.key) {
        Some(v) => match encode::write_value_piece(&mut job.cur, v, compress, job.pos) {
            Some(p) => {
                job.pos = Some(p);
                false
            }
            None => true,
        },
        // Unreachable (deleting the key finishes the job first); dropping
        // the half record keeps the file valid.
        None => {
            job.segs.clear();
            job.cur.clear();
            true
        }
    }
}

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
    /// Big values being serialized piece by piece.
    big: std::collections::VecDeque<BigJob>,
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

    /// The cursor's variant of [`SnapOut::emit`]: a big value becomes a
    /// job written piece by piece.
    fn emit_or_defer(&mut self, db: usize, key: &[u8], v: &Value, exp: Option<u64>) {
        if self.failed {
            return;
        }
        if encode::piece_units(v).is_none() {
            return self.emit(db, key, v, exp);
        }
        let mut cur = self.link.buffer();
        encode::write_select_db(&mut cur, db);
        encode::write_entry_head(&mut cur, key, v, exp, self.compress);
        self.keys += 1;
        self.big.push_back(BigJob {
            db,
            key: key.to_vec(),
            segs: Vec::new(),
            cur,
            pos: None,
        });
    }

    /// Hands a finished big record to the writer.
    fn send_record(&mut self, job: BigJob) {
        let mut segs = job.segs;
        segs.push(job.cur);
        let n: usize = segs.iter().map(Vec::len).sum();
        if n > 0 {
            self.send(WMsg::Record(segs), n);
        }
    }

    /// Sends `n` bytes to the writer, counted in flight until written.
    fn send(&mut self, m: WMsg, n: usize) {
        if self.failed {
            return;
        }
        self.link.inflight.fetch_add(n, Ordering::Relaxed);
        if self.link.tx.send(m).is_err() {
            self.failed = true;
        }
    }

    /// Completes the big jobs `pick` selects (before their keys change).
    fn finish_jobs(&mut self, dbs: &[super::keyspace::Db], pick: impl Fn(&BigJob) -> bool) {
        let mut i = 0;
        while i < self.big.len() {
            if pick(&self.big[i]) {
                let mut job = self.big.remove(i).expect("job");
                while !run_piece(&mut job, dbs, self.compress, &self.link) {}
                self.send_record(job);
            } else {
                i += 1;
            }
        }
    }

    fn flush(&mut self) {
        if self.buf.is_empty() || self.failed {
            return;
        }
        let fresh = self.link.buffer();
        let b = std::mem::replace(&mut self.buf, fresh);
        let n = b.len();
        self.send(WMsg::Chunk(b), n);
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
            big: std::collections::VecDeque::new(),
        }));
    }

    /// Serialize-before-mutate: writes `key` to the running snapshot if it
    /// has not been written yet. Every mutating keyspace method calls this.
    #[inline]
    pub(crate) fn pre_write(&mut self, db: usize, key: &[u8]) {
        if let Some(s) = self.snap.as_deref_mut() {
            if !s.big.is_empty() {
                s.finish_jobs(&self.dbs, |j| j.db == db && j.key == key);
            }
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
        s.finish_jobs(&self.dbs, |j| j.db == db);
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
        while !s.failed {
            if let Some(job) = s.big.front_mut() {
                if run_piece(job, &self.dbs, s.compress, &s.link) {
                    let job = s.big.pop_front().expect("job");
                    s.send_record(job);
                }
                if let Some(dl) = deadline {
                    if Instant::now() >= dl {
                        return false;
                    }
                }
                continue;
            }
            if s.cursor_db >= self.dbs.len() {
                break;
            }
            let db = s.cursor_db;
            let d = &mut self.dbs[db];
            let expires = &d.expires;
            s.cursor = d.main.scan_mark(s.cursor, s.ver, |k, v| {
                let exp = if expires.is_empty() {
                    None
                } else {
                    expires.get(k).copied()
                };
                s.emit_or_defer(db, k, v, exp);
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
                        let (db, hints) = (it.db, (it.idle_secs, it.freq));
                        let key = (hints != (None, None)).then(|| it.key.clone());
                        if !self.ks.load_insert(it.db, it.key, it.value, it.expire_ms) {
                            crate::log::warn("RDB has duplicated keys: refusing to start");
                            std::process::exit(1);
                        }
                        // Access hints, each under its kind of policy (as
                        // Redis applies them on load).
                        if let Some(k) = key {
                            if let Some(s) = hints.0 {
                                self.ks.set_idle(db, &k, s);
                            }
                            if let Some(f) = hints.1 {
                                self.ks.set_freq(db, &k, f as u32);
                            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shard::keyspace::EncCfg;
    use crate::types::{hash, list, set, zset, Str};
    use std::sync::atomic::AtomicUsize;
    use std::sync::{Arc, Mutex};

    const N: usize = 5000;

    fn link() -> (SnapLink, std::sync::mpsc::Receiver<WMsg>) {
        let (tx, rx) = std::sync::mpsc::channel();
        let cfg = persist::SnapCfg {
            dir: std::env::temp_dir(),
            dbfilename: "unused.rdb".into(),
            compress: true,
            checksum: false,
            cpu_share: 100,
            max_bps: 0,
        };
        let link = SnapLink {
            tx,
            inflight: Arc::new(AtomicUsize::new(0)),
            cfg,
            pool: Arc::new(Mutex::new(Vec::new())),
        };
        (link, rx)
    }

    /// A value's contents in a canonical order.
    fn contents(v: &Value) -> Vec<String> {
        let mut tmp = itoa::Buffer::new();
        let mut out: Vec<String> = match v {
            Value::Hash(h) => h
                .iter()
                .map(|(f, x)| {
                    let f = String::from_utf8_lossy(f.as_bytes(&mut tmp)).into_owned();
                    format!("{f}={}", String::from_utf8_lossy(x.as_bytes(&mut tmp)))
                })
                .collect(),
            Value::Set(s) => s
                .iter()
                .map(|m| match m {
                    set::Member::Int(x) => x.to_string(),
                    set::Member::Str(b) => String::from_utf8_lossy(b).into_owned(),
                })
                .collect(),
            Value::ZSet(z) => {
                let mut r = Vec::new();
                z.range(0, z.len(), false, |m, s| {
                    r.push(format!("{}:{s}", String::from_utf8_lossy(m)))
                });
                return r;
            }
            Value::List(l) => {
                return l
                    .iter()
                    .map(|e| match e {
                        list::Elem::Int(x) => x.to_string(),
                        list::Elem::Str(b) => String::from_utf8_lossy(b).into_owned(),
                    })
                    .collect()
            }
            Value::Str(s) => vec![format!("{s:?}")],
            Value::Stream(s) => vec![format!("{s:?}")],
        };
        out.sort();
        out
    }

    fn big_values() -> Vec<(&'static [u8], Value)> {
        let mut h = hash::Hash::new();
        let mut st = set::Set::new();
        let mut z = zset::ZSet::new();
        let mut l = list::List::new(4);
        let lim = zset::Limits {
            max_entries: 128,
            max_value: 64,
        };
        for i in 0..N {
            let m = format!("member:{i}");
            h.set(m.as_bytes(), i.to_string().as_bytes(), 512, 64);
            st.add(m.as_bytes(), 512);
            z.add(m.as_bytes(), i as f64 / 3.0, zset::AddFlags::default(), lim);
            l.push_back(m.as_bytes());
        }
        vec![
            (b"big:h", Value::Hash(Box::new(h))),
            (b"big:s", Value::Set(Box::new(st))),
            (b"big:z", Value::ZSet(Box::new(z))),
            (b"big:l", Value::List(Box::new(l))),
        ]
    }

    /// Changes (or, for `del`, deletes) a big value through the keyspace,
    /// as a command would.
    fn mutate(ks: &mut Keyspace, key: &[u8], round: usize, del: bool) {
        if del {
            assert!(ks.delete(0, key));
            return;
        }
        let lim = zset::Limits {
            max_entries: 128,
            max_value: 64,
        };
        let m = format!("new:{round}");
        match ks.get_mut(0, key).expect("key") {
            Value::Hash(h) => {
                h.set(m.as_bytes(), b"1", 512, 64);
                h.remove(b"member:7");
            }
            Value::Set(s) => {
                s.add(m.as_bytes(), 512);
                s.remove(b"member:9");
            }
            Value::ZSet(z) => {
                z.add(m.as_bytes(), -1.0, zset::AddFlags::default(), lim);
            }
            Value::List(l) => l.push_back(m.as_bytes()),
            Value::Str(_) | Value::Stream(_) => unreachable!(),
        }
        ks.touch_write(1);
    }

    /// Every big value is changed while its piecewise job is half done
    /// (and one is deleted): the snapshot holds them as they were at the
    /// cut, and the small keys around them too.
    #[test]
    fn big_values_changed_mid_piece_keep_the_cut() {
        for del_key in [None, Some(&b"big:z"[..]), Some(&b"big:l"[..])] {
            let mut ks = Keyspace::new(1);
            for i in 0..300 {
                let k = format!("small:{i}");
                ks.set(0, k.as_bytes(), Value::Str(Str::from_bytes(b"v")), false);
            }
            let mut expect = std::collections::HashMap::new();
            for (k, v) in big_values() {
                expect.insert(k.to_vec(), contents(&v));
                ks.set(0, k, v, false);
            }
            let (link, rx) = link();
            ks.snap_begin(link);
            let mut mid_job = 0;
            let mut round = 0;
            loop {
                // An expired deadline: one piece (or cursor batch) a step.
                let done = ks.snap_step(Some(Instant::now()));
                if done {
                    break;
                }
                round += 1;
                assert!(round < 100_000, "snapshot does not progress");
                let job = ks
                    .snap
                    .as_ref()
                    .and_then(|s| s.big.front())
                    .filter(|j| j.pos.is_some())
                    .map(|j| j.key.clone());
                if let Some(k) = job {
                    mid_job += 1;
                    mutate(&mut ks, &k, round, del_key == Some(&k[..]));
                    // A change after the record is complete is not in it.
                    if del_key != Some(&k[..]) {
                        mutate(&mut ks, &k, round + 1, false);
                    }
                }
            }
            assert_eq!(mid_job, 4, "every big value is changed mid-job once");
            // The file: header, every chunk, trailer; loaded with the
            // real loader.
            let mut file = Vec::new();
            encode::write_header(&mut file, &Default::default());
            let mut keys = None;
            for m in rx.try_iter() {
                match m {
                    WMsg::Chunk(c) => file.extend_from_slice(&c),
                    WMsg::Record(segs) => segs.iter().for_each(|c| file.extend_from_slice(c)),
                    WMsg::Done { keys: k } => keys = Some(k),
                }
            }
            assert_eq!(keys, Some(304));
            file.extend_from_slice(&encode::trailer(0, false));
            let mut got = std::collections::HashMap::new();
            let mut small = 0;
            crate::rdb::decode::load(&file, &EncCfg::default(), 16, |e| {
                if e.key.starts_with(b"small:") {
                    small += 1;
                } else {
                    got.insert(e.key.clone(), contents(&e.value));
                }
                Ok(())
            })
            .expect("the snapshot loads");
            assert_eq!(small, 300);
            assert_eq!(got.len(), 4);
            for (k, v) in &expect {
                assert!(
                    got.get(k) == Some(v),
                    "{} differs",
                    String::from_utf8_lossy(k)
                );
            }
        }
    }
}
