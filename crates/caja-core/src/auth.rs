//! API keys and roles.
//!
//! A key is 256 random bits shown once; only its SHA-256 is stored. A fast hash is right
//! here (unlike for passwords) because the secret is high-entropy: there is nothing to
//! brute-force, and every request can be authenticated with one indexed lookup.

use std::fmt;
use std::str::FromStr;

use rand::distributions::Alphanumeric;
use rand::Rng;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::DomainError;

/// What a key may do. Admin may do everything; clerk may read the catalog and sell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Clerk,
    /// The buyer's browser or app: reads events, joins their waiting rooms, holds with an
    /// admission, and turns its own holds into orders. Nothing else.
    Public,
}

/// The kinds of action the API guards, so the role rule lives in one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    ReadCatalog,
    WriteCatalog,
    /// Move stock by hand (restock, correction, damage, return).
    ManageStock,
    /// Create orders, take payments, cancel and fulfil.
    Sell,
    ReadOrders,
    /// Give money back.
    Refund,
    /// Drop a tab without charging it, giving its items' stock back.
    VoidTab,
    /// Run the deployment: maintenance mode and the like.
    Administer,
    /// Read ticketed events and what they have left.
    ReadEvents,
    /// Join a waiting room, hold places, and order a hold.
    Buy,
}

impl Role {
    pub fn may(self, action: Action) -> bool {
        match (self, action) {
            (Role::Admin, _) => true,
            (
                Role::Clerk,
                Action::ReadCatalog
                | Action::Sell
                | Action::ReadOrders
                | Action::ReadEvents
                | Action::Buy,
            ) => true,
            (Role::Public, Action::ReadEvents | Action::Buy) => true,
            (
                Role::Public,
                Action::ReadCatalog
                | Action::WriteCatalog
                | Action::ManageStock
                | Action::Sell
                | Action::ReadOrders
                | Action::Refund
                | Action::VoidTab
                | Action::Administer,
            ) => false,
            (
                Role::Clerk,
                Action::WriteCatalog
                | Action::ManageStock
                | Action::Refund
                | Action::VoidTab
                | Action::Administer,
            ) => false,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Clerk => "clerk",
            Role::Public => "public",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Role::Admin),
            "clerk" => Ok(Role::Clerk),
            "public" => Ok(Role::Public),
            _ => Err(DomainError::invalid(
                "role",
                "must be `admin`, `clerk` or `public`",
            )),
        }
    }
}

/// A key's secret. Its `Debug` never shows the value, so it cannot leak through a log line
/// by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKeySecret(String);

impl ApiKeySecret {
    pub const PREFIX: &'static str = "caja_";
    pub const MIN_PROVIDED_LEN: usize = 32;
    const MAX_LEN: usize = 256;

    /// A fresh key: the prefix and 43 random alphanumerics (over 256 bits).
    pub fn generate() -> Self {
        let body: String = rand::thread_rng()
            .sample_iter(&Alphanumeric)
            .take(43)
            .map(char::from)
            .collect();
        Self(format!("{}{body}", Self::PREFIX))
    }

    /// A key chosen by an operator (e.g. `CAJA_ADMIN_KEY`): at least 32 visible ASCII
    /// characters, so it is as hard to guess as one we would generate.
    pub fn provided(s: &str) -> Result<Self, DomainError> {
        if s.len() < Self::MIN_PROVIDED_LEN || s.len() > Self::MAX_LEN {
            return Err(DomainError::invalid(
                "admin_key",
                "must be 32 to 256 characters long",
            ));
        }
        if !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(DomainError::invalid(
                "admin_key",
                "must hold only visible ASCII characters",
            ));
        }
        Ok(Self(s.to_owned()))
    }

    /// A key as presented in a request. Any string may be presented; only its hash is used.
    pub fn presented(s: &str) -> Self {
        Self(s.to_owned())
    }

    pub fn hash(&self) -> KeyHash {
        KeyHash(crate::idempotency::lower_hex(&Sha256::digest(
            self.0.as_bytes(),
        )))
    }

    /// The secret itself, for the one place that shows it to its owner.
    pub fn reveal(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKeySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKeySecret(<redacted>)")
    }
}

/// The stored form of a key: hex SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyHash(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clerks_read_but_do_not_write_the_catalog() {
        assert!(Role::Clerk.may(Action::ReadCatalog));
        assert!(!Role::Clerk.may(Action::WriteCatalog));
        assert!(Role::Admin.may(Action::WriteCatalog));
        assert!(Role::Clerk.may(Action::Sell) && Role::Clerk.may(Action::ReadOrders));
        assert!(!Role::Clerk.may(Action::Refund) && !Role::Clerk.may(Action::ManageStock));
        assert!(Role::Admin.may(Action::Refund) && Role::Admin.may(Action::ManageStock));
    }

    #[test]
    fn roles_parse_from_their_names() {
        assert_eq!("admin".parse::<Role>().unwrap(), Role::Admin);
        assert_eq!("clerk".parse::<Role>().unwrap(), Role::Clerk);
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn generated_keys_are_distinct_and_hash_stably() {
        let a = ApiKeySecret::generate();
        let b = ApiKeySecret::generate();
        assert_ne!(a, b);
        assert!(a.reveal().starts_with("caja_"));
        assert_eq!(a.reveal().len(), 48);
        assert_eq!(a.hash(), ApiKeySecret::presented(a.reveal()).hash());
        assert_ne!(a.hash(), b.hash());
    }

    #[test]
    fn provided_keys_must_be_long_and_visible() {
        assert!(ApiKeySecret::provided(&"k".repeat(31)).is_err());
        assert!(ApiKeySecret::provided(&"k".repeat(32)).is_ok());
        assert!(ApiKeySecret::provided(&format!("{} ", "k".repeat(32))).is_err());
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let k = ApiKeySecret::generate();
        assert!(!format!("{k:?}").contains(k.reveal()));
    }
}
