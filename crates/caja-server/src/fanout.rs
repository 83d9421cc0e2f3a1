//! The WebSocket screens that keep up with the feed, written to by one task.
//!
//! A subscriber that has everything up to the feed's head joins the fan-out as a
//! [`Screen`]. From then on its own task only reads what the client sends; this task does
//! its writing. Each round it takes the events that arrived since the last, and for every
//! set of screens at the same position on the same topics it builds one buffer of
//! WebSocket frames, written to each of their sockets without a copy: one buffer for a
//! thousand screens watching the same thing, one wake-up for all of them instead of one
//! per screen, and one non-blocking write per screen per round. Rounds are at least
//! [`GATHER_FOR`] apart, so a steady stream costs one write per screen per round however
//! many events it carries, while a quiet stream's first event still goes out at once.
//!
//! A screen the fan-out cannot carry is handed back to its task ([`Handback`]): its socket
//! is full for too long or too far behind (slow), its next events are no longer in memory
//! (it reads them from the table, then joins again), or a key changed (it checks its own
//! before anything more is sent).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use caja_core::feed::{wanted, Topic};
use caja_store::Store;
use tokio::net::TcpStream;
use tokio::sync::{broadcast, Notify};
use tokio::time::Instant;

use crate::live::{Event, Hub};
use crate::websocket;

/// After a round, how long events gather before the next. A write is a syscall and a trip
/// through the kernel's TCP stack, by far the larger part of what a delivery costs; no
/// screen shows more than one change per frame (16.7 ms at 60 Hz) anyway.
pub const GATHER_FOR: Duration = Duration::from_millis(16);

/// Longest a screen's socket may take nothing: a client that reads nothing for this long
/// is gone or stuck, and is dropped rather than held open.
pub const SEND_WITHIN: Duration = Duration::from_secs(20);

/// Events the fan-out keeps in memory for screens a little behind; one further behind
/// reads from the table.
const KEEP: usize = 1024;

/// How often screens are looked at with no event: heartbeats, and stuck sockets.
const LOOK_EVERY: Duration = Duration::from_millis(500);

/// The process's WebSocket fan-out.
pub struct Fanout {
    hub: Arc<Hub>,
    store: Store,
    /// How far (in events) a screen may fall behind before it is cut off.
    buffer: i64,
    screens: Mutex<Vec<Arc<Screen>>>,
    /// Each distinct list of topics gets a number; screens with the same number and
    /// position share their frames.
    topic_sets: Mutex<HashMap<String, u32>>,
    /// Whether the task runs (it starts with the first screen).
    started: Mutex<bool>,
    /// A screen joined, or has bytes waiting: look soon.
    wake: Notify,
}

/// One subscriber's socket, while the fan-out writes to it.
pub struct Screen {
    socket: Arc<TcpStream>,
    topics: Vec<Topic>,
    topic_set: u32,
    heartbeat: Duration,
    out: Mutex<Out>,
    handed_back: Notify,
}

/// A screen's side of the writing, shared by the fan-out and the screen's task.
struct Out {
    /// The newest seq written to the socket or waiting in `pending`.
    last: i64,
    /// Bytes the socket has not taken yet, in order.
    pending: VecDeque<Bytes>,
    wrote_at: Instant,
    /// Since when `pending` has not moved.
    stuck_since: Option<Instant>,
    /// The key generation the screen's key was last checked at.
    key_generation: u64,
    /// Set when the fan-out lets go of the screen.
    back: Option<Why>,
    /// Set when the screen's task leaves.
    left: bool,
}

/// Why the fan-out let go of a screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// It fell `stream_buffer` events behind with its socket full: cut it off.
    Slow,
    /// Its next events are no longer in the fan-out's memory: read them from the table.
    CatchUp,
    /// Some key changed: check the stream's own before anything more is sent.
    KeyChanged,
    /// Its socket failed, or took nothing for [`SEND_WITHIN`].
    Gone,
}

