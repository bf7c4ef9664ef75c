//! The dashboard's side of the gateway: its built files served at `/` with their policy and
//! cache headers, and browser sessions whose refresh token lives in an `HttpOnly` cookie
//! guarded by a double-submit token.

use reqwest::header::{HeaderMap, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tests::{Backend, Options, TestApp, USER_PASSWORD, on_every_backend};

on_every_backend!(
    browser_sessions_keep_the_refresh_token_in_a_cookie,
    logging_out_everywhere_ends_every_session,
    catalog_adds_with_if_none_match_never_replace,
);

/// A built dashboard: an index page and one hashed script, with its gzip beside it.
fn built_dashboard() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("assets")).expect("assets");
    std::fs::write(
        dir.path().join("index.html"),
        "<!doctype html><title>VPS</title><script type=module src=/assets/app-3f9a1c.js></script>",
    )
    .expect("index");
    let script = "console.log('dashboard');".repeat(40);
    std::fs::write(dir.path().join("assets/app-3f9a1c.js"), &script).expect("script");
    // As the build leaves it: the gzip beside the original.
    let zipped = std::process::Command::new("gzip")
        .args(["-k", "-9"])
        .arg(dir.path().join("assets/app-3f9a1c.js"))
        .status()
        .expect("gzip");
    assert!(zipped.success());
    dir
}

async fn fetch(
    url: &str,
    method: Method,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, Vec<u8>) {
    send(reqwest::Client::new().request(method, url), headers).await
}

