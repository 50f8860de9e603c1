//! Event-loop backends. Both drive the same [`crate::shard::Shard`]: they
//! accept connections, feed received bytes to `Shard::on_input`, flush
//! `Conn::wbuf`, run `Shard::cron` every 1000/hz ms and sleep when idle.
//! - `uring`: io_uring with multishot accept, multishot recv from a
//!   provided-buffer ring, sends batched per loop turn, one
//!   submit-and-wait per turn.
//! - `epoll`: the portable fallback for kernels or sandboxes without
//!   io_uring.

pub mod epoll;
pub mod uring;

/// Sets TCP_NODELAY (and keepalive) on an accepted socket.
pub fn tune_socket(fd: i32, keepalive_s: i64) {
    let one: libc::c_int = 1;
    let sz = std::mem::size_of::<libc::c_int>() as u32;
    // SAFETY: setsockopt with pointers to live locals on a socket we own.
    unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            &one as *const _ as *const libc::c_void,
            sz,
        );
        if keepalive_s > 0 {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_KEEPALIVE,
                &one as *const _ as *const libc::c_void,
                sz,
            );
            let idle = keepalive_s as libc::c_int;
            libc::setsockopt(
                fd,
                libc::IPPROTO_TCP,
                libc::TCP_KEEPIDLE,
                &idle as *const _ as *const libc::c_void,
                sz,
            );
        }
    }
}

/// Accept-time admission: registers the connection or refuses it when
/// maxclients is reached. Returns the slot and generation when accepted.
pub fn admit(sh: &mut crate::shard::Shard, fd: i32) -> Option<(u32, u32)> {
    use std::sync::atomic::Ordering;
    let keepalive =
        sh.g.config
            .read()
            .map(|c| c.get_i64("tcp-keepalive"))
            .unwrap_or(0);
    tune_socket(fd, keepalive);
    if sh.g.connected_clients.load(Ordering::Relaxed) >= sh.cfg.maxclients {
        let msg = b"-ERR max number of clients reached\r\n";
        // SAFETY: best-effort write of a static buffer, then close our fd.
        unsafe {
            libc::write(fd, msg.as_ptr() as *const libc::c_void, msg.len());
            libc::close(fd);
        }
        sh.stats.rejected_connections += 1;
        return None;
    }
    let addr = crate::server::fd_addr(fd, true);
    let laddr = crate::server::fd_addr(fd, false);
    Some(sh.add_conn(fd, addr, laddr))
}
