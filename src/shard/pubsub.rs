//! Pub/Sub on the shard: local subscriptions and the directory of every
//! shard's subscription counts.
//!
//! Each shard knows its own subscribers (channel or pattern -> connection
//! slots). It also keeps a directory: for each channel and each pattern,
//! how many subscriptions every shard has. A shard whose count for a name
//! changes updates its own entry and sends the new count to every other
//! shard, so every shard's directory converges without locks.
//!
//! PUBLISH reads the publisher's shard directory: the number of receivers
//! it returns is the sum of the counts for the channel and for every
//! pattern matching it (as Redis counts), and the message goes only to the
//! shards with a non-zero count, over the mesh (FIFO per pair of shards,
//! so one publisher's messages arrive in publish order). A count can lag
//! a subscription made on another shard by one message hop.

use hashbrown::HashMap;

use super::*;

/// The three Pub/Sub namespaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Channel,
    Pattern,
    /// Sharded channels (SSUBSCRIBE / SPUBLISH).
    Shard,
}

impl Kind {
    fn idx(self) -> usize {
        match self {
            Kind::Channel => 0,
            Kind::Pattern => 1,
            Kind::Shard => 2,
        }
    }
}

/// A message waiting for the running connection: (subscriber, kind,
/// pattern, channel, message).
pub type Held = (Sub, Kind, Option<Vec<u8>>, Vec<u8>, Vec<u8>);

/// A subscribed connection: slot and generation.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Sub {
    pub idx: u32,
    pub gen: u32,
}

#[derive(Default)]
pub struct PubSub {
    /// Local subscribers per name, per kind.
    local: [HashMap<Vec<u8>, Vec<Sub>>; 3],
    /// Subscription counts per name per shard, per kind (this shard's
    /// included).
    dir: [HashMap<Vec<u8>, Vec<u32>>; 3],
    /// Messages for the connection that is running (out of its slot),
    /// delivered when it is back.
    pub held: Vec<Held>,
}

impl PubSub {
    /// Every name with at least one subscription anywhere.
    pub fn names(&self, kind: Kind) -> impl Iterator<Item = &Vec<u8>> {
        self.dir[kind.idx()]
            .iter()
            .filter(|(_, c)| c.iter().any(|&n| n > 0))
            .map(|(k, _)| k)
    }

    /// Subscriptions to `name` on all shards.
    pub fn count(&self, kind: Kind, name: &[u8]) -> u64 {
        self.dir[kind.idx()]
            .get(name)
            .map_or(0, |c| c.iter().map(|&n| n as u64).sum())
    }

    pub fn has_local(&self) -> bool {
        self.local.iter().any(|m| !m.is_empty())
    }
}

/// Encodes a message as the subscriber's protocol wants it.
pub fn frame(
    resp3: bool,
    kind: Kind,
    pattern: Option<&[u8]>,
    channel: &[u8],
    msg: &[u8],
) -> Vec<u8> {
    let mut buf = Vec::with_capacity(channel.len() + msg.len() + 48);
    let mut out = Out::new(&mut buf, resp3);
    match (kind, pattern) {
        (Kind::Pattern, Some(p)) => {
            out.push(4);
            out.bulk(b"pmessage");
            out.bulk(p);
        }
        (Kind::Shard, _) => {
            out.push(3);
            out.bulk(b"smessage");
        }
        _ => {
            out.push(3);
            out.bulk(b"message");
        }
    }
    out.bulk(channel);
    out.bulk(msg);
    buf
}

impl Shard {
    /// Adds a local subscription; returns false if the client had it.
    pub(crate) fn ps_subscribe(&mut self, kind: Kind, name: &[u8], sub: Sub) -> bool {
        let list = self.pubsub.local[kind.idx()]
            .entry(name.to_vec())
            .or_default();
        if list.contains(&sub) {
            return false;
        }
        list.push(sub);
        let n = list.len() as u32;
        self.ps_announce(kind, name, n);
        true
    }

    /// Removes a local subscription; returns false if there was none.
    pub(crate) fn ps_unsubscribe(&mut self, kind: Kind, name: &[u8], sub: Sub) -> bool {
        let map = &mut self.pubsub.local[kind.idx()];
        let Some(list) = map.get_mut(name) else {
            return false;
        };
        let Some(i) = list.iter().position(|s| *s == sub) else {
            return false;
        };
        list.swap_remove(i);
        let n = list.len() as u32;
        if n == 0 {
            map.remove(name);
        }
        self.ps_announce(kind, name, n);
        true
    }

    /// Records this shard's new count for `name` and tells the others.
    fn ps_announce(&mut self, kind: Kind, name: &[u8], n: u32) {
        let me = self.id;
        self.ps_set_count(kind, name.to_vec(), me, n);
        for s in 0..self.n {
            if s != me {
                let name = name.to_vec();
                self.post(s, move |sh| sh.ps_set_count(kind, name, me, n));
            }
        }
    }

