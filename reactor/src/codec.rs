//! Frame decoders: the handlers that sit in front of the business handler in a
//! [`Pipeline`](crate::Pipeline) and turn a byte stream into frames (Netty's
//! `LineBasedFrameDecoder` and `LengthFieldBasedFrameDecoder`).
//!
//! A decoder receives whatever bytes one `read(2)` returned (any split of the stream) and fires
//! one [`Handler::read`] per complete frame to the next handler, or
//! [`Handler::error`] with a [`FrameTooLong`] for a frame above its limit.
//!
//! # Invariants
//!
//! - **Split-independence**: any split of the same byte stream into reads yields the same frames
//!   and errors, in the same order (property-tested below).
//! - **Bounded memory**: a decoder buffers at most one partial frame, and never more than its
//!   limit (plus a 2-byte line terminator or the length field) per connection; a too-long frame
//!   is reported as soon as the limit is exceeded (fail fast) and its bytes are discarded, not
//!   buffered.
//! - **Zero copy when possible**: frames that lie whole inside one read are handed on as slices
//!   of the loop's shared read buffer; only the partial frame at the end of a read is copied into
//!   the decoder's own buffer, which is released when it grows beyond 4 KiB and empties again.
//! - After a too-long frame the decoder resynchronises (a line decoder at the next `\n`, a
//!   length-field decoder after skipping the announced length), so a handler that does not
//!   close the connection keeps receiving frames.

use crate::handler::{Handler, HandlerContext};
use std::fmt;
use std::io;

/// A decoder's buffer larger than this is freed when it empties, so an idle connection does not
/// keep the memory of its largest frame.
const RETAIN: usize = 4 * 1024;

/// The error a decoder fires (as the inner error of an [`io::ErrorKind::InvalidData`]
/// `io::Error`) when a frame exceeds its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameTooLong {
    /// The decoder's maximum frame length in bytes.
    pub limit: usize,
}

impl fmt::Display for FrameTooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "frame longer than {} bytes", self.limit)
    }
}

impl std::error::Error for FrameTooLong {}

impl FrameTooLong {
    /// Is `err` a `FrameTooLong` fired by a decoder?
    pub fn is(err: &io::Error) -> bool {
        err.get_ref().is_some_and(|inner| inner.is::<FrameTooLong>())
    }

    fn into_io(self) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, self)
    }
}

/// Position of the first `byte` in `data` (libc `memchr`, as std's `BufRead::read_until` uses).
fn find_byte(byte: u8, data: &[u8]) -> Option<usize> {
    // SAFETY: `data` is a valid slice of `data.len()` readable bytes; memchr reads only those
    // and returns either null or a pointer into them.
    let found = unsafe { libc::memchr(data.as_ptr().cast(), byte.into(), data.len()) };
    (!found.is_null()).then(|| found as usize - data.as_ptr() as usize)
}

fn release_if_large(buf: &mut Vec<u8>) {
    buf.clear();
    if buf.capacity() > RETAIN {
        *buf = Vec::new();
    }
}

/// Splits the stream at `\n` (a preceding `\r` is stripped too) and fires each line, without
/// its terminator. A line longer than `max_len` bytes (terminator excluded) fires a
/// [`FrameTooLong`] error instead; it is detected as soon as `max_len + 2` bytes arrived without
/// a `\n`, and the rest of that line is discarded.
#[derive(Debug)]
pub struct LineDecoder {
    max_len: usize,
    partial: Vec<u8>,
    discarding: bool,
}

impl LineDecoder {
    /// A line decoder accepting lines of up to `max_len` bytes.
    pub fn new(max_len: usize) -> LineDecoder {
        LineDecoder { max_len, partial: Vec::new(), discarding: false }
    }

    /// Bytes of an incomplete line held right now.
    pub fn buffered(&self) -> usize {
        self.partial.len()
    }

    /// Feeds `data`, calling `emit` with each complete line or error, in stream order.
    pub fn decode(&mut self, mut data: &[u8], mut emit: impl FnMut(Result<&[u8], FrameTooLong>)) {
        let too_long = FrameTooLong { limit: self.max_len };
        while !data.is_empty() {
            let newline = find_byte(b'\n', data);
            if self.discarding {
                match newline {
                    Some(i) => {
                        data = &data[i + 1..];
                        self.discarding = false;
                        continue;
                    }
                    None => return,
                }
            }
            let Some(i) = newline else {
                // No terminator yet: buffer, unless the line is already certainly too long
                // (`max_len` bytes plus a possible `\r` fit; one more byte does not).
                if self.partial.len() + data.len() > self.max_len + 1 {
                    release_if_large(&mut self.partial);
                    self.discarding = true;
                    emit(Err(too_long));
                } else {
                    self.partial.extend_from_slice(data);
                }
                return;
            };
            let mut line = if self.partial.is_empty() {
                &data[..i] // the whole line is in this read: no copy
            } else {
                self.partial.extend_from_slice(&data[..i]);
                &self.partial[..]
            };
            if let [head @ .., b'\r'] = line {
                line = head;
            }
            emit(if line.len() > self.max_len { Err(too_long) } else { Ok(line) });
            release_if_large(&mut self.partial);
            data = &data[i + 1..];
        }
    }
}

