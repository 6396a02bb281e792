//! Notification fan-out: which server and guest events reach which client,
//! as which MCP notifications.
//!
//! Three kinds of listener, one mapping ([`notifications_for`]):
//! - the **request** a guest is running for ([`EventForwarder`]): its logs at
//!   the request's level and its progress, if the request has a token;
//! - a **legacy session** ([`pump_server_events`], one task per connection
//!   started by `initialize`): list changes, its subscribed URIs, ward's own
//!   warnings at the level set by `logging/setLevel`;
//! - a 2026-07-28 **`subscriptions/listen` stream** ([`listen`]): what its
//!   accepted filter asks for, and no logs.
//!
//! Kept out of the handler so that every rule about who hears what is in
//! one file; the handler only decides when a listener starts.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmcp::model::{
    LoggingLevel, LoggingMessageNotification, LoggingMessageNotificationParam,
    ProgressNotificationParam, PromptListChangedNotification, ResourceListChangedNotification,
    ResourceUpdatedNotification, ResourceUpdatedNotificationParam, ServerNotification,
    ToolListChangedNotification,
};
use rmcp::service::SubscriptionContext;
use rmcp::{Peer, RoleServer};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::lock;
use crate::backend::{GuestEvent, ServerEvent};

/// Per-connection notification state of a legacy session: what it wants to
/// hear and the handles that end its streams. Stateless (2026-07-28)
/// requests never read it, except through `logging/setLevel` which only
/// legacy clients send.
#[derive(Debug)]
pub(super) struct Session {
    /// Set by `logging/setLevel`.
    pub(super) log_level: Mutex<LoggingLevel>,
    /// URIs passed to `resources/subscribe` and not yet unsubscribed.
    pub(super) subscriptions: Mutex<HashSet<String>>,
    /// Whether the server-event task of this connection runs.
    pub(super) pump_started: AtomicBool,
    /// Ends the server-event task and open `subscriptions/listen` streams
    /// when the connection ends.
    pub(super) shutdown: CancellationToken,
    /// Event receivers opened for `subscriptions/listen` requests before
    /// rmcp sends their acknowledgement, keyed by the request's task.
    early_listeners: Mutex<HashMap<tokio::task::Id, EarlyListener>>,
}

/// A receiver of server events opened for a `subscriptions/listen` request
/// before its acknowledgement went out.
#[derive(Debug)]
struct EarlyListener {
    opened: Instant,
    events: broadcast::Receiver<ServerEvent>,
}

/// How long an [`EarlyListener`] waits for its `listen` call. Only a failed
/// acknowledgement (the client went away) leaves one unclaimed.
const EARLY_LISTENER_TTL: Duration = Duration::from_secs(60);

impl Session {
    /// A session that hears logs from `log_level` up until told otherwise.
    pub(super) fn new(log_level: LoggingLevel) -> Self {
        Self {
            log_level: Mutex::new(log_level),
            subscriptions: Mutex::default(),
            pump_started: AtomicBool::new(false),
            shutdown: CancellationToken::new(),
            early_listeners: Mutex::default(),
        }
    }

    /// Keeps `events` for the `subscriptions/listen` request running in
    /// the current task, which rmcp acknowledges before it calls `listen`:
    /// a client may act on the acknowledgement (call a tool that updates a
    /// resource) before `listen` runs, and must not miss what follows.
    pub(super) fn open_early(&self, events: impl FnOnce() -> broadcast::Receiver<ServerEvent>) {
        if let Some(task) = tokio::task::try_id() {
            let mut early = lock(&self.early_listeners);
            early.retain(|_, listener| listener.opened.elapsed() < EARLY_LISTENER_TTL);
            early.insert(
                task,
                EarlyListener {
                    opened: Instant::now(),
                    events: events(),
                },
            );
        }
    }

    /// The receiver [`Session::open_early`] kept for the current task.
    fn take_early(&self) -> Option<broadcast::Receiver<ServerEvent>> {
        let task = tokio::task::try_id()?;
        lock(&self.early_listeners)
            .remove(&task)
            .map(|early| early.events)
    }
}

/// The numeric severity of a level (RFC 5424 order, least severe first),
/// since rmcp's `LoggingLevel` has no `Ord`.
fn severity(level: LoggingLevel) -> u8 {
    match level {
        LoggingLevel::Debug => 0,
        LoggingLevel::Info => 1,
        LoggingLevel::Notice => 2,
        LoggingLevel::Warning => 3,
        LoggingLevel::Error => 4,
        LoggingLevel::Critical => 5,
        LoggingLevel::Alert => 6,
        LoggingLevel::Emergency => 7,
    }
}

/// A `notifications/message` carrying one log line.
fn log_notification(level: LoggingLevel, logger: String, message: String) -> ServerNotification {
    ServerNotification::LoggingMessageNotification(LoggingMessageNotification::new(
        LoggingMessageNotificationParam::new(level, serde_json::Value::String(message))
            .with_logger(logger),
    ))
}

/// Sends the guest events of one request to the client.
pub(super) struct EventForwarder {
    /// Where the notifications go.
    pub(super) peer: Peer<RoleServer>,
    /// The request's progress token; without one, progress is dropped.
    pub(super) progress_token: Option<rmcp::model::ProgressToken>,
    /// The least severe log level the client wants; `None`: no logs.
    pub(super) min_level: Option<LoggingLevel>,
    /// The request's cancellation: once cancelled, nothing more is sent.
    pub(super) cancel: CancellationToken,
}

