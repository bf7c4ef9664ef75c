//! The CVM client dialect (seed 003): `API-Public-Token` + `API-Private-Token` headers, the
//! `{"response": ...}` / `{"errors": [...]}` envelope, 401 for a bad pair and 403 for a pair
//! without client-API access. Its VPS routes arrive with server-svc.

use axum::http::{HeaderMap, StatusCode};

use super::{Dialect, DialectKind, header_text};
use crate::auth::{Credential, Principal};
use crate::error::ApiError;

pub struct Cvm;

/// The client-API scope a CVM pair must carry.
pub const CLIENT_SCOPE: &str = "cvm:client";

impl Dialect for Cvm {
    const KIND: DialectKind = DialectKind::Cvm;

    fn credential(headers: &HeaderMap) -> Option<Credential> {
        let public = header_text(headers, "api-public-token")?;
        let private = header_text(headers, "api-private-token")?;
        Some(Credential::CvmPair {
            public: public.to_owned(),
            private: private.to_owned(),
        })
    }

    fn unauthorized() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "No valid API token pair was specified.",
        )
    }

    fn admit(principal: &Principal) -> Result<(), ApiError> {
        if principal.scopes.iter().any(|s| s == CLIENT_SCOPE) {
            Ok(())
        } else {
            Err(ApiError::forbidden(
                "This API token pair does not have access to the client API.",
            ))
        }
    }
}

/// CVM's success envelope.
pub fn response<T: serde::Serialize>(value: T) -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({ "response": value }))
}
