//! Call-back tokens and one-time device passwords.
//!
//! Each served IOS XE script carries a token that binds the call-back to the script fetch:
//! the tenant, the address that fetched the script, a random nonce and the issue time,
//! signed with a per-tenant secret:
//!
//! `v2.<issued unix seconds>.<nonce, 32 hex>.<fetching address, hex of its octets>.<hex HMAC-SHA256>`
//!
//! over `ztpd-callback|v2|<tenant>|<issued>|<nonce>|<address>`. A call-back must come from
//! the address the token names, within the token's lifetime; the nonce is consumed when
//! the call-back starts a job (see [`super::claims`]).
//!
//! The same script carries a one-time password for the temporary user it creates:
//! `HMAC-SHA256(secret, "ztpd-otp|v1|<tenant>|<nonce>")` written in 24 letters and digits.
//! Nothing is stored when a script is served: the job derives the password again from the
//! nonce when it pushes, and a password learned by one host says nothing about another
//! device's. The secret is per tenant: from the configuration, or generated once and kept
//! in the database (which ztpd keeps private, 0600).

use std::net::IpAddr;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::clock::now_s;
use crate::config::SecretString;

type HmacSha256 = Hmac<Sha256>;

/// Allowed clock skew for tokens issued "in the future".
const SKEW_S: u64 = 60;
/// Letters of a one-time password: no characters a device CLI or a shell treats specially.
const PASSWORD_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
/// Length of a one-time password (about 140 bits).
const PASSWORD_LEN: usize = 24;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("missing X-Ztpd-Token header: call back with the token from the script ztpd served")]
    Missing,
    #[error(
        "malformed call-back token: expected v2.<issued>.<nonce>.<address>.<signature>; fetch the script again"
    )]
    Malformed,
    #[error("call-back token was not issued by this ztpd for tenant {0}")]
    Forged(String),
    #[error("call-back token expired {0} s ago: fetch the script again")]
    Expired(u64),
    #[error(
        "call-back token was issued to {issued_to}, but the call-back comes from {presented_from}"
    )]
    WrongAddress {
        issued_to: IpAddr,
        presented_from: IpAddr,
    },
}

/// What a valid token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenClaims {
    /// 16 random bytes, hex: what the call-back's job is bound to.
    pub nonce: String,
    pub issued: u64,
    /// The address that fetched the script.
    pub address: IpAddr,
}

/// Signs and checks tokens for one tenant, and derives its one-time passwords.
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

fn address_hex(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => hex::encode(v4.octets()),
        IpAddr::V6(v6) => hex::encode(v6.octets()),
    }
}

fn address_from_hex(text: &str) -> Option<IpAddr> {
    let bytes = hex::decode(text).ok()?;
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}