impl EventForwarder {
    /// Sends one guest event as the notification it becomes, if the client wants it.
    pub(super) async fn forward(&self, event: GuestEvent) {
        // After `notifications/cancelled` the client expects nothing more
        // about this request; rmcp drops the response, we drop the rest.
        if self.cancel.is_cancelled() {
            return;
        }
        let notification = match event {
            GuestEvent::Log {
                level,
                logger,
                message,
            } => {
                let Some(min) = self.min_level else { return };
                if severity(level) < severity(min) {
                    return;
                }
                log_notification(level, logger, message)
            }
            GuestEvent::Progress {
                progress,
                total,
                message,
            } => {
                let Some(token) = self.progress_token.clone() else {
                    return;
                };
                let mut param = ProgressNotificationParam::new(token, progress);
                param.total = total;
                param.message = message;
                ServerNotification::ProgressNotification(rmcp::model::ProgressNotification::new(
                    param,
                ))
            }
        };
        if let Err(error) = self.peer.send_notification(notification).await {
            tracing::debug!(%error, "dropping a request notification: the client is gone");
        }
    }
}

/// What one listener wants to hear about server events: the legacy session
/// (all list changes, its subscribed URIs, logs at its level) or one
/// `subscriptions/listen` stream (its accepted filter, no logs: the
/// 2026-07-28 stream carries no `notifications/message`).
struct Interest<'a> {
    tools: bool,
    resources: bool,
    prompts: bool,
    resource_uri: &'a (dyn Fn(&str) -> bool + Sync),
    min_log_level: Option<LoggingLevel>,
}

/// The one mapping from a server event to the notifications a listener gets,
/// shared by the legacy session task and `subscriptions/listen`.
fn notifications_for(event: &ServerEvent, interest: &Interest<'_>) -> Vec<ServerNotification> {
    let mut out = Vec::new();
    match event {
        ServerEvent::CatalogChanged(change) => {
            if change.tools && interest.tools {
                out.push(ServerNotification::ToolListChangedNotification(
                    ToolListChangedNotification::default(),
                ));
            }
            if change.resources && interest.resources {
                out.push(ServerNotification::ResourceListChangedNotification(
                    ResourceListChangedNotification::default(),
                ));
            }
            if change.prompts && interest.prompts {
                out.push(ServerNotification::PromptListChangedNotification(
                    PromptListChangedNotification::default(),
                ));
            }
        }
        ServerEvent::ResourceUpdated(uri) => {
            if (interest.resource_uri)(uri) {
                out.push(ServerNotification::ResourceUpdatedNotification(
                    ResourceUpdatedNotification::new(ResourceUpdatedNotificationParam::new(
                        uri.clone(),
                    )),
                ));
            }
        }
        ServerEvent::Log {
            level,
            logger,
            message,
        } => {
            if let Some(min) = interest.min_log_level {
                if severity(*level) >= severity(min) {
                    out.push(log_notification(*level, logger.clone(), message.clone()));
                }
            }
        }
    }
    out
}

/// A receiver that fell behind missed events it cannot recover; the catalog
/// may have changed in between, so tell the listener all lists changed.
const EVERYTHING_CHANGED: ServerEvent =
    ServerEvent::CatalogChanged(crate::backend::CatalogChange {
        tools: true,
        resources: true,
        prompts: true,
    });

/// Forwards server events to a legacy client until the connection ends.
pub(super) async fn pump_server_events(
    mut events: broadcast::Receiver<ServerEvent>,
    peer: Peer<RoleServer>,
    session: Arc<Session>,
    operator: bool,
) {
    loop {
        let event = tokio::select! {
            _ = session.shutdown.cancelled() => return,
            event = events.recv() => event,
        };
        let event = match event {
            Ok(event) => event,
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!(
                    missed,
                    "client event task lagged; announcing every list as changed"
                );
                EVERYTHING_CHANGED
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let notifications = {
            let subscriptions = lock(&session.subscriptions);
            let level = *lock(&session.log_level);
            let is_subscribed = |uri: &str| subscriptions.contains(uri);
            notifications_for(
                &event,
                &Interest {
                    tools: true,
                    resources: true,
                    prompts: true,
                    resource_uri: &is_subscribed,
                    min_log_level: operator.then_some(level),
                },
            )
        };
        for notification in notifications {
            if peer.send_notification(notification).await.is_err() {
                return;
            }
        }
    }
}

/// Serves one `subscriptions/listen` stream until the client cancels it,
/// the connection ends or the stream breaks: the events of its accepted
/// filter, from the receiver opened at acknowledgement (else a new one).
pub(super) async fn listen(
    session: &Session,
    subscribe: impl FnOnce() -> broadcast::Receiver<ServerEvent>,
    context: SubscriptionContext,
) {
    let mut events = session.take_early().unwrap_or_else(subscribe);
    let sink = context.sink().clone();
    let accepted = context.accepted().clone();
    let uris: HashSet<String> = accepted
        .resource_subscriptions
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let is_subscribed = |uri: &str| uris.contains(uri);
    let interest = Interest {
        tools: accepted.tools_list_changed == Some(true),
        resources: accepted.resources_list_changed == Some(true),
        prompts: accepted.prompts_list_changed == Some(true),
        resource_uri: &is_subscribed,
        min_log_level: None,
    };
    loop {
        let event = tokio::select! {
            _ = context.cancelled() => return,
            _ = session.shutdown.cancelled() => return,
            event = events.recv() => event,
        };
        let event = match event {
            Ok(event) => event,
            Err(broadcast::error::RecvError::Lagged(_)) => EVERYTHING_CHANGED,
            Err(broadcast::error::RecvError::Closed) => return,
        };
        for notification in notifications_for(&event, &interest) {
            if let Err(error) = sink.send(notification).await {
                tracing::debug!(%error, "subscription stream ended");
                return;
            }
        }
    }
}
