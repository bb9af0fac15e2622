//! The key-value protocol shared by examples/kv.rs (coroutines) and examples/kv_callback.rs
//! (callbacks): parsing a request line and applying it to the store. Only the connection
//! handling differs between the two servers; the protocol is specified in examples/kv.rs.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Longest request line accepted, terminator excluded.
pub const MAX_LINE: usize = 64 * 1024;

pub type Map = HashMap<Vec<u8>, Vec<u8>>;

/// The store, shared by all connections (on all workers or event loops). A plain std `Mutex`,
/// not a coroutine-aware one: it is held only for hash-map operations (one command, or one EXEC
/// batch) and never across I/O or anything else that parks, so no coroutine is ever switched
/// out while holding it, and a contended lock blocks its thread for well under a microsecond.
pub type Store = Arc<Mutex<Map>>;

/// A command on the store.
pub enum Op<'a> {
    Set(&'a [u8], &'a [u8]),
    Get(&'a [u8]),
    Del(&'a [u8]),
    Stats,
}

pub enum Request<'a> {
    Data(Op<'a>),
    Multi,
    Exec,
    Discard,
    Quit,
}

pub fn parse(line: &[u8]) -> Option<Request<'_>> {
    let (word, arg) = match line.iter().position(|&b| b == b' ') {
        Some(i) => (&line[..i], Some(&line[i + 1..])),
        None => (line, None),
    };
    let key = |k: &[u8]| !k.is_empty() && !k.contains(&b' ');
    Some(match (word, arg) {
        (b"SET", Some(arg)) => {
            let i = arg.iter().position(|&b| b == b' ')?;
            if !key(&arg[..i]) {
                return None;
            }
            Request::Data(Op::Set(&arg[..i], &arg[i + 1..]))
        }
        (b"GET", Some(k)) if key(k) => Request::Data(Op::Get(k)),
        (b"DEL", Some(k)) if key(k) => Request::Data(Op::Del(k)),
        (b"STATS", None) => Request::Data(Op::Stats),
        (b"MULTI", None) => Request::Multi,
        (b"EXEC", None) => Request::Exec,
        (b"DISCARD", None) => Request::Discard,
        (b"QUIT", None) => Request::Quit,
        _ => return None,
    })
}

/// Runs `op` on the locked store and appends its reply line to `out`.
pub fn apply(map: &mut Map, op: Op<'_>, commands: u64, out: &mut Vec<u8>) {
    match op {
        Op::Set(k, v) => {
            map.insert(k.to_vec(), v.to_vec());
            out.extend_from_slice(b"OK\n");
        }
        Op::Get(k) => match map.get(k) {
            Some(v) => {
                out.extend_from_slice(b"VALUE ");
                out.extend_from_slice(v);
                out.push(b'\n');
            }
            None => out.extend_from_slice(b"NOT_FOUND\n"),
        },
        Op::Del(k) => {
            out.extend_from_slice(if map.remove(k).is_some() { b"DELETED\n" } else { b"NOT_FOUND\n" })
        }
        Op::Stats => out.extend_from_slice(format!("COMMANDS {commands}\n").as_bytes()),
    }
}

/// EXEC: runs the queued lines under one lock (atomically) and appends `RESULTS n` and their
/// replies to `out`.
pub fn exec(store: &Store, queued: &[Vec<u8>], commands: u64, out: &mut Vec<u8>) {
    out.extend_from_slice(format!("RESULTS {}\n", queued.len()).as_bytes());
    let mut map = store.lock().unwrap();
    for line in queued {
        if let Some(Request::Data(op)) = parse(line) {
            apply(&mut map, op, commands, out);
        }
    }
}
