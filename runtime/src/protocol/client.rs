//! Guest requests to the client: `sampling/createMessage` and
//! `elicitation/create`, sent on behalf of the request a guest serves.
//!
//! A guest is untrusted, so what it asks the client is checked here, in one
//! place, before anything is sent: the client must have declared the
//! capability, the parameters must parse as the MCP type, and the request
//! must be made in an era that allows it (2026-07-28 forbids server-to-client
//! requests outside input-required results, which ward does not offer yet).

// Sampling is deprecated by SEP-2577 for the stateless era; the legacy era
// still has it.
#![allow(deprecated)]

use std::future::Future;
use std::pin::Pin;

use rmcp::model::{
    ClientCapabilities, CreateMessageRequestParams, ElicitRequest, ElicitRequestParams,
    ServerRequest,
};
use rmcp::service::{RequestContext, ServiceError};
use rmcp::{Peer, RoleServer};
use serde_json::Value;

use crate::backend::{ClientAnswer, ClientMethod, ClientRequests};

/// The client of one request, as seen by the guest serving it. Built for
/// every call, so it only holds handles; capabilities are read when asked.
pub(super) struct RequestClient {
    peer: Peer<RoleServer>,
    stateless: bool,
}

impl RequestClient {
    /// The client behind `context`; `stateless` is true for 2026-07-28 requests.
    pub(super) fn new(context: &RequestContext<RoleServer>, stateless: bool) -> Self {
        Self {
            peer: context.peer.clone(),
            stateless,
        }
    }

    /// What the legacy client declared in `initialize`.
    fn capabilities(&self) -> Option<ClientCapabilities> {
        self.peer.peer_info().map(|info| info.capabilities.clone())
    }

    async fn send(&self, method: ClientMethod, params: Value) -> ClientAnswer {
        let name = method.as_str();
        if self.stateless {
            return Err(format!(
                "{name} is not available: the client speaks MCP 2026-07-28, where a server \
                 cannot send requests to the client (input-required results are not supported yet)"
            ));
        }
        let capabilities = self.capabilities().unwrap_or_default();
        let (declared, capability) = match method {
            ClientMethod::CreateMessage => (capabilities.sampling.is_some(), "sampling"),
            ClientMethod::Elicit => (capabilities.elicitation.is_some(), "elicitation"),
        };
        if !declared {
            return Err(format!(
                "{name} is not available: the client did not declare the `{capability}` capability"
            ));
        }
        let invalid = |e: serde_json::Error| format!("invalid {name} params: {e}");
        let answer = match method {
            ClientMethod::CreateMessage => {
                let params: CreateMessageRequestParams =
                    serde_json::from_value(params).map_err(invalid)?;
                self.peer
                    .create_message(params)
                    .await
                    .map(|result| serde_json::to_value(result).unwrap_or_default())
            }
            ClientMethod::Elicit => {
                let params: ElicitRequestParams =
                    serde_json::from_value(params).map_err(invalid)?;
                self.peer
                    .send_request(ServerRequest::ElicitRequest(ElicitRequest::new(params)))
                    .await
                    .map(|result| serde_json::to_value(result).unwrap_or_default())
            }
        };
        answer.map_err(|e| match e {
            ServiceError::McpError(error) => {
                format!("the client refused {name}: {}", error.message)
            }
            other => format!("{name} failed: {other}"),
        })
    }
}

impl ClientRequests for RequestClient {
    fn request(
        &self,
        method: ClientMethod,
        params: Value,
    ) -> Pin<Box<dyn Future<Output = ClientAnswer> + Send + '_>> {
        Box::pin(self.send(method, params))
    }
}
