//! The second factor of sign-in: a TOTP authenticator (RFC 6238: six digits, 30-second steps,
//! one step of drift either way) and ten single-use recovery codes.
//!
//! The authenticator's secret is sealed with the portal's secret key before it is stored. A
//! code is accepted once: the step it was accepted for is stored, and no code of that step or
//! an earlier one is accepted again.

use sqlx::PgConnection;
use time::OffsetDateTime;
use totp_rs::{Builder, Secret, Totp};

use super::db;
use crate::crypto::{SecretKey, random_bytes, sha256};
use crate::identity::UserId;

/// What the sealed secret is for (bound into the seal).
const SEALED_FOR: &str = "attest:totp-secret";
/// How many recovery codes a person gets.
pub const RECOVERY_CODES: usize = 10;
/// The name authenticator apps show beside the account.
const ISSUER: &str = "Attest";

/// An authenticator: the secret shared with the person's app.
pub struct Authenticator {
    totp: Totp,
}

impl Authenticator {
    /// A new random secret for `account` (the person's email, shown in their app).
    pub fn generate(account: &str) -> Self {
        Self::from_secret(random_bytes::<20>().to_vec(), account)
    }

    fn from_secret(secret: Vec<u8>, account: &str) -> Self {
        // An email never holds ':', the one character the otpauth label cannot: replaced to
        // be sure the URL is always well-formed.
        let totp = Builder::new()
            .with_secret(Secret::from(secret))
            .with_issuer(Some(ISSUER))
            .with_account_name(account.replace(':', "_"))
            .build()
            .expect("20 random bytes, six digits and 30-second steps are valid");
        Self { totp }
    }

    /// The secret sealed for storage.
    pub fn seal(&self, key: &SecretKey) -> Vec<u8> {
        key.seal(SEALED_FOR, self.totp.secret().as_ref())
    }

    /// The authenticator of a stored sealed secret; `None` when the key cannot open it.
    pub fn open(key: &SecretKey, sealed: &[u8], account: &str) -> Option<Self> {
        key.open(SEALED_FOR, sealed)
            .map(|secret| Self::from_secret(secret, account))
    }

    /// The secret as people type it into an app: base32, in groups of four.
    pub fn secret_text(&self) -> String {
        let base32 = self.totp.secret().to_base32();
        let groups: Vec<&str> = base32
            .as_bytes()
            .chunks(4)
            .map(|c| std::str::from_utf8(c).unwrap_or_default())
            .collect();
        groups.join(" ")
    }

    /// The `otpauth://` URL an app reads from the QR code.
    pub fn url(&self) -> String {
        self.totp.to_url().unwrap_or_default()
    }

    /// The QR code of [`Self::url`] as SVG markup to put in a page (no script, no request).
    pub fn qr_svg(&self) -> String {
        let Ok(code) = qrcode::QrCode::new(self.url()) else {
            return String::new();
        };
        let svg = code
            .render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(200, 200)
            .quiet_zone(true)
            .build();
        // Inline in HTML, the XML declaration is not wanted.
        svg.split_once("?>")
            .map_or(svg.clone(), |(_, rest)| rest.to_owned())
    }

    /// The code the app shows at `now`.
    pub fn code_at(&self, now: OffsetDateTime) -> String {
        self.totp.generate(unix_seconds(now)).to_string()
    }

    /// The time step `code` is right for at `now`, allowing one step of drift either way.
    pub fn step_of(&self, code: &str, now: OffsetDateTime) -> Option<i64> {
        self.totp
            .check(code, unix_seconds(now))
            .and_then(|step| i64::try_from(step).ok())
    }
}

fn unix_seconds(now: OffsetDateTime) -> u64 {
    u64::try_from(now.unix_timestamp()).unwrap_or(0)
}

/// Ten new recovery codes, as shown to the person once: `xxxxx-xxxxx` of letters and digits
/// that cannot be mistaken for each other (50 random bits each).
pub fn new_recovery_codes() -> Vec<String> {
    const ALPHABET: &[u8; 32] = b"abcdefghjkmnpqrstuvwxyz023456789";
    (0..RECOVERY_CODES)
        .map(|_| {
            let bytes: [u8; 10] = random_bytes();
            let chars: String = bytes
                .iter()
                .map(|b| char::from(ALPHABET[usize::from(b & 31)]))
                .collect();
            format!("{}-{}", &chars[..5], &chars[5..])
        })
        .collect()
}

/// The stored hash of a recovery code, however it was typed (case, spaces and dashes aside).
pub fn recovery_code_hash(code: &str) -> [u8; 32] {
    let normal: String = code
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    sha256(normal.as_bytes())
}

/// What a right answer to the second-factor question was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// A code from the authenticator (the first one confirms a new authenticator).
    Code,
    /// A recovery code, now used up.
    RecoveryCode,
}

impl Answer {
    /// The answer as the audit trail names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Code => "code",
            Self::RecoveryCode => "recovery_code",
        }
    }
}

