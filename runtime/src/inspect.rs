//! `ward inspect`: everything an operator needs to decide about a plugin
//! before serving it, in one view: its identity and hash, what it imports and
//! exports, the tools, resources, templates and prompts it offers (with their
//! schemas, obtained by loading it with **nothing granted**), and what it
//! requests beside what its policy grants.
//!
//! "Requested vs granted" compares descriptors of the same shape (a guest
//! path with a mode, a variable name, a host entry, a limit), so the three
//! groups are a diff of two lists: granted and requested, requested but not
//! granted, granted but never requested. [`compare`] is pure; `ward add` and
//! `ward upgrade` reuse it. The JSON form ([`Inspection`], camelCase) is
//! documented in `docs/manifest.md` and stable: fields may be added, never
//! renamed.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use rmcp::model::{Prompt, Resource, ResourceTemplate, Tool};
use serde::Serialize;

use crate::backend::Backend;
use crate::cache::{self, Cache};
use crate::manifest::{self, Metadata, Mode, Requests};
use crate::plugin::{Plugin, Runtime};
use crate::registry::Registry;
use crate::sandbox::fs::{FsGrants, Protected};
use crate::sandbox::net::NetPolicy;
use crate::sandbox::policy::{format_duration, format_size, Limits, Policy};

/// The whole view of one plugin file.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Inspection {
    /// The plugin's name: its file stem.
    pub name: String,
    /// The `.wasm` file.
    pub path: PathBuf,
    /// Lowercase hex sha256 of the file.
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
    /// Identity, producers, imports, exports and the manifest.
    #[serde(flatten)]
    pub metadata: Metadata,
    /// The policy beside it.
    pub policy: PolicyInfo,
    /// What it offers, as clients would see it under this policy's names.
    pub items: Items,
    /// Why it could not be loaded, if it could not (then `items` is empty).
    pub load_error: Option<String>,
    /// Requested vs granted.
    pub access: Access,
}

/// The policy file beside a plugin.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyInfo {
    /// `DIR/NAME.toml`.
    pub path: PathBuf,
    /// Whether it exists (without one, nothing is granted).
    pub present: bool,
    /// Why it is invalid (ward would not load the plugin); then nothing is
    /// counted as granted.
    pub errors: Vec<String>,
}

/// The items a plugin offers, in MCP's own JSON shapes.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Items {
    /// Tools, with input and output schemas.
    pub tools: Vec<Tool>,
    /// Fixed resources.
    pub resources: Vec<Resource>,
    /// Resource templates.
    pub resource_templates: Vec<ResourceTemplate>,
    /// Prompts, with their arguments.
    pub prompts: Vec<Prompt>,
}

/// Requested vs granted, one descriptor per capability.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Access {
    /// Requested by the manifest and granted by the policy.
    pub granted_and_requested: Vec<Capability>,
    /// Requested but not (or not fully) granted: the plugin may fail without it.
    pub requested_not_granted: Vec<Capability>,
    /// Granted although the manifest never asked: more than it says it needs.
    pub granted_not_requested: Vec<Capability>,
}

/// One capability as requested and as granted.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Capability {
    /// `fs`, `env`, `network` or `limits`.
    pub kind: &'static str,
    /// The guest path, variable name, host entry or limit name (`memory`,
    /// `fuel`, `timeout`, `max-output`).
    pub name: String,
    /// What was requested: `ro`/`rw`, `set`, the host entry, the limit value.
    pub requested: Option<String>,
    /// What is granted, in the same terms (never an environment value).
    pub granted: Option<String>,
    /// The author's reason, from the manifest.
    pub why: Option<String>,
    /// The host directory behind a granted guest path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<PathBuf>,
    /// For environment variables: whether the manifest marks it secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<bool>,
}

impl Capability {
    fn new(kind: &'static str, name: impl Into<String>) -> Self {
        Self {
            kind,
            name: name.into(),
            requested: None,
            granted: None,
            why: None,
            host: None,
            secret: None,
        }
    }
}

/// Where `inspect` finds things.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The compiled-artifact cache, to load large plugins quickly.
    pub cache_dir: Option<PathBuf>,
}

/// The `.wasm` file `target` means: an existing file path, or the name of a
/// plugin in `plugins` (`NAME` or `NAME.wasm`).
pub fn resolve(target: &str, plugins: Option<&Path>) -> Result<PathBuf> {
    let as_path = Path::new(target);
    if as_path.is_file() {
        return Ok(as_path.to_path_buf());
    }
    let dir = match plugins {
        Some(dir) => dir.to_path_buf(),
        None => crate::server::default_plugin_dir()
            .context("no plugin directory given and $HOME is not set; pass --plugins DIR")?,
    };
    let file = if target.ends_with(".wasm") {
        dir.join(target)
    } else {
        dir.join(format!("{target}.wasm"))
    };
    anyhow::ensure!(
        file.is_file(),
        "no plugin `{target}`: neither a file of that name nor {} exists",
        file.display()
    );
    Ok(file)
}

