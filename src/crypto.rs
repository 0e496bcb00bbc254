//! Small cryptographic helpers: random tokens, SHA-256 digests, and the key that seals the
//! secrets the portal keeps in its database.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A random token of `bytes` bytes from the operating system's generator, hex-encoded.
pub fn random_token(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer).expect("the operating system's random generator is available");
    hex(&buffer)
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

/// The bytes of lower- or upper-case hex; `None` when it is not hex.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Compares two secrets in time that does not depend on where they first differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// How a digest over JSON was made. Digests are stored with their version, so one made before
/// a change of form is still checked the way it was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonDigest {
    /// `serde_json`'s compact output with keys in byte order: what digests were made with
    /// before RFC 8785. For integers, strings, booleans and nulls under ASCII keys (all that
    /// was ever digested) it is the same text as RFC 8785's.
    SortedKeys = 1,
    /// The JSON Canonicalization Scheme, RFC 8785.
    Rfc8785 = 2,
}

impl JsonDigest {
    /// The form new digests are made in.
    pub const CURRENT: Self = Self::Rfc8785;

    /// The version as stored beside a digest.
    pub fn as_stored(self) -> i16 {
        self as i16
    }

    pub fn from_stored(version: i16) -> Option<Self> {
        match version {
            1 => Some(Self::SortedKeys),
            2 => Some(Self::Rfc8785),
            _ => None,
        }
    }

    /// The canonical text of `value` in this form.
    pub fn canonical(self, value: &serde_json::Value) -> Vec<u8> {
        match self {
            Self::SortedKeys => value.to_string().into_bytes(),
            Self::Rfc8785 => serde_json_canonicalizer::to_vec(value)
                .expect("a JSON value always has a canonical form"),
        }
    }

    /// SHA-256 of the canonical text of `value` in this form.
    pub fn sha256(self, value: &serde_json::Value) -> [u8; 32] {
        sha256(&self.canonical(value))
    }
}

/// SHA-256 of the RFC 8785 canonical JSON of `value`: the one digest over JSON that audit
/// events, sign-off bases, evidence declarations and standards are bound with.
pub fn canonical_sha256(value: &serde_json::Value) -> [u8; 32] {
    JsonDigest::CURRENT.sha256(value)
}

/// Random bytes from the operating system's generator.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buffer = [0u8; N];
    getrandom::fill(&mut buffer).expect("the operating system's random generator is available");
    buffer
}

/// The key from configuration (`ATTEST_SECRET_KEY`) that seals secrets kept in the database:
/// second-factor secrets and signing keys. A copy of the database alone does not reveal them.
#[derive(Clone)]
pub struct SecretKey([u8; 32]);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

impl SecretKey {
    /// Parses 64 hexadecimal characters.
    pub fn from_hex(text: &str) -> Result<Self, String> {
        let bytes =
            unhex(text.trim()).ok_or_else(|| "the secret key must be hexadecimal".to_owned())?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| {
            "the secret key must be 64 hexadecimal characters (32 bytes)".to_owned()
        })?;
        Ok(Self(key))
    }

    /// A key for tests and the demo, never for a real portal.
    pub fn for_tests() -> Self {
        Self([0x5a; 32])
    }

    /// Seals `plain` for storage: a random nonce, then the ciphertext and its tag. `purpose`
    /// is bound in, so a secret sealed for one use cannot be passed off as another.
    pub fn seal(&self, purpose: &str, plain: &[u8]) -> Vec<u8> {
        let nonce: [u8; 24] = random_bytes();
        let sealed = XChaCha20Poly1305::new((&self.0).into())
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plain,
                    aad: purpose.as_bytes(),
                },
            )
            .expect("sealing a short secret cannot fail");
        [nonce.as_slice(), &sealed].concat()
    }

    /// Opens what [`Self::seal`] made for `purpose`; `None` when it was made with another key
    /// or purpose, or altered.
    pub fn open(&self, purpose: &str, sealed: &[u8]) -> Option<Vec<u8>> {
        let (nonce, ciphertext) = sealed.split_at_checked(24)?;
        let nonce: [u8; 24] = nonce.try_into().ok()?;
        XChaCha20Poly1305::new((&self.0).into())
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: purpose.as_bytes(),
                },
            )
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_follows_rfc_8785() {
        // RFC 8785, section 3.2.2: key order by UTF-16 code units, numbers as ECMAScript
        // prints them, only the escapes JSON requires.
        let value: serde_json::Value = serde_json::from_str(
            r#"{
                "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
                "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
                "literals": [null, true, false]
            }"#,
        )
        .expect("json");
        assert_eq!(
            String::from_utf8(JsonDigest::Rfc8785.canonical(&value)).expect("utf-8"),
            r#"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#
        );
        // Where the old form and RFC 8785 part: why digests carry their version.
        let float = serde_json::json!({ "x": 4.0, "y": 1e30 });
        assert_ne!(
            JsonDigest::SortedKeys.canonical(&float),
            JsonDigest::Rfc8785.canonical(&float)
        );
        // Where they agree: what was digested before RFC 8785.
        let plain: serde_json::Value = serde_json::from_str(
            r#"{"b": [1, "two", null, true], "a": {"d": -3, "c": "é\n\u0001"}}"#,
        )
        .expect("json");
        assert_eq!(
            JsonDigest::SortedKeys.canonical(&plain),
            JsonDigest::Rfc8785.canonical(&plain)
        );
        assert_eq!(JsonDigest::from_stored(2), Some(JsonDigest::CURRENT));
        assert_eq!(
            JsonDigest::CURRENT.as_stored(),
            2,
            "the default of the digest-version columns"
        );
        assert_eq!(JsonDigest::from_stored(9), None);
    }

    #[test]
    fn a_sealed_secret_opens_only_with_its_key_and_purpose() {
        let key = SecretKey::for_tests();
        let sealed = key.seal("totp", b"the secret");
        assert_eq!(
            key.open("totp", &sealed).as_deref(),
            Some(&b"the secret"[..])
        );
        assert_eq!(key.open("signing", &sealed), None);
        let other = SecretKey::from_hex(&"07".repeat(32)).expect("key");
        assert_eq!(other.open("totp", &sealed), None);
        let mut altered = sealed.clone();
        *altered.last_mut().expect("bytes") ^= 1;
        assert_eq!(key.open("totp", &altered), None);
        assert_ne!(
            key.seal("totp", b"the secret"),
            sealed,
            "a fresh nonce each time"
        );
        assert!(SecretKey::from_hex("abc").is_err());
        assert!(
            SecretKey::from_hex(&"é".repeat(32)).is_err(),
            "64 bytes, not hex: no panic"
        );
        assert!(SecretKey::from_hex(&"zz".repeat(32)).is_err());
    }

    #[test]
    fn tokens_are_random_hex_of_the_requested_size() {
        let a = random_token(16);
        let b = random_token(16);
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn hex_and_sha256_match_known_values() {
        assert_eq!(hex(&[0x00, 0xab, 0xff]), "00abff");
        assert_eq!(unhex("00abFF"), Some(vec![0x00, 0xab, 0xff]));
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("zz"), None);
        assert_eq!(
            hex(&sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn constant_time_eq_compares_content_and_length() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
