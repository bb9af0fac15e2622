//! `http_may_minihttp`: the may_minihttp HTTP anchor of `run-http.sh` (a
//! TechEmpower-tuned server on may's coroutines).
//!
//! `http_may_minihttp [ADDR] [--workers N]`.

use corio_benches::{raise_nofile_limit_or_warn, ServerArgs};
use may_minihttp::{HttpServer, HttpService, Request, Response};
use std::io;

#[derive(Clone)]
struct Service;

impl HttpService for Service {
    fn call(&mut self, req: Request, res: &mut Response) -> io::Result<()> {
        match req.path() {
            "/" | "/plaintext" => {
                res.header("Content-Type: text/plain");
                res.body("Hello, World!");
            }
            "/json" => {
                res.header("Content-Type: application/json");
                res.body(r#"{"message":"Hello, World!"}"#);
            }
            _ => {
                res.status_code(404, "Not Found");
            }
        }
        Ok(())
    }
}

fn main() {
    let args = ServerArgs::from_env("http_may_minihttp");
    raise_nofile_limit_or_warn("http_may_minihttp");
    may::config().set_workers(args.workers);
    may::config().set_worker_pin(false);
    let server = HttpServer(Service).start(args.addr).unwrap_or_else(|e| {
        eprintln!("http_may_minihttp: bind {}: {e}", args.addr);
        std::process::exit(1);
    });
    eprintln!("http_may_minihttp: listening on {} with {} workers", args.addr, args.workers);
    let _ = server.join();
}
