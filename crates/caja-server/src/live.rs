//! Live delivery of the change feed to this process's subscribers.
//!
//! One tailer per process reads newly committed events from the table and broadcasts them;
//! subscribers never query the database while they keep up. It wakes on this process's own
//! commits, on PostgreSQL's `NOTIFY` from any replica, and every [`POLL_EVERY`] regardless,
//! so a lost notification (or a listener connection that dropped and came back) delays an
//! event by that much at most and never loses it: the table is the truth, the wake-ups are
//! hints.
//!
//! A [`Subscription`] first reads what it missed from the table, then follows the
//! broadcast. Sequence numbers are gap-free, so a jump in the broadcast means it raced the
//! tailer, and it reads the gap from the table. A subscriber that stops pulling while the
//! broadcast moves `stream_buffer` events past it is cut off: the buffer is the bound on
//! what one slow screen can hold.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::ws::Utf8Bytes;
use caja_core::feed::{wanted, Topic};
use caja_store::changes::{is_flag_event, is_key_event, Change, ChangeListener};
use caja_store::{Store, StoreError};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// How often the tailer reads the table with no wake-up: the bound on how late a commit
/// whose notification was lost (or made by another process on SQLite, such as
/// `caja keys revoke`) is seen.
const POLL_EVERY: Duration = Duration::from_millis(250);

/// How long the tailer waits for its listener connection before polling without it.
const LISTEN_WITHIN: Duration = Duration::from_secs(2);

/// Events read from the table per query.
const PAGE: i64 = 500;

/// One committed event, with its wire form rendered once for every subscriber.
#[derive(Debug)]
pub struct Event {
    pub seq: i64,
    pub kind: String,
    pub resource_id: String,
    /// `{"seq":…,"type":…,"id":…,"data":{…},"at":…}`, for Server-Sent Events and polls.
    pub json: Utf8Bytes,
    /// The same JSON as one WebSocket text frame, written as it is to every screen.
    pub frame: Bytes,
}

impl From<Change> for Event {
    fn from(c: Change) -> Self {
        // Written into one buffer of the right size (the event's data is most of it), as a
        // WebSocket frame whose payload is the JSON: `json` is a view of the same bytes.
        let at = caja_core::time::format(&c.at);
        let estimate = c.data.len() + c.kind.len() + c.resource_id.len() + 80;
        let mut json = Vec::with_capacity(estimate);
        json.extend_from_slice(b"{\"seq\":");
        json.extend_from_slice(c.seq.to_string().as_bytes());
        json.extend_from_slice(b",\"type\":");
        quote(&mut json, &c.kind);
        json.extend_from_slice(b",\"id\":");
        quote(&mut json, &c.resource_id);
        json.extend_from_slice(b",\"data\":");
        json.extend_from_slice(c.data.as_bytes());
        json.extend_from_slice(b",\"at\":");
        quote(&mut json, &at);
        json.push(b'}');
        let header = crate::websocket::header_len(json.len());
        let mut frame = Vec::with_capacity(header + json.len());
        crate::websocket::push_text_header(&mut frame, json.len());
        frame.extend_from_slice(&json);
        let frame = Bytes::from(frame);
        // Every piece is UTF-8 (strings, and JSON text written by serde_json).
        let json = Utf8Bytes::try_from(frame.slice(header..)).unwrap_or_default();
        Self {
            seq: c.seq,
            kind: c.kind,
            resource_id: c.resource_id,
            json,
            frame,
        }
    }
}

/// `s` as a JSON string.
fn quote(out: &mut Vec<u8>, s: &str) {
    if serde_json::to_writer(&mut *out, s).is_err() {
        // Writing a string into memory cannot fail; keep the JSON whole if it ever did.
        out.extend_from_slice(b"\"\"");
    }
}

/// Events the broadcast ring holds: two pages, so one page sent in a burst never laps a
/// subscriber that is keeping up. One that falls further behind catches up from the table.
const RING: usize = 2 * PAGE as usize;

