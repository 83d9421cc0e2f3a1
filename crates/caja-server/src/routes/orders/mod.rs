//! `/v1/orders`: checkout and the order lifecycle. Every POST is a command on the store's
//! one writer, idempotent; refusals are stored and replayed like successes.

mod bodies;
mod checkout;
mod lifecycle;
mod provider;
mod read;

use axum::routing::{get, post};
use axum::Router;

use crate::AppState;

pub use bodies::{
    parse_customer, parse_tip, CreateOrder, CustomerBody, EmptyBody, HandOverBody, HandoverBody,
    LineBody, OrderBody, OrderLineBody, OrderPage, PaymentBody, RefundBody,
};
pub use checkout::{__path_create, create};
pub use lifecycle::{
    __path_cancel, __path_fulfill, __path_hand_over, __path_pay, __path_refund, cancel, fulfill,
    hand_over, pay, refund,
};
pub use provider::{__path_checkout, checkout, CheckoutBody};
pub use read::{__path_list, __path_read, list, read};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/orders", get(list).post(create))
        .route("/v1/orders/{id}", get(read))
        .route("/v1/orders/{id}/payments", post(pay))
        .route("/v1/orders/{id}/checkout", post(checkout))
        .route("/v1/orders/{id}/cancel", post(cancel))
        .route("/v1/orders/{id}/fulfill", post(fulfill))
        .route("/v1/orders/{id}/refund", post(refund))
        .route("/v1/orders/{id}/transfer", post(hand_over))
}
