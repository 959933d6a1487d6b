//! The built-in DHCPv4 server: one UDP socket on port 67 per interface named by a
//! `[[tenants.dhcp]]` subnet, bound to that interface (SO_BINDTODEVICE) so it never
//! answers on another network.
//!
//! DISCOVER → OFFER, REQUEST → ACK or NAK, RELEASE, DECLINE and INFORM. Addresses come
//! from the subnet's range (or the inventory's fixed address) through [`LeaseStore`];
//! option 67 comes from the same vendor-class rules the exporter uses. Replies go to
//! the relay (giaddr, port 67) for relayed requests, to the client's own address when it
//! has one, and to 255.255.255.255:68 otherwise (a client without an address cannot be
//! reached by unicast without writing its ARP entry, which needs a raw socket).
//!
//! Every packet comes from the network: anything malformed or unexpected is dropped with
//! a debug log line; nothing a packet holds can stop the server.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;

use dhcproto::v4::{
    Decodable, Decoder, DhcpOption, Encodable, Encoder, HType, Message, MessageType, Opcode,
    OptionCode,
};
use tokio::net::UdpSocket;

use super::{FixedAddress, SubnetConfig, boot_for, fixed_addresses};
use crate::config::{Config, TenantConfig};
use crate::dialect::Registry;
use crate::model::Mac;
use crate::store::leases::{ClientInfo, LeaseStore, Pool};

pub const SERVER_PORT: u16 = 67;
pub const CLIENT_PORT: u16 = 68;
/// The BOOTP magic cookie that starts the options.
const MAGIC: [u8; 4] = [99, 130, 83, 99];
/// Replies are padded to the BOOTP minimum; some clients drop shorter ones.
const MIN_REPLY: usize = 300;
/// How long an address a client declined stays out of the pool.
const DECLINE_HOLD_S: u32 = 600;

#[derive(Debug, thiserror::Error)]
pub enum DhcpServerError {
    #[error(
        "DHCP server on interface {interface}: {detail}; the built-in server needs root, or CAP_NET_RAW and CAP_NET_BIND_SERVICE (setcap cap_net_raw,cap_net_bind_service+ep ztpd)"
    )]
    Permission { interface: String, detail: String },
    #[error(
        "DHCP server on interface {interface}: {detail}; check `interface` of the [[tenants.dhcp]] subnets that name it"
    )]
    Interface { interface: String, detail: String },
    #[error(
        "DHCP server on interface {interface}: UDP port 67 is taken ({source}); stop the other DHCP server there or remove `interface` from its subnets"
    )]
    PortInUse {
        interface: String,
        source: std::io::Error,
    },
    #[error("DHCP server on interface {interface}: {source}")]
    Io {
        interface: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Dhcp(Box<super::DhcpError>),
}

impl From<super::DhcpError> for DhcpServerError {
    fn from(e: super::DhcpError) -> Self {
        DhcpServerError::Dhcp(Box::new(e))
    }
}

/// A subnet the built-in server serves.
#[derive(Debug)]
struct Served {
    tenant: TenantConfig,
    subnet: SubnetConfig,
    fixed: Vec<FixedAddress>,
    pool: Pool,
}

impl Served {
    fn fixed_for(&self, mac: Mac) -> Option<&FixedAddress> {
        self.fixed.iter().find(|f| f.mac == mac)
    }

    /// The pool, with the fixed addresses of every device but `mac` reserved.
    fn pool_for(&self, mac: Mac) -> Pool {
        let mut pool = self.pool.clone();
        if let Some(f) = self.fixed_for(mac) {
            pool.reserved.remove(&f.ip);
        }
        pool
    }
}

/// The state behind one interface's socket.
#[derive(Debug)]
pub struct Responder {
    interface: String,
    /// Our address on the interface: option 54, and where relays send.
    server_ip: Ipv4Addr,
    /// Subnets served on this interface; the directly attached one has no `relay`.
    subnets: Vec<Served>,
    leases: LeaseStore,
    registry: Registry,
    /// Packets per client MAC ([`PER_MAC_PER_S`], burst [`PER_MAC_BURST`]).
    per_mac: MacLimiter,
}

