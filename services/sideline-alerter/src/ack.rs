//! Acknowledge links: chat webhooks cannot carry working buttons without a bot, so each message
//! carries a link to Sideline's own `/ack/<token>`. The token names the alert and an expiry and
//! is signed with HMAC-SHA256 (RFC 2104) under a secret only the alerter knows, so a link
//! cannot be forged or altered and stops working after its time.
//!
//! Token: `base64url(alert id) "." expiry (Unix seconds) "." base64url(HMAC(id "." expiry))`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Why a token is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AckError {
    /// Not three parts, bad base64, or not UTF-8.
    #[error("malformed acknowledge token")]
    Malformed,
    /// The signature does not match (forged or altered).
    #[error("acknowledge token signature does not match")]
    BadSignature,
    /// Past its expiry.
    #[error("acknowledge link expired")]
    Expired,
}

impl AckError {
    /// Stable reason for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            AckError::Malformed => "malformed",
            AckError::BadSignature => "bad_signature",
            AckError::Expired => "expired",
        }
    }
}

/// Signs and checks tokens.
#[derive(Clone)]
pub struct Signer {
    key: Vec<u8>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(..)")
    }
}

impl Signer {
    /// A signer with `secret` (at least 16 bytes recommended).
    pub fn new(secret: &[u8]) -> Self {
        Signer {
            key: secret.to_vec(),
        }
    }

    fn mac(&self, text: &str) -> Vec<u8> {
        // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
        match Hmac::<Sha256>::new_from_slice(&self.key) {
            Ok(mut m) => {
                m.update(text.as_bytes());
                m.finalize().into_bytes().to_vec()
            }
            Err(_) => Vec::new(),
        }
    }

    /// A token for `alert_id` valid until `expires` (Unix seconds).
    pub fn token(&self, alert_id: &str, expires: i64) -> String {
        let text = format!("{alert_id}.{expires}");
        format!(
            "{}.{expires}.{}",
            B64.encode(alert_id),
            B64.encode(self.mac(&text))
        )
    }

    /// The alert id of a valid token at `now` (Unix seconds).
    pub fn check(&self, token: &str, now: i64) -> Result<String, AckError> {
        let mut parts = token.split('.');
        let (Some(id), Some(exp), Some(sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AckError::Malformed);
        };
        let id = B64
            .decode(id)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or(AckError::Malformed)?;
        let expires: i64 = exp.parse().map_err(|_| AckError::Malformed)?;
        let sig = B64.decode(sig).map_err(|_| AckError::Malformed)?;
        let mut m =
            Hmac::<Sha256>::new_from_slice(&self.key).map_err(|_| AckError::BadSignature)?;
        m.update(format!("{id}.{expires}").as_bytes());
        m.verify_slice(&sig).map_err(|_| AckError::BadSignature)?;
        if now > expires {
            return Err(AckError::Expired);
        }
        Ok(id)
    }
}

/// Builds acknowledge links for messages.
#[derive(Debug, Clone)]
pub struct Links {
    /// Public base URL of the alerter's HTTP server (no trailing slash).
    pub base: String,
    /// The signer.
    pub signer: Signer,
    /// How long a link works, seconds.
    pub ttl_s: i64,
}

impl Links {
    /// The page of the evidence behind the score's terms.
    pub fn evidence_url(&self) -> String {
        format!("{}/evidence", self.base.trim_end_matches('/'))
    }

    /// The link acknowledging `alert_id`, made at `now` (Unix seconds).
    pub fn ack_url(&self, alert_id: &str, now: i64) -> String {
        format!(
            "{}/ack/{}",
            self.base.trim_end_matches('/'),
            self.signer.token(alert_id, now + self.ttl_s)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_works_until_it_expires_and_cannot_be_altered() {
        let s = Signer::new(b"a secret of some length");
        let t = s.token("alert-1|x", 1000);
        assert_eq!(s.check(&t, 999).unwrap(), "alert-1|x");
        assert_eq!(s.check(&t, 1001), Err(AckError::Expired));
        // A later expiry with the old signature.
        let forged = t.replacen(".1000.", ".9999.", 1);
        assert_eq!(s.check(&forged, 999), Err(AckError::BadSignature));
        // Another alert id with the old signature.
        let other = format!("{}{}", B64.encode("alert-2"), &t[t.find('.').unwrap()..]);
        assert_eq!(s.check(&other, 999), Err(AckError::BadSignature));
        // Another secret.
        assert_eq!(
            Signer::new(b"another").check(&t, 999),
            Err(AckError::BadSignature)
        );
        for bad in ["", "a.b", "a.b.c.d", "!!.1.AA", "YQ.x.AA"] {
            assert_eq!(s.check(bad, 0), Err(AckError::Malformed), "{bad}");
        }
    }
}
