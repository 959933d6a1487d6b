//! `ztpd policy new NAME`: a policy project that builds outside this repository.
//!
//! It holds a copy of the guest SDK this ztpd was built with (`ztpd-guest/`, its contract
//! in `ztpd-guest/wit/`), a Cargo.lock pinned to the versions ztpd was tested with, the
//! release profile and guest stack size policies want, an example policy with native
//! tests, a template, an inventory and a `ztpd.toml` that runs it:
//!
//! ```text
//! cd NAME && cargo test                                   # native, through the SDK harness
//! cargo build --release --target wasm32-wasip2            # target/wasm32-wasip2/release/NAME.wasm
//! ztpd check --config ztpd.toml                           # loads it as ztpd would
//! ```

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// The SDK's sources, as this ztpd was built with them.
const SDK_FILES: &[(&str, &str)] = &[
    ("src/lib.rs", include_str!("../../../guest-sdk/src/lib.rs")),
    (
        "src/decision.rs",
        include_str!("../../../guest-sdk/src/decision.rs"),
    ),
    (
        "src/host.rs",
        include_str!("../../../guest-sdk/src/host.rs"),
    ),
    (
        "src/request.rs",
        include_str!("../../../guest-sdk/src/request.rs"),
    ),
    (
        "src/testing.rs",
        include_str!("../../../guest-sdk/src/testing.rs"),
    ),
    (
        "wit/policy.wit",
        include_str!("../../../guest-sdk/wit/policy.wit"),
    ),
];

/// The workspace's lock file: the scaffold builds with the versions ztpd was tested with.
const LOCK: &str = include_str!("../../../Cargo.lock");

const SDK_MANIFEST: &str = r#"[package]
name = "ztpd-guest"
description = "Guest SDK for ztpd policies (a copy made by `ztpd policy new`)"
version = "0.1.0"
edition = "2024"
publish = false

[dependencies]
serde = { version = "1", features = ["derive"] }
serde_json = "1"
wit-bindgen = "0.61"

[target.'cfg(not(target_arch = "wasm32"))'.dependencies]
minijinja = { version = "3", features = ["serde"] }
"#;

fn manifest(name: &str) -> String {
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
crate-type = ["cdylib", "rlib"]

[dependencies]
ztpd-guest = {{ path = "ztpd-guest" }}
serde = {{ version = "1", features = ["derive"] }}
serde_json = "1"

[workspace]

# Small, fast-to-instantiate components.
[profile.release]
opt-level = "s"
lto = true
strip = true
panic = "abort"
codegen-units = 1
"#
    )
}

const CARGO_CONFIG: &str = r#"# A small guest stack: cheaper to instantiate per request.
[target.wasm32-wasip2]
rustflags = ["-C", "link-arg=-zstack-size=65536"]
"#;

const TOOLCHAIN: &str = r#"[toolchain]
channel = "stable"
targets = ["wasm32-wasip2"]
"#;

const POLICY: &str = r#"//! A site policy: a switch asks for its configuration, the policy looks it up in the
//! tenant's inventory by MAC (or serial) and the host renders `config.j2` with it.
//! Site values come from the tenant's settings (`[tenants.settings]` in ztpd.toml).

use ztpd_guest::{Decision, Error, Policy, Request, export_policy, inventory, settings};

struct Site;

impl Policy for Site {
    fn handle(req: Request) -> Result<Decision, Error> {
        let record = match (req.mac(), req.serial()) {
            (Some(mac), _) => inventory::by_mac(mac)?,
            (None, Some(serial)) => inventory::by_serial(serial)?,
            (None, None) => return Ok(Decision::reject("the request names no MAC or serial")),
        };
        match record {
            Some(device) => Ok(Decision::render_config(
                settings::get_or("template", "config.j2"),
                device,
            )),
            None => Ok(Decision::unknown_device("not in this site's inventory")),
        }
    }
}

export_policy!(Site);

#[cfg(test)]
mod tests {
    use super::*;
    use ztpd_guest::testing::TestHost;
    use ztpd_guest::{dialect, stage};

