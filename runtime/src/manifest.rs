//! What a component says about itself, read without running it: its identity
//! (name, version, authors, licence, source), its producers (language,
//! toolchain), its top-level imports and exports, and its **manifest**: the
//! capabilities it requests (files, environment variables, network hosts,
//! limits above the defaults), each with the author's reason.
//!
//! Where it lives in the binary (documented in `docs/manifest.md`):
//! - Identity uses the custom sections that `wasm-metadata` (and
//!   `wasm-tools metadata add`) read and write: `version`, `description`,
//!   `authors`, `licenses`, `source`, `homepage`, `revision` (UTF-8 text), the
//!   component name from `component-name`, and `producers`.
//! - Requests live in one custom section, [`SECTION`] (`ward:manifest`),
//!   holding the UTF-8 text of the author's `ward.toml`. Its `[plugin]` table
//!   overrides the identity sections field by field.
//!
//! Sections are looked for at the top level of the component and in the
//! modules and components nested in it (the Rust SDK's sections sit in the
//! core module that `wasm-component-ld` wraps), the top level first. Two
//! `ward:manifest` sections make the manifest ambiguous, which is an error.
//!
//! The manifest is a claim by an untrusted author, shown to the operator; it
//! never grants anything by itself. So reading is lenient where that is safe
//! (unknown keys are warnings, so a newer SDK's manifest still reads) and
//! strict where a wrong reading would mislead (bad values are errors, and a
//! manifest with errors requests nothing). Every text field is bounded.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Serialize;
use toml::{Table, Value};
use wasmparser::{KnownCustom, Parser, Payload};

use crate::sandbox::net::AllowEntry;
use crate::sandbox::policy::{FsMode, Limits, Policy};

/// The custom section that holds the manifest text.
pub const SECTION: &str = "ward:manifest";

/// The largest manifest section read; a bigger one is an error.
pub const MAX_MANIFEST_BYTES: usize = 64 << 10;

/// Text fields (reasons, descriptions) longer than this are cut.
pub const MAX_TEXT_CHARS: usize = 1024;

/// What a component says about itself. The JSON form (field names in
/// camelCase) is part of `ward inspect --json` and documented in
/// `docs/manifest.md`.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    /// Who made it and what it is.
    pub identity: Identity,
    /// The source languages, best guess: the component's own `language`
    /// producers, else what its toolchain implies (wit-bindgen-rust: Rust,
    /// ComponentizeJS: JavaScript, componentize-py: Python,
    /// wit-bindgen-c: C), else every `language` of its modules.
    pub languages: Vec<String>,
    /// Toolchains from the `producers` sections, de-duplicated.
    pub producers: Vec<Producer>,
    /// Names the component imports (interfaces such as `wasi:cli/environment@0.2.0`).
    pub imports: Vec<String>,
    /// Names it exports.
    pub exports: Vec<String>,
    /// The `ward:manifest` section as read.
    pub manifest: ManifestInfo,
}

/// Identity fields; empty when the component does not say.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    /// The plugin's own name for itself (ward serves it under its file stem).
    pub name: Option<String>,
    /// Its version.
    pub version: Option<String>,
    /// What it does.
    pub description: Option<String>,
    /// Who wrote it.
    pub authors: Vec<String>,
    /// Its licence, an SPDX expression.
    pub license: Option<String>,
    /// Where its source is.
    pub source: Option<String>,
    /// Where to read about it.
    pub homepage: Option<String>,
    /// The source revision it was built from.
    pub revision: Option<String>,
}

/// One tool from a `producers` section (`language`, `processed-by` or `sdk`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Producer {
    /// `language`, `processed-by` or `sdk`.
    pub field: String,
    /// The tool or language.
    pub name: String,
    /// Its version, possibly empty.
    pub version: String,
}

/// The manifest section and what it requests.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ManifestInfo {
    /// Whether the component has a `ward:manifest` section. Without one it
    /// requests nothing.
    pub present: bool,
    /// Why the manifest cannot be used; when not empty, `requests` is empty.
    pub errors: Vec<String>,
    /// What could be read but was ignored (unknown keys, cut text).
    pub warnings: Vec<String>,
    /// What the plugin asks for.
    pub requests: Requests,
}

