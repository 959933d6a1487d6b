//! Compiled policies on disk, so a restart (or a hundred tenants sharing a policy) does
//! not run Cranelift again. A file is named by the SHA-256 of the component and a hash of
//! the engine's compatibility settings (wasmtime version, target, configuration): a
//! different engine never picks up a file compiled for another.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

/// Where compiled policies are kept. The folder must be writable by ztpd only: loading a
/// compiled file runs its machine code (see [`CompiledCache::load`]).
#[derive(Debug, Clone)]
pub struct CompiledCache {
    dir: PathBuf,
}

/// Result of a cache lookup-or-compile, for logs and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheUse {
    Hit,
    Compiled,
}

impl CompiledCache {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        CompiledCache { dir: dir.into() }
    }

    fn path(&self, engine: &Engine, content_hash: &str) -> PathBuf {
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
        if path.is_file() {
            match deserialize(engine, &path) {
                Ok(component) => return Ok((component, CacheUse::Hit)),
                Err(e) => tracing::warn!(
                    "compiled policy cache {} unusable ({e:#}); compiling again",
                    path.display()
                ),
            }
        }
        let compiled = engine.precompile_component(bytes)?;
        if let Err(e) = self.store(&path, &compiled) {
            tracing::warn!("cannot write compiled policy cache {}: {e}", path.display());
            return Component::new(engine, bytes).map(|c| (c, CacheUse::Compiled));
        }
        // Load it back from the file: the code is then mapped from disk rather than held
        // in anonymous memory.
        deserialize(engine, &path).map(|c| (c, CacheUse::Compiled))
    }

    fn store(&self, path: &Path, compiled: &[u8]) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        // Write then rename: a reader never sees half a file.
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, compiled)?;
        std::fs::rename(&tmp, path)
    }
}

/// The one place ztpd uses `unsafe`: wasmtime cannot check that a precompiled file's
/// machine code is what its compiler produced. It is sound here because the files are
/// written only by [`CompiledCache::store`] above, from `Engine::precompile_component`,
/// into a folder only ztpd writes, under a name that includes the engine's compatibility
/// hash; wasmtime additionally checks the file's header against the engine and refuses a
/// mismatch (which falls back to compiling).
#[allow(unsafe_code)]
fn deserialize(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: see the function's documentation.
    unsafe { Component::deserialize_file(engine, path) }
}
