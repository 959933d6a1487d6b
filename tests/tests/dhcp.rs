//! DHCP: the exported ISC, Kea and dnsmasq configurations pass the real tools' checks
//! and map each vendor class to the right bootfile; the built-in server, run as the real
//! binary in a network namespace, gives a real `dhclient` in another namespace an address
//! and option 67, which the client then fetches from ztpd. Needs root and Debian's DHCP
//! tools (`just dhcp-tools`): ignored by a plain `cargo test`, run by `just test`.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use dhcproto::v4::{
    Decodable, Decoder, DhcpOption, Encodable, Encoder, HType, Message, MessageType, Opcode,
    OptionCode,
};
use ztpd_e2e::netns::{NetNs, NsZtpd, dhclient, require, run, veth};
use ztpd_e2e::{iosxe_inventory, policy, repo_root, script_token, temp_dir, write_config};

const ARISTA_MAC: &str = "00:1c:73:00:00:01";
const ARISTA_FIXED_IP: &str = "192.0.2.50";
const ARISTA_CLASS: &str = "Arista;DCS-7050SX3-48YC8;01.00;JPE00000001";
const CISCO_MAC: &str = "00:1e:7a:00:00:01";
const SERVER: &str = "http://192.0.2.1:8080";
/// The status API: its own listener on loopback in the server's namespace.
const API: &str = "http://127.0.0.1:8081";

/// The seed's first switch, with a fixed address in `dhcp_ip`.
fn arista_inventory(dir: &Path) -> PathBuf {
    let seed = std::fs::read_to_string(repo_root().join("inventory/arista/swinfo.json"))
        .expect("read swinfo.json");
    let all: serde_json::Value = serde_json::from_str(&seed).expect("parse swinfo.json");
    let mut record = all[ARISTA_MAC].clone();
    record["dhcp_ip"] = ARISTA_FIXED_IP.into();
    let path = dir.join("arista.json");
    std::fs::write(&path, serde_json::json!({ ARISTA_MAC: record }).to_string())
        .expect("write inventory");
    path
}

/// One default tenant with both dialects; `dhcp` is its `[[tenants.dhcp]]` tables.
fn site_config(dir: &Path, dhcp: &str) -> PathBuf {
    let iosxe = iosxe_inventory(dir, &["FOC2101B001"], 22, 600);
    let text = format!(
        r#"
watch = false
[api]
listen = "127.0.0.1:8081"
open = true
[[tenants]]
name = "default"
default = true
templates = "{root}/templates"
inventory = [
    {{ file = "{arista}", key = "mac" }},
    {{ file = "{iosxe}", key = "serial" }},
]
{lease_bound}
[tenants.policies]
arista-eos = "{arista_policy}"
cisco-iosxe = "{iosxe_policy}"
[tenants.callback]
script_credential = "ztp"
[tenants.credentials.ztp]
username = "ztp"
password = "pw-dhcp"
{dhcp}
"#,
        root = repo_root().display(),
        arista = arista_inventory(dir).display(),
        iosxe = iosxe.display(),
        // Served by the built-in server: a MAC's configuration goes only to the address
        // leased to it.
        lease_bound = if dhcp.contains("interface = ") {
            "lease_bound = true"
        } else {
            ""
        },
        arista_policy = policy("arista_dynamic").display(),
        iosxe_policy = policy("iosxe_callback").display(),
    );
    write_config(dir, &text)
}

/// A server namespace (192.0.2.1 on a veth) running ztpd's built-in DHCP server, and a
/// client namespace on the other end of the veth.
struct Lab {
    // Field order is drop order: ztpd stops before its namespace goes.
    ztpd: Option<NsZtpd>,
    srv_if: String,
    cli_if: String,
    config: PathBuf,
    dir: PathBuf,
    cli: NetNs,
    srv: NetNs,
}

