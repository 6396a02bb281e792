//! Tasks: the `io.modelcontextprotocol/tasks` extension of MCP 2026-07-28
//! (SEP-2663), on rmcp's [`TaskManager`].
//!
//! A 2026-07-28 client that declares the extension may be answered a
//! `tools/call` with a task (`resultType: "task"`) instead of the result; it
//! then polls `tasks/get` until the task is `completed` (the tool's result,
//! `isError` included), `failed` (a JSON-RPC error) or `cancelled`, answers
//! the plugin's questions with `tasks/update`, and may stop it with
//! `tasks/cancel`. Which tools may become tasks, the plugin says
//! ([`TaskSupport`]); the extension is declared only in `server/discover`,
//! not to legacy (`initialize`) clients, which cannot declare it.
//!
//! **When a call becomes a task.** The call starts under its request, as any
//! other. It becomes a task at the first of: the guest asks the client
//! something (an ordinary question, see below); it got the answers to its
//! before-task questions; it is still running after [`START_WINDOW`]. A call
//! that ends within the window is answered with its result at once (the
//! extension lets the server decide; a fast call needs no polling).
//!
//! **Questions.** Inside a task the guest's questions (`client.ask`,
//! `elicit`, `create-message`, `list-roots`: [`ClientRequests`]) become the
//! task's `inputRequests` through [`TaskContext::request_input`]; the guest
//! waits, still running, until `tasks/update` answers them, several at once
//! when it asks several in one round. A question marked `beforeTask`
//! instead is asked before the task exists, with an input-required result
//! (`replay.rs`: the guest stops and is replayed with the answers): a tool
//! that must confirm before it starts long work asks that first, and the
//! call becomes a task as soon as the answers are in (one round of such
//! questions; later ones are asked inside the task). Asking for a
//! capability the client did not declare fails the task with -32021, as it
//! fails a request.
//!
//! **Cancellation.** `tasks/cancel` cancels the call's [`CallContext`]
//! token, which interrupts the guest at once (whatever it is doing: waiting
//! for an answer, sleeping, computing); the task settles `cancelled`. A task
//! rmcp expires (still running [`TASK_TTL`] after it started) is stopped the
//! same way.
//!
//! **Where tasks live.** In this process, in [`Tasks`], shared by every
//! connection: a `tasks/get` that reaches another replica, or this one after
//! a restart, is an unknown task (-32602). A task answers only to the caller
//! that started it (the authenticated caller over HTTP); to anyone else it
//! is unknown too. Results are kept for [`TASK_TTL`] after the task ends.
//!
//! **Status notifications** (`notifications/tasks`) travel on
//! `subscriptions/listen` streams that name task ids, which rmcp 3.11 cannot
//! route yet (its subscription filter has no `taskIds`); clients poll, at
//! the `pollIntervalMs` ward suggests. A guest's progress messages become
//! the task's `statusMessage`; its log messages stay in ward's log.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmcp::model::{
    CallToolResponse, CallToolResult, ClientCapabilities, CreateTaskResult, DetailedTask,
    ErrorData, JsonObject, Task,
};
use rmcp::service::RequestContext;
use rmcp::task_manager::{TaskContext, TaskExit, TaskFuture, TaskManager, TaskOptions};
use rmcp::RoleServer;
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use super::{
    finish, is_stateless, metered, to_mcp_error, trace_outcome, Answer, EventForwarder, Input,
    Reply, WardServer,
};
use crate::audit::Scope;
use crate::backend::{
    Backend, BackendError, CallContext, ClientAnswer, ClientHandle, ClientMethod, ClientRequests,
    GuestEvent, Question, ServedBy, Suspended, TaskSupport,
};
use crate::protocol::client::{check_answer, declared, request, required};
use crate::protocol::replay::Replay;
use crate::telemetry;

/// How long a task and its result are kept: a task still running this long
/// after it started fails (its guest is stopped), and a finished task's
/// result can be read for this long after it ended. No plugin call may last
/// longer anyway (`limits.timeout` is at most an hour).
pub const TASK_TTL: Duration = Duration::from_secs(60 * 60);

/// The polling interval ward suggests (`pollIntervalMs`).
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// How long a call that may become a task runs under its request first: a
/// call that ends within it is answered with its result. Long enough that
/// a guest's before-task question, its first act, comes within it on a
/// busy machine; short enough that a client soon holds its task.
pub const START_WINDOW: Duration = Duration::from_millis(500);