/// Inspects the plugin at `path` with the policy beside it.
pub async fn inspect(path: &Path, options: &Options) -> Result<Inspection> {
    let name = crate::loader::plugin_name(path)
        .with_context(|| format!("{}: not a plugin file name (NAME.wasm)", path.display()))?
        .to_string();
    let wasm = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let digest = cache::digest(&wasm);
    let metadata = manifest::read(&wasm).with_context(|| format!("{}", path.display()))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let policy_path = dir.join(format!("{name}.toml"));
    // What serve would grant: the same protection of ward's own files.
    let protected = Protected::default().with_ward_state(options.cache_dir.as_deref());
    let (policy, policy_errors) = match Policy::for_plugin(dir, &name, &protected) {
        Ok(policy) => (Some(policy), Vec::new()),
        Err(e) => (
            None,
            e.problems
                .iter()
                .map(|p| format!("{}: {p}", e.path.display()))
                .collect(),
        ),
    };
    let granted = policy.clone().unwrap_or_else(|| Policy::defaults(&name));
    let access = compare(&metadata.manifest.requests, &granted);
    let (items, load_error) = match load(&name, &wasm, digest, &granted, options).await {
        Ok(items) => (items, None),
        Err(e) => (Items::default(), Some(format!("{e:#}"))),
    };
    Ok(Inspection {
        name,
        path: path.to_path_buf(),
        sha256: hex(&digest),
        size: wasm.len() as u64,
        metadata,
        policy: PolicyInfo {
            present: policy_path.exists(),
            path: policy_path,
            errors: policy_errors,
        },
        items,
        load_error,
        access,
    })
}

/// Loads the plugin with nothing granted (no files, no environment, no
/// network; the policy's limits and names) and lists what it offers, exactly
/// as `serve` would expose it.
async fn load(
    name: &str,
    wasm: &[u8],
    digest: cache::Digest,
    granted: &Policy,
    options: &Options,
) -> Result<Items> {
    let runtime = Runtime::new(None)?;
    let cache = options
        .cache_dir
        .as_ref()
        .and_then(|d| Cache::open(d, crate::cache::DEFAULT_MAX_SIZE).ok());
    let component = {
        let (runtime, wasm) = (runtime.clone(), wasm.to_vec());
        tokio::task::spawn_blocking(move || match cache {
            Some(cache) => cache
                .component(runtime.engine(), &wasm, &digest)
                .map(|(c, _)| c),
            None => wasmtime::component::Component::new(runtime.engine(), &wasm)
                .map_err(anyhow::Error::from),
        })
        .await
        .context("the compile task failed")?
        .context("compiling it")?
    };
    let nothing = Policy {
        fs: FsGrants::default(),
        env: Vec::new(),
        network: NetPolicy::default(),
        ..granted.clone()
    };
    let registry = Registry::new();
    let plugin = Plugin::new(
        runtime,
        name,
        &component,
        nothing,
        digest,
        registry.events(),
    )
    .await?;
    registry.insert(Arc::new(plugin));
    let catalog = Backend::catalog(&registry);
    Ok(Items {
        tools: catalog.tools.clone(),
        resources: catalog.resources.clone(),
        resource_templates: catalog.resource_templates.clone(),
        prompts: catalog.prompts.clone(),
    })
}

