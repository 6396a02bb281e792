// ward example plugin `conformance`: the server fixture of the official MCP
// conformance suite (github.com/modelcontextprotocol/conformance, its
// "everything server"), as far as a plugin can go: everything but the
// transport-level scenarios, with sampling and elicitation through
// `ward_guest::client`. Texts mirror the fixture's.
//
//   cargo xtask plugins         # -> target/plugins/conformance.wasm + conformance.toml
//   ward serve --plugins target/plugins
//
// The example policy `conformance.toml` sets `[names] prefix = ""`, so the
// tools are exposed unprefixed (`test_simple_text`, not
// `conformance_test_simple_text`), as the suite expects.
use ward_guest::client;
use ward_guest::json::json;
use ward_guest::prelude::*;

/// A 1x1 red PNG (the fixture's image).
const PNG: &[u8] = include_bytes!("../assets/red-pixel.png");
/// A minimal valid WAV: 8 kHz mono 16-bit PCM, one silent sample.
const WAV: &[u8] = include_bytes!("../assets/silence.wav");

const WATCHED: &str = "test://watched-resource";

fn progress_tool() -> String {
    for step in [0.0, 50.0, 100.0] {
        progress(step, 100.0, format!("Completed step {step} of 100").as_str());
    }
    "Progress reporting completed: 0, 50 and 100 of 100".into()
}

fn logging_tool() -> String {
    for message in ["Tool execution started", "Tool processing data", "Tool execution completed"] {
        log(Level::Info, message);
    }
    "Tool with logging executed successfully".into()
}

fn multiple_content_types() -> Vec<Content> {
    vec![
        Content::text("Multiple content types test:"),
        Content::image(PNG, "image/png"),
        Content::embedded(ResourceContents::text(
            "test://mixed-content-resource",
            Some("application/json"),
            r#"{"test":"data","value":123}"#,
        )),
    ]
}

/// The fixture's JSON Schema 2020-12 input schema: `$defs`, `$ref` and
/// `additionalProperties` (SEP-1613), composition, conditionals and `$anchor`
/// (SEP-2106), none of which a derived schema expresses.
const SCHEMA_2020_12: &str = r##"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "$defs": {
    "address": {
      "$anchor": "addressDef",
      "type": "object",
      "properties": { "street": { "type": "string" }, "city": { "type": "string" } }
    }
  },
  "properties": {
    "name": { "type": "string" },
    "address": { "$ref": "#/$defs/address" },
    "contactMethod": { "type": "string", "enum": ["phone", "email"] },
    "phone": { "type": "string" },
    "email": { "type": "string" }
  },
  "allOf": [{ "anyOf": [{ "required": ["phone"] }, { "required": ["email"] }] }],
  "if": { "properties": { "contactMethod": { "const": "phone" } }, "required": ["contactMethod"] },
  "then": { "required": ["phone"] },
  "else": { "required": ["email"] },
  "additionalProperties": false
}"##;

fn json_schema_tool(args: ward_guest::json::Value) -> String {
    format!("JSON Schema 2020-12 tool called with: {args}")
}

#[derive(Deserialize, JsonSchema)]
struct TwoArgs {
    /// First test argument
    arg1: String,
    /// Second test argument
    arg2: String,
}

#[derive(Deserialize, JsonSchema)]
struct EmbedArgs {
    /// URI of the resource to embed
    #[serde(rename = "resourceUri")]
    resource_uri: String,
}

#[derive(Deserialize, JsonSchema)]
struct SamplingArgs {
    /// The prompt to send to the LLM
    prompt: String,
}

fn sampling_tool(a: SamplingArgs) -> Result<String> {
    Ok(format!("LLM response: {}", client::sample_text(&a.prompt, 100)?))
}

#[derive(Deserialize, JsonSchema)]
struct ElicitArgs {
    /// The message to show the user
    message: String,
}

fn elicitation_tool(a: ElicitArgs) -> Result<String> {
    let answer = client::elicit(&json!({
        "message": a.message,
        "requestedSchema": {
            "type": "object",
            "properties": {
                "username": {"type": "string", "description": "User's response"},
                "email": {"type": "string", "description": "User's email address"}
            },
            "required": ["username", "email"]
        }
    }))?;
    Ok(format!("User response: {answer}"))
}

