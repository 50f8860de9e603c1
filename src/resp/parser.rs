//! Zero-copy RESP request parser.
//!
//! A request is parsed in place out of the receive buffer: the arguments are
//! slices into that buffer, collected in an arena (bumpalo) vector that is
//! reset once per batch. Only inline commands with quoting/escapes allocate,
//! and they allocate in the same arena.

use bumpalo::collections::Vec as BVec;
use bumpalo::Bump;

/// Longest inline command, and longest `*N`/`$N` header line (Redis's
/// PROTO_INLINE_MAX_SIZE).
pub const INLINE_MAX: usize = 64 * 1024;

/// Outcome of one parse attempt.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A complete request spanning `consumed` bytes; its arguments were
    /// pushed into the caller's vector (possibly none, for `*0`, `*-1` or a
    /// blank inline line: the caller just skips those bytes).
    Done { consumed: usize },
    /// More bytes are needed. `need` is a lower bound of the total buffered
    /// length at which a retry can make progress (0 when unknown).
    More { need: usize },
}

/// A protocol violation. The text follows `-ERR ` in the reply, and the
/// connection is closed after it, as Redis does.
pub type ProtoError = std::borrow::Cow<'static, str>;

/// Limits applied while parsing.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_bulk: i64,
    /// When false (AUTH required and not yet given), Redis refuses large
    /// multibulk counts and bulks before authentication.
    pub authenticated: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bulk: 512 * 1024 * 1024,
            authenticated: true,
        }
    }
}

/// Parses one request from the start of `buf`.
pub fn parse<'a>(
    buf: &'a [u8],
    bump: &'a Bump,
    args: &mut BVec<'a, &'a [u8]>,
    lim: Limits,
) -> Result<Parsed, ProtoError> {
    if buf.is_empty() {
        return Ok(Parsed::More { need: 0 });
    }
    if buf[0] == b'*' {
        parse_multibulk(buf, args, lim)
    } else {
        parse_inline(buf, bump, args)
    }
}

/// Parses a decimal integer the way Redis's string2ll does for protocol
/// headers (optional '-', digits only, no overflow).
fn header_int(s: &[u8]) -> Option<i64> {
    crate::util::parse_i64(s)
}

fn parse_multibulk<'a>(
    buf: &'a [u8],
    args: &mut BVec<'a, &'a [u8]>,
    lim: Limits,
) -> Result<Parsed, ProtoError> {
    let Some(nl) = memchr::memchr(b'\r', buf) else {
        if buf.len() > INLINE_MAX {
            return Err("Protocol error: too big mbulk count string".into());
        }
        return Ok(Parsed::More { need: 0 });
    };
    if nl > INLINE_MAX {
        return Err("Protocol error: too big mbulk count string".into());
    }
    if nl + 1 >= buf.len() {
        return Ok(Parsed::More { need: nl + 2 });
    }
    let count = match header_int(&buf[1..nl]) {
        Some(n) if n <= i32::MAX as i64 => n,
        _ => return Err("Protocol error: invalid multibulk length".into()),
    };
    if count > 10 && !lim.authenticated {
        return Err("Protocol error: unauthenticated multibulk length".into());
    }
    let mut pos = nl + 2;
    if count <= 0 {
        return Ok(Parsed::Done { consumed: pos });
    }
    let start_len = args.len();
    for _ in 0..count {
        if pos >= buf.len() {
            args.truncate(start_len);
            return Ok(Parsed::More { need: pos + 1 });
        }
        let rest = &buf[pos..];
        let Some(nl) = memchr::memchr(b'\r', rest) else {
            if rest.len() > INLINE_MAX {
                return Err("Protocol error: too big bulk count string".into());
            }
            args.truncate(start_len);
            return Ok(Parsed::More { need: 0 });
        };
        if nl > INLINE_MAX {
            return Err("Protocol error: too big bulk count string".into());
        }
        if rest[0] != b'$' {
            return Err(format!("Protocol error: expected '$', got '{}'", rest[0] as char).into());
        }
        if nl + 1 >= rest.len() {
            args.truncate(start_len);
            return Ok(Parsed::More { need: pos + nl + 2 });
        }
        let len = match header_int(&rest[1..nl]) {
            Some(n) if n >= 0 && n <= lim.max_bulk => n as usize,
            _ => return Err("Protocol error: invalid bulk length".into()),
        };
        if len > 16384 && !lim.authenticated {
            return Err("Protocol error: unauthenticated bulk length".into());
        }
        let data_start = pos + nl + 2;
        let end = data_start + len + 2;
        if end > buf.len() {
            args.truncate(start_len);
            return Ok(Parsed::More { need: end });
        }
        args.push(&buf[data_start..data_start + len]);
        pos = end;
    }
    Ok(Parsed::Done { consumed: pos })
}

fn parse_inline<'a>(
    buf: &'a [u8],
    bump: &'a Bump,
    args: &mut BVec<'a, &'a [u8]>,
) -> Result<Parsed, ProtoError> {
    let Some(nl) = memchr::memchr(b'\n', buf) else {
        if buf.len() > INLINE_MAX {
            return Err("Protocol error: too big inline request".into());
        }
        return Ok(Parsed::More { need: 0 });
    };
    if nl > INLINE_MAX {
        return Err("Protocol error: too big inline request".into());
    }
    let mut line = &buf[..nl];
    if line.last() == Some(&b'\r') {
        line = &line[..line.len() - 1];
    }
    split_args(line, bump, args).ok_or(std::borrow::Cow::Borrowed(
        "Protocol error: unbalanced quotes in request",
    ))?;
    Ok(Parsed::Done { consumed: nl + 1 })
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\n' | b'\r' | b'\t' | 0x0b | 0x0c)
}

