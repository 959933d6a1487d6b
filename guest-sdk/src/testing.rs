//! A native test harness: run a policy in plain `cargo test`, with an in-memory host that
//! answers the same imports ztpd does — inventory, templates, settings, kv, log.
//!
//! ```ignore
//! use ztpd_guest::testing::TestHost;
//! use ztpd_guest::{Request, dialect, stage};
//!
//! #[test]
//! fn known_switch_gets_its_config() {
//!     let host = TestHost::new()
//!         .record("00:1c:73:00:00:01", serde_json::json!({"hostname": "leaf1"}))
//!         .template("arista/config.j2", "hostname {{ hostname }}\n");
//!     let req = Request::builder(dialect::ARISTA_EOS, stage::BOOTSTRAP)
//!         .mac("00:1c:73:00:00:01")
//!         .build();
//!     let decision = host.call::<MyPolicy>(req).unwrap();
//!     assert_eq!(host.render(&decision).unwrap(), "hostname leaf1\n");
//! }
//! ```
//!
//! Look-ups follow the host's rules: `mac` in any common form (against the record's key
//! and its `mac`, `system_mac`, `mac_address` fields), `serial` (the `serial` field or
//! the key), `key`, or any top-level field. Templates render with minijinja and the
//! settings ztpd uses (`trim_blocks`, `lstrip_blocks`, `keep_trailing_newline`, a missing
//! variable is an error), so a test sees the text a device would.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::Path;
use std::rc::Rc;

use serde_json::Value;

use crate::host::Level;
use crate::{Decision, Error, Policy, Request, Step};

thread_local! {
    static CURRENT: RefCell<Option<Rc<State>>> = const { RefCell::new(None) };
}

/// Run `f` against the host of the call in progress.
pub(crate) fn with_host<R>(f: impl FnOnce(&State) -> R) -> R {
    let host = CURRENT.with(|c| c.borrow().clone());
    match host {
        Some(h) => f(&h),
        None => panic!(
            "a ztpd policy import was called outside TestHost::call; run the policy through ztpd_guest::testing::TestHost"
        ),
    }
}

#[derive(Default)]
pub(crate) struct State {
    records: Vec<(String, Value)>,
    templates: Vec<(String, String)>,
    settings: BTreeMap<String, String>,
    kv: RefCell<BTreeMap<String, String>>,
    logs: RefCell<Vec<(Level, String)>>,
}

/// An in-memory ztpd for a policy's tests.
#[derive(Clone, Default)]
pub struct TestHost {
    state: Rc<State>,
}

fn mac_digits(text: &str) -> Option<String> {
    let digits: String = text
        .chars()
        .filter(|c| !matches!(c, ':' | '-' | '.'))
        .collect::<String>()
        .to_ascii_lowercase();
    (digits.len() == 12 && digits.chars().all(|c| c.is_ascii_hexdigit())).then_some(digits)
}

fn state_mut(host: &mut TestHost) -> &mut State {
    Rc::get_mut(&mut host.state).expect("configure a TestHost before its first call")
}

impl TestHost {
    pub fn new() -> Self {
        Self::default()
    }

    /// An inventory record under `key` (a MAC or a serial).
    pub fn record(mut self, key: &str, record: Value) -> Self {
        state_mut(&mut self).records.push((key.to_owned(), record));
        self
    }

    /// Every record of a JSON inventory file (a map from key to record).
    pub fn inventory_file(mut self, path: impl AsRef<Path>) -> Self {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let map: serde_json::Map<String, Value> = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not a JSON map: {e}", path.display()));
        state_mut(&mut self).records.extend(map);
        self
    }

    /// A template named `name` (`arista/config.j2`).
    pub fn template(mut self, name: &str, source: &str) -> Self {
        state_mut(&mut self)
            .templates
            .push((name.to_owned(), source.to_owned()));
        self
    }

