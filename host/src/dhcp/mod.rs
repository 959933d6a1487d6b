//! DHCP for zero-touch provisioning: which bootfile (option 67) a device is offered, from
//! the vendor-class rules of the dialect registry.
//!
//! Both consumers use the same rules, so an exported ISC/Kea/dnsmasq configuration and
//! the built-in server can never disagree about what a device gets:
//!
//! - [`export`]: writes an ISC dhcpd, Kea or dnsmasq configuration for every subnet.
//! - [`server`]: the built-in DHCPv4 server (off unless a subnet names an `interface`).
//!
//! The subnets themselves are configuration ([`crate::config::dhcp`]); the leases live in
//! [`crate::store::leases`]; the vendor-class rules come from the dialect registry.
//!
//! ```toml
//! [[tenants.dhcp]]
//! subnet = "192.0.2.0/24"
//! range = ["192.0.2.100", "192.0.2.199"]
//! router = "192.0.2.1"
//! server_url = "http://192.0.2.1:8080"
//! interface = "eth1"          # serve it with the built-in server
//! ```

pub mod export;
pub mod server;

use std::net::Ipv4Addr;
use std::path::PathBuf;

use ipnet::Ipv4Net;

pub use crate::config::SubnetConfig;
use crate::config::{InventoryConfig, TenantConfig};
use crate::dialect::{ClassMatch, Offer, Registry};
use crate::model::Mac;
use crate::sources::{FileInventory, MAC_FIELDS};

#[derive(Debug, thiserror::Error)]
pub enum DhcpError {
    #[error("tenant {tenant}, subnet {subnet}: {source}")]
    Inventory {
        tenant: String,
        subnet: Ipv4Net,
        source: crate::sources::InventoryError,
    },
    #[error(
        "tenant {tenant}, subnet {subnet}: inventory {path}, record {key:?}: field {field} = {value:?} is not an IPv4 address; fix the record or drop fixed_address_field"
    )]
    BadFixedAddress {
        tenant: String,
        subnet: Ipv4Net,
        path: PathBuf,
        key: String,
        field: String,
        value: String,
    },
    #[error(
        "tenant {tenant}, subnet {subnet}: fixed address {ip} is given to both {first} and {second} in the inventory; give each device its own"
    )]
    DuplicateFixedAddress {
        tenant: String,
        subnet: Ipv4Net,
        ip: Ipv4Addr,
        first: Mac,
        second: Mac,
    },
}

/// The boot options one vendor class gets on one subnet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootOptions {
    pub rule: &'static str,
    /// The vendor-class prefix the rule matches.
    pub class_prefix: &'static str,
    /// Option 67.
    pub bootfile: String,
    /// Options 150 and 66.
    pub tftp_server: Option<Ipv4Addr>,
}

/// Boot options of one rule for this tenant and subnet, if the tenant speaks its dialect.
fn boot_options(
    (dialect, rule): &(&'static str, crate::dialect::VendorRule),
    tenant: &TenantConfig,
    subnet: &SubnetConfig,
) -> Option<BootOptions> {
    if !tenant.speaks(dialect) {
        return None;
    }
    let Offer::Bootfile { path, tftp_options } = rule.offer;
    let ClassMatch::Prefix(class_prefix) = rule.class;
    // The default tenant's devices use the plain paths, like the seeds' option 67.
    let bootfile = if tenant.default {
        format!("{}/{path}", subnet.server_url)
    } else {
        format!("{}/t/{}/{path}", subnet.server_url, tenant.name)
    };
    Some(BootOptions {
        rule: rule.name,
        class_prefix,
        bootfile,
        tftp_server: subnet.tftp_server.filter(|_| tftp_options),
    })
}

/// Every vendor class this tenant's subnet offers a bootfile to, in rule order.
pub fn offers(
    registry: &Registry,
    tenant: &TenantConfig,
    subnet: &SubnetConfig,
) -> Vec<BootOptions> {
    registry
        .dhcp_rules()
        .iter()
        .filter_map(|r| boot_options(r, tenant, subnet))
        .collect()
}

/// What a device sending `vendor_class` (option 60) gets on this subnet: the first rule
/// that matches, if the tenant speaks its dialect.
pub fn boot_for(
    registry: &Registry,
    tenant: &TenantConfig,
    subnet: &SubnetConfig,
    vendor_class: &[u8],
) -> Option<BootOptions> {
    let rules = registry.dhcp_rules();
    let rule = rules.iter().find(|(_, r)| r.class.matches(vendor_class))?;
    boot_options(rule, tenant, subnet)
}

/// A device the inventory gives a fixed address on this subnet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixedAddress {
    pub mac: Mac,
    pub ip: Ipv4Addr,
    /// The record's `hostname`, if any.
    pub hostname: Option<String>,
}

