//! Bad input of every shape gets problem+json with the right status; never a 500.

use serde_json::json;

use caja_server::ServerConfig;

use crate::helpers::{send, spawn_app, spawn_app_with, Backend};

on_both_engines!(
    malformed_json_names_line_and_column,
    missing_unknown_and_mistyped_fields_are_named,
    a_body_over_the_limit_is_refused_with_413,
    a_body_that_is_not_json_is_415,
    unknown_routes_are_404_and_wrong_methods_405,
    every_response_carries_a_request_id,
    no_input_produces_a_server_error,
    bad_paging_parameters_are_400,
    a_request_over_the_timeout_is_503,
);

async fn malformed_json_names_line_and_column(backend: Backend) {
    let app = spawn_app(backend).await;
    let r = send(
        app.client
            .post(app.url("/v1/products"))
            .bearer_auth(&app.admin_key)
            .header("content-type", "application/json")
            .body("{\n  \"sku\": \"A\",\n  \"name\" \"B\"\n}"),
    )
    .await;
    r.assert_problem(400, "malformed-json");
    assert_eq!(r.body["line"], 3);
    assert!(r.body["column"].as_u64().unwrap() > 0);
    assert!(r.body["detail"].as_str().unwrap().contains("line 3"));
}

async fn missing_unknown_and_mistyped_fields_are_named(backend: Backend) {
    let app = spawn_app(backend).await;
    let cases = [
        (
            json!({"name": "A", "price": {"amount": 1, "currency": "MXN"}}),
            "sku",
        ),
        (
            json!({"sku": "A", "name": "A", "price": {"amount": 1}}),
            "price.currency",
        ),
        (
            json!({"sku": "A", "name": "A", "price": {"amount": 1, "currency": "MXN"}, "colour": "red"}),
            "colour",
        ),
        (
            json!({"sku": "A", "name": "A", "price": {"amount": "1", "currency": "MXN"}}),
            "price.amount",
        ),
        (
            json!({"sku": "A", "name": "A", "price": {"amount": 1, "currency": "MXN"}, "stock": -1}),
            "stock",
        ),
        (
            json!({"sku": "has space", "name": "A", "price": {"amount": 1, "currency": "MXN"}}),
            "sku",
        ),
        (
            json!({"sku": "A", "name": "   ", "price": {"amount": 1, "currency": "MXN"}}),
            "name",
        ),
    ];
    for (body, field) in cases {
        let r = send(app.post("/v1/products", &body)).await;
        r.assert_problem(422, "invalid-field");
        assert_eq!(r.body["field"], field, "{body}");
    }
}

async fn a_body_over_the_limit_is_refused_with_413(backend: Backend) {
    let app = spawn_app(backend).await;
    let big = format!(
        "{{\"sku\": \"A\", \"name\": \"{}\"}}",
        "x".repeat(1024 * 1024)
    );
    let r = send(
        app.client
            .post(app.url("/v1/products"))
            .bearer_auth(&app.admin_key)
            .header("content-type", "application/json")
            .body(big),
    )
    .await;
    r.assert_problem(413, "payload-too-large");

    let small = spawn_app_with(
        backend,
        ServerConfig {
            body_limit: 64,
            ..ServerConfig::default()
        },
    )
    .await;
    let r = send(small.post(
        "/v1/products",
        &json!({"sku": "A", "name": "x".repeat(100), "price": {"amount": 1, "currency": "MXN"}}),
    ))
    .await;
    r.assert_problem(413, "payload-too-large");
    assert_eq!(r.body["limit_bytes"], 64);
}

async fn a_body_that_is_not_json_is_415(backend: Backend) {
    let app = spawn_app(backend).await;
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let mut req = app
            .client
            .post(app.url("/v1/products"))
            .bearer_auth(&app.admin_key)
            .body("sku=A");
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        send(req)
            .await
            .assert_problem(415, "unsupported-media-type");
    }
}

async fn unknown_routes_are_404_and_wrong_methods_405(backend: Backend) {
    let app = spawn_app(backend).await;
    send(app.get("/v1/nothing-here"))
        .await
        .assert_problem(404, "not-found");
    send(app.client.get(app.url("/nope")))
        .await
        .assert_problem(404, "not-found");
    send(
        app.client
            .put(app.url("/v1/products"))
            .bearer_auth(&app.admin_key),
    )
    .await
    .assert_problem(405, "method-not-allowed");
    send(app.client.post(app.url("/health")))
        .await
        .assert_problem(405, "method-not-allowed");
}

