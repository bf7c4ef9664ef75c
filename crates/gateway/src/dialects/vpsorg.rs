//! The VPS.org dialect (seeds 002 and 004): `Authorization: Bearer <API token>`, errors as
//! `{"detail": ...}`. Its server and snapshot routes arrive with server-svc and snapshot-svc.

use axum::http::{HeaderMap, StatusCode};

use super::{Dialect, DialectKind, bearer};
use crate::auth::Credential;
use crate::error::ApiError;

pub struct VpsOrg;

impl Dialect for VpsOrg {
    const KIND: DialectKind = DialectKind::VpsOrg;

    fn credential(headers: &HeaderMap) -> Option<Credential> {
        bearer(headers).map(|t| Credential::VpsorgToken(t.to_owned()))
    }

    fn unauthorized() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "Invalid token or no token provided.",
        )
    }
}
