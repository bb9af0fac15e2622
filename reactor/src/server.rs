//! Building, starting and stopping a server: [`ServerBuilder`] (Netty's `ServerBootstrap`),
//! [`Server`] (the running threads) and [`Stopper`] (stop it from anywhere).
//!
//! # Threads and shutdown
//!
//! A server runs `loops` event-loop threads (`corio-reactor-loop-N`) and one acceptor thread
//! (`corio-reactor-acceptor`). Stopping sets a shared flag and notifies every poller; the
//! acceptor closes the listener, each loop fires `inactive` on its connections and closes them
//! (output still queued is dropped: stopping is immediate, not a drain), and [`Server::shutdown`] (or [`Server::wait`] after a [`Stopper::stop`]) joins every thread.
//! Dropping a `Server` shuts it down too.

use crate::acceptor::Acceptor;
use crate::event_loop::{EventLoop, LoopShared};
use crate::handler::Pipeline;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// The per-connection pipeline initialiser, run on the connection's event loop thread.
pub(crate) type Init = Arc<dyn Fn(&mut Pipeline) + Send + Sync>;

/// Tunables, with Netty-like defaults.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) loops: usize,
    pub(crate) nodelay: bool,
    pub(crate) low_water: usize,
    pub(crate) high_water: usize,
    pub(crate) read_buffer_size: usize,
    pub(crate) max_reads_per_event: usize,
    pub(crate) backlog: i32,
}

/// Configures and starts a [`Server`].
///
/// ```no_run
/// use corio_reactor::{HandlerContext, Handler, ServerBuilder};
///
/// struct Echo;
/// impl Handler for Echo {
///     fn read(&mut self, ctx: &mut HandlerContext<'_>, data: &[u8]) {
///         ctx.write(data);
///     }
/// }
///
/// let server = ServerBuilder::new().loops(2).bind("127.0.0.1:7000", |p| {
///     p.add_last(Echo);
/// })?;
/// server.wait();
/// # std::io::Result::Ok(())
/// ```
#[derive(Debug, Clone)]
pub struct ServerBuilder {
    config: Config,
}

impl Default for ServerBuilder {
    fn default() -> Self {
        ServerBuilder::new()
    }
}

impl ServerBuilder {
    /// Defaults: one loop per available CPU, `TCP_NODELAY` on, water marks 32 KiB / 64 KiB
    /// (Netty's), a 16 KiB read buffer per loop, 16 reads per readiness event, backlog 1024.
    pub fn new() -> ServerBuilder {
        ServerBuilder {
            config: Config {
                loops: std::thread::available_parallelism().map_or(1, usize::from),
                nodelay: true,
                low_water: 32 * 1024,
                high_water: 64 * 1024,
                read_buffer_size: 16 * 1024,
                max_reads_per_event: 16,
                backlog: 1024,
            },
        }
    }

    /// Number of event loops (threads serving connections); at least 1.
    pub fn loops(mut self, loops: usize) -> ServerBuilder {
        self.config.loops = loops.max(1);
        self
    }

    /// Set `TCP_NODELAY` on accepted connections.
    pub fn nodelay(mut self, nodelay: bool) -> ServerBuilder {
        self.config.nodelay = nodelay;
        self
    }

    /// Back-pressure thresholds: a connection stops reading when more than `high` bytes of
    /// output are queued, and resumes once at most `low` are.
    ///
    /// # Panics
    ///
    /// If `low > high`.
    pub fn write_buffer_water_mark(mut self, low: usize, high: usize) -> ServerBuilder {
        assert!(low <= high, "low water mark above high water mark");
        self.config.low_water = low;
        self.config.high_water = high;
        self
    }

    /// Size of each loop's shared read buffer (the most one `read(2)` returns); at least 1.
    pub fn read_buffer_size(mut self, bytes: usize) -> ServerBuilder {
        self.config.read_buffer_size = bytes.max(1);
        self
    }

    /// Fairness cap: full reads per readiness event before other connections get a turn.
    pub fn max_reads_per_event(mut self, reads: usize) -> ServerBuilder {
        self.config.max_reads_per_event = reads.max(1);
        self
    }

    /// `listen(2)` backlog for [`bind`](Self::bind).
    pub fn backlog(mut self, backlog: i32) -> ServerBuilder {
        self.config.backlog = backlog;
        self
    }

