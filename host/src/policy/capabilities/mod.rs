//! The host imports a policy may use, one file each: [`log`], [`inventory`],
//! [`templates`], [`settings`], [`kv`]. Each file holds the capability's per-call state,
//! its logic, its binding to the current contract and its `add_to_linker`; older contract
//! versions reach the same logic through [`super::contract`].
//!
//! Every capability is scoped to the tenant the request was routed to ([`TenantCaps`]):
//! a policy cannot name another tenant.

pub mod inventory;
pub mod kv;
pub mod log;
pub mod settings;
pub mod templates;

use std::collections::BTreeMap;
use std::sync::Arc;

use wasmtime::component::Linker;

use super::state::HostState;
use crate::config::Limits;
use crate::render::Renderer;
use crate::sources::Inventory;
use crate::store::kv::{KvQuota, KvStore};

/// What a tenant's policy can reach, shared by its calls; replaced as a whole when the
/// tenant's templates change.
#[derive(Debug)]
pub struct TenantCaps {
    pub tenant: Arc<str>,
    pub limits: Limits,
    pub inventory: Arc<Inventory>,
    pub renderer: Arc<Renderer>,
    pub settings: Arc<BTreeMap<String, String>>,
    pub kv: KvStore,
    pub kv_quota: KvQuota,
}

impl TenantCaps {
    /// The same capabilities with another renderer (a template reload).
    pub fn with_renderer(&self, renderer: Renderer) -> Self {
        TenantCaps {
            tenant: self.tenant.clone(),
            limits: self.limits,
            inventory: self.inventory.clone(),
            renderer: Arc::new(renderer),
            settings: self.settings.clone(),
            kv: self.kv.clone(),
            kv_quota: self.kv_quota,
        }
    }
}

/// Link every capability of the current contract.
pub(super) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    log::add_to_linker(linker)?;
    inventory::add_to_linker(linker)?;
    templates::add_to_linker(linker)?;
    settings::add_to_linker(linker)?;
    kv::add_to_linker(linker)
}
