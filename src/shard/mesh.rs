//! Shard-to-shard messaging: one lock-free single-producer single-consumer
//! ring per ordered pair of shards, plus an eventfd per shard to wake it
//! when it sleeps in its event loop.

use std::any::Any;
use std::collections::VecDeque;
use std::sync::atomic::{fence, AtomicBool, Ordering};

use super::keyspace::BlockReq;
use super::Shard;

/// A command sent to the shard that owns its keys, for a client of the
/// sender.
pub struct ExecCall {
    pub f: crate::cmd::KeyFn,
    /// Its command-table index (stats, key positions).
    pub ci: u16,
    pub db: usize,
    pub resp3: bool,
    /// The reply is not wanted (CLIENT REPLY OFF/SKIP).
    pub skip: bool,
    pub origin: usize,
    pub args: Vec<Vec<u8>>,
    /// The client's id (NOLOOP) and, for a read by a tracking client,
    /// where its invalidations go.
    pub client: u64,
    pub track: Option<super::tracking::TrackTarget>,
}
pub type TxJob = Box<dyn FnOnce(&mut Shard) -> Box<dyn Any + Send> + Send>;

pub enum Msg {
    /// Run a command for a client of the sender; reply with `Reply`.
    Exec {
        conn: u32,
        gen: u32,
        seq: u64,
        call: Box<ExecCall>,
    },
    /// The encoded reply of an `Exec`, or its request to block.
    Reply {
        conn: u32,
        gen: u32,
        seq: u64,
        data: Vec<u8>,
        block: Option<BlockReq>,
    },
    /// A coordinator asks for transaction `seq`'s locks on this shard
    /// (shard/locks.rs); answered by `Granted` (now or later) or `Refused`.
    Lock {
        seq: u64,
        set: super::locks::LockSet,
    },
    Granted {
        seq: u64,
    },
    Refused {
        seq: u64,
    },
    /// Transaction `seq` is over (or gave up): drop its locks here.
    Unlock {
        seq: u64,
    },
    /// An operation of a transaction whose locks this shard granted.
    TxOp(TxJob),
    TxReply(Box<dyn Any + Send>),
    /// A transaction operation panicked on the other shard.
    TxPanic,
    /// Fire-and-forget work.
    Run(Box<dyn FnOnce(&mut Shard) + Send>),
}

/// Wakes a shard sleeping in its event loop.
pub struct Waker {
    pub efd: i32,
    pub sleeping: AtomicBool,
}

impl Waker {
    pub fn new() -> std::io::Result<Waker> {
        // SAFETY: plain syscall; the result is checked.
        let efd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if efd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Waker {
            efd,
            sleeping: AtomicBool::new(false),
        })
    }

    /// Wakes the shard if it is (about to be) asleep.
    pub fn wake(&self) {
        fence(Ordering::SeqCst);
        if self.sleeping.load(Ordering::SeqCst) {
            self.force_wake();
        }
    }

    pub fn force_wake(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to our own eventfd.
        unsafe {
            libc::write(self.efd, &one as *const u64 as *const libc::c_void, 8);
        }
    }

    /// Clears the eventfd counter.
    pub fn drain(&self) {
        let mut v: u64 = 0;
        // SAFETY: reads 8 bytes into a live u64 from our own nonblocking eventfd.
        unsafe {
            libc::read(self.efd, &mut v as *mut u64 as *mut libc::c_void, 8);
        }
    }
}

pub const RING_CAP: usize = 8192;

pub struct Mesh {
    pub me: usize,
    tx: Vec<Option<rtrb::Producer<Msg>>>,
    rx: Vec<Option<rtrb::Consumer<Msg>>>,
    overflow: Vec<VecDeque<Msg>>,
    wake: Vec<bool>,
    pub sent: u64,
    pub received: u64,
}

/// Builds the rings for `n` shards: entry i is shard i's mesh.
pub fn build(n: usize) -> Vec<Mesh> {
    let mut meshes: Vec<Mesh> = (0..n)
        .map(|me| Mesh {
            me,
            tx: (0..n).map(|_| None).collect(),
            rx: (0..n).map(|_| None).collect(),
            overflow: (0..n).map(|_| VecDeque::new()).collect(),
            wake: vec![false; n],
            sent: 0,
            received: 0,
        })
        .collect();
    for i in 0..n {
        for j in 0..n {
            if i != j {
                let (p, c) = rtrb::RingBuffer::new(RING_CAP);
                crate::shard::evict::FIXED_IO.fetch_add(
                    (RING_CAP * std::mem::size_of::<Msg>()) as u64,
                    std::sync::atomic::Ordering::Relaxed,
                );
                meshes[i].tx[j] = Some(p);
                meshes[j].rx[i] = Some(c);
            }
        }
    }
    meshes
}

impl Mesh {
    /// Queues a message for shard `to` (never blocks; overflows locally).
    pub fn send(&mut self, to: usize, msg: Msg) {
        self.sent += 1;
        self.wake[to] = true;
        if !self.overflow[to].is_empty() {
            self.overflow[to].push_back(msg);
            self.flush_to(to);
            return;
        }
        if let Some(p) = self.tx[to].as_mut() {
            if let Err(rtrb::PushError::Full(m)) = p.push(msg) {
                self.overflow[to].push_back(m);
            }
        }
    }

    fn flush_to(&mut self, to: usize) {
        let Some(p) = self.tx[to].as_mut() else {
            return;
        };
        while let Some(m) = self.overflow[to].pop_front() {
            if let Err(rtrb::PushError::Full(m)) = p.push(m) {
                self.overflow[to].push_front(m);
                break;
            }
        }
    }

    /// Retries messages that did not fit in their ring.
    pub fn flush_overflow(&mut self) {
        for to in 0..self.overflow.len() {
            if !self.overflow[to].is_empty() {
                self.flush_to(to);
            }
        }
    }

    pub fn has_overflow(&self) -> bool {
        self.overflow.iter().any(|q| !q.is_empty())
    }

    /// Wakes every shard that was sent something since the last call.
    pub fn wake_targets(&mut self, wakers: &[Waker]) {
        for (to, w) in self.wake.iter_mut().enumerate() {
            if *w {
                *w = false;
                wakers[to].wake();
            }
        }
    }

    #[inline]
    pub fn try_recv(&mut self, from: usize) -> Option<Msg> {
        let m = self.rx[from].as_mut()?.pop().ok();
        if m.is_some() {
            self.received += 1;
        }
        m
    }

    /// Whether any inbound ring holds a message.
    pub fn has_input(&self) -> bool {
        self.rx.iter().flatten().any(|c| !c.is_empty())
    }

    pub fn n(&self) -> usize {
        self.rx.len()
    }
}
