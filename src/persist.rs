//! Persistence: RDB snapshots and loading them at start-up.
//!
//! A snapshot is fork-free and point-in-time (see docs/rdb-format.md and
//! `shard/snapshot.rs`): a transaction holding every shard stamps a new
//! snapshot version into each shard's tables, which is the instant of the
//! cut; each shard then serializes its keys in the background, and
//! serializes any key it is about to modify, delete or expire first. The
//! serialized chunks travel over a channel to one writer thread (here),
//! which writes them to a temp file in batches of io_uring writes, paced
//! by a bytes-per-second budget, then fsyncs it and renames it into place.
//!
//! Also here: `save` points, the shutdown save, INFO persistence state and
//! the start-up loader, which parses dump.rdb on the main thread and hands
//! keys to their shards while clients get `-LOADING`.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::rdb::{self, encode};
use crate::server::Global;
use crate::shard::keyspace::Keyspace;
use crate::types::Value;

/// Bytes a shard's background cursor may have queued to the writer before
/// it pauses (serialize-before-mutate output is never held back).
pub const MAX_INFLIGHT: usize = 2 << 20;
/// Size at which a shard hands a chunk to the writer.
pub const CHUNK: usize = 64 << 10;

/// What SHUTDOWN asked for.
pub const SHUTDOWN_DEFAULT: u8 = 0;
pub const SHUTDOWN_SAVE: u8 = 1;
pub const SHUTDOWN_NOSAVE: u8 = 2;

/// Gate bits checked by dispatch for every command.
pub const GATE_LOADING: u8 = 1;
pub const GATE_MISCONF: u8 = 2;

/// The MISCONF error (Redis's wording).
pub const MISCONF_ERR: &str = "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that may modify the data set are disabled, because this instance is configured to report errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error.";

/// A key read from dump.rdb at start-up, on its way to its shard.
pub struct LoadItem {
    pub db: usize,
    pub key: Vec<u8>,
    pub value: Value,
    pub expire_ms: Option<u64>,
    /// The file's access hints (RDB IDLE / FREQ opcodes).
    pub idle_secs: Option<u64>,
    pub freq: Option<u8>,
}

/// Persistence state shared by the shards and the writer thread.
pub struct State {
    pub gate: AtomicU8,
    pub in_progress: AtomicBool,
    pub scheduled: AtomicBool,
    /// rdb_last_save_time (Unix seconds).
    pub last_save_secs: AtomicU64,
    pub last_ok: AtomicBool,
    /// rdb_last_bgsave_time_sec (-1: none yet).
    pub last_duration_secs: AtomicI64,
    /// Start of the snapshot in progress (Unix ms).
    pub start_ms: AtomicU64,
    /// When the last snapshot attempt started (Unix seconds), for the
    /// retry delay after a failure.
    pub last_try_secs: AtomicU64,
    pub saves: AtomicU64,
    /// Sum of the shards' write counters when the last successful snapshot
    /// was cut (rdb_changes_since_last_save = sum now - this).
    pub dirty_saved: AtomicU64,
    /// Sum of the write counters at the cut of the snapshot in progress.
    pub dirty_at_cut: AtomicU64,
    /// Each shard's write counter, published by its cron.
    pub shard_dirty: Vec<AtomicU64>,
    pub keys_processed: AtomicU64,
    pub keys_total: AtomicU64,
    /// Shards still loading dump.rdb.
    pub loading_left: AtomicUsize,
    pub loading_start_secs: AtomicU64,
    pub load_keys_loaded: AtomicU64,
    pub load_keys_expired: AtomicU64,
    /// Per-shard receivers of start-up load batches.
    pub load_rx: Mutex<Vec<Option<Receiver<Vec<LoadItem>>>>>,
    pub shutdown_mode: AtomicU8,
    /// Keyspaces handed back by the shards as they stop (shutdown save).
    pub final_ks: Mutex<Vec<Option<Keyspace>>>,
    /// Serial number for temp file names.
    seq: AtomicU64,
}