impl Handler for LineDecoder {
    fn read(&mut self, ctx: &mut HandlerContext<'_>, data: &[u8]) {
        self.decode(data, |frame| match frame {
            Ok(line) => ctx.fire_read(line),
            Err(err) => ctx.fire_error(&err.into_io()),
        });
    }
}

/// Decodes frames prefixed by a big-endian unsigned length field of 1, 2, 4 or 8 bytes giving
/// the payload length, and fires each payload (the length field stripped). A payload longer
/// than `max_len` fires a [`FrameTooLong`] error as soon as its header arrives; its bytes are
/// then skipped without being buffered.
#[derive(Debug)]
pub struct LengthFieldDecoder {
    field_len: usize,
    max_len: usize,
    /// The header and payload received so far of a frame split across reads.
    partial: Vec<u8>,
    /// Bytes of a too-long frame still to skip.
    skip: u64,
}

impl LengthFieldDecoder {
    /// A decoder for a `field_len`-byte length prefix (1, 2, 4 or 8) and payloads of up to
    /// `max_len` bytes.
    ///
    /// # Panics
    ///
    /// If `field_len` is not 1, 2, 4 or 8.
    pub fn new(field_len: usize, max_len: usize) -> LengthFieldDecoder {
        assert!(matches!(field_len, 1 | 2 | 4 | 8), "length field must be 1, 2, 4 or 8 bytes");
        LengthFieldDecoder { field_len, max_len, partial: Vec::new(), skip: 0 }
    }

    /// Appends `payload` to `out` with its length prefix (the matching encoder).
    ///
    /// # Panics
    ///
    /// If the payload's length does not fit in the length field.
    pub fn encode(&self, payload: &[u8], out: &mut Vec<u8>) {
        let len = payload.len() as u64;
        assert!(self.field_len == 8 || len >> (8 * self.field_len) == 0, "payload too long for field");
        out.extend_from_slice(&len.to_be_bytes()[8 - self.field_len..]);
        out.extend_from_slice(payload);
    }

    fn length(&self, header: &[u8]) -> u64 {
        header[..self.field_len].iter().fold(0, |acc, &b| acc << 8 | u64::from(b))
    }

    /// Feeds `data`, calling `emit` with each complete payload or error, in stream order.
    pub fn decode(&mut self, mut data: &[u8], mut emit: impl FnMut(Result<&[u8], FrameTooLong>)) {
        let field = self.field_len;
        loop {
            if self.skip > 0 {
                let n = self.skip.min(data.len() as u64);
                data = &data[n as usize..];
                self.skip -= n;
                if self.skip > 0 {
                    return;
                }
            }
            if data.is_empty() {
                return;
            }
            if self.partial.is_empty() && data.len() >= field {
                // Fast path: the header is in this read; hand on the payload if it is too.
                let len = self.length(data);
                if len > self.max_len as u64 {
                    emit(Err(FrameTooLong { limit: self.max_len }));
                    self.skip = len;
                    data = &data[field..];
                    continue;
                }
                let end = field + len as usize;
                if data.len() >= end {
                    emit(Ok(&data[field..end]));
                    data = &data[end..];
                    continue;
                }
                self.partial.extend_from_slice(data);
                return;
            }
            // Slow path: complete the header, then the payload, in `partial`.
            if self.partial.len() < field {
                let n = (field - self.partial.len()).min(data.len());
                self.partial.extend_from_slice(&data[..n]);
                data = &data[n..];
                if self.partial.len() < field {
                    return;
                }
            }
            let len = self.length(&self.partial);
            if len > self.max_len as u64 {
                emit(Err(FrameTooLong { limit: self.max_len }));
                self.skip = len;
                release_if_large(&mut self.partial);
                continue;
            }
            let end = field + len as usize;
            let n = (end - self.partial.len()).min(data.len());
            self.partial.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.partial.len() < end {
                return;
            }
            emit(Ok(&self.partial[field..]));
            release_if_large(&mut self.partial);
        }
    }
}

