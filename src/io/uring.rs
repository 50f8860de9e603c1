//! The io_uring event loop of one shard.

use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::{cqueue, opcode, squeue, types, IoUring};

use crate::shard::Shard;

const TAG_ACCEPT: u64 = 1;
const TAG_RECV: u64 = 2;
const TAG_SEND: u64 = 3;
const TAG_WAKE: u64 = 4;
const TAG_TIMER: u64 = 5;
const TAG_CANCEL: u64 = 6;

const BGID: u16 = 0;
const BUF_ENTRIES: u16 = 256;
const BUF_SIZE: usize = 16 * 1024;

#[inline]
fn ud(tag: u64, idx: u32, gen: u32) -> u64 {
    tag | ((gen as u64 & 0xFF_FFFF) << 8) | ((idx as u64) << 32)
}
#[inline]
fn ud_parts(u: u64) -> (u64, u32, u32) {
    (u & 0xFF, (u >> 32) as u32, ((u >> 8) & 0xFF_FFFF) as u32)
}

/// A provided-buffer ring: the kernel picks a buffer for each received
/// chunk; we hand it back after the shard has consumed the bytes.
struct BufRing {
    ring: *mut types::BufRingEntry,
    ring_len: usize,
    bufs: Vec<u8>,
    tail: u16,
}

impl BufRing {
    fn new(ring: &IoUring) -> std::io::Result<BufRing> {
        let ring_len = BUF_ENTRIES as usize * std::mem::size_of::<types::BufRingEntry>();
        // SAFETY: anonymous private mapping, page-aligned as the kernel
        // requires for a buffer ring; checked for MAP_FAILED.
        let mem = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                ring_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if mem == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let mut br = BufRing {
            ring: mem as *mut types::BufRingEntry,
            ring_len,
            bufs: vec![0u8; BUF_ENTRIES as usize * BUF_SIZE],
            tail: 0,
        };
        crate::shard::evict::FIXED_IO.fetch_add(
            (BUF_ENTRIES as usize * BUF_SIZE) as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        // SAFETY: the ring memory stays mapped until Drop, after the ring
        // (and with it the registration) is gone; see `run`.
        unsafe {
            ring.submitter()
                .register_buf_ring_with_flags(mem as u64, BUF_ENTRIES, BGID, 0)?;
        }
        for bid in 0..BUF_ENTRIES {
            br.push(bid);
        }
        br.publish();
        Ok(br)
    }

    fn push(&mut self, bid: u16) {
        let idx = (self.tail & (BUF_ENTRIES - 1)) as usize;
        // SAFETY: idx < BUF_ENTRIES, inside the mapping; the buffer address
        // points into `bufs`, which lives as long as the registration.
        unsafe {
            let e = &mut *self.ring.add(idx);
            e.set_addr(self.bufs.as_ptr().add(bid as usize * BUF_SIZE) as u64);
            e.set_len(BUF_SIZE as u32);
            e.set_bid(bid);
        }
        self.tail = self.tail.wrapping_add(1);
    }

    fn publish(&self) {
        // SAFETY: the tail field lives in the first entry of the mapping and
        // is read by the kernel; the kernel ABI defines it as a u16 written
        // with release semantics.
        unsafe {
            let tail = types::BufRingEntry::tail(self.ring) as *const AtomicU16;
            (*tail).store(self.tail, Ordering::Release);
        }
    }

    fn buf(&self, bid: u16, len: usize) -> &[u8] {
        let start = bid as usize * BUF_SIZE;
        &self.bufs[start..start + len.min(BUF_SIZE)]
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        crate::shard::evict::FIXED_IO
            .fetch_sub(self.bufs.len() as u64, std::sync::atomic::Ordering::Relaxed);
        // SAFETY: unmapping exactly the region mapped in `new`.
        unsafe {
            libc::munmap(self.ring as *mut libc::c_void, self.ring_len);
        }
    }
}

struct Loop {
    ring: IoUring,
    bufs: BufRing,
    wake_buf: Box<[u8; 8]>,
    timer: Box<types::Timespec>,
    listeners: Vec<i32>,
    /// Connections whose multishot recv must be re-armed.
    rearm: Vec<u32>,
}

impl Loop {
    fn push(&mut self, sh: &mut Shard, e: squeue::Entry) {
        // SAFETY: every entry pushed references memory that outlives the
        // operation: connection buffers are kept until `inflight_ops` drops
        // to zero, and the loop's own buffers live as long as the ring.
        unsafe {
            while self.ring.submission().push(&e).is_err() {
                self.ring.submit().ok();
                sh.stats.submissions += 1;
            }
        }
    }

