//! The OpenAPI document against the handlers, operation by operation, as an administrator of
//! each dialect: a malformed numeric id is a 400 the document lists; a body of the wrong
//! JSON type, a body without a required field and a body that breaks a stated constraint
//! (a range, a length, a pattern, a choice) are refused with a 400 or 422 the document
//! lists, in the dialect's error shape, and so is a query parameter that breaks its
//! constraints; and every status seen is one the document lists.
//! Valid bodies start from the schema's `example` where it has one.

use reqwest::{Method, StatusCode};
use serde_json::{Map, Value, json};
use tests::{ADMIN_API_KEY, Backend, Cred, TestApp, error_shape_ok};

/// The document's request schema, with `$ref`s followed.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(reference) => {
            let name = reference.rsplit('/').next().unwrap_or_default();
            resolve(doc, &doc["components"]["schemas"][name])
        }
        None => schema,
    }
}

/// A schema's type, ignoring `null` in a list of types.
fn kind(schema: &Value) -> &str {
    match &schema["type"] {
        Value::String(t) => t,
        Value::Array(types) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or(""),
        _ => "",
    }
}

/// A value the schema accepts.
fn valid(doc: &Value, schema: &Value) -> Value {
    let schema = resolve(doc, schema);
    if !schema["example"].is_null() {
        return schema["example"].clone();
    }
    if let Some(first) = schema["enum"].as_array().and_then(|e| e.first()) {
        return first.clone();
    }
    match kind(schema) {
        "integer" | "number" => json!(schema["minimum"].as_i64().unwrap_or(1).max(1)),
        "boolean" => json!(false),
        "array" => json!([]),
        "object" => {
            let mut out = Map::new();
            if let Some(props) = schema["properties"].as_object() {
                for name in required(schema) {
                    out.insert(name.clone(), valid(doc, &props[&name]));
                }
            }
            Value::Object(out)
        }
        _ => {
            let candidates = [
                "web1",
                "web1.example.com",
                "a@example.com",
                "Secret-pass-123",
            ];
            let pattern = schema["pattern"]
                .as_str()
                .map(|p| regex::Regex::new(p).expect("the pattern compiles"));
            let min = schema["minLength"].as_u64().unwrap_or(1);
            let text = candidates
                .iter()
                .find(|c| pattern.as_ref().is_none_or(|p| p.is_match(c)) && c.len() as u64 >= min)
                .map_or_else(
                    || "a".repeat(usize::try_from(min).unwrap_or(1)),
                    |c| (*c).to_owned(),
                );
            json!(text)
        }
    }
}

fn required(schema: &Value) -> Vec<String> {
    schema["required"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Values that break each constraint a property states, with what they break.
fn violations(schema: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    if let Some(min) = schema["minimum"].as_i64() {
        out.push((format!("minimum {min}"), json!(min - 1)));
    }
    if let Some(max) = schema["maximum"].as_i64() {
        out.push((format!("maximum {max}"), json!(max + 1)));
    }
    if let Some(min) = schema["minLength"].as_u64().filter(|m| *m > 0) {
        let short = "a".repeat(usize::try_from(min - 1).unwrap_or(0));
        out.push((format!("minLength {min}"), json!(short)));
    }
    if let Some(max) = schema["maxLength"].as_u64() {
        let long = "a".repeat(usize::try_from(max + 1).unwrap_or(0));
        out.push((format!("maxLength {max}"), json!(long)));
    }
    if let Some(pattern) = schema["pattern"].as_str() {
        let re = regex::Regex::new(pattern).expect("the pattern compiles");
        let bad = ["-bad value!", " ", "@@"]
            .into_iter()
            .find(|c| !re.is_match(c))
            .expect("something breaks the pattern");
        out.push((format!("pattern {pattern}"), json!(bad)));
    }
    if schema["enum"].is_array() {
        out.push(("enum".to_owned(), json!("not-one-of-them")));
    }
    match kind(schema) {
        "integer" | "number" => out.push(("type".to_owned(), json!("not a number"))),
        "boolean" => out.push(("type".to_owned(), json!("not a boolean"))),
        _ => {}
    }
    out
}

/// One operation's probes, and what they found wrong.
struct Probe<'a> {
    name: &'a str,
    path: &'a str,
    op: &'a Value,
    problems: &'a mut Vec<String>,
    probes: &'a mut usize,
}

impl Probe<'_> {
    /// A reply to a request the operation must refuse: with a status the document lists,
    /// never a success or a server error, in the dialect's error shape.
    fn refused(&mut self, what: &str, reply: &tests::Reply) {
        let name = self.name;
        *self.probes += 1;
        if !self.op["responses"][reply.status.as_str()].is_object() {
            self.problems.push(format!(
                "{name} ({what}): answered {} which the document does not list: {}",
                reply.status, reply.text
            ));
        }
        if reply.status.is_success() || reply.status.is_server_error() {
            self.problems.push(format!(
                "{name} ({what}): not refused: {} {}",
                reply.status, reply.text
            ));
        } else if !error_shape_ok(self.path, &reply.json) {
            self.problems
                .push(format!("{name} ({what}): error shape {}", reply.text));
        }
    }
}

