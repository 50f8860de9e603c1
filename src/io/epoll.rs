//! The epoll event loop of one shard: the fallback when io_uring is
//! unavailable, and `--io epoll`.

use std::sync::atomic::Ordering;

use crate::shard::Shard;

const KIND_LISTEN: u64 = 1;
const KIND_WAKE: u64 = 2;
const KIND_CONN: u64 = 3;

fn key(kind: u64, idx: u32, gen: u32) -> u64 {
    kind | ((gen as u64 & 0xFF_FFFF) << 8) | ((idx as u64) << 32)
}

fn ctl(ep: i32, op: i32, fd: i32, events: u32, data: u64) {
    let mut ev = libc::epoll_event { events, u64: data };
    // SAFETY: epoll_ctl with a live event struct on descriptors we own.
    unsafe {
        libc::epoll_ctl(ep, op, fd, &mut ev);
    }
}

fn set_nonblocking(fd: i32) {
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
    }
}

fn close_conn(sh: &mut Shard, ep: i32, idx: u32) {
    if let Some(c) = sh.conn(idx) {
        let fd = c.fd;
        ctl(ep, libc::EPOLL_CTL_DEL, fd, 0, 0);
        // SAFETY: closing a descriptor we own; it is removed from the table next.
        unsafe {
            libc::close(fd);
        }
        sh.remove_conn(idx);
    }
}

/// Sets the socket's interest: input unless reads are paused (too much
/// output waits), output while some could not be written.
fn set_events(sh: &mut Shard, ep: i32, idx: u32) {
    let Some(c) = sh.conn(idx) else { return };
    let mut ev = 0;
    if !c.read_paused {
        ev |= libc::EPOLLIN as u32;
    }
    if c.want_write {
        ev |= libc::EPOLLOUT as u32;
    }
    if ev != c.ep_events {
        c.ep_events = ev;
        let (fd, gen) = (c.fd, c.gen);
        ctl(ep, libc::EPOLL_CTL_MOD, fd, ev, key(KIND_CONN, idx, gen));
    }
}

/// Writes as much pending output as the socket takes.
fn flush(sh: &mut Shard, ep: i32, idx: u32) {
    let Some(c) = sh.conn(idx) else { return };
    c.in_dirty = false;
    if c.kill || sh.output_limit_hit(idx) {
        close_conn(sh, ep, idx);
        return;
    }
    let c = sh.conn(idx).expect("conn");
    loop {
        if c.send_off >= c.sending.len() {
            c.sending.clear();
            c.send_off = 0;
            if c.wbuf.is_empty() {
                break;
            }
            std::mem::swap(&mut c.sending, &mut c.wbuf);
        }
        let rest = &c.sending[c.send_off..];
        // SAFETY: writes from a live slice to our socket.
        let n = unsafe {
            libc::send(
                c.fd,
                rest.as_ptr() as *const libc::c_void,
                rest.len(),
                libc::MSG_NOSIGNAL,
            )
        };
        if n > 0 {
            c.send_off += n as usize;
            c.net_out += n as u64;
            continue;
        }
        let err = std::io::Error::last_os_error().raw_os_error();
        if n < 0 && (err == Some(libc::EAGAIN) || err == Some(libc::EINTR)) {
            c.want_write = true;
            sh.maybe_resume_input(idx);
            set_events(sh, ep, idx);
            return;
        }
        close_conn(sh, ep, idx);
        return;
    }
    c.want_write = false;
    sh.maybe_resume_input(idx);
    set_events(sh, ep, idx);
    let c = sh.conn(idx).expect("conn");
    if c.close_after_reply && c.pending.is_empty() {
        close_conn(sh, ep, idx);
    }
}