    /// Every file below `dir`, named by its path relative to `dir`, as ztpd loads a
    /// tenant's templates folder.
    pub fn templates_dir(mut self, dir: impl AsRef<Path>) -> Self {
        fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
            let entries = std::fs::read_dir(dir)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
            for entry in entries.flatten() {
                let path = entry.path();
                let hidden = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_none_or(|n| n.starts_with('.'));
                if hidden {
                    continue;
                }
                if path.is_dir() {
                    walk(root, &path, out);
                } else if let (Ok(rel), Ok(text)) =
                    (path.strip_prefix(root), std::fs::read_to_string(&path))
                {
                    out.push((rel.to_string_lossy().replace('\\', "/"), text));
                }
            }
        }
        let dir = dir.as_ref().to_owned();
        walk(&dir, &dir, &mut state_mut(&mut self).templates);
        self
    }

    /// A `[tenants.settings]` entry.
    pub fn setting(mut self, key: &str, value: &str) -> Self {
        state_mut(&mut self)
            .settings
            .insert(key.to_owned(), value.to_owned());
        self
    }

    /// A kv entry present before the first call.
    pub fn kv_entry(self, key: &str, value: &str) -> Self {
        self.state
            .kv
            .borrow_mut()
            .insert(key.to_owned(), value.to_owned());
        self
    }

    /// Run policy `P` on `request` against this host.
    pub fn call<P: Policy>(&self, request: Request) -> Result<Decision, Error> {
        CURRENT.with(|c| *c.borrow_mut() = Some(self.state.clone()));
        let out = P::handle(request);
        CURRENT.with(|c| *c.borrow_mut() = None);
        out
    }

    /// Render a render decision (or a plan's first render step) as the host would.
    pub fn render(&self, decision: &Decision) -> Result<String, Error> {
        let (template, vars) = match decision {
            Decision::Render { template, vars, .. } => (template, vars),
            Decision::Plan(p) => p
                .steps
                .iter()
                .find_map(|s| match s {
                    Step::Render { template, vars, .. } => Some((template, vars)),
                    _ => None,
                })
                .ok_or_else(|| Error::msg("the plan has no render step"))?,
            other => return Err(Error::msg(format!("not a render decision: {other:?}"))),
        };
        self.state
            .render_json(template, vars.as_json())
            .map_err(Error::msg)
    }

    /// kv state after the calls so far.
    pub fn kv(&self) -> BTreeMap<String, String> {
        self.state.kv.borrow().clone()
    }

    /// Log lines the calls so far wrote.
    pub fn logs(&self) -> Vec<(Level, String)> {
        self.state.logs.borrow().clone()
    }
}

impl State {
    pub(crate) fn log(&self, level: Level, message: &str) {
        self.logs.borrow_mut().push((level, message.to_owned()));
    }

    pub(crate) fn lookup(&self, field: &str, value: &str) -> Result<Option<String>, String> {
        let found = match field {
            "mac" => {
                let want = mac_digits(value)
                    .ok_or_else(|| format!("inventory lookup by mac: {value:?} is not a MAC"))?;
                self.records.iter().find(|(k, r)| {
                    mac_digits(k).as_deref() == Some(want.as_str())
                        || ["mac", "system_mac", "mac_address"].iter().any(|f| {
                            r.get(f)
                                .and_then(Value::as_str)
                                .and_then(mac_digits)
                                .as_deref()
                                == Some(want.as_str())
                        })
                })
            }
            "serial" => self.records.iter().find(|(k, r)| {
                r.get("serial").and_then(Value::as_str) == Some(value) || k == value
            }),
            "key" => self.records.iter().find(|(k, _)| {
                k == value || (mac_digits(k).is_some() && mac_digits(k) == mac_digits(value))
            }),
            other => self.records.iter().find(|(_, r)| match r.get(other) {
                Some(Value::String(s)) => s == value,
                Some(v) => serde_json::from_str::<Value>(value).ok().as_ref() == Some(v),
                None => false,
            }),
        };
        Ok(found.map(|(_, r)| r.to_string()))
    }

    pub(crate) fn render_json(&self, template: &str, vars: &str) -> Result<String, String> {
        let mut env = minijinja::Environment::new();
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(true)
            .build()
            .map_err(|e| e.to_string())?;
        env.set_syntax(syntax);
        env.set_undefined_behavior(minijinja::UndefinedBehavior::SemiStrict);
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        for (name, source) in &self.templates {
            env.add_template_owned(name.clone(), source.clone())
                .map_err(|e| format!("template {name}: {e}"))?;
        }
        let vars: Value =
            serde_json::from_str(vars).map_err(|e| format!("variables are not JSON: {e}"))?;
        env.get_template(template)
            .map_err(|_| format!("no template named {template:?}"))?
            .render(minijinja::Value::from(minijinja::value::Serde(&vars)))
            .map_err(|e| format!("template {template}: {e}"))
    }

    pub(crate) fn setting(&self, key: &str) -> Option<String> {
        self.settings.get(key).cloned()
    }

    pub(crate) fn settings(&self) -> Vec<(String, String)> {
        self.settings
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    pub(crate) fn kv_get(&self, key: &str) -> Result<Option<String>, String> {
        Ok(self.kv.borrow().get(key).cloned())
    }

    pub(crate) fn kv_put(&self, key: &str, value: Option<&str>) -> Result<(), String> {
        if key.is_empty() || key.len() > 1024 {
            return Err(format!("kv key must be 1 to 1024 bytes, got {}", key.len()));
        }
        let mut kv = self.kv.borrow_mut();
        match value {
            Some(v) => kv.insert(key.to_owned(), v.to_owned()),
            None => kv.remove(key),
        };
        Ok(())
    }
}