impl Lab {
    fn start(test: &str) -> Lab {
        let dir = temp_dir(test);
        let srv = NetNs::create("srv");
        let cli = NetNs::create("cli");
        let (srv_if, cli_if) = veth(&srv, &cli);
        srv.ip(&["addr", "add", "192.0.2.1/24", "dev", &srv_if]);
        let dhcp = format!(
            r#"
[[tenants.dhcp]]
subnet = "192.0.2.0/24"
range = ["192.0.2.100", "192.0.2.109"]
router = "192.0.2.1"
dns = ["192.0.2.53"]
server_url = "{SERVER}"
tftp_server = "192.0.2.5"
fixed_address_field = "dhcp_ip"
interface = "{srv_if}"

[[tenants.dhcp]]
subnet = "198.51.100.0/24"
range = ["198.51.100.100", "198.51.100.109"]
router = "198.51.100.1"
server_url = "{SERVER}"
interface = "{srv_if}"
relay = ["198.51.100.1"]
"#
        );
        let config = site_config(&dir, &dhcp);
        let mut lab = Lab {
            ztpd: None,
            srv_if,
            cli_if,
            config,
            dir,
            cli,
            srv,
        };
        lab.start_ztpd("ztpd.log");
        lab
    }

    fn start_ztpd(&mut self, log: &str) {
        self.ztpd = None;
        self.ztpd = Some(NsZtpd::start(
            &self.srv,
            &self.config,
            "192.0.2.1:8080",
            &self.dir.join(log),
        ));
    }

    fn log(&self) -> String {
        self.ztpd.as_ref().map(NsZtpd::log_text).unwrap_or_default()
    }

    /// Give the client interface `mac` and no address, as a device fresh from the box.
    fn client_mac(&self, mac: &str) {
        self.cli.ip(&["addr", "flush", "dev", &self.cli_if]);
        self.cli.ip(&["link", "set", &self.cli_if, "down"]);
        self.cli.ip(&["link", "set", &self.cli_if, "address", mac]);
        self.cli.ip(&["link", "set", &self.cli_if, "up"]);
    }

    fn dhclient(&self, vendor_class: &str) -> ztpd_e2e::netns::Lease {
        dhclient(&self.cli, &self.cli_if, vendor_class, &self.dir)
            .unwrap_or_else(|e| panic!("dhclient: {e}\nztpd log:\n{}", self.log()))
    }

    /// HTTP GET from inside a namespace, as the device (or an operator there) would.
    fn get(&self, ns: &NetNs, url: &str, headers: &[&str]) -> String {
        let mut args = vec!["-sS", "--fail", "--max-time", "20"];
        for h in headers {
            args.extend(["-H", h]);
        }
        args.push(url);
        let out = ns
            .exec("curl", &args)
            .unwrap_or_else(|e| panic!("GET {url}: {e}\nztpd log:\n{}", self.log()));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn status(&self, device: &str) -> serde_json::Value {
        let text = self.get(&self.srv, &format!("{API}/api/v1/devices/{device}"), &[]);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("status JSON: {e}: {text}"))
    }
}

