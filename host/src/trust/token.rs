//! Call-back tokens: the served script carries a token that proves the call-back comes
//! from a script ztpd issued, for this tenant, recently. Without it, any host on the LAN
//! could make ztpd push configs by POSTing a made-up serial.
//!
//! Format: `v1.<issued unix seconds>.<hex HMAC-SHA256(secret, "ztpd-callback|v1|<tenant>|<issued>")>`.
//! The secret is per tenant: from the configuration, or generated once and kept in the
//! database so tokens survive restarts.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::clock::now_s;

type HmacSha256 = Hmac<Sha256>;

/// Allowed clock skew for tokens issued "in the future".
const SKEW_S: u64 = 60;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("missing X-Ztpd-Token header: call back with the token from the script ztpd served")]
    Missing,
    #[error("malformed call-back token: expected v1.<issued>.<signature>")]
    Malformed,
    #[error("call-back token was not issued by this ztpd for tenant {0}")]
    Forged(String),
    #[error("call-back token expired {0} s ago: fetch the script again")]
    Expired(u64),
}

/// Signs and checks tokens for one tenant.
#[derive(Clone)]
pub struct TokenKey {
    tenant: String,
    secret: Vec<u8>,
    ttl_s: u64,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKey")
            .field("tenant", &self.tenant)
            .field("ttl_s", &self.ttl_s)
            .finish()
    }
}

impl TokenKey {
    pub fn new(tenant: &str, secret: &[u8], ttl_s: u64) -> Self {
        TokenKey {
            tenant: tenant.to_owned(),
            secret: secret.to_vec(),
            ttl_s,
        }
    }

    fn mac(&self, issued: u64) -> HmacSha256 {
        // HMAC accepts keys of any length.
        let mut mac = HmacSha256::new_from_slice(&self.secret)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(format!("ztpd-callback|v1|{}|{issued}", self.tenant).as_bytes());
        mac
    }

    pub fn issue(&self) -> String {
        self.issue_at(now_s())
    }

    pub fn issue_at(&self, issued: u64) -> String {
        let sig = self.mac(issued).finalize().into_bytes();
        format!("v1.{issued}.{}", hex::encode(sig))
    }

    pub fn verify(&self, token: Option<&str>) -> Result<(), TokenError> {
        self.verify_at(token, now_s())
    }

    pub fn verify_at(&self, token: Option<&str>, now: u64) -> Result<(), TokenError> {
        let token = token
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(TokenError::Missing)?;
        let mut parts = token.splitn(3, '.');
        let (Some("v1"), Some(issued), Some(sig)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let issued: u64 = issued.parse().map_err(|_| TokenError::Malformed)?;
        let sig = hex::decode(sig).map_err(|_| TokenError::Malformed)?;
        self.mac(issued)
            .verify_slice(&sig)
            .map_err(|_| TokenError::Forged(self.tenant.clone()))?;
        if issued > now + SKEW_S {
            return Err(TokenError::Forged(self.tenant.clone()));
        }
        let age = now.saturating_sub(issued);
        if age > self.ttl_s {
            return Err(TokenError::Expired(age - self.ttl_s));
        }
        Ok(())
    }
}

/// 32 random bytes, hex: a new per-tenant secret.
pub fn new_secret() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_verify_and_others_do_not() {
        let k = TokenKey::new("lab", b"secret", 600);
        let t = k.issue_at(1_000);
        assert_eq!(k.verify_at(Some(&t), 1_100), Ok(()));
        assert_eq!(k.verify_at(None, 1_100), Err(TokenError::Missing));
        assert_eq!(
            k.verify_at(Some("v1.1000.zz"), 1_100),
            Err(TokenError::Malformed)
        );
        // Another tenant's token, or another secret's, is forged here.
        let other = TokenKey::new("other", b"secret", 600).issue_at(1_000);
        assert_eq!(
            k.verify_at(Some(&other), 1_100),
            Err(TokenError::Forged("lab".into()))
        );
        let tampered = t.replace("v1.1000.", "v1.1001.");
        assert_eq!(
            k.verify_at(Some(&tampered), 1_100),
            Err(TokenError::Forged("lab".into()))
        );
        assert_eq!(k.verify_at(Some(&t), 1_700), Err(TokenError::Expired(100)));
    }
}
