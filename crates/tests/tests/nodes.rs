//! Nodes: Skyport's node endpoints, placement and IP allocation under concurrency, and the
//! rule that node credentials never leave node-svc (nor sit in its database in the clear).

use std::collections::HashSet;
use std::sync::Arc;

use platform::auth::Service;
use platform::grpc::Caller;
use proto::node::v1 as pb;
use proto::node::v1::nodes_client::NodesClient;
use reqwest::StatusCode;
use serde_json::json;
use tests::{ADMIN_API_KEY, Backend, Cred, Signed, TestApp, on_every_backend};
use tonic::Code;

on_every_backend!(
    skyport_nodes_are_created_listed_and_deleted,
    placement_never_oversubscribes,
    addresses_are_never_handed_out_twice,
);

const KEY: Cred<'static> = Cred::ApiKey(ADMIN_API_KEY);
const ADMIN: Caller = Caller::admin(tests::ADMIN_ID);
const PVE_TOKEN: &str = "root@pam!ci=5b3c6a9e-very-secret-token";

/// node-svc as the administrator (through the gateway's key) and as server-svc.
async fn nodes(app: &TestApp) -> NodesClient<Signed> {
    app.nodes_client(Service::Server)
}

async fn node(
    client: &mut NodesClient<Signed>,
    name: &str,
    location: &str,
    tags: &[&str],
    memory_mb: u64,
) -> pb::Node {
    let request = pb::CreateNodeRequest {
        name: name.into(),
        location: location.into(),
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        driver: "lxc".into(),
        capacity: Some(pb::Capacity {
            cores: 4,
            memory_mb,
            disk_gb: 100,
        }),
        overcommit: Some(pb::Overcommit {
            cpu: 1.0,
            memory: 1.0,
            disk: 1.0,
        }),
        settings: [("path".to_owned(), format!("/var/lib/vps-test/{name}"))].into(),
        ..Default::default()
    };
    client
        .create_node(ADMIN.request(request))
        .await
        .expect("create node")
        .into_inner()
}