// ----- input-required results (MCP 2026-07-28, SEP-2322) -----
//
// The same `ward_guest::client` calls as above: on a 2026-07-28 request ward
// turns each round of questions into an input-required result and replays
// the tool with the answers. The keys are the suite's.

/// An elicitation for one string field.
fn ask_for(key: &str, message: &str, field: &str) -> client::Input {
    client::Input::elicit(
        key,
        json!({
            "message": message,
            "requestedSchema": {
                "type": "object",
                "properties": { field: {"type": "string"} },
                "required": [field]
            }
        }),
    )
}

/// Asks one round and fails on the first error.
fn ask_all(inputs: &[client::Input]) -> Result<Vec<ward_guest::json::Value>> {
    client::ask(inputs).into_iter().collect()
}

/// The accepted content's `field`, or why there is none.
fn accepted(answer: &ward_guest::json::Value, field: &str) -> String {
    match answer["action"].as_str() {
        Some("accept") => answer["content"][field]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| answer["content"][field].to_string()),
        other => format!("(the user chose {})", other.unwrap_or("nothing")),
    }
}

fn sampling_input(key: &str, text: &str, max_tokens: u32) -> client::Input {
    client::Input::create_message(
        key,
        json!({
            "messages": [{"role": "user", "content": {"type": "text", "text": text}}],
            "maxTokens": max_tokens
        }),
    )
}

fn input_required_elicitation() -> Result<String> {
    let answers = ask_all(&[ask_for("user_name", "What is your name?", "name")])?;
    Ok(format!("Hello, {}!", accepted(&answers[0], "name")))
}

fn input_required_sampling() -> Result<String> {
    let answers = ask_all(&[sampling_input("capital_question", "What is the capital of France?", 100)])?;
    Ok(format!(
        "LLM response: {}",
        answers[0].pointer("/content/text").and_then(|t| t.as_str()).unwrap_or("(no text)")
    ))
}

fn input_required_list_roots() -> Result<String> {
    let answers = ask_all(&[client::Input::list_roots("client_roots")])?;
    let roots: Vec<&str> = answers[0]["roots"]
        .as_array()
        .map(|roots| roots.iter().filter_map(|r| r["uri"].as_str()).collect())
        .unwrap_or_default();
    Ok(format!("Client roots: {}", roots.join(", ")))
}

fn confirm(key: &str) -> client::Input {
    client::Input::elicit(
        key,
        json!({
            "message": "Please confirm",
            "requestedSchema": {
                "type": "object",
                "properties": {"ok": {"type": "boolean"}},
                "required": ["ok"]
            }
        }),
    )
}

fn input_required_request_state() -> Result<String> {
    let answers = ask_all(&[confirm("confirm")])?;
    // ward replays a retry only after its requestState passed the integrity check.
    Ok(format!("state-ok: confirmed={}", answers[0]["content"]["ok"]))
}

fn input_required_multiple() -> Result<String> {
    let answers = ask_all(&[
        ask_for("user_name", "What is your name?", "name"),
        sampling_input("greeting", "Generate a greeting", 50),
        client::Input::list_roots("client_roots"),
    ])?;
    Ok(format!(
        "name={}, greeting={}, roots={}",
        accepted(&answers[0], "name"),
        answers[1].pointer("/content/text").and_then(|t| t.as_str()).unwrap_or("?"),
        answers[2]["roots"].as_array().map_or(0, Vec::len)
    ))
}

fn input_required_multi_round() -> Result<String> {
    let name = ask_all(&[ask_for("step1", "Step 1: What is your name?", "name")])?;
    let color = ask_all(&[ask_for("step2", "Step 2: What is your favorite color?", "color")])?;
    Ok(format!(
        "{} likes {}",
        accepted(&name[0], "name"),
        accepted(&color[0], "color")
    ))
}