/// Capabilities a plugin asks for. Requests are descriptors, the same shape
/// as the grants of a policy, so "requested vs granted" is a comparison.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Requests {
    /// Directories, by guest path.
    pub fs: Vec<FsRequest>,
    /// Environment variables, by name.
    pub env: Vec<EnvRequest>,
    /// Hosts to connect to, in `[network] allow` syntax.
    pub network: Vec<NetRequest>,
    /// Limits above the defaults.
    pub limits: LimitsRequest,
}

impl Requests {
    /// True when nothing at all is requested.
    pub fn is_empty(&self) -> bool {
        self.fs.is_empty()
            && self.env.is_empty()
            && self.network.is_empty()
            && self.limits == LimitsRequest::default()
    }
}

/// A directory the plugin expects to see.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FsRequest {
    /// Where the guest looks for it: absolute and normalised.
    pub guest: String,
    /// `ro` or `rw`.
    pub mode: Mode,
    /// The author's reason.
    pub why: Option<String>,
}

/// Read-only or read-write, as requested or granted.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Read-only.
    Ro,
    /// Read and write.
    Rw,
}

impl From<FsMode> for Mode {
    fn from(mode: FsMode) -> Self {
        match mode {
            FsMode::Ro => Mode::Ro,
            FsMode::Rw => Mode::Rw,
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mode::Ro => "ro",
            Mode::Rw => "rw",
        })
    }
}

/// An environment variable the plugin reads.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EnvRequest {
    /// Its name.
    pub name: String,
    /// The author's reason.
    pub why: Option<String>,
    /// Whether its value is a secret (a token, a password): `ward add` and
    /// the audit log treat it as one.
    pub secret: bool,
}

/// A host the plugin connects to.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct NetRequest {
    /// As in `[network] allow`: `host`, `host:port`, `*.suffix`, an IP.
    pub host: String,
    /// The author's reason.
    pub why: Option<String>,
}

impl NetRequest {
    /// The parsed entry (validated when the manifest was read).
    pub fn entry(&self) -> Option<AllowEntry> {
        self.host.parse().ok()
    }
}

/// Limits the plugin needs above the defaults; `None` means the default is enough.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LimitsRequest {
    /// Bytes of memory.
    pub memory: Option<u64>,
    /// Fuel per call.
    pub fuel: Option<u64>,
    /// Wall-clock milliseconds per call.
    pub timeout_ms: Option<u64>,
    /// Bytes of one result.
    pub max_output: Option<u64>,
    /// The author's reason.
    pub why: Option<String>,
}

/// Reads everything a component says about itself. Fails only when the
/// bytes are not a WebAssembly binary; a bad manifest is reported in
/// [`ManifestInfo::errors`].
pub fn read(wasm: &[u8]) -> Result<Metadata> {
    let sections = Sections::scan(wasm)?;
    let mut meta = Metadata {
        imports: sections.imports,
        exports: sections.exports,
        ..Default::default()
    };
    meta.languages = languages(&sections.top_languages, &sections.producers);
    let mut producers = sections.producers;
    producers.sort();
    producers.dedup();
    meta.producers = producers;

    // Identity from the standard sections, the top level first.
    let text = |name: &str| -> Option<String> {
        sections
            .custom
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, data)| String::from_utf8_lossy(data).trim().to_string())
            .find(|s| !s.is_empty())
            .map(|s| bounded(&s))
    };
    let id = &mut meta.identity;
    id.name = sections.component_name.map(|s| bounded(&s));
    id.version = text("version");
    id.description = text("description");
    id.authors = text("authors")
        .map(|a| split_authors(&a))
        .unwrap_or_default();
    id.license = text("licenses");
    id.source = text("source");
    id.homepage = text("homepage");
    id.revision = text("revision");

    let manifests: Vec<&Vec<u8>> = sections
        .custom
        .iter()
        .filter(|(n, _)| n == SECTION)
        .map(|(_, data)| data)
        .collect();
    let info = &mut meta.manifest;
    match manifests.as_slice() {
        [] => {}
        [data] => {
            info.present = true;
            match parse_bytes(data) {
                Ok((requests, plugin, warnings)) => {
                    info.requests = requests;
                    info.warnings = warnings;
                    plugin.apply(&mut meta.identity);
                }
                Err(errors) => info.errors = errors,
            }
        }
        many => {
            info.present = true;
            info.errors.push(format!(
                "the component has {} `{SECTION}` sections (a composed component, or a manifest added twice); \
                 which one applies is ambiguous, so none is used",
                many.len()
            ));
        }
    }
    Ok(meta)
}

