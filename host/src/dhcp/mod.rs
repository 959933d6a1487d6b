//! DHCP for zero-touch provisioning: the per-tenant subnet settings, and the one table of
//! vendor-class rules that decides which bootfile (option 67) a device is offered.
//!
//! Both consumers use the same rules, so an exported ISC/Kea/dnsmasq configuration and
//! the built-in server can never disagree about what a device gets:
//!
//! - [`export`]: writes an ISC dhcpd, Kea or dnsmasq configuration for every subnet.
//! - [`server`]: the built-in DHCPv4 server (off unless a subnet names an `interface`).
//! - [`leases`]: the built-in server's leases, in the same SQLite database as jobs.
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
pub mod leases;
pub mod server;

use std::net::Ipv4Addr;
use std::path::PathBuf;

use ipnet::Ipv4Net;
use serde::Deserialize;

use crate::config::{InventoryConfig, TenantConfig};
use crate::identity::Mac;
use crate::inventory::{FileInventory, MAC_FIELDS};
use crate::request::Dialect;

/// Default lease time: long enough for a device to boot, fetch and call back.
pub const DEFAULT_LEASE_S: u32 = 3600;
/// Largest dynamic range: the built-in server scans it to find a free address.
pub const MAX_RANGE: u32 = 65536;

#[derive(Debug, thiserror::Error)]
pub enum DhcpError {
    #[error("tenant {tenant}, subnet {subnet}: {source}")]
    Inventory {
        tenant: String,
        subnet: Ipv4Net,
        source: crate::inventory::InventoryError,
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

/// One `[[tenants.dhcp]]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSubnet {
    subnet: Ipv4Net,
    /// First and last address handed out dynamically.
    range: [Ipv4Addr; 2],
    router: Option<Ipv4Addr>,
    #[serde(default)]
    dns: Vec<Ipv4Addr>,
    lease_s: Option<u32>,
    /// How devices on this subnet reach ztpd's HTTP side; bootfile URLs start with it.
    server_url: Option<String>,
    /// Cisco: option 150 (and 66) for devices that fetch images or configs by TFTP.
    tftp_server: Option<Ipv4Addr>,
    /// Inventory field holding a device's fixed address (e.g. `dhcp_ip`); none: no
    /// fixed addresses.
    fixed_address_field: Option<String>,
    /// Serve this subnet with the built-in server on this interface.
    interface: Option<String>,
    /// Relay agent addresses (giaddr) this subnet is reached through, when they are not
    /// inside the subnet itself.
    #[serde(default)]
    relay: Vec<Ipv4Addr>,
}

/// A validated DHCP subnet of one tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct SubnetConfig {
    pub subnet: Ipv4Net,
    pub range: (Ipv4Addr, Ipv4Addr),
    pub router: Option<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
    pub lease_s: u32,
    /// Without a trailing slash.
    pub server_url: String,
    pub tftp_server: Option<Ipv4Addr>,
    pub fixed_address_field: Option<String>,
    /// The built-in server serves this subnet on this interface; none: export only.
    pub interface: Option<String>,
    pub relay: Vec<Ipv4Addr>,
}

