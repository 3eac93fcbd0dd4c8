//! Credentials in a target URL's query: sealed at rest, masked in every read, sent exactly
//! as given.
//!
//! Chat webhooks and presigned URLs carry their credentials in the query
//! (`?token=...`, `&sig=...`, `X-Amz-Signature=...`), so such URLs are accepted, and the
//! values of parameters whose names look like credentials ([`is_secret_name`]) are stored
//! as sealed values in place of the original bytes. Reads show the mask instead; the worker
//! opens each one and splices the original bytes back, so the target receives the query
//! byte for byte as it was given (no decoding and re-encoding).
//!
//! Only the query is looked at: a token in the path (as some chat webhooks carry) is shown
//! in reads; it never reaches logs or attempt errors, which name the job, not its URL.

use super::{is_sealed, Keyring, SecretError, MASK};

/// Parameter names that are credentials wherever they appear (compared without case).
pub const SECRET_NAMES: [&str; 11] = [
    "key", "sig", "code", "pass", "pwd", "jwt", "otp", "hmac", "sid", "session", "auth",
];

/// Words that make any parameter name a credential's (`access_token`, `client_secret`,
/// `X-Amz-Signature`, `X-Amz-Credential`, `api_key`, `apiKey`, `password`...).
pub const SECRET_WORDS: [&str; 8] = [
    "token",
    "secret",
    "signature",
    "password",
    "passwd",
    "credential",
    "apikey",
    "api_key",
];

/// Whether a query parameter named `name` carries a credential: one of [`SECRET_NAMES`],
/// a name containing one of [`SECRET_WORDS`], or one ending in `_key`, `-key`, `_sig` or
/// `-sig`.
pub fn is_secret_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_NAMES.contains(&name.as_str())
        || SECRET_WORDS.iter().any(|word| name.contains(word))
        || ["_key", "-key", "_sig", "-sig"]
            .iter()
            .any(|end| name.ends_with(end))
}

/// The context a query value is sealed in: its job and its parameter's name.
pub fn context(job_id: uuid::Uuid, name: &str) -> String {
    format!("query|{job_id}|{}", name.to_ascii_lowercase())
}

/// Why a URL's query could not be sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A value is the mask, and there is no stored value of that name to keep.
    NothingToKeep(String),
    /// A value is the mask, and the URL moves to another origin (credentials stay with the
    /// origin they were given for).
    OtherOrigin(String),
    /// A value looks sealed: only tickwork seals.
    LooksSealed(String),
    /// Sealing failed.
    Seal(SecretError),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::NothingToKeep(name) => write!(
                f,
                "httpUrl parameter {name:?} is the mask {MASK:?}, which keeps a stored secret \
                 value, but the job's URL has no such parameter; send the value itself"
            ),
            Refusal::OtherOrigin(name) => write!(
                f,
                "httpUrl moves the job to another origin, and the stored value of parameter \
                 {name:?} was given for the old one; send it again"
            ),
            Refusal::LooksSealed(name) => write!(
                f,
                "httpUrl parameter {name:?} starts with \"tw1:\", which marks values tickwork \
                 sealed itself; send the value in clear (credentials are sealed on arrival)"
            ),
            Refusal::Seal(error) => write!(f, "httpUrl: {error}"),
        }
    }
}

/// A URL cut around its query: before the `?`, the query's `&`-separated pieces, and what
/// follows it (the `#` fragment, if any).
struct Parts<'a> {
    head: &'a str,
    pieces: Vec<&'a str>,
    tail: &'a str,
}

impl<'a> Parts<'a> {
    fn of(url: &'a str) -> Option<Self> {
        let (head, rest) = url.split_once('?')?;
        let (query, tail) = match rest.find('#') {
            Some(at) => rest.split_at(at),
            None => (rest, ""),
        };
        Some(Self {
            head,
            pieces: query.split('&').collect(),
            tail,
        })
    }

    /// The URL again, with each piece's value replaced by `value(name, raw value)` where it
    /// gives one.
    fn rebuild<E>(
        &self,
        mut value: impl FnMut(&str, &str) -> Result<Option<String>, E>,
    ) -> Result<String, E> {
        let mut out = String::with_capacity(self.head.len() + 64);
        out.push_str(self.head);
        out.push('?');
        for (n, piece) in self.pieces.iter().enumerate() {
            if n > 0 {
                out.push('&');
            }
            match piece.split_once('=') {
                Some((raw_name, raw_value)) => {
                    out.push_str(raw_name);
                    out.push('=');
                    match value(&decoded(raw_name), raw_value)? {
                        Some(replaced) => out.push_str(&replaced),
                        None => out.push_str(raw_value),
                    }
                }
                None => out.push_str(piece),
            }
        }
        out.push_str(self.tail);
        Ok(out)
    }

