//! Jinja2 templates, rendered with minijinja using the settings the seeds' Python servers
//! use (`trim_blocks`, `lstrip_blocks`, `keep_trailing_newline`), so ztpd's output is
//! byte-identical to theirs.
//!
//! A variable a template needs but the device's variables lack is an error that names the
//! template, the line and the expression, never an empty string in a device's config.
//!
//! Rendering is a pure function of (template set, template name, variables): ztpd registers
//! no clock, random or I/O functions in the environment. So rendered text is memoised per
//! template set, keyed by a 128-bit hash of the variables' JSON and bounded in bytes. A
//! device that asks again (EOS retries, reboots) costs a hash and a lookup; a new template
//! set (hot swap) starts with an empty cache.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use minijinja::{Environment, ErrorKind, UndefinedBehavior, syntax::SyntaxConfig};

/// Why a template could not be loaded or rendered. Messages name the template and line.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read templates from {dir}: {source}")]
    ReadDir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read template {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("template {name} has a syntax error{line}: {detail}", line = at_line(*line))]
    Syntax {
        name: String,
        line: Option<usize>,
        detail: String,
    },
    #[error("no template named {name:?}; this tenant has: {available}")]
    NotFound { name: String, available: String },
    #[error(
        "template {name} line {line}: `{expr}` is undefined; add it to the device's variables or guard it with `{{% if ... is defined %}}`"
    )]
    Undefined {
        name: String,
        line: usize,
        expr: String,
    },
    #[error("template {name}{line}: {detail}", line = at_line(*line))]
    Render {
        name: String,
        line: Option<usize>,
        detail: String,
    },
    #[error("variables for template {name} are not a JSON object: {detail}")]
    Vars { name: String, detail: String },
    #[error(
        "{path} is a symbolic link to {target}, outside the templates folder {root}; a tenant's templates must live in its folder"
    )]
    OutsideFolder {
        path: PathBuf,
        target: PathBuf,
        root: PathBuf,
    },
    #[error("cannot write template {name}: {detail}")]
    Write { name: String, detail: String },
}

fn at_line(line: Option<usize>) -> String {
    line.map(|l| format!(" at line {l}")).unwrap_or_default()
}

/// Bytes of rendered text a template set keeps memoised.
const RENDER_CACHE_BYTES: u64 = 32 << 20;

type RenderKey = (String, u128);

/// Weighs a cached render by its size, so the bound is in bytes, not entries.
#[derive(Clone)]
struct BySize;

impl quick_cache::Weighter<RenderKey, Arc<str>> for BySize {
    fn weight(&self, key: &RenderKey, text: &Arc<str>) -> u64 {
        (key.0.len() + text.len() + 64) as u64
    }
}

/// One tenant's set of templates, compiled once.
pub struct Templates {
    env: Environment<'static>,
    names: Vec<String>,
    rendered: quick_cache::sync::Cache<RenderKey, Arc<str>, BySize>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates")
            .field("names", &self.names)
            .finish()
    }
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    let syntax = SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .keep_trailing_newline(true)
        .build()
        .unwrap_or_default();
    env.set_syntax(syntax);
    // SemiStrict: `{% if optional %}` works, printing or looping over a missing
    // variable is an error.
    env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
    // Device configs are plain text: never HTML-escape.
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    env
}

impl Templates {
    /// Every file under `dir` becomes a template named by its path relative to `dir`
    /// (`config.j2`, `iosxe/script.py.j2`).
    pub fn load_dir(dir: &Path) -> Result<Self, TemplateError> {
        let mut files = Vec::new();
        let root = dir
            .canonicalize()
            .map_err(|source| TemplateError::ReadDir {
                dir: dir.to_owned(),
                source,
            })?;
        collect(&root, &root, &mut files)?;
        Self::from_sources(files)
    }