impl SubnetConfig {
    /// Validate one subnet table. `callback_url` is the tenant's `callback.url`, used as
    /// the server URL when the subnet names none. Errors name the tenant and subnet.
    pub fn validate(
        tenant: &str,
        raw: RawSubnet,
        callback_url: Option<&str>,
    ) -> Result<Self, String> {
        let net = raw.subnet.trunc();
        let at = format!("tenant {tenant:?}, dhcp subnet {net}");
        if raw.subnet != net {
            return Err(format!(
                "{at}: subnet = \"{}\" has host bits set; write the network, \"{net}\"",
                raw.subnet
            ));
        }
        if net.prefix_len() > 30 {
            return Err(format!(
                "{at}: a /{} has no room for devices; use /30 or larger",
                net.prefix_len()
            ));
        }
        let [first, last] = raw.range;
        let host = |ip: Ipv4Addr| net.contains(&ip) && ip != net.network() && ip != net.broadcast();
        if !host(first) || !host(last) || first > last {
            return Err(format!(
                "{at}: range = [\"{first}\", \"{last}\"] must be two host addresses of {net}, the first not above the last"
            ));
        }
        if u32::from(last) - u32::from(first) >= MAX_RANGE {
            return Err(format!(
                "{at}: range holds more than {MAX_RANGE} addresses; make it smaller"
            ));
        }
        if let Some(r) = raw.router
            && !host(r)
        {
            return Err(format!(
                "{at}: router = \"{r}\" is not a host address of {net}"
            ));
        }
        if let Some(r) = raw.router
            && (first..=last).contains(&r)
        {
            return Err(format!(
                "{at}: router = \"{r}\" lies inside range; move the range or the router"
            ));
        }
        let server_url = raw
            .server_url
            .as_deref()
            .or(callback_url)
            .map(|u| u.trim_end_matches('/').to_owned())
            .ok_or_else(|| {
                format!(
                    "{at}: set server_url = \"http://ADDRESS:PORT\", how devices on this subnet reach ztpd (bootfile URLs start with it)"
                )
            })?;
        let url_ok = server_url
            .strip_prefix("http://")
            .or_else(|| server_url.strip_prefix("https://"))
            .is_some_and(|rest| {
                !rest.is_empty()
                    && !rest.contains(['/', '?', '#', '"', '\'', '\\'])
                    && rest.bytes().all(|b| b.is_ascii_graphic())
            });
        if !url_ok {
            return Err(format!(
                "{at}: server_url = {server_url:?} must be http://HOST[:PORT] (or https://) with no path"
            ));
        }
        let lease_s = raw.lease_s.unwrap_or(DEFAULT_LEASE_S);
        if !(60..=7 * 86400).contains(&lease_s) {
            return Err(format!(
                "{at}: lease_s = {lease_s} must be between 60 (a minute) and 604800 (a week)"
            ));
        }
        if let Some(f) = &raw.fixed_address_field
            && (f.is_empty() || !f.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        {
            return Err(format!(
                "{at}: fixed_address_field = {f:?} must name an inventory field such as \"dhcp_ip\""
            ));
        }
        if let Some(i) = &raw.interface
            && (i.is_empty() || i.len() > 15 || i.contains(['/', ' ']) || !i.is_ascii())
        {
            return Err(format!(
                "{at}: interface = {i:?} is not a network interface name such as \"eth1\""
            ));
        }
        for r in &raw.relay {
            if r.is_unspecified() || r.is_broadcast() {
                return Err(format!(
                    "{at}: relay = \"{r}\" is not a relay agent address"
                ));
            }
        }
        Ok(SubnetConfig {
            subnet: net,
            range: (first, last),
            router: raw.router,
            dns: raw.dns,
            lease_s,
            server_url,
            tftp_server: raw.tftp_server,
            fixed_address_field: raw.fixed_address_field,
            interface: raw.interface,
            relay: raw.relay,
        })
    }

    /// Does a request relayed through `giaddr` belong to this subnet?
    pub fn reached_through(&self, giaddr: Ipv4Addr) -> bool {
        self.subnet.contains(&giaddr) || self.relay.contains(&giaddr)
    }

    pub fn in_range(&self, ip: Ipv4Addr) -> bool {
        (self.range.0..=self.range.1).contains(&ip)
    }
}

/// Check subnets across every tenant: one subnet belongs to one tenant, a relay address
/// to one subnet, and an interface carries at most one directly attached subnet.
pub fn check_all<'a>(
    subnets: impl Iterator<Item = (&'a str, &'a SubnetConfig)>,
) -> Result<(), String> {
    let all: Vec<_> = subnets.collect();
    for (i, (ta, a)) in all.iter().enumerate() {
        for (tb, b) in &all[i + 1..] {
            if a.subnet.contains(&b.subnet.network()) || b.subnet.contains(&a.subnet.network()) {
                return Err(format!(
                    "dhcp subnet {} of tenant {ta:?} overlaps subnet {} of tenant {tb:?}; a DHCP server needs each address in one subnet",
                    a.subnet, b.subnet
                ));
            }
            if let Some(r) = a.relay.iter().find(|r| b.reached_through(**r)) {
                return Err(format!(
                    "relay address {r} is listed for subnet {} (tenant {ta:?}) but also leads to subnet {} (tenant {tb:?})",
                    a.subnet, b.subnet
                ));
            }
            if let (Some(ia), Some(ib)) = (&a.interface, &b.interface)
                && ia == ib
                && a.relay.is_empty()
                && b.relay.is_empty()
            {
                return Err(format!(
                    "subnets {} (tenant {ta:?}) and {} (tenant {tb:?}) are both served directly on interface {ia}; \
                     one of them must be reached through a relay (set relay = [\"GIADDR\"])",
                    a.subnet, b.subnet
                ));
            }
        }
    }
    Ok(())
}