/// The process's fan-out point.
pub struct Hub {
    tx: broadcast::Sender<Arc<Event>>,
    /// How far (in events) a live subscriber may fall behind what was sent before it is
    /// cut off.
    buffer: i64,
    /// The newest seq the tailer has read (and is about to broadcast).
    head: AtomicI64,
    /// The newest seq broadcast.
    sent: AtomicI64,
    /// Fired when the server begins to stop: every subscription ends at once.
    stopping: CancellationToken,
}

impl Hub {
    pub fn new(buffer: usize) -> Arc<Self> {
        let (tx, _) = broadcast::channel(RING);
        Arc::new(Self {
            tx,
            buffer: buffer as i64,
            head: AtomicI64::new(0),
            sent: AtomicI64::new(0),
            stopping: CancellationToken::new(),
        })
    }

    /// Ends every subscription (streams close, long polls answer): the server is stopping.
    pub fn stop(&self) {
        self.stopping.cancel();
    }

    /// Resolves once the server begins to stop.
    pub async fn stopped(&self) {
        self.stopping.cancelled().await
    }

    pub fn head(&self) -> i64 {
        self.head.load(Ordering::SeqCst)
    }

    /// A raw receiver, for waiting on the next commit.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    /// Follows the table until `shutdown`.
    pub async fn tail(self: Arc<Self>, store: Store, shutdown: CancellationToken) {
        let signal = store.change_signal();
        let mut listener: Option<ChangeListener> = None;
        let mut head = match store.change_horizon().await {
            Ok(h) => h.last,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the change feed's head; starting from 0");
                0
            }
        };
        self.head.store(head, Ordering::SeqCst);
        loop {
            if listener.is_none() {
                // Bounded: a database that does not answer must not stop the polling below.
                listener = match tokio::time::timeout(LISTEN_WITHIN, store.listen_for_changes())
                    .await
                {
                    Ok(Ok(l)) => l,
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "change listener failed; polling until it is back");
                        None
                    }
                    Err(_) => {
                        tracing::warn!(
                            "change listener did not connect in time; polling until it is back"
                        );
                        None
                    }
                };
            }
            // Woken by this process's own commit, the tailer takes what it committed from
            // memory; woken by anything else (another replica, the poll), it reads the table.
            let local = tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = signal.notified() => true,
                woke = remote(&mut listener) => {
                    if let Err(e) = woke {
                        tracing::warn!(error = %e, "change listener lost; reconnecting");
                        listener = None;
                    }
                    false
                }
                _ = tokio::time::sleep(POLL_EVERY) => false,
            };
            let mut from_memory = false;
            loop {
                let recent = store.take_recent(head);
                let (page, from_table) = if !recent.is_empty() {
                    from_memory = true;
                    (Ok(recent), false)
                } else if local && from_memory {
                    // Everything this commit appended was in memory and nothing else woke
                    // us: the table has nothing newer to say.
                    break;
                } else {
                    (store.tail_changes(head, PAGE).await, true)
                };
                match page {
                    Ok(page) => {
                        let more = !from_table || page.len() as i64 == PAGE;
                        self.publish(&store, &mut head, page);
                        if !more {
                            break;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "reading the change feed failed; retrying");
                        break;
                    }
                }
            }
        }
    }

    /// Broadcasts a page of events that continues right after `head`, and moves it on.
    fn publish(&self, store: &Store, head: &mut i64, page: Vec<Change>) {
        if let Some(last) = page.last() {
            *head = last.seq;
            self.head.store(*head, Ordering::SeqCst);
        }
        if page.iter().any(|c| is_key_event(&c.kind)) {
            store.keys_changed();
        }
        if page.iter().any(|c| is_flag_event(&c.kind)) {
            store.flags_changed();
        }
        for change in page {
            let seq = change.seq;
            // Nobody listening right now: a send would be refused and its event dropped
            // (a subscriber that comes later reads what it missed from the table), so the
            // event's frame is not built at all.
            if self.tx.receiver_count() > 0 {
                let _ = self.tx.send(Arc::new(Event::from(change)));
            }
            self.sent.store(seq, Ordering::SeqCst);
        }
    }
}

