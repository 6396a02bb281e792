//! Adopting a plugin someone else wrote: `ward publish`, `ward add` and
//! `ward upgrade`.
//!
//! The flow: an author publishes a component (its manifest of requests is
//! inside it) to an OCI registry, optionally signing it; an operator adds it
//! from the registry into a plugin directory, sees what it is and what it
//! requests, and grants only what they accept; `NAME.toml` records where it
//! came from and pins its sha256, so other bytes never load; `ward upgrade`
//! shows what a new version changes before switching to it.
//!
//! Design decisions:
//! - **Nothing is granted by default.** The written policy grants what the
//!   manifest requests only with `--grant-requested`, and even then only what
//!   can be granted without the operator's knowledge: network hosts and
//!   limits. Directories (the manifest names only the guest path) and
//!   environment variables (their values are the operator's) are written as
//!   commented-out entries to fill in.
//! - **Verify before writing, write atomically.** The signature, the pin and
//!   the component are checked first; files go to hidden temporary names
//!   (which the watcher ignores) and are renamed into place, policy first, so
//!   a failure leaves the directory as it was and the watcher never sees a
//!   half-written plugin.
//! - **Upgrades never change grants.** `ward upgrade` shows what the new
//!   version requests and offers beside the old, then swaps the bytes and the
//!   pin; a newly requested capability stays ungranted until the operator
//!   edits the policy. A plugin that was signed stays signed: its upgrade
//!   needs a signature too.

pub(crate) mod oci;
pub(crate) mod signature;
pub(crate) mod trust;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, IsTerminal, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};

use crate::manifest::{self, Metadata, Requests};
use crate::sandbox::policy::{Policy, Source};
use oci::Registry;
use signature::{SignKey, TrustedKey, Verifier};
use trust::Trust;

/// Where a plugin comes from.
#[derive(Debug, Clone)]
pub enum Origin {
    /// A `.wasm` file.
    File(PathBuf),
    /// An OCI reference.
    Oci(oci_client::Reference),
}

impl Origin {
    /// A path when it names an existing file or looks like one (`./x`, `/x`,
    /// `x.wasm`), else an OCI reference.
    pub fn parse(source: &str) -> Result<Self> {
        let path = Path::new(source);
        if path.is_file() || source.starts_with(['.', '/', '~']) || source.ends_with(".wasm") {
            return Ok(Origin::File(path.to_path_buf()));
        }
        oci::parse_reference(source).map(Origin::Oci)
    }

    fn record(&self) -> String {
        match self {
            Origin::File(path) => std::path::absolute(path)
                .unwrap_or_else(|_| path.clone())
                .display()
                .to_string(),
            Origin::Oci(r) => r.whole(),
        }
    }
}

/// A component fetched and checked, not yet written.
struct Fetched {
    origin: Origin,
    wasm: Vec<u8>,
    /// The OCI manifest digest.
    digest: Option<String>,
    /// The fingerprint of the key whose signature verified.
    signed_by: Option<String>,
    /// What it says about itself.
    meta: Metadata,
    /// Its tools (name, description, input schema), loaded with nothing granted.
    tools: Vec<(String, String, String)>,
}

impl Fetched {
    fn sha256(&self) -> String {
        oci::hex(&crate::cache::digest(&self.wasm))
    }
}

/// Options shared by `add` and `upgrade` for reaching registries and
/// checking signatures.
#[derive(Debug, Clone, Default)]
pub struct FetchOptions {
    /// Public keys given with `--key`: a signature by one is required.
    pub keys: Vec<PathBuf>,
    /// Allow plain HTTP to a registry that is not on loopback.
    pub plain_http: bool,
}

/// `ward add`.
#[derive(Debug, Clone)]
pub struct AddOptions {
    /// A file or OCI reference.
    pub source: String,
    /// The plugin directory.
    pub plugins: PathBuf,
    /// The plugin's name (file stem); from the manifest or source otherwise.
    pub name: Option<String>,
    /// Grant what the manifest requests (network, limits; the rest commented).
    pub grant_requested: bool,
    /// Do not ask on a terminal.
    pub yes: bool,
    /// Registry and signature options.
    pub fetch: FetchOptions,
}

