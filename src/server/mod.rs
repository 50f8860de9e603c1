//! Start-up and shutdown: listening sockets, shard threads pinned to their
//! CPUs, signal handling, and the state every shard can read (`Global`).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crate::config::{Config, IoKind};
use crate::shard::keyspace::Keyspace;
use crate::shard::mesh::{self, Waker};
use crate::shard::{Shard, ShardCfg};

pub mod health;

/// State shared by all shards. Nothing here guards keyspace data; it holds
/// configuration, counters and the cross-shard transaction sequence.
pub struct Global {
    pub nshards: usize,
    pub config: RwLock<Config>,
    pub config_epoch: AtomicU64,
    /// The sequence numbers of multi-shard transactions (shard/locks.rs).
    pub tx_seq: AtomicU64,
    pub next_client_id: AtomicU64,
    pub connected_clients: AtomicUsize,
    pub wakers: Vec<Waker>,
    pub shutdown: AtomicBool,
    /// CLIENT PAUSE deadline (Unix ms) and whether it pauses only writes.
    pub pause_until: AtomicU64,
    pub pause_writes_only: AtomicBool,
    pub start_ms: u64,
    pub run_id: String,
    pub io: IoKind,
    pub cpus: Vec<Option<usize>>,
    /// CPUs the snapshot writer thread runs on: `bgsave_cpulist`, or every
    /// CPU the process was allowed at start (not just its shard's CPU).
    pub bgsave_cpus: Vec<usize>,
    pub port: u16,
    pub config_file: Option<String>,
    /// Stats reset time for INFO/CONFIG RESETSTAT bookkeeping.
    pub stat_reset: AtomicU64,
    /// Number of MONITOR clients (dispatch feeds them while non-zero).
    pub monitors: AtomicUsize,
    /// Snapshots, loading, save points (src/persist.rs).
    pub persist: crate::persist::State,
    /// Per shard: current loop turn and command (src/server/health.rs).
    pub health: Vec<health::ShardHealth>,
    /// Per shard: keys its maxmemory policy may evict (shard/evict.rs).
    pub evictable: Vec<AtomicU64>,
    /// Per shard: another shard asked it to evict (not yet done).
    pub evict_asked: Vec<AtomicBool>,
    /// Active expiry on (DEBUG SET-ACTIVE-EXPIRE turns it off).
    pub active_expire: AtomicBool,
}

impl Global {
    pub fn shard_cfg(&self) -> ShardCfg {
        let c = self.config.read().unwrap_or_else(|e| e.into_inner());
        // The latency/slowlog settings dispatch reads on every command.
        crate::metrics::load_config(&c);
        let pass = c.get("requirepass");
        ShardCfg {
            requirepass: (!pass.is_empty()).then(|| pass.as_bytes().to_vec()),
            maxclients: c.get_i64("maxclients") as usize,
            timeout_s: c.get_i64("timeout") as u64,
            proto_max_bulk_len: c.get_i64("proto-max-bulk-len"),
            client_query_buffer_limit: c.get_i64("client-query-buffer-limit") as usize,
            obuf_normal: crate::config::obuf_limit(c.get("client-output-buffer-limit"), "normal"),
            obuf_pubsub: crate::config::obuf_limit(c.get("client-output-buffer-limit"), "pubsub"),
            busy_reply_ms: c.get("busy-reply-threshold").parse().unwrap_or(5000),
            databases: c.get_i64("databases") as usize,
            hz: c.get_i64("hz").max(1) as u64,
            mem: crate::shard::evict::MemCfg::from_config(&c),
            track_max: match c.get_i64("tracking-table-max-keys") as usize {
                0 => 0,
                n => n.div_ceil(self.nshards.max(1)),
            },
            notify: crate::notify::effective(
                crate::notify::parse(c.get("notify-keyspace-events")).unwrap_or(0),
            ),
            lazy: crate::shard::keyspace::LazyCfg {
                eviction: c.get_bool("lazyfree-lazy-eviction"),
                expire: c.get_bool("lazyfree-lazy-expire"),
                server_del: c.get_bool("lazyfree-lazy-server-del"),
                user_del: c.get_bool("lazyfree-lazy-user-del"),
                user_flush: c.get_bool("lazyfree-lazy-user-flush"),
            },
            enc: crate::shard::keyspace::EncCfg {
                hash_max_listpack_entries: c.get_i64("hash-max-listpack-entries") as usize,
                hash_max_listpack_value: c.get_i64("hash-max-listpack-value") as usize,
                set_max_intset_entries: c.get_i64("set-max-intset-entries") as usize,
                zset_max_listpack_entries: c.get_i64("zset-max-listpack-entries") as usize,
                zset_max_listpack_value: c.get_i64("zset-max-listpack-value") as usize,
                list_max_listpack_size: c.get_i64("list-max-listpack-size"),
                proto_max_bulk_len: c.get_i64("proto-max-bulk-len") as usize,
                hll_sparse_max_bytes: c.get_i64("hll-sparse-max-bytes") as usize,
                stream_node_max_bytes: c.get_i64("stream-node-max-bytes") as usize,
                stream_node_max_entries: c.get_i64("stream-node-max-entries") as usize,
            },
        }
    }