async fn remote(listener: &mut Option<ChangeListener>) -> Result<(), StoreError> {
    match listener {
        Some(l) => l.woken().await,
        None => std::future::pending().await,
    }
}

/// What a subscription yields next.
pub enum Item {
    Event(Arc<Event>),
    /// Events this subscriber had not seen were removed by retention: it must reload its
    /// state; the feed goes on after `resume_from`.
    Reset {
        resume_from: i64,
    },
}

/// Why a subscription stopped.
#[derive(Debug)]
pub enum Stop {
    /// It fell `stream_buffer` events behind: send the client its last seq and close.
    Slow {
        last: i64,
    },
    /// The server is stopping.
    Closed,
    Store(StoreError),
}

/// One subscriber's position in the feed.
pub struct Subscription {
    store: Store,
    hub: Arc<Hub>,
    rx: broadcast::Receiver<Arc<Event>>,
    topics: Vec<Topic>,
    /// The newest seq this subscriber has passed (sent or filtered out).
    pub last: i64,
    /// Read from the table up to here before following the broadcast: the feed's head
    /// when the subscription started, which the tailer may not have reached yet.
    target: i64,
    backlog: VecDeque<Arc<Event>>,
    catching_up: bool,
    /// A reset to announce before anything else.
    reset: Option<i64>,
}

impl Subscription {
    /// Starts after `after`. An `after` older than retention (or newer than anything
    /// committed, as after a restore from backup) makes the first item a reset: the client
    /// must reload its state, and the feed goes on from the newest event.
    pub async fn start(
        store: Store,
        hub: Arc<Hub>,
        topics: Vec<Topic>,
        after: i64,
    ) -> Result<Subscription, StoreError> {
        // Subscribe before reading anything, so nothing committed from now on is missed.
        let rx = hub.tx.subscribe();
        let horizon = store.change_horizon().await?;
        let reset =
            (after < horizon.pruned_through || after > horizon.last).then_some(horizon.last);
        Ok(Subscription {
            store,
            hub,
            rx,
            topics,
            last: reset.unwrap_or(after),
            target: horizon.last,
            backlog: VecDeque::new(),
            catching_up: true,
            reset,
        })
    }

    /// The next event this subscriber wants, in seq order, waiting for it if need be.
    /// Cancel-safe: dropping the future loses nothing.
    pub async fn next(&mut self) -> Result<Item, Stop> {
        if self.hub.stopping.is_cancelled() {
            return Err(Stop::Closed);
        }
        if let Some(resume_from) = self.reset.take() {
            return Ok(Item::Reset { resume_from });
        }
        loop {
            if let Some(e) = self.next_wanted() {
                return Ok(Item::Event(e));
            }
            if self.catching_up {
                if self.last < self.target.max(self.hub.head()) {
                    let page = self
                        .store
                        .changes_after(self.last, PAGE)
                        .await
                        .map_err(Stop::Store)?;
                    // Seqs have no gaps, so a page that does not start right after `last`
                    // (or no page at all below the head) means retention removed events.
                    if page.first().map(|c| c.seq) != Some(self.last + 1) {
                        let horizon = self.store.change_horizon().await.map_err(Stop::Store)?;
                        let resume_from = page.first().map_or(horizon.last, |c| c.seq - 1);
                        self.last = resume_from;
                        self.backlog
                            .extend(page.into_iter().map(|c| Arc::new(Event::from(c))));
                        return Ok(Item::Reset { resume_from });
                    }
                    self.backlog
                        .extend(page.into_iter().map(|c| Arc::new(Event::from(c))));
                    continue;
                }
                // Caught up: follow the broadcast from here, dropping what queued meanwhile.
                self.rx = self.rx.resubscribe();
                self.catching_up = self.last < self.hub.head();
                if self.catching_up {
                    continue;
                }
            }
            let received = tokio::select! {
                biased;
                _ = self.hub.stopping.cancelled() => return Err(Stop::Closed),
                received = self.rx.recv() => received,
            };
            self.take(received.map_err(|e| match e {
                broadcast::error::RecvError::Lagged(_) => Missed::Lagged,
                broadcast::error::RecvError::Closed => Missed::Closed,
            }))?;
        }
    }

