//! Reading rows into domain values. A row that does not parse is corruption, reported as
//! such rather than papered over.

use caja_core::command::Payment;
use caja_core::ids::{
    EventId, HoldId, LocationId, OrderId, ProductId, TabId, TabItemId, TransferId,
};
use caja_core::ledger::Movement;
use caja_core::location::{Handover, Location, LocationCode, StockByLocation, Transfer};
use caja_core::money::{Currency, Money};
use caja_core::order::{Customer, Order, OrderLine};
use caja_core::product::{Product, ProductName, Sku, Stock, Version};
use caja_core::tab::{Period, Rounding, Tab, TabItem, TimeCharge};
use caja_core::time::{self, Timestamp};
use std::collections::BTreeMap;

use crate::sql::{Columns, Sql};

use crate::dialect::Dialect;

use crate::StoreError;

pub(crate) fn timestamp(row: &impl Columns, col: &'static str) -> Result<Timestamp, StoreError> {
    Ok(time::parse(col, &row.text(col)?)?)
}

pub(crate) fn opt_timestamp(
    row: &impl Columns,
    col: &'static str,
) -> Result<Option<Timestamp>, StoreError> {
    row.opt_text(col)?
        .map(|s| time::parse(col, &s).map_err(StoreError::from))
        .transpose()
}

/// Builds each parent row (one with an `id` column) with its children, read in one query:
/// `{select} IN (…ids) ORDER BY {order_by}`, each child row naming its parent's id as
/// `child` returns it. Parents come back in the order of `parents`.
pub(crate) async fn with_children<S, C, P>(
    db: &mut S,
    dialect: Dialect,
    parents: &[S::Row],
    select: &str,
    order_by: &str,
    child: impl Fn(&S::Row) -> Result<(String, C), StoreError>,
    build: impl Fn(&S::Row, Vec<C>) -> Result<P, StoreError>,
) -> Result<Vec<P>, StoreError>
where
    S: Sql + ?Sized,
{
    if parents.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = parents
        .iter()
        .map(|r| r.text("id"))
        .collect::<Result<_, _>>()?;
    // The list is padded to a power of two by repeating an id (harmless in `IN`), so the
    // statement has a few shapes, each prepared once, whatever the number of parents.
    let width = ids.len().next_power_of_two();
    let sql = format!(
        "{select} IN ({}) ORDER BY {order_by}",
        crate::chunks::list(dialect, width)
    );
    let mut query = crate::sql::query(&sql);
    for i in 0..width {
        query = query.bind(ids[i.min(ids.len() - 1)].as_str());
    }
    let mut children: BTreeMap<String, Vec<C>> = BTreeMap::new();
    for row in query.fetch_all(db).await? {
        let (parent, c) = child(&row)?;
        children.entry(parent).or_default().push(c);
    }
    parents
        .iter()
        .zip(ids)
        .map(|(row, id)| build(row, children.remove(&id).unwrap_or_default()))
        .collect()
}

pub(crate) const PRODUCT_COLUMNS: &str = "id, sku, name, price_amount, currency, stock, \
     stock_elsewhere, version, archived_at, event_id, created_at, updated_at";

pub(crate) fn product(row: &impl Columns) -> Result<Product, StoreError> {
    let stock = row.int("stock")?;
    Ok(Product {
        locations: stock_by_location(stock, row.opt_text("stock_elsewhere")?.as_deref())?,
        id: ProductId::parse("id", &row.text("id")?)?,
        sku: Sku::parse(&row.text("sku")?)?,
        name: ProductName::parse(&row.text("name")?)?,
        price: Money {
            amount: row.int("price_amount")?,
            currency: Currency::parse("currency", &row.text("currency")?)?,
        },
        stock: Stock::stored(row.int("stock")?)?,
        version: Version(row.int("version")?),
        archived: row.opt_text("archived_at")?.is_some(),
        event_id: row
            .opt_text("event_id")?
            .map(|e| EventId::parse("event_id", &e))
            .transpose()?,
        created_at: timestamp(row, "created_at")?,
        updated_at: timestamp(row, "updated_at")?,
    })
}

/// The customer of an order or tab row (`customer_name`, `customer_email`), if named.
fn customer(row: &impl Columns) -> Result<Option<Customer>, StoreError> {
    Ok(match row.opt_text("customer_name")? {
        Some(name) => Some(Customer {
            name,
            email: row.opt_text("customer_email")?,
        }),
        None => None,
    })
}