    fn ps_set_count(&mut self, kind: Kind, name: Vec<u8>, shard: usize, n: u32) {
        let nshards = self.n;
        let dir = &mut self.pubsub.dir[kind.idx()];
        if n == 0 {
            if let Some(c) = dir.get_mut(&name) {
                c[shard] = 0;
                if c.iter().all(|&x| x == 0) {
                    dir.remove(&name);
                }
            }
            return;
        }
        dir.entry(name).or_insert_with(|| vec![0; nshards])[shard] = n;
    }

    /// PUBLISH / SPUBLISH: delivers `msg` everywhere it is wanted and
    /// returns the number of receivers.
    pub(crate) fn ps_publish(&mut self, sharded: bool, channel: &[u8], msg: &[u8]) -> u64 {
        let mut total = 0u64;
        let mut targets = vec![false; self.n];
        let ck = if sharded { Kind::Shard } else { Kind::Channel };
        if let Some(c) = self.pubsub.dir[ck.idx()].get(channel) {
            for (s, &n) in c.iter().enumerate() {
                total += n as u64;
                targets[s] |= n > 0;
            }
        }
        if !sharded {
            for (p, c) in &self.pubsub.dir[Kind::Pattern.idx()] {
                if crate::util::glob_match(p, channel, false) {
                    for (s, &n) in c.iter().enumerate() {
                        total += n as u64;
                        targets[s] |= n > 0;
                    }
                }
            }
        }
        for (s, wanted) in targets.into_iter().enumerate() {
            if !wanted {
                continue;
            }
            if s == self.id {
                self.ps_deliver(sharded, channel, msg);
            } else {
                let (channel, msg) = (channel.to_vec(), msg.to_vec());
                self.post(s, move |sh| sh.ps_deliver(sharded, &channel, &msg));
            }
        }
        total
    }

    /// Delivers a message to this shard's subscribers of `channel` and of
    /// the patterns matching it.
    fn ps_deliver(&mut self, sharded: bool, channel: &[u8], msg: &[u8]) {
        let mut sends: Vec<(Sub, Kind, Option<Vec<u8>>)> = Vec::new();
        let ck = if sharded { Kind::Shard } else { Kind::Channel };
        if let Some(list) = self.pubsub.local[ck.idx()].get(channel) {
            sends.extend(list.iter().map(|&s| (s, ck, None)));
        }
        if !sharded {
            for (p, list) in &self.pubsub.local[Kind::Pattern.idx()] {
                if crate::util::glob_match(p, channel, false) {
                    sends.extend(list.iter().map(|&s| (s, Kind::Pattern, Some(p.clone()))));
                }
            }
        }
        for (sub, kind, pat) in sends {
            self.ps_push(sub, kind, pat, channel, msg);
        }
    }

    /// Appends a message to a connection's output (after the replies still
    /// pending for it, so no reply is split).
    fn ps_push(&mut self, sub: Sub, kind: Kind, pat: Option<Vec<u8>>, channel: &[u8], msg: &[u8]) {
        let current = self.current_idx() == Some(sub.idx);
        match self.conns.get_mut(sub.idx as usize) {
            Some(Some(c)) if c.gen == sub.gen => {
                let f = frame(c.resp3, kind, pat.as_deref(), channel, msg);
                if c.pending.is_empty() {
                    c.wbuf.extend_from_slice(&f);
                } else {
                    c.pending.push_back(crate::conn::Pending::Ready(f));
                }
                self.mark_dirty(sub.idx);
            }
            Some(None) if current => {
                self.pubsub
                    .held
                    .push((sub, kind, pat, channel.to_vec(), msg.to_vec()));
            }
            _ => {}
        }
    }

    /// Delivers the messages that waited for the running connection.
    pub(crate) fn ps_flush_held(&mut self) {
        for (sub, kind, pat, ch, msg) in std::mem::take(&mut self.pubsub.held) {
            self.ps_push(sub, kind, pat, &ch, &msg);
        }
    }

    /// Drops every subscription of a closing connection.
    pub(crate) fn ps_drop_conn(&mut self, conn: &mut Conn, idx: u32) {
        let sub = Sub { idx, gen: conn.gen };
        for (kind, names) in [
            (Kind::Channel, std::mem::take(&mut conn.subs)),
            (Kind::Pattern, std::mem::take(&mut conn.psubs)),
            (Kind::Shard, std::mem::take(&mut conn.ssubs)),
        ] {
            for n in names {
                self.ps_unsubscribe(kind, &n, sub);
            }
        }
    }
}
