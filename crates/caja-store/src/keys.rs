//! API keys: create, find by hash, list, revoke, and the one-time bootstrap of the first
//! admin key.

use caja_core::auth::{ApiKeySecret, KeyHash, Role};
use caja_core::ids::{KeyId, LocationId};
use caja_core::rate::RateLimit;
use caja_core::time::{self, Timestamp};
use sqlx::any::AnyRow;

use crate::changes::NewChange;
use crate::rows::{opt_timestamp, timestamp};
use crate::sql::Columns;
use crate::{Store, StoreError};

/// A key to store; the secret is hashed on the way in and never kept.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub name: String,
    pub role: Role,
    pub rate_limit: Option<RateLimit>,
    /// The location it sells at (a till belongs to a branch); `None`: wherever asked.
    pub location: Option<LocationId>,
}

/// A stored key, as far as anyone may see it: never the secret, never the hash.
#[derive(Debug, Clone)]
pub struct ApiKeyRecord {
    pub id: KeyId,
    pub name: String,
    pub role: Role,
    pub rate_limit: Option<RateLimit>,
    pub location: Option<LocationId>,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

const COLUMNS: &str =
    "id, name, role, rate_limit, location_id, created_at, last_used_at, revoked_at";

fn record(row: &AnyRow) -> Result<ApiKeyRecord, StoreError> {
    Ok(ApiKeyRecord {
        id: KeyId::parse("id", &row.text("id")?)?,
        name: row.text("name")?,
        role: row.text("role")?.parse()?,
        rate_limit: row
            .opt_text("rate_limit")?
            .map(|s| s.parse::<RateLimit>())
            .transpose()?,
        location: row
            .opt_text("location_id")?
            .map(|l| LocationId::parse("location_id", &l))
            .transpose()?,
        created_at: timestamp(row, "created_at")?,
        last_used_at: opt_timestamp(row, "last_used_at")?,
        revoked_at: opt_timestamp(row, "revoked_at")?,
    })
}

impl Store {
    /// Stores a new key with the given secret.
    pub async fn create_key(
        &self,
        key: &NewApiKey,
        secret: &ApiKeySecret,
    ) -> Result<ApiKeyRecord, StoreError> {
        let (mut tx, _turn) = self.begin_write().await?;
        let record = insert_key(&mut tx, key, &secret.hash(), self.now()).await?;
        audit_key(&mut tx, self, "key.created", &record).await?;
        tx.commit().await?;
        self.keys_changed();
        Ok(record)
    }

    /// Creates the first admin key if this database has never had one, exactly once even
    /// when several processes start together. Returns the record when this call created it.
    pub async fn bootstrap_admin_key(
        &self,
        secret: &ApiKeySecret,
    ) -> Result<Option<ApiKeyRecord>, StoreError> {
        let (mut tx, _turn) = self.begin_write().await?;
        let claimed = sqlx::query(
            "INSERT INTO bootstrap (id, done_at) VALUES (1, $1) ON CONFLICT (id) DO NOTHING",
        )
        .bind(time::format(&self.now()))
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !claimed {
            return Ok(None);
        }
        let key = NewApiKey {
            name: "bootstrap admin".into(),
            role: Role::Admin,
            rate_limit: None,
            location: None,
        };
        let record = insert_key(&mut tx, &key, &secret.hash(), self.now()).await?;
        tx.commit().await?;
        self.keys_changed();
        Ok(Some(record))
    }

    /// Every key with its hash (revoked ones too, so they are refused as revoked): the
    /// whole table a server keeps in memory, so an unknown key is refused without a query.
    pub async fn keys_by_hash(&self) -> Result<Vec<(KeyHash, ApiKeyRecord)>, StoreError> {
        let rows = sqlx::query(&format!("SELECT key_hash, {COLUMNS} FROM api_keys"))
            .fetch_all(self.reader())
            .await?;
        rows.iter()
            .map(|r| Ok((KeyHash(r.text("key_hash")?), record(r)?)))
            .collect()
    }

    pub async fn list_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM api_keys ORDER BY id"))
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(record).collect()
    }

    /// Revokes a key; revoking a revoked key changes nothing. `NotFound` if no such key.
    pub async fn revoke_key(&self, id: &KeyId) -> Result<ApiKeyRecord, StoreError> {
        let (mut tx, _turn) = self.begin_write().await?;
        sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(time::format(&self.now()))
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM api_keys WHERE id = $1"))
            .bind(id.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound)?;
        let record = record(&row)?;
        audit_key(&mut tx, self, "key.revoked", &record).await?;
        // Through the feed, so every replica's key cache forgets this key within moments.
        let change = NewChange::key_revoked(id);
        let at = self.now();
        self.commit_with(tx, vec![change], at).await?;
        self.keys_changed();
        Ok(record)
    }

    /// Records that a key was used. Callers throttle this: it is a write.
    pub async fn touch_key(&self, id: &KeyId, at: Timestamp) -> Result<(), StoreError> {
        let (mut tx, _turn) = self.begin_write().await?;
        sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
            .bind(time::format(&at))
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

async fn insert_key(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    key: &NewApiKey,
    hash: &KeyHash,
    now: Timestamp,
) -> Result<ApiKeyRecord, StoreError> {
    let record = ApiKeyRecord {
        id: KeyId::generate(),
        name: key.name.clone(),
        role: key.role,
        rate_limit: key.rate_limit,
        location: key.location.clone(),
        created_at: now,
        last_used_at: None,
        revoked_at: None,
    };
    sqlx::query(
        "INSERT INTO api_keys (id, name, role, key_hash, rate_limit, created_at, location_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(record.id.as_str())
    .bind(&record.name)
    .bind(record.role.as_str())
    .bind(&hash.0)
    .bind(record.rate_limit.map(|r| r.to_string()))
    .bind(time::format(&record.created_at))
    .bind(record.location.as_ref().map(LocationId::as_str))
    .execute(&mut **tx)
    .await?;
    Ok(record)
}

/// The audit row of a key's creation or revocation (the key's name, role and times; never
/// its secret or hash). Only once the audit log exists: a key made while migrating an
/// older schema has nowhere to be recorded yet.
async fn audit_key(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    store: &Store,
    action: &str,
    key: &ApiKeyRecord,
) -> Result<(), StoreError> {
    if !store.dialect().table_exists(tx, "audit").await? {
        return Ok(());
    }
    let after = format!(
        "{{\"id\":\"{}\",\"name\":{},\"role\":\"{}\",\"revoked\":{}}}",
        key.id,
        crate::dialect::quoted(&key.name),
        key.role.as_str(),
        key.revoked_at.is_some()
    );
    let note = crate::audit::NewAudit {
        actor: crate::audit::Actor::cli(),
        action: action.to_owned(),
        target: Some(key.id.to_string()),
        before: None,
        after: Some(after),
    };
    crate::audit::insert(tx, store.dialect(), &[note], store.now()).await
}
