//! Orders: what a checkout asks for, how it is priced, and the one state machine every
//! order moves through.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::command::Refusal;
use crate::ids::{OrderId, ProductId, TabId};
use crate::money::{Currency, Money, MAX_AMOUNT};
use crate::product::Product;
use crate::tab::{Due, Tab, TimeCharge};
use crate::time::Timestamp;
use crate::DomainError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    PendingPayment,
    Paid,
    Fulfilled,
    Cancelled,
    Expired,
    Refunded,
    /// Paid at the provider after it expired (its stock gone to others) or was cancelled:
    /// the money must go back. Holds no stock; a refund settles it.
    NeedsRefund,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 7] = [
        OrderStatus::PendingPayment,
        OrderStatus::Paid,
        OrderStatus::Fulfilled,
        OrderStatus::Cancelled,
        OrderStatus::Expired,
        OrderStatus::Refunded,
        OrderStatus::NeedsRefund,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::PendingPayment => "pending_payment",
            OrderStatus::Paid => "paid",
            OrderStatus::Fulfilled => "fulfilled",
            OrderStatus::Cancelled => "cancelled",
            OrderStatus::Expired => "expired",
            OrderStatus::Refunded => "refunded",
            OrderStatus::NeedsRefund => "needs_refund",
        }
    }

    /// Whether the order still holds the stock it reserved.
    pub fn holds_stock(self) -> bool {
        matches!(
            self,
            OrderStatus::PendingPayment | OrderStatus::Paid | OrderStatus::Fulfilled
        )
    }

    /// Whether the order has been paid (and so has exactly one payment).
    pub fn was_paid(self) -> bool {
        matches!(
            self,
            OrderStatus::Paid
                | OrderStatus::Fulfilled
                | OrderStatus::Refunded
                | OrderStatus::NeedsRefund
        )
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OrderStatus {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OrderStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| {
                DomainError::invalid(
                    "status",
                    "must be one of pending_payment, paid, fulfilled, cancelled, expired, refunded, needs_refund",
                )
            })
    }
}

/// What can happen to an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderAction {
    Pay,
    Cancel,
    Fulfill,
    Refund,
    Expire,
    /// Move to another location, with its stock.
    Transfer,
}

impl OrderAction {
    pub const ALL: [OrderAction; 6] = [
        OrderAction::Pay,
        OrderAction::Cancel,
        OrderAction::Fulfill,
        OrderAction::Refund,
        OrderAction::Expire,
        OrderAction::Transfer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderAction::Pay => "pay",
            OrderAction::Cancel => "cancel",
            OrderAction::Fulfill => "fulfill",
            OrderAction::Refund => "refund",
            OrderAction::Expire => "expire",
            OrderAction::Transfer => "transfer",
        }
    }
}

/// A transition the state machine refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidTransition {
    pub from: OrderStatus,
    pub action: OrderAction,
}

impl fmt::Display for InvalidTransition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot {} an order that is {}",
            self.action.as_str(),
            self.from
        )
    }
}

/// The order state machine: `pending_payment → paid → fulfilled`, with `cancelled` and
/// `expired` from pending, and `refunded` from paid, fulfilled or needs_refund. Everything
/// else is refused (`needs_refund` is reached only by a late provider payment, decided in
/// the payment command).
pub fn transition(
    from: OrderStatus,
    action: OrderAction,
) -> Result<OrderStatus, InvalidTransition> {
    use OrderAction as A;
    use OrderStatus as S;
    match (from, action) {
        (S::PendingPayment, A::Pay) => Ok(S::Paid),
        (S::PendingPayment, A::Cancel) => Ok(S::Cancelled),
        (S::PendingPayment, A::Expire) => Ok(S::Expired),
        (S::Paid, A::Fulfill) => Ok(S::Fulfilled),
        (S::Paid | S::Fulfilled | S::NeedsRefund, A::Refund) => Ok(S::Refunded),
        // An order whose goods have not left may move to another location.
        (S::PendingPayment, A::Transfer) => Ok(S::PendingPayment),
        (S::Paid, A::Transfer) => Ok(S::Paid),
        _ => Err(InvalidTransition { from, action }),
    }
}

