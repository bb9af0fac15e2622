//! One test suite for the key-value protocol, run against both servers: examples/kv.rs (a
//! coroutine per connection) and examples/kv_callback.rs (corio-reactor event loops), each as a
//! child process. The protocol is documented in examples/kv.rs.

#[path = "common/servers.rs"]
mod servers;

use servers::{start, Client, Server};
use std::io::{Read, Write};
use std::net::Shutdown;
use std::sync::Barrier;

const SERVERS: [&str; 2] = ["kv", "kv_callback"];
const MAX_LINE: usize = 64 * 1024;

/// Runs `test` against a fresh instance of each server.
fn each_server(test: impl Fn(&Server)) {
    for name in SERVERS {
        let server = start(name, None);
        test(&server);
    }
}

#[test]
fn basic_commands() {
    each_server(|server| {
        let mut c = Client::connect(server);
        assert_eq!(c.call("GET a"), "NOT_FOUND");
        assert_eq!(c.call("SET a 1"), "OK");
        assert_eq!(c.call("GET a"), "VALUE 1");
        assert_eq!(c.call("SET a two words "), "OK");
        assert_eq!(c.call("GET a"), "VALUE two words ");
        assert_eq!(c.call("SET empty "), "OK");
        assert_eq!(c.call("GET empty"), "VALUE ");
        assert_eq!(c.call("DEL a"), "DELETED");
        assert_eq!(c.call("DEL a"), "NOT_FOUND");
        assert_eq!(c.call("GET a"), "NOT_FOUND");
        // \r\n is accepted as a terminator.
        c.send(b"SET crlf yes\r\nGET crlf\r\n");
        c.expect(&["OK", "VALUE yes"]);
        for bad in ["", "get a", "SET k", "SET  v", "GET", "GET a b", "DEL", "STATS x", "QUIT now", "NOPE"] {
            assert_eq!(c.call(bad), "ERROR unknown command", "{}: request {bad:?}", server.name);
        }
        assert_eq!(c.call("STATS"), "COMMANDS 23");
    });
}

#[test]
fn the_store_is_shared_by_all_connections() {
    each_server(|server| {
        let mut a = Client::connect(server);
        let mut b = Client::connect(server);
        assert_eq!(a.call("SET shared from-a"), "OK");
        assert_eq!(b.call("GET shared"), "VALUE from-a");
        assert_eq!(b.call("DEL shared"), "DELETED");
        assert_eq!(a.call("GET shared"), "NOT_FOUND");
        // STATS is per connection.
        assert_eq!(a.call("STATS"), "COMMANDS 3");
        assert_eq!(b.call("STATS"), "COMMANDS 3");
    });
}

const SCRIPT: &[u8] = b"SET k v1\r\nGET k\nMULTI\nSET k v2\nGET k\nSTATS\nEXEC\nGET k\nSTATS\n";
const SCRIPT_REPLIES: [&str; 13] = [
    "OK",
    "VALUE v1",
    "OK",
    "QUEUED",
    "QUEUED",
    "QUEUED",
    "RESULTS 3",
    "OK",
    "VALUE v2",
    "COMMANDS 7",
    "VALUE v2",
    "COMMANDS 9",
    "BYE",
];

#[test]
fn requests_split_byte_by_byte() {
    each_server(|server| {
        let mut c = Client::connect(server);
        for &byte in SCRIPT.iter().chain(b"QUIT\n") {
            c.send(&[byte]);
        }
        c.expect(&SCRIPT_REPLIES);
        c.expect_closed();
    });
}

#[test]
fn pipelined_requests_in_one_write() {
    each_server(|server| {
        let mut c = Client::connect(server);
        let mut all = SCRIPT.to_vec();
        all.extend_from_slice(b"QUIT\n");
        c.send(&all);
        c.expect(&SCRIPT_REPLIES);
        c.expect_closed();
        // Many small requests in one write, answered in order.
        let mut c = Client::connect(server);
        let mut batch = String::new();
        for i in 0..500 {
            batch.push_str(&format!("SET p{i} {i}\nGET p{i}\n"));
        }
        c.send(batch.as_bytes());
        for i in 0..500 {
            c.expect(&["OK", &format!("VALUE {i}")]);
        }
        assert_eq!(c.call("STATS"), "COMMANDS 1001");
    });
}

