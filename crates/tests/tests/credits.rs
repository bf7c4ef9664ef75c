//! Credits: administrators grant and charge, the ledger only grows, a balance never goes
//! below zero even under concurrent charges, and `Idempotency-Key` makes retries safe.

use reqwest::StatusCode;
use serde_json::json;
use tests::{Backend, Cred, TestApp, on_every_backend};

on_every_backend!(
    grants_and_charges_move_the_balance,
    adjustments_are_validated_and_admin_only,
    idempotency_keys_replay_the_first_entry,
    concurrent_charges_never_overdraw,
);

async fn adjust(
    app: &TestApp,
    admin: &str,
    user: i64,
    amount: i64,
    key: Option<&str>,
) -> tests::Reply {
    let mut request = app
        .http
        .post(app.url(&format!("/api/admin/users/{user}/credits")))
        .bearer_auth(admin)
        .json(&json!({"amount": amount, "reason": "test adjustment"}));
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    let response = request.send().await.expect("send");
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    let json = serde_json::from_str(&text).unwrap_or_default();
    tests::Reply {
        status,
        headers,
        text,
        json,
    }
}

async fn grants_and_charges_move_the_balance(backend: Backend) {
    let app = TestApp::start(backend).await;
    let admin = app.admin_token().await;
    let (user, access) = app.user("alice").await;

    let grant = adjust(&app, &admin, user, 5_000, None).await;
    assert_eq!(grant.status, StatusCode::CREATED, "{}", grant.text);
    assert_eq!(grant.json["balance"], 5_000);
    let charge = adjust(&app, &admin, user, -1_200, None).await;
    assert_eq!(charge.status, StatusCode::CREATED);
    assert_eq!(charge.json["entry"]["balanceAfter"], 3_800);

    let over = adjust(&app, &admin, user, -3_801, None).await;
    assert_eq!(over.status, StatusCode::PAYMENT_REQUIRED, "{}", over.text);
    assert!(
        over.json["error"]
            .as_str()
            .is_some_and(|m| m.contains("insufficient credits"))
    );

    let me = app.get("/api/auth/me", Cred::Bearer(&access)).await;
    assert_eq!(me.json["balance"], 3_800);
    let mine = app.get("/api/credits", Cred::Bearer(&access)).await;
    assert_eq!(mine.status, StatusCode::OK, "{}", mine.text);
    assert_eq!(mine.json["balance"], 3_800);
    let amounts: Vec<i64> = mine.json["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["amount"].as_i64().expect("amount"))
        .collect();
    assert_eq!(
        amounts,
        vec![-1_200, 5_000],
        "newest first; the refused charge left no entry"
    );
    let limited = app.get("/api/credits?limit=1", Cred::Bearer(&access)).await;
    assert_eq!(limited.json["entries"].as_array().map(Vec::len), Some(1));
    let bad_limit = app
        .get("/api/credits?limit=lots", Cred::Bearer(&access))
        .await;
    assert_eq!(bad_limit.status, StatusCode::BAD_REQUEST);

    let seen_by_admin = app
        .get(
            &format!("/api/admin/users/{user}/credits"),
            Cred::Bearer(&admin),
        )
        .await;
    assert_eq!(seen_by_admin.json["balance"], 3_800);
    assert_eq!(seen_by_admin.json["userId"], user);
}

async fn adjustments_are_validated_and_admin_only(backend: Backend) {
    let app = TestApp::start(backend).await;
    let admin = app.admin_token().await;
    let (user, access) = app.user("bob").await;
    let (other, _) = app.user("carol").await;

    for amount in [0, 2_000_000_000_000, -2_000_000_000_000, i64::MIN, i64::MAX] {
        let reply = adjust(&app, &admin, user, amount, None).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{amount}: {}",
            reply.text
        );
    }
    let no_reason = app
        .post(
            &format!("/api/admin/users/{user}/credits"),
            Cred::Bearer(&admin),
            json!({"amount": 5, "reason": " "}),
        )
        .await;
    assert_eq!(no_reason.status, StatusCode::BAD_REQUEST);
    let text_amount = app
        .post(
            &format!("/api/admin/users/{user}/credits"),
            Cred::Bearer(&admin),
            json!({"amount": "5", "reason": "x"}),
        )
        .await;
    assert_eq!(text_amount.status, StatusCode::BAD_REQUEST);
    assert!(
        text_amount.json["error"]
            .as_str()
            .is_some_and(|m| m.contains("amount"))
    );
    assert_eq!(
        adjust(&app, &admin, 987_654, 5, None).await.status,
        StatusCode::NOT_FOUND
    );

    // A user can neither grant themselves credits nor read someone else's ledger.
    let selfish = adjust(&app, &access, user, 1_000, None).await;
    assert_eq!(selfish.status, StatusCode::FORBIDDEN);
    assert_eq!(selfish.json["error"], "administrators only");
    let peek = app
        .get(
            &format!("/api/admin/users/{other}/credits"),
            Cred::Bearer(&access),
        )
        .await;
    assert_eq!(peek.status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.get("/api/credits", Cred::Bearer(&access)).await.json["balance"],
        0
    );
}