/// How an order was paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentMethod {
    Cash,
    Card,
    Transfer,
    Provider,
}

impl PaymentMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cash => "cash",
            Self::Card => "card",
            Self::Transfer => "transfer",
            Self::Provider => "provider",
        }
    }
}

impl FromStr for PaymentMethod {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "cash" => Self::Cash,
            "card" => Self::Card,
            "transfer" => Self::Transfer,
            "provider" => Self::Provider,
            _ => {
                return Err(DomainError::invalid(
                    "method",
                    "must be one of cash, card, transfer, provider",
                ))
            }
        })
    }
}

/// How big one order may be (settings `order_max_quantity`, `order_max_lines`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderLimits {
    /// Units of one product in one order, after merging repeated lines.
    pub max_quantity: i64,
    pub max_lines: usize,
}

impl OrderLimits {
    /// The largest limits any setting may give: a line total stays far from overflow.
    pub const CEILING: OrderLimits = OrderLimits {
        max_quantity: 1_000_000,
        max_lines: 1000,
    };
}

impl Default for OrderLimits {
    fn default() -> Self {
        Self {
            max_quantity: 1000,
            max_lines: 100,
        }
    }
}

/// One requested line, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestedLine {
    pub product_id: ProductId,
    pub quantity: i64,
}

/// Merges repeated products and sorts by product id — the order rows are locked in, so
/// two checkouts can never wait on each other in a cycle.
pub fn merge_lines(
    lines: Vec<RequestedLine>,
    limits: OrderLimits,
) -> Result<Vec<RequestedLine>, DomainError> {
    let OrderLimits {
        max_quantity,
        max_lines,
    } = limits;
    if lines.is_empty() {
        return Err(DomainError::invalid(
            "lines",
            "an order needs at least one line",
        ));
    }
    if lines.len() > max_lines {
        return Err(DomainError::invalid(
            "lines",
            format!("an order has at most {max_lines} lines"),
        ));
    }
    let mut merged: BTreeMap<ProductId, i64> = BTreeMap::new();
    for line in lines {
        if !(1..=max_quantity).contains(&line.quantity) {
            return Err(DomainError::invalid(
                "quantity",
                format!("must be between 1 and {max_quantity}"),
            ));
        }
        *merged.entry(line.product_id).or_default() += line.quantity;
    }
    merged
        .into_iter()
        .map(|(product_id, quantity)| {
            if quantity > max_quantity {
                Err(DomainError::invalid(
                    "quantity",
                    format!("{product_id}: at most {max_quantity} units in one order"),
                ))
            } else {
                Ok(RequestedLine {
                    product_id,
                    quantity,
                })
            }
        })
        .collect()
}

/// A line as sold: the product as it was at order time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderLine {
    pub product_id: ProductId,
    pub sku: String,
    pub name: String,
    pub quantity: i64,
    pub unit_price: i64,
    pub line_total: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    pub name: String,
    pub email: Option<String>,
}

/// A checkout request, parsed: lines merged and sorted, tip in the store currency.
#[derive(Debug, Clone)]
pub struct NewOrder {
    pub lines: Vec<RequestedLine>,
    pub tip: Money,
    pub note: Option<String>,
    pub customer: Option<Customer>,
    /// Where the stock is taken from.
    pub location: crate::ids::LocationId,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub id: OrderId,
    pub number: i64,
    pub status: OrderStatus,
    pub lines: Vec<OrderLine>,
    pub subtotal: i64,
    pub tip: i64,
    pub total: i64,
    pub currency: Currency,
    pub note: Option<String>,
    pub customer: Option<Customer>,
    /// The tab this order was closed from.
    pub tab_id: Option<TabId>,
    /// The box-office hold this order was made from.
    pub hold_id: Option<crate::ids::HoldId>,
    /// A tab's time line: minutes billed at its hourly rate (part of the subtotal).
    pub time: Option<TimeCharge>,
    /// The location whose stock the order holds.
    pub location_id: crate::ids::LocationId,
    /// Each move to another location, oldest first.
    pub handovers: Vec<crate::location::Handover>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub expires_at: Timestamp,
}

