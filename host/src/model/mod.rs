//! The vocabulary every layer shares: who a device is ([`identity`]), what it asked
//! ([`request`]) and what its tenant's policy decided ([`decision`]). Plain data with no
//! behaviour beyond parsing and display; imports nothing else of ztpd.

pub mod decision;
pub mod identity;
pub mod request;

pub use decision::{
    Content, Decision, ExtensionStep, FileRef, InventoryChange, MonitoringAdd, Plan, Render,
    SshPush, Step, Webhook,
};
pub use identity::{Identity, Mac, MacError};
pub use request::{DeviceRequest, stage};
