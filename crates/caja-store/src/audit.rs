//! The audit log: every admin action with who did it, the request, and the resource before
//! and after, written in the same transaction as the action. Never pruned by caja.

use crate::sql::Sql;
use caja_core::ids::AuditId;
use caja_core::page::{Page, PageLimit};
use caja_core::time::{self, Timestamp};

use crate::dialect::Dialect;
use crate::rows::timestamp;
use crate::sql::Columns;
use crate::{Store, StoreError};

/// Who did something: an API key (with the request), or a command-line user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// A key id, or `cli:user@host`.
    pub who: String,
    pub request_id: Option<String>,
}

impl Actor {
    /// Whoever runs this process from the command line.
    pub fn cli() -> Self {
        Self {
            who: format!("cli:{}", crate::migrate::applied_by()),
            request_id: None,
        }
    }
}

/// One entry to write.
#[derive(Debug, Clone)]
pub(crate) struct NewAudit {
    pub actor: Actor,
    pub action: String,
    pub target: Option<String>,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// One entry as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: String,
    pub at: Timestamp,
    pub actor: String,
    pub request_id: Option<String>,
    pub action: String,
    pub target: Option<String>,
    /// The resource's JSON before and after the action.
    pub before: Option<String>,
    pub after: Option<String>,
}

/// Filters for reading the log.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub action: Option<String>,
    pub target: Option<String>,
    pub actor: Option<String>,
}

pub(crate) async fn insert(
    tx: &mut (impl Sql + ?Sized),
    dialect: Dialect,
    entries: &[NewAudit],
    at: Timestamp,
) -> Result<(), StoreError> {
    let at = time::format(&at);
    let statement = |rows: &str| {
        format!(
            "INSERT INTO audit (id, at, actor, request_id, action, target, before, after) {rows}"
        )
    };
    crate::chunks::write(
        tx,
        dialect,
        entries,
        8,
        crate::chunks::Kind::Insert,
        statement,
        |q, e| {
            q.bind(AuditId::generate().to_string())
                .bind(at.clone())
                .bind(e.actor.who.as_str())
                .bind(e.actor.request_id.as_deref())
                .bind(e.action.as_str())
                .bind(e.target.as_deref())
                .bind(e.before.as_deref())
                .bind(e.after.as_deref())
        },
    )
    .await?;
    Ok(())
}

impl Store {
    /// The log, oldest first, after the cursor, filtered.
    pub async fn list_audit(
        &self,
        filter: &AuditFilter,
        after: Option<&AuditId>,
        limit: PageLimit,
    ) -> Result<Page<AuditEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, at, actor, request_id, action, target, before, after FROM audit \
             WHERE id > $1 AND ($2 = '' OR action = $2) AND ($3 = '' OR target = $3) \
             AND ($4 = '' OR actor = $4) ORDER BY id LIMIT $5",
        )
        .bind(after.map(AuditId::as_str).unwrap_or(""))
        .bind(filter.action.as_deref().unwrap_or(""))
        .bind(filter.target.as_deref().unwrap_or(""))
        .bind(filter.actor.as_deref().unwrap_or(""))
        .bind(i64::from(limit.get()) + 1)
        .fetch_all(self.reader())
        .await?;
        let items = rows
            .iter()
            .map(|r| {
                Ok(AuditEntry {
                    id: r.text("id")?,
                    at: timestamp(r, "at")?,
                    actor: r.text("actor")?,
                    request_id: r.opt_text("request_id")?,
                    action: r.text("action")?,
                    target: r.opt_text("target")?,
                    before: r.opt_text("before")?,
                    after: r.opt_text("after")?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Page::from_overfetch(items, limit, |e| e.id.clone()))
    }
}