    fn arm_recv(&mut self, sh: &mut Shard, idx: u32) {
        let Some(c) = sh.conn(idx) else { return };
        // A read-paused client is armed again when its output drained.
        if c.recv_armed || c.closed || c.read_paused {
            return;
        }
        c.recv_armed = true;
        c.inflight_ops += 1;
        let (fd, gen) = (c.fd, c.gen);
        let e = opcode::RecvMulti::new(types::Fd(fd), BGID)
            .build()
            .user_data(ud(TAG_RECV, idx, gen));
        self.push(sh, e);
    }

    fn arm_accept(&mut self, sh: &mut Shard, li: usize) {
        let e = opcode::AcceptMulti::new(types::Fd(self.listeners[li]))
            .build()
            .user_data(ud(TAG_ACCEPT, li as u32, 0));
        self.push(sh, e);
    }

    fn arm_wake(&mut self, sh: &mut Shard) {
        let efd = sh.g.wakers[sh.id].efd;
        let e = opcode::Read::new(types::Fd(efd), self.wake_buf.as_mut_ptr(), 8)
            .build()
            .user_data(TAG_WAKE);
        self.push(sh, e);
    }

    fn arm_timer(&mut self, sh: &mut Shard) {
        let ms = 1000 / sh.cfg.hz.max(1);
        *self.timer = types::Timespec::new().nsec((ms as u32) * 1_000_000);
        let e = opcode::Timeout::new(&*self.timer as *const _)
            .build()
            .user_data(TAG_TIMER);
        self.push(sh, e);
    }

    /// Starts sending a connection's pending output.
    fn flush(&mut self, sh: &mut Shard, idx: u32) {
        let Some(c) = sh.conn(idx) else { return };
        c.in_dirty = false;
        if c.closed {
            return;
        }
        if c.kill || sh.output_limit_hit(idx) {
            self.close(sh, idx);
            return;
        }
        if sh.maybe_resume_input(idx) {
            self.rearm.push(idx);
        }
        let Some(c) = sh.conn(idx) else { return };
        if c.send_inflight {
            return;
        }
        if c.wbuf.is_empty() {
            if c.close_after_reply && c.pending.is_empty() {
                self.close(sh, idx);
            }
            return;
        }
        std::mem::swap(&mut c.sending, &mut c.wbuf);
        c.send_off = 0;
        c.send_inflight = true;
        c.inflight_ops += 1;
        let (fd, gen, ptr, len) = (c.fd, c.gen, c.sending.as_ptr(), c.sending.len());
        let e = opcode::Send::new(types::Fd(fd), ptr, len as u32)
            .flags(libc::MSG_NOSIGNAL)
            .build()
            .user_data(ud(TAG_SEND, idx, gen));
        self.push(sh, e);
    }

    fn close(&mut self, sh: &mut Shard, idx: u32) {
        let Some(c) = sh.conn(idx) else { return };
        if !c.closed {
            c.closed = true;
            let (fd, gen, armed) = (c.fd, c.gen, c.recv_armed);
            // SAFETY: shutting down our own socket wakes pending operations.
            unsafe {
                libc::shutdown(fd, libc::SHUT_RDWR);
            }
            if armed {
                let e = opcode::AsyncCancel::new(ud(TAG_RECV, idx, gen))
                    .build()
                    .user_data(TAG_CANCEL);
                self.push(sh, e);
            }
        }
        self.maybe_free(sh, idx);
    }

