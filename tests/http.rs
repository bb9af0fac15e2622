//! `examples/http.rs` end to end: a child server on a free port, plain std clients with read
//! timeouts (a hang fails instead of blocking).

#[path = "common/servers.rs"]
mod servers;

use servers::Server;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Starts the example with a 1 s header timeout, a 1.5 s idle timeout and a 1 s write timeout,
/// serving `static_dir` if given.
fn start(static_dir: Option<&std::path::Path>) -> Server {
    let mut command = Command::new(servers::example_binary("http"));
    command.args(["127.0.0.1:0", "--workers", "2"]);
    command.env("HTTP_HEADER_TIMEOUT_MS", "1000").env("HTTP_IDLE_TIMEOUT_MS", "1500");
    command.env("HTTP_WRITE_TIMEOUT_MS", "1000");
    if let Some(dir) = static_dir {
        command.arg("--static").arg(dir);
    }
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line
        .strip_prefix("http: listening on ")
        .and_then(|a| a.trim().parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"));
    let stderr = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let (lines, pipe) = (stderr.clone(), child.stderr.take().unwrap());
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            lines.lock().push(line);
        }
    });
    Server { name: "http", child, addr, stderr }
}

struct Client {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

#[derive(Debug)]
struct Reply {
    status_line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn status(&self) -> u16 {
        self.status_line.split(' ').nth(1).unwrap().parse().unwrap()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

impl Client {
    fn connect(server: &Server) -> Client {
        let stream = TcpStream::connect(server.addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Client { reader: BufReader::new(stream.try_clone().unwrap()), stream }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// Reads one reply (its body by Content-Length).
    fn reply(&mut self) -> Reply {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("a status line");
        assert!(line.ends_with("\r\n"), "connection closed; got {line:?}");
        let status_line = line.trim_end().to_string();
        let mut headers = Vec::new();
        loop {
            line.clear();
            self.reader.read_line(&mut line).unwrap();
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            let (name, value) = header.split_once(':').expect("a header line");
            headers.push((name.to_string(), value.trim().to_string()));
        }
        let mut reply = Reply { status_line, headers, body: Vec::new() };
        let length: usize = reply.header("content-length").expect("Content-Length").parse().unwrap();
        reply.body = vec![0; length];
        self.reader.read_exact(&mut reply.body).unwrap();
        reply
    }

    fn get(&mut self, path: &str) -> Reply {
        self.send(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes());
        self.reply()
    }

    /// Asserts the server closed the connection (EOF, or a reset after the reply).
    fn expect_closed(&mut self) {
        let mut rest = Vec::new();
        match self.reader.read_to_end(&mut rest) {
            Ok(_) => assert!(rest.is_empty(), "bytes before EOF: {:?}", String::from_utf8_lossy(&rest)),
            Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e}"),
        }
    }
}

#[test]
fn plaintext_has_techempower_headers() {
    let server = start(None);
    let mut client = Client::connect(&server);
    for path in ["/", "/plaintext"] {
        let reply = client.get(path);
        assert_eq!(reply.status_line, "HTTP/1.1 200 OK");
        let names: Vec<&str> = reply.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["Server", "Date", "Content-Type", "Content-Length"]);
        assert_eq!(reply.header("content-type"), Some("text/plain"));
        assert_eq!(reply.header("content-length"), Some("13"));
        let date = reply.header("date").unwrap();
        assert!(date.len() == 29 && date.ends_with(" GMT"), "Date: {date}");
        assert_eq!(reply.body, b"Hello, World!");
    }
}

#[test]
fn json_and_errors() {
    let server = start(None);
    let mut client = Client::connect(&server);
    let reply = client.get("/json");
    assert_eq!(reply.status(), 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let value: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(value, serde_json::json!({ "message": "Hello, World!" }));
    assert_eq!(client.get("/nope").status(), 404);
    assert_eq!(client.get("/static/x").status(), 404); // no static directory
    client.send(b"DELETE /json HTTP/1.1\r\n\r\n");
    let reply = client.reply();
    assert_eq!((reply.status(), reply.header("allow")), (405, Some("GET")));
    assert_eq!(client.get("/echo").status(), 405);
}

#[test]
fn echo_with_content_length_and_chunked() {
    let server = start(None);
    let mut client = Client::connect(&server);
    client.send(b"POST /echo HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello world");
    let reply = client.reply();
    assert_eq!((reply.status(), reply.body.as_slice()), (200, &b"hello world"[..]));
    // Chunked, split across writes, with an extension and a trailer.
    client.send(b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
    std::thread::sleep(Duration::from_millis(50));
    client.send(b"1;ext=1\r\n \r\n6\r\nchunks\r\n0\r\nX-Trailer: 1\r\n\r\n");
    let reply = client.reply();
    assert_eq!((reply.status(), reply.body.as_slice()), (200, &b"hello chunks"[..]));
    // A 100 KiB body.
    let big: Vec<u8> = (0..100 * 1024).map(|i| (i % 251) as u8).collect();
    client.send(format!("POST /echo HTTP/1.1\r\nContent-Length: {}\r\n\r\n", big.len()).as_bytes());
    client.send(&big);
    assert_eq!(client.reply().body, big);
}

#[test]
fn keep_alive_and_pipelining() {
    let server = start(None);
    let mut client = Client::connect(&server);
    for _ in 0..3 {
        assert_eq!(client.get("/plaintext").body, b"Hello, World!");
    }
    let mut batch = Vec::new();
    for i in 0..16 {
        let body = format!("request {i}");
        batch.extend_from_slice(
            format!("POST /echo HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}", body.len()).as_bytes(),
        );
    }
    client.send(&batch);
    for i in 0..16 {
        assert_eq!(client.reply().body, format!("request {i}").as_bytes());
    }
    assert_eq!(client.get("/json").status(), 200); // still open
}

#[test]
fn http10_and_connection_close_close() {
    let server = start(None);
    let mut client = Client::connect(&server);
    client.send(b"GET / HTTP/1.0\r\n\r\n");
    let reply = client.reply();
    assert_eq!((reply.status(), reply.header("connection")), (200, Some("close")));
    client.expect_closed();
    // HTTP/1.0 with keep-alive stays open.
    let mut client = Client::connect(&server);
    client.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!(client.reply().header("connection"), Some("keep-alive"));
    assert_eq!(client.get("/").status(), 200);
    client.send(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert_eq!(client.reply().header("connection"), Some("close"));
    client.expect_closed();
}

#[test]
fn oversized_head_gets_431_and_body_413() {
    let server = start(None);
    let mut client = Client::connect(&server);
    let head = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(70 * 1024));
    let mut writer = client.stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || drop(writer.write_all(head.as_bytes())));
    let reply = client.reply();
    assert_eq!(reply.status(), 431);
    client.expect_closed();
    sender.join().unwrap();

    let mut client = Client::connect(&server);
    let mut writer = client.stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let _ = writer
            .write_all(format!("POST /echo HTTP/1.1\r\nContent-Length: {}\r\n\r\n", 2 << 20).as_bytes());
        let _ = writer.write_all(&vec![b'x'; 2 << 20]);
    });
    assert_eq!(client.reply().status(), 413);
    client.expect_closed();
    sender.join().unwrap();

    let mut client = Client::connect(&server); // chunked over the limit
    client.send(b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n200000\r\n");
    assert_eq!(client.reply().status(), 413);
    client.expect_closed();
}

#[test]
fn garbage_gets_400_and_others_are_still_served() {
    let server = start(None);
    let mut bad = Client::connect(&server);
    let mut good = Client::connect(&server);
    bad.send(b"\x01\x02 nonsense \r\n\r\n");
    assert_eq!(bad.reply().status(), 400);
    bad.expect_closed();
    let mut bad = Client::connect(&server);
    bad.send(b"POST /echo HTTP/1.1\r\nContent-Length: 12x\r\n\r\n");
    assert_eq!(bad.reply().status(), 400);
    bad.expect_closed();
    assert_eq!(good.get("/").status(), 200);
    assert_eq!(Client::connect(&server).get("/").status(), 200);
}

#[test]
fn static_files() {
    let dir = std::env::temp_dir().join(format!("corio-http-test-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("index.html"), "<p>hi</p>").unwrap();
    std::fs::write(dir.join("sub/data.json"), "[1]").unwrap();
    std::fs::write(dir.parent().unwrap().join("corio-http-secret.txt"), "secret").unwrap();
    let server = start(Some(&dir));
    let mut client = Client::connect(&server);
    let reply = client.get("/static/index.html");
    assert_eq!((reply.status(), reply.body.as_slice()), (200, &b"<p>hi</p>"[..]));
    assert_eq!(reply.header("content-type"), Some("text/html; charset=utf-8"));
    let reply = client.get("/static/sub/data.json?v=1");
    assert_eq!(
        (reply.header("content-type"), reply.body.as_slice()),
        (Some("application/json"), &b"[1]"[..])
    );
    assert_eq!(client.get("/static/missing.txt").status(), 404);
    assert_eq!(client.get("/static/sub").status(), 404); // a directory
    for path in [
        "/static/../corio-http-secret.txt",
        "/static/sub/../../corio-http-secret.txt",
        "/static//etc/passwd",
        "/static/./index.html",
        "/static/",
    ] {
        let reply = client.get(path);
        assert!(matches!(reply.status(), 403 | 404), "{path}: {reply:?}");
        assert_ne!(reply.body, b"secret");
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn slow_head_is_cut_at_the_header_timeout_others_served() {
    let server = start(None);
    let mut slow = TcpStream::connect(server.addr).unwrap();
    slow.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let head = format!("GET / HTTP/1.1\r\nX-Slow: {}\r\n\r\n", "a".repeat(100));
    let start = Instant::now();
    let mut good = Client::connect(&server);
    let mut served = 0;
    let closed_after = 'slow: {
        for &byte in head.as_bytes() {
            // One byte, then 200 ms waiting for the server to close (a reply would be a bug).
            if slow.write_all(&[byte]).is_err() {
                break 'slow start.elapsed();
            }
            match slow.read(&mut [0u8; 64]) {
                Ok(0) => break 'slow start.elapsed(),
                Ok(_) => panic!("a reply to an incomplete head"),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => break 'slow start.elapsed(), // reset
            }
            // Meanwhile another connection is served promptly.
            let t = Instant::now();
            assert_eq!(good.get("/plaintext").status(), 200);
            assert!(t.elapsed() < Duration::from_secs(1));
            served += 1;
        }
        panic!("the slow client was never closed");
    };
    assert!(closed_after >= Duration::from_millis(900), "closed after {closed_after:?}");
    assert!(closed_after < Duration::from_secs(4), "closed after {closed_after:?}");
    assert!(served >= 3);
}

#[test]
fn idle_keep_alive_is_closed_at_the_idle_timeout_busy_ones_are_not() {
    let server = start(None);
    let mut idle = Client::connect(&server);
    assert_eq!(idle.get("/").status(), 200); // idle from now on
    let since = Instant::now();
    let mut busy = Client::connect(&server);
    // The busy client asks every 300 ms for longer than the idle timeout: never closed.
    let closed_after = loop {
        assert_eq!(busy.get("/plaintext").status(), 200, "a busy connection is kept");
        idle.stream.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
        match idle.stream.read(&mut [0u8; 64]) {
            Ok(0) => break since.elapsed(),
            Ok(_) => panic!("a reply nobody asked for"),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break since.elapsed(), // reset
        }
        assert!(since.elapsed() < Duration::from_secs(10), "the idle connection was never closed");
    };
    assert!(closed_after >= Duration::from_millis(1400), "closed after {closed_after:?}");
    assert!(since.elapsed() > Duration::from_millis(1500) && busy.get("/").status() == 200);
}

#[test]
fn a_client_that_stops_reading_is_dropped_at_the_write_timeout_others_served() {
    let server = start(None);
    let mut stuck = TcpStream::connect(server.addr).unwrap();
    stuck.set_write_timeout(Some(Duration::from_millis(100))).unwrap();
    let requests = "GET /plaintext HTTP/1.1\r\nHost: test\r\n\r\n".repeat(256);
    let mut other = Client::connect(&server);
    // Pipeline requests and never read the replies: the replies fill our receive window and the
    // server's send buffer, the server's write waits, then our writes wait too (buffers full).
    let start = Instant::now();
    let dropped_after = loop {
        match stuck.write(requests.as_bytes()) {
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {} // full
            // The server closed with our requests unread: a reset.
            Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe) => {
                break start.elapsed();
            }
            Err(e) => panic!("unexpected write error: {e}"),
        }
        // Meanwhile another connection is served.
        assert_eq!(other.get("/").status(), 200);
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the client that stopped reading was never dropped"
        );
    };
    // The server's write began to wait after our first request: not before its 1 s timeout.
    assert!(dropped_after >= Duration::from_millis(1000), "dropped after {dropped_after:?}");
    assert_eq!(other.get("/json").status(), 200);
}

#[test]
fn sigterm_closes_idle_keep_alive_and_exits_zero() {
    let mut server = start(None);
    let mut client = Client::connect(&server);
    assert_eq!(client.get("/").status(), 200); // now idle on a keep-alive connection
    let mut busy = Client::connect(&server); // in the middle of a request
    busy.send(b"POST /echo HTTP/1.1\r\nContent-Length: 10\r\n\r\nhalf ");
    std::thread::sleep(Duration::from_millis(100));
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(server.child.id() as libc::pid_t, libc::SIGTERM) };
    client.expect_closed();
    // The request in progress is finished, with Connection: close.
    busy.send(b"done!");
    let reply = busy.reply();
    assert_eq!((reply.body.as_slice(), reply.header("connection")), (&b"half done!"[..], Some("close")));
    busy.expect_closed();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "the server did not exit");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success(), "exit status {status}: {:?}", server.stderr.lock());
    assert!(TcpStream::connect(server.addr).is_err(), "still accepting");
}
