//! Inventory back ends: where a tenant's device records come from — files ([`file`]) and
//! NetBox ([`netbox`]). A tenant may have several, asked in order; the first record found
//! wins (a site with Arista and Cisco gear may keep a MAC-keyed and a serial-keyed file).

pub mod file;
pub mod netbox;

use std::sync::Arc;

pub use file::{FileInventory, InventoryError, MAC_FIELDS};
pub use netbox::{NetBox, NetBoxError};

/// Why a look-up failed. The message goes to the policy as is: it names the back end and
/// never a secret.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error("inventory lookup by mac: {0}")]
    BadMac(crate::model::MacError),
    #[error(transparent)]
    NetBox(#[from] NetBoxError),
}

/// A tenant's inventory: its back ends in order.
#[derive(Debug, Default)]
pub struct Inventory {
    sources: Vec<Source>,
}

#[derive(Debug)]
pub enum Source {
    File(FileInventory),
    /// A NetBox, asked over its REST API.
    NetBox(Arc<NetBox>),
}

impl Inventory {
    pub fn new(sources: Vec<Source>) -> Self {
        Inventory { sources }
    }

    /// Find a record: `field` is `mac`, `serial`, `key` or any field of the records.
    pub async fn lookup(&self, field: &str, value: &str) -> Result<Option<Arc<str>>, LookupError> {
        for source in &self.sources {
            let found = match source {
                Source::File(f) => f.lookup(field, value)?,
                Source::NetBox(n) => n.lookup(field, value).await?,
            };
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// The first NetBox among the back ends: where write-back steps go.
    pub fn netbox(&self) -> Option<&Arc<NetBox>> {
        self.sources.iter().find_map(|s| match s {
            Source::NetBox(n) => Some(n),
            Source::File(_) => None,
        })
    }

    /// The file back ends (DHCP fixed addresses read them).
    pub fn files(&self) -> impl Iterator<Item = &FileInventory> {
        self.sources.iter().filter_map(|s| match s {
            Source::File(f) => Some(f),
            Source::NetBox(_) => None,
        })
    }
}
