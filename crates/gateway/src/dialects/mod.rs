//! The four REST dialects. Each is a marker type naming its auth scheme and error shape, and a
//! module of routes that parse requests into service calls and render the dialect's JSON.

pub mod cvm;
pub mod panel;
pub mod skyport;
pub mod vpsorg;

use axum::http::{HeaderMap, header};

use crate::auth::{Credential, Principal};
use crate::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialectKind {
    Panel,
    Skyport,
    VpsOrg,
    Cvm,
}

impl DialectKind {
    /// Which dialect owns a path, for responses no handler produced (unknown routes, wrong
    /// methods, time-outs).
    pub fn for_path(path: &str) -> Self {
        const SKYPORT: [&str; 7] = [
            "/api/users",
            "/api/getUser",
            "/api/auth/create-user",
            "/api/instances",
            "/api/instance/",
            "/api/images",
            "/api/nodes",
        ];
        if path.starts_with("/api/v1/") {
            Self::VpsOrg
        } else if path.starts_with("/api/client/") {
            Self::Cvm
        } else if SKYPORT.iter().any(|p| path.starts_with(p))
            || path == "/api/getUserInstance"
            || path == "/api/getInstance"
        {
            Self::Skyport
        } else {
            Self::Panel
        }
    }

    pub fn uses_bearer(self) -> bool {
        matches!(self, Self::Panel | Self::VpsOrg)
    }
}

/// A dialect: its auth scheme and what a principal must have to use it.
pub trait Dialect: Send + Sync + 'static {
    const KIND: DialectKind;

    /// The credential this dialect's requests carry, if any.
    fn credential(headers: &HeaderMap) -> Option<Credential>;

    /// The 401 for a missing or refused credential (one answer for both, revealing nothing).
    fn unauthorized() -> ApiError;

    /// Whether an authenticated principal may use this dialect (403 otherwise).
    fn admit(_principal: &Principal) -> Result<(), ApiError> {
        Ok(())
    }
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// A non-empty header value as text.
pub fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)?
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_belong_to_their_dialects() {
        assert_eq!(
            DialectKind::for_path("/api/v1/servers/"),
            DialectKind::VpsOrg
        );
        assert_eq!(
            DialectKind::for_path("/api/client/vps/list"),
            DialectKind::Cvm
        );
        assert_eq!(DialectKind::for_path("/api/getUser"), DialectKind::Skyport);
        assert_eq!(
            DialectKind::for_path("/api/instance/delete"),
            DialectKind::Skyport
        );
        assert_eq!(DialectKind::for_path("/api/server/1"), DialectKind::Panel);
        assert_eq!(DialectKind::for_path("/api/auth/login"), DialectKind::Panel);
    }

    #[test]
    fn bearer_tokens_are_read_case_insensitively() {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, "bearer abc".parse().expect("header"));
        assert_eq!(bearer(&headers), Some("abc"));
        headers.insert(header::AUTHORIZATION, "Basic abc".parse().expect("header"));
        assert_eq!(bearer(&headers), None);
        headers.insert(header::AUTHORIZATION, "Bearer ".parse().expect("header"));
        assert_eq!(bearer(&headers), None);
    }
}