/// How a vendor class is matched against option 60.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassMatch {
    /// Option 60 starts with these bytes (case-sensitive, as ISC's `substring` is).
    Prefix(&'static str),
}

impl ClassMatch {
    pub fn matches(self, vendor_class: &[u8]) -> bool {
        match self {
            ClassMatch::Prefix(p) => vendor_class.starts_with(p.as_bytes()),
        }
    }
}

/// What a vendor class is offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// Option 67 with the URL of this device-facing path; Cisco-style classes also get
    /// options 150 and 66 when the subnet names a TFTP server.
    Bootfile {
        path: &'static str,
        tftp_options: bool,
    },
}

/// One row of the vendor-class table.
#[derive(Debug, Clone, Copy)]
pub struct VendorRule {
    /// Class name in exported configurations.
    pub name: &'static str,
    /// The ZTP dialect these devices speak; offered only if the tenant has a policy for it.
    pub dialect: Dialect,
    pub class: ClassMatch,
    pub offer: Offer,
}

/// Vendor classes ztpd answers, first match wins.
///
/// - EOS sends `Arista;<model>;<hardware revision>;<serial>` in option 60 and fetches
///   option 67 over HTTP: the dynamic-config route.
/// - IOS XE at day zero sends `ciscopnp`; given option 67 it runs ZTP (downloads and
///   runs the guestshell script), given option 43 it would run Cisco PnP. ztpd has no
///   PnP dialect yet, so it offers the ZTP script; a PnP rule (option 43
///   `5A1N;B2;K4;I<ip>;J<port>`) belongs here once that dialect exists.
pub const RULES: &[VendorRule] = &[
    VendorRule {
        name: "arista-eos",
        dialect: Dialect::AristaEos,
        class: ClassMatch::Prefix("Arista"),
        offer: Offer::Bootfile {
            path: "dynconfig",
            tftp_options: false,
        },
    },
    VendorRule {
        name: "cisco-iosxe",
        dialect: Dialect::CiscoIosxe,
        class: ClassMatch::Prefix("ciscopnp"),
        offer: Offer::Bootfile {
            path: "script.py",
            tftp_options: true,
        },
    },
];

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

/// Does the tenant have a policy that answers `dialect`?
pub fn tenant_speaks(tenant: &TenantConfig, dialect: Dialect) -> bool {
    tenant
        .policies
        .iter()
        .any(|(d, _)| d.is_none_or(|d| d == dialect))
}