/// Sends `request` with `headers` added; the answer's status, headers and body.
async fn send(
    mut request: reqwest::RequestBuilder,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, Vec<u8>) {
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("the gateway answers");
    let status = response.status();
    let headers = response.headers().clone();
    (
        status,
        headers,
        response.bytes().await.expect("body").to_vec(),
    )
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

#[tokio::test]
async fn the_dashboard_is_served_with_its_policy() {
    let dist = built_dashboard();
    let mut options = Options::default();
    options.gateway.web_dir = Some(dist.path().to_owned());
    let app = TestApp::start_with(Backend::Sqlite, options).await;

    // The page and every route of the application: the index, never cached, under the policy.
    for path in ["/", "/servers/12", "/account/tokens?tab=cvm"] {
        let (status, headers, body) = fetch(&app.url(path), Method::GET, &[]).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(
            String::from_utf8_lossy(&body).contains("<title>VPS</title>"),
            "{path}"
        );
        assert_eq!(header(&headers, "cache-control"), "no-cache", "{path}");
        let policy = header(&headers, "content-security-policy");
        assert!(policy.contains("script-src 'self'"), "{policy}");
        assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
        // Scripts: this origin only, nothing inline, no eval. (Inline styles are allowed for
        // the console's terminal, which writes its own style elements.)
        let scripts = policy
            .split(';')
            .map(str::trim)
            .find(|d| d.starts_with("script-src"))
            .expect("a script-src directive");
        assert_eq!(scripts, "script-src 'self'", "{policy}");
        assert!(!policy.contains("unsafe-eval"), "{policy}");
        assert!(policy.contains("object-src 'none'"), "{policy}");
        assert_eq!(header(&headers, "x-content-type-options"), "nosniff");
    }
    // Hashed assets are cached for good, and sent compressed to those who accept it.
    let asset = app.url("/assets/app-3f9a1c.js");
    let (status, headers, body) = fetch(&asset, Method::GET, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        header(&headers, "cache-control"),
        "public, max-age=31536000, immutable"
    );
    assert!(header(&headers, "content-type").contains("javascript"));
    assert_eq!(body.len(), "console.log('dashboard');".len() * 40);
    let (status, headers, zipped) =
        fetch(&asset, Method::GET, &[("accept-encoding", "gzip")]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&headers, "content-encoding"), "gzip");
    assert!(zipped.len() < body.len());
    // A missing asset is missing, not the page; the API keeps its own 404s and methods.
    let (status, headers, _) = fetch(&app.url("/assets/app-000000.js"), Method::GET, &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_ne!(
        header(&headers, "cache-control"),
        "public, max-age=31536000, immutable"
    );
    let (status, _, body) = fetch(&app.url("/api/no-such-route"), Method::GET, &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let error: Value = serde_json::from_slice(&body).expect("JSON error");
    assert!(error["error"].is_string(), "{error}");
    let (status, _, body) = fetch(&app.url("/servers/12"), Method::POST, &[]).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "only GET and HEAD reach the files"
    );
    assert!(serde_json::from_slice::<Value>(&body).is_ok());
    let (status, _, body) = fetch(&app.url("/health"), Method::GET, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&body).contains("ok"));
    // Nothing outside the directory is reachable.
    for path in [
        "/../Cargo.toml",
        "/assets/../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
    ] {
        let (_, _, body) = fetch(&app.url(path), Method::GET, &[]).await;
        let body = String::from_utf8_lossy(&body);
        assert!(
            !body.contains("root:") && !body.contains("[package]"),
            "{path}: {body}"
        );
    }

    // Without `web_dir`, `/` is the API's 404.
    let bare = TestApp::start(Backend::Sqlite).await;
    let (status, _, _) = fetch(&bare.url("/"), Method::GET, &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// The cookies a response sets, as `name -> whole Set-Cookie line`.
fn set_cookies(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|line| {
            let name = line.split('=').next().unwrap_or_default().to_owned();
            (name, line.to_owned())
        })
        .collect()
}

fn cookie_value(headers: &HeaderMap, name: &str) -> String {
    set_cookies(headers)
        .into_iter()
        .find(|(n, _)| n == name)
        .and_then(|(_, line)| {
            line.split(';')
                .next()
                .and_then(|pair| pair.split_once('='))
                .map(|(_, v)| v.to_owned())
        })
        .unwrap_or_else(|| panic!("no {name} cookie set"))
}

/// Logs in from a "browser": `POST /api/auth/session`.
async fn open_session(
    app: &TestApp,
    password: &str,
    extra: &[(&str, &str)],
) -> (StatusCode, HeaderMap, String) {
    let request = reqwest::Client::new()
        .post(app.url("/api/auth/session"))
        .json(&json!({"login": "alice", "password": password}));
    let (status, headers, body) = send(request, extra).await;
    (status, headers, String::from_utf8(body).expect("text"))
}

/// `POST /api/auth/session/refresh` with `cookies` and `csrf` in `X-CSRF-Token`.
async fn refresh_with(
    app: &TestApp,
    cookies: &str,
    csrf: &str,
) -> (StatusCode, HeaderMap, Vec<u8>) {
    fetch(
        &app.url("/api/auth/session/refresh"),
        Method::POST,
        &[("cookie", cookies), ("x-csrf-token", csrf)],
    )
    .await
}

async fn browser_sessions_keep_the_refresh_token_in_a_cookie(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.user("alice").await;
    let open =
        |extra: &'static [(&'static str, &'static str)]| open_session(&app, USER_PASSWORD, extra);

    // A wrong password sets nothing.
    let (status, headers, text) = open_session(&app, "not her password", &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{text}");
    assert!(set_cookies(&headers).is_empty());

    let (status, headers, text) = open(&[]).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let body: Value = serde_json::from_str(&text).expect("JSON");
    assert!(
        body["refreshToken"].is_null() && !text.contains("rt_"),
        "{text}"
    );
    let access = body["accessToken"]
        .as_str()
        .expect("access token")
        .to_owned();
    let csrf = body["csrfToken"].as_str().expect("csrf token").to_owned();
    assert_eq!(body["user"]["username"], "alice");
    let cookies = set_cookies(&headers);
    let refresh_line = &cookies
        .iter()
        .find(|(n, _)| n == "vps_refresh")
        .expect("refresh")
        .1;
    for part in ["HttpOnly", "SameSite=Strict", "Path=/api/auth/session"] {
        assert!(refresh_line.contains(part), "{refresh_line}");
    }
    assert!(
        !refresh_line.contains("Secure"),
        "plain HTTP: {refresh_line}"
    );
    let csrf_line = &cookies
        .iter()
        .find(|(n, _)| n == "vps_csrf")
        .expect("csrf")
        .1;
    assert!(!csrf_line.contains("HttpOnly") && csrf_line.contains("SameSite=Strict"));
    assert_eq!(cookie_value(&headers, "vps_csrf"), csrf);
    let refresh = cookie_value(&headers, "vps_refresh");
    assert!(refresh.starts_with("rt_"));

    // Behind a TLS proxy both cookies are Secure.
    let (status, headers, _) = open(&[("x-forwarded-proto", "https")]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        set_cookies(&headers)
            .iter()
            .all(|(_, line)| line.contains("; Secure"))
    );

    let me = app.get("/api/auth/me", tests::Cred::Bearer(&access)).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);

    // Refreshing needs the cookie and the header that matches the CSRF cookie.
    let refresh_url = app.url("/api/auth/session/refresh");
    let both = format!("vps_refresh={refresh}; vps_csrf={csrf}");
    for headers in [
        vec![("cookie", both.as_str())],
        vec![("cookie", both.as_str()), ("x-csrf-token", "forged")],
        vec![("x-csrf-token", csrf.as_str())],
    ] {
        let (status, _, body) = fetch(&refresh_url, Method::POST, &headers).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{headers:?}");
        let error: Value = serde_json::from_slice(&body).expect("JSON error");
        assert!(
            error["error"].as_str().is_some_and(|e| e.contains("CSRF")),
            "{error}"
        );
    }
    let only_csrf = format!("vps_csrf={csrf}");
    let (status, _, _) = refresh_with(&app, &only_csrf, &csrf).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "no refresh cookie");

    let (status, headers, body) = refresh_with(&app, &both, &csrf).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let rotated: Value = serde_json::from_slice(&body).expect("JSON");
    assert!(rotated["refreshToken"].is_null());
    let rotated_access = rotated["accessToken"].as_str().expect("access");
    let me = app
        .get("/api/auth/me", tests::Cred::Bearer(rotated_access))
        .await;
    assert_eq!(me.status, StatusCode::OK, "the rotated access token works");
    let csrf2 = rotated["csrfToken"].as_str().expect("csrf").to_owned();
    let refresh2 = cookie_value(&headers, "vps_refresh");
    assert_ne!(refresh2, refresh, "the refresh token rotates");
    assert_ne!(csrf2, csrf, "so does the CSRF token");

    // The old cookie, replayed, is refused and forgotten.
    let (status, headers, _) = refresh_with(&app, &both, &csrf).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        set_cookies(&headers)
            .iter()
            .any(|(n, line)| n == "vps_refresh" && line.contains("Max-Age=0")),
        "the refused cookie is cleared"
    );

    // A fresh session, closed from the browser: CSRF needed, cookies cleared, tokens dead.
    let (_, headers, text) = open(&[]).await;
    let session: Value = serde_json::from_str(&text).expect("JSON");
    let access = session["accessToken"].as_str().expect("access").to_owned();
    let csrf = session["csrfToken"].as_str().expect("csrf").to_owned();
    let refresh = cookie_value(&headers, "vps_refresh");
    let both = format!("vps_refresh={refresh}; vps_csrf={csrf}");
    let bearer = format!("Bearer {access}");
    let session_url = app.url("/api/auth/session");
    let (status, _, _) = fetch(
        &session_url,
        Method::DELETE,
        &[("cookie", &both), ("authorization", &bearer)],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = fetch(
        &session_url,
        Method::DELETE,
        &[("cookie", &both), ("x-csrf-token", &csrf)],
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the access token is needed too"
    );
    let (status, headers, _) = fetch(
        &session_url,
        Method::DELETE,
        &[
            ("cookie", &both),
            ("x-csrf-token", &csrf),
            ("authorization", &bearer),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        set_cookies(&headers)
            .iter()
            .filter(|(_, line)| line.contains("Max-Age=0"))
            .count()
            == 2,
        "both cookies are cleared"
    );
    let (status, _, _) = refresh_with(&app, &both, &csrf).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the session is over");
    let me = app.get("/api/auth/me", tests::Cred::Bearer(&access)).await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
}

/// The dashboard's API client is typed from `web/openapi.json`: it must be the document the
/// gateway serves. `UPDATE_OPENAPI=1` writes it afresh.
#[tokio::test]
async fn the_dashboards_copy_of_the_api_document_is_current() {
    let app = TestApp::start(Backend::Sqlite).await;
    let served = app.get("/api/openapi.json", tests::Cred::None).await.json;
    let mut pretty = serde_json::to_string_pretty(&served).expect("JSON");
    pretty.push('\n');
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web/openapi.json");
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &pretty).expect("write web/openapi.json");
    }
    let kept = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        kept == pretty,
        "web/openapi.json differs from the gateway's document: run \
         `UPDATE_OPENAPI=1 cargo test -p tests --test dashboard` and rebuild the dashboard"
    );
}