    /// Binds `addr` (with `SO_REUSEADDR`) and starts serving; `init` fills each new
    /// connection's pipeline, on the connection's event loop thread.
    pub fn bind<A, F>(self, addr: A, init: F) -> io::Result<Server>
    where
        A: ToSocketAddrs,
        F: Fn(&mut Pipeline) + Send + Sync + 'static,
    {
        let mut last_err = io::Error::new(io::ErrorKind::InvalidInput, "no address to bind");
        for addr in addr.to_socket_addrs()? {
            let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
            socket.set_reuse_address(true)?;
            match socket.bind(&SockAddr::from(addr)) {
                Ok(()) => {
                    socket.listen(self.config.backlog)?;
                    return self.start(socket, Arc::new(init));
                }
                Err(err) => last_err = err,
            }
        }
        Err(last_err)
    }

    /// Serves an already listening socket.
    pub fn listen<F>(self, listener: TcpListener, init: F) -> io::Result<Server>
    where
        F: Fn(&mut Pipeline) + Send + Sync + 'static,
    {
        self.start(Socket::from(listener), Arc::new(init))
    }

    fn start(self, listener: Socket, init: Init) -> io::Result<Server> {
        listener.set_nonblocking(true)?;
        let local_addr = listener
            .local_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not an IP socket"))?;
        let config = Arc::new(self.config);
        let stop = Arc::new(AtomicBool::new(false));
        let loops =
            (0..config.loops).map(|_| LoopShared::new().map(Arc::new)).collect::<io::Result<Vec<_>>>()?;
        let acceptor = Acceptor::new(listener, loops.clone(), stop.clone(), config.nodelay)?;
        let mut server = Server {
            local_addr,
            stopper: Stopper { stop: stop.clone(), acceptor: acceptor.poller.clone(), loops: loops.clone() },
            threads: Vec::new(),
        };
        // On a spawn error, `server`'s Drop stops and joins the threads already started.
        for (index, shared) in loops.into_iter().enumerate() {
            let (stop, config, init) = (stop.clone(), config.clone(), init.clone());
            let thread = std::thread::Builder::new().name(format!("corio-reactor-loop-{index}"));
            // Built on its thread: connections hold handlers, which need not be `Send`.
            let run = move || EventLoop::new(index, shared, stop, config, init).run();
            server.threads.push(thread.spawn(run)?);
        }
        let thread = std::thread::Builder::new().name("corio-reactor-acceptor".into());
        server.threads.push(thread.spawn(move || acceptor.run())?);
        Ok(server)
    }
}

/// Stops a [`Server`] from any thread (cheap to clone). Stopping is idempotent.
#[derive(Clone)]
pub struct Stopper {
    stop: Arc<AtomicBool>,
    acceptor: corio_netpoll::Poller,
    loops: Vec<Arc<LoopShared>>,
}

impl Stopper {
    /// Asks the acceptor and every loop to stop; returns at once (join with [`Server::wait`]).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.acceptor.notify();
        for shared in &self.loops {
            shared.wake();
        }
    }

    /// True once [`stop`](Self::stop) was called.
    pub fn is_stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

impl std::fmt::Debug for Stopper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stopper").field("stopped", &self.is_stopped()).finish()
    }
}

/// A running server: its acceptor and event-loop threads.
#[derive(Debug)]
pub struct Server {
    local_addr: SocketAddr,
    stopper: Stopper,
    threads: Vec<JoinHandle<()>>,
}

impl Server {
    /// The address the listener is bound to (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Number of event loops.
    pub fn loops(&self) -> usize {
        self.stopper.loops.len()
    }

    /// A handle that stops this server from another thread.
    pub fn stopper(&self) -> Stopper {
        self.stopper.clone()
    }

    /// Stops the server and joins its threads: the listener and every connection are closed
    /// (each connection's handlers see `inactive`) when this returns.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    /// Blocks until the server is stopped through a [`Stopper`], then joins its threads.
    pub fn wait(mut self) {
        self.join();
    }

    fn join(&mut self) {
        for thread in self.threads.drain(..) {
            if thread.join().is_err() {
                eprintln!("corio-reactor: a server thread panicked");
            }
        }
    }

    fn stop_and_join(&mut self) {
        self.stopper.stop();
        self.join();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}
