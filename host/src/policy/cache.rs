//! Compiled policies on disk, so a restart (or a hundred tenants sharing a policy) does
//! not run Cranelift again. A file is named by the SHA-256 of the component and a hash of
//! the engine's compatibility settings (wasmtime version, target, configuration): a
//! different engine never picks up a file compiled for another.
//!
//! Loading a compiled file runs its machine code, so each file's SHA-256 is recorded
//! beside it when ztpd writes it (`.sha256`), and the bytes are checked against it before
//! they are deserialised: a file changed by anything but ztpd is refused and compiled
//! again. The folder lives in the data directory, which ztpd keeps `0700`.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Where compiled policies are kept.
#[derive(Debug, Clone)]
pub struct CompiledCache {
    dir: PathBuf,
}

/// Result of a cache lookup-or-compile, for logs and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheUse {
    Hit,
    Compiled,
    /// A cached file did not match its recorded hash (or had none): compiled again.
    Rejected,
}

impl CompiledCache {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        CompiledCache { dir: dir.into() }
    }

    /// Where the compiled form of `content_hash` lives for `engine`.
    pub fn path(&self, engine: &Engine, content_hash: &str) -> PathBuf {
        // DefaultHasher is keyed the same way in every process of one build, which is all
        // the compatibility hash needs: it only has to tell engines of this binary apart.
        let mut h = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        self.dir
            .join(format!("{content_hash}-{:016x}.cwasm", h.finish()))
    }

    /// The compiled component for `bytes`: from the cache, or compiled now and stored.
    pub fn load(
        &self,
        engine: &Engine,
        bytes: &[u8],
        content_hash: &str,
    ) -> wasmtime::Result<(Component, CacheUse)> {
        let path = self.path(engine, content_hash);
        let mut used = CacheUse::Compiled;
        if path.is_file() {
            match verified(&path) {
                Ok(compiled) => match deserialize(engine, &compiled) {
                    Ok(component) => return Ok((component, CacheUse::Hit)),
                    Err(e) => tracing::warn!(
                        "compiled policy cache {} unusable ({e:#}); compiling again",
                        path.display()
                    ),
                },
                Err(why) => {
                    tracing::warn!(
                        "compiled policy cache {} refused: {why}; compiling again",
                        path.display()
                    );
                    used = CacheUse::Rejected;
                }
            }
        }
        let compiled = engine.precompile_component(bytes)?;
        if let Err(e) = self.store(&path, &compiled) {
            tracing::warn!("cannot write compiled policy cache {}: {e}", path.display());
        }
        deserialize(engine, &compiled).map(|c| (c, used))
    }

    fn store(&self, path: &Path, compiled: &[u8]) -> std::io::Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::create_dir_all(&self.dir)?;
        // Write then rename: a reader never sees half a file. The hash goes first, so a
        // file without its hash is never taken for a good one.
        let write = |to: &Path, data: &[u8]| -> std::io::Result<()> {
            let tmp = to.with_extension(format!("tmp{}", std::process::id()));
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            std::io::Write::write_all(&mut f, data)?;
            f.sync_all()?;
            std::fs::rename(&tmp, to)
        };
        write(
            &hash_path(path),
            hex::encode(Sha256::digest(compiled)).as_bytes(),
        )?;
        write(path, compiled)
    }
}

fn hash_path(path: &Path) -> PathBuf {
    path.with_extension("cwasm.sha256")
}

/// The file's bytes, if they match the hash recorded when ztpd wrote them.
fn verified(path: &Path) -> Result<Vec<u8>, String> {
    let recorded =
        std::fs::read_to_string(hash_path(path)).map_err(|e| format!("no recorded hash ({e})"))?;
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let actual = hex::encode(Sha256::digest(&bytes));
    if actual != recorded.trim() {
        return Err(format!(
            "its SHA-256 is {actual}, not the {} recorded when it was written",
            recorded.trim()
        ));
    }
    Ok(bytes)
}

/// The one place ztpd uses `unsafe`: wasmtime cannot check that precompiled machine code
/// is what its compiler produced. It is sound here because the bytes either come straight
/// from `Engine::precompile_component` or were read from a file ztpd wrote and checked
/// against the SHA-256 recorded at that time ([`verified`]) — the bytes checked are the
/// bytes deserialised, so the file cannot change in between; wasmtime additionally checks
/// the header against the engine and refuses a mismatch (which falls back to compiling).
#[allow(unsafe_code)]
fn deserialize(engine: &Engine, compiled: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: see the function's documentation.
    unsafe { Component::deserialize(engine, compiled) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest component: the preamble of an empty one.
    const EMPTY_COMPONENT: &[u8] = &[0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];

    #[test]
    fn a_tampered_artefact_is_rejected_and_compiled_again() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CompiledCache::new(dir.path());
        let engine = Engine::default();
        let (_, used) = cache.load(&engine, EMPTY_COMPONENT, "empty").unwrap();
        assert_eq!(used, CacheUse::Compiled);
        let (_, used) = cache.load(&engine, EMPTY_COMPONENT, "empty").unwrap();
        assert_eq!(used, CacheUse::Hit);

        // One byte of the machine code changed on disk: refused, never deserialised.
        let path = cache.path(&engine, "empty");
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        let (_, used) = cache.load(&engine, EMPTY_COMPONENT, "empty").unwrap();
        assert_eq!(used, CacheUse::Rejected);
        // ...and written again, good.
        let (_, used) = cache.load(&engine, EMPTY_COMPONENT, "empty").unwrap();
        assert_eq!(used, CacheUse::Hit);

        // A file without its recorded hash is refused too.
        std::fs::remove_file(hash_path(&path)).unwrap();
        let (_, used) = cache.load(&engine, EMPTY_COMPONENT, "empty").unwrap();
        assert_eq!(used, CacheUse::Rejected);
    }
}
