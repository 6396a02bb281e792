//! Guest requests to a legacy client (MCP 2025-11-25 and earlier):
//! `sampling/createMessage`, `elicitation/create` and `roots/list`, sent as
//! real requests on behalf of the request a guest serves; and the checks
//! both eras share. (A 2026-07-28 client is asked through input-required
//! results instead: `replay.rs`.)
//!
//! A guest is untrusted, so what it asks the client is checked here, in one
//! place, before anything is sent: the client must have declared the
//! capability and the parameters must parse as the MCP type. What a client
//! answers is checked as the MCP result type before the guest sees it.

// Sampling is deprecated by SEP-2577 for the stateless era; the legacy era
// still has it.
#![allow(deprecated)]

use std::future::Future;
use std::pin::Pin;

use rmcp::model::{
    ClientCapabilities, CreateMessageRequest, CreateMessageRequestParams, CreateMessageResult,
    ElicitRequest, ElicitRequestParams, ElicitResult, InputRequest, ListRootsRequest,
    ListRootsResult, ServerRequest,
};
use rmcp::service::{RequestContext, ServiceError};
use rmcp::{Peer, RoleServer};
use serde_json::Value;

use crate::backend::{ClientAnswer, ClientMethod, ClientRequests, Question, Suspended};

/// Whether `capabilities` declare what `method` needs.
pub(super) fn declared(capabilities: &ClientCapabilities, method: ClientMethod) -> bool {
    match method {
        ClientMethod::CreateMessage => capabilities.sampling.is_some(),
        ClientMethod::Elicit => capabilities.elicitation.is_some(),
        ClientMethod::ListRoots => capabilities.roots.is_some(),
    }
}

/// The capabilities object that declares only what `method` needs: the
/// `requiredCapabilities` of a -32021 error.
pub(super) fn required(method: ClientMethod) -> ClientCapabilities {
    let capabilities = serde_json::json!({ method.capability(): {} });
    serde_json::from_value(capabilities).unwrap_or_default()
}

/// A guest's question as the MCP request, or why its parameters are not one.
pub(super) fn request(method: ClientMethod, params: Value) -> Result<InputRequest, String> {
    let name = method.as_str();
    let invalid = |e: serde_json::Error| format!("invalid {name} params: {e}");
    Ok(match method {
        ClientMethod::CreateMessage => {
            let params: CreateMessageRequestParams =
                serde_json::from_value(params).map_err(invalid)?;
            InputRequest::CreateMessage(CreateMessageRequest::new(params))
        }
        ClientMethod::Elicit => {
            let params: ElicitRequestParams = serde_json::from_value(params).map_err(invalid)?;
            InputRequest::Elicitation(ElicitRequest::new(params))
        }
        ClientMethod::ListRoots => match params {
            Value::Object(map) if map.keys().all(|k| k == "_meta") => {
                InputRequest::ListRoots(ListRootsRequest::default())
            }
            other => return Err(format!("{name} takes no params, got {other}")),
        },
    })
}

/// Checks that `answer` is a result of `method`, as the guest will read it.
pub(super) fn check_answer(method: ClientMethod, answer: &Value) -> Result<(), String> {
    let checked = match method {
        ClientMethod::CreateMessage => {
            serde_json::from_value::<CreateMessageResult>(answer.clone()).map(drop)
        }
        ClientMethod::Elicit => serde_json::from_value::<ElicitResult>(answer.clone()).map(drop),
        ClientMethod::ListRoots => {
            serde_json::from_value::<ListRootsResult>(answer.clone()).map(drop)
        }
    };
    checked.map_err(|e| format!("not a valid {} result: {e}", method.as_str()))
}

/// The legacy client of one request, as seen by the guest serving it: each
/// question is sent as a request on the session, one after another. Built
/// for every call, so it only holds a handle; capabilities are read when
/// asked.
pub(super) struct LegacyClient {
    peer: Peer<RoleServer>,
}

impl LegacyClient {
    /// The client behind `context`.
    pub(super) fn new(context: &RequestContext<RoleServer>) -> Self {
        Self {
            peer: context.peer.clone(),
        }
    }

    /// What the client declared in `initialize`.
    fn capabilities(&self) -> ClientCapabilities {
        self.peer
            .peer_info()
            .map(|info| info.capabilities.clone())
            .unwrap_or_default()
    }

    async fn send(&self, question: Question) -> ClientAnswer {
        let method = question.method;
        let name = method.as_str();
        if !declared(&self.capabilities(), method) {
            return Err(format!(
                "{name} is not available: the client did not declare the `{}` capability",
                method.capability()
            ));
        }
        let answer = match request(method, question.params)? {
            InputRequest::CreateMessage(request) => {
                self.peer.create_message(request.params).await.map(to_json)
            }
            InputRequest::Elicitation(request) => self
                .peer
                .send_request(ServerRequest::ElicitRequest(request))
                .await
                .map(to_json),
            InputRequest::ListRoots(_) => self.peer.list_roots().await.map(to_json),
            _ => return Err(format!("{name} cannot be sent to this client")),
        };
        let answer = answer.map_err(|e| match e {
            ServiceError::McpError(error) => {
                format!("the client refused {name}: {}", error.message)
            }
            other => format!("{name} failed: {other}"),
        })?;
        check_answer(method, &answer).map_err(|e| format!("the client's answer is {e}"))?;
        Ok(answer)
    }
}

fn to_json<T: serde::Serialize>(result: T) -> Value {
    serde_json::to_value(result).unwrap_or_default()
}

impl ClientRequests for LegacyClient {
    fn ask(
        &self,
        questions: Vec<Question>,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<ClientAnswer>, Suspended>> + Send + '_>> {
        Box::pin(async move {
            let mut answers = Vec::with_capacity(questions.len());
            for question in questions {
                answers.push(self.send(question).await);
            }
            Ok(answers)
        })
    }

    fn supports(&self, method: ClientMethod) -> bool {
        declared(&self.capabilities(), method)
    }
}