async fn skyport_nodes_are_created_listed_and_deleted(backend: Backend) {
    let app = TestApp::start(backend).await;
    let pve = app
        .post(
            "/api/nodes/create",
            KEY,
            json!({"name": "pve-01", "tags": "ssd,EU", "ram": "65536", "disk": "2000", "processor": "32",
                   "address": "pve01.example.com", "port": "8006", "pveNode": "pve01", "apiToken": PVE_TOKEN,
                   "location": "fra"}),
        )
        .await;
    assert_eq!(pve.status, StatusCode::CREATED, "{}", pve.text);
    assert_eq!(pve.json["ram"], "65536");
    assert_eq!(pve.json["tags"], "ssd,eu");
    assert_eq!(pve.json["driver"], "proxmox");
    assert!(
        !pve.text.contains("secret"),
        "credentials never come back: {}",
        pve.text
    );

    let lxc = app
        .post(
            "/api/nodes/create",
            KEY,
            json!({"name": "lxc-01", "ram": 4096, "disk": 50, "processor": 4, "driver": "lxc",
                   "lxcPath": "/var/lib/vps-test/lxc-01"}),
        )
        .await;
    assert_eq!(lxc.status, StatusCode::CREATED, "{}", lxc.text);
    assert_eq!(lxc.json["address"], "127.0.0.1");

    let listed = app.get("/api/nodes", KEY).await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(listed.json.as_array().map(Vec::len), Some(2));
    assert!(!listed.text.contains("secret") && !listed.text.contains("PVEAPIToken"));

    let invalid = [
        json!({"ram": "1024", "disk": "10", "processor": "2"}),
        json!({"name": "x1", "ram": "lots", "disk": "10", "processor": "2"}),
        json!({"name": "x2", "ram": "1024", "disk": "10", "processor": "2", "driver": "vmware"}),
        json!({"name": "x3", "ram": "1024", "disk": "10", "processor": "2", "address": "h.example.com", "pveNode": "h"}),
        json!({"name": "x4", "ram": "1024", "disk": "10", "processor": "2", "driver": "lxc"}),
        json!({"name": "x5", "ram": "1024", "disk": "10", "processor": "0", "driver": "lxc", "lxcPath": "/x"}),
        json!({"name": "bad name", "ram": "1024", "disk": "10", "processor": "2", "driver": "lxc", "lxcPath": "/x"}),
        json!({"name": "x6", "ram": "1024", "disk": "10", "processor": "2", "driver": "lxc", "lxcPath": "/x", "port": "99999"}),
    ];
    for body in invalid {
        let reply = app.post("/api/nodes/create", KEY, body.clone()).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            reply.text
        );
        assert!(reply.json["error"].is_string());
    }
    let duplicate = app
        .post("/api/nodes/create", KEY, json!({"name": "lxc-01", "ram": 1024, "disk": 5, "processor": 1, "driver": "lxc", "lxcPath": "/y"}))
        .await;
    assert_eq!(duplicate.status, StatusCode::CONFLICT, "{}", duplicate.text);

    // A node with a server on it is not deleted.
    let mut client = nodes(&app).await;
    let lxc_uuid = lxc.json["id"].as_str().expect("uuid").to_owned();
    let lxc_node = client
        .get_node(ADMIN.request(pb::GetNodeRequest {
            by: Some(pb::get_node_request::By::Uuid(lxc_uuid.clone())),
        }))
        .await
        .expect("get")
        .into_inner();
    let reserve = pb::ReserveRequest {
        reservation_id: "server-1".into(),
        size: Some(pb::Capacity {
            cores: 1,
            memory_mb: 512,
            disk_gb: 5,
        }),
        node_id: lxc_node.id,
        ..Default::default()
    };
    client
        .reserve(Caller::SYSTEM.request(reserve))
        .await
        .expect("reserve");
    let refused = app
        .call(
            reqwest::Method::DELETE,
            "/api/nodes/delete",
            KEY,
            Some(json!({"nodeId": lxc_uuid})),
        )
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.text);
    assert!(
        refused.json["error"]
            .as_str()
            .is_some_and(|m| m.contains("server"))
    );
    client
        .release(Caller::SYSTEM.request(pb::ReleaseRequest {
            reservation_id: "server-1".into(),
        }))
        .await
        .expect("release");
    let deleted = app
        .call(
            reqwest::Method::DELETE,
            "/api/nodes/delete",
            KEY,
            Some(json!({"nodeId": lxc_uuid})),
        )
        .await;
    assert_eq!(
        deleted.status,
        StatusCode::CREATED,
        "Skyport documents 201: {}",
        deleted.text
    );
    let again = app
        .call(
            reqwest::Method::DELETE,
            "/api/nodes/delete",
            KEY,
            Some(json!({"nodeId": lxc_uuid})),
        )
        .await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    let missing = app
        .call(
            reqwest::Method::DELETE,
            "/api/nodes/delete",
            KEY,
            Some(json!({})),
        )
        .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        app.get("/api/nodes", KEY)
            .await
            .json
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    // The token is sealed at rest, not stored in the clear.
    if app.database_url.starts_with("sqlite://") {
        let node_db = app.database_url.replace("identity.db", "node.db");
        let path = node_db
            .trim_start_matches("sqlite://")
            .split('?')
            .next()
            .expect("path")
            .to_owned();
        let mut bytes = std::fs::read(&path).expect("node db");
        if let Ok(wal) = std::fs::read(format!("{path}-wal")) {
            bytes.extend(wal);
        }
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains("very-secret-token"),
            "the token is encrypted at rest"
        );
    }
}

