//! A policy project made by `ztpd policy new` builds outside this repository — its own
//! tests pass natively through the SDK harness, it compiles to a component with the
//! right profile — and `ztpd check` loads it with the configuration it came with.

use std::process::Command;

use ztpd_e2e::{repo_root, temp_dir, ztpd_binary};

fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{what} failed:\n{text}");
    text
}

#[test]
fn a_scaffolded_policy_tests_builds_and_passes_ztpd_check() {
    let parent = temp_dir("scaffold");
    run(
        Command::new(ztpd_binary())
            .args(["policy", "new", "site-policy", "--dir"])
            .arg(&parent),
        "ztpd policy new",
    );
    let project = parent.join("site-policy");
    // Builds share a target folder with the workspace's, so dependencies compile once.
    let target = repo_root().join("target/scaffold");
    let cargo = || {
        let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        c.current_dir(&project).env("CARGO_TARGET_DIR", &target);
        c
    };
    let tests = run(cargo().arg("test"), "cargo test in the project");
    assert!(tests.contains("2 passed"), "{tests}");
    run(
        cargo().args(["build", "--release", "--target", "wasm32-wasip2"]),
        "cargo build of the component",
    );
    let wasm = target.join("wasm32-wasip2/release/site_policy.wasm");
    let placed = project.join("target/wasm32-wasip2/release/site_policy.wasm");
    std::fs::create_dir_all(placed.parent().unwrap()).unwrap();
    std::fs::copy(&wasm, &placed).unwrap();
    let check = run(
        Command::new(ztpd_binary())
            .args(["check", "--config"])
            .arg(project.join("ztpd.toml")),
        "ztpd check of the project's site",
    );
    assert!(
        check.contains("contract 0.2.0") && check.contains("OK"),
        "{check}"
    );
    // The stack size and release profile came with it: a small component.
    let size = std::fs::metadata(&wasm).unwrap().len();
    assert!(size < 200_000, "the component is {size} bytes");
}
