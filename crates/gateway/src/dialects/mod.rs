//! The four REST dialects. Each is a marker type naming its auth scheme and error shape, and a
//! module of routes that parse requests into service calls and render the dialect's JSON.

pub mod cvm;
pub mod panel;
pub mod skyport;
pub mod vpsorg;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;

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
    pub const ALL: [Self; 4] = [Self::Panel, Self::Skyport, Self::VpsOrg, Self::Cvm];

    /// The dialect's name in metrics.
    pub fn name(self) -> &'static str {
        match self {
            Self::Panel => "panel",
            Self::Skyport => "skyport",
            Self::VpsOrg => "vpsorg",
            Self::Cvm => "cvm",
        }
    }

    /// Which dialect owns a path, for responses no handler produced (unknown routes, wrong
    /// methods, time-outs): the dialect of the route it matches, or else of the routes it
    /// shares the most leading segments with (the panel, the default, on a tie). Taken from
    /// the dialects' own routes.
    pub fn for_path(path: &str) -> Self {
        OWNERS.owner(path)
    }

    /// The paths of this dialect's routes, as its OpenAPI document names them.
    pub fn paths(self) -> Vec<String> {
        let router = match self {
            Self::Panel => panel::routes()
                .merge(panel::limited_routes())
                .merge(crate::console::routes()),
            Self::Skyport => skyport::routes(),
            Self::VpsOrg => vpsorg::routes(),
            Self::Cvm => cvm::routes(),
        };
        router.into_openapi().paths.paths.into_keys().collect()
    }

    /// An error as this dialect renders it.
    pub fn render(self, error: &ApiError) -> Response {
        match self {
            Self::Panel => error.render_in::<panel::Panel>(),
            Self::Skyport => error.render_in::<skyport::Skyport>(),
            Self::VpsOrg => error.render_in::<vpsorg::VpsOrg>(),
            Self::Cvm => error.render_in::<cvm::Cvm>(),
        }
    }
}

/// Route templates by dialect, split into segments (`{id}` matches any one segment).
struct Owners(Vec<(DialectKind, Vec<Vec<String>>)>);

static OWNERS: std::sync::LazyLock<Owners> = std::sync::LazyLock::new(|| {
    Owners(
        DialectKind::ALL
            .into_iter()
            .map(|kind| (kind, kind.paths().iter().map(|p| segments(p)).collect()))
            .collect(),
    )
});

fn segments(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

impl Owners {
    fn owner(&self, path: &str) -> DialectKind {
        let wanted: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let fits = |template: &String, segment: &&str| {
            template == segment || (template.starts_with('{') && template.ends_with('}'))
        };
        let mut best = (0, DialectKind::Panel);
        for (kind, templates) in &self.0 {
            for template in templates {
                if template.len() == wanted.len()
                    && template.iter().zip(&wanted).all(|(t, w)| fits(t, w))
                {
                    return *kind;
                }
                let shared = template
                    .iter()
                    .zip(&wanted)
                    .take_while(|(t, w)| fits(t, w))
                    .count();
                if shared > best.0 {
                    best = (shared, *kind);
                }
            }
        }
        best.1
    }
}

/// A dialect: its auth scheme, what a principal must have to use it, and its error shape.
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

    /// The HTTP status of an error (most dialects keep the common one, docs/errors.md).
    fn error_status(error: &ApiError) -> StatusCode {
        error.status
    }

    /// The body of an error, in this dialect's shape.
    fn error_body(error: &ApiError) -> serde_json::Value;

    /// Headers an error carries besides `Retry-After` (which every dialect sends).
    fn error_headers(_error: &ApiError, _headers: &mut HeaderMap) {}
}

/// `WWW-Authenticate: Bearer` on a 401, for the dialects whose clients send bearer tokens.
pub fn bearer_challenge(error: &ApiError, headers: &mut HeaderMap) {
    if error.status == StatusCode::UNAUTHORIZED {
        headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
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
        // Unknown paths: the dialect whose routes they resemble most.
        assert_eq!(
            DialectKind::for_path("/api/v1/nothing/here"),
            DialectKind::VpsOrg
        );
        assert_eq!(DialectKind::for_path("/api/client/nope"), DialectKind::Cvm);
        assert_eq!(DialectKind::for_path("/api/nothing"), DialectKind::Panel);
    }

    #[test]
    fn every_route_belongs_to_the_dialect_that_declares_it() {
        for kind in DialectKind::ALL {
            let paths = kind.paths();
            assert!(!paths.is_empty(), "{kind:?} has routes");
            for path in paths {
                let concrete = path.replace('{', "x").replace('}', "");
                assert_eq!(DialectKind::for_path(&concrete), kind, "{path}");
            }
        }
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
