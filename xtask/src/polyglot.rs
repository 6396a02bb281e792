//! Plugins written in Python and JavaScript: pinned, project-local toolchains
//! and the build of one plugin directory into one component.
//!
//! - Python (`app.py` in the plugin directory): componentize-py, installed
//!   with pip into the venv `<repo>/.tools/python`; the helper module
//!   `sdk-guest/python/ward_plugin.py` is put on the Python path.
//! - JavaScript (`package.json` or `app.js`): componentize-js, installed with
//!   npm into `<repo>/.tools/js/node_modules`; the plugin's files and
//!   `sdk-guest/js/ward_plugin.js` are staged into one directory (the app
//!   imports `./ward_plugin.js`) and componentized from there.
//!
//! Both build against `<repo>/wit`, world `plugin` (all four exports; the
//! helpers implement the ones a plugin does not use as empty). A `ward.toml`
//! in the plugin directory (its manifest: what it requests) is embedded into
//! the component afterwards by the language's own helper,
//! `sdk-guest/python/ward_manifest.py` or `sdk-guest/js/ward_manifest.mjs`,
//! the same scripts `ward new` projects run. `.tools/` is
//! gitignored; [`ensure_python`] and [`ensure_js`] (re)install a toolchain
//! only when the pinned version is missing. Outputs are written to a
//! temporary name beside `out` and renamed into place, so a watching ward
//! never loads a partial file.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::util;

/// componentize-py, from PyPI.
pub const COMPONENTIZE_PY_VERSION: &str = "0.25.1";
/// `@bytecodealliance/componentize-js`, from npm.
pub const COMPONENTIZE_JS_VERSION: &str = "0.23.0";
/// The WIT world the helpers implement.
pub const WORLD: &str = "plugin";

/// The language of a non-Rust plugin directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Lang {
    /// `app.py`, built with componentize-py.
    Python,
    /// `package.json` or `app.js`, built with componentize-js.
    Js,
}

/// The language of `plugin_dir`, or `None` for a Rust (or unknown) plugin.
/// A `Cargo.toml` wins: such a directory is left to the Rust build.
pub fn detect(plugin_dir: &Path) -> Option<Lang> {
    if plugin_dir.join("Cargo.toml").exists() {
        None
    } else if plugin_dir.join("app.py").is_file() {
        Some(Lang::Python)
    } else if plugin_dir.join("package.json").is_file() || plugin_dir.join("app.js").is_file() {
        Some(Lang::Js)
    } else {
        None
    }
}

