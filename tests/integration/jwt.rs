//! `ward serve --http --jwt-*`: OAuth 2.1 access tokens (JWTs) checked
//! against a JWKS file or URL, the protected resource metadata (RFC 9728),
//! the 401 challenges, and the caller in the audit log (issue 13). Keys are
//! made by `openssl` for each run; tokens are signed with `jsonwebtoken`.

use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rmcp::model::{ClientCapabilities, ClientConfig, Implementation, ProtocolVersion};
use rmcp::service::{ClientLifecycleMode, ClientServiceExt};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::ServiceExt;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Child;

use crate::util::{obj, serve_command, spawn_http, text, Dir, Era, Log};

pub(crate) const ISSUER: &str = "https://idp.example/";

const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}}"#;

/// A signing key and its public JWK.
pub(crate) struct Signer {
    key: EncodingKey,
    alg: Algorithm,
    jwk: Value,
}

impl Signer {
    /// A fresh key made by `openssl genpkey` in `dir`: `kind` is `rsa`,
    /// `ec` (P-256) or `ed25519`.
    pub(crate) fn new(dir: &Path, kind: &str, kid: Option<&str>) -> Self {
        let pem = dir.join(format!("{kind}-{}.pem", kid.unwrap_or("none")));
        let args: &[&str] = match kind {
            "rsa" => &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
            "ec" => &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
            _ => &["-algorithm", "ed25519"],
        };
        let status = std::process::Command::new("openssl")
            .arg("genpkey")
            .args(args)
            .arg("-out")
            .arg(&pem)
            .stderr(Stdio::null())
            .status()
            .expect("openssl (to make test keys)");
        assert!(status.success(), "openssl genpkey {kind}");
        let bytes = std::fs::read(&pem).unwrap();
        let (key, alg) = match kind {
            "rsa" => (EncodingKey::from_rsa_pem(&bytes).unwrap(), Algorithm::RS256),
            "ec" => (EncodingKey::from_ec_pem(&bytes).unwrap(), Algorithm::ES256),
            _ => (EncodingKey::from_ed_pem(&bytes).unwrap(), Algorithm::EdDSA),
        };
        let mut jwk = Jwk::from_encoding_key(&key, alg).unwrap();
        jwk.common.key_id = kid.map(str::to_owned);
        let jwk = serde_json::to_value(jwk).unwrap();
        Self { key, alg, jwk }
    }

    /// A token with `claims`, naming `kid` in its header.
    pub(crate) fn sign(&self, kid: Option<&str>, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = kid.map(str::to_owned);
        jsonwebtoken::encode(&header, claims, &self.key).unwrap()
    }
}