#[test]
#[ignore = "needs root, network namespaces and Debian's DHCP tools; `just test` runs it as root (cargo test -p ztpd-e2e --test dhcp -- --ignored)"]
fn arista_and_cisco_clients_get_their_bootfile_and_fetch_it() {
    let test = "arista_and_cisco_clients_get_their_bootfile_and_fetch_it";
    require(test, &["ip", "dhclient", "curl"]);
    let started = std::time::Instant::now();
    let lab = Lab::start("dhcp-clients");

    // Arista: the inventory's fixed address and the dynamic-config URL.
    lab.client_mac(ARISTA_MAC);
    let lease = lab.dhclient(ARISTA_CLASS);
    assert_eq!(lease.ip, ARISTA_FIXED_IP, "{lease:?}");
    let bootfile = lease.bootfile.clone().expect("option 67 for Arista");
    assert_eq!(bootfile, format!("{SERVER}/dynconfig"));
    assert_eq!(lease.tftp_server, None, "no TFTP options for Arista");
    let config = lab.get(
        &lab.cli,
        &bootfile,
        &[&format!("X-Arista-SystemMAC: {ARISTA_MAC}")],
    );
    let golden =
        std::fs::read_to_string(repo_root().join("tests/fixtures/arista_001c73000001.txt"))
            .expect("golden config");
    assert_eq!(config, golden, "the switch receives its rendered config");
    // Another host naming that MAC (here the server's own address) is refused.
    let out = lab
        .srv
        .exec(
            "curl",
            &[
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--max-time",
                "20",
                "-H",
                &format!("X-Arista-SystemMAC: {ARISTA_MAC}"),
                &bootfile,
            ],
        )
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "403", "lease_bound");
    assert!(lab.log().contains("whose lease is"), "{}", lab.log());
    let status = lab.status(ARISTA_MAC);
    assert_eq!(status["lease"]["ip"], ARISTA_FIXED_IP, "{status:#}");
    assert_eq!(status["lease"]["state"], "bound", "{status:#}");
    assert_eq!(status["lease"]["bootfile"], bootfile.as_str(), "{status:#}");
    assert!(
        status["lease"]["vendor_class"]
            .as_str()
            .is_some_and(|v| v.starts_with("Arista")),
        "{status:#}"
    );

    // Cisco IOS XE: the first address of the range, the script URL and option 150.
    lab.client_mac(CISCO_MAC);
    let lease = lab.dhclient("ciscopnp");
    assert_eq!(lease.ip, "192.0.2.100", "{lease:?}");
    let bootfile = lease.bootfile.clone().expect("option 67 for IOS XE");
    assert_eq!(bootfile, format!("{SERVER}/script.py"));
    assert_eq!(lease.tftp_server.as_deref(), Some("192.0.2.5"), "{lease:?}");
    assert!(
        lease
            .vars
            .contains(&("new_tftp_server_address".into(), "192.0.2.5".into())),
        "option 150: {lease:?}"
    );
    let script = lab.get(&lab.cli, &bootfile, &[]);
    assert!(
        script.starts_with("#!/usr/bin/env python") && script.contains("from cli import"),
        "the IOS XE guestshell script:\n{script}"
    );
    assert!(
        script.contains(SERVER),
        "calls back to the URL it came from"
    );

    // The script calls back from the leased address: the job shows it, with the lease.
    let token = script_token(&script);
    let out = lab
        .cli
        .exec(
            "curl",
            &[
                "-sS",
                "--fail",
                "--max-time",
                "20",
                "-X",
                "POST",
                "-H",
                &format!("X-Ztpd-Token: {token}"),
                "-H",
                "X-Serial-Number: FOC2101B001",
                &format!("{SERVER}/callback"),
            ],
        )
        .expect("call back");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("ACK"),
        "{out:?}"
    );
    let status = lab.status("FOC2101B001");
    assert_eq!(status["source_ip"], "192.0.2.100", "{status:#}");
    assert_eq!(status["lease"]["ip"], "192.0.2.100", "{status:#}");
    assert_eq!(status["lease"]["mac"], CISCO_MAC, "{status:#}");
    eprintln!("{test}: {:?}", started.elapsed());
}

/// A DISCOVER or REQUEST as a relay agent forwards it.
fn relayed(kind: MessageType, mac: [u8; 6], requested: Option<Ipv4Addr>) -> Vec<u8> {
    let mut m = Message::default();
    m.set_opcode(Opcode::BootRequest)
        .set_htype(HType::Eth)
        .set_hops(1)
        .set_xid(0x5a17)
        .set_giaddr(Ipv4Addr::new(198, 51, 100, 1))
        .set_chaddr(&mac);
    m.opts_mut().insert(DhcpOption::MessageType(kind));
    m.opts_mut().insert(DhcpOption::ClassIdentifier(
        ARISTA_CLASS.as_bytes().to_vec(),
    ));
    if let Some(ip) = requested {
        m.opts_mut().insert(DhcpOption::RequestedIpAddress(ip));
        m.opts_mut()
            .insert(DhcpOption::ServerIdentifier(Ipv4Addr::new(192, 0, 2, 1)));
    }
    let mut out = Vec::new();
    m.encode(&mut Encoder::new(&mut out)).expect("encode");
    out
}

/// Send `packet` from the relay address's port 67 in the client namespace and return the
/// reply that arrives there, with its source.
fn relay_exchange(lab: &Lab, packet: &[u8]) -> (String, Message) {
    let code = "import socket, sys\n\
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
s.bind(('198.51.100.1', 67))\n\
s.settimeout(10)\n\
s.sendto(bytes.fromhex(sys.argv[1]), ('192.0.2.1', 67))\n\
data, addr = s.recvfrom(4096)\n\
print(addr[0], addr[1], data.hex())\n";
    let hex: String = packet.iter().map(|b| format!("{b:02x}")).collect();
    let out = lab
        .cli
        .exec("python3", &["-c", code, &hex])
        .unwrap_or_else(|e| panic!("relay: {e}\nztpd log:\n{}", lab.log()));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut parts = text.split_whitespace();
    let from = format!(
        "{}:{}",
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default()
    );
    let reply_hex = parts.next().unwrap_or_default();
    let bytes: Vec<u8> = (0..reply_hex.len() / 2)
        .filter_map(|i| u8::from_str_radix(&reply_hex[2 * i..2 * i + 2], 16).ok())
        .collect();
    let msg = Message::decode(&mut Decoder::new(&bytes))
        .unwrap_or_else(|e| panic!("reply is not DHCP: {e}: {text}"));
    (from, msg)
}