fn input_required_capabilities() -> Result<String> {
    // Ask only what the client can answer: on 2026-07-28, asking anything
    // else fails the request (-32021).
    let mut inputs = Vec::new();
    if client::supports("elicitation/create") {
        inputs.push(ask_for("user_name", "What is your name?", "name"));
    }
    if client::supports("sampling/createMessage") {
        inputs.push(sampling_input("greeting", "Generate a greeting", 50));
    }
    let answers = ask_all(&inputs)?;
    Ok(format!("{} answers", answers.len()))
}

fn input_required_prompt() -> Result<Vec<PromptMessage>> {
    let answers = ask_all(&[ask_for("user_context", "What context should the prompt use?", "context")])?;
    Ok(vec![PromptMessage::user(format!(
        "Use this context: {}",
        accepted(&answers[0], "context")
    ))])
}

// ----- custom headers (SEP-2243) -----

#[derive(Deserialize, JsonSchema)]
struct Regional {
    /// The region to report on; an HTTP client also sends it as the
    /// `Mcp-Param-Region` header, which ward checks against it.
    #[schemars(extend("x-mcp-header" = "Region"))]
    region: String,
}

fn custom_header_tool(a: Regional) -> String {
    format!("Region: {}", a.region)
}

// ----- lists that change (subscriptions/listen, list_changed) -----
//
// Every call runs in a fresh instance, so a list that changes must depend
// on something outside the code: here a marker file in /state, a directory
// `cargo xtask conformance` grants. A trigger flips its marker and says so
// (`lists_changed`); ward lists the plugin again and tells clients.

/// Where the markers live (granted read-write by the suite's policy).
const STATE: &str = "/state";

fn marker(name: &str) -> std::path::PathBuf {
    std::path::Path::new(STATE).join(name)
}

/// Adds or removes the marker `name`, then tells ward the lists changed.
fn toggle(name: &str, what: &str) -> Result<String> {
    let path = marker(name);
    let result = if path.exists() {
        std::fs::remove_file(&path).map(|()| "removed")
    } else {
        std::fs::write(&path, b"").map(|()| "added")
    };
    let done = result.map_err(|e| {
        Error::failed(format!(
            "cannot change the {what} list: {e} (it needs {STATE} granted read-write)"
        ))
    })?;
    lists_changed();
    Ok(format!("{what} {done}"))
}

/// Asks with `schema` and reports the answer as the fixture does.
fn elicit_with(message: &str, schema: ward_guest::json::Value) -> Result<String> {
    let answer = client::elicit(&json!({ "message": message, "requestedSchema": schema }))?;
    Ok(format!(
        "Elicitation completed: action={}, content={}",
        answer["action"].as_str().unwrap_or("?"),
        answer.get("content").cloned().unwrap_or_default()
    ))
}

fn elicitation_defaults() -> Result<String> {
    elicit_with(
        "Please review and update the form fields with defaults",
        json!({
            "type": "object",
            "properties": {
                "name": {"type": "string", "description": "User name", "default": "John Doe"},
                "age": {"type": "integer", "description": "User age", "default": 30},
                "score": {"type": "number", "description": "User score", "default": 95.5},
                "status": {
                    "type": "string",
                    "description": "User status",
                    "enum": ["active", "inactive", "pending"],
                    "default": "active"
                },
                "verified": {"type": "boolean", "description": "Verification status", "default": true}
            },
            "required": []
        }),
    )
}

fn elicitation_enums() -> Result<String> {
    elicit_with(
        "Please select options from the enum fields",
        json!({
            "type": "object",
            "properties": {
                "untitledSingle": {
                    "type": "string",
                    "description": "Select one option",
                    "enum": ["option1", "option2", "option3"]
                },
                "titledSingle": {
                    "type": "string",
                    "description": "Select one option with titles",
                    "oneOf": [
                        {"const": "value1", "title": "First Option"},
                        {"const": "value2", "title": "Second Option"},
                        {"const": "value3", "title": "Third Option"}
                    ]
                },
                "legacyEnum": {
                    "type": "string",
                    "description": "Select one option (legacy)",
                    "enum": ["opt1", "opt2", "opt3"],
                    "enumNames": ["Option One", "Option Two", "Option Three"]
                },
                "untitledMulti": {
                    "type": "array",
                    "description": "Select multiple options",
                    "items": {"type": "string", "enum": ["option1", "option2", "option3"]}
                },
                "titledMulti": {
                    "type": "array",
                    "description": "Select multiple options with titles",
                    "items": {
                        "anyOf": [
                            {"const": "value1", "title": "First Choice"},
                            {"const": "value2", "title": "Second Choice"},
                            {"const": "value3", "title": "Third Choice"}
                        ]
                    }
                }
            },
            "required": []
        }),
    )
}