pub(crate) fn jwks(signers: &[&Signer]) -> String {
    json!({"keys": signers.iter().map(|s| s.jwk.clone()).collect::<Vec<_>>()}).to_string()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Claims of a good token for `audience`.
pub(crate) fn claims(audience: &str) -> Value {
    json!({
        "iss": ISSUER,
        "aud": [audience, "https://other.example/"],
        "sub": "ada",
        "client_id": "cli-1",
        "scope": "tools:call files:read",
        "iat": now(),
        "exp": now() + 600,
    })
}

/// A `ward serve --http 127.0.0.1:0` with `args`.
struct JwtWard {
    _child: Child,
    url: String,
    log: Log,
}

impl JwtWard {
    async fn start(dir: &Dir, args: &[&str]) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut cmd = serve_command(dir.path());
        cmd.args(["--http", "127.0.0.1:0"])
            .args(args)
            .env_remove("WARD_AUTH_TOKEN");
        let (child, url, log) = spawn_http(cmd).await;
        Self {
            _child: child,
            url,
            log,
        }
    }

    /// A ward checking tokens for `audience` against the JWKS at `url`.
    async fn with_jwks_url(dir: &Dir, audience: &str, url: &str, more: &[&str]) -> Self {
        let mut args = vec![
            "--jwt-issuer",
            ISSUER,
            "--jwt-audience",
            audience,
            "--jwt-jwks",
            url,
        ];
        args.extend_from_slice(more);
        Self::start(dir, &args).await
    }

    fn base(&self) -> &str {
        self.url.trim_end_matches("/mcp")
    }

    /// A raw `initialize` POST with `Authorization: Bearer token`, if any.
    async fn post(&self, token: Option<&str>) -> reqwest::Response {
        let mut request = reqwest::Client::new()
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream");
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.body(INIT).send().await.unwrap()
    }

    /// Asserts that `token` is refused with `invalid_token` and a
    /// description containing `why`.
    async fn refused(&self, token: &str, why: &str) {
        let response = self.post(Some(token)).await;
        assert_eq!(response.status(), 401, "{why}");
        let challenge = response.headers()["www-authenticate"].to_str().unwrap();
        assert!(
            challenge.starts_with("Bearer error=\"invalid_token\", error_description=\""),
            "{challenge}"
        );
        assert!(challenge.contains(why), "{why}: {challenge}");
        assert!(challenge.contains("resource_metadata=\""), "{challenge}");
    }

    /// Lists tools and calls `hello_greet` with rmcp's client, in `era`.
    async fn greet(&self, era: Era, token: &str) {
        let config = StreamableHttpClientTransportConfig::with_uri(self.url.clone())
            .auth_header(token.to_owned());
        let transport = StreamableHttpClientTransport::from_config(config);
        let mut info = ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("ward-jwt-tests", "0"),
        );
        let client = match era {
            Era::Legacy(_) => {
                info.protocol_version = ProtocolVersion::V_2025_11_25;
                info.serve(transport).await.expect("initialize")
            }
            Era::Modern => info
                .serve_with_lifecycle(
                    transport,
                    ClientLifecycleMode::Discover {
                        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
                    },
                )
                .await
                .expect("discover"),
        };
        let tools = client.list_all_tools().await.unwrap();
        assert!(tools.iter().any(|t| t.name == "hello_greet"), "{era:?}");
        let result = client
            .call_tool(
                rmcp::model::CallToolRequestParams::new("hello_greet")
                    .with_arguments(obj(json!({"name": "Ada"}))),
            )
            .await
            .unwrap();
        assert!(text(&result).contains("Ada"), "{era:?}");
        client.cancel().await.unwrap();
    }
}