/// A lab whose client namespace plays a relay: an address on the server's link, and the
/// relayed subnet's gateway address (the giaddr, 198.51.100.1) behind it.
fn relay_lab(name: &str) -> Lab {
    let lab = Lab::start(name);
    lab.cli
        .ip(&["addr", "add", "192.0.2.2/24", "dev", &lab.cli_if]);
    lab.cli
        .ip(&["addr", "add", "198.51.100.1/24", "dev", &lab.cli_if]);
    lab.srv.ip(&[
        "route",
        "add",
        "198.51.100.0/24",
        "via",
        "192.0.2.2",
        "dev",
        &lab.srv_if,
    ]);
    lab
}

#[test]
#[ignore = "needs root, network namespaces and Debian's DHCP tools; `just test` runs it as root (cargo test -p ztpd-e2e --test dhcp -- --ignored)"]
fn relayed_requests_are_answered_to_the_relay() {
    let test = "relayed_requests_are_answered_to_the_relay";
    require(test, &["ip", "python3", "curl"]);
    let lab = relay_lab("dhcp-relay");
    let mac = [0x00, 0x1c, 0x73, 0x00, 0x01, 0x01];

    let (from, offer) = relay_exchange(&lab, &relayed(MessageType::Discover, mac, None));
    assert_eq!(from, "192.0.2.1:67", "the server answers from its port 67");
    assert_eq!(offer.opts().msg_type(), Some(MessageType::Offer));
    assert_eq!(
        offer.yiaddr(),
        Ipv4Addr::new(198, 51, 100, 100),
        "from the relayed subnet"
    );
    assert_eq!(offer.giaddr(), Ipv4Addr::new(198, 51, 100, 1));
    assert_eq!(
        offer.opts().get(OptionCode::BootfileName),
        Some(&DhcpOption::BootfileName(
            format!("{SERVER}/dynconfig").into_bytes()
        ))
    );
    assert_eq!(
        offer.opts().get(OptionCode::Router),
        Some(&DhcpOption::Router(vec![Ipv4Addr::new(198, 51, 100, 1)]))
    );

    let (_, ack) = relay_exchange(
        &lab,
        &relayed(MessageType::Request, mac, Some(offer.yiaddr())),
    );
    assert_eq!(ack.opts().msg_type(), Some(MessageType::Ack));
    assert_eq!(ack.yiaddr(), offer.yiaddr());
    let status = lab.status("00:1c:73:00:01:01");
    assert_eq!(status["lease"]["ip"], "198.51.100.100", "{status:#}");
    assert_eq!(status["lease"]["subnet"], "198.51.100.0/24", "{status:#}");
}

#[test]
#[ignore = "needs root, network namespaces and Debian's DHCP tools; `just test` runs it as root (cargo test -p ztpd-e2e --test dhcp -- --ignored)"]
fn leases_survive_a_restart() {
    let test = "leases_survive_a_restart";
    require(test, &["ip", "dhclient", "curl"]);
    let mut lab = Lab::start("dhcp-restart");
    lab.client_mac(CISCO_MAC);
    assert_eq!(lab.dhclient("ciscopnp").ip, "192.0.2.100");

    lab.start_ztpd("ztpd-second.log");
    let status = lab.status(CISCO_MAC);
    assert_eq!(
        status["lease"]["ip"], "192.0.2.100",
        "kept across the restart: {status:#}"
    );
    // Another device gets the next address: the first one is still leased.
    lab.client_mac("00:1e:7a:00:00:02");
    assert_eq!(lab.dhclient("ciscopnp").ip, "192.0.2.101");
    // And the first device, asking afresh, gets its own address back.
    lab.client_mac(CISCO_MAC);
    assert_eq!(lab.dhclient("ciscopnp").ip, "192.0.2.100");
}