/// What a check of a second factor accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accept {
    /// At sign-in: a code from a confirmed authenticator, or an unused recovery code.
    SignIn,
    /// Setting one up: a code from the authenticator being set up, which it confirms.
    Setup,
    /// A code from the confirmed authenticator, never a recovery code (renewing them).
    AppCode,
}

/// Checks what `user` typed as their second factor at `now`, as `accept` allows: a six-digit
/// code (never one of a step already used), or a recovery code. Records the use. `None` when
/// it is not right.
pub async fn check(
    conn: &mut PgConnection,
    key: &SecretKey,
    user: UserId,
    email: &str,
    typed: &str,
    now: OffsetDateTime,
    accept: Accept,
) -> sqlx::Result<Option<Answer>> {
    let Some(stored) = db::second_factor(conn, user).await? else {
        return Ok(None);
    };
    if stored.confirmed == (accept == Accept::Setup) {
        return Ok(None);
    }
    let typed: String = typed.chars().filter(|c| !c.is_whitespace()).collect();
    if typed.len() == 6 && typed.bytes().all(|b| b.is_ascii_digit()) {
        let Some(authenticator) = Authenticator::open(key, &stored.secret_sealed, email) else {
            tracing::error!(user = %user.0, "a second-factor secret cannot be opened with the configured key");
            return Ok(None);
        };
        let fresh = authenticator
            .step_of(&typed, now)
            .filter(|step| stored.last_step.is_none_or(|last| *step > last));
        return match fresh {
            Some(step) => {
                db::accept_second_factor_step(conn, user, step, now).await?;
                Ok(Some(Answer::Code))
            }
            None => Ok(None),
        };
    }
    if accept == Accept::SignIn
        && db::use_recovery_code(conn, user, &recovery_code_hash(&typed), now).await?
    {
        return Ok(Some(Answer::RecoveryCode));
    }
    Ok(None)
}

/// Stores new recovery codes for `user` and returns them, to be shown once.
pub async fn renew_recovery_codes(
    conn: &mut PgConnection,
    user: UserId,
) -> sqlx::Result<Vec<String>> {
    let codes = new_recovery_codes();
    let hashes: Vec<Vec<u8>> = codes
        .iter()
        .map(|c| recovery_code_hash(c).to_vec())
        .collect();
    db::replace_recovery_codes(conn, user, &hashes).await?;
    Ok(codes)
}

/// The authenticator being set up for `user`: the one begun earlier, or a new one. `None`
/// when they already have a confirmed one (or the stored one cannot be opened).
pub async fn begin_setup(
    conn: &mut PgConnection,
    key: &SecretKey,
    user: UserId,
    email: &str,
    now: OffsetDateTime,
) -> sqlx::Result<Option<Authenticator>> {
    let fresh = Authenticator::generate(email);
    let stored = db::begin_second_factor(conn, user, &fresh.seal(key), now).await?;
    Ok(stored.and_then(|sealed| Authenticator::open(key, &sealed, email)))
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn codes_follow_rfc_6238_with_one_step_of_drift() {
        // RFC 6238, appendix B: the SHA-1 secret "12345678901234567890" at 59 s gives
        // 94287082 in eight digits; six digits are its last six.
        let auth = Authenticator::from_secret(b"12345678901234567890".to_vec(), "a@b.org");
        let t = OffsetDateTime::from_unix_timestamp(59).expect("time");
        assert_eq!(auth.code_at(t), "287082");
        assert_eq!(auth.step_of("287082", t), Some(1));
        assert_eq!(
            auth.step_of("287082", t + time::Duration::seconds(30)),
            Some(1),
            "a step late is still accepted"
        );
        assert_eq!(
            auth.step_of("287082", t + time::Duration::seconds(90)),
            None
        );
        assert_eq!(auth.step_of("000000", t), None);
    }

    #[test]
    fn a_sealed_secret_gives_the_same_codes_once_opened() {
        let key = SecretKey::for_tests();
        let auth = Authenticator::generate("casey@example.org");
        let opened =
            Authenticator::open(&key, &auth.seal(&key), "casey@example.org").expect("opens");
        let now = datetime!(2026-11-30 12:00 UTC);
        assert_eq!(auth.code_at(now), opened.code_at(now));
        assert!(
            auth.url()
                .starts_with("otpauth://totp/Attest:casey%40example.org?")
        );
        assert!(auth.qr_svg().starts_with("<svg"));
        assert_eq!(auth.secret_text().replace(' ', "").len(), 32);
    }

    #[test]
    fn recovery_codes_are_ten_different_and_hash_the_same_however_typed() {
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), 10);
        let mut unique = codes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 10);
        let code = &codes[0];
        assert_eq!(code.len(), 11);
        assert_eq!(
            recovery_code_hash(code),
            recovery_code_hash(&format!(" {} ", code.to_uppercase().replace('-', " ")))
        );
    }
}
