//! Streams in RDB: written as Redis 7.0 writes them (type 19,
//! STREAM_LISTPACKS_2: one listpack per node keyed by its 16-byte master
//! ID, then the stream's metadata and its consumer groups with their PELs);
//! read from types 15 (Redis 5/6), 19 (7.0) and 21 (7.2, consumers carry an
//! active time).
//!
//! A node's listpack holds the master entry (live count, deleted count,
//! field count, the field names, a 0 terminator), then per entry: flags,
//! ms delta, seq delta, [field count, field, value ... | values only when
//! the fields are the master's], and the entry's element count.

use super::decode::{parse_listpack_items, LpItem};
use super::{write_len, write_string, Reader, Result};
use crate::shard::keyspace::EncCfg;
use crate::types::stream::{Consumer, Group, Nack, Node, Stream, StreamId};
use crate::types::Value;

pub const T_STREAM_LISTPACKS_3: u8 = 21;

const F_DELETED: i64 = 1;
const F_SAMEFIELDS: i64 = 2;

/// The body of a stream value (type 19).
pub fn write_stream(out: &mut Vec<u8>, s: &Stream, compress: bool) {
    write_len(out, s.nodes.len() as u64);
    write_stream_nodes(out, s, 0, s.nodes.len(), compress);
    write_stream_tail(out, s, compress);
}

/// Nodes `from..to` (by position) of a stream body: the snapshot writes a
/// big stream a few nodes per step, then [`write_stream_tail`].
pub fn write_stream_nodes(out: &mut Vec<u8>, s: &Stream, from: usize, to: usize, compress: bool) {
    let lp_writer = super::encode::ListpackWriter::with_capacity;
    for (master, node) in s.nodes.iter().skip(from).take(to.saturating_sub(from)) {
        write_string(out, &master.to_be(), compress);
        let mut lp = lp_writer(node.buf.len() + 32);
        lp.push_int(node.count as i64);
        lp.push_int(node.deleted as i64);
        lp.push_int(node.master_fields.len() as i64);
        for f in &node.master_fields {
            lp.push(f);
        }
        lp.push_int(0);
        for e in node.entries(*master) {
            let same = node.master_fields.len() == e.fields.len()
                && node
                    .master_fields
                    .iter()
                    .zip(&e.fields)
                    .all(|(a, b)| a.as_slice() == b.0);
            let mut flags = 0;
            if e.deleted {
                flags |= F_DELETED;
            }
            if same {
                flags |= F_SAMEFIELDS;
            }
            lp.push_int(flags);
            lp.push_int(e.id.ms.wrapping_sub(master.ms) as i64);
            lp.push_int(e.id.seq.wrapping_sub(master.seq) as i64);
            if same {
                for (_, v) in &e.fields {
                    lp.push(v);
                }
                lp.push_int(e.fields.len() as i64 + 3);
            } else {
                lp.push_int(e.fields.len() as i64);
                for (f, v) in &e.fields {
                    lp.push(f);
                    lp.push(v);
                }
                lp.push_int(e.fields.len() as i64 * 2 + 4);
            }
        }
        write_string(out, &lp.finish(), compress);
    }
}

/// What follows the nodes: the stream's metadata and its groups.
pub fn write_stream_tail(out: &mut Vec<u8>, s: &Stream, compress: bool) {
    write_len(out, s.length);
    write_len(out, s.last_id.ms);
    write_len(out, s.last_id.seq);
    write_len(out, s.first_id.ms);
    write_len(out, s.first_id.seq);
    write_len(out, s.max_deleted_id.ms);
    write_len(out, s.max_deleted_id.seq);
    write_len(out, s.entries_added);
    write_len(out, s.groups.len() as u64);
    for (name, g) in &s.groups {
        write_string(out, name, compress);
        write_len(out, g.last_id.ms);
        write_len(out, g.last_id.seq);
        write_len(out, g.entries_read as u64);
        write_len(out, g.pel.len() as u64);
        for (id, n) in &g.pel {
            out.extend_from_slice(&id.to_be());
            out.extend_from_slice(&n.delivery_time.to_le_bytes());
            write_len(out, n.delivery_count);
        }
        write_len(out, g.consumers.len() as u64);
        for (cname, c) in &g.consumers {
            write_string(out, cname, compress);
            out.extend_from_slice(&c.seen_time.to_le_bytes());
            write_len(out, c.pel.len() as u64);
            for id in &c.pel {
                out.extend_from_slice(&id.to_be());
            }
        }
    }
}

fn item_int(it: &LpItem, r: &Reader, what: &str) -> Result<i64> {
    match it {
        LpItem::Int(v) => Ok(*v),
        LpItem::Str(b) => match crate::util::parse_i64(b) {
            Some(v) => Ok(v),
            None => r.err(format!("stream listpack: {what} is not an integer")),
        },
    }
}

fn item_bytes(it: &LpItem) -> Vec<u8> {
    match it {
        LpItem::Int(v) => itoa::Buffer::new().format(*v).as_bytes().to_vec(),
        LpItem::Str(b) => b.to_vec(),
    }
}