/// The most tasks held at once (running, or finished and kept). Past it a
/// tool that may run either way runs as an ordinary call, and one that
/// requires a task is refused until older tasks expire.
pub const MAX_TASKS: usize = 1024;

/// The tasks of this process, shared by every connection (one
/// [`ServerOptions`](super::ServerOptions) clone per connection, one store).
#[derive(Clone, Default)]
pub struct Tasks {
    manager: TaskManager,
    /// Who started each task ([`owner`]) and when.
    owners: Arc<Mutex<HashMap<String, (String, Instant)>>>,
}

impl std::fmt::Debug for Tasks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tasks")
            .field("held", &super::lock(&self.owners).len())
            .finish()
    }
}

impl Tasks {
    /// The owners, without those rmcp has certainly forgotten (a task lives
    /// at most a TTL running and a TTL finished).
    fn owners(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, Instant)>> {
        let mut owners = super::lock(&self.owners);
        owners.retain(|_, (_, started)| started.elapsed() < 2 * TASK_TTL);
        owners
    }

    /// Whether another task would exceed [`MAX_TASKS`].
    fn full(&self) -> bool {
        self.owners().len() >= MAX_TASKS
    }

    /// Starts a task for `owner`; it can be read before this returns.
    fn spawn(&self, owner: String, make: impl FnOnce(TaskContext) -> TaskFuture) -> Task {
        let options = TaskOptions::new()
            .with_ttl_ms(TASK_TTL.as_millis() as u64)
            .with_poll_interval_ms(POLL_INTERVAL.as_millis() as u64);
        let task = self.manager.spawn(options, make);
        self.owners()
            .insert(task.task_id.clone(), (owner, Instant::now()));
        task
    }

    /// Refuses a task `owner` did not start as unknown, as the extension
    /// answers an id it does not know (-32602).
    fn owned(&self, id: &str, owner: &str) -> Result<(), ErrorData> {
        match self.owners().get(id) {
            Some((started_by, _)) if started_by == owner => Ok(()),
            _ => Err(ErrorData::invalid_params(
                format!(
                    "unknown task: {id} (tasks are kept for {} minutes after they end, by the \
                     ward process that runs them)",
                    TASK_TTL.as_secs() / 60
                ),
                None,
            )),
        }
    }

    /// `tasks/get`.
    pub(super) fn get(&self, id: &str, owner: &str) -> Result<DetailedTask, ErrorData> {
        self.owned(id, owner)?;
        self.manager.get_task(id)
    }

    /// `tasks/update`: answers to the task's `inputRequests`; keys that are
    /// not outstanding are ignored.
    pub(super) fn update(
        &self,
        id: &str,
        owner: &str,
        responses: rmcp::model::InputResponses,
    ) -> Result<(), ErrorData> {
        self.owned(id, owner)?;
        self.manager.update_task(id, responses)
    }

    /// `tasks/cancel`: an acknowledgement; the task settles `cancelled` once
    /// its guest has stopped (at once), or as it ended if it already had.
    pub(super) fn cancel(&self, id: &str, owner: &str) -> Result<(), ErrorData> {
        self.owned(id, owner)?;
        self.manager.cancel_task(id)
    }
}

/// Who a task belongs to: the authenticated caller over HTTP, else everyone
/// on the transport (the local user over stdio, anyone who may reach an
/// HTTP listener without authentication).
pub(super) fn owner(context: &RequestContext<RoleServer>) -> String {
    context
        .extensions
        .get::<http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<crate::audit::Caller>())
        .map(|caller| serde_json::to_string(caller).unwrap_or_default())
        .unwrap_or_default()
}

/// `tasks/*` exist only in the era the extension belongs to.
pub(super) fn era<M: rmcp::model::ConstString>(
    context: &RequestContext<RoleServer>,
) -> Result<(), ErrorData> {
    match is_stateless(context) {
        true => Ok(()),
        false => Err(ErrorData::method_not_found::<M>()),
    }
}

