//! The change feed over WebSocket: the subscribe handshake, then events flushed in
//! groups, heartbeats, and a close frame that says why a stream ended.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use caja_core::feed::Topic;
use futures_util::SinkExt;
use serde::Deserialize;
use serde_json::json;
use tokio::time::Instant;

use super::{reset_notice, revoked_notice, Grant};
use crate::auth::{caller, Caller};
use crate::live::{Item, Stop, Subscription};
use crate::AppState;

/// Longest a write to a client may take: one that reads nothing for this long is gone
/// or stuck, and is dropped rather than held open.
const SEND_WITHIN: Duration = Duration::from_secs(20);

/// Most events queued before one flush.
const FLUSH_EVERY: usize = 64;

/// After a write that took everything ready, how long a stream lets events gather before
/// its next one. A write is a syscall and a trip through the kernel's TCP stack, the larger
/// part of what a delivery costs; under a steady stream this turns one write per event into
/// one per interval. A quiet stream's first event still goes out at once, a stream that is
/// behind writes back to back, and no screen shows more than one change per frame (16.7 ms
/// at 60 Hz) anyway.
const GATHER_FOR: Duration = Duration::from_millis(16);

/// How long a new WebSocket has to send its subscribe message.
const SUBSCRIBE_WITHIN: Duration = Duration::from_secs(10);

/// Close codes in the private range (4000–4999), mirroring the HTTP statuses.
const CLOSE_FORBIDDEN: u16 = 4403;
const CLOSE_BAD_REQUEST: u16 = 4400;
const CLOSE_SLOW: u16 = 4408;
const CLOSE_UNAVAILABLE: u16 = 4503;

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
    mut socket: WebSocket,
    preauth: Option<(Caller, Grant)>,
    addr: SocketAddr,
) {
    let subscribed = tokio::select! {
        subscribed = subscribe(&state, &mut socket, preauth, addr) => subscribed,
        _ = state.hub().stopped() => {
            close(&mut socket, 1001, "server stopping").await;
            return;
        }
    };
    let (sub, grant) = match subscribed {
        Ok(opened) => opened,
        Err((code, problem)) => {
            let _ = socket.send(Message::text(problem.to_string())).await;
            close(&mut socket, code, problem["detail"].as_str().unwrap_or("")).await;
            return;
        }
    };
    metrics::gauge!("caja_stream_subscribers").increment(1.0);
    follow(&state, socket, sub, grant).await;
    metrics::gauge!("caja_stream_subscribers").decrement(1.0);
}

/// Reads the subscribe message, checks the key and the topics, and starts the feed.
async fn subscribe(
    state: &AppState,
    socket: &mut WebSocket,
    preauth: Option<(Caller, Grant)>,
    addr: SocketAddr,
) -> Result<(Subscription, Grant), (u16, serde_json::Value)> {
    let refuse = |code: u16, status: u16, kind: &str, detail: String| {
        (
            code,
            json!({"type": "error", "status": status, "error": kind, "detail": detail}),
        )
    };
    let text = match tokio::time::timeout(SUBSCRIBE_WITHIN, socket.recv()).await {
        Ok(Some(Ok(Message::Text(t)))) => t,
        _ => {
            return Err(refuse(
                CLOSE_BAD_REQUEST,
                400,
                "subscribe-expected",
                "send {\"type\":\"subscribe\",\"key\":…,\"topics\":[…],\"after\":N} first".into(),
            ))
        }
    };
    let msg: SubscribeMessage = serde_json::from_str(text.as_str())
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
    socket
        .send(Message::text(hello.to_string()))
        .await
        .map_err(|_| refuse(CLOSE_BAD_REQUEST, 400, "gone", String::new()))?;
    Ok((sub, grant))
}