    fn maybe_free(&mut self, sh: &mut Shard, idx: u32) {
        let Some(c) = sh.conn(idx) else { return };
        if c.closed && c.inflight_ops == 0 {
            // SAFETY: no operation references the fd or buffers any more.
            unsafe {
                libc::close(c.fd);
            }
            sh.remove_conn(idx);
        }
    }

    fn on_cqe(&mut self, sh: &mut Shard, user_data: u64, res: i32, flags: u32) {
        let (tag, idx, gen) = ud_parts(user_data);
        match tag {
            TAG_ACCEPT => {
                if res >= 0 {
                    if let Some((ci, _)) = crate::io::admit(sh, res) {
                        self.arm_recv(sh, ci);
                    }
                } else if res != -libc::EINTR && res != -libc::ECONNABORTED {
                    crate::log::verbose(&format!(
                        "accept: {}",
                        std::io::Error::from_raw_os_error(-res)
                    ));
                }
                if !cqueue::more(flags) && !sh.g.shutdown.load(Ordering::Relaxed) {
                    self.arm_accept(sh, idx as usize);
                }
            }
            TAG_RECV => {
                let bid = cqueue::buffer_select(flags);
                let more = cqueue::more(flags);
                let valid = matches!(sh.conn(idx), Some(c) if (c.gen & 0xFF_FFFF) == gen);
                if valid {
                    if res > 0 {
                        if let Some(b) = bid {
                            let data = self.bufs.buf(b, res as usize);
                            sh.on_input(idx, data);
                        }
                    }
                    let c = sh.conn(idx).expect("valid conn");
                    if !more {
                        c.recv_armed = false;
                        c.inflight_ops -= 1;
                    }
                    // Cancelled by a read pause (not by close): not an error.
                    let paused = res == -libc::ECANCELED && !c.closed;
                    let (read_paused, cgen) = (c.read_paused, c.gen);
                    if res == 0 && sh.peer_closed(idx) {
                        // Its waiting requests run first (not read again).
                    } else if res == 0 || (res < 0 && res != -libc::ENOBUFS && !paused) {
                        self.close(sh, idx);
                    } else if !more {
                        self.rearm.push(idx);
                    } else if read_paused {
                        // Too much output waits for this client: stop
                        // reading it (TCP pushes back) until it drained.
                        let e = opcode::AsyncCancel::new(ud(TAG_RECV, idx, cgen))
                            .build()
                            .user_data(TAG_CANCEL);
                        self.push(sh, e);
                    }
                    if !more {
                        self.maybe_free(sh, idx);
                    }
                }
                if let Some(b) = bid {
                    self.bufs.push(b);
                    self.bufs.publish();
                }
            }
            TAG_SEND => {
                let Some(c) = sh.conn(idx) else { return };
                if (c.gen & 0xFF_FFFF) != gen {
                    return;
                }
                c.inflight_ops -= 1;
                c.send_inflight = false;
                if res < 0 || c.closed {
                    c.sending.clear();
                    self.close(sh, idx);
                    return;
                }
                c.net_out += res as u64;
                sh.stats.net_out += res as u64;
                let c = sh.conn(idx).expect("conn");
                c.send_off += res as usize;
                if c.send_off < c.sending.len() {
                    c.send_inflight = true;
                    c.inflight_ops += 1;
                    let (fd, ptr, len) = (
                        c.fd,
                        // SAFETY: send_off < len, so the pointer stays in bounds.
                        unsafe { c.sending.as_ptr().add(c.send_off) },
                        c.sending.len() - c.send_off,
                    );
                    let e = opcode::Send::new(types::Fd(fd), ptr, len as u32)
                        .flags(libc::MSG_NOSIGNAL)
                        .build()
                        .user_data(ud(TAG_SEND, idx, c.gen));
                    self.push(sh, e);
                } else {
                    c.sending.clear();
                    if c.sending.capacity() > 1 << 20 {
                        c.sending = Vec::new();
                    }
                    self.flush(sh, idx);
                }
            }
            TAG_WAKE if !sh.g.shutdown.load(Ordering::Relaxed) => self.arm_wake(sh),
            TAG_TIMER => {
                sh.cron();
                for i in std::mem::take(&mut sh.to_close) {
                    self.close(sh, i);
                }
                self.arm_timer(sh);
            }
            _ => {}
        }
    }
}

pub fn run(mut sh: Shard, listeners: Vec<i32>) -> std::io::Result<()> {
    // Single issuer + deferred task running: completions are processed
    // when this thread enters the ring, never by interrupting it.
    let ring = IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .build(4096)
        .or_else(|_| {
            IoUring::builder()
                .setup_single_issuer()
                .setup_coop_taskrun()
                .build(4096)
        })
        .or_else(|_| IoUring::new(4096))?;
    let bufs = BufRing::new(&ring)?;
    let mut lp = Loop {
        ring,
        bufs,
        wake_buf: Box::new([0; 8]),
        timer: Box::new(types::Timespec::new()),
        listeners,
        rearm: Vec::new(),
    };
    for li in 0..lp.listeners.len() {
        lp.arm_accept(&mut sh, li);
    }
    lp.arm_wake(&mut sh);
    lp.arm_timer(&mut sh);
    let mut cqes: Vec<(u64, i32, u32)> = Vec::with_capacity(1024);
    let me = sh.id;
    let mut turn = sh.g.health[me].begin_turn();
    loop {
        sh.stats.loop_iterations += 1;
        if sh.stats.loop_iterations == 1 {
            crate::alloc::shard_ready(sh.n);
        }
        sh.drain_inbox();
        let sleep_ms = sh.turn_work();
        for idx in std::mem::take(&mut lp.rearm) {
            lp.arm_recv(&mut sh, idx);
        }
        let dirty = std::mem::take(&mut sh.dirty);
        for idx in dirty {
            lp.flush(&mut sh, idx);
        }
        for i in std::mem::take(&mut sh.to_close) {
            lp.close(&mut sh, i);
        }
        sh.mesh.wake_targets(&sh.g.wakers);
        if sh.g.shutdown.load(Ordering::Relaxed) {
            break;
        }
        let mut want = 1;
        if sh.busy() {
            want = 0;
        } else {
            sh.g.wakers[me].sleeping.store(true, Ordering::SeqCst);
            std::sync::atomic::fence(Ordering::SeqCst);
            if sh.mesh.has_input() {
                want = 0;
            }
        }
        // The turn ends here: record a `busy` latency event if it ran
        // longer than latency-monitor-threshold.
        let took = sh.g.health[me].end_turn(turn);
        sh.metrics.add_event("busy", took);
        let r = match sleep_ms {
            // Blocked clients: wake up in time for the nearest deadline.
            Some(ms) if want == 1 => {
                let ts = types::Timespec::new()
                    .sec(ms / 1000)
                    .nsec(((ms % 1000) * 1_000_000) as u32);
                let args = types::SubmitArgs::new().timespec(&ts);
                match lp.ring.submitter().submit_with_args(1, &args) {
                    Err(e) if e.raw_os_error() == Some(libc::ETIME) => Ok(0),
                    r => r,
                }
            }
            _ => lp.ring.submit_and_wait(want),
        };
        sh.g.wakers[me].sleeping.store(false, Ordering::SeqCst);
        turn = sh.g.health[me].begin_turn();
        sh.stats.submissions += 1;
        if let Err(e) = r {
            if e.raw_os_error() != Some(libc::EINTR) && e.raw_os_error() != Some(libc::EBUSY) {
                return Err(e);
            }
        }
        cqes.clear();
        cqes.extend(
            lp.ring
                .completion()
                .map(|c| (c.user_data(), c.result(), c.flags())),
        );
        sh.stats.completions += cqes.len() as u64;
        for &(u, res, flags) in &cqes {
            lp.on_cqe(&mut sh, u, res, flags);
        }
    }
    // Shutdown: close every connection and listener.
    for i in 0..sh.conns.len() {
        if let Some(c) = sh.conns[i].as_deref() {
            // SAFETY: closing descriptors we own at shutdown.
            unsafe {
                libc::shutdown(c.fd, libc::SHUT_RDWR);
            }
        }
    }
    for &l in &lp.listeners {
        // SAFETY: closing our own listening socket.
        unsafe {
            libc::close(l);
        }
    }
    Ok(())
}
