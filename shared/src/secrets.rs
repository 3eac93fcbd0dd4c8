//! Secrets: job headers that carry credentials and signing secrets are sealed at rest
//! (AES-256-GCM, key from `ENCRYPTION_KEY`), and requests are signed the Standard Webhooks
//! way (`webhook-id`, `webhook-timestamp`, `webhook-signature`).
//!
//! A sealed value reads `tw1:<key id>:<base64 of nonce, ciphertext and tag>`. The key id is
//! the first 8 hex digits of the key's SHA-256, so rows sealed under an older key open as
//! long as that key is listed in `ENCRYPTION_PREVIOUS_KEYS`; new values are always sealed
//! under `ENCRYPTION_KEY`.

pub mod query;

use std::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};

/// The prefix of every sealed value.
const SEALED_PREFIX: &str = "tw1:";

/// The prefix of a signing secret (Standard Webhooks).
pub const SECRET_PREFIX: &str = "whsec_";

/// What the API shows instead of a sealed header value; sent back in a PATCH, it means
/// "unchanged".
pub const MASK: &str = "********";

/// Why a sealed value or a key could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// A key is not 32 bytes of base64.
    #[error("{0} is not a key: expected 32 random bytes in base64 (openssl rand -base64 32)")]
    BadKey(&'static str),
    /// Sealed under a key this process does not hold.
    #[error(
        "sealed under key {0}, which is neither ENCRYPTION_KEY nor in ENCRYPTION_PREVIOUS_KEYS"
    )]
    UnknownKey(String),
    /// The value could not be sealed (larger than AES-GCM allows).
    #[error("a value is too large to seal")]
    TooLarge,
    /// The value is damaged or was sealed under another key with the same id.
    #[error("a sealed value does not open (damaged, or sealed under another key)")]
    Damaged,
}

struct Key {
    id: String,
    key: LessSafeKey,
}

impl Key {
    fn parse(name: &'static str, raw: &str) -> Result<Self, SecretError> {
        let bytes = BASE64
            .decode(raw.trim())
            .map_err(|_| SecretError::BadKey(name))?;
        if bytes.len() != 32 {
            return Err(SecretError::BadKey(name));
        }
        let digest = ring::digest::digest(&ring::digest::SHA256, &bytes);
        let id = digest.as_ref()[..4]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let key = UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| SecretError::BadKey(name))?;
        Ok(Self {
            id,
            key: LessSafeKey::new(key),
        })
    }
}

/// The keys that seal and open secrets.
pub struct Keyring {
    current: Key,
    previous: Vec<Key>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let previous: Vec<&str> = self.previous.iter().map(|k| k.id.as_str()).collect();
        write!(
            f,
            "Keyring {{ current: {}, previous: {previous:?} }}",
            self.current.id
        )
    }
}

/// Two rings are the same when they hold the same keys (compared by id).
impl PartialEq for Keyring {
    fn eq(&self, other: &Self) -> bool {
        let ids = |ring: &Keyring| -> Vec<String> {
            std::iter::once(&ring.current)
                .chain(&ring.previous)
                .map(|k| k.id.clone())
                .collect()
        };
        ids(self) == ids(other)
    }
}

impl Eq for Keyring {}

impl Keyring {
    /// From `ENCRYPTION_KEY` and `ENCRYPTION_PREVIOUS_KEYS` (comma-separated).
    pub fn new(current: &str, previous: &[&str]) -> Result<Self, SecretError> {
        Ok(Self {
            current: Key::parse("ENCRYPTION_KEY", current)?,
            previous: previous
                .iter()
                .map(|raw| Key::parse("ENCRYPTION_PREVIOUS_KEYS", raw))
                .collect::<Result<_, _>>()?,
        })
    }

    /// A new random key in the form `ENCRYPTION_KEY` takes.
    pub fn generate_key() -> String {
        let mut bytes = [0u8; 32];
        fill_random(&mut bytes);
        BASE64.encode(bytes)
    }

    /// The id of the key new values are sealed under.
    pub fn key_id(&self) -> &str {
        &self.current.id
    }

