//! `templates`: a policy renders one of its tenant's templates inside the call. The
//! render follows the same rules as a `render` decision ([`crate::render`]) and is charged
//! to the call: its time counts against the call's wall-time limit, its output against the
//! tenant's reply limit.

use std::sync::Arc;

use wasmtime::component::{HasSelf, Linker};

use super::TenantCaps;
use crate::policy::contract::v0_2::ztpd::policy::templates as wit;
use crate::policy::state::HostState;
use crate::render::{RenderLimits, Renderer};

pub(crate) struct TemplatesCall {
    renderer: Arc<Renderer>,
    limits: RenderLimits,
}

impl TemplatesCall {
    pub(crate) fn new(caps: &Arc<TenantCaps>) -> Self {
        TemplatesCall {
            renderer: caps.renderer.clone(),
            limits: RenderLimits {
                max_output: caps.limits.reply_bytes,
            },
        }
    }

    pub(crate) async fn render(&self, template: &str, vars: &str) -> Result<String, String> {
        self.renderer
            .render(template, vars, None, self.limits)
            .await
            .map(|text| text.to_string())
            .map_err(|e| e.to_string())
    }
}

impl wit::Host for HostState {
    async fn render(&mut self, template: String, vars: String) -> Result<String, String> {
        self.in_import = Some("templates.render");
        let out = self.templates.render(&template, &vars).await;
        self.in_import = None;
        out
    }
}

pub(in crate::policy) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    wit::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)
}