/// A client MAC may send this many packets a second on average...
const PER_MAC_PER_S: u32 = 1;
/// ...and this many in a burst: a booting client sends a DISCOVER and a REQUEST, and
/// retransmits after 4, 8, 16 s; past it, its packets are dropped (and logged).
const PER_MAC_BURST: u32 = 8;

/// MACs the per-MAC limiter remembers; past this (a flood of spoofed MACs) it starts
/// afresh, so its memory stays bounded (a few MB).
const MAX_TRACKED_MACS: usize = 65_536;

/// The per-MAC limiter, replaced by a fresh one when it tracks too many MACs.
type MacLimiter = arc_swap::ArcSwap<governor::DefaultKeyedRateLimiter<Mac>>;

fn fresh_mac_limiter() -> Arc<governor::DefaultKeyedRateLimiter<Mac>> {
    let per_s = std::num::NonZeroU32::new(PER_MAC_PER_S).unwrap_or(std::num::NonZeroU32::MIN);
    let burst = std::num::NonZeroU32::new(PER_MAC_BURST).unwrap_or(std::num::NonZeroU32::MIN);
    Arc::new(governor::RateLimiter::keyed(
        governor::Quota::per_second(per_s).allow_burst(burst),
    ))
}

fn mac_limiter() -> MacLimiter {
    arc_swap::ArcSwap::new(fresh_mac_limiter())
}

/// The running server; its sockets close when it is dropped.
#[derive(Debug)]
pub struct DhcpServer {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Interfaces served, for the start-up log.
    pub interfaces: Vec<String>,
}

impl Drop for DhcpServer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl DhcpServer {
    /// Open a socket on every interface a subnet names and serve; `None` if no subnet
    /// names one (the built-in server is off).
    pub async fn start(
        config: &Config,
        leases: LeaseStore,
        registry: &Registry,
    ) -> Result<Option<Self>, DhcpServerError> {
        let mut interfaces: Vec<String> = Vec::new();
        for s in config.tenants.iter().flat_map(|t| &t.dhcp) {
            if let Some(i) = &s.interface
                && !interfaces.contains(i)
            {
                interfaces.push(i.clone());
            }
        }
        if interfaces.is_empty() {
            return Ok(None);
        }
        let mut tasks = Vec::new();
        for interface in &interfaces {
            let responder = Arc::new(Responder::new(
                config,
                interface,
                leases.clone(),
                registry.clone(),
            )?);
            let socket = open_socket(interface)?;
            tracing::info!(
                "DHCP server on {interface} ({}): {}",
                responder.server_ip,
                responder
                    .subnets
                    .iter()
                    .map(|s| format!("tenant {} subnet {}", s.tenant.name, s.subnet.subnet))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            tasks.push(tokio::spawn(serve(socket, responder)));
        }
        Ok(Some(DhcpServer { tasks, interfaces }))
    }
}

impl Responder {
    /// Gather what `interface` serves: its subnets with their fixed addresses, and our
    /// address there.
    pub fn new(
        config: &Config,
        interface: &str,
        leases: LeaseStore,
        registry: Registry,
    ) -> Result<Self, DhcpServerError> {
        let addresses = interface_addresses(interface)?;
        let subnets = served(config, Some(interface))?;
        // Prefer an address inside the directly attached subnet: clients there must
        // be able to reach the server identifier.
        let direct = subnets.iter().find(|s| s.subnet.relay.is_empty());
        let server_ip = addresses
            .iter()
            .find(|a| direct.is_some_and(|d| d.subnet.subnet.contains(*a)))
            .or(addresses.first())
            .copied()
            .ok_or_else(|| DhcpServerError::Interface {
                interface: interface.to_owned(),
                detail: "the interface has no IPv4 address; give it one in the subnet it serves"
                    .into(),
            })?;
        Ok(Responder {
            interface: interface.to_owned(),
            server_ip,
            subnets,
            leases,
            registry,
            per_mac: mac_limiter(),
        })
    }