fn read_id(r: &mut Reader) -> Result<StreamId> {
    let b = r.bytes(16)?;
    Ok(StreamId::from_be(b).expect("16 bytes"))
}

/// Reads a stream body of type 15, 19 or 21.
pub fn read_stream(r: &mut Reader, t: u8, enc: &EncCfg) -> Result<Option<Value>> {
    let mut s = Stream::new(enc.stream_node_max_bytes, enc.stream_node_max_entries);
    let nodes = r.count(2)?;
    let mut live_total = 0u64;
    for _ in 0..nodes {
        let key = r.string()?;
        let Some(master) = StreamId::from_be(&key) else {
            return r.err("stream node key is not 16 bytes");
        };
        if let Some((last, _)) = s.nodes.iter().next_back() {
            if *last >= master {
                return r.err("stream node keys out of order");
            }
        }
        let lpb = r.string()?;
        let items = parse_listpack_items(&lpb, r.pos)?;
        if items.is_empty() {
            return r.err("empty listpack inside stream");
        }
        let p = std::cell::Cell::new(0usize);
        let next = |what: &str| -> Result<&LpItem> {
            let it = items.get(p.get());
            p.set(p.get() + 1);
            match it {
                Some(it) => Ok(it),
                None => r.err(format!("stream listpack ends early ({what})")),
            }
        };
        let count = item_int(next("count")?, r, "count")?;
        let deleted = item_int(next("deleted")?, r, "deleted")?;
        let nf = item_int(next("master fields")?, r, "master fields")?;
        if count < 0 || deleted < 0 || !(0..=items.len() as i64).contains(&nf) {
            return r.err("stream listpack: bad master entry");
        }
        let mut mfields = Vec::with_capacity(nf as usize);
        for _ in 0..nf {
            mfields.push(item_bytes(next("master field")?));
        }
        if item_int(next("master terminator")?, r, "master terminator")? != 0 {
            return r.err("stream listpack: bad master terminator");
        }
        let mut node = Node::with_master_fields(mfields.clone());
        let mut last_id: Option<StreamId> = None;
        let (mut live, mut dead) = (0i64, 0i64);
        while p.get() < items.len() {
            let flags = item_int(next("flags")?, r, "flags")?;
            let dms = item_int(next("ms")?, r, "ms")? as u64;
            let dseq = item_int(next("seq")?, r, "seq")? as u64;
            let id = StreamId::new(master.ms.wrapping_add(dms), master.seq.wrapping_add(dseq));
            // (Entries after a tombstone may be lower than it: XSETID can
            // move the last ID below a deleted entry.)
            if id < master || last_id.is_some_and(|l| l == id) {
                return r.err("stream entry IDs out of order");
            }
            last_id = Some(id);
            let mut fields: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
            if flags & F_SAMEFIELDS != 0 {
                for f in &mfields {
                    fields.push((f.clone(), item_bytes(next("value")?)));
                }
            } else {
                let n = item_int(next("fields")?, r, "fields")?;
                if !(0..=items.len() as i64).contains(&n) {
                    return r.err("stream listpack: bad field count");
                }
                for _ in 0..n {
                    let f = item_bytes(next("field")?);
                    fields.push((f, item_bytes(next("value")?)));
                }
            }
            item_int(next("lp-count")?, r, "lp-count")?;
            let deleted = flags & F_DELETED != 0;
            if deleted {
                dead += 1;
            } else {
                live += 1;
            }
            let refs: Vec<(&[u8], &[u8])> = fields.iter().map(|(a, b)| (&a[..], &b[..])).collect();
            node.push_raw(master, id, deleted, &refs);
        }
        if live != count || dead != deleted {
            return r.err("stream listpack: entry counts do not match");
        }
        live_total += live as u64;
        s.nodes.insert(master, node);
    }
    s.length = r.len()?;
    if s.length != live_total {
        return r.err("stream length does not match its entries");
    }
    s.last_id = StreamId::new(r.len()?, r.len()?);
    // A later XADD appends to the last node: the last ID must not be
    // below that node's master ID.
    if s.nodes.keys().next_back().is_some_and(|m| *m > s.last_id) {
        return r.err("stream last ID is below its last node");
    }
    if t == super::T_STREAM_LISTPACKS {
        // Redis 5/6: no first ID, tombstone or counter; derive them.
        s.first_id = s.all().first().map(|e| e.0).unwrap_or_default();
        s.entries_added = s.length;
    } else {
        s.first_id = StreamId::new(r.len()?, r.len()?);
        s.max_deleted_id = StreamId::new(r.len()?, r.len()?);
        s.entries_added = r.len()?;
    }
    let ngroups = r.count(2)?;
    for _ in 0..ngroups {
        let name = r.string()?;
        let last = StreamId::new(r.len()?, r.len()?);
        let entries_read = if t == super::T_STREAM_LISTPACKS {
            s.estimate_distance(last)
        } else {
            r.len()? as i64
        };
        let mut g = Group::new(last, entries_read);
        let npel = r.count(17)?;
        for _ in 0..npel {
            let id = read_id(r)?;
            let time = r.u64_le()?;
            let count = r.len()?;
            g.pel.insert(
                id,
                Nack {
                    delivery_time: time,
                    delivery_count: count,
                    consumer: Vec::new(),
                },
            );
        }
        let ncons = r.count(2)?;
        for _ in 0..ncons {
            let cname = r.string()?;
            let seen = r.u64_le()?;
            if t == T_STREAM_LISTPACKS_3 {
                r.u64_le()?; // active time (Redis 7.2)
            }
            let mut c = Consumer {
                seen_time: seen,
                pel: Default::default(),
            };
            let n = r.count(16)?;
            for _ in 0..n {
                let id = read_id(r)?;
                match g.pel.get_mut(&id) {
                    Some(nack) if nack.consumer.is_empty() => nack.consumer = cname.clone(),
                    _ => return r.err("consumer PEL entry missing from the group PEL"),
                }
                c.pel.insert(id);
            }
            if g.consumers.insert(cname, c).is_some() {
                return r.err("duplicate consumer");
            }
        }
        if g.pel.values().any(|n| n.consumer.is_empty()) {
            return r.err("group PEL entry without a consumer");
        }
        if s.groups.insert(name, g).is_some() {
            return r.err("duplicate consumer group");
        }
    }
    Ok(Some(Value::Stream(Box::new(s))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_round_trips_through_type_19() {
        let mut s = Stream::new(4096, 3);
        for i in 1..=10u64 {
            let v = i.to_string();
            if i % 4 == 0 {
                s.append(StreamId::new(i, 0), &[(b"other", b"x\r\ny")]);
            } else {
                s.append(StreamId::new(i, 0), &[(b"f", v.as_bytes()), (b"n", b"-5")]);
            }
        }
        s.delete(StreamId::new(2, 0));
        s.delete(StreamId::new(7, 0));
        let mut g = Group::new(StreamId::new(5, 0), 4);
        for (id, c) in [(1, "alice"), (3, "bob"), (5, "alice")] {
            let id = StreamId::new(id, 0);
            g.pel.insert(
                id,
                Nack {
                    delivery_time: 1000 + id.ms,
                    delivery_count: id.ms,
                    consumer: c.as_bytes().to_vec(),
                },
            );
            g.consumer(c.as_bytes(), 77).0.pel.insert(id);
        }
        g.consumer(b"idle", 88);
        s.groups.insert(b"g".to_vec(), g);
        s.groups
            .insert(b"h".to_vec(), Group::new(StreamId::MIN, -1));
        let mut out = Vec::new();
        write_stream(&mut out, &s, false);
        let enc = EncCfg {
            stream_node_max_entries: 3,
            ..EncCfg::default()
        };
        let mut r = Reader::new(&out);
        let Some(Value::Stream(back)) = read_stream(&mut r, 19, &enc).unwrap() else {
            panic!("not a stream")
        };
        assert!(r.is_empty());
        assert_eq!(*back, s);
        // The same stream as Redis 5/6 wrote it (type 15: no first ID,
        // max deleted ID, entries-added or entries-read).
        let mut old = Vec::new();
        write_len(&mut old, s.nodes.len() as u64);
        write_stream_nodes(&mut old, &s, 0, s.nodes.len(), false);
        write_len(&mut old, s.length);
        write_len(&mut old, s.last_id.ms);
        write_len(&mut old, s.last_id.seq);
        write_len(&mut old, 0); // no groups
        let mut r = Reader::new(&old);
        let Some(Value::Stream(v15)) = read_stream(&mut r, 15, &enc).unwrap() else {
            panic!("not a stream")
        };
        assert!(r.is_empty());
        assert_eq!(v15.all(), s.all());
        assert_eq!(v15.first_id, StreamId::new(1, 0));
        assert_eq!(v15.entries_added, 8);
        // A last ID below the entries is refused.
        let mut bad = Vec::new();
        write_len(&mut bad, s.nodes.len() as u64);
        write_stream_nodes(&mut bad, &s, 0, s.nodes.len(), false);
        write_len(&mut bad, s.length);
        write_len(&mut bad, 1);
        write_len(&mut bad, 0);
        write_len(&mut bad, 0);
        assert!(read_stream(&mut Reader::new(&bad), 15, &enc).is_err());
        // Truncations never panic and are refused; flipped bytes never
        // panic (and what loads is usable).
        for n in 0..out.len() {
            let mut r = Reader::new(&out[..n]);
            assert!(read_stream(&mut r, 19, &enc).is_err() || !r.is_empty());
        }
        for i in 0..out.len() {
            for x in [0x01u8, 0x80, 0xFF] {
                let mut m = out.clone();
                m[i] ^= x;
                if let Ok(Some(Value::Stream(mut v))) = read_stream(&mut Reader::new(&m), 19, &enc)
                {
                    let _ = v.all();
                    let next = v.last_id.incr().unwrap_or(StreamId::MAX);
                    if next > v.last_id {
                        v.append(next, &[(b"a", b"b")]);
                    }
                    v.trim(crate::types::stream::Trim::MaxLen(1), false, 0);
                }
            }
        }
    }
}
