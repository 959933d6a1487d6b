//! `update-inventory`: write back to the tenant's source of truth (NetBox): a status, a
//! custom field, or a journal entry naming the job, tenant and policy version.

use super::{JobError, StepCtx, netbox_of};
use crate::jobs::JobState;
use crate::model::InventoryChange;

pub(super) async fn run(ctx: &mut StepCtx<'_>, change: &InventoryChange) -> Result<(), JobError> {
    let netbox = netbox_of(ctx.tenant, "update-inventory")?;
    let job = &*ctx.job;
    let (field, value) = match (&job.serial, &job.mac) {
        (Some(serial), _) => ("serial", serial.as_str()),
        (None, Some(mac)) => ("mac", mac.as_str()),
        (None, None) => {
            return Err(JobError::failed(
                "update-inventory: the device sent neither a serial nor a MAC, so ztpd cannot find it in NetBox",
            ));
        }
    };
    let device = netbox
        .find_device(field, value)
        .await
        .map_err(|e| JobError::failed(format!("update-inventory: {e}")))?
        .ok_or_else(|| {
            JobError::failed(format!(
                "update-inventory: NetBox {} has no device with {field} {value}",
                netbox.url()
            ))
        })?;
    let id = device
        .get("id")
        .and_then(serde_json::Value::as_i64)
        .ok_or_else(|| {
            JobError::failed("update-inventory: NetBox answered a device without an id")
        })?;
    let note = match (&job.policy_version, change) {
        (Some(v), InventoryChange::Journal(_)) => format!(
            "ztpd job {}, tenant {}, policy version {}",
            job.id,
            job.tenant,
            v.get(..12).unwrap_or(v)
        ),
        _ => String::new(),
    };
    let line = netbox
        .apply(id, change, &note)
        .await
        .map_err(|e| JobError::failed(format!("update-inventory: {e}")))?;
    ctx.runner
        .jobs
        .transition(ctx.job.id, JobState::Registering, line, ctx.done())
        .await?;
    Ok(())
}
