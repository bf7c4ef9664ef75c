//! Every RPC of every service refuses a caller it cannot verify: no credential, forged
//! metadata, a token signed with a key nobody trusts, an expired token, a token for another
//! service, and a user's token (an administrator's, even) where only the control plane's own
//! services may call. The RPCs are read from the services' own descriptors, so a new RPC
//! cannot be missed.

use std::str::FromStr as _;
use std::time::Duration;

use platform::auth::{Caller, KeySet, Service, TOKEN_TTL};
use platform::grpc::Channel;
use prost::Message as _;
use tests::{ADMIN_ID, Backend, TestApp};
use tonic::Code;
use tonic::metadata::MetadataValue;

/// Calls that only the control plane's own services may make.
const SERVICE_ONLY: &[&str] = &[
    "/vps.identity.v1.Identity/Login",
    "/vps.identity.v1.Identity/Refresh",
    "/vps.identity.v1.Identity/Logout",
    "/vps.identity.v1.Identity/Authenticate",
    "/vps.node.v1.Nodes/Reserve",
    "/vps.node.v1.Nodes/Release",
    "/vps.node.v1.Nodes/AllocateAddress",
    "/vps.node.v1.Nodes/ReleaseAddress",
    "/vps.node.v1.Guests/*",
    "/vps.node.v1.Consoles/*",
    "/vps.server.v1.Servers/Hold",
    "/vps.server.v1.Servers/Release",
    "/vps.snapshot.v1.Snapshots/SetAutomaticBackups",
    "/vps.snapshot.v1.Snapshots/ForgetServer",
    "/vps.server.v1.Servers/ListPlacements",
    "/vps.server.v1.Servers/Observe",
    "/vps.monitor.v1.Monitor/GetStats",
];

/// The one call that takes no caller token: its credential is a service account key.
const TOKEN_EXCHANGE: &str = "/vps.identity.v1.CallerTokens/Issue";

struct Rpc {
    path: String,
    audience: Service,
    client_streaming: bool,
    server_streaming: bool,
}

fn rpcs() -> Vec<Rpc> {
    let set = prost_types::FileDescriptorSet::decode(proto::FILE_DESCRIPTOR_SET)
        .expect("the descriptors decode");
    let mut out = Vec::new();
    for file in set.file {
        if file.service.is_empty() {
            // Shared types and event schemas: nothing to call.
            continue;
        }
        let package = file.package().to_owned();
        let audience = match package.as_str() {
            "vps.identity.v1" => Service::Identity,
            "vps.node.v1" => Service::Node,
            "vps.server.v1" => Service::Server,
            "vps.snapshot.v1" => Service::Snapshot,
            "vps.monitor.v1" => Service::Monitor,
            "vps.notify.v1" => Service::Notify,
            other => panic!("a package this test does not know: {other}"),
        };
        for service in &file.service {
            for method in &service.method {
                out.push(Rpc {
                    path: format!("/{package}.{}/{}", service.name(), method.name()),
                    audience,
                    client_streaming: method.client_streaming(),
                    server_streaming: method.server_streaming(),
                });
            }
        }
    }
    out
}

fn service_only(path: &str) -> bool {
    SERVICE_ONLY
        .iter()
        .any(|rule| match rule.strip_suffix('*') {
            Some(prefix) => path.starts_with(prefix),
            None => path == *rule,
        })
}

