//! The README's TOML examples are real configuration: every ```toml block is checked by
//! `ztpd check --config-only` (a fragment such as one `[[tenants.dhcp]]` table is checked
//! inside a minimal configuration); a Cargo manifest block is checked as TOML.
//! Environment variables the examples name are set for the check; files they name must
//! not be needed.

use ztpd_e2e::{repo_root, temp_dir, ztpd_binary};

/// The ```toml blocks of README.md, with the line each starts on.
fn toml_blocks(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, line) in text.lines().enumerate() {
        match &mut current {
            None if line.trim_start() == "```toml" => current = Some((i + 2, String::new())),
            Some(_) if line.trim_start() == "```" => out.extend(current.take()),
            Some((_, body)) => {
                body.push_str(line);
                body.push('\n');
            }
            None => {}
        }
    }
    out
}

/// Names in `*_env = "NAME"` settings.
fn env_names(block: &str) -> Vec<String> {
    block
        .lines()
        .filter_map(|l| {
            let (key, value) = l.split_once('=')?;
            let quoted = value.split('"').nth(1)?;
            (key.trim().ends_with("_env") && !quoted.is_empty()).then(|| quoted.to_owned())
        })
        .collect()
}

/// What a fragment (a table the README shows alone) is added to: a site whose status API
/// listens on loopback without a token.
const MINIMAL: &str = r#"
[api]
listen = "127.0.0.1:8081"
open = true
[[tenants]]
name = "lab"
policy = "p.wasm"
templates = "t"
inventory = { file = "i.json", key = "mac" }
"#;

#[test]
fn every_toml_example_in_the_readme_is_a_valid_configuration() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let blocks = toml_blocks(&readme);
    assert!(blocks.len() >= 3, "found {} toml blocks", blocks.len());
    let dir = temp_dir("readme-toml");
    for (line, block) in blocks {
        // A Cargo manifest (a policy crate's) is checked as TOML only.
        if ["[package]", "[lib]", "[dependencies]", "[profile"]
            .iter()
            .any(|t| block.contains(t))
        {
            if let Err(e) = block.parse::<toml::Table>() {
                panic!("README.md line {line}: not TOML: {e}\n{block}");
            }
            continue;
        }
        let text = if block.contains("[[tenants]]") {
            block.clone()
        } else {
            format!("{MINIMAL}{block}")
        };
        let path = dir.join(format!("readme-{line}.toml"));
        std::fs::write(&path, &text).unwrap();
        let mut cmd = std::process::Command::new(ztpd_binary());
        cmd.args(["check", "--config-only", "--config"]).arg(&path);
        for name in env_names(&block) {
            cmd.env(name, "0123456789abcdef0123456789abcdef");
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "README.md line {line}: the example is not a valid configuration:\n{}\n{text}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn the_check_catches_a_broken_example() {
    let dir = temp_dir("readme-broken");
    let path = dir.join("broken.toml");
    // A top-level key after a table belongs to the table: the README once had this bug.
    std::fs::write(&path, format!("[jobs]\nwatch = true\n{MINIMAL}")).unwrap();
    let out = std::process::Command::new(ztpd_binary())
        .args(["check", "--config-only", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("watch"));
}