/// Requested (by the manifest) vs granted (by the policy).
///
/// - A directory request is granted when a grant covers its guest path (the
///   same path or a parent) with at least the requested mode; `ro` granted
///   for an `rw` request is not granted.
/// - A variable is granted when the policy sets it.
/// - A host is granted when the allow list would let the plugin connect to
///   it: the same entry, or a name (with its port) that an entry matches.
/// - A limit is granted when the policy's limit is at least the request.
///   Limits raised above the defaults without a request are granted but
///   never requested.
pub fn compare(requests: &Requests, policy: &Policy) -> Access {
    let mut access = Access::default();

    // Directories.
    let mut used = vec![false; policy.fs.len()];
    for req in &requests.fs {
        let mut cap = Capability::new("fs", &req.guest);
        cap.requested = Some(req.mode.to_string());
        cap.why = req.why.clone();
        let covering = policy
            .fs
            .iter()
            .enumerate()
            .filter(|(_, g)| covers(&g.guest, &req.guest))
            .max_by_key(|(_, g)| (Mode::from(g.mode), g.guest.len()));
        match covering {
            Some((i, grant)) => {
                used[i] = true;
                cap.granted = Some(Mode::from(grant.mode).to_string());
                cap.host = Some(grant.host.clone());
                if Mode::from(grant.mode) >= req.mode {
                    access.granted_and_requested.push(cap);
                } else {
                    access.requested_not_granted.push(cap);
                }
            }
            None => access.requested_not_granted.push(cap),
        }
    }
    for (grant, used) in policy.fs.iter().zip(used) {
        if !used {
            let mut cap = Capability::new("fs", &grant.guest);
            cap.granted = Some(Mode::from(grant.mode).to_string());
            cap.host = Some(grant.host.clone());
            access.granted_not_requested.push(cap);
        }
    }

    // Environment variables: names only, never values.
    for req in &requests.env {
        let mut cap = Capability::new("env", &req.name);
        cap.requested = Some("set".into());
        cap.why = req.why.clone();
        cap.secret = Some(req.secret);
        if policy.env.iter().any(|(k, _)| *k == req.name) {
            cap.granted = Some("set".into());
            access.granted_and_requested.push(cap);
        } else {
            access.requested_not_granted.push(cap);
        }
    }
    for (key, _) in &policy.env {
        if !requests.env.iter().any(|r| r.name == *key) {
            let mut cap = Capability::new("env", key);
            cap.granted = Some("set".into());
            access.granted_not_requested.push(cap);
        }
    }

    // Network.
    let entries = policy.network.entries();
    let mut used = vec![false; entries.len()];
    for req in &requests.network {
        let mut cap = Capability::new("network", &req.host);
        cap.requested = Some(req.host.clone());
        cap.why = req.why.clone();
        let wanted = req.entry();
        let hit = entries
            .iter()
            .position(|e| Some(e) == wanted.as_ref())
            .or_else(|| {
                let wanted = wanted.as_ref()?;
                let (host, port) = match (&wanted.host, wanted.port) {
                    (crate::sandbox::net::HostPattern::Name(h), Some(p)) => (h.clone(), p),
                    (crate::sandbox::net::HostPattern::Ip(ip), Some(p)) => (ip.to_string(), p),
                    _ => return None,
                };
                entries
                    .iter()
                    .position(|e| NetPolicy::new(vec![e.clone()]).allows_host(&host, port))
            });
        match hit {
            Some(i) => {
                used[i] = true;
                cap.granted = Some(entries[i].to_string());
                access.granted_and_requested.push(cap);
            }
            None => access.requested_not_granted.push(cap),
        }
    }
    for (entry, used) in entries.iter().zip(used) {
        if !used {
            let mut cap = Capability::new("network", entry.to_string());
            cap.granted = Some(entry.to_string());
            access.granted_not_requested.push(cap);
        }
    }

    // Limits.
    let defaults = Limits::default();
    let have = &policy.limits;
    let limits: [(&str, Option<u64>, u64, u64, fn(u64) -> String); 4] = [
        (
            "memory",
            requests.limits.memory,
            have.memory,
            defaults.memory,
            format_size,
        ),
        (
            "fuel",
            requests.limits.fuel,
            have.fuel,
            defaults.fuel,
            |v| v.to_string(),
        ),
        (
            "timeout",
            requests.limits.timeout_ms,
            have.timeout.as_millis() as u64,
            defaults.timeout.as_millis() as u64,
            |ms| format_duration(std::time::Duration::from_millis(ms)),
        ),
        (
            "max-output",
            requests.limits.max_output,
            have.max_output,
            defaults.max_output,
            format_size,
        ),
    ];
    for (name, wanted, granted, default, show) in limits {
        let mut cap = Capability::new("limits", name);
        cap.granted = Some(show(granted));
        match wanted {
            Some(wanted) => {
                cap.requested = Some(show(wanted));
                cap.why = requests.limits.why.clone();
                if granted >= wanted {
                    access.granted_and_requested.push(cap);
                } else {
                    access.requested_not_granted.push(cap);
                }
            }
            None if granted > default => access.granted_not_requested.push(cap),
            None => {}
        }
    }
    access
}

