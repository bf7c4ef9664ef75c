//! The read path: listings the gateway answers from what it rendered before, while server-svc
//! says nothing they show changed. A write is seen by the next read in every dialect, one
//! tenant's writes never reach another's listing, and a kept listing is byte for byte what a
//! gateway keeping none renders. On a real LXC node, on SQLite and PostgreSQL.

use platform::auth::Service;
use platform::grpc::Caller;
use proto::server::v1 as pb;
use proto::server::v1::servers_client::ServersClient;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tests::fleet::{ContainerDir, grant, lxc_node, wait_server};
use tests::{Backend, Cred, Reply, Signed, TestApp, call_at};

/// Every listing route of a customer, with the credential it takes.
struct Customer {
    id: i64,
    jwt: String,
    vpsorg: String,
    cvm: (String, String),
}

impl Customer {
    async fn new(app: &TestApp, admin: &str, name: &str) -> Self {
        let (id, jwt) = app.user(name).await;
        grant(app, admin, id, 100).await;
        let vpsorg = app.mint(&jwt, "vpsorg", false).await["token"]
            .as_str()
            .expect("token")
            .to_owned();
        let pair = app.mint(&jwt, "cvm", true).await;
        let cvm = (
            pair["publicToken"].as_str().expect("public").to_owned(),
            pair["privateToken"].as_str().expect("private").to_owned(),
        );
        Self {
            id,
            jwt,
            vpsorg,
            cvm,
        }
    }

    /// Each dialect's listing from the gateway at `base`, in a fixed order.
    async fn listings(&self, app: &TestApp, base: &str) -> Vec<Reply> {
        let routes: [(&str, Cred<'_>); 4] = [
            ("/api/server", Cred::Bearer(&self.jwt)),
            ("/api/v1/servers/", Cred::Bearer(&self.vpsorg)),
            ("/api/v1/servers/?status=active", Cred::Bearer(&self.vpsorg)),
            ("/api/client/vps/list", Cred::Cvm(&self.cvm.0, &self.cvm.1)),
        ];
        let mut replies = Vec::new();
        for (path, cred) in routes {
            let reply = call_at(&app.http, base, Method::GET, path, cred, None).await;
            assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.text);
            assert_eq!(
                reply.header("content-type"),
                Some("application/json"),
                "{path}"
            );
            replies.push(reply);
        }
        replies
    }
}