    /// Seals `plain` under the current key, with a fresh random 96-bit nonce, bound to
    /// `context` (which job, and what the value is: see [`header_context`] and
    /// [`signing_context`]): it opens only in the same context, so a sealed value copied
    /// into another job or another field does not open.
    pub fn seal(&self, plain: &str, context: &str) -> Result<String, SecretError> {
        let mut nonce = [0u8; NONCE_LEN];
        fill_random(&mut nonce);
        let mut data = plain.as_bytes().to_vec();
        self.current
            .key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad(&self.current.id, context).as_bytes()),
                &mut data,
            )
            .map_err(|_| SecretError::TooLarge)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        Ok(format!(
            "{SEALED_PREFIX}{}:{}",
            self.current.id,
            BASE64.encode(out)
        ))
    }

    /// Opens a value sealed by [`Keyring::seal`] under any key of the ring, in the same
    /// `context`.
    pub fn open(&self, sealed: &str, context: &str) -> Result<String, SecretError> {
        let rest = sealed
            .strip_prefix(SEALED_PREFIX)
            .ok_or(SecretError::Damaged)?;
        let (id, body) = rest.split_once(':').ok_or(SecretError::Damaged)?;
        let key = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id == id)
            .ok_or_else(|| SecretError::UnknownKey(id.to_string()))?;
        let mut data = BASE64.decode(body).map_err(|_| SecretError::Damaged)?;
        if data.len() < NONCE_LEN {
            return Err(SecretError::Damaged);
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&data[..NONCE_LEN]);
        let plain = key
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad(id, context).as_bytes()),
                &mut data[NONCE_LEN..],
            )
            .map_err(|_| SecretError::Damaged)?;
        String::from_utf8(plain.to_vec()).map_err(|_| SecretError::Damaged)
    }
}

impl Keyring {
    /// The same secret sealed under the current key, when `sealed` is under an earlier one
    /// (`None` when it is already under the current key): what finishing a key rotation
    /// does to each stored value.
    pub fn reseal(&self, sealed: &str, context: &str) -> Result<Option<String>, SecretError> {
        let current = format!("{SEALED_PREFIX}{}:", self.current.id);
        if sealed.starts_with(&current) {
            return Ok(None);
        }
        let plain = self.open(sealed, context)?;
        self.seal(&plain, context).map(Some)
    }
}

/// The authenticated data of a sealed value: the key id and the context.
fn aad(key_id: &str, context: &str) -> String {
    format!("{key_id}|{context}")
}

/// The context of a job's credential header (names compare without case).
pub fn header_context(job_id: uuid::Uuid, name: &str) -> String {
    format!("header|{job_id}|{}", name.to_ascii_lowercase())
}

/// The context of a job's signing secret.
pub fn signing_context(job_id: uuid::Uuid) -> String {
    format!("signing|{job_id}")
}

/// Whether a stored value is sealed.
pub fn is_sealed(value: &str) -> bool {
    value.starts_with(SEALED_PREFIX)
}

/// Words that mark a header name as a credential's ([`is_secret_header`]).
pub const SECRET_HEADER_WORDS: [&str; 17] = [
    "auth",
    "token",
    "secret",
    "key",
    "pass",
    "pwd",
    "cred",
    "sig",
    "session",
    "cookie",
    "jwt",
    "bearer",
    "otp",
    "hmac",
    "assertion",
    "nonce",
    "private",
];

/// Whether a header carries a credential by its name, and is sealed at rest and masked by
/// the API: any name that contains one of [`SECRET_HEADER_WORDS`] (`Authorization`,
/// `Proxy-Authorization`, `Cookie`, `Cookie2`, `X-Api-Key`, `X-Jwt-Assertion`, `X-Pwd`,
/// `X-Passphrase`, `X-Hmac`, ...). A job may mark any other header secret
/// (`secretHeaders`).
pub fn is_secret_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_HEADER_WORDS.iter().any(|word| name.contains(word))
}

/// Fills `buf` from the thread's CSPRNG (ChaCha, seeded from the OS).
fn fill_random(buf: &mut [u8]) {
    use rand::RngCore;
    rand::rng().fill_bytes(buf);
}

/// The prefix of every API key.
pub const API_KEY_PREFIX: &str = "tw_";

