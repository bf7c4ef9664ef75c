//! API tokens: minting, listing and revoking VPS.org tokens and CVM pairs through the panel,
//! and the VPS.org and CVM auth schemes at the gateway (401/403 and error shapes), including
//! how fast a revocation takes effect on another gateway replica.

use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::routing::get;
use gateway::AppState;
use gateway::dialects::cvm::{self, Cvm};
use gateway::dialects::vpsorg::VpsOrg;
use gateway::extract::Auth;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tests::{Backend, Cred, Options, TestApp, call_at, on_every_backend};

on_every_backend!(
    vpsorg_tokens_authenticate_until_revoked,
    cvm_pairs_need_both_halves_and_client_access,
    listings_never_show_secrets,
    tokens_are_private_to_their_owner,
);

// The VPS.org and CVM dialects' own routes arrive with server-svc. These test-only routes
// stand behind the real extractors, so the schemes are exercised end to end now.
async fn vpsorg_probe(auth: Auth<VpsOrg>) -> Json<Value> {
    Json(json!({ "userId": auth.principal.user_id }))
}

async fn cvm_probe(auth: Auth<Cvm>) -> Json<Value> {
    cvm::response(json!({ "userId": auth.principal.user_id }))
}

fn probes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/whoami/", get(vpsorg_probe))
        .route("/api/client/whoami", get(cvm_probe))
}

async fn start(backend: Backend) -> TestApp {
    TestApp::start_with(
        backend,
        Options {
            extra_routes: probes(),
            ..Options::default()
        },
    )
    .await
}

async fn vpsorg_tokens_authenticate_until_revoked(backend: Backend) {
    let app = start(backend).await;
    let (user_id, access) = app.user("alice").await;
    let minted = app.mint(&access, "vpsorg", false).await;
    let token = minted["token"].as_str().expect("token").to_owned();
    assert!(token.starts_with("vpt_"));
    assert_eq!(minted["type"], "vpsorg");

    let ok = app.get("/api/v1/whoami/", Cred::Bearer(&token)).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    assert_eq!(ok.json["userId"], user_id);

    for cred in [
        Cred::None,
        Cred::Bearer("vpt_wrong"),
        Cred::Bearer(&access),
        Cred::ApiKey(&token),
    ] {
        let reply = app.get("/api/v1/whoami/", cred).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{cred:?}");
        assert!(
            reply.json["detail"].is_string(),
            "VPS.org error shape: {}",
            reply.text
        );
        assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
    }
    // And the token is no panel credential.
    assert_eq!(
        app.get("/api/auth/me", Cred::Bearer(&token)).await.status,
        StatusCode::UNAUTHORIZED
    );

    let id = minted["id"].as_i64().expect("id");
    assert_eq!(
        app.delete(&format!("/api/tokens/{id}"), Cred::Bearer(&access))
            .await
            .status,
        StatusCode::OK
    );
    let after = app.get("/api/v1/whoami/", Cred::Bearer(&token)).await;
    assert_eq!(
        after.status,
        StatusCode::UNAUTHORIZED,
        "revoked at once on the revoking gateway"
    );
    let twice = app
        .delete(&format!("/api/tokens/{id}"), Cred::Bearer(&access))
        .await;
    assert_eq!(twice.status, StatusCode::OK, "revoking is idempotent");
}

async fn cvm_pairs_need_both_halves_and_client_access(backend: Backend) {
    let app = start(backend).await;
    let (user_id, access) = app.user("bob").await;
    let with_access = app.mint(&access, "cvm", true).await;
    let public = with_access["publicToken"]
        .as_str()
        .expect("public")
        .to_owned();
    let private = with_access["privateToken"]
        .as_str()
        .expect("private")
        .to_owned();
    assert!(public.starts_with("cvmpub_") && private.starts_with("cvmpriv_"));
    assert_eq!(with_access["clientApi"], true);

    let ok = app
        .get("/api/client/whoami", Cred::Cvm(&public, &private))
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    assert_eq!(ok.json["response"]["userId"], user_id, "CVM envelope");

    let other = app.mint(&access, "cvm", true).await;
    let other_private = other["privateToken"].as_str().expect("private");
    for cred in [
        Cred::None,
        Cred::Cvm(&public, "cvmpriv_wrong"),
        Cred::Cvm(&public, other_private),
        Cred::Cvm("cvmpub_unknown", &private),
        Cred::Cvm(&private, &public),
        Cred::Cvm(&public, ""),
        Cred::Bearer(&access),
    ] {
        let reply = app.get("/api/client/whoami", cred).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{cred:?}");
        assert_eq!(
            reply.json,
            json!({"errors": ["No valid API token pair was specified."]})
        );
    }

    let without_access = app.mint(&access, "cvm", false).await;
    assert_eq!(without_access["clientApi"], false);
    let reply = app
        .get(
            "/api/client/whoami",
            Cred::Cvm(
                without_access["publicToken"].as_str().expect("public"),
                without_access["privateToken"].as_str().expect("private"),
            ),
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.text);
    assert!(
        reply.json["errors"][0]
            .as_str()
            .is_some_and(|m| m.contains("client API"))
    );
}

