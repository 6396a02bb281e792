//! `ward new`: a plugin project in Rust, Python, JavaScript or C that builds
//! with one command (`./build.sh` → `dist/NAME.wasm`); the Rust, Python and
//! JavaScript ones also test themselves on the host.
//!
//! The templates live in `runtime/templates/`; the Python, JavaScript and C
//! helpers (`sdk-guest/python/ward_plugin.py`, `sdk-guest/js/ward_plugin.js`,
//! `sdk-guest/c/ward.h` and `ward.c`)
//! and the WIT package (`wit/plugin.wit`) are compiled into ward and written
//! into the project, so a project does not need the ward repository. A Rust
//! project depends on the `ward-guest` crate by path: the repository's
//! `sdk-guest/` when it is known (`repo_hint`, or found above `parent`).

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{bail, Context, Result};

use crate::sandbox::policy::MAX_PREFIX_LEN;

/// componentize-py version the Python template pins (keep in sync with
/// `xtask/src/polyglot.rs`; a test checks).
pub const COMPONENTIZE_PY_VERSION: &str = "0.25.1";
/// componentize-js version the JavaScript template pins (same).
pub const COMPONENTIZE_JS_VERSION: &str = "0.23.0";
/// wit-bindgen-cli version the C template pins (keep in sync with
/// `xtask/src/cplugin.rs`; a test checks).
pub const WIT_BINDGEN_VERSION: &str = "0.61.1";
/// wasm-component-ld version the C template pins (same).
pub const WASM_COMPONENT_LD_VERSION: &str = "0.5.31";

/// The language of a new plugin project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// Rust with the `ward-guest` crate, target `wasm32-wasip2`.
    Rust,
    /// Python with `ward_plugin.py`, built by componentize-py.
    Python,
    /// JavaScript with `ward_plugin.js`, built by componentize-js.
    Js,
    /// C with `ward.h`, built by clang and wasi-libc.
    C,
}

impl FromStr for Lang {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "rust" | "rs" => Ok(Lang::Rust),
            "python" | "py" => Ok(Lang::Python),
            "js" | "javascript" => Ok(Lang::Js),
            "c" => Ok(Lang::C),
            other => bail!("unknown language {other:?}: expected rust, python, js or c"),
        }
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Lang::Rust => "rust",
            Lang::Python => "python",
            Lang::Js => "js",
            Lang::C => "c",
        })
    }
}

const WIT: &str = include_str!("../../wit/plugin.wit");
const PY_HELPER: &str = include_str!("../../sdk-guest/python/ward_plugin.py");
const JS_HELPER: &str = include_str!("../../sdk-guest/js/ward_plugin.js");
const JS_TRY: &str = include_str!("../../sdk-guest/js/try.mjs");
const PY_MANIFEST: &str = include_str!("../../sdk-guest/python/ward_manifest.py");
const C_HEADER: &str = include_str!("../../sdk-guest/c/ward.h");
const C_HELPER: &str = include_str!("../../sdk-guest/c/ward.c");
const JS_MANIFEST: &str = include_str!("../../sdk-guest/js/ward_manifest.mjs");

/// (path in the project, template text, executable)
type File = (&'static str, &'static str, bool);

const RUST_FILES: &[File] = &[
    (
        "Cargo.toml",
        include_str!("../templates/rust/Cargo.toml"),
        false,
    ),
    (
        "src/lib.rs",
        include_str!("../templates/rust/lib.rs"),
        false,
    ),
    ("build.sh", include_str!("../templates/rust/build.sh"), true),
    (
        "ward.toml",
        include_str!("../templates/rust/ward.toml"),
        false,
    ),
    (
        "README.md",
        include_str!("../templates/rust/README.md"),
        false,
    ),
    (
        ".gitignore",
        include_str!("../templates/rust/gitignore"),
        false,
    ),
];