pub(crate) const ORDER_COLUMNS: &str = "id, number, status, subtotal, tip, total, currency, \
     note, customer_name, customer_email, created_at, updated_at, expires_at, tab_id, \
     time_minutes, time_rate, time_amount, hold_id, location_id, handovers";

pub(crate) const LINE_COLUMNS: &str =
    "order_id, line_no, product_id, sku, name, quantity, unit_price, line_total";

/// An order row, with the lines read separately.
pub(crate) fn order(row: &impl Columns, lines: Vec<OrderLine>) -> Result<Order, StoreError> {
    Ok(Order {
        id: OrderId::parse("id", &row.text("id")?)?,
        number: row.int("number")?,
        status: row.text("status")?.parse()?,
        lines,
        subtotal: row.int("subtotal")?,
        tip: row.int("tip")?,
        total: row.int("total")?,
        currency: Currency::parse("currency", &row.text("currency")?)?,
        note: row.opt_text("note")?,
        customer: customer(row)?,
        tab_id: row
            .opt_text("tab_id")?
            .map(|t| TabId::parse("tab_id", &t))
            .transpose()?,
        hold_id: row
            .opt_text("hold_id")?
            .map(|h| HoldId::parse("hold_id", &h))
            .transpose()?,
        time: match row.opt_int("time_minutes")? {
            Some(minutes) => Some(TimeCharge {
                minutes,
                rate_per_hour: row.int("time_rate")?,
                amount: row.int("time_amount")?,
            }),
            None => None,
        },
        location_id: LocationId::parse("location_id", &row.text("location_id")?)?,
        handovers: handovers(row.opt_text("handovers")?.as_deref())?,
        created_at: timestamp(row, "created_at")?,
        updated_at: timestamp(row, "updated_at")?,
        expires_at: timestamp(row, "expires_at")?,
    })
}

pub(crate) const PAYMENT_COLUMNS: &str = "id, order_id, method, amount, reference, created_at";

pub(crate) fn payment(row: &impl Columns) -> Result<Payment, StoreError> {
    Ok(Payment {
        id: row.text("id")?,
        order_id: OrderId::parse("order_id", &row.text("order_id")?)?,
        method: row.text("method")?.parse()?,
        amount: row.int("amount")?,
        reference: row.opt_text("reference")?,
        created_at: timestamp(row, "created_at")?,
    })
}

/// A line row and the order it belongs to.
pub(crate) fn line(row: &impl Columns) -> Result<(String, OrderLine), StoreError> {
    Ok((
        row.text("order_id")?,
        OrderLine {
            product_id: ProductId::parse("product_id", &row.text("product_id")?)?,
            sku: row.text("sku")?,
            name: row.text("name")?,
            quantity: row.int("quantity")?,
            unit_price: row.int("unit_price")?,
            line_total: row.int("line_total")?,
        },
    ))
}

pub(crate) const MOVEMENT_COLUMNS: &str =
    "id, product_id, location_id, delta, reason, note, order_id, tab_id, hold_id, transfer_id, \
     stock_after, created_at";

pub(crate) fn movement(row: &impl Columns) -> Result<Movement, StoreError> {
    Ok(Movement {
        id: row.int("id")?,
        product_id: ProductId::parse("product_id", &row.text("product_id")?)?,
        delta: row.int("delta")?,
        reason: row.text("reason")?.parse()?,
        note: row.opt_text("note")?,
        order_id: row
            .opt_text("order_id")?
            .map(|o| OrderId::parse("order_id", &o))
            .transpose()?,
        tab_id: row
            .opt_text("tab_id")?
            .map(|t| TabId::parse("tab_id", &t))
            .transpose()?,
        hold_id: row
            .opt_text("hold_id")?
            .map(|h| HoldId::parse("hold_id", &h))
            .transpose()?,
        location_id: LocationId::parse("location_id", &row.text("location_id")?)?,
        transfer_id: row
            .opt_text("transfer_id")?
            .map(|t| TransferId::parse("transfer_id", &t))
            .transpose()?,
        stock_after: row.int("stock_after")?,
        created_at: timestamp(row, "created_at")?,
    })
}

