//! The server's side of the WebSocket protocol (RFC 6455), written here rather than taken
//! from a library so that a frame is encoded once and the same bytes go to every screen:
//! frames from server to client are not masked, so an event's frame is identical for every
//! subscriber, and the fan-out writes one shared buffer to a thousand sockets without
//! building anything per socket. Clients only ever send a subscribe message, pings and a
//! close, so the reading side is small; it is strict about what it accepts.

use axum::http::{header, HeaderMap, HeaderValue};

/// The longest message a client may send (its subscribe message is a few hundred bytes).
pub const MAX_MESSAGE: usize = 64 * 1024;

/// Close codes (RFC 6455 §7.4.1).
pub const CLOSE_PROTOCOL_ERROR: u16 = 1002;
pub const CLOSE_INVALID_DATA: u16 = 1007;
pub const CLOSE_TOO_BIG: u16 = 1009;

const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CONTINUATION: u8 = 0x0;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

/// The `Sec-WebSocket-Accept` answer to an opening handshake, or `None` when the request
/// is not a WebSocket upgrade this server speaks (version 13, with a key).
pub fn accept_key(headers: &HeaderMap) -> Option<HeaderValue> {
    let has_token = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    if !has_token(header::CONNECTION, "upgrade") || !has_token(header::UPGRADE, "websocket") {
        return None;
    }
    if headers.get(header::SEC_WEBSOCKET_VERSION)? != "13" {
        return None;
    }
    let key = headers.get(header::SEC_WEBSOCKET_KEY)?;
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    HeaderValue::from_str(&accept).ok()
}

