//! `POST /api/v1/admin/reseal`: finishing a key rotation. Values sealed under an earlier key
//! (one of `ENCRYPTION_PREVIOUS_KEYS`) are sealed again under `ENCRYPTION_KEY`, and
//! credential headers and URL query values stored in clear (before sealing existed, or
//! before their name was recognised) are sealed, so the earlier
//! keys can then be dropped. Operator key only; one page of jobs (every tenant's, deleted
//! ones too) per call, so a call stays short behind an API gateway.

use axum::extract::State;
use axum::{Extension, Json};
use serde::Serialize;
use uuid::Uuid;

use serde::Deserialize;

use super::auth::Caller;
use super::error::{ApiError, ErrorBody};
use super::jobs::cut_to_page;
use super::openapi::BadQuery;
use super::query::{Count, Query, Text};
use super::{cursor, AppState};
use crate::secrets::{header_context, is_sealed, is_secret_header, signing_context, Keyring};
use crate::store::{JobFilter, JobOrder, SealedValues};

/// Default and largest page of jobs per call.
type ResealLimit = Count<500, 5000>;

/// What one call did.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ResealReport)]
pub struct ResealReport {
    /// Jobs read.
    scanned: u64,
    /// Jobs whose values were sealed again.
    resealed_jobs: u64,
    /// Values sealed again (credential headers, URL query values, signing secrets).
    resealed_values: u64,
    /// Values that did not open under any key this process holds (their job and field are
    /// in the log); they are left as they are.
    unreadable: u64,
    /// Jobs changed by someone else between the read and the write; the next run takes
    /// them.
    changed_meanwhile: u64,
    /// Pass as `cursor` for the next page; `null` when every job was read.
    #[schema(required = true)]
    next_cursor: Option<String>,
}

/// A job's values under the current key, and how many were sealed again or did not open.
fn resealed(keyring: &Keyring, job_id: Uuid, before: &SealedValues) -> (SealedValues, u64, u64) {
    let (mut values, mut unreadable) = (0, 0);
    let mut again = |value: &String, context: String, field: &str| -> String {
        let result = if is_sealed(value) {
            keyring.reseal(value, &context)
        } else {
            keyring.seal(value, &context).map(Some)
        };
        match result {
            Ok(Some(sealed)) => {
                values += 1;
                sealed
            }
            Ok(None) => value.clone(),
            Err(error) => {
                tracing::warn!(%job_id, field, %error, "stored secret not resealed");
                unreadable += 1;
                value.clone()
            }
        }
    };
    let http_headers = before
        .http_headers
        .iter()
        .map(|(name, value)| {
            let value = if is_sealed(value) || is_secret_header(name) {
                again(value, header_context(job_id, name), name)
            } else {
                value.clone()
            };
            (name.clone(), value)
        })
        .collect();
    let mut secret = |value: &Option<String>, field: &str| {
        value
            .as_ref()
            .map(|v| again(v, signing_context(job_id), field))
    };
    let signing_secret = secret(&before.signing_secret, "signing secret");
    let previous_signing_secret =
        secret(&before.previous_signing_secret, "previous signing secret");
    let http_url = crate::secrets::query::reseal(job_id, &before.http_url, &mut again);
    let after = SealedValues {
        http_url,
        http_headers,
        signing_secret,
        previous_signing_secret,
    };
    (after, values, unreadable)
}

/// `POST /api/v1/admin/reseal`'s parameters.
#[derive(Deserialize)]
pub struct ResealQuery {
    #[serde(default)]
    limit: ResealLimit,
    cursor: Option<Text>,
}

/// `POST /api/v1/admin/reseal?limit=&cursor=`
#[utoipa::path(
    post,
    path = "/api/v1/admin/reseal",
    operation_id = "resealSecrets",
    tag = "operate",
    summary = "Reseal stored secrets under the current key",
    description = "Finishes a key rotation: credential headers, credential values in URL queries and signing secrets sealed under an earlier key (ENCRYPTION_PREVIOUS_KEYS) are sealed again under ENCRYPTION_KEY, and those stored in clear are sealed (run it once after upgrading to a version that recognises more credential names). Nothing else about a job changes. One page of jobs per call; call again with `nextCursor` until it is null, then the earlier keys can be dropped. Operator key only.",
    params(
        ("limit" = Option<u32>, Query, nullable = false, minimum = 1, maximum = 5000, description = "Jobs read in this call (default 500)."),
        ("cursor" = Option<String>, Query, nullable = false, description = "`nextCursor` of the previous call."),
    ),
    responses(
        (status = 200, description = "What this page took.", body = ResealReport),
        (status = 400, response = BadQuery),
        (status = 403, description = "The caller is not the operator (`forbidden`).", body = ErrorBody),
    )
)]
pub async fn reseal(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<ResealQuery>,
) -> Result<Json<ResealReport>, ApiError> {
    if !caller.operator {
        return Err(ApiError::forbidden(
            "only the operator key (API_ADMIN_KEY) reseals stored secrets",
        ));
    }
    let limit = query.limit.0;
    let after = query
        .cursor
        .map(|Text(raw)| cursor::decode_jobs(&raw))
        .transpose()?;
    if after
        .as_ref()
        .is_some_and(|a| a.order() != JobOrder::Newest)
    {
        return Err(ApiError::invalid_query(
            "cursor",
            "cursor belongs to the jobs list by name; pass nextCursor from the previous reseal",
        ));
    }
    let filter = JobFilter {
        include_deleted: true,
        ..JobFilter::default()
    };
    let mut jobs = state.store.job_list(filter, after, limit + 1).await?;
    let mut report = ResealReport {
        next_cursor: cut_to_page(&mut jobs, limit, JobOrder::Newest),
        ..ResealReport::default()
    };
    for job in &jobs {
        report.scanned += 1;
        let before = SealedValues::of(job);
        let (after, values, unreadable) = resealed(&state.keyring, job.id, &before);
        report.unreadable += unreadable;
        if after == before {
            continue;
        }
        if state.store.job_reseal(job.id, &before, &after).await? {
            report.resealed_jobs += 1;
            report.resealed_values += values;
        } else {
            report.changed_meanwhile += 1;
        }
    }
    tracing::info!(
        scanned = report.scanned,
        resealed = report.resealed_jobs,
        unreadable = report.unreadable,
        "stored secrets resealed"
    );
    Ok(Json(report))
}