/// Reads the manifest file `ward.toml` an author writes beside their
/// project, as the SDK helpers embed it; for `ward` commands that check a
/// manifest before it is embedded. Errors name the file.
pub fn read_file(path: &Path) -> Result<ManifestInfo> {
    let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let mut info = ManifestInfo {
        present: true,
        ..Default::default()
    };
    match parse_bytes(&data) {
        Ok((requests, _, warnings)) => {
            info.requests = requests;
            info.warnings = warnings;
        }
        Err(errors) => {
            info.errors = errors
                .into_iter()
                .map(|e| format!("{}: {e}", path.display()))
                .collect()
        }
    }
    Ok(info)
}

/// The custom sections, producers, imports and exports of a binary.
#[derive(Default)]
struct Sections {
    /// (name, data), top level first, then nested modules in order.
    custom: Vec<(String, Vec<u8>)>,
    producers: Vec<Producer>,
    /// `language` producers of the outermost component itself.
    top_languages: Vec<String>,
    component_name: Option<String>,
    imports: Vec<String>,
    exports: Vec<String>,
}

impl Sections {
    fn scan(wasm: &[u8]) -> Result<Self> {
        if !wasm.starts_with(b"\0asm") {
            bail!("not a WebAssembly file");
        }
        let mut out = Sections::default();
        // (depth, name, data): sorted by depth afterwards, stable, so the
        // top level wins and nested modules keep their order.
        let mut custom: Vec<(usize, String, Vec<u8>)> = Vec::new();
        let mut depth = 0usize;
        for payload in Parser::new(0).parse_all(wasm) {
            match payload.context("not a valid WebAssembly binary")? {
                Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
                Payload::End(_) => depth = depth.saturating_sub(1),
                Payload::ComponentImportSection(reader) if depth == 0 => {
                    for import in reader {
                        out.imports.push(import?.name.name.to_string());
                    }
                }
                Payload::ComponentExportSection(reader) if depth == 0 => {
                    for export in reader {
                        out.exports.push(export?.name.name.to_string());
                    }
                }
                Payload::CustomSection(section) => match section.as_known() {
                    KnownCustom::Producers(reader) => {
                        // A malformed producers section is ignored: it only
                        // informs, and must not hide the rest.
                        for field in reader.into_iter().flatten() {
                            for value in field.values.into_iter().flatten() {
                                if depth == 0 && field.name == "language" {
                                    out.top_languages.push(bounded(value.name));
                                }
                                out.producers.push(Producer {
                                    field: field.name.to_string(),
                                    name: bounded(value.name),
                                    version: bounded(value.version),
                                });
                            }
                        }
                    }
                    KnownCustom::ComponentName(reader) if depth == 0 => {
                        for name in reader.into_iter().flatten() {
                            if let wasmparser::ComponentName::Component { name, .. } = name {
                                if !name.is_empty() {
                                    out.component_name = Some(name.to_string());
                                }
                            }
                        }
                    }
                    _ => {
                        let name = section.name();
                        if name == SECTION
                            || matches!(
                                name,
                                "version"
                                    | "description"
                                    | "authors"
                                    | "licenses"
                                    | "source"
                                    | "homepage"
                                    | "revision"
                            )
                        {
                            custom.push((depth, name.to_string(), section.data().to_vec()));
                        }
                    }
                },
                _ => {}
            }
        }
        custom.sort_by_key(|(depth, _, _)| *depth);
        out.custom = custom.into_iter().map(|(_, n, d)| (n, d)).collect();
        Ok(out)
    }
}