/// Appends a frame header for a final frame of `opcode` carrying `len` bytes.
fn header(out: &mut Vec<u8>, opcode: u8, len: usize) {
    out.push(0x80 | opcode);
    if len < 126 {
        out.push(len as u8);
    } else if let Ok(short) = u16::try_from(len) {
        out.push(126);
        out.extend_from_slice(&short.to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

/// How many bytes [`header`] writes for a payload of `len`.
pub fn header_len(len: usize) -> usize {
    match len {
        0..=125 => 2,
        126..=0xFFFF => 4,
        _ => 10,
    }
}

/// Appends one text frame carrying `text`.
pub fn push_text(out: &mut Vec<u8>, text: &str) {
    push_text_header(out, text.len());
    out.extend_from_slice(text.as_bytes());
}

/// Appends the header of one text frame of `len` bytes, for a payload the caller appends
/// (one it has checked is UTF-8).
pub fn push_text_header(out: &mut Vec<u8>, len: usize) {
    header(out, TEXT, len);
}

/// One text frame carrying `text`.
pub fn text(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(header_len(text.len()) + text.len());
    push_text(&mut out, text);
    out
}

/// The answer to a ping: a pong with the same payload (at most 125 bytes, checked on read).
pub fn pong(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + payload.len());
    header(&mut out, PONG, payload.len());
    out.extend_from_slice(payload);
    out
}

/// A close frame with `code` and a reason cut to fit a control frame.
pub fn close(code: u16, reason: &str) -> Vec<u8> {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let reason = &reason.as_bytes()[..end];
    let mut out = Vec::with_capacity(4 + reason.len());
    header(&mut out, CLOSE, 2 + reason.len());
    out.extend_from_slice(&code.to_be_bytes());
    out.extend_from_slice(reason);
    out
}

/// A message from the client.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong,
    /// The client is closing, with its code if it gave one.
    Close(Option<u16>),
}

/// Why the client's bytes cannot be read as WebSocket frames: close with this code.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("websocket protocol error (close {code}): {detail}")]
pub struct ProtocolError {
    pub code: u16,
    pub detail: &'static str,
}

fn refuse(code: u16, detail: &'static str) -> ProtocolError {
    ProtocolError { code, detail }
}

/// Client frames, decoded from the bytes read so far.
#[derive(Debug, Default)]
pub struct Reader {
    buf: Vec<u8>,
    /// A fragmented message being put together: its opcode and the payload so far.
    partial: Option<(u8, Vec<u8>)>,
}

impl Reader {
    /// Starts with bytes already read past the handshake.
    pub fn with(buf: Vec<u8>) -> Self {
        Self { buf, partial: None }
    }

    /// Adds bytes read from the socket.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole message, `None` until enough bytes have arrived.
    pub fn next(&mut self) -> Result<Option<Incoming>, ProtocolError> {
        loop {
            let Some(Frame {
                fin,
                opcode,
                payload,
                used,
            }) = self.frame()?
            else {
                return Ok(None);
            };
            self.buf.drain(..used);
            if self.buf.is_empty() {
                // Most connections send one message and then only the odd ping: keep no
                // buffer for them while they idle.
                self.buf = Vec::new();
            }
            match opcode {
                CLOSE => {
                    let code =
                        (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
                    return Ok(Some(Incoming::Close(code)));
                }
                PING => return Ok(Some(Incoming::Ping(payload))),
                PONG => return Ok(Some(Incoming::Pong)),
                TEXT | BINARY if self.partial.is_some() => {
                    return Err(refuse(
                        CLOSE_PROTOCOL_ERROR,
                        "a new message began inside a fragmented one",
                    ))
                }
                TEXT | BINARY if !fin => self.partial = Some((opcode, payload)),
                TEXT | BINARY => return message(opcode, payload).map(Some),
                CONTINUATION => {
                    let Some((first, mut so_far)) = self.partial.take() else {
                        return Err(refuse(
                            CLOSE_PROTOCOL_ERROR,
                            "a continuation with no message to continue",
                        ));
                    };
                    if so_far.len() + payload.len() > MAX_MESSAGE {
                        return Err(refuse(CLOSE_TOO_BIG, "message too big"));
                    }
                    so_far.extend_from_slice(&payload);
                    if fin {
                        return message(first, so_far).map(Some);
                    }
                    self.partial = Some((first, so_far));
                }
                _ => return Err(refuse(CLOSE_PROTOCOL_ERROR, "unknown opcode")),
            }
        }
    }

    /// The first whole frame in the buffer.
    fn frame(&self) -> Result<Option<Frame>, ProtocolError> {
        let b = &self.buf;
        if b.len() < 2 {
            return Ok(None);
        }
        let (fin, rsv, opcode) = (b[0] & 0x80 != 0, b[0] & 0x70, b[0] & 0x0F);
        if rsv != 0 {
            return Err(refuse(
                CLOSE_PROTOCOL_ERROR,
                "reserved bits set with no extension agreed",
            ));
        }
        if b[1] & 0x80 == 0 {
            return Err(refuse(
                CLOSE_PROTOCOL_ERROR,
                "a client's frames must be masked",
            ));
        }
        let (len, at) = match b[1] & 0x7F {
            126 if b.len() >= 4 => (u64::from(u16::from_be_bytes([b[2], b[3]])), 4),
            127 if b.len() >= 10 => {
                let mut n = [0u8; 8];
                n.copy_from_slice(&b[2..10]);
                (u64::from_be_bytes(n), 10)
            }
            126 | 127 => return Ok(None),
            n => (u64::from(n), 2),
        };
        if opcode >= CLOSE && (!fin || len > 125) {
            return Err(refuse(
                CLOSE_PROTOCOL_ERROR,
                "a control frame must be whole and short",
            ));
        }
        if len > MAX_MESSAGE as u64 {
            return Err(refuse(CLOSE_TOO_BIG, "message too big"));
        }
        let len = len as usize;
        let start = at + 4;
        if b.len() < start + len {
            return Ok(None);
        }
        let mask = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        let payload = b[start..start + len]
            .iter()
            .enumerate()
            .map(|(i, byte)| byte ^ mask[i % 4])
            .collect();
        Ok(Some(Frame {
            fin,
            opcode,
            payload,
            used: start + len,
        }))
    }
}

/// One frame read from the client.
struct Frame {
    fin: bool,
    opcode: u8,
    /// Unmasked.
    payload: Vec<u8>,
    /// Bytes of the buffer it took.
    used: usize,
}

fn message(opcode: u8, payload: Vec<u8>) -> Result<Incoming, ProtocolError> {
    if opcode == BINARY {
        return Ok(Incoming::Binary(payload));
    }
    String::from_utf8(payload)
        .map(Incoming::Text)
        .map_err(|_| refuse(CLOSE_INVALID_DATA, "a text message must be UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client's frame: masked, as RFC 6455 requires of clients.
    fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
        match payload.len() {
            n @ 0..=125 => out.push(0x80 | n as u8),
            n @ 126..=0xFFFF => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    #[test]
    fn a_handshake_is_answered_with_the_rfc_example_key() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, "keep-alive, Upgrade".parse().unwrap());
        h.insert(header::UPGRADE, "websocket".parse().unwrap());
        h.insert(header::SEC_WEBSOCKET_VERSION, "13".parse().unwrap());
        h.insert(
            header::SEC_WEBSOCKET_KEY,
            "dGhlIHNhbXBsZSBub25jZQ==".parse().unwrap(),
        );
        assert_eq!(accept_key(&h).unwrap(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        h.insert(header::SEC_WEBSOCKET_VERSION, "8".parse().unwrap());
        assert_eq!(accept_key(&h), None, "only version 13");
        h.insert(header::SEC_WEBSOCKET_VERSION, "13".parse().unwrap());
        h.remove(header::UPGRADE);
        assert_eq!(accept_key(&h), None, "an upgrade to websocket");
    }

    #[test]
    fn frames_are_written_with_the_shortest_length_that_fits() {
        assert_eq!(text("hi"), b"\x81\x02hi");
        let mid = "x".repeat(300);
        let f = text(&mid);
        assert_eq!(&f[..4], &[0x81, 126, 0x01, 0x2c]);
        assert_eq!(f.len(), header_len(300) + 300);
        let big = "y".repeat(70_000);
        let f = text(&big);
        assert_eq!(&f[..2], &[0x81, 127]);
        assert_eq!(u64::from_be_bytes(f[2..10].try_into().unwrap()), 70_000);
        assert_eq!(f.len(), header_len(70_000) + 70_000);
        assert_eq!(pong(b"p"), b"\x8a\x01p");
        assert_eq!(close(4408, "slow"), b"\x88\x06\x11\x38slow");
        let long = "é".repeat(100);
        let c = close(1001, &long);
        assert!(
            c.len() <= 2 + 125,
            "a control frame's payload is at most 125 bytes"
        );
        assert!(
            std::str::from_utf8(&c[4..]).is_ok(),
            "cut on a character boundary"
        );
    }

    #[test]
    fn client_messages_are_read_whole_across_reads_and_fragments() {
        let mut r = Reader::default();
        let mut bytes = client_frame(false, TEXT, b"{\"type\":");
        bytes.extend(client_frame(true, PING, b"are you there"));
        bytes.extend(client_frame(true, CONTINUATION, b"\"subscribe\"}"));
        bytes.extend(client_frame(true, CLOSE, &1000u16.to_be_bytes()));
        // One byte at a time: a frame is only read once it has all arrived.
        let mut got = Vec::new();
        for b in bytes {
            r.push(&[b]);
            while let Some(m) = r.next().unwrap() {
                got.push(m);
            }
        }
        assert_eq!(
            got,
            vec![
                Incoming::Ping(b"are you there".to_vec()),
                Incoming::Text("{\"type\":\"subscribe\"}".into()),
                Incoming::Close(Some(1000)),
            ]
        );
        let mut r = Reader::with(client_frame(true, TEXT, &[b'a'; 300]));
        assert_eq!(r.next().unwrap(), Some(Incoming::Text("a".repeat(300))));
        assert_eq!(r.next().unwrap(), None);
    }

    #[test]
    fn frames_a_client_may_not_send_are_refused_with_the_right_code() {
        let refused = |bytes: Vec<u8>| Reader::with(bytes).next().unwrap_err().code;
        let mut unmasked = text("hi");
        assert_eq!(refused(unmasked.clone()), CLOSE_PROTOCOL_ERROR);
        unmasked[0] |= 0x40;
        assert_eq!(refused(unmasked), CLOSE_PROTOCOL_ERROR, "a reserved bit");
        assert_eq!(refused(client_frame(true, 0x3, b"")), CLOSE_PROTOCOL_ERROR);
        assert_eq!(
            refused(client_frame(false, PING, b"")),
            CLOSE_PROTOCOL_ERROR
        );
        assert_eq!(
            refused(client_frame(true, CONTINUATION, b"x")),
            CLOSE_PROTOCOL_ERROR
        );
        assert_eq!(
            refused(client_frame(true, TEXT, &[0xff, 0xfe])),
            CLOSE_INVALID_DATA
        );
        // Too big is refused from the header alone, before the payload is read.
        let mut big = client_frame(true, TEXT, &vec![b'a'; MAX_MESSAGE + 1]);
        big.truncate(16);
        assert_eq!(refused(big), CLOSE_TOO_BIG);
        let mut halves = client_frame(false, TEXT, &vec![b'a'; MAX_MESSAGE]);
        halves.extend(client_frame(true, CONTINUATION, b"b"));
        assert_eq!(refused(halves), CLOSE_TOO_BIG);
        let mut nested = client_frame(false, TEXT, b"a");
        nested.extend(client_frame(true, TEXT, b"b"));
        assert_eq!(refused(nested), CLOSE_PROTOCOL_ERROR);
    }
}
