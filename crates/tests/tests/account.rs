//! Account endpoints (panel dialect): registration, login, refresh rotation, logout, `me`,
//! and the gateway's handling of bad bodies, expired or forged tokens, and rate limits.

use reqwest::{Method, StatusCode};
use serde_json::json;
use tests::{
    ADMIN_EMAIL, ADMIN_PASSWORD, ADMIN_USERNAME, Backend, Cred, JWT_SECRET, Options, TestApp,
    USER_PASSWORD, on_every_backend, token_of,
};

on_every_backend!(
    register_login_and_me,
    registration_is_validated,
    duplicate_registration_is_a_conflict,
    wrong_password_and_unknown_user_look_the_same,
    refresh_rotates_and_reuse_revokes_the_session,
    logout_ends_the_session,
    first_admin_comes_from_configuration,
    wrong_passwords_block_the_account_for_a_while,
);

async fn register_login_and_me(backend: Backend) {
    let app = TestApp::start(backend).await;
    let reply = app
        .post(
            "/api/auth/register",
            Cred::None,
            json!({"username": "alice", "email": "Alice@Example.com", "password": USER_PASSWORD}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    assert_eq!(reply.json["username"], "alice");
    assert_eq!(
        reply.json["email"], "alice@example.com",
        "emails are stored lower-cased"
    );
    assert_eq!(reply.json["role"], "user");
    assert!(!reply.text.contains("argon2") && !reply.text.contains(USER_PASSWORD));

    for login in ["alice", "ALICE@example.com"] {
        let session = app.login(login, USER_PASSWORD).await;
        assert_eq!(session["tokenType"], "Bearer");
        assert_eq!(session["expiresIn"], 900);
        assert!(
            session["refreshToken"]
                .as_str()
                .is_some_and(|t| t.starts_with("rt_"))
        );
        let me = app
            .get("/api/auth/me", Cred::Bearer(&token_of(&session)))
            .await;
        assert_eq!(me.status, StatusCode::OK, "{}", me.text);
        assert_eq!(me.json["username"], "alice");
        assert_eq!(me.json["balance"], 0);
        assert_eq!(me.json["id"], reply.json["id"]);
    }
    // The login may also be given as `username` or `email`.
    let by_field = app
        .post(
            "/api/auth/login",
            Cred::None,
            json!({"email": "alice@example.com", "password": USER_PASSWORD}),
        )
        .await;
    assert_eq!(by_field.status, StatusCode::OK);
}

async fn registration_is_validated(backend: Backend) {
    let app = TestApp::start(backend).await;
    let cases = [
        (
            json!({"username": "ab", "email": "a@example.com", "password": USER_PASSWORD}),
            "username",
        ),
        (
            json!({"username": "bob", "email": "not-an-email", "password": USER_PASSWORD}),
            "email",
        ),
        (
            json!({"username": "bob", "email": "bob@example.com", "password": "short"}),
            "password",
        ),
        (
            json!({"username": "bob", "email": "bob@example.com"}),
            "password",
        ),
        (
            json!({"username": 5, "email": "bob@example.com", "password": USER_PASSWORD}),
            "username",
        ),
    ];
    for (body, field) in cases {
        let reply = app
            .post("/api/auth/register", Cred::None, body.clone())
            .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            reply.text
        );
        let message = reply.json["error"].as_str().expect("panel error shape");
        assert!(
            message.contains(field),
            "{body}: message {message:?} names {field}"
        );
    }
}

async fn duplicate_registration_is_a_conflict(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.user("carol").await;
    for body in [
        json!({"username": "carol", "email": "other@example.com", "password": USER_PASSWORD}),
        json!({"username": "carol2", "email": "CAROL@example.com", "password": USER_PASSWORD}),
    ] {
        let reply = app.post("/api/auth/register", Cred::None, body).await;
        assert_eq!(reply.status, StatusCode::CONFLICT, "{}", reply.text);
        assert!(reply.json["error"].is_string());
    }
}

async fn wrong_password_and_unknown_user_look_the_same(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.user("dave").await;
    let wrong = app
        .post(
            "/api/auth/login",
            Cred::None,
            json!({"login": "dave", "password": "wrong-password"}),
        )
        .await;
    let unknown = app
        .post(
            "/api/auth/login",
            Cred::None,
            json!({"login": "nobody", "password": "wrong-password"}),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.json, unknown.json);
    assert_eq!(wrong.json["error"], "invalid login or password");
}

async fn refresh_rotates_and_reuse_revokes_the_session(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.user("erin").await;
    let first = app.login("erin", USER_PASSWORD).await;
    let refresh1 = first["refreshToken"].as_str().expect("refresh").to_owned();

    let second = app
        .post(
            "/api/auth/refresh",
            Cred::None,
            json!({"refreshToken": refresh1}),
        )
        .await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.text);
    let refresh2 = second.json["refreshToken"]
        .as_str()
        .expect("refresh")
        .to_owned();
    assert_ne!(refresh1, refresh2, "refresh tokens rotate");
    let access2 = token_of(&second.json);
    assert_eq!(
        app.get("/api/auth/me", Cred::Bearer(&access2)).await.status,
        StatusCode::OK
    );

    // Presenting the used token again means it leaked: the whole session ends.
    let reuse = app
        .post(
            "/api/auth/refresh",
            Cred::None,
            json!({"refreshToken": refresh1}),
        )
        .await;
    assert_eq!(reuse.status, StatusCode::UNAUTHORIZED);
    let after = app
        .post(
            "/api/auth/refresh",
            Cred::None,
            json!({"refreshToken": refresh2}),
        )
        .await;
    assert_eq!(
        after.status,
        StatusCode::UNAUTHORIZED,
        "the newer token of the family is revoked too"
    );
    let me = app.get("/api/auth/me", Cred::Bearer(&access2)).await;
    assert_eq!(
        me.status,
        StatusCode::UNAUTHORIZED,
        "the session's access tokens stop working"
    );

    // Another session of the same user is unaffected.
    let other = app.login("erin", USER_PASSWORD).await;
    assert_eq!(
        app.get("/api/auth/me", Cred::Bearer(&token_of(&other)))
            .await
            .status,
        StatusCode::OK
    );

    let garbage = app
        .post(
            "/api/auth/refresh",
            Cred::None,
            json!({"refreshToken": "rt_nope"}),
        )
        .await;
    assert_eq!(garbage.status, StatusCode::UNAUTHORIZED);
    let missing = app.post("/api/auth/refresh", Cred::None, json!({})).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
}

