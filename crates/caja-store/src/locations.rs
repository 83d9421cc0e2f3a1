//! Reading locations, transfers and a product's stock per location. They change only
//! through commands on the writer.

use caja_core::ids::{LocationId, ProductId, TransferId};
use caja_core::location::{Location, LocationCode, Transfer, TransferStatus};
use caja_core::page::{Page, PageLimit};

use crate::rows::{location, transfer, LOCATION_COLUMNS, TRANSFER_COLUMNS};
use crate::{Store, StoreError};

/// One location's share of a product.
#[derive(Debug, Clone)]
pub struct LocationStock {
    pub location: Location,
    /// Sellable there now.
    pub stock: i64,
    /// On its way there, not yet sellable.
    pub incoming: i64,
}

/// A product's stock as every location sees it, read in one snapshot.
#[derive(Debug, Clone)]
pub struct StockView {
    pub product_id: ProductId,
    /// What every location can sell: the sum of `locations`' stock.
    pub stock: i64,
    /// Sent and not yet received: counted at no location.
    pub in_transit: i64,
    pub locations: Vec<LocationStock>,
}

impl Store {
    pub async fn location(&self, id: &LocationId) -> Result<Location, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {LOCATION_COLUMNS} FROM locations WHERE id = $1"
        ))
        .bind(id.as_str())
        .fetch_optional(self.reader())
        .await?
        .ok_or(StoreError::NotFound)?;
        location(&row)
    }

    /// The location with this id or code. Text that can be neither is found nowhere,
    /// without asking the database (which may refuse it outright: a NUL, say).
    pub async fn find_location(&self, id_or_code: &str) -> Result<Location, StoreError> {
        if LocationId::parse("location", id_or_code).is_err()
            && LocationCode::parse(id_or_code).is_err()
        {
            return Err(StoreError::NotFound);
        }
        let row = sqlx::query(&format!(
            "SELECT {LOCATION_COLUMNS} FROM locations WHERE id = $1 OR code = $1"
        ))
        .bind(id_or_code)
        .fetch_optional(self.reader())
        .await?
        .ok_or(StoreError::NotFound)?;
        location(&row)
    }

    /// Locations in id order (the main one first), after the cursor.
    pub async fn list_locations(
        &self,
        after: Option<&LocationId>,
        limit: PageLimit,
    ) -> Result<Page<Location>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {LOCATION_COLUMNS} FROM locations WHERE id > $1 ORDER BY id LIMIT $2"
        ))
        .bind(after.map(LocationId::as_str).unwrap_or(""))
        .bind(i64::from(limit.get()) + 1)
        .fetch_all(self.reader())
        .await?;
        let items = rows.iter().map(location).collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(items, limit, |l| l.id.to_string()))
    }

    pub async fn transfer(&self, id: &TransferId) -> Result<Transfer, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {TRANSFER_COLUMNS} FROM transfers WHERE id = $1"
        ))
        .bind(id.as_str())
        .fetch_optional(self.reader())
        .await?
        .ok_or(StoreError::NotFound)?;
        transfer(&row)
    }

    /// Transfers in id (creation) order, optionally of one status or product, after the
    /// cursor.
    pub async fn list_transfers(
        &self,
        status: Option<TransferStatus>,
        product: Option<&ProductId>,
        after: Option<&TransferId>,
        limit: PageLimit,
    ) -> Result<Page<Transfer>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {TRANSFER_COLUMNS} FROM transfers WHERE id > $1 \
             AND ($2 = '' OR status = $2) AND ($3 = '' OR product_id = $3) \
             ORDER BY id LIMIT $4"
        ))
        .bind(after.map(TransferId::as_str).unwrap_or(""))
        .bind(status.map(TransferStatus::as_str).unwrap_or(""))
        .bind(product.map(ProductId::as_str).unwrap_or(""))
        .bind(i64::from(limit.get()) + 1)
        .fetch_all(self.reader())
        .await?;
        let items = rows.iter().map(transfer).collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(items, limit, |t| t.id.to_string()))
    }

    /// A product's stock at every location, with what is on its way to each, read in one
    /// snapshot so the figures add up.
    pub async fn stock_view(&self, id: &ProductId) -> Result<StockView, StoreError> {
        let mut tx = self.dialect().begin_snapshot(self.reader()).await?;
        let product = sqlx::query(&format!(
            "SELECT {} FROM products WHERE id = $1",
            crate::rows::PRODUCT_COLUMNS
        ))
        .bind(id.as_str())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound)?;
        let product = crate::rows::product(&product)?;
        let rows = sqlx::query(&format!(
            "SELECT {LOCATION_COLUMNS} FROM locations ORDER BY id"
        ))
        .fetch_all(&mut *tx)
        .await?;
        let transit = sqlx::query(&format!(
            "SELECT {TRANSFER_COLUMNS} FROM transfers \
             WHERE product_id = $1 AND status = 'in_transit'"
        ))
        .bind(id.as_str())
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let transit = transit
            .iter()
            .map(transfer)
            .collect::<Result<Vec<_>, _>>()?;
        let mut locations = Vec::with_capacity(rows.len());
        for row in &rows {
            let l = location(row)?;
            locations.push(LocationStock {
                stock: product.locations.at(&l.id),
                incoming: transit
                    .iter()
                    .filter(|t| t.to == l.id)
                    .map(|t| t.quantity)
                    .sum(),
                location: l,
            });
        }
        Ok(StockView {
            product_id: product.id,
            stock: product.stock.value(),
            in_transit: transit.iter().map(|t| t.quantity).sum(),
            locations,
        })
    }
}