    fn host() -> TestHost {
        TestHost::new()
            .inventory_file(concat!(env!("CARGO_MANIFEST_DIR"), "/inventory.json"))
            .templates_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/templates"))
    }

    #[test]
    fn a_known_switch_gets_its_config() {
        let req = Request::builder(dialect::ARISTA_EOS, stage::BOOTSTRAP)
            .mac("001c.7300.0001")
            .build();
        let host = host();
        let decision = host.call::<Site>(req).unwrap();
        assert_eq!(host.render(&decision).unwrap(), "hostname leaf1\n!\nend\n");
    }

    #[test]
    fn an_unknown_switch_is_refused() {
        let req = Request::builder(dialect::ARISTA_EOS, stage::BOOTSTRAP)
            .mac("00:1c:73:ff:ff:ff")
            .build();
        assert!(matches!(
            host().call::<Site>(req).unwrap(),
            Decision::UnknownDevice(_)
        ));
    }
}
"#;

const TEMPLATE: &str = "hostname {{ hostname }}\n!\nend\n";

const INVENTORY: &str = r#"{
  "00:1c:73:00:00:01": {"hostname": "leaf1", "serial": "JPE0001"}
}
"#;

fn site_config(name: &str) -> String {
    let wasm = name.replace('-', "_");
    format!(
        r#"# A site running this policy: `ztpd check --config ztpd.toml`, `ztpd serve --config ztpd.toml`.
listen = "127.0.0.1:8080"
data_dir = "ztpd-data"

[[tenants]]
name = "default"
default = true
policy = "target/wasm32-wasip2/release/{wasm}.wasm"
templates = "templates"
inventory = {{ file = "inventory.json", key = "mac" }}
settings = {{ template = "config.j2" }}

# The status API answers without a token here only because it listens on loopback.
[api]
listen = "127.0.0.1:8081"
open = true
"#
    )
}

const README: &str = r#"# A ztpd policy

- `cargo test`: run the policy natively against the SDK's in-memory host.
- `cargo build --release --target wasm32-wasip2`: build the component.
- `ztpd check --config ztpd.toml`: load it as ztpd would; `ztpd serve --config ztpd.toml`
  serves it (devices on 127.0.0.1:8080, the status API on 127.0.0.1:8081);
  `ztpd policy push --tenant T target/wasm32-wasip2/release/*.wasm` uploads it to a
  running ztpd whose `[[admin.tokens]]` include the token you give it (`--token` or
  `ZTPD_ADMIN_TOKEN`).

`ztpd-guest/` is the guest SDK and its contract (`ztpd-guest/wit/policy.wit`) as the ztpd
that made this folder was built with.
"#;

fn valid_crate_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Write the project `name` under `parent`; returns its folder.
pub fn create(parent: &Path, name: &str) -> anyhow::Result<PathBuf> {
    if !valid_crate_name(name) {
        bail!(
            "policy name {name:?} must start with a-z and use only a-z, 0-9, '-' and '_' (it becomes a crate name)"
        );
    }
    let root = parent.join(name);
    if root.exists() {
        bail!(
            "{} exists already; choose another name or folder",
            root.display()
        );
    }
    let mut files: Vec<(PathBuf, String)> = vec![
        (root.join("Cargo.toml"), manifest(name)),
        (root.join("Cargo.lock"), LOCK.to_owned()),
        (root.join(".cargo/config.toml"), CARGO_CONFIG.to_owned()),
        (root.join("rust-toolchain.toml"), TOOLCHAIN.to_owned()),
        (root.join(".gitignore"), "/target\n/ztpd-data\n".to_owned()),
        (root.join("src/lib.rs"), POLICY.to_owned()),
        (root.join("templates/config.j2"), TEMPLATE.to_owned()),
        (root.join("inventory.json"), INVENTORY.to_owned()),
        (root.join("ztpd.toml"), site_config(name)),
        (root.join("README.md"), README.to_owned()),
        (root.join("ztpd-guest/Cargo.toml"), SDK_MANIFEST.to_owned()),
    ];
    for (path, text) in SDK_FILES {
        files.push((root.join("ztpd-guest").join(path), (*text).to_owned()));
    }
    for (path, text) in files {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(root)
}