async fn logout_ends_the_session(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.user("frank").await;
    let session = app.login("frank", USER_PASSWORD).await;
    let access = token_of(&session);
    assert_eq!(
        app.get("/api/auth/me", Cred::Bearer(&access)).await.status,
        StatusCode::OK
    );
    let out = app
        .post("/api/auth/logout", Cred::Bearer(&access), json!({}))
        .await;
    assert_eq!(out.status, StatusCode::OK, "{}", out.text);
    assert_eq!(out.json["status"], "success");
    let me = app.get("/api/auth/me", Cred::Bearer(&access)).await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
    assert_eq!(me.header("www-authenticate"), Some("Bearer"));
    let refresh = app
        .post(
            "/api/auth/refresh",
            Cred::None,
            json!({"refreshToken": session["refreshToken"]}),
        )
        .await;
    assert_eq!(refresh.status, StatusCode::UNAUTHORIZED);
    let again = app
        .post("/api/auth/logout", Cred::Bearer(&access), json!({}))
        .await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
}

async fn first_admin_comes_from_configuration(backend: Backend) {
    let app = TestApp::start(backend).await;
    let session = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(session["user"]["role"], "admin");
    assert_eq!(session["user"]["username"], ADMIN_USERNAME);
    // No other account exists: no default credentials.
    let users = app
        .get("/api/users", Cred::ApiKey(tests::ADMIN_API_KEY))
        .await;
    assert_eq!(users.json.as_array().map(Vec::len), Some(1));
    for (login, password) in [("admin", "admin"), ("root", "root"), ("admin", "password")] {
        let reply = app
            .post(
                "/api/auth/login",
                Cred::None,
                json!({"login": login, "password": password}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    }
}

#[derive(serde::Serialize)]
struct Claims<'a> {
    sub: &'a str,
    sid: &'a str,
    iss: &'a str,
    typ: &'a str,
    iat: i64,
    exp: i64,
}

fn sign(claims: &Claims<'_>, key: &[u8]) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(key),
    )
    .expect("sign")
}