async fn placement_never_oversubscribes(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut client = nodes(&app).await;
    let small = node(&mut client, "small", "fra", &["ssd"], 4096).await;
    let other = node(&mut client, "elsewhere", "ams", &[], 65536).await;

    let client = Arc::new(tokio::sync::Mutex::new(client));
    let mut set = tokio::task::JoinSet::new();
    for i in 0..20 {
        let mut client = app.nodes_client(Service::Server);
        set.spawn(async move {
            let id = format!("server-{i}");
            client
                .reserve(Caller::SYSTEM.request(pb::ReserveRequest {
                    reservation_id: id.clone(),
                    size: Some(pb::Capacity {
                        cores: 1,
                        memory_mb: 1024,
                        disk_gb: 10,
                    }),
                    location: "fra".into(),
                    tags: vec!["ssd".into()],
                    node_id: 0,
                }))
                .await
                .map(|reply| (id, reply.into_inner()))
        });
    }
    let (mut placed, mut refused) = (0, 0);
    let mut placed_ids = Vec::new();
    while let Some(result) = set.join_next().await {
        match result.expect("task") {
            Ok((id, reply)) => {
                assert_eq!(reply.node_id, small.id, "only the matching node");
                placed_ids.push(id);
                placed += 1;
            }
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                assert_eq!(
                    platform::grpc::error_reason(&status).map(|r| r.as_str_name()),
                    Some("NO_CAPACITY")
                );
                refused += 1;
            }
        }
    }
    assert_eq!(
        (placed, refused),
        (4, 16),
        "4 GB fits four 1 GB servers, never more"
    );
    let mut client = client.lock().await;
    let get = |id| {
        ADMIN.request(pb::GetNodeRequest {
            by: Some(pb::get_node_request::By::Id(id)),
        })
    };
    let reserved = client
        .get_node(get(small.id))
        .await
        .expect("get")
        .into_inner()
        .reserved
        .expect("reserved");
    assert_eq!(
        (reserved.cores, reserved.memory_mb, reserved.disk_gb),
        (4, 4096, 40)
    );

    // The same reservation id is the same reservation; releases give capacity back once.
    let repeat = pb::ReserveRequest {
        reservation_id: placed_ids[0].clone(),
        size: Some(pb::Capacity {
            cores: 1,
            memory_mb: 1024,
            disk_gb: 10,
        }),
        ..Default::default()
    };
    let held = client
        .reserve(Caller::SYSTEM.request(repeat.clone()))
        .await
        .expect("a placed id reserves again")
        .into_inner();
    assert_eq!(
        held.node_id, small.id,
        "the existing reservation, though unconstrained now"
    );
    for i in 0..20 {
        client
            .release(Caller::SYSTEM.request(pb::ReleaseRequest {
                reservation_id: format!("server-{i}"),
            }))
            .await
            .expect("release");
        client
            .release(Caller::SYSTEM.request(pb::ReleaseRequest {
                reservation_id: format!("server-{i}"),
            }))
            .await
            .expect("release twice");
    }
    let reserved = client
        .get_node(get(small.id))
        .await
        .expect("get")
        .into_inner()
        .reserved
        .expect("reserved");
    assert_eq!(
        (reserved.cores, reserved.memory_mb, reserved.disk_gb),
        (0, 0, 0)
    );

    // Nodes in maintenance take nothing; without constraints the roomier node wins.
    client
        .set_node_state(ADMIN.request(pb::SetNodeStateRequest {
            id: other.id,
            state: pb::NodeState::Maintenance.into(),
        }))
        .await
        .expect("maintenance");
    let after = client
        .get_node(get(other.id))
        .await
        .expect("get")
        .into_inner();
    assert_eq!(
        after.state,
        i32::from(pb::NodeState::Maintenance),
        "{after:?}"
    );
    let placed = client
        .reserve(Caller::SYSTEM.request(pb::ReserveRequest {
            reservation_id: "any".into(),
            size: Some(pb::Capacity {
                cores: 1,
                memory_mb: 2048,
                disk_gb: 10,
            }),
            ..Default::default()
        }))
        .await
        .expect("placed")
        .into_inner();
    assert_eq!(placed.node_id, small.id);
    let too_big = client
        .reserve(Caller::SYSTEM.request(pb::ReserveRequest {
            reservation_id: "huge".into(),
            size: Some(pb::Capacity {
                cores: 1,
                memory_mb: 8192,
                disk_gb: 10,
            }),
            ..Default::default()
        }))
        .await
        .expect_err("no capacity");
    assert_eq!(too_big.code(), Code::ResourceExhausted);
    let invalid = client
        .reserve(Caller::SYSTEM.request(pb::ReserveRequest {
            reservation_id: "x".into(),
            ..Default::default()
        }))
        .await
        .expect_err("invalid");
    assert_eq!(invalid.code(), Code::InvalidArgument);
}

