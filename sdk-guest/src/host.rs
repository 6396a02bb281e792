//! What ward offers a plugin while it serves a request.

use crate::bindings::ward::plugin::host;

pub use crate::bindings::ward::plugin::host::LogLevel as Level;

/// Logs a message: it goes to ward's log and, as an MCP
/// `notifications/message`, to clients that asked for this level.
pub fn log(level: Level, message: impl AsRef<str>) {
    host::log(level, message.as_ref());
}

/// Reports progress on the current request (MCP `notifications/progress`,
/// sent when the client gave a progress token). `progress` should increase
/// with every call; `total` and `message` are optional:
/// `progress(50.0, 100.0, "halfway")` or `progress(3.0, None, None)`.
pub fn progress<'a>(progress: f64, total: impl Into<Option<f64>>, message: impl Into<Option<&'a str>>) {
    host::progress(progress, total.into(), message.into());
}

/// True once the client has cancelled the current request. ward interrupts a
/// cancelled plugin by itself; long-running work may check this to stop
/// cleanly between steps.
pub fn cancelled() -> bool {
    host::cancelled()
}

/// Tells subscribed clients that the resource at `uri` changed.
pub fn resource_updated(uri: impl AsRef<str>) {
    host::resource_updated(uri.as_ref());
}

/// Says that this plugin's tools, resources or prompts changed (for lists
/// that depend on more than the code, such as a file in a granted
/// directory): when the current call ends, ward lists the plugin again and
/// tells clients what changed, before it answers the call.
pub fn lists_changed() {
    host::lists_changed();
}