/// `ward upgrade`.
#[derive(Debug, Clone)]
pub struct UpgradeOptions {
    /// The plugin.
    pub name: String,
    /// The plugin directory.
    pub plugins: PathBuf,
    /// Upgrade to this reference instead of the newest of the recorded one.
    pub to: Option<String>,
    /// Switch without asking (required when stdin is not a terminal).
    pub yes: bool,
    /// Registry and signature options.
    pub fetch: FetchOptions,
}

/// `ward publish`.
#[derive(Debug, Clone)]
pub struct PublishOptions {
    /// The component.
    pub file: PathBuf,
    /// Where to push it.
    pub reference: String,
    /// A private key to sign with.
    pub sign: Option<PathBuf>,
    /// Allow plain HTTP to a registry that is not on loopback.
    pub plain_http: bool,
}

/// Pushes a component (with the manifest inside it) to a registry, and signs
/// it if asked. Prints the pushed reference with its digest.
pub async fn publish(options: &PublishOptions) -> Result<String> {
    let reference = oci::parse_reference(&options.reference)?;
    let key = options.sign.as_deref().map(SignKey::read).transpose()?;
    let wasm = read_component(&options.file)?;
    let meta =
        manifest::read(&wasm).with_context(|| format!("reading {}", options.file.display()))?;
    let mut annotations = BTreeMap::new();
    let id = &meta.identity;
    for (key, value) in [
        ("org.opencontainers.image.title", &id.name),
        ("org.opencontainers.image.version", &id.version),
        ("org.opencontainers.image.description", &id.description),
        ("org.opencontainers.image.licenses", &id.license),
        ("org.opencontainers.image.source", &id.source),
        ("org.opencontainers.image.url", &id.homepage),
        ("org.opencontainers.image.revision", &id.revision),
    ] {
        if let Some(value) = value {
            annotations.insert(key.to_string(), value.clone());
        }
    }
    if !id.authors.is_empty() {
        annotations.insert(
            "org.opencontainers.image.authors".into(),
            id.authors.join(", "),
        );
    }
    let registry = Registry::new(&reference, options.plain_http)?;
    let component = oci::ComponentInfo {
        exports: meta.exports.clone(),
        imports: meta.imports.clone(),
        target: None,
    };
    let author = (!id.authors.is_empty()).then(|| id.authors.join(", "));
    let digest = registry
        .push_component(&reference, wasm, component, author, annotations)
        .await
        .with_context(|| format!("publishing {} to {reference}", options.file.display()))?;
    let pushed = format!("{}@{digest}", reference.whole());
    println!("published {pushed}");
    if let Some(key) = key {
        let sig = signature::sign(&registry, &reference, &digest, &key).await?;
        println!("signed by {} as {sig}", key.fingerprint());
    }
    Ok(pushed)
}

/// Adds a plugin to a directory: fetch, verify, show, confirm, write.
pub async fn add(options: &AddOptions) -> Result<()> {
    let dir = &options.plugins;
    anyhow::ensure!(
        dir.is_dir(),
        "plugin directory {} does not exist; create it or pass another --plugins DIR",
        dir.display()
    );
    let trust = Trust::load(dir)?;
    let origin = Origin::parse(&options.source)?;
    let fetched = fetch(origin, &trust, &options.fetch, None).await?;
    let name = match &options.name {
        Some(name) => name.clone(),
        None => default_name(&fetched)?,
    };
    check_name(&name)?;
    let wasm_path = dir.join(format!("{name}.wasm"));
    let toml_path = dir.join(format!("{name}.toml"));
    for path in [&wasm_path, &toml_path] {
        if path.symlink_metadata().is_ok() {
            bail!(
                "{} already exists: to replace plugin `{name}` use `ward upgrade {name}`, or remove it first, or pick another --name",
                path.display()
            );
        }
    }
    let policy = new_policy(&name, &fetched, options.grant_requested);
    print!("{}", describe(&name, &fetched, None));
    println!();
    print!(
        "{}",
        grants_summary(&fetched.meta.manifest.requests, options.grant_requested)
    );
    if !options.yes
        && std::io::stdin().is_terminal()
        && !confirm(&format!("Add plugin `{name}` to {}?", dir.display()))?
    {
        bail!("not added (nothing was written)");
    }
    write_plugin(dir, &name, &fetched.wasm, &policy)?;
    println!(
        "added {} and {} (pinned to sha256 {})",
        wasm_path.display(),
        toml_path.display(),
        fetched.sha256()
    );
    Ok(())
}

