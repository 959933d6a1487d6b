//! `ztpd dhcp export`: an ISC dhcpd, Kea or dnsmasq configuration for every tenant's
//! subnets, with the same vendor-class rules the built-in server uses.
//!
//! Each writer gives every subnet its range, router, DNS and lease time; a bootfile
//! (option 67) per vendor class the tenant has a policy for; options 150 and 66 for
//! Cisco where the subnet names a TFTP server; and a fixed address for each device the
//! inventory gives one. The test suite runs each format through the real tool's check.

use std::fmt::Write;

use super::{BootOptions, FixedAddress, SubnetConfig, fixed_addresses, offers};
use crate::config::{Config, TenantConfig};
use crate::dialect::Registry;

/// Output format of `ztpd dhcp export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// ISC dhcpd (`dhcpd.conf`).
    Isc,
    /// Kea DHCPv4 (`kea-dhcp4.conf`, JSON).
    Kea,
    /// dnsmasq (`dnsmasq.conf`).
    Dnsmasq,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("no tenant named {0:?} (tenants: {1}); check --tenant")]
    NoTenant(String, String),
    #[error(
        "{0}: no DHCP subnets to export; add a [[tenants.dhcp]] table (subnet, range, server_url) to a tenant"
    )]
    Nothing(String),
    #[error(transparent)]
    Dhcp(Box<super::DhcpError>),
}

impl From<super::DhcpError> for ExportError {
    fn from(e: super::DhcpError) -> Self {
        ExportError::Dhcp(Box::new(e))
    }
}

/// One subnet with everything a writer needs.
struct Subnet<'a> {
    tenant: &'a TenantConfig,
    config: &'a SubnetConfig,
    /// 1-based, unique in the output (Kea's subnet id, tag and class names).
    id: usize,
    offers: Vec<BootOptions>,
    fixed: Vec<FixedAddress>,
}

impl Subnet<'_> {
    /// Name prefix for classes and tags: tenant and subnet number.
    fn tag(&self) -> String {
        format!("ztpd-{}-{}", self.tenant.name, self.id)
    }
}

/// The configuration for `config`'s subnets (one tenant's with `tenant`).
pub fn export(
    config: &Config,
    registry: &Registry,
    tenant: Option<&str>,
    format: Format,
) -> Result<String, ExportError> {
    if let Some(name) = tenant
        && !config.tenants.iter().any(|t| t.name == name)
    {
        let names: Vec<_> = config.tenants.iter().map(|t| t.name.as_str()).collect();
        return Err(ExportError::NoTenant(name.to_owned(), names.join(", ")));
    }
    let mut subnets = Vec::new();
    // Ids count over every tenant so they stay stable whether or not --tenant is given.
    let mut id = 0;
    for t in &config.tenants {
        for s in &t.dhcp {
            id += 1;
            if tenant.is_some_and(|n| n != t.name) {
                continue;
            }
            subnets.push(Subnet {
                tenant: t,
                config: s,
                id,
                offers: offers(registry, t, s),
                fixed: fixed_addresses(t, s)?,
            });
        }
    }
    if subnets.is_empty() {
        return Err(ExportError::Nothing(config.origin.clone()));
    }
    let header = format!(
        "Written by `ztpd dhcp export` from {}; regenerate it rather than editing it.",
        config.origin
    );
    Ok(match format {
        Format::Isc => isc(&header, &subnets),
        Format::Kea => kea(&header, &subnets),
        Format::Dnsmasq => dnsmasq(&header, &subnets),
    })
}

fn list<T: std::fmt::Display>(items: &[T], sep: &str) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(sep)
}