/// Whether this `tools/call` may become a task: the tool supports it, and
/// the request is a 2026-07-28 one from a client that declared the
/// extension. A tool that requires a task refuses a 2026-07-28 client that
/// did not declare it (-32021).
pub(super) fn eligible(
    support: TaskSupport,
    tasks: &Tasks,
    context: &RequestContext<RoleServer>,
) -> Result<bool, ErrorData> {
    if support == TaskSupport::Forbidden || !is_stateless(context) {
        return Ok(false);
    }
    let declared = context
        .client_capabilities()
        .is_some_and(|capabilities| capabilities.supports_tasks());
    let required = support == TaskSupport::Required;
    if !declared {
        return match required {
            true => Err(ErrorData::missing_required_client_capability(
                ClientCapabilities::builder().enable_tasks().build(),
            )),
            false => Ok(false),
        };
    }
    if tasks.full() {
        return match required {
            true => Err(ErrorData::internal_error(
                format!("ward holds {MAX_TASKS} tasks, its most; retry when older ones expire"),
                None,
            )),
            false => Ok(false),
        };
    }
    Ok(true)
}

/// How a call that may become a task was answered.
pub(super) enum TaskAnswer {
    /// It ended under its request.
    Done(CallToolResult),
    /// It went on as this task.
    Task(CreateTaskResult),
}

impl Reply for TaskAnswer {
    fn is_error(&self) -> bool {
        matches!(self, Self::Done(result) if result.is_error == Some(true))
    }
}

/// Where a call stands, as its client sees it.
#[derive(Clone)]
enum Phase {
    /// Under its request.
    Request,
    /// The guest wants to go on as a task (it asked an ordinary question,
    /// or got the answers to its before-task questions).
    WantsTask,
    /// The guest stopped at an unanswered before-task question: the request
    /// is answered with an input-required result.
    Stopped,
    /// The request is making the task.
    Claimed,
    /// A task.
    Task(TaskContext),
}

/// The client of a call that may become a task, as seen by the guest:
/// before the task, its before-task questions are replayed
/// ([`Replay`]); in the task, every question is one of its `inputRequests`.
pub(super) struct TaskClient {
    replay: Replay,
    capabilities: ClientCapabilities,
    phase: watch::Sender<Phase>,
    /// Why the guest was stopped inside the task: the task fails with it.
    stop: Mutex<Option<ErrorData>>,
}

impl TaskClient {
    fn new(replay: Replay, capabilities: ClientCapabilities) -> Self {
        Self {
            replay,
            capabilities,
            phase: watch::channel(Phase::Request).0,
            stop: Mutex::new(None),
        }
    }

    /// Takes the call from its request to a task, unless the guest stopped
    /// for an input-required result (or it was taken already).
    fn claim(&self) -> bool {
        self.phase.send_if_modified(|phase| match phase {
            Phase::Request | Phase::WantsTask => {
                *phase = Phase::Claimed;
                true
            }
            _ => false,
        })
    }

    /// The call is this task now.
    fn begin(&self, context: TaskContext) {
        self.phase.send_replace(Phase::Task(context));
    }

    /// Whether the guest wants to go on as a task.
    fn wants_task(&self) -> bool {
        matches!(*self.phase.borrow(), Phase::WantsTask)
    }

    /// The task, once the request has made it.
    async fn task(&self) -> Result<TaskContext, Suspended> {
        let mut phase = self.phase.subscribe();
        let phase = phase
            .wait_for(|phase| matches!(phase, Phase::Task(_) | Phase::Stopped))
            .await
            .map_err(|_| Suspended)?;
        match &*phase {
            Phase::Task(context) => Ok(context.clone()),
            _ => Err(Suspended),
        }
    }

    /// Asks one round inside the task: each question is an input request
    /// of the task, all outstanding at once, answered by `tasks/update`.
    async fn ask_in_task(
        &self,
        task: &TaskContext,
        questions: Vec<Question>,
    ) -> Result<Vec<ClientAnswer>, Suspended> {
        let mut answers: Vec<Option<ClientAnswer>> = vec![None; questions.len()];
        let mut waiting = JoinSet::new();
        for (i, question) in questions.into_iter().enumerate() {
            let method = question.method;
            if !declared(&self.capabilities, method) {
                // As on a request: asking what the client cannot answer is
                // a protocol error, and the task fails with it.
                *super::lock(&self.stop) = Some(ErrorData::missing_required_client_capability(
                    required(method),
                ));
                return Err(Suspended);
            }
            match request(method, question.params) {
                Err(message) => answers[i] = Some(Err(message)),
                Ok(input) => {
                    let task = task.clone();
                    let key = question.key;
                    waiting.spawn(async move { (i, method, task.request_input(key, input).await) });
                }
            }
        }
        // Dropping the set (the guest was stopped) withdraws the questions.
        while let Some(joined) = waiting.join_next().await {
            let Ok((i, method, answer)) = joined else {
                continue;
            };
            answers[i] = Some(match answer {
                Ok(answer) => match check_answer(method, &answer) {
                    Ok(()) => Ok(answer),
                    Err(e) => Err(format!("the client's answer is {e}")),
                },
                // `tasks/cancel` withdrew the question: the guest is being
                // stopped.
                Err(TaskExit::Cancelled) => return Err(Suspended),
                Err(TaskExit::Error(error)) => Err(error.message.to_string()),
            });
        }
        Ok(answers
            .into_iter()
            .map(|answer| answer.unwrap_or_else(|| Err("the client gave no answer".into())))
            .collect())
    }
}

