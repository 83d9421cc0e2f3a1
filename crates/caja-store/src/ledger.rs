//! Reading the stock ledger: every change of a product's stock is one row, written by the
//! writer in the same transaction as the change, with the stock it left behind.

use caja_core::ids::ProductId;
use caja_core::ledger::Movement;
use caja_core::page::{Page, PageLimit};

use crate::rows::{movement, MOVEMENT_COLUMNS};
use crate::{Store, StoreError};

impl Store {
    /// A product's ledger, oldest first, after the cursor (a movement id).
    pub async fn list_movements(
        &self,
        product_id: &ProductId,
        after: Option<i64>,
        limit: PageLimit,
    ) -> Result<Page<Movement>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {MOVEMENT_COLUMNS} FROM stock_movements WHERE product_id = $1 AND id > $2 \
             ORDER BY id LIMIT $3"
        ))
        .bind(product_id.as_str())
        .bind(after.unwrap_or(0))
        .bind(i64::from(limit.get()) + 1)
        .fetch_all(self.reader())
        .await?;
        let items = rows.iter().map(movement).collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(items, limit, |m| m.id.to_string()))
    }
}
