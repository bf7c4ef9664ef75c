//! Extractors whose rejections speak the dialect: a JSON body, the authenticated principal,
//! an administrator, and a numeric path id.

use std::marker::PhantomData;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::auth::Principal;
use crate::dialects::Dialect;
use crate::error::{ApiError, Failure};
use crate::state::AppState;

/// A JSON request body. A malformed, oversized or mistyped body gets the dialect's error
/// shape (400 or 413), never axum's plain text. An empty body reads as `{}`.
pub struct Body<D, T>(pub T, pub PhantomData<D>);

impl<D: Dialect, T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<D, T> {
    type Rejection = Failure<D>;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "request body too large")
                } else {
                    ApiError::bad_request("could not read the request body")
                }
            })?;
        let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        let mut deserializer = serde_json::Deserializer::from_slice(bytes);
        match serde_path_to_error::deserialize(&mut deserializer) {
            Ok(value) => Ok(Self(value, PhantomData)),
            Err(e) => {
                let path = e.path().to_string();
                let inner = e.into_inner();
                let error = if path == "." || path.is_empty() {
                    ApiError::bad_request(format!("invalid JSON body: {inner}"))
                } else {
                    ApiError::invalid(&path, format!("invalid JSON body: `{path}`: {inner}"))
                };
                Err(error.into())
            }
        }
    }
}

/// The authenticated caller, by the dialect's own scheme. Missing or refused credentials are
/// a 401 in the dialect's shape; a credential the dialect does not admit is a 403.
pub struct Auth<D> {
    pub principal: Principal,
    dialect: PhantomData<D>,
}

impl<D: Dialect> FromRequestParts<AppState> for Auth<D> {
    type Rejection = Failure<D>;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let credential = D::credential(&parts.headers).ok_or_else(D::unauthorized)?;
        let principal = state.auth.authenticate(credential).await.map_err(|e| {
            if e.status == StatusCode::UNAUTHORIZED {
                D::unauthorized()
            } else {
                e
            }
        })?;
        D::admit(&principal)?;
        Ok(Self {
            principal,
            dialect: PhantomData,
        })
    }
}

/// An authenticated administrator (403 for anyone else).
pub struct Admin<D> {
    pub principal: Principal,
    dialect: PhantomData<D>,
}

impl<D: Dialect> FromRequestParts<AppState> for Admin<D> {
    type Rejection = Failure<D>;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Auth { principal, .. } = Auth::<D>::from_request_parts(parts, state).await?;
        if !principal.admin {
            return Err(ApiError::forbidden("administrators only").into());
        }
        Ok(Self {
            principal,
            dialect: PhantomData,
        })
    }
}

/// A positive numeric `{id}` path segment.
pub struct PathId<D>(pub i64, pub PhantomData<D>);

impl<D: Dialect, S: Send + Sync> FromRequestParts<S> for PathId<D> {
    type Rejection = Failure<D>;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::bad_request("missing id"))?;
        raw.parse::<i64>()
            .ok()
            .filter(|id| *id > 0)
            .map(|id| Self(id, PhantomData))
            .ok_or_else(|| ApiError::invalid("id", "id must be a positive integer").into())
    }
}