/// A screen handed back to its task.
pub struct Handback {
    pub why: Why,
    /// The newest seq written or in `pending`.
    pub last: i64,
    /// Bytes to write before anything else.
    pub pending: VecDeque<Bytes>,
    pub wrote_at: Instant,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these leaves plain data behind, still consistent.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Fanout {
    pub fn new(hub: Arc<Hub>, store: Store, buffer: usize) -> Arc<Self> {
        Arc::new(Self {
            hub,
            store,
            buffer: buffer as i64,
            screens: Mutex::new(Vec::new()),
            topic_sets: Mutex::new(HashMap::new()),
            started: Mutex::new(false),
            wake: Notify::new(),
        })
    }

    /// Hands a subscriber that has every event up to `last` to the fan-out.
    pub fn join(
        self: &Arc<Self>,
        socket: Arc<TcpStream>,
        topics: Vec<Topic>,
        last: i64,
        heartbeat: Duration,
        wrote_at: Instant,
        key_generation: u64,
    ) -> Arc<Screen> {
        {
            let mut started = lock(&self.started);
            if !*started {
                *started = true;
                // Subscribed now, before this first screen is in: what it has not seen
                // is either in this receiver or older than it, and then the screen is
                // handed back to read it from the table.
                let rx = self.hub.subscribe();
                tokio::spawn(self.clone().run(rx));
            }
        }
        let topic_set = {
            let key: Vec<String> = topics.iter().map(Topic::to_string).collect();
            let mut sets = lock(&self.topic_sets);
            let next = sets.len() as u32;
            *sets.entry(key.join(",")).or_insert(next)
        };
        let screen = Arc::new(Screen {
            socket,
            topics,
            topic_set,
            heartbeat,
            out: Mutex::new(Out {
                last,
                pending: VecDeque::new(),
                wrote_at,
                stuck_since: None,
                key_generation,
                back: None,
                left: false,
            }),
            handed_back: Notify::new(),
        });
        lock(&self.screens).push(screen.clone());
        self.wake.notify_one();
        screen
    }

    async fn run(self: Arc<Self>, mut rx: broadcast::Receiver<Arc<Event>>) {
        let mut kept: VecDeque<Arc<Event>> = VecDeque::with_capacity(KEEP);
        let mut last_round = Instant::now() - GATHER_FOR;
        let mut due: Option<Instant> = None;
        let mut look = tokio::time::interval(LOOK_EVERY);
        look.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let soon = |last_round: Instant| Some(Instant::now().max(last_round + GATHER_FOR));
            tokio::select! {
                biased;
                _ = self.hub.stopped() => return,
                received = rx.recv() => match received {
                    Ok(event) => {
                        keep(&mut kept, event);
                        due = due.or(soon(last_round));
                    }
                    // Events this task never saw: screens that need them read the table.
                    Err(broadcast::error::RecvError::Lagged(_)) => kept.clear(),
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = self.wake.notified() => due = due.or(soon(last_round)),
                _ = look.tick() => due = due.or(Some(Instant::now())),
                _ = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {}
            }
            let now = Instant::now();
            if due.is_some_and(|d| d <= now) {
                let waiting = self.round(&kept, now);
                last_round = now;
                // A screen with bytes its socket did not take is tried again next round.
                due = waiting.then_some(now + GATHER_FOR);
            }
        }
    }

    /// Writes what each screen has not had yet. True if some screen still has bytes waiting.
    fn round(&self, kept: &VecDeque<Arc<Event>>, now: Instant) -> bool {
        let screens: Vec<Arc<Screen>> = lock(&self.screens).clone();
        let window = kept.front().map(|f| f.seq).zip(kept.back().map(|b| b.seq));
        let generation = self.store.keys_generation();
        let mut shared: HashMap<(u32, i64), Bytes> = HashMap::new();
        let mut waiting = false;
        let mut let_go = false;
        for screen in &screens {
            let mut out = lock(&screen.out);
            if out.left || out.back.is_some() {
                let_go = true;
                continue;
            }
            let why = screen.turn(
                &mut out,
                window,
                kept,
                &mut shared,
                generation,
                self.buffer,
                now,
            );
            match why {
                Some(why) => {
                    out.back = Some(why);
                    drop(out);
                    screen.handed_back.notify_one();
                    let_go = true;
                }
                None => waiting |= !out.pending.is_empty(),
            }
        }
        if let_go {
            lock(&self.screens).retain(|s| {
                let out = lock(&s.out);
                !out.left && out.back.is_none()
            });
        }
        waiting
    }
}

/// Keeps an event, in seq order and without gaps: one that does not follow the newest
/// kept starts the memory over.
fn keep(kept: &mut VecDeque<Arc<Event>>, event: Arc<Event>) {
    if kept.back().is_some_and(|b| b.seq + 1 != event.seq) {
        kept.clear();
    }
    if kept.len() == KEEP {
        kept.pop_front();
    }
    kept.push_back(event);
}

impl Screen {
    /// One round for this screen: what is waiting, then what is new, then a heartbeat if
    /// the socket has been quiet. `Some` lets the screen go.
    #[allow(clippy::too_many_arguments)]
    fn turn(
        &self,
        out: &mut Out,
        window: Option<(i64, i64)>,
        kept: &VecDeque<Arc<Event>>,
        shared: &mut HashMap<(u32, i64), Bytes>,
        generation: u64,
        buffer: i64,
        now: Instant,
    ) -> Option<Why> {
        if out.key_generation != generation {
            return Some(Why::KeyChanged);
        }
        if self.flush(out, now).is_err() {
            return Some(Why::Gone);
        }
        let head = window.map_or(out.last, |(_, head)| head);
        if !out.pending.is_empty() {
            if head - out.last > buffer {
                return Some(Why::Slow);
            }
            if out
                .stuck_since
                .is_some_and(|at| now.duration_since(at) >= SEND_WITHIN)
            {
                metrics::counter!("caja_stream_slow_disconnects_total").increment(1);
                return Some(Why::Gone);
            }
            return None;
        }
        if let Some((front, head)) = window.filter(|&(_, head)| out.last < head) {
            if out.last + 1 < front {
                return Some(Why::CatchUp);
            }
            let frames = shared
                .entry((self.topic_set, out.last))
                .or_insert_with(|| self.frames(kept, out.last + 1 - front))
                .clone();
            out.last = head;
            if !frames.is_empty() {
                out.pending.push_back(frames);
                out.wrote_at = now;
            }
        }
        if out.pending.is_empty() && now.duration_since(out.wrote_at) >= self.heartbeat {
            let beat = format!(r#"{{"type":"heartbeat","seq":{}}}"#, out.last);
            out.pending.push_back(websocket::text(&beat).into());
            out.wrote_at = now;
        }
        self.flush(out, now).err().map(|_| Why::Gone)
    }

    /// The frames of the kept events from index `from` on that this screen wants.
    fn frames(&self, kept: &VecDeque<Arc<Event>>, from: i64) -> Bytes {
        let wanted_events = || {
            kept.iter()
                .skip(from.max(0) as usize)
                .filter(|e| wanted(&self.topics, &e.kind, &e.resource_id))
        };
        let len = wanted_events().map(|e| e.frame.len()).sum();
        let mut bytes = Vec::with_capacity(len);
        for e in wanted_events() {
            bytes.extend_from_slice(&e.frame);
        }
        bytes.into()
    }

    /// Writes as much of `pending` as the socket takes now, without waiting.
    fn flush(&self, out: &mut Out, now: Instant) -> std::io::Result<()> {
        let mut moved = false;
        while let Some(front) = out.pending.front_mut() {
            match self.socket.try_write(front) {
                Ok(n) if n == front.len() => {
                    out.pending.pop_front();
                    moved = true;
                }
                Ok(n) => {
                    let rest = front.slice(n..);
                    *front = rest;
                    moved |= n > 0;
                    break;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        if out.pending.is_empty() {
            out.stuck_since = None;
        } else if moved || out.stuck_since.is_none() {
            out.stuck_since = Some(now);
        }
        Ok(())
    }

    /// Waits until the fan-out lets go of this screen, and takes it back.
    pub async fn handed_back(&self) -> Handback {
        loop {
            let notified = self.handed_back.notified();
            if let Some(back) = self.take_back() {
                return back;
            }
            notified.await;
        }
    }

    fn take_back(&self) -> Option<Handback> {
        let mut out = lock(&self.out);
        let why = out.back?;
        Some(Handback {
            why,
            last: out.last,
            pending: std::mem::take(&mut out.pending),
            wrote_at: out.wrote_at,
        })
    }

    /// Sends a control frame (a pong) in order with the events: now if nothing is waiting,
    /// otherwise after what is.
    pub fn send(&self, frame: Vec<u8>, fanout: &Fanout) {
        let mut out = lock(&self.out);
        out.pending.push_back(frame.into());
        if out.back.is_none() && !out.left {
            let now = Instant::now();
            if self.flush(&mut out, now).is_err() {
                // The fan-out finds the socket failed on its next write.
                return;
            }
            if !out.pending.is_empty() {
                fanout.wake.notify_one();
            }
        }
    }

    /// The screen's task takes it back for good (the client left, or the server stops):
    /// what was waiting is returned for the task to write before its close frame.
    pub fn leave(&self) -> VecDeque<Bytes> {
        let mut out = lock(&self.out);
        out.left = true;
        std::mem::take(&mut out.pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: i64) -> Arc<Event> {
        Arc::new(Event::from(caja_store::changes::Change {
            seq,
            kind: "product.stock_changed".into(),
            resource_id: format!("prd_{seq}"),
            data: "{}".into(),
            at: caja_core::time::parse("at", "2026-11-30T03:00:00Z").unwrap(),
        }))
    }

    /// A connected pair on loopback: the screen's side, and the client's to read. `small`
    /// gives both sides small kernel buffers, so that a client that reads nothing soon
    /// pushes back.
    async fn pair(small: bool) -> (TcpStream, tokio::net::TcpStream) {
        let listening = tokio::net::TcpSocket::new_v4().unwrap();
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        if small {
            listening.set_recv_buffer_size(4096).unwrap();
            socket.set_send_buffer_size(4096).unwrap();
        }
        listening.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = listening.listen(8).unwrap();
        let screen = socket
            .connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (client, _) = listener.accept().await.unwrap();
        (screen, client)
    }

    fn screen(socket: TcpStream, topics: Vec<Topic>, topic_set: u32, last: i64) -> Screen {
        Screen {
            socket: Arc::new(socket),
            topics,
            topic_set,
            heartbeat: Duration::from_secs(3600),
            out: Mutex::new(Out {
                last,
                pending: VecDeque::new(),
                wrote_at: Instant::now(),
                stuck_since: None,
                key_generation: 0,
                back: None,
                left: false,
            }),
            handed_back: Notify::new(),
        }
    }

    fn window(kept: &VecDeque<Arc<Event>>) -> Option<(i64, i64)> {
        kept.front().map(|f| f.seq).zip(kept.back().map(|b| b.seq))
    }

    /// Reads exactly `n` bytes from the client's side.
    async fn read(client: &mut tokio::net::TcpStream, n: usize) -> Vec<u8> {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; n];
        client.read_exact(&mut buf).await.unwrap();
        buf
    }

    #[tokio::test]
    async fn screens_at_one_place_on_the_same_topics_share_one_buffer_of_frames() {
        let mut kept = VecDeque::new();
        for seq in 1..=5 {
            keep(&mut kept, event(seq));
        }
        let (a, mut a_client) = pair(false).await;
        let (b, mut b_client) = pair(false).await;
        let (c, mut c_client) = pair(false).await;
        let wanted = vec![Topic::parse("product:prd_2").unwrap()];
        let screens = [
            screen(a, vec![Topic::Products], 0, 1),
            screen(b, vec![Topic::Products], 0, 1),
            screen(c, wanted, 1, 1),
        ];
        let mut shared = HashMap::new();
        let now = Instant::now();
        for s in &screens {
            let mut out = lock(&s.out);
            let why = s.turn(&mut out, window(&kept), &kept, &mut shared, 0, 4096, now);
            assert_eq!(why, None);
            assert_eq!(out.last, 5, "every screen is at the head");
            assert!(out.pending.is_empty(), "the socket took it all");
        }
        assert_eq!(shared.len(), 2, "one buffer per topic list at one position");
        let all: Vec<u8> = kept.iter().skip(1).flat_map(|e| e.frame.to_vec()).collect();
        assert_eq!(read(&mut a_client, all.len()).await, all);
        assert_eq!(read(&mut b_client, all.len()).await, all);
        let only = kept[1].frame.to_vec();
        assert_eq!(
            read(&mut c_client, only.len()).await,
            only,
            "only its product"
        );
    }

    #[tokio::test]
    async fn a_quiet_screen_gets_a_heartbeat_with_its_position() {
        let (socket, mut client) = pair(false).await;
        let mut s = screen(socket, vec![], 0, 41);
        s.heartbeat = Duration::ZERO;
        let kept = VecDeque::new();
        let why = s.turn(
            &mut lock(&s.out),
            None,
            &kept,
            &mut HashMap::new(),
            0,
            4096,
            Instant::now(),
        );
        assert_eq!(why, None);
        let beat = websocket::text(r#"{"type":"heartbeat","seq":41}"#);
        assert_eq!(read(&mut client, beat.len()).await, beat);
    }

    #[tokio::test]
    async fn a_screen_is_let_go_when_a_key_changes_or_its_events_are_forgotten() {
        let mut kept = VecDeque::new();
        for seq in 10..=20 {
            keep(&mut kept, event(seq));
        }
        let (socket, _client) = pair(false).await;
        let s = screen(socket, vec![], 0, 3);
        let mut out = lock(&s.out);
        let now = Instant::now();
        let mut shared = HashMap::new();
        assert_eq!(
            s.turn(&mut out, window(&kept), &kept, &mut shared, 1, 4096, now),
            Some(Why::KeyChanged),
            "checked before anything is written"
        );
        assert_eq!(
            s.turn(&mut out, window(&kept), &kept, &mut shared, 0, 4096, now),
            Some(Why::CatchUp),
            "seqs 4 to 9 are no longer kept: read them from the table"
        );
        assert_eq!(out.last, 3, "nothing was written");
    }

    #[tokio::test]
    async fn a_screen_that_stops_reading_is_let_go_as_slow_once_too_far_behind() {
        let (socket, _client) = pair(true).await;
        let s = screen(socket, vec![Topic::Products], 0, 0);
        let mut kept = VecDeque::new();
        let mut shared = HashMap::new();
        let buffer = 200;
        let mut seq = 0;
        let why = loop {
            seq += 1;
            keep(&mut kept, event(seq));
            let mut out = lock(&s.out);
            let why = s.turn(
                &mut out,
                window(&kept),
                &kept,
                &mut shared,
                0,
                buffer,
                Instant::now(),
            );
            if why.is_some() {
                assert!(!out.pending.is_empty(), "it stopped with bytes waiting");
                assert!(seq - out.last > buffer);
                break why;
            }
            assert!(seq < 100_000, "a socket nobody reads fills up");
        };
        assert_eq!(why, Some(Why::Slow));
    }

    #[test]
    fn kept_events_stay_gap_free_and_bounded() {
        let mut kept = VecDeque::new();
        for seq in 1..=(KEEP as i64 + 10) {
            keep(&mut kept, event(seq));
        }
        assert_eq!(kept.len(), KEEP);
        assert_eq!(kept.front().unwrap().seq, 11);
        // A jump (the receiver lagged) starts over rather than leave a hole.
        keep(&mut kept, event(KEEP as i64 + 20));
        assert_eq!(kept.len(), 1);
    }
}
