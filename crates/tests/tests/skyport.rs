//! Skyport user endpoints (seed 001): `GET /api/users`, `POST /api/getUser`,
//! `POST /api/auth/create-user`, authenticated by an administrator's `x-api-key`.

use reqwest::StatusCode;
use serde_json::json;
use tests::{ADMIN_API_KEY, ADMIN_EMAIL, Backend, Cred, TestApp, USER_PASSWORD, on_every_backend};

on_every_backend!(
    users_are_listed_without_secrets,
    get_user_by_email_or_username,
    create_user_with_and_without_a_user_id,
    create_user_refuses_duplicates_and_bad_input,
    keys_are_checked,
);

const KEY: Cred<'static> = Cred::ApiKey(ADMIN_API_KEY);

async fn users_are_listed_without_secrets(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.user("alice").await;
    let reply = app.get("/api/users", KEY).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let users = reply.json.as_array().expect("a list");
    assert_eq!(users.len(), 2);
    let alice = users
        .iter()
        .find(|u| u["username"] == "alice")
        .expect("alice listed");
    assert_eq!(alice["email"], "alice@example.com");
    assert_eq!(alice["admin"], false);
    assert!(alice["userId"].as_str().is_some_and(|id| !id.is_empty()));
    for forbidden in ["argon2", "password", USER_PASSWORD, "hash"] {
        assert!(
            !reply.text.contains(forbidden),
            "the listing leaks {forbidden}"
        );
    }
}

async fn get_user_by_email_or_username(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.user("bob").await;
    let by_email = app
        .post(
            "/api/getUser",
            KEY,
            json!({"type": "email", "value": "BOB@example.com"}),
        )
        .await;
    assert_eq!(
        by_email.status,
        StatusCode::CREATED,
        "Skyport documents 201: {}",
        by_email.text
    );
    assert_eq!(by_email.json["username"], "bob");
    let by_name = app
        .post(
            "/api/getUser",
            KEY,
            json!({"type": "username", "value": "bob"}),
        )
        .await;
    assert_eq!(by_name.status, StatusCode::CREATED);
    assert_eq!(by_name.json["userId"], by_email.json["userId"]);
    assert!(!by_name.text.contains("argon2"));

    let cases = [
        json!({"type": "username", "value": "nobody"}),
        json!({"type": "phone", "value": "bob"}),
        json!({"type": "email"}),
        json!({"value": "bob"}),
        json!({"type": "username", "value": ""}),
        json!({"type": 7, "value": "bob"}),
    ];
    for body in cases {
        let reply = app.post("/api/getUser", KEY, body.clone()).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            reply.text
        );
        assert!(reply.json["error"].is_string(), "{body}: {}", reply.text);
    }
}

async fn create_user_with_and_without_a_user_id(backend: Backend) {
    let app = TestApp::start(backend).await;
    let given = app
        .post(
            "/api/auth/create-user",
            KEY,
            json!({"username": "carol", "email": "carol@example.com", "password": USER_PASSWORD, "userId": "skyport-carol-1"}),
        )
        .await;
    assert_eq!(given.status, StatusCode::CREATED, "{}", given.text);
    assert_eq!(given.json["userId"], "skyport-carol-1");
    assert_eq!(given.json["admin"], false);
    assert!(!given.text.contains(USER_PASSWORD) && !given.text.contains("argon2"));

    let generated = app
        .post(
            "/api/auth/create-user",
            KEY,
            json!({"username": "dan", "email": "dan@example.com", "password": USER_PASSWORD, "admin": "true"}),
        )
        .await;
    assert_eq!(generated.status, StatusCode::CREATED, "{}", generated.text);
    assert_eq!(
        generated.json["admin"], true,
        "an administrator's key may create administrators"
    );
    assert!(
        generated.json["userId"]
            .as_str()
            .is_some_and(|id| id.len() >= 8)
    );

    // The created users can log in, and the id round-trips through the panel dialect.
    let session = app.login("carol", USER_PASSWORD).await;
    assert_eq!(session["user"]["userId"], "skyport-carol-1");
    assert_eq!(
        app.login("dan", USER_PASSWORD).await["user"]["role"],
        "admin"
    );
}

