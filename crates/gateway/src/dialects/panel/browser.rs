//! Sessions for the dashboard in a browser.
//!
//! The refresh token lives in an `HttpOnly`, `SameSite=Strict` cookie scoped to these routes,
//! so no script ever reads it; the access token lives in the page's memory. Refreshing and
//! ending a session also need the double-submit token: the `vps_csrf` cookie, which the page
//! can read, sent back in the `X-CSRF-Token` header. Another site can make a browser send the
//! cookies (were `SameSite` ever lax) but cannot read them to set the header. Both cookies are
//! `Secure` when the request came over TLS (`X-Forwarded-Proto: https` from the proxy in
//! front).

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use proto::identity::v1 as pb;
use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq as _;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Account, LoginBody, Panel, Result, StatusReply, bearer};
use crate::error::ApiError;
use crate::extract::{Auth, Body};
use crate::state::AppState;

/// One of the session's cookies.
struct SessionCookie {
    name: &'static str,
    /// Where the browser sends it.
    path: &'static str,
    /// Kept from scripts.
    http_only: bool,
}

/// The refresh token: sent to these routes only, never read by a script.
const REFRESH_COOKIE: SessionCookie = SessionCookie {
    name: "vps_refresh",
    path: "/api/auth/session",
    http_only: true,
};
/// The double-submit token: the page reads it to send it back in [`CSRF_HEADER`].
const CSRF_COOKIE: SessionCookie = SessionCookie {
    name: "vps_csrf",
    path: "/",
    http_only: false,
};
const CSRF_HEADER: &str = "x-csrf-token";

/// Routes that mint credentials (behind the auth rate limit).
pub fn limited_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(open))
        .routes(routes!(refresh))
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(close))
}

/// A browser session: the access token for the page's memory and the double-submit token;
/// the refresh token is in a cookie only.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BrowserSession {
    access_token: String,
    /// Always `Bearer`.
    token_type: &'static str,
    /// Seconds until the access token expires; refresh before then.
    expires_in: i64,
    /// Send it back in `X-CSRF-Token` to refresh or end the session (also in the `vps_csrf`
    /// cookie, for a page loaded afresh).
    csrf_token: String,
    user: Account,
}

/// Log in from the dashboard: the refresh token is set as an `HttpOnly` cookie.
#[utoipa::path(post, path = "/api/auth/session", tag = "account",
    request_body = LoginBody,
    responses(
        (status = 200, description = "Logged in; sets the `vps_refresh` (HttpOnly) and `vps_csrf` cookies", body = BrowserSession),
        (status = 400, description = "Malformed body", body = super::PanelError),
        (status = 401, description = "Wrong login or password", body = super::PanelError),
        (status = 429, description = "Too many requests", body = super::PanelError),
    ))]
async fn open(
    State(state): State<AppState>,
    headers: HeaderMap,
    Body(body, _): Body<Panel, LoginBody>,
) -> Result<Response> {
    let session = super::open_session(&state, body).await?;
    Ok(answer(session, over_tls(&headers)))
}

/// Trade the refresh cookie for a new access token (and a new cookie). Needs `X-CSRF-Token`.
#[utoipa::path(post, path = "/api/auth/session/refresh", tag = "account", operation_id = "refresh_browser_session",
    params(("X-CSRF-Token" = String, Header, description = "The `vps_csrf` cookie's value")),
    responses(
        (status = 200, description = "Rotated; sets both cookies anew", body = BrowserSession),
        (status = 401, description = "No refresh cookie, or an unknown, used, revoked or expired one", body = super::PanelError),
        (status = 403, description = "`X-CSRF-Token` missing or not the cookie's", body = super::PanelError),
        (status = 429, description = "Too many requests", body = super::PanelError),
    ))]
async fn refresh(State(state): State<AppState>, headers: HeaderMap) -> Result<Response> {
    check_csrf(&headers)?;
    let refresh_token = cookie(&headers, REFRESH_COOKIE.name)
        .filter(|token| !token.is_empty())
        .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "no session cookie"))?;
    match super::rotate_session(&state, refresh_token.to_owned()).await {
        Ok(session) => Ok(answer(session, over_tls(&headers))),
        // A refused cookie is of no more use: the browser forgets it.
        Err(error) if error.status == StatusCode::UNAUTHORIZED => {
            let mut response = super::Failure::<Panel>::from(error).into_response();
            clear(response.headers_mut(), over_tls(&headers));
            Ok(response)
        }
        Err(error) => Err(error.into()),
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CloseQuery {
    /// `true`: end every session of the user, on every device ("log out everywhere").
    everywhere: Option<bool>,
}

/// Log out from the dashboard: ends the session (or, with `everywhere=true`, all of the
/// user's sessions) and clears its cookies. Needs the access token and `X-CSRF-Token`.
#[utoipa::path(delete, path = "/api/auth/session", tag = "account",
    security(("bearerJwt" = [])),
    params(("X-CSRF-Token" = String, Header, description = "The `vps_csrf` cookie's value"), CloseQuery),
    responses(
        (status = 200, description = "Logged out; the cookies are cleared", body = StatusReply),
        (status = 400, description = "`everywhere` is not true or false", body = super::PanelError),
        (status = 401, description = "Missing or invalid access token", body = super::PanelError),
        (status = 403, description = "`X-CSRF-Token` missing or not the cookie's", body = super::PanelError),
    ))]
