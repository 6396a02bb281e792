//! Input-required results (MCP 2026-07-28, SEP-2322) by deterministic
//! replay.
//!
//! A 2026-07-28 server cannot send requests to its client. ward runs every
//! call in a fresh instance, so a plugin that asks the client is simply run
//! again: the first run stops at the first question that has no answer and
//! becomes an `InputRequiredResult`; the client retries with its answers and
//! the `requestState`; the plugin runs from the start and is handed the
//! recorded answers in order, until it finishes or asks something new.
//!
//! `requestState` is the only memory between rounds, so any replica holding
//! the same key can serve a retry. It is sealed (HMAC, rmcp's
//! [`RequestStateCodec`]), bound to the request (method, item, arguments),
//! names the plugin version that asked, and expires after [`STATE_TTL`]: a
//! state cannot be altered, moved to another request or kept for later,
//! and a replay runs only on the plugin version that asked. An answer is
//! checked as the MCP result of its question before the guest sees it.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::{
    ClientCapabilities, ErrorData, InputRequest, InputRequiredResult, InputResponses,
    RequestStateCodec, RequestStateError, SealOptions,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use super::client::{check_answer, declared, request, required};
use crate::backend::{
    ClientAnswer, ClientMethod, ClientRequests, Question, Suspended, MAX_CLIENT_REQUESTS_PER_CALL,
};

/// How long a `requestState` stays valid: long enough for a person to
/// answer an elicitation, short enough that a leaked one soon expires.
pub const STATE_TTL: Duration = Duration::from_secs(60 * 60);

/// The key that seals `requestState`, and how long a sealed state lasts.
#[derive(Clone)]
pub struct StateKey(Arc<RequestStateCodec>, Duration);

impl std::fmt::Debug for StateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StateKey(..)")
    }
}

impl StateKey {
    /// A key from bytes an operator gave (`--state-key-file`); replicas that
    /// share it accept each other's states.
    pub fn new(key: Vec<u8>) -> Result<Self, String> {
        RequestStateCodec::try_new(key)
            .map(|codec| Self(Arc::new(codec), STATE_TTL))
            .map_err(|e| e.to_string())
    }

    /// The key in the file at `path` (`--state-key-file`): its contents,
    /// surrounding whitespace trimmed, at least
    /// [`RequestStateCodec::MIN_KEY_LENGTH`] bytes long (HMAC-SHA256's block of
    /// security).
    pub fn read_file(path: &std::path::Path) -> anyhow::Result<Self> {
        let bytes = std::fs::read(path)
            .map_err(|e| anyhow::anyhow!("reading the state key file {}: {e}", path.display()))?;
        let key = bytes.trim_ascii().to_vec();
        Self::new(key).map_err(|e| {
            anyhow::anyhow!(
                "the state key file {}: {e}; make one with `openssl rand -base64 48 > {}`",
                path.display(),
                path.display()
            )
        })
    }

    /// A random key of this process: its states are refused by any other
    /// process, including this one after a restart.
    pub fn random() -> Self {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).expect("the operating system provides random bytes");
        Self(Arc::new(RequestStateCodec::new(key.to_vec())), STATE_TTL)
    }
}

/// What a sealed `requestState` carries.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct State {
    /// The sha256 (hex) of the plugin version that asked.
    plugin: String,
    /// Every question asked so far: key → digest of its method and params.
    asked: BTreeMap<String, String>,
    /// The answers received so far, by key.
    answers: BTreeMap<String, Value>,
}

/// The request a state is bound to: its method, item and arguments, and
/// who sent it (the authenticated caller over HTTP, when there is one).
/// serde_json writes an object's keys sorted (no `preserve_order`), so the
/// same arguments bind the same however the client ordered them.
pub(super) fn binding(method: &str, item: &str, arguments: &Value, caller: &str) -> Vec<u8> {
    let mut hash = Sha256::new();
    for part in [method, item, caller] {
        hash.update(part.as_bytes());
        hash.update(b"\0");
    }
    hash.update(arguments.to_string().as_bytes());
    hash.finalize().to_vec()
}

