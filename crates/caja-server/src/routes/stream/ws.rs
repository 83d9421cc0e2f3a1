//! The change feed over WebSocket: the upgrade, the subscribe handshake, a catch-up of what
//! the subscriber missed, then the fan-out ([`crate::fanout`]) writes its events while this
//! task reads what the client sends; heartbeats, and a close frame that says why a stream
//! ended.
//!
//! The upgraded connection is taken back as the TCP socket it is, so that the fan-out can
//! write one shared buffer of frames to many sockets without a task per write.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::OptionalFromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::Response;
use caja_core::feed::Topic;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::json;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::{reset_notice, revoked_notice, Grant};
use crate::auth::{caller, Caller};
use crate::fanout::{Screen, Why, SEND_WITHIN};
use crate::first_head::Rewind;
use crate::live::{Item, Stop, Subscription};
use crate::websocket::{self, Incoming, ProtocolError, Reader};
use crate::AppState;

/// Most events taken into one write while catching up.
const FLUSH_EVERY: usize = 64;

/// How long a new WebSocket has to send its subscribe message.
const SUBSCRIBE_WITHIN: Duration = Duration::from_secs(10);

/// How long, after its close frame, a socket waits for the client's before it is dropped
/// (dropping it with the client's bytes unread would reset the connection, and could take
/// the close frame with it).
const LINGER: Duration = Duration::from_secs(1);

/// Close codes in the private range (4000–4999), mirroring the HTTP statuses.
const CLOSE_FORBIDDEN: u16 = 4403;
const CLOSE_BAD_REQUEST: u16 = 4400;
const CLOSE_SLOW: u16 = 4408;
const CLOSE_UNAVAILABLE: u16 = 4503;

/// A WebSocket opening handshake (RFC 6455 §4.2), answered once the route accepts it.
pub(crate) struct Upgrade {
    accept: HeaderValue,
    on_upgrade: OnUpgrade,
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Upgrade {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Infallible> {
        if parts.method != Method::GET {
            return Ok(None);
        }
        let Some(accept) = websocket::accept_key(&parts.headers) else {
            return Ok(None);
        };
        Ok(parts
            .extensions
            .remove::<OnUpgrade>()
            .map(|on_upgrade| Upgrade { accept, on_upgrade }))
    }
}

impl Upgrade {
    /// Answers `101 Switching Protocols` and runs `serve` on the connection once hyper
    /// hands it over.
    pub(crate) fn accept<F, Fut>(self, serve: F) -> Response
    where
        F: FnOnce(Conn) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let on_upgrade = self.on_upgrade;
        tokio::spawn(async move {
            let upgraded = match on_upgrade.await {
                Ok(upgraded) => upgraded,
                Err(e) => {
                    tracing::debug!(error = %e, "websocket upgrade did not complete");
                    return;
                }
            };
            match upgraded.downcast::<TokioIo<Rewind>>() {
                Ok(parts) => {
                    let (stream, mut unread) = parts.io.into_inner().into_parts();
                    // Copied out and dropped at once: `read_buf` is a view of hyper's whole
                    // read buffer (8 KiB or more), which it would keep alive for as long
                    // as the socket is open.
                    unread.extend_from_slice(&parts.read_buf);
                    drop(parts.read_buf);
                    serve(Conn::new(stream, unread)).await;
                }
                // Every connection this server serves comes from its accept loop.
                Err(_) => {
                    tracing::error!("an upgraded connection was not a TCP connection; closed")
                }
            }
        });
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, self.accept);
        response
    }
}

/// An open WebSocket: the socket, and what the client has sent that was not read yet.
pub(crate) struct Conn {
    socket: Arc<TcpStream>,
    reader: Reader,
    wrote_at: Instant,
}

/// Why the client's side could not be read.
enum ReadError {
    /// The connection failed.
    Io,
    /// The client broke the protocol: close with this.
    Protocol(ProtocolError),
}

impl Conn {
    fn new(socket: TcpStream, unread: Vec<u8>) -> Self {
        Self {
            socket: Arc::new(socket),
            reader: Reader::with(unread),
            wrote_at: Instant::now(),
        }
    }

    /// The client's next message; `None` once it closed the connection. Cancel-safe.
    async fn read(&mut self) -> Result<Option<Incoming>, ReadError> {
        loop {
            if let Some(m) = self.reader.next().map_err(ReadError::Protocol)? {
                return Ok(Some(m));
            }
            self.socket.readable().await.map_err(|_| ReadError::Io)?;
            if !self.take_ready()? {
                return Ok(None);
            }
        }
    }

