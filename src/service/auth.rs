//! Passwords, tokens and the viewer a request acts as.
//!
//! Passwords are hashed with argon2id (m = 19 MiB, t = 2, p = 1) on the blocking pool: a hash
//! takes tens of milliseconds of CPU and must not stall the async workers. Requests hash
//! through [`Hashing`], which caps how many hashes run and wait at once (memory and CPU). Tokens are HS256
//! JWTs whose `exp`, `iss`, `aud` and `sub` are required, and which carry the member's token
//! version: bumping it (password change, freeze) kills every older token.

use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use chrono::{DateTime, Duration, Utc};
use entity::member;
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation};
use sea_orm::{ConnectionTrait, EntityTrait};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::config::Secret;
use crate::error::{Error, Result};

pub const ISSUER: &str = "pushhand";
pub const AUDIENCE: &str = "pushhand-api";

fn argon2() -> Result<Argon2<'static>> {
    let params = Params::new(19 * 1024, 2, 1, None)
        .map_err(|e| Error::internal(anyhow::anyhow!("argon2 params: {e}")))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(Error::internal)?
}

fn hash_now(password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()?
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::internal(anyhow::anyhow!("hashing: {e}")))
}

fn verify_now(password: &str, hash: &str) -> Result<bool> {
    let parsed = PasswordHash::new(hash)
        .map_err(|e| Error::internal(anyhow::anyhow!("stored hash: {e}")))?;
    Ok(argon2()?
        .verify_password(password.as_bytes(), &parsed)
        .is_ok())
}

/// The hash checked for an unknown account, so that the response time does not tell
/// whether an account exists. Computed once, by the first caller, while the others wait (a
/// burst of logins for unknown accounts must not compute it once each).
async fn dummy_hash() -> Result<String> {
    static DUMMY: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    DUMMY
        .get_or_try_init(|| hash_password(Uuid::now_v7().to_string()))
        .await
        .cloned()
}

/// The argon2id PHC string of `password`, computed off the async workers, with no cap: for
/// the CLI, the seed and benchmarks. Requests go through [`Hashing`].
pub async fn hash_password(password: String) -> Result<String> {
    blocking(move || hash_now(&password)).await
}

/// Whether `password` matches `hash` (with no hash, a dummy one is checked: see
/// [`Hashing::verify`]), off the async workers, with no cap.
pub async fn verify_password(password: String, hash: Option<String>) -> Result<bool> {
    let hash = match hash {
        Some(h) => h,
        None => dummy_hash().await?,
    };
    blocking(move || verify_now(&password, &hash)).await
}

/// The cap on password hashing for requests. Each argon2id hash holds 19 MiB and tens of
/// milliseconds of a core, so a burst of logins must not run them all at once (100 at once
/// took a process from 38 MB to 2 GB): at most `concurrency` run (one per core by default),
/// `queue` more wait for a slot, and any beyond are refused at once with `UNAVAILABLE`
/// rather than queued behind work the client may no longer wait for. A hash that started
/// keeps its slot until it ends, even if its request is dropped.
pub struct Hashing {
    running: Arc<Semaphore>,
    admitted: Arc<Semaphore>,
}

impl Hashing {
    /// `concurrency` hashes at once (at least 1), `queue` more waiting.
    pub fn new(concurrency: usize, queue: usize) -> Hashing {
        let concurrency = concurrency.max(1);
        Hashing {
            running: Arc::new(Semaphore::new(concurrency)),
            admitted: Arc::new(Semaphore::new(concurrency + queue)),
        }
    }

    /// As configured (`PUSHHAND_HASH_CONCURRENCY`, 0 meaning one per core;
    /// `PUSHHAND_HASH_QUEUE`).
    pub fn from_config(config: &crate::config::Config) -> Hashing {
        let concurrency = match config.hash_concurrency {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n as usize,
        };
        Hashing::new(concurrency, config.hash_queue as usize)
    }

    /// Runs `f` on the blocking pool once a slot is free; `UNAVAILABLE` at once when the
    /// slots and the queue are full.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let admitted = self.admitted.clone().try_acquire_owned().map_err(|_| {
            tracing::debug!("password hashing at capacity; refusing");
            Error::Unavailable
        })?;
        let running = self
            .running
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::Unavailable)?;
        blocking(move || {
            let _slots = (admitted, running);
            f()
        })
        .await
    }

    /// The argon2id PHC string of `password`.
    pub async fn hash(&self, password: String) -> Result<String> {
        self.run(move || hash_now(&password)).await
    }

    /// Whether `password` matches `hash`. With no hash (unknown account) a dummy hash is
    /// checked instead, so that the response time does not tell whether an account exists.
    pub async fn verify(&self, password: String, hash: Option<String>) -> Result<bool> {
        let hash = match hash {
            Some(h) => h,
            None => dummy_hash().await?,
        };
        self.run(move || verify_now(&password, &hash)).await
    }
}