/// See [`Metadata::languages`].
fn languages(top: &[String], producers: &[Producer]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |l: &str| {
        if !out.iter().any(|o| o == l) {
            out.push(l.to_string());
        }
    };
    if !top.is_empty() {
        top.iter().for_each(|l| add(l));
        return out;
    }
    for (tool, language) in [
        ("wit-bindgen-rust", "Rust"),
        ("ComponentizeJS", "JavaScript"),
        ("componentize-py", "Python"),
    ] {
        if producers.iter().any(|p| p.name == tool) {
            add(language);
            return out;
        }
    }
    if producers.iter().any(|p| p.name == "wit-bindgen-c") {
        add("C");
        return out;
    }
    producers
        .iter()
        .filter(|p| p.field == "language")
        .for_each(|p| add(&p.name));
    out
}

/// The `[plugin]` table: identity fields that override the sections.
#[derive(Default)]
struct PluginTable {
    fields: BTreeMap<&'static str, String>,
    authors: Option<Vec<String>>,
}

impl PluginTable {
    fn apply(self, id: &mut Identity) {
        for (key, value) in self.fields {
            let slot = match key {
                "name" => &mut id.name,
                "version" => &mut id.version,
                "description" => &mut id.description,
                "license" => &mut id.license,
                "source" => &mut id.source,
                "homepage" => &mut id.homepage,
                "revision" => &mut id.revision,
                _ => continue,
            };
            *slot = Some(value);
        }
        if let Some(authors) = self.authors {
            id.authors = authors;
        }
    }
}

const TOP_KEYS: &[&str] = &["plugin", "fs", "env", "network", "limits"];
const PLUGIN_KEYS: &[&str] = &[
    "name",
    "version",
    "description",
    "authors",
    "license",
    "source",
    "homepage",
    "revision",
];
const FS_KEYS: &[&str] = &["guest", "mode", "why"];
const ENV_KEYS: &[&str] = &["why", "secret"];
const NET_KEYS: &[&str] = &["host", "why"];
const LIMIT_KEYS: &[&str] = &["memory", "fuel", "timeout", "max-output", "why"];

/// Collects problems while reading a manifest: errors make it unusable,
/// warnings are shown.
#[derive(Default)]
struct Reader {
    errors: Vec<String>,
    warnings: Vec<String>,
}

impl Reader {
    fn unknown(&mut self, key: &str, expected: &[&str]) {
        self.warnings.push(format!(
            "unknown key `{key}` ignored (expected one of {}); a newer ward may know it",
            expected.join(", ")
        ));
    }

    fn table<'a>(&mut self, key: &str, v: &'a Value, expected: &[&str]) -> Option<&'a Table> {
        match v {
            Value::Table(t) => {
                for k in t.keys() {
                    if !expected.contains(&k.as_str()) {
                        self.unknown(&format!("{key}.{k}"), expected);
                    }
                }
                Some(t)
            }
            other => {
                self.errors.push(format!(
                    "`{key}` must be a table, found {}",
                    other.type_str()
                ));
                None
            }
        }
    }

    fn string(&mut self, key: &str, v: Option<&Value>) -> Option<String> {
        match v? {
            Value::String(s) => {
                if s.chars().count() > MAX_TEXT_CHARS {
                    self.warnings
                        .push(format!("`{key}` is cut to {MAX_TEXT_CHARS} characters"));
                }
                Some(bounded(s))
            }
            other => {
                self.errors.push(format!(
                    "`{key}` must be a string, found {}",
                    other.type_str()
                ));
                None
            }
        }
    }

    fn array<'a>(&mut self, key: &str, v: &'a Value) -> &'a [Value] {
        match v {
            Value::Array(items) => items,
            other => {
                self.errors.push(format!(
                    "`{key}` must be an array of tables ([[{key}]]), found {}",
                    other.type_str()
                ));
                &[]
            }
        }
    }
}