    /// Answer one datagram: the reply and where it goes, or `None` (dropped, logged).
    pub async fn handle(&self, packet: &[u8], from: SocketAddr) -> Option<(Vec<u8>, SocketAddrV4)> {
        let iface = &self.interface;
        let msg = match decode(packet) {
            Ok(m) => m,
            Err(why) => {
                tracing::debug!(
                    "DHCP on {iface}: dropped {} bytes from {from}: {why}",
                    packet.len()
                );
                return None;
            }
        };
        let drop = |why: &str| {
            tracing::debug!("DHCP on {iface}: dropped a packet from {from}: {why}");
        };
        let Some(kind) = msg.opts().msg_type() else {
            drop("no DHCP message type (BOOTP is not served)");
            return None;
        };
        let giaddr = msg.giaddr();
        // A relayed packet counts only if its giaddr is a relay configured for a subnet
        // and it came from one of that subnet's relays: anyone else could name any
        // subnet and draw its addresses.
        let served = if giaddr.is_unspecified() {
            self.subnets.iter().find(|s| s.subnet.relay.is_empty())
        } else {
            self.subnets.iter().find(|s| {
                s.subnet.relay.contains(&giaddr)
                    && matches!(from.ip(), std::net::IpAddr::V4(ip) if s.subnet.relay.contains(&ip))
            })
        };
        let Some(served) = served else {
            drop(&format!(
                "giaddr {giaddr} from {}: no subnet here is relayed through it (tenants.dhcp.relay)",
                from.ip()
            ));
            return None;
        };
        let mut octets = [0u8; 6];
        octets.copy_from_slice(msg.chaddr());
        let mac = Mac::from_octets(octets);
        let limiter = self.per_mac.load();
        if limiter.len() > MAX_TRACKED_MACS {
            limiter.retain_recent();
            if limiter.len() > MAX_TRACKED_MACS {
                tracing::warn!(
                    "DHCP on {iface}: over {MAX_TRACKED_MACS} client MACs seen within seconds (spoofed?); per-MAC limits start afresh"
                );
                self.per_mac.store(fresh_mac_limiter());
            }
        }
        if self.per_mac.load().check_key(&mac).is_err() {
            drop(&format!(
                "client {mac} sends more than {PER_MAC_BURST} packets in a burst"
            ));
            return None;
        }
        let vendor_class = match msg.opts().get(OptionCode::ClassIdentifier) {
            Some(DhcpOption::ClassIdentifier(v)) => Some(v.clone()),
            _ => None,
        };
        let boot = vendor_class
            .as_deref()
            .and_then(|v| boot_for(&self.registry, &served.tenant, &served.subnet, v));
        let fixed = served.fixed_for(mac);
        let client = ClientInfo {
            hostname: match msg.opts().get(OptionCode::Hostname) {
                Some(DhcpOption::Hostname(h)) => Some(printable(h)),
                _ => fixed.and_then(|f| f.hostname.clone()),
            },
            vendor_class: vendor_class
                .as_deref()
                .map(|v| printable(&String::from_utf8_lossy(v))),
            bootfile: boot.as_ref().map(|b| b.bootfile.clone()),
        };
        let requested = match msg.opts().get(OptionCode::RequestedIpAddress) {
            Some(DhcpOption::RequestedIpAddress(ip)) => Some(*ip),
            _ => None,
        };
        let server_id = match msg.opts().get(OptionCode::ServerIdentifier) {
            Some(DhcpOption::ServerIdentifier(ip)) => Some(*ip),
            _ => None,
        };
        let tenant = &served.tenant.name;
        let subnet = served.subnet.subnet;
        let store_failed = |e: crate::store::StoreError| {
            tracing::warn!("DHCP tenant {tenant}, subnet {subnet}: lease database: {e}");
        };
        let (reply_type, yiaddr) = match kind {
            MessageType::Discover => {
                let offered = self
                    .leases
                    .offer(
                        served.pool_for(mac),
                        mac.to_string(),
                        fixed.map(|f| f.ip),
                        requested,
                        client,
                    )
                    .await
                    .map_err(store_failed)
                    .ok()?;
                let Some(ip) = offered else {
                    match fixed {
                        Some(f) => tracing::warn!(
                            "DHCP tenant {tenant}, subnet {subnet}: fixed address {} of {mac} is held by another client; no offer",
                            f.ip
                        ),
                        None => {
                            tracing::warn!(
                                "DHCP tenant {tenant}, subnet {subnet}: address pool {}-{} is full; no offer for {mac}. Widen `range` or shorten `lease_s`",
                                served.subnet.range.0,
                                served.subnet.range.1
                            );
                            self.leases.note_pool_full(&served.pool.subnet);
                        }
                    }
                    return None;
                };
                (MessageType::Offer, ip)
            }
            MessageType::Request => {
                if server_id.is_some_and(|id| id != self.server_ip) {
                    drop("REQUEST for another server's offer");
                    return None;
                }
                let ip = requested.unwrap_or(msg.ciaddr());
                if ip.is_unspecified() {
                    drop("REQUEST without an address");
                    return None;
                }
                let granted = self
                    .leases
                    .bind(
                        served.pool_for(mac),
                        mac.to_string(),
                        ip,
                        fixed.map(|f| f.ip),
                        served.subnet.lease_s,
                        client,
                    )
                    .await
                    .map_err(store_failed)
                    .ok()?;
                if granted {
                    tracing::info!(
                        "DHCP tenant {tenant}, subnet {subnet}: {ip} leased to {mac}{}",
                        boot.as_ref()
                            .map(|b| format!(", bootfile {}", b.bootfile))
                            .unwrap_or_default()
                    );
                    (MessageType::Ack, ip)
                } else {
                    tracing::info!("DHCP tenant {tenant}, subnet {subnet}: NAK {ip} for {mac}");
                    (MessageType::Nak, Ipv4Addr::UNSPECIFIED)
                }
            }
            MessageType::Release => {
                let _ = self
                    .leases
                    .release(served.pool.subnet.clone(), mac.to_string(), msg.ciaddr())
                    .await
                    .map_err(store_failed);
                return None;
            }
            MessageType::Decline => {
                if let Some(ip) = requested {
                    tracing::warn!(
                        "DHCP tenant {tenant}, subnet {subnet}: {mac} declined {ip} (another host uses it); parked for {DECLINE_HOLD_S} s"
                    );
                    let _ = self
                        .leases
                        .decline(served.pool_for(mac), mac.to_string(), ip, DECLINE_HOLD_S)
                        .await
                        .map_err(store_failed);
                }
                return None;
            }
            MessageType::Inform => (MessageType::Ack, Ipv4Addr::UNSPECIFIED),
            other => {
                drop(&format!("message type {other:?} is not for a server"));
                return None;
            }
        };
        let reply = self.reply(
            &msg,
            served,
            reply_type,
            yiaddr,
            kind == MessageType::Inform,
            boot.as_ref(),
        );
        let mut bytes = Vec::with_capacity(MIN_REPLY);
        if let Err(e) = reply.encode(&mut Encoder::new(&mut bytes)) {
            tracing::warn!(
                "DHCP tenant {tenant}, subnet {subnet}: cannot encode a reply for {mac}: {e}"
            );
            return None;
        }
        if bytes.len() < MIN_REPLY {
            bytes.resize(MIN_REPLY, 0);
        }
        let to = if !giaddr.is_unspecified() {
            SocketAddrV4::new(giaddr, SERVER_PORT)
        } else if !msg.ciaddr().is_unspecified() && reply_type != MessageType::Nak {
            SocketAddrV4::new(msg.ciaddr(), CLIENT_PORT)
        } else {
            SocketAddrV4::new(Ipv4Addr::BROADCAST, CLIENT_PORT)
        };
        Some((bytes, to))
    }