pub(crate) const TAB_COLUMNS: &str = "id, label, resource, status, rate, currency, unit_minutes, \
     minimum_minutes, grace_minutes, customer_name, customer_email, note, periods, order_id, \
     void_reason, version, opened_at, closed_at, updated_at, location_id";

pub(crate) const ITEM_COLUMNS: &str =
    "id, tab_id, product_id, sku, name, quantity, unit_price, note, added_at, removed_at";

/// A tab row, with its items read separately.
pub(crate) fn tab(row: &impl Columns, items: Vec<TabItem>) -> Result<Tab, StoreError> {
    Ok(Tab {
        id: TabId::parse("id", &row.text("id")?)?,
        label: row.text("label")?,
        resource: row.opt_text("resource")?,
        status: row.text("status")?.parse()?,
        rate_per_hour: row.int("rate")?,
        currency: Currency::parse("currency", &row.text("currency")?)?,
        rounding: Rounding::parse(
            row.int("unit_minutes")?,
            row.int("minimum_minutes")?,
            row.int("grace_minutes")?,
        )?,
        customer: customer(row)?,
        note: row.opt_text("note")?,
        periods: periods(&row.text("periods")?)?,
        items,
        location_id: LocationId::parse("location_id", &row.text("location_id")?)?,
        order_id: row
            .opt_text("order_id")?
            .map(|o| OrderId::parse("order_id", &o))
            .transpose()?,
        void_reason: row.opt_text("void_reason")?,
        version: Version(row.int("version")?),
        opened_at: timestamp(row, "opened_at")?,
        closed_at: opt_timestamp(row, "closed_at")?,
        updated_at: timestamp(row, "updated_at")?,
    })
}

/// An item row and the tab it is on.
pub(crate) fn item(row: &impl Columns) -> Result<(String, TabItem), StoreError> {
    Ok((
        row.text("tab_id")?,
        TabItem {
            id: TabItemId::parse("id", &row.text("id")?)?,
            product_id: ProductId::parse("product_id", &row.text("product_id")?)?,
            sku: row.text("sku")?,
            name: row.text("name")?,
            quantity: row.int("quantity")?,
            unit_price: row.int("unit_price")?,
            note: row.opt_text("note")?,
            added_at: timestamp(row, "added_at")?,
            removed_at: opt_timestamp(row, "removed_at")?,
        },
    ))
}

/// The periods column: `[{"started_at": …, "ended_at": … | null}, …]`.
pub(crate) fn periods_json(periods: &[Period]) -> String {
    let list: Vec<serde_json::Value> = periods
        .iter()
        .map(|p| {
            serde_json::json!({
                "started_at": time::format(&p.started_at),
                "ended_at": p.ended_at.as_ref().map(time::format),
            })
        })
        .collect();
    serde_json::Value::Array(list).to_string()
}

fn periods(raw: &str) -> Result<Vec<Period>, StoreError> {
    let corrupt = || StoreError::Corrupt(format!("a tab's periods: {raw}"));
    let list: Vec<serde_json::Value> = serde_json::from_str(raw).map_err(|_| corrupt())?;
    list.iter()
        .map(|p| {
            let started = p["started_at"].as_str().ok_or_else(corrupt)?;
            Ok(Period {
                started_at: time::parse("started_at", started)?,
                ended_at: match &p["ended_at"] {
                    serde_json::Value::Null => None,
                    v => Some(time::parse("ended_at", v.as_str().ok_or_else(corrupt)?)?),
                },
            })
        })
        .collect()
}

pub(crate) fn seats_json(seats: &[String]) -> String {
    serde_json::Value::from(seats.to_vec()).to_string()
}

pub(crate) const EVENT_COLUMNS: &str = "id, name, starts_at, sale_starts_at, sale_ends_at, \
     max_per_order, currency, status, version, created_at, updated_at";

/// An event row; its sections are added by [`crate::box_office::with_sections`].
pub(crate) fn ticket_event(
    row: &impl Columns,
    sections: Vec<caja_core::box_office::Section>,
) -> Result<caja_core::box_office::TicketEvent, StoreError> {
    Ok(caja_core::box_office::TicketEvent {
        id: EventId::parse("id", &row.text("id")?)?,
        name: row.text("name")?,
        starts_at: timestamp(row, "starts_at")?,
        sale_starts_at: timestamp(row, "sale_starts_at")?,
        sale_ends_at: opt_timestamp(row, "sale_ends_at")?,
        max_per_order: row.int("max_per_order")?,
        currency: Currency::parse("currency", &row.text("currency")?)?,
        status: caja_core::box_office::EventStatus::parse(&row.text("status")?)?,
        sections,
        version: Version(row.int("version")?),
        created_at: timestamp(row, "created_at")?,
        updated_at: timestamp(row, "updated_at")?,
    })
}

