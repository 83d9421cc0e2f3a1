//! caja's HTTP API.
//!
//! [`router`] builds the whole app from an [`AppState`] and [`serve`] runs it on a listener
//! until a cancellation token fires, so tests bind port 0 and drive the same app the binary
//! runs.

mod accept;
mod auth;
mod config;
pub mod dispatch;
mod error;
mod fanout;
mod first_head;
mod idempotent;
mod jobs;
mod json;
mod key_cache;
mod limits;
mod live;
mod maintenance;
mod metrics;
mod openapi;
pub mod payments;
mod presenter;
mod request;
mod routes;
mod state;
mod versions;
mod web;
mod websocket;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderName, Method};
use axum::response::{IntoResponse, Response};
use axum::{middleware, Router};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};

pub use accept::ConnectionLimits;
pub use config::ServerConfig;
pub use error::{ApiError, PROBLEM_JSON};
pub use openapi::openapi_document;
pub use presenter::presenter;
pub use state::AppState;

/// The whole HTTP app.
pub fn router(state: AppState) -> Router {
    let config = state.config();
    // What stands before every API route, outermost first: the time bound, the key (unless
    // the route authenticates otherwise), maintenance mode. One stack, not a `route_layer`
    // call each: every such call boxes each route once more, and each `from_fn` clones the
    // service inside it on every request (five stacked calls made 55 allocations a request).
    let guards = |authenticate: bool| {
        ServiceBuilder::new()
            .layer(middleware::from_fn_with_state(
                state.clone(),
                request::timeout,
            ))
            .option_layer(
                authenticate
                    .then(|| middleware::from_fn_with_state(state.clone(), auth::authenticate)),
            )
            .layer(middleware::from_fn_with_state(
                state.clone(),
                maintenance::guard,
            ))
    };
    let v1 = routes::products::router()
        .merge(routes::stock::router())
        .merge(routes::orders::router())
        .merge(routes::tabs::router())
        .merge(routes::changes::router())
        .merge(routes::maintenance::router())
        .merge(routes::audit::router())
        .merge(routes::webhooks::router())
        .merge(routes::subscriptions::router())
        .merge(routes::events::router())
        .merge(routes::locations::router())
        .merge(routes::transfers::router())
        .route_layer(guards(true));
    // Signed by the provider instead of a key; maintenance mode and timeouts still apply.
    let webhooks = routes::webhooks::public_router().route_layer(guards(false));
    let cors = (!config.cors_origins.is_empty()).then(|| cors(config));
    Router::new()
        .merge(v1)
        .merge(webhooks)
        // Authenticates itself (a browser cannot send headers on a WebSocket) and lives
        // longer than any request timeout.
        .merge(routes::stream::router())
        .merge(routes::ops::router())
        .merge(web::router())
        .fallback(|| async { ApiError::not_found("no such route") })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .layer(
            ServiceBuilder::new()
                .layer(middleware::from_fn(request::observe))
                .option_layer(cors)
                .layer(middleware::from_fn_with_state(
                    state.clone(),
                    request::declared_length,
                ))
                .layer(CatchPanicLayer::custom(|_| panic_response()))
                .layer(DefaultBodyLimit::max(config.body_limit)),
        )
        .with_state(state)
}

fn panic_response() -> Response {
    ApiError::internal(&std::io::Error::other("a request handler panicked")).into_response()
}

fn cors(config: &ServerConfig) -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(config.cors_origins.clone()))
        .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_MATCH,
            HeaderName::from_static("idempotency-key"),
            HeaderName::from_static(request::REQUEST_ID),
        ])
        .expose_headers([
            header::ETAG,
            header::LOCATION,
            header::RETRY_AFTER,
            HeaderName::from_static(request::REQUEST_ID),
        ])
}

/// Serves the app on `listener` until `shutdown` fires, then ends every live stream, stops
/// accepting, and returns once in-flight requests are done. The caller bounds that wait.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let app = router(state.clone());
    jobs::spawn(&state, shutdown.clone());
    dispatch::spawn(&state, shutdown.clone());
    let stopping = CancellationToken::new();
    let begin = {
        let (state, stopping) = (state.clone(), stopping.clone());
        async move {
            shutdown.cancelled().await;
            state.begin_shutdown();
            stopping.cancel();
        }
    };
    tokio::join!(
        begin,
        accept::run(listener, app, state.config().connections, stopping.clone())
    );
    Ok(())
}