    /// Is a command (write or not) paused by CLIENT PAUSE right now?
    #[inline]
    pub fn is_paused(&self, is_write: bool) -> bool {
        let until = self.pause_until.load(Ordering::Relaxed);
        if until == 0 {
            return false;
        }
        if crate::util::now_ms() >= until {
            return false;
        }
        is_write || !self.pause_writes_only.load(Ordering::Relaxed)
    }

    pub fn bump_config(&self) {
        self.config_epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// Asks every shard to stop.
    pub fn request_shutdown(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
        for w in &self.wakers {
            w.force_wake();
        }
    }
}

/// CPUs this process may run on (honours taskset and cgroup cpusets).
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity fills it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return (0..std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1))
                .collect();
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect()
    }
}

/// Pins the calling thread to one CPU.
pub fn pin_to(cpu: usize) -> std::io::Result<()> {
    // SAFETY: cpu_set_t is plain data; we pass its exact size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Lets the calling thread run on any of `cpus` (an empty list changes
/// nothing).
pub fn run_on(cpus: &[usize]) -> std::io::Result<()> {
    if cpus.is_empty() {
        return Ok(());
    }
    // SAFETY: cpu_set_t is plain data; we pass its exact size and only set
    // CPUs below CPU_SETSIZE.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &c in cpus.iter().filter(|&&c| c < libc::CPU_SETSIZE as usize) {
            libc::CPU_SET(c, &mut set);
        }
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Why io_uring cannot be used here, if it cannot.
pub fn uring_unavailable() -> Option<String> {
    match io_uring::IoUring::new(8) {
        Ok(_) => None,
        Err(e) => {
            let disabled = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| s != "0");
            let cause = match (e.raw_os_error(), disabled) {
                (_, Some(v)) => format!("kernel.io_uring_disabled={v}"),
                (Some(libc::ENOSYS), _) => "the kernel has no io_uring (ENOSYS)".into(),
                (Some(libc::EPERM), _) => "io_uring_setup is forbidden (EPERM; a seccomp profile such as Docker's default?)".into(),
                _ => format!("io_uring_setup failed: {e}"),
            };
            Some(cause)
        }
    }
}

/// The host part of a `bind` word: `*` is every IPv4 address, `::*`
/// every IPv6 address; a leading `-` (optional address) is dropped.
pub fn bind_host(addr: &str) -> &str {
    match addr.trim_start_matches('-') {
        "*" => "0.0.0.0",
        "::*" => "::",
        h => h,
    }
}

/// Creates one shard's listening socket on `addr`:`port`; every shard has
/// one, in a SO_REUSEPORT group that spreads connections over them.
///
/// `first` (shard 0's socket) is bound *without* SO_REUSEPORT, so the bind
/// fails with EADDRINUSE when anything (another ringkv included) already
/// listens there, as redis-server does; only after that exclusive bind is
/// SO_REUSEPORT switched on, which Linux checks at the next bind, so the
/// other shards' sockets can join. No window is left in which a second
/// ringkv could join the group: its own first bind is exclusive too. A
/// program of the same user that sets SO_REUSEPORT before its first bind
/// (an older ringkv included) can still join, as with any SO_REUSEPORT
/// group; Linux offers no way to close a group to the same user.
pub fn listen_socket(addr: &str, port: u16, backlog: i32, first: bool) -> std::io::Result<i32> {
    use std::net::ToSocketAddrs;
    let host = bind_host(addr);
    let sa = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let sa = sa
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::other("no address"))?;
    let s = socket2_like(&sa, first)?;
    // SAFETY: standard socket calls on a descriptor we own; results checked.
    unsafe {
        if libc::listen(s, backlog) != 0 {
            let e = std::io::Error::last_os_error();
            libc::close(s);
            return Err(e);
        }
    }
    Ok(s)
}

