//! `wait`: give the device time to finish booting. The end time is recorded, so a job
//! resumed after a restart waits only what is left.

use std::time::Duration;

use super::{JobError, StepCtx};
use crate::clock::now_ms;
use crate::jobs::JobState;
use crate::store::jobs::Update;

pub(super) async fn run(ctx: &mut StepCtx<'_>, seconds: u32) -> Result<(), JobError> {
    let jobs = &ctx.runner.jobs;
    let until = match ctx.job.wait_until_ms {
        Some(until) => until,
        None => {
            let until = now_ms() + i64::from(seconds) * 1000;
            jobs.transition(
                ctx.job.id,
                JobState::Waiting,
                format!("waiting {seconds} s for the device to finish booting"),
                Update {
                    wait_until_ms: Some(Some(until)),
                    ..Default::default()
                },
            )
            .await?;
            until
        }
    };
    let left = until - now_ms();
    if left > 0 {
        tokio::time::sleep(Duration::from_millis(left as u64)).await;
    }
    jobs.transition(
        ctx.job.id,
        JobState::Waiting,
        "wait over",
        Update {
            wait_until_ms: Some(None),
            ..ctx.done()
        },
    )
    .await?;
    ctx.job.wait_until_ms = None;
    Ok(())
}
