//! `/v1/tabs`: coworking sessions and open checks. Every change is a command on the store's
//! one writer; the rules (rounding, reservation, closing into an order) live in
//! `caja_core::tab` and `caja_core::command`.

mod bodies;
mod read;
mod write;

use axum::routing::{delete, get, post};
use axum::Router;
use caja_core::ids::TabId;

use crate::error::{ApiError, ApiResult};
use crate::AppState;

pub use bodies::{
    AddItem, CloseTab, DueBody, DueLineBody, OpenTab, PeriodBody, RoundingBody, TabBody,
    TabItemBody, TabPage, TimeBody, VoidTab,
};
pub use read::{__path_list, __path_read, list, read};
pub use write::{
    __path_add_item, __path_close, __path_open, __path_pause, __path_remove_item, __path_resume,
    __path_void, add_item, close, open, pause, remove_item, resume, void,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/tabs", get(list).post(open))
        .route("/v1/tabs/{id}", get(read))
        .route("/v1/tabs/{id}/items", post(add_item))
        .route("/v1/tabs/{id}/items/{item_id}", delete(remove_item))
        .route("/v1/tabs/{id}/pause", post(pause))
        .route("/v1/tabs/{id}/resume", post(resume))
        .route("/v1/tabs/{id}/close", post(close))
        .route("/v1/tabs/{id}/void", post(void))
}

/// A tab id from the path; one that cannot exist is simply not found.
fn tab_id(raw: &str) -> ApiResult<TabId> {
    TabId::parse("id", raw).map_err(|_| ApiError::not_found(format!("no tab {raw}")))
}
