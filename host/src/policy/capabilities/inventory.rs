//! `inventory`: a policy looks a device up in its tenant's inventory (files, NetBox) by
//! MAC, serial, key or any field, and gets the record as JSON text. The look-up runs
//! inside the call, so the call's wall-time limit bounds a slow NetBox.

use std::sync::Arc;

use wasmtime::component::{HasSelf, Linker};

use super::TenantCaps;
use crate::policy::contract::v0_2::ztpd::policy::inventory as wit;
use crate::policy::state::HostState;
use crate::sources::{Inventory, LookupError};

/// Longest field name or value a look-up takes.
pub const MAX_QUERY: usize = 1024;

pub(crate) struct InventoryCall {
    inventory: Arc<Inventory>,
}

impl InventoryCall {
    pub(crate) fn new(caps: &Arc<TenantCaps>) -> Self {
        InventoryCall {
            inventory: caps.inventory.clone(),
        }
    }

    pub(crate) async fn lookup(
        &self,
        field: &str,
        value: &str,
    ) -> Result<Option<Arc<str>>, String> {
        if field.is_empty() || field.len() > MAX_QUERY || value.len() > MAX_QUERY {
            return Err(format!(
                "inventory lookup: field must be 1 to {MAX_QUERY} bytes and value at most {MAX_QUERY}"
            ));
        }
        self.inventory
            .lookup(field, value)
            .await
            .map_err(|e: LookupError| e.to_string())
    }
}

impl wit::Host for HostState {
    async fn lookup(&mut self, field: String, value: String) -> Result<Option<String>, String> {
        self.in_import = Some("inventory.lookup");
        let found = self.inventory.lookup(&field, &value).await;
        self.in_import = None;
        found.map(|r| r.map(|json| json.to_string()))
    }
}

pub(in crate::policy) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    wit::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)
}