async fn close(
    State(state): State<AppState>,
    auth: Auth<Panel>,
    headers: HeaderMap,
    live: Option<Extension<socketioxide::SocketIo>>,
    query: std::result::Result<Query<CloseQuery>, QueryRejection>,
) -> Result<Response> {
    let Query(query) =
        query.map_err(|_| ApiError::invalid("everywhere", "everywhere must be true or false"))?;
    check_csrf(&headers)?;
    let access_token = bearer(&headers).unwrap_or_default().to_owned();
    let everywhere = query.everywhere.unwrap_or(false);
    super::end_session(&state, access_token, auth.principal.user_id, everywhere).await?;
    if let (true, Some(Extension(io))) = (everywhere, live) {
        super::live::disconnect_user(&io, auth.principal.user_id).await;
    }
    let mut response = Json(StatusReply { status: "success" }).into_response();
    clear(response.headers_mut(), over_tls(&headers));
    Ok(response)
}

/// The session's body and its two cookies.
fn answer(session: pb::Session, secure: bool) -> Response {
    let mut csrf = [0_u8; 32];
    rand::rng().fill_bytes(&mut csrf);
    let csrf_token = URL_SAFE_NO_PAD.encode(csrf);
    let body = BrowserSession {
        access_token: session.access_token,
        token_type: "Bearer",
        expires_in: session.access_expires_in_secs,
        csrf_token: csrf_token.clone(),
        user: Account::from(session.user.unwrap_or_default()),
    };
    let mut response = Json(body).into_response();
    let headers = response.headers_mut();
    let max_age = session.refresh_expires_in_secs.max(0);
    set_cookie(
        headers,
        &REFRESH_COOKIE,
        &session.refresh_token,
        max_age,
        secure,
    );
    set_cookie(headers, &CSRF_COOKIE, &csrf_token, max_age, secure);
    response
}

/// Expires both cookies.
fn clear(headers: &mut HeaderMap, secure: bool) {
    set_cookie(headers, &REFRESH_COOKIE, "", 0, secure);
    set_cookie(headers, &CSRF_COOKIE, "", 0, secure);
}

fn set_cookie(
    headers: &mut HeaderMap,
    cookie: &SessionCookie,
    value: &str,
    max_age: i64,
    secure: bool,
) {
    let SessionCookie {
        name,
        path,
        http_only,
    } = cookie;
    let mut cookie = format!("{name}={value}; Path={path}; Max-Age={max_age}; SameSite=Strict");
    if *http_only {
        cookie.push_str("; HttpOnly");
    }
    if secure {
        cookie.push_str("; Secure");
    }
    // Token values are base64 and JWT characters only, so the header is always valid.
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        headers.append(header::SET_COOKIE, value);
    }
}

/// The value of cookie `name` in the request, if sent.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// The double-submit check: `X-CSRF-Token` is present and equals the `vps_csrf` cookie.
fn check_csrf(headers: &HeaderMap) -> std::result::Result<(), ApiError> {
    let sent = headers
        .get(CSRF_HEADER)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let expected = cookie(headers, CSRF_COOKIE.name).unwrap_or_default();
    if sent.is_empty() || !bool::from(sent.as_bytes().ct_eq(expected.as_bytes())) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "X-CSRF-Token is missing or does not match the session's",
        ));
    }
    Ok(())
}

/// Whether the proxy in front says the request came over TLS.
fn over_tls(headers: &HeaderMap) -> bool {
    let proto = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_ascii_lowercase)
    };
    proto("x-forwarded-proto").is_some_and(|p| p.split(',').next().map(str::trim) == Some("https"))
        || proto("forwarded").is_some_and(|p| p.contains("proto=https"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn cookies_are_found_by_exact_name() {
        let sent = headers(&[("cookie", "a=1; vps_csrf_x=2"), ("cookie", "vps_csrf=abc")]);
        assert_eq!(cookie(&sent, "vps_csrf"), Some("abc"));
        assert_eq!(cookie(&sent, "a"), Some("1"));
        assert_eq!(cookie(&sent, "b"), None);
    }

    #[test]
    fn the_csrf_header_must_equal_the_cookie() {
        let good = headers(&[("cookie", "vps_csrf=abc"), ("x-csrf-token", "abc")]);
        assert!(check_csrf(&good).is_ok());
        for bad in [
            headers(&[("cookie", "vps_csrf=abc")]),
            headers(&[("x-csrf-token", "abc")]),
            headers(&[("cookie", "vps_csrf=abc"), ("x-csrf-token", "abd")]),
            headers(&[("cookie", "vps_csrf="), ("x-csrf-token", "")]),
        ] {
            assert_eq!(check_csrf(&bad).unwrap_err().status, StatusCode::FORBIDDEN);
        }
    }

    #[test]
    fn cookies_are_secure_behind_a_tls_proxy_only() {
        assert!(over_tls(&headers(&[("x-forwarded-proto", "https")])));
        assert!(over_tls(&headers(&[(
            "forwarded",
            "for=1.2.3.4;proto=https"
        )])));
        assert!(!over_tls(&headers(&[("x-forwarded-proto", "http")])));
        assert!(!over_tls(&HeaderMap::new()));
    }
}
