//! The dialects this ztpd speaks. A new dialect is a module in `dialect/` and one line in
//! [`Registry::builtin`]; a dialect of your own (a test's, a fork's) joins with
//! [`Registry::with`].

use std::sync::Arc;

use super::{Dialect, VendorRule, arista::Arista, iosxe::Iosxe};

/// A set of dialects, in the order their DHCP rules are tried.
#[derive(Clone)]
pub struct Registry {
    dialects: Vec<Arc<dyn Dialect>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl Default for Registry {
    fn default() -> Self {
        Self::builtin()
    }
}

impl Registry {
    /// Every dialect ztpd ships.
    pub fn builtin() -> Self {
        Registry {
            dialects: vec![Arc::new(Arista), Arc::new(Iosxe)],
        }
    }

    /// This registry and one more dialect.
    pub fn with(mut self, dialect: impl Dialect) -> Self {
        self.dialects.push(Arc::new(dialect));
        self
    }

    pub fn dialects(&self) -> &[Arc<dyn Dialect>] {
        &self.dialects
    }

    /// The dialects' names in the policy contract.
    pub fn names(&self) -> Vec<&'static str> {
        self.dialects.iter().map(|d| d.name()).collect()
    }

    /// Every DHCP vendor-class rule, with its dialect's name, in order.
    pub fn dhcp_rules(&self) -> Vec<(&'static str, VendorRule)> {
        self.dialects
            .iter()
            .flat_map(|d| d.dhcp_rules().into_iter().map(move |r| (d.name(), r)))
            .collect()
    }

    /// One line per route for messages: `GET /dynconfig (Arista EOS)`.
    pub fn describe_routes(&self) -> String {
        self.dialects
            .iter()
            .flat_map(|d| {
                d.routes().into_iter().map(move |r| {
                    let methods: Vec<&str> = r.methods.iter().map(|m| m.as_str()).collect();
                    format!("{} {} ({})", methods.join("|"), r.path, d.title())
                })
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}