impl ClientRequests for TaskClient {
    fn ask(
        &self,
        mut questions: Vec<Question>,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<ClientAnswer>, Suspended>> + Send + '_>> {
        Box::pin(async move {
            let before_task = !questions.is_empty() && questions.iter().all(|q| q.before_task);
            let mut replayed = None;
            self.phase.send_if_modified(|phase| match phase {
                Phase::Request if before_task => {
                    let answers = self.replay.answer(std::mem::take(&mut questions));
                    *phase = match answers {
                        Ok(_) => Phase::WantsTask,
                        Err(_) => Phase::Stopped,
                    };
                    replayed = Some(answers);
                    true
                }
                Phase::Request => {
                    *phase = Phase::WantsTask;
                    true
                }
                _ => false,
            });
            if let Some(answers) = replayed {
                return answers;
            }
            let task = self.task().await?;
            self.ask_in_task(&task, questions).await
        })
    }

    fn supports(&self, method: ClientMethod) -> bool {
        declared(&self.capabilities, method)
    }
}

/// The call behind a task: still running, or already ended.
enum Call {
    Running(JoinHandle<Result<CallToolResult, BackendError>>),
    Ended(Result<Result<CallToolResult, BackendError>, tokio::task::JoinError>),
}

impl<B: Backend> WardServer<B> {
    /// `tools/call` of a tool that may become a task, for a client that
    /// declared the extension: the call's result, an input-required result
    /// (a before-task question), or the task it became.
    pub(super) async fn call_tool_task(
        &self,
        name: &str,
        arguments: JsonObject,
        input: Input<'_>,
        audit: Option<Scope>,
        context: &RequestContext<RoleServer>,
        span: tracing::Span,
    ) -> Result<CallToolResponse, ErrorData> {
        let result = metered(
            "tools/call",
            self.start_task(name, arguments, input, audit.clone(), context),
        )
        .instrument(span.clone())
        .await;
        trace_outcome(&span, &result);
        if let Some(audit) = &audit {
            match &result {
                // The task finishes the record when it ends.
                Ok(Answer::Complete(TaskAnswer::Task(_))) => {}
                Ok(Answer::Complete(TaskAnswer::Done(r))) if r.is_error == Some(true) => {
                    audit.finish("isError", None)
                }
                other => finish(audit, other),
            }
        }
        Ok(match result? {
            Answer::Complete(TaskAnswer::Done(result)) => CallToolResponse::Complete(result),
            Answer::Complete(TaskAnswer::Task(task)) => CallToolResponse::Task(task),
            Answer::InputRequired(input) => CallToolResponse::InputRequired(input),
        })
    }

