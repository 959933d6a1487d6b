//! A JSON or YAML file of device records, keyed by MAC (like the Arista seed's
//! `swinfo.json`) or by serial (like the IOS XE seed's `inventory.yaml`). MAC keys and
//! MAC-valued fields are normalised on load, and lookups normalise the query, so
//! `001c.7300.0001` finds the record stored under `00:1C:73:00:00:01`.
//!
//! Records are kept as JSON text (a lookup hands the policy a shared string, with no
//! per-request serialisation) plus their top-level scalar fields for lookups by field;
//! no parsed trees stay in memory, so a thousand-device inventory costs about its size.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::LookupError;
use crate::config::KeyKind;
use crate::model::{Mac, MacError};

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
        reason: MacError,
    },
    #[error("inventory {path}: MAC {mac} appears twice (keys {first:?} and {second:?})")]
    DuplicateMac {
        path: PathBuf,
        mac: Mac,
        first: String,
        second: String,
    },
}

struct Record {
    key: String,
    /// Top-level fields that are strings, numbers or booleans, as JSON values.
    scalars: Vec<(Box<str>, serde_json::Value)>,
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
pub const MAC_FIELDS: [&str; 3] = ["mac", "system_mac", "mac_address"];

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
        Self::from_text(path, key_kind, text, is_yaml)
    }

    /// Parse inventory text (`path` is for messages).
    pub fn from_text(
        path: &Path,
        key_kind: KeyKind,
        text: String,
        is_yaml: bool,
    ) -> Result<Self, InventoryError> {
        let text = if is_yaml {
            // Stream YAML into JSON text: no parsed tree of the whole file in between.
            let mut json = Vec::with_capacity(text.len());
            let mut ser = serde_json::Serializer::new(&mut json);
            serde_transcode::transcode(serde_norway::Deserializer::from_str(&text), &mut ser)
                .map_err(|e| InventoryError::Parse {
                    path: path.to_owned(),
                    format: "YAML",
                    detail: e.to_string(),
                })?;
            String::from_utf8(json).map_err(|e| InventoryError::Parse {
                path: path.to_owned(),
                format: "YAML",
                detail: e.to_string(),
            })?
        } else {
            text
        };
        // JSON: split the top-level map into per-record text without building trees.
        let parse = |e: serde_json::Error| InventoryError::Parse {
            path: path.to_owned(),
            format: "JSON",
            detail: e.to_string(),
        };
        let map = serde_json::from_str::<RawMap>(&text).map_err(parse)?.0;
        let mut inv = Self::empty(path, key_kind, map.len());
        for (key, raw) in map {
            let json: Arc<str> = raw.get().into();
            let scalars: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str::<ScalarFields>(raw.get())
                    .map_err(|_| inv.shape(format!("the entry under {key:?} is not an object")))?
                    .0;
            inv.add(key, scalars, json)?;
        }
        Ok(inv)
    }

    fn empty(path: &Path, key_kind: KeyKind, capacity: usize) -> Self {
        FileInventory {
            path: path.to_owned(),
            key_kind,
            records: Vec::with_capacity(capacity),
            by_key: HashMap::with_capacity(capacity),
            by_serial: HashMap::new(),
            by_mac: HashMap::new(),
        }
    }

    fn shape(&self, detail: String) -> InventoryError {
        InventoryError::Shape {
            path: self.path.clone(),
            key: self.key_kind.name(),
            detail,
        }
    }

    /// Index and keep one record.
    fn add(
        &mut self,
        key: String,
        scalars: serde_json::Map<String, serde_json::Value>,
        json: Arc<str>,
    ) -> Result<(), InventoryError> {
        let inv = self;
        let key_kind = inv.key_kind;
        let path = inv.path.clone();
        let value = &scalars;
        {
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
            let scalars = scalars
                .into_iter()
                .map(|(k, v)| (k.into_boxed_str(), v))
                .collect();
            inv.records.push(Record { key, scalars, json });
        }
        Ok(())
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

    pub fn lookup(&self, field: &str, value: &str) -> Result<Option<Arc<str>>, LookupError> {
        let index = match field {
            "mac" => {
                let mac: Mac = value.parse().map_err(LookupError::BadMac)?;
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
                    r.scalars
                        .iter()
                        .find(|(name, _)| &**name == other)
                        .is_some_and(|(_, v)| match v {
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

/// A JSON object's entries as raw text, in file order.
struct RawMap(Vec<(String, Box<serde_json::value::RawValue>)>);

impl<'de> serde::Deserialize<'de> for RawMap {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = RawMap;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map from key to record")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<RawMap, A::Error> {
                let mut out = Vec::with_capacity(m.size_hint().unwrap_or(0));
                while let Some(entry) = m.next_entry()? {
                    out.push(entry);
                }
                Ok(RawMap(out))
            }
        }
        d.deserialize_map(Visit)
    }
}

/// An object's top-level scalar fields; nested objects and arrays are skipped unparsed.
struct ScalarFields(serde_json::Map<String, serde_json::Value>);

impl<'de> serde::Deserialize<'de> for ScalarFields {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = ScalarFields;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<ScalarFields, A::Error> {
                let mut out = serde_json::Map::new();
                while let Some(k) = m.next_key::<String>()? {
                    let v: &serde_json::value::RawValue = m.next_value()?;
                    let text = v.get();
                    if !text.starts_with(['{', '[']) {
                        let value = serde_json::from_str(text).map_err(serde::de::Error::custom)?;
                        out.insert(k, value);
                    }
                }
                Ok(ScalarFields(out))
            }
        }
        d.deserialize_map(Visit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(
        path: &str,
        kind: KeyKind,
        v: serde_json::Value,
    ) -> Result<FileInventory, InventoryError> {
        FileInventory::from_text(Path::new(path), kind, v.to_string(), false)
    }

    fn inv(kind: KeyKind, v: serde_json::Value) -> FileInventory {
        parse("test.json", kind, v).unwrap()
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
        let err = parse(
            "dup.json",
            KeyKind::Mac,
            json!({"00:1c:73:00:00:01": {}, "001c.7300.0001": {}}),
        )
        .unwrap_err();
        assert!(err.to_string().contains("appears twice"), "{err}");
    }

    #[test]
    fn bad_shapes_say_what_is_wrong() {
        let err = parse("x.json", KeyKind::Mac, json!([1]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("x.json") && err.contains("map"), "{err}");
        let err = parse("x.json", KeyKind::Mac, json!({"zz": {}}))
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"zz\"") && err.contains("not a MAC"), "{err}");
        let err = parse("x.json", KeyKind::Mac, json!({"00:1c:73:00:00:01": 5}))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not an object"), "{err}");
    }

    #[test]
    fn yaml_files_read_like_json() {
        let yaml = "FOC1:\n  hostname: r1\n  mgmt_prefix: 24\n  vlans:\n  - id: 10\n";
        let i = FileInventory::from_text(Path::new("i.yaml"), KeyKind::Serial, yaml.into(), true)
            .unwrap();
        let rec = i.lookup("serial", "FOC1").unwrap().unwrap();
        let v: serde_json::Value = serde_json::from_str(&rec).unwrap();
        assert_eq!(
            v,
            json!({"hostname": "r1", "mgmt_prefix": 24, "vlans": [{"id": 10}]})
        );
        assert!(i.lookup("mgmt_prefix", "24").unwrap().is_some());
    }
}