#[test]
#[ignore = "needs root, network namespaces and Debian's DHCP tools; `just test` runs it as root (cargo test -p ztpd-e2e --test dhcp -- --ignored)"]
fn a_full_pool_is_logged_counted_and_freed_after_the_offer_hold() {
    let test = "a_full_pool_is_logged_counted_and_freed_after_the_offer_hold";
    require(test, &["ip", "python3", "curl"]);
    let lab = relay_lab("dhcp-full");
    // Ten addresses in the relayed range: ten devices get offers, the eleventh none.
    for i in 0..10u8 {
        let (_, offer) = relay_exchange(
            &lab,
            &relayed(MessageType::Discover, [2, 0, 0, 0, 0, i], None),
        );
        assert_eq!(offer.yiaddr(), Ipv4Addr::new(198, 51, 100, 100 + i));
    }
    let code = "import socket, sys\n\
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
s.bind(('198.51.100.1', 67))\n\
s.settimeout(3)\n\
s.sendto(bytes.fromhex(sys.argv[1]), ('192.0.2.1', 67))\n\
try:\n    s.recvfrom(4096)\n    print('answered')\nexcept socket.timeout:\n    print('no answer')\n";
    let packet = relayed(MessageType::Discover, [2, 0, 0, 0, 0, 99], None);
    let hex: String = packet.iter().map(|b| format!("{b:02x}")).collect();
    let out = lab
        .cli
        .exec("python3", &["-c", code, &hex])
        .expect("python3");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "no answer");
    let log = lab.log();
    assert!(
        log.contains("tenant default, subnet 198.51.100.0/24: address pool")
            && log.contains("is full"),
        "{log}"
    );
    let dhcp: serde_json::Value =
        serde_json::from_str(&lab.get(&lab.srv, &format!("{API}/api/v1/dhcp"), &[])).expect("JSON");
    assert_eq!(dhcp["pool_full"]["198.51.100.0/24"], 1, "{dhcp:#}");

    // The ten were offers nobody requested (spoofed MACs): once the offer hold (10 s)
    // has passed, the pool has room again.
    std::thread::sleep(std::time::Duration::from_millis(10_500));
    let (_, offer) = relay_exchange(&lab, &packet);
    assert_eq!(offer.opts().msg_type(), Some(MessageType::Offer));

    // The relay's packet sent from another host on the link: dropped.
    let spoofed = code.replace("s.bind(('198.51.100.1', 67))", "s.bind(('192.0.2.2', 67))");
    let packet = relayed(MessageType::Discover, [2, 0, 0, 0, 0, 98], None);
    let hex: String = packet.iter().map(|b| format!("{b:02x}")).collect();
    let out = lab
        .cli
        .exec("python3", &["-c", &spoofed, &hex])
        .expect("python3");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "no answer");
    assert!(
        lab.log().contains("no subnet here is relayed through it"),
        "{}",
        lab.log()
    );
}

/// Two tenants: the default one with both dialects and fixed addresses, `lab` with IOS XE
/// only, a TFTP server and a relay.
fn export_config(dir: &Path) -> PathBuf {
    let lab = format!(
        r#"
[[tenants.dhcp]]
subnet = "192.0.2.0/24"
range = ["192.0.2.100", "192.0.2.199"]
router = "192.0.2.1"
dns = ["192.0.2.53"]
server_url = "http://192.0.2.1:8080"
fixed_address_field = "dhcp_ip"

[[tenants]]
name = "lab"
templates = "{root}/templates"
inventory = {{ file = "{root}/inventory/iosxe/inventory.yaml", key = "serial" }}
[tenants.policies]
cisco-iosxe = "{iosxe}"
[[tenants.dhcp]]
subnet = "198.51.100.0/24"
range = ["198.51.100.100", "198.51.100.199"]
router = "198.51.100.1"
lease_s = 600
server_url = "http://198.51.100.1:8080"
tftp_server = "198.51.100.5"
relay = ["198.51.100.1"]
"#,
        root = repo_root().display(),
        iosxe = policy("iosxe_callback").display(),
    );
    site_config(dir, &lab)
}