impl Order {
    /// How many units of each product the order's lines hold.
    pub fn quantities(&self) -> BTreeMap<&ProductId, i64> {
        let mut wanted = BTreeMap::new();
        for line in &self.lines {
            *wanted.entry(&line.product_id).or_default() += line.quantity;
        }
        wanted
    }

    /// A new order awaiting payment, from a checkout priced at `now`.
    pub fn pending(
        new: &NewOrder,
        priced: Priced,
        number: i64,
        now: Timestamp,
        ttl: chrono::Duration,
    ) -> Self {
        Self {
            id: OrderId::generate(),
            number,
            status: OrderStatus::PendingPayment,
            lines: priced.lines,
            subtotal: priced.subtotal,
            tip: new.tip.amount,
            total: priced.total,
            currency: new.tip.currency,
            note: new.note.clone(),
            customer: new.customer.clone(),
            tab_id: None,
            hold_id: None,
            time: None,
            location_id: new.location.clone(),
            handovers: Vec::new(),
            created_at: now,
            updated_at: now,
            expires_at: now + ttl,
        }
    }

    /// The order a tab closes into at `now`: its items and time line as `due` priced them.
    pub fn from_tab(
        tab: &Tab,
        due: Due,
        tip: Money,
        number: i64,
        now: Timestamp,
        ttl: chrono::Duration,
    ) -> Option<Self> {
        let total = due
            .subtotal
            .checked_add(tip.amount)
            .filter(|t| *t <= MAX_ORDER_TOTAL)?;
        Some(Self {
            id: OrderId::generate(),
            number,
            status: OrderStatus::PendingPayment,
            lines: due.lines,
            subtotal: due.subtotal,
            tip: tip.amount,
            total,
            currency: tab.currency,
            note: tab.note.clone(),
            customer: tab.customer.clone(),
            tab_id: Some(tab.id.clone()),
            hold_id: None,
            time: due.time,
            location_id: tab.location_id.clone(),
            handovers: Vec::new(),
            created_at: now,
            updated_at: now,
            expires_at: now + ttl,
        })
    }
}

/// A line that cannot be sold as asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Shortage {
    pub product_id: String,
    /// The location the stock was asked of.
    pub location_id: String,
    pub requested: i64,
    pub available: i64,
}

impl Shortage {
    /// `product` has less than `requested` at `location`.
    pub fn of(product: &Product, location: &crate::ids::LocationId, requested: i64) -> Self {
        Self {
            product_id: product.id.to_string(),
            location_id: location.to_string(),
            requested,
            available: product.locations.at(location),
        }
    }
}

/// The most one order may total, in minor units: far below `i64::MAX`, so no sum of
/// totals that `caja check` or a report adds up can overflow.
pub const MAX_ORDER_TOTAL: i64 = 1_000_000_000_000_000;

/// A checkout's lines as sold, and what they add up to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Priced {
    pub lines: Vec<OrderLine>,
    pub subtotal: i64,
    pub total: i64,
}

/// Prices a checkout against the locked products (sorted like `lines`), or says why not.
/// `products` holds what the database found; missing ids are unknown. Every sum is
/// checked: an order past [`MAX_ORDER_TOTAL`] is refused, never wrapped or saturated.
pub fn price(order: &NewOrder, products: &BTreeMap<ProductId, Product>) -> Result<Priced, Refusal> {
    let unknown: Vec<String> = order
        .lines
        .iter()
        .filter(|l| products.get(&l.product_id).is_none_or(|p| p.archived))
        .map(|l| l.product_id.to_string())
        .collect();
    if !unknown.is_empty() {
        return Err(Refusal::UnknownProducts(unknown));
    }
    let too_large = Refusal::AmountTooLarge {
        max: MAX_ORDER_TOTAL,
    };
    let mut shortages = Vec::new();
    let mut lines = Vec::with_capacity(order.lines.len());
    let mut subtotal: i64 = 0;
    for l in &order.lines {
        let Some(p) = products.get(&l.product_id) else {
            continue;
        };
        if p.locations.at(&order.location) < l.quantity {
            shortages.push(Shortage::of(p, &order.location, l.quantity));
            continue;
        }
        let line_total = p
            .price
            .amount
            .checked_mul(l.quantity)
            .ok_or_else(|| too_large.clone())?;
        subtotal = subtotal
            .checked_add(line_total)
            .ok_or_else(|| too_large.clone())?;
        lines.push(OrderLine {
            product_id: p.id.clone(),
            sku: p.sku.as_str().to_owned(),
            name: p.name.as_str().to_owned(),
            quantity: l.quantity,
            unit_price: p.price.amount,
            line_total,
        });
    }
    if !shortages.is_empty() {
        return Err(Refusal::OutOfStock(shortages));
    }
    let total = subtotal
        .checked_add(order.tip.amount)
        .filter(|t| *t <= MAX_ORDER_TOTAL)
        .ok_or(too_large)?;
    Ok(Priced {
        lines,
        subtotal,
        total,
    })
}