    /// The next event this subscriber wants if one is ready now, without waiting and
    /// without registering to be woken: what a writer that just woke takes along with the
    /// event that woke it. `None` when nothing is ready, or when only [`Self::next`] can
    /// go on (a reset to announce, or a gap to read from the table).
    pub fn try_next(&mut self) -> Option<Result<Item, Stop>> {
        if self.reset.is_some() || self.hub.stopping.is_cancelled() {
            return None;
        }
        loop {
            if let Some(e) = self.next_wanted() {
                return Some(Ok(Item::Event(e)));
            }
            if self.catching_up {
                return None;
            }
            let received = match self.rx.try_recv() {
                Ok(e) => Ok(e),
                Err(broadcast::error::TryRecvError::Empty) => return None,
                Err(broadcast::error::TryRecvError::Lagged(_)) => Err(Missed::Lagged),
                Err(broadcast::error::TryRecvError::Closed) => Err(Missed::Closed),
            };
            if let Err(stop) = self.take(received) {
                return Some(Err(stop));
            }
        }
    }

    /// The next backlog event this subscriber wants; those it does not are passed over.
    fn next_wanted(&mut self) -> Option<Arc<Event>> {
        while let Some(e) = self.backlog.pop_front() {
            self.last = e.seq;
            if wanted(&self.topics, &e.kind, &e.resource_id) {
                return Some(e);
            }
        }
        None
    }

    /// The seq this subscriber has every event up to, once it has nothing left to read
    /// from the table, to announce, or to take from its backlog: from there the fan-out can
    /// carry it, with the events it keeps in memory.
    pub fn settled(&self) -> Option<i64> {
        let behind = self.catching_up && self.last < self.target.max(self.hub.head());
        (self.reset.is_none() && self.backlog.is_empty() && !behind).then_some(self.last)
    }

    /// The topics this subscriber follows.
    pub fn topics(&self) -> &[Topic] {
        &self.topics
    }

    /// Files one broadcast receipt: the next event into the backlog, a jump or a lag into
    /// a catch-up from the table.
    fn take(&mut self, received: Result<Arc<Event>, Missed>) -> Result<(), Stop> {
        match received {
            Ok(e) if e.seq <= self.last => {}
            // A jump: this receiver started between the tailer's sends. The head moves
            // before each send, so the table read that follows covers the gap and `e`.
            Ok(e) if e.seq > self.last + 1 => self.catching_up = true,
            Ok(e) => self.backlog.push_back(e),
            // The ring moved past this subscriber. Within the buffer it catches up from
            // the table (a burst, or a brief stall); beyond it, it is cut off.
            Err(Missed::Lagged) => {
                if self.hub.sent.load(Ordering::SeqCst) - self.last > self.hub.buffer {
                    return Err(Stop::Slow { last: self.last });
                }
                self.catching_up = true;
            }
            Err(Missed::Closed) => return Err(Stop::Closed),
        }
        Ok(())
    }
}

/// Why a broadcast receipt carried no event.
enum Missed {
    /// The ring moved past this receiver.
    Lagged,
    /// The hub is gone.
    Closed,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_frame_is_one_json_object_with_its_strings_escaped() {
        let at = caja_core::time::parse("at", "2026-11-30T03:00:00.000001Z").unwrap();
        let event = Event::from(Change {
            seq: 42,
            kind: "order.created".into(),
            resource_id: "ord_\"odd\"\\id".into(),
            data: r#"{"id":"ord_1","total":{"amount":4550}}"#.into(),
            at,
        });
        let frame: serde_json::Value = serde_json::from_str(&event.json).unwrap();
        assert_eq!(
            frame,
            serde_json::json!({
                "seq": 42,
                "type": "order.created",
                "id": "ord_\"odd\"\\id",
                "data": {"id": "ord_1", "total": {"amount": 4550}},
                "at": "2026-11-30T03:00:00.000001Z",
            })
        );
        assert_eq!(event.seq, 42);
    }
}
