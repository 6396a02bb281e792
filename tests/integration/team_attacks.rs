//! Attacks on ward as a team service (`docs/team.md`) that succeeded
//! against its first version, kept as tests: each states the guarantee it
//! broke, and passes since the hole was closed.

use rmcp::model::{
    ClientCapabilities, ClientConfig, Implementation, ListRootsResult, ProtocolVersion,
    ReadResourceRequestParams, ResourceContents, Root,
};
use rmcp::service::{RequestContext, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{ClientHandler, ErrorData, RoleClient, ServiceExt};
use serde_json::{json, Value};
use tokio::process::Child;

use crate::jwt::{claims, jwks, Signer};
use crate::util::{repo, serve_command, spawn_http, Dir, Log};

/// A legacy client whose `roots/list` answers with its own root.
#[derive(Clone)]
struct RootsClient {
    root: &'static str,
}

impl ClientHandler for RootsClient {
    fn get_info(&self) -> ClientConfig {
        let mut info = ClientConfig::new(
            ClientCapabilities::builder().enable_roots().build(),
            Implementation::new("ward-attacks", "0"),
        );
        info.protocol_version = ProtocolVersion::V_2025_11_25;
        info
    }

    async fn list_roots(
        &self,
        _: RequestContext<RoleClient>,
    ) -> Result<ListRootsResult, ErrorData> {
        Ok(ListRootsResult::new(vec![Root::new(self.root)]))
    }
}

async fn connect(
    url: &str,
    token: String,
    root: &'static str,
) -> RunningService<RoleClient, RootsClient> {
    let config = StreamableHttpClientTransportConfig::with_uri(url.to_owned()).auth_header(token);
    RootsClient { root }
        .serve(StreamableHttpClientTransport::from_config(config))
        .await
        .expect("initialize")
}

/// The text of a resource read, and its `_meta`.
async fn read(client: &RunningService<RoleClient, RootsClient>, uri: &str) -> (String, Value) {
    let result = client
        .read_resource(ReadResourceRequestParams::new(uri))
        .await
        .unwrap();
    let text = match &result.contents[0] {
        ResourceContents::TextResourceContents { text, .. } => text.clone(),
        other => panic!("expected text, got {other:?}"),
    };
    (text, serde_json::to_value(&result.meta).unwrap())
}

/// `ward serve --http` on `dir`, trusting one fresh EC key (kid `k1`): the
/// process, its URL and log, the key's signer, and the key's directory.
async fn jwt_ward(dir: &Dir) -> (Child, String, Log, Signer, tempfile::TempDir) {
    let keys = tempfile::tempdir().unwrap();
    let signer = Signer::new(keys.path(), "ec", Some("k1"));
    let jwks_file = keys.path().join("jwks.json");
    std::fs::write(&jwks_file, jwks(&[&signer])).unwrap();
    let mut cmd = serve_command(dir.path());
    cmd.args([
        "--http",
        "127.0.0.1:0",
        "--jwt-issuer",
        crate::jwt::ISSUER,
        "--jwt-jwks",
    ])
    .arg(&jwks_file)
    .env_remove("WARD_AUTH_TOKEN");
    let (child, url, log) = spawn_http(cmd).await;
    (child, url, log, signer, keys)
}

// BREAKS: "[cache] ... an answer never reaches a caller with other scopes /
// only successful answers are kept, never those of an input-required retry"
// (docs/team.md). Over a legacy (2025-11-25) session a plugin asks the
// client itself (roots/list, elicitation, sampling) through `LegacyClient`,
// `cx.pin` is None, so `Registry::cache_key` keys the answer on scopes only
// and `read_resource` caches an answer built from caller A's client data.
// Caller B (another subject, same scopes) is served A's roots from the
// cache, and B's own client is never asked.
#[tokio::test]
async fn a_cached_answer_built_from_one_clients_answers_reaches_another_caller() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = Dir::new();
    dir.plugin("conformance", "conformance");
    let policy =
        std::fs::read_to_string(repo().join("plugins/conformance/conformance.toml")).unwrap();
    dir.policy("conformance", &format!("{policy}\n[cache]\nttl = \"1h\"\n"));
    let (_ward, url, log, signer, _keys) = jwt_ward(&dir).await;
    let token = |sub: &str| {
        let mut c = claims(&url);
        c["sub"] = json!(sub);
        c["client_id"] = json!(format!("{sub}-laptop"));
        c["scope"] = json!("team");
        signer.sign(Some("k1"), &c)
    };

    let alice = connect(&url, token("alice"), "file:///home/alice/payroll-2027").await;
    let (text, _) = read(&alice, "test://with-client-roots").await;
    assert_eq!(
        text,
        "Client roots: file:///home/alice/payroll-2027",
        "{}",
        log.get()
    );

    let bob = connect(&url, token("bob"), "file:///home/bob/notes").await;
    let (text, meta) = read(&bob, "test://with-client-roots").await;
    assert!(
        !text.contains("alice"),
        "bob was served alice's roots from the cache (meta {meta}): {text}"
    );
    assert_eq!(text, "Client roots: file:///home/bob/notes");
    alice.cancel().await.unwrap();
    bob.cancel().await.unwrap();
}

