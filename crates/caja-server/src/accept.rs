//! The accept loop: connections bounded in number and in how long they may sit idle.
//!
//! A socket that sends nothing, half a request line, or one header a second must not hold
//! a file descriptor for minutes: every connection gets `header_read_timeout` to send a
//! whole request head, and the same bound applies while a kept-alive connection waits for
//! its next request. Streams (WebSocket, SSE, long poll) are past their head, so the bound
//! does not cut them; they count against `max_connections` like any connection. When the
//! bound is reached, new connections wait in the kernel's backlog until one closes, and the
//! log says so once. An `accept` that fails (out of descriptors) backs off instead of
//! spinning.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::first_head::{self, FirstHead};

/// First and longest pause after a failed `accept`.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(10), Duration::from_secs(1));

/// A connection's place under `max_connections`, in each of its requests' extensions: a
/// WebSocket keeps it for as long as the socket is open, after its HTTP connection ended.
#[derive(Clone)]
pub struct ConnectionSlot(#[allow(dead_code)] Arc<OwnedSemaphorePermit>);

/// Limits on connections, from the settings.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// How long a connection may take to send a request head (and may sit idle between
    /// requests).
    pub header_read_timeout: Duration,
    /// Most connections open at once, streams included.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(5),
            max_connections: 10_000,
        }
    }
}

/// Accepts and serves connections until `shutdown` fires, then stops accepting and waits
/// for the open connections to finish.
pub async fn run(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let open = TaskTracker::new();
    let mut backoff = BACKOFF.0;
    let mut full = false;
    loop {
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => {
                full = false;
                slot
            }
            Err(_) => {
                if !full {
                    full = true;
                    metrics::counter!("caja_connection_limit_reached_total").increment(1);
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        "connection limit reached: new connections wait until one closes"
                    );
                }
                tokio::select! {
                    slot = slots.clone().acquire_owned() => match slot {
                        Ok(slot) => slot,
                        Err(_) => break,
                    },
                    _ = shutdown.cancelled() => break,
                }
            }
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => {
                    backoff = BACKOFF.0;
                    accepted
                }
                Err(e) => {
                    tracing::warn!(error = %e, backoff_ms = backoff.as_millis() as u64, "accept failed; backing off");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.cancelled() => break,
                    }
                    backoff = (backoff * 2).min(BACKOFF.1);
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        let slot = ConnectionSlot(Arc::new(slot));
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
            req.extensions_mut().insert(slot.clone());
            app.clone().oneshot(req)
        });
        let stop = shutdown.clone();
        open.spawn(async move {
            // The first head is checked by us, so that even its refusals are problem+json.
            let stream = match first_head::read(stream, limits.header_read_timeout).await {
                FirstHead::Serve(stream) => stream,
                FirstHead::Done => return,
            };
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .max_buf_size(first_head::MAX_HEAD.max(8192) * 2)
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            let mut connection = std::pin::pin!(connection);
            let ended = tokio::select! {
                ended = connection.as_mut() => ended,
                _ = stop.cancelled() => {
                    // Finish the request in flight, take no other.
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            // Errors here are the client's (a reset, a head that timed out): nothing to
            // answer and nothing to log above debug.
            if let Err(e) = ended {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    open.close();
    open.wait().await;
}