    async fn start_task(
        &self,
        name: &str,
        arguments: JsonObject,
        input: Input<'_>,
        audit: Option<Scope>,
        context: &RequestContext<RoleServer>,
    ) -> Result<Answer<TaskAnswer>, ErrorData> {
        let (replay, pin) = input.open(&self.options.state_key, context)?;
        let capabilities = context.client_capabilities().unwrap_or_default();
        let client = Arc::new(TaskClient::new(replay, capabilities));
        let handle = ClientHandle(client.clone());
        let served = audit.as_ref().map_or_else(ServedBy::default, Scope::served);
        // The call's own token: the request's cancellation reaches it only
        // until the call becomes a task; then `tasks/cancel` does.
        let cancel = CancellationToken::new();
        let (events, mut rx) = mpsc::unbounded_channel();
        let cx = CallContext {
            cancel: cancel.clone(),
            events: Some(events),
            client: Some(match &audit {
                Some(scope) => scope.client(handle),
                None => handle,
            }),
            served: Some(served.clone()),
            pin,
            caller: self.caller(context),
            admitted: context
                .extensions
                .get::<http::request::Parts>()
                .is_some_and(|parts| {
                    parts
                        .extensions
                        .get::<crate::protocol::http::Admitted>()
                        .is_some()
                }),
        };
        let backend = self.backend.clone();
        let tool = name.to_owned();
        let mut call = tokio::spawn(
            async move { backend.call_tool(&tool, arguments, cx).await }
                .instrument(tracing::Span::current()),
        );
        // Until it is a task, the call lives no longer than its request
        // (rmcp may drop this future when the client goes away).
        let request_bound = cancel.clone().drop_guard();
        let forwarder = EventForwarder {
            peer: context.peer.clone(),
            progress_token: context.meta.get_progress_token(),
            min_level: self.request_log_level(context),
            cancel: context.ct.clone(),
        };
        let window = tokio::time::sleep(START_WINDOW);
        tokio::pin!(window);
        let mut window_open = true;
        let mut phase = client.phase.subscribe();
        let started = loop {
            tokio::select! {
                biased;
                // The client went away: stop the guest, make no task.
                () = context.ct.cancelled(), if !cancel.is_cancelled() => cancel.cancel(),
                wants = async { phase.wait_for(|p| matches!(p, Phase::WantsTask)).await.is_ok() },
                    if !cancel.is_cancelled() =>
                {
                    if wants && client.claim() {
                        break Call::Running(call);
                    }
                }
                ended = &mut call => {
                    // A guest that got its before-task answers goes on as a
                    // task even when it ended at once.
                    if client.wants_task() && !cancel.is_cancelled() && client.claim() {
                        break Call::Ended(ended);
                    }
                    while let Ok(event) = rx.try_recv() {
                        forwarder.forward(event).await;
                    }
                    telemetry::record_served(&tracing::Span::current(), &served);
                    return match ended {
                        Ok(Ok(result)) => Ok(Answer::Complete(TaskAnswer::Done(result))),
                        Ok(Err(BackendError::Suspended(_))) => client
                            .replay
                            .stopped(&self.options.state_key, served.get().sha256)
                            .map(Answer::InputRequired),
                        Ok(Err(error)) => {
                            crate::metrics::backend_error(&error);
                            Err(to_mcp_error(error))
                        }
                        Err(_) => Err(ErrorData::internal_error("the call ended abnormally", None)),
                    };
                }
                Some(event) = rx.recv() => forwarder.forward(event).await,
                () = &mut window, if window_open && !cancel.is_cancelled() => {
                    window_open = false;
                    if client.claim() {
                        break Call::Running(call);
                    }
                }
            }
        };
        request_bound.disarm();
        let owner = owner(context);
        let task = self.options.tasks.spawn(owner, move |task| {
            client.begin(task.clone());
            Box::pin(run_task(task, started, rx, cancel, client, audit))
        });
        tracing::debug!(task = %task.task_id, tool = name, "the call goes on as a task");
        Ok(Answer::Complete(TaskAnswer::Task(CreateTaskResult::new(
            task,
        ))))
    }
}

/// Runs a task to its end: waits for its call, turns `tasks/cancel` into
/// the call's cancellation and the guest's progress into the task's status
/// message, and settles it.
async fn run_task(
    task: TaskContext,
    call: Call,
    mut events: mpsc::UnboundedReceiver<GuestEvent>,
    cancel: CancellationToken,
    client: Arc<TaskClient>,
    audit: Option<Scope>,
) -> Result<CallToolResult, TaskExit> {
    // A task dropped before its call ended (it expired) stops the guest.
    let _stop = cancel.clone().drop_guard();
    let ended = match call {
        Call::Ended(ended) => ended,
        Call::Running(mut call) => loop {
            tokio::select! {
                biased;
                ended = &mut call => break ended,
                () = task.cancelled(), if !cancel.is_cancelled() => cancel.cancel(),
                Some(event) = events.recv() => status(&task, event),
            }
        },
    };
    let cancelled = task.is_cancel_requested();
    let exit = match ended {
        Ok(Ok(result)) => Ok(result),
        Ok(Err(_)) if cancelled => Err(TaskExit::Cancelled),
        Ok(Err(BackendError::Suspended(_))) => Err(TaskExit::Error(
            super::lock(&client.stop).take().unwrap_or_else(|| {
                ErrorData::internal_error("the plugin stopped to wait for the client", None)
            }),
        )),
        Ok(Err(error)) => Err(TaskExit::Error(to_mcp_error(error))),
        Err(_) => Err(TaskExit::Error(ErrorData::internal_error(
            "the call ended abnormally",
            None,
        ))),
    };
    if let Some(audit) = &audit {
        match &exit {
            Ok(result) if result.is_error == Some(true) => audit.finish("isError", None),
            Ok(_) => audit.finish("ok", None),
            Err(TaskExit::Cancelled) => audit.finish("cancelled", None),
            Err(TaskExit::Error(error)) => {
                audit.finish("error", Some((error.code.0, &error.message)))
            }
        }
    }
    exit
}

