//! A gateway whose identity-svc is down answers 503 in each dialect's shape, never 500 and
//! never a hang, and recovers once the service is back.

use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::routing::get;
use gateway::AppState;
use gateway::dialects::cvm::Cvm;
use gateway::extract::Auth;
use platform::Shutdown;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tests::{Cred, call_at};

async fn cvm_probe(auth: Auth<Cvm>) -> Json<Value> {
    Json(json!({ "userId": auth.principal.user_id }))
}

#[tokio::test]
async fn a_dead_identity_service_is_a_503_in_every_dialect() {
    // An address where nothing listens.
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let identity_url = format!("http://{}", dead.local_addr().expect("addr"));
    drop(dead);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let keys = platform::auth::KeySet::generate().expect("keys");
    let state = AppState::new(gateway::Config {
        peers: platform::peers::Peers {
            identity: identity_url,
            ..platform::peers::Peers::default()
        },
        caller: keys.config_for(platform::auth::Service::Gateway),
        ..gateway::Config::default()
    })
    .expect("state");
    let shutdown = Shutdown::new();
    let probes = Router::new().route("/api/client/whoami", get(cvm_probe));
    tokio::spawn(gateway::serve_app(
        listener,
        state,
        probes,
        shutdown.clone(),
    ));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client");

    let cases: [(&str, Method, Cred<'_>, Option<Value>, &str); 4] = [
        (
            "/api/auth/me",
            Method::GET,
            Cred::Bearer("a.b.c"),
            None,
            "error",
        ),
        (
            "/api/users",
            Method::GET,
            Cred::ApiKey("sk_x"),
            None,
            "error",
        ),
        (
            "/api/client/whoami",
            Method::GET,
            Cred::Cvm("p", "q"),
            None,
            "errors",
        ),
        (
            "/api/auth/login",
            Method::POST,
            Cred::None,
            Some(json!({"login": "a", "password": "b"})),
            "error",
        ),
    ];
    for (path, method, cred, body, key) in cases {
        let reply = call_at(&http, &base, method, path, cred, body).await;
        assert_eq!(
            reply.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{path}: {}",
            reply.text
        );
        assert!(!reply.json[key].is_null(), "{path}: {}", reply.text);
        assert!(
            !reply.text.contains("127.0.0.1"),
            "no internal addresses leak: {}",
            reply.text
        );
    }
    shutdown.trigger();
}
