//! `render`: the device's configuration, rendered now; later steps push this text.

use super::{JobError, StepCtx};
use crate::jobs::JobState;
use crate::model::Render;
use crate::render::RenderLimits;
use crate::store::jobs::Update;

pub(super) async fn run(ctx: &mut StepCtx<'_>, r: &Render) -> Result<(), JobError> {
    let limits = RenderLimits {
        max_output: ctx.tenant.limits.reply_bytes,
    };
    let text = ctx
        .tenant
        .capabilities()
        .renderer
        .render(&r.template, &r.vars, None, limits)
        .await
        .map_err(|e| JobError::failed(format!("render {}: {e}", r.template)))?;
    let lines = text.lines().count();
    ctx.runner
        .jobs
        .transition(
            ctx.job.id,
            JobState::Planned,
            format!("rendered {} ({lines} lines)", r.template),
            Update {
                config: Some(text.to_string()),
                ..ctx.done()
            },
        )
        .await?;
    ctx.job.config = Some(text.to_string());
    Ok(())
}