/// The client of one 2026-07-28 request, as seen by the guest serving it:
/// answers what was answered in earlier rounds and stops the guest at the
/// first question that was not.
pub(super) struct Replay {
    capabilities: ClientCapabilities,
    /// What the state is bound to ([`binding`]).
    binding: Vec<u8>,
    round: Mutex<Round>,
}

#[derive(Default)]
struct Round {
    asked: BTreeMap<String, String>,
    answers: BTreeMap<String, Value>,
    /// Questions of this run still without an answer, in order of asking.
    pending: Vec<(String, InputRequest)>,
    /// Why the guest was stopped, when not for `pending`.
    stop: Option<ErrorData>,
}

impl Replay {
    /// The replay of a request bound to `binding`, continuing from its
    /// `requestState` and `inputResponses` if it has them. Also returns the
    /// plugin version the retry must run on. A state that does not open is
    /// the client's error.
    pub(super) fn open(
        key: &StateKey,
        binding: Vec<u8>,
        state: Option<&str>,
        responses: Option<InputResponses>,
        capabilities: ClientCapabilities,
    ) -> Result<(Self, Option<[u8; 32]>), ErrorData> {
        let state: State = match state {
            None => State::default(),
            Some(sealed) => key.0.open_json_with(sealed, &binding).map_err(refused)?,
        };
        let pin = match state.plugin.as_str() {
            "" => None,
            hex => {
                Some(parse_digest(hex).ok_or_else(|| refused(RequestStateError::MalformedFormat))?)
            }
        };
        // Answers count only for questions that were asked (the state says
        // which), once: a client cannot answer a question before it saw it,
        // and other keys are ignored, as the spec says.
        let mut answers = state.answers;
        for (key, answer) in responses.unwrap_or_default() {
            if state.asked.contains_key(&key) {
                answers.entry(key).or_insert(answer);
            } else {
                tracing::debug!("ignoring inputResponses[{key:?}]: nothing was asked under it");
            }
        }
        let round = Round {
            asked: state.asked,
            answers,
            ..Round::default()
        };
        Ok((
            Self {
                capabilities,
                binding,
                round: Mutex::new(round),
            },
            pin,
        ))
    }

    /// What to answer for a request whose guest was stopped: an
    /// input-required result carrying the new questions and the state for
    /// the retry (`plugin` is the version that ran), or the error that
    /// stopped it.
    pub(super) fn stopped(
        &self,
        key: &StateKey,
        plugin: Option<[u8; 32]>,
    ) -> Result<InputRequiredResult, ErrorData> {
        let mut round = lock(&self.round);
        if let Some(error) = round.stop.take() {
            return Err(error);
        }
        if round.pending.is_empty() {
            return Err(ErrorData::internal_error(
                "the plugin stopped to wait for the client but asked nothing",
                None,
            ));
        }
        let state = State {
            plugin: plugin.map(hex).unwrap_or_default(),
            asked: round.asked.clone(),
            answers: round.answers.clone(),
        };
        let options = SealOptions::new().associated_data(&self.binding).ttl(key.1);
        let sealed = key.0.seal_json_with(&state, &options).map_err(|e| {
            ErrorData::internal_error(format!("cannot seal requestState: {e}"), None)
        })?;
        let requests = std::mem::take(&mut round.pending).into_iter().collect();
        Ok(InputRequiredResult::new(Some(requests), Some(sealed)))
    }

