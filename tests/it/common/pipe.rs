//! A strict pipelined RESP client for tests: sends a batch of commands in
//! one write and reads back one whole reply per command (raw bytes).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Reads one whole RESP2/RESP3 reply into `out` strictly (CR/LF inside a
/// line, a bulk without its CRLF, a bad length: Err).
pub fn read_one_reply(r: &mut BufReader<TcpStream>, out: &mut Vec<u8>) -> Result<(), String> {
    let mut line = Vec::new();
    r.read_until(b'\n', &mut line)
        .map_err(|e| format!("read: {e}"))?;
    if line.len() < 3 || !line.ends_with(b"\r\n") {
        return Err(format!("bad line {:?}", String::from_utf8_lossy(&line)));
    }
    let body = &line[1..line.len() - 2];
    if body.contains(&b'\r') || body.contains(&b'\n') {
        return Err(format!("CR/LF inside {:?}", String::from_utf8_lossy(&line)));
    }
    out.extend_from_slice(&line);
    let num = || -> Result<i64, String> {
        std::str::from_utf8(body)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad length {:?}", String::from_utf8_lossy(body)))
    };
    match line[0] {
        b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => Ok(()),
        b'$' | b'=' | b'!' => {
            let n = num()?;
            if n < 0 {
                return Ok(());
            }
            let mut data = vec![0u8; n as usize + 2];
            r.read_exact(&mut data).map_err(|e| format!("read: {e}"))?;
            if !data.ends_with(b"\r\n") {
                return Err("bulk without CRLF".into());
            }
            out.extend_from_slice(&data);
            Ok(())
        }
        b'*' | b'~' | b'>' | b'%' => {
            let n = num()?;
            let n = if line[0] == b'%' { n * 2 } else { n };
            for _ in 0..n.max(0) {
                read_one_reply(r, out)?;
            }
            Ok(())
        }
        t => Err(format!("unknown reply type {:?}", t as char)),
    }
}

pub struct Pipe {
    w: TcpStream,
    r: BufReader<TcpStream>,
}

impl Pipe {
    pub fn connect(port: u16) -> Pipe {
        let w = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        w.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        w.set_nodelay(true).unwrap();
        let r = BufReader::new(w.try_clone().unwrap());
        Pipe { w, r }
    }

    /// Sends `cmds` in one write; one raw reply per command.
    pub fn pipeline<A: AsRef<[u8]>>(&mut self, cmds: &[Vec<A>]) -> Vec<Vec<u8>> {
        let mut buf = Vec::new();
        for c in cmds {
            let args: Vec<&[u8]> = c.iter().map(|a| a.as_ref()).collect();
            buf.extend(super::resp_cmd(&args));
        }
        self.w.write_all(&buf).expect("pipeline write");
        (0..cmds.len())
            .map(|i| {
                let mut out = Vec::new();
                read_one_reply(&mut self.r, &mut out)
                    .unwrap_or_else(|e| panic!("reply {i} of {}: {e}", cmds.len()));
                out
            })
            .collect()
    }

    /// One command; its raw reply as text.
    pub fn one(&mut self, args: &[&str]) -> String {
        let r = self.pipeline(&[args.to_vec()]);
        String::from_utf8_lossy(&r[0]).into_owned()
    }

    /// One command whose reply is an integer.
    pub fn int(&mut self, args: &[&str]) -> i64 {
        let r = self.one(args);
        r.strip_prefix(':')
            .and_then(|s| s.trim_end().parse().ok())
            .unwrap_or_else(|| panic!("{args:?}: not an integer reply: {r:?}"))
    }

    /// A field of INFO (all sections), as text.
    pub fn info_field(&mut self, field: &str) -> String {
        let r = self.one(&["INFO", "everything"]);
        r.lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .unwrap_or_else(|| panic!("INFO has no {field}"))
            .trim()
            .to_string()
    }

    /// A numeric INFO field.
    pub fn info_u64(&mut self, field: &str) -> u64 {
        let v = self.info_field(field);
        v.parse()
            .unwrap_or_else(|_| panic!("INFO {field} = {v:?} is not a number"))
    }
}