impl Handler for LengthFieldDecoder {
    fn read(&mut self, ctx: &mut HandlerContext<'_>, data: &[u8]) {
        self.decode(data, |frame| match frame {
            Ok(payload) => ctx.fire_read(payload),
            Err(err) => ctx.fire_error(&err.into_io()),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    type Frames = Vec<Result<Vec<u8>, FrameTooLong>>;

    fn feed(mut decode: impl FnMut(&[u8], &mut Frames), stream: &[u8], cuts: &[usize]) -> Frames {
        let mut out = Vec::new();
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
        cuts.sort_unstable();
        let mut start = 0;
        for cut in cuts.into_iter().chain([stream.len()]) {
            decode(&stream[start..cut], &mut out);
            start = cut;
        }
        out
    }

    fn lines(max: usize, stream: &[u8], cuts: &[usize]) -> Frames {
        let mut dec = LineDecoder::new(max);
        feed(|d, out| dec.decode(d, |f| out.push(f.map(<[u8]>::to_vec))), stream, cuts)
    }

    fn fields(field: usize, max: usize, stream: &[u8], cuts: &[usize]) -> Frames {
        let mut dec = LengthFieldDecoder::new(field, max);
        feed(|d, out| dec.decode(d, |f| out.push(f.map(<[u8]>::to_vec))), stream, cuts)
    }

    #[test]
    fn lines_basics() {
        let too_long = || Err(FrameTooLong { limit: 4 });
        let ok = |s: &str| Ok(s.as_bytes().to_vec());
        assert_eq!(lines(4, b"ab\ncd\r\n\n\r\nxy", &[]), vec![ok("ab"), ok("cd"), ok(""), ok("")]);
        // Exactly at the limit, with either terminator; one byte over.
        assert_eq!(
            lines(4, b"abcd\nabcd\r\nabcde\nz\n", &[]),
            vec![ok("abcd"), ok("abcd"), too_long(), ok("z")]
        );
        // Fail fast: reported before the newline arrives, the rest of the line is skipped.
        let mut dec = LineDecoder::new(4);
        let mut got = Vec::new();
        dec.decode(b"abcd\r", |f| got.push(f.map(<[u8]>::to_vec)));
        assert!(got.is_empty(), "max + \\r may still be a valid line");
        dec.decode(b"x", |f| got.push(f.map(<[u8]>::to_vec)));
        assert_eq!(got, vec![too_long()]);
        assert_eq!(dec.buffered(), 0);
        dec.decode(b"yyyyyyyyyy\nok\n", |f| got.push(f.map(<[u8]>::to_vec)));
        assert_eq!(got, vec![too_long(), ok("ok")]);
    }

    #[test]
    fn length_field_basics() {
        let dec = LengthFieldDecoder::new(2, 5);
        let mut stream = Vec::new();
        for payload in [&b"hello"[..], b"", b"toolong", b"x"] {
            dec.encode(payload, &mut stream);
        }
        let ok = |s: &[u8]| Ok(s.to_vec());
        let want = vec![ok(b"hello"), ok(b""), Err(FrameTooLong { limit: 5 }), ok(b"x")];
        assert_eq!(fields(2, 5, &stream, &[]), want);
        assert_eq!(fields(2, 5, &stream, &[1, 2, 3, 8, 9, 10, 12]), want);
        // A huge announced length is skipped, never buffered.
        let mut dec = LengthFieldDecoder::new(4, 16);
        let mut got = Vec::new();
        dec.decode(&[0x7f, 0, 0, 0, 1, 2, 3], |f| got.push(f.map(<[u8]>::to_vec)));
        assert_eq!(got, vec![Err(FrameTooLong { limit: 16 })]);
        assert_eq!(dec.partial.len(), 0);
    }

    fn line_stream() -> impl Strategy<Value = Vec<u8>> {
        // Few distinct bytes so that terminators, `\r\n` and long lines are all common.
        prop::collection::vec(prop::sample::select(vec![b'a', b'b', b'\r', b'\n', b'\n']), 0..400)
    }

    proptest! {
        #[test]
        fn line_decoder_is_split_independent(
            stream in line_stream(),
            cuts in prop::collection::vec(any::<usize>(), 0..40),
            max in 0usize..12,
        ) {
            let whole = lines(max, &stream, &[]);
            prop_assert_eq!(&lines(max, &stream, &cuts), &whole);
            // Byte by byte.
            let every: Vec<usize> = (0..stream.len()).collect();
            prop_assert_eq!(&lines(max, &stream, &every), &whole);
            // Matches a naive model when no line is too long.
            if whole.iter().all(Result::is_ok) {
                let mut model: Vec<&[u8]> = stream.split(|&b| b == b'\n').collect();
                model.pop(); // the unterminated tail is not a line
                let model: Frames =
                    model.iter().map(|l| Ok(l.strip_suffix(b"\r").unwrap_or(l).to_vec())).collect();
                prop_assert_eq!(whole, model);
            }
        }

        #[test]
        fn length_field_decoder_is_split_independent(
            payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 0..20),
            cuts in prop::collection::vec(any::<usize>(), 0..40),
            field in prop::sample::select(vec![1usize, 2, 4, 8]),
            max in 0usize..48,
        ) {
            let mut stream = Vec::new();
            for p in &payloads {
                LengthFieldDecoder::new(field, max).encode(p, &mut stream);
            }
            let want: Frames = payloads
                .iter()
                .map(|p| if p.len() > max { Err(FrameTooLong { limit: max }) } else { Ok(p.clone()) })
                .collect();
            prop_assert_eq!(&fields(field, max, &stream, &cuts), &want);
            let every: Vec<usize> = (0..stream.len()).collect();
            prop_assert_eq!(&fields(field, max, &stream, &every), &want);
        }
    }
}