impl State {
    pub fn new(nshards: usize) -> State {
        let now_s = crate::util::now_ms() / 1000;
        State {
            gate: AtomicU8::new(0),
            in_progress: AtomicBool::new(false),
            scheduled: AtomicBool::new(false),
            last_save_secs: AtomicU64::new(now_s),
            last_ok: AtomicBool::new(true),
            last_duration_secs: AtomicI64::new(-1),
            start_ms: AtomicU64::new(0),
            last_try_secs: AtomicU64::new(0),
            saves: AtomicU64::new(0),
            dirty_saved: AtomicU64::new(0),
            dirty_at_cut: AtomicU64::new(0),
            shard_dirty: (0..nshards).map(|_| AtomicU64::new(0)).collect(),
            keys_processed: AtomicU64::new(0),
            keys_total: AtomicU64::new(0),
            loading_left: AtomicUsize::new(0),
            loading_start_secs: AtomicU64::new(0),
            load_keys_loaded: AtomicU64::new(0),
            load_keys_expired: AtomicU64::new(0),
            load_rx: Mutex::new((0..nshards).map(|_| None).collect()),
            shutdown_mode: AtomicU8::new(SHUTDOWN_DEFAULT),
            final_ks: Mutex::new((0..nshards).map(|_| None).collect()),
            seq: AtomicU64::new(0),
        }
    }

    pub fn loading(&self) -> bool {
        self.gate.load(Ordering::Relaxed) & GATE_LOADING != 0
    }

    fn set_gate(&self, bit: u8, on: bool) {
        if on {
            self.gate.fetch_or(bit, Ordering::SeqCst);
        } else {
            self.gate.fetch_and(!bit, Ordering::SeqCst);
        }
    }

    /// Writes since the last successful save, from the published counters.
    pub fn changes_since_save(&self) -> u64 {
        let now: u64 = self
            .shard_dirty
            .iter()
            .map(|d| d.load(Ordering::Relaxed))
            .sum();
        now.saturating_sub(self.dirty_saved.load(Ordering::Relaxed))
    }
}

/// Parses the `save` directive: pairs of "seconds changes".
pub fn parse_save_params(s: &str) -> Result<Vec<(u64, u64)>, String> {
    let w: Vec<&str> = s.split_whitespace().collect();
    if !w.len().is_multiple_of(2) {
        return Err("Invalid save parameters".into());
    }
    w.chunks(2)
        .map(|p| match (p[0].parse::<u64>(), p[1].parse::<u64>()) {
            (Ok(a), Ok(b)) => Ok((a, b)),
            _ => Err("Invalid save parameters".into()),
        })
        .collect()
}

/// Settings of one snapshot, read from the configuration when it starts.
#[derive(Clone)]
pub struct SnapCfg {
    pub dir: PathBuf,
    pub dbfilename: String,
    pub compress: bool,
    pub checksum: bool,
    pub cpu_share: u64,
    pub max_bps: u64,
}

impl SnapCfg {
    pub fn from_global(g: &Global) -> SnapCfg {
        let c = g.config.read().unwrap_or_else(|e| e.into_inner());
        SnapCfg {
            dir: PathBuf::from(c.get("dir")),
            dbfilename: c.get("dbfilename").to_string(),
            compress: c.get("rdbcompression") == "yes",
            checksum: c.get("rdbchecksum") == "yes",
            cpu_share: c.get_i64("snapshot-cpu-share").clamp(1, 100) as u64,
            max_bps: c.get_i64("snapshot-max-bytes-per-sec").max(0) as u64,
        }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(&self.dbfilename)
    }
}

/// Messages from the shards to the writer thread.
pub enum WMsg {
    Chunk(Vec<u8>),
    /// One record in several buffers, written back to back (no other
    /// shard's chunk between them).
    Record(Vec<Vec<u8>>),
    /// A shard finished its part; `keys` it serialized.
    Done {
        keys: u64,
    },
}