async fn addresses_are_never_handed_out_twice(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut client = nodes(&app).await;
    let host = node(&mut client, "host", "fra", &[], 8192).await;
    let pool = client
        .create_pool(ADMIN.request(pb::CreatePoolRequest {
            name: "fra-v4".into(),
            location: "fra".into(),
            range: "192.0.2.1-192.0.2.10".into(),
            gateway: "192.0.2.1/24".into(),
            ..Default::default()
        }))
        .await
        .expect("pool")
        .into_inner();
    assert_eq!((pool.size, pool.netmask.as_str()), (10, "255.255.255.0"));
    let v6 = client
        .create_pool(ADMIN.request(pb::CreatePoolRequest {
            name: "host-v6".into(),
            node_id: host.id,
            range: "2001:db8:1::/64".into(),
            gateway: "2001:db8:1::1".into(),
            ..Default::default()
        }))
        .await
        .expect("v6 pool")
        .into_inner();
    assert_eq!(v6.family, 6);
    let overlapping = client
        .create_pool(ADMIN.request(pb::CreatePoolRequest {
            name: "fra-v4-again".into(),
            node_id: host.id,
            range: "192.0.2.8-192.0.2.20".into(),
            gateway: "192.0.2.1/24".into(),
            ..Default::default()
        }))
        .await
        .expect_err("overlaps fra-v4");
    assert_eq!(
        overlapping.code(),
        Code::FailedPrecondition,
        "{overlapping:?}"
    );

    let mut set = tokio::task::JoinSet::new();
    for i in 0..15 {
        let mut client = app.nodes_client(Service::Server);
        let node_id = host.id;
        set.spawn(async move {
            client
                .allocate_address(Caller::SYSTEM.request(pb::AllocateAddressRequest {
                    owner: format!("server-{i}"),
                    family: 4,
                    node_id,
                }))
                .await
        });
    }
    let mut addresses = HashSet::new();
    let mut exhausted = 0;
    while let Some(result) = set.join_next().await {
        match result.expect("task") {
            Ok(address) => {
                let address = address.into_inner();
                assert_ne!(
                    address.address, "192.0.2.1",
                    "the gateway is never handed out"
                );
                assert!(
                    addresses.insert(address.address.clone()),
                    "{} handed out twice",
                    address.address
                );
            }
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                exhausted += 1;
            }
        }
    }
    assert_eq!((addresses.len(), exhausted), (9, 6));

    // The same owner keeps its address; a released one is handed out again.
    let again = |owner: &str| pb::AllocateAddressRequest {
        owner: owner.into(),
        family: 4,
        node_id: host.id,
    };
    let held = client
        .allocate_address(Caller::SYSTEM.request(again("server-0")))
        .await;
    let released_address = match held {
        Ok(a) => {
            let a = a.into_inner();
            assert!(addresses.contains(&a.address));
            a.address
        }
        Err(_) => {
            // server-0 lost the race for the last address; use a winner instead.
            addresses.iter().next().cloned().expect("some address")
        }
    };
    let owner_of = client
        .list_pools(ADMIN.request(pb::ListPoolsRequest {}))
        .await
        .expect("pools")
        .into_inner();
    assert_eq!(
        owner_of
            .pools
            .iter()
            .find(|p| p.name == "fra-v4")
            .map(|p| p.allocated),
        Some(9)
    );
    for i in 0..15 {
        client
            .release_address(Caller::SYSTEM.request(pb::ReleaseAddressRequest {
                owner: format!("server-{i}"),
            }))
            .await
            .expect("release");
    }
    let fresh = client
        .allocate_address(Caller::SYSTEM.request(again("newcomer")))
        .await
        .expect("allocate")
        .into_inner();
    assert_eq!(fresh.address, "192.0.2.2", "the lowest free address again");
    assert!(addresses.contains(&released_address));

    let six = client
        .allocate_address(Caller::SYSTEM.request(pb::AllocateAddressRequest {
            owner: "newcomer".into(),
            family: 6,
            node_id: host.id,
        }))
        .await
        .expect("v6")
        .into_inner();
    assert_eq!(six.address, "2001:db8:1::2");
    assert_eq!(six.prefix_len, 64);

    let bad = client
        .create_pool(ADMIN.request(pb::CreatePoolRequest {
            name: "bad".into(),
            location: "fra".into(),
            range: "10.0.0.0/4".into(),
            gateway: "10.0.0.1".into(),
            ..Default::default()
        }))
        .await
        .expect_err("invalid");
    assert_eq!(bad.code(), Code::InvalidArgument);
    let user = Caller::user(2);
    let forbidden = client
        .create_pool(user.request(pb::CreatePoolRequest {
            name: "mine".into(),
            location: "fra".into(),
            range: "10.0.0.0/24".into(),
            gateway: "10.0.0.1".into(),
            ..Default::default()
        }))
        .await
        .expect_err("users cannot");
    assert_eq!(forbidden.code(), Code::PermissionDenied);
}
