//! The HTTP/1.1 wire format for examples/http.rs: framing a request (head by `httparse`, then a
//! `Content-Length` or chunked body) out of the bytes read so far, and writing a response.
//! Plain functions on byte slices; all I/O stays in the example's connection loop.

#![allow(dead_code)]

use httparse::Status;
use std::borrow::Cow;
use std::cell::Cell;
use std::mem::MaybeUninit;
use std::time::{SystemTime, UNIX_EPOCH};

/// Largest request head (request line and headers) accepted; more gets 431.
pub const MAX_HEAD: usize = 64 * 1024;
/// Largest request body accepted; more gets 413.
pub const MAX_BODY: usize = 1024 * 1024;
const MAX_HEADERS: usize = 64;

/// A complete request, borrowed from the connection's buffer (nothing is copied unless a
/// chunked body has to be joined).
pub struct Request<'a> {
    pub method: &'a str,
    /// The target without its `?query`.
    pub path: &'a str,
    pub http10: bool,
    /// Whether the connection may stay open after the reply (HTTP/1.1 unless `Connection: close`;
    /// HTTP/1.0 only with `Connection: keep-alive`).
    pub keep_alive: bool,
    pub body: Cow<'a, [u8]>,
}

pub enum Parsed<'a> {
    /// A request and how many bytes of the buffer it took.
    Complete(Request<'a>, usize),
    /// More bytes are needed. `head_done` once the head is in (only the body is missing);
    /// `expect_continue` if the client waits for `100 Continue` before sending that body.
    Incomplete { head_done: bool, expect_continue: bool },
}

/// A request refused with this status (400, 413 or 431); the connection is closed after it.
#[derive(Debug)]
pub struct Refused(pub u16);

/// Frames the first request in `buf`.
pub fn parse(buf: &[u8]) -> Result<Parsed<'_>, Refused> {
    if buf.is_empty() {
        return Ok(Parsed::Incomplete { head_done: false, expect_continue: false });
    }
    // httparse fills only as many header slots as the request has: no need to clear 64.
    let mut headers = [const { MaybeUninit::<httparse::Header>::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let head_len = match req.parse_with_uninit_headers(buf, &mut headers) {
        Ok(Status::Complete(n)) if n <= MAX_HEAD => n,
        Ok(Status::Complete(_)) | Err(httparse::Error::TooManyHeaders) => return Err(Refused(431)),
        Ok(Status::Partial) if buf.len() > MAX_HEAD => return Err(Refused(431)),
        Ok(Status::Partial) => return Ok(Parsed::Incomplete { head_done: false, expect_continue: false }),
        Err(_) => return Err(Refused(400)),
    };
    let http10 = req.version == Some(0);
    let (mut length, mut chunked, mut close, mut keep, mut expect_continue) =
        (None, false, false, false, false);
    for header in req.headers.iter() {
        let name = header.name;
        if name.eq_ignore_ascii_case("content-length") {
            let value = value(header);
            if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                return Err(Refused(400));
            }
            let n = value.parse::<usize>().map_err(|_| Refused(413))?; // digits only: too big
            if length.is_some_and(|l| l != n) {
                return Err(Refused(400));
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            if !value(header).eq_ignore_ascii_case("chunked") {
                return Err(Refused(400)); // only plain `chunked` is supported
            }
            chunked = true;
        } else if name.eq_ignore_ascii_case("connection") {
            for token in value(header).split(',').map(str::trim) {
                close |= token.eq_ignore_ascii_case("close");
                keep |= token.eq_ignore_ascii_case("keep-alive");
            }
        } else if name.eq_ignore_ascii_case("expect") {
            expect_continue = value(header).eq_ignore_ascii_case("100-continue");
        }
    }
    if chunked && length.is_some() {
        return Err(Refused(400)); // ambiguous framing (request smuggling)
    }
    let rest = &buf[head_len..];
    let incomplete = Parsed::Incomplete { head_done: true, expect_continue };
    let (body, body_len) = if chunked {
        match decode_chunked(rest)? {
            Some((body, len)) => (Cow::Owned(body), len),
            None if rest.len() > 2 * MAX_BODY => return Err(Refused(413)), // chunk overhead
            None => return Ok(incomplete),
        }
    } else {
        let n = length.unwrap_or(0);
        if n > MAX_BODY {
            return Err(Refused(413));
        }
        if rest.len() < n {
            return Ok(incomplete);
        }
        (Cow::Borrowed(&rest[..n]), n)
    };
    let target = req.path.unwrap_or("/");
    let request = Request {
        method: req.method.unwrap_or(""),
        path: target.bytes().position(|b| b == b'?').map_or(target, |query| &target[..query]),
        http10,
        keep_alive: if http10 { keep && !close } else { !close },
        body,
    };
    Ok(Parsed::Complete(request, head_len + body_len))
}

/// A header's value as trimmed text ("" if it is not UTF-8).
fn value<'a>(header: &httparse::Header<'a>) -> &'a str {
    std::str::from_utf8(header.value).unwrap_or("").trim()
}