    /// Build from (name, source) pairs.
    pub fn from_sources(
        sources: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, TemplateError> {
        let mut env = environment();
        let mut names = Vec::new();
        for (name, source) in sources {
            env.add_template_owned(name.clone(), source)
                .map_err(|e| TemplateError::Syntax {
                    name: name.clone(),
                    line: e.line(),
                    detail: e.detail().unwrap_or("invalid syntax").to_owned(),
                })?;
            names.push(name);
        }
        names.sort();
        Ok(Templates {
            env,
            names,
            rendered: quick_cache::sync::Cache::with_weighter(4096, RENDER_CACHE_BYTES, BySize),
        })
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Render `name` with `vars`, a JSON object as text (as it crosses the policy
    /// boundary). Memoised: see the module docs.
    pub fn render_json(&self, name: &str, vars: &str) -> Result<Arc<str>, TemplateError> {
        let key = (
            name.to_owned(),
            xxhash_rust::xxh3::xxh3_128(vars.as_bytes()),
        );
        if let Some(text) = self.rendered.get(&key) {
            return Ok(text);
        }
        let value: serde_json::Value =
            serde_json::from_str(vars).map_err(|e| TemplateError::Vars {
                name: name.to_owned(),
                detail: e.to_string(),
            })?;
        let text: Arc<str> = self.render(name, &value)?.into();
        self.rendered.insert(key, text.clone());
        Ok(text)
    }

    pub fn render(&self, name: &str, vars: &serde_json::Value) -> Result<String, TemplateError> {
        if !vars.is_object() {
            return Err(TemplateError::Vars {
                name: name.to_owned(),
                detail: format!("got {}", json_kind(vars)),
            });
        }
        let template = self
            .env
            .get_template(name)
            .map_err(|_| TemplateError::NotFound {
                name: name.to_owned(),
                available: if self.names.is_empty() {
                    "none".to_owned()
                } else {
                    self.names.join(", ")
                },
            })?;
        template
            .render(minijinja::Value::from(minijinja::value::Serde(vars)))
            .map_err(|e| describe(name, template.source(), &e))
    }
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) -> Result<(), TemplateError> {
    let read_dir = |source| TemplateError::ReadDir {
        dir: dir.to_owned(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(read_dir)? {
        let path = entry.map_err(read_dir)?.path();
        let hidden = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_none_or(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        // A symbolic link may point anywhere; follow it only if it stays in the folder.
        let is_link = std::fs::symlink_metadata(&path)
            .map(|m| m.file_type().is_symlink())
            .unwrap_or(false);
        if is_link {
            let target = path.canonicalize().map_err(|source| TemplateError::Read {
                path: path.clone(),
                source,
            })?;
            if !target.starts_with(root) {
                return Err(TemplateError::OutsideFolder {
                    path,
                    target,
                    root: root.to_owned(),
                });
            }
        }
        if path.is_dir() {
            if !is_link {
                collect(root, &path, out)?;
            }
            continue;
        }
        let Some(name) = path
            .strip_prefix(root)
            .ok()
            .and_then(|p| p.to_str())
            .map(|p| p.replace(std::path::MAIN_SEPARATOR, "/"))
        else {
            continue;
        };
        let source = std::fs::read_to_string(&path).map_err(|source| TemplateError::Read {
            path: path.clone(),
            source,
        })?;
        out.push((name, source));
    }
    Ok(())
}

/// Write template `name` (a relative path already checked to have no `.` or `..` parts)
/// into `root`: through a uniquely named temporary file in the same folder, renamed over
/// the target, never through a symbolic link and never over a folder.
pub fn write_template(root: &Path, name: &str, text: &str) -> Result<(), TemplateError> {
    let fail = |detail: String| TemplateError::Write {
        name: name.to_owned(),
        detail,
    };
    let root = root
        .canonicalize()
        .map_err(|e| fail(format!("templates folder {}: {e}", root.display())))?;
    let path = root.join(name);
    let dir = path
        .parent()
        .ok_or_else(|| fail("has no folder".into()))?
        .to_owned();
    std::fs::create_dir_all(&dir).map_err(|e| fail(e.to_string()))?;
    let real_dir = dir.canonicalize().map_err(|e| fail(e.to_string()))?;
    if !real_dir.starts_with(&root) {
        return Err(fail(
            "its folder is a symbolic link out of the templates folder".into(),
        ));
    }
    if let Ok(meta) = std::fs::symlink_metadata(&path) {
        if meta.is_dir() {
            return Err(fail("a folder of that name exists".into()));
        }
        if meta.file_type().is_symlink() {
            return Err(fail("a symbolic link of that name exists".into()));
        }
    }
    let mut tmp = tempfile::Builder::new()
        .prefix(".upload-")
        .tempfile_in(&real_dir)
        .map_err(|e| fail(e.to_string()))?;
    std::io::Write::write_all(&mut tmp, text.as_bytes()).map_err(|e| fail(e.to_string()))?;
    tmp.persist(&path).map_err(|e| fail(e.error.to_string()))?;
    Ok(())
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

fn describe(name: &str, source: &str, e: &minijinja::Error) -> TemplateError {
    let line = e.line();
    if e.kind() == ErrorKind::UndefinedError {
        // The error's span covers the expression that produced the undefined value
        // (`mgmt_ip`, `intf.vlan`); quote it so the user sees which variable is missing.
        let expr = e
            .range()
            .and_then(|r| source.get(r))
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|| "a variable".to_owned());
        return TemplateError::Undefined {
            name: name.to_owned(),
            line: line.unwrap_or(0),
            expr,
        };
    }
    TemplateError::Render {
        name: name.to_owned(),
        line,
        detail: e
            .detail()
            .map(str::to_owned)
            .unwrap_or_else(|| e.kind().to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one(source: &str) -> Templates {
        Templates::from_sources([("t.j2".to_owned(), source.to_owned())]).unwrap()
    }

    #[test]
    fn jinja2_whitespace_settings() {
        let t =
            one("a\n{% for x in xs %}\n  {% if x %}\n{{ x }}\n  {% endif %}\n{% endfor %}\nend\n");
        assert_eq!(
            t.render("t.j2", &json!({"xs": [1, 2]})).unwrap(),
            "a\n1\n2\nend\n"
        );
    }

    #[test]
    fn missing_variable_names_template_line_and_expression() {
        let t = one("hostname {{ hostname }}\nip address {{ mgmt_ip }}\n");
        let err = t.render("t.j2", &json!({"hostname": "leaf1"})).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("t.j2"), "{msg}");
        assert!(msg.contains("line 2"), "{msg}");
        assert!(msg.contains("mgmt_ip"), "{msg}");
    }

    #[test]
    fn missing_attribute_names_the_expression() {
        let t =
            one("{% for i in intfs %}\ninterface {{ i.name }}\n vlan {{ i.vlan }}\n{% endfor %}\n");
        let err = t
            .render("t.j2", &json!({"intfs": [{"name": "Ethernet1"}]}))
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("line 3") && msg.contains("i.vlan"), "{msg}");
    }

    #[test]
    fn optional_variables_can_be_tested() {
        let t = one("{% if banner %}banner {{ banner }}\n{% endif %}end\n");
        assert_eq!(t.render("t.j2", &json!({})).unwrap(), "end\n");
    }

    #[test]
    fn unknown_template_lists_the_available_ones() {
        let t = one("x");
        let msg = t.render("nope.j2", &json!({})).unwrap_err().to_string();
        assert!(msg.contains("nope.j2") && msg.contains("t.j2"), "{msg}");
    }

    #[test]
    fn syntax_error_names_template_and_line() {
        let err =
            Templates::from_sources([("bad.j2".to_owned(), "ok\n{% for x in %}\n".to_owned())])
                .unwrap_err()
                .to_string();
        assert!(err.contains("bad.j2") && err.contains("line 2"), "{err}");
    }

    #[test]
    fn memoised_renders_equal_fresh_ones_and_errors_are_not_cached() {
        let t = one("hostname {{ hostname }}\n");
        let a = t.render_json("t.j2", r#"{"hostname":"leaf1"}"#).unwrap();
        let b = t.render_json("t.j2", r#"{"hostname":"leaf1"}"#).unwrap();
        let c = t.render_json("t.j2", r#"{"hostname":"leaf2"}"#).unwrap();
        assert_eq!(
            (&*a, &*b, &*c),
            ("hostname leaf1\n", "hostname leaf1\n", "hostname leaf2\n")
        );
        assert!(t.render_json("t.j2", "{}").is_err());
        assert!(t.render_json("t.j2", "{}").is_err());
    }

    #[test]
    fn no_html_escaping() {
        let t = one("{{ s }}");
        assert_eq!(
            t.render("t.j2", &json!({"s": "a<b & \"c\""})).unwrap(),
            "a<b & \"c\""
        );
    }
}
