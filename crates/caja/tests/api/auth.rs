//! Keys and roles: 401 without a valid key, 403 for the wrong role, rate limits.

use caja_core::auth::Role;
use caja_core::rate::RateLimit;
use caja_server::ServerConfig;
use serde_json::json;

use crate::helpers::{send, spawn_app, spawn_app_with, Backend};

on_both_engines!(
    no_key_or_an_unknown_key_is_401,
    a_revoked_key_is_401,
    a_clerk_reads_but_cannot_write_the_catalog,
    requests_without_a_valid_key_are_rate_limited_per_ip,
    a_key_with_a_rate_limit_is_throttled_and_others_are_not,
    using_a_key_records_when_it_was_last_used,
);

async fn no_key_or_an_unknown_key_is_401(backend: Backend) {
    let app = spawn_app(backend).await;
    send(app.client.get(app.url("/v1/products")))
        .await
        .assert_problem(401, "unauthorized");
    send(
        app.client
            .get(app.url("/v1/products"))
            .bearer_auth("caja_not-a-real-key"),
    )
    .await
    .assert_problem(401, "unauthorized");
    send(app.client.post(app.url("/v1/products")).json(&json!({})))
        .await
        .assert_problem(401, "unauthorized");
}

async fn a_revoked_key_is_401(backend: Backend) {
    let app = spawn_app(backend).await;
    let clerk = app.key(Role::Clerk).await;
    let ok = send(app.client.get(app.url("/v1/products")).bearer_auth(&clerk)).await;
    assert_eq!(ok.status, 200);
    app.revoke_first(Role::Clerk).await;
    let r = send(app.client.get(app.url("/v1/products")).bearer_auth(&clerk)).await;
    r.assert_problem(401, "unauthorized");
    assert!(r.body["detail"].as_str().unwrap().contains("revoked"));
}

async fn a_clerk_reads_but_cannot_write_the_catalog(backend: Backend) {
    let app = spawn_app(backend).await;
    let p = app.product("READ-ME", 3).await;
    let path = format!("/v1/products/{}", p["id"].as_str().unwrap());
    let clerk = app.key(Role::Clerk).await;
    assert_eq!(
        send(app.client.get(app.url(&path)).bearer_auth(&clerk))
            .await
            .status,
        200
    );
    assert_eq!(
        send(app.client.get(app.url("/v1/products")).bearer_auth(&clerk))
            .await
            .status,
        200
    );
    let body = json!({"sku": "NEW", "name": "New", "price": {"amount": 1, "currency": "MXN"}});
    send(
        app.client
            .post(app.url("/v1/products"))
            .bearer_auth(&clerk)
            .json(&body),
    )
    .await
    .assert_problem(403, "forbidden");
    send(
        app.client
            .patch(app.url(&path))
            .bearer_auth(&clerk)
            .header("if-match", "\"1\"")
            .json(&json!({"name": "x"})),
    )
    .await
    .assert_problem(403, "forbidden");
    send(
        app.client
            .delete(app.url(&path))
            .bearer_auth(&clerk)
            .header("if-match", "\"1\""),
    )
    .await
    .assert_problem(403, "forbidden");
    assert_eq!(
        send(app.get(&path)).await.body,
        p,
        "refused writes changed nothing"
    );
}

async fn requests_without_a_valid_key_are_rate_limited_per_ip(backend: Backend) {
    let config = ServerConfig {
        anonymous_rate_limit: RateLimit {
            per_second: 1,
            burst: 3,
        },
        ..ServerConfig::default()
    };
    let app = spawn_app_with(backend, config).await;
    for _ in 0..3 {
        send(
            app.client
                .get(app.url("/v1/products"))
                .bearer_auth("caja_guess"),
        )
        .await
        .assert_problem(401, "unauthorized");
    }
    let limited = send(
        app.client
            .get(app.url("/v1/products"))
            .bearer_auth("caja_guess"),
    )
    .await;
    limited.assert_problem(429, "rate-limited");
    let retry: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry));
    send(app.client.get(app.url("/v1/products")))
        .await
        .assert_problem(429, "rate-limited");
    // The address is refused before any key is looked up: a key guessed right from there
    // is no use to the guesser, and costs the server nothing to refuse.
    send(app.get("/v1/products"))
        .await
        .assert_problem(429, "rate-limited");
}

async fn a_key_with_a_rate_limit_is_throttled_and_others_are_not(backend: Backend) {
    let app = spawn_app(backend).await;
    let slow = app.key_with(Role::Clerk, Some("1/s:2")).await;
    let req = || app.client.get(app.url("/v1/products")).bearer_auth(&slow);
    assert_eq!(send(req()).await.status, 200);
    assert_eq!(send(req()).await.status, 200);
    let r = send(req()).await;
    r.assert_problem(429, "rate-limited");
    assert!(r.header("retry-after").is_some());
    for _ in 0..50 {
        assert_eq!(
            send(app.get("/v1/products")).await.status,
            200,
            "keys without a rate are unlimited"
        );
    }
}

async fn using_a_key_records_when_it_was_last_used(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(send(app.get("/v1/products")).await.status, 200);
    for _ in 0..100 {
        let keys = app.store.list_keys().await.unwrap();
        if keys.iter().any(|k| k.last_used_at.is_some()) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("last_used_at was never recorded");
}