/// A new API key: `tw_` and 32 random bytes (256 bits) in URL-safe base64.
pub fn new_api_key() -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut bytes = [0u8; 32];
    fill_random(&mut bytes);
    format!("{API_KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// Whether `key` has the shape of a key [`new_api_key`] makes: the prefix and 32 bytes in
/// unpadded base64url. Anything else is refused without a lookup.
pub fn looks_like_api_key(key: &str) -> bool {
    key.strip_prefix(API_KEY_PREFIX).is_some_and(|rest| {
        rest.len() == 43
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// How an API key is stored and looked up: its SHA-256, in hex. A key has 256 random bits,
/// so a fast hash is as safe as a slow one.
pub fn api_key_hash(key: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, key.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The part of a key shown in lists: `tw_` and 8 characters.
pub fn api_key_prefix(key: &str) -> String {
    key.chars().take(API_KEY_PREFIX.len() + 8).collect()
}

/// A new signing secret: `whsec_` and 32 random bytes in base64.
pub fn new_signing_secret() -> String {
    let mut bytes = [0u8; 32];
    fill_random(&mut bytes);
    format!("{SECRET_PREFIX}{}", BASE64.encode(bytes))
}

/// The `webhook-signature` value for one secret: `v1,` and the base64 HMAC-SHA256 of
/// `id.timestamp.body` under the secret's bytes.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<String, SecretError> {
    let encoded = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
    let key_bytes = BASE64.decode(encoded).map_err(|_| SecretError::Damaged)?;
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key_bytes);
    let mut message = format!("{id}.{timestamp}.").into_bytes();
    message.extend_from_slice(body);
    let tag = ring::hmac::sign(&key, &message);
    Ok(format!("v1,{}", BASE64.encode(tag.as_ref())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_webhooks_example_signature_is_reproduced() {
        // The example in the Standard Webhooks specification.
        let signature = sign(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        )
        .unwrap();
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn sealed_values_open_under_the_current_or_a_previous_key_only() {
        let old = Keyring::generate_key();
        let new = Keyring::generate_key();
        let before = Keyring::new(&old, &[]).unwrap();
        let job = uuid::Uuid::now_v7();
        let context = header_context(job, "Authorization");
        let sealed = before.seal("Bearer canary", &context).unwrap();
        assert!(is_sealed(&sealed));
        assert!(!sealed.contains("canary"));
        assert_ne!(
            sealed,
            before.seal("Bearer canary", &context).unwrap(),
            "a fresh nonce each time"
        );
        assert_eq!(before.open(&sealed, &context).unwrap(), "Bearer canary");
        assert_eq!(
            before
                .open(&sealed, &header_context(job, "authorization"))
                .unwrap(),
            "Bearer canary",
            "header names compare without case"
        );
        for elsewhere in [
            header_context(uuid::Uuid::now_v7(), "Authorization"),
            header_context(job, "X-Api-Key"),
            signing_context(job),
        ] {
            assert_eq!(
                before.open(&sealed, &elsewhere),
                Err(SecretError::Damaged),
                "a sealed value does not open in another job or field"
            );
        }

        let rotated = Keyring::new(&new, &[old.as_str()]).unwrap();
        assert_eq!(rotated.open(&sealed, &context).unwrap(), "Bearer canary");
        assert!(rotated
            .seal("x", &context)
            .unwrap()
            .contains(rotated.key_id()));
        let forgot = Keyring::new(&new, &[]).unwrap();
        assert!(matches!(
            forgot.open(&sealed, &context),
            Err(SecretError::UnknownKey(_))
        ));
        // Resealing moves a value to the current key, after which the old key can go.
        let resealed = rotated.reseal(&sealed, &context).unwrap().unwrap();
        assert_eq!(forgot.open(&resealed, &context).unwrap(), "Bearer canary");
        assert_eq!(rotated.reseal(&resealed, &context).unwrap(), None);
        assert!(
            forgot.reseal(&sealed, &context).is_err(),
            "needs the old key"
        );
        let mut damaged = sealed.clone();
        damaged.pop();
        damaged.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert!(before.open(&damaged, &context).is_err());
    }

    #[test]
    fn bad_keys_say_how_to_make_a_good_one() {
        let error = Keyring::new("c2hvcnQ=", &[]).unwrap_err().to_string();
        assert!(error.starts_with("ENCRYPTION_KEY is not a key"), "{error}");
        assert!(error.contains("openssl rand -base64 32"), "{error}");
        assert!(
            format!("{:?}", Keyring::new(&Keyring::generate_key(), &[]).unwrap())
                .starts_with("Keyring { current: ")
        );
    }

    #[test]
    fn credential_headers_are_recognised() {
        for name in [
            "Authorization",
            "proxy-authorization",
            "Cookie",
            "X-Api-Key",
            "X-Auth-Token",
            "Client-Secret",
            "X-Session-Id",
            "X-Jwt",
            "X-JWT-Assertion",
            "X-Bearer",
            "X-Creds",
            "X-Pwd",
            "X-Pass",
            "X-Passphrase",
            "X-Otp",
            "X-Hmac",
            "Cookie2",
        ] {
            assert!(is_secret_header(name), "{name}");
        }
        for name in [
            "Content-Type",
            "Accept",
            "Accept-Encoding",
            "X-Request-Source",
            "User-Agent",
            "Cache-Control",
            "X-Correlation-Id",
            "X-GitHub-Event",
        ] {
            assert!(!is_secret_header(name), "{name}");
        }
    }

    #[test]
    fn new_signing_secrets_are_standard_webhooks_secrets() {
        let secret = new_signing_secret();
        assert!(secret.starts_with("whsec_"));
        assert_eq!(
            BASE64.decode(&secret[6..]).unwrap().len(),
            32,
            "256 bits of randomness"
        );
        assert!(sign(&secret, "id", 1, b"").unwrap().starts_with("v1,"));
    }
}
