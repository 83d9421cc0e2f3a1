//! A connection's first request head, read and checked before hyper sees it, so that a
//! head hyper would refuse with an empty body (garbage in the request line, bytes a header
//! may not hold, a head or a URI too long) gets a problem+json answer like every other
//! refusal. The bytes read are then handed to hyper unchanged ([`Rewind`]).
//!
//! Only the first request of a connection is checked here: later requests on a kept-alive
//! connection are read by hyper alone, which refuses a malformed one with a bare 400.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::StatusCode;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use crate::error::{ApiError, PROBLEM_JSON};

/// Longest request head accepted (431 above).
pub const MAX_HEAD: usize = 64 * 1024;
/// Longest request target accepted (414 above).
pub const MAX_URI: usize = 8 * 1024;
/// Most header fields in one request (431 above).
const MAX_HEADERS: usize = 100;

/// What reading the first head came to.
pub enum FirstHead {
    /// A well-formed head (and whatever followed it): serve it.
    Serve(Rewind),
    /// Refused, answered and closed; or the client left or sent nothing in time.
    Done,
}

/// Reads until the first head is complete, then checks it.
pub async fn read(mut stream: TcpStream, within: Duration) -> FirstHead {
    let mut buf = Vec::with_capacity(1024);
    let read = tokio::time::timeout(within, async {
        let mut chunk = [0u8; 4096];
        loop {
            match check(&buf) {
                Check::Complete => return Ok(()),
                Check::Refused(e) => return Err(Some(e)),
                Check::Partial => {}
            }
            let n = stream.read(&mut chunk).await.map_err(|_| None)?;
            if n == 0 {
                return Err(None);
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    })
    .await;
    match read {
        Ok(Ok(())) => FirstHead::Serve(Rewind {
            prefix: buf,
            at: 0,
            inner: stream,
        }),
        Ok(Err(Some(refusal))) => {
            answer(&mut stream, &refusal).await;
            FirstHead::Done
        }
        // The client left, or sent no whole head in time: nothing to answer.
        Ok(Err(None)) | Err(_) => FirstHead::Done,
    }
}

enum Check {
    Complete,
    Partial,
    Refused(ApiError),
}

fn check(buf: &[u8]) -> Check {
    if buf.is_empty() {
        return Check::Partial;
    }
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(status) => {
            if req.path.is_some_and(|p| p.len() > MAX_URI) {
                return Check::Refused(too_long_uri());
            }
            if status.is_complete() {
                Check::Complete
            } else if buf.len() > MAX_HEAD {
                Check::Refused(too_large_head())
            } else {
                Check::Partial
            }
        }
        Err(httparse::Error::TooManyHeaders) => Check::Refused(too_large_head()),
        Err(e) => Check::Refused(ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed-request",
            "Malformed request",
            format!("the request head is not HTTP/1.1: {e}"),
        )),
    }
}

fn too_large_head() -> ApiError {
    ApiError::new(
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "header-fields-too-large",
        "Request head too large",
        format!("the request head exceeds {MAX_HEAD} bytes or {MAX_HEADERS} fields"),
    )
}

fn too_long_uri() -> ApiError {
    ApiError::new(
        StatusCode::URI_TOO_LONG,
        "uri-too-long",
        "URI too long",
        format!("the request target exceeds {MAX_URI} bytes"),
    )
}

/// Writes the refusal and closes: the head could not be trusted, so neither can what
/// follows it on this connection.
async fn answer(stream: &mut TcpStream, refusal: &ApiError) {
    let id = format!("req_{}", ulid::Ulid::new());
    let body = refusal.body(Some(id.clone()));
    let status = refusal.status();
    let head = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: {PROBLEM_JSON}\r\ncontent-length: {}\r\n\
         x-request-id: {id}\r\nconnection: close\r\n\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body.as_bytes()).await;
    let _ = stream.shutdown().await;
    metrics::counter!("caja_http_requests_total", "method" => "-", "route" => "malformed", "status" => status.as_u16().to_string()).increment(1);
}

/// A stream that first replays bytes already read from it.
pub struct Rewind {
    prefix: Vec<u8>,
    at: usize,
    inner: TcpStream,
}

impl Rewind {
    /// The connection itself, and the bytes read from it that were not handed on yet: what
    /// an upgraded connection (a WebSocket) reads first.
    pub fn into_parts(self) -> (TcpStream, Vec<u8>) {
        let unread = self.prefix.get(self.at..).unwrap_or_default().to_vec();
        (self.inner, unread)
    }
}

impl AsyncRead for Rewind {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.at < self.prefix.len() {
            let n = out.remaining().min(self.prefix.len() - self.at);
            let at = self.at;
            out.put_slice(&self.prefix[at..at + n]);
            self.at += n;
            if self.at == self.prefix.len() {
                self.prefix = Vec::new();
                self.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, out)
    }
}

impl AsyncWrite for Rewind {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(head: &[u8]) -> Option<u16> {
        match check(head) {
            Check::Refused(e) => Some(e.status().as_u16()),
            _ => None,
        }
    }

    #[test]
    fn good_heads_pass_and_bad_ones_get_their_status() {
        assert!(matches!(
            check(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"),
            Check::Complete
        ));
        assert!(matches!(check(b"GET /health HT"), Check::Partial));
        assert_eq!(refused(b"\x00\x01garbage\r\n\r\n"), Some(400));
        assert_eq!(
            refused(b"GET / HTTP/1.1\r\nX-Bad: a\x01b\r\n\r\n"),
            Some(400)
        );
        let long_uri = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(MAX_URI + 1));
        assert_eq!(refused(long_uri.as_bytes()), Some(414));
        let long_head = format!("GET / HTTP/1.1\r\nX-Big: {}", "a".repeat(MAX_HEAD + 1));
        assert_eq!(refused(long_head.as_bytes()), Some(431));
        let many: String = (0..=MAX_HEADERS).map(|i| format!("X-{i}: 1\r\n")).collect();
        let many = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert_eq!(refused(many.as_bytes()), Some(431));
    }
}