// ----- tasks (the io.modelcontextprotocol/tasks extension, SEP-2663) -----
//
// Ordinary tools that declare they may run as tasks (`.task(..)`): for a
// 2026-07-28 client that declares the extension, ward answers a call that
// lasts longer than a moment with a task the client polls, turns the
// tools' questions into the task's input requests, and stops a cancelled
// task's guest at once. Nothing below knows whether it runs as a task.

#[derive(Deserialize, JsonSchema)]
struct GreetArgs {
    /// Who to greet
    name: String,
}

#[derive(Deserialize, JsonSchema)]
struct ComputeArgs {
    /// How long the computation takes, in seconds
    seconds: f64,
    /// A name for this computation, echoed in the result
    label: Option<String>,
}

fn slow_compute(a: ComputeArgs) -> String {
    let total = a.seconds.max(0.0);
    let label = a.label.unwrap_or_else(|| "computation".into());
    let mut done = 0.0;
    while done < total {
        progress(done, total, format!("{label}: {done:.1} of {total:.1} s").as_str());
        let step = (total - done).min(0.5);
        // ward interrupts the sleep when the call (or its task) is cancelled.
        std::thread::sleep(std::time::Duration::from_secs_f64(step));
        done += step;
    }
    format!("Computed {label} in {total} s")
}

fn failing_job() -> Result<String> {
    std::thread::sleep(std::time::Duration::from_secs(1));
    fail!("The job failed after working for a second (a tool execution error)")
}

fn protocol_error_job() -> Result<String> {
    // Asking the client for something it did not declare it can give is a
    // protocol error (-32021): inside a task, the task fails with it.
    let roots = client::list_roots()?;
    Ok(format!("Client roots: {roots}"))
}

#[derive(Deserialize, JsonSchema)]
struct DeleteArgs {
    /// The file to delete
    filename: String,
}

fn confirm_delete(a: DeleteArgs) -> Result<String> {
    let answer = client::elicit(&json!({
        "message": format!("Delete {}?", a.filename),
        "requestedSchema": {
            "type": "object",
            "properties": {"confirm": {"type": "boolean", "description": "Delete the file"}},
            "required": ["confirm"]
        }
    }))?;
    let confirmed = answer["action"] == "accept" && answer["content"]["confirm"] == true;
    // A fixture: it deletes nothing.
    Ok(match confirmed {
        true => format!("Deleted {}", a.filename),
        false => format!("Kept {}", a.filename),
    })
}

fn multi_input() -> Result<String> {
    // Two questions in one round: both wait for the client at once.
    let answers = ask_all(&[
        ask_for("name", "What is your name?", "name"),
        confirm("confirmation"),
    ])?;
    Ok(format!(
        "name={}, confirmation={}",
        accepted(&answers[0], "name"),
        answers[1]["action"].as_str().unwrap_or("?")
    ))
}

fn tool_with_task() -> Result<String> {
    // Asked before the task starts (an input-required result); the task
    // starts once it is answered.
    let answers = ask_all(&[ask_for("user_name", "What is your name?", "name").before_task()])?;
    Ok(format!("Hello, {}! (from a task)", accepted(&answers[0], "name")))
}

fn template_data(v: &Vars) -> String {
    let id = &v["id"];
    ward_guest::json::json!({ "id": id, "templateTest": true, "data": format!("Data for ID: {id}") }).to_string()
}