/// Fixed addresses on `subnet`: inventory records with a MAC whose
/// `fixed_address_field` holds an address inside the subnet (records whose address lies
/// in another subnet belong to that one). Only file inventories are read.
pub fn fixed_addresses(
    tenant: &TenantConfig,
    subnet: &SubnetConfig,
) -> Result<Vec<FixedAddress>, DhcpError> {
    let Some(field) = &subnet.fixed_address_field else {
        return Ok(Vec::new());
    };
    let mut out: Vec<FixedAddress> = Vec::new();
    for source in &tenant.inventory {
        // File inventories only: ztpd looks NetBox devices up one at a time and never
        // lists a whole NetBox, so NetBox-backed tenants get leases from the range.
        let InventoryConfig::File { path, key } = source else {
            continue;
        };
        let inv = FileInventory::load(path, *key).map_err(|source| DhcpError::Inventory {
            tenant: tenant.name.clone(),
            subnet: subnet.subnet,
            source,
        })?;
        for k in inv.keys() {
            let Ok(Some(json)) = inv.lookup("key", k) else {
                continue;
            };
            let Ok(serde_json::Value::Object(record)) = serde_json::from_str(&json) else {
                continue;
            };
            let Some(value) = record.get(field.as_str()) else {
                continue;
            };
            let text = value.as_str().unwrap_or_default();
            let ip: Ipv4Addr = text.parse().map_err(|_| DhcpError::BadFixedAddress {
                tenant: tenant.name.clone(),
                subnet: subnet.subnet,
                path: path.clone(),
                key: k.to_owned(),
                field: field.clone(),
                value: value.to_string(),
            })?;
            if !subnet.subnet.contains(&ip) {
                continue;
            }
            let mac = k.parse::<Mac>().ok().or_else(|| {
                MAC_FIELDS
                    .iter()
                    .find_map(|f| record.get(*f)?.as_str()?.parse::<Mac>().ok())
            });
            let Some(mac) = mac else {
                tracing::warn!(
                    "tenant {}, subnet {}: inventory {} record {k:?} has {field} = {ip} but no MAC (key or mac/system_mac field); no fixed address for it",
                    tenant.name,
                    subnet.subnet,
                    path.display()
                );
                continue;
            };
            if let Some(other) = out.iter().find(|f| f.ip == ip && f.mac != mac) {
                return Err(DhcpError::DuplicateFixedAddress {
                    tenant: tenant.name.clone(),
                    subnet: subnet.subnet,
                    ip,
                    first: other.mac,
                    second: mac,
                });
            }
            if out.iter().any(|f| f.mac == mac) {
                // The same device in two inventory files: the first one wins, as lookups do.
                continue;
            }
            out.push(FixedAddress {
                mac,
                ip,
                hostname: record
                    .get("hostname")
                    .and_then(|h| h.as_str())
                    .map(str::to_owned),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PolicySlot;
    use std::path::Path;

    fn tenant(default: bool, policies: Vec<(Option<&str>, &str)>) -> TenantConfig {
        let text = "[api]\nopen = true\n[[tenants]]\nname = \"lab\"\npolicy = \"p.wasm\"\ntemplates = \"t\"\ninventory = { file = \"i.json\", key = \"mac\" }\n";
        let mut t = crate::config::Config::parse(text, "x.toml", Path::new("/x"))
            .unwrap()
            .tenants
            .remove(0);
        t.default = default;
        t.policies = policies
            .into_iter()
            .map(|(d, p)| PolicySlot {
                dialect: d.map(str::to_owned),
                path: p.into(),
            })
            .collect();
        t
    }

    fn subnet(extra: &str) -> SubnetConfig {
        let raw = toml::from_str(&format!(
            "subnet = \"192.0.2.0/24\"\nrange = [\"192.0.2.100\", \"192.0.2.199\"]\nserver_url = \"http://192.0.2.1:8080/\"\n{extra}"
        ))
        .unwrap();
        SubnetConfig::validate("lab", raw, None).unwrap()
    }

    #[test]
    fn vendor_classes_map_to_bootfiles_by_tenant() {
        let r = Registry::builtin();
        let s = subnet("tftp_server = \"192.0.2.5\"");
        let t = tenant(false, vec![(None, "p.wasm")]);
        let arista = boot_for(&r, &t, &s, b"Arista;DCS-7050SX3-48YC8;01.00;JPE1").unwrap();
        assert_eq!(arista.bootfile, "http://192.0.2.1:8080/t/lab/dynconfig");
        assert_eq!(arista.tftp_server, None);
        let cisco = boot_for(&r, &t, &s, b"ciscopnp").unwrap();
        assert_eq!(cisco.bootfile, "http://192.0.2.1:8080/t/lab/script.py");
        assert_eq!(cisco.tftp_server, Some(Ipv4Addr::new(192, 0, 2, 5)));
        assert_eq!(boot_for(&r, &t, &s, b"MSFT 5.0"), None);
        assert_eq!(
            boot_for(&r, &t, &s, b"arista"),
            None,
            "case-sensitive, as ISC"
        );

        let only_arista = tenant(true, vec![(Some("arista-eos"), "a.wasm")]);
        assert_eq!(
            boot_for(&r, &only_arista, &s, b"Arista").unwrap().bootfile,
            "http://192.0.2.1:8080/dynconfig"
        );
        assert_eq!(
            boot_for(&r, &only_arista, &s, b"ciscopnp"),
            None,
            "no IOS XE policy, no script"
        );
        assert_eq!(offers(&r, &only_arista, &s).len(), 1);
    }

    #[test]
    fn fixed_addresses_come_from_the_named_field() {
        let dir = std::env::temp_dir().join(format!("ztpd-dhcp-fixed-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let inv = dir.join("inv.json");
        std::fs::write(
            &inv,
            serde_json::json!({
                "FOC1": {"mac": "aabb.cc00.0001", "dhcp_ip": "192.0.2.10", "hostname": "r1"},
                "FOC2": {"mac": "aabb.cc00.0002", "dhcp_ip": "198.51.100.10"},
                "FOC3": {"dhcp_ip": "192.0.2.11"},
                "FOC4": {"mac": "aabb.cc00.0004"}
            })
            .to_string(),
        )
        .unwrap();
        let mut t = tenant(true, vec![(None, "p.wasm")]);
        t.inventory = vec![InventoryConfig::File {
            path: inv.clone(),
            key: crate::config::KeyKind::Serial,
        }];
        let s = subnet("fixed_address_field = \"dhcp_ip\"");
        let fixed = fixed_addresses(&t, &s).unwrap();
        assert_eq!(
            fixed,
            vec![FixedAddress {
                mac: "aa:bb:cc:00:00:01".parse().unwrap(),
                ip: Ipv4Addr::new(192, 0, 2, 10),
                hostname: Some("r1".into()),
            }]
        );
        std::fs::write(
            &inv,
            serde_json::json!({"FOC1": {"mac": "aabb.cc00.0001", "dhcp_ip": "not-an-ip"}})
                .to_string(),
        )
        .unwrap();
        let err = fixed_addresses(&t, &s).unwrap_err().to_string();
        assert!(err.contains("FOC1") && err.contains("dhcp_ip"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
