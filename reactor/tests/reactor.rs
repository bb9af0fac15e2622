//! End-to-end tests of corio-reactor, in process, over loopback, with plain-thread clients.

#[path = "../../runtime/tests/common/threads.rs"]
mod threads;

use corio_reactor::{Handler, HandlerContext, LengthFieldDecoder, ServerBuilder};
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

fn connect(server: &corio_reactor::Server) -> TcpStream {
    let stream = TcpStream::connect(server.local_addr()).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    stream
}

struct Echo;
impl Handler for Echo {
    fn read(&mut self, ctx: &mut HandlerContext<'_>, data: &[u8]) {
        ctx.write(data);
    }
}

#[derive(Default)]
struct Counts {
    active: AtomicUsize,
    inactive: AtomicUsize,
    on_loop: [AtomicUsize; 2],
}

/// Counts lifecycle events, then passes them on.
struct Lifecycle(Arc<Counts>);
impl Handler for Lifecycle {
    fn active(&mut self, ctx: &mut HandlerContext<'_>) {
        self.0.active.fetch_add(1, SeqCst);
        self.0.on_loop[ctx.loop_index()].fetch_add(1, SeqCst);
        ctx.fire_active();
    }
    fn inactive(&mut self, ctx: &mut HandlerContext<'_>) {
        self.0.inactive.fetch_add(1, SeqCst);
        ctx.fire_inactive();
    }
}

#[test]
fn echo_round_robin_and_shutdown_closes_every_connection() {
    let counts = Arc::new(Counts::default());
    let c = counts.clone();
    let server = ServerBuilder::new()
        .loops(2)
        .bind("127.0.0.1:0", move |p| {
            p.add_last(Lifecycle(c.clone())).add_last(Echo);
        })
        .unwrap();
    let mut conns: Vec<TcpStream> = (0..8).map(|_| connect(&server)).collect();
    for (i, conn) in conns.iter_mut().enumerate() {
        let msg = vec![i as u8; 1000 * (i + 1)];
        conn.write_all(&msg).unwrap();
        let mut back = vec![0; msg.len()];
        conn.read_exact(&mut back).unwrap();
        assert_eq!(back, msg);
    }
    assert_eq!(counts.active.load(SeqCst), 8);
    assert_eq!(counts.on_loop.each_ref().map(|n| n.load(SeqCst)), [4, 4], "round-robin");
    server.shutdown();
    assert_eq!(counts.inactive.load(SeqCst), 8, "inactive fired on every connection at shutdown");
    for mut conn in conns {
        assert_eq!(conn.read(&mut [0; 1]).unwrap_or(0), 0, "closed by shutdown");
    }
}

#[test]
fn data_and_fin_in_one_segment_are_both_seen() {
    let server = ServerBuilder::new().loops(1).bind("127.0.0.1:0", |p| {
        p.add_last(Echo);
    });
    let server = server.unwrap();
    for _ in 0..50 {
        let mut conn = connect(&server);
        conn.write_all(b"hello").unwrap();
        conn.shutdown(Shutdown::Write).unwrap();
        let mut back = Vec::new();
        conn.read_to_end(&mut back).unwrap(); // EOF proves the server saw our FIN
        assert_eq!(back, b"hello");
    }
}

#[test]
fn fairness_cap_and_tiny_buffers_keep_the_stream_intact() {
    let server = ServerBuilder::new()
        .loops(1)
        .read_buffer_size(7)
        .max_reads_per_event(1)
        .write_buffer_water_mark(10, 100)
        .bind("127.0.0.1:0", |p| {
            p.add_last(Echo);
        })
        .unwrap();
    let streams: Vec<_> = (0..4)
        .map(|k| {
            let mut conn = connect(&server);
            std::thread::spawn(move || {
                let data: Vec<u8> = (0..300_000).map(|i: usize| (i * 7 + k) as u8).collect();
                let mut writer = conn.try_clone().unwrap();
                let sent = data.clone();
                let w = std::thread::spawn(move || writer.write_all(&sent).unwrap());
                let mut back = vec![0; data.len()];
                conn.read_exact(&mut back).unwrap();
                w.join().unwrap();
                assert!(back == data, "stream {k} corrupted");
            })
        })
        .collect();
    for s in streams {
        s.join().unwrap();
    }
}

