//! Serving a file over TCP through `corio::fs`: every connection gets the
//! file's bytes, read in 64 KiB pieces on the blocking pool while the worker
//! keeps serving the other connections.
//!
//! ```sh
//! cargo run --release --example serve_file -- Cargo.toml 127.0.0.1:7002
//! nc 127.0.0.1 7002 > copy.toml      # in another terminal
//! ```

use corio::net::{TcpListener, TcpStream};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

fn send_file(path: &Path, mut stream: TcpStream) -> io::Result<u64> {
    let mut file = corio::fs::File::open(path)?; // NotFound etc. reach the caller
    let mut buf = vec![0u8; 64 * 1024];
    let mut sent = 0;
    loop {
        let n = file.read(&mut buf)?; // on the blocking pool, not the worker
        if n == 0 {
            return Ok(sent);
        }
        stream.write_all(&buf[..n])?; // parks while the peer is slow
        sent += n as u64;
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next().map(PathBuf::from) else {
        eprintln!("usage: serve_file PATH [ADDR]");
        std::process::exit(2);
    };
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:7002".into());
    corio::run(move || {
        // Fail early and clearly if the file is not there.
        if let Err(err) = corio::fs::metadata(&path) {
            eprintln!("serve_file: {}: {err}", path.display());
            std::process::exit(1);
        }
        let listener = TcpListener::bind(&addr).unwrap_or_else(|err| {
            eprintln!("serve_file: cannot listen on {addr}: {err}");
            std::process::exit(1);
        });
        println!("serve_file: serving {} on {addr}", path.display());
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let path = path.clone();
            corio::spawn(move || match send_file(&path, stream) {
                Ok(bytes) => println!("serve_file: sent {bytes} bytes"),
                Err(err) => eprintln!("serve_file: {err}"),
            });
        }
    });
}