/// Decodes a whole chunked body (and its trailers) from the start of `buf`: the body and the
/// bytes it took, or `None` if it is not all there yet.
fn decode_chunked(buf: &[u8]) -> Result<Option<(Vec<u8>, usize)>, Refused> {
    let mut body = Vec::new();
    let mut pos = 0;
    loop {
        let (line, size) = match httparse::parse_chunk_size(&buf[pos..]) {
            Ok(Status::Complete(found)) => found,
            Ok(Status::Partial) => return Ok(None),
            Err(_) => return Err(Refused(400)),
        };
        pos += line;
        if size == 0 {
            let mut trailers = [httparse::EMPTY_HEADER; 16];
            return match httparse::parse_headers(&buf[pos..], &mut trailers) {
                Ok(Status::Complete((n, _))) => Ok(Some((body, pos + n))),
                Ok(Status::Partial) => Ok(None),
                Err(_) => Err(Refused(400)),
            };
        }
        if size > (MAX_BODY - body.len()) as u64 {
            return Err(Refused(413));
        }
        let end = pos + size as usize;
        if buf.len() < end + 2 {
            return Ok(None);
        }
        if &buf[end..end + 2] != b"\r\n" {
            return Err(Refused(400));
        }
        body.extend_from_slice(&buf[pos..end]);
        pos = end + 2;
    }
}

/// A reply: status, `Content-Type` and body (`Content-Length` is computed), and for 405 the
/// `Allow` header. The body is borrowed when it can be (a constant, the request's own body).
pub struct Response<'a> {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Cow<'a, [u8]>,
    pub allow: Option<&'static str>,
}

impl<'a> Response<'a> {
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Cow<'a, [u8]>>) -> Response<'a> {
        Response { status, content_type, body: body.into(), allow: None }
    }

    /// A short plain-text reply carrying the status's reason phrase.
    pub fn status(status: u16) -> Response<'static> {
        Response::new(status, "text/plain", reason_line(status).as_bytes())
    }
}

/// Appends `response` to `out`, with the Server, Date (`date`, from [`date`]) and Connection
/// headers. Plain byte appends rather than `write!`: this runs once per request, and formatting
/// machinery would be a visible share of a small reply's cost.
pub fn write_response(
    out: &mut Vec<u8>,
    response: &Response,
    date: &[u8; 29],
    http10: bool,
    keep_alive: bool,
) {
    if response.status == 200 {
        out.extend_from_slice(b"HTTP/1.1 200 OK"); // nearly every reply: no digits to format
    } else {
        out.extend_from_slice(b"HTTP/1.1 ");
        push_decimal(out, response.status.into());
        out.push(b' ');
        out.extend_from_slice(reason(response.status).as_bytes());
    }
    out.extend_from_slice(b"\r\nServer: corio\r\nDate: ");
    out.extend_from_slice(date);
    out.extend_from_slice(b"\r\nContent-Type: ");
    out.extend_from_slice(response.content_type.as_bytes());
    out.extend_from_slice(b"\r\nContent-Length: ");
    push_decimal(out, response.body.len());
    out.extend_from_slice(b"\r\n");
    if let Some(methods) = response.allow {
        out.extend_from_slice(b"Allow: ");
        out.extend_from_slice(methods.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if http10 {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&response.body);
}

/// Appends `n` in decimal.
fn push_decimal(out: &mut Vec<u8>, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// The reason phrase and a newline: the body of a short status reply.
fn reason_line(status: u16) -> &'static str {
    match status {
        400 => "Bad Request\n",
        403 => "Forbidden\n",
        404 => "Not Found\n",
        405 => "Method Not Allowed\n",
        413 => "Content Too Large\n",
        431 => "Request Header Fields Too Large\n",
        _ => "Internal Server Error\n",
    }
}

pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        _ => "Internal Server Error",
    }
}

/// The `Content-Type` for a file name's extension.
pub fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, ext)| ext.to_ascii_lowercase()).as_deref() {
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("css") => "text/css",
        Some("js") => "text/javascript",
        Some("json") => "application/json",
        Some("txt") => "text/plain; charset=utf-8",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("svg") => "image/svg+xml",
        _ => "application/octet-stream",
    }
}

/// The current `Date` header value, formatted at most once a second per thread. A clock read
/// costs about as much as writing a small reply, so the connection loop reads it once per batch
/// of pipelined requests, not once per reply.
pub fn date() -> [u8; 29] {
    thread_local!(static DATE: Cell<(u64, [u8; 29])> = const { Cell::new((u64::MAX, [0; 29])) });
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    DATE.with(|cache| {
        let (at, text) = cache.get();
        if at == now {
            return text;
        }
        let mut text = [0; 29];
        text.copy_from_slice(http_date(now).as_bytes()); // IMF-fixdate is always 29 bytes
        cache.set((now, text));
        text
    })
}

/// IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) for seconds since the Unix epoch.
pub fn http_date(secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]; // 1970-01-01: Thu
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let (days, s) = (secs / 86400, secs % 86400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        s / 3600,
        s % 3600 / 60,
        s % 60
    )
}