    /// The raw value of the first parameter named `name` (decoded, without case).
    fn value_of(&self, name: &str) -> Option<&'a str> {
        self.pieces.iter().find_map(|piece| {
            let (raw_name, raw_value) = piece.split_once('=')?;
            decoded(raw_name)
                .eq_ignore_ascii_case(name)
                .then_some(raw_value)
        })
    }
}

/// A parameter name with its percent-escapes and `+` decoded.
fn decoded(raw: &str) -> String {
    url::form_urlencoded::parse(raw.as_bytes())
        .next()
        .map(|(name, _)| name.into_owned())
        .unwrap_or_default()
}

/// The URL to store for job `job_id`: each credential value sealed. A value equal to the
/// mask keeps the value of the same parameter in `stored` (the job's URL before a change;
/// sealed now if it was stored in clear), provided the origin stays the same.
pub fn seal(
    keyring: &Keyring,
    job_id: uuid::Uuid,
    url: &str,
    stored: Option<&str>,
) -> Result<String, Refusal> {
    let Some(parts) = Parts::of(url) else {
        return Ok(url.to_string());
    };
    let stored_parts = stored.and_then(Parts::of);
    let same_origin = stored.is_some_and(|stored| origin(stored) == origin(url));
    parts.rebuild(|name, value| {
        if value == MASK {
            let kept = stored_parts
                .as_ref()
                .and_then(|stored| stored.value_of(name))
                .filter(|kept| is_sealed(kept) || is_secret_name(name))
                .ok_or_else(|| Refusal::NothingToKeep(name.to_string()))?;
            if !same_origin {
                return Err(Refusal::OtherOrigin(name.to_string()));
            }
            if is_sealed(kept) {
                return Ok(Some(kept.to_string()));
            }
            return keyring
                .seal(kept, &context(job_id, name))
                .map(Some)
                .map_err(Refusal::Seal);
        }
        if is_sealed(value) {
            return Err(Refusal::LooksSealed(name.to_string()));
        }
        if is_secret_name(name) && !value.is_empty() {
            return keyring
                .seal(value, &context(job_id, name))
                .map(Some)
                .map_err(Refusal::Seal);
        }
        Ok(None)
    })
}

/// The stored URL as reads show it: sealed values, and credential values stored in clear
/// (before their name was recognised), as the mask.
pub fn masked(stored: &str) -> String {
    let Some(parts) = Parts::of(stored) else {
        return stored.to_string();
    };
    parts
        .rebuild::<std::convert::Infallible>(|name, value| {
            Ok(
                (is_sealed(value) || (is_secret_name(name) && !value.is_empty()))
                    .then(|| MASK.to_string()),
            )
        })
        .unwrap_or_else(|never| match never {})
}

/// The URL to call for job `job_id`, with every sealed value opened and its original bytes
/// put back; and the values opened (to scrub from what the target answers).
pub fn open(
    keyring: Option<&Keyring>,
    job_id: uuid::Uuid,
    stored: &str,
) -> Result<(String, Vec<String>), String> {
    let mut opened = Vec::new();
    if !stored.contains(super::SEALED_PREFIX) {
        return Ok((stored.to_string(), opened));
    }
    let Some(parts) = Parts::of(stored) else {
        return Ok((stored.to_string(), opened));
    };
    let url = parts.rebuild(|name, value| {
        if !is_sealed(value) {
            return Ok(None);
        }
        let keyring = keyring.ok_or("a sealed value needs ENCRYPTION_KEY, which is not set")?;
        let plain = keyring
            .open(value, &context(job_id, name))
            .map_err(|e| format!("httpUrl parameter {name:?}: {e}"))?;
        opened.push(plain.clone());
        Ok::<_, String>(Some(plain))
    })?;
    Ok((url, opened))
}

