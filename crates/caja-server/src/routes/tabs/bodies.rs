//! The shapes of `/v1/tabs` requests and responses, and their parsing into commands.

use caja_core::money::{Currency, Money};
use caja_core::order::OrderLine;
use caja_core::tab::{NewTab, Rounding, Tab, TabItem, TimeCharge};
use caja_core::time::{self, Timestamp};
use caja_core::{text, DomainError};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::routes::orders::CustomerBody;
use crate::routes::products::MoneyBody;
use crate::ServerConfig;

/// How the minutes of a session are billed: a stay no longer than the grace is free; past
/// it, the minutes beyond the grace are rounded up to whole units, and at least the minimum
/// is billed.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoundingBody {
    #[schema(example = 15, minimum = 1, maximum = 10080)]
    pub unit_minutes: i64,
    #[schema(example = 60, minimum = 0, maximum = 10080)]
    pub minimum_minutes: i64,
    #[schema(example = 5, minimum = 0, maximum = 10080)]
    pub grace_minutes: i64,
}

impl From<Rounding> for RoundingBody {
    fn from(r: Rounding) -> Self {
        Self {
            unit_minutes: r.unit_minutes,
            minimum_minutes: r.minimum_minutes,
            grace_minutes: r.grace_minutes,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenTab {
    /// What the tills show: a guest's name, "Table 4".
    #[schema(
        example = "Ana at desk 3",
        max_length = 100,
        pattern = r"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*[^\s\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f][^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*$"
    )]
    pub label: String,
    /// The desk or table it occupies: held by at most one open tab.
    #[schema(example = "desk-3", pattern = "^[A-Za-z0-9._:/-]{1,64}$")]
    pub resource: Option<String>,
    /// Per hour; the server's `tab_rate` when absent. 0 bills no time.
    pub rate: Option<MoneyBody>,
    /// The server's `tab_rounding` when absent.
    pub rounding: Option<RoundingBody>,
    pub customer: Option<CustomerBody>,
    #[schema(
        max_length = 1000,
        pattern = r"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*$"
    )]
    pub note: Option<String>,
    /// The location its items' stock is taken from (id or code): the key's location, or
    /// the default, when absent.
    #[schema(max_length = 64)]
    pub location: Option<String>,
}

/// A desk or table name: 1 to 64 letters, digits and `._:/-`.
pub(super) fn resource(raw: &str) -> Result<String, DomainError> {
    let ok = !raw.is_empty()
        && raw.len() <= 64
        && raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._:/-".contains(c));
    if ok {
        Ok(raw.to_owned())
    } else {
        Err(DomainError::invalid(
            "resource",
            "must be 1 to 64 letters, digits or . _ : / -",
        ))
    }
}