/// One stateless tools/call of `hello_greet` with `token`: the HTTP status.
async fn greet_status(url: &str, token: &str) -> u16 {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "hello_greet",
        "arguments": {"name": "Ada"},
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
        }
    }});
    reqwest::Client::new()
        .post(url)
        .bearer_auth(token)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "hello_greet")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

// BREAKS: "[limits] rate ... per caller ... so one client flooding a plugin
// cannot use up another's share" (docs/team.md, service/rate.rs). The bucket
// key (`registry::rate_key`) is the bare `sub`, else the bare client id: a
// token for another client whose client id equals a user's subject (and no
// `sub`, as client-credentials tokens of some issuers have) takes from that
// user's bucket and locks the user out.
#[tokio::test]
async fn a_client_id_equal_to_a_subject_drains_that_callers_bucket() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = Dir::new();
    dir.plugin("hello", "hello");
    dir.policy("hello", "[limits]\nrate = \"2/h\"\n");
    let (_ward, url, _log, signer, _keys) = jwt_ward(&dir).await;

    let mut victim = claims(&url);
    victim["sub"] = json!("alice");
    victim["client_id"] = json!("alices-laptop");
    let victim = signer.sign(Some("k1"), &victim);
    let mut service = claims(&url);
    service.as_object_mut().unwrap().remove("sub");
    service["client_id"] = json!("alice");
    let service = signer.sign(Some("k1"), &service);

    for _ in 0..2 {
        assert_eq!(greet_status(&url, &service).await, 200);
    }
    assert_eq!(
        greet_status(&url, &victim).await,
        200,
        "alice never called, yet her bucket is empty: the client `alice` used it"
    );
}

/// A legacy client that records the log messages it is sent.
#[derive(Clone)]
struct LogClient {
    tx: tokio::sync::mpsc::UnboundedSender<String>,
}

impl ClientHandler for LogClient {
    fn get_info(&self) -> ClientConfig {
        let mut info = ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("ward-attacks", "0"),
        );
        info.protocol_version = ProtocolVersion::V_2025_11_25;
        info
    }

    async fn on_logging_message(
        &self,
        p: rmcp::model::LoggingMessageNotificationParam,
        _: rmcp::service::NotificationContext<RoleClient>,
    ) {
        let _ = self.tx.send(p.data.to_string());
    }
}

// BREAKS: "Items it may not use are absent from its tools/list ..." and
// "Values never appear in ... logs or errors" in spirit (docs/team.md): a
// plugin's load failure is broadcast (`watch.rs`, `server::apply`:
// `ServerEvent::Log`) to every legacy session, whatever the caller's
// scopes. A caller holding no scope at all learns the name of a plugin it
// may not see, its policy keys and the paths of its secrets.
#[tokio::test]
async fn a_hidden_plugins_load_failure_is_told_to_callers_without_its_scopes() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = Dir::new();
    dir.plugin("hello", "hello").plugin("hello", "payroll");
    dir.policy("payroll", "[access]\nscopes = [\"payroll:admin\"]\n");
    let (_ward, url, log, signer, _keys) = jwt_ward(&dir).await;
    let mut c = claims(&url);
    c["sub"] = json!("intern");
    c["scope"] = json!("");
    let token = signer.sign(Some("k1"), &c);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let config = StreamableHttpClientTransportConfig::with_uri(url.clone()).auth_header(token);
    let intern = LogClient { tx }
        .serve(StreamableHttpClientTransport::from_config(config))
        .await
        .expect("initialize");
    let tools = intern.list_all_tools().await.unwrap();
    assert!(
        tools.iter().all(|t| !t.name.starts_with("payroll")),
        "{tools:?}"
    );

    // The operator breaks payroll's policy; the old version keeps serving.
    dir.policy(
        "payroll",
        "[access]\nscopes = [\"payroll:admin\"]\n[env]\nDB_PASSWORD = { from-file = \"/run/secrets/payroll-db-password\" }\n",
    );
    assert!(log.wait_for("failed to load", 30).await, "{}", log.get());
    let told = tokio::time::timeout(std::time::Duration::from_secs(3), rx.recv())
        .await
        .ok()
        .flatten()
        .unwrap_or_default();
    assert!(
        !told.contains("payroll"),
        "a caller without payroll:admin was told: {told}"
    );
    intern.cancel().await.unwrap();
}
