//! The waiting room: a drawn line at opening, first come first served after, admission at
//! the room's rate, signed admission tokens that holds require, and a full line refused.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::helpers::{send, spawn_app_with, Backend, TestApp};

/// An app whose sweeper (which draws rooms at opening) runs often.
async fn spawn_app(backend: Backend) -> TestApp {
    let config = caja_server::ServerConfig {
        sweep_interval: std::time::Duration::from_millis(20),
        ..caja_server::ServerConfig::default()
    };
    spawn_app_with(backend, config).await
}

on_both_engines!(
    the_line_is_drawn_at_opening_and_admits_at_its_rate,
    admission_tokens_hold_only_for_their_event_client_and_time,
    a_full_line_refuses_and_stores_nothing,
    the_line_is_announced_once_per_tick_not_once_per_ticket,
);

/// An event on sale now whose room opens in a minute.
async fn event(app: &TestApp, key: &str, max_queue: i64) -> String {
    event_at(app, key, max_queue, 60).await
}

/// The same, admitting `per_minute`.
async fn event_at(app: &TestApp, key: &str, max_queue: i64, per_minute: i64) -> String {
    let now = app.store.now();
    let at = |d: chrono::Duration| caja_core::time::format(&(now + d));
    let r = send(app.post_idem(
        "/v1/events",
        key,
        &json!({
            "name": "Sold out", "starts_at": at(chrono::Duration::days(30)),
            "sale_starts_at": at(chrono::Duration::minutes(-1)), "max_per_order": 2,
            "sections": [{"name": "Floor", "price": {"amount": 100, "currency": "MXN"}, "capacity": 100}],
            "waiting_room": {"admit_per_minute": per_minute, "max_queue": max_queue, "admission_ttl": 60,
                             "opens_at": at(chrono::Duration::minutes(1))},
        }),
    ))
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

async fn join(app: &TestApp, event: &str, client: &str) -> (u16, Value) {
    let r = send(app.post(
        &format!("/v1/events/{event}/queue"),
        &json!({"client_ref": client}),
    ))
    .await;
    (r.status, r.body)
}

async fn ticket(app: &TestApp, event: &str, id: &str) -> Value {
    let r = send(app.get(&format!("/v1/events/{event}/queue/{id}"))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

/// Waits for the sweeper to draw the room that just opened (it runs every second).
async fn drawn(app: &TestApp, event: &str, id: &str) {
    for _ in 0..200 {
        if ticket(app, event, id).await["status"] != "drawing" {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("the room was never drawn");
}

async fn hold_with(
    app: &TestApp,
    event: &str,
    key: &str,
    token: Option<&str>,
    client: &str,
) -> (u16, Value) {
    let mut body = json!({"section": "Floor", "quantity": 1});
    if let Some(t) = token {
        body["admission"] = json!(t);
        body["client_ref"] = json!(client);
    }
    let r = send(app.post_idem(&format!("/v1/events/{event}/holds"), key, &body)).await;
    (r.status, r.body)
}

async fn the_line_is_drawn_at_opening_and_admits_at_its_rate(backend: Backend) {
    let app = spawn_app(backend).await;
    // One a minute: the seconds real time adds while the test runs never cross an admission.
    let ev = event_at(&app, "event", 1000, 1).await;
    let mut tickets = Vec::new();
    for c in 0..30 {
        let (status, t) = join(&app, &ev, &format!("client-{c}")).await;
        assert_eq!(status, 201, "{t}");
        assert_eq!(t["status"], "drawing");
        tickets.push(t["id"].as_str().unwrap().to_owned());
    }
    // The same client again: its ticket, not a second one.
    let (status, again) = join(&app, &ev, "client-7").await;
    assert_eq!(
        (status, again["id"].as_str()),
        (200, Some(tickets[7].as_str()))
    );
    let before = ticket(&app, &ev, &tickets[0]).await;
    assert_eq!(before["status"], "drawing");
    assert!(before["position"].is_null());
    // No hold without an admission.
    let (status, refused) = hold_with(&app, &ev, "no-token", None, "").await;
    assert_eq!(
        (status, refused["type"].as_str()),
        (403, Some("admission-required"))
    );

    // At opening the pre-queue is drawn: one admitted now, the others at places 1..29.
    app.clock.advance(chrono::Duration::minutes(1));
    drawn(&app, &ev, &tickets[0]).await;
    let mut positions = BTreeSet::new();
    let mut admitted = Vec::new();
    for (c, id) in tickets.iter().enumerate() {
        let t = ticket(&app, &ev, id).await;
        match t["status"].as_str().unwrap() {
            "waiting" => {
                positions.insert(t["position"].as_i64().unwrap());
            }
            "admitted" => admitted.push((c, t)),
            other => panic!("{other}: {t}"),
        }
    }
    assert_eq!(admitted.len(), 1);
    assert_eq!(
        positions,
        (1..30).collect::<BTreeSet<i64>>(),
        "a permutation"
    );
    // A later joiner stands at the end.
    let (_, late) = join(&app, &ev, "late").await;
    let late = ticket(&app, &ev, late["id"].as_str().unwrap()).await;
    assert_eq!(
        (late["status"].as_str(), late["position"].as_i64()),
        (Some("waiting"), Some(30))
    );
    let wait = late["estimated_wait_seconds"].as_i64().unwrap();
    assert!((30 * 60 - 10..=30 * 60).contains(&wait), "{wait}");

    let (c, first) = &admitted[0];
    let token = first["admission"].as_str().unwrap();
    let (status, held) = hold_with(&app, &ev, "hold-1", Some(token), &format!("client-{c}")).await;
    assert_eq!(status, 201, "{held}");
    let (status, used) = hold_with(&app, &ev, "hold-2", Some(token), &format!("client-{c}")).await;
    assert_eq!(
        (status, used["type"].as_str()),
        (409, Some("admission-used"))
    );
    // Ten minutes on, ten more were admitted (each admission lasts a minute), and no more.
    app.clock.advance(chrono::Duration::minutes(10));
    let mut let_in = 0;
    for id in &tickets {
        if ticket(&app, &ev, id).await["status"] != "waiting" {
            let_in += 1;
        }
    }
    assert_eq!(let_in, 11);
    app.assert_books_balance().await;

    // `caja check` catches a line that admits faster than its rate.
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&app.db.url).await.unwrap();
    sqlx::query("UPDATE queue_tickets SET admit_at = $1 WHERE client_ref = 'late'")
        .bind(late["admit_at"].as_str().map(|at| {
            let at =
                caja_core::time::parse("at", at).unwrap() - chrono::Duration::milliseconds(500);
            caja_core::time::format(&at)
        }))
        .execute(&pool)
        .await
        .unwrap();
    let (_, violations) = app.store.check().await.unwrap();
    assert!(
        violations
            .iter()
            .any(|v| v.invariant == "no waiting room admits faster than admit_per_minute"),
        "{violations:#?}"
    );
}

async fn admission_tokens_hold_only_for_their_event_client_and_time(backend: Backend) {
    let app = spawn_app(backend).await;
    let ev = event(&app, "event-a", 1000).await;
    let other = event(&app, "event-b", 1000).await;
    let (_, a) = join(&app, &ev, "alice").await;
    let (_, b) = join(&app, &ev, "bob").await;
    app.clock
        .advance(chrono::Duration::minutes(1) + chrono::Duration::seconds(2));
    drawn(&app, &ev, a["id"].as_str().unwrap()).await;
    let token = |t: Value| t["admission"].as_str().unwrap().to_owned();
    let alice = token(ticket(&app, &ev, a["id"].as_str().unwrap()).await);
    let bob = token(ticket(&app, &ev, b["id"].as_str().unwrap()).await);
    // Bob's token in Alice's hands, a token for another event, a forged one.
    for (key, tok, client, event) in [
        ("stolen", bob.as_str(), "alice", ev.as_str()),
        ("other-event", alice.as_str(), "alice", other.as_str()),
    ] {
        let (status, r) = hold_with(&app, event, key, Some(tok), client).await;
        assert_eq!(
            (status, r["type"].as_str()),
            (403, Some("admission-invalid")),
            "{key}: {r}"
        );
    }
    // The last hex digit changed (to another digit whatever it was).
    let last = if alice.ends_with('0') { "1" } else { "0" };
    let forged = format!("{}{last}", &alice[..alice.len() - 1]);
    let (status, r) = hold_with(&app, &ev, "forged", Some(&forged), "alice").await;
    assert_eq!(
        (status, r["type"].as_str()),
        (403, Some("admission-invalid")),
        "{r}"
    );
    // An admission lasts its TTL.
    app.clock.advance(chrono::Duration::seconds(61));
    let (status, r) = hold_with(&app, &ev, "late", Some(&alice), "alice").await;
    assert_eq!(
        (status, r["type"].as_str()),
        (403, Some("admission-invalid")),
        "{r}"
    );
    let expired = ticket(&app, &ev, a["id"].as_str().unwrap()).await;
    assert_eq!(expired["status"], "expired");
    // Bob was admitted a second after Alice: his admission has run out too.
    let bob_ticket = ticket(&app, &ev, b["id"].as_str().unwrap()).await;
    assert_eq!(bob_ticket["status"], "expired");
}

async fn a_full_line_refuses_and_stores_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let ev = event(&app, "event", 3).await;
    for c in 0..3 {
        assert_eq!(join(&app, &ev, &format!("c{c}")).await.0, 201);
    }
    let r = send(app.post(
        &format!("/v1/events/{ev}/queue"),
        &json!({"client_ref": "c3"}),
    ))
    .await;
    r.assert_problem(503, "queue-full");
    assert!(r.header("retry-after").is_some());
    // Nothing was stored: once the line moves, the same client joins afresh.
    app.clock
        .advance(chrono::Duration::minutes(1) + chrono::Duration::seconds(1));
    let (status, t) = join(&app, &ev, "c3").await;
    assert_eq!(status, 201, "{t}");
    let (status, bad) = join(&app, &ev, "").await;
    assert_eq!((status, bad["type"].as_str()), (422, Some("invalid-field")));
    let none = send(app.post(
        "/v1/events/evt_01J00000000000000000000000/queue",
        &json!({"client_ref": "x"}),
    ))
    .await;
    none.assert_problem(404, "not-found");
}

/// The `queue.advanced` events of one room, from the change feed.
async fn announcements(app: &TestApp, event: &str) -> Vec<Value> {
    let r = send(app.get(&format!(
        "/v1/changes?after=0&limit=1000&topics=queue:{event}"
    )))
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["data"].as_array().unwrap().clone()
}

async fn the_line_is_announced_once_per_tick_not_once_per_ticket(backend: Backend) {
    let app = spawn_app(backend).await;
    let ev = event(&app, "event", 1000).await;
    for c in 0..50 {
        assert_eq!(join(&app, &ev, &format!("c{c}")).await.0, 201);
    }
    // Straight past the admission of all fifty: one tick, one event.
    app.clock
        .advance(chrono::Duration::minutes(1) + chrono::Duration::seconds(100));
    let mut seen = Vec::new();
    for _ in 0..200 {
        seen = announcements(&app, &ev).await;
        if !seen.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0]["type"], "queue.advanced");
    assert_eq!(seen[0]["data"]["admitted"], 50);
    assert_eq!(seen[0]["data"]["waiting"], 0);
    // Ticks in which nothing moved announce nothing; a newcomer, let in at once, does.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(announcements(&app, &ev).await.len(), 1);
    assert_eq!(join(&app, &ev, "late").await.0, 201);
    for _ in 0..200 {
        seen = announcements(&app, &ev).await;
        if seen.len() > 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[1]["data"]["admitted"], 51);
    // A public key may follow the line.
    let public = app.key(caja_core::auth::Role::Public).await;
    let r = send(
        app.client
            .get(app.url(&format!("/v1/changes?after=0&topics=queue:{ev}")))
            .bearer_auth(&public),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
}