fn hex_val(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Splits an inline line into arguments with the quoting rules of
/// redis-cli and Redis's inline protocol: bare words, "double quoted" with
/// backslash escapes (\n \r \t \b \a \\ \" \xHH) and 'single quoted' with
/// only \' escaped. A closing quote must be followed by a space or the end.
/// Returns None on unbalanced quotes.
pub fn split_args<'a>(line: &'a [u8], bump: &'a Bump, args: &mut BVec<'a, &'a [u8]>) -> Option<()> {
    let mut i = 0;
    let n = line.len();
    loop {
        while i < n && is_space(line[i]) {
            i += 1;
        }
        if i >= n {
            return Some(());
        }
        if line[i] != b'"' && line[i] != b'\'' {
            // Fast path: a bare word is a slice of the buffer, unless a quote
            // starts inside it (Redis allows foo"bar" forms).
            let start = i;
            while i < n && !is_space(line[i]) && line[i] != b'"' && line[i] != b'\'' {
                i += 1;
            }
            if i >= n || is_space(line[i]) {
                args.push(&line[start..i]);
                continue;
            }
            i = start;
        }
        let mut cur = BVec::new_in(bump);
        let mut inq = false; // inside "double quotes"
        let mut insq = false; // inside 'single quotes'
        loop {
            if inq {
                if i >= n {
                    return None;
                }
                if line[i] == b'\\'
                    && i + 3 < n
                    && line[i + 1] == b'x'
                    && hex_val(line[i + 2]).is_some()
                    && hex_val(line[i + 3]).is_some()
                {
                    cur.push(hex_val(line[i + 2])? * 16 + hex_val(line[i + 3])?);
                    i += 3;
                } else if line[i] == b'\\' && i + 1 < n {
                    i += 1;
                    cur.push(match line[i] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        c => c,
                    });
                } else if line[i] == b'"' {
                    if i + 1 < n && !is_space(line[i + 1]) {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(line[i]);
                }
            } else if insq {
                if i >= n {
                    return None;
                }
                if line[i] == b'\\' && i + 1 < n && line[i + 1] == b'\'' {
                    i += 1;
                    cur.push(b'\'');
                } else if line[i] == b'\'' {
                    if i + 1 < n && !is_space(line[i + 1]) {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(line[i]);
                }
            } else {
                if i >= n {
                    break;
                }
                match line[i] {
                    c if is_space(c) => break,
                    b'"' => inq = true,
                    b'\'' => insq = true,
                    c => cur.push(c),
                }
            }
            i += 1;
        }
        args.push(cur.into_bump_slice());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(input: &[u8]) -> (Result<Parsed, ProtoError>, Vec<Vec<u8>>) {
        let bump = Bump::new();
        let mut args = BVec::new_in(&bump);
        let r = parse(input, &bump, &mut args, Limits::default());
        let v = args.iter().map(|a| a.to_vec()).collect();
        (r, v)
    }

    #[test]
    fn multibulk_complete_and_partial() {
        let full = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
        let (r, a) = p(full);
        assert_eq!(
            r,
            Ok(Parsed::Done {
                consumed: full.len()
            })
        );
        assert_eq!(a, vec![b"GET".to_vec(), b"k".to_vec()]);
        for cut in 1..full.len() {
            let (r, a) = p(&full[..cut]);
            assert!(matches!(r, Ok(Parsed::More { .. })), "cut {cut}");
            assert!(a.is_empty());
        }
    }

    #[test]
    fn protocol_errors() {
        assert_eq!(
            p(b"*99999999999\r\n").0,
            Err("Protocol error: invalid multibulk length".into())
        );
        assert_eq!(
            p(b"*1\r\n$2147483648\r\n").0,
            Err("Protocol error: invalid bulk length".into())
        );
        assert_eq!(
            p(b"*1\r\n$-5\r\n").0,
            Err("Protocol error: invalid bulk length".into())
        );
        assert!(p(b"*1\r\nxx\r\n").0.is_err());
        assert_eq!(
            p(b"*abc\r\n").0,
            Err("Protocol error: invalid multibulk length".into())
        );
        assert_eq!(p(b"*-1\r\n").0, Ok(Parsed::Done { consumed: 5 }));
    }

    #[test]
    fn inline_quoting() {
        let (r, a) = p(b"set \"a b\\x41\" 'it\\'s'\r\n");
        assert!(matches!(r, Ok(Parsed::Done { .. })));
        assert_eq!(a, vec![b"set".to_vec(), b"a bA".to_vec(), b"it's".to_vec()]);
        assert_eq!(
            p(b"set \"foo bar\r\n").0,
            Err("Protocol error: unbalanced quotes in request".into())
        );
        let (r, a) = p(b"\r\n");
        assert_eq!(r, Ok(Parsed::Done { consumed: 2 }));
        assert!(a.is_empty());
    }

    #[test]
    fn huge_inline_refused() {
        let big = vec![b'a'; INLINE_MAX + 10];
        assert_eq!(
            p(&big).0,
            Err("Protocol error: too big inline request".into())
        );
    }
}