/// Sends events as they come, heartbeats when idle, until the client leaves, the server
/// stops, the key is revoked, or the client falls too far behind (or stops reading).
async fn follow(state: &AppState, mut socket: WebSocket, mut sub: Subscription, mut grant: Grant) {
    let heartbeat = state.config().stream_heartbeat;
    // Heartbeats fill silences: one timer, moved on only when it fires, rather than a new
    // one every time an event goes out.
    let mut wrote_at = Instant::now();
    let quiet = tokio::time::sleep(heartbeat);
    tokio::pin!(quiet);
    loop {
        tokio::select! {
            next = sub.next() => {
                // Take what else is ready without waiting, then write it all with one
                // flush: under load one syscall carries many events.
                let mut items = vec![next];
                while items.len() < FLUSH_EVERY && items.last().is_some_and(Result::is_ok) {
                    match sub.try_next() {
                        Some(item) => items.push(item),
                        None => break,
                    }
                }
                if grant.revoked(state).await {
                    refuse_revoked(&mut socket).await;
                    return;
                }
                let mut stop = None;
                let written = tokio::time::timeout(SEND_WITHIN, async {
                    for item in items {
                        let frame = match item {
                            Ok(Item::Event(e)) => Message::Text(e.json.clone()),
                            Ok(Item::Reset { resume_from }) => {
                                Message::text(reset_notice(resume_from).to_string())
                            }
                            Err(s) => {
                                stop = Some(s);
                                break;
                            }
                        };
                        socket.feed(frame).await?;
                    }
                    socket.flush().await
                })
                .await;
                if !matches!(written, Ok(Ok(()))) {
                    if written.is_err() {
                        // Not reading at all: no room even for a close frame.
                        metrics::counter!("caja_stream_slow_disconnects_total").increment(1);
                    }
                    return;
                }
                if let Some(stop) = stop {
                    end(&mut socket, stop).await;
                    return;
                }
                wrote_at = Instant::now();
                if sub.caught_up() {
                    tokio::select! {
                        _ = tokio::time::sleep(GATHER_FOR) => {}
                        _ = state.hub().stopped() => {}
                    }
                }
            }
            incoming = socket.recv() => match incoming {
                // Pings are answered by the library; anything else from the client is ignored.
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
            _ = &mut quiet => {
                let due = wrote_at + heartbeat;
                if due > Instant::now() {
                    quiet.as_mut().reset(due);
                    continue;
                }
                if grant.revoked(state).await {
                    refuse_revoked(&mut socket).await;
                    return;
                }
                let beat = json!({"type": "heartbeat", "seq": sub.last});
                let sent = tokio::time::timeout(
                    SEND_WITHIN,
                    socket.send(Message::text(beat.to_string())),
                )
                .await;
                if !matches!(sent, Ok(Ok(()))) {
                    return;
                }
                wrote_at = Instant::now();
                quiet.as_mut().reset(wrote_at + heartbeat);
            }
        }
    }
}

async fn refuse_revoked(socket: &mut WebSocket) {
    let _ = tokio::time::timeout(
        SEND_WITHIN,
        socket.send(Message::text(revoked_notice().to_string())),
    )
    .await;
    close(socket, 4401, "this API key has been revoked").await;
}

/// Tells the client why its stream ends, then closes it.
async fn end(socket: &mut WebSocket, stop: Stop) {
    match stop {
        Stop::Slow { last } => {
            metrics::counter!("caja_stream_slow_disconnects_total").increment(1);
            let notice = json!({"type": "error", "error": "slow-consumer", "last_seq": last,
                "detail": "this connection fell too far behind; reconnect with after=last_seq"});
            let _ = socket.send(Message::text(notice.to_string())).await;
            close(
                socket,
                CLOSE_SLOW,
                &format!("slow consumer; resume after {last}"),
            )
            .await;
        }
        Stop::Closed => close(socket, 1001, "server stopping").await,
        Stop::Store(e) => {
            tracing::warn!(error = %e, "stream ended: the change feed could not be read");
            close(
                socket,
                CLOSE_UNAVAILABLE,
                "change feed unavailable; reconnect",
            )
            .await;
        }
    }
}

async fn close(socket: &mut WebSocket, code: u16, reason: &str) {
    // A close reason is at most 123 bytes.
    let reason: String = reason.chars().take(100).collect();
    let frame = Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }));
    let _ = tokio::time::timeout(SEND_WITHIN, socket.send(frame)).await;
}