    /// Answers one round from the recorded answers, or stops the guest
    /// ([`Suspended`]) at the first question without one.
    pub(super) fn answer(&self, questions: Vec<Question>) -> Result<Vec<ClientAnswer>, Suspended> {
        let mut round = lock(&self.round);
        let mut answers = Vec::with_capacity(questions.len());
        for Question {
            key,
            method,
            params,
            ..
        } in questions
        {
            if !declared(&self.capabilities, method) {
                // The spec forbids asking; the whole request fails (-32021).
                round.stop = Some(ErrorData::missing_required_client_capability(required(
                    method,
                )));
                return Err(Suspended);
            }
            let digest = question_digest(method, &params);
            if round
                .asked
                .get(&key)
                .is_some_and(|before| *before != digest)
            {
                round.stop = Some(ErrorData::internal_error(
                    format!(
                        "the plugin asked `{key}` differently than before (on an earlier run of \
                         this request, or twice in one run): a plugin must ask the same \
                         questions in the same order on every run, because ward replays it; \
                         send the request again without requestState"
                    ),
                    None,
                ));
                return Err(Suspended);
            }
            let input = match request(method, params) {
                Ok(input) => input,
                Err(message) => {
                    answers.push(Err(message));
                    continue;
                }
            };
            round.asked.insert(key.clone(), digest);
            if round.asked.len() > MAX_CLIENT_REQUESTS_PER_CALL as usize {
                // Replays must not ask more than one run may.
                round.stop = Some(ErrorData::internal_error(
                    format!(
                        "the plugin asked the client more than {MAX_CLIENT_REQUESTS_PER_CALL} \
                         questions in one request (across its rounds)"
                    ),
                    None,
                ));
                return Err(Suspended);
            }
            match round.answers.get(&key) {
                Some(answer) => {
                    if let Err(e) = check_answer(method, answer) {
                        round.stop = Some(ErrorData::invalid_params(
                            format!("inputResponses[\"{key}\"] is {e}"),
                            Some(serde_json::json!({ "key": key })),
                        ));
                        return Err(Suspended);
                    }
                    answers.push(Ok(answer.clone()));
                }
                None => round.pending.push((key, input)),
            }
        }
        if round.pending.is_empty() {
            Ok(answers)
        } else {
            Err(Suspended)
        }
    }
}

impl ClientRequests for Replay {
    fn ask(
        &self,
        questions: Vec<Question>,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<ClientAnswer>, Suspended>> + Send + '_>> {
        let answers = self.answer(questions);
        Box::pin(std::future::ready(answers))
    }

    fn supports(&self, method: ClientMethod) -> bool {
        declared(&self.capabilities, method)
    }
}

/// The error for a `requestState` that does not open.
fn refused(error: RequestStateError) -> ErrorData {
    let message = match error {
        RequestStateError::Expired => format!(
            "requestState has expired (it is valid for {} minutes); send the request again \
             without requestState and inputResponses",
            STATE_TTL.as_secs() / 60
        ),
        _ => "requestState failed its integrity check: it was altered, belongs to another \
              request, or was issued by a server with another key; send the request again \
              without requestState and inputResponses"
            .to_string(),
    };
    ErrorData::invalid_params(message, None)
}

/// What identifies a question: its method and parameters.
fn question_digest(method: ClientMethod, params: &Value) -> String {
    let mut hash = Sha256::new();
    hash.update(method.as_str().as_bytes());
    hash.update(b"\0");
    hash.update(params.to_string().as_bytes());
    hex(hash.finalize().into())
}