/// An address as tokens bind it: IPv4-mapped IPv6 (`::ffff:192.0.2.1`) is its IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
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

    fn hmac(&self) -> HmacSha256 {
        // HMAC accepts keys of any length.
        HmacSha256::new_from_slice(&self.secret)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"))
    }

    fn signed(&self, issued: u64, nonce: &str, address: &str) -> HmacSha256 {
        let mut mac = self.hmac();
        mac.update(
            format!(
                "ztpd-callback|v2|{}|{issued}|{nonce}|{address}",
                self.tenant
            )
            .as_bytes(),
        );
        mac
    }

    /// A new token for a script fetched from `address`, and its nonce.
    pub fn issue(&self, address: IpAddr) -> Result<(String, String), getrandom::Error> {
        let mut nonce = [0u8; 16];
        getrandom::fill(&mut nonce)?;
        let nonce = hex::encode(nonce);
        Ok((self.issue_with(now_s(), &nonce, address), nonce))
    }

    /// A token with a given time and nonce (tests, replays of the format).
    pub fn issue_with(&self, issued: u64, nonce: &str, address: IpAddr) -> String {
        let address = address_hex(canonical(address));
        let sig = self.signed(issued, nonce, &address).finalize().into_bytes();
        format!("v2.{issued}.{nonce}.{address}.{}", hex::encode(sig))
    }

    /// Check `token` for a call-back from `from`.
    pub fn verify(&self, token: Option<&str>, from: IpAddr) -> Result<TokenClaims, TokenError> {
        self.verify_at(token, from, now_s())
    }

    pub fn verify_at(
        &self,
        token: Option<&str>,
        from: IpAddr,
        now: u64,
    ) -> Result<TokenClaims, TokenError> {
        let token = token
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(TokenError::Missing)?;
        if token.len() > 256 {
            return Err(TokenError::Malformed);
        }
        let parts: Vec<&str> = token.split('.').collect();
        let ["v2", issued, nonce, address, sig] = parts.as_slice() else {
            return Err(TokenError::Malformed);
        };
        let issued: u64 = issued.parse().map_err(|_| TokenError::Malformed)?;
        if nonce.len() != 32 || hex::decode(nonce).is_err() {
            return Err(TokenError::Malformed);
        }
        let issued_to = address_from_hex(address).ok_or(TokenError::Malformed)?;
        let sig = hex::decode(sig).map_err(|_| TokenError::Malformed)?;
        self.signed(issued, nonce, address)
            .verify_slice(&sig)
            .map_err(|_| TokenError::Forged(self.tenant.clone()))?;
        if issued > now + SKEW_S {
            return Err(TokenError::Forged(self.tenant.clone()));
        }
        let age = now.saturating_sub(issued);
        if age > self.ttl_s {
            return Err(TokenError::Expired(age - self.ttl_s));
        }
        let from = canonical(from);
        if issued_to != from {
            return Err(TokenError::WrongAddress {
                issued_to,
                presented_from: from,
            });
        }
        Ok(TokenClaims {
            nonce: (*nonce).to_owned(),
            issued,
            address: issued_to,
        })
    }

    /// The one-time password the script with token nonce `nonce` sets for the temporary
    /// user.
    pub fn password(&self, nonce: &str) -> SecretString {
        let mut mac = self.hmac();
        mac.update(format!("ztpd-otp|v1|{}|{nonce}", self.tenant).as_bytes());
        let bytes = mac.finalize().into_bytes();
        let text: String = bytes
            .iter()
            .take(PASSWORD_LEN)
            .map(|b| char::from(PASSWORD_ALPHABET[usize::from(*b) % PASSWORD_ALPHABET.len()]))
            .collect();
        SecretString::from(text)
    }

    /// How long a token lives.
    pub fn ttl_s(&self) -> u64 {
        self.ttl_s
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
    use crate::config::ExposeSecret;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 3));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));
    const NONCE: &str = "00112233445566778899aabbccddeeff";

    #[test]
    fn issued_tokens_verify_from_their_address_only() {
        let k = TokenKey::new("lab", b"secret", 600);
        let t = k.issue_with(1_000, NONCE, A);
        let claims = k.verify_at(Some(&t), A, 1_100).unwrap();
        assert_eq!((claims.nonce.as_str(), claims.address), (NONCE, A));
        assert_eq!(
            k.verify_at(Some(&t), B, 1_100),
            Err(TokenError::WrongAddress {
                issued_to: A,
                presented_from: B
            })
        );
        assert_eq!(k.verify_at(None, A, 1_100), Err(TokenError::Missing));
        assert_eq!(
            k.verify_at(Some("v1.1000.zz"), A, 1_100),
            Err(TokenError::Malformed)
        );
        // Another tenant's token, or another secret's, is forged here; so is a token whose
        // address was edited to the caller's.
        let other = TokenKey::new("other", b"secret", 600).issue_with(1_000, NONCE, A);
        assert_eq!(
            k.verify_at(Some(&other), A, 1_100),
            Err(TokenError::Forged("lab".into()))
        );
        let edited = t.replace(&address_hex(A), &address_hex(B));
        assert_eq!(
            k.verify_at(Some(&edited), B, 1_100),
            Err(TokenError::Forged("lab".into()))
        );
        assert_eq!(
            k.verify_at(Some(&t), A, 1_700),
            Err(TokenError::Expired(100))
        );
        // IPv4-mapped IPv6 is the same address.
        let mapped = IpAddr::V6(std::net::Ipv4Addr::new(192, 0, 2, 3).to_ipv6_mapped());
        assert!(k.verify_at(Some(&t), mapped, 1_100).is_ok());
    }

    #[test]
    fn one_time_passwords_differ_per_nonce_and_tenant_and_repeat_per_nonce() {
        let k = TokenKey::new("lab", b"secret", 600);
        let p1 = k.password(NONCE);
        let p2 = k.password("ffeeddccbbaa99887766554433221100");
        assert_eq!(p1.expose_secret(), k.password(NONCE).expose_secret());
        assert_ne!(p1.expose_secret(), p2.expose_secret());
        let other = TokenKey::new("other", b"secret", 600).password(NONCE);
        assert_ne!(p1.expose_secret(), other.expose_secret());
        assert_eq!(p1.expose_secret().len(), PASSWORD_LEN);
        assert!(
            p1.expose_secret()
                .bytes()
                .all(|b| b.is_ascii_alphanumeric())
        );
    }
}