/// The Python and JavaScript plugin directories directly under `dir`
/// (for example `plugins/`), sorted by name.
pub fn find_plugins(dir: &Path) -> Result<Vec<(PathBuf, Lang)>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            if let Some(lang) = detect(&path) {
                found.push((path, lang));
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Builds every Python and JavaScript plugin under `plugins_dir` into
/// `out_dir/NAME.wasm` (NAME is the directory name), copying an example
/// policy `NAME.toml` or `policy.toml` from the plugin directory to
/// `out_dir/NAME.toml`. Returns the components written.
pub fn build_all(repo: &Path, plugins_dir: &Path, out_dir: &Path) -> Result<Vec<PathBuf>> {
    let mut built = Vec::new();
    for (dir, lang) in find_plugins(plugins_dir)? {
        let name = dir_name(&dir)?;
        let out = out_dir.join(format!("{name}.wasm"));
        if up_to_date(repo, &dir, lang, &out) {
            eprintln!("polyglot: {} is up to date", out.display());
        } else {
            build_plugin(repo, &dir, lang, &out)?;
        }
        for policy in [dir.join(format!("{name}.toml")), dir.join("policy.toml")] {
            if policy.is_file() {
                let bytes = fs::read(&policy)?;
                write_atomic(&out_dir.join(format!("{name}.toml")), &bytes)?;
                break;
            }
        }
        built.push(out);
    }
    Ok(built)
}

/// True when `out` is newer than every input of its build: the plugin's
/// files, the helper and the WIT package.
fn up_to_date(repo: &Path, plugin_dir: &Path, lang: Lang, out: &Path) -> bool {
    let Ok(built) = fs::metadata(out).and_then(|m| m.modified()) else {
        return false;
    };
    let (helper, embedder) = match lang {
        Lang::Python => (
            repo.join("sdk-guest/python/ward_plugin.py"),
            repo.join("sdk-guest/python/ward_manifest.py"),
        ),
        Lang::Js => (
            repo.join("sdk-guest/js/ward_plugin.js"),
            repo.join("sdk-guest/js/ward_manifest.mjs"),
        ),
    };
    let mut inputs = vec![helper, embedder, repo.join("xtask/src/polyglot.rs")];
    util::collect_files(plugin_dir, &mut inputs);
    util::collect_files(&repo.join("wit"), &mut inputs);
    util::none_newer(&inputs, built)
}

/// Builds one plugin directory of language `lang` into `out`.
pub fn build_plugin(repo: &Path, plugin_dir: &Path, lang: Lang, out: &Path) -> Result<()> {
    match lang {
        Lang::Python => build_python_plugin(repo, plugin_dir, out),
        Lang::Js => build_js_plugin(repo, plugin_dir, out),
    }
}

/// Installs both pinned toolchains into `<repo>/.tools` if missing.
#[allow(dead_code)] // for a set-up step that wants both toolchains up front
pub fn ensure_tools(repo: &Path) -> Result<()> {
    ensure_python(repo)?;
    ensure_js(repo)?;
    Ok(())
}

/// The componentize-py executable, installed (pinned) into the venv
/// `<repo>/.tools/python` if it is not there yet.
pub fn ensure_python(repo: &Path) -> Result<PathBuf> {
    let venv = repo.join(".tools/python");
    let bin = venv.join("bin/componentize-py");
    if bin.is_file() {
        let out = Command::new(&bin).arg("--version").output();
        if let Ok(out) = out {
            if String::from_utf8_lossy(&out.stdout).trim()
                == format!("componentize-py {COMPONENTIZE_PY_VERSION}")
            {
                return Ok(bin);
            }
        }
    }
    eprintln!(
        "polyglot: installing componentize-py {COMPONENTIZE_PY_VERSION} into {}",
        venv.display()
    );
    if !venv.join("bin/pip").is_file() {
        run(
            Command::new(python3()).args(["-m", "venv"]).arg(&venv),
            "python3 -m venv",
        )?;
    }
    run(
        Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .arg(format!("componentize-py=={COMPONENTIZE_PY_VERSION}")),
        "pip install componentize-py",
    )?;
    if !bin.is_file() {
        bail!(
            "pip installed componentize-py but {} is missing",
            bin.display()
        );
    }
    Ok(bin)
}

/// The componentize-js CLI script (run with `node`), installed (pinned) into
/// `<repo>/.tools/js/node_modules` if it is not there yet.
pub fn ensure_js(repo: &Path) -> Result<PathBuf> {
    let dir = repo.join(".tools/js");
    let pkg = dir.join("node_modules/@bytecodealliance/componentize-js");
    let cli = pkg.join("src/cli.js");
    let installed = fs::read_to_string(pkg.join("package.json")).unwrap_or_default();
    if cli.is_file() && installed.contains(&format!("\"version\": \"{COMPONENTIZE_JS_VERSION}\"")) {
        return Ok(cli);
    }
    eprintln!(
        "polyglot: installing @bytecodealliance/componentize-js {COMPONENTIZE_JS_VERSION} into {}",
        dir.display()
    );
    fs::create_dir_all(&dir)?;
    fs::write(
        dir.join("package.json"),
        format!(
            "{{\n  \"name\": \"ward-tools\",\n  \"private\": true,\n  \"dependencies\": {{\n    \"@bytecodealliance/componentize-js\": \"{COMPONENTIZE_JS_VERSION}\"\n  }}\n}}\n"
        ),
    )?;
    run(
        Command::new("npm").current_dir(&dir).args([
            "install",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
        ]),
        "npm install @bytecodealliance/componentize-js",
    )?;
    if !cli.is_file() {
        bail!(
            "npm installed componentize-js but {} is missing",
            cli.display()
        );
    }
    Ok(cli)
}

/// Builds the Python plugin in `plugin_dir` (its module `app.py`) into `out`.
pub fn build_python_plugin(repo: &Path, plugin_dir: &Path, out: &Path) -> Result<()> {
    let bin = ensure_python(repo)?;
    let tmp = temp_beside(out)?;
    let start = Instant::now();
    let status = Command::new(&bin)
        .arg("-d")
        .arg(repo.join("wit"))
        .args(["-w", WORLD, "componentize", "app", "-p"])
        .arg(plugin_dir)
        .arg("-p")
        .arg(repo.join("sdk-guest/python"))
        .arg("-o")
        .arg(&tmp)
        // No .pyc files in the source tree.
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .status()
        .context("running componentize-py")?;
    let ok = status.success() && embed_manifest(repo, plugin_dir, Lang::Python, &tmp)?;
    finish(ok, "componentize-py", plugin_dir, &tmp, out, start)
}

/// Builds the JavaScript plugin in `plugin_dir` (its `package.json` `main`,
/// or `app.js`) into `out`.
pub fn build_js_plugin(repo: &Path, plugin_dir: &Path, out: &Path) -> Result<()> {
    let cli = ensure_js(repo)?;
    let name = dir_name(plugin_dir)?;
    // Stage the plugin's sources with the helper beside them.
    let stage = repo.join("target/polyglot").join(&name);
    if stage.exists() {
        fs::remove_dir_all(&stage).with_context(|| format!("clearing {}", stage.display()))?;
    }
    copy_tree(plugin_dir, &stage)?;
    fs::copy(
        repo.join("sdk-guest/js/ward_plugin.js"),
        stage.join("ward_plugin.js"),
    )
    .context("copying sdk-guest/js/ward_plugin.js")?;
    let entry = js_entry(plugin_dir)?;
    let tmp = temp_beside(out)?;
    let start = Instant::now();
    let status = Command::new("node")
        .arg(&cli)
        .arg(stage.join(&entry))
        .arg("--wit")
        .arg(repo.join("wit"))
        .args(["--world-name", WORLD, "-o"])
        .arg(&tmp)
        .status()
        .context("running node (componentize-js)")?;
    let ok = status.success() && embed_manifest(repo, plugin_dir, Lang::Js, &tmp)?;
    finish(ok, "componentize-js", plugin_dir, &tmp, out, start)
}

/// Embeds `plugin_dir/ward.toml`, if there is one, into the built component
/// `wasm` with the language's helper script. True when the build may go on.
fn embed_manifest(repo: &Path, plugin_dir: &Path, lang: Lang, wasm: &Path) -> Result<bool> {
    let manifest = plugin_dir.join("ward.toml");
    if !manifest.is_file() || !wasm.is_file() {
        return Ok(true);
    }
    let mut cmd = match lang {
        Lang::Python => {
            let mut cmd = Command::new(python3());
            cmd.arg(repo.join("sdk-guest/python/ward_manifest.py"));
            cmd
        }
        Lang::Js => {
            let mut cmd = Command::new("node");
            cmd.arg(repo.join("sdk-guest/js/ward_manifest.mjs"));
            cmd
        }
    };
    run(cmd.arg(wasm).arg(&manifest), "embedding ward.toml")?;
    Ok(true)
}

/// The entry module of a JS plugin: `main` of its package.json, else `app.js`.
fn js_entry(plugin_dir: &Path) -> Result<String> {
    if let Ok(pkg) = fs::read_to_string(plugin_dir.join("package.json")) {
        // A tiny look-up, to keep xtask free of a JSON dependency.
        if let Some(rest) = pkg.split("\"main\"").nth(1) {
            if let Some(value) = rest.split('"').nth(1) {
                return Ok(value.trim_start_matches("./").to_string());
            }
        }
    }
    Ok("app.js".to_string())
}

fn finish(
    ok: bool,
    tool: &str,
    plugin_dir: &Path,
    tmp: &Path,
    out: &Path,
    start: Instant,
) -> Result<()> {
    if !ok || !tmp.is_file() {
        let _ = fs::remove_file(tmp);
        bail!("{tool} failed to build {}", plugin_dir.display());
    }
    fs::rename(tmp, out)
        .with_context(|| format!("renaming {} to {}", tmp.display(), out.display()))?;
    let size = fs::metadata(out)?.len();
    eprintln!(
        "polyglot: {} -> {} ({:.1} MB) in {:.1}s",
        plugin_dir.display(),
        out.display(),
        size as f64 / 1e6,
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// A temporary path in `out`'s directory (so the final rename is atomic),
/// with a name that is not `*.wasm` (so a watching ward ignores it).
fn temp_beside(out: &Path) -> Result<PathBuf> {
    let dir = out.parent().context("output path has no directory")?;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let file = out
        .file_name()
        .and_then(OsStr::to_str)
        .context("output path has no file name")?;
    Ok(dir.join(format!(".{file}.{}.tmp", std::process::id())))
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_beside(path)?;
    fs::write(&tmp, bytes)?;
    fs::rename(&tmp, path)?;
    Ok(())
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        if name == "node_modules" || name.to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            copy_tree(&path, &to.join(&name))?;
        } else {
            fs::copy(&path, to.join(&name))
                .with_context(|| format!("copying {}", path.display()))?;
        }
    }
    Ok(())
}

fn dir_name(dir: &Path) -> Result<String> {
    Ok(dir
        .file_name()
        .and_then(OsStr::to_str)
        .with_context(|| format!("{} has no UTF-8 name", dir.display()))?
        .to_string())
}

fn python3() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
}

fn run(cmd: &mut Command, what: &str) -> Result<()> {
    let status = cmd.status().with_context(|| format!("starting {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_languages() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        assert_eq!(
            detect(&repo.join("plugins/python-hello")),
            Some(Lang::Python)
        );
        assert_eq!(detect(&repo.join("plugins/js-hello")), Some(Lang::Js));
        assert_eq!(detect(&repo.join("plugins/hello")), None);
        assert_eq!(js_entry(&repo.join("plugins/js-hello")).unwrap(), "app.js");
    }
}
