//! Serving connections: one accepting task hands each new connection, in turn, to one of a few
//! serving threads, each running a single-threaded runtime of its own. A connection's requests,
//! its handler and the upstream connections its handler opens (see
//! `patchbay_net::UpstreamClient`) then stay on one thread: nothing is woken across cores per
//! request, which on a loaded proxy costs more than the request itself.
//!
//! Shared resources (database pools, the resolver) may register I/O with whichever runtime
//! first needed it, and other runtimes use it from there. Every serving runtime therefore
//! outlives the serving itself: the threads stop serving when asked, then keep their runtimes
//! turning until [`Serving`] is dropped — after the last use flush.
//!
//! A client cannot hold the server: a connection that has not sent a whole request head within
//! the header timeout — idle between requests, or sending its headers a byte at a time — is
//! closed; open connections are capped (below the open-file limit, which start-up raises), and
//! one past the cap, or past a serving thread's bounded queue, is answered 503 at once, closed
//! and counted.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};

use crate::api::App;

/// What one client may hold of the server.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How long a connection may take to send a request head, counted from when the server
    /// is ready for one (so it is also the idle keep-alive timeout).
    pub header_timeout: Duration,
    /// Open connections at most; more are refused.
    pub max_connections: usize,
}

/// Connections that may wait in one serving thread's queue before refusals start.
const QUEUE_PER_THREAD: usize = 1024;

/// What the serving counts, for `/healthz`.
#[derive(Debug, Default)]
pub struct Counters {
    open: AtomicUsize,
    refused: AtomicU64,
    limit: AtomicUsize,
}

impl Counters {
    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Connections refused since start (over the cap, or a full queue).
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// The cap on open connections.
    pub fn limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }
}

/// One open connection's place under the cap, given back when its socket closes.
#[derive(Debug)]
struct Slot(Arc<Counters>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A connection handed to a serving thread, with its place under the cap.
type Handed = (std::net::TcpStream, Slot);

/// Threads serving connections when none are configured: one per core.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// The serving threads, once they stopped serving; dropping this lets their runtimes end.
#[derive(Debug)]
pub struct Serving {
    _release: watch::Sender<bool>,
}

/// Accepts on `listener` until `stop` resolves, each connection served by one of `threads`
/// threads (at least one), then waits for every open connection to finish.
pub async fn serve(
    listener: TcpListener,
    app: App,
    threads: usize,
    limits: Limits,
    counters: Arc<Counters>,
    stop: impl Future<Output = ()>,
) -> std::io::Result<Serving> {
    counters
        .limit
        .store(limits.max_connections, Ordering::Relaxed);
    let (stop_tx, stop_rx) = watch::channel(false);
    let (release_tx, release_rx) = watch::channel(false);
    let mut handoffs = Vec::new();
    let mut finished = Vec::new();
    for n in 0..threads.max(1) {
        let (tx, rx) = mpsc::channel(QUEUE_PER_THREAD);
        let (done_tx, done_rx) = oneshot::channel();
        let app = app.clone();
        let stop = stop_rx.clone();
        let release = release_rx.clone();
        // The threads log where their spawner logs (tests capture a thread's logs).
        let logs = tracing::dispatcher::get_default(Clone::clone);
        std::thread::Builder::new()
            .name(format!("patchbay-serve-{n}"))
            .spawn(move || {
                tracing::dispatcher::with_default(&logs, || {
                    serving_thread(rx, app, limits, stop, release, done_tx);
                });
            })?;
        handoffs.push(tx);
        finished.push(done_rx);
    }
    tokio::select! {
        () = accept(&listener, &handoffs, &counters) => {}
        () = stop => {}
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let mut outcome = Ok(());
    for done in finished {
        let served = done
            .await
            .unwrap_or_else(|_| Err(std::io::Error::other("a serving thread ended early")));
        if outcome.is_ok() {
            outcome = served;
        }
    }
    outcome.map(|()| Serving {
        _release: release_tx,
    })
}

fn serving_thread(
    handoff: mpsc::Receiver<Handed>,
    app: App,
    limits: Limits,
    stop: watch::Receiver<bool>,
    release: watch::Receiver<bool>,
    done: oneshot::Sender<std::io::Result<()>>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = done.send(Err(e));
            return;
        }
    };
    runtime.block_on(async move {
        // A timer always due within a second: a timer set while none is pending wakes the
        // runtime's driver with a system call, and every proxied request sets one (its deadline).
        let ticking = tokio::spawn(async {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
            }
        });
        serve_handed_over(handoff, app, limits, raised(stop)).await;
        ticking.abort();
        let _ = done.send(Ok(()));
        raised(release).await;
    });
}

