//! ward as an installed command: its version names the plugin contract, its
//! shell completions are scripts the shells accept, `ward new` does not
//! depend on where ward was built, and the client snippets in the README
//! (Claude Desktop / Cursor JSON, the Claude Code line) start a working ward.

use std::process::Command;

use crate::util::*;

fn ward(args: &[&str]) -> String {
    let out = Command::new(ward_bin()).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ward {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_version_names_the_plugin_contract() {
    let version = ward(&["--version"]);
    assert_eq!(
        version.trim(),
        format!(
            "ward {}, plugin WIT ward:plugin@0.1.1",
            env!("CARGO_PKG_VERSION")
        )
    );
}

#[test]
fn completions_are_scripts_each_shell_accepts() {
    let bash = ward(&["completions", "bash"]);
    for subcommand in ["serve", "check", "add", "inspect", "completions"] {
        assert!(
            bash.contains(subcommand),
            "bash completion lacks {subcommand}"
        );
    }
    assert!(bash.contains("--state-key-file"));
    // bash parses it without running it.
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &bash).unwrap();
    let checked = Command::new("bash")
        .arg("-n")
        .arg(file.path())
        .output()
        .unwrap();
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );

    assert!(ward(&["completions", "zsh"]).starts_with("#compdef ward"));
    let fish = ward(&["completions", "fish"]);
    assert!(fish.contains("complete -c ward") && fish.contains("serve"));
    // An unknown shell is refused with the list of known ones.
    let out = Command::new(ward_bin())
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bash"));
}

#[test]
fn a_new_rust_project_never_points_at_the_directory_ward_was_built_in() {
    let outside = tempfile::tempdir().unwrap();
    let new = |name: &str, repo: Option<&std::path::Path>| {
        let mut cmd = Command::new(ward_bin());
        cmd.args(["new", name, "--dir"])
            .arg(outside.path())
            .env_remove("WARD_REPO");
        if let Some(repo) = repo {
            cmd.env("WARD_REPO", repo);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let manifest =
            std::fs::read_to_string(outside.path().join(name).join("Cargo.toml")).unwrap();
        (manifest, String::from_utf8_lossy(&out.stderr).into_owned())
    };
    // Outside any ward checkout and told nothing: a placeholder, and a note
    // that says how to fix it.
    let (manifest, note) = new("lonely", None);
    assert!(
        manifest.contains("path = \"../ward/sdk-guest\""),
        "{manifest}"
    );
    assert!(
        !manifest.contains(&repo().display().to_string()),
        "{manifest}"
    );
    assert!(
        note.contains("--ward-repo") && note.contains("WARD_REPO"),
        "{note}"
    );
    // Told by the environment.
    let (manifest, note) = new("told", Some(&repo()));
    let sdk = repo().join("sdk-guest").canonicalize().unwrap();
    assert!(
        manifest.contains(&format!("path = \"{}\"", sdk.display())),
        "{manifest}"
    );
    assert!(note.is_empty(), "{note}");
}

/// The client configurations the README shows, with its placeholder paths
/// pointed at this build and a plugin directory.
fn readme_commands() -> Vec<(String, Vec<String>)> {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let json = readme
        .split("```json\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a JSON block in the README");
    let config: serde_json::Value = serde_json::from_str(json).unwrap();
    let ward = &config["mcpServers"]["ward"];
    let mut commands = vec![(
        ward["command"].as_str().unwrap().to_string(),
        ward["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect(),
    )];
    let claude = readme
        .lines()
        .find(|l| l.contains("claude mcp add ward -- "))
        .expect("the Claude Code line");
    let line = claude.split("claude mcp add ward -- ").nth(1).unwrap();
    let line = line.split('`').next().unwrap();
    let mut words = line.split_whitespace().map(str::to_string);
    commands.push((words.next().unwrap(), words.collect()));
    commands
}

#[tokio::test]
async fn the_readmes_client_snippets_start_ward() {
    let dir = Dir::new();
    dir.plugin("hello", "hello");
    let commands = readme_commands();
    assert_eq!(commands.len(), 2);
    for (command, args) in commands {
        // The README's paths are placeholders: `.../target/release/ward` is
        // this build, the plugin directory a test directory.
        assert!(command.ends_with("target/release/ward"), "{command}");
        let mut cmd = tokio::process::Command::new(ward_bin());
        for arg in &args {
            if arg.contains("/path/to") {
                cmd.arg(dir.path());
            } else {
                cmd.arg(arg);
            }
        }
        cmd.env("WARD_CACHE_DIR", repo().join("target/test-cache"))
            .env("WARD_STARTUP_WAIT", "600")
            .kill_on_drop(true);
        let ward = Ward::start_command(cmd, Era::Legacy("2025-11-25")).await;
        assert_eq!(ward.tool_names().await, ["hello_greet"], "{args:?}");
        // One line on stderr says where it serves and how many plugins.
        let log = ward.wait_log("serving over stdio").await;
        let line = log
            .lines()
            .find(|l| l.contains("serving over stdio"))
            .unwrap();
        assert!(line.contains("plugins=1"), "{line}");
    }
}
