//! Name resolution off the workers. `getaddrinfo` blocks its thread for as
//! long as DNS takes (seconds, when a server is slow), so in a coroutine it
//! runs on the blocking pool (`crate::blocking`); literal addresses skip it.
//!
//! Which addresses may need DNS: std's `ToSocketAddrs` for the string forms
//! (`&str`, `String`, `&String`, `(&str, u16)`, `(String, u16)`) parses a
//! literal first and calls `getaddrinfo` only for a host name; every other
//! form (`SocketAddr`, `(IpAddr, u16)`, slices of addresses) never resolves.
//! Rust offers no way to ask a generic `A: ToSocketAddrs` which kind it is,
//! so `resolve` recognises the string forms by `type_name` (only std's own
//! types have those names): a literal among them is parsed right here, and
//! only a host name goes to the pool. Other forms, and user types that
//! implement `ToSocketAddrs`, resolve inline: if one of those does DNS, call
//! [`lookup_host`] first.
//!
//! A test hook ([`set_resolver_delay`], hidden) makes every name resolution
//! sleep first, on the pool thread, so tests can show that a slow resolver
//! does not stall the worker.

use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Milliseconds each name resolution sleeps first (test hook; 0: none).
static RESOLVER_DELAY_MS: AtomicU64 = AtomicU64::new(0);

/// Test hook: makes every host-name resolution by corio sleep `delay`
/// first (on the thread that resolves). Not part of the API.
#[doc(hidden)]
pub fn set_resolver_delay(delay: Duration) {
    RESOLVER_DELAY_MS.store(delay.as_millis() as u64, Ordering::Relaxed);
}

/// Resolves `host` ("name:port" or a literal address) to its addresses;
/// in a coroutine the DNS lookup runs on the blocking pool, so the worker
/// keeps running other coroutines. A literal resolves at once.
///
/// ```
/// corio::run(|| {
///     let addrs: Vec<_> = corio::net::lookup_host("127.0.0.1:80").unwrap().collect();
///     assert_eq!(addrs, ["127.0.0.1:80".parse().unwrap()]);
/// });
/// ```
pub fn lookup_host(host: &str) -> io::Result<std::vec::IntoIter<SocketAddr>> {
    if let Ok(addr) = host.parse::<SocketAddr>() {
        return Ok(vec![addr].into_iter());
    }
    crate::blocking::run_blocking(|| resolve_now(host))
}

fn resolve_now<A: ToSocketAddrs + ?Sized>(addr: &A) -> io::Result<std::vec::IntoIter<SocketAddr>> {
    let delay = RESOLVER_DELAY_MS.load(Ordering::Relaxed);
    if delay != 0 {
        std::thread::sleep(Duration::from_millis(delay));
    }
    Ok(addr.to_socket_addrs()?.collect::<Vec<_>>().into_iter())
}

/// A reference that may cross to a pool thread. Built only for the string
/// forms of `ToSocketAddrs` (see `resolve`), which are all `Sync`.
struct SendRef<'a, A: ?Sized>(&'a A);

// SAFETY: constructed only in `resolve` for types whose name is one of the
// std string forms (`STRING_FORMS`) (`&str`, `String`, `&String`, `(&str, u16)`,
// `(String, u16)`), all of which are `Sync`, so sharing a reference to one
// with another thread is sound; the reference outlives the use because
// `run_blocking` joins the job before returning.
unsafe impl<A: ?Sized> Send for SendRef<'_, A> {}

/// The std string forms of `ToSocketAddrs`, by `type_name`.
const STRING_FORMS: [&str; 5] = [
    "&str",
    "alloc::string::String",
    "&alloc::string::String",
    "(&str, u16)",
    "(alloc::string::String, u16)",
];

/// If `addr` is one of the string forms holding a literal address, that
/// address; `None` if it is a host name (or not a string form).
fn literal<A: ToSocketAddrs>(addr: &A) -> Option<SocketAddr> {
    let ptr = addr as *const A;
    // Each arm: `type_name` says `A` is exactly that std type (only std's
    // types carry these names, and every lifetime of `&str` has the same
    // layout), so the pointer may be read as one.
    match std::any::type_name::<A>() {
        "&str" => {
            // SAFETY: `A` is `&str` (above).
            let host = unsafe { &*(ptr as *const &str) };
            host.parse().ok()
        }
        "alloc::string::String" => {
            // SAFETY: `A` is `String` (above).
            let host = unsafe { &*(ptr as *const String) };
            host.parse().ok()
        }
        "&alloc::string::String" => {
            // SAFETY: `A` is `&String` (above).
            let host = unsafe { &*(ptr as *const &String) };
            host.parse().ok()
        }
        "(&str, u16)" => {
            // SAFETY: `A` is `(&str, u16)` (above).
            let (host, port) = unsafe { &*(ptr as *const (&str, u16)) };
            host.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, *port))
        }
        "(alloc::string::String, u16)" => {
            // SAFETY: `A` is `(String, u16)` (above).
            let (host, port) = unsafe { &*(ptr as *const (String, u16)) };
            host.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, *port))
        }
        _ => None,
    }
}

/// Resolves `addr` as std's `to_socket_addrs` does, with host names looked up
/// off the worker (see the module doc).
pub(crate) fn resolve<A: ToSocketAddrs>(addr: &A) -> io::Result<std::vec::IntoIter<SocketAddr>> {
    let is_string_form = STRING_FORMS.contains(&std::any::type_name::<A>());
    if !is_string_form || !crate::sched::context::in_coroutine() {
        return Ok(addr.to_socket_addrs()?.collect::<Vec<_>>().into_iter());
    }
    if let Some(literal) = literal(addr) {
        return Ok(vec![literal].into_iter());
    }
    let shared = SendRef(addr);
    crate::blocking::run_blocking(move || {
        let shared = shared;
        resolve_now(shared.0)
    })
}
