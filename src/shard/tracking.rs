//! Client-side caching: CLIENT TRACKING's bookkeeping and invalidations.
//!
//! - Default mode: after a read-only command of a tracking client, the
//!   shard that owns each key remembers the client in its table (key ->
//!   clients), atomically with the read (inline, in the hop that ran the
//!   command, or before a multi-shard transaction releases its locks).
//!   The first modification of the key (any write, expiry, eviction) takes
//!   the key out of the table and queues one invalidation per client.
//! - BCAST: every shard keeps a copy of every client's prefixes; any
//!   modified key that starts with one queues an invalidation.
//! - After each batch of commands the shard sends the queued invalidations,
//!   grouped per client, to the shard of the client, which writes them as
//!   RESP3 push frames or, with REDIRECT, to the redirect connection (a
//!   RESP3 push, or a `__redis__:invalidate` Pub/Sub message in RESP2).
//! - FLUSHDB/FLUSHALL empty the tables and send every tracking client a
//!   null invalidation ("everything").
//!
//! Unlike Redis, the table is one per shard; `tracking-table-max-keys` is
//! split evenly between the shards.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::keyspace::Keyspace;
use super::Shard;

/// Where a tracking client lives, and its id (for NOLOOP).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrackTarget {
    pub shard: u16,
    pub idx: u32,
    pub gen: u32,
    pub client: u64,
    pub noloop: bool,
}

/// A queued invalidation: one key for one client. BCAST ones carry the
/// prefix that matched: they go out grouped per prefix, as Redis sends
/// them; the default mode's go one frame per key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inval {
    pub t: TrackTarget,
    pub key: Vec<u8>,
    pub prefix: Option<Vec<u8>>,
}

/// An invalidation that waits for its connection: (slot, generation,
/// keys; None = everything).
pub type Held = (u32, u32, Option<Vec<Vec<u8>>>);

/// Work that waits for the running connection to be back in its slot.
pub type Later = Box<dyn FnOnce(&mut Shard)>;

/// One frame to send: the client, the BCAST prefix (None: one key), keys.
type Frame = (TrackTarget, Option<Vec<u8>>, Vec<Vec<u8>>);

/// A connection's CLIENT TRACKING state.
#[derive(Default, Clone, Debug)]
pub struct ClientTracking {
    pub bcast: bool,
    pub optin: bool,
    pub optout: bool,
    pub noloop: bool,
    /// REDIRECT's client id (0 = none) and where that client lives.
    pub redirect: u64,
    pub redirect_at: Option<(usize, u32, u32)>,
    /// The redirect client went away (`R` in CLIENT LIST).
    pub broken: bool,
    pub prefixes: Vec<Vec<u8>>,
    /// CLIENT CACHING YES/NO, for the next command only.
    pub caching: Option<bool>,
}

impl ClientTracking {
    /// Whether the keys a read-only command reads are to be remembered.
    pub fn tracks_reads(&self) -> bool {
        !self.bcast
            && if self.optin {
                self.caching == Some(true)
            } else if self.optout {
                self.caching != Some(false)
            } else {
                true
            }
    }
}

/// Clients with tracking on, all shards (INFO tracking_clients).
pub static TRACKING_CLIENTS: AtomicUsize = AtomicUsize::new(0);

/// Where a tracking client's invalidations go: its REDIRECT id (0 = none)
/// and where that client lives.
type Redirect = (u64, Option<(usize, u32, u32)>);

fn redirect_of(t: &ClientTracking) -> Redirect {
    (t.redirect, t.redirect_at)
}

