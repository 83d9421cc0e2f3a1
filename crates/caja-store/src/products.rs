//! Reading the catalog. Products change only through commands on the writer.

use caja_core::ids::ProductId;
use caja_core::page::{Page, PageLimit};
use caja_core::product::Product;

use crate::rows::{product, PRODUCT_COLUMNS};
use crate::{Store, StoreError};

impl Store {
    /// A product by id, archived or not.
    pub async fn product(&self, id: &ProductId) -> Result<Product, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {PRODUCT_COLUMNS} FROM products WHERE id = $1"
        ))
        .bind(id.as_str())
        .fetch_optional(self.reader())
        .await?
        .ok_or(StoreError::NotFound)?;
        product(&row)
    }

    /// Live products in id (creation) order, after the cursor.
    pub async fn list_products(
        &self,
        after: Option<&ProductId>,
        limit: PageLimit,
    ) -> Result<Page<Product>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {PRODUCT_COLUMNS} FROM products WHERE archived_at IS NULL AND id > $1 \
             ORDER BY id LIMIT $2"
        ))
        .bind(after.map(ProductId::as_str).unwrap_or(""))
        .bind(i64::from(limit.get()) + 1)
        .fetch_all(self.reader())
        .await?;
        let items = rows.iter().map(product).collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(items, limit, |p| p.id.to_string()))
    }
}