/// Generated clients name a function per operation: an id used twice would make one of
/// them unreachable (each dialect has its own `list_servers`).
#[tokio::test]
async fn every_operation_has_its_own_id() {
    let app = TestApp::start(Backend::Sqlite).await;
    let doc = app.get("/api/openapi.json", tests::Cred::None).await.json;
    let mut seen = std::collections::HashMap::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            let Some(id) = op.get("operationId").and_then(|v| v.as_str()) else {
                continue;
            };
            if let Some(before) = seen.insert(id.to_owned(), format!("{method} {path}")) {
                panic!("operationId {id} names both {before} and {method} {path}");
            }
        }
    }
    assert_eq!(seen["skyport_list_nodes"], "get /api/nodes");
    assert_eq!(seen["list_servers"], "get /api/server");
}

/// "Log out everywhere": one device ends every session of its user; another user's stays.
async fn logging_out_everywhere_ends_every_session(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.user("alice").await;
    let (_, bob_jwt) = app.user("bob").await;
    let mut devices = Vec::new();
    for _ in 0..2 {
        let (status, headers, text) = open_session(&app, USER_PASSWORD, &[]).await;
        assert_eq!(status, StatusCode::OK, "{text}");
        let body: Value = serde_json::from_str(&text).expect("JSON");
        let access = body["accessToken"].as_str().expect("access").to_owned();
        let csrf = body["csrfToken"].as_str().expect("csrf").to_owned();
        let cookies = format!(
            "vps_refresh={}; vps_csrf={csrf}",
            cookie_value(&headers, "vps_refresh")
        );
        devices.push((access, csrf, cookies));
    }
    let (access, csrf, cookies) = &devices[0];
    let bearer = format!("Bearer {access}");
    let headers = [
        ("cookie", cookies.as_str()),
        ("x-csrf-token", csrf.as_str()),
        ("authorization", bearer.as_str()),
    ];
    let url = |query: &str| app.url(&format!("/api/auth/session{query}"));
    let (status, _, body) = fetch(&url("?everywhere=perhaps"), Method::DELETE, &headers).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let error: Value = serde_json::from_slice(&body).expect("JSON error");
    assert!(
        error["error"]
            .as_str()
            .is_some_and(|e| e.contains("everywhere")),
        "{error}"
    );
    for (access, _, _) in &devices {
        let me = app.get("/api/auth/me", tests::Cred::Bearer(access)).await;
        assert_eq!(me.status, StatusCode::OK, "a refused request ends nothing");
    }

    let (status, _, _) = fetch(&url("?everywhere=true"), Method::DELETE, &headers).await;
    assert_eq!(status, StatusCode::OK);
    for (access, csrf, cookies) in &devices {
        let me = app.get("/api/auth/me", tests::Cred::Bearer(access)).await;
        assert_eq!(
            me.status,
            StatusCode::UNAUTHORIZED,
            "every device is logged out"
        );
        let (status, _, _) = refresh_with(&app, cookies, csrf).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "no device can refresh");
    }
    let me = app.get("/api/auth/me", tests::Cred::Bearer(&bob_jwt)).await;
    assert_eq!(me.status, StatusCode::OK, "another user's session stays");
}

