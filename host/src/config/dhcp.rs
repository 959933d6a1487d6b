//! `[[tenants.dhcp]]`: the subnets a tenant's devices get addresses on, exported for an
//! external DHCP server (`ztpd dhcp export`) or served by the built-in one.
//!
//! ```toml
//! [[tenants.dhcp]]
//! subnet = "192.0.2.0/24"
//! range = ["192.0.2.100", "192.0.2.199"]
//! router = "192.0.2.1"
//! server_url = "http://192.0.2.1:8080"
//! interface = "eth1"          # serve it with the built-in server
//! ```

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::Deserialize;

/// Default lease time: long enough for a device to boot, fetch and call back.
pub const DEFAULT_LEASE_S: u32 = 3600;
/// Largest dynamic range: the built-in server scans it to find a free address.
pub const MAX_RANGE: u32 = 65536;

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

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(extra: &str) -> RawSubnet {
        toml::from_str(&format!(
            "subnet = \"192.0.2.0/24\"\nrange = [\"192.0.2.100\", \"192.0.2.199\"]\nserver_url = \"http://192.0.2.1:8080/\"\n{extra}"
        ))
        .unwrap()
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
        assert_eq!(
            SubnetConfig::validate("lab", raw_ok(), None)
                .unwrap()
                .server_url,
            "http://192.0.2.1:8080"
        );
    }

    fn raw_ok() -> RawSubnet {
        raw("")
    }

    #[test]
    fn overlapping_subnets_are_refused() {
        let a = SubnetConfig::validate("a", raw(""), None).unwrap();
        let b = SubnetConfig::validate("b", raw(""), None).unwrap();
        let err = check_all([("a", &a), ("b", &b)].into_iter()).unwrap_err();
        assert!(err.contains("overlaps"), "{err}");
    }
}
