//! Topics of the change feed: what a subscriber may ask for, which events each topic
//! carries, and which roles may see it. Kept here so every transport (polling, WebSocket,
//! Server-Sent Events) applies one rule.

use std::fmt;

use crate::auth::{Action, Role};
use crate::DomainError;

/// A subscription topic.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Topic {
    /// Every product event.
    Products,
    /// Every order event.
    Orders,
    /// Manual stock movements, with their reasons and notes (admin only).
    Stock,
    /// Every tab event: what every till needs to show every open session.
    Tabs,
    /// Every box-office event and hold: what a box office screen shows.
    Events,
    /// Locations and the transfers between them: what a branch's stockroom watches.
    Locations,
    Product(String),
    Order(String),
    Tab(String),
    /// One ticketed event's changes.
    Event(String),
    /// How one event's waiting room moves: one `queue.advanced` per admission tick.
    Queue(String),
}

impl Topic {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let raw = raw.trim();
        let bad = || {
            DomainError::invalid(
                "topics",
                format!(
                    "unknown topic {raw:?}: use products, orders, stock, tabs, events, locations, product:ID, order:ID, tab:ID, event:ID or queue:ID"
                ),
            )
        };
        match raw {
            "products" => Ok(Topic::Products),
            "orders" => Ok(Topic::Orders),
            "stock" => Ok(Topic::Stock),
            "tabs" => Ok(Topic::Tabs),
            "events" => Ok(Topic::Events),
            "locations" => Ok(Topic::Locations),
            _ => match raw.split_once(':') {
                Some(("event", id)) if plain(id) => Ok(Topic::Event(id.to_owned())),
                Some(("queue", id)) if plain(id) => Ok(Topic::Queue(id.to_owned())),
                Some(("product", id)) if plain(id) => Ok(Topic::Product(id.to_owned())),
                Some(("order", id)) if plain(id) => Ok(Topic::Order(id.to_owned())),
                Some(("tab", id)) if plain(id) => Ok(Topic::Tab(id.to_owned())),
                _ => Err(bad()),
            },
        }
    }

    /// Parses a comma-separated list; empty means every topic `role` may see.
    pub fn parse_list(raw: &str, role: Role) -> Result<Vec<Topic>, DomainError> {
        let topics: Vec<Topic> = raw
            .split(',')
            .filter(|t| !t.trim().is_empty())
            .map(Topic::parse)
            .collect::<Result<_, _>>()?;
        Self::for_role(topics, role)
    }

    /// Checks that `role` may see every topic; no topic means all it may see.
    pub fn for_role(topics: Vec<Topic>, role: Role) -> Result<Vec<Topic>, DomainError> {
        if topics.is_empty() {
            return Ok(Self::all()
                .into_iter()
                .filter(|t| t.visible_to(role))
                .collect());
        }
        if let Some(denied) = topics.iter().find(|t| !t.visible_to(role)) {
            return Err(DomainError::Forbidden(format!(
                "a {role} key may not subscribe to {denied}"
            )));
        }
        Ok(topics)
    }

    fn all() -> Vec<Topic> {
        vec![
            Topic::Products,
            Topic::Orders,
            Topic::Stock,
            Topic::Tabs,
            Topic::Events,
            Topic::Locations,
        ]
    }

    pub fn visible_to(&self, role: Role) -> bool {
        match self {
            Topic::Products | Topic::Product(_) | Topic::Locations => role.may(Action::ReadCatalog),
            Topic::Orders | Topic::Order(_) => role.may(Action::ReadOrders),
            Topic::Stock => role.may(Action::ManageStock),
            Topic::Tabs | Topic::Tab(_) => role.may(Action::ReadOrders),
            Topic::Events | Topic::Event(_) | Topic::Queue(_) => role.may(Action::ReadEvents),
        }
    }

    /// Does this topic carry the event `kind` about `resource_id`?
    pub fn carries(&self, kind: &str, resource_id: &str) -> bool {
        let family = kind.split('.').next().unwrap_or("");
        match self {
            Topic::Products => family == "product",
            Topic::Orders => family == "order",
            Topic::Stock => family == "stock",
            Topic::Product(id) => family == "product" && id == resource_id,
            Topic::Order(id) => family == "order" && id == resource_id,
            Topic::Tabs => family == "tab",
            Topic::Tab(id) => family == "tab" && id == resource_id,
            Topic::Events => family == "event" || family == "hold",
            Topic::Event(id) => family == "event" && id == resource_id,
            Topic::Queue(id) => family == "queue" && id == resource_id,
            Topic::Locations => family == "location" || family == "transfer",
        }
    }
}

/// Does any of `topics` carry the event?
pub fn wanted(topics: &[Topic], kind: &str, resource_id: &str) -> bool {
    topics.iter().any(|t| t.carries(kind, resource_id))
}

fn plain(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Topic::Products => f.write_str("products"),
            Topic::Orders => f.write_str("orders"),
            Topic::Stock => f.write_str("stock"),
            Topic::Product(id) => write!(f, "product:{id}"),
            Topic::Order(id) => write!(f, "order:{id}"),
            Topic::Tabs => f.write_str("tabs"),
            Topic::Tab(id) => write!(f, "tab:{id}"),
            Topic::Events => f.write_str("events"),
            Topic::Event(id) => write!(f, "event:{id}"),
            Topic::Queue(id) => write!(f, "queue:{id}"),
            Topic::Locations => f.write_str("locations"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_parse_and_print_back() {
        for raw in [
            "products",
            "orders",
            "stock",
            "product:prod_01ABC",
            "order:ord_9",
            "tabs",
            "tab:tab_01ABC",
            "events",
            "event:evt_01ABC",
            "queue:evt_01ABC",
            "locations",
        ] {
            assert_eq!(Topic::parse(raw).unwrap().to_string(), raw);
        }
        for bad in [
            "",
            "tab",
            "product:",
            "order:a b",
            "product:x/y",
            "tab:",
            "queue:",
        ] {
            assert!(Topic::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn no_topic_means_everything_the_role_may_see() {
        assert_eq!(Topic::parse_list("", Role::Admin).unwrap().len(), 6);
        let clerk = Topic::parse_list(" , ", Role::Clerk).unwrap();
        assert!(!clerk.contains(&Topic::Stock));
        assert!(clerk.contains(&Topic::Orders) && clerk.contains(&Topic::Events));
    }

    #[test]
    fn a_clerk_may_not_ask_for_admin_topics() {
        assert!(matches!(
            Topic::parse_list("orders,stock", Role::Clerk),
            Err(DomainError::Forbidden(_))
        ));
        assert!(Topic::parse_list("orders,stock", Role::Admin).is_ok());
    }

    #[test]
    fn topics_carry_their_family_or_their_one_resource() {
        let p = Topic::Product("prod_1".into());
        assert!(p.carries("product.updated", "prod_1"));
        assert!(!p.carries("product.updated", "prod_2"));
        assert!(!p.carries("stock.moved", "prod_1"));
        assert!(Topic::Orders.carries("order.paid", "ord_1"));
        assert!(!Topic::Orders.carries("product.created", "prod_1"));
        assert!(wanted(
            &[Topic::Stock, Topic::Orders],
            "stock.moved",
            "prod_1"
        ));
        assert!(Topic::Locations.carries("transfer.received", "trf_1"));
        assert!(Topic::Locations.carries("location.created", "loc_1"));
        assert!(!Topic::Locations.carries("order.transferred", "ord_1"));
        assert!(Topic::Orders.carries("order.transferred", "ord_1"));
    }
}