async fn get_json(url: &str) -> (reqwest::StatusCode, Value) {
    let response = reqwest::get(url).await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The audit records in `path` once one satisfies `done` (within 20 s).
/// The audit writer signals nothing when it writes, so this reads the file
/// itself until the record is there; the sleep only paces the re-reads.
async fn audit_until(path: &Path, done: impl Fn(&Value) -> bool) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let records: Vec<Value> = std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect();
        if records.iter().any(&done) || tokio::time::Instant::now() > deadline {
            return records;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn jwt_from_a_jwks_file() {
    let dir = Dir::new();
    dir.plugin("hello", "hello");
    let keys = tempfile::tempdir().unwrap();
    let rsa = Signer::new(keys.path(), "rsa", Some("rsa-1"));
    let ec = Signer::new(keys.path(), "ec", Some("ec-1"));
    let ed = Signer::new(keys.path(), "ed25519", None);
    let forger = Signer::new(keys.path(), "rsa", Some("forger"));
    let jwks_file = keys.path().join("jwks.json");
    std::fs::write(&jwks_file, jwks(&[&rsa, &ec, &ed])).unwrap();
    let audit = keys.path().join("audit.jsonl");
    let ward = JwtWard::start(
        &dir,
        &[
            "--jwt-issuer",
            ISSUER,
            "--jwt-jwks",
            jwks_file.to_str().unwrap(),
            "--audit-log",
            audit.to_str().unwrap(),
        ],
    )
    .await;
    let metadata = format!("{}/.well-known/oauth-protected-resource/mcp", ward.base());

    // The protected resource metadata, at both paths; the default audience
    // is the URL ward is bound at.
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let (status, document) = get_json(&format!("{}{path}", ward.base())).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(document["resource"], ward.url.as_str(), "{document}");
        assert_eq!(document["authorization_servers"], json!([ISSUER]));
        assert_eq!(document["bearer_methods_supported"], json!(["header"]));
    }

    // No token: a challenge pointing at the metadata, no error code.
    let response = ward.post(None).await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["www-authenticate"].to_str().unwrap(),
        format!("Bearer resource_metadata=\"{metadata}\"")
    );

    // Good tokens of each algorithm; without a kid, every key of its
    // algorithm is tried.
    let audience = ward.url.clone();
    let good = rsa.sign(Some("rsa-1"), &claims(&audience));
    ward.greet(Era::Legacy("2025-11-25"), &good).await;
    ward.greet(Era::Modern, &ec.sign(Some("ec-1"), &claims(&audience)))
        .await;
    assert_eq!(
        ward.post(Some(&ed.sign(None, &claims(&audience))))
            .await
            .status(),
        200
    );
    assert_eq!(
        ward.post(Some(&rsa.sign(None, &claims(&audience))))
            .await
            .status(),
        200
    );

    // Bad tokens.
    // Tokens that are bad in one claim each.
    let edits: [(&str, fn(&mut Value)); 6] = [
        ("expired", |c| c["exp"] = json!(now() - 3600)),
        ("not valid yet", |c| c["nbf"] = json!(now() + 3600)),
        ("(aud)", |c| c["aud"] = json!("https://other.example/mcp")),
        ("no aud", |c| {
            c.as_object_mut().unwrap().remove("aud");
        }),
        ("(iss)", |c| c["iss"] = json!("https://evil.example/")),
        ("no exp", |c| {
            c.as_object_mut().unwrap().remove("exp");
        }),
    ];
    for (why, edit) in edits {
        let mut bad = claims(&audience);
        edit(&mut bad);
        ward.refused(&rsa.sign(Some("rsa-1"), &bad), why).await;
    }
    // Signed by another key under a trusted kid, or under no kid.
    ward.refused(&forger.sign(Some("rsa-1"), &claims(&audience)), "signature")
        .await;
    ward.refused(&forger.sign(None, &claims(&audience)), "signature")
        .await;
    ward.refused(&forger.sign(Some("forger"), &claims(&audience)), "kid")
        .await;
    // The EC key under the RSA key's kid, an HMAC token, garbage.
    ward.refused(&ec.sign(Some("rsa-1"), &claims(&audience)), "kid and alg")
        .await;
    let hmac = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(&audience),
        &EncodingKey::from_secret(b"a shared secret").unwrap(),
    )
    .unwrap();
    ward.refused(&hmac, "algorithm").await;
    ward.refused("not.a.jwt", "well-formed").await;

    // The audit log names the caller.
    let records = audit_until(&audit, |r| r["method"] == "tools/call").await;
    let call = records
        .iter()
        .find(|r| r["method"] == "tools/call" && r["client"]["name"] == "ward-jwt-tests")
        .unwrap_or_else(|| panic!("no tools/call record: {records:?}"));
    assert_eq!(call["transport"], "http");
    assert_eq!(
        call["client"]["auth"],
        json!({"subject": "ada", "clientId": "cli-1", "scopes": ["tools:call", "files:read"]})
    );
    // Refusals are logged with their reason, tokens never.
    let log = ward.log.get();
    assert!(log.contains("invalid access token"), "{log}");
    assert!(log.contains("the token has expired"), "{log}");
    assert!(!log.contains(&good), "a token reached the log");
    assert!(!std::fs::read_to_string(&audit).unwrap().contains(&good));
}

/// A JWKS served on loopback: what it serves now, and how often it was asked.
#[derive(Clone, Default)]
struct JwksServer {
    body: Arc<Mutex<String>>,
    hits: Arc<AtomicUsize>,
}

