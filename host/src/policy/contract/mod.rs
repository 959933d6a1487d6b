//! The bindings of every supported contract version, one file each: [`v0_2`] (current)
//! and [`v0_1`]. A loaded policy is checked against the newest version first; whichever
//! its exports fit is the one it is called through. Nothing outside `policy/` sees a
//! generated type: requests and decisions convert to and from [`crate::model`].
//!
//! Each version's conversions are written out in its own file even where two versions
//! look alike: the generated types are distinct, and a released version's file must stay
//! as it shipped when the next version changes.

pub mod v0_1;
pub mod v0_2;

use wasmtime::Store;
use wasmtime::component::{InstancePre, Linker};

use super::state::HostState;
use crate::model::{Decision, DeviceRequest};

/// A policy ready to instantiate, through the contract version it was built against.
pub(super) enum Pre {
    V0_1(v0_1::PolicyPre<HostState>),
    V0_2(v0_2::PolicyPre<HostState>),
}

impl Pre {
    /// Check `pre`'s exports against each version, newest first.
    pub(super) fn new(pre: InstancePre<HostState>) -> Result<Self, String> {
        let newest = match v0_2::PolicyPre::new(pre.clone()) {
            Ok(p) => return Ok(Pre::V0_2(p)),
            Err(e) => e,
        };
        match v0_1::PolicyPre::new(pre) {
            Ok(p) => Ok(Pre::V0_1(p)),
            Err(_) => Err(format!("{newest:#}")),
        }
    }

    /// The contract version, e.g. `0.2.0`.
    pub(super) fn version(&self) -> &'static str {
        match self {
            Pre::V0_1(_) => "0.1.0",
            Pre::V0_2(_) => "0.2.0",
        }
    }

    /// Instantiate in `store` and call `handle`.
    pub(super) async fn call(
        &self,
        store: &mut Store<HostState>,
        request: &DeviceRequest,
    ) -> wasmtime::Result<Result<Decision, String>> {
        match self {
            Pre::V0_2(pre) => {
                let req = v0_2::request(request);
                let instance = pre.instantiate_async(&mut *store).await?;
                let out = instance.call_handle(&mut *store, &req).await?;
                Ok(out.map(v0_2::decision))
            }
            Pre::V0_1(pre) => {
                let req = v0_1::request(request);
                let instance = pre.instantiate_async(&mut *store).await?;
                let out = instance.call_handle(&mut *store, &req).await?;
                Ok(out.map(v0_1::decision))
            }
        }
    }
}

/// Link the imports of every version.
pub(super) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    super::capabilities::add_to_linker(linker)?;
    v0_1::add_to_linker(linker)
}