#[tokio::test]
async fn expired_forged_and_malformed_access_tokens_are_refused() {
    let app = TestApp::start(Backend::Sqlite).await;
    app.user("gina").await;
    let session = app.login("gina", USER_PASSWORD).await;
    let access = token_of(&session);
    let payload: serde_json::Value = {
        use base64::Engine as _;
        let segment = access.split('.').nth(1).expect("payload");
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(segment)
            .expect("base64url");
        serde_json::from_slice(&bytes).expect("claims")
    };
    let (sub, sid) = (
        payload["sub"].as_str().expect("sub"),
        payload["sid"].as_str().expect("sid"),
    );
    let now = chrono::Utc::now().timestamp();

    let expired = sign(
        &Claims {
            sub,
            sid,
            iss: "vps-identity",
            typ: "access",
            iat: now - 7200,
            exp: now - 3600,
        },
        JWT_SECRET.as_bytes(),
    );
    let forged = sign(
        &Claims {
            sub: "1",
            sid,
            iss: "vps-identity",
            typ: "access",
            iat: now,
            exp: now + 600,
        },
        b"some-other-key-some-other-key-012345",
    );
    let wrong_user = sign(
        &Claims {
            sub: "1",
            sid,
            iss: "vps-identity",
            typ: "access",
            iat: now,
            exp: now + 600,
        },
        JWT_SECRET.as_bytes(),
    );
    let valid_again = sign(
        &Claims {
            sub,
            sid,
            iss: "vps-identity",
            typ: "access",
            iat: now,
            exp: now + 600,
        },
        JWT_SECRET.as_bytes(),
    );

    for token in [
        expired.as_str(),
        forged.as_str(),
        wrong_user.as_str(),
        "garbage",
        "a.b.c",
    ] {
        let reply = app.get("/api/auth/me", Cred::Bearer(token)).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{token}");
        assert!(reply.json["error"].is_string());
    }
    // Control: a correctly signed token for the real session works, so the refusals above
    // are about expiry, key and subject.
    assert_eq!(
        app.get("/api/auth/me", Cred::Bearer(&valid_again))
            .await
            .status,
        StatusCode::OK
    );
    let scheme = app
        .http
        .get(app.url("/api/auth/me"))
        .header("authorization", format!("Basic {access}"))
        .send()
        .await
        .expect("send");
    assert_eq!(scheme.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn malformed_and_oversized_bodies_get_the_panel_error_shape() {
    let app = TestApp::start(Backend::Sqlite).await;
    let raw = |body: &'static str| {
        app.http
            .post(app.url("/api/auth/login"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    for body in [
        "{",
        "[1,2]",
        "\"x\"",
        "{\"login\": 1, \"password\": \"x\"}",
        "\u{0}",
    ] {
        let reply = raw(body).await.expect("send");
        assert_eq!(reply.status(), StatusCode::BAD_REQUEST, "{body:?}");
        assert!(reply.headers().contains_key("x-request-id"));
        let json: serde_json::Value = reply.json().await.expect("JSON error body, not plain text");
        assert!(
            json["error"].as_str().is_some_and(|m| !m.is_empty()),
            "{json}"
        );
    }
    let huge = "x".repeat(200 * 1024);
    let reply = app
        .http
        .post(app.url("/api/auth/register"))
        .header("content-type", "application/json")
        .body(format!("{{\"username\":\"{huge}\"}}"))
        .send()
        .await
        .expect("send");
    assert_eq!(reply.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let json: serde_json::Value = reply.json().await.expect("JSON");
    assert!(json["error"].is_string());
}

#[tokio::test]
async fn unknown_routes_and_methods_get_json_errors_with_request_ids() {
    let app = TestApp::start(Backend::Sqlite).await;
    let missing = app.get("/api/nope", Cred::None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.json["error"].is_string());
    let vpsorg_missing = app.get("/api/v1/nothing-here/", Cred::None).await;
    assert!(
        vpsorg_missing.json["detail"].is_string(),
        "{}",
        vpsorg_missing.text
    );
    let cvm_missing = app.get("/api/client/nothing", Cred::None).await;
    assert!(
        cvm_missing.json["errors"].is_array(),
        "{}",
        cvm_missing.text
    );
    let wrong_method = app
        .call(Method::PUT, "/api/auth/login", Cred::None, None)
        .await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(wrong_method.json["error"].is_string());
    let a = wrong_method
        .header("x-request-id")
        .expect("request id")
        .to_owned();
    let b = missing
        .header("x-request-id")
        .expect("request id")
        .to_owned();
    assert_ne!(a, b, "each request gets its own id");
    let echoed = app
        .http
        .get(app.url("/health"))
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .expect("send");
    assert_eq!(
        echoed.headers()["x-request-id"],
        "trace-me-42",
        "a client's request id is kept"
    );
}

#[tokio::test]
async fn login_is_rate_limited_with_retry_after() {
    let mut options = Options::default();
    options.gateway.auth_rate_per_minute = 6;
    options.gateway.auth_rate_burst = 3;
    let app = TestApp::start_with(Backend::Sqlite, options).await;
    // The harness's readiness probe spent part of the burst; exhaust the rest.
    let mut limited = None;
    for _ in 0..10 {
        let reply = app
            .post(
                "/api/auth/login",
                Cred::None,
                json!({"login": "x", "password": "y"}),
            )
            .await;
        if reply.status == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(reply);
            break;
        }
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    }
    let limited = limited.expect("the limit is reached within ten attempts");
    let retry_after: u64 = limited
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert!(limited.json["error"].is_string());
    // Token minting shares the limit; reading does not.
    let register = app.post("/api/auth/register", Cred::None, json!({})).await;
    assert_eq!(register.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(app.get("/health", Cred::None).await.status, StatusCode::OK);
}

#[tokio::test]
async fn registration_can_be_closed() {
    let mut options = Options::default();
    options.identity.allow_registration = false;
    let app = TestApp::start_with(Backend::Sqlite, options).await;
    let reply = app
        .post(
            "/api/auth/register",
            Cred::None,
            json!({"username": "zed", "email": "zed@example.com", "password": USER_PASSWORD}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.json["error"], "registration is closed");
}

#[tokio::test]
async fn sessions_expire() {
    let mut options = Options::default();
    options.identity.refresh_token_ttl_secs = 1;
    options.identity.access_token_ttl_secs = 1;
    options.gateway.auth_cache_ttl_ms = 100;
    let app = TestApp::start_with(Backend::Sqlite, options).await;
    app.user("hal").await;
    let session = app.login("hal", USER_PASSWORD).await;
    assert_eq!(session["expiresIn"], 1);
    tokio::time::sleep(std::time::Duration::from_millis(7_500)).await;
    let refresh = app
        .post(
            "/api/auth/refresh",
            Cred::None,
            json!({"refreshToken": session["refreshToken"]}),
        )
        .await;
    assert_eq!(
        refresh.status,
        StatusCode::UNAUTHORIZED,
        "an expired session cannot be refreshed"
    );
    let me = app
        .get("/api/auth/me", Cred::Bearer(&token_of(&session)))
        .await;
    assert_eq!(
        me.status,
        StatusCode::UNAUTHORIZED,
        "an expired access token is refused"
    );
}

/// Past five wrong passwords an account is blocked (429 with Retry-After) even for the right
/// password, with no password checked; the block passes, and a login resets the count. An
/// unknown login behaves alike, so the block tells nothing about who has an account.
async fn wrong_passwords_block_the_account_for_a_while(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.user("tess").await;
    let attempt = |login: &'static str, password: &'static str| {
        let app = &app;
        async move {
            app.post(
                "/api/auth/login",
                Cred::None,
                json!({"login": login, "password": password}),
            )
            .await
        }
    };
    for login in ["tess", "nobody-here"] {
        for _ in 0..5 {
            let wrong = attempt(login, "wrong-password").await;
            assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{}", wrong.text);
        }
        let blocked = attempt(login, "wrong-password").await;
        assert_eq!(
            blocked.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{}",
            blocked.text
        );
        assert!(blocked.json["error"].is_string(), "{}", blocked.text);
        let after: u64 = blocked
            .header("retry-after")
            .expect("Retry-After")
            .parse()
            .expect("seconds");
        assert!((1..=900).contains(&after), "{after}");
    }
    let right_but_blocked = attempt("tess", USER_PASSWORD).await;
    assert_eq!(right_but_blocked.status, StatusCode::TOO_MANY_REQUESTS);
    // Another account is not affected.
    app.login(ADMIN_USERNAME, ADMIN_PASSWORD).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let through = attempt("tess", USER_PASSWORD).await;
    assert_eq!(through.status, StatusCode::OK, "{}", through.text);
    // The count starts again.
    for _ in 0..5 {
        assert_eq!(
            attempt("tess", "wrong-password").await.status,
            StatusCode::UNAUTHORIZED
        );
    }

    // Twenty guesses at once check at most five passwords: one check per account runs at
    // a time, and the block starts before the rest get theirs.
    app.user("uma").await;
    let burst =
        futures_util::future::join_all((0..20).map(|_| attempt("uma", "wrong-password"))).await;
    let checked = burst
        .iter()
        .filter(|r| r.status == StatusCode::UNAUTHORIZED)
        .count();
    let refused = burst
        .iter()
        .filter(|r| r.status == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert!(checked <= 5, "{checked} passwords checked in a burst");
    assert_eq!(checked + refused, 20);
}