async fn every_response_carries_a_request_id(backend: Backend) {
    let app = spawn_app(backend).await;
    let r = send(app.get("/v1/products")).await;
    assert!(r.header("x-request-id").unwrap().starts_with("req_"));
    let r = send(
        app.client
            .get(app.url("/health"))
            .header("x-request-id", "till-7:abc.123"),
    )
    .await;
    assert_eq!(r.header("x-request-id"), Some("till-7:abc.123"));
    let r = send(
        app.client
            .get(app.url("/health"))
            .header("x-request-id", "bad id\twith spaces"),
    )
    .await;
    assert!(r.header("x-request-id").unwrap().starts_with("req_"));
    let r = send(app.client.get(app.url("/v1/products"))).await;
    r.assert_problem(401, "unauthorized");
}

async fn no_input_produces_a_server_error(backend: Backend) {
    let app = spawn_app(backend).await;
    let p = app.product("SAFE", 1).await;
    let item = format!("/v1/products/{}", p["id"].as_str().unwrap());
    let bodies = [
        "", "null", "[]", "{}", "\"x\"", "1e999", "{\"sku\": null}", "{\"price\": []}",
        "{\"sku\": \"A\", \"name\": \"A\", \"price\": {\"amount\": 99999999999999999999, \"currency\": \"MXN\"}}",
        "{\"sku\": \"A\", \"name\": \"A\", \"price\": {\"amount\": 1.5, \"currency\": \"MXN\"}}",
        "{\"sku\": \"\\u0000\", \"name\": \"\\ud800\", \"price\": {\"amount\": 1, \"currency\": \"MX\"}}",
        "\u{feff}{}", "{\"a\":", "{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{",
    ];
    for body in bodies {
        for (method, path) in [("POST", "/v1/products"), ("PATCH", item.as_str())] {
            let req = app
                .client
                .request(method.parse().unwrap(), app.url(path))
                .bearer_auth(&app.admin_key)
                .header("content-type", "application/json")
                .header("if-match", "\"1\"")
                .body(body.to_owned());
            let r = send(req).await;
            assert!(
                (400..500).contains(&r.status),
                "{method} {path} {body:?} -> {}",
                r.status
            );
            assert_eq!(r.header("content-type"), Some("application/problem+json"));
        }
    }
    let deep = "[".repeat(10_000);
    let r = send(
        app.client
            .post(app.url("/v1/products"))
            .bearer_auth(&app.admin_key)
            .header("content-type", "application/json")
            .body(deep),
    )
    .await;
    assert!((400..500).contains(&r.status));
    for path in [
        "/v1/products/%00",
        "/v1/products/prod_%F0%9F%92%A9",
        "/v1/products?limit=abc",
        "/v1/products?limit=-1&after=%00",
        "/v1//products",
        "/v1/products/a/b",
    ] {
        let r = send(app.get(path)).await;
        assert!((400..500).contains(&r.status), "{path} -> {}", r.status);
    }
    for auth in [
        "Bearer",
        "Bearer ",
        "Basic abc",
        "bearer \tcaja_x",
        "Bearer caja_x caja_y",
    ] {
        let r = send(
            app.client
                .get(app.url("/v1/products"))
                .header("authorization", auth),
        )
        .await;
        assert_eq!(r.status, 401, "{auth:?}");
    }
}

async fn bad_paging_parameters_are_400(backend: Backend) {
    let app = spawn_app(backend).await;
    send(app.get("/v1/products?limit=0"))
        .await
        .assert_problem(400, "invalid-query");
    send(app.get("/v1/products?limit=201"))
        .await
        .assert_problem(400, "invalid-query");
    send(app.get("/v1/products?limit=ten"))
        .await
        .assert_problem(400, "invalid-query");
    send(app.get("/v1/products?after=garbage"))
        .await
        .assert_problem(400, "invalid-cursor");
    assert_eq!(send(app.get("/v1/products?limit=200")).await.status, 200);
}

async fn a_request_over_the_timeout_is_503(backend: Backend) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let config = ServerConfig {
        request_timeout: std::time::Duration::from_millis(300),
        ..ServerConfig::default()
    };
    let app = spawn_app_with(backend, config).await;
    // A client that announces a body and then stalls holds the request open past the bound.
    let mut stream = tokio::net::TcpStream::connect(app.base.trim_start_matches("http://"))
        .await
        .unwrap();
    let head = format!(
        "POST /v1/products HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"sku\":",
        app.admin_key
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    let started = std::time::Instant::now();
    while !String::from_utf8_lossy(&response).contains("\r\n\r\n{") || !response.ends_with(b"}") {
        let n = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("answered within the bound")
            .unwrap();
        if n == 0 {
            break;
        }
        response.extend_from_slice(&buf[..n]);
    }
    assert!(started.elapsed() >= std::time::Duration::from_millis(250));
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(
        text.to_ascii_lowercase().contains("retry-after: 1"),
        "{text}"
    );
    assert!(text.contains("\"type\":\"timeout\""), "{text}");
    let list = send(app.get("/v1/products")).await;
    assert_eq!(
        list.body["data"],
        serde_json::json!([]),
        "nothing was written"
    );
}
