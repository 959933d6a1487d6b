//! Inventory back ends: where a tenant's device records come from.
//!
//! The file back end reads a JSON or YAML map of records keyed by MAC (like the Arista
//! seed's `swinfo.json`) or by serial (like the IOS XE seed's `inventory.yaml`). MAC keys
//! and MAC-valued fields are normalised on load, and lookups normalise the query, so
//! `001c.7300.0001` finds the record stored under `00:1C:73:00:00:01`.
//!
//! Records are serialised to JSON once on load: a lookup hands the policy a shared string,
//! with no per-request serialisation.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::identity::Mac;

#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("cannot read inventory {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("inventory {path} is not valid {format}: {detail}")]
    Parse {
        path: PathBuf,
        format: &'static str,
        detail: String,
    },
    #[error("inventory {path} must be a map from {key} to a record (an object), but {detail}")]
    Shape {
        path: PathBuf,
        key: &'static str,
        detail: String,
    },
    #[error("inventory {path}: key {key:?} is not a MAC address: {reason}")]
    BadMacKey {
        path: PathBuf,
        key: String,
        reason: crate::identity::MacError,
    },
    #[error("inventory {path}: MAC {mac} appears twice (keys {first:?} and {second:?})")]
    DuplicateMac {
        path: PathBuf,
        mac: Mac,
        first: String,
        second: String,
    },
}

/// What the records of a file inventory are keyed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyKind {
    Mac,
    Serial,
}

impl KeyKind {
    fn name(self) -> &'static str {
        match self {
            KeyKind::Mac => "MAC",
            KeyKind::Serial => "serial",
        }
    }
}

/// A tenant's inventory: one or more back ends, asked in order; the first record found
/// wins (a site with Arista and Cisco gear may keep a MAC-keyed and a serial-keyed file).
#[derive(Debug, Default)]
pub struct Inventory {
    sources: Vec<Source>,
}

#[derive(Debug)]
pub enum Source {
    File(FileInventory),
}

impl Inventory {
    pub fn new(sources: Vec<Source>) -> Self {
        Inventory { sources }
    }

    /// Find a record: `field` is `mac`, `serial`, `key` or any field of the records.
    pub async fn lookup(&self, field: &str, value: &str) -> Result<Option<Arc<str>>, String> {
        for source in &self.sources {
            let found = match source {
                Source::File(f) => f.lookup(field, value)?,
            };
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }
}

struct Record {
    key: String,
    value: serde_json::Value,
    json: Arc<str>,
}

/// A JSON or YAML file of records, held in memory.
pub struct FileInventory {
    path: PathBuf,
    key_kind: KeyKind,
    records: Vec<Record>,
    /// Primary key (normalised MAC text, or serial) → index into `records`.
    by_key: HashMap<String, usize>,
    /// `serial` field → index, whichever key the file uses.
    by_serial: HashMap<String, usize>,
    /// Normalised MAC from the key or a `mac`/`system_mac` field → index.
    by_mac: HashMap<Mac, usize>,
}

impl std::fmt::Debug for FileInventory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileInventory")
            .field("path", &self.path)
            .field("key_kind", &self.key_kind)
            .field("records", &self.records.len())
            .finish()
    }
}

/// Fields that hold a device's MAC in common inventories.
const MAC_FIELDS: [&str; 3] = ["mac", "system_mac", "mac_address"];

