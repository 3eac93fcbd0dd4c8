//! The credential policy of a job's request: which values are sealed before they are
//! stored (credential headers, those marked secret, credential query values), what the mask
//! keeps, and that stored credentials follow a job only to the origin they were given for.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use super::error::ApiError;
use crate::model::{InvalidField, Job};
use crate::secrets::{header_context, is_sealed, is_secret_header, Keyring, MASK};

/// Seals a value for storage in `context` (see `secrets::header_context`).
pub(super) fn seal(keyring: &Keyring, plain: &str, context: &str) -> Result<String, ApiError> {
    keyring
        .seal(plain, context)
        .map_err(|e| ApiError::internal(&e))
}

/// Seals the values of job `job_id`'s credential headers: those secret by name and those
/// in `marked` (lowercase names, `secretHeaders`). A value equal to the mask keeps the
/// stored value of the same header from `stored` (sealing it, when it was stored in clear
/// before its name became a credential's); there must be one. Values that look sealed are
/// refused: only tickwork seals.
pub(super) fn seal_headers(
    keyring: &Keyring,
    job_id: Uuid,
    headers: BTreeMap<String, String>,
    marked: &BTreeSet<String>,
    stored: Option<&BTreeMap<String, String>>,
) -> Result<BTreeMap<String, String>, InvalidField> {
    let secret = |name: &str| is_secret_header(name) || marked.contains(&name.to_ascii_lowercase());
    let seal_value = |name: &str, value: &str| {
        keyring
            .seal(value, &header_context(job_id, name))
            .map_err(|e| InvalidField::new("httpHeaders", format!("httpHeaders.{name}: {e}")))
    };
    headers
        .into_iter()
        .map(|(name, value)| {
            if value == MASK {
                let kept = stored.and_then(|stored| {
                    stored
                        .iter()
                        .find(|(n, v)| {
                            n.eq_ignore_ascii_case(&name) && (is_sealed(v) || secret(&name))
                        })
                        .map(|(_, v)| v.clone())
                });
                return match kept {
                    Some(kept) if is_sealed(&kept) => Ok((name, kept)),
                    Some(clear) => {
                        let sealed = seal_value(&name, &clear)?;
                        Ok((name, sealed))
                    }
                    None => Err(InvalidField::new(
                        "httpHeaders",
                        format!(
                            "httpHeaders.{name} is the mask {MASK:?}, which keeps a stored \
                             secret value, but the job has no such secret header; send the \
                             value itself"
                        ),
                    )),
                };
            }
            if is_sealed(&value) {
                return Err(InvalidField::new(
                    "httpHeaders",
                    format!(
                        "httpHeaders.{name} starts with \"tw1:\", which marks values tickwork \
                         sealed itself; send the value in clear (credentials are sealed on \
                         arrival)"
                    ),
                ));
            }
            if secret(&name) {
                let sealed = seal_value(&name, &value)?;
                return Ok((name, sealed));
            }
            Ok((name, value))
        })
        .collect()
}

/// Seals the credential values in the query of job `job_id`'s URL (see
/// [`crate::secrets::query`]); `stored` is the URL before a change.
pub(super) fn seal_query(
    keyring: &Keyring,
    job_id: Uuid,
    url: &str,
    stored: Option<&str>,
) -> Result<String, InvalidField> {
    crate::secrets::query::seal(keyring, job_id, url, stored)
        .map_err(|refusal| InvalidField::new("httpUrl", refusal.to_string()))
}

/// The scheme, host and port of a URL: where credentials go.
fn origin(url: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()
        .map(|u| u.origin().ascii_serialization())
}

/// Stored credentials follow a job only to the origin they were given for: a change of
/// `httpUrl` to another origin must send them again (in clear, not as the mask).
pub(super) fn credentials_stay_with_their_origin(
    before: &Job,
    after: &Job,
) -> Result<(), InvalidField> {
    if origin(&before.http_url) == origin(&after.http_url) {
        return Ok(());
    }
    let kept: Vec<&String> = after
        .http_headers
        .iter()
        .filter(|(name, value)| {
            is_sealed(value)
                && before
                    .http_headers
                    .iter()
                    .any(|(n, v)| n.eq_ignore_ascii_case(name) && v == *value)
        })
        .map(|(name, _)| name)
        .collect();
    if kept.is_empty() {
        return Ok(());
    }
    Err(InvalidField::new(
        "httpUrl",
        format!(
            "httpUrl moves the job to another origin, and the stored credentials ({}) were \
             given for the old one; send httpHeaders with their values again, or without them",
            kept.iter()
                .map(|n| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    ))
}