pub fn run(mut sh: Shard, listeners: Vec<i32>) -> std::io::Result<()> {
    // SAFETY: creating our own epoll instance; checked.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if ep < 0 {
        return Err(std::io::Error::last_os_error());
    }
    for (i, &l) in listeners.iter().enumerate() {
        set_nonblocking(l);
        ctl(
            ep,
            libc::EPOLL_CTL_ADD,
            l,
            libc::EPOLLIN as u32,
            key(KIND_LISTEN, i as u32, 0),
        );
    }
    let me = sh.id;
    let efd = sh.g.wakers[me].efd;
    ctl(
        ep,
        libc::EPOLL_CTL_ADD,
        efd,
        libc::EPOLLIN as u32,
        KIND_WAKE,
    );
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
    let mut rbuf = vec![0u8; 64 * 1024];
    let mut next_cron = std::time::Instant::now();
    let mut turn = sh.g.health[me].begin_turn();
    loop {
        sh.stats.loop_iterations += 1;
        if sh.stats.loop_iterations == 1 {
            crate::alloc::shard_ready(sh.n);
        }
        sh.drain_inbox();
        let sleep_ms = sh.turn_work();
        for idx in std::mem::take(&mut sh.dirty) {
            flush(&mut sh, ep, idx);
        }
        for idx in std::mem::take(&mut sh.to_close) {
            close_conn(&mut sh, ep, idx);
        }
        sh.mesh.wake_targets(&sh.g.wakers);
        if sh.g.shutdown.load(Ordering::Relaxed) {
            break;
        }
        let now = std::time::Instant::now();
        if now >= next_cron {
            sh.cron();
            next_cron = now + std::time::Duration::from_millis(1000 / sh.cfg.hz.max(1));
            continue;
        }
        let mut timeout = (next_cron - now).as_millis() as i32 + 1;
        if let Some(ms) = sleep_ms {
            timeout = timeout.min(ms as i32);
        }
        if sh.busy() {
            timeout = 0;
        } else {
            sh.g.wakers[me].sleeping.store(true, Ordering::SeqCst);
            std::sync::atomic::fence(Ordering::SeqCst);
            if sh.mesh.has_input() {
                timeout = 0;
            }
        }
        // The turn ends here: record a `busy` latency event if it ran
        // longer than latency-monitor-threshold.
        let took = sh.g.health[me].end_turn(turn);
        sh.metrics.add_event("busy", took);
        // SAFETY: epoll_wait fills at most events.len() entries of our buffer.
        let n = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), events.len() as i32, timeout) };
        sh.g.wakers[me].sleeping.store(false, Ordering::SeqCst);
        turn = sh.g.health[me].begin_turn();
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(e);
        }
        for ev in &events[..n as usize] {
            let data = ev.u64;
            let (kind, idx, gen) = (
                data & 0xFF,
                (data >> 32) as u32,
                ((data >> 8) & 0xFF_FFFF) as u32,
            );
            match kind {
                KIND_LISTEN => loop {
                    // SAFETY: accept4 on our nonblocking listener.
                    let fd = unsafe {
                        libc::accept4(
                            listeners[idx as usize],
                            std::ptr::null_mut(),
                            std::ptr::null_mut(),
                            libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                        )
                    };
                    if fd < 0 {
                        break;
                    }
                    if let Some((ci, g)) = crate::io::admit(&mut sh, fd) {
                        ctl(
                            ep,
                            libc::EPOLL_CTL_ADD,
                            fd,
                            libc::EPOLLIN as u32,
                            key(KIND_CONN, ci, g),
                        );
                    }
                },
                KIND_WAKE => sh.g.wakers[me].drain(),
                _ => {
                    let valid = matches!(sh.conn(idx), Some(c) if (c.gen & 0xFF_FFFF) == gen);
                    if !valid {
                        continue;
                    }
                    if ev.events & (libc::EPOLLOUT as u32) != 0 {
                        flush(&mut sh, ep, idx);
                    }
                    if ev.events & ((libc::EPOLLIN | libc::EPOLLHUP | libc::EPOLLERR) as u32) != 0 {
                        let Some(c) = sh.conn(idx) else { continue };
                        if c.read_paused {
                            // Too much output waits: read nothing more
                            // until it drained, unless the socket failed.
                            if ev.events & ((libc::EPOLLHUP | libc::EPOLLERR) as u32) != 0 {
                                c.kill = true;
                                sh.to_close.push(idx);
                            } else {
                                set_events(&mut sh, ep, idx);
                            }
                            continue;
                        }
                        let fd = c.fd;
                        // Read a bounded amount per event for fairness.
                        for _ in 0..16 {
                            // SAFETY: reads into our own buffer.
                            let r = unsafe {
                                libc::read(fd, rbuf.as_mut_ptr() as *mut libc::c_void, rbuf.len())
                            };
                            if r > 0 {
                                sh.on_input(idx, &rbuf[..r as usize]);
                                if matches!(sh.conn(idx), Some(c) if c.read_paused) {
                                    set_events(&mut sh, ep, idx);
                                    break;
                                }
                                if (r as usize) < rbuf.len() {
                                    break;
                                }
                                continue;
                            }
                            let err = std::io::Error::last_os_error().raw_os_error();
                            if r < 0 && (err == Some(libc::EAGAIN) || err == Some(libc::EINTR)) {
                                break;
                            }
                            // EOF or error.
                            if r == 0 && sh.peer_closed(idx) {
                                set_events(&mut sh, ep, idx);
                                break;
                            }
                            if let Some(c) = sh.conn(idx) {
                                c.kill = true;
                            }
                            sh.to_close.push(idx);
                            break;
                        }
                    }
                }
            }
        }
    }
    for c in sh.conns.iter().flatten() {
        // SAFETY: closing descriptors we own at shutdown.
        unsafe {
            libc::close(c.fd);
        }
    }
    for &l in &listeners {
        // SAFETY: closing our own listening socket.
        unsafe {
            libc::close(l);
        }
    }
    // SAFETY: closing our epoll descriptor.
    unsafe {
        libc::close(ep);
    }
    Ok(())
}
