//! Keyspace notifications: the event classes of `notify-keyspace-events`
//! and their parsing and printing as Redis 7.0 does them.
//!
//! Commands record events on the keyspace ([`crate::shard::keyspace::Keyspace::notify`]);
//! the shard publishes them after the command on `__keyspace@<db>__:<key>`
//! (message: the event) and `__keyevent@<db>__:<event>` (message: the key)
//! through the ordinary Pub/Sub path, so subscribers on any shard get them.

/// `K`: publish on `__keyspace@<db>__:<key>`.
pub const KEYSPACE: u32 = 1 << 0;
/// `E`: publish on `__keyevent@<db>__:<event>`.
pub const KEYEVENT: u32 = 1 << 1;
/// `g`: generic commands (DEL, EXPIRE, RENAME, ...).
pub const GENERIC: u32 = 1 << 2;
/// `$`: string commands.
pub const STRING: u32 = 1 << 3;
/// `l`: list commands.
pub const LIST: u32 = 1 << 4;
/// `s`: set commands.
pub const SET: u32 = 1 << 5;
/// `h`: hash commands.
pub const HASH: u32 = 1 << 6;
/// `z`: sorted set commands.
pub const ZSET: u32 = 1 << 7;
/// `x`: a key expired.
pub const EXPIRED: u32 = 1 << 8;
/// `e`: a key was evicted.
pub const EVICTED: u32 = 1 << 9;
/// `t`: stream commands.
pub const STREAM: u32 = 1 << 10;
/// `m`: a read found no key (not part of `A`).
pub const KEY_MISS: u32 = 1 << 11;
/// `d`: module events (none in ringkv; accepted for compatibility).
pub const MODULE: u32 = 1 << 12;
/// `n`: a key was created (not part of `A`).
pub const NEW: u32 = 1 << 13;
/// `A`: every class but `m` and `n`.
pub const ALL: u32 =
    GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;

/// Parses a `notify-keyspace-events` value; None on a character that is
/// not a class.
pub fn parse(s: &str) -> Option<u32> {
    let mut f = 0;
    for c in s.chars() {
        f |= match c {
            'A' => ALL,
            'g' => GENERIC,
            '$' => STRING,
            'l' => LIST,
            's' => SET,
            'h' => HASH,
            'z' => ZSET,
            'x' => EXPIRED,
            'e' => EVICTED,
            'K' => KEYSPACE,
            'E' => KEYEVENT,
            't' => STREAM,
            'm' => KEY_MISS,
            'd' => MODULE,
            'n' => NEW,
            _ => return None,
        };
    }
    Some(f)
}

/// The value CONFIG GET shows, in Redis's order: `A` or the single classes
/// (with `n`, which `A` hides as Redis does), then `K`, `E` and `m`.
pub fn to_string(f: u32) -> String {
    render(f, false)
}

/// The value as stored: like [`to_string`] but it keeps `n` next to `A`,
/// so that parsing it again gives the same flags.
pub fn canonical(f: u32) -> String {
    render(f, true)
}

fn render(f: u32, keep_new: bool) -> String {
    let mut s = String::new();
    if f & ALL == ALL {
        s.push('A');
        if keep_new && f & NEW != 0 {
            s.push('n');
        }
    } else {
        for (bit, c) in [
            (GENERIC, 'g'),
            (STRING, '$'),
            (LIST, 'l'),
            (SET, 's'),
            (HASH, 'h'),
            (ZSET, 'z'),
            (EXPIRED, 'x'),
            (EVICTED, 'e'),
            (STREAM, 't'),
            (MODULE, 'd'),
            (NEW, 'n'),
        ] {
            if f & bit != 0 {
                s.push(c);
            }
        }
    }
    for (bit, c) in [(KEYSPACE, 'K'), (KEYEVENT, 'E'), (KEY_MISS, 'm')] {
        if f & bit != 0 {
            s.push(c);
        }
    }
    s
}

/// The flags the keyspace checks: zero unless events go somewhere (K or E)
/// so that a disabled configuration costs one test per event.
pub fn effective(f: u32) -> u32 {
    if f & (KEYSPACE | KEYEVENT) == 0 {
        0
    } else {
        f
    }
}

/// The error CONFIG SET gives for a bad value.
pub const BAD_CLASS: &str = "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_as_redis_prints_them() {
        for (input, shown) in [
            ("KEA", "AKE"),
            ("Kg", "gK"),
            ("g$lshzxetd", "A"),
            ("KEn", "nKE"),
            ("KEAmn", "AKEm"),
            ("E$lz", "$lzE"),
            ("Kd", "dK"),
            ("", ""),
        ] {
            assert_eq!(to_string(parse(input).unwrap()), shown, "{input}");
        }
        assert_eq!(parse("KEAQ"), None);
        let f = parse("KEAmn").unwrap();
        assert_eq!(parse(&canonical(f)), Some(f));
        assert_eq!(effective(parse("A").unwrap()), 0);
        assert_ne!(effective(parse("Ex").unwrap()), 0);
    }
}