/// A tip as received: non-negative, in the store currency.
pub fn parse_tip(amount: i64, currency: &str, store: Currency) -> Result<Money, DomainError> {
    if !(0..=MAX_AMOUNT).contains(&amount) {
        return Err(DomainError::invalid(
            "tip",
            "must be between 0 and 10^12 minor units",
        ));
    }
    Money::parse_price("tip", amount, currency, store)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::product::{ProductName, Sku, Stock, Version};
    use OrderAction as A;
    use OrderStatus as S;

    #[test]
    fn every_state_and_action_pair_is_decided() {
        let allowed = [
            (S::PendingPayment, A::Pay, S::Paid),
            (S::PendingPayment, A::Cancel, S::Cancelled),
            (S::PendingPayment, A::Expire, S::Expired),
            (S::Paid, A::Fulfill, S::Fulfilled),
            (S::Paid, A::Refund, S::Refunded),
            (S::Fulfilled, A::Refund, S::Refunded),
            (S::NeedsRefund, A::Refund, S::Refunded),
            (S::PendingPayment, A::Transfer, S::PendingPayment),
            (S::Paid, A::Transfer, S::Paid),
        ];
        for from in OrderStatus::ALL {
            for action in OrderAction::ALL {
                let expected = allowed
                    .iter()
                    .find(|(f, a, _)| *f == from && *a == action)
                    .map(|(_, _, to)| *to);
                match (transition(from, action), expected) {
                    (Ok(to), Some(e)) => assert_eq!(to, e),
                    (Err(e), None) => {
                        assert_eq!(e, InvalidTransition { from, action });
                        assert!(e.to_string().contains(from.as_str()));
                    }
                    (got, want) => panic!("{from} {action:?}: got {got:?}, want {want:?}"),
                }
            }
        }
    }

    #[test]
    fn statuses_round_trip_and_know_their_stock() {
        for s in OrderStatus::ALL {
            assert_eq!(s.as_str().parse::<OrderStatus>().unwrap(), s);
        }
        assert!(S::Paid.holds_stock() && !S::Cancelled.holds_stock() && !S::Refunded.holds_stock());
        assert!(S::Refunded.was_paid() && !S::Expired.was_paid());
    }

    fn pid(n: u8) -> ProductId {
        ProductId::parse("id", &format!("prod_01J0000000000000000000000{n}")).unwrap()
    }

    #[test]
    fn lines_merge_and_sort_by_product() {
        let lines = vec![
            RequestedLine {
                product_id: pid(2),
                quantity: 1,
            },
            RequestedLine {
                product_id: pid(1),
                quantity: 2,
            },
            RequestedLine {
                product_id: pid(2),
                quantity: 3,
            },
        ];
        let merged = merge_lines(lines, OrderLimits::default()).unwrap();
        assert_eq!(
            merged,
            vec![
                RequestedLine {
                    product_id: pid(1),
                    quantity: 2
                },
                RequestedLine {
                    product_id: pid(2),
                    quantity: 4
                },
            ]
        );
    }

    #[test]
    fn line_limits_hold() {
        assert!(merge_lines(vec![], OrderLimits::default()).is_err());
        assert!(merge_lines(
            vec![RequestedLine {
                product_id: pid(1),
                quantity: 0
            }],
            OrderLimits::default()
        )
        .is_err());
        assert!(merge_lines(
            vec![RequestedLine {
                product_id: pid(1),
                quantity: 1001
            }],
            OrderLimits::default()
        )
        .is_err());
        let twice = vec![
            RequestedLine {
                product_id: pid(1),
                quantity: 600
            };
            2
        ];
        assert!(
            merge_lines(twice, OrderLimits::default()).is_err(),
            "merged quantity is bounded too"
        );
        let tight = OrderLimits {
            max_quantity: 2,
            max_lines: 1,
        };
        assert!(merge_lines(
            vec![RequestedLine {
                product_id: pid(1),
                quantity: 3
            }],
            tight
        )
        .is_err());
        let many = (0..101)
            .map(|_| RequestedLine {
                product_id: pid(1),
                quantity: 1,
            })
            .collect();
        assert!(merge_lines(many, OrderLimits::default()).is_err());
    }

    fn product(n: u8, stock: i64, archived: bool) -> Product {
        let t = crate::time::now();
        Product {
            id: pid(n),
            sku: Sku::parse(&format!("S{n}")).unwrap(),
            name: ProductName::parse("P").unwrap(),
            price: Money {
                amount: 100 * i64::from(n),
                currency: Currency::parse("c", "MXN").unwrap(),
            },
            stock: Stock::parse(stock).unwrap(),
            locations: crate::location::StockByLocation::at_main(stock),
            version: Version(1),
            archived,
            event_id: None,
            created_at: t,
            updated_at: t,
        }
    }

    fn order(lines: &[(u8, i64)]) -> NewOrder {
        NewOrder {
            lines: lines
                .iter()
                .map(|(n, q)| RequestedLine {
                    product_id: pid(*n),
                    quantity: *q,
                })
                .collect(),
            tip: Money {
                amount: 0,
                currency: Currency::parse("c", "MXN").unwrap(),
            },
            note: None,
            customer: None,
            location: crate::ids::LocationId::main(),
        }
    }

    #[test]
    fn pricing_snapshots_lines_and_lists_every_shortage() {
        let products: BTreeMap<_, _> = [
            product(1, 5, false),
            product(2, 1, false),
            product(3, 0, false),
        ]
        .into_iter()
        .map(|p| (p.id.clone(), p))
        .collect();
        let priced = price(&order(&[(1, 2), (2, 1)]), &products).unwrap();
        assert_eq!(priced.subtotal, 2 * 100 + 200);
        assert_eq!(priced.total, priced.subtotal);
        assert_eq!(priced.lines[0].line_total, 200);
        match price(&order(&[(1, 6), (2, 1), (3, 1)]), &products) {
            Err(Refusal::OutOfStock(s)) => {
                assert_eq!(s.len(), 2);
                assert_eq!((s[0].requested, s[0].available), (6, 5));
                assert_eq!((s[1].requested, s[1].available), (1, 0));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unknown_or_archived_products_are_refused() {
        let products: BTreeMap<_, _> = [product(1, 5, true)]
            .into_iter()
            .map(|p| (p.id.clone(), p))
            .collect();
        assert_eq!(
            price(&order(&[(1, 1), (2, 1)]), &products),
            Err(Refusal::UnknownProducts(vec![
                pid(1).to_string(),
                pid(2).to_string()
            ]))
        );
    }

    #[test]
    fn totals_past_the_maximum_are_refused_not_wrapped() {
        let mut huge = product(1, 1_000_000, false);
        huge.price.amount = crate::money::MAX_AMOUNT;
        let products: BTreeMap<_, _> = [(huge.id.clone(), huge)].into_iter().collect();
        let too_large = Err(Refusal::AmountTooLarge {
            max: MAX_ORDER_TOTAL,
        });
        assert_eq!(price(&order(&[(1, 1_000_000)]), &products), too_large);
        let mut tipped = order(&[(1, 1000)]);
        assert_eq!(
            price(&tipped, &products).unwrap().total,
            1000 * crate::money::MAX_AMOUNT
        );
        tipped.tip.amount = i64::MAX;
        assert_eq!(price(&tipped, &products), too_large);
        tipped.tip.amount = 1;
        assert_eq!(price(&tipped, &products), too_large);
    }
}