async fn idempotency_keys_replay_the_first_entry(backend: Backend) {
    let app = TestApp::start(backend).await;
    let admin = app.admin_token().await;
    let (user, access) = app.user("dave").await;
    let first = adjust(&app, &admin, user, 700, Some("grant-42")).await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(first.json["replayed"], false);
    let again = adjust(&app, &admin, user, 700, Some("grant-42")).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(again.json["replayed"], true);
    assert_eq!(again.json["entry"]["id"], first.json["entry"]["id"]);
    let different = adjust(&app, &admin, user, 800, Some("grant-42")).await;
    assert_eq!(different.status, StatusCode::CONFLICT, "{}", different.text);
    assert_eq!(
        app.get("/api/credits", Cred::Bearer(&access)).await.json["balance"],
        700
    );

    // Concurrent retries with one key still apply once.
    let mut set = tokio::task::JoinSet::new();
    let app = std::sync::Arc::new(app);
    for _ in 0..8 {
        let (app, admin) = (app.clone(), admin.clone());
        set.spawn(async move {
            adjust(&app, &admin, user, 50, Some("grant-43"))
                .await
                .status
        });
    }
    let mut created = 0;
    while let Some(status) = set.join_next().await {
        match status.expect("task") {
            StatusCode::CREATED => created += 1,
            StatusCode::OK => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(created, 1);
    assert_eq!(
        app.get("/api/credits", Cred::Bearer(&access)).await.json["balance"],
        750
    );
}

async fn concurrent_charges_never_overdraw(backend: Backend) {
    let app = std::sync::Arc::new(TestApp::start(backend).await);
    let admin = app.admin_token().await;
    let (user, access) = app.user("erin").await;
    assert_eq!(
        adjust(&app, &admin, user, 1_000, None).await.status,
        StatusCode::CREATED
    );

    let mut set = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (app, admin) = (app.clone(), admin.clone());
        set.spawn(async move { adjust(&app, &admin, user, -100, None).await.status });
    }
    let (mut charged, mut refused) = (0, 0);
    while let Some(status) = set.join_next().await {
        match status.expect("task") {
            StatusCode::CREATED => charged += 1,
            StatusCode::PAYMENT_REQUIRED => refused += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((charged, refused), (10, 10));
    let ledger = app
        .get("/api/credits?limit=1000", Cred::Bearer(&access))
        .await;
    assert_eq!(ledger.json["balance"], 0);
    let entries = ledger.json["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 11);
    let sum: i64 = entries
        .iter()
        .map(|e| e["amount"].as_i64().expect("amount"))
        .sum();
    assert_eq!(sum, 0, "the ledger adds up to the balance");
    assert!(
        entries
            .iter()
            .all(|e| e["balanceAfter"].as_i64().expect("balance") >= 0)
    );
}