    /// Moves what the socket has ready into the reader; false at the end of the stream.
    /// Not async, so that its buffer lives on the stack only while it reads: ten thousand
    /// idle connections do not each keep 4 KiB in their task.
    fn take_ready(&mut self) -> Result<bool, ReadError> {
        let mut buf = [0u8; 4096];
        match self.socket.try_read(&mut buf) {
            Ok(0) => Ok(false),
            Ok(n) => {
                self.reader.push(&buf[..n]);
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(true),
            Err(_) => Err(ReadError::Io),
        }
    }

    /// Writes `bytes` whole, within [`SEND_WITHIN`]. False if the client is gone or took
    /// nothing for that long (then there is no room even for a close frame).
    ///
    /// Boxed: a write's timer is large, and a future that holds one inline makes every
    /// connection's task that much larger for as long as it is open, idle or not.
    fn write<'a>(&'a mut self, bytes: &'a [u8]) -> Pin<Box<dyn Future<Output = bool> + Send + 'a>> {
        Box::pin(self.write_within(bytes))
    }

    async fn write_within(&mut self, bytes: &[u8]) -> bool {
        let socket = &self.socket;
        let written = tokio::time::timeout(SEND_WITHIN, async {
            let mut rest = bytes;
            while !rest.is_empty() {
                socket.writable().await?;
                match socket.try_write(rest) {
                    Ok(n) => rest = &rest[n..],
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        })
        .await;
        match written {
            Ok(Ok(())) => {
                self.wrote_at = Instant::now();
                true
            }
            Ok(Err(_)) => false,
            Err(_) => {
                metrics::counter!("caja_stream_slow_disconnects_total").increment(1);
                false
            }
        }
    }

    /// Writes what the fan-out left waiting, in order; false as [`Self::write`].
    async fn write_all(&mut self, pending: &VecDeque<Bytes>) -> bool {
        for bytes in pending {
            if !self.write(bytes).await {
                return false;
            }
        }
        true
    }

    /// Sends a close frame, then waits a moment for the client's before dropping the socket.
    async fn close(&mut self, code: u16, reason: &str) {
        if !self.write(&websocket::close(code, reason)).await {
            return;
        }
        let _ = tokio::time::timeout(LINGER, async {
            while let Ok(Some(m)) = self.read().await {
                if matches!(m, Incoming::Close(_)) {
                    break;
                }
            }
        })
        .await;
    }

    /// Answers what the client sent while the stream runs: pings get pongs, a close or a
    /// broken protocol ends the stream (true).
    async fn answer(&mut self, incoming: Result<Option<Incoming>, ReadError>) -> bool {
        match incoming {
            Ok(Some(Incoming::Ping(payload))) => !self.write(&websocket::pong(&payload)).await,
            Ok(Some(Incoming::Text(_) | Incoming::Binary(_) | Incoming::Pong)) => false,
            Ok(Some(Incoming::Close(code))) => {
                // Echo the client's close, as the protocol asks, and go.
                let _ = self
                    .write(&websocket::close(code.unwrap_or(1000), ""))
                    .await;
                true
            }
            Ok(None) | Err(ReadError::Io) => true,
            Err(ReadError::Protocol(e)) => {
                self.close(e.code, e.detail).await;
                true
            }
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SubscribeMessage {
    #[serde(rename = "type")]
    kind: String,
    key: Option<String>,
    #[serde(default)]
    topics: Vec<String>,
    #[serde(default)]
    after: i64,
}

pub(super) async fn websocket(
    state: AppState,
    mut conn: Conn,
    preauth: Option<(Caller, Grant)>,
    addr: SocketAddr,
) {
    let subscribed = tokio::select! {
        subscribed = Box::pin(subscribe(&state, &mut conn, preauth, addr)) => subscribed,
        _ = state.hub().stopped() => {
            conn.close(1001, "server stopping").await;
            return;
        }
    };
    let (sub, grant) = match subscribed {
        Ok(opened) => opened,
        Err((code, problem)) => {
            if conn.write(&websocket::text(&problem.to_string())).await {
                conn.close(code, problem["detail"].as_str().unwrap_or(""))
                    .await;
            }
            return;
        }
    };
    metrics::gauge!("caja_stream_subscribers").increment(1.0);
    follow(&state, conn, sub, grant).await;
    metrics::gauge!("caja_stream_subscribers").decrement(1.0);
}

/// Reads the subscribe message, checks the key and the topics, and starts the feed.
async fn subscribe(
    state: &AppState,
    conn: &mut Conn,
    preauth: Option<(Caller, Grant)>,
    addr: SocketAddr,
) -> Result<(Subscription, Grant), (u16, serde_json::Value)> {
    let refuse = |code: u16, status: u16, kind: &str, detail: String| {
        (
            code,
            json!({"type": "error", "status": status, "error": kind, "detail": detail}),
        )
    };
    let first = tokio::time::timeout(SUBSCRIBE_WITHIN, async {
        loop {
            match conn.read().await {
                Ok(Some(Incoming::Ping(payload))) => {
                    if !conn.write(&websocket::pong(&payload)).await {
                        return None;
                    }
                }
                Ok(Some(Incoming::Pong)) => {}
                Ok(Some(Incoming::Text(t))) => return Some(Ok(t)),
                Err(ReadError::Protocol(e)) => return Some(Err(e)),
                _ => return None,
            }
        }
    })
    .await;
    if let Ok(Some(Err(e))) = first {
        return Err(refuse(e.code, 400, "protocol-error", e.detail.into()));
    }
    let Ok(Some(Ok(text))) = first else {
        return Err(refuse(
            CLOSE_BAD_REQUEST,
            400,
            "subscribe-expected",
            "send {\"type\":\"subscribe\",\"key\":…,\"topics\":[…],\"after\":N} first".into(),
        ));
    };
    let msg: SubscribeMessage = serde_json::from_str(&text)
        .map_err(|e| refuse(CLOSE_BAD_REQUEST, 400, "malformed-message", e.to_string()))?;
    if msg.kind != "subscribe" || msg.after < 0 {
        return Err(refuse(
            CLOSE_BAD_REQUEST,
            400,
            "subscribe-expected",
            "the first message must be a subscribe with after ≥ 0".into(),
        ));
    }
    let (who, grant) = match (preauth, msg.key) {
        (Some(opened), _) => opened,
        (None, key) => {
            let who = caller(state, key.as_deref(), addr.ip())
                .await
                .map_err(|e| {
                    let status = e.status().as_u16();
                    (
                        4000 + status,
                        json!({"type": "error", "status": status, "error": e.kind(), "detail": e.detail()}),
                    )
                })?;
            (who, Grant::new(state, key.as_deref().unwrap_or_default()))
        }
    };
    let topics: Vec<Topic> = msg
        .topics
        .iter()
        .map(|t| Topic::parse(t))
        .collect::<Result<_, _>>()
        .map_err(|e| refuse(CLOSE_BAD_REQUEST, 400, "invalid-topic", e.to_string()))?;
    let topics = Topic::for_role(topics, who.role)
        .map_err(|e| refuse(CLOSE_FORBIDDEN, 403, "forbidden", e.to_string()))?;
    let names: Vec<String> = topics.iter().map(Topic::to_string).collect();
    let sub = Subscription::start(
        state.store().clone(),
        state.hub().clone(),
        topics,
        msg.after,
    )
    .await
    .map_err(|_| {
        refuse(
            CLOSE_UNAVAILABLE,
            503,
            "database-unavailable",
            "the change feed cannot be read right now; retry shortly".into(),
        )
    })?;
    let hello = json!({"type": "subscribed", "topics": names, "after": msg.after, "role": who.role.to_string()});
    if !conn.write(&websocket::text(&hello.to_string())).await {
        return Err(refuse(CLOSE_BAD_REQUEST, 400, "gone", String::new()));
    }
    Ok((sub, grant))
}

/// Sends events until the client leaves, the server stops, the key is revoked, or the
/// client falls too far behind (or stops reading): caught up by this task, then carried by
/// the fan-out, and back here whenever the fan-out lets go.
async fn follow(state: &AppState, mut conn: Conn, sub: Subscription, mut grant: Grant) {
    let heartbeat = state.config().stream_heartbeat;
    let topics = sub.topics().to_vec();
    let mut catching_up = Some(sub);
    let mut last = 0;
    loop {
        if let Some(sub) = catching_up.take() {
            // Boxed, like the other rare steps below: the future of a connection's task is as
            // large as its largest step, and it is held for as long as the screen is open.
            match Box::pin(catch_up(state, &mut conn, sub, &mut grant)).await {
                Some(settled) => last = settled,
                None => return,
            }
        }
        let screen = state.fanout().join(
            conn.socket.clone(),
            topics.clone(),
            last,
            heartbeat,
            conn.wrote_at,
            grant.generation(),
        );
        let Some(back) = carried(state, &mut conn, &screen).await else {
            return;
        };
        conn.wrote_at = back.wrote_at;
        last = back.last;
        if back.why == Why::Gone {
            return;
        }
        if !conn.write_all(&back.pending).await {
            return;
        }
        match back.why {
            Why::Slow => {
                Box::pin(end(&mut conn, Stop::Slow { last })).await;
                return;
            }
            Why::KeyChanged => {
                if Box::pin(grant.revoked(state)).await {
                    Box::pin(refuse_revoked(&mut conn)).await;
                    return;
                }
            }
            Why::CatchUp => {
                let store = state.store().clone();
                let topics = topics.clone();
                match Box::pin(Subscription::start(
                    store,
                    state.hub().clone(),
                    topics,
                    last,
                ))
                .await
                {
                    Ok(sub) => catching_up = Some(sub),
                    Err(e) => {
                        Box::pin(end(&mut conn, Stop::Store(e))).await;
                        return;
                    }
                }
            }
            Why::Gone => return,
        }
    }
}

/// While the fan-out writes to the screen: answers the client, and waits for the fan-out
/// to let go. `None` when the stream has ended.
async fn carried(
    state: &AppState,
    conn: &mut Conn,
    screen: &Screen,
) -> Option<crate::fanout::Handback> {
    loop {
        tokio::select! {
            back = screen.handed_back() => return Some(back),
            incoming = conn.read() => match incoming {
                Ok(Some(Incoming::Ping(payload))) => {
                    screen.send(websocket::pong(&payload), state.fanout());
                }
                Ok(Some(Incoming::Text(_) | Incoming::Binary(_) | Incoming::Pong)) => {}
                ended => {
                    if conn.write_all(&screen.leave()).await {
                        conn.answer(ended).await;
                    }
                    return None;
                }
            },
            _ = state.hub().stopped() => {
                if conn.write_all(&screen.leave()).await {
                    conn.close(1001, "server stopping").await;
                }
                return None;
            }
        }
    }
}

/// Sends what the subscriber missed, from the table and the broadcast, until it is
/// settled at the feed's head; returns the seq it has everything up to, or `None` if the
/// stream ended.
async fn catch_up(
    state: &AppState,
    conn: &mut Conn,
    mut sub: Subscription,
    grant: &mut Grant,
) -> Option<i64> {
    let heartbeat = state.config().stream_heartbeat;
    // Heartbeats fill silences: one timer, moved on only when it fires.
    let quiet = tokio::time::sleep_until(conn.wrote_at + heartbeat);
    tokio::pin!(quiet);
    loop {
        if let Some(last) = sub.settled() {
            return Some(last);
        }
        tokio::select! {
            next = sub.next() => {
                // Take what else is ready without waiting, and write it all at once.
                let mut items = vec![next];
                while items.len() < FLUSH_EVERY && items.last().is_some_and(Result::is_ok) {
                    match sub.try_next() {
                        Some(item) => items.push(item),
                        None => break,
                    }
                }
                if grant.revoked(state).await {
                    refuse_revoked(conn).await;
                    return None;
                }
                let mut stop = None;
                let mut bytes = Vec::new();
                for item in items {
                    match item {
                        Ok(Item::Event(e)) => bytes.extend_from_slice(&e.frame),
                        Ok(Item::Reset { resume_from }) => {
                            websocket::push_text(&mut bytes, &reset_notice(resume_from).to_string())
                        }
                        Err(s) => {
                            stop = Some(s);
                            break;
                        }
                    }
                }
                if !bytes.is_empty() && !conn.write(&bytes).await {
                    return None;
                }
                if let Some(stop) = stop {
                    end(conn, stop).await;
                    return None;
                }
            }
            incoming = conn.read() => {
                if conn.answer(incoming).await {
                    return None;
                }
            }
            _ = &mut quiet => {
                let due = conn.wrote_at + heartbeat;
                if due > Instant::now() {
                    quiet.as_mut().reset(due);
                    continue;
                }
                if grant.revoked(state).await {
                    refuse_revoked(conn).await;
                    return None;
                }
                let beat = json!({"type": "heartbeat", "seq": sub.last});
                if !conn.write(&websocket::text(&beat.to_string())).await {
                    return None;
                }
                quiet.as_mut().reset(conn.wrote_at + heartbeat);
            }
        }
    }
}

async fn refuse_revoked(conn: &mut Conn) {
    if conn
        .write(&websocket::text(&revoked_notice().to_string()))
        .await
    {
        conn.close(4401, "this API key has been revoked").await;
    }
}

/// Tells the client why its stream ends, then closes it.
async fn end(conn: &mut Conn, stop: Stop) {
    match stop {
        Stop::Slow { last } => {
            metrics::counter!("caja_stream_slow_disconnects_total").increment(1);
            let notice = json!({"type": "error", "error": "slow-consumer", "last_seq": last,
                "detail": "this connection fell too far behind; reconnect with after=last_seq"});
            if conn.write(&websocket::text(&notice.to_string())).await {
                conn.close(CLOSE_SLOW, &format!("slow consumer; resume after {last}"))
                    .await;
            }
        }
        Stop::Closed => conn.close(1001, "server stopping").await,
        Stop::Store(e) => {
            tracing::warn!(error = %e, "stream ended: the change feed could not be read");
            conn.close(CLOSE_UNAVAILABLE, "change feed unavailable; reconnect")
                .await;
        }
    }
}