/// The stored URL with each sealed value passed through `again(value, context, name)` and
/// each credential value stored in clear too: what finishing a key rotation does.
pub fn reseal(
    job_id: uuid::Uuid,
    stored: &str,
    mut again: impl FnMut(&String, String, &str) -> String,
) -> String {
    let Some(parts) = Parts::of(stored) else {
        return stored.to_string();
    };
    parts
        .rebuild::<std::convert::Infallible>(|name, value| {
            if is_sealed(value) || (is_secret_name(name) && !value.is_empty()) {
                let field = format!("httpUrl parameter {name}");
                return Ok(Some(again(
                    &value.to_string(),
                    context(job_id, name),
                    &field,
                )));
            }
            Ok(None)
        })
        .unwrap_or_else(|never| match never {})
}

/// The scheme, host and port of a URL.
fn origin(url: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()
        .map(|u| u.origin().ascii_serialization())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyring() -> Keyring {
        Keyring::new(&Keyring::generate_key(), &[]).unwrap()
    }

    #[test]
    fn credential_values_are_sealed_masked_and_opened_to_the_same_bytes() {
        let keyring = keyring();
        let job = uuid::Uuid::now_v7();
        let given = "https://chat.example/hook/T0/B0?threadKey=a%20b&key=AIza%2Fx+y&token=t0k%3D%3D&X-Amz-Signature=abc123&page=2#frag";
        let stored = seal(&keyring, job, given, None).unwrap();
        assert!(!stored.contains("AIza") && !stored.contains("t0k") && !stored.contains("abc123"));
        assert!(stored.contains("threadKey=a%20b") && stored.contains("&page=2#frag"));
        assert_eq!(
            masked(&stored),
            "https://chat.example/hook/T0/B0?threadKey=a%20b&key=********&token=********&X-Amz-Signature=********&page=2#frag"
        );
        let (sent, opened) = open(Some(&keyring), job, &stored).unwrap();
        assert_eq!(sent, given, "byte for byte");
        assert_eq!(opened, ["AIza%2Fx+y", "t0k%3D%3D", "abc123"]);
        // Another job's context does not open it.
        assert!(open(Some(&keyring), uuid::Uuid::now_v7(), &stored).is_err());
        // Nothing to seal: unchanged.
        let plain = "https://example.com/a?b=c";
        assert_eq!(seal(&keyring, job, plain, None).unwrap(), plain);
        assert_eq!(open(None, job, plain).unwrap().0, plain);
    }

    #[test]
    fn the_mask_keeps_the_stored_value_only_at_the_same_origin() {
        let keyring = keyring();
        let job = uuid::Uuid::now_v7();
        let stored = seal(&keyring, job, "https://a.example/x?token=one", None).unwrap();
        let kept = seal(
            &keyring,
            job,
            "https://a.example/y?token=********&n=1",
            Some(&stored),
        )
        .unwrap();
        assert_eq!(
            open(Some(&keyring), job, &kept).unwrap().0,
            "https://a.example/y?token=one&n=1"
        );
        assert_eq!(
            seal(
                &keyring,
                job,
                "https://b.example/y?token=********",
                Some(&stored)
            ),
            Err(Refusal::OtherOrigin("token".into()))
        );
        assert_eq!(
            seal(
                &keyring,
                job,
                "https://a.example/y?sig=********",
                Some(&stored)
            ),
            Err(Refusal::NothingToKeep("sig".into()))
        );
        assert!(matches!(
            seal(&keyring, job, "https://a.example/y?token=tw1:abc:def", None),
            Err(Refusal::LooksSealed(_))
        ));
        // Stored in clear before its name was a credential's: the mask seals it.
        let clear = "https://a.example/x?api_key=plain";
        let sealed = seal(
            &keyring,
            job,
            "https://a.example/x?api_key=********",
            Some(clear),
        )
        .unwrap();
        assert!(is_sealed(sealed.split("api_key=").nth(1).unwrap()));
    }

    #[test]
    fn credential_names_are_recognised() {
        for name in [
            "token",
            "access_token",
            "Key",
            "api_key",
            "apiKey",
            "sig",
            "signature",
            "X-Amz-Signature",
            "X-Amz-Credential",
            "X-Amz-Security-Token",
            "password",
            "client_secret",
            "webhook_key",
            "code",
        ] {
            assert!(is_secret_name(name), "{name}");
        }
        for name in ["page", "threadKey", "monkey", "q", "id", "signal"] {
            assert!(!is_secret_name(name), "{name}");
        }
    }
}
