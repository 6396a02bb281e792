//! ward as an installed command: its version names the plugin contract, and
//! its shell completions are scripts the shells accept.

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