/// Upgrades a plugin to the newest version of its recorded source.
pub async fn upgrade(options: &UpgradeOptions) -> Result<()> {
    let dir = &options.plugins;
    let name = &options.name;
    let toml_path = dir.join(format!("{name}.toml"));
    let wasm_path = dir.join(format!("{name}.wasm"));
    let policy =
        Policy::for_plugin(dir, name, &Default::default()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let recorded = policy.source.reference.clone().with_context(|| {
        format!(
            "{} records no `[source] ref`, so ward does not know where `{name}` came from; add it with `ward add` first",
            toml_path.display()
        )
    })?;
    let trust = Trust::load(dir)?;
    let origin = match &options.to {
        Some(to) => Origin::parse(to)?,
        None => newest(&recorded, options.fetch.plain_http).await?,
    };
    let fetched = fetch(
        origin,
        &trust,
        &options.fetch,
        policy.source.signed_by.as_deref(),
    )
    .await?;
    if policy.source.sha256.as_deref() == Some(fetched.sha256().as_str())
        && std::fs::read(&wasm_path)
            .is_ok_and(|w| oci::hex(&crate::cache::digest(&w)) == fetched.sha256())
    {
        println!(
            "plugin `{name}` is up to date ({}, sha256 {})",
            fetched.origin.record(),
            fetched.sha256()
        );
        return Ok(());
    }
    let old = match std::fs::read(&wasm_path) {
        Ok(wasm) => Some(current(name, wasm).await),
        Err(_) => None,
    };
    print!("{}", describe(name, &fetched, Some(&policy)));
    println!();
    print!("{}", changes(old.as_ref(), &fetched, &policy));
    let question = format!("Switch plugin `{name}` to this version?");
    if !options.yes {
        if !std::io::stdin().is_terminal() {
            bail!("not upgraded (nothing was written): review the changes above and run again with --yes to switch");
        }
        if !confirm(&question)? {
            bail!("not upgraded (nothing was written)");
        }
    }
    let text = std::fs::read_to_string(&toml_path)
        .with_context(|| format!("reading {}", toml_path.display()))?;
    let updated = replace_source(&text, &source_section(&fetched));
    write_plugin(dir, name, &fetched.wasm, &updated)?;
    println!(
        "upgraded `{name}` to {} (sha256 {}); grants unchanged",
        fetched.origin.record(),
        fetched.sha256()
    );
    Ok(())
}

/// Fetches and checks a component. `previous_signer`: the key that signed
/// the version being replaced; its successor must be signed too.
async fn fetch(
    origin: Origin,
    trust: &Trust,
    options: &FetchOptions,
    previous_signer: Option<&str>,
) -> Result<Fetched> {
    let given: Vec<TrustedKey> = options
        .keys
        .iter()
        .map(|k| TrustedKey::read(k))
        .collect::<Result<_>>()?;
    // Which keys may vouch, and whether one must.
    let (verifiers, required): (Vec<&TrustedKey>, bool) = if !given.is_empty() {
        (given.iter().collect(), true)
    } else if trust.require_signatures || previous_signer.is_some() {
        (trust.keys.iter().collect(), true)
    } else {
        (Vec::new(), false)
    };
    let (wasm, digest, signed_by) = match &origin {
        Origin::File(path) => {
            if required {
                bail!(
                    "{} is a file, and a signature is required ({}); signatures are verified on OCI artifacts: publish it with `ward publish --sign` and add it from the registry",
                    path.display(),
                    why_required(&given, trust, previous_signer)
                );
            }
            (read_component(path)?, None, None)
        }
        Origin::Oci(reference) => {
            let registry = Registry::new(reference, options.plain_http)?;
            let pulled = registry.pull_component(reference).await?;
            let signed_by = if required {
                if verifiers.is_empty() {
                    bail!(
                        "the current version was signed by {}, and no key is given to verify its successor: pass --key PUBKEY",
                        previous_signer.unwrap_or("?")
                    );
                }
                let dyns: Vec<&dyn Verifier> =
                    verifiers.iter().map(|k| *k as &dyn Verifier).collect();
                let verified = signature::verify(&registry, reference, &pulled.digest, &dyns)
                    .await
                    .context("refused (nothing was written)")?;
                Some(verified.signed_by)
            } else {
                None
            };
            if let Some(key) = &signed_by {
                if trust.require_signatures && !trust.trusts(key) {
                    bail!(
                        "refused (nothing was written): signed by {key}, which {} does not list; ward would not load it: add the key to its `keys`",
                        trust.path.as_deref().unwrap_or(Path::new(trust::FILE)).display()
                    );
                }
                if let Some(previous) = previous_signer {
                    if previous != key && !trust.trusts(key) {
                        tracing::warn!(
                            "the new version is signed by {key}, the current one by {previous}"
                        );
                    }
                }
            }
            (pulled.wasm, Some(pulled.digest), signed_by)
        }
    };
    if !wasm.starts_with(b"\0asm") || wasm.get(4..8) != Some(&[0x0d, 0, 1, 0]) {
        bail!("{} is not a WebAssembly component", origin.record());
    }
    let meta = manifest::read(&wasm).with_context(|| format!("reading {}", origin.record()))?;
    let tools = tools_of(&wasm)
        .await
        .with_context(|| format!("{} does not load as a ward plugin", origin.record()))?;
    Ok(Fetched {
        origin,
        wasm,
        digest,
        signed_by,
        meta,
        tools,
    })
}

fn why_required(given: &[TrustedKey], trust: &Trust, previous: Option<&str>) -> String {
    if !given.is_empty() {
        "--key was given".into()
    } else if trust.require_signatures {
        format!("{} sets require-signatures", trust::FILE)
    } else {
        format!(
            "the current version was signed by {}",
            previous.unwrap_or("?")
        )
    }
}

/// The recorded reference's newest version: for a semantic-version tag, the
/// highest such tag in the repository; otherwise the same tag, re-resolved.
async fn newest(recorded: &str, plain_http: bool) -> Result<Origin> {
    let origin = Origin::parse(recorded)?;
    let Origin::Oci(reference) = &origin else {
        return Ok(origin);
    };
    let Some(tag) = reference.tag() else {
        bail!("the recorded source {recorded} is pinned by digest, so it has no newer version: pass --to REF");
    };
    let Some(current) = version_of(tag) else {
        return Ok(Origin::Oci(oci_client::Reference::with_tag(
            reference.registry().into(),
            reference.repository().into(),
            tag.into(),
        )));
    };
    let registry = Registry::new(reference, plain_http)?;
    let best = registry
        .tags(reference)
        .await?
        .into_iter()
        .filter_map(|t| version_of(&t).map(|v| (v, t)))
        .filter(|(v, _)| *v >= current)
        .max()
        .map_or(tag.to_string(), |(_, t)| t);
    Ok(Origin::Oci(oci_client::Reference::with_tag(
        reference.registry().into(),
        reference.repository().into(),
        best,
    )))
}

/// `1.2`, `v1.2.3` → comparable numbers; anything else (pre-releases,
/// `latest`, `.sig` tags) → `None`.
fn version_of(tag: &str) -> Option<Vec<u64>> {
    let numbers = tag.strip_prefix('v').unwrap_or(tag);
    let parts: Option<Vec<u64>> = numbers.split('.').map(|p| p.parse().ok()).collect();
    parts.filter(|p| (1..=4).contains(&p.len())).map(|mut p| {
        p.resize(4, 0);
        p
    })
}

/// The installed version, described for the upgrade diff.
async fn current(name: &str, wasm: Vec<u8>) -> Fetched {
    let meta = manifest::read(&wasm).unwrap_or_default();
    let tools = tools_of(&wasm).await.unwrap_or_else(|e| {
        tracing::warn!(plugin = %name, "the installed version does not load: {e:#}");
        Vec::new()
    });
    Fetched {
        origin: Origin::File(PathBuf::from(format!("{name}.wasm"))),
        wasm,
        digest: None,
        signed_by: None,
        meta,
        tools,
    }
}

/// Loads a component with nothing granted and asks it for its tools.
async fn tools_of(wasm: &[u8]) -> Result<Vec<(String, String, String)>> {
    let runtime = crate::plugin::Runtime::new(None)?;
    let engine = runtime.engine().clone();
    let bytes = wasm.to_vec();
    let component = tokio::task::spawn_blocking(move || {
        wasmtime::component::Component::new(&engine, &bytes).map_err(anyhow::Error::from)
    })
    .await
    .context("the compile task failed")??;
    let (events, _) = tokio::sync::broadcast::channel(16);
    let plugin = crate::plugin::Plugin::new(
        Arc::clone(&runtime),
        "inspected",
        &component,
        Policy::defaults("inspected"),
        crate::cache::digest(wasm),
        events,
    )
    .await?;
    Ok(plugin
        .manifest()
        .tools
        .iter()
        .map(|t| {
            (
                t.name.clone(),
                t.description.clone(),
                t.input_schema.clone(),
            )
        })
        .collect())
}

/// The name a plugin gets without `--name`: the manifest's, else the
/// repository's last segment or the file stem.
fn default_name(fetched: &Fetched) -> Result<String> {
    if let Some(name) = &fetched.meta.identity.name {
        if check_name(name).is_ok() {
            return Ok(name.clone());
        }
    }
    let fallback = match &fetched.origin {
        Origin::File(path) => path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string(),
        Origin::Oci(r) => r
            .repository()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string(),
    };
    check_name(&fallback)
        .map(|()| fallback)
        .context("pass --name NAME")
}

/// A plugin name `ward add` accepts: a valid tool prefix, not `trust`.
fn check_name(name: &str) -> Result<()> {
    let valid =
        name.len() <= crate::sandbox::policy::MAX_PREFIX_LEN && crate::registry::valid_name(name);
    if !valid {
        bail!(
            "{name:?} cannot be a plugin name: use letters, digits, `_` and `-` (pass --name NAME)"
        );
    }
    if name == "trust" {
        bail!("`trust` cannot be a plugin name: trust.toml holds the directory's trust settings (pass --name NAME)");
    }
    Ok(())
}

/// The identity, source, tools and requests, as shown before adding.
fn describe(name: &str, f: &Fetched, policy: Option<&Policy>) -> String {
    let mut out = String::new();
    let id = &f.meta.identity;
    let _ = writeln!(
        out,
        "plugin    {name}{}{}",
        id.version
            .as_deref()
            .map(|v| format!(" {v}"))
            .unwrap_or_default(),
        id.description
            .as_deref()
            .map(|d| format!(": {d}"))
            .unwrap_or_default()
    );
    let _ = writeln!(out, "source    {}", f.origin.record());
    if let Some(digest) = &f.digest {
        let _ = writeln!(out, "digest    {digest}");
    }
    let _ = writeln!(out, "sha256    {} ({} bytes)", f.sha256(), f.wasm.len());
    let _ = writeln!(
        out,
        "signature {}",
        match &f.signed_by {
            Some(key) => format!("verified, signed by {key}"),
            None => "not verified (pass --key PUBKEY to require one)".into(),
        }
    );
    if !id.authors.is_empty() {
        let _ = writeln!(out, "authors   {}", id.authors.join(", "));
    }
    if let Some(license) = &id.license {
        let _ = writeln!(out, "license   {license}");
    }
    let _ = writeln!(out, "tools     {}", f.tools.len());
    for (tool, description, _) in &f.tools {
        let _ = writeln!(out, "  {tool}: {}", first_line(description));
    }
    let m = &f.meta.manifest;
    if !m.present {
        let _ = writeln!(out, "requests  none (no manifest)");
    } else if !m.errors.is_empty() {
        let _ = writeln!(out, "requests  none: the manifest is invalid:");
        for e in &m.errors {
            let _ = writeln!(out, "  {e}");
        }
    } else if m.requests.is_empty() {
        let _ = writeln!(out, "requests  none");
    } else {
        let _ = writeln!(out, "requests");
        for line in request_lines(&m.requests) {
            let granted = policy.is_some_and(|p| is_granted(p, &line.0));
            let _ = writeln!(
                out,
                "  {}{}",
                line.1,
                if policy.is_some() {
                    if granted {
                        "  [granted]"
                    } else {
                        "  [not granted]"
                    }
                } else {
                    ""
                }
            );
        }
    }
    out
}

/// One request: a key to compare by, and its display line.
fn request_lines(r: &Requests) -> Vec<(String, String)> {
    let why = |w: &Option<String>| w.as_deref().map(|w| format!(" ({w})")).unwrap_or_default();
    let mut lines = Vec::new();
    for fs in &r.fs {
        lines.push((
            format!("fs {} {}", fs.guest, fs.mode),
            format!("directory {} {}{}", fs.guest, fs.mode, why(&fs.why)),
        ));
    }
    for env in &r.env {
        lines.push((
            format!("env {}", env.name),
            format!(
                "env       {}{}{}",
                env.name,
                if env.secret { " (secret)" } else { "" },
                why(&env.why)
            ),
        ));
    }
    for net in &r.network {
        lines.push((
            format!("network {}", net.host),
            format!("network   {}{}", net.host, why(&net.why)),
        ));
    }
    let l = &r.limits;
    for (key, value) in [
        ("memory", l.memory.map(crate::sandbox::policy::format_size)),
        ("fuel", l.fuel.map(|f| f.to_string())),
        ("timeout", l.timeout_ms.map(|t| format!("{t}ms"))),
        (
            "max-output",
            l.max_output.map(crate::sandbox::policy::format_size),
        ),
    ] {
        if let Some(value) = value {
            lines.push((
                format!("limits {key} {value}"),
                format!("limit     {key} = {value}{}", why(&l.why)),
            ));
        }
    }
    lines
}

/// Whether the policy grants the request keyed `key` (from [`request_lines`]).
fn is_granted(policy: &Policy, key: &str) -> bool {
    let mut parts = key.splitn(3, ' ');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("fs"), Some(guest), Some(mode)) => policy.fs.iter().any(|g| {
            g.guest == guest && (mode == "ro" || g.mode == crate::sandbox::policy::FsMode::Rw)
        }),
        (Some("env"), Some(name), _) => policy.env.iter().any(|(n, _)| n == name),
        (Some("network"), Some(host), _) => host
            .parse::<crate::sandbox::net::AllowEntry>()
            .is_ok_and(|wanted| policy.network.entries().contains(&wanted)),
        (Some("limits"), Some(_), _) => true,
        _ => false,
    }
}