/// Keys a RESP3 invalidation frame names; None = all (a flush).
fn frame(resp3: bool, keys: Option<&[Vec<u8>]>) -> Vec<u8> {
    let mut f = Vec::new();
    if resp3 {
        f.extend_from_slice(b">2\r\n$10\r\ninvalidate\r\n");
    } else {
        f.extend_from_slice(b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n");
    }
    match keys {
        None if resp3 => f.extend_from_slice(b"_\r\n"),
        None => f.extend_from_slice(b"$-1\r\n"),
        Some(keys) => {
            f.extend_from_slice(format!("*{}\r\n", keys.len()).as_bytes());
            for k in keys {
                f.extend_from_slice(format!("${}\r\n", k.len()).as_bytes());
                f.extend_from_slice(k);
                f.extend_from_slice(b"\r\n");
            }
        }
    }
    f
}

impl Keyspace {
    /// Whether some client tracks something on this shard.
    #[inline]
    pub(crate) fn tracking_on(&self) -> bool {
        !self.tracked.is_empty() || !self.bcast.is_empty()
    }

    /// Whether a modification of `key` would invalidate someone.
    pub(crate) fn tracks(&self, key: &[u8]) -> bool {
        self.tracked.contains_key(key) || self.bcast.iter().any(|(p, _)| key.starts_with(p))
    }

    /// Remembers that `t` read `key`.
    pub fn track_key(&mut self, key: &[u8], t: TrackTarget) {
        let v = self.tracked.entry_ref(key).or_default();
        if let Some(old) = v.iter_mut().find(|x| x.client == t.client) {
            *old = t;
        } else {
            v.push(t);
        }
        if self.track_max > 0 && self.tracked.len() > self.track_max {
            // Over the limit: invalidate keys (any) until under it, a
            // bounded number per call as Redis does.
            for _ in 0..100 {
                if self.tracked.len() <= self.track_max {
                    break;
                }
                let Some(k) = self.tracked.keys().next().cloned() else {
                    break;
                };
                for t in self.tracked.remove(&k).unwrap_or_default() {
                    let key = k.clone();
                    self.invalidations.push(Inval {
                        t,
                        key,
                        prefix: None,
                    });
                }
            }
        }
    }

    /// `key` is being modified: queue the invalidations it causes.
    pub(crate) fn invalidate_key(&mut self, key: &[u8]) {
        let writer = self.writer;
        if let Some(ts) = self.tracked.remove(key) {
            for t in ts {
                if !(t.noloop && t.client == writer) {
                    let key = key.to_vec();
                    self.invalidations.push(Inval {
                        t,
                        key,
                        prefix: None,
                    });
                }
            }
        }
        for (p, ts) in &self.bcast {
            if key.starts_with(p) {
                for &t in ts {
                    if !(t.noloop && t.client == writer) {
                        let (key, prefix) = (key.to_vec(), Some(p.clone()));
                        self.invalidations.push(Inval { t, key, prefix });
                    }
                }
            }
        }
    }

    /// Registers (or replaces) a BCAST client's prefixes on this shard.
    pub fn bcast_add(&mut self, prefixes: &[Vec<u8>], t: TrackTarget) {
        for p in prefixes {
            match self.bcast.iter_mut().find(|(q, _)| q == p) {
                Some((_, ts)) => {
                    ts.retain(|x| x.client != t.client);
                    ts.push(t);
                }
                None => self.bcast.push((p.clone(), vec![t])),
            }
        }
    }

    /// Forgets a client's BCAST prefixes on this shard.
    pub fn bcast_remove(&mut self, client: u64) {
        for (_, ts) in &mut self.bcast {
            ts.retain(|x| x.client != client);
        }
        self.bcast.retain(|(_, ts)| !ts.is_empty());
    }
}

impl Shard {
    /// Where this shard's client at `idx` receives invalidations.
    pub(crate) fn track_target(&self, idx: u32, conn: &crate::conn::Conn) -> Option<TrackTarget> {
        let t = conn.tracking.as_ref()?;
        Some(TrackTarget {
            shard: self.id as u16,
            idx,
            gen: conn.gen,
            client: conn.id,
            noloop: t.noloop,
        })
    }

    /// Where a read-only command's keys must be remembered for, if the
    /// client tracks its reads.
    pub(crate) fn read_tracker(
        &self,
        idx: u32,
        conn: &crate::conn::Conn,
        spec: &crate::cmd::CmdSpec,
    ) -> Option<TrackTarget> {
        let t = conn.tracking.as_deref()?;
        if spec.flags & crate::cmd::READONLY == 0 || !t.tracks_reads() {
            return None;
        }
        self.track_target(idx, conn)
    }

    /// A multi-shard read of a tracking client: records its keys on their
    /// shards while the transaction still holds them (called just before
    /// it unlocks; messages to a shard arrive in order).
    pub(crate) fn record_tx_track(&mut self) {
        let Some((t, keys)) = self.tx_track.take() else {
            return;
        };
        for k in keys {
            let s = self.shard_of(&k);
            self.post(s, move |sh| sh.ks.track_key(&k, t));
        }
    }

    /// Sends the invalidations queued by the commands that just ran.
    pub(crate) fn send_invalidations(&mut self) {
        if self.ks.invalidations.is_empty() {
            return;
        }
        // One frame per key, except BCAST's: per client and prefix.
        let mut frames: Vec<Frame> = Vec::new();
        for iv in std::mem::take(&mut self.ks.invalidations) {
            let group = iv.prefix.is_some().then(|| {
                frames
                    .iter()
                    .position(|(t, p, _)| t.client == iv.t.client && *p == iv.prefix)
            });
            match group.flatten() {
                Some(i) => {
                    if !frames[i].2.contains(&iv.key) {
                        frames[i].2.push(iv.key);
                    }
                }
                None => frames.push((iv.t, iv.prefix, vec![iv.key])),
            }
        }
        for (t, _, keys) in frames {
            let to = t.shard as usize;
            self.post(to, move |sh| {
                sh.deliver_invalidation(t.idx, t.gen, Some(keys))
            });
        }
    }

    /// Delivers an invalidation to a tracking client of this shard: to
    /// itself (RESP3) or to its redirect client.
    pub(crate) fn deliver_invalidation(&mut self, idx: u32, gen: u32, keys: Option<Vec<Vec<u8>>>) {
        if self.current_idx() == Some(idx) {
            // Its commands are running: deliver when they are done.
            self.tracking_held.push((idx, gen, keys));
            return;
        }
        let Some(Some(c)) = self.conns.get_mut(idx as usize) else {
            return;
        };
        if c.gen != gen {
            return;
        }
        let (resp3, to) = (c.resp3, c.tracking.as_deref().map(redirect_of));
        if let Some(f) = self.route_invalidation(idx, gen, resp3, to, keys) {
            self.write_to(idx, f);
        }
    }

    /// The frame for the tracking client itself, or None after sending it
    /// to its redirect client (or when it cannot receive any: RESP2 without
    /// redirect).
    fn route_invalidation(
        &mut self,
        idx: u32,
        gen: u32,
        resp3: bool,
        to: Option<Redirect>,
        keys: Option<Vec<Vec<u8>>>,
    ) -> Option<Vec<u8>> {
        let (redirect, redirect_at) = to?;
        match redirect_at {
            None if redirect != 0 => None,
            None => resp3.then(|| frame(true, keys.as_deref())),
            Some((s, ridx, rgen)) => {
                let me = self.id;
                self.post(s, move |sh| {
                    sh.deliver_redirected(ridx, rgen, keys, me, idx, gen)
                });
                None
            }
        }
    }

    /// Right after a command of the running connection: what it invalidated
    /// for itself goes out after its reply, as Redis sends it.
    pub(crate) fn invalidate_current(
        &mut self,
        conn: &mut crate::conn::Conn,
        idx: u32,
        wbuf: &mut Vec<u8>,
    ) {
        self.send_invalidations();
        if self.tracking_held.is_empty() {
            return;
        }
        for (i, gen, keys) in std::mem::take(&mut self.tracking_held) {
            if i != idx || gen != conn.gen {
                self.tracking_held.push((i, gen, keys));
                continue;
            }
            let to = conn.tracking.as_deref().map(redirect_of);
            if let Some(f) = self.route_invalidation(idx, gen, conn.resp3, to, keys) {
                if conn.pending.is_empty() {
                    wbuf.extend_from_slice(&f);
                } else {
                    conn.pending.push_back(crate::conn::Pending::Ready(f));
                }
            }
        }
    }

    /// Writes an invalidation on a redirect connection of this shard; if it
    /// is gone, tells the tracking client its redirect is broken.
    fn deliver_redirected(
        &mut self,
        idx: u32,
        gen: u32,
        keys: Option<Vec<Vec<u8>>>,
        from: usize,
        from_idx: u32,
        from_gen: u32,
    ) {
        if self.current_idx() == Some(idx) {
            self.post_later.push(Box::new(move |sh: &mut Shard| {
                sh.deliver_redirected(idx, gen, keys, from, from_idx, from_gen)
            }));
            return;
        }
        match self.conns.get_mut(idx as usize) {
            Some(Some(c)) if c.gen == gen => {
                if c.resp3 || c.subscribed() {
                    let f = frame(c.resp3, keys.as_deref());
                    self.write_to(idx, f);
                }
            }
            _ => self.post(from, move |sh| sh.redirect_broken(from_idx, from_gen)),
        }
    }

    /// The redirect client of a tracking client went away: a RESP3 client
    /// is told once (`tracking-redir-broken`), and CLIENT LIST shows `R`.
    fn redirect_broken(&mut self, idx: u32, gen: u32) {
        let Some(Some(c)) = self.conns.get_mut(idx as usize) else {
            return;
        };
        if c.gen != gen {
            return;
        }
        let Some(t) = c.tracking.as_mut() else {
            return;
        };
        if t.broken {
            return;
        }
        t.broken = true;
        if c.resp3 {
            let id = t.redirect;
            let mut f = b">2\r\n$21\r\ntracking-redir-broken\r\n".to_vec();
            f.extend_from_slice(format!(":{id}\r\n").as_bytes());
            self.write_to(idx, f);
        }
    }

    /// Appends bytes to a connection's output, after its pending replies.
    fn write_to(&mut self, idx: u32, f: Vec<u8>) {
        if let Some(Some(c)) = self.conns.get_mut(idx as usize) {
            if c.pending.is_empty() {
                c.wbuf.extend_from_slice(&f);
            } else {
                c.pending.push_back(crate::conn::Pending::Ready(f));
            }
            self.mark_dirty(idx);
        }
    }

    /// Delivers what waited for the connection that was running.
    pub(crate) fn flush_tracking_held(&mut self) {
        for (idx, gen, keys) in std::mem::take(&mut self.tracking_held) {
            self.deliver_invalidation(idx, gen, keys);
        }
        for f in std::mem::take(&mut self.post_later) {
            f(self);
        }
    }

    /// FLUSHDB/FLUSHALL on this shard: the table goes, and every tracking
    /// client of this shard is told to drop everything.
    pub(crate) fn tracking_flush(&mut self) {
        self.ks.tracked.clear();
        let mine: Vec<(u32, u32)> = self
            .conns
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                let c = c.as_deref()?;
                c.tracking.as_ref().map(|_| (i as u32, c.gen))
            })
            .collect();
        for (idx, gen) in mine {
            self.deliver_invalidation(idx, gen, None);
        }
    }

    /// Turns tracking off for a connection of this shard (CLIENT TRACKING
    /// OFF, RESET, disconnect): BCAST registrations go everywhere.
    pub(crate) fn tracking_off(&mut self, conn: &mut crate::conn::Conn) {
        let Some(t) = conn.tracking.take() else {
            return;
        };
        TRACKING_CLIENTS.fetch_sub(1, Ordering::Relaxed);
        if t.bcast {
            let id = conn.id;
            for s in 0..self.n {
                self.post(s, move |sh| sh.ks.bcast_remove(id));
            }
        }
    }

    /// (keys, items, prefixes) of this shard's tables, for INFO.
    pub(crate) fn tracking_figures(&self) -> (usize, usize, usize) {
        (
            self.ks.tracked.len(),
            self.ks.tracked.values().map(Vec::len).sum(),
            self.ks.bcast.len(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(client: u64, noloop: bool) -> TrackTarget {
        TrackTarget {
            shard: 0,
            idx: client as u32,
            gen: 1,
            client,
            noloop,
        }
    }

    #[test]
    fn a_write_invalidates_each_reader_once_and_forgets_the_key() {
        let mut ks = Keyspace::new(1);
        ks.track_key(b"k", t(1, false));
        ks.track_key(b"k", t(1, false));
        ks.track_key(b"k", t(2, true));
        assert!(ks.tracks(b"k"));
        ks.writer = 2; // NOLOOP: client 2's own write is not sent to it
        ks.invalidate_key(b"k");
        let want = Inval {
            t: t(1, false),
            key: b"k".to_vec(),
            prefix: None,
        };
        assert_eq!(ks.invalidations, vec![want]);
        assert!(!ks.tracks(b"k"));
        ks.invalidations.clear();
        ks.invalidate_key(b"k");
        assert!(ks.invalidations.is_empty());
    }

    #[test]
    fn bcast_prefixes_match_every_write_until_removed() {
        let mut ks = Keyspace::new(1);
        ks.bcast_add(&[b"user:".to_vec(), b"".to_vec()], t(7, false));
        ks.invalidate_key(b"user:1");
        ks.invalidate_key(b"other");
        assert_eq!(ks.invalidations.len(), 3);
        ks.bcast_remove(7);
        assert!(!ks.tracking_on());
    }

    #[test]
    fn the_table_stays_within_its_limit() {
        let mut ks = Keyspace::new(1);
        ks.track_max = 10;
        for i in 0..50 {
            ks.track_key(format!("k{i}").as_bytes(), t(1, false));
        }
        assert_eq!(ks.tracked.len(), 10);
        assert_eq!(ks.invalidations.len(), 40);
    }

    #[test]
    fn frames_are_redis_s() {
        assert_eq!(
            frame(true, Some(&[b"x".to_vec()])),
            b">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nx\r\n"
        );
        assert_eq!(frame(true, None), b">2\r\n$10\r\ninvalidate\r\n_\r\n");
        assert!(frame(false, Some(&[])).starts_with(b"*3\r\n$7\r\nmessage\r\n"));
    }
}
