//! List RPCs page: every row exactly once across pages in id order, a batch of ids returns
//! just those rows, and a page too long or a token no service gave is refused.

use platform::auth::Service;
use platform::grpc::Caller;
use proto::identity::v1 as idpb;
use proto::node::v1 as nodepb;
use tests::{ADMIN_ID, Backend, TestApp};
use tonic::Code;

const ADMIN: Caller = Caller::admin(ADMIN_ID);

#[tokio::test]
async fn users_and_nodes_page_and_batch() {
    let app = TestApp::start(Backend::Sqlite).await;
    for name in ["pia", "quin", "rue", "sol", "tam"] {
        app.user(name).await;
    }
    let mut identity = app.identity_client(Service::Gateway);
    let mut ids = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let reply = identity
            .list_users(ADMIN.request(idpb::ListUsersRequest {
                limit: 2,
                page_token: token.clone(),
                ids: Vec::new(),
            }))
            .await
            .expect("a page")
            .into_inner();
        assert!(reply.users.len() <= 2, "a page holds at most its limit");
        ids.extend(reply.users.iter().map(|u| u.id));
        pages += 1;
        if reply.next_page_token.is_empty() {
            break;
        }
        token = reply.next_page_token;
    }
    assert_eq!(ids.len(), 6, "the administrator and five users: {ids:?}");
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "in id order, none twice"
    );
    assert_eq!(pages, 3);

    let batch = identity
        .list_users(ADMIN.request(idpb::ListUsersRequest {
            ids: vec![ids[4], ids[1], 999_999],
            ..Default::default()
        }))
        .await
        .expect("a batch")
        .into_inner();
    let mut got: Vec<i64> = batch.users.iter().map(|u| u.id).collect();
    got.sort_unstable();
    assert_eq!(got, [ids[1], ids[4]], "just those that exist");

    let too_long = identity
        .list_users(ADMIN.request(idpb::ListUsersRequest {
            limit: 1001,
            ..Default::default()
        }))
        .await
        .expect_err("too long");
    assert_eq!(too_long.code(), Code::InvalidArgument);
    let forged = identity
        .list_users(ADMIN.request(idpb::ListUsersRequest {
            page_token: "not-a-token".to_owned(),
            ..Default::default()
        }))
        .await
        .expect_err("forged");
    assert_eq!(forged.code(), Code::InvalidArgument);

    let mut nodes = app.nodes_client(Service::Gateway);
    for name in ["n1", "n2", "n3"] {
        nodes
            .create_node(ADMIN.request(nodepb::CreateNodeRequest {
                name: name.to_owned(),
                driver: "lxc".to_owned(),
                capacity: Some(nodepb::Capacity {
                    cores: 2,
                    memory_mb: 2048,
                    disk_gb: 20,
                }),
                settings: [("path".to_owned(), format!("/var/tmp/vps-paging-{name}"))].into(),
                ..Default::default()
            }))
            .await
            .expect("node");
    }
    let first = nodes
        .list_nodes(ADMIN.request(nodepb::ListNodesRequest {
            limit: 2,
            ..Default::default()
        }))
        .await
        .expect("first page")
        .into_inner();
    assert_eq!(first.nodes.len(), 2);
    let rest = nodes
        .list_nodes(ADMIN.request(nodepb::ListNodesRequest {
            limit: 2,
            page_token: first.next_page_token,
            ids: Vec::new(),
        }))
        .await
        .expect("second page")
        .into_inner();
    assert_eq!(rest.nodes.len(), 1);
    assert!(rest.next_page_token.is_empty(), "the last page says so");
    assert!(first.nodes[1].id < rest.nodes[0].id);
}
