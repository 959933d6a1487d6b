//! Rendering a device's configuration: one interface for every place ztpd renders — a
//! policy's `render` decision, a plan's render step, and the `templates.render` import —
//! so they all follow the same rules.
//!
//! A template name is a path in the tenant's templates folder ([`templates`], Jinja2 via
//! minijinja), or [`RENDER_IN_NETBOX`]: the tenant's NetBox renders the device with its
//! own config template. Every render is checked against the caller's output limit.

pub mod templates;

use std::sync::Arc;

use serde_json::Value;

pub use templates::{TemplateError, Templates};

use crate::sources::{NetBox, NetBoxError};

/// The template name that asks NetBox to render the device's config with its own config
/// template (`POST /api/dcim/devices/{id}/render-config/`); the variables must be the
/// record a NetBox look-up returned.
pub const RENDER_IN_NETBOX: &str = "netbox:render-config";

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("render {RENDER_IN_NETBOX}: {0}")]
    NetBox(#[from] NetBoxError),
    #[error(
        "the policy asked for {RENDER_IN_NETBOX} but the tenant has no NetBox inventory; add inventory = {{ netbox = \"https://...\", token_env = \"...\" }}"
    )]
    NoNetBox,
    #[error(
        "template {template}: the rendered text is {size} bytes, over the limit of {limit} bytes (limits.reply_kib)"
    )]
    TooLarge {
        template: String,
        size: usize,
        limit: usize,
    },
}

/// What one render may use.
#[derive(Debug, Clone, Copy)]
pub struct RenderLimits {
    /// Largest rendered text.
    pub max_output: usize,
}

/// A tenant's renderer: its templates, and its NetBox if it has one.
#[derive(Debug)]
pub struct Renderer {
    templates: Arc<Templates>,
    netbox: Option<Arc<NetBox>>,
}

impl Renderer {
    pub fn new(templates: Arc<Templates>, netbox: Option<Arc<NetBox>>) -> Self {
        Renderer { templates, netbox }
    }

    pub fn templates(&self) -> &Arc<Templates> {
        &self.templates
    }

    /// The same NetBox with another template set (after a template reload).
    pub fn with_templates(&self, templates: Arc<Templates>) -> Self {
        Renderer {
            templates,
            netbox: self.netbox.clone(),
        }
    }

    /// Render `template` with `vars` (a JSON object as text). `host_vars`, when given, is
    /// added as the variable `ztpd`: values only the host knows (a call-back URL, a token,
    /// a one-time password) that reach the device but never the policy; such renders are
    /// not memoised.
    pub async fn render(
        &self,
        template: &str,
        vars: &str,
        host_vars: Option<&Value>,
        limits: RenderLimits,
    ) -> Result<Arc<str>, RenderError> {
        let text: Arc<str> = if template == RENDER_IN_NETBOX {
            let netbox = self.netbox.as_ref().ok_or(RenderError::NoNetBox)?;
            netbox.render_record(vars).await?.into()
        } else {
            match host_vars {
                None => self.templates.render_json(template, vars)?,
                Some(extra) => {
                    let mut vars: Value =
                        serde_json::from_str(vars).map_err(|e| TemplateError::Vars {
                            name: template.to_owned(),
                            detail: e.to_string(),
                        })?;
                    if let Some(map) = vars.as_object_mut() {
                        map.insert("ztpd".to_owned(), extra.clone());
                    }
                    self.templates.render(template, &vars)?.into()
                }
            }
        };
        if text.len() > limits.max_output {
            return Err(RenderError::TooLarge {
                template: template.to_owned(),
                size: text.len(),
                limit: limits.max_output,
            });
        }
        Ok(text)
    }
}
