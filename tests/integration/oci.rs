//! `ward publish`, `ward add`, `ward upgrade`, pins and signatures, against a
//! real OCI registry: Debian's `docker-registry` (CNCF distribution 2.8)
//! started on a loopback port per test, with keys made by `openssl`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::json;

use crate::util::{self, text, Dir, Ward};

/// A registry on 127.0.0.1, removed with its storage when dropped.
struct Registry {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Registry {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:0\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let mut child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start `docker-registry` (Debian's package docker-registry; `cargo xtask test` installs it)");
        // Its log says where it listens; read until then, then keep draining.
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let addr = loop {
            let line = lines
                .next()
                .expect("docker-registry exited before listening")
                .unwrap();
            if let Some(rest) = line.split("listening on ").nth(1) {
                break rest.split(['"', ' ']).next().unwrap().to_string();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        Registry {
            child,
            addr,
            _dir: dir,
        }
    }

    fn reference(&self, repo_tag: &str) -> String {
        format!("{}/{repo_tag}", self.addr)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An EC P-256 key pair made by openssl: (PKCS#8 private, SPKI public).
fn keypair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let ec = dir.join(format!("{name}.ec.pem"));
    let private = dir.join(format!("{name}.key"));
    let public = dir.join(format!("{name}.pub"));
    for args in [
        vec![
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            ec.to_str().unwrap(),
        ],
        vec![
            "pkcs8",
            "-topk8",
            "-nocrypt",
            "-in",
            ec.to_str().unwrap(),
            "-out",
            private.to_str().unwrap(),
        ],
        vec![
            "ec",
            "-in",
            private.to_str().unwrap(),
            "-pubout",
            "-out",
            public.to_str().unwrap(),
        ],
    ] {
        let out = Command::new("openssl")
            .args(&args)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    (private, public)
}

/// Runs `ward ARGS` with stdin closed (not a terminal).
fn ward(args: &[&str]) -> Output {
    Command::new(util::ward_bin())
        .args(args)
        .env("WARD_CACHE_DIR", util::repo().join("target/test-cache"))
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "ward failed:\n{all}");
    all
}

fn failed(out: &Output) -> String {
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !out.status.success(),
        "ward succeeded but should not have:\n{all}"
    );
    all
}

/// A plugin named `hello` with a manifest of requests: the conformance
/// example (which carries no manifest of its own) with one appended;
/// `version` marks it, so two versions have different bytes.
fn hello_with_manifest(dir: &Path, version: &str, extra_host: Option<&str>) -> PathBuf {
    let mut wasm = std::fs::read(util::wasm("conformance")).unwrap();
    let mut manifest = format!(
        "[plugin]\nname = \"hello\"\nversion = \"{version}\"\n\
         [[fs]]\nguest = \"/data\"\nwhy = \"notes to greet from\"\n\
         [env.GREETING_TOKEN]\nwhy = \"the greeting service\"\nsecret = true\n\
         [[network]]\nhost = \"api.example.com:443\"\nwhy = \"fetch greetings\"\n\
         [limits]\nmemory = \"96MiB\"\n"
    );
    if let Some(host) = extra_host {
        manifest.push_str(&format!(
            "[[network]]\nhost = \"{host}\"\nwhy = \"new in {version}\"\n"
        ));
    }
    // Only when the example carries no manifest of its own (two would be ambiguous).
    assert!(
        !ward::manifest::read(&wasm).unwrap().manifest.present,
        "the conformance example now has a manifest: adapt this test"
    );
    ward::manifest::append_section(&mut wasm, ward::manifest::SECTION, manifest.as_bytes());
    let path = dir.join(format!("hello-{version}.wasm"));
    std::fs::write(&path, wasm).unwrap();
    path
}

fn sha256_hex(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

#[tokio::test]
async fn signed_publish_then_add_with_key_pins_grants_requested_and_serves() {
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let (private, public) = keypair(work.path(), "team");
    let file = hello_with_manifest(work.path(), "1.0", None);
    let reference = registry.reference("team/hello:1.0");
    let out = ok(&ward(&[
        "publish",
        file.to_str().unwrap(),
        &reference,
        "--sign",
        private.to_str().unwrap(),
    ]));
    assert!(
        out.contains("published") && out.contains("signed by sha256:"),
        "{out}"
    );

    let dir = Dir::new();
    let plugins = dir.path().to_str().unwrap();
    let out = ok(&ward(&[
        "add",
        &reference,
        "--plugins",
        plugins,
        "--key",
        public.to_str().unwrap(),
        "--grant-requested",
    ]));
    assert!(out.contains("verified, signed by sha256:"), "{out}");
    assert!(
        out.contains("test_simple_text"),
        "the view lists the tools: {out}"
    );
    assert!(
        out.contains("api.example.com:443"),
        "the view lists the requests: {out}"
    );

    let policy = std::fs::read_to_string(dir.path().join("hello.toml")).unwrap();
    assert!(
        policy.contains(&format!("ref = \"{reference}\"")),
        "{policy}"
    );
    assert!(
        policy.contains(&format!("sha256 = \"{}\"", sha256_hex(&file))),
        "{policy}"
    );
    assert!(policy.contains("signed-by = \"sha256:"), "{policy}");
    assert!(
        policy.contains("\n[network]\nallow = [\"api.example.com:443\"]"),
        "network granted: {policy}"
    );
    assert!(
        policy.contains("\n[limits]\nmemory = 100663296"),
        "limits granted: {policy}"
    );
    assert!(
        policy.contains("# [[fs]]") && !policy.contains("\n[[fs]]"),
        "fs left to fill in: {policy}"
    );
    assert!(
        policy.contains("# GREETING_TOKEN = ") && !policy.contains("\n[env]"),
        "env left to fill in: {policy}"
    );
    assert_eq!(
        std::fs::read(dir.path().join("hello.wasm")).unwrap(),
        std::fs::read(&file).unwrap()
    );

    let ward = Ward::start(dir.path()).await;
    let result = ward.call("hello_test_simple_text", json!({})).await;
    assert!(!util::is_error(&result) && !text(&result).is_empty());
}

/// The attack: bytes swapped behind the operator's back (a compromised
/// build, another plugin with write access to the directory) are served as
/// if they had been reviewed. With `[source] sha256` they are refused, at
/// start and on hot reload, and the reviewed version keeps serving.
#[tokio::test]
async fn a_tampered_wasm_is_refused_and_the_pinned_version_keeps_serving() {
    let work = tempfile::tempdir().unwrap();
    let file = hello_with_manifest(work.path(), "1.0", None);
    let dir = Dir::new();
    ok(&ward(&[
        "add",
        file.to_str().unwrap(),
        "--plugins",
        dir.path().to_str().unwrap(),
    ]));
    assert!(std::fs::read_to_string(dir.path().join("hello.toml"))
        .unwrap()
        .contains("sha256 = "));

    let mut ward = Ward::start(dir.path()).await;
    assert!(ward
        .tool_names()
        .await
        .contains(&"hello_test_simple_text".to_string()));
    // Swap in other bytes (the files example) the documented way: rename into place.
    let tmp = dir.path().join(".swap");
    std::fs::copy(util::wasm("files"), &tmp).unwrap();
    std::fs::rename(&tmp, dir.path().join("hello.wasm")).unwrap();
    let log = ward.wait_log("previous one keeps serving").await;
    assert!(log.contains("hello.toml pins `[source] sha256"), "{log}");
    let names = ward.tool_names().await;
    assert!(
        names.contains(&"hello_test_simple_text".to_string())
            && !names.contains(&"hello_read".to_string()),
        "{names:?}"
    );
    let result = ward.call("hello_test_simple_text", json!({})).await;
    assert!(!util::is_error(&result));
    let _ = ward
        .wait_for(
            "the warning to clients",
            |n| matches!(n, util::Note::Log(l) if l.data.to_string().contains("pins")),
        )
        .await;

    // At start: not loaded at all.
    let out = failed(&ward_check(dir.path()));
    assert!(out.contains("hello.toml pins `[source] sha256"), "{out}");
}

fn ward_check(dir: &Path) -> Output {
    ward(&["check", dir.to_str().unwrap()])
}

#[tokio::test]
async fn unsigned_or_foreign_signed_artifacts_are_refused_and_nothing_is_written() {
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let (private, public) = keypair(work.path(), "team");
    let (_, other_public) = keypair(work.path(), "other");
    let file = hello_with_manifest(work.path(), "1.0", None);
    // Other bytes than the signed one's: signatures belong to a digest, and
    // two publishes of one file within a second have the same digest.
    let other = hello_with_manifest(work.path(), "0.9", None);
    let unsigned = registry.reference("team/hello:unsigned");
    ok(&ward(&["publish", other.to_str().unwrap(), &unsigned]));
    let signed = registry.reference("team/hello:signed");
    ok(&ward(&[
        "publish",
        file.to_str().unwrap(),
        &signed,
        "--sign",
        private.to_str().unwrap(),
    ]));

    let dir = Dir::new();
    let plugins = dir.path().to_str().unwrap();
    let empty = |dir: &Dir| {
        std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name() != "trust.toml")
            .count()
            == 0
    };

    // --key: unsigned is refused.
    let out = failed(&ward(&[
        "add",
        &unsigned,
        "--plugins",
        plugins,
        "--key",
        public.to_str().unwrap(),
    ]));
    assert!(out.contains("is not signed"), "{out}");
    assert!(empty(&dir));
    // --key of someone else: refused.
    let out = failed(&ward(&[
        "add",
        &signed,
        "--plugins",
        plugins,
        "--key",
        other_public.to_str().unwrap(),
    ]));
    assert!(out.contains("no valid signature by a trusted key"), "{out}");
    assert!(empty(&dir));

    // trust.toml requires signatures: unsigned refused without --key, signed accepted.
    std::fs::copy(&public, dir.path().join("team.pub")).unwrap();
    dir.file(
        "trust.toml",
        b"require-signatures = true\nkeys = [\"team.pub\"]\n",
    );
    let out = failed(&ward(&["add", &unsigned, "--plugins", plugins]));
    assert!(out.contains("is not signed"), "{out}");
    let out = failed(&ward(&[
        "add",
        file.to_str().unwrap(),
        "--plugins",
        plugins,
    ]));
    assert!(out.contains("a signature is required"), "{out}");
    assert!(!dir.path().join("hello.wasm").exists() && !dir.path().join("hello.toml").exists());
    ok(&ward(&["add", &signed, "--plugins", plugins]));
    assert!(ward_check(dir.path()).status.success());

    // A plugin dropped in by hand is not loaded under require-signatures.
    dir.plugin("hello", "dropped");
    let out = failed(&ward_check(dir.path()));
    assert!(
        out.contains("requires signatures, and dropped.toml pins no"),
        "{out}"
    );
}

/// The attack: a valid signature of one artifact, copied under another
/// artifact's `.sig` tag, must not vouch for it.
#[tokio::test]
async fn a_signature_copied_from_another_artifact_does_not_verify() {
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let (private, public) = keypair(work.path(), "team");
    let good = hello_with_manifest(work.path(), "1.0", None);
    let evil = hello_with_manifest(work.path(), "6.6.6", Some("evil.example:443"));
    let digest_of = |out: &str| {
        out.split('@')
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    };
    let out = ok(&ward(&[
        "publish",
        good.to_str().unwrap(),
        &registry.reference("team/hello:1.0"),
        "--sign",
        private.to_str().unwrap(),
    ]));
    let good_digest = digest_of(&out);
    let out = ok(&ward(&[
        "publish",
        evil.to_str().unwrap(),
        &registry.reference("team/hello:1.1"),
    ]));
    let evil_digest = digest_of(&out);

    // Copy the good signature manifest under the evil artifact's .sig tag.
    let http = reqwest::Client::new();
    let base = format!("http://{}/v2/team/hello/manifests", registry.addr);
    let accept = "application/vnd.oci.image.manifest.v1+json";
    let sig = http
        .get(format!("{base}/{}.sig", good_digest.replace(':', "-")))
        .header("Accept", accept)
        .send()
        .await
        .unwrap();
    assert!(sig.status().is_success());
    let body = sig.bytes().await.unwrap();
    let put = http
        .put(format!("{base}/{}.sig", evil_digest.replace(':', "-")))
        .header("Content-Type", accept)
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "{}", put.status());

    let dir = Dir::new();
    let out = failed(&ward(&[
        "add",
        &registry.reference("team/hello:1.1"),
        "--plugins",
        dir.path().to_str().unwrap(),
        "--key",
        public.to_str().unwrap(),
    ]));
    assert!(out.contains("of another artifact"), "{out}");
    assert!(!dir.path().join("hello.wasm").exists());
}

#[tokio::test]
async fn upgrade_shows_changes_needs_consent_and_a_signature_and_grants_nothing_new() {
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let (private, public) = keypair(work.path(), "team");
    let v1 = hello_with_manifest(work.path(), "1.0", None);
    let v2 = hello_with_manifest(work.path(), "1.1", Some("new.example.com:443"));
    let key = private.to_str().unwrap();
    ok(&ward(&[
        "publish",
        v1.to_str().unwrap(),
        &registry.reference("team/hello:1.0"),
        "--sign",
        key,
    ]));
    let dir = Dir::new();
    let plugins = dir.path().to_str().unwrap();
    ok(&ward(&[
        "add",
        &registry.reference("team/hello:1.0"),
        "--plugins",
        plugins,
        "--key",
        public.to_str().unwrap(),
        "--grant-requested",
    ]));
    let before = std::fs::read_to_string(dir.path().join("hello.toml")).unwrap();

    let out = ok(&ward(&[
        "upgrade",
        "hello",
        "--plugins",
        plugins,
        "--key",
        public.to_str().unwrap(),
    ]));
    assert!(out.contains("up to date"), "{out}");

    // 1.1 unsigned: the signed plugin's upgrade needs a signature.
    ok(&ward(&[
        "publish",
        v2.to_str().unwrap(),
        &registry.reference("team/hello:1.1"),
    ]));
    let out = failed(&ward(&[
        "upgrade",
        "hello",
        "--plugins",
        plugins,
        "--yes",
        "--key",
        public.to_str().unwrap(),
    ]));
    assert!(out.contains("is not signed"), "{out}");
    let out = failed(&ward(&["upgrade", "hello", "--plugins", plugins, "--yes"]));
    assert!(out.contains("no key is given"), "{out}");

    // Signed now: without --yes (stdin is not a terminal) it only shows.
    ok(&ward(&[
        "publish",
        v2.to_str().unwrap(),
        &registry.reference("team/hello:1.1"),
        "--sign",
        key,
    ]));
    let out = failed(&ward(&[
        "upgrade",
        "hello",
        "--plugins",
        plugins,
        "--key",
        public.to_str().unwrap(),
    ]));
    assert!(
        out.contains("+ request network   new.example.com:443"),
        "{out}"
    );
    assert!(out.contains("NOT granted"), "{out}");
    assert!(out.contains("--yes"), "{out}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("hello.toml")).unwrap(),
        before
    );
    assert_eq!(sha256_hex(&dir.path().join("hello.wasm")), sha256_hex(&v1));

    let out = ok(&ward(&[
        "upgrade",
        "hello",
        "--plugins",
        plugins,
        "--key",
        public.to_str().unwrap(),
        "--yes",
    ]));
    assert!(out.contains("upgraded"), "{out}");
    let after = std::fs::read_to_string(dir.path().join("hello.toml")).unwrap();
    assert!(
        after.contains(&registry.reference("team/hello:1.1")),
        "{after}"
    );
    assert!(after.contains(&sha256_hex(&v2)), "{after}");
    assert!(
        after.contains("allow = [\"api.example.com:443\"]") && !after.contains("new.example.com"),
        "nothing new granted: {after}"
    );
    assert_eq!(sha256_hex(&dir.path().join("hello.wasm")), sha256_hex(&v2));
    assert!(ward_check(dir.path()).status.success());
}
