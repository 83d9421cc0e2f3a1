//! The shapes of `/v1/orders` requests and responses, and their parsing into commands.

use caja_core::command::Command;
use caja_core::ids::{LocationId, OrderId, ProductId};
use caja_core::money::{Currency, Money};
use caja_core::order::{self, Customer, NewOrder, Order, OrderLine, PaymentMethod, RequestedLine};
use caja_core::text;
use caja_core::DomainError;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ApiResult};
use crate::routes::products::MoneyBody;
use crate::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LineBody {
    #[schema(pattern = "^prod_[0-7][0-9A-HJKMNP-TV-Z]{25}$")]
    pub product_id: String,
    pub quantity: i64,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerBody {
    #[schema(
        max_length = 200,
        pattern = r"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*[^\s\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f][^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*$"
    )]
    pub name: String,
    #[schema(
        max_length = 254,
        pattern = r"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*@[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*$"
    )]
    pub email: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrder {
    /// What to buy; or, instead, `hold_id`.
    #[serde(default)]
    pub lines: Vec<LineBody>,
    /// A box-office hold to turn into the order (its places, at its price), instead of
    /// `lines`.
    #[schema(pattern = "^hold_[0-7][0-9A-HJKMNP-TV-Z]{25}$")]
    pub hold_id: Option<String>,
    /// With `hold_id`: the buyer's own reference the hold was placed with (required of a
    /// public key, which may order only its own holds).
    #[schema(max_length = 100)]
    pub client_ref: Option<String>,
    pub tip: Option<MoneyBody>,
    #[schema(
        max_length = 1000,
        pattern = r"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*$"
    )]
    pub note: Option<String>,
    pub customer: Option<CustomerBody>,
    /// The location to sell from (id or code): the key's location, or the default, when
    /// absent. A clerk's key bound to a location may name only that one.
    #[schema(max_length = 64)]
    pub location: Option<String>,
}

impl CreateOrder {
    /// The checkout at `at`, or the order of a hold.
    pub(super) fn command(
        &self,
        state: &AppState,
        buyer: bool,
        at: LocationId,
    ) -> Result<Command, DomainError> {
        let Some(hold) = &self.hold_id else {
            if buyer {
                return Err(DomainError::Forbidden(
                    "a public key orders holds only: send hold_id".into(),
                ));
            }
            return Ok(Command::Checkout(self.parse(state, at)?));
        };
        let client_ref = self
            .client_ref
            .as_deref()
            .map(caja_core::waiting_room::client_ref)
            .transpose()?;
        if buyer && client_ref.is_none() {
            return Err(DomainError::invalid(
                "client_ref",
                "a buyer orders its own hold: send the client_ref it was placed with",
            ));
        }
        if !self.lines.is_empty() || self.tip.is_some() || self.location.is_some() {
            return Err(DomainError::invalid(
                "hold_id",
                "an order of a hold takes its places, price and location from the hold: send no lines, tip or location",
            ));
        }
        Ok(Command::OrderHold {
            hold: caja_core::ids::HoldId::parse("hold_id", hold)?,
            note: text::optional("note", self.note.as_deref(), 1000)?,
            customer: self.customer.as_ref().map(parse_customer).transpose()?,
            // Staff may order any hold; a buyer only the one placed with its reference.
            client_ref: if buyer { client_ref } else { None },
        })
    }

    pub(super) fn parse(&self, state: &AppState, at: LocationId) -> Result<NewOrder, DomainError> {
        let store = state.config().currency;
        let lines = self
            .lines
            .iter()
            .map(|l| {
                Ok(RequestedLine {
                    product_id: ProductId::parse("lines.product_id", &l.product_id)?,
                    quantity: l.quantity,
                })
            })
            .collect::<Result<Vec<_>, DomainError>>()?;
        let tip = parse_tip(self.tip.as_ref(), store)?;
        let note = text::optional("note", self.note.as_deref(), 1000)?;
        let customer = self.customer.as_ref().map(parse_customer).transpose()?;
        Ok(NewOrder {
            lines: order::merge_lines(lines, state.config().order_limits)?,
            tip,
            note,
            customer,
            location: at,
        })
    }
}

/// A tip as received, in the store's currency; none is a tip of 0.
pub fn parse_tip(tip: Option<&MoneyBody>, store: Currency) -> Result<Money, DomainError> {
    match tip {
        Some(t) => order::parse_tip(t.amount, &t.currency, store),
        None => Ok(Money {
            amount: 0,
            currency: store,
        }),
    }
}

/// A customer as received: a name, and an email that at least looks like one.
pub fn parse_customer(c: &CustomerBody) -> Result<Customer, DomainError> {
    let name = text::optional("customer.name", Some(&c.name), 200)?
        .ok_or_else(|| DomainError::invalid("customer.name", "must be 1 to 200 characters"))?;
    let email = text::optional("customer.email", c.email.as_deref(), 254)?;
    if email.as_deref().is_some_and(|e| !e.contains('@')) {
        return Err(DomainError::invalid(
            "customer.email",
            "is not an email address",
        ));
    }
    Ok(Customer { name, email })
}