fn socket2_like(sa: &std::net::SocketAddr, first: bool) -> std::io::Result<i32> {
    let (domain, storage, len) = sockaddr(sa);
    // SAFETY: socket/setsockopt/bind with pointers to live locals; results checked.
    unsafe {
        let s = libc::socket(domain, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if s < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let one: libc::c_int = 1;
        let sz = std::mem::size_of::<libc::c_int>() as u32;
        let reuseport = || {
            if libc::setsockopt(
                s,
                libc::SOL_SOCKET,
                libc::SO_REUSEPORT,
                &one as *const _ as *const libc::c_void,
                sz,
            ) != 0
            {
                let e = std::io::Error::last_os_error();
                libc::close(s);
                return Err(e);
            }
            Ok(())
        };
        libc::setsockopt(
            s,
            libc::SOL_SOCKET,
            libc::SO_REUSEADDR,
            &one as *const _ as *const libc::c_void,
            sz,
        );
        if !first {
            reuseport()?;
        }
        if domain == libc::AF_INET6 {
            libc::setsockopt(
                s,
                libc::IPPROTO_IPV6,
                libc::IPV6_V6ONLY,
                &one as *const _ as *const libc::c_void,
                sz,
            );
        }
        if libc::bind(s, &storage as *const _ as *const libc::sockaddr, len) != 0 {
            let e = std::io::Error::last_os_error();
            libc::close(s);
            return Err(e);
        }
        if first {
            reuseport()?;
        }
        Ok(s)
    }
}

pub fn sockaddr(sa: &std::net::SocketAddr) -> (i32, libc::sockaddr_storage, u32) {
    // SAFETY: sockaddr_storage is plain data, large enough for either family.
    let mut st: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    match sa {
        std::net::SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as u16,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_in fits in sockaddr_storage.
            unsafe { std::ptr::write(&mut st as *mut _ as *mut libc::sockaddr_in, sin) };
            (
                libc::AF_INET,
                st,
                std::mem::size_of::<libc::sockaddr_in>() as u32,
            )
        }
        std::net::SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as u16,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_in6 fits in sockaddr_storage.
            unsafe { std::ptr::write(&mut st as *mut _ as *mut libc::sockaddr_in6, sin6) };
            (
                libc::AF_INET6,
                st,
                std::mem::size_of::<libc::sockaddr_in6>() as u32,
            )
        }
    }
}

/// Formats a peer or local address of a socket as "ip:port".
pub fn fd_addr(fd: i32, peer: bool) -> String {
    // SAFETY: get{peer,sock}name write at most `len` bytes into our storage.
    unsafe {
        let mut st: libc::sockaddr_storage = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::sockaddr_storage>() as u32;
        let r = if peer {
            libc::getpeername(fd, &mut st as *mut _ as *mut libc::sockaddr, &mut len)
        } else {
            libc::getsockname(fd, &mut st as *mut _ as *mut libc::sockaddr, &mut len)
        };
        if r != 0 {
            return "?:0".into();
        }
        match st.ss_family as i32 {
            libc::AF_INET => {
                let a = &*(&st as *const _ as *const libc::sockaddr_in);
                let ip = std::net::Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
                format!("{}:{}", ip, u16::from_be(a.sin_port))
            }
            libc::AF_INET6 => {
                let a = &*(&st as *const _ as *const libc::sockaddr_in6);
                let ip = std::net::Ipv6Addr::from(a.sin6_addr.s6_addr);
                format!("{}:{}", ip, u16::from_be(a.sin6_port))
            }
            _ => "?:0".into(),
        }
    }
}

/// Turns transparent huge pages off for this process (`disable-thp yes`).
/// Redis does so when the system's THP mode is `always`; ringkv does it
/// in `madvise` mode too, because mimalloc madvises its arenas for huge
/// pages, and a first touch of one zeroes 2 MiB at once (milliseconds on
/// a busy or virtualized host), stalling whatever command or snapshot
/// step touched it. Failing (an old kernel) is harmless.
fn disable_thp() {
    // SAFETY: PR_SET_THP_DISABLE only sets a flag on this process's mm;
    // the unused arguments are zero as the man page asks.
    let r = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    if r != 0 {
        crate::log::warn(&format!(
            "could not disable transparent huge pages: {}",
            std::io::Error::last_os_error()
        ));
    }
}