/// The shard side's handle on the running snapshot.
#[derive(Clone)]
pub struct SnapLink {
    pub tx: Sender<WMsg>,
    pub inflight: Arc<AtomicUsize>,
    pub cfg: SnapCfg,
    /// Written chunks' buffers, handed back for reuse, so a snapshot does
    /// not churn the allocator (memory stays near the in-flight cap).
    pub pool: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl SnapLink {
    /// An empty chunk buffer, reused when one is available.
    pub fn buffer(&self) -> Vec<u8> {
        self.pool
            .lock()
            .ok()
            .and_then(|mut p| p.pop())
            .unwrap_or_else(|| Vec::with_capacity(CHUNK + 1024))
    }
}

/// Starts the writer thread for a snapshot of `nshards` shards. The
/// header is written at once; the trailer after every shard said Done.
/// `notify` (SAVE) receives the outcome.
pub fn start_writer(
    g: &Arc<Global>,
    cfg: SnapCfg,
    notify: Option<std::sync::mpsc::SyncSender<Result<(), String>>>,
) -> SnapLink {
    let (tx, rx) = std::sync::mpsc::channel();
    let inflight = Arc::new(AtomicUsize::new(0));
    let st = &g.persist;
    st.start_ms.store(crate::util::now_ms(), Ordering::SeqCst);
    st.last_try_secs
        .store(crate::util::now_ms() / 1000, Ordering::SeqCst);
    st.keys_processed.store(0, Ordering::SeqCst);
    let pool = Arc::new(Mutex::new(Vec::new()));
    let link = SnapLink {
        tx,
        inflight: inflight.clone(),
        cfg: cfg.clone(),
        pool: pool.clone(),
    };
    let g2 = g.clone();
    let nshards = g.nshards;
    let spawned = std::thread::Builder::new()
        .name("rdb-writer".into())
        .spawn(move || {
            // The writer runs at the lowest priority: where it shares a CPU
            // with a shard (taskset, cpusets) it takes the time the shard
            // leaves idle and barely preempts it otherwise, yet always
            // makes progress.
            // SAFETY: setpriority on this thread's own id.
            unsafe {
                let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
                libc::setpriority(libc::PRIO_PROCESS, tid, 19);
            }
            // Spawned by a pinned shard, it would share that shard's CPU;
            // it may use any of the process's CPUs (or bgsave_cpulist).
            if let Err(e) = crate::server::run_on(&g2.bgsave_cpus) {
                crate::log::warn(&format!(
                    "bgsave_cpulist: can't set the RDB writer's CPUs: {e}"
                ));
            }
            let t0 = Instant::now();
            let seq = g2.persist.seq.fetch_add(1, Ordering::Relaxed);
            let tmp = cfg
                .dir
                .join(format!("temp-{}-{}.rdb", std::process::id(), seq));
            let r = write_snapshot(&g2, &cfg, &tmp, nshards, &rx, &inflight, &pool);
            drop(rx);
            if r.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            finish(&g2, &cfg, r.clone(), t0);
            if let Some(n) = notify {
                let _ = n.send(r.map(|_| ()));
            }
        });
    if let Err(e) = spawned {
        crate::log::warn(&format!("Can't start the RDB writer thread: {e}"));
        g.persist.in_progress.store(false, Ordering::SeqCst);
    }
    link
}

/// Records a snapshot's outcome (INFO persistence, log, MISCONF gate).
fn finish(g: &Global, cfg: &SnapCfg, r: Result<u64, String>, t0: Instant) {
    let st = &g.persist;
    let secs = t0.elapsed().as_secs() as i64;
    st.last_duration_secs.store(secs, Ordering::SeqCst);
    match r {
        Ok(bytes) => {
            st.last_ok.store(true, Ordering::SeqCst);
            st.last_save_secs
                .store(crate::util::now_ms() / 1000, Ordering::SeqCst);
            st.dirty_saved
                .store(st.dirty_at_cut.load(Ordering::SeqCst), Ordering::SeqCst);
            st.saves.fetch_add(1, Ordering::SeqCst);
            st.set_gate(GATE_MISCONF, false);
            crate::log::notice(&format!(
                "DB saved on disk ({} keys, {} bytes, {:.3} s): {}",
                st.keys_processed.load(Ordering::Relaxed),
                bytes,
                t0.elapsed().as_secs_f64(),
                cfg.path().display()
            ));
        }
        Err(e) => {
            st.last_ok.store(false, Ordering::SeqCst);
            crate::log::warn(&format!("Background saving error: {e}"));
            refresh_misconf(g);
        }
    }
    st.in_progress.store(false, Ordering::SeqCst);
}

/// Recomputes the MISCONF gate: writes are refused while the last
/// snapshot failed, `stop-writes-on-bgsave-error` is on and save points
/// are configured (as Redis).
pub fn refresh_misconf(g: &Global) {
    let st = &g.persist;
    let deny = !st.last_ok.load(Ordering::SeqCst) && {
        let c = g.config.read().unwrap_or_else(|e| e.into_inner());
        c.get("stop-writes-on-bgsave-error") == "yes" && !c.get("save").trim().is_empty()
    };
    st.set_gate(GATE_MISCONF, deny);
}

fn write_snapshot(
    g: &Global,
    cfg: &SnapCfg,
    tmp: &Path,
    nshards: usize,
    rx: &Receiver<WMsg>,
    inflight: &AtomicUsize,
    pool: &Mutex<Vec<Vec<u8>>>,
) -> Result<u64, String> {
    let file = File::create(tmp).map_err(|e| {
        format!(
            "Failed opening the temp RDB file {} (in server root dir {}) for saving: {}",
            tmp.display(),
            cfg.dir.display(),
            e
        )
    })?;
    let mut out = BatchFile::new(file);
    let werr = |e: std::io::Error| format!("Write error saving DB on disk: {e}");
    let mut head = Vec::new();
    encode::write_header(
        &mut head,
        &encode::Aux {
            ctime_secs: crate::util::now_ms() / 1000,
            used_mem: crate::alloc::used_memory(),
            aof_base: false,
        },
    );
    // Function libraries come first, as Redis writes them.
    head.extend_from_slice(&crate::script::functions::rdb_records(cfg.compress));
    let mut crc = rdb::crc64(0, &head);
    out.write_batch(&[head]).map_err(werr)?;
    let t0 = Instant::now();
    let mut written = 0u64;
    let mut done = 0;
    let mut keys = 0u64;
    while done < nshards {
        // Block for one message, then take whatever else is queued (up
        // to a batch) and write it with one submission.
        let first = rx
            .recv_timeout(Duration::from_secs(3600))
            .map_err(|_| "the snapshot was abandoned".to_string())?;
        let mut batch = Vec::new();
        let mut batch_bytes = 0;
        let mut next = Some(first);
        while let Some(m) = next.take() {
            match m {
                WMsg::Chunk(c) => {
                    batch_bytes += c.len();
                    batch.push(c);
                }
                WMsg::Record(segs) => {
                    batch_bytes += segs.iter().map(Vec::len).sum::<usize>();
                    batch.extend(segs);
                }
                WMsg::Done { keys: k } => {
                    done += 1;
                    keys += k;
                }
            }
            if batch.len() < 32 && batch_bytes < 8 << 20 {
                next = rx.try_recv().ok();
            }
        }
        if g.shutdown.load(Ordering::Relaxed) {
            return Err("shutdown in progress".into());
        }
        for c in &batch {
            crc = rdb::crc64(crc, c);
        }
        let n: usize = batch.iter().map(|c| c.len()).sum();
        out.write_batch(&batch).map_err(werr)?;
        inflight.fetch_sub(n.min(inflight.load(Ordering::Relaxed)), Ordering::Relaxed);
        written += n as u64;
        if let Ok(mut p) = pool.lock() {
            for mut c in batch {
                if p.len() < MAX_INFLIGHT / CHUNK + 8 && c.capacity() <= CHUNK * 2 {
                    c.clear();
                    p.push(c);
                }
            }
        }
        g.persist.keys_processed.store(keys, Ordering::Relaxed);
        if cfg.max_bps > 0 {
            let due = Duration::from_secs_f64(written as f64 / cfg.max_bps as f64);
            let el = t0.elapsed();
            if due > el {
                std::thread::sleep((due - el).min(Duration::from_secs(1)));
            }
        }
    }
    g.persist.keys_processed.store(keys, Ordering::Relaxed);
    let tail = encode::trailer(crc, cfg.checksum);
    out.write_batch(&[tail.to_vec()]).map_err(werr)?;
    out.sync().map_err(werr)?;
    let total = out.off;
    drop(out);
    let dst = cfg.path();
    std::fs::rename(tmp, &dst).map_err(|e| {
        format!(
            "Error moving temp DB file {} on the final destination {} (in server root dir {}): {}",
            tmp.display(),
            dst.display(),
            cfg.dir.display(),
            e
        )
    })?;
    // Make the rename durable.
    if let Ok(d) = File::open(&cfg.dir) {
        let _ = d.sync_all();
    }
    Ok(total)
}

/// A file written in batches: one io_uring submission per batch of
/// chunks (one write per chunk at consecutive offsets), or plain writes
/// when io_uring is unavailable.
struct BatchFile {
    file: File,
    ring: Option<io_uring::IoUring>,
    off: u64,
}

impl BatchFile {
    fn new(file: File) -> BatchFile {
        let ring = if crate::server::uring_unavailable().is_none() {
            io_uring::IoUring::new(64).ok()
        } else {
            None
        };
        BatchFile { file, ring, off: 0 }
    }

