//! The catalog: create, read, list, patch and archive products, with optimistic
//! concurrency on a version column.

use caja_core::ids::ProductId;
use caja_core::money::{Currency, Money};
use caja_core::page::{Page, PageLimit};
use caja_core::product::{NewProduct, Product, ProductName, ProductPatch, Sku, Stock, Version};
use caja_core::time;
use sqlx::any::AnyRow;
use sqlx::{Any, Transaction};

use crate::changes::NewChange;
use crate::rows::{int, opt_text, text, timestamp};
use crate::{Store, StoreError};

pub(crate) const COLUMNS: &str =
    "id, sku, name, price_amount, currency, stock, version, archived_at, created_at, updated_at";

pub(crate) fn product(row: &AnyRow) -> Result<Product, StoreError> {
    Ok(Product {
        id: ProductId::parse("id", &text(row, "id")?)?,
        sku: Sku::parse(&text(row, "sku")?)?,
        name: ProductName::parse(&text(row, "name")?)?,
        price: Money {
            amount: int(row, "price_amount")?,
            currency: Currency::parse("currency", &text(row, "currency")?)?,
        },
        stock: Stock::stored(int(row, "stock")?)?,
        version: Version(int(row, "version")?),
        archived: opt_text(row, "archived_at")?.is_some(),
        created_at: timestamp(row, "created_at")?,
        updated_at: timestamp(row, "updated_at")?,
    })
}

impl Store {
    pub async fn create_product(&self, new: &NewProduct) -> Result<Product, StoreError> {
        let now = time::now();
        let product = Product {
            id: ProductId::generate(),
            sku: new.sku.clone(),
            name: new.name.clone(),
            price: new.price,
            stock: new.stock,
            version: Version(1),
            archived: false,
            created_at: now,
            updated_at: now,
        };
        let mut tx = self.begin_write().await?;
        sqlx::query(&format!(
            "INSERT INTO products ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, $8, $8)"
        ))
        .bind(product.id.as_str())
        .bind(product.sku.as_str())
        .bind(product.name.as_str())
        .bind(product.price.amount)
        .bind(product.price.currency.as_str())
        .bind(product.stock.value())
        .bind(product.version.0)
        .bind(time::format(&now))
        .execute(&mut *tx)
        .await?;
        crate::ledger::record_initial(&mut tx, &product).await?;
        let change = NewChange::product(&*self.json, "created", &product);
        self.commit_with(tx, &[change]).await?;
        Ok(product)
    }

    /// A product by id, archived or not.
    pub async fn product(&self, id: &ProductId) -> Result<Product, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM products WHERE id = $1"))
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
            "SELECT {COLUMNS} FROM products WHERE archived_at IS NULL AND id > $1 \
             ORDER BY id LIMIT $2"
        ))
        .bind(after.map(ProductId::as_str).unwrap_or(""))
        .bind(i64::from(limit.get()) + 1)
        .fetch_all(self.reader())
        .await?;
        let items = rows.iter().map(product).collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(items, limit, |p| p.id.to_string()))
    }

    /// Applies a patch if the product is still at `expected`; nothing is written otherwise.
    pub async fn update_product(
        &self,
        id: &ProductId,
        expected: Version,
        patch: &ProductPatch,
    ) -> Result<Product, StoreError> {
        let mut tx = self.begin_write().await?;
        let current = locked_current(&mut tx, id, expected).await?;
        if current.archived {
            return Err(StoreError::Archived);
        }
        let next = patch.apply(&current, time::now());
        sqlx::query(
            "UPDATE products SET sku = $1, name = $2, price_amount = $3, version = $4, \
             updated_at = $5 WHERE id = $6 AND version = $7",
        )
        .bind(next.sku.as_str())
        .bind(next.name.as_str())
        .bind(next.price.amount)
        .bind(next.version.0)
        .bind(time::format(&next.updated_at))
        .bind(id.as_str())
        .bind(expected.0)
        .execute(&mut *tx)
        .await?;
        let change = NewChange::product(&*self.json, "updated", &next);
        self.commit_with(tx, &[change]).await?;
        Ok(next)
    }

    /// Archives a product at `expected`. Archiving an archived product changes nothing.
    pub async fn archive_product(
        &self,
        id: &ProductId,
        expected: Version,
    ) -> Result<Product, StoreError> {
        let mut tx = self.begin_write().await?;
        let current = locked_current(&mut tx, id, expected).await?;
        if current.archived {
            return Ok(current);
        }
        let now = time::now();
        sqlx::query(
            "UPDATE products SET archived_at = $1, updated_at = $1, version = version + 1 \
             WHERE id = $2 AND version = $3",
        )
        .bind(time::format(&now))
        .bind(id.as_str())
        .bind(expected.0)
        .execute(&mut *tx)
        .await?;
        let archived = Product {
            archived: true,
            version: Version(current.version.0 + 1),
            updated_at: now,
            ..current
        };
        let change = NewChange::product(&*self.json, "archived", &archived);
        self.commit_with(tx, &[change]).await?;
        Ok(archived)
    }
}

/// Reads the product inside a write transaction, locking its row on PostgreSQL, and checks
/// its version. (SQLite's write transaction already excludes every other writer.)
async fn locked_current(
    tx: &mut Transaction<'static, Any>,
    id: &ProductId,
    expected: Version,
) -> Result<Product, StoreError> {
    let lock = if tx.backend_name() == "PostgreSQL" {
        " FOR UPDATE"
    } else {
        ""
    };
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM products WHERE id = $1{lock}"
    ))
    .bind(id.as_str())
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(StoreError::NotFound)?;
    let current = product(&row)?;
    if current.version != expected {
        return Err(StoreError::StaleVersion {
            current: current.version,
        });
    }
    Ok(current)
}
