//! identity-svc's own rules, checked over gRPC with no gateway in between: authorization is
//! enforced in the service, not only at the edge.

use platform::auth::Service;
use platform::grpc::Caller;
use proto::identity::v1 as pb;
use proto::identity::v1::identity_client::IdentityClient;
use tests::{Backend, Signed, TestApp, on_every_backend};
use tonic::Code;
use tonic::transport::Channel;

on_every_backend!(only_admins_create_admins, users_see_only_themselves);

/// identity-svc as the gateway calls it: users' calls signed for them, anything else as the
/// gateway itself (which may only register ordinary users).
async fn client(app: &TestApp) -> IdentityClient<Signed> {
    app.identity_client(Service::Gateway)
}

fn new_user(name: &str, role: pb::Role) -> pb::CreateUserRequest {
    pb::CreateUserRequest {
        username: name.to_owned(),
        email: format!("{name}@example.com"),
        password: "long-enough-password".to_owned(),
        role: role.into(),
        skyport_id: None,
    }
}

async fn only_admins_create_admins(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut identity = client(&app).await;
    let anonymous = identity
        .create_user(new_user("eve", pb::Role::Admin))
        .await
        .expect_err("refused");
    assert_eq!(anonymous.code(), Code::PermissionDenied);

    let user = identity
        .create_user(new_user("ursula", pb::Role::User))
        .await
        .expect("created")
        .into_inner();
    assert_eq!(user.role, i32::from(pb::Role::User));
    let as_user = Caller::user(user.id);
    let escalation = identity
        .create_user(as_user.request(new_user("eve2", pb::Role::Admin)))
        .await
        .expect_err("refused");
    assert_eq!(escalation.code(), Code::PermissionDenied);

    let as_admin = Caller::admin(tests::ADMIN_ID);
    let created = identity
        .create_user(as_admin.request(new_user("adele", pb::Role::Admin)))
        .await
        .expect("an administrator may")
        .into_inner();
    assert_eq!(created.role, i32::from(pb::Role::Admin));
}

async fn users_see_only_themselves(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut identity = client(&app).await;
    let a = identity
        .create_user(new_user("amy", pb::Role::User))
        .await
        .expect("created")
        .into_inner();
    let b = identity
        .create_user(new_user("ben", pb::Role::User))
        .await
        .expect("created")
        .into_inner();
    let amy = Caller::user(a.id);
    let by_id = |id| pb::GetUserRequest {
        by: Some(pb::get_user_request::By::Id(id)),
    };

    assert_eq!(
        identity
            .get_user(amy.request(by_id(a.id)))
            .await
            .expect("self")
            .into_inner()
            .username,
        "amy"
    );
    let foreign = identity
        .get_user(amy.request(by_id(b.id)))
        .await
        .expect_err("foreign");
    assert_eq!(
        foreign.code(),
        Code::NotFound,
        "another user's existence is not confirmed"
    );
    let by_email = pb::GetUserRequest {
        by: Some(pb::get_user_request::By::Email("ben@example.com".into())),
    };
    assert_eq!(
        identity
            .get_user(amy.request(by_email))
            .await
            .expect_err("foreign")
            .code(),
        Code::NotFound
    );
    // The gateway speaking for itself may register people, not read them.
    let as_gateway = identity.get_user(by_id(a.id)).await.expect_err("gateway");
    assert_eq!(as_gateway.code(), Code::PermissionDenied);
    let mut unsigned = IdentityClient::new(channel(&app.identity_url).await.expect("connect"));
    let anonymous = unsigned.get_user(by_id(a.id)).await.expect_err("anonymous");
    assert_eq!(anonymous.code(), Code::Unauthenticated);

    assert_eq!(
        identity
            .list_users(amy.request(pb::ListUsersRequest::default()))
            .await
            .expect_err("list")
            .code(),
        Code::PermissionDenied
    );
    let grant = pb::AdjustCreditsRequest {
        user_id: a.id,
        amount: 100,
        reason: "free".into(),
        reference: None,
        allow_debt: false,
    };
    assert_eq!(
        identity
            .adjust_credits(amy.request(grant))
            .await
            .expect_err("grant")
            .code(),
        Code::PermissionDenied
    );
    let peek = pb::ListLedgerRequest {
        user_id: b.id,
        limit: 10,
    };
    assert_eq!(
        identity
            .list_ledger(amy.request(peek))
            .await
            .expect_err("peek")
            .code(),
        Code::NotFound
    );
    let revoke_foreign = pb::RevokeCredentialRequest { id: 1 };
    assert_eq!(
        identity
            .revoke_credential(amy.request(revoke_foreign))
            .await
            .expect_err("revoke")
            .code(),
        Code::NotFound
    );
}

#[tokio::test]
async fn forged_caller_metadata_is_refused() {
    let app = TestApp::start(Backend::Sqlite).await;
    // No signing: whatever metadata says, nothing vouches for it.
    let mut identity = IdentityClient::new(channel(&app.identity_url).await.expect("connect"));
    for (user, role) in [
        ("1", "admin"),
        ("0", "admin"),
        ("abc", "admin"),
        ("1", "root"),
    ] {
        let mut request = tonic::Request::new(pb::ListUsersRequest::default());
        request
            .metadata_mut()
            .insert("x-vps-user-id", user.parse().expect("ascii"));
        request
            .metadata_mut()
            .insert("x-vps-role", role.parse().expect("ascii"));
        let status = identity.list_users(request).await.expect_err("refused");
        assert_eq!(status.code(), Code::Unauthenticated, "{user}/{role}");
    }
}

#[tokio::test]
async fn validation_errors_name_the_field() {
    let app = TestApp::start(Backend::Sqlite).await;
    let mut identity = client(&app).await;
    let mut bad = new_user("valid_name", pb::Role::User);
    bad.email = "nope".into();
    let status = identity.create_user(bad).await.expect_err("invalid");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        platform::grpc::violated_field(&status).as_deref(),
        Some("email")
    );
}

#[tokio::test]
async fn services_report_serving_health() {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;
    let app = TestApp::start(Backend::Sqlite).await;
    let mut health = HealthClient::new(channel(&app.identity_url).await.expect("connect"));
    let reply = health
        .check(HealthCheckRequest {
            service: "vps.identity.v1.Identity".into(),
        })
        .await
        .expect("health")
        .into_inner();
    assert_eq!(
        reply.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    // notify-svc reports both of its services.
    let mut health = HealthClient::new(channel(&app.notify_url).await.expect("connect"));
    for service in ["vps.notify.v1.Notify", "vps.notify.v1.Tickets"] {
        let reply = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("health")
            .into_inner();
        assert_eq!(
            reply.status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32,
            "{service}"
        );
    }
}

async fn channel(url: &str) -> Result<Channel, tonic::transport::Error> {
    Channel::from_shared(url.to_owned())
        .expect("url")
        .connect()
        .await
}