    fn write_batch(&mut self, bufs: &[Vec<u8>]) -> std::io::Result<()> {
        let Some(ring) = self.ring.as_mut() else {
            for b in bufs {
                self.file.write_all(b)?;
                self.off += b.len() as u64;
            }
            return Ok(());
        };
        let fd = self.file.as_raw_fd();
        let mut offs = Vec::with_capacity(bufs.len());
        let mut off = self.off;
        for (i, b) in bufs.iter().enumerate() {
            let len = b.len().min(u32::MAX as usize) as u32;
            let e = io_uring::opcode::Write::new(io_uring::types::Fd(fd), b.as_ptr(), len)
                .offset(off)
                .build()
                .user_data(i as u64);
            // SAFETY: the buffer stays alive and unmoved until its completion
            // is reaped below (we wait for every submitted entry before
            // returning), and the fd is open for the whole call.
            while unsafe { ring.submission().push(&e) }.is_err() {
                ring.submit()?;
            }
            offs.push(off);
            off += b.len() as u64;
        }
        let n = offs.len();
        let mut reaped = 0;
        let mut short: Vec<(usize, usize)> = Vec::new();
        let mut first_err = None;
        while reaped < n {
            ring.submit_and_wait(1)?;
            for c in ring.completion() {
                reaped += 1;
                let i = c.user_data() as usize;
                let r = c.result();
                if r < 0 {
                    first_err.get_or_insert(std::io::Error::from_raw_os_error(-r));
                } else if (r as usize) < bufs[i].len() {
                    short.push((i, r as usize));
                }
            }
        }
        if let Some(e) = first_err {
            return Err(e);
        }
        // Finish short writes (rare: signals, full disks) synchronously.
        for (i, done) in short {
            write_all_at(&self.file, &bufs[i][done..], offs[i] + done as u64)?;
        }
        self.off = off;
        Ok(())
    }