impl FileInventory {
    /// Load `path`; `.yaml`/`.yml` files are YAML, anything else JSON.
    pub fn load(path: &Path, key_kind: KeyKind) -> Result<Self, InventoryError> {
        let text = std::fs::read_to_string(path).map_err(|source| InventoryError::Read {
            path: path.to_owned(),
            source,
        })?;
        let is_yaml = matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        );
        let root: serde_json::Value = if is_yaml {
            serde_norway::from_str(&text).map_err(|e| InventoryError::Parse {
                path: path.to_owned(),
                format: "YAML",
                detail: e.to_string(),
            })?
        } else {
            serde_json::from_str(&text).map_err(|e| InventoryError::Parse {
                path: path.to_owned(),
                format: "JSON",
                detail: e.to_string(),
            })?
        };
        Self::from_value(path, key_kind, root)
    }

    fn from_value(
        path: &Path,
        key_kind: KeyKind,
        root: serde_json::Value,
    ) -> Result<Self, InventoryError> {
        let shape = |detail: String| InventoryError::Shape {
            path: path.to_owned(),
            key: key_kind.name(),
            detail,
        };
        let serde_json::Value::Object(map) = root else {
            return Err(shape("the file's top level is not a map".to_owned()));
        };
        let mut inv = FileInventory {
            path: path.to_owned(),
            key_kind,
            records: Vec::with_capacity(map.len()),
            by_key: HashMap::with_capacity(map.len()),
            by_serial: HashMap::new(),
            by_mac: HashMap::new(),
        };
        for (key, value) in map {
            if !value.is_object() {
                return Err(shape(format!("the entry under {key:?} is not an object")));
            }
            let index = inv.records.len();
            let primary = match key_kind {
                KeyKind::Mac => {
                    let mac: Mac = key.parse().map_err(|reason| InventoryError::BadMacKey {
                        path: path.to_owned(),
                        key: key.clone(),
                        reason,
                    })?;
                    inv.add_mac(mac, index, &key)?;
                    mac.to_string()
                }
                KeyKind::Serial => key.trim().to_owned(),
            };
            if let Some(serial) = value.get("serial").and_then(|s| s.as_str()) {
                inv.by_serial.insert(serial.trim().to_owned(), index);
            }
            if key_kind == KeyKind::Serial {
                inv.by_serial.insert(primary.clone(), index);
            }
            for field in MAC_FIELDS {
                if let Some(mac) = value.get(field).and_then(|m| m.as_str())
                    && let Ok(mac) = mac.parse::<Mac>()
                    && inv.by_mac.get(&mac) != Some(&index)
                {
                    inv.add_mac(mac, index, &key)?;
                }
            }
            inv.by_key.insert(primary, index);
            let json: Arc<str> = value.to_string().into();
            inv.records.push(Record { key, value, json });
        }
        Ok(inv)
    }

    fn add_mac(&mut self, mac: Mac, index: usize, key: &str) -> Result<(), InventoryError> {
        if let Some(&other) = self.by_mac.get(&mac)
            && other != index
        {
            return Err(InventoryError::DuplicateMac {
                path: self.path.clone(),
                mac,
                first: self
                    .records
                    .get(other)
                    .map(|r| r.key.clone())
                    .unwrap_or_default(),
                second: key.to_owned(),
            });
        }
        self.by_mac.insert(mac, index);
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Every record's key, in file order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.records.iter().map(|r| r.key.as_str())
    }

    pub fn lookup(&self, field: &str, value: &str) -> Result<Option<Arc<str>>, String> {
        let index = match field {
            "mac" => {
                let mac: Mac = value
                    .parse()
                    .map_err(|e| format!("inventory lookup by mac: {e}"))?;
                self.by_mac.get(&mac).copied()
            }
            "serial" => self.by_serial.get(value.trim()).copied(),
            "key" => match self.key_kind {
                KeyKind::Mac => value
                    .parse::<Mac>()
                    .ok()
                    .and_then(|m| self.by_key.get(&m.to_string()).copied()),
                KeyKind::Serial => self.by_key.get(value.trim()).copied(),
            },
            // Any other field: a scan. Inventories are thousands of records and these
            // lookups are rare; an index per field would cost memory for every tenant.
            other => {
                // `24` finds a number field, `true` a boolean; anything else is text.
                let as_json = serde_json::from_str::<serde_json::Value>(value).ok();
                self.records.iter().position(|r| {
                    r.value.get(other).is_some_and(|v| match v {
                        serde_json::Value::String(s) => s == value,
                        v => as_json.as_ref() == Some(v),
                    })
                })
            }
        };
        Ok(index
            .and_then(|i| self.records.get(i))
            .map(|r| r.json.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn inv(kind: KeyKind, v: serde_json::Value) -> FileInventory {
        FileInventory::from_value(Path::new("test.json"), kind, v).unwrap()
    }

    #[test]
    fn mac_keys_are_normalised_on_both_sides() {
        let i = inv(
            KeyKind::Mac,
            json!({"00:1C:73:00:00:01": {"hostname": "leaf1"}}),
        );
        for q in [
            "00:1c:73:00:00:01",
            "001c.7300.0001",
            "001C73000001",
            "00-1c-73-00-00-01",
        ] {
            let rec = i.lookup("mac", q).unwrap().expect(q);
            assert!(rec.contains("leaf1"));
            assert!(i.lookup("key", q).unwrap().is_some());
        }
        assert!(i.lookup("mac", "00:1c:73:00:00:02").unwrap().is_none());
        assert!(i.lookup("mac", "garbage").is_err());
    }

    #[test]
    fn serial_keys_and_fields() {
        let i = inv(
            KeyKind::Serial,
            json!({"FOC1": {"hostname": "r1", "mac": "aabb.cc00.0001"}, "FOC2": {"hostname": "r2"}}),
        );
        assert!(i.lookup("serial", "FOC1").unwrap().unwrap().contains("r1"));
        assert!(i.lookup("key", "FOC2").unwrap().unwrap().contains("r2"));
        assert!(
            i.lookup("mac", "aa:bb:cc:00:00:01")
                .unwrap()
                .unwrap()
                .contains("r1")
        );
        assert!(
            i.lookup("hostname", "r2")
                .unwrap()
                .unwrap()
                .contains("\"r2\"")
        );
        assert!(i.lookup("hostname", "r3").unwrap().is_none());
    }

    #[test]
    fn duplicate_macs_are_refused() {
        let err = FileInventory::from_value(
            Path::new("dup.json"),
            KeyKind::Mac,
            json!({"00:1c:73:00:00:01": {}, "001c.7300.0001": {}}),
        )
        .unwrap_err();
        assert!(err.to_string().contains("appears twice"), "{err}");
    }

    #[test]
    fn bad_shapes_say_what_is_wrong() {
        let err = FileInventory::from_value(Path::new("x.json"), KeyKind::Mac, json!([1]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("x.json") && err.contains("map"), "{err}");
        let err = FileInventory::from_value(Path::new("x.json"), KeyKind::Mac, json!({"zz": {}}))
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"zz\"") && err.contains("not a MAC"), "{err}");
    }
}
