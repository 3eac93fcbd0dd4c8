//! API keys: their own trait, one implementation written once and expanded for each
//! backend (the statements are the same in PostgreSQL and SQLite).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::FromRow;
use uuid::Uuid;

use super::rows::corrupt;
use super::StoreError;
use crate::model::{ApiKey, KeyRole};

/// Where API keys are kept: their hashes, never the keys.
#[async_trait]
pub trait ApiKeys: Send + Sync {
    /// Stores a key (its hash, never the key).
    async fn api_key_insert(&self, key: &ApiKey, hash: &str) -> Result<(), StoreError>;

    /// The key with this hash, revoked or not.
    async fn api_key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>, StoreError>;

    /// Keys, newest first: one tenant's, or every tenant's.
    async fn api_key_list(&self, tenant: Option<&str>) -> Result<Vec<ApiKey>, StoreError>;

    /// Revokes a key (of `tenant`, when given) at `now`; false when there is no such key.
    /// Revoking twice keeps the first time.
    async fn api_key_revoke(
        &self,
        id: Uuid,
        tenant: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
}

/// Columns of an API key as listed.
const COLUMNS: &str = "id, tenant, name, role, prefix, created_at, revoked_at";

/// Stores a key: `$1` id, `$2` tenant, `$3` name, `$4` prefix, `$5` hash, `$6` time,
/// `$7` role.
const INSERT: &str = "INSERT INTO api_keys \
     (id, tenant, name, prefix, hash, created_at, role) VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// Revokes key `$1` of tenant `$2` (any tenant when `$2` is NULL) at `$3`, keeping an
/// earlier revocation time.
const REVOKE: &str = "UPDATE api_keys \
     SET revoked_at = COALESCE(revoked_at, $3) WHERE id = $1 AND tenant = COALESCE($2, tenant)";

/// An API key row.
#[derive(FromRow)]
struct ApiKeyRow {
    id: Uuid,
    tenant: String,
    name: String,
    role: String,
    prefix: String,
    created_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
}

impl TryFrom<ApiKeyRow> for ApiKey {
    type Error = StoreError;

    fn try_from(row: ApiKeyRow) -> Result<Self, StoreError> {
        Ok(ApiKey {
            id: row.id,
            tenant: row.tenant,
            name: row.name,
            role: KeyRole::parse(&row.role).map_err(|e| corrupt("API key", e.message))?,
            prefix: row.prefix,
            created_at: row.created_at,
            revoked_at: row.revoked_at,
        })
    }
}

/// Implements [`ApiKeys`] for `$store`, reading through its `$reader` pool and writing
/// through its `$writer` pool.
macro_rules! api_keys_for {
    ($store:ty, $reader:ident, $writer:ident) => {
        #[async_trait]
        impl ApiKeys for $store {
            async fn api_key_insert(&self, key: &ApiKey, hash: &str) -> Result<(), StoreError> {
                sqlx::query(INSERT)
                    .bind(key.id)
                    .bind(&key.tenant)
                    .bind(&key.name)
                    .bind(&key.prefix)
                    .bind(hash)
                    .bind(key.created_at)
                    .bind(key.role.as_str())
                    .execute(&self.$writer)
                    .await?;
                Ok(())
            }

            async fn api_key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>, StoreError> {
                let sql = format!("SELECT {COLUMNS} FROM api_keys WHERE hash = $1");
                let row: Option<ApiKeyRow> = sqlx::query_as(&sql)
                    .bind(hash)
                    .fetch_optional(&self.$reader)
                    .await?;
                row.map(ApiKey::try_from).transpose()
            }

            async fn api_key_list(&self, tenant: Option<&str>) -> Result<Vec<ApiKey>, StoreError> {
                let sql = format!(
                    "SELECT {COLUMNS} FROM api_keys WHERE tenant = COALESCE($1, tenant) \
                     ORDER BY id DESC"
                );
                let rows: Vec<ApiKeyRow> = sqlx::query_as(&sql)
                    .bind(tenant)
                    .fetch_all(&self.$reader)
                    .await?;
                rows.into_iter().map(ApiKey::try_from).collect()
            }

            async fn api_key_revoke(
                &self,
                id: Uuid,
                tenant: Option<&str>,
                now: DateTime<Utc>,
            ) -> Result<bool, StoreError> {
                let changed = sqlx::query(REVOKE)
                    .bind(id)
                    .bind(tenant)
                    .bind(now)
                    .execute(&self.$writer)
                    .await?
                    .rows_affected();
                Ok(changed > 0)
            }
        }
    };
}

api_keys_for!(super::PgStore, pool, pool);
#[cfg(feature = "embedded")]
api_keys_for!(super::SqliteStore, reader, writer);