    fn reply(
        &self,
        req: &Message,
        served: &Served,
        kind: MessageType,
        yiaddr: Ipv4Addr,
        inform: bool,
        boot: Option<&super::BootOptions>,
    ) -> Message {
        let s = &served.subnet;
        let mut r = Message::default();
        r.set_opcode(Opcode::BootReply)
            .set_htype(HType::Eth)
            .set_xid(req.xid())
            .set_flags(req.flags())
            .set_giaddr(req.giaddr())
            .set_chaddr(req.chaddr());
        if inform {
            r.set_ciaddr(req.ciaddr());
        }
        let o = r.opts_mut();
        o.insert(DhcpOption::MessageType(kind));
        o.insert(DhcpOption::ServerIdentifier(self.server_ip));
        if let Some(DhcpOption::ClientIdentifier(id)) = req.opts().get(OptionCode::ClientIdentifier)
        {
            // RFC 6842: echo the client identifier.
            o.insert(DhcpOption::ClientIdentifier(id.clone()));
        }
        if kind == MessageType::Nak {
            return r;
        }
        r.set_yiaddr(yiaddr);
        let o = r.opts_mut();
        if !inform {
            o.insert(DhcpOption::AddressLeaseTime(s.lease_s));
            o.insert(DhcpOption::Renewal(s.lease_s / 2));
            o.insert(DhcpOption::Rebinding(s.lease_s / 8 * 7));
        }
        o.insert(DhcpOption::SubnetMask(s.subnet.netmask()));
        if let Some(router) = s.router {
            o.insert(DhcpOption::Router(vec![router]));
        }
        if !s.dns.is_empty() {
            o.insert(DhcpOption::DomainNameServer(s.dns.clone()));
        }
        if let Some(b) = boot {
            o.insert(DhcpOption::BootfileName(b.bootfile.clone().into_bytes()));
            if let Some(tftp) = b.tftp_server {
                o.insert(DhcpOption::TFTPServerAddress(tftp));
                o.insert(DhcpOption::TFTPServerName(tftp.to_string().into_bytes()));
            }
        }
        r
    }
}

/// The subnets served on `interface` (every subnet with `None`), with their fixed
/// addresses read from the inventory.
fn served(config: &Config, interface: Option<&str>) -> Result<Vec<Served>, DhcpServerError> {
    let mut out = Vec::new();
    for t in &config.tenants {
        for s in t
            .dhcp
            .iter()
            .filter(|s| interface.is_none() || s.interface.as_deref() == interface)
        {
            let fixed = fixed_addresses(t, s)?;
            out.push(Served {
                pool: Pool {
                    tenant: t.name.clone(),
                    subnet: s.subnet.to_string(),
                    range: s.range,
                    reserved: fixed.iter().map(|f| f.ip).collect::<HashSet<_>>(),
                },
                tenant: t.clone(),
                subnet: s.clone(),
                fixed,
            });
        }
    }
    Ok(out)
}

/// Decode a request, refusing what the rest of the server must never see.
fn decode(packet: &[u8]) -> Result<Message, String> {
    // Fixed header (236 bytes) and the magic cookie.
    if packet.len() < 240 {
        return Err(format!(
            "{} bytes is shorter than a DHCP header",
            packet.len()
        ));
    }
    if packet[236..240] != MAGIC {
        return Err("no DHCP magic cookie".into());
    }
    // The parser asserts on some option lengths (debug assertions) and subtracts from
    // others; a panic in it drops this packet, not the server.
    let decoded = std::panic::catch_unwind(|| Message::decode(&mut Decoder::new(packet)))
        .map_err(|_| "the DHCP parser failed on it".to_owned())?;
    let msg = decoded.map_err(|e| format!("malformed DHCP message: {e}"))?;
    if msg.opcode() != Opcode::BootRequest {
        return Err("not a BOOTREQUEST".into());
    }
    // chaddr() slices by hlen; anything but Ethernet is refused before it is read.
    if msg.htype() != HType::Eth || msg.hlen() != 6 {
        return Err(format!(
            "hardware type {:?} with address length {} (only Ethernet is served)",
            msg.htype(),
            msg.hlen()
        ));
    }
    Ok(msg)
}

/// Client-supplied text for logs and the database: printable, bounded.
fn printable(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(255).collect()
}

/// IPv4 addresses of `interface`.
fn interface_addresses(interface: &str) -> Result<Vec<Ipv4Addr>, DhcpServerError> {
    let all = nix::ifaddrs::getifaddrs().map_err(|e| DhcpServerError::Interface {
        interface: interface.to_owned(),
        detail: format!("cannot list interface addresses: {e}"),
    })?;
    let mut found = false;
    let mut out = Vec::new();
    for a in all.filter(|a| a.interface_name == interface) {
        found = true;
        if let Some(sin) = a.address.as_ref().and_then(|s| s.as_sockaddr_in()) {
            out.push(sin.ip());
        }
    }
    if !found {
        return Err(DhcpServerError::Interface {
            interface: interface.to_owned(),
            detail: "no such network interface".into(),
        });
    }
    Ok(out)
}

/// UDP port 67 on `interface` only, allowed to broadcast.
fn open_socket(interface: &str) -> Result<UdpSocket, DhcpServerError> {
    use socket2::{Domain, Protocol, Socket, Type};
    let io = |source: std::io::Error| DhcpServerError::Io {
        interface: interface.to_owned(),
        source,
    };
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).map_err(io)?;
    socket.set_reuse_address(true).map_err(io)?;
    socket.set_broadcast(true).map_err(io)?;
    socket
        .bind_device(Some(interface.as_bytes()))
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::PermissionDenied => DhcpServerError::Permission {
                interface: interface.to_owned(),
                detail: format!("cannot bind to the interface (SO_BINDTODEVICE): {e}"),
            },
            _ => DhcpServerError::Interface {
                interface: interface.to_owned(),
                detail: format!("cannot bind to the interface: {e}"),
            },
        })?;
    let addr = SocketAddr::from((Ipv4Addr::UNSPECIFIED, SERVER_PORT));
    socket.bind(&addr.into()).map_err(|e| match e.kind() {
        std::io::ErrorKind::PermissionDenied => DhcpServerError::Permission {
            interface: interface.to_owned(),
            detail: format!("cannot bind UDP port 67: {e}"),
        },
        std::io::ErrorKind::AddrInUse => DhcpServerError::PortInUse {
            interface: interface.to_owned(),
            source: e,
        },
        _ => io(e),
    })?;
    socket.set_nonblocking(true).map_err(io)?;
    UdpSocket::from_std(socket.into()).map_err(io)
}