/// What a guest's event says about its task: progress becomes the status
/// message; logs stay in ward's log.
fn status(task: &TaskContext, event: GuestEvent) {
    if let GuestEvent::Progress {
        progress,
        total,
        message,
    } = event
    {
        task.set_status_message(match (message, total) {
            (Some(message), _) => message,
            (None, Some(total)) => format!("{progress} of {total}"),
            (None, None) => format!("{progress}"),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::replay::StateKey;

    fn question(key: &str, before_task: bool) -> Question {
        Question {
            key: key.into(),
            method: ClientMethod::Elicit,
            params: serde_json::json!({
                "message": "Sure?",
                "requestedSchema": {"type": "object", "properties": {}}
            }),
            before_task,
        }
    }

    fn client(responses: serde_json::Value, state: Option<&str>) -> TaskClient {
        let capabilities: ClientCapabilities =
            serde_json::from_value(serde_json::json!({"elicitation": {}})).unwrap();
        let responses = serde_json::from_value(responses).unwrap();
        let (replay, _) = Replay::open(
            &KEY,
            b"bound".to_vec(),
            state,
            Some(responses),
            capabilities.clone(),
        )
        .unwrap();
        TaskClient::new(replay, capabilities)
    }

    static KEY: std::sync::LazyLock<StateKey> = std::sync::LazyLock::new(StateKey::random);

    #[tokio::test]
    async fn a_before_task_question_is_asked_before_the_task_and_starts_it() {
        // Unanswered: the guest stops, the request answers input-required.
        let first = client(serde_json::json!({}), None);
        assert!(first.ask(vec![question("confirm", true)]).await.is_err());
        assert!(matches!(*first.phase.borrow(), Phase::Stopped));
        assert!(!first.claim(), "a stopped call does not become a task");
        let state = first.replay.stopped(&KEY, None).unwrap().request_state;

        // Answered on the retry: the guest gets the answer and wants a task.
        let retry = client(
            serde_json::json!({"confirm": {"action": "accept", "content": {}}}),
            state.as_deref(),
        );
        let answers = retry.ask(vec![question("confirm", true)]).await.unwrap();
        assert_eq!(answers[0].as_ref().unwrap()["action"], "accept");
        assert!(retry.wants_task());
        assert!(retry.claim());
        assert!(!retry.claim(), "claimed once");
    }

    #[tokio::test]
    async fn an_ordinary_question_waits_for_the_task_and_becomes_its_input_request() {
        let tasks = Tasks::default();
        let client = Arc::new(client(serde_json::json!({}), None));
        let asking = {
            let client = client.clone();
            tokio::spawn(async move { client.ask(vec![question("name", false)]).await })
        };
        let mut phase = client.phase.subscribe();
        phase
            .wait_for(|p| matches!(p, Phase::WantsTask))
            .await
            .unwrap();
        assert!(client.claim());
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let task = tasks.spawn("me".into(), {
            let client = client.clone();
            move |context| {
                client.begin(context);
                Box::pin(async move {
                    let _ = done_rx.await;
                    Ok(CallToolResult::success(vec![]))
                })
            }
        });
        let id = task.task_id;
        // Someone else's task is unknown.
        assert_eq!(tasks.get(&id, "other").unwrap_err().code.0, -32602);
        let waiting = loop {
            let got = tasks.get(&id, "me").unwrap();
            if got.status() == rmcp::model::TaskStatus::InputRequired {
                break got;
            }
            tokio::task::yield_now().await;
        };
        let rmcp::model::TaskPayload::InputRequired { input_requests } = waiting.payload else {
            panic!("{waiting:?}");
        };
        assert!(input_requests.contains_key("name"));
        assert!(tasks.update(&id, "other", Default::default()).is_err());
        let answer = serde_json::json!({"action": "accept", "content": {"name": "Ada"}});
        tasks
            .update(&id, "me", [("name".to_string(), answer)].into())
            .unwrap();
        let answers = asking.await.unwrap().unwrap();
        assert_eq!(answers[0].as_ref().unwrap()["content"]["name"], "Ada");
        let _ = done_tx.send(());
    }
}