/// Echoes everything twice and records how much output was queued whenever a read arrived.
/// Also records whether its output is over the high-water mark (reading paused).
struct Doubler {
    max_queued: Arc<AtomicUsize>,
    writable: Arc<AtomicUsize>,
    over_high_water: Arc<AtomicBool>,
}
impl Handler for Doubler {
    fn read(&mut self, ctx: &mut HandlerContext<'_>, data: &[u8]) {
        self.max_queued.fetch_max(ctx.queued(), SeqCst);
        ctx.write(data);
        ctx.write(data);
        self.over_high_water.store(!ctx.is_writable(), SeqCst);
    }
    fn writable(&mut self, ctx: &mut HandlerContext<'_>) {
        assert!(ctx.is_writable());
        self.over_high_water.store(false, SeqCst);
        self.writable.fetch_add(1, SeqCst);
    }
}

#[test]
fn back_pressure_stops_reading_a_peer_that_does_not_read() {
    const TOTAL: usize = 32 << 20;
    let (max_queued, writable) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let over_high_water = Arc::new(AtomicBool::new(false));
    let (m, w, o) = (max_queued.clone(), writable.clone(), over_high_water.clone());
    let server = ServerBuilder::new()
        .loops(1)
        .bind("127.0.0.1:0", move |p| {
            p.add_last(Doubler { max_queued: m.clone(), writable: w.clone(), over_high_water: o.clone() });
        })
        .unwrap();
    let mut conn = connect(&server);
    let mut writer = conn.try_clone().unwrap();
    let sent = Arc::new(AtomicUsize::new(0));
    let s = sent.clone();
    let (tid, w) = threads::spawn_thread(move || {
        let chunk: Vec<u8> = (0..64 * 1024).map(|i: usize| i as u8).collect();
        while s.load(SeqCst) < TOTAL {
            writer.write_all(&chunk).unwrap();
            s.fetch_add(chunk.len(), SeqCst);
        }
    });
    // Wait until the server stopped reading (its output is over the high-water
    // mark and nobody reads it) and so the writer is blocked on full buffers,
    // or until the writer is done (the server never stopped: the bug).
    let start = Instant::now();
    let settled = || (over_high_water.load(SeqCst) && threads::is_blocked(tid)) || w.is_finished();
    while !settled() {
        assert!(start.elapsed() < Duration::from_secs(20), "neither paused nor done after 20 s");
        std::thread::sleep(Duration::from_millis(1));
    }
    let last = sent.load(SeqCst);
    assert!(last < TOTAL, "the server read everything without its output being read");
    // Whenever a read was delivered, at most the high-water mark (64 KiB) was queued.
    assert!(max_queued.load(SeqCst) <= 64 * 1024, "queued {} at a read", max_queued.load(SeqCst));
    // Drain: everything comes back twice, and reading resumed through `writable`.
    let mut buf = vec![0; 64 * 1024];
    let mut got = 0;
    while got < 2 * TOTAL {
        let n = conn.read(&mut buf).unwrap();
        assert!(n > 0);
        got += n;
    }
    w.join().unwrap();
    assert!(writable.load(SeqCst) > 0, "writable never fired");
}

/// Writes `n` bytes on connect, then closes.
/// Records how much output was still queued right after its close (+1, so
/// 0 means "not closed yet").
struct Greeter(usize, Arc<AtomicUsize>);
impl Handler for Greeter {
    fn active(&mut self, ctx: &mut HandlerContext<'_>) {
        ctx.write(&vec![b'g'; self.0]);
        ctx.close();
        self.1.store(ctx.queued() + 1, SeqCst);
    }
}

