//! Tasks (the `io.modelcontextprotocol/tasks` extension of MCP 2026-07-28):
//! a tool call that becomes a task, polled with `tasks/get`, cancelled with
//! `tasks/cancel` (which stops the guest), and answered with `tasks/update`;
//! over HTTP with raw JSON-RPC, as a 2026-07-28 client speaks it.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::process::Child;

use crate::util::{repo, serve_command, spawn_http, Dir, Log};

const TASKS: &str = "io.modelcontextprotocol/tasks";

/// `ward serve --http` on the conformance plugin (unprefixed names).
struct TaskWard {
    _child: Child,
    url: String,
    log: Log,
    _dir: Dir,
}

impl TaskWard {
    async fn start() -> Self {
        Self::start_with_policy("").await
    }

    /// With `extra` added to the plugin's example policy.
    async fn start_with_policy(extra: &str) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = Dir::new();
        let policy =
            std::fs::read_to_string(repo().join("plugins/conformance/conformance.toml")).unwrap();
        dir.plugin("conformance", "conformance")
            .policy("conformance", &format!("{policy}\n{extra}"));
        let mut cmd = serve_command(dir.path());
        cmd.args(["--http", "127.0.0.1:0"])
            .env_remove("WARD_AUTH_TOKEN");
        let (child, url, log) = spawn_http(cmd).await;
        Self {
            _child: child,
            url,
            log,
            _dir: dir,
        }
    }

    /// One 2026-07-28 request from a client that declares `capabilities`:
    /// the HTTP status and the JSON-RPC answer.
    async fn request(&self, method: &str, mut params: Value, capabilities: Value) -> (u16, Value) {
        params["_meta"] = json!({
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": capabilities,
            "io.modelcontextprotocol/clientInfo": {"name": "tasks-test", "version": "0"},
        });
        // The routing header: a tool's name, a task's id.
        let name = params
            .get("name")
            .or_else(|| params.get("taskId"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let mut request = reqwest::Client::new()
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", method);
        if let Some(name) = name {
            request = request.header("mcp-name", name);
        }
        let response = request.body(body.to_string()).send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let answer = text
            .lines()
            .map(|line| line.strip_prefix("data:").unwrap_or(line).trim())
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .find(|v| v.get("id").is_some())
            .unwrap_or_else(|| panic!("no JSON-RPC answer in {text:?}"));
        (status, answer)
    }

    /// A request from a client that declares the extension (and elicitation);
    /// its result.
    async fn call(&self, method: &str, params: Value) -> Value {
        let (status, answer) = self.request(method, params, tasks_client()).await;
        assert_eq!(status, 200, "{answer}");
        answer
            .get("result")
            .cloned()
            .unwrap_or_else(|| panic!("{method} failed: {answer}"))
    }

    /// Starts `tool` and returns its task id.
    async fn start_task(&self, tool: &str, arguments: Value) -> String {
        let created = self
            .call("tools/call", json!({"name": tool, "arguments": arguments}))
            .await;
        assert_eq!(created["resultType"], "task", "{created}");
        assert_eq!(created["ttlMs"], 3_600_000, "{created}");
        created["taskId"].as_str().unwrap().to_owned()
    }

    /// The tool result a `tools/call` answered: at once, or through its
    /// task (the server decides; a fast call is usually answered at once).
    async fn outcome(&self, answered: Value) -> Value {
        match answered["resultType"].as_str() {
            Some("task") => {
                let task = answered["taskId"].as_str().unwrap();
                self.poll(task, status_is("completed")).await["result"].clone()
            }
            _ => answered,
        }
    }

    /// `tasks/get` until `done` holds (at most 20 s); the last answer.
    async fn poll(&self, task: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let got = self.call("tasks/get", json!({"taskId": task})).await;
            assert_eq!(got["resultType"], "complete", "{got}");
            assert_eq!(got["taskId"], task, "{got}");
            if done(&got) {
                return got;
            }
            assert!(Instant::now() < deadline, "task {task} is still {got}");
            // The client's own pace: ward suggests pollIntervalMs.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn tasks_client() -> Value {
    json!({"elicitation": {}, "extensions": {TASKS: {}}})
}

fn status_is(status: &'static str) -> impl Fn(&Value) -> bool {
    move |task| task["status"] == status
}

fn text(result: &Value) -> String {
    result["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn a_slow_call_becomes_a_task_that_is_polled_cancelled_and_answered() {
    let ward = TaskWard::start().await;

    // The extension is declared to 2026-07-28 clients.
    let discovered = ward.call("server/discover", json!({})).await;
    assert!(
        discovered["capabilities"]["extensions"][TASKS].is_object(),
        "{discovered}"
    );

    // A slow call becomes a task; polled until done, it holds the result.
    let started = Instant::now();
    let task = ward
        .start_task("slow_compute", json!({"seconds": 1.5, "label": "polled"}))
        .await;
    // Answered long before the call ends.
    assert!(
        started.elapsed() < Duration::from_millis(1400),
        "{:?}",
        started.elapsed()
    );
    let working = ward.call("tasks/get", json!({"taskId": task})).await;
    assert_eq!(working["status"], "working", "{working}");
    let done = ward.poll(&task, status_is("completed")).await;
    assert_eq!(text(&done["result"]), "Computed polled in 1.5 s", "{done}");
    assert!(done.get("error").is_none(), "{done}");

    // A fast call needs no task: its result comes at once (unless the
    // machine is so busy that it took longer than ward waits).
    let quick = ward
        .call(
            "tools/call",
            json!({"name": "slow_compute", "arguments": {"seconds": 0, "label": "quick"}}),
        )
        .await;
    assert_eq!(text(&ward.outcome(quick).await), "Computed quick in 0 s");

    // Cancelled mid-run, the task is cancelled promptly and its guest stopped.
    let task = ward
        .start_task("slow_compute", json!({"seconds": 60, "label": "cancelled"}))
        .await;
    let stops_before = ward.log.get().matches("cancelled by the client").count();
    let cancelling = Instant::now();
    let ack = ward.call("tasks/cancel", json!({"taskId": task})).await;
    assert_eq!(ack, json!({"resultType": "complete"}));
    let cancelled = ward.poll(&task, status_is("cancelled")).await;
    assert!(cancelled.get("result").is_none(), "{cancelled}");
    assert!(
        cancelling.elapsed() < Duration::from_secs(5),
        "cancelled after {:?}",
        cancelling.elapsed()
    );
    let stopped = ward
        .log
        .wait_until(10, |log| {
            log.matches("call failed: cancelled by the client").count() > stops_before
        })
        .await;
    assert!(
        stopped,
        "the guest was not interrupted; log:\n{}",
        ward.log.get()
    );
    // Cancelling an ended task is acknowledged the same way.
    let again = ward.call("tasks/cancel", json!({"taskId": task})).await;
    assert_eq!(again, json!({"resultType": "complete"}));

    // The guest's question is the task's input request, answered by tasks/update.
    let task = ward
        .start_task("confirm_delete", json!({"filename": "notes.txt"}))
        .await;
    let waiting = ward.poll(&task, status_is("input_required")).await;
    let requests = waiting["inputRequests"].as_object().unwrap();
    assert_eq!(requests.len(), 1, "{waiting}");
    let (key, asked) = requests.iter().next().unwrap();
    assert_eq!(asked["method"], "elicitation/create", "{waiting}");
    assert_eq!(asked["params"]["message"], "Delete notes.txt?", "{waiting}");
    let ack = ward
        .call(
            "tasks/update",
            json!({"taskId": task, "inputResponses": {
                "not-asked": {"action": "decline"},
                key: {"action": "accept", "content": {"confirm": true}},
            }}),
        )
        .await;
    assert_eq!(ack, json!({"resultType": "complete"}));
    let done = ward.poll(&task, status_is("completed")).await;
    assert_eq!(text(&done["result"]), "Deleted notes.txt", "{done}");

    // Unknown ids are invalid params.
    let (_, unknown) = ward
        .request(
            "tasks/get",
            json!({"taskId": "no-such-task"}),
            tasks_client(),
        )
        .await;
    assert_eq!(unknown["error"]["code"], -32602, "{unknown}");
}

#[tokio::test]
async fn tasks_follow_what_the_client_declared() {
    let ward = TaskWard::start().await;
    let plain = json!({"elicitation": {}});

    // Without the extension a tool that may be a task is an ordinary call...
    let (status, answer) = ward
        .request(
            "tools/call",
            json!({"name": "slow_compute", "arguments": {"seconds": 0.5, "label": "plain"}}),
            plain.clone(),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        text(&answer["result"]),
        "Computed plain in 0.5 s",
        "{answer}"
    );
    // ...one that must be a task is refused, naming the extension...
    let (status, answer) = ward
        .request(
            "tools/call",
            json!({"name": "failing_job", "arguments": {}}),
            plain.clone(),
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["code"], -32021, "{answer}");
    assert!(
        answer["error"]["data"]["requiredCapabilities"]["extensions"][TASKS].is_object(),
        "{answer}"
    );
    // ...and tasks/* need it too.
    let (_, answer) = ward
        .request("tasks/get", json!({"taskId": "any"}), plain.clone())
        .await;
    assert_eq!(answer["error"]["code"], -32021, "{answer}");

    // A tool error is a completed task with isError; a protocol error
    // inside a task (asking for roots the client did not declare) fails it.
    let task = ward.start_task("failing_job", json!({})).await;
    let done = ward.poll(&task, |t| t["status"] != "working").await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["result"]["isError"], true, "{done}");
    let task = ward.start_task("protocol_error_job", json!({})).await;
    let failed = ward.poll(&task, |t| t["status"] != "working").await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["error"]["code"], -32021, "{failed}");
    assert!(failed.get("result").is_none(), "{failed}");

    // A before-task question is an input-required result; once answered,
    // the call goes on as a task that knows the answer.
    let first = ward
        .call(
            "tools/call",
            json!({"name": "test_tool_with_task", "arguments": {}}),
        )
        .await;
    assert_eq!(first["resultType"], "input_required", "{first}");
    assert!(first.get("taskId").is_none(), "{first}");
    assert_eq!(
        first["inputRequests"]["user_name"]["method"],
        "elicitation/create"
    );
    let second = ward
        .call(
            "tools/call",
            json!({
                "name": "test_tool_with_task",
                "arguments": {},
                "requestState": first["requestState"],
                "inputResponses": {"user_name": {"action": "accept", "content": {"name": "Alice"}}},
            }),
        )
        .await;
    assert_eq!(second["resultType"], "task", "{second}");
    assert!(second.get("requestState").is_none(), "{second}");
    let task = second["taskId"].as_str().unwrap();
    let done = ward.poll(task, status_is("completed")).await;
    assert_eq!(
        text(&done["result"]),
        "Hello, Alice! (from a task)",
        "{done}"
    );

    // Two questions at once wait together; answered one by one.
    let task = ward.start_task("multi_input", json!({})).await;
    let both = ward
        .poll(&task, |t| {
            t["inputRequests"]
                .as_object()
                .is_some_and(|requests| requests.len() == 2)
        })
        .await;
    let answer = |key: &str| match key {
        "name" => json!({"action": "accept", "content": {"name": "Ada"}}),
        _ => json!({"action": "accept", "content": {"ok": true}}),
    };
    let keys: Vec<String> = both["inputRequests"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    ward.call(
        "tasks/update",
        json!({"taskId": task, "inputResponses": {(&keys[0]): answer(&keys[0])}}),
    )
    .await;
    let one_left = ward.call("tasks/get", json!({"taskId": task})).await;
    assert_eq!(one_left["status"], "input_required", "{one_left}");
    let left: Vec<&String> = one_left["inputRequests"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(left, [&keys[1]], "{one_left}");
    ward.call(
        "tasks/update",
        json!({"taskId": task, "inputResponses": {(&keys[1]): answer(&keys[1])}}),
    )
    .await;
    let done = ward.poll(&task, status_is("completed")).await;
    assert_eq!(
        text(&done["result"]),
        "name=Ada, confirmation=accept",
        "{done}"
    );
}

#[tokio::test]
async fn a_task_is_admitted_like_any_call_and_polling_costs_nothing() {
    // Two calls an hour: a task is one of them; polling it is none.
    let ward = TaskWard::start_with_policy("[limits]\nrate = \"2/h\"\n").await;
    let task = ward
        .start_task("slow_compute", json!({"seconds": 1, "label": "limited"}))
        .await;
    ward.poll(&task, status_is("completed")).await;
    let quick = ward
        .call(
            "tools/call",
            json!({"name": "slow_compute", "arguments": {"seconds": 0}}),
        )
        .await;
    ward.outcome(quick).await;
    let (status, refused) = ward
        .request(
            "tools/call",
            json!({"name": "slow_compute", "arguments": {"seconds": 1}}),
            tasks_client(),
        )
        .await;
    assert_eq!(status, 429, "{refused}");
    assert_eq!(refused["error"]["code"], -32029, "{refused}");
}