    fn sync(&mut self) -> std::io::Result<()> {
        if let Some(ring) = self.ring.as_mut() {
            let e = io_uring::opcode::Fsync::new(io_uring::types::Fd(self.file.as_raw_fd()))
                .build()
                .user_data(u64::MAX);
            // SAFETY: no buffers are involved; the fd outlives the call.
            if unsafe { ring.submission().push(&e) }.is_ok() {
                ring.submit_and_wait(1)?;
                if let Some(c) = ring.completion().next() {
                    if c.result() < 0 {
                        return Err(std::io::Error::from_raw_os_error(-c.result()));
                    }
                    return Ok(());
                }
            }
        }
        self.file.sync_all()
    }
}

fn write_all_at(f: &File, mut b: &[u8], mut off: u64) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    while !b.is_empty() {
        let n = f.write_at(b, off)?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::WriteZero,
                "no space left on device",
            ));
        }
        b = &b[n..];
        off += n as u64;
    }
    Ok(())
}

/// Writes every keyspace to `path` on the calling thread (the shutdown
/// save, when the shards have stopped): temp file, fsync, rename.
pub fn save_keyspaces(kss: &[&Keyspace], cfg: &SnapCfg) -> Result<u64, String> {
    let tmp = cfg.dir.join(format!("temp-{}.rdb", std::process::id()));
    let r = (|| -> std::io::Result<u64> {
        let mut f = std::io::BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
        let mut buf = Vec::with_capacity(CHUNK + 4096);
        encode::write_header(
            &mut buf,
            &encode::Aux {
                ctime_secs: crate::util::now_ms() / 1000,
                used_mem: crate::alloc::used_memory(),
                aof_base: false,
            },
        );
        buf.extend_from_slice(&crate::script::functions::rdb_records(cfg.compress));
        let mut crc = 0u64;
        let mut total = 0u64;
        let mut flush =
            |buf: &mut Vec<u8>, f: &mut std::io::BufWriter<File>| -> std::io::Result<()> {
                crc = rdb::crc64(crc, buf);
                total += buf.len() as u64;
                f.write_all(buf)?;
                buf.clear();
                Ok(())
            };
        for ks in kss {
            for (db, d) in ks.dbs.iter().enumerate() {
                if d.main.is_empty() {
                    continue;
                }
                encode::write_select_db(&mut buf, db);
                encode::write_resize_db(&mut buf, d.main.len() as u64, d.expires.len() as u64);
                for (k, v) in d.main.iter() {
                    let exp = if d.expires.is_empty() {
                        None
                    } else {
                        d.expires.get(k).copied()
                    };
                    encode::write_entry(&mut buf, k, v, exp, cfg.compress);
                    if buf.len() >= CHUNK {
                        flush(&mut buf, &mut f)?;
                    }
                }
            }
        }
        flush(&mut buf, &mut f)?;
        let tail = encode::trailer(crc, cfg.checksum);
        f.write_all(&tail)?;
        let f = f.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        Ok(total + tail.len() as u64)
    })();
    match r {
        Ok(n) => {
            std::fs::rename(&tmp, cfg.path()).map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                format!("Error moving temp DB file on the final destination: {e}")
            })?;
            if let Ok(d) = File::open(&cfg.dir) {
                let _ = d.sync_all();
            }
            Ok(n)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(format!(
                "Failed saving the DB to {}: {}",
                cfg.path().display(),
                e
            ))
        }
    }
}