#[test]
fn multi_exec_discard_and_their_errors() {
    each_server(|server| {
        let mut c = Client::connect(server);
        let mut other = Client::connect(server);
        assert_eq!(c.call("EXEC"), "ERROR EXEC without MULTI");
        assert_eq!(c.call("DISCARD"), "ERROR DISCARD without MULTI");
        assert_eq!(c.call("MULTI"), "OK");
        assert_eq!(c.call("MULTI"), "ERROR nested MULTI");
        assert_eq!(c.call("SET t 1"), "QUEUED");
        assert_eq!(c.call("bogus"), "ERROR unknown command"); // not queued
        assert_eq!(c.call("DEL t"), "QUEUED");
        // Nothing ran yet: another connection does not see t.
        assert_eq!(other.call("GET t"), "NOT_FOUND");
        c.send(b"EXEC\n");
        c.expect(&["RESULTS 2", "OK", "DELETED"]);
        // DISCARD drops the queue; an empty EXEC works.
        c.send(b"MULTI\nSET d 1\nDISCARD\nGET d\nMULTI\nEXEC\n");
        c.expect(&["OK", "QUEUED", "OK", "NOT_FOUND", "OK", "RESULTS 0"]);
        // QUIT inside MULTI ends the connection without running the queue.
        c.send(b"MULTI\nSET q 1\nQUIT\n");
        c.expect(&["OK", "QUEUED", "BYE"]);
        c.expect_closed();
        assert_eq!(other.call("GET q"), "NOT_FOUND");
    });
}

#[test]
fn quit_says_bye_closes_and_ignores_what_follows() {
    each_server(|server| {
        let mut c = Client::connect(server);
        c.send(b"SET before 1\nQUIT\nSET after 1\n");
        c.expect(&["OK", "BYE"]);
        c.expect_closed();
        let mut check = Client::connect(server);
        assert_eq!(check.call("GET before"), "VALUE 1");
        assert_eq!(check.call("GET after"), "NOT_FOUND");
    });
}

#[test]
fn an_unterminated_last_line_is_dropped_at_eof() {
    each_server(|server| {
        let mut c = Client::connect(server);
        c.send(b"SET done 1\nSET partial 1");
        c.stream.shutdown(Shutdown::Write).unwrap();
        c.expect(&["OK"]);
        c.expect_closed();
        let mut check = Client::connect(server);
        assert_eq!(check.call("GET done"), "VALUE 1");
        assert_eq!(check.call("GET partial"), "NOT_FOUND");
    });
}

#[test]
fn lines_up_to_64_kib_are_fine_longer_ones_close_the_connection() {
    each_server(|server| {
        // Exactly MAX_LINE bytes (terminator excluded), with either terminator.
        let mut c = Client::connect(server);
        let value = "v".repeat(MAX_LINE - "SET big ".len());
        assert_eq!(c.call(&format!("SET big {value}")), "OK");
        c.send(format!("SET big {value}\r\n").as_bytes());
        c.expect(&["OK"]);
        assert_eq!(c.call("GET big").len(), "VALUE ".len() + value.len());
        // One byte more, terminated: too long.
        let mut c = Client::connect(server);
        c.send(format!("SET big {value}x\n").as_bytes());
        c.expect(&["ERROR line too long"]);
        c.expect_closed();
        // Unterminated: detected as soon as MAX_LINE + 2 bytes arrived, without waiting for '\n'.
        let mut c = Client::connect(server);
        c.send(b"GET big\n");
        c.send(&vec![b'x'; MAX_LINE + 2]);
        c.expect(&[&format!("VALUE {value}"), "ERROR line too long"]);
        c.expect_closed();
        // A huge line sent in one go: the reply comes (possibly followed by a reset, since the
        // server closes with the rest of the line unread).
        let mut c = Client::connect(server);
        let mut huge = vec![b'y'; 4 * MAX_LINE];
        huge.push(b'\n');
        let _ = c.stream.write_all(&huge);
        c.expect(&["ERROR line too long"]);
        c.expect_closed();
    });
}

#[test]
fn two_hundred_concurrent_clients() {
    const CLIENTS: usize = 200;
    each_server(|server| {
        let all_set = Barrier::new(CLIENTS);
        std::thread::scope(|scope| {
            for i in 0..CLIENTS {
                let all_set = &all_set;
                scope.spawn(move || {
                    let mut c = Client::connect(server);
                    assert_eq!(c.call(&format!("SET client{i} value{i}")), "OK");
                    all_set.wait();
                    // Every client sees every other client's key.
                    let peer = (i + 1) % CLIENTS;
                    assert_eq!(c.call(&format!("GET client{peer}")), format!("VALUE value{peer}"));
                    // A transaction pipelined in one write.
                    c.send(format!("MULTI\nSET mine{i} {i}\nGET mine{i}\nSTATS\nEXEC\n").as_bytes());
                    c.expect(&[
                        "OK",
                        "QUEUED",
                        "QUEUED",
                        "QUEUED",
                        "RESULTS 3",
                        "OK",
                        &format!("VALUE {i}"),
                        "COMMANDS 7",
                    ]);
                    c.send(b"QUIT\n");
                    c.expect(&["BYE"]);
                    let mut rest = Vec::new();
                    c.reader.read_to_end(&mut rest).unwrap();
                    assert!(rest.is_empty());
                });
            }
        });
        let mut check = Client::connect(server);
        for i in 0..CLIENTS {
            assert_eq!(check.call(&format!("GET mine{i}")), format!("VALUE {i}"));
        }
    });
}
