//! Walks every operation of the gateway's OpenAPI document (which cannot miss a route: routes
//! register through it) and proves that each protected one refuses a missing and a foreign
//! credential in its dialect's shape, that administrator routes refuse users, and that the
//! set of public routes is exactly the intended one.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use tests::{ADMIN_API_KEY, Backend, Cred, TestApp, error_shape_ok};

const PUBLIC: [&str; 8] = [
    "GET /health",
    "GET /api/console/ws",
    "GET /api/openapi.json",
    "POST /api/auth/login",
    "POST /api/auth/refresh",
    "POST /api/auth/register",
    // Browser sessions: a login, and a refresh authenticated by its cookie and CSRF header.
    "POST /api/auth/session",
    "POST /api/auth/session/refresh",
];

fn concrete(path: &str) -> String {
    path.replace("{id}", "1")
}

#[tokio::test]
async fn every_protected_route_refuses_missing_and_foreign_credentials() {
    let app = TestApp::start(Backend::Sqlite).await;
    let doc = app.get("/api/openapi.json", Cred::None).await;
    assert_eq!(doc.status, StatusCode::OK);
    let paths = doc.json["paths"].as_object().expect("paths");
    assert!(paths.len() >= 10, "the document lists the routes");

    let (_, user_jwt) = app.user("walker").await;
    let vpsorg = app.mint(&user_jwt, "vpsorg", false).await["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let cvm = app.mint(&user_jwt, "cvm", true).await;
    let (cvm_public, cvm_private) = (
        cvm["publicToken"].as_str().expect("public").to_owned(),
        cvm["privateToken"].as_str().expect("private").to_owned(),
    );

    let mut public = BTreeSet::new();
    let mut checked = 0;
    for (path, item) in paths {
        for (method, operation) in item.as_object().expect("path item") {
            let Ok(method) = method.to_uppercase().parse::<Method>() else {
                continue;
            };
            let name = format!("{method} {path}");
            let security = operation["security"].as_array().filter(|s| !s.is_empty());
            let Some(security) = security else {
                public.insert(name);
                continue;
            };
            assert!(
                operation["responses"]["401"].is_object(),
                "{name} documents its 401"
            );
            let scheme = security[0]
                .as_object()
                .and_then(|s| s.keys().next().cloned())
                .expect("scheme");
            let url = concrete(path);
            let foreign: Vec<Cred<'_>> = match scheme.as_str() {
                "bearerJwt" => vec![
                    Cred::Bearer(&vpsorg),
                    Cred::ApiKey(ADMIN_API_KEY),
                    Cred::Cvm(&cvm_public, &cvm_private),
                ],
                "skyportApiKey" => vec![Cred::Bearer(&user_jwt), Cred::ApiKey(&vpsorg)],
                "vpsorgToken" => vec![Cred::Bearer(&user_jwt), Cred::ApiKey(ADMIN_API_KEY)],
                "cvmPublicToken" | "cvmPrivateToken" => {
                    vec![Cred::Bearer(&vpsorg), Cred::ApiKey(ADMIN_API_KEY)]
                }
                other => panic!("{name}: unknown scheme {other}"),
            };
            let body =
                (method != Method::GET && method != Method::DELETE).then(|| serde_json::json!({}));
            for cred in std::iter::once(Cred::None).chain(foreign) {
                let reply = app.call(method.clone(), &url, cred, body.clone()).await;
                assert_eq!(
                    reply.status,
                    StatusCode::UNAUTHORIZED,
                    "{name} with {cred:?}: {}",
                    reply.text
                );
                assert!(
                    error_shape_ok(path, &reply.json),
                    "{name}: error shape {}",
                    reply.text
                );
                assert!(reply.header("x-request-id").is_some(), "{name}: request id");
            }
            let admin_only = operation["responses"]["403"]["description"]
                .as_str()
                .is_some_and(|d| d.eq_ignore_ascii_case("administrators only"));
            if admin_only {
                let reply = app
                    .call(method.clone(), &url, Cred::Bearer(&user_jwt), body.clone())
                    .await;
                assert_eq!(
                    reply.status,
                    StatusCode::FORBIDDEN,
                    "{name} refuses a user: {}",
                    reply.text
                );
            }
            checked += 1;
        }
    }
    let expected: BTreeSet<String> = PUBLIC.iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(
        public, expected,
        "the public routes are exactly the intended ones"
    );
    assert!(checked >= 10, "checked {checked} protected operations");
}

#[tokio::test]
async fn the_document_declares_every_dialect_scheme() {
    let app = TestApp::start(Backend::Sqlite).await;
    let doc = app.get("/api/openapi.json", Cred::None).await.json;
    let schemes = doc["components"]["securitySchemes"]
        .as_object()
        .expect("schemes");
    for name in [
        "bearerJwt",
        "skyportApiKey",
        "vpsorgToken",
        "cvmPublicToken",
        "cvmPrivateToken",
    ] {
        assert!(schemes.contains_key(name), "{name}");
    }
    assert_eq!(schemes["skyportApiKey"]["name"], "x-api-key");
    assert_eq!(schemes["cvmPrivateToken"]["name"], "API-Private-Token");
    let text = doc.to_string();
    assert!(!text.contains("password_hash") && !text.contains("passwordHash"));
}
