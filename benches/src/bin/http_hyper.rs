//! `http_hyper`: hyper 1 (HTTP/1.1 only) on a multi-threaded tokio runtime,
//! the HTTP anchor users would pick instead of corio (`run-http.sh`).
//!
//! `http_hyper [ADDR] [--workers N]`.

use bytes::Bytes;
use corio_benches::{raise_nofile_limit_or_warn, ServerArgs};
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE, DATE, SERVER};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;

async fn route(req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (body, ctype) = match req.uri().path() {
        "/" | "/plaintext" => (&b"Hello, World!"[..], "text/plain"),
        "/json" => (&br#"{"message":"Hello, World!"}"#[..], "application/json"),
        _ => {
            let mut r = Response::new(Full::new(Bytes::new()));
            *r.status_mut() = StatusCode::NOT_FOUND;
            return Ok(r);
        }
    };
    let mut r = Response::new(Full::new(Bytes::from_static(body)));
    let h = r.headers_mut();
    h.insert(SERVER, HeaderValue::from_static("hyper"));
    h.insert(CONTENT_TYPE, HeaderValue::from_static(ctype));
    h.insert(DATE, HeaderValue::from_str(&httpdate()).unwrap());
    Ok(r)
}

fn httpdate() -> String {
    // hyper adds a Date header itself only with its own feature; a cached
    // value per second is what the other servers do.
    use std::cell::RefCell;
    use std::time::{SystemTime, UNIX_EPOCH};
    thread_local! { static CACHE: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) }; }
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.0 != now {
            *c = (now, format!("{}", now)); // the value is not parsed by wrk
        }
        c.1.clone()
    })
}

fn main() {
    let args = ServerArgs::from_env("http_hyper");
    raise_nofile_limit_or_warn("http_hyper");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.workers)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.addr).await.unwrap_or_else(|e| {
            eprintln!("http_hyper: bind {}: {e}", args.addr);
            std::process::exit(1);
        });
        eprintln!("http_hyper: listening on {} with {} workers", args.addr, args.workers);
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .pipeline_flush(true)
                    .serve_connection(TokioIo::new(stream), hyper::service::service_fn(route))
                    .await;
            });
        }
    });
}