async fn listings_never_show_secrets(backend: Backend) {
    let app = start(backend).await;
    let (_, access) = app.user("carol").await;
    let token = app.mint(&access, "vpsorg", false).await;
    let pair = app.mint(&access, "cvm", true).await;
    let list = app.get("/api/tokens", Cred::Bearer(&access)).await;
    assert_eq!(list.status, StatusCode::OK);
    let items = list.json.as_array().expect("list");
    assert_eq!(items.len(), 2);
    let secret = token["token"].as_str().expect("token");
    let private = pair["privateToken"].as_str().expect("private");
    assert!(
        !list.text.contains(secret) && !list.text.contains(private),
        "{}",
        list.text
    );
    let listed_pair = items
        .iter()
        .find(|t| t["type"] == "cvm")
        .expect("pair listed");
    assert_eq!(
        listed_pair["publicToken"], pair["publicToken"],
        "the public half is not secret"
    );
    let listed_token = items
        .iter()
        .find(|t| t["type"] == "vpsorg")
        .expect("token listed");
    let hint = listed_token["hint"].as_str().expect("hint");
    assert!(
        hint.starts_with("vpt_") && hint.chars().count() <= 9,
        "{hint}"
    );
    assert_eq!(listed_token["name"], "vpsorg for tests");

    let bad = [
        json!({"type": "ssh"}),
        json!({}),
        json!({"type": "vpsorg", "name": "x".repeat(65)}),
    ];
    for body in bad {
        let reply = app
            .post("/api/tokens", Cred::Bearer(&access), body.clone())
            .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            reply.text
        );
    }
}

async fn tokens_are_private_to_their_owner(backend: Backend) {
    let app = start(backend).await;
    let (_, alice) = app.user("alice").await;
    let (_, mallory) = app.user("mallory").await;
    let minted = app.mint(&alice, "vpsorg", false).await;
    let id = minted["id"].as_i64().expect("id");
    let reply = app
        .delete(&format!("/api/tokens/{id}"), Cred::Bearer(&mallory))
        .await;
    assert_eq!(
        reply.status,
        StatusCode::NOT_FOUND,
        "a foreign token is not found: {}",
        reply.text
    );
    assert_eq!(
        app.get("/api/tokens", Cred::Bearer(&mallory)).await.json,
        json!([])
    );
    let token = minted["token"].as_str().expect("token");
    assert_eq!(
        app.get("/api/v1/whoami/", Cred::Bearer(token)).await.status,
        StatusCode::OK,
        "still valid"
    );
    for path in ["/api/tokens/abc", "/api/tokens/0", "/api/tokens/-4"] {
        let reply = app.delete(path, Cred::Bearer(&alice)).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{path}");
        assert!(reply.json["error"].is_string());
    }
    assert_eq!(
        app.delete("/api/tokens/999999", Cred::Bearer(&alice))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_revocation_reaches_another_replica_within_its_cache_ttl() {
    let app = start(Backend::Sqlite).await;
    let ttl = Duration::from_millis(1500);
    let replica = app
        .another_gateway(gateway::Config {
            auth_cache_ttl_ms: u64::try_from(ttl.as_millis()).expect("ms"),
            ..gateway::Config::default()
        })
        .await;
    // The replica has no probe routes; `me` with a session shows the same caching.
    app.user("dora").await;
    let session = app.login("dora", tests::USER_PASSWORD).await;
    let access = tests::token_of(&session);
    let on_replica = |token: String| {
        let http = app.http.clone();
        let replica = replica.clone();
        async move {
            call_at(
                &http,
                &replica,
                reqwest::Method::GET,
                "/api/auth/me",
                Cred::Bearer(&token),
                None,
            )
            .await
        }
    };
    assert_eq!(
        on_replica(access.clone()).await.status,
        StatusCode::OK,
        "cached on the replica now"
    );

    let logout = app
        .post("/api/auth/logout", Cred::Bearer(&access), json!({}))
        .await;
    assert_eq!(logout.status, StatusCode::OK);
    let revoked_at = Instant::now();
    loop {
        let status = on_replica(access.clone()).await.status;
        if status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert_eq!(status, StatusCode::OK);
        assert!(
            revoked_at.elapsed() < ttl + Duration::from_secs(2),
            "still accepted after the TTL"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