#[test]
fn close_flushes_queued_output_first() {
    let queued_at_close = Arc::new(AtomicUsize::new(0));
    let q = queued_at_close.clone();
    let server = ServerBuilder::new().loops(1).bind("127.0.0.1:0", move |p| {
        p.add_last(Greeter(8 << 20, q.clone())); // more than the socket buffers hold
    });
    let server = server.unwrap();
    let mut conn = connect(&server);
    // The server closed while output was still queued (we have read nothing yet).
    let start = Instant::now();
    while queued_at_close.load(SeqCst) == 0 {
        assert!(start.elapsed() < Duration::from_secs(20), "the server never closed");
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(queued_at_close.load(SeqCst) > 1, "nothing was queued at the close");
    let mut all = Vec::new();
    conn.read_to_end(&mut all).unwrap();
    assert_eq!(all.len(), 8 << 20);
    assert!(all.iter().all(|&b| b == b'g'));
}

/// Panics on a read of "boom".
struct Fragile;
impl Handler for Fragile {
    fn read(&mut self, ctx: &mut HandlerContext<'_>, data: &[u8]) {
        assert!(data != b"boom", "boom");
        ctx.write(data);
    }
}

#[test]
fn a_panicking_handler_closes_only_its_connection() {
    let server = ServerBuilder::new().loops(1).bind("127.0.0.1:0", |p| {
        p.add_last(Fragile);
    });
    let server = server.unwrap();
    let mut good = connect(&server);
    let mut bad = connect(&server);
    bad.write_all(b"boom").unwrap();
    assert_eq!(bad.read(&mut [0; 4]).unwrap_or(0), 0, "the panicking connection is closed");
    good.write_all(b"fine").unwrap();
    let mut back = [0; 4];
    good.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"fine");
}

/// Replies to each frame with the frame reversed, length-prefixed.
struct Reverse(LengthFieldDecoder);
impl Handler for Reverse {
    fn read(&mut self, ctx: &mut HandlerContext<'_>, frame: &[u8]) {
        let reversed: Vec<u8> = frame.iter().rev().copied().collect();
        let mut out = Vec::new();
        self.0.encode(&reversed, &mut out);
        ctx.write(&out);
    }
}

#[test]
fn length_field_pipeline_and_an_unhandled_decoder_error_closes() {
    let server = ServerBuilder::new().loops(2).bind("127.0.0.1:0", |p| {
        p.add_last(LengthFieldDecoder::new(2, 1000)).add_last(Reverse(LengthFieldDecoder::new(2, 1000)));
    });
    let server = server.unwrap();
    let codec = LengthFieldDecoder::new(2, 1000);
    let mut conn = connect(&server);
    let mut out = Vec::new();
    for frame in [&b"abc"[..], b"", &[7u8; 1000]] {
        codec.encode(frame, &mut out);
    }
    for byte in &out[..10] {
        conn.write_all(&[*byte]).unwrap(); // split everywhere at first
    }
    conn.write_all(&out[10..]).unwrap();
    let mut back = vec![0; out.len()];
    conn.read_exact(&mut back).unwrap();
    let mut want = Vec::new();
    for frame in [&b"cba"[..], b"", &[7u8; 1000]] {
        codec.encode(frame, &mut want);
    }
    assert_eq!(back, want);
    // 1001 bytes announced: FrameTooLong reaches the tail of the pipeline, which closes.
    conn.write_all(&[0x03, 0xe9]).unwrap();
    let mut rest = Vec::new();
    conn.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
}

#[test]
fn a_stopper_stops_a_waiting_server_from_another_thread() {
    let server = ServerBuilder::new().loops(2).bind("127.0.0.1:0", |p| {
        p.add_last(Echo);
    });
    let server = server.unwrap();
    let addr = server.local_addr();
    let stopper = server.stopper();
    let started = Arc::new(Barrier::new(2));
    let s = started.clone();
    let waiter = std::thread::spawn(move || {
        s.wait();
        server.wait();
    });
    started.wait();
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.write_all(b"x").unwrap();
    conn.read_exact(&mut [0]).unwrap();
    stopper.stop();
    waiter.join().unwrap();
    assert!(stopper.is_stopped());
    let refused = TcpStream::connect(addr).map(drop).unwrap_err();
    assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused, "the listener is closed");
}
