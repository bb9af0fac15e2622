//! The minimal HTTP/1.1 responder behind the `may` and thread-per-connection
//! HTTP anchors of `run-http.sh`: the same httparse loop corio's
//! `examples/http.rs` runs, without its limits and timeouts (they would only
//! cost the anchors). Answers `/plaintext` (and `/`) and `/json` with
//! TechEmpower's headers; every complete request in the buffer is answered,
//! and the replies of one read go out in one write (pipelining).

use std::io::{self, Read, Write};
use std::time::{SystemTime, UNIX_EPOCH};

/// Serves one connection until the peer closes or an error.
pub fn serve_conn<S: Read + Write>(mut stream: S) -> io::Result<()> {
    let mut buf = vec![0u8; 16 * 1024];
    let mut filled = 0;
    let mut out = Vec::with_capacity(16 * 1024);
    loop {
        let n = stream.read(&mut buf[filled..])?;
        if n == 0 {
            return Ok(());
        }
        filled += n;
        let mut start = 0;
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut req = httparse::Request::new(&mut headers);
            match req.parse(&buf[start..filled]) {
                Ok(httparse::Status::Complete(len)) => {
                    respond(req.path.unwrap_or("/"), &mut out);
                    start += len;
                }
                Ok(httparse::Status::Partial) => break,
                Err(_) => {
                    out.extend_from_slice(
                        b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                    stream.write_all(&out)?;
                    return Ok(());
                }
            }
        }
        if !out.is_empty() {
            stream.write_all(&out)?;
            out.clear();
        }
        buf.copy_within(start..filled, 0);
        filled -= start;
        if filled == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
    }
}

fn respond(path: &str, out: &mut Vec<u8>) {
    let (body, ctype): (&[u8], &str) = match path {
        "/" | "/plaintext" => (b"Hello, World!", "text/plain"),
        "/json" => (br#"{"message":"Hello, World!"}"#, "application/json"),
        _ => {
            out.extend_from_slice(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
            return;
        }
    };
    out.extend_from_slice(b"HTTP/1.1 200 OK\r\nServer: anchor\r\nDate: ");
    out.extend_from_slice(&date());
    out.extend_from_slice(b"\r\nContent-Type: ");
    out.extend_from_slice(ctype.as_bytes());
    out.extend_from_slice(b"\r\nContent-Length: ");
    out.extend_from_slice(body.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(body);
}

/// The Date header value, cached per second per thread.
fn date() -> [u8; 29] {
    use std::cell::Cell;
    thread_local! {
        static CACHE: Cell<(u64, [u8; 29])> = const { Cell::new((u64::MAX, [0; 29])) };
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    CACHE.with(|c| {
        let (at, text) = c.get();
        if at == now {
            return text;
        }
        let text = http_date(now);
        c.set((now, text));
        text
    })
}

/// RFC 7231 IMF-fixdate for `secs` since the epoch.
fn http_date(secs: u64) -> [u8; 29] {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil from days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let s = format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        d,
        MONTHS[(m - 1) as usize],
        y,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
    let mut out = [b' '; 29];
    out.copy_from_slice(&s.as_bytes()[..29]);
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn http_date_is_imf_fixdate() {
        assert_eq!(&super::http_date(784_111_777), b"Sun, 06 Nov 1994 08:49:37 GMT");
    }

    #[test]
    fn pipelined_requests_are_all_answered_in_order() {
        let mut conn = std::io::Cursor::new(Vec::new());
        let reqs = b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\nGET /json HTTP/1.1\r\nHost: x\r\n\r\n";
        struct Duplex<'a>(&'a [u8], &'a mut std::io::Cursor<Vec<u8>>, bool);
        impl std::io::Read for Duplex<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.2 {
                    return Ok(0);
                }
                self.2 = true;
                buf[..self.0.len()].copy_from_slice(self.0);
                Ok(self.0.len())
            }
        }
        impl std::io::Write for Duplex<'_> {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.1.write(b)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        super::serve_conn(Duplex(reqs, &mut conn, false)).unwrap();
        let text = String::from_utf8(conn.into_inner()).unwrap();
        let hello = text.find("Hello, World!").unwrap();
        let json = text.find(r#"{"message""#).unwrap();
        assert!(hello < json, "{text}");
    }
}
