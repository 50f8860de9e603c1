//! Small helpers shared by every layer: Redis-exact number parsing and
//! formatting, glob matching, key slots, clocks.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
#[inline]
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Microseconds since the Unix epoch.
#[inline]
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Parses a signed 64-bit integer exactly as Redis's `string2ll`: optional
/// '-', no '+', no spaces, no leading zeros, no overflow.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (neg, digits) = if s[0] == b'-' {
        (true, &s[1..])
    } else {
        (false, s)
    };
    if digits.is_empty() || !(b'1'..=b'9').contains(&digits[0]) {
        return None;
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    if neg {
        if v > i64::MAX as u64 + 1 {
            None
        } else {
            Some((v as i64).wrapping_neg())
        }
    } else if v > i64::MAX as u64 {
        None
    } else {
        Some(v as i64)
    }
}

/// Parses a float as Redis does for INCRBYFLOAT and scores (strtod over the
/// whole string, no leading space, NaN refused). "inf"/"+inf"/"-inf" accepted.
pub fn parse_f64(s: &[u8]) -> Option<f64> {
    if s.is_empty() || s.len() > 5000 || s[0].is_ascii_whitespace() {
        return None;
    }
    let st = std::str::from_utf8(s).ok()?;
    if st.ends_with(|c: char| c.is_ascii_whitespace()) {
        return None;
    }
    let lower = st.to_ascii_lowercase();
    let v = match lower.as_str() {
        "inf" | "+inf" | "infinity" | "+infinity" => f64::INFINITY,
        "-inf" | "-infinity" => f64::NEG_INFINITY,
        _ => {
            // Rust's parser rejects hex floats and accepts "nan"/"inf" forms
            // handled above; reject the textual NaN explicitly.
            if lower.contains("nan") {
                return None;
            }
            st.parse::<f64>().ok()?
        }
    };
    if v.is_nan() {
        None
    } else {
        Some(v)
    }
}

/// Formats like C's `%.17g`, Redis 7.0's format for doubles in replies.
pub fn fmt_double(d: f64) -> String {
    if d.is_nan() {
        return "nan".into();
    }
    if d.is_infinite() {
        return if d > 0.0 { "inf".into() } else { "-inf".into() };
    }
    fmt_g(d, 17)
}