/// Whether a grant at guest path `grant` makes `path` visible.
fn covers(grant: &str, path: &str) -> bool {
    grant == "/"
        || path == grant
        || (path.starts_with(grant) && path.as_bytes().get(grant.len()) == Some(&b'/'))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Text from the plugin, made safe for a terminal: control characters
/// (escape sequences that could rewrite what the operator sees) are shown as
/// `\u{..}`, never sent.
pub fn clean(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control()
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// Like [`clean`], but keeps line breaks and tabs: for multi-line text.
pub fn clean_text(s: &str) -> String {
    s.split_inclusive(['\n', '\t'])
        .map(|part| {
            let (body, end) = match part.char_indices().last() {
                Some((i, c @ ('\n' | '\t'))) => (&part[..i], Some(c)),
                _ => (part, None),
            };
            let mut out = clean(body);
            out.extend(end);
            out
        })
        .collect()
}

/// The human-readable view. Everything that came from the plugin passes
/// through [`clean`].
pub fn render(i: &Inspection) -> String {
    let mut o = String::new();
    let id = &i.metadata.identity;
    let opt = |v: &Option<String>| v.as_deref().map(clean).unwrap_or_else(|| "-".into());
    let _ = writeln!(o, "plugin      {}", i.name);
    let _ = writeln!(o, "file        {}", i.path.display());
    let _ = writeln!(o, "sha256      {}", i.sha256);
    let _ = writeln!(o, "size        {} ({} bytes)", format_size(i.size), i.size);
    let _ = writeln!(o, "name        {}", opt(&id.name));
    let _ = writeln!(o, "version     {}", opt(&id.version));
    let _ = writeln!(o, "description {}", opt(&id.description));
    let authors = if id.authors.is_empty() {
        "-".to_string()
    } else {
        clean(&id.authors.join(", "))
    };
    let _ = writeln!(o, "authors     {authors}");
    let _ = writeln!(o, "license     {}", opt(&id.license));
    let _ = writeln!(o, "source      {}", opt(&id.source));
    if id.homepage.is_some() {
        let _ = writeln!(o, "homepage    {}", opt(&id.homepage));
    }
    if id.revision.is_some() {
        let _ = writeln!(o, "revision    {}", opt(&id.revision));
    }
    let language: Vec<String> = i.metadata.languages.iter().map(|l| clean(l)).collect();
    let tools: Vec<String> = i
        .metadata
        .producers
        .iter()
        .filter(|p| p.field != "language")
        .map(|p| clean(format!("{} {}", p.name, p.version).trim()))
        .collect();
    let _ = writeln!(
        o,
        "language    {}",
        if language.is_empty() {
            "-".into()
        } else {
            language.join(", ")
        }
    );
    let _ = writeln!(
        o,
        "built by    {}",
        if tools.is_empty() {
            "-".into()
        } else {
            tools.join(", ")
        }
    );

    let _ = writeln!(o, "\nimports ({})", i.metadata.imports.len());
    for name in &i.metadata.imports {
        let _ = writeln!(o, "  {}", clean(name));
    }
    let _ = writeln!(o, "exports ({})", i.metadata.exports.len());
    for name in &i.metadata.exports {
        let _ = writeln!(o, "  {}", clean(name));
    }

    let _ = writeln!(o, "\nloaded with nothing granted:");
    if let Some(e) = &i.load_error {
        let _ = writeln!(o, "  FAILED: {}", clean(e));
    }
    let schema = |s: &serde_json::Map<String, serde_json::Value>| {
        clean(&serde_json::Value::Object(s.clone()).to_string())
    };
    for t in &i.items.tools {
        let _ = writeln!(
            o,
            "  tool      {}: {}",
            clean(&t.name),
            clean(t.description.as_deref().unwrap_or(""))
        );
        let _ = writeln!(o, "            input  {}", schema(t.input_schema.as_ref()));
        if let Some(out) = &t.output_schema {
            let _ = writeln!(o, "            output {}", schema(out.as_ref()));
        }
    }
    for r in &i.items.resources {
        let _ = writeln!(o, "  resource  {} ({})", clean(&r.uri), clean(&r.name));
    }
    for t in &i.items.resource_templates {
        let _ = writeln!(
            o,
            "  template  {} ({})",
            clean(&t.uri_template),
            clean(&t.name)
        );
    }
    for p in &i.items.prompts {
        let args: Vec<String> = p
            .arguments
            .iter()
            .flatten()
            .map(|a| {
                let required = if a.required == Some(true) { "" } else { "?" };
                clean(&format!("{}{required}", a.name))
            })
            .collect();
        let _ = writeln!(o, "  prompt    {}({})", clean(&p.name), args.join(", "));
    }

    let m = &i.metadata.manifest;
    let _ = writeln!(o);
    if !m.present {
        let _ = writeln!(o, "manifest    none (the plugin requests nothing)");
    }
    for e in &m.errors {
        let _ = writeln!(o, "manifest    ERROR: {}", clean(e));
    }
    for w in &m.warnings {
        let _ = writeln!(o, "manifest    warning: {}", clean(w));
    }
    let policy = if !i.policy.present {
        format!("{} (absent: nothing granted)", i.policy.path.display())
    } else {
        i.policy.path.display().to_string()
    };
    let _ = writeln!(o, "policy      {policy}");
    for e in &i.policy.errors {
        let _ = writeln!(o, "policy      ERROR (ward will not load the plugin): {e}");
    }
    let groups = [
        ("granted and requested", &i.access.granted_and_requested),
        ("requested but NOT granted", &i.access.requested_not_granted),
        (
            "granted but never requested",
            &i.access.granted_not_requested,
        ),
    ];
    for (title, caps) in groups {
        let _ = writeln!(o, "\n{title} ({})", caps.len());
        for c in caps {
            let mut line = format!("  {:<8} {}", c.kind, clean(&c.name));
            match (&c.requested, &c.granted) {
                (Some(r), Some(g)) if c.kind != "env" => {
                    let _ = write!(line, "  requested {}, granted {}", clean(r), g);
                }
                (None, Some(g)) if c.kind != "env" => {
                    let _ = write!(line, "  granted {g}");
                }
                (Some(r), None) if c.kind != "env" => {
                    let _ = write!(line, "  requested {}", clean(r));
                }
                _ => {}
            }
            if let Some(host) = &c.host {
                let _ = write!(line, " (host {})", host.display());
            }
            if c.secret == Some(true) {
                line.push_str(" [secret]");
            }
            if let Some(why) = &c.why {
                let _ = write!(line, ": {}", clean(why));
            }
            let _ = writeln!(o, "{line}");
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{EnvRequest, FsRequest, LimitsRequest, NetRequest};

    fn policy(text: &str, dir: &Path) -> Policy {
        Policy::parse(text, &dir.join("p.toml"), "p").unwrap()
    }

    #[test]
    fn compares_requested_and_granted() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("data")).unwrap();
        let granted = policy(
            "[[fs]]\nhost = \"./data\"\nguest = \"/data\"\nmode = \"ro\"\n\
             [env]\nA = \"1\"\nEXTRA = \"2\"\n\
             [network]\nallow = [\"*.example.org\", \"10.0.0.1:80\"]\n\
             [limits]\nmemory = \"256MiB\"\nfuel = 20_000_000_000\n",
            dir.path(),
        );
        let requests = Requests {
            fs: vec![
                FsRequest {
                    guest: "/data/sub".into(),
                    mode: Mode::Ro,
                    why: None,
                },
                FsRequest {
                    guest: "/data".into(),
                    mode: Mode::Rw,
                    why: None,
                },
                FsRequest {
                    guest: "/cache".into(),
                    mode: Mode::Ro,
                    why: None,
                },
            ],
            env: vec![
                EnvRequest {
                    name: "A".into(),
                    why: None,
                    secret: true,
                },
                EnvRequest {
                    name: "B".into(),
                    why: None,
                    secret: false,
                },
            ],
            network: vec![
                NetRequest {
                    host: "api.example.org:443".into(),
                    why: None,
                },
                NetRequest {
                    host: "example.com".into(),
                    why: None,
                },
            ],
            limits: LimitsRequest {
                memory: Some(128 << 20),
                timeout_ms: Some(60_000),
                ..Default::default()
            },
        };
        let a = compare(&requests, &granted);
        let names = |caps: &[Capability]| {
            caps.iter()
                .map(|c| format!("{}:{}", c.kind, c.name))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(&a.granted_and_requested),
            [
                "fs:/data/sub",
                "env:A",
                "network:api.example.org:443",
                "limits:memory"
            ]
        );
        assert_eq!(
            names(&a.requested_not_granted),
            [
                "fs:/data",
                "fs:/cache",
                "env:B",
                "network:example.com",
                "limits:timeout"
            ]
        );
        assert_eq!(
            names(&a.granted_not_requested),
            ["env:EXTRA", "network:10.0.0.1:80", "limits:fuel"]
        );
    }

    #[test]
    fn nothing_requested_nothing_granted_is_empty() {
        assert_eq!(
            compare(&Requests::default(), &Policy::defaults("x")),
            Access::default()
        );
    }

    #[test]
    fn control_characters_are_shown_not_sent() {
        assert_eq!(clean("ok\u{1b}[2K\rALL"), "ok\\u{1b}[2K\\u{d}ALL");
        assert_eq!(clean("a\u{202e}b"), "a\\u{202e}b");
        assert_eq!(clean_text("a\n\tb\u{1b}"), "a\n\tb\\u{1b}");
    }
}