struct Creds {
    jwt: String,
    vpsorg: String,
    cvm: (String, String),
}

impl Creds {
    fn for_scheme(&self, scheme: &str) -> Cred<'_> {
        match scheme {
            "bearerJwt" => Cred::Bearer(&self.jwt),
            "skyportApiKey" => Cred::ApiKey(ADMIN_API_KEY),
            "vpsorgToken" => Cred::Bearer(&self.vpsorg),
            "cvmPublicToken" | "cvmPrivateToken" => Cred::Cvm(&self.cvm.0, &self.cvm.1),
            other => panic!("unknown scheme {other}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_states_what_the_handlers_enforce() {
    let app = TestApp::start(Backend::Sqlite).await;
    let doc = app.get("/api/openapi.json", Cred::None).await.json;
    let jwt = app.admin_token().await;
    let vpsorg = app.mint(&jwt, "vpsorg", false).await["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let cvm = app.mint(&jwt, "cvm", true).await;
    let creds = Creds {
        cvm: (
            cvm["publicToken"].as_str().expect("public").to_owned(),
            cvm["privateToken"].as_str().expect("private").to_owned(),
        ),
        jwt,
        vpsorg,
    };

    let mut problems = Vec::new();
    let mut probes = 0;
    let paths = doc["paths"].as_object().expect("paths");
    for (path, item) in paths {
        for (method, op) in item.as_object().expect("path item") {
            let Ok(method) = method.to_uppercase().parse::<Method>() else {
                continue;
            };
            let name = format!("{method} {path}");
            if path == "/api/console/ws" {
                // A WebSocket upgrade: its refusals are tested in consoles.rs.
                continue;
            }
            let cred = op["security"][0]
                .as_object()
                .and_then(|s| s.keys().next())
                .map_or(Cred::None, |scheme| creds.for_scheme(scheme));
            let params: Vec<&Value> = op["parameters"]
                .as_array()
                .map(|p| p.iter().filter(|p| p["in"] == "path").collect())
                .unwrap_or_default();
            for p in &params {
                let param = p["name"].as_str().unwrap_or_default();
                if !path.contains(&format!("{{{param}}}")) {
                    problems.push(format!("{name}: {param} is not in the path"));
                }
            }
            let url = |malformed: bool| {
                let mut url = path.clone();
                for p in &params {
                    let name = p["name"].as_str().expect("name");
                    let numeric = kind(&p["schema"]) == "integer";
                    let value = if malformed && numeric { "x1" } else { "1" };
                    url = url.replace(&format!("{{{name}}}"), value);
                }
                url
            };
            let body_schema = op["requestBody"]["content"]["application/json"]["schema"].clone();
            let has_body = !body_schema.is_null();
            let base = has_body.then(|| valid(&doc, &body_schema));

            let mut probe = Probe {
                name: &name,
                path,
                op,
                problems: &mut problems,
                probes: &mut probes,
            };

            if params.iter().any(|p| kind(&p["schema"]) == "integer") {
                let reply = app
                    .call(method.clone(), &url(true), cred, base.clone())
                    .await;
                if reply.status != StatusCode::BAD_REQUEST {
                    probe.problems.push(format!(
                        "{name}: a malformed id answered {}, not 400: {}",
                        reply.status, reply.text
                    ));
                }
                probe.refused("malformed id", &reply);
            }
            let queries: Vec<&Value> = op["parameters"]
                .as_array()
                .map(|p| p.iter().filter(|p| p["in"] == "query").collect())
                .unwrap_or_default();
            for q in queries {
                let field = q["name"].as_str().expect("name");
                for (what, value) in violations(resolve(&doc, &q["schema"])) {
                    let text = value
                        .as_str()
                        .map_or_else(|| value.to_string(), str::to_owned);
                    let url = format!("{}?{field}={}", url(false), text.replace(' ', "%20"));
                    let reply = app.call(method.clone(), &url, cred, base.clone()).await;
                    probe.refused(&format!("query {field} breaking {what}"), &reply);
                }
            }
            if !has_body {
                continue;
            }
            let schema = resolve(&doc, &body_schema);
            let reply = app
                .call(
                    method.clone(),
                    &url(false),
                    cred,
                    Some(json!(["not", "an", "object"])),
                )
                .await;
            probe.refused("a body of the wrong type", &reply);
            let base = base.unwrap_or_default();
            for field in required(schema) {
                let mut body = base.clone();
                if let Some(object) = body.as_object_mut() {
                    object.remove(&field);
                }
                let reply = app
                    .call(method.clone(), &url(false), cred, Some(body))
                    .await;
                probe.refused(&format!("without {field}"), &reply);
            }
            if let Some(props) = schema["properties"].as_object() {
                for (field, prop) in props {
                    let prop = resolve(&doc, prop);
                    for (what, value) in violations(prop) {
                        let mut body = base.clone();
                        if let Some(object) = body.as_object_mut() {
                            object.insert(field.clone(), value);
                        }
                        let reply = app
                            .call(method.clone(), &url(false), cred, Some(body))
                            .await;
                        probe.refused(&format!("{field} breaking {what}"), &reply);
                    }
                }
            }
        }
    }
    assert!(probes > 50, "probed {probes} requests");
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