async fn create_user_refuses_duplicates_and_bad_input(backend: Backend) {
    let app = TestApp::start(backend).await;
    let first = json!({"username": "erin", "email": "erin@example.com", "password": USER_PASSWORD, "userId": "erin-id"});
    assert_eq!(
        app.post("/api/auth/create-user", KEY, first).await.status,
        StatusCode::CREATED
    );
    let duplicates = [
        json!({"username": "erin", "email": "x1@example.com", "password": USER_PASSWORD}),
        json!({"username": "erin2", "email": "ERIN@example.com", "password": USER_PASSWORD}),
        json!({"username": "erin3", "email": "x3@example.com", "password": USER_PASSWORD, "userId": "erin-id"}),
        json!({"username": "admin2", "email": ADMIN_EMAIL, "password": USER_PASSWORD}),
    ];
    for body in duplicates {
        let reply = app.post("/api/auth/create-user", KEY, body.clone()).await;
        assert_eq!(reply.status, StatusCode::CONFLICT, "{body}: {}", reply.text);
        assert!(
            reply.json["error"]
                .as_str()
                .is_some_and(|m| m.contains("already exists"))
        );
    }
    let invalid = [
        json!({"email": "f@example.com", "password": USER_PASSWORD}),
        json!({"username": "frank", "password": USER_PASSWORD}),
        json!({"username": "frank", "email": "f@example.com"}),
        json!({"username": "frank", "email": "f@example", "password": USER_PASSWORD}),
        json!({"username": "frank", "email": "f@example.com", "password": USER_PASSWORD, "userId": "has spaces"}),
        json!({"username": "frank", "email": "f@example.com", "password": USER_PASSWORD, "admin": "yes"}),
        json!({"username": "frank", "email": "f@example.com", "password": "short"}),
    ];
    for body in invalid {
        let reply = app.post("/api/auth/create-user", KEY, body.clone()).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            reply.text
        );
        assert!(reply.json["error"].is_string());
    }
    let users = app.get("/api/users", KEY).await;
    assert_eq!(
        users.json.as_array().map(Vec::len),
        Some(2),
        "nothing half-created"
    );
}

async fn keys_are_checked(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (_, user_token) = app.user("gina").await;
    let vpsorg = app.mint(&user_token, "vpsorg", false).await;
    let user_secret = vpsorg["token"].as_str().expect("token");
    for cred in [
        Cred::None,
        Cred::ApiKey("sk_wrong"),
        Cred::ApiKey(user_secret),
        Cred::Bearer(&user_token),
        Cred::Bearer(ADMIN_API_KEY),
    ] {
        let reply = app.get("/api/users", cred).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{cred:?}");
        assert_eq!(reply.json["error"], "API key is missing or invalid");
    }

    // A key minted by an administrator works until revoked.
    let admin = app.admin_token().await;
    let minted = app.mint(&admin, "skyport", false).await;
    let key = minted["token"].as_str().expect("key").to_owned();
    assert!(key.starts_with("sk_"));
    assert_eq!(
        app.get("/api/users", Cred::ApiKey(&key)).await.status,
        StatusCode::OK
    );
    let id = minted["id"].as_i64().expect("id");
    let revoked = app
        .delete(&format!("/api/tokens/{id}"), Cred::Bearer(&admin))
        .await;
    assert_eq!(revoked.status, StatusCode::OK);
    assert_eq!(
        app.get("/api/users", Cred::ApiKey(&key)).await.status,
        StatusCode::UNAUTHORIZED
    );
    // Ordinary users cannot mint Skyport keys.
    let refused = app
        .post(
            "/api/tokens",
            Cred::Bearer(&user_token),
            json!({"type": "skyport"}),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
}