const PYTHON_FILES: &[File] = &[
    ("app.py", include_str!("../templates/python/app.py"), false),
    (
        "test_app.py",
        include_str!("../templates/python/test_app.py"),
        false,
    ),
    (
        "build.sh",
        include_str!("../templates/python/build.sh"),
        true,
    ),
    (
        "README.md",
        include_str!("../templates/python/README.md"),
        false,
    ),
    (
        ".gitignore",
        include_str!("../templates/python/gitignore"),
        false,
    ),
    ("ward_plugin.py", PY_HELPER, false),
    ("ward_manifest.py", PY_MANIFEST, false),
    (
        "ward.toml",
        include_str!("../templates/python/ward.toml"),
        false,
    ),
    ("wit/plugin.wit", WIT, false),
];

const C_FILES: &[File] = &[
    ("app.c", include_str!("../templates/c/app.c"), false),
    ("build.sh", include_str!("../templates/c/build.sh"), true),
    ("README.md", include_str!("../templates/c/README.md"), false),
    (
        ".gitignore",
        include_str!("../templates/c/gitignore"),
        false,
    ),
    ("ward.toml", include_str!("../templates/c/ward.toml"), false),
    ("ward.h", C_HEADER, false),
    ("ward.c", C_HELPER, false),
    // The manifest goes into the component as in Python projects.
    ("ward_manifest.py", PY_MANIFEST, false),
    ("wit/plugin.wit", WIT, false),
];

const JS_FILES: &[File] = &[
    ("app.js", include_str!("../templates/js/app.js"), false),
    (
        "package.json",
        include_str!("../templates/js/package.json"),
        false,
    ),
    ("test.mjs", include_str!("../templates/js/test.mjs"), false),
    ("build.sh", include_str!("../templates/js/build.sh"), true),
    (
        "README.md",
        include_str!("../templates/js/README.md"),
        false,
    ),
    (
        ".gitignore",
        include_str!("../templates/js/gitignore"),
        false,
    ),
    ("ward_plugin.js", JS_HELPER, false),
    ("ward_manifest.mjs", JS_MANIFEST, false),
    (
        "ward.toml",
        include_str!("../templates/js/ward.toml"),
        false,
    ),
    ("try.mjs", JS_TRY, false),
    ("wit/plugin.wit", WIT, false),
];

/// Creates the plugin project `parent/name` in `lang` and returns its path.
///
/// `name` must match `^[a-zA-Z][a-zA-Z0-9_-]{0,63}$` (it becomes the
/// component's file stem, hence the plugin's name). The directory must not
/// exist or be empty. For Rust, `repo_hint` is the ward repository whose
/// `sdk-guest/` the project depends on; without it, the repository is looked
/// for above `parent`, and failing that the dependency path is a placeholder
/// that the README tells the author to fix.
pub fn scaffold(
    name: &str,
    lang: Lang,
    parent: &Path,
    repo_hint: Option<&Path>,
) -> Result<PathBuf> {
    validate_name(name)?;
    let dir = parent.join(name);
    if dir.exists()
        && fs::read_dir(&dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        bail!("{} already exists and is not empty", dir.display());
    }

    let sdk_path = match lang {
        Lang::Rust => {
            let repo = repo_hint
                .map(Path::to_path_buf)
                .or_else(|| find_repo(parent));
            let sdk = match repo {
                Some(repo) => {
                    let sdk = repo.join("sdk-guest");
                    if !sdk.join("Cargo.toml").is_file() {
                        bail!(
                            "{} has no sdk-guest/Cargo.toml: is it the ward repository?",
                            repo.display()
                        );
                    }
                    sdk.canonicalize().unwrap_or(sdk).display().to_string()
                }
                None => PLACEHOLDER_SDK.to_string(),
            };
            toml_string(&sdk)
        }
        _ => String::new(),
    };

    let vars: [(&str, &str); 8] = [
        ("{{name}}", name),
        ("{{lib_name}}", &name.replace('-', "_")),
        ("{{name_underscored}}", &name.replace('-', "_")),
        ("{{sdk_path}}", &sdk_path),
        ("{{py_version}}", COMPONENTIZE_PY_VERSION),
        ("{{js_version}}", COMPONENTIZE_JS_VERSION),
        ("{{wit_bindgen_version}}", WIT_BINDGEN_VERSION),
        ("{{wcl_version}}", WASM_COMPONENT_LD_VERSION),
    ];
    let files = match lang {
        Lang::Rust => RUST_FILES,
        Lang::Python => PYTHON_FILES,
        Lang::Js => JS_FILES,
        Lang::C => C_FILES,
    };
    for (rel, template, executable) in files {
        let path = dir.join(rel);
        if let Some(p) = path.parent() {
            fs::create_dir_all(p).with_context(|| format!("creating {}", p.display()))?;
        }
        // Vendored files (helpers, WIT) are written verbatim.
        let text = if template.contains("{{") && !is_vendored(rel) {
            vars.iter()
                .fold(template.to_string(), |t, (k, v)| t.replace(k, v))
        } else {
            template.to_string()
        };
        fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        if *executable {
            make_executable(&path)?;
        }
    }
    Ok(dir)
}