/// Starts the server and blocks until it shuts down. Returns the exit code.
pub fn run(cfg: Config) -> i32 {
    crate::clock::init();
    if cfg.get("disable-thp") == "yes" {
        disable_thp();
    }
    let allowed = allowed_cpus();
    let cpu_list = cfg.cpus.clone().unwrap_or_else(|| allowed.clone());
    let nshards = cfg.shards.unwrap_or(cpu_list.len()).max(1);
    let port = cfg.get_i64("port") as u16;
    let binds: Vec<String> = cfg
        .get("bind")
        .split_whitespace()
        .map(String::from)
        .collect();
    let backlog = cfg.get_i64("tcp-backlog") as i32;

    let io = match cfg.io {
        IoKind::Uring => match uring_unavailable() {
            None => IoKind::Uring,
            Some(cause) => {
                crate::log::warn(&format!(
                    "io_uring is unavailable ({cause}); using the epoll backend instead (pass --io epoll to choose it explicitly)"
                ));
                IoKind::Epoll
            }
        },
        IoKind::Epoll => IoKind::Epoll,
    };

    // One listening socket per shard per address (SO_REUSEPORT spreads
    // connections over the shards).
    let mut listeners: Vec<Vec<i32>> = vec![Vec::new(); nshards];
    for b in &binds {
        let optional = b.starts_with('-');
        for (s, l) in listeners.iter_mut().enumerate() {
            match listen_socket(b, port, backlog, s == 0) {
                Ok(fd) => l.push(fd),
                // An optional (`-`) address is skipped when it does not
                // exist here or its family is unsupported, not when it is
                // in use (as redis-server).
                Err(e)
                    if (optional
                        && matches!(
                            e.raw_os_error(),
                            Some(
                                libc::EADDRNOTAVAIL
                                    | libc::EAFNOSUPPORT
                                    | libc::EPROTONOSUPPORT
                                    | libc::ENOPROTOOPT
                                    | libc::ESOCKTNOSUPPORT
                                    | libc::EPFNOSUPPORT
                            )
                        ))
                        || (b.contains(':')
                            && binds.len() > 1
                            && s == 0
                            && e.raw_os_error() == Some(libc::EADDRNOTAVAIL)) =>
                {
                    crate::log::verbose(&format!("skipping optional bind address {b}: {e}"));
                    break;
                }
                Err(e) => {
                    crate::log::warn(&format!(
                        "Could not create server TCP listening socket {}:{}: {}",
                        b.trim_start_matches('-'),
                        port,
                        e
                    ));
                    return 1;
                }
            }
        }
    }
    if listeners[0].is_empty() {
        crate::log::warn("Failed listening on any address");
        return 1;
    }

    let cpus: Vec<Option<usize>> = (0..nshards)
        .map(|i| cfg.pin.then(|| cpu_list[i % cpu_list.len()]))
        .collect();
    let wakers = match (0..nshards)
        .map(|_| Waker::new())
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(w) => w,
        Err(e) => {
            crate::log::warn(&format!("eventfd: {e}"));
            return 1;
        }
    };
    let run_id: String = {
        let mut x = crate::util::now_us() ^ (std::process::id() as u64) << 32;
        (0..40)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                char::from_digit((x % 16) as u32, 16).unwrap()
            })
            .collect()
    };
    let config_file = cfg.file.clone();
    let bgsave_cpus = match cfg.get("bgsave_cpulist") {
        "" => allowed.clone(),
        list => match crate::config::parse_cpu_list(list) {
            Ok(l) if l.iter().all(|c| allowed.contains(c)) => l,
            Ok(l) => {
                crate::log::warn(&format!(
                    "bgsave_cpulist {l:?}: not all of these CPUs are available to this process (allowed: {allowed:?})"
                ));
                return 1;
            }
            Err(e) => {
                crate::log::warn(&format!("bgsave_cpulist: {e}"));
                return 1;
            }
        },
    };
    let g = Arc::new(Global {
        nshards,
        config: RwLock::new(cfg),
        config_epoch: AtomicU64::new(0),
        active_expire: AtomicBool::new(true),
        tx_seq: AtomicU64::new(0),
        next_client_id: AtomicU64::new(1),
        connected_clients: AtomicUsize::new(0),
        wakers,
        shutdown: AtomicBool::new(false),
        pause_until: AtomicU64::new(0),
        pause_writes_only: AtomicBool::new(false),
        start_ms: crate::util::now_ms(),
        run_id,
        io,
        cpus: cpus.clone(),
        bgsave_cpus,
        port,
        config_file,
        stat_reset: AtomicU64::new(0),
        monitors: AtomicUsize::new(0),
        persist: crate::persist::State::new(nshards),
        health: (0..nshards).map(|_| Default::default()).collect(),
        evictable: (0..nshards).map(|_| AtomicU64::new(0)).collect(),
        evict_asked: (0..nshards).map(|_| AtomicBool::new(false)).collect(),
    });

    // dump.rdb is loaded while the shards already answer (-LOADING).
    let snap_cfg = crate::persist::SnapCfg::from_global(&g);
    let load_path = snap_cfg.path();
    let load_senders = load_path
        .is_file()
        .then(|| crate::persist::prepare_loading(&g));

    // Signals: handled by the main thread only.
    // SAFETY: sigset manipulation on a local set; pthread_sigmask affects
    // this thread and is inherited by the shard threads spawned below.
    let sigset = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        // A file size limit (ulimit -f) makes snapshot writes fail with
        // EFBIG, reported like a full disk, instead of killing the server.
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        set
    };

    crate::log::notice(&format!(
        "ringkv {} starting: pid={}, port={}, shards={}, io={}, cpus={}",
        env!("CARGO_PKG_VERSION"),
        std::process::id(),
        port,
        nshards,
        if io == IoKind::Uring {
            "io_uring"
        } else {
            "epoll"
        },
        cpus.iter()
            .map(|c| c.map(|c| c.to_string()).unwrap_or_else(|| "any".into()))
            .collect::<Vec<_>>()
            .join(",")
    ));

    let meshes = Mutex::new(
        mesh::build(nshards)
            .into_iter()
            .map(Some)
            .collect::<Vec<_>>(),
    );
    let meshes = Arc::new(meshes);
    let mut handles = Vec::new();
    let failed = Arc::new(AtomicBool::new(false));
    for (id, ls) in listeners.into_iter().enumerate() {
        let g = g.clone();
        let meshes = meshes.clone();
        let cpu = cpus[id];
        let failed = failed.clone();
        let h = std::thread::Builder::new()
            .name(format!("shard-{id}"))
            .spawn(move || {
                if let Some(c) = cpu {
                    if let Err(e) = pin_to(c) {
                        crate::log::warn(&format!(
                            "shard {id}: could not pin to CPU {c}: {e} (continuing unpinned)"
                        ));
                    }
                }
                let mesh = meshes.lock().unwrap_or_else(|e| e.into_inner())[id]
                    .take()
                    .expect("mesh");
                let shard = Shard::new(id, g.clone(), mesh);
                let r = match g.io {
                    IoKind::Uring => crate::io::uring::run(shard, ls),
                    IoKind::Epoll => crate::io::epoll::run(shard, ls),
                };
                if let Err(e) = r {
                    crate::log::warn(&format!("shard {id} stopped: {e}"));
                    failed.store(true, Ordering::SeqCst);
                    g.request_shutdown();
                    // SAFETY: raising a signal at our own process.
                    unsafe { libc::kill(libc::getpid(), libc::SIGTERM) };
                }
            })
            .expect("spawn shard thread");
        handles.push(h);
    }
    crate::alloc::mark_startup();
    if let Some(senders) = load_senders {
        if let Err(e) = crate::persist::load_file(&g, &load_path, senders) {
            crate::log::warn(&e);
            std::process::exit(1);
        }
    }
    crate::log::notice("Ready to accept connections tcp");

    health::spawn_watchdog(g.clone());

    // Wait for SIGINT/SIGTERM, or a SHUTDOWN command (which raises SIGTERM).
    let sig = loop {
        let mut sig: libc::c_int = 0;
        // SAFETY: sigwait on the set blocked above.
        let r = unsafe { libc::sigwait(&sigset, &mut sig) };
        if r == 0 && (sig == libc::SIGINT || sig == libc::SIGTERM) {
            break sig;
        }
    };
    if !g.shutdown.load(Ordering::SeqCst) {
        crate::log::notice(if sig == libc::SIGINT {
            "Received SIGINT scheduling shutdown..."
        } else {
            "Received SIGTERM scheduling shutdown..."
        });
    }
    g.request_shutdown();
    // A shard in a long command (or holding its peers in a multi-shard
    // transaction) does not look at the shutdown flag until it finishes:
    // wait for the shards a bounded time, then give up on them.
    let deadline = std::time::Instant::now() + SHARD_STOP_GRACE;
    while handles.iter().any(|h| !h.is_finished()) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let stuck: Vec<usize> = (0..handles.len())
        .filter(|&i| !handles[i].is_finished())
        .collect();
    if !stuck.is_empty() {
        for &i in &stuck {
            crate::log::warn(&format!(
                "shard {i} did not stop within {} ms: {}",
                SHARD_STOP_GRACE.as_millis(),
                g.health[i].describe()
            ));
        }
        if want_shutdown_save(&g) {
            crate::log::warn(&format!(
                "not saving: shard {} is busy; exiting without the final RDB snapshot",
                stuck[0]
            ));
        }
        crate::log::warn("ringkv is exiting now with busy shards (exit status 1)");
        // Status 1: the shutdown was not clean (work in progress was
        // abandoned and nothing was saved), as when the final save fails.
        std::process::exit(1);
    }
    for h in handles {
        let _ = h.join();
    }
    let mut code = if failed.load(Ordering::SeqCst) { 1 } else { 0 };
    if !shutdown_save(&g) {
        code = 1;
    }
    crate::log::notice("ringkv is now ready to exit, bye bye...");
    code
}