async fn serve(socket: UdpSocket, responder: Arc<Responder>) {
    let mut buf = vec![0u8; 4096];
    loop {
        let (n, from) = match socket.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                // ICMP errors from earlier sends surface here; the socket stays usable.
                tracing::debug!("DHCP on {}: receive: {e}", responder.interface);
                continue;
            }
        };
        let Some((reply, to)) = responder.handle(&buf[..n], from).await else {
            continue;
        };
        if let Err(e) = socket.send_to(&reply, SocketAddr::V4(to)).await {
            tracing::warn!(
                "DHCP on {}: cannot send the reply to {to}: {e}",
                responder.interface
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Db;

    fn responder() -> Responder {
        responder_holding(crate::store::leases::OFFER_HOLD_MS)
    }

    /// A responder for 192.0.2.0/24 (two dynamic addresses, relay 198.51.100.1) whose
    /// offers hold for `hold_ms`.
    fn responder_holding(hold_ms: i64) -> Responder {
        let text = r#"
[api]
open = true
[[tenants]]
name = "lab"
policy = "p.wasm"
templates = "t"
inventory = { file = "/nonexistent/i.json", key = "mac" }
[[tenants.dhcp]]
subnet = "192.0.2.0/24"
range = ["192.0.2.100", "192.0.2.101"]
router = "192.0.2.1"
server_url = "http://192.0.2.1:8080"
[[tenants.dhcp]]
subnet = "203.0.113.0/24"
range = ["203.0.113.100", "203.0.113.110"]
router = "203.0.113.1"
server_url = "http://192.0.2.1:8080"
relay = ["198.51.100.1"]
"#;
        let config = Config::parse(text, "x.toml", std::path::Path::new("/x")).unwrap();
        let leases = LeaseStore::new(Db::in_memory().unwrap()).with_offer_hold_ms(hold_ms);
        Responder {
            interface: "test".into(),
            server_ip: Ipv4Addr::new(192, 0, 2, 1),
            subnets: served(&config, None).unwrap(),
            leases,
            registry: Registry::builtin(),
            per_mac: mac_limiter(),
        }
    }

    fn request(kind: MessageType, mac: [u8; 6], vendor: Option<&str>) -> Vec<u8> {
        let mut m = Message::default();
        m.set_opcode(Opcode::BootRequest)
            .set_htype(HType::Eth)
            .set_xid(0x1234)
            .set_chaddr(&mac);
        m.opts_mut().insert(DhcpOption::MessageType(kind));
        if let Some(v) = vendor {
            m.opts_mut()
                .insert(DhcpOption::ClassIdentifier(v.as_bytes().to_vec()));
        }
        let mut out = Vec::new();
        m.encode(&mut Encoder::new(&mut out)).unwrap();
        out
    }

    fn from() -> SocketAddr {
        "0.0.0.0:68".parse().unwrap()
    }

    fn decoded(reply: &[u8]) -> Message {
        Message::decode(&mut Decoder::new(reply)).unwrap()
    }

    #[tokio::test]
    async fn discover_gets_an_offer_with_the_vendor_bootfile() {
        let r = responder();
        let (reply, to) = r
            .handle(
                &request(
                    MessageType::Discover,
                    [0, 0x1c, 0x73, 0, 0, 1],
                    Some("Arista;DCS-7050"),
                ),
                from(),
            )
            .await
            .unwrap();
        assert_eq!(to, SocketAddrV4::new(Ipv4Addr::BROADCAST, 68));
        let m = decoded(&reply);
        assert_eq!(m.opts().msg_type(), Some(MessageType::Offer));
        assert_eq!(m.yiaddr(), Ipv4Addr::new(192, 0, 2, 100));
        assert_eq!(
            m.opts().get(OptionCode::BootfileName),
            Some(&DhcpOption::BootfileName(
                b"http://192.0.2.1:8080/t/lab/dynconfig".to_vec()
            ))
        );
    }

    #[tokio::test]
    async fn a_full_pool_is_reported() {
        let r = responder();
        for last in 1..=3u8 {
            let answer = r
                .handle(
                    &request(MessageType::Discover, [2, 0, 0, 0, 0, last], None),
                    from(),
                )
                .await;
            assert_eq!(answer.is_some(), last <= 2, "client {last}");
        }
        assert_eq!(r.leases.pool_full_counts().get("192.0.2.0/24"), Some(&1));
    }

    #[tokio::test]
    async fn garbage_and_truncated_packets_are_dropped() {
        let r = responder();
        let good = request(MessageType::Discover, [2, 0, 0, 0, 0, 9], Some("ciscopnp"));
        // Every truncation of a valid packet.
        for n in 0..good.len() {
            let _ = r.handle(&good[..n], from()).await;
        }
        // Pseudo-random bytes (fixed seed), with and without a valid header and cookie.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for i in 0..3000 {
            let len = (next() % 700) as usize;
            let mut p: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if i % 2 == 0 && p.len() > 240 {
                p[..240].copy_from_slice(&good[..240]);
                // A hostile hardware length must not reach chaddr().
                p[2] = (next() % 256) as u8;
            }
            if r.handle(&p, from()).await.is_some() {
                // A random packet that happens to be a valid DISCOVER may be answered;
                // what matters is that nothing panicked.
            }
        }
        // Hostile option lengths after a valid header: the parser keeps what it could
        // read; whatever is answered is a well-formed offer.
        for tail in [
            &[53, 1, 1, 60, 255, b'x', 55, 200][..],
            &[53, 1, 1, 94, 0, 255],
            &[53, 1, 1, 150, 1, 7, 255],
            &[53, 0, 255],
        ] {
            let mut p = good[..240].to_vec();
            p.extend_from_slice(tail);
            if let Some((reply, _)) = r.handle(&p, from()).await {
                assert_eq!(decoded(&reply).opts().msg_type(), Some(MessageType::Offer));
            }
        }
        // Not a request, or not Ethernet.
        let mut reply = good.clone();
        reply[0] = 2;
        assert!(r.handle(&reply, from()).await.is_none());
        let mut long_hw = good.clone();
        long_hw[2] = 200;
        assert!(r.handle(&long_hw, from()).await.is_none());
        // The server still answers afterwards (another client: this one is past its
        // per-MAC burst by now).
        let fresh = request(MessageType::Discover, [2, 0, 0, 0, 0, 10], Some("ciscopnp"));
        assert!(r.handle(&fresh, from()).await.is_some());
    }

    fn relayed(giaddr: Ipv4Addr, mac_last: u8) -> Vec<u8> {
        let mut m = decoded(&request(
            MessageType::Discover,
            [2, 0, 0, 0, 1, mac_last],
            None,
        ));
        m.set_giaddr(giaddr);
        let mut p = Vec::new();
        m.encode(&mut Encoder::new(&mut p)).unwrap();
        p
    }

    #[tokio::test]
    async fn relayed_requests_count_only_from_a_configured_relay() {
        let r = responder();
        let relay = Ipv4Addr::new(198, 51, 100, 1);
        let from_relay: SocketAddr = "198.51.100.1:67".parse().unwrap();
        let (reply, to) = r.handle(&relayed(relay, 1), from_relay).await.unwrap();
        assert_eq!(to, SocketAddrV4::new(relay, 67), "answered to the relay");
        assert!(
            (Ipv4Addr::new(203, 0, 113, 100)..=Ipv4Addr::new(203, 0, 113, 110))
                .contains(&decoded(&reply).yiaddr()),
            "from the relayed subnet"
        );
        // The relay's giaddr sent by another host: dropped.
        let spoofer: SocketAddr = "192.0.2.50:68".parse().unwrap();
        assert!(r.handle(&relayed(relay, 2), spoofer).await.is_none());
        // A giaddr that is not a configured relay (even one inside a served subnet).
        for giaddr in [Ipv4Addr::new(192, 0, 2, 254), Ipv4Addr::new(203, 0, 113, 1)] {
            let from = SocketAddr::new(giaddr.into(), 67);
            assert!(
                r.handle(&relayed(giaddr, 3), from).await.is_none(),
                "{giaddr}"
            );
        }
    }

    #[tokio::test]
    async fn spoofed_discovers_hold_the_pool_only_for_the_offer_hold() {
        let r = responder_holding(800);
        // Two spoofed MACs take both dynamic addresses of 192.0.2.0/24 as offers.
        for last in [1, 2] {
            let offer = r
                .handle(
                    &request(MessageType::Discover, [6, 6, 6, 6, 6, last], None),
                    from(),
                )
                .await;
            assert!(offer.is_some());
        }
        let genuine = request(MessageType::Discover, [0, 0x1c, 0x73, 0, 0, 9], None);
        assert!(r.handle(&genuine, from()).await.is_none(), "pool full");
        // Once the hold has passed, the genuine client is offered an address.
        tokio::time::sleep(std::time::Duration::from_millis(900)).await;
        let (reply, _) = r.handle(&genuine, from()).await.unwrap();
        assert_eq!(decoded(&reply).opts().msg_type(), Some(MessageType::Offer));
    }

    #[tokio::test]
    async fn one_mac_past_its_burst_is_dropped_and_others_are_served() {
        let r = responder();
        let noisy = request(MessageType::Discover, [2, 0, 0, 0, 9, 9], None);
        let answered = {
            let mut n = 0;
            for _ in 0..30 {
                if r.handle(&noisy, from()).await.is_some() {
                    n += 1;
                }
            }
            n
        };
        assert_eq!(answered, PER_MAC_BURST as usize);
        let other = request(MessageType::Discover, [2, 0, 0, 0, 9, 8], None);
        assert!(r.handle(&other, from()).await.is_some());
    }
}