type Parsed = (Requests, PluginTable, Vec<String>);

/// Parses manifest text into requests, the `[plugin]` table and warnings,
/// or every error found.
fn parse_bytes(data: &[u8]) -> Result<Parsed, Vec<String>> {
    if data.len() > MAX_MANIFEST_BYTES {
        return Err(vec![format!(
            "the `{SECTION}` section has {} bytes, more than the {MAX_MANIFEST_BYTES} allowed",
            data.len()
        )]);
    }
    let text = std::str::from_utf8(data)
        .map_err(|e| vec![format!("the `{SECTION}` section is not UTF-8 text: {e}")])?;
    let table: Table = toml::from_str(text).map_err(|e| {
        vec![format!(
            "the `{SECTION}` section is not valid TOML: {}",
            e.message()
        )]
    })?;
    let mut r = Reader::default();
    let mut requests = Requests::default();
    let mut plugin = PluginTable::default();
    for (key, value) in &table {
        match key.as_str() {
            "plugin" => {
                let Some(t) = r.table("plugin", value, PLUGIN_KEYS) else {
                    continue;
                };
                for &k in PLUGIN_KEYS {
                    let full = format!("plugin.{k}");
                    if k == "authors" {
                        match t.get(k) {
                            None => {}
                            Some(Value::Array(items)) => {
                                let mut authors = Vec::new();
                                for (i, item) in items.iter().enumerate() {
                                    if let Some(a) = r.string(&format!("{full}[{i}]"), Some(item)) {
                                        authors.push(a);
                                    }
                                }
                                plugin.authors = Some(authors);
                            }
                            Some(Value::String(s)) => plugin.authors = Some(split_authors(s)),
                            Some(other) => r.errors.push(format!(
                                "`{full}` must be an array of strings, found {}",
                                other.type_str()
                            )),
                        }
                    } else if let Some(s) = r.string(&full, t.get(k)) {
                        plugin.fields.insert(k, s);
                    }
                }
            }
            "fs" => {
                for (i, item) in r.array("fs", value).iter().enumerate() {
                    let key = format!("fs[{i}]");
                    let Some(t) = r.table(&key, item, FS_KEYS) else {
                        continue;
                    };
                    let Some(guest) = r.string(&format!("{key}.guest"), t.get("guest")) else {
                        if !t.contains_key("guest") {
                            r.errors.push(format!(
                                "`{key}.guest` is missing: the path the plugin expects, such as \"/data\""
                            ));
                        }
                        continue;
                    };
                    let Some(guest) = normalise_guest(&guest) else {
                        r.errors.push(format!(
                            "`{key}.guest` = {guest:?} must be an absolute path without `..`"
                        ));
                        continue;
                    };
                    let mode = match r.string(&format!("{key}.mode"), t.get("mode")).as_deref() {
                        None | Some("ro") => Mode::Ro,
                        Some("rw") => Mode::Rw,
                        Some(other) => {
                            r.errors.push(format!(
                                "`{key}.mode` = {other:?}: expected \"ro\" or \"rw\""
                            ));
                            continue;
                        }
                    };
                    if requests.fs.iter().any(|f| f.guest == guest) {
                        r.errors
                            .push(format!("`{key}.guest` = {guest:?} is requested twice"));
                        continue;
                    }
                    let why = r.string(&format!("{key}.why"), t.get("why"));
                    requests.fs.push(FsRequest { guest, mode, why });
                }
            }
            "env" => {
                let Some(t) = (match value {
                    Value::Table(t) => Some(t),
                    other => {
                        r.errors.push(format!(
                            "`env` must be a table of variables ([env.NAME]), found {}",
                            other.type_str()
                        ));
                        None
                    }
                }) else {
                    continue;
                };
                for (name, v) in t {
                    let key = format!("env.{name}");
                    if !is_env_name(name) {
                        r.errors.push(format!(
                            "`{key}`: not a valid variable name (letters, digits and `_`, not starting with a digit)"
                        ));
                        continue;
                    }
                    let Some(t) = r.table(&key, v, ENV_KEYS) else {
                        continue;
                    };
                    let why = r.string(&format!("{key}.why"), t.get("why"));
                    let secret = match t.get("secret") {
                        None => false,
                        Some(Value::Boolean(b)) => *b,
                        Some(other) => {
                            r.errors.push(format!(
                                "`{key}.secret` must be true or false, found {}",
                                other.type_str()
                            ));
                            false
                        }
                    };
                    requests.env.push(EnvRequest {
                        name: name.clone(),
                        why,
                        secret,
                    });
                }
            }
            "network" => {
                for (i, item) in r.array("network", value).iter().enumerate() {
                    let key = format!("network[{i}]");
                    let Some(t) = r.table(&key, item, NET_KEYS) else {
                        continue;
                    };
                    let Some(host) = r.string(&format!("{key}.host"), t.get("host")) else {
                        if !t.contains_key("host") {
                            r.errors.push(format!(
                                "`{key}.host` is missing: a host as in `[network] allow`, such as \"api.example.com:443\""
                            ));
                        }
                        continue;
                    };
                    if let Err(e) = host.parse::<AllowEntry>() {
                        r.errors.push(format!("`{key}.host` = {host:?}: {e}"));
                        continue;
                    }
                    let why = r.string(&format!("{key}.why"), t.get("why"));
                    requests.network.push(NetRequest { host, why });
                }
            }
            "limits" => {
                let Some(t) = r.table("limits", value, LIMIT_KEYS) else {
                    continue;
                };
                requests.limits = limits(&mut r, t);
            }
            other => r.unknown(other, TOP_KEYS),
        }
    }
    if r.errors.is_empty() {
        Ok((requests, plugin, r.warnings))
    } else {
        Err(r.errors)
    }
}

