//! Value representations.

pub mod hash;
pub mod hll;
pub mod list;
pub mod set;
pub mod stream;
pub mod zset;

/// Strings up to this length are "embstr" in Redis.
pub const EMBSTR_MAX: usize = 44;

/// A string value, in one of Redis's three encodings.
#[derive(Clone, Debug, PartialEq)]
pub enum Str {
    /// "int": a value that reads back as a 64-bit integer.
    Int(i64),
    /// "embstr": a short string created whole (SET of <= 44 bytes).
    Emb(Box<[u8]>),
    /// "raw": a long string, or one modified in place (APPEND, SETRANGE).
    Raw(Vec<u8>),
}

impl Str {
    /// Encodes a fresh value as Redis's `tryObjectEncoding` would.
    pub fn from_bytes(b: &[u8]) -> Str {
        if b.len() <= 20 {
            if let Some(n) = crate::util::parse_i64(b) {
                return Str::Int(n);
            }
        }
        if b.len() <= EMBSTR_MAX {
            Str::Emb(b.into())
        } else {
            Str::Raw(b.to_vec())
        }
    }

    /// Encodes an owned buffer (avoids a copy for long strings).
    pub fn from_vec(v: Vec<u8>) -> Str {
        if v.len() <= EMBSTR_MAX {
            Str::from_bytes(&v)
        } else {
            Str::Raw(v)
        }
    }

    /// The bytes of the value; integers are formatted into `tmp`.
    #[inline]
    pub fn as_bytes<'a>(&'a self, tmp: &'a mut itoa::Buffer) -> &'a [u8] {
        match self {
            Str::Int(n) => tmp.format(*n).as_bytes(),
            Str::Emb(b) => b,
            Str::Raw(v) => v,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Str::Int(n) => itoa::Buffer::new().format(*n).len(),
            Str::Emb(b) => b.len(),
            Str::Raw(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Converts to the raw encoding (as APPEND/SETRANGE do) and returns the
    /// buffer for in-place modification.
    pub fn make_raw(&mut self) -> &mut Vec<u8> {
        if !matches!(self, Str::Raw(_)) {
            let v = self.as_bytes(&mut itoa::Buffer::new()).to_vec();
            *self = Str::Raw(v);
        }
        match self {
            Str::Raw(v) => v,
            _ => unreachable!(),
        }
    }

    pub fn encoding(&self) -> &'static str {
        match self {
            Str::Int(_) => "int",
            Str::Emb(_) => "embstr",
            Str::Raw(_) => "raw",
        }
    }

    /// The value as an integer, if it is one (strictly, as Redis parses).
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Str::Int(n) => Some(*n),
            Str::Emb(b) => crate::util::parse_i64(b),
            Str::Raw(v) => crate::util::parse_i64(v),
        }
    }

    /// Approximate heap bytes held.
    pub fn heap_size(&self) -> usize {
        match self {
            Str::Int(_) => 0,
            Str::Emb(b) => b.len(),
            Str::Raw(v) => v.capacity(),
        }
    }
}

/// A stored value. Collections are boxed so a table entry stays small.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Str(Str),
    List(Box<list::List>),
    Hash(Box<hash::Hash>),
    Set(Box<set::Set>),
    ZSet(Box<zset::ZSet>),
    Stream(Box<stream::Stream>),
}

impl Value {
    /// The name TYPE reports.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::List(_) => "list",
            Value::Hash(_) => "hash",
            Value::Set(_) => "set",
            Value::ZSet(_) => "zset",
            Value::Stream(_) => "stream",
        }
    }

    /// The name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        match self {
            Value::Str(s) => s.encoding(),
            Value::List(v) => v.encoding(),
            Value::Hash(v) => v.encoding(),
            Value::Set(v) => v.encoding(),
            Value::ZSet(v) => v.encoding(),
            Value::Stream(v) => v.encoding(),
        }
    }

    pub fn heap_size(&self) -> usize {
        match self {
            Value::Str(s) => s.heap_size(),
            Value::List(v) => v.heap_size() + std::mem::size_of::<list::List>(),
            Value::Hash(v) => v.heap_size() + std::mem::size_of::<hash::Hash>(),
            Value::Set(v) => v.heap_size() + std::mem::size_of::<set::Set>(),
            Value::ZSet(v) => v.heap_size() + std::mem::size_of::<zset::ZSet>(),
            Value::Stream(v) => v.heap_size() + std::mem::size_of::<stream::Stream>(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_follow_redis() {
        assert_eq!(Str::from_bytes(b"123").encoding(), "int");
        assert_eq!(Str::from_bytes(b"0123").encoding(), "embstr");
        assert_eq!(Str::from_bytes(&[b'a'; 44]).encoding(), "embstr");
        assert_eq!(Str::from_bytes(&[b'a'; 45]).encoding(), "raw");
        let mut s = Str::from_bytes(b"12");
        s.make_raw().extend_from_slice(b"3");
        assert_eq!(s.encoding(), "raw");
        assert_eq!(s.as_bytes(&mut itoa::Buffer::new()), b"123");
    }
}
