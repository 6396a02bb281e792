//! The baseline for `ward-bench`: an MCP server over stdio with the same
//! `greet` tool as the `hello` plugin, written directly on rmcp, with no
//! sandbox. Same transport as `ward serve` (`rmcp::transport::stdio_pipes`),
//! same tokio runtime flavour (multi-thread, default workers), and the tool is
//! exposed under the same name, `hello_greet`, so one client drives both.

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ErrorData,
    Implementation, ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig,
    Tool,
};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, ServerHandler, ServiceExt};
use serde_json::{json, Map, Value};

struct Greeter {
    tool: Tool,
}

impl ServerHandler for Greeter {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("native-greet", "0"))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(vec![self.tool.clone()]))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        if request.name != "hello_greet" {
            return Err(ErrorData::invalid_params("unknown tool", None));
        }
        let name = request
            .arguments
            .as_ref()
            .and_then(|a| a.get("name"))
            .and_then(Value::as_str)
            .ok_or_else(|| ErrorData::invalid_params("`name` must be a string", None))?;
        Ok(CallToolResponse::Complete(CallToolResult::success(vec![
            ContentBlock::text(format!("Hello, {name}!")),
        ])))
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let schema: Map<String, Value> = match json!({
        "type": "object",
        "properties": {"name": {"type": "string", "description": "Who to greet."}},
        "required": ["name"],
    }) {
        Value::Object(m) => m,
        _ => unreachable!(),
    };
    let tool = Tool::new("hello_greet", "Greets someone by name", Arc::new(schema));
    let service = Greeter { tool }
        .serve(rmcp::transport::stdio_pipes())
        .await?;
    service.waiting().await?;
    Ok(())
}
