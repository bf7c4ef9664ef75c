//! The OpenAPI document: every route registers itself through `utoipa_axum::routes!`, so the
//! document cannot miss one. Served at `GET /api/openapi.json`.

use utoipa::Modify;
use utoipa::OpenApi;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "VPS control plane gateway",
        description = "Four REST dialects over one control plane: panel (Bearer JWT), skyport \
                       (x-api-key), vpsorg (Bearer API token) and cvm (API-Public-Token + \
                       API-Private-Token). See docs/api.md."
    ),
    modifiers(&SecuritySchemes),
    tags(
        (name = "account", description = "Registration, sessions and API tokens (panel dialect)"),
        (name = "credits", description = "Credit balances and the ledger (panel dialect)"),
        (name = "service accounts", description = "Credentials for services that call the gRPC API directly (administrators; docs/grpc.md)"),
        (name = "servers", description = "Servers, tasks and the catalog (panel dialect, seed 000)"),
        (name = "snapshots", description = "Snapshots (seed 000), backups and backup schedules (panel dialect)"),
        (name = "support", description = "Support tickets, email preferences and the mail log (panel dialect)"),
        (name = "webhooks", description = "Signed event deliveries to your endpoints (Standard Webhooks; panel dialect)"),
        (name = "vpsorg", description = "VPS.org-compatible servers, snapshots and backups API (seeds 002 and 004)"),
        (name = "cvm", description = "CVM-compatible client API (seed 003)"),
        (name = "skyport", description = "Skyport-compatible API (seed 001)"),
        (name = "console", description = "WebSocket terminals, opened with a console ticket"),
        (name = "meta", description = "Health and this document"),
    )
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearerJwt",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "skyportApiKey",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("x-api-key"))),
        );
        components.add_security_scheme(
            "vpsorgToken",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "cvmPublicToken",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("API-Public-Token"))),
        );
        components.add_security_scheme(
            "cvmPrivateToken",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("API-Private-Token"))),
        );
    }
}

/// Names every operation of the seed dialects after its dialect (`skyport_list_nodes`), so
/// operation ids are unique across the document as OpenAPI requires (each dialect has its
/// own `list_servers`) and generated clients keep them apart. The panel's stay as they are.
pub fn qualify_operation_ids(doc: &mut utoipa::openapi::OpenApi) {
    for (path, item) in doc.paths.paths.iter_mut() {
        let dialect = crate::dialects::DialectKind::for_path(path);
        if dialect == crate::dialects::DialectKind::Panel {
            continue;
        }
        let operations: [&mut Option<Operation>; 5] = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            if let Some(id) = operation.operation_id.as_mut() {
                *id = format!("{}_{id}", dialect.name());
            }
        }
    }
}