/// Calls `rpc` with an empty message and `metadata`, and returns the status it ends with.
async fn call(channel: Channel, rpc: &Rpc, metadata: &[(&'static str, String)]) -> tonic::Status {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("the service answers");
    let path = http::uri::PathAndQuery::from_str(&rpc.path).expect("path");
    let codec = tonic_prost::ProstCodec::<(), ()>::default();
    let add = |request: &mut tonic::metadata::MetadataMap| {
        for (key, value) in metadata {
            request.insert(
                *key,
                MetadataValue::try_from(value.as_str()).expect("ascii"),
            );
        }
    };
    let result = match (rpc.client_streaming, rpc.server_streaming) {
        (false, false) => {
            let mut request = tonic::Request::new(());
            add(request.metadata_mut());
            grpc.unary(request, path, codec).await.map(|_| ())
        }
        (false, true) => {
            let mut request = tonic::Request::new(());
            add(request.metadata_mut());
            grpc.server_streaming(request, path, codec)
                .await
                .map(|_| ())
        }
        (true, false) => {
            let mut request = tonic::Request::new(tokio_stream_once());
            add(request.metadata_mut());
            grpc.client_streaming(request, path, codec)
                .await
                .map(|_| ())
        }
        (true, true) => {
            let mut request = tonic::Request::new(tokio_stream_once());
            add(request.metadata_mut());
            grpc.streaming(request, path, codec).await.map(|_| ())
        }
    };
    match result {
        Ok(()) => tonic::Status::ok("the call went through"),
        Err(status) => status,
    }
}

fn tokio_stream_once() -> futures_util::stream::Iter<std::vec::IntoIter<()>> {
    futures_util::stream::iter(vec![()])
}

fn bearer(token: &str) -> (&'static str, String) {
    ("authorization", format!("Bearer {token}"))
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_refuses_callers_it_cannot_verify() {
    let app = TestApp::start(Backend::Sqlite).await;
    let gateway = app.keys.minter(Service::Gateway).expect("minter");
    // The same names, keys nobody trusts.
    let strangers = KeySet::generate().expect("keys");
    let stranger = strangers.minter(Service::Gateway).expect("minter");
    let admin = Caller::admin(ADMIN_ID);
    let rpcs = rpcs();
    assert!(rpcs.len() > 40, "the descriptors list every RPC");

    let mut checked = 0;
    for rpc in rpcs.iter().filter(|r| r.path != TOKEN_EXCHANGE) {
        let url = match rpc.audience {
            Service::Identity => &app.identity_url,
            Service::Node => &app.node_url,
            Service::Snapshot => &app.snapshot_url,
            Service::Monitor => &app.monitor_url,
            Service::Notify => &app.notify_url,
            _ => &app.server_url,
        };
        let channel = platform::grpc::channel(url).expect("channel");
        let other_audience = if rpc.audience == Service::Server {
            Service::Identity
        } else {
            Service::Server
        };
        let cases: Vec<(&str, Vec<(&'static str, String)>)> = vec![
            ("no credential", vec![]),
            (
                "forged metadata",
                vec![
                    ("x-vps-user-id", "1".into()),
                    ("x-vps-role", "admin".into()),
                ],
            ),
            (
                "a token signed with an untrusted key",
                vec![bearer(
                    &stranger
                        .mint(&admin, rpc.audience, TOKEN_TTL)
                        .expect("mint"),
                )],
            ),
            (
                "an expired token",
                vec![bearer(
                    &gateway
                        .mint_at(
                            &admin,
                            rpc.audience,
                            now_secs() - 600,
                            Duration::from_secs(60),
                        )
                        .expect("mint"),
                )],
            ),
            (
                "a token for another service",
                vec![bearer(
                    &gateway
                        .mint(&admin, other_audience, TOKEN_TTL)
                        .expect("mint"),
                )],
            ),
            ("a malformed token", vec![bearer("not.a.token")]),
        ];
        for (what, metadata) in cases {
            let status = call(channel.clone(), rpc, &metadata).await;
            assert_eq!(
                status.code(),
                Code::Unauthenticated,
                "{} with {what}: {status:?}",
                rpc.path
            );
            checked += 1;
        }
        if service_only(&rpc.path) {
            let token = gateway.mint(&admin, rpc.audience, TOKEN_TTL).expect("mint");
            let status = call(channel.clone(), rpc, &[bearer(&token)]).await;
            assert_eq!(
                status.code(),
                Code::PermissionDenied,
                "{} with an administrator's token: {status:?}",
                rpc.path
            );
            checked += 1;
        }
    }
    assert!(checked > 250, "{checked} refusals checked");

    // The token exchange takes no caller token; without a valid account key it gives nothing.
    let exchange = rpcs
        .iter()
        .find(|r| r.path == TOKEN_EXCHANGE)
        .expect("the token exchange is in the contract");
    let channel = platform::grpc::channel(&app.identity_url).expect("channel");
    let status = call(channel, exchange, &[]).await;
    assert_ne!(status.code(), Code::Ok, "an empty key gets no token");
}

#[test]
fn every_service_only_rule_names_a_real_rpc() {
    let rpcs = rpcs();
    for rule in SERVICE_ONLY {
        let prefix = rule.trim_end_matches('*');
        assert!(
            rpcs.iter().any(|r| r.path.starts_with(prefix)),
            "{rule} matches no RPC"
        );
    }
}