impl JwksServer {
    async fn start(body: String) -> (Self, String) {
        let server = Self::default();
        *server.body.lock().unwrap() = body;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
        let serving = server.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let server = serving.clone();
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    server.hits.fetch_add(1, Ordering::SeqCst);
                    let body = server.body.lock().unwrap().clone();
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                         content-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        (server, url)
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

#[tokio::test]
async fn jwt_from_a_jwks_url_refetched_for_a_new_kid() {
    let dir = Dir::new();
    dir.plugin("hello", "hello");
    let keys = tempfile::tempdir().unwrap();
    let old = Signer::new(keys.path(), "rsa", Some("old"));
    let new = Signer::new(keys.path(), "ec", Some("new"));
    let (jwks_server, jwks_url) = JwksServer::start(jwks(&[&old])).await;
    // ward's public URL, as behind an ingress.
    let audience = "https://ward.example/mcp";
    let ward = JwtWard::with_jwks_url(&dir, audience, &jwks_url, &[]).await;
    assert_eq!(jwks_server.hits(), 1, "fetched at start");
    let metadata = "https://ward.example/.well-known/oauth-protected-resource/mcp";
    let response = ward.post(None).await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["www-authenticate"].to_str().unwrap(),
        format!("Bearer resource_metadata=\"{metadata}\"")
    );
    let (status, document) = get_json(&format!(
        "{}/.well-known/oauth-protected-resource/mcp",
        ward.base()
    ))
    .await;
    assert_eq!(status, 200);
    assert_eq!(document["resource"], audience);

    assert_eq!(
        ward.post(Some(&old.sign(Some("old"), &claims(audience))))
            .await
            .status(),
        200
    );
    // The bound URL is not the audience when one is given.
    ward.refused(&old.sign(Some("old"), &claims(&ward.url)), "(aud)")
        .await;
    assert_eq!(jwks_server.hits(), 1, "known kids need no fetch");

    // The issuer rotates: a token with the new kid makes ward fetch again.
    *jwks_server.body.lock().unwrap() = jwks(&[&old, &new]);
    ward.greet(Era::Modern, &new.sign(Some("new"), &claims(audience)))
        .await;
    assert_eq!(jwks_server.hits(), 2);
    // Another unknown kid within 30 s: refused without a fetch.
    ward.refused(&new.sign(Some("newer"), &claims(audience)), "kid")
        .await;
    ward.refused(&new.sign(Some("newest"), &claims(audience)), "kid")
        .await;
    assert_eq!(jwks_server.hits(), 2, "re-fetches are rate-limited");
    assert_eq!(
        ward.post(Some(&old.sign(Some("old"), &claims(audience))))
            .await
            .status(),
        200
    );
}

/// The attack: the issuer removes a key (rotated out, or leaked and
/// revoked), and tokens it signed keep working, because ward fetched the
/// JWKS at start and after that only for unknown key ids. Now keys older than
/// `--jwt-jwks-max-age` are fetched again before a token is accepted.
#[tokio::test]
async fn a_key_the_issuer_removes_stops_verifying() {
    let dir = Dir::new();
    dir.plugin("hello", "hello");
    let keys = tempfile::tempdir().unwrap();
    let leaked = Signer::new(keys.path(), "rsa", Some("leaked"));
    let next = Signer::new(keys.path(), "ec", Some("next"));
    let (jwks_server, jwks_url) = JwksServer::start(jwks(&[&leaked, &next])).await;
    let audience = "https://ward.example/mcp";
    let ward =
        JwtWard::with_jwks_url(&dir, audience, &jwks_url, &["--jwt-jwks-max-age", "0"]).await;
    ward.greet(Era::Modern, &leaked.sign(Some("leaked"), &claims(audience)))
        .await;
    let fetched = jwks_server.hits();
    assert!(
        fetched >= 2,
        "keys older than the max age are fetched again"
    );

    // The issuer revokes the leaked key.
    *jwks_server.body.lock().unwrap() = jwks(&[&next]);
    ward.refused(&leaked.sign(Some("leaked"), &claims(audience)), "kid")
        .await;
    ward.greet(Era::Modern, &next.sign(Some("next"), &claims(audience)))
        .await;

    // An issuer that cannot be reached: the keys ward has serve on, and the
    // next attempt waits 30 s instead of every request fetching.
    *jwks_server.body.lock().unwrap() = "not a key set".into();
    let before = jwks_server.hits();
    for _ in 0..3 {
        ward.greet(Era::Modern, &next.sign(Some("next"), &claims(audience)))
            .await;
    }
    assert_eq!(jwks_server.hits(), before + 1);
    assert!(
        ward.log.wait_for("refreshing the JWKS failed", 20).await,
        "{}",
        ward.log.get()
    );
}

/// Runs `ward serve` with `args` expecting it to exit with an error; its stderr.
async fn start_fails(dir: &Dir, args: &[&str]) -> String {
    let mut cmd = serve_command(dir.path());
    cmd.args(["--http", "127.0.0.1:0"])
        .args(args)
        .env_remove("WARD_AUTH_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let output = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("ward exits")
        .unwrap();
    assert!(!output.status.success());
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn jwt_start_up_errors_and_the_static_token_caller() {
    let dir = Dir::new();
    dir.plugin("hello", "hello");
    let keys = tempfile::tempdir().unwrap();
    let bad = keys.path().join("bad-jwks.json");
    std::fs::write(
        &bad,
        "{\"keys\": [{\"kty\": \"oct\", \"k\": \"c2VjcmV0\"}]}",
    )
    .unwrap();
    let stderr = start_fails(
        &dir,
        &["--jwt-issuer", ISSUER, "--jwt-jwks", bad.to_str().unwrap()],
    )
    .await;
    assert!(stderr.contains(bad.to_str().unwrap()), "{stderr}");
    let missing = keys.path().join("missing.json");
    let stderr = start_fails(
        &dir,
        &[
            "--jwt-issuer",
            ISSUER,
            "--jwt-jwks",
            missing.to_str().unwrap(),
        ],
    )
    .await;
    assert!(stderr.contains("missing.json"), "{stderr}");
    let stderr = start_fails(
        &dir,
        &[
            "--jwt-issuer",
            ISSUER,
            "--jwt-jwks",
            "http://jwks.example/keys",
        ],
    )
    .await;
    assert!(stderr.contains("must be https"), "{stderr}");
    let token_file = keys.path().join("token.txt");
    std::fs::write(&token_file, "s3cret").unwrap();
    let stderr = start_fails(
        &dir,
        &[
            "--jwt-issuer",
            ISSUER,
            "--jwt-jwks",
            bad.to_str().unwrap(),
            "--auth-token-file",
            token_file.to_str().unwrap(),
        ],
    )
    .await;
    assert!(stderr.contains("cannot be used with"), "{stderr}");

    // The static token's requests carry a caller too.
    let audit = keys.path().join("audit.jsonl");
    let ward = JwtWard::start(
        &dir,
        &[
            "--auth-token-file",
            token_file.to_str().unwrap(),
            "--audit-log",
            audit.to_str().unwrap(),
        ],
    )
    .await;
    ward.greet(Era::Legacy("2025-11-25"), "s3cret").await;
    let records = audit_until(&audit, |r| r["method"] == "tools/call").await;
    let call = records
        .iter()
        .find(|r| r["method"] == "tools/call")
        .unwrap_or_else(|| panic!("no tools/call record: {records:?}"));
    assert_eq!(
        call["client"]["auth"],
        json!({"subject": "token", "clientId": null, "scopes": null})
    );
    // No metadata without JWT authentication.
    let status = reqwest::get(format!(
        "{}/.well-known/oauth-protected-resource",
        ward.base()
    ))
    .await
    .unwrap()
    .status();
    assert_eq!(status, 404);
}

/// A stateless (2026-07-28) request with a bearer token: the status, the
/// `WWW-Authenticate` header and the body.
async fn modern(url: &str, token: &str, method: &str, params: Value) -> (u16, String, String) {
    let mut params = params;
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    let mut request = reqwest::Client::new()
        .post(url)
        .bearer_auth(token)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", method);
    if let Some(name) = params["name"].as_str() {
        request = request.header("mcp-name", name);
    }
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params});
    let response = request.body(body.to_string()).send().await.unwrap();
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, challenge, response.text().await.unwrap())
}