/// A line of an order: a product, or (for an order closed from a tab with an hourly rate)
/// the time line, which comes last.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderLineBody {
    /// `product` or `time`.
    #[schema(example = "product")]
    pub kind: &'static str,
    /// The product sold; null on the time line.
    pub product_id: Option<String>,
    pub sku: Option<String>,
    pub name: String,
    /// Units sold; 1 on the time line.
    pub quantity: i64,
    pub unit_price: MoneyBody,
    pub line_total: MoneyBody,
    /// The time line's minutes billed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minutes: Option<i64>,
    /// The time line's hourly rate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<MoneyBody>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderBody {
    #[schema(example = "ord_01JD5V6Q3X8N0R2M4K7T9W1Y3Z")]
    pub id: String,
    /// Human, sequential, unique.
    pub number: i64,
    #[schema(example = "pending_payment")]
    pub status: String,
    pub lines: Vec<OrderLineBody>,
    pub subtotal: MoneyBody,
    pub tip: MoneyBody,
    pub total: MoneyBody,
    pub currency: String,
    pub note: Option<String>,
    pub customer: Option<CustomerBody>,
    /// The tab this order was closed from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tab_id: Option<String>,
    /// The box-office hold this order was made from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold_id: Option<String>,
    /// The location whose stock the order holds.
    pub location_id: String,
    /// Each move to another location, oldest first.
    pub handovers: Vec<HandoverBody>,
    pub created_at: String,
    pub updated_at: String,
    /// When an unpaid order gives its stock back.
    pub expires_at: String,
}

impl From<&Order> for OrderBody {
    fn from(o: &Order) -> Self {
        let money = |amount| {
            MoneyBody::from(Money {
                amount,
                currency: o.currency,
            })
        };
        let line = |l: &OrderLine| OrderLineBody {
            kind: "product",
            product_id: Some(l.product_id.to_string()),
            sku: Some(l.sku.clone()),
            name: l.name.clone(),
            quantity: l.quantity,
            unit_price: money(l.unit_price),
            line_total: money(l.line_total),
            minutes: None,
            rate: None,
        };
        let time = o.time.map(|t| OrderLineBody {
            kind: "time",
            product_id: None,
            sku: None,
            name: format!("Time ({} min)", t.minutes),
            quantity: 1,
            unit_price: money(t.amount),
            line_total: money(t.amount),
            minutes: Some(t.minutes),
            rate: Some(money(t.rate_per_hour)),
        });
        Self {
            id: o.id.to_string(),
            number: o.number,
            status: o.status.to_string(),
            lines: o.lines.iter().map(line).chain(time).collect(),
            subtotal: money(o.subtotal),
            tip: money(o.tip),
            total: money(o.total),
            currency: o.currency.to_string(),
            note: o.note.clone(),
            customer: o.customer.as_ref().map(|c| CustomerBody {
                name: c.name.clone(),
                email: c.email.clone(),
            }),
            tab_id: o.tab_id.as_ref().map(ToString::to_string),
            hold_id: o.hold_id.as_ref().map(ToString::to_string),
            location_id: o.location_id.to_string(),
            handovers: o
                .handovers
                .iter()
                .map(|h| HandoverBody {
                    from: h.from.to_string(),
                    to: h.to.to_string(),
                    at: caja_core::time::format(&h.at),
                })
                .collect(),
            created_at: caja_core::time::format(&o.created_at),
            updated_at: caja_core::time::format(&o.updated_at),
            expires_at: caja_core::time::format(&o.expires_at),
        }
    }
}

/// One move of an order between locations.
#[derive(Debug, Serialize, ToSchema)]
pub struct HandoverBody {
    pub from: String,
    pub to: String,
    pub at: String,
}

/// Where to move an order.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HandOverBody {
    /// The location (id or code) that takes the order and its stock.
    #[schema(max_length = 64)]
    pub to: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderPage {
    pub data: Vec<OrderBody>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only orders in this status.
    pub status: Option<String>,
    pub after: Option<String>,
    pub limit: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentBody {
    /// cash, card, transfer or provider.
    #[schema(pattern = "^(cash|card|transfer|provider)$")]
    pub method: String,
    /// Must equal the order's total.
    pub amount: MoneyBody,
    #[schema(
        max_length = 200,
        pattern = r"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*$"
    )]
    pub reference: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmptyBody {}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundBody {
    /// Put the units back in stock.
    #[serde(default)]
    pub restock: bool,
}

impl PaymentBody {
    /// The payment command for order `id`.
    pub(super) fn parse(&self, state: &AppState, id: OrderId) -> ApiResult<Command> {
        let method: PaymentMethod = self.method.parse()?;
        let amount = Money::parse_price(
            "amount",
            self.amount.amount,
            &self.amount.currency,
            state.config().currency,
        )?;
        let reference = text::optional("reference", self.reference.as_deref(), 200)?;
        Ok(Command::Pay {
            order: id,
            method,
            amount: amount.amount,
            reference,
        })
    }
}

/// An order id from the path; one that cannot exist is simply not found.
pub(super) fn order_id(raw: &str) -> ApiResult<OrderId> {
    OrderId::parse("id", raw).map_err(|_| ApiError::not_found(format!("no order {raw}")))
}