/// Serves the connections handed to this thread (HTTP/1.1) until `stop`, then lets each
/// finish the request it is answering.
async fn serve_handed_over(
    mut handoff: mpsc::Receiver<Handed>,
    app: App,
    limits: Limits,
    stop: impl Future<Output = ()>,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut stop = std::pin::pin!(stop);
    loop {
        let (tcp, slot) = tokio::select! {
            () = &mut stop => break,
            handed = handoff.recv() => match handed {
                Some(handed) => handed,
                // The accepting side is gone: serving ends with the stop signal.
                None => {
                    stop.as_mut().await;
                    break;
                }
            },
        };
        let tcp = match tokio::net::TcpStream::from_std(tcp) {
            Ok(tcp) => tcp,
            Err(e) => {
                tracing::debug!(error = %e, "could not take a connection over");
                continue;
            }
        };
        let app = app.clone();
        let service = hyper::service::service_fn(move |req| {
            let answer = app.call(req);
            async move { Ok::<_, std::convert::Infallible>(answer.await) }
        });
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .serve_connection(TokioIo::new(Lingering(Some((tcp, slot)))), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::trace!(error = %e, "a connection ended with an error");
            }
        });
    }
    graceful.shutdown().await;
}

/// Resolves once the flag is raised or its sender is gone.
async fn raised(mut flag: watch::Receiver<bool>) {
    let _ = flag.wait_for(|up| *up).await;
}

/// Hands accepted connections to the serving threads in turn, refusing those over the cap or
/// behind a full queue. Errors that concern one connection are skipped; others (out of file
/// descriptors) are logged and retried after a pause, as a listener must not end on them.
async fn accept(
    listener: &TcpListener,
    handoffs: &[mpsc::Sender<Handed>],
    counters: &Arc<Counters>,
) {
    let mut next = 0usize;
    let limit = counters.limit();
    loop {
        let (tcp, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                tracing::error!(error = %e, "accepting a connection failed; retrying in a second");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
        };
        if counters.open.fetch_add(1, Ordering::Relaxed) >= limit {
            counters.open.fetch_sub(1, Ordering::Relaxed);
            refuse(&tcp, counters);
            continue;
        }
        let slot = Slot(counters.clone());
        // Answers go out as soon as they are written (no Nagle delay behind a previous packet).
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        let tcp = match tcp.into_std() {
            Ok(t) => t,
            Err(e) => {
                tracing::debug!(error = %e, "could not hand a connection over");
                continue;
            }
        };
        match handoffs[next % handoffs.len()].try_send((tcp, slot)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full((tcp, slot))) => {
                drop(slot);
                counters.refused.fetch_add(1, Ordering::Relaxed);
                let _ = std::io::Write::write(&mut &tcp, BUSY);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
        next = next.wrapping_add(1);
    }
}

/// What a refused connection is told before it is closed, without anything read from it.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\
    Retry-After: 1\r\nContent-Length: 0\r\n\r\n";

/// Answers 503, counts the refusal, and lets the socket close.
fn refuse(tcp: &tokio::net::TcpStream, counters: &Counters) {
    counters.refused.fetch_add(1, Ordering::Relaxed);
    let _ = tcp.try_write(BUSY);
}

fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

/// How long a closed connection's remaining input is read and discarded, per read and in all.
const LINGER_READ: Duration = Duration::from_secs(1);
const LINGER_TOTAL: Duration = Duration::from_secs(5);

/// A served connection that closes gracefully: when the server is done with it — say after
/// answering 413 to a body it did not read — what the client still sends is read and discarded
/// for a few seconds after the answer. Closing at once would reset the connection, and a
/// client still writing its body would lose the answer along with it.
/// The connection's place under the cap is held until its socket really closes.
#[derive(Debug)]
struct Lingering(Option<(tokio::net::TcpStream, Slot)>);

impl Lingering {
    fn stream(&mut self) -> std::io::Result<Pin<&mut tokio::net::TcpStream>> {
        self.0
            .as_mut()
            .map(|(tcp, _)| Pin::new(tcp))
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotConnected))
    }
}

impl Drop for Lingering {
    fn drop(&mut self) {
        let Some((mut tcp, slot)) = self.0.take() else {
            return;
        };
        let mut scratch = [0u8; 1024];
        // Already closed by the client: nothing to wait for.
        if matches!(tcp.try_read(&mut scratch), Ok(0)) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            let _slot = slot;
            let _ = tcp.shutdown().await;
            let _ = tokio::time::timeout(LINGER_TOTAL, async {
                let mut scratch = vec![0u8; 16 * 1024];
                while let Ok(Ok(n)) =
                    tokio::time::timeout(LINGER_READ, tcp.read(&mut scratch)).await
                {
                    if n == 0 {
                        break;
                    }
                }
            })
            .await;
        });
    }
}

impl AsyncRead for Lingering {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        self.stream()?.poll_read(cx, buf)
    }
}

impl AsyncWrite for Lingering {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.stream()?.poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        self.stream()?.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0
            .as_ref()
            .is_some_and(|(tcp, _)| AsyncWrite::is_write_vectored(tcp))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.stream()?.poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.stream()?.poll_shutdown(cx)
    }
}