pub(crate) const SECTION_COLUMNS: &str =
    "event_id, position, name, product_id, price, capacity, seated";

/// A section row and the event it belongs to.
pub(crate) fn section(
    row: &impl Columns,
) -> Result<(String, caja_core::box_office::Section), StoreError> {
    Ok((
        row.text("event_id")?,
        caja_core::box_office::Section {
            name: row.text("name")?,
            product_id: ProductId::parse("product_id", &row.text("product_id")?)?,
            price: row.int("price")?,
            capacity: row.int("capacity")?,
            seated: row.int("seated")? == 1,
        },
    ))
}

pub(crate) const HOLD_COLUMNS: &str = "id, event_id, section, product_id, quantity, seats, \
     unit_price, currency, status, expires_at, order_id, version, created_at, updated_at, client_ref";

pub(crate) fn hold(row: &impl Columns) -> Result<caja_core::box_office::Hold, StoreError> {
    Ok(caja_core::box_office::Hold {
        id: HoldId::parse("id", &row.text("id")?)?,
        event_id: EventId::parse("event_id", &row.text("event_id")?)?,
        section: row.text("section")?,
        product_id: ProductId::parse("product_id", &row.text("product_id")?)?,
        quantity: row.int("quantity")?,
        seats: serde_json::from_str(&row.text("seats")?)
            .map_err(|e| StoreError::Corrupt(format!("hold seats: {e}")))?,
        unit_price: row.int("unit_price")?,
        currency: Currency::parse("currency", &row.text("currency")?)?,
        client_ref: row.opt_text("client_ref")?,
        status: caja_core::box_office::HoldStatus::parse(&row.text("status")?)?,
        expires_at: timestamp(row, "expires_at")?,
        order_id: row
            .opt_text("order_id")?
            .map(|o| OrderId::parse("order_id", &o))
            .transpose()?,
        version: Version(row.int("version")?),
        created_at: timestamp(row, "created_at")?,
        updated_at: timestamp(row, "updated_at")?,
    })
}

pub(crate) const ROOM_COLUMNS: &str = "event_id, admit_per_minute, max_queue, admission_ttl_secs, \
     opens_at, pre_open, last_admit_at, drawn, version";

pub(crate) fn room(row: &impl Columns) -> Result<caja_core::waiting_room::Room, StoreError> {
    Ok(caja_core::waiting_room::Room {
        event_id: EventId::parse("event_id", &row.text("event_id")?)?,
        config: caja_core::waiting_room::RoomConfig {
            admit_per_minute: row.int("admit_per_minute")?,
            max_queue: row.int("max_queue")?,
            admission_ttl: chrono::Duration::seconds(row.int("admission_ttl_secs")?),
            opens_at: timestamp(row, "opens_at")?,
        },
        pre_open: row.int("pre_open")?,
        last_admit_at: opt_timestamp(row, "last_admit_at")?,
        drawn: row.int("drawn")? == 1,
        version: Version(row.int("version")?),
    })
}

