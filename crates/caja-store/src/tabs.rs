//! Reading tabs. Tabs change only through commands on the writer.

use caja_core::ids::TabId;
use caja_core::page::{Page, PageLimit};
use caja_core::tab::{Tab, TabStatus};

use crate::dialect::Dialect;
use crate::rows::{self, ITEM_COLUMNS, TAB_COLUMNS};
use crate::{Store, StoreError};

/// Loads tabs with their items (removed ones too), in the order of `rows`.
pub(crate) async fn with_items<S: crate::sql::Sql + ?Sized>(
    db: &mut S,
    dialect: Dialect,
    rows: &[S::Row],
) -> Result<Vec<Tab>, StoreError> {
    let select = format!("SELECT {ITEM_COLUMNS} FROM tab_items WHERE tab_id");
    rows::with_children(
        db,
        dialect,
        rows,
        &select,
        "tab_id, id",
        rows::item,
        rows::tab,
    )
    .await
}

impl Store {
    pub async fn tab(&self, id: &TabId) -> Result<Tab, StoreError> {
        let row = sqlx::query(&format!("SELECT {TAB_COLUMNS} FROM tabs WHERE id = $1"))
            .bind(id.as_str())
            .fetch_optional(self.reader())
            .await?
            .ok_or(StoreError::NotFound)?;
        with_items(&mut self.reader(), self.dialect(), &[row])
            .await?
            .pop()
            .ok_or(StoreError::NotFound)
    }

    /// Tabs in id (opening) order, optionally of one status and one resource, after the
    /// cursor.
    pub async fn list_tabs(
        &self,
        status: Option<TabStatus>,
        resource: Option<&str>,
        after: Option<&TabId>,
        limit: PageLimit,
    ) -> Result<Page<Tab>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {TAB_COLUMNS} FROM tabs WHERE id > $1 AND ($2 = '' OR status = $2) \
             AND ($3 = '' OR resource = $3) ORDER BY id LIMIT $4"
        ))
        .bind(after.map(TabId::as_str).unwrap_or(""))
        .bind(status.map(TabStatus::as_str).unwrap_or(""))
        .bind(resource.unwrap_or(""))
        .bind(i64::from(limit.get()) + 1)
        .fetch_all(self.reader())
        .await?;
        let tabs = with_items(&mut self.reader(), self.dialect(), &rows).await?;
        Ok(Page::from_overfetch(tabs, limit, |t| t.id.to_string()))
    }
}