/// C's `%.{prec}g`.
pub fn fmt_g(d: f64, prec: usize) -> String {
    if d == 0.0 {
        return if d.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let e = format!("{:.*e}", prec - 1, d);
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= prec as i32 {
        let mant = trim_frac(mant);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{}{:02}", mant, sign, exp.abs())
    } else {
        let decimals = (prec as i32 - 1 - exp).max(0) as usize;
        trim_frac(&format!("{:.*}", decimals, d)).to_string()
    }
}

fn trim_frac(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// Parses a SCAN cursor as Redis's `parseScanCursorOrReply` does: C's
/// strtoul over the whole argument, with no leading space. As strtoul, an
/// empty string reads as 0, a '+' is accepted and a '-' negates modulo 2^64.
pub fn parse_scan_cursor(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return Some(0);
    }
    let (neg, digits) = match s[0] {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    Some(if neg { v.wrapping_neg() } else { v })
}

/// Glob-style matching with Redis's `stringmatchlen` semantics: `*`, `?`,
/// `[abc]`, `[^a]`, `[a-z]`, and `\\` escapes (a trailing `\\` is a literal
/// backslash; an unterminated class ends at the pattern's end).
///
/// Every token but `*` consumes exactly one byte, so backtracking only
/// ever needs to resume at the most recent `*`: the match runs in
/// O(pattern x subject) steps whatever the pattern, where a naive
/// recursive matcher is exponential (`a*a*a*...b`). Redis's quirks are
/// kept: an empty subject matches only an empty pattern (Redis's callers
/// special-case the pattern `*`), and a pattern with more than 1000
/// non-trailing `*` groups matches nothing (Redis's nesting limit).
pub fn glob_match(pat: &[u8], s: &[u8], nocase: bool) -> bool {
    glob_match_counted(pat, s, nocase, &mut 0)
}

/// Redis's nesting limit: the star group that would recurse deeper fails.
const GLOB_MAX_STARS: usize = 1000;

/// [`glob_match`], adding the number of token comparisons made to `steps`
/// (for tests that bound the work on adversarial patterns).
pub fn glob_match_counted(pat: &[u8], s: &[u8], nocase: bool, steps: &mut u64) -> bool {
    if s.is_empty() {
        return pat.is_empty();
    }
    let (mut pi, mut si) = (0usize, 0usize);
    // Where to resume after a mismatch: the token after the last star
    // group, the subject position that star group has reached, and how
    // many star groups the pattern has up to there.
    let mut resume: Option<(usize, usize, usize)> = None;
    let mut stars = 0usize;
    loop {
        *steps += 1;
        if pi < pat.len() && pat[pi] == b'*' {
            while pi < pat.len() && pat[pi] == b'*' {
                pi += 1;
            }
            if pi == pat.len() {
                return true;
            }
            stars += 1;
            if stars > GLOB_MAX_STARS {
                return false;
            }
            resume = Some((pi, si, stars));
            continue;
        }
        if pi == pat.len() && si == s.len() {
            return true;
        }
        if si == s.len() {
            // The subject is used up: only trailing stars may remain
            // (Redis skips them after the byte that emptied the subject).
            return pat[pi..].iter().all(|&c| c == b'*');
        }
        if pi < pat.len() {
            if let Some(next) = glob_token(pat, pi, s[si], nocase) {
                pi = next;
                si += 1;
                continue;
            }
        }
        // Mismatch: let the last star swallow one more byte. A star group
        // never needs to try the empty tail, as what follows it is not
        // all stars and so needs at least one byte.
        match resume {
            Some((rp, rs, n)) if rs + 1 < s.len() => {
                resume = Some((rp, rs + 1, n));
                pi = rp;
                si = rs + 1;
                stars = n;
            }
            _ => return false,
        }
    }
}

/// Matches the one-byte token at `pat[pi]` (not `*`) against `c`: the
/// index of the next token, or None.
fn glob_token(pat: &[u8], pi: usize, c: u8, nocase: bool) -> Option<usize> {
    let eq = |a: u8, b: u8| {
        if nocase {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    match pat[pi] {
        b'?' => Some(pi + 1),
        b'[' => {
            let mut p = pi + 1;
            let not = pat.get(p) == Some(&b'^');
            if not {
                p += 1;
            }
            let mut matched = false;
            loop {
                if p >= pat.len() {
                    // Unterminated: the class runs to the pattern's end.
                    break;
                }
                if pat[p] == b'\\' && pat.len() - p >= 2 {
                    p += 1;
                    if pat[p] == c {
                        matched = true;
                    }
                } else if pat[p] == b']' {
                    break;
                } else if pat.len() - p >= 3 && pat[p + 1] == b'-' {
                    let (mut a, mut b) = (pat[p], pat[p + 2]);
                    if a > b {
                        std::mem::swap(&mut a, &mut b);
                    }
                    let mut x = c;
                    if nocase {
                        a = a.to_ascii_lowercase();
                        b = b.to_ascii_lowercase();
                        x = x.to_ascii_lowercase();
                    }
                    p += 2;
                    if x >= a && x <= b {
                        matched = true;
                    }
                } else if eq(pat[p], c) {
                    matched = true;
                }
                p += 1;
            }
            if matched != not {
                Some((p + 1).min(pat.len()))
            } else {
                None
            }
        }
        b'\\' if pat.len() - pi >= 2 => eq(pat[pi + 1], c).then_some(pi + 2),
        x => eq(x, c).then_some(pi + 1),
    }
}

/// CRC16-CCITT (XMODEM), the Redis Cluster key hash.
pub fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in data {
        crc ^= (b as u16) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The cluster slot of a key, honouring `{hash tags}`.
pub fn key_slot(key: &[u8]) -> u16 {
    let tagged = memchr::memchr(b'{', key).and_then(|s| {
        memchr::memchr(b'}', &key[s + 1..])
            .filter(|&len| len > 0)
            .map(|len| &key[s + 1..s + 1 + len])
    });
    crc16(tagged.unwrap_or(key)) & 0x3FFF
}

/// Case-insensitive ASCII comparison of an argument with a keyword.
#[inline]
pub fn eq_ic(a: &[u8], kw: &str) -> bool {
    a.eq_ignore_ascii_case(kw.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_integers() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-12"), Some(-12));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b"01"[..],
            b"-0",
            b"+1",
            b" 1",
            b"1 ",
            b"",
            b"9223372036854775808",
            b"1a",
        ] {
            assert_eq!(parse_i64(bad), None, "{:?}", bad);
        }
    }

    #[test]
    fn g17() {
        assert_eq!(fmt_double(1.5), "1.5");
        assert_eq!(fmt_double(3.0), "3");
        assert_eq!(fmt_double(0.1), "0.10000000000000001");
        assert_eq!(fmt_double(1e20), "1e+20");
        assert_eq!(fmt_double(-2.5e-7), "-2.4999999999999999e-07");
    }

    #[test]
    fn globs() {
        assert!(glob_match(b"h?llo", b"hello", false));
        assert!(glob_match(b"h*llo", b"heeeello", false));
        assert!(glob_match(b"h[ae]llo", b"hallo", false));
        assert!(!glob_match(b"h[^e]llo", b"hello", false));
        assert!(glob_match(b"h[a-b]llo", b"hbllo", false));
        // Redis: an empty subject matches only the empty pattern.
        assert!(!glob_match(b"*", b"", false));
        assert!(glob_match(b"", b"", false));
        assert!(glob_match(b"[a", b"a", false));
        assert!(!glob_match(b"a[", b"a", false));
        assert!(glob_match(b"\\", b"\\", false));
        assert!(glob_match(b"[\\", b"\\", false));
        assert!(glob_match(b"a[^", b"ab", false));
        assert!(glob_match(b"a\\*", b"a*", false));
        assert!(!glob_match(b"a\\*", b"ab", false));
        assert!(glob_match(b"FOO*", b"foobar", true));
    }

    /// Redis's matcher transcribed as plain recursion (exponential in
    /// the worst case): the reference the bounded matcher must agree with.
    fn reference_glob(mut p: &[u8], mut s: &[u8], nocase: bool, nesting: u32) -> bool {
        if nesting > 1000 {
            return false;
        }
        while !p.is_empty() && !s.is_empty() {
            if p[0] == b'*' {
                while p.len() > 1 && p[1] == b'*' {
                    p = &p[1..];
                }
                if p.len() == 1 {
                    return true;
                }
                while !s.is_empty() {
                    if reference_glob(&p[1..], s, nocase, nesting + 1) {
                        return true;
                    }
                    s = &s[1..];
                }
                return false;
            }
            match glob_token(p, 0, s[0], nocase) {
                Some(n) => {
                    p = &p[n..];
                    s = &s[1..];
                }
                None => return false,
            }
            if s.is_empty() {
                while p.first() == Some(&b'*') {
                    p = &p[1..];
                }
                break;
            }
        }
        p.is_empty() && s.is_empty()
    }

    #[test]
    fn glob_agrees_with_the_reference_on_random_inputs() {
        use rand::{Rng, SeedableRng};
        let seed: u64 = rand::random();
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let pat_chars = b"ab*?[]^-\\A";
        let subj_chars = b"ab-]\\A";
        for _ in 0..200_000 {
            let pl = rng.gen_range(0..10);
            let sl = rng.gen_range(0..12);
            let p: Vec<u8> = (0..pl)
                .map(|_| pat_chars[rng.gen_range(0..pat_chars.len())])
                .collect();
            let s: Vec<u8> = (0..sl)
                .map(|_| subj_chars[rng.gen_range(0..subj_chars.len())])
                .collect();
            let nocase = rng.gen_bool(0.2);
            assert_eq!(
                glob_match(&p, &s, nocase),
                reference_glob(&p, &s, nocase, 0),
                "seed {seed}: pattern {:?} subject {:?} nocase {nocase}",
                String::from_utf8_lossy(&p),
                String::from_utf8_lossy(&s),
            );
        }
    }

    #[test]
    fn glob_work_is_bounded_on_adversarial_patterns() {
        // The pattern that hung KEYS: exponential for a naive matcher.
        let subject = vec![b'a'; 40];
        let mut pat = b"a*".repeat(20);
        pat.push(b'b');
        let mut steps = 0;
        assert!(!glob_match_counted(&pat, &subject, false, &mut steps));
        let bound = ((pat.len() + 1) * (subject.len() + 1)) as u64;
        assert!(steps <= bound, "{steps} steps > {bound}");
        // Long inputs stay within pattern x subject.
        let subject = vec![b'a'; 100_000];
        let mut pat = b"*a".repeat(50);
        pat.extend_from_slice(b"*b");
        let mut steps = 0;
        assert!(!glob_match_counted(&pat, &subject, false, &mut steps));
        assert!(steps <= ((pat.len() + 1) * (subject.len() + 1)) as u64);
        // Redis's nesting limit: 1001 inner star groups never match,
        // 1000 do.
        let ok = b"*a".repeat(1000);
        assert!(glob_match(&ok, &vec![b'a'; 1000], false));
        let too_many = b"*a".repeat(1001);
        assert!(!glob_match(&too_many, &vec![b'a'; 1001], false));
    }

    #[test]
    fn slots() {
        assert_eq!(key_slot(b"123456789"), 0x31C3);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"foo{}{bar}"), crc16(b"foo{}{bar}") & 0x3FFF);
    }
}
