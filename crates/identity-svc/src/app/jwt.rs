//! Access tokens: short-lived HS256 JWTs naming the user and the session they belong to.

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

const ISSUER: &str = "vps-identity";
const TOKEN_TYPE: &str = "access";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// The user's numeric id.
    pub sub: String,
    /// The session (refresh-token family) id; revoking it revokes this token.
    pub sid: String,
    pub iss: String,
    pub typ: String,
    pub iat: i64,
    pub exp: i64,
}

impl Claims {
    pub fn user_id(&self) -> Option<i64> {
        self.sub.parse().ok()
    }
}

#[derive(Clone)]
pub struct Signer {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
}

impl Signer {
    pub fn new(secret: &[u8], ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.leeway = 5;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl,
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    pub fn issue(&self, user_id: i64, session_id: &str, now: i64) -> anyhow::Result<String> {
        let claims = Claims {
            sub: user_id.to_string(),
            sid: session_id.to_owned(),
            iss: ISSUER.to_owned(),
            typ: TOKEN_TYPE.to_owned(),
            iat: now,
            exp: now + i64::try_from(self.ttl.as_secs())?,
        };
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.encoding,
        )?)
    }

    /// The claims of a valid, unexpired access token signed by us; `None` otherwise.
    pub fn verify(&self, token: &str) -> Option<Claims> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).ok()?;
        (data.claims.typ == TOKEN_TYPE).then_some(data.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    #[test]
    fn an_issued_token_verifies() {
        let signer = Signer::new(KEY, Duration::from_secs(60));
        let token = signer.issue(7, "s-1", now()).expect("issue");
        let claims = signer.verify(&token).expect("valid");
        assert_eq!(claims.user_id(), Some(7));
        assert_eq!(claims.sid, "s-1");
    }

    #[test]
    fn expired_tokens_are_refused() {
        let signer = Signer::new(KEY, Duration::from_secs(60));
        let token = signer.issue(7, "s-1", now() - 3600).expect("issue");
        assert!(signer.verify(&token).is_none());
    }

    #[test]
    fn tokens_signed_with_another_key_are_refused() {
        let ours = Signer::new(KEY, Duration::from_secs(60));
        let theirs = Signer::new(
            b"another key another key another k",
            Duration::from_secs(60),
        );
        let token = theirs.issue(7, "s-1", now()).expect("issue");
        assert!(ours.verify(&token).is_none());
    }

    #[test]
    fn tampered_and_unsigned_tokens_are_refused() {
        let signer = Signer::new(KEY, Duration::from_secs(60));
        let token = signer.issue(7, "s-1", now()).expect("issue");
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged_claims = base64_url(
            r#"{"sub":"1","sid":"s-1","iss":"vps-identity","typ":"access","iat":0,"exp":9999999999}"#,
        );
        parts[1] = &forged_claims;
        assert!(signer.verify(&parts.join(".")).is_none());
        let none_alg = format!(
            "{}.{}.",
            base64_url(r#"{"alg":"none","typ":"JWT"}"#),
            forged_claims
        );
        assert!(signer.verify(&none_alg).is_none());
        assert!(signer.verify("not a token").is_none());
    }

    fn base64_url(s: &str) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
    }
}