/// Reads `[limits]` with the policy's own parser, so sizes, durations and
/// their bounds mean exactly what they mean in `NAME.toml`.
fn limits(r: &mut Reader, t: &Table) -> LimitsRequest {
    let why = r.string("limits.why", t.get("why"));
    let mut only = Table::new();
    for key in ["memory", "fuel", "timeout", "max-output"] {
        if let Some(v) = t.get(key) {
            only.insert(key.to_string(), v.clone());
        }
    }
    let mut doc = Table::new();
    doc.insert("limits".into(), Value::Table(only.clone()));
    let text = toml::to_string(&doc).unwrap_or_default();
    let policy = match Policy::parse(&text, Path::new(SECTION), "manifest") {
        Ok(p) => p,
        Err(e) => {
            for problem in e.problems {
                r.errors.push(problem.to_string());
            }
            return LimitsRequest::default();
        }
    };
    let l: Limits = policy.limits;
    LimitsRequest {
        memory: only.contains_key("memory").then_some(l.memory),
        fuel: only.contains_key("fuel").then_some(l.fuel),
        timeout_ms: only
            .contains_key("timeout")
            .then_some(l.timeout.as_millis() as u64),
        max_output: only.contains_key("max-output").then_some(l.max_output),
        why,
    }
}

/// `/a/./b/` → `/a/b`; `None` for relative paths and `..`.
fn normalise_guest(path: &str) -> Option<String> {
    if !path.starts_with('/') {
        return None;
    }
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => return None,
            p => parts.push(p),
        }
    }
    Some(format!("/{}", parts.join("/")))
}

fn is_env_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Authors as one string (`wasm-metadata`'s `authors`, Cargo's `A:B`) → a list.
fn split_authors(s: &str) -> Vec<String> {
    s.split([':', ',', '\n'])
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(bounded)
        .collect()
}

/// At most [`MAX_TEXT_CHARS`] characters.
fn bounded(s: &str) -> String {
    match s.char_indices().nth(MAX_TEXT_CHARS) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_string(),
    }
}