/// How long the main thread waits for the shard threads to stop after
/// SIGTERM/SIGINT/SHUTDOWN before exiting without them.
const SHARD_STOP_GRACE: std::time::Duration = std::time::Duration::from_millis(1500);

/// Whether shutdown should save: with SHUTDOWN SAVE, or by default when
/// save points are configured (SIGTERM included); never with NOSAVE or
/// while still loading.
fn want_shutdown_save(g: &Global) -> bool {
    let mode = g.persist.shutdown_mode.load(Ordering::SeqCst);
    let has_points = {
        let c = g.config.read().unwrap_or_else(|e| e.into_inner());
        !c.get("save").trim().is_empty()
    };
    let want = match mode {
        crate::persist::SHUTDOWN_SAVE => true,
        crate::persist::SHUTDOWN_NOSAVE => false,
        _ => has_points,
    };
    want && !g.persist.loading()
}

/// The save on shutdown (see [`want_shutdown_save`]). Returns false if
/// the save failed.
fn shutdown_save(g: &Global) -> bool {
    if !want_shutdown_save(g) {
        return true;
    }
    let kss = std::mem::take(&mut *g.persist.final_ks.lock().unwrap_or_else(|e| e.into_inner()));
    if kss.iter().any(|k| k.is_none()) {
        crate::log::warn("Error trying to save the DB: a shard did not stop cleanly");
        return false;
    }
    let kss: Vec<Keyspace> = kss.into_iter().flatten().collect();
    let refs: Vec<&Keyspace> = kss.iter().collect();
    crate::log::notice("Saving the final RDB snapshot before exiting.");
    let cfg = crate::persist::SnapCfg::from_global(g);
    match crate::persist::save_keyspaces(&refs, &cfg) {
        Ok(_) => {
            crate::log::notice("DB saved on disk");
            true
        }
        Err(e) => {
            crate::log::warn(&format!(
                "Error trying to save the DB, can't exit cleanly: {e}"
            ));
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_host_wildcards_and_optional_prefix() {
        assert_eq!(bind_host("*"), "0.0.0.0");
        assert_eq!(bind_host("-::*"), "::");
        assert_eq!(bind_host("::*"), "::");
        assert_eq!(bind_host("-::1"), "::1");
        assert_eq!(bind_host("127.0.0.1"), "127.0.0.1");
    }

    #[test]
    fn watchdog_floor_is_two_cron_periods() {
        assert_eq!(health::watchdog_min_ms(10), 200);
        assert_eq!(health::watchdog_min_ms(500), 4);
    }
}
