//! Reading rows into domain values. A row that does not parse is corruption, reported as
//! such rather than papered over.

use caja_core::ids::{OrderId, ProductId};
use caja_core::ledger::Movement;
use caja_core::money::{Currency, Money};
use caja_core::order::{Customer, Order, OrderLine};
use caja_core::product::{Product, ProductName, Sku, Stock, Version};
use caja_core::time::{self, Timestamp};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::StoreError;

pub(crate) fn text(row: &AnyRow, col: &str) -> Result<String, StoreError> {
    Ok(row.try_get::<String, _>(col)?)
}

pub(crate) fn opt_text(row: &AnyRow, col: &str) -> Result<Option<String>, StoreError> {
    Ok(row.try_get::<Option<String>, _>(col)?)
}

pub(crate) fn int(row: &AnyRow, col: &str) -> Result<i64, StoreError> {
    Ok(row.try_get::<i64, _>(col)?)
}

pub(crate) fn timestamp(row: &AnyRow, col: &'static str) -> Result<Timestamp, StoreError> {
    Ok(time::parse(col, &text(row, col)?)?)
}

pub(crate) fn opt_timestamp(
    row: &AnyRow,
    col: &'static str,
) -> Result<Option<Timestamp>, StoreError> {
    opt_text(row, col)?
        .map(|s| time::parse(col, &s).map_err(StoreError::from))
        .transpose()
}

pub(crate) const PRODUCT_COLUMNS: &str =
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

pub(crate) const ORDER_COLUMNS: &str = "id, number, status, subtotal, tip, total, currency, \
     note, customer_name, customer_email, created_at, updated_at, expires_at";

pub(crate) const LINE_COLUMNS: &str =
    "order_id, line_no, product_id, sku, name, quantity, unit_price, line_total";

/// An order row, with the lines read separately.
pub(crate) fn order(row: &AnyRow, lines: Vec<OrderLine>) -> Result<Order, StoreError> {
    let customer = match opt_text(row, "customer_name")? {
        Some(name) => Some(Customer {
            name,
            email: opt_text(row, "customer_email")?,
        }),
        None => None,
    };
    Ok(Order {
        id: OrderId::parse("id", &text(row, "id")?)?,
        number: int(row, "number")?,
        status: text(row, "status")?.parse()?,
        lines,
        subtotal: int(row, "subtotal")?,
        tip: int(row, "tip")?,
        total: int(row, "total")?,
        currency: Currency::parse("currency", &text(row, "currency")?)?,
        note: opt_text(row, "note")?,
        customer,
        created_at: timestamp(row, "created_at")?,
        updated_at: timestamp(row, "updated_at")?,
        expires_at: timestamp(row, "expires_at")?,
    })
}

/// A line row and the order it belongs to.
pub(crate) fn line(row: &AnyRow) -> Result<(String, OrderLine), StoreError> {
    Ok((
        text(row, "order_id")?,
        OrderLine {
            product_id: ProductId::parse("product_id", &text(row, "product_id")?)?,
            sku: text(row, "sku")?,
            name: text(row, "name")?,
            quantity: int(row, "quantity")?,
            unit_price: int(row, "unit_price")?,
            line_total: int(row, "line_total")?,
        },
    ))
}

pub(crate) const MOVEMENT_COLUMNS: &str =
    "id, product_id, delta, reason, note, order_id, stock_after, created_at";

pub(crate) fn movement(row: &AnyRow) -> Result<Movement, StoreError> {
    Ok(Movement {
        id: int(row, "id")?,
        product_id: ProductId::parse("product_id", &text(row, "product_id")?)?,
        delta: int(row, "delta")?,
        reason: text(row, "reason")?.parse()?,
        note: opt_text(row, "note")?,
        order_id: opt_text(row, "order_id")?
            .map(|o| OrderId::parse("order_id", &o))
            .transpose()?,
        stock_after: int(row, "stock_after")?,
        created_at: timestamp(row, "created_at")?,
    })
}