/// Appends a custom section `name` with `data` to a component or module:
/// valid anywhere in a binary, so this is all an embedder has to do. The
/// Python and JavaScript helpers do the same in a few lines.
pub fn append_section(wasm: &mut Vec<u8>, name: &str, data: &[u8]) {
    let mut body = Vec::new();
    leb128(&mut body, name.len() as u64);
    body.extend_from_slice(name.as_bytes());
    body.extend_from_slice(data);
    wasm.push(0);
    leb128(wasm, body.len() as u64);
    wasm.extend_from_slice(&body);
}

fn leb128(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn component_with(sections: &[(&str, &str)]) -> Vec<u8> {
        // The smallest component: the preamble alone.
        let mut wasm = b"\0asm\x0d\0\x01\0".to_vec();
        for (name, data) in sections {
            append_section(&mut wasm, name, data.as_bytes());
        }
        wasm
    }

    #[test]
    fn no_manifest_requests_nothing() {
        let meta = read(&component_with(&[])).unwrap();
        assert!(!meta.manifest.present);
        assert!(meta.manifest.requests.is_empty());
    }

    #[test]
    fn reads_requests_and_identity() {
        let toml = r#"
            [plugin]
            version = "2.0.0"
            authors = ["Ada", "Grace"]
            [[fs]]
            guest = "/data/./x/"
            mode = "rw"
            why = "notes"
            [env.API_TOKEN]
            why = "the API"
            secret = true
            [[network]]
            host = "api.example.com:443"
            [limits]
            memory = "128MiB"
            timeout = "1m"
            why = "big"
            [future]
            x = 1
        "#;
        let wasm = component_with(&[("version", "1.0.0"), ("description", "d"), (SECTION, toml)]);
        let meta = read(&wasm).unwrap();
        let m = &meta.manifest;
        assert!(m.errors.is_empty(), "{:?}", m.errors);
        assert_eq!(m.warnings.len(), 1, "{:?}", m.warnings);
        assert_eq!(meta.identity.version.as_deref(), Some("2.0.0"));
        assert_eq!(meta.identity.description.as_deref(), Some("d"));
        assert_eq!(meta.identity.authors, ["Ada", "Grace"]);
        assert_eq!(m.requests.fs[0].guest, "/data/x");
        assert_eq!(m.requests.fs[0].mode, Mode::Rw);
        assert!(m.requests.env[0].secret);
        assert_eq!(m.requests.limits.memory, Some(128 << 20));
        assert_eq!(m.requests.limits.timeout_ms, Some(60_000));
        assert_eq!(m.requests.limits.fuel, None);
    }

    #[test]
    fn bad_values_are_errors_naming_the_key() {
        let toml = "[[fs]]\nguest = \"data\"\n[env.X]\nsecret = \"yes\"\n[[network]]\nhost = \"a b\"\n[limits]\nmemory = \"lots\"\n";
        let meta = read(&component_with(&[(SECTION, toml)])).unwrap();
        let errors = meta.manifest.errors.join("\n");
        for key in [
            "fs[0].guest",
            "env.X.secret",
            "network[0].host",
            "limits.memory",
        ] {
            assert!(errors.contains(key), "{key} not in {errors}");
        }
        assert!(meta.manifest.requests.is_empty());
    }

    #[test]
    fn two_manifests_are_ambiguous() {
        let wasm = component_with(&[(SECTION, ""), (SECTION, "[[fs]]\nguest=\"/\"\n")]);
        let meta = read(&wasm).unwrap();
        assert!(meta.manifest.errors[0].contains("ambiguous"));
        assert!(meta.manifest.requests.is_empty());
    }

    #[test]
    fn text_is_bounded() {
        let long = format!("[plugin]\ndescription = \"{}\"\n", "x".repeat(5000));
        let meta = read(&component_with(&[(SECTION, &long)])).unwrap();
        assert_eq!(
            meta.identity.description.unwrap().chars().count(),
            MAX_TEXT_CHARS + 1
        );
    }
}