/// What the operators' pages read: every account, every server with its node, the nodes
/// with capacity, reservations and server counts, and the address pools. Users get 403.
#[tokio::test]
async fn operators_read_every_user_server_node_and_pool() {
    use tests::fleet::{ContainerDir, create_server, grant, lxc_node, pool};
    let app = TestApp::start(Backend::Sqlite).await;
    let dir = ContainerDir::new();
    let node = lxc_node(&app, &dir, 4096).await;
    pool(&app, node, "10.0.3.100-10.0.3.120", "10.0.3.1/24").await;
    let admin = app.admin_token().await;
    let (alice, jwt) = app.user("alice").await;
    grant(&app, &admin, alice, 100).await;
    let server = create_server(&app, &jwt, "ops-1").await;

    for path in [
        "/api/admin/users",
        "/api/admin/servers",
        "/api/admin/nodes",
        "/api/admin/pools",
    ] {
        let refused = app.get(path, tests::Cred::Bearer(&jwt)).await;
        assert_eq!(
            refused.status,
            StatusCode::FORBIDDEN,
            "{path}: {}",
            refused.text
        );
    }

    let users = app
        .get("/api/admin/users", tests::Cred::Bearer(&admin))
        .await;
    assert_eq!(users.status, StatusCode::OK, "{}", users.text);
    let alice_row = users
        .json
        .as_array()
        .expect("users")
        .iter()
        .find(|u| u["username"] == "alice")
        .cloned()
        .expect("alice is listed");
    assert_eq!(alice_row["id"], alice);
    assert_eq!(alice_row["role"], "user");
    assert!(
        !users.text.contains("password") && !users.text.contains("$argon2"),
        "{}",
        users.text
    );

    let servers = app
        .get("/api/admin/servers", tests::Cred::Bearer(&admin))
        .await;
    assert_eq!(servers.status, StatusCode::OK, "{}", servers.text);
    let row = &servers
        .json
        .as_array()
        .expect("servers")
        .iter()
        .find(|s| s["id"] == server)
        .cloned()
        .expect("alice's server is listed");
    assert_eq!(row["userId"], alice);
    assert_eq!(row["nodeId"], node);
    assert_eq!(row["status"], "running");
    assert!(row["rootPassword"].is_null());
    // A user's own listing does not name nodes.
    let own = app.get("/api/server", tests::Cred::Bearer(&jwt)).await;
    assert!(own.json[0].get("nodeId").is_none(), "{}", own.text);
    assert!(
        own.json[0]["cores"].as_u64().is_some_and(|c| c > 0),
        "{}",
        own.text
    );
    assert!(own.json[0]["traffic"]["limit"].is_u64(), "{}", own.text);

    let nodes = app
        .get("/api/admin/nodes", tests::Cred::Bearer(&admin))
        .await;
    assert_eq!(nodes.status, StatusCode::OK, "{}", nodes.text);
    let n = nodes
        .json
        .as_array()
        .expect("nodes")
        .iter()
        .find(|n| n["id"] == node)
        .cloned()
        .expect("the node is listed");
    assert_eq!(n["driver"], "lxc");
    assert_eq!(n["servers"], 1);
    assert_eq!(n["capacity"]["memory"], 4096);
    assert_eq!(n["reserved"]["cores"], row["cores"]);
    assert_eq!(n["overcommit"]["cpu"], 4.0);
    assert!(
        !nodes.text.contains("credential") && !nodes.text.contains("token"),
        "{}",
        nodes.text
    );

    let pools = app
        .get("/api/admin/pools", tests::Cred::Bearer(&admin))
        .await;
    assert_eq!(pools.status, StatusCode::OK, "{}", pools.text);
    let p = &pools.json[0];
    assert_eq!(p["nodeId"], node);
    assert_eq!(p["size"], 21);
    assert_eq!(
        p["allocated"], 1,
        "the server holds one address: {}",
        pools.text
    );
}