fn is_vendored(rel: &str) -> bool {
    matches!(
        rel,
        "ward_plugin.py"
            | "ward_plugin.js"
            | "ward_manifest.py"
            | "ward_manifest.mjs"
            | "try.mjs"
            | "ward.h"
            | "ward.c"
            | "wit/plugin.wit"
    )
}

/// A name whose plugin loads without a `[names] prefix`: a valid name
/// (`registry::valid_name`) that is also a valid prefix (no `_`, at most
/// `MAX_PREFIX_LEN` bytes), starting with a letter so that it is a valid
/// package name in every language.
fn validate_name(name: &str) -> Result<()> {
    let ok = crate::registry::valid_name(name)
        && name.len() <= MAX_PREFIX_LEN
        && !name.contains('_')
        && name.starts_with(|c: char| c.is_ascii_alphabetic());
    if !ok {
        // `_` separates a plugin's name from its tools' (`hello_greet`), so
        // a plugin whose name holds one needs a prefix of its own.
        bail!("invalid plugin name {name:?}: use 1-{MAX_PREFIX_LEN} ASCII letters, digits or '-', starting with a letter ('_' separates the plugin's name from its tools' names)");
    }
    Ok(())
}

/// The `ward-guest` path a Rust project gets when no ward repository is
/// known: the author edits it (the project's README says so).
pub const PLACEHOLDER_SDK: &str = "../ward/sdk-guest";

/// The ward repository at or above `start`: a directory with both
/// `sdk-guest/Cargo.toml` and `wit/plugin.wit`.
fn find_repo(start: &Path) -> Option<PathBuf> {
    let start = start.canonicalize().ok()?;
    start
        .ancestors()
        .find(|d| d.join("sdk-guest/Cargo.toml").is_file() && d.join("wit/plugin.wit").is_file())
        .map(Path::to_path_buf)
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(unix)]
fn make_executable(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut perms = fs::metadata(path)?.permissions();
    perms.set_mode(0o755);
    fs::set_permissions(path, perms)?;
    Ok(())
}