/// A column list (`a, b`) as a join names it (`t.a, t.b`).
pub(crate) fn qualified(table: &str, columns: &str) -> String {
    columns
        .split(',')
        .map(|c| format!("{table}.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) const TICKET_COLUMNS: &str =
    "id, event_id, client_ref, rank, place, admit_at, hold_id, joined_at";

/// A ticket row as stored: a drawn ticket's `admit_at` is filled in by the caller.
pub(crate) fn ticket(
    row: &impl Columns,
) -> Result<caja_core::waiting_room::QueueTicket, StoreError> {
    Ok(caja_core::waiting_room::QueueTicket {
        id: caja_core::ids::TicketId::parse("id", &row.text("id")?)?,
        event_id: EventId::parse("event_id", &row.text("event_id")?)?,
        client_ref: row.text("client_ref")?,
        rank: row.opt_int("rank")?,
        place: row.opt_int("place")?,
        admit_at: opt_timestamp(row, "admit_at")?,
        hold_id: row
            .opt_text("hold_id")?
            .map(|h| HoldId::parse("hold_id", &h))
            .transpose()?,
        joined_at: timestamp(row, "joined_at")?,
    })
}

/// A product's stock per location: the `stock_elsewhere` column holds every location's
/// share but the main one's, which has the rest (so a row an older caja wrote, which knows
/// only the total, still adds up).
fn stock_by_location(stock: i64, elsewhere: Option<&str>) -> Result<StockByLocation, StoreError> {
    let Some(raw) = elsewhere else {
        return Ok(StockByLocation::at_main(stock));
    };
    let corrupt = || StoreError::Corrupt(format!("a product's stock elsewhere: {raw}"));
    let shares: BTreeMap<String, i64> = serde_json::from_str(raw).map_err(|_| corrupt())?;
    let mut map = BTreeMap::new();
    let mut rest = stock;
    for (location, n) in shares {
        let id = LocationId::parse("stock_elsewhere", &location)?;
        if id.is_main() || n < 0 {
            return Err(corrupt());
        }
        rest -= n;
        map.insert(id, n);
    }
    map.insert(LocationId::main(), rest);
    Ok(StockByLocation::from_map(map))
}

/// The `stock_elsewhere` column for a product: `NULL` when the main location has it all.
pub(crate) fn stock_elsewhere_json(locations: &StockByLocation) -> Option<String> {
    let shares: BTreeMap<&str, i64> = locations
        .iter()
        .filter(|(l, _)| !l.is_main())
        .map(|(l, n)| (l.as_str(), n))
        .collect();
    (!shares.is_empty()).then(|| serde_json::to_string(&shares).unwrap_or_default())
}

/// The `handovers` column: `[{"from", "to", "at"}, …]`, `NULL` for an order never moved.
pub(crate) fn handovers_json(handovers: &[Handover]) -> Option<String> {
    let list: Vec<serde_json::Value> = handovers
        .iter()
        .map(|h| {
            serde_json::json!({
                "from": h.from.as_str(),
                "to": h.to.as_str(),
                "at": time::format(&h.at),
            })
        })
        .collect();
    (!list.is_empty()).then(|| serde_json::Value::Array(list).to_string())
}

fn handovers(raw: Option<&str>) -> Result<Vec<Handover>, StoreError> {
    let Some(raw) = raw else {
        return Ok(Vec::new());
    };
    let corrupt = || StoreError::Corrupt(format!("an order's hand-overs: {raw}"));
    let list: Vec<serde_json::Value> = serde_json::from_str(raw).map_err(|_| corrupt())?;
    list.iter()
        .map(|h| {
            let field = |name: &str| h[name].as_str().ok_or_else(corrupt);
            Ok(Handover {
                from: LocationId::parse("from", field("from")?)?,
                to: LocationId::parse("to", field("to")?)?,
                at: time::parse("at", field("at")?)?,
            })
        })
        .collect()
}

pub(crate) const LOCATION_COLUMNS: &str = "id, code, name, version, created_at, updated_at";

pub(crate) fn location(row: &impl Columns) -> Result<Location, StoreError> {
    Ok(Location {
        id: LocationId::parse("id", &row.text("id")?)?,
        code: LocationCode::parse(&row.text("code")?)?,
        name: row.text("name")?,
        version: Version(row.int("version")?),
        created_at: timestamp(row, "created_at")?,
        updated_at: timestamp(row, "updated_at")?,
    })
}

pub(crate) const TRANSFER_COLUMNS: &str =
    "id, product_id, from_location, to_location, quantity, note, status, created_at, received_at";

pub(crate) fn transfer(row: &impl Columns) -> Result<Transfer, StoreError> {
    Ok(Transfer {
        id: TransferId::parse("id", &row.text("id")?)?,
        product_id: ProductId::parse("product_id", &row.text("product_id")?)?,
        from: LocationId::parse("from_location", &row.text("from_location")?)?,
        to: LocationId::parse("to_location", &row.text("to_location")?)?,
        quantity: row.int("quantity")?,
        note: row.opt_text("note")?,
        status: row.text("status")?.parse()?,
        created_at: timestamp(row, "created_at")?,
        received_at: opt_timestamp(row, "received_at")?,
    })
}