fn hex(digest: [u8; 32]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_digest(hex: &str) -> Option<[u8; 32]> {
    let mut digest = [0u8; 32];
    if hex.len() != 64 {
        return None;
    }
    for (i, byte) in digest.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(digest)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elicit(key: &str, message: &str) -> Question {
        Question {
            before_task: false,
            key: key.into(),
            method: ClientMethod::Elicit,
            params: serde_json::json!({
                "message": message,
                "requestedSchema": {"type": "object", "properties": {}}
            }),
        }
    }

    fn all() -> ClientCapabilities {
        serde_json::from_value(serde_json::json!({"elicitation": {}, "sampling": {}, "roots": {}}))
            .unwrap()
    }

    fn accept() -> Value {
        serde_json::json!({"action": "accept", "content": {}})
    }

    /// One run: the replay of `state` with `responses`, asked `questions`.
    fn run(
        key: &StateKey,
        state: Option<&str>,
        responses: Value,
        questions: Vec<Question>,
    ) -> (Result<Vec<ClientAnswer>, Suspended>, Replay) {
        let responses = serde_json::from_value(responses).unwrap();
        let (replay, _) =
            Replay::open(key, b"bound".to_vec(), state, Some(responses), all()).unwrap();
        (replay.answer(questions), replay)
    }

    #[test]
    fn answers_come_back_in_order_across_rounds() {
        let key = StateKey::random();
        let (answers, replay) = run(&key, None, serde_json::json!({}), vec![elicit("a", "A?")]);
        assert!(answers.is_err());
        let first = replay.stopped(&key, Some([7; 32])).unwrap();
        assert!(first.input_requests.unwrap().contains_key("a"));
        let state = first.request_state.unwrap();

        let (answers, replay) = run(
            &key,
            Some(&state),
            serde_json::json!({"a": accept(), "unasked": accept()}),
            vec![elicit("a", "A?"), elicit("b", "B?")],
        );
        assert!(answers.is_err(), "b has no answer yet");
        let second = replay.stopped(&key, Some([7; 32])).unwrap();
        assert_eq!(
            second.input_requests.unwrap().keys().collect::<Vec<_>>(),
            ["b"]
        );
        // The state keeps a's answer and ignored the key nobody asked.
        let state: State = key
            .0
            .open_json_with(&second.request_state.unwrap(), b"bound")
            .unwrap();
        assert_eq!(state.answers.keys().collect::<Vec<_>>(), ["a"]);
        assert_eq!(state.plugin, hex([7; 32]));
    }

    #[test]
    fn a_question_asked_differently_is_refused() {
        let key = StateKey::random();
        let (_, replay) = run(&key, None, serde_json::json!({}), vec![elicit("a", "A?")]);
        let state = replay.stopped(&key, None).unwrap().request_state.unwrap();
        let (answers, replay) = run(
            &key,
            Some(&state),
            serde_json::json!({"a": accept()}),
            vec![elicit("a", "Another question?")],
        );
        assert!(answers.is_err());
        let error = replay.stopped(&key, None).unwrap_err();
        assert!(error.message.contains("differently"), "{error:?}");
    }

    #[test]
    fn a_state_expires() {
        let key = StateKey(StateKey::random().0, Duration::from_millis(1));
        let (_, replay) = run(&key, None, serde_json::json!({}), vec![elicit("a", "A?")]);
        let state = replay.stopped(&key, None).unwrap().request_state.unwrap();
        // Expiry is time passing; there is nothing to wait on but the clock.
        std::thread::sleep(Duration::from_millis(5));
        let error = Replay::open(&key, b"bound".to_vec(), Some(&state), None, all())
            .err()
            .unwrap();
        assert!(error.message.contains("expired"), "{error:?}");
        // Another binding, or another key: the integrity check.
        let fresh = StateKey::random();
        let error = Replay::open(&fresh, b"bound".to_vec(), Some(&state), None, all())
            .err()
            .unwrap();
        assert!(error.message.contains("integrity check"), "{error:?}");
    }

    #[test]
    fn a_capability_the_client_lacks_stops_the_request() {
        let key = StateKey::random();
        let (replay, _) = Replay::open(
            &key,
            b"bound".to_vec(),
            None,
            None,
            ClientCapabilities::default(),
        )
        .unwrap();
        assert!(!replay.supports(ClientMethod::ListRoots));
        let roots = Question {
            before_task: false,
            key: "r".into(),
            method: ClientMethod::ListRoots,
            params: serde_json::json!({}),
        };
        assert!(replay.answer(vec![roots]).is_err());
        let error = replay.stopped(&key, None).unwrap_err();
        assert_eq!(error.code.0, -32021);
        assert_eq!(
            error.data.unwrap()["requiredCapabilities"],
            serde_json::json!({"roots": {}})
        );
    }
}