/// Start-up: reads `path` and sends its keys to their shards (which are
/// running and answer `-LOADING` meanwhile). Returns an error message on
/// any problem; the caller exits with status 1 so the server never runs
/// half-loaded.
pub fn load_file(
    g: &Arc<Global>,
    path: &Path,
    senders: Vec<Sender<Vec<LoadItem>>>,
) -> Result<(), String> {
    let t0 = Instant::now();
    let buf = std::fs::read(path)
        .map_err(|e| format!("Fatal error loading the DB {}: {}", path.display(), e))?;
    let (enc, databases) = {
        let sc = g.shard_cfg();
        (sc.enc, sc.databases)
    };
    let n = senders.len();
    let mut batches: Vec<Vec<LoadItem>> = (0..n).map(|_| Vec::new()).collect();
    let now = crate::util::now_ms();
    let mut loaded = 0u64;
    let mut expired = 0u64;
    let info = rdb::decode::load(&buf, &enc, databases, |e| {
        if matches!(e.expire_ms, Some(at) if at <= now) {
            expired += 1;
            return Ok(());
        }
        let s = if n == 1 {
            0
        } else {
            crate::util::key_slot(&e.key) as usize % n
        };
        batches[s].push(LoadItem {
            db: e.db,
            key: e.key,
            value: e.value,
            expire_ms: e.expire_ms,
            idle_secs: e.idle_secs,
            freq: e.freq,
        });
        loaded += 1;
        if batches[s].len() >= 1024 {
            let b = std::mem::take(&mut batches[s]);
            senders[s]
                .send(b)
                .map_err(|_| "a shard stopped while loading".to_string())?;
            g.wakers[s].wake();
        }
        Ok(())
    })
    .map_err(|e| {
        format!(
            "Bad RDB file {}: {} (the server will not start with a partial dataset)",
            path.display(),
            e
        )
    })?;
    crate::script::functions::load_rdb(&info.functions)
        .map_err(|e| format!("Bad RDB file {}: {}", path.display(), e))?;
    for (s, b) in batches.into_iter().enumerate() {
        if !b.is_empty() {
            senders[s]
                .send(b)
                .map_err(|_| "a shard stopped while loading".to_string())?;
        }
        g.wakers[s].wake();
    }
    drop(senders);
    g.persist.load_keys_loaded.store(loaded, Ordering::SeqCst);
    g.persist.load_keys_expired.store(expired, Ordering::SeqCst);
    let ver = info.version;
    crate::log::notice(&format!(
        "Loading RDB produced by version {} (RDB v{}): {} keys loaded, {} expired keys skipped, {} empty keys skipped{}",
        info.aux
            .iter()
            .find(|(k, _)| k == b"redis-ver")
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_else(|| "unknown".into()),
        ver,
        loaded,
        expired,
        info.empty_keys_skipped,
        {
            let mut extra = String::new();
            if !info.functions.is_empty() {
                extra += &format!(", {} function libraries loaded", info.functions.len());
            }
            if info.functions_skipped > 0 {
                extra += &format!(
                    ", {} pre-GA function libraries ignored",
                    info.functions_skipped
                );
            }
            extra
        }
    ));
    crate::log::notice(&format!(
        "DB loaded from disk: {:.3} seconds",
        t0.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// Called by a shard when its load channel closed.
pub fn shard_loaded(g: &Global) {
    if g.persist.loading_left.fetch_sub(1, Ordering::SeqCst) == 1 {
        g.persist.set_gate(GATE_LOADING, false);
    }
}

/// Prepares start-up loading: marks the server as loading and returns the
/// senders for [`load_file`] (receivers go to the shards via `State`).
pub fn prepare_loading(g: &Global) -> Vec<Sender<Vec<LoadItem>>> {
    let mut rxs = g.persist.load_rx.lock().unwrap_or_else(|e| e.into_inner());
    let mut txs = Vec::with_capacity(g.nshards);
    for slot in rxs.iter_mut() {
        let (tx, rx) = std::sync::mpsc::channel();
        *slot = Some(rx);
        txs.push(tx);
    }
    g.persist.loading_left.store(g.nshards, Ordering::SeqCst);
    g.persist
        .loading_start_secs
        .store(crate::util::now_ms() / 1000, Ordering::SeqCst);
    g.persist.set_gate(GATE_LOADING, true);
    txs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_params_parse() {
        assert_eq!(
            parse_save_params("3600 1 300 100").unwrap(),
            vec![(3600, 1), (300, 100)]
        );
        assert_eq!(parse_save_params("").unwrap(), vec![]);
        assert!(parse_save_params("3600").is_err());
        assert!(parse_save_params("a 1").is_err());
        assert!(parse_save_params("-1 1").is_err());
    }
}
