//! Console sessions have limits: so many per user and per server, closed when idle, when a
//! frame is too large, when their server stops, when their user logs out; a ticket goes
//! only to the user it was issued to when the connection says who it is. Through the
//! gateway's WebSocket, on a real LXC node.

use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use platform::auth::Service;
use proto::node::v1 as pb;
use tests::fleet::{ContainerDir, lxc_node};
use tests::{Backend, Options, TestApp};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens the console WebSocket with `ticket`, optionally with an access token: the socket,
/// or the HTTP status of the refusal.
async fn connect(app: &TestApp, ticket: &str, token: Option<&str>) -> Result<Socket, u16> {
    let url = format!(
        "{}/api/console/ws?ticket={ticket}",
        app.base.replacen("http://", "ws://", 1)
    );
    let mut request = url.into_client_request().expect("request");
    if let Some(token) = token {
        request.headers_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("header"),
        );
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((socket, _)) => Ok(socket),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            Err(response.status().as_u16())
        }
        Err(other) => panic!("unexpected error {other}"),
    }
}

/// Whether the server ends the socket within `limit` (reading whatever it prints).
async fn closes_within(socket: &mut Socket, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, socket.next()).await {
            Err(_) => return false,
            Ok(None | Some(Err(_) | Ok(Message::Close(_)))) => return true,
            Ok(Some(Ok(_))) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_sessions_are_capped_timed_and_closed() {
    let mut options = Options::default();
    options.node.console = node_svc::ConsoleLimits {
        max_per_user: 2,
        max_per_server: 1,
        idle_timeout_secs: 4,
        max_lifetime_secs: 60,
        max_frame_bytes: 1024,
    };
    let app = TestApp::start_with(Backend::Sqlite, options).await;
    let dir = ContainerDir::new();
    let node = lxc_node(&app, &dir, 4096).await;
    let (ann, ann_jwt) = app.user("ann").await;
    let (_, bob_jwt) = app.user("bob").await;
    let mut guests = app.guests_client(Service::Server);
    let consoles = app.consoles_client(Service::Server);
    let guest = || pb::GuestRef {
        node_id: node,
        name: "vps-console".into(),
    };
    guests
        .create_guest(pb::CreateGuestRequest {
            guest: Some(guest()),
            template: "busybox".into(),
            size: Some(pb::Capacity {
                cores: 1,
                memory_mb: 256,
                disk_gb: 1,
            }),
            ..Default::default()
        })
        .await
        .expect("create");
    guests.start_guest(guest()).await.expect("start");
    let ticket = || {
        let mut consoles = consoles.clone();
        let guest = guest();
        async move {
            consoles
                .issue_ticket(pb::IssueConsoleTicketRequest {
                    guest: Some(guest),
                    user_id: ann,
                })
                .await
                .expect("ticket")
                .into_inner()
                .ticket
        }
    };

    // One session per server: a second is refused while the first is open.
    let mut first = connect(&app, &ticket().await, None).await.expect("open");
    assert_eq!(
        connect(&app, &ticket().await, None).await.err(),
        Some(429),
        "a second console on the same server"
    );
    // Left alone, it closes after the idle time.
    assert!(
        closes_within(&mut first, Duration::from_secs(10)).await,
        "an idle console closes"
    );

    // A frame larger than allowed closes it.
    let mut second = connect(&app, &ticket().await, None).await.expect("open");
    second
        .send(Message::binary(vec![b'x'; 4096]))
        .await
        .expect("send");
    assert!(closes_within(&mut second, Duration::from_secs(2)).await);

    // Someone else's ticket is refused when the connection says who it is.
    assert_eq!(
        connect(&app, &ticket().await, Some(&bob_jwt)).await.err(),
        Some(401)
    );
    // Logging out closes the user's consoles.
    let mut third = connect(&app, &ticket().await, Some(&ann_jwt))
        .await
        .expect("her own ticket");
    let logout = app
        .post(
            "/api/auth/logout",
            tests::Cred::Bearer(&ann_jwt),
            serde_json::json!({}),
        )
        .await;
    assert!(logout.status.is_success(), "{}", logout.text);
    // Well within the idle time: it was the logout.
    assert!(closes_within(&mut third, Duration::from_secs(2)).await);

    // A reused refresh token revokes its session: the session's consoles close too.
    let session = app.login("ann", tests::USER_PASSWORD).await;
    let refresh = session["refreshToken"]
        .as_str()
        .expect("refresh")
        .to_owned();
    let mut fifth = connect(&app, &ticket().await, None).await.expect("open");
    let rotate = |token: String| {
        let app = &app;
        async move {
            app.post(
                "/api/auth/refresh",
                tests::Cred::None,
                serde_json::json!({ "refreshToken": token }),
            )
            .await
        }
    };
    assert!(rotate(refresh.clone()).await.status.is_success());
    assert_eq!(
        rotate(refresh).await.status,
        reqwest::StatusCode::UNAUTHORIZED,
        "reuse"
    );
    assert!(closes_within(&mut fifth, Duration::from_secs(2)).await);

    // Stopping the server closes its consoles.
    let mut fourth = connect(&app, &ticket().await, None).await.expect("open");
    fourth
        .send(Message::text("echo still-here\r"))
        .await
        .expect("type");
    guests
        .stop_guest(pb::StopGuestRequest {
            guest: Some(guest()),
            grace_secs: 1,
        })
        .await
        .expect("stop");
    assert!(closes_within(&mut fourth, Duration::from_secs(2)).await);
}
