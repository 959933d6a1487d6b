//! The OpenAPI document of the admin and status APIs, generated from the handlers'
//! annotations and these reply types (utoipa), served at `/admin/v1/openapi.json`.

use serde::Serialize;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::store::audit::AuditEntry;
use crate::store::versions::{Activation, Version};

/// A tenant as the admin API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TenantInfo {
    pub(crate) name: String,
    pub(crate) default: bool,
    pub(crate) sources: Vec<String>,
    pub(crate) policies: Vec<LivePolicy>,
    pub(crate) templates: Vec<String>,
}

/// A slot's live policy.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct LivePolicy {
    /// `any` or a dialect.
    pub(crate) slot: String,
    pub(crate) name: String,
    /// SHA-256 of the component.
    pub(crate) version: String,
    /// The contract version it was built against (`0.1.0`, `0.2.0`).
    pub(crate) contract: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Tenants {
    pub(crate) tenants: Vec<TenantInfo>,
}

/// One policy slot's history.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Slot {
    pub(crate) slot: String,
    pub(crate) live: String,
    pub(crate) contract: String,
    pub(crate) versions: Vec<Version>,
    /// Newest first.
    pub(crate) activations: Vec<Activation>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Policies {
    pub(crate) tenant: String,
    pub(crate) slots: Vec<Slot>,
}

/// An upload's outcome.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Uploaded {
    pub(crate) version: String,
    pub(crate) validated: bool,
    pub(crate) active: bool,
}

/// The version now live in a slot.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Live {
    pub(crate) slot: String,
    pub(crate) live: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TemplateStored {
    pub(crate) template: String,
    /// SHA-256 of the template text.
    pub(crate) version: String,
    /// How many templates the tenant has now.
    pub(crate) templates: usize,
}

/// What an operator's decision did.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Decided {
    pub(crate) result: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Audit {
    pub(crate) entries: Vec<AuditEntry>,
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = doc.components.as_mut() {
            components.add_security_scheme(
                "bearer",
                SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
            );
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "ztpd admin and status API",
        description = "Tokens are named in the configuration ([[admin.tokens]]); an operator token reaches every tenant, a tenant token only its own. Every change is audited."
    ),
    paths(
        super::admin::tenants,
        super::admin::policies,
        super::admin::upload,
        super::admin::activate,
        super::admin::rollback,
        super::admin::put_template,
        super::admin::devices,
        super::admin::decide_device,
        super::admin::audit_log,
        super::api::devices,
        super::api::device,
        super::api::dhcp,
    ),
    components(schemas(Version, Activation, AuditEntry)),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

/// The document as JSON.
pub(crate) fn document() -> String {
    ApiDoc::openapi().to_json().unwrap_or_else(|e| {
        format!("{{\"error\": \"cannot serialise the OpenAPI document: {e}\"}}")
    })
}