/// What a member token says.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// The member's id.
    pub sub: String,
    pub exp: i64,
    pub iat: i64,
    pub iss: String,
    pub aud: String,
    /// The member's token version when the token was issued.
    pub ver: i32,
}

/// A signed token for `member`, valid for `ttl` from `now`.
pub fn issue_token(
    secret: &Secret,
    member: &member::Model,
    now: DateTime<Utc>,
    ttl: Duration,
) -> Result<String> {
    let claims = Claims {
        sub: member.id.to_string(),
        exp: (now + ttl).timestamp(),
        iat: now.timestamp(),
        iss: ISSUER.into(),
        aud: AUDIENCE.into(),
        ver: member.token_version,
    };
    jsonwebtoken::encode(
        &Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.expose().as_bytes()),
    )
    .map_err(Error::internal)
}

/// Checks signature (HS256 only: `alg: none` and every other algorithm are refused),
/// expiry, issuer, audience and subject.
pub fn decode_token(secret: &Secret, token: &str) -> Result<Claims> {
    let mut validation = Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&[AUDIENCE]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.leeway = LEEWAY as u64;
    jsonwebtoken::decode::<Claims>(
        token,
        &DecodingKey::from_secret(secret.expose().as_bytes()),
        &validation,
    )
    .map(|d| d.claims)
    .map_err(|_| Error::Unauthenticated)
}

/// Who is making a request.
#[derive(Clone, Debug)]
pub enum Viewer {
    /// No credentials.
    Anonymous,
    /// A valid token of an existing member with the current token version. Shared: a
    /// WebSocket connection hands it to each of its operations.
    Member(std::sync::Arc<member::Model>),
    /// Credentials were sent but are invalid, expired or revoked: anything that needs a
    /// member answers `UNAUTHENTICATED`, and `me` too (rather than null, which would read as
    /// "signed out" to a client that believes it is signed in).
    Rejected,
}

impl Viewer {
    pub fn member(&self) -> Result<&member::Model> {
        match self {
            Viewer::Member(m) => Ok(m),
            _ => Err(Error::Unauthenticated),
        }
    }

    /// The member, who must hold staff role `role` (admins hold every staff role).
    pub fn staff(&self, role: member::StaffRole) -> Result<&member::Model> {
        let m = self.member()?;
        match m.staff_role {
            Some(r) if r == role || r == member::StaffRole::Admin => Ok(m),
            _ => Err(Error::Forbidden(
                format!("requires the {role:?} role").to_uppercase().into(),
            )),
        }
    }

    pub fn admin(&self) -> Result<&member::Model> {
        self.staff(member::StaffRole::Admin)
    }

    pub fn is_admin(&self) -> bool {
        self.admin().is_ok()
    }

    /// Whether the viewer is `owner` or an admin: who may see a member's own orders,
    /// earnings and withdrawals.
    pub fn is_or_admin(&self, owner: uuid::Uuid) -> bool {
        self.is_admin() || self.member().is_ok_and(|m| m.id == owner)
    }
}

/// What an `Authorization` header claims, before the database confirms it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Credentials {
    /// No header.
    None,
    /// A header whose token is malformed, forged, expired or names no member id.
    Invalid,
    /// A well-signed, unexpired token of member `member` at token version `version`, valid
    /// until `expires` (Unix seconds). Whether the member exists and still has that version
    /// is for [`viewer_of`] to check.
    Token {
        member: Uuid,
        version: i32,
        expires: i64,
    },
}

/// The token of an `Authorization` header value.
fn bare_token(value: &str) -> &str {
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .unwrap_or(value)
        .trim()
}

/// Seconds a token is still accepted after its `exp` (clock skew).
const LEEWAY: i64 = 5;

/// Checks `Authorization` header values (`Bearer <token>`, or the bare token) without
/// touching the database. Tokens that passed are remembered by their exact text, because
/// checking one (base64, JSON, HMAC-SHA256) is ~50,000 instructions — more than the rest of
/// a cached answer. A remembered token's expiry is checked again on every
/// use, so it stops working at its `exp` as before; forged, malformed and expired tokens are
/// never remembered. Revocation is unaffected: [`viewer_of`] and the response cache compare
/// the token's version with the member's on every request.
#[derive(Clone)]
pub struct Tokens {
    secret: Secret,
    passed: moka::sync::Cache<String, Credentials>,
}

impl Tokens {
    /// Remembers at most `capacity` tokens (least recently used go first); a token and its
    /// entry take ~300 bytes.
    pub fn new(secret: Secret, capacity: u64) -> Tokens {
        Tokens {
            secret,
            passed: moka::sync::Cache::new(capacity),
        }
    }