/// What `ward add` will grant.
fn grants_summary(r: &Requests, grant_requested: bool) -> String {
    if r.is_empty() {
        return "grants    nothing is requested; nothing is granted\n".into();
    }
    if !grant_requested {
        return "grants    nothing (requests are written as comments in the policy; pass --grant-requested to grant network hosts and limits)\n".into();
    }
    let mut out = String::from("grants    network hosts and limits as requested");
    if !r.fs.is_empty() || !r.env.is_empty() {
        out.push_str("; directories and environment variables are left commented out in the policy, to fill in");
    }
    out.push('\n');
    out
}

/// What changes from `old` to `new`: requests and tools.
fn changes(old: Option<&Fetched>, new: &Fetched, policy: &Policy) -> String {
    let mut out = String::from("changes\n");
    let empty = Requests::default();
    let old_requests = old.map_or(&empty, |o| &o.meta.manifest.requests);
    let old_lines: BTreeMap<String, String> = request_lines(old_requests).into_iter().collect();
    let new_lines: BTreeMap<String, String> = request_lines(&new.meta.manifest.requests)
        .into_iter()
        .collect();
    let mut any = false;
    for (key, line) in &new_lines {
        if !old_lines.contains_key(key) {
            any = true;
            let state = if is_granted(policy, key) {
                "already granted"
            } else {
                "NOT granted: edit the policy to grant it"
            };
            let _ = writeln!(out, "  + request {}  [{state}]", line.trim());
        }
    }
    for (key, line) in &old_lines {
        if !new_lines.contains_key(key) {
            any = true;
            let _ = writeln!(out, "  - request {}  (no longer requested; its grant, if any, stays until you remove it)", line.trim());
        }
    }
    let old_tools: BTreeMap<&str, (&str, &str)> = old
        .map(|o| {
            o.tools
                .iter()
                .map(|(n, d, s)| (n.as_str(), (d.as_str(), s.as_str())))
                .collect()
        })
        .unwrap_or_default();
    let new_tools: BTreeMap<&str, (&str, &str)> = new
        .tools
        .iter()
        .map(|(n, d, s)| (n.as_str(), (d.as_str(), s.as_str())))
        .collect();
    for (tool, (description, schema)) in &new_tools {
        match old_tools.get(tool) {
            None => {
                any = true;
                let _ = writeln!(out, "  + tool {tool}: {}", first_line(description));
            }
            Some((d, s)) if d != description || s != schema => {
                any = true;
                let what = match (d != description, s != schema) {
                    (true, true) => "description and input schema",
                    (true, false) => "description",
                    _ => "input schema",
                };
                let _ = writeln!(out, "  ~ tool {tool}: {what} changed");
            }
            Some(_) => {}
        }
    }
    for tool in old_tools.keys() {
        if !new_tools.contains_key(tool) {
            any = true;
            let _ = writeln!(out, "  - tool {tool}");
        }
    }
    if !any {
        out.push_str("  no change in requests or tools (only the bytes)\n");
    }
    out
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

/// The `[source]` section for a fetched component.
fn source_section(f: &Fetched) -> String {
    let mut out = String::from("[source]\n");
    let _ = writeln!(out, "ref = {}", toml_string(&f.origin.record()));
    let _ = writeln!(out, "sha256 = \"{}\"", f.sha256());
    if let Some(digest) = &f.digest {
        let _ = writeln!(out, "digest = \"{digest}\"");
    }
    if let Some(key) = &f.signed_by {
        let _ = writeln!(out, "signed-by = \"{key}\"");
    }
    out
}

/// The policy `ward add` writes.
fn new_policy(name: &str, f: &Fetched, grant: bool) -> String {
    let mut out = format!(
        "# Policy of plugin `{name}`, written by `ward add`. It grants only what is\n\
         # below. The plugin's own requests that are not granted are commented out:\n\
         # uncomment and fill in what you accept.\n\n"
    );
    out.push_str(&source_section(f));
    let r = &f.meta.manifest.requests;
    let comment = |granted: bool| if granted { "" } else { "# " };
    let l = &r.limits;
    if l.memory.is_some() || l.fuel.is_some() || l.timeout_ms.is_some() || l.max_output.is_some() {
        let c = comment(grant);
        out.push('\n');
        if let Some(why) = &l.why {
            let _ = writeln!(out, "# requested: {}", one_line(why));
        }
        let _ = writeln!(out, "{c}[limits]");
        if let Some(m) = l.memory {
            let _ = writeln!(out, "{c}memory = {m}");
        }
        if let Some(f) = l.fuel {
            let _ = writeln!(out, "{c}fuel = {f}");
        }
        if let Some(t) = l.timeout_ms {
            let _ = writeln!(out, "{c}timeout = \"{t}ms\"");
        }
        if let Some(m) = l.max_output {
            let _ = writeln!(out, "{c}max-output = {m}");
        }
    }
    for fs in &r.fs {
        out.push('\n');
        let _ = writeln!(
            out,
            "# requested: {} ({}){}\n# [[fs]]\n# host = \"FILL IN: a host directory\"\n# guest = {}\n# mode = \"{}\"",
            fs.guest,
            fs.mode,
            fs.why.as_deref().map(|w| format!(": {}", one_line(w))).unwrap_or_default(),
            toml_string(&fs.guest),
            fs.mode
        );
    }
    if !r.env.is_empty() {
        out.push_str(
            "\n# requested environment variables (ward never passes the host's own):\n# [env]\n",
        );
        for env in &r.env {
            // A secret is passed by reference, never written here.
            let value = match env.secret {
                true => format!(
                    "{{ from-env = \"{}\" }}  # secret: or {{ from-file = \"/run/secrets/...\" }}",
                    env.name
                ),
                false => "\"FILL IN\"".to_string(),
            };
            let _ = writeln!(
                out,
                "# {} = {value}{}",
                env.name,
                env.why
                    .as_deref()
                    .map(|w| format!("  # {}", one_line(w)))
                    .unwrap_or_default()
            );
        }
    }
    if !r.network.is_empty() {
        let c = comment(grant);
        out.push('\n');
        for net in &r.network {
            let _ = writeln!(
                out,
                "# requested: {}{}",
                net.host,
                net.why
                    .as_deref()
                    .map(|w| format!(": {}", one_line(w)))
                    .unwrap_or_default()
            );
        }
        let hosts: Vec<String> = r.network.iter().map(|n| toml_string(&n.host)).collect();
        let _ = writeln!(out, "{c}[network]\n{c}allow = [{}]", hosts.join(", "));
    }
    out
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// Replaces the `[source]` section of a policy text (up to the next table
/// header), or appends one.
fn replace_source(text: &str, section: &str) -> String {
    let mut out = String::new();
    let mut skipping = false;
    let mut replaced = false;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with('[') {
            let is_source = trimmed
                .trim_start_matches('[')
                .trim_start()
                .starts_with("source")
                && trimmed
                    .trim_end()
                    .trim_end_matches(']')
                    .trim_end()
                    .ends_with("source");
            if is_source && !trimmed.starts_with("[[") {
                skipping = true;
                if !replaced {
                    out.push_str(section);
                    replaced = true;
                }
                continue;
            }
            skipping = false;
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    if !replaced {
        out.push('\n');
        out.push_str(section);
    }
    out
}

/// Writes `NAME.toml` then `NAME.wasm`, each through a hidden temporary file
/// renamed into place.
fn write_plugin(dir: &Path, name: &str, wasm: &[u8], policy: &str) -> Result<()> {
    let check = Policy::parse(policy, &dir.join(format!("{name}.toml")), name);
    if let Err(e) = check {
        bail!("the policy ward would write is invalid (nothing was written): {e}");
    }
    let toml_tmp = write_temp(dir, &format!("{name}.toml"), policy.as_bytes())?;
    let wasm_tmp = match write_temp(dir, &format!("{name}.wasm"), wasm) {
        Ok(tmp) => tmp,
        Err(e) => {
            let _ = std::fs::remove_file(&toml_tmp);
            return Err(e);
        }
    };
    let toml_path = dir.join(format!("{name}.toml"));
    std::fs::rename(&toml_tmp, &toml_path)
        .with_context(|| format!("writing {}", toml_path.display()))?;
    let wasm_path = dir.join(format!("{name}.wasm"));
    std::fs::rename(&wasm_tmp, &wasm_path)
        .with_context(|| format!("writing {}", wasm_path.display()))?;
    Ok(())
}

fn write_temp(dir: &Path, file: &str, data: &[u8]) -> Result<PathBuf> {
    let tmp = dir.join(format!(".{file}.ward-{}", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(anyhow::Error::new(e).context(format!("writing {}", tmp.display())));
    }
    Ok(tmp)
}

/// Reads a component file (at most [`oci::MAX_COMPONENT_BYTES`]).
fn read_component(path: &Path) -> Result<Vec<u8>> {
    let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if !meta.is_file() {
        bail!("{} is not a file", path.display());
    }
    if meta.len() > oci::MAX_COMPONENT_BYTES {
        bail!(
            "{} is {} bytes, above the limit of {}",
            path.display(),
            meta.len(),
            oci::MAX_COMPONENT_BYTES
        );
    }
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// Asks a yes/no question on the terminal; no is the default.
fn confirm(question: &str) -> Result<bool> {
    eprint!("{question} [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "Yes"))
}

/// The pin check the loader applies: `NAME.wasm`'s sha256 against
/// `[source] sha256`.
pub fn check_pin(name: &str, source: &Source, digest: &crate::cache::Digest) -> Result<()> {
    let Some(pinned) = &source.sha256 else {
        return Ok(());
    };
    let actual = oci::hex(digest);
    if &actual != pinned {
        bail!(
            "{name}.wasm has sha256 {actual}, but {name}.toml pins `[source] sha256 = \"{pinned}\"`: refusing bytes that were not added with `ward add` (restore the file, or run `ward upgrade {name}`)"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically() {
        assert!(version_of("1.10") > version_of("1.9"));
        assert_eq!(version_of("v1.2"), version_of("1.2.0"));
        assert_eq!(version_of("latest"), None);
        assert_eq!(version_of("sha256-abc.sig"), None);
        assert_eq!(version_of("1.0-rc1"), None);
    }

    #[test]
    fn source_section_is_replaced_in_place() {
        let text = "# c\n[source]\nref = \"a\"\nsha256 = \"b\"\n\n[limits]\nmemory = 1\n";
        let out = replace_source(text, "[source]\nref = \"x\"\n");
        assert_eq!(out, "# c\n[source]\nref = \"x\"\n[limits]\nmemory = 1\n");
        assert!(replace_source("[env]\n", "[source]\n").ends_with("\n[source]\n"));
    }
}