/// Boot options of one rule for this tenant and subnet, if the tenant speaks its dialect.
fn boot_options(
    rule: &VendorRule,
    tenant: &TenantConfig,
    subnet: &SubnetConfig,
) -> Option<BootOptions> {
    if !tenant_speaks(tenant, rule.dialect) {
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
pub fn offers(tenant: &TenantConfig, subnet: &SubnetConfig) -> Vec<BootOptions> {
    RULES
        .iter()
        .filter_map(|r| boot_options(r, tenant, subnet))
        .collect()
}

/// What a device sending `vendor_class` (option 60) gets on this subnet: the first rule
/// that matches, if the tenant speaks its dialect.
pub fn boot_for(
    tenant: &TenantConfig,
    subnet: &SubnetConfig,
    vendor_class: &[u8],
) -> Option<BootOptions> {
    let rule = RULES.iter().find(|r| r.class.matches(vendor_class))?;
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
    use std::path::Path;

    fn tenant(default: bool, policies: Vec<(Option<Dialect>, PathBuf)>) -> TenantConfig {
        let text = "[[tenants]]\nname = \"lab\"\npolicy = \"p.wasm\"\ntemplates = \"t\"\ninventory = { file = \"i.json\", key = \"mac\" }\n";
        let mut t = crate::config::Config::parse(text, "x.toml", Path::new("/x"))
            .unwrap()
            .tenants
            .remove(0);
        t.default = default;
        t.policies = policies;
        t
    }

    fn raw(extra: &str) -> RawSubnet {
        toml::from_str(&format!(
            "subnet = \"192.0.2.0/24\"\nrange = [\"192.0.2.100\", \"192.0.2.199\"]\nserver_url = \"http://192.0.2.1:8080/\"\n{extra}"
        ))
        .unwrap()
    }

    #[test]
    fn vendor_classes_map_to_bootfiles_by_tenant() {
        let s = SubnetConfig::validate("lab", raw("tftp_server = \"192.0.2.5\""), None).unwrap();
        assert_eq!(s.server_url, "http://192.0.2.1:8080");
        let t = tenant(false, vec![(None, "p.wasm".into())]);
        let arista = boot_for(&t, &s, b"Arista;DCS-7050SX3-48YC8;01.00;JPE1").unwrap();
        assert_eq!(arista.bootfile, "http://192.0.2.1:8080/t/lab/dynconfig");
        assert_eq!(arista.tftp_server, None);
        let cisco = boot_for(&t, &s, b"ciscopnp").unwrap();
        assert_eq!(cisco.bootfile, "http://192.0.2.1:8080/t/lab/script.py");
        assert_eq!(cisco.tftp_server, Some(Ipv4Addr::new(192, 0, 2, 5)));
        assert_eq!(boot_for(&t, &s, b"MSFT 5.0"), None);
        assert_eq!(boot_for(&t, &s, b"arista"), None, "case-sensitive, as ISC");

        let only_arista = tenant(true, vec![(Some(Dialect::AristaEos), "a.wasm".into())]);
        assert_eq!(
            boot_for(&only_arista, &s, b"Arista").unwrap().bootfile,
            "http://192.0.2.1:8080/dynconfig"
        );
        assert_eq!(
            boot_for(&only_arista, &s, b"ciscopnp"),
            None,
            "no IOS XE policy, no script"
        );
        assert_eq!(offers(&only_arista, &s).len(), 1);
    }

    #[test]
    fn bad_subnets_name_tenant_subnet_and_setting() {
        let bad = |extra: &str, want: &str| {
            let text =
                format!("subnet = \"192.0.2.0/24\"\nserver_url = \"http://192.0.2.1\"\n{extra}");
            let raw: RawSubnet = toml::from_str(&text).unwrap();
            let err = SubnetConfig::validate("lab", raw, None).unwrap_err();
            assert!(
                err.contains("tenant \"lab\"")
                    && err.contains("192.0.2.0/24")
                    && err.contains(want),
                "{err}"
            );
        };
        bad("range = [\"192.0.2.200\", \"192.0.2.100\"]", "range");
        bad("range = [\"192.0.2.100\", \"198.51.100.1\"]", "range");
        bad("range = [\"192.0.2.0\", \"192.0.2.10\"]", "range");
        bad(
            "range = [\"192.0.2.100\", \"192.0.2.110\"]\nrouter = \"192.0.2.105\"",
            "router",
        );
        bad(
            "range = [\"192.0.2.100\", \"192.0.2.110\"]\nlease_s = 5",
            "lease_s",
        );
        let raw: RawSubnet =
            toml::from_str("subnet = \"192.0.2.0/24\"\nrange = [\"192.0.2.100\", \"192.0.2.110\"]")
                .unwrap();
        let err = SubnetConfig::validate("lab", raw, None).unwrap_err();
        assert!(err.contains("server_url"), "{err}");
        let raw: RawSubnet = toml::from_str(
            "subnet = \"192.0.2.0/24\"\nrange = [\"192.0.2.100\", \"192.0.2.110\"]\nserver_url = \"http://x/a\"",
        )
        .unwrap();
        let err = SubnetConfig::validate("lab", raw, None).unwrap_err();
        assert!(err.contains("no path"), "{err}");
    }

    #[test]
    fn overlapping_subnets_are_refused() {
        let a = SubnetConfig::validate("a", raw(""), None).unwrap();
        let b = SubnetConfig::validate("b", raw(""), None).unwrap();
        let err = check_all([("a", &a), ("b", &b)].into_iter()).unwrap_err();
        assert!(err.contains("overlaps"), "{err}");
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
        let mut t = tenant(true, vec![(None, "p.wasm".into())]);
        t.inventory = vec![InventoryConfig::File {
            path: inv.clone(),
            key: crate::inventory::KeyKind::Serial,
        }];
        let s =
            SubnetConfig::validate("lab", raw("fixed_address_field = \"dhcp_ip\""), None).unwrap();
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