/// Skyport's listing of every instance (Skyport keys are administrators').
async fn instances(app: &TestApp, base: &str, key: &str) -> Reply {
    let reply = call_at(
        &app.http,
        base,
        Method::GET,
        "/api/instances",
        Cred::ApiKey(key),
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply
}

async fn create(app: &TestApp, who: &Customer, name: &str) -> i64 {
    let created = app
        .post(
            "/api/server/create",
            Cred::Bearer(&who.jwt),
            json!({"osId": 1, "tariffId": 1, "name": name}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let id = created.json["id"].as_i64().expect("id");
    wait_server(app, &who.jwt, id, |s| s["status"] == "running").await;
    id
}

/// server-svc's answer to a listing.
async fn list(
    servers: &mut ServersClient<Signed>,
    caller: Caller,
    request: pb::ListServersRequest,
) -> pb::ListServersResponse {
    servers
        .list_servers(caller.request(request))
        .await
        .expect("list")
        .into_inner()
}

/// A power action through the panel, waited for.
async fn power(app: &TestApp, who: &Customer, id: i64, action: &str, until: &str) {
    let reply = app
        .post(
            &format!("/api/server/{id}/{action}"),
            Cred::Bearer(&who.jwt),
            json!({}),
        )
        .await;
    assert!(reply.status.is_success(), "{action}: {}", reply.text);
    wait_server(app, &who.jwt, id, |s| s["status"] == until).await;
}

fn texts(replies: &[Reply]) -> Vec<&str> {
    replies.iter().map(|r| r.text.as_str()).collect()
}

async fn listings_follow_writes(backend: Backend) {
    let app = TestApp::start(backend).await;
    let dir = ContainerDir::new();
    lxc_node(&app, &dir, 4096).await;
    let admin = app.admin_token().await;
    let amy = Customer::new(&app, &admin, "amy").await;
    let bob = Customer::new(&app, &admin, "bob").await;
    let sky = app.mint(&admin, "skyport", false).await["token"]
        .as_str()
        .expect("key")
        .to_owned();
    let web = create(&app, &amy, "web-1").await;
    let other = create(&app, &bob, "bobs-1").await;
    // Stopped, a guest's traffic stands still, so its listing changes only when we change it.
    power(&app, &amy, web, "stop", "stopped").await;
    power(&app, &bob, other, "stop", "stopped").await;
    // A gateway keeping nothing, to compare against.
    let plain = app
        .another_gateway(gateway::Config {
            read_cache_mb: 0,
            ..gateway::Config::default()
        })
        .await;

    // Asked twice with nothing changed in between: the same bytes, and the same bytes as a
    // gateway that renders every time.
    let first = amy.listings(&app, &app.base).await;
    let again = amy.listings(&app, &app.base).await;
    let rendered = amy.listings(&app, &plain).await;
    assert_eq!(texts(&first), texts(&again));
    assert_eq!(texts(&first), texts(&rendered));
    assert_eq!(first[0].json[0]["name"], "web-1", "{}", first[0].text);
    assert_eq!(first[1].json["results"][0]["status"], "stopped");
    assert_eq!(
        first[2].json["count"], 0,
        "the status filter: {}",
        first[2].text
    );
    assert!(first.iter().all(|r| !r.text.contains("bobs-1")));
    let every = instances(&app, &app.base, &sky).await;
    assert_eq!(every.text, instances(&app, &app.base, &sky).await.text);
    assert_eq!(every.text, instances(&app, &plain, &sky).await.text);
    assert_eq!(
        every.json.as_array().map(Vec::len),
        Some(2),
        "{}",
        every.text
    );

    // A write is in the very next listing of every dialect.
    let renamed = app
        .call(
            Method::PATCH,
            &format!("/api/v1/servers/{web}/"),
            Cred::Bearer(&amy.vpsorg),
            Some(json!({"name": "web-renamed", "hostname": "web-renamed.example.com"})),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.text);
    let renamed = amy.listings(&app, &app.base).await;
    for (i, reply) in renamed.iter().enumerate() {
        // (The "active" filter shows nothing.)
        assert!(
            i == 2 || reply.text.contains("web-renamed"),
            "{}",
            reply.text
        );
    }
    let every = instances(&app, &app.base, &sky).await;
    assert!(every.text.contains("web-renamed"), "{}", every.text);
    // A single server's read is a listing of one: the write shows, and it stays Amy's.
    let one = app
        .get(&format!("/api/server/{web}"), Cred::Bearer(&amy.jwt))
        .await;
    assert_eq!(one.status, StatusCode::OK, "{}", one.text);
    assert_eq!(one.json["name"], "web-renamed", "{}", one.text);
    for _ in 0..2 {
        let foreign = app
            .get(&format!("/api/server/{web}"), Cred::Bearer(&bob.jwt))
            .await;
        assert_eq!(foreign.status, StatusCode::NOT_FOUND, "{}", foreign.text);
        assert!(
            tests::error_shape_ok("/api/server/1", &foreign.json),
            "{}",
            foreign.text
        );
    }

    // Bob's write changes nothing Amy sees, and Amy's listing never shows Bob's servers.
    let bobs = bob.listings(&app, &app.base).await;
    let changed = app
        .call(
            Method::PATCH,
            &format!("/api/v1/servers/{other}/"),
            Cred::Bearer(&bob.vpsorg),
            Some(json!({"name": "bobs-renamed", "hostname": "bobs-renamed.example.com"})),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);
    let every = instances(&app, &app.base, &sky).await;
    assert!(every.text.contains("bobs-renamed") && every.text.contains("web-renamed"));
    assert_eq!(every.text, instances(&app, &plain, &sky).await.text);
    let amys = amy.listings(&app, &app.base).await;
    assert_eq!(texts(&amys), texts(&renamed));
    let bobs_now = bob.listings(&app, &app.base).await;
    assert!(
        bobs_now[0].text.contains("bobs-renamed"),
        "{}",
        bobs_now[0].text
    );
    assert!(
        bobs.iter()
            .chain(&bobs_now)
            .all(|r| !r.text.contains("web-"))
    );
    assert_eq!(
        texts(&bob.listings(&app, &plain).await),
        texts(&bobs_now),
        "a kept listing is what rendering it again gives"
    );

    // server-svc's side of it: the version names one owner's listing.
    let mut servers = app.servers_client(Service::Gateway);
    let amy_caller = Caller::user(amy.id);
    let listed = list(&mut servers, amy_caller, pb::ListServersRequest::default()).await;
    assert!(!listed.version.is_empty());
    assert!(!listed.not_modified);
    assert_eq!(listed.servers.len(), 1);
    let unchanged = list(
        &mut servers,
        amy_caller,
        pb::ListServersRequest {
            if_none_match: listed.version.clone(),
            ..pb::ListServersRequest::default()
        },
    )
    .await;
    assert!(unchanged.not_modified);
    assert!(unchanged.servers.is_empty(), "not modified carries no page");
    // Amy's version means nothing to Bob.
    let bob_caller = Caller::user(bob.id);
    let foreign = list(
        &mut servers,
        bob_caller,
        pb::ListServersRequest {
            if_none_match: listed.version.clone(),
            ..pb::ListServersRequest::default()
        },
    )
    .await;
    assert!(!foreign.not_modified);
    assert_eq!(foreign.servers[0].id, other);
    // Asked for by id, a listing still shows only the caller's own.
    let by_id = list(
        &mut servers,
        bob_caller,
        pb::ListServersRequest {
            ids: vec![web, other],
            ..pb::ListServersRequest::default()
        },
    )
    .await;
    assert_eq!(
        by_id.servers.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![other]
    );
    let too_many = servers
        .list_servers(bob_caller.request(pb::ListServersRequest {
            ids: (1..=1001).collect(),
            ..pb::ListServersRequest::default()
        }))
        .await
        .expect_err("1001 ids");
    assert_eq!(too_many.code(), tonic::Code::InvalidArgument);
    // An administrator's listing of every owner has a version of its own, which any owner's
    // change moves on.
    let everyone = Caller::admin(tests::ADMIN_ID);
    let all = list(&mut servers, everyone, pb::ListServersRequest::default()).await;
    assert!(!all.version.is_empty());
    assert_ne!(all.version, listed.version);
    assert_eq!(all.servers.len(), 2);
    // A catalog change moves every version that shows the catalog.
    let price = app
        .call(
            Method::PUT,
            "/api/admin/plans/1",
            Cred::Bearer(&admin),
            Some(json!({"name": "Small", "vcpus": 1, "memory": 512, "disk": 5, "price": 301})),
        )
        .await;
    assert_eq!(price.status, StatusCode::OK, "{}", price.text);
    let moved = list(
        &mut servers,
        amy_caller,
        pb::ListServersRequest {
            if_none_match: listed.version.clone(),
            ..pb::ListServersRequest::default()
        },
    )
    .await;
    assert!(!moved.not_modified);
    let all_moved = list(
        &mut servers,
        everyone,
        pb::ListServersRequest {
            if_none_match: all.version.clone(),
            ..pb::ListServersRequest::default()
        },
    )
    .await;
    assert!(!all_moved.not_modified);
    assert_eq!(all_moved.servers.len(), 2);
    let panel: Value = amy.listings(&app, &app.base).await[0].json.clone();
    assert_eq!(panel[0]["tariff"]["price"], 301, "{panel}");

    // A change the caller did not write itself, a task's progress, shows as well.
    power(&app, &amy, web, "start", "running").await;
    let started = amy.listings(&app, &app.base).await;
    assert_eq!(
        started[0].json[0]["status"], "running",
        "{}",
        started[0].text
    );
    assert_eq!(started[2].json["count"], 1, "{}", started[2].text);
}

tests::on_every_backend!(listings_follow_writes);