impl OpenTab {
    pub(super) fn parse(
        &self,
        config: &ServerConfig,
        at: caja_core::ids::LocationId,
    ) -> Result<NewTab, DomainError> {
        let label = text::optional("label", Some(&self.label), 100)?
            .ok_or_else(|| DomainError::invalid("label", "must be 1 to 100 characters"))?;
        let rate_per_hour = match &self.rate {
            Some(r) => caja_core::tab::parse_rate(r.amount, &r.currency, config.currency)?,
            None => config.tab_rate,
        };
        let rounding = match &self.rounding {
            Some(r) => Rounding::parse(r.unit_minutes, r.minimum_minutes, r.grace_minutes)?,
            None => config.tab_rounding,
        };
        Ok(NewTab {
            label,
            resource: self.resource.as_deref().map(resource).transpose()?,
            rate_per_hour,
            currency: config.currency,
            rounding,
            customer: self
                .customer
                .as_ref()
                .map(crate::routes::orders::parse_customer)
                .transpose()?,
            note: text::optional("note", self.note.as_deref(), 1000)?,
            location: at,
        })
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddItem {
    #[schema(pattern = "^prod_[0-7][0-9A-HJKMNP-TV-Z]{25}$")]
    pub product_id: String,
    pub quantity: i64,
    /// "No sugar".
    #[schema(
        max_length = 200,
        pattern = r"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*$"
    )]
    pub note: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseTab {
    /// In the store's currency; none when absent.
    pub tip: Option<MoneyBody>,
}

impl CloseTab {
    pub(super) fn tip(&self, store: Currency) -> Result<Money, DomainError> {
        crate::routes::orders::parse_tip(self.tip.as_ref(), store)
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoidTab {
    /// Why nothing is charged: kept on the tab and in the audit log.
    #[schema(
        example = "opened on the wrong desk",
        max_length = 500,
        pattern = r"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*[^\s\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f][^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*$"
    )]
    pub reason: String,
}

impl VoidTab {
    pub(super) fn reason(&self) -> Result<String, DomainError> {
        text::optional("reason", Some(&self.reason), 500)?
            .ok_or_else(|| DomainError::invalid("reason", "say why the tab is voided"))
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PeriodBody {
    pub started_at: String,
    /// Null while the clock runs.
    pub ended_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TabItemBody {
    #[schema(example = "item_01JD5V6Q3X8N0R2M4K7T9W1Y3Z")]
    pub id: String,
    pub product_id: String,
    pub sku: String,
    pub name: String,
    pub quantity: i64,
    /// The price when the item was added.
    pub unit_price: MoneyBody,
    pub line_total: MoneyBody,
    pub note: Option<String>,
    pub added_at: String,
    /// Set once the item was taken off and its stock released.
    pub removed_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TimeBody {
    /// Minutes billed after rounding.
    pub minutes: i64,
    pub rate: MoneyBody,
    pub amount: MoneyBody,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DueLineBody {
    pub product_id: String,
    pub sku: String,
    pub name: String,
    pub quantity: i64,
    pub unit_price: MoneyBody,
    pub line_total: MoneyBody,
}

/// What closing the tab at `as_of` bills, before any tip.
#[derive(Debug, Serialize, ToSchema)]
pub struct DueBody {
    pub as_of: String,
    /// Seconds the clock has run.
    pub seconds: i64,
    /// The items merged per product and price.
    pub lines: Vec<DueLineBody>,
    /// Null when the tab bills no time.
    pub time: Option<TimeBody>,
    pub subtotal: MoneyBody,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TabBody {
    #[schema(example = "tab_01JD5V6Q3X8N0R2M4K7T9W1Y3Z")]
    pub id: String,
    pub label: String,
    pub resource: Option<String>,
    /// open, closed or void.
    #[schema(example = "open")]
    pub status: String,
    /// Whether the clock is stopped.
    pub paused: bool,
    pub rate: MoneyBody,
    pub rounding: RoundingBody,
    pub customer: Option<CustomerBody>,
    pub note: Option<String>,
    /// Every stretch the clock ran, oldest first.
    pub periods: Vec<PeriodBody>,
    /// Every item, those taken off included (with `removed_at`).
    pub items: Vec<TabItemBody>,
    /// The location its items' stock is taken from.
    pub location_id: String,
    /// The order it was closed into.
    pub order_id: Option<String>,
    pub void_reason: Option<String>,
    pub opened_at: String,
    pub closed_at: Option<String>,
    pub updated_at: String,
    /// For an open tab, what closing it at `due.as_of` would bill; for a closed one, what
    /// it billed; null for a void one.
    pub due: Option<DueBody>,
}

impl TabBody {
    /// The tab as shown at `now` (an open tab's running amount is computed to `now`;
    /// a closed tab's to its closing).
    pub fn at(t: &Tab, now: Timestamp) -> Self {
        let money = |amount| {
            MoneyBody::from(Money {
                amount,
                currency: t.currency,
            })
        };
        let item = |i: &TabItem| TabItemBody {
            id: i.id.to_string(),
            product_id: i.product_id.to_string(),
            sku: i.sku.clone(),
            name: i.name.clone(),
            quantity: i.quantity,
            unit_price: money(i.unit_price),
            line_total: money(i.unit_price.saturating_mul(i.quantity)),
            note: i.note.clone(),
            added_at: time::format(&i.added_at),
            removed_at: i.removed_at.as_ref().map(time::format),
        };
        let as_of = t.closed_at.unwrap_or(now);
        let due = match t.status {
            caja_core::tab::TabStatus::Void => None,
            _ => t.due(as_of).map(|d| {
                let line = |l: &OrderLine| DueLineBody {
                    product_id: l.product_id.to_string(),
                    sku: l.sku.clone(),
                    name: l.name.clone(),
                    quantity: l.quantity,
                    unit_price: money(l.unit_price),
                    line_total: money(l.line_total),
                };
                let time = |c: TimeCharge| TimeBody {
                    minutes: c.minutes,
                    rate: money(c.rate_per_hour),
                    amount: money(c.amount),
                };
                DueBody {
                    as_of: time::format(&as_of),
                    seconds: t.seconds(as_of),
                    lines: d.lines.iter().map(line).collect(),
                    time: d.time.map(time),
                    subtotal: money(d.subtotal),
                }
            }),
        };
        Self {
            id: t.id.to_string(),
            label: t.label.clone(),
            resource: t.resource.clone(),
            status: t.status.to_string(),
            paused: t.paused(),
            rate: money(t.rate_per_hour),
            rounding: t.rounding.into(),
            customer: t.customer.as_ref().map(|c| CustomerBody {
                name: c.name.clone(),
                email: c.email.clone(),
            }),
            note: t.note.clone(),
            periods: t
                .periods
                .iter()
                .map(|p| PeriodBody {
                    started_at: time::format(&p.started_at),
                    ended_at: p.ended_at.as_ref().map(time::format),
                })
                .collect(),
            items: t.items.iter().map(item).collect(),
            location_id: t.location_id.to_string(),
            order_id: t.order_id.as_ref().map(ToString::to_string),
            void_reason: t.void_reason.clone(),
            opened_at: time::format(&t.opened_at),
            closed_at: t.closed_at.as_ref().map(time::format),
            updated_at: time::format(&t.updated_at),
            due,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TabPage {
    pub data: Vec<TabBody>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only tabs in this status: open, closed or void.
    pub status: Option<String>,
    /// Only tabs on this desk or table.
    pub resource: Option<String>,
    pub after: Option<String>,
    pub limit: Option<i64>,
}
