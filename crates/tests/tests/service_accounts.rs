//! Another team's service calling the gRPC API directly: an administrator creates a service
//! account over HTTP, the service trades its key for caller tokens and calls server-svc and
//! identity-svc with them, within its scopes and as its user; revoked, it gets nothing.

use platform::grpc::Channel;
use proto::identity::v1 as idpb;
use proto::identity::v1::caller_tokens_client::CallerTokensClient;
use proto::identity::v1::identity_client::IdentityClient;
use proto::server::v1 as srvpb;
use proto::server::v1::servers_client::ServersClient;
use reqwest::StatusCode;
use serde_json::json;
use tests::{Backend, Cred, TestApp, on_every_backend};
use tonic::Code;

on_every_backend!(a_service_account_calls_the_api_within_its_scopes);

fn with_token<T>(token: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("ascii"),
    );
    request
}

async fn issue(app: &TestApp, key: &str, audience: &str) -> Result<String, tonic::Status> {
    let channel = platform::grpc::channel(&app.identity_url).expect("channel");
    CallerTokensClient::new(channel)
        .issue(idpb::IssueCallerTokenRequest {
            key: key.to_owned(),
            audience: audience.to_owned(),
        })
        .await
        .map(|reply| reply.into_inner().token)
}

async fn a_service_account_calls_the_api_within_its_scopes(backend: Backend) {
    let app = TestApp::start(backend).await;
    let admin = app.admin_token().await;
    let (sam, sam_jwt) = app.user("sam").await;
    tests::fleet::grant(&app, &admin, sam, 500).await;

    // Only administrators manage service accounts, and scopes are checked.
    let refused = app
        .post(
            "/api/admin/service-accounts",
            Cred::Bearer(&sam_jwt),
            json!({"name": "mine", "scopes": ["servers:read"]}),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
    for bad in [
        json!({"name": "x", "userId": sam, "scopes": ["root"]}),
        json!({"name": "x", "userId": sam, "scopes": []}),
        json!({"name": "", "userId": sam, "scopes": ["servers:read"]}),
    ] {
        let reply = app
            .post("/api/admin/service-accounts", Cred::Bearer(&admin), bad)
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
        assert!(reply.json["error"].is_string(), "{}", reply.text);
    }
    let missing_user = app
        .post(
            "/api/admin/service-accounts",
            Cred::Bearer(&admin),
            json!({"name": "ghost", "userId": 9999, "scopes": ["servers:read"]}),
        )
        .await;
    assert_eq!(missing_user.status, StatusCode::NOT_FOUND);

    let created = app
        .post(
            "/api/admin/service-accounts",
            Cred::Bearer(&admin),
            json!({"name": "billing-sync", "userId": sam, "scopes": ["servers:read", "account:read"]}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let key = created.json["key"].as_str().expect("key").to_owned();
    assert!(key.starts_with("vsa_"));
    let id = created.json["id"].as_i64().expect("id");
    let listed = app
        .get("/api/admin/service-accounts", Cred::Bearer(&admin))
        .await;
    assert_eq!(listed.status, StatusCode::OK);
    assert!(
        !listed.text.contains(&key),
        "the key is shown only once: {}",
        listed.text
    );
    assert_eq!(
        listed.json[0]["scopes"],
        json!(["servers:read", "account:read"])
    );

    // Its tokens work where its scopes reach, as its user.
    let server_token = issue(&app, &key, "server").await.expect("a token");
    let mut servers =
        ServersClient::new(platform::grpc::channel(&app.server_url).expect("channel"));
    let listed = servers
        .list_servers(with_token(
            &server_token,
            srvpb::ListServersRequest::default(),
        ))
        .await
        .expect("servers:read lists servers");
    assert!(listed.into_inner().servers.is_empty());
    let catalog = servers
        .get_catalog(with_token(&server_token, srvpb::GetCatalogRequest {}))
        .await
        .expect("servers:read reads the catalog");
    assert!(!catalog.into_inner().plans.is_empty());
    let create = servers
        .create_server(with_token(
            &server_token,
            srvpb::CreateServerRequest {
                name: "nope".into(),
                plan_id: 1,
                image_id: 1,
                ..Default::default()
            },
        ))
        .await
        .expect_err("servers:write is missing");
    assert_eq!(create.code(), Code::PermissionDenied);

    let identity_token = issue(&app, &key, "identity").await.expect("a token");
    let mut identity: IdentityClient<Channel> =
        IdentityClient::new(platform::grpc::channel(&app.identity_url).expect("channel"));
    let balance = identity
        .get_balance(with_token(
            &identity_token,
            idpb::GetBalanceRequest { user_id: 0 },
        ))
        .await
        .expect("account:read reads the balance")
        .into_inner();
    assert_eq!(
        (balance.user_id, balance.balance),
        (sam, 500),
        "acts as sam"
    );
    let users = identity
        .list_users(with_token(
            &identity_token,
            idpb::ListUsersRequest::default(),
        ))
        .await
        .expect_err("sam is no administrator");
    assert_eq!(users.code(), Code::PermissionDenied);
    let mint = identity
        .create_credential(with_token(
            &identity_token,
            idpb::CreateCredentialRequest {
                kind: idpb::CredentialKind::VpsorgToken.into(),
                name: "escape".into(),
                client_api: false,
            },
        ))
        .await
        .expect_err("an account mints no credentials");
    assert_eq!(mint.code(), Code::PermissionDenied);

    // An administrator's account with account:write still makes no users (and so no
    // administrator with a password of its choosing).
    let broad = app
        .post(
            "/api/admin/service-accounts",
            Cred::Bearer(&admin),
            json!({"name": "ops", "scopes": ["account:write", "account:read"]}),
        )
        .await;
    assert_eq!(broad.status, StatusCode::CREATED, "{}", broad.text);
    let broad_token = issue(&app, broad.json["key"].as_str().expect("key"), "identity")
        .await
        .expect("a token");
    let escalate = identity
        .create_user(with_token(
            &broad_token,
            idpb::CreateUserRequest {
                username: "mallory".into(),
                email: "mallory@example.com".into(),
                password: "a-long-password".into(),
                role: idpb::Role::Admin.into(),
                skyport_id: None,
            },
        ))
        .await
        .expect_err("no users from service accounts");
    assert_eq!(escalate.code(), Code::PermissionDenied);

    // A token is for one service only.
    let wrong = identity
        .get_balance(with_token(
            &server_token,
            idpb::GetBalanceRequest { user_id: 0 },
        ))
        .await
        .expect_err("meant for server-svc");
    assert_eq!(wrong.code(), Code::Unauthenticated);
    assert_eq!(
        issue(&app, &key, "gateway")
            .await
            .expect_err("no such audience")
            .code(),
        Code::InvalidArgument
    );
    assert_eq!(
        issue(&app, "vsa_not-a-key", "server")
            .await
            .expect_err("unknown key")
            .code(),
        Code::Unauthenticated
    );

    // Revoked, the key gets nothing more.
    let revoked = app
        .delete(
            &format!("/api/admin/service-accounts/{id}"),
            Cred::Bearer(&admin),
        )
        .await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.text);
    assert_eq!(
        issue(&app, &key, "server")
            .await
            .expect_err("revoked")
            .code(),
        Code::Unauthenticated
    );
    let again = app
        .delete(
            &format!("/api/admin/service-accounts/{id}"),
            Cred::Bearer(&admin),
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
}