/// `If-None-Match: *` on a catalog PUT adds only: two operators adding the same next id do not
/// overwrite each other (the second gets 412 and the first entry stays); without it a PUT
/// replaces as before.
async fn catalog_adds_with_if_none_match_never_replace(backend: Backend) {
    let app = TestApp::start(backend).await;
    let admin = app.admin_token().await;
    let put = |path: &str, body: Value, if_none_match: Option<&str>| {
        let mut request = app.http.put(app.url(path)).bearer_auth(&admin).json(&body);
        if let Some(value) = if_none_match {
            request = request.header("If-None-Match", value);
        }
        send(request, &[])
    };
    let plan =
        |name: &str| json!({"name": name, "vcpus": 1, "memory": 512, "disk": 5, "price": 700});
    let image =
        |name: &str| json!({"name": name, "type": "linux", "templates": {"lxc": "busybox"}});
    let location = |name: &str| json!({"name": name});
    for (path, kind) in [
        ("/api/admin/plans/90", "plan"),
        ("/api/admin/images/90", "image"),
        ("/api/admin/locations/x-new", "location"),
    ] {
        let body = |name: &str| match kind {
            "plan" => plan(name),
            "image" => image(name),
            _ => location(name),
        };
        let (first, second) = (format!("{kind}-first"), format!("{kind}-second"));
        let (status, _, reply) = put(path, body(&first), Some("*")).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{path}: {}",
            String::from_utf8_lossy(&reply)
        );
        let (status, _, reply) = put(path, body(&second), Some(" * ")).await;
        assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{path}");
        let error: Value = serde_json::from_slice(&reply).expect("json");
        assert!(
            error["error"]
                .as_str()
                .is_some_and(|e| e.contains("already exists")),
            "{path}: {error}"
        );
        let (status, _, reply) = put(path, body(&second), Some("\"v1\"")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        let error: Value = serde_json::from_slice(&reply).expect("json");
        assert!(tests::error_shape_ok(path, &error), "{path}: {error}");
        let catalog = app.get("/api/catalog", tests::Cred::Bearer(&admin)).await;
        assert_eq!(catalog.status, StatusCode::OK, "{}", catalog.text);
        assert!(
            catalog.text.contains(&first) && !catalog.text.contains(&second),
            "{path}: the first add stays: {}",
            catalog.text
        );
        // Without the header a PUT replaces, as before.
        let (status, _, _) = put(path, body(&second), None).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        let catalog = app.get("/api/catalog", tests::Cred::Bearer(&admin)).await;
        assert!(catalog.text.contains(&second), "{path}: {}", catalog.text);
    }
    // A user may not add, with the header or without.
    let (_, jwt) = app.user("cat").await;
    let (status, _, _) = send(
        app.http
            .put(app.url("/api/admin/plans/91"))
            .bearer_auth(&jwt)
            .json(&plan("mine")),
        &[("If-None-Match", "*")],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}
