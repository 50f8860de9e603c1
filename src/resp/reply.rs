//! Reply encoder: writes RESP2 or RESP3 into a byte buffer.
//!
//! Command handlers never build reply trees; they append protocol bytes
//! straight into the connection's output buffer through [`Out`].

/// A reply sink bound to one protocol version.
pub struct Out<'a> {
    pub buf: &'a mut Vec<u8>,
    pub resp3: bool,
}

impl<'a> Out<'a> {
    pub fn new(buf: &'a mut Vec<u8>, resp3: bool) -> Self {
        Out { buf, resp3 }
    }

    #[inline]
    fn header(&mut self, tag: u8, n: i64) {
        self.buf.push(tag);
        let mut b = itoa::Buffer::new();
        self.buf.extend_from_slice(b.format(n).as_bytes());
        self.buf.extend_from_slice(b"\r\n");
    }

    /// `+OK`
    #[inline]
    pub fn ok(&mut self) {
        self.buf.extend_from_slice(b"+OK\r\n");
    }

    /// Writes `prefix`, then `text` with every CR and LF turned into a
    /// space (as Redis does for error texts), then CRLF. Every status and
    /// error line goes through here, so user input echoed in a message
    /// (an unknown command's arguments, a bad config value, ...) can never
    /// end the line early and desynchronize the client's reply stream.
    fn line(&mut self, prefix: &[u8], text: &[u8]) {
        self.buf.extend_from_slice(prefix);
        let start = self.buf.len();
        self.buf.extend_from_slice(text);
        if memchr::memchr2(b'\r', b'\n', text).is_some() {
            for c in &mut self.buf[start..] {
                if *c == b'\r' || *c == b'\n' {
                    *c = b' ';
                }
            }
        }
        self.buf.extend_from_slice(b"\r\n");
    }

    /// A status line (`+...`); CR/LF in the text become spaces.
    pub fn simple(&mut self, s: &str) {
        self.line(b"+", s.as_bytes());
    }

    /// An error line. `msg` is the full text after `-`, e.g. `ERR syntax error`
    /// or `WRONGTYPE ...`. CR/LF inside are replaced by spaces as Redis does.
    pub fn error(&mut self, msg: &str) {
        self.line(b"-", msg.as_bytes());
    }

    /// `-ERR <msg>` (CR/LF in `msg` become spaces).
    pub fn err(&mut self, msg: &str) {
        self.line(b"-ERR ", msg.as_bytes());
    }

    #[inline]
    pub fn int(&mut self, n: i64) {
        self.header(b':', n);
    }

    #[inline]
    pub fn bulk(&mut self, data: &[u8]) {
        self.header(b'$', data.len() as i64);
        self.buf.extend_from_slice(data);
        self.buf.extend_from_slice(b"\r\n");
    }

    /// A bulk string holding the decimal form of `n`.
    pub fn bulk_int(&mut self, n: i64) {
        let mut b = itoa::Buffer::new();
        self.bulk(b.format(n).as_bytes());
    }

    /// The null bulk string (`$-1` in RESP2, `_` in RESP3).
    #[inline]
    pub fn null(&mut self) {
        if self.resp3 {
            self.buf.extend_from_slice(b"_\r\n");
        } else {
            self.buf.extend_from_slice(b"$-1\r\n");
        }
    }

    /// The null array (`*-1` in RESP2, `_` in RESP3).
    pub fn null_array(&mut self) {
        if self.resp3 {
            self.buf.extend_from_slice(b"_\r\n");
        } else {
            self.buf.extend_from_slice(b"*-1\r\n");
        }
    }

    #[inline]
    pub fn array(&mut self, n: usize) {
        self.header(b'*', n as i64);
    }

    /// A map of `n` pairs (`%` in RESP3, a flat array of 2n in RESP2).
    pub fn map(&mut self, n: usize) {
        if self.resp3 {
            self.header(b'%', n as i64);
        } else {
            self.header(b'*', 2 * n as i64);
        }
    }

    /// A set of `n` members (`~` in RESP3, an array in RESP2).
    pub fn set(&mut self, n: usize) {
        if self.resp3 {
            self.header(b'~', n as i64);
        } else {
            self.header(b'*', n as i64);
        }
    }

    /// A push frame (`>` in RESP3, an array in RESP2).
    pub fn push(&mut self, n: usize) {
        if self.resp3 {
            self.header(b'>', n as i64);
        } else {
            self.header(b'*', n as i64);
        }
    }

    /// A double (`,` in RESP3, a bulk string in RESP2), formatted as Redis
    /// formats doubles in replies (%.17g shortest round-trip form).
    pub fn double(&mut self, d: f64) {
        let s = crate::util::fmt_double(d);
        if self.resp3 {
            self.buf.push(b',');
            self.buf.extend_from_slice(s.as_bytes());
            self.buf.extend_from_slice(b"\r\n");
        } else {
            self.bulk(s.as_bytes());
        }
    }

    /// A boolean (`#t`/`#f` in RESP3, `:1`/`:0` in RESP2).
    pub fn boolean(&mut self, b: bool) {
        if self.resp3 {
            self.buf
                .extend_from_slice(if b { b"#t\r\n" } else { b"#f\r\n" });
        } else {
            self.int(b as i64);
        }
    }

    /// Verbatim text (`=` with a `txt:` prefix in RESP3, bulk in RESP2).
    pub fn verbatim(&mut self, text: &[u8]) {
        if self.resp3 {
            self.header(b'=', text.len() as i64 + 4);
            self.buf.extend_from_slice(b"txt:");
            self.buf.extend_from_slice(text);
            self.buf.extend_from_slice(b"\r\n");
        } else {
            self.bulk(text);
        }
    }

    /// Raw pre-encoded protocol bytes.
    pub fn raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    // Common errors, with Redis 7.0's exact texts.
    pub fn wrongtype(&mut self) {
        self.error("WRONGTYPE Operation against a key holding the wrong kind of value");
    }
    pub fn syntax(&mut self) {
        self.err("syntax error");
    }
    pub fn not_int(&mut self) {
        self.err("value is not an integer or out of range");
    }
    pub fn not_float(&mut self) {
        self.err("value is not a valid float");
    }
    pub fn wrong_arity(&mut self, name: &str) {
        self.err(&format!(
            "wrong number of arguments for '{}' command",
            name.to_ascii_lowercase()
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_resp2_and_resp3() {
        let mut v = Vec::new();
        let mut o = Out::new(&mut v, false);
        o.null();
        o.map(1);
        o.double(1.5);
        o.boolean(true);
        assert_eq!(v, b"$-1\r\n*2\r\n$3\r\n1.5\r\n:1\r\n");
        let mut v = Vec::new();
        let mut o = Out::new(&mut v, true);
        o.null();
        o.map(1);
        o.double(1.5);
        o.boolean(false);
        assert_eq!(v, b"_\r\n%1\r\n,1.5\r\n#f\r\n");
    }

    #[test]
    fn errors_lose_newlines() {
        let mut v = Vec::new();
        Out::new(&mut v, false).error("ERR a\r\nb");
        assert_eq!(v, b"-ERR a  b\r\n");
        v.clear();
        Out::new(&mut v, false).err("unknown command '\n return 1'");
        assert_eq!(v, b"-ERR unknown command '  return 1'\r\n");
        v.clear();
        Out::new(&mut v, false).simple("a\rb");
        assert_eq!(v, b"+a b\r\n");
    }
}
