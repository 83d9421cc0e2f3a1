//! Switches the whole deployment shares, kept in the `flags` table: maintenance mode.
//!
//! A change is written with an internal `flag.changed` event (no topic carries it), so every
//! replica's feed tailer learns of it within moments, and a restart reads the table.

use std::sync::atomic::Ordering;

use caja_core::time::{self, Timestamp};

use crate::changes::NewChange;
use crate::rows::timestamp;
use crate::sql::Columns;
use crate::{Store, StoreError};

const MAINTENANCE: &str = "maintenance";

/// Maintenance mode, while it is on: every write is refused with 503.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Maintenance {
    pub message: String,
    pub since: Timestamp,
}

impl Store {
    /// Maintenance mode as the database holds it.
    pub async fn maintenance(&self) -> Result<Option<Maintenance>, StoreError> {
        let row = sqlx::query("SELECT value, updated_at FROM flags WHERE name = $1")
            .bind(MAINTENANCE)
            .fetch_optional(self.reader())
            .await?;
        row.map(|r| {
            Ok(Maintenance {
                message: r.text("value")?,
                since: timestamp(&r, "updated_at")?,
            })
        })
        .transpose()
    }

    /// Turns maintenance mode on (with the message clients are shown) or off, for every
    /// replica.
    pub async fn set_maintenance(
        &self,
        on: Option<&str>,
        actor: &crate::audit::Actor,
    ) -> Result<Option<Maintenance>, StoreError> {
        let now = self.now();
        let (mut tx, _turn) = self.begin_write().await?;
        let note = crate::audit::NewAudit {
            actor: actor.clone(),
            action: if on.is_some() {
                "maintenance.on"
            } else {
                "maintenance.off"
            }
            .to_owned(),
            target: None,
            before: None,
            after: on.map(|m| format!("{{\"message\":{}}}", crate::dialect::quoted(m))),
        };
        crate::audit::insert(&mut tx, self.dialect(), &[note], now).await?;
        match on {
            Some(message) => {
                sqlx::query(
                    "INSERT INTO flags (name, value, updated_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                )
                .bind(MAINTENANCE)
                .bind(message)
                .bind(time::format(&now))
                .execute(&mut *tx)
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM flags WHERE name = $1")
                    .bind(MAINTENANCE)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        self.commit_with(tx, vec![NewChange::flag_changed(MAINTENANCE)], now)
            .await?;
        self.flags_changed();
        Ok(on.map(|message| Maintenance {
            message: message.to_owned(),
            since: now,
        }))
    }

    /// Changes whenever a flag may have changed (here, or elsewhere as read from the feed).
    pub fn flags_generation(&self) -> u64 {
        self.flags_generation.load(Ordering::SeqCst)
    }

    /// Records that some flag changed.
    pub fn flags_changed(&self) {
        self.flags_generation.fetch_add(1, Ordering::SeqCst);
    }
}