fn export(config: &Path, format: &str) -> String {
    let out = run(
        &ztpd_e2e::ztpd_binary().to_string_lossy(),
        &[
            "dhcp",
            "export",
            "--format",
            format,
            "--config",
            &config.to_string_lossy(),
        ],
    )
    .expect("ztpd dhcp export");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
#[ignore = "needs root, network namespaces and Debian's DHCP tools; `just test` runs it as root (cargo test -p ztpd-e2e --test dhcp -- --ignored)"]
fn exported_configurations_pass_the_real_tools_checks() {
    let test = "exported_configurations_pass_the_real_tools_checks";
    require(test, &["dhcpd", "kea-dhcp4", "dnsmasq"]);
    let dir = temp_dir("dhcp-export");
    let config = export_config(&dir);

    let isc = export(&config, "isc");
    let file = dir.join("dhcpd.conf");
    std::fs::write(&file, &isc).expect("write");
    run(
        "dhcpd",
        &[
            "-t",
            "-cf",
            &file.to_string_lossy(),
            "-lf",
            &dir.join("dhcpd.leases").to_string_lossy(),
        ],
    )
    .unwrap_or_else(|e| panic!("dhcpd -t refused it: {e}\n{isc}"));
    for want in [
        "substring(option vendor-class-identifier, 0, 6) = \"Arista\"",
        "option bootfile-name \"http://192.0.2.1:8080/dynconfig\";",
        "option bootfile-name \"http://192.0.2.1:8080/script.py\";",
        "option bootfile-name \"http://198.51.100.1:8080/t/lab/script.py\";",
        "option tftp-server-address 198.51.100.5;",
        "hardware ethernet 00:1c:73:00:00:01; fixed-address 192.0.2.50;",
        "range 198.51.100.100 198.51.100.199;",
        "default-lease-time 600;",
    ] {
        assert!(isc.contains(want), "ISC export lacks {want:?}:\n{isc}");
    }
    assert!(
        !isc.contains("/t/lab/dynconfig"),
        "tenant lab has no Arista policy, so no Arista bootfile:\n{isc}"
    );
    assert_eq!(
        isc.matches("tftp-server-address 192.0.2").count(),
        0,
        "the default tenant names no TFTP server:\n{isc}"
    );

    let kea = export(&config, "kea");
    let file = dir.join("kea-dhcp4.conf");
    std::fs::write(&file, &kea).expect("write");
    run("kea-dhcp4", &["-t", &file.to_string_lossy()])
        .unwrap_or_else(|e| panic!("kea-dhcp4 -t refused it: {e}\n{kea}"));
    let v: serde_json::Value = serde_json::from_str(&kea).expect("Kea JSON");
    let classes = v["Dhcp4"]["client-classes"].as_array().expect("classes");
    let bootfile_of = |class: &serde_json::Value| {
        class["option-data"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|o| o["name"] == "boot-file-name")
            .and_then(|o| o["data"].as_str())
            .map(str::to_owned)
    };
    let mut mapping: Vec<(String, String)> = classes
        .iter()
        .map(|c| {
            (
                c["test"].as_str().unwrap_or_default().to_owned(),
                bootfile_of(c).unwrap_or_default(),
            )
        })
        .collect();
    mapping.sort();
    assert_eq!(
        mapping,
        vec![
            (
                "substring(option[60].hex, 0, 6) == 'Arista'".to_owned(),
                "http://192.0.2.1:8080/dynconfig".to_owned()
            ),
            (
                "substring(option[60].hex, 0, 8) == 'ciscopnp'".to_owned(),
                "http://192.0.2.1:8080/script.py".to_owned()
            ),
            (
                "substring(option[60].hex, 0, 8) == 'ciscopnp'".to_owned(),
                "http://198.51.100.1:8080/t/lab/script.py".to_owned()
            ),
        ],
        "{kea}"
    );
    let subnets = v["Dhcp4"]["subnet4"].as_array().expect("subnets");
    assert_eq!(
        subnets[0]["reservations"][0],
        serde_json::json!({"hw-address": ARISTA_MAC, "ip-address": ARISTA_FIXED_IP})
    );
    assert_eq!(
        subnets[1]["relay"]["ip-addresses"][0], "198.51.100.1",
        "{kea}"
    );

    let dnsmasq = export(&config, "dnsmasq");
    let file = dir.join("dnsmasq.conf");
    std::fs::write(&file, &dnsmasq).expect("write");
    run(
        "dnsmasq",
        &["--test", &format!("--conf-file={}", file.display())],
    )
    .unwrap_or_else(|e| panic!("dnsmasq --test refused it: {e}\n{dnsmasq}"));
    for want in [
        "dhcp-vendorclass=set:arista-eos,Arista",
        "dhcp-vendorclass=set:cisco-iosxe,ciscopnp",
        "tag:arista-eos,option:bootfile-name,\"http://192.0.2.1:8080/dynconfig\"",
        "tag:cisco-iosxe,option:bootfile-name,\"http://198.51.100.1:8080/t/lab/script.py\"",
        "tag:cisco-iosxe,150,198.51.100.5",
        "dhcp-host=00:1c:73:00:00:01,192.0.2.50",
    ] {
        assert!(
            dnsmasq.contains(want),
            "dnsmasq export lacks {want:?}:\n{dnsmasq}"
        );
    }

    // One tenant only.
    let only_lab = run(
        &ztpd_e2e::ztpd_binary().to_string_lossy(),
        &[
            "dhcp",
            "export",
            "--format",
            "isc",
            "--tenant",
            "lab",
            "--config",
            &config.to_string_lossy(),
        ],
    )
    .expect("export --tenant lab");
    let only_lab = String::from_utf8_lossy(&only_lab.stdout);
    assert!(only_lab.contains("198.51.100.0") && !only_lab.contains("subnet 192.0.2.0"));
    let err = run(
        &ztpd_e2e::ztpd_binary().to_string_lossy(),
        &[
            "dhcp",
            "export",
            "--format",
            "isc",
            "--tenant",
            "nope",
            "--config",
            &config.to_string_lossy(),
        ],
    )
    .unwrap_err();
    assert!(err.contains("no tenant named \"nope\""), "{err}");
}

/// Start ztpd in the server namespace with one more `[[tenants.dhcp]]` subnet served on
/// `interface`, as `user` (via setpriv) or root; return its exit status and output.
fn serve_once(lab: &Lab, interface: &str, as_nobody: bool, name: &str) -> (bool, String) {
    let dir = lab.dir.join(name);
    std::fs::create_dir_all(dir.join("data")).expect("dir");
    // The unprivileged run must be able to read its configuration and own its data
    // directory, which ztpd wants private (0700).
    run("chmod", &["-R", "a+rwx", &dir.to_string_lossy()]).expect("chmod");
    let data = dir.join("data");
    run("chmod", &["700", &data.to_string_lossy()]).expect("chmod data");
    if as_nobody {
        run("chown", &["65534:65534", &data.to_string_lossy()]).expect("chown data");
    }
    let text = std::fs::read_to_string(&lab.config)
        .expect("config")
        .replace(
            &lab.dir.join("data").display().to_string(),
            &dir.join("data").display().to_string(),
        )
        .replace(
            &format!("interface = \"{}\"", lab.srv_if),
            &format!("interface = \"{interface}\""),
        )
        // The lab's own ztpd holds the API port in this namespace.
        .replace("127.0.0.1:8081", "127.0.0.1:8082");
    let config = dir.join("ztpd.toml");
    std::fs::write(&config, text).expect("write config");
    let binary = ztpd_e2e::ztpd_binary();
    let (binary, config) = (binary.to_string_lossy(), config.to_string_lossy());
    let mut args = Vec::new();
    if as_nobody {
        args.extend([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ]);
    }
    args.extend([binary.as_ref(), "serve", "--config", config.as_ref()]);
    let out = std::process::Command::new("timeout")
        .args(["30", "ip", "netns", "exec", &lab.srv.name])
        .args(if as_nobody { vec!["setpriv"] } else { vec![] })
        .args(&args)
        .env("ZTPD_LISTEN", "192.0.2.1:8081")
        .output()
        .expect("run ztpd");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
#[ignore = "needs root, network namespaces and Debian's DHCP tools; `just test` runs it as root (cargo test -p ztpd-e2e --test dhcp -- --ignored)"]
fn the_server_refuses_to_start_with_a_clear_error() {
    let test = "the_server_refuses_to_start_with_a_clear_error";
    require(test, &["ip", "setpriv", "timeout"]);
    let lab = Lab::start("dhcp-refuse");
    let (ok, out) = serve_once(&lab, "nosuch0", false, "no-interface");
    assert!(!ok, "{out}");
    assert!(
        out.contains("interface nosuch0") && out.contains("no such network interface"),
        "{out}"
    );
    let (ok, out) = serve_once(&lab, &lab.srv_if, true, "unprivileged");
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!("interface {}", lab.srv_if))
            && out.contains("CAP_NET_BIND_SERVICE")
            && out.contains("CAP_NET_RAW"),
        "{out}"
    );
}
