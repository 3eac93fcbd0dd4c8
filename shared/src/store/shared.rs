//! Statements both backends run as they are, written once and expanded for each: the
//! SQL is the same in PostgreSQL and SQLite, only the pool's type differs. Each backend's
//! [`Store`](super::Store) method calls the function of its own module here.

/// The shared statements over pools of `$db`.
macro_rules! statements_for {
    ($db:ty) => {
        use chrono::{DateTime, Utc};
        use sqlx::Pool;
        use uuid::Uuid;

        use crate::model::{Execution, Job};
        use crate::store::rows::ExecutionRow;
        use crate::store::rules::tenant_counts as counted;
        use crate::store::sql::{
            bind_job, bind_reseal, EXECUTION_COLUMNS, OVERDUE_RETRIES, RESEAL_JOB, STALE_QUEUED,
            TENANT_COUNTS, WRITE_JOB,
        };
        use crate::store::{
            ExecutionListing, IdempotentInsert, SealedValues, StoreError, TenantCounts,
        };

        pub(in crate::store) async fn ping(pool: &Pool<$db>) -> Result<(), StoreError> {
            sqlx::query("SELECT 1").execute(pool).await?;
            Ok(())
        }

        /// Stores `job` under idempotency `key` in `tx` (a write transaction), unless the
        /// key was used before. On PostgreSQL a second create with the key waits at the
        /// insert for the first to commit, then sees it; on SQLite the write transaction
        /// holds the database.
        pub(in crate::store) async fn job_insert_once(
            mut tx: sqlx::Transaction<'_, $db>,
            job: &Job,
            key: &str,
            fingerprint: &str,
        ) -> Result<IdempotentInsert, StoreError> {
            let claimed: Option<Uuid> = sqlx::query_scalar(
                "INSERT INTO job_idempotency_keys (key, job_id, fingerprint, created_at, tenant) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant, key) DO NOTHING RETURNING job_id",
            )
            .bind(key)
            .bind(job.id)
            .bind(fingerprint)
            .bind(job.created_at)
            .bind(&job.tenant)
            .fetch_optional(&mut *tx)
            .await?;
            if claimed.is_none() {
                let (job_id, fingerprint): (Uuid, String) = sqlx::query_as(
                    "SELECT job_id, fingerprint FROM job_idempotency_keys \
                     WHERE key = $1 AND tenant = $2",
                )
                .bind(key)
                .bind(&job.tenant)
                .fetch_one(&mut *tx)
                .await?;
                tx.rollback().await?;
                return Ok(IdempotentInsert::Existing {
                    job_id,
                    fingerprint,
                });
            }
            bind_job!(sqlx::query(WRITE_JOB), job)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(IdempotentInsert::Created)
        }

        pub(in crate::store) async fn job_reseal(
            pool: &Pool<$db>,
            id: Uuid,
            before: &SealedValues,
            after: &SealedValues,
        ) -> Result<bool, StoreError> {
            let changed = bind_reseal!(sqlx::query(RESEAL_JOB), id, before, after)
                .execute(pool)
                .await?
                .rows_affected();
            Ok(changed > 0)
        }

        pub(in crate::store) async fn execution_list(
            pool: &Pool<$db>,
            listing: ExecutionListing,
        ) -> Result<Vec<Execution>, StoreError> {
            let sql = format!(
                "SELECT {EXECUTION_COLUMNS} FROM executions \
                 WHERE job_id = $1 AND ($2 IS NULL OR scheduled_at < $2) \
                 ORDER BY scheduled_at DESC LIMIT $3"
            );
            let rows: Vec<ExecutionRow> = sqlx::query_as(&sql)
                .bind(listing.job_id)
                .bind(listing.before)
                .bind(i64::from(listing.limit))
                .fetch_all(pool)
                .await?;
            rows.into_iter().map(Execution::try_from).collect()
        }

        pub(in crate::store) async fn execution_list_stale_queued(
            pool: &Pool<$db>,
            queued_from: DateTime<Utc>,
            queued_before: DateTime<Utc>,
            due_by: DateTime<Utc>,
            limit: u32,
        ) -> Result<Vec<(Uuid, DateTime<Utc>)>, StoreError> {
            let ids = sqlx::query_as(STALE_QUEUED)
                .bind(queued_before)
                .bind(i64::from(limit))
                .bind(due_by)
                .bind(queued_from)
                .fetch_all(pool)
                .await?;
            Ok(ids)
        }

        pub(in crate::store) async fn execution_list_overdue_retries(
            pool: &Pool<$db>,
            due_before: DateTime<Utc>,
            limit: u32,
        ) -> Result<Vec<Uuid>, StoreError> {
            let ids = sqlx::query_scalar(OVERDUE_RETRIES)
                .bind(due_before)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?;
            Ok(ids)
        }

        pub(in crate::store) async fn tenant_counts(
            pool: &Pool<$db>,
            tenant: &str,
        ) -> Result<TenantCounts, StoreError> {
            let rows: Vec<(String, i64)> = sqlx::query_as(TENANT_COUNTS)
                .bind(tenant)
                .fetch_all(pool)
                .await?;
            Ok(counted(rows))
        }
    };
}

/// On PostgreSQL.
pub(super) mod on_postgres {
    statements_for!(sqlx::Postgres);
}

/// On SQLite.
#[cfg(feature = "embedded")]
pub(super) mod on_sqlite {
    statements_for!(sqlx::Sqlite);
}