    pub fn credentials(&self, authorization: Option<&str>) -> Credentials {
        let Some(value) = authorization else {
            return Credentials::None;
        };
        let token = bare_token(value);
        if let Some(known @ Credentials::Token { expires, .. }) = self.passed.get(token) {
            if expires >= Utc::now().timestamp() - LEEWAY {
                return known;
            }
            self.passed.invalidate(token);
        }
        let checked = token_credentials(&self.secret, token);
        if let Credentials::Token { .. } = checked {
            self.passed.insert(token.to_owned(), checked);
        }
        checked
    }
}

/// What `token` says, checked (see [`decode_token`]).
fn token_credentials(secret: &Secret, token: &str) -> Credentials {
    let Ok(claims) = decode_token(secret, token) else {
        return Credentials::Invalid;
    };
    match Uuid::try_parse(&claims.sub) {
        Ok(member) => Credentials::Token {
            member,
            version: claims.ver,
            expires: claims.exp,
        },
        Err(_) => Credentials::Invalid,
    }
}

/// The viewer `credentials` make: one primary-key read for a token, none otherwise.
pub async fn viewer_of(db: &impl ConnectionTrait, credentials: Credentials) -> Result<Viewer> {
    match credentials {
        Credentials::None => Ok(Viewer::Anonymous),
        Credentials::Invalid => Ok(Viewer::Rejected),
        Credentials::Token {
            member, version, ..
        } => match member::Entity::find_by_id(member).one(db).await? {
            Some(m) if m.token_version == version => Ok(Viewer::Member(std::sync::Arc::new(m))),
            _ => Ok(Viewer::Rejected),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(secret: &str, member: Uuid, exp: i64) -> String {
        let now = Utc::now().timestamp();
        let claims = Claims {
            sub: member.to_string(),
            exp,
            iat: now,
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            ver: 3,
        };
        jsonwebtoken::encode(
            &Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .expect("token")
    }

    #[test]
    fn tokens_that_passed_are_remembered_and_still_expire() {
        let secret = "s".repeat(32);
        let tokens = Tokens::new(Secret::new(secret.clone()), 100);
        let member = Uuid::now_v7();
        let good = token(&secret, member, Utc::now().timestamp() + 3600);
        let first = tokens.credentials(Some(&format!("Bearer {good}")));
        assert!(
            matches!(first, Credentials::Token { member: m, version: 3, .. } if m == member),
            "{first:?}"
        );
        assert_eq!(tokens.passed.get(good.as_str()), Some(first));
        // Remembered: the same answer whatever the header's spelling.
        assert_eq!(tokens.credentials(Some(&good)), first);
        assert_eq!(tokens.credentials(Some(&format!("bearer {good} "))), first);
        // A remembered text is answered from memory, not verified again.
        let kept = Credentials::Token {
            member,
            version: 9,
            expires: Utc::now().timestamp() + 60,
        };
        tokens.passed.insert("kept".into(), kept);
        assert_eq!(tokens.credentials(Some("Bearer kept")), kept);

        // Forged and expired tokens are refused and never remembered.
        let forged = token(&"x".repeat(32), member, Utc::now().timestamp() + 3600);
        let expired = token(&secret, member, Utc::now().timestamp() - 3600);
        for bad in [forged.as_str(), expired.as_str(), "not a token"] {
            assert_eq!(tokens.credentials(Some(bad)), Credentials::Invalid);
            assert_eq!(tokens.passed.get(bad), None);
        }
        assert_eq!(tokens.credentials(None), Credentials::None);

        // A remembered token whose `exp` has passed is checked again (and refused): the
        // memory never outlives a token.
        tokens.passed.insert(
            expired.clone(),
            Credentials::Token {
                member,
                version: 3,
                expires: Utc::now().timestamp() - 3600,
            },
        );
        assert_eq!(tokens.credentials(Some(&expired)), Credentials::Invalid);
        assert_eq!(tokens.passed.get(expired.as_str()), None);
    }

    /// Beyond the running slots and the queue, a hash is refused at once with
    /// `UNAVAILABLE`; a freed slot admits the next one.
    #[tokio::test]
    async fn hashing_beyond_the_slots_and_queue_is_refused_at_once() {
        let gate = Hashing::new(1, 1);
        // Hold the one running slot and the one queue place, as two slow hashes would.
        let running = gate.running.clone().try_acquire_owned().expect("slot");
        let admitted = gate
            .admitted
            .clone()
            .try_acquire_many_owned(2)
            .expect("admitted");
        let refused = gate.hash("a long enough password".into()).await;
        assert_eq!(refused.err().map(|e| e.code()), Some("UNAVAILABLE"));
        drop((running, admitted));
        let hash = gate
            .hash("a long enough password".into())
            .await
            .expect("hash");
        assert!(
            gate.verify("a long enough password".into(), Some(hash))
                .await
                .expect("verify")
        );
        // Every slot came back.
        assert_eq!(gate.admitted.available_permits(), 2);
        assert_eq!(gate.running.available_permits(), 1);
    }
}
