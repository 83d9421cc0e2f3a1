//! Public identifiers: a short type prefix and a ULID (`prod_01J…`).
//!
//! The prefix tells a human (and a support ticket) what an id is; the ULID sorts by creation
//! time, so "order by id" is a stable, meaningful order for cursor pagination.

use std::fmt;

use crate::DomainError;

/// The next ULID of this process: strictly increasing even within one millisecond, so ids
/// made one after the other (the orders of one batch, say) sort in the order they were
/// made and a cursor never skips a later one.
fn next_ulid() -> ulid::Ulid {
    static GENERATOR: std::sync::Mutex<Option<ulid::Generator>> = std::sync::Mutex::new(None);
    let mut guard = GENERATOR.lock().unwrap_or_else(|p| p.into_inner());
    let generator = guard.get_or_insert_with(ulid::Generator::new);
    // The random part overflows only after 2^80 ids in one millisecond.
    generator.generate().unwrap_or_else(|_| ulid::Ulid::new())
}

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            pub fn generate() -> Self {
                Self(format!("{}_{}", $prefix, next_ulid()))
            }

            /// Parses an id received from outside; `field` names it in the refusal.
            pub fn parse(field: &'static str, s: &str) -> Result<Self, DomainError> {
                let ulid = s
                    .strip_prefix(concat!($prefix, "_"))
                    .ok_or_else(|| DomainError::invalid(field, concat!("must start with `", $prefix, "_`")))?;
                ulid::Ulid::from_string(ulid)
                    .map_err(|_| DomainError::invalid(field, "not a valid id"))?;
                Ok(Self(s.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
    };
}

prefixed_id!(
    /// A product in the catalog.
    ProductId,
    "prod"
);
prefixed_id!(
    /// An API key (the id, never the secret).
    KeyId,
    "key"
);
prefixed_id!(
    /// An order.
    OrderId,
    "ord"
);
prefixed_id!(
    /// A tab: a coworking session or a table's check.
    TabId,
    "tab"
);
prefixed_id!(
    /// One item on a tab.
    TabItemId,
    "item"
);
prefixed_id!(
    /// An entry of the audit log.
    AuditId,
    "aud"
);
prefixed_id!(
    /// A ticketed event (a concert, a show): sections, seats, holds.
    EventId,
    "evt"
);
prefixed_id!(
    /// Seats or places of an event held for a buyer until it expires or becomes an order.
    HoldId,
    "hold"
);
prefixed_id!(
    /// A place in an event's waiting room.
    TicketId,
    "qt"
);
prefixed_id!(
    /// A merchant's webhook subscription.
    SubscriptionId,
    "whs"
);
prefixed_id!(
    /// A place stock is kept and sold from: a branch, a stall, a warehouse.
    LocationId,
    "loc"
);
prefixed_id!(
    /// Stock sent from one location to another.
    TransferId,
    "trf"
);

impl LocationId {
    /// The location every database has from the start (the one all stock belonged to
    /// before there were locations). Its id never changes, so code that needs "the default"
    /// asks no one; its code and name may be changed like any other's.
    pub fn main() -> Self {
        Self(format!("{}_{}", Self::PREFIX, "0".repeat(26)))
    }

    pub fn is_main(&self) -> bool {
        *self == Self::main()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_back() {
        let id = ProductId::generate();
        assert!(id.as_str().starts_with("prod_"));
        assert_eq!(ProductId::parse("id", id.as_str()).unwrap(), id);
    }

    #[test]
    fn ids_of_another_kind_or_garbage_are_refused() {
        let key = KeyId::generate();
        assert!(ProductId::parse("id", key.as_str()).is_err());
        assert!(ProductId::parse("id", "prod_notaulid").is_err());
        assert!(ProductId::parse("id", "").is_err());
    }

    #[test]
    fn the_main_location_is_a_valid_id_before_every_other() {
        let main = LocationId::main();
        assert_eq!(LocationId::parse("id", main.as_str()).unwrap(), main);
        assert!(main < LocationId::generate());
    }

    #[test]
    fn ids_sort_by_creation() {
        let a = ProductId::generate();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = ProductId::generate();
        assert!(a < b);
    }

    #[test]
    fn ids_made_within_one_millisecond_still_sort_in_order() {
        let ids: Vec<OrderId> = (0..1000).map(|_| OrderId::generate()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
    }
}