#[cfg(not(unix))]
fn make_executable(_path: &Path) -> Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap()
            .to_path_buf()
    }

    #[test]
    fn scaffolds_each_language() {
        let tmp = tempfile::tempdir().unwrap();
        for (lang, expected) in [
            (
                Lang::Rust,
                &[
                    "Cargo.toml",
                    "src/lib.rs",
                    "build.sh",
                    "README.md",
                    ".gitignore",
                    "ward.toml",
                ][..],
            ),
            (
                Lang::Python,
                &[
                    "app.py",
                    "test_app.py",
                    "build.sh",
                    "README.md",
                    "ward_plugin.py",
                    "ward_manifest.py",
                    "ward.toml",
                    "wit/plugin.wit",
                ][..],
            ),
            (
                Lang::Js,
                &[
                    "app.js",
                    "package.json",
                    "test.mjs",
                    "build.sh",
                    "ward_plugin.js",
                    "ward_manifest.mjs",
                    "ward.toml",
                    "try.mjs",
                    "wit/plugin.wit",
                ][..],
            ),
            (
                Lang::C,
                &[
                    "app.c",
                    "build.sh",
                    "ward.h",
                    "ward.c",
                    "ward_manifest.py",
                    "ward.toml",
                    "wit/plugin.wit",
                ][..],
            ),
        ] {
            let name = format!("my-{lang}-plugin");
            let dir = scaffold(&name, lang, tmp.path(), Some(&repo())).unwrap();
            assert_eq!(dir, tmp.path().join(&name));
            for f in expected {
                assert!(dir.join(f).is_file(), "{lang}: {f} missing");
            }
            for entry in walk(&dir) {
                let text = fs::read_to_string(&entry).unwrap();
                if !is_vendored(entry.strip_prefix(&dir).unwrap().to_str().unwrap()) {
                    assert!(
                        !text.contains("{{"),
                        "{}: unreplaced placeholder",
                        entry.display()
                    );
                }
            }
            let build = fs::read_to_string(dir.join("build.sh")).unwrap();
            assert!(
                build.contains(&format!("dist/{name}.wasm")),
                "{lang}: build.sh output"
            );
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                assert_ne!(
                    fs::metadata(dir.join("build.sh"))
                        .unwrap()
                        .permissions()
                        .mode()
                        & 0o111,
                    0
                );
            }
        }
        let cargo = fs::read_to_string(tmp.path().join("my-rust-plugin/Cargo.toml")).unwrap();
        let sdk = repo().join("sdk-guest").canonicalize().unwrap();
        assert!(
            cargo.contains(&toml_string(&sdk.display().to_string())),
            "{cargo}"
        );
        let build = fs::read_to_string(tmp.path().join("my-rust-plugin/build.sh")).unwrap();
        assert!(build.contains("release/my_rust_plugin.wasm"));
        let pkg = fs::read_to_string(tmp.path().join("my-js-plugin/package.json")).unwrap();
        assert!(pkg.contains(&format!(
            "\"@bytecodealliance/componentize-js\": \"{COMPONENTIZE_JS_VERSION}\""
        )));
    }

    #[test]
    fn refuses_bad_names_and_non_empty_dirs() {
        let tmp = tempfile::tempdir().unwrap();
        // `a_b` would load as a plugin no tool name can carry (`_` separates).
        for bad in ["", "1abc", "a b", "a/b", "../x", "a_b", &"x".repeat(64)] {
            assert!(
                scaffold(bad, Lang::Python, tmp.path(), None).is_err(),
                "{bad:?}"
            );
        }
        scaffold("p", Lang::Python, tmp.path(), None).unwrap();
        assert!(scaffold("p", Lang::Js, tmp.path(), None).is_err());
        // An empty directory is fine.
        fs::create_dir(tmp.path().join("empty")).unwrap();
        scaffold("empty", Lang::Js, tmp.path(), None).unwrap();
    }

    #[test]
    fn parses_languages() {
        assert_eq!("Python".parse::<Lang>().unwrap(), Lang::Python);
        assert_eq!("rs".parse::<Lang>().unwrap(), Lang::Rust);
        assert_eq!("javascript".parse::<Lang>().unwrap(), Lang::Js);
        assert_eq!("C".parse::<Lang>().unwrap(), Lang::C);
        assert!("cobol".parse::<Lang>().is_err());
    }

    #[test]
    fn pinned_versions_match_xtask() {
        let xtask = include_str!("../../xtask/src/polyglot.rs");
        assert!(xtask.contains(&format!(
            "COMPONENTIZE_PY_VERSION: &str = \"{COMPONENTIZE_PY_VERSION}\""
        )));
        assert!(xtask.contains(&format!(
            "COMPONENTIZE_JS_VERSION: &str = \"{COMPONENTIZE_JS_VERSION}\""
        )));
        let xtask = include_str!("../../xtask/src/cplugin.rs");
        assert!(xtask.contains(&format!(
            "WIT_BINDGEN_VERSION: &str = \"{WIT_BINDGEN_VERSION}\""
        )));
        assert!(xtask.contains(&format!(
            "WASM_COMPONENT_LD_VERSION: &str = \"{WASM_COMPONENT_LD_VERSION}\""
        )));
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
        out
    }
}