ward_guest::plugin!(|p| {
    // ----- tools -----
    p.tool("test_simple_text", "Tests simple text content response", || {
        "This is a simple text response for testing."
    });
    p.tool("test_image_content", "Tests image content response", || Content::image(PNG, "image/png"));
    p.tool("test_audio_content", "Tests audio content response", || Content::audio(WAV, "audio/wav"));
    p.tool("test_embedded_resource", "Tests embedded resource content response", || {
        Content::embedded(ResourceContents::text(
            "test://embedded-resource",
            Some("text/plain"),
            "This is an embedded resource content.",
        ))
    });
    p.tool(
        "test_multiple_content_types",
        "Tests response with multiple content types (text, image, resource)",
        multiple_content_types,
    );
    p.tool("test_tool_with_logging", "Tests tool that emits log messages during execution", logging_tool);
    // The stateless (2026-07-28) suite calls the same behaviour by this name.
    p.tool("test_logging_tool", "Emits log messages during execution (stateless-suite name)", logging_tool);
    p.tool("test_tool_with_progress", "Tests tool that reports progress notifications", progress_tool);
    p.tool("test_error_handling", "Tests error response handling", || -> Result<String> {
        Err(Error::failed("This tool intentionally returns an error for testing"))
    });
    p.tool(
        "json_schema_2020_12_tool",
        "Tool with JSON Schema 2020-12 features for conformance testing (SEP-1613)",
        json_schema_tool,
    )
    .input_schema(|| SCHEMA_2020_12.into());
    p.tool("test_sampling", "Tests server-initiated sampling (LLM completion request)", sampling_tool);
    p.tool("test_elicitation", "Tests server-initiated elicitation (user input request)", elicitation_tool);
    p.tool(
        "test_elicitation_sep1034_defaults",
        "Tests elicitation with default values for all primitive types (SEP-1034)",
        elicitation_defaults,
    );
    p.tool(
        "test_elicitation_sep1330_enums",
        "Tests elicitation with enum schema improvements (SEP-1330)",
        elicitation_enums,
    );
    p.tool(
        "test_input_required_result_elicitation",
        "Asks the user's name (input-required result, key user_name)",
        input_required_elicitation,
    );
    p.tool(
        "test_input_required_result_sampling",
        "Asks the client's model (input-required result, key capital_question)",
        input_required_sampling,
    );
    p.tool(
        "test_input_required_result_list_roots",
        "Asks the client's roots (input-required result, key client_roots)",
        input_required_list_roots,
    );
    p.tool(
        "test_input_required_result_request_state",
        "Asks for a confirmation; the retry's requestState is checked (key confirm)",
        input_required_request_state,
    );
    p.tool(
        "test_input_required_result_tampered_state",
        "Asks for a confirmation; a tampered requestState is refused (key confirm)",
        input_required_request_state,
    );
    p.tool(
        "test_input_required_result_multiple_inputs",
        "Asks three things in one round: user_name, greeting, client_roots",
        input_required_multiple,
    );
    p.tool(
        "test_input_required_result_multi_round",
        "Asks in two rounds: step1, then step2",
        input_required_multi_round,
    );
    p.tool(
        "test_input_required_result_capabilities",
        "Asks only what the client declared it can answer",
        input_required_capabilities,
    );
    p.tool(
        "test_missing_capability",
        "Asks the client's model without checking that the client can sample",
        || -> Result<String> { Ok(client::sample_text("Say hello", 20)?) },
    );
    p.tool(
        "test_streaming_elicitation",
        "Asks the user for input while the request streams",
        input_required_elicitation,
    );
    p.tool(
        "test_custom_header",
        "Reports its region, which clients also send as the Mcp-Param-Region header (SEP-2243)",
        custom_header_tool,
    );
    p.tool(
        "test_trigger_tool_change",
        "Adds or removes the tool test_dynamic_tool (the tool list changes)",
        || toggle("dynamic-tool", "test_dynamic_tool"),
    );
    p.tool(
        "test_trigger_prompt_change",
        "Adds or removes the prompt test_dynamic_prompt (the prompt list changes)",
        || toggle("dynamic-prompt", "test_dynamic_prompt"),
    );
    p.tool("greet", "Greets someone by name (never a task)", |a: GreetArgs| format!("Hello, {}!", a.name));
    p.tool("slow_compute", "Works for `seconds` seconds, reporting progress, then answers (may run as a task)", slow_compute)
        .task(TaskSupport::Optional);
    p.tool("failing_job", "Works for a second, then fails with a tool execution error (runs only as a task)", failing_job)
        .task(TaskSupport::Required);
    p.tool(
        "protocol_error_job",
        "Asks the client's roots without checking that it can list them: a protocol error (may run as a task)",
        protocol_error_job,
    )
    .task(TaskSupport::Optional);
    p.tool("confirm_delete", "Asks the user to confirm deleting a file (may run as a task)", confirm_delete)
        .task(TaskSupport::Optional);
    p.tool("multi_input", "Asks two questions at once (may run as a task)", multi_input).task(TaskSupport::Optional);
    p.tool(
        "test_tool_with_task",
        "Asks the user's name before it starts, then greets them from a task (runs only as a task)",
        tool_with_task,
    )
    .task(TaskSupport::Required);
    if marker("dynamic-tool").exists() {
        p.tool("test_dynamic_tool", "A tool that test_trigger_tool_change added", || "dynamic");
    }
    p.tool(
        "test_resource_updated",
        "Tells subscribed clients that test://watched-resource changed (ward's stand-in for the fixture's timer)",
        || {
            resource_updated(WATCHED);
            format!("Sent an update notification for {WATCHED}")
        },
    );

    // ----- resources -----
    p.resource("test://static-text", "static-text", || "This is the content of the static text resource.")
        .title("Static Text Resource")
        .description("A static text resource for testing")
        .mime_type("text/plain");
    p.resource("test://static-binary", "static-binary", || PNG)
        .title("Static Binary Resource")
        .description("A static binary resource (image) for testing")
        .mime_type("image/png");
    p.resource_template("test://template/{id}/data", "template", template_data)
        .title("Resource Template")
        .description("A resource template with parameter substitution")
        .mime_type("application/json")
        .suggest("id", &["1", "2", "3", "42", "123"]);
    p.resource("test://with-client-roots", "client-roots", || -> Result<String> {
        // A read that asks the client (roots/list): input-required on 2026-07-28.
        let answers = ask_all(&[client::Input::list_roots("client_roots")])?;
        let roots: Vec<String> = answers[0]["roots"]
            .as_array()
            .map(|roots| roots.iter().filter_map(|r| r["uri"].as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        Ok(format!("Client roots: {}", roots.join(", ")))
    })
    .title("Client Roots")
    .description("The client's roots, asked of the client on every read")
    .mime_type("text/plain");
    p.resource(WATCHED, "watched-resource", || "Watched resource content")
        .title("Watched Resource")
        .description("A resource clients may subscribe to; the tool test_resource_updated announces a change")
        .mime_type("text/plain");

    // ----- prompts -----
    if marker("dynamic-prompt").exists() {
        p.prompt("test_dynamic_prompt", "A prompt that test_trigger_prompt_change added", || "dynamic");
    }
    p.prompt(
        "test_input_required_result_prompt",
        "A prompt that asks the user for context first (input-required result, key user_context)",
        input_required_prompt,
    );
    p.prompt("test_simple_prompt", "A simple prompt without arguments", || "This is a simple prompt for testing.")
        .title("Simple Test Prompt");
    p.prompt("test_prompt_with_arguments", "A prompt with required arguments", |a: TwoArgs| {
        format!("Prompt with arguments: arg1='{}', arg2='{}'", a.arg1, a.arg2)
    })
    .title("Prompt With Arguments")
    .suggest("arg1", &["alpha", "apple", "avocado"])
    .suggest("arg2", &["beta", "banana", "blueberry"]);
    p.prompt("test_prompt_with_embedded_resource", "A prompt that includes an embedded resource", |a: EmbedArgs| {
        vec![
            PromptMessage::user(ResourceContents::text(
                a.resource_uri,
                Some("text/plain"),
                "Embedded resource content for testing.",
            )),
            PromptMessage::user("Please process the embedded resource above."),
        ]
    })
    .title("Prompt With Embedded Resource");
    p.prompt("test_prompt_with_image", "A prompt that includes image content", || {
        vec![
            PromptMessage::user(Content::image(PNG, "image/png")),
            PromptMessage::user("Please analyze the image above."),
        ]
    })
    .title("Prompt With Image");
});
