//! The listener: accepts connections up to `DBAAS_MAX_CONNECTIONS`, gives
//! each a deadline for its request headers, and serves them with the API's
//! filter. Driving hyper directly (rather than `warp::serve`) is what makes
//! the deadline and the cap possible. A connection beyond the cap is closed
//! at once: the next ones are served as soon as slow or idle connections
//! reach their deadline.

use crate::error::{Error, Result};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Semaphore};

/// How long a client may take to send a request's headers; also how long
/// an idle keep-alive connection stays open.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests in flight get this long after SIGTERM; with the runtime's own
/// second, `serve` is gone within 10 s whatever it is doing.
const DRAIN: Duration = Duration::from_secs(8);

/// What a connection is doing: requests in its handlers, and when its
/// socket last moved a byte.
struct Activity {
    busy: std::sync::atomic::AtomicUsize,
    last_io: std::sync::Mutex<std::time::Instant>,
}

impl Default for Activity {
    fn default() -> Self {
        Activity {
            busy: Default::default(),
            last_io: std::sync::Mutex::new(std::time::Instant::now()),
        }
    }
}

impl Activity {
    fn touch(&self) {
        if let Ok(mut t) = self.last_io.lock() {
            *t = std::time::Instant::now();
        }
    }

    /// How long nothing happened (zero while a handler runs).
    fn idle_for(&self) -> Duration {
        if self.busy.load(Ordering::SeqCst) > 0 {
            return Duration::ZERO;
        }
        self.last_io
            .lock()
            .map(|t| t.elapsed())
            .unwrap_or(Duration::ZERO)
    }
}

/// A request in a handler, for as long as its future lives.
struct Busy(Arc<Activity>);

impl Busy {
    fn new(a: Arc<Activity>) -> Busy {
        a.busy.fetch_add(1, Ordering::SeqCst);
        Busy(a)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::SeqCst);
        self.0.touch();
    }
}

/// The socket, noting every read and write in its `Activity`.
struct Tracked {
    inner: tokio::net::TcpStream,
    activity: Arc<Activity>,
}

impl tokio::io::AsyncRead for Tracked {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let res = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        res
    }
}

impl tokio::io::AsyncWrite for Tracked {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let res = std::pin::Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(res, std::task::Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        res
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Connections refused at the cap, for the server log and /metrics.
pub static REFUSED: AtomicU64 = AtomicU64::new(0);

/// Serves `filter` on `listen` until `shutdown` resolves, then lets the
/// requests in flight finish (for at most `DRAIN`).
pub async fn run<F>(
    listen: SocketAddr,
    filter: F,
    max_connections: usize,
    on_listening: impl FnOnce(SocketAddr),
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<()>
where
    F: warp::Filter + Clone + Send + Sync + 'static,
    F::Extract: warp::Reply,
{
    let (listener, addr) = bind(listen).await?;
    on_listening(addr);
    let service = warp::service(filter);
    let mut http = hyper::server::conn::Http::new();
    http.http1_only(true)
        .http1_keep_alive(true)
        .http1_header_read_timeout(HEADER_TIMEOUT);
    let permits = Arc::new(Semaphore::new(max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            _ = &mut shutdown => break,
            accepted = accept(&listener) => match accepted {
                Some(s) => s,
                None => continue,
            },
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            refuse(stream, max_connections);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let activity = Arc::new(Activity::default());
        let io = Tracked {
            inner: stream,
            activity: activity.clone(),
        };
        let svc = service.clone();
        let act = activity.clone();
        let service = hyper::service::service_fn(move |req| {
            let mut svc = svc.clone();
            let busy = Busy::new(act.clone());
            async move {
                let res = hyper::service::Service::call(&mut svc, req).await;
                drop(busy);
                res
            }
        });
        let conn = http.serve_connection(io, service);
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            tokio::pin!(conn);
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = conn.as_mut() => break,
                    _ = stop.changed() => {
                        conn.as_mut().graceful_shutdown();
                        // Bounded: a client that never reads its answer
                        // does not hold the shutdown.
                        let _ = tokio::time::timeout(DRAIN, conn).await;
                        break;
                    }
                    _ = tick.tick() => {
                        // hyper bounds the wait for headers once a request
                        // starts, but not an idle kept-alive connection.
                        if activity.idle_for() > HEADER_TIMEOUT {
                            conn.as_mut().graceful_shutdown();
                            let _ = tokio::time::timeout(HEADER_TIMEOUT, conn).await;
                            break;
                        }
                    }
                }
            }
            drop(permit);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drain(&permits, max_connections).await;
    Ok(())
}

async fn bind(listen: SocketAddr) -> Result<(tokio::net::TcpListener, SocketAddr)> {
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
        Error::Conflict(format!(
            "cannot listen on {listen}: {e}; choose another --listen"
        ))
    })?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::io("reading the listening address", e))?;
    Ok((listener, addr))
}

/// The next connection; None after a failed accept (out of file
/// descriptors, most likely), when it is worth pausing to let some close.
async fn accept(listener: &tokio::net::TcpListener) -> Option<tokio::net::TcpStream> {
    match listener.accept().await {
        Ok((stream, _peer)) => Some(stream),
        Err(e) => {
            log::warn!("accepting a connection: {e}");
            tokio::time::sleep(Duration::from_millis(50)).await;
            None
        }
    }
}

/// A connection past the cap is closed at once (logged once per thousand).
fn refuse(stream: tokio::net::TcpStream, max_connections: usize) {
    if REFUSED.fetch_add(1, Ordering::Relaxed).is_multiple_of(1000) {
        log::warn!(
            "{max_connections} connections open (DBAAS_MAX_CONNECTIONS): refusing new ones until some close"
        );
    }
    drop(stream);
}

/// Waits (at most `DRAIN`) for every connection to finish its requests.
async fn drain(permits: &Semaphore, max_connections: usize) {
    let all = u32::try_from(max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(DRAIN, permits.acquire_many(all))
        .await
        .is_err()
    {
        log::warn!(
            "requests still running after {} s; stopping anyway",
            DRAIN.as_secs()
        );
    }
}
