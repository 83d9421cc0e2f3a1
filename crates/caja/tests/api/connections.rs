//! Connections a hostile client holds open: idle sockets, half a request line, one header
//! a second. None of them may starve the server of descriptors.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::cli::{Server, REPLICA_KEY};
use crate::helpers::{Backend, TestDb};

/// 300 sockets that never finish a request head, against a server allowed 256 open files:
/// they are closed after the header-read timeout, the connection bound keeps descriptors
/// for the database, and `/health` keeps answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_idle_sockets_do_not_starve_a_server_with_256_descriptors() {
    let db = TestDb::new(Backend::Sqlite).await;
    let server = Server::start_limited(
        &db,
        // Long enough that all 300 are open at once even on a busy machine (the limit must
        // be reached), short enough that /health gets a slot well within its bound.
        &["--header-read-timeout", "3"],
        &[("CAJA_ADMIN_KEY", REPLICA_KEY)],
        Some(256),
    );
    let addr = server.base.trim_start_matches("http://").to_owned();
    let mut idle = Vec::new();
    for i in 0..300 {
        let mut s = TcpStream::connect(&addr).await.expect("connect");
        match i % 3 {
            0 => {}
            1 => s.write_all(b"GET /health HT").await.unwrap(),
            _ => s.write_all(b"GET /health HTTP/1.1\r\n").await.unwrap(),
        }
        idle.push(s);
    }
    // The third kind drips a header every 300 ms, as a slow-loris client would.
    let mut drips: Vec<TcpStream> = idle.drain(200..).collect();
    let dripping = tokio::spawn(async move {
        for round in 0..10 {
            for s in drips.iter_mut() {
                let _ = s
                    .write_all(format!("X-Drip-{round}: 1\r\n").as_bytes())
                    .await;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        drips
    });

    // A new connection per request: the server closes idle ones (that is the point), and a
    // kept one could be reused just as it does.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let started = Instant::now();
    let health = client
        .get(format!("{}/health", server.base))
        .send()
        .await
        .expect("/health answers while 300 sockets hang");
    assert_eq!(health.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(8));

    // Every hanging socket was closed by the server, the slow-loris ones included.
    idle.extend(dripping.await.unwrap());
    assert_eq!(idle.len(), 300);
    for mut s in idle {
        let mut buf = [0u8; 256];
        // Generous: the bound only matters when a socket is never closed, and the whole
        // suite shares two cores with this server.
        let closed = tokio::time::timeout(Duration::from_secs(15), async {
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => continue,
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "an idle socket stayed open");
    }
    let log = server.log();
    assert!(log.contains("connection limit reached"), "{log}");
    let ready = client
        .get(format!("{}/ready", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
}
