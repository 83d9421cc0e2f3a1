//! The change feed as Server-Sent Events: each event's `id` is its seq, so a browser's
//! `EventSource` resumes by itself with `Last-Event-ID`; heartbeats are comments.

use std::convert::Infallible;

use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use serde_json::json;

use super::{reset_notice, revoked_notice, Grant};
use crate::live::{Item, Stop, Subscription};
use crate::AppState;

/// The SSE body: every event with its seq as `id`, and resets as `reset` events.
pub(super) fn sse(
    state: AppState,
    grant: Grant,
    sub: Subscription,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let heartbeat = state.config().stream_heartbeat;
    let reset_event = |resume_from: i64| {
        SseEvent::default()
            .event("reset")
            .id(resume_from.to_string())
            .data(reset_notice(resume_from).to_string())
    };
    let events = stream::unfold(Some((sub, grant, state)), move |open| async move {
        let (mut sub, mut grant, state) = open?;
        let next = sub.next().await;
        if grant.revoked(&state).await {
            let event = SseEvent::default()
                .event("error")
                .data(revoked_notice().to_string());
            return Some((Ok(event), None));
        }
        match next {
            Ok(Item::Event(e)) => {
                let event = SseEvent::default()
                    .id(e.seq.to_string())
                    .event(e.kind.as_str())
                    .data(e.json.as_str());
                Some((Ok(event), Some((sub, grant, state))))
            }
            Ok(Item::Reset { resume_from }) => {
                Some((Ok(reset_event(resume_from)), Some((sub, grant, state))))
            }
            Err(Stop::Slow { last }) => {
                metrics::counter!("caja_stream_slow_disconnects_total").increment(1);
                let event = SseEvent::default().event("error").data(
                    json!({"type": "error", "error": "slow-consumer", "last_seq": last})
                        .to_string(),
                );
                Some((Ok(event), None))
            }
            Err(Stop::Closed) => None,
            Err(Stop::Store(e)) => {
                tracing::warn!(error = %e, "stream ended: the change feed could not be read");
                None
            }
        }
    });
    Sse::new(events).keep_alive(KeepAlive::new().interval(heartbeat).text("heartbeat"))
}
