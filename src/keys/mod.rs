//! The portal's signing keys: an Ed25519 key pair made at first start, its private half kept
//! sealed in the database with the key from configuration, its public half published with
//! every earlier one as a JWKS at `/.well-known/jwks.json`. `attest keys rotate` makes a new
//! pair and retires the old, whose public key stays published, so whatever it signed can
//! still be checked.

mod db;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signer, Verifier};
use serde_json::{Value, json};
use sqlx::PgConnection;
use time::OffsetDateTime;

use crate::crypto::{SecretKey, random_bytes, sha256};
use crate::error::AppResult;
use crate::identity::Access;
use crate::state::AppState;
use crate::web::routes::Routes;

/// What a sealed private key is for (bound into the seal).
const SEALED_FOR: &str = "attest:ed25519-signing-key";
/// The advisory lock that lets one process at a time make or rotate keys.
const KEYS_LOCK: i64 = 0x0A77_E57B;

pub fn routes() -> Routes<AppState> {
    Routes::new().get("/.well-known/jwks.json", Access::Public, jwks)
}

/// A public key as published.
#[derive(Debug, Clone)]
pub struct PublicKey {
    pub kid: String,
    pub public_key: Vec<u8>,
    pub created_at: OffsetDateTime,
    pub retired_at: Option<OffsetDateTime>,
}

impl PublicKey {
    /// The key as a JWK (RFC 8037: an `OKP` key on `Ed25519`).
    pub fn jwk(&self) -> Value {
        json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": URL_SAFE_NO_PAD.encode(&self.public_key),
            "kid": self.kid,
            "use": "sig",
            "alg": "EdDSA",
        })
    }

    /// Whether `signature` is this key's over `message`.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        let Ok(public) = <[u8; 32]>::try_from(self.public_key.as_slice()) else {
            return false;
        };
        let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(&public) else {
            return false;
        };
        let Ok(signature) = ed25519_dalek::Signature::from_slice(signature) else {
            return false;
        };
        key.verify(message, &signature).is_ok()
    }
}

/// The key that signs now.
pub struct ActiveKey {
    pub kid: String,
    key: ed25519_dalek::SigningKey,
}

impl ActiveKey {
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.key.sign(message).to_bytes().to_vec()
    }
}

/// The RFC 7638 thumbprint of an Ed25519 public key: its `kid`.
pub fn thumbprint(public_key: &[u8; 32]) -> String {
    let canonical = format!(
        r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
        URL_SAFE_NO_PAD.encode(public_key)
    );
    URL_SAFE_NO_PAD.encode(sha256(canonical.as_bytes()))
}

/// Makes a key pair when there is no active one (the first start). Returns the new key's
/// `kid`, or `None` when one was active already. Safe with several processes starting at once.
pub async fn ensure_active(
    conn: &mut PgConnection,
    secret: &SecretKey,
    now: OffsetDateTime,
) -> sqlx::Result<Option<String>> {
    crate::db::advisory_xact_lock(conn, KEYS_LOCK).await?;
    if db::active(conn).await?.is_some() {
        return Ok(None);
    }
    Ok(Some(make(conn, secret, now).await?))
}

/// Retires the active key (it stays published) and makes a new one; returns the retired
/// `kid`, if there was one, and the new one.
pub async fn rotate(
    conn: &mut PgConnection,
    secret: &SecretKey,
    now: OffsetDateTime,
) -> sqlx::Result<(Option<String>, String)> {
    crate::db::advisory_xact_lock(conn, KEYS_LOCK).await?;
    let retired = db::retire_active(conn, now).await?;
    Ok((retired, make(conn, secret, now).await?))
}

async fn make(
    conn: &mut PgConnection,
    secret: &SecretKey,
    now: OffsetDateTime,
) -> sqlx::Result<String> {
    let key = ed25519_dalek::SigningKey::from_bytes(&random_bytes::<32>());
    let public = key.verifying_key().to_bytes();
    let kid = thumbprint(&public);
    let sealed = secret.seal(SEALED_FOR, &key.to_bytes());
    db::insert(conn, &kid, &public, &sealed, now).await?;
    Ok(kid)
}

/// The active key, opened; `None` when there is none yet, or it cannot be opened with the
/// configured key (then nothing can be signed: logged loudly).
pub async fn active(
    conn: &mut PgConnection,
    secret: &SecretKey,
) -> sqlx::Result<Option<ActiveKey>> {
    let Some((kid, sealed)) = db::active(conn).await? else {
        return Ok(None);
    };
    let opened = secret
        .open(SEALED_FOR, &sealed)
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok());
    let Some(bytes) = opened else {
        tracing::error!(
            kid,
            "the active signing key cannot be opened with the configured ATTEST_SECRET_KEY"
        );
        return Ok(None);
    };
    Ok(Some(ActiveKey {
        kid,
        key: ed25519_dalek::SigningKey::from_bytes(&bytes),
    }))
}

/// Every public key, newest first.
pub async fn published(conn: &mut PgConnection) -> sqlx::Result<Vec<PublicKey>> {
    db::published(conn).await
}

/// The published key with this `kid`.
pub async fn find(conn: &mut PgConnection, kid: &str) -> sqlx::Result<Option<PublicKey>> {
    Ok(db::published(conn)
        .await?
        .into_iter()
        .find(|k| k.kid == kid))
}

/// `GET /.well-known/jwks.json`: every public key, so that what any of them signed can be
/// checked without asking the portal.
pub async fn jwks(State(state): State<AppState>) -> AppResult<Response> {
    let mut conn = state.pool.acquire().await?;
    let keys = published(&mut conn).await?;
    let body = json!({ "keys": keys.iter().map(PublicKey::jwk).collect::<Vec<_>>() });
    let mut response = axum::Json(body).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kid_is_the_rfc_7638_thumbprint() {
        // RFC 8037, appendix A.3: the thumbprint of its example Ed25519 key.
        let x = URL_SAFE_NO_PAD
            .decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
            .expect("base64url");
        let public: [u8; 32] = x.try_into().expect("32 bytes");
        assert_eq!(
            thumbprint(&public),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    #[test]
    fn a_signature_verifies_with_its_public_key_only() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        let active = ActiveKey {
            kid: "k".into(),
            key: key.clone(),
        };
        let public = PublicKey {
            kid: "k".into(),
            public_key: key.verifying_key().to_bytes().to_vec(),
            created_at: OffsetDateTime::UNIX_EPOCH,
            retired_at: None,
        };
        let signature = active.sign(b"checkpoint");
        assert!(public.verifies(b"checkpoint", &signature));
        assert!(!public.verifies(b"checkpoinT", &signature));
        let other = ed25519_dalek::SigningKey::from_bytes(&[8; 32]);
        let stranger = PublicKey {
            public_key: other.verifying_key().to_bytes().to_vec(),
            ..public
        };
        assert!(!stranger.verifies(b"checkpoint", &signature));
    }
}
