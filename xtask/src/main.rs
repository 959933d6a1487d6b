//! `cargo xtask <recipe> [args]`: run a recipe of the justfile on a machine that has only
//! the Rust toolchain. `just` is installed first (`cargo install just --locked`) if it is
//! not found; then `just <recipe> [args]` runs in the repository root.
//!
//! Hand-written rather than a crate: it only finds or installs one program and runs it.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

/// PATH with cargo's bin folder added, where `cargo install` puts `just`.
fn path_with_cargo_bin() -> Option<OsString> {
    let bin = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?
        .join("bin");
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.push(bin);
    std::env::join_paths(dirs).ok()
}

fn just(path: &Option<OsString>) -> Command {
    let mut c = Command::new("just");
    if let Some(p) = path {
        c.env("PATH", p);
    }
    c
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    let path = path_with_cargo_bin();
    let found = just(&path)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("xtask: installing `just` with `cargo install just --locked`");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let installed = Command::new(cargo)
            .args(["install", "just", "--locked"])
            .status()
            .is_ok_and(|s| s.success());
        if !installed {
            eprintln!(
                "xtask: installing just failed; install it and run `just {}`",
                args.join(" ")
            );
            return ExitCode::FAILURE;
        }
    }
    match just(&path).args(&args).current_dir(&root).status() {
        Ok(s) if s.success() => ExitCode::SUCCESS,
        Ok(s) => ExitCode::from(u8::try_from(s.code().unwrap_or(1)).unwrap_or(1)),
        Err(e) => {
            eprintln!("xtask: cannot run just: {e}");
            ExitCode::FAILURE
        }
    }
}