#[tokio::test]
async fn scopes_in_the_token_decide_what_a_caller_sees_and_uses() {
    // The attack: a caller whose token lacks a tool's scope lists it and
    // calls it anyway. Its lists must not show it, and using it is a 403
    // insufficient_scope that names the scopes; the guest never runs.
    let dir = Dir::new();
    dir.plugin("hello", "hello").plugin("stats", "stats");
    dir.policy("hello", "[access]\nscopes = [\"tools:call\"]\n");
    dir.policy(
        "stats",
        "[access]\nscopes = [\"tools:call\"]\n[access.tools]\ndescribe = [\"stats:describe\"]\n",
    );
    let keys = tempfile::tempdir().unwrap();
    let ec = Signer::new(keys.path(), "ec", Some("ec-1"));
    let jwks_file = keys.path().join("jwks.json");
    std::fs::write(&jwks_file, jwks(&[&ec])).unwrap();
    let ward = JwtWard::start(
        &dir,
        &[
            "--jwt-issuer",
            ISSUER,
            "--jwt-jwks",
            jwks_file.to_str().unwrap(),
        ],
    )
    .await;
    let token = |scope: &str| {
        let mut claims = claims(&ward.url);
        claims["scope"] = json!(scope);
        ec.sign(Some("ec-1"), &claims)
    };
    let names = |body: &str| -> Vec<String> {
        let body: Value = body
            .lines()
            .map(|line| line.strip_prefix("data:").unwrap_or(line).trim())
            .find_map(|line| serde_json::from_str(line).ok())
            .unwrap_or_else(|| panic!("{body}"));
        body["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect()
    };

    let narrow = token("tools:call");
    let (status, _, body) = modern(&ward.url, &narrow, "tools/list", json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(names(&body), ["hello_greet"]);
    assert!(body.contains("\"cacheScope\":\"private\""), "{body}");
    let (status, challenge, body) = modern(
        &ward.url,
        &narrow,
        "tools/call",
        json!({"name": "stats_describe", "arguments": {"numbers": [1]}}),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        challenge.starts_with("Bearer error=\"insufficient_scope\", scope=\"tools:call stats:describe\", resource_metadata=\""),
        "{challenge}"
    );
    let (status, _, body) = modern(
        &ward.url,
        &narrow,
        "tools/call",
        json!({"name": "hello_greet", "arguments": {"name": "Ada"}}),
    )
    .await;
    assert_eq!(status, 200);
    assert!(body.contains("Hello, Ada!"), "{body}");

    // No scope at all: nothing listed, nothing usable.
    let none = token("");
    let (_, _, body) = modern(&ward.url, &none, "tools/list", json!({})).await;
    assert!(names(&body).is_empty(), "{body}");
    let (status, _, _) = modern(
        &ward.url,
        &none,
        "tools/call",
        json!({"name": "hello_greet", "arguments": {"name": "Ada"}}),
    )
    .await;
    assert_eq!(status, 403);

    // Both scopes: everything.
    let wide = token("stats:describe tools:call");
    let (_, _, body) = modern(&ward.url, &wide, "tools/list", json!({})).await;
    assert_eq!(names(&body), ["hello_greet", "stats_describe"]);
    let (status, _, body) = modern(
        &ward.url,
        &wide,
        "tools/call",
        json!({"name": "stats_describe", "arguments": {"numbers": [2]}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("mean 2"), "{body}");
}
