//! `settings`: a policy reads its tenant's `[tenants.settings]` (credential names, sinks,
//! wait times), so one .wasm serves many sites without hard-coded values.

use std::collections::BTreeMap;
use std::sync::Arc;

use wasmtime::component::{HasSelf, Linker};

use super::TenantCaps;
use crate::policy::contract::v0_2::ztpd::policy::settings as wit;
use crate::policy::state::HostState;

pub(crate) struct SettingsCall {
    settings: Arc<BTreeMap<String, String>>,
}

impl SettingsCall {
    pub(crate) fn new(caps: &Arc<TenantCaps>) -> Self {
        SettingsCall {
            settings: caps.settings.clone(),
        }
    }

    pub(crate) fn get(&self, key: &str) -> Option<String> {
        self.settings.get(key).cloned()
    }

    pub(crate) fn get_all(&self) -> Vec<(String, String)> {
        self.settings
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

impl wit::Host for HostState {
    async fn get(&mut self, key: String) -> Option<String> {
        self.settings.get(&key)
    }

    async fn get_all(&mut self) -> Vec<(String, String)> {
        self.settings.get_all()
    }
}

pub(in crate::policy) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    wit::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)
}