fn isc(header: &str, subnets: &[Subnet<'_>]) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# {header}");
    o.push_str("authoritative;\n");
    o.push_str("# Cisco's TFTP server address (RFC 5859); ISC dhcpd does not define it.\n");
    o.push_str("option tftp-server-address code 150 = array of ip-address;\n");
    for s in subnets {
        let c = s.config;
        let _ = writeln!(o, "\n# tenant {}", s.tenant.name);
        if c.relay.iter().any(|r| !c.subnet.contains(r)) {
            let _ = writeln!(
                o,
                "# relayed through {}: dhcpd selects this subnet by a giaddr inside it; \
                 configure those relays with an address in {}",
                list(&c.relay, ", "),
                c.subnet
            );
        }
        let _ = writeln!(
            o,
            "subnet {} netmask {} {{",
            c.subnet.network(),
            c.subnet.netmask()
        );
        let _ = writeln!(o, "  range {} {};", c.range.0, c.range.1);
        if let Some(r) = c.router {
            let _ = writeln!(o, "  option routers {r};");
        }
        if !c.dns.is_empty() {
            let _ = writeln!(o, "  option domain-name-servers {};", list(&c.dns, ", "));
        }
        let _ = writeln!(o, "  default-lease-time {};", c.lease_s);
        let _ = writeln!(o, "  max-lease-time {};", c.lease_s);
        for (i, b) in s.offers.iter().enumerate() {
            let keyword = if i == 0 { "if" } else { "} elsif" };
            let _ = writeln!(
                o,
                "  {keyword} substring(option vendor-class-identifier, 0, {}) = \"{}\" {{",
                b.class_prefix.len(),
                b.class_prefix
            );
            let _ = writeln!(o, "    # {}", b.rule);
            let _ = writeln!(o, "    option bootfile-name \"{}\";", b.bootfile);
            if let Some(tftp) = b.tftp_server {
                let _ = writeln!(o, "    option tftp-server-address {tftp};");
                let _ = writeln!(o, "    option tftp-server-name \"{tftp}\";");
            }
        }
        if !s.offers.is_empty() {
            o.push_str("  }\n");
        }
        o.push_str("}\n");
        for f in &s.fixed {
            let _ = writeln!(
                o,
                "host {}-{} {{ hardware ethernet {}; fixed-address {}; }}{}",
                s.tag(),
                hex(f),
                f.mac,
                f.ip,
                f.hostname
                    .as_deref()
                    .map(|h| format!(" # {}", comment(h)))
                    .unwrap_or_default()
            );
        }
    }
    o
}

/// A MAC as 12 hex digits, for names.
fn hex(f: &FixedAddress) -> String {
    f.mac.octets().iter().map(|b| format!("{b:02x}")).collect()
}

/// Inventory text inside a comment: one line, printable.
fn comment(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(64).collect()
}

fn kea(header: &str, subnets: &[Subnet<'_>]) -> String {
    use serde_json::{Value, json};
    let mut classes = Vec::new();
    let mut subnet4 = Vec::new();
    let mut interfaces: Vec<String> = Vec::new();
    for s in subnets {
        let c = s.config;
        if let Some(i) = &c.interface
            && !interfaces.contains(i)
        {
            interfaces.push(i.clone());
        }
        let mut options = Vec::new();
        if let Some(r) = c.router {
            options.push(json!({"name": "routers", "data": r.to_string()}));
        }
        if !c.dns.is_empty() {
            options.push(json!({"name": "domain-name-servers", "data": list(&c.dns, ", ")}));
        }
        // Class options apply wherever the class matches; "only-if-required" classes are
        // evaluated after subnet selection, and only for the subnets that require them,
        // so each subnet's bootfile URL stays on that subnet.
        let mut required = Vec::new();
        for b in &s.offers {
            let name = format!("{}-{}", s.tag(), b.rule);
            let mut data = vec![json!({"name": "boot-file-name", "data": b.bootfile})];
            if let Some(tftp) = b.tftp_server {
                data.push(json!({"name": "tftp-server-address", "data": tftp.to_string()}));
                data.push(json!({"name": "tftp-server-name", "data": tftp.to_string()}));
            }
            classes.push(json!({
                "name": name,
                "test": format!(
                    "substring(option[60].hex, 0, {}) == '{}'",
                    b.class_prefix.len(),
                    b.class_prefix
                ),
                "only-if-required": true,
                "option-data": data,
            }));
            required.push(Value::String(name));
        }
        let reservations: Vec<Value> = s
            .fixed
            .iter()
            .map(|f| json!({"hw-address": f.mac.to_string(), "ip-address": f.ip.to_string()}))
            .collect();
        let mut subnet = json!({
            "id": s.id,
            "subnet": c.subnet.to_string(),
            "pools": [{"pool": format!("{} - {}", c.range.0, c.range.1)}],
            "valid-lifetime": c.lease_s,
            "option-data": options,
            "require-client-classes": required,
            "reservations": reservations,
            "user-context": {"ztpd-tenant": s.tenant.name},
        });
        if !c.relay.is_empty()
            && let Some(map) = subnet.as_object_mut()
        {
            map.insert(
                "relay".into(),
                json!({"ip-addresses": c.relay.iter().map(ToString::to_string).collect::<Vec<_>>()}),
            );
        }
        subnet4.push(subnet);
    }
    if interfaces.is_empty() {
        interfaces.push("*".into());
    }
    let config = json!({
        "Dhcp4": {
            "comment": header,
            "interfaces-config": {"interfaces": interfaces},
            "authoritative": true,
            "lease-database": {"type": "memfile", "lfc-interval": 3600},
            "option-def": [
                {"name": "tftp-server-address", "code": 150, "type": "ipv4-address", "array": true, "space": "dhcp4"}
            ],
            "client-classes": classes,
            "subnet4": subnet4,
        }
    });
    let mut text = serde_json::to_string_pretty(&config).unwrap_or_default();
    text.push('\n');
    text
}

fn dnsmasq(header: &str, subnets: &[Subnet<'_>]) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# {header}");
    o.push_str("# DHCP only: no DNS service.\nport=0\ndhcp-authoritative\n");
    let mut interfaces: Vec<&str> = Vec::new();
    for s in subnets {
        if let Some(i) = &s.config.interface
            && !interfaces.contains(&i.as_str())
        {
            interfaces.push(i);
            let _ = writeln!(o, "interface={i}");
        }
    }
    // dnsmasq matches a vendor class anywhere in option 60, not only at its start.
    let mut rules: Vec<(&str, &str)> = Vec::new();
    for b in subnets.iter().flat_map(|s| &s.offers) {
        if !rules.iter().any(|(r, _)| *r == b.rule) {
            rules.push((b.rule, b.class_prefix));
        }
    }
    for (rule, prefix) in &rules {
        let _ = writeln!(o, "dhcp-vendorclass=set:{rule},{prefix}");
    }
    for s in subnets {
        let c = s.config;
        let tag = s.tag();
        let _ = writeln!(o, "\n# tenant {}", s.tenant.name);
        let _ = writeln!(
            o,
            "dhcp-range=set:{tag},{},{},{},{}",
            c.range.0,
            c.range.1,
            c.subnet.netmask(),
            c.lease_s
        );
        if let Some(r) = c.router {
            let _ = writeln!(o, "dhcp-option=tag:{tag},option:router,{r}");
        }
        if !c.dns.is_empty() {
            let _ = writeln!(
                o,
                "dhcp-option=tag:{tag},option:dns-server,{}",
                list(&c.dns, ",")
            );
        }
        for b in &s.offers {
            let _ = writeln!(
                o,
                "dhcp-option=tag:{tag},tag:{},option:bootfile-name,\"{}\"",
                b.rule, b.bootfile
            );
            if let Some(tftp) = b.tftp_server {
                let _ = writeln!(o, "dhcp-option=tag:{tag},tag:{},150,{tftp}", b.rule);
                let _ = writeln!(
                    o,
                    "dhcp-option=tag:{tag},tag:{},option:tftp-server,\"{tftp}\"",
                    b.rule
                );
            }
        }
        for f in &s.fixed {
            let _ = writeln!(o, "dhcp-host={},{}", f.mac, f.ip);
        }
    }
    o
}
