//! Who may call `/mcp`: the static bearer token, or OAuth 2.1 access tokens
//! (JWTs) from one issuer, and the protected resource metadata (RFC 9728)
//! that tells a client where to get one.
//!
//! Design decisions:
//! - **One door, one answer.** [`Authenticator::authenticate`] takes the
//!   request's headers and returns the [`Caller`] (put into the request's
//!   extensions, for the audit log and replay binding) or a [`Refusal`] that
//!   renders its own 401; http.rs knows nothing of tokens.
//! - **Only what the issuer signed counts.** Signatures are checked by the
//!   `jsonwebtoken` crate against the JWKS key whose `kid` matches (a token
//!   without `kid`: each key of its algorithm), and only RS256, ES256 and
//!   EdDSA are accepted, so neither `none` nor an HMAC key forged from a
//!   public key can pass. `iss`, `aud` and `exp` are required, `nbf` is
//!   honoured, with 60 s of leeway. Key material named by the token (`jku`,
//!   `jwk`, `x5u`) is never used.
//! - **A JWKS URL is re-fetched only for an unknown `kid`**, at most once
//!   per [`REFETCH_INTERVAL`], so a flood of made-up key ids costs the
//!   issuer one request per interval. A failed re-fetch keeps the old keys.
//! - **The token never reaches a log.** A refusal logs why (expired, wrong
//!   audience, ...) and the `kid`, nothing more.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, KeyOperations, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey, DecodingKeyKind, Validation};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{ResponseBody, MCP_PATH};
use crate::audit::Caller;

/// Where the protected resource metadata (RFC 9728) is served; also under
/// this path followed by `/mcp`, the form derived from the resource URL.
pub const METADATA_PATH: &str = "/.well-known/oauth-protected-resource";

/// A token unknown `kid` triggers a JWKS re-fetch at most this often, and a
/// failed refresh is retried no sooner.
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(30);

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
const LEEWAY_SECS: u64 = 60;
/// A JWKS document larger than this is refused.
const MAX_JWKS_BYTES: usize = 1 << 20;
/// How long fetching the JWKS may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// RSA keys shorter than this (bits) are not trusted.
const MIN_RSA_BITS: usize = 2048;
/// The signature algorithms accepted.
const ALGORITHMS: [Algorithm; 3] = [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];
/// The subject of a request authenticated with the static token.
const TOKEN_SUBJECT: &str = "token";

/// Where the issuer's signing keys (a JWKS, RFC 7517) come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    /// A file, read once at start.
    File(PathBuf),
    /// An `https://` URL (`http://` only on loopback), fetched at start and
    /// again when a token names an unknown `kid`.
    Url(String),
}

impl JwksSource {
    /// An `http://` or `https://` URL, else a file path.
    pub fn parse(value: &str) -> Self {
        let lower = value.get(..8).unwrap_or(value).to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            Self::Url(value.to_owned())
        } else {
            Self::File(PathBuf::from(value))
        }
    }
}

/// OAuth 2.1 resource server mode: every request needs an access token (a
/// JWT) from `issuer`, for `audience`.
#[derive(Debug, Clone)]
pub struct JwtOptions {
    /// The authorization server; a token's `iss` must equal it exactly.
    pub issuer: String,
    /// The `aud` a token must contain: ward's canonical URL. `None`: the
    /// bound `http://ADDR/mcp` (refused when the address is unspecified,
    /// such as 0.0.0.0, which no client uses).
    pub audience: Option<String>,
    /// The issuer's signing keys.
    pub jwks: JwksSource,
    /// Scopes listed as `scopes_supported` in the metadata (omitted if empty).
    pub scopes_supported: Vec<String>,
    /// How old keys fetched from a JWKS URL may get before the next token is
    /// checked against the issuer's current set (`--jwt-jwks-max-age`):
    /// a key the issuer removed, rotated out or revoked, stops verifying
    /// within this time.
    pub max_age: Duration,
}

/// Checks who is calling. Built once per listener.
pub(crate) enum Authenticator {
    /// No authentication: every request passes, without a [`Caller`].
    Open,
    /// The static token, as its SHA-256 (compared in constant time, so not
    /// even its length leaks).
    Token([u8; 32]),
    /// JWT access tokens.
    Jwt(Box<Jwt>),
}

impl Authenticator {
    /// The authenticator `token` (the static bearer token) or `jwt` asks
    /// for; they are exclusive. Reads or fetches the JWKS.
    pub(crate) async fn new(
        token: Option<&str>,
        jwt: Option<&JwtOptions>,
        local_addr: std::net::SocketAddr,
    ) -> Result<Self> {
        match (token, jwt) {
            (None, None) => Ok(Self::Open),
            (Some(token), None) => Ok(Self::Token(Sha256::digest(token.as_bytes()).into())),
            (Some(_), Some(_)) => bail!(
                "a static bearer token (--auth-token-file or $WARD_AUTH_TOKEN) and JWT \
                 authentication (--jwt-issuer) are exclusive; give one"
            ),
            (None, Some(options)) => Ok(Self::Jwt(Box::new(Jwt::new(options, local_addr).await?))),
        }
    }

    /// Whether any authentication is required.
    pub(crate) fn required(&self) -> bool {
        !matches!(self, Self::Open)
    }

    /// The caller `headers` authenticate (`None` when nothing is required),
    /// or why not.
    pub(crate) async fn authenticate(
        &self,
        headers: &HeaderMap,
    ) -> Result<Option<Caller>, Refusal> {
        let token = bearer_token(headers);
        match self {
            Self::Open => Ok(None),
            Self::Token(expected) => {
                let matches = token.is_some_and(|token| {
                    let given: [u8; 32] = Sha256::digest(token.as_bytes()).into();
                    bool::from(given.ct_eq(expected))
                });
                if !matches {
                    tracing::debug!(
                        token_given = token.is_some(),
                        "HTTP request refused: missing or wrong bearer token"
                    );
                    return Err(Refusal {
                        challenge: "Bearer realm=\"ward\"".into(),
                        message: "Unauthorized: bearer token required".into(),
                    });
                }
                // No scopes: the shared token stands for the operator.
                Ok(Some(Caller {
                    subject: Some(TOKEN_SUBJECT.into()),
                    ..Caller::default()
                }))
            }
            Self::Jwt(jwt) => {
                let metadata = jwt.metadata_url(headers);
                let Some(token) = token else {
                    tracing::debug!("HTTP request refused: no bearer token");
                    return Err(Refusal {
                        challenge: format!("Bearer resource_metadata=\"{metadata}\""),
                        message: "Unauthorized: an OAuth access token is required".into(),
                    });
                };
                match jwt.verify(token).await {
                    Ok(caller) => Ok(Some(caller)),
                    Err((invalid, kid)) => {
                        tracing::info!(
                            reason = invalid.describe(),
                            kid,
                            "HTTP request refused: invalid access token"
                        );
                        Err(Refusal {
                            challenge: format!(
                                "Bearer error=\"invalid_token\", error_description=\"{}\", \
                                 resource_metadata=\"{metadata}\"",
                                invalid.describe()
                            ),
                            message: format!("Unauthorized: {}", invalid.describe()),
                        })
                    }
                }
            }
        }
    }

    /// The protected resource metadata document, if `path` asks for it and
    /// JWT authentication is on; `None` lets the request go on.
    pub(crate) fn metadata(&self, method: &Method, path: &str) -> Option<Response<ResponseBody>> {
        let Self::Jwt(jwt) = self else {
            return None;
        };
        if !jwt.metadata_paths.iter().any(|p| p == path) {
            return None;
        }
        if method != Method::GET && method != Method::HEAD {
            let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed".into());
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return Some(response);
        }
        let body = match *method {
            Method::HEAD => Bytes::new(),
            _ => jwt.document.clone(),
        };
        Some(
            Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "application/json")
                // Public facts, fetched by browser-based clients too.
                .header(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")
                .body(Full::new(body).boxed())
                .expect("a valid response"),
        )
    }

    /// The `WWW-Authenticate` challenge of a 403 for a token that lacks
    /// `scopes` a request needs (RFC 6750 §3.1), pointing at the metadata
    /// when JWT authentication is on.
    pub(crate) fn scope_challenge(&self, headers: &HeaderMap, scopes: &[&str]) -> HeaderValue {
        let metadata = match self {
            Self::Jwt(jwt) => Some(jwt.metadata_url(headers)),
            _ => None,
        };
        HeaderValue::from_str(&scope_challenge(scopes, metadata.as_deref()))
            .unwrap_or_else(|_| HeaderValue::from_static("Bearer error=\"insufficient_scope\""))
    }
}

/// `Bearer error="insufficient_scope", scope="a b", resource_metadata="..."`.
/// Scopes that could not be quoted (`"`, `\`, controls, spaces) are left out.
pub(crate) fn scope_challenge(scopes: &[&str], resource_metadata: Option<&str>) -> String {
    let scope = scopes
        .iter()
        .filter(|s| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\')
        })
        .copied()
        .collect::<Vec<_>>()
        .join(" ");
    let mut challenge = format!("Bearer error=\"insufficient_scope\", scope=\"{scope}\"");
    if let Some(url) = resource_metadata {
        challenge.push_str(&format!(", resource_metadata=\"{url}\""));
    }
    challenge
}

/// Why a request was not let in; renders its own 401.
#[derive(Debug)]
pub(crate) struct Refusal {
    challenge: String,
    message: String,
}

impl Refusal {
    /// The 401 with its `WWW-Authenticate` challenge.
    pub(crate) fn response(&self) -> Response<ResponseBody> {
        self.render(StatusCode::UNAUTHORIZED)
    }

    fn render(&self, status: StatusCode) -> Response<ResponseBody> {
        let mut response = text(status, self.message.clone());
        let challenge = HeaderValue::from_str(&self.challenge)
            .unwrap_or_else(|_| HeaderValue::from_static("Bearer"));
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, challenge);
        response
    }
}

fn text(status: StatusCode, message: String) -> Response<ResponseBody> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from(message)).boxed())
        .expect("a valid response")
}

/// The token of an `Authorization: Bearer TOKEN` header.
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// JWT access token checking, and the metadata that goes with it.
pub(crate) struct Jwt {
    issuer: String,
    audience: String,
    /// `resource_metadata` for 401s, when the audience is an http(s) URL;
    /// otherwise it is built from the request's `Host`.
    metadata_url: Option<String>,
    /// Paths the metadata document is served at.
    metadata_paths: Vec<String>,
    /// The metadata document (JSON).
    document: Bytes,
    keys: ArcSwap<Vec<Key>>,
    remote: Option<Remote>,
}

/// A JWKS URL and the re-fetch rate limit.
struct Remote {
    url: String,
    client: reqwest::Client,
    /// When a token last caused a re-fetch; the lock also makes concurrent
    /// requests with the same new `kid` share one fetch, and refreshes wait
    /// their turn with it.
    last_refetch: tokio::sync::Mutex<Option<Instant>>,
    max_age: Duration,
    /// When the keys were last fetched, and when a refresh last failed.
    fetched: std::sync::Mutex<(Instant, Option<Instant>)>,
}

impl Remote {
    /// Whether the keys are older than `max_age` and a refresh may be tried.
    fn stale(&self) -> bool {
        let (fetched, failed) = *self
            .fetched
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        fetched.elapsed() >= self.max_age
            && failed.is_none_or(|failed| failed.elapsed() >= REFETCH_INTERVAL)
    }

    fn note(&self, fetched: bool) {
        let mut state = self
            .fetched
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match fetched {
            true => *state = (Instant::now(), None),
            false => state.1 = Some(Instant::now()),
        }
    }
}

/// One usable verification key.
struct Key {
    kid: Option<String>,
    alg: Algorithm,
    key: DecodingKey,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq)]
enum Invalid {
    Malformed,
    Algorithm,
    UnknownKid,
    NoKey,
    Signature,
    Expired,
    NotYetValid,
    Issuer,
    Audience,
    Missing(&'static str),
    ClaimFormat(&'static str),
}

impl Invalid {
    /// Also the `error_description`: no `"` or `\`.
    fn describe(&self) -> &'static str {
        match self {
            Self::Malformed => "the token is not a well-formed JWT",
            Self::Algorithm => "the token's algorithm is not accepted (RS256, ES256, EdDSA)",
            Self::UnknownKid => "no key of the issuer has the token's kid",
            Self::NoKey => "no key of the issuer matches the token's kid and alg",
            Self::Signature => "the token's signature is invalid",
            Self::Expired => "the token has expired",
            Self::NotYetValid => "the token is not valid yet (nbf)",
            Self::Issuer => "the token is from another issuer (iss)",
            Self::Audience => "the token is for another resource (aud)",
            Self::Missing("exp") => "the token has no exp claim",
            Self::Missing("iss") => "the token has no iss claim",
            Self::Missing(_) => "the token has no aud claim",
            Self::ClaimFormat("exp") => "the token's exp claim is malformed",
            Self::ClaimFormat("nbf") => "the token's nbf claim is malformed",
            Self::ClaimFormat("iss") => "the token's iss claim is malformed",
            Self::ClaimFormat(_) => "the token's aud claim is malformed",
        }
    }

    fn from_error(kind: &ErrorKind) -> Self {
        let claim = |name: &str| match name {
            "exp" => "exp",
            "nbf" => "nbf",
            "iss" => "iss",
            _ => "aud",
        };
        match kind {
            ErrorKind::ExpiredSignature => Self::Expired,
            ErrorKind::ImmatureSignature => Self::NotYetValid,
            ErrorKind::InvalidIssuer => Self::Issuer,
            ErrorKind::InvalidAudience => Self::Audience,
            ErrorKind::MissingRequiredClaim(name) => Self::Missing(claim(name)),
            ErrorKind::InvalidClaimFormat(name) => Self::ClaimFormat(claim(name)),
            ErrorKind::InvalidAlgorithm | ErrorKind::UnsupportedAlgorithm => Self::Algorithm,
            ErrorKind::InvalidSignature => Self::Signature,
            _ => Self::Malformed,
        }
    }
}

impl Jwt {
    async fn new(options: &JwtOptions, local_addr: std::net::SocketAddr) -> Result<Self> {
        if jsonwebtoken::crypto::CryptoProvider::try_get_default().is_none() {
            bail!("this ward was built without a JWT crypto provider");
        }
        if options.issuer.trim().is_empty() {
            bail!("--jwt-issuer is empty");
        }
        let audience = match &options.audience {
            Some(audience) if audience.trim().is_empty() => bail!("--jwt-audience is empty"),
            Some(audience) => audience.clone(),
            None if local_addr.ip().is_unspecified() => bail!(
                "--jwt-audience is required when listening on {local_addr}: the default \
                 audience is http://ADDR{MCP_PATH} as bound, which no client uses for an \
                 unspecified address; give ward's public URL (https://ward.example{MCP_PATH})"
            ),
            None => format!("http://{local_addr}{MCP_PATH}"),
        };
        let (metadata_url, derived_path) = match derive_metadata_url(&audience) {
            Some((url, path)) => (Some(url), Some(path)),
            None => (None, None),
        };
        let mut metadata_paths = vec![
            METADATA_PATH.to_owned(),
            format!("{METADATA_PATH}{MCP_PATH}"),
        ];
        metadata_paths.extend(derived_path.filter(|p| !metadata_paths.contains(p)));
        let mut document = serde_json::json!({
            "resource": audience,
            "authorization_servers": [options.issuer],
            "bearer_methods_supported": ["header"],
        });
        if !options.scopes_supported.is_empty() {
            document["scopes_supported"] = serde_json::json!(options.scopes_supported);
        }
        let (keys, remote) = match &options.jwks {
            JwksSource::File(path) => {
                let origin = format!("the JWKS file {}", path.display());
                let bytes = std::fs::read(path).with_context(|| format!("reading {origin}"))?;
                (parse_jwks(&bytes, &origin)?, None)
            }
            JwksSource::Url(url) => {
                let client = jwks_client(url)?;
                let keys = fetch_jwks(&client, url)
                    .await
                    .with_context(|| format!("fetching the JWKS {url}"))?;
                let remote = Remote {
                    url: url.clone(),
                    client,
                    // The start-up fetch does not count: the first new kid
                    // after start may re-fetch at once.
                    last_refetch: tokio::sync::Mutex::new(None),
                    max_age: options.max_age,
                    fetched: std::sync::Mutex::new((Instant::now(), None)),
                };
                (keys, Some(remote))
            }
        };
        tracing::info!(
            issuer = %options.issuer,
            %audience,
            keys = keys.len(),
            "HTTP requests need an OAuth access token (JWT)"
        );
        Ok(Self {
            issuer: options.issuer.clone(),
            audience,
            metadata_url,
            metadata_paths,
            document: Bytes::from(document.to_string()),
            keys: ArcSwap::from_pointee(keys),
            remote,
        })
    }

    /// The `resource_metadata` URL for a response to a request with `headers`.
    fn metadata_url(&self, headers: &HeaderMap) -> String {
        if let Some(url) = &self.metadata_url {
            return url.clone();
        }
        // Only characters a host (and port) may hold reach the header.
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .filter(|h| {
                !h.is_empty()
                    && h.chars()
                        .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
            })
            .unwrap_or("localhost");
        format!("http://{host}{METADATA_PATH}{MCP_PATH}")
    }

    /// The caller `token` names, if it is valid; else why not, and its `kid`.
    async fn verify(&self, token: &str) -> Result<Caller, (Invalid, Option<String>)> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| (Invalid::Malformed, None))?;
        let kid = header.kid.clone();
        let fail = |invalid| (invalid, kid.clone());
        if !ALGORITHMS.contains(&header.alg) {
            return Err(fail(Invalid::Algorithm));
        }
        let mut keys = self.current_keys().await;
        if let Some(kid) = &header.kid {
            if !keys.iter().any(|k| k.kid.as_ref() == Some(kid)) {
                keys = self
                    .refetch_for(kid)
                    .await
                    .ok_or_else(|| fail(Invalid::UnknownKid))?;
            }
        }
        let mut validation = Validation::new(header.alg);
        validation.leeway = LEEWAY_SECS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = true;
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        let mut tried = false;
        for key in keys
            .iter()
            .filter(|k| k.alg == header.alg && (header.kid.is_none() || k.kid == header.kid))
        {
            tried = true;
            match jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation) {
                Ok(data) => return Ok(caller(&data.claims)),
                // Another key of the same algorithm may have signed it.
                Err(error)
                    if matches!(
                        error.kind(),
                        ErrorKind::InvalidSignature
                            | ErrorKind::InvalidRsaKey(_)
                            | ErrorKind::InvalidEcdsaKey
                            | ErrorKind::InvalidEddsaKey
                            | ErrorKind::InvalidKeyFormat
                    ) => {}
                Err(error) => return Err(fail(Invalid::from_error(error.kind()))),
            }
        }
        Err(fail(if tried {
            Invalid::Signature
        } else {
            Invalid::NoKey
        }))
    }

    /// The keys to check a token with: fetched again first when they are
    /// older than the max age. If that fails, the keys ward has serve on
    /// (with a warning) and the next refresh is tried after
    /// [`REFETCH_INTERVAL`].
    async fn current_keys(&self) -> Arc<Vec<Key>> {
        let Some(remote) = self.remote.as_ref().filter(|r| r.stale()) else {
            return self.keys.load_full();
        };
        let _turn = remote.last_refetch.lock().await;
        // A request that waited for its turn may find the keys refreshed.
        if !remote.stale() {
            return self.keys.load_full();
        }
        match fetch_jwks(&remote.client, &remote.url).await {
            Ok(fresh) => {
                tracing::info!(url = %remote.url, keys = fresh.len(), "re-fetched the JWKS: the keys were older than --jwt-jwks-max-age ({} s)", remote.max_age.as_secs());
                remote.note(true);
                let fresh = Arc::new(fresh);
                self.keys.store(fresh.clone());
                fresh
            }
            Err(error) => {
                tracing::warn!(url = %remote.url, error = format!("{error:#}"), "refreshing the JWKS failed; keeping the keys ward has, and trying again in {} s", REFETCH_INTERVAL.as_secs());
                remote.note(false);
                self.keys.load_full()
            }
        }
    }

    /// Re-fetches the JWKS for a token naming the unknown `kid`, unless the
    /// last re-fetch was under [`REFETCH_INTERVAL`] ago. The keys to try,
    /// or `None` if `kid` is still unknown.
    async fn refetch_for(&self, kid: &str) -> Option<Arc<Vec<Key>>> {
        let remote = self.remote.as_ref()?;
        let mut last = remote.last_refetch.lock().await;
        // A request that waited for the lock may find the key fetched.
        let keys = self.keys.load_full();
        if keys.iter().any(|k| k.kid.as_deref() == Some(kid)) {
            return Some(keys);
        }
        if let Some(at) = *last {
            if at.elapsed() < REFETCH_INTERVAL {
                tracing::debug!(
                    kid,
                    "unknown kid; the JWKS was re-fetched under {}s ago, not again",
                    REFETCH_INTERVAL.as_secs()
                );
                return None;
            }
        }
        *last = Some(Instant::now());
        match fetch_jwks(&remote.client, &remote.url).await {
            Ok(fresh) => {
                tracing::info!(url = %remote.url, kid, keys = fresh.len(), "re-fetched the JWKS for an unknown kid");
                remote.note(true);
                let fresh = Arc::new(fresh);
                self.keys.store(fresh.clone());
                fresh
                    .iter()
                    .any(|k| k.kid.as_deref() == Some(kid))
                    .then_some(fresh)
            }
            Err(error) => {
                tracing::warn!(url = %remote.url, error = format!("{error:#}"), "re-fetching the JWKS failed; keeping the keys ward has");
                None
            }
        }
    }
}

/// The caller a verified token's claims describe.
fn caller(claims: &Map<String, Value>) -> Caller {
    let string = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
    Caller {
        subject: string("sub"),
        client_id: string("client_id").or_else(|| string("azp")),
        // A token always restricts by scope, even with none.
        scopes: Some(scopes(claims)),
    }
}

/// The scopes of a token: the `scope` claim (RFC 9068: space-separated)
/// and the `scp` claim (an array, or a space-separated string at some
/// issuers), in order, each once.
pub(crate) fn scopes(claims: &Map<String, Value>) -> Vec<String> {
    let mut scopes: Vec<String> = Vec::new();
    for name in ["scope", "scp"] {
        let words: Vec<&str> = match claims.get(name) {
            Some(Value::String(text)) => text.split_whitespace().collect(),
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .flat_map(str::split_whitespace)
                .collect(),
            _ => continue,
        };
        for word in words {
            if !scopes.iter().any(|s| s == word) {
                scopes.push(word.to_owned());
            }
        }
    }
    scopes
}

/// The RFC 9728 metadata URL of `resource` and its path, when `resource`
/// is an http(s) URL: the well-known prefix goes between host and path.
fn derive_metadata_url(resource: &str) -> Option<(String, String)> {
    let uri: http::Uri = resource.parse().ok()?;
    let scheme = uri.scheme_str().filter(|s| *s == "http" || *s == "https")?;
    let authority = uri.authority()?;
    let path = match uri.path() {
        "" | "/" => METADATA_PATH.to_owned(),
        path => format!("{METADATA_PATH}{}", path.trim_end_matches('/')),
    };
    Some((format!("{scheme}://{authority}{path}"), path))
}

/// The client that fetches `url`: https, or http to a loopback host only
/// (anyone on the path could swap the keys otherwise).
fn jwks_client(url: &str) -> Result<reqwest::Client> {
    let parsed = reqwest::Url::parse(url).with_context(|| format!("the JWKS URL {url}"))?;
    let host = parsed.host_str().unwrap_or_default();
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match parsed.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => bail!("the JWKS URL {url} must be https (plain http only to a loopback address)"),
    }
    reqwest::Client::builder()
        .timeout(FETCH_TIMEOUT)
        .redirect(reqwest::redirect::Policy::custom(|attempt| {
            if attempt.previous().len() >= 3 {
                attempt.error("too many redirects")
            } else if attempt.url().scheme() == "https" {
                attempt.follow()
            } else {
                attempt.error("redirected away from https")
            }
        }))
        .build()
        .context("building the JWKS client")
}

async fn fetch_jwks(client: &reqwest::Client, url: &str) -> Result<Vec<Key>> {
    let mut response = client
        .get(url)
        .header(header::ACCEPT, "application/json, application/jwk-set+json")
        .send()
        .await?
        .error_for_status()?;
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > MAX_JWKS_BYTES {
            bail!("the JWKS is larger than {MAX_JWKS_BYTES} bytes");
        }
        body.extend_from_slice(&chunk);
    }
    parse_jwks(&body, &format!("the JWKS {url}"))
}

/// The usable keys of a JWKS document; an error if there are none. Keys
/// ward cannot use (encryption keys, other curves, short RSA keys) are
/// skipped, and logged.
fn parse_jwks(bytes: &[u8], origin: &str) -> Result<Vec<Key>> {
    #[derive(serde::Deserialize)]
    struct Document {
        keys: Vec<Value>,
    }
    let document: Document = serde_json::from_slice(bytes)
        .with_context(|| format!("{origin} is not a JWK set (a JSON object with `keys`)"))?;
    let mut keys = Vec::new();
    for (index, value) in document.keys.into_iter().enumerate() {
        let kid = value.get("kid").and_then(Value::as_str).map(str::to_owned);
        match serde_json::from_value::<Jwk>(value)
            .map_err(|_| "not a JWK")
            .and_then(|jwk| usable(&jwk))
        {
            Ok((alg, key)) => keys.push(Key { kid, alg, key }),
            Err(reason) => tracing::info!(index, kid, reason, "{origin}: key skipped"),
        }
    }
    if keys.is_empty() {
        bail!("{origin} holds no key ward can verify with (RS256, ES256 on P-256 or EdDSA on Ed25519, for signatures)");
    }
    Ok(keys)
}

/// The algorithm a JWK verifies and its decoding key, or why it is unusable.
fn usable(jwk: &Jwk) -> Result<(Algorithm, DecodingKey), &'static str> {
    if jwk
        .common
        .public_key_use
        .as_ref()
        .is_some_and(|u| *u != PublicKeyUse::Signature)
    {
        return Err("not a signature key (use)");
    }
    if jwk
        .common
        .key_operations
        .as_ref()
        .is_some_and(|ops| !ops.contains(&KeyOperations::Verify))
    {
        return Err("not a verification key (key_ops)");
    }
    let alg = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => Algorithm::ES256,
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            Algorithm::EdDSA
        }
        _ => return Err("unsupported key type or curve"),
    };
    if jwk
        .common
        .key_algorithm
        .is_some_and(|declared| declared != KeyAlgorithm::from(alg))
    {
        return Err("its alg is not one ward accepts for its key type");
    }
    let key = DecodingKey::from_jwk(jwk).map_err(|_| "malformed key parameters")?;
    if let DecodingKeyKind::RsaModulusExponent { n, .. } = key.kind() {
        let significant = n.iter().skip_while(|b| **b == 0).count();
        if significant * 8 < MIN_RSA_BITS {
            return Err("RSA key shorter than 2048 bits");
        }
    }
    Ok((alg, key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn scopes_come_from_scope_and_scp() {
        assert_eq!(
            scopes(&claims(json!({"scope": "tools:call  files:read"}))),
            ["tools:call", "files:read"]
        );
        assert_eq!(
            scopes(&claims(json!({"scp": ["a", "b"], "scope": "b c"}))),
            ["b", "c", "a"]
        );
        // Some issuers put a space-separated string in `scp`.
        assert_eq!(scopes(&claims(json!({"scp": "x y"}))), ["x", "y"]);
        assert!(scopes(&claims(json!({"scope": 7, "scp": [1, null]}))).is_empty());
        assert!(scopes(&claims(json!({}))).is_empty());
    }

    #[test]
    fn caller_names_subject_and_client() {
        let caller = caller(&claims(json!({"sub": "ada", "azp": "cli", "scope": "s"})));
        assert_eq!(caller.subject.as_deref(), Some("ada"));
        assert_eq!(caller.client_id.as_deref(), Some("cli"));
        assert_eq!(caller.scopes, Some(vec!["s".to_owned()]));
        let caller = super::caller(&claims(json!({"client_id": "c", "azp": "a", "sub": 5})));
        assert_eq!(caller.client_id.as_deref(), Some("c"));
        assert_eq!(caller.subject, None);
    }

    #[test]
    fn metadata_url_is_derived_from_the_resource() {
        assert_eq!(
            derive_metadata_url("http://127.0.0.1:8080/mcp").unwrap(),
            (
                "http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp".into(),
                "/.well-known/oauth-protected-resource/mcp".into()
            )
        );
        assert_eq!(
            derive_metadata_url("https://ward.example/").unwrap().0,
            "https://ward.example/.well-known/oauth-protected-resource"
        );
        assert_eq!(derive_metadata_url("api://ward"), None);
        assert_eq!(derive_metadata_url("ward"), None);
    }

    #[test]
    fn jwks_source_is_a_url_or_a_file() {
        assert_eq!(
            JwksSource::parse("HTTPS://idp.example/jwks"),
            JwksSource::Url("HTTPS://idp.example/jwks".into())
        );
        assert_eq!(
            JwksSource::parse("keys/jwks.json"),
            JwksSource::File("keys/jwks.json".into())
        );
    }

    #[test]
    fn a_jwks_without_usable_keys_is_refused() {
        let error = parse_jwks(
            br#"{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}"#,
            "the JWKS file x",
        )
        .err()
        .unwrap();
        assert!(
            error.to_string().contains("the JWKS file x holds no key"),
            "{error}"
        );
        assert!(parse_jwks(b"[]", "the JWKS file x").is_err());
        // A P-256 key is used for ES256; a declared alg must agree.
        let ec = json!({"kty": "EC", "crv": "P-256", "kid": "e",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"});
        let keys = parse_jwks(json!({"keys": [ec]}).to_string().as_bytes(), "x").unwrap();
        assert_eq!(keys[0].alg, Algorithm::ES256);
        assert_eq!(keys[0].kid.as_deref(), Some("e"));
        let mut wrong = ec.clone();
        wrong["alg"] = json!("RS256");
        assert!(parse_jwks(json!({"keys": [wrong]}).to_string().as_bytes(), "x").is_err());
    }

    #[test]
    fn insufficient_scope_names_the_scopes() {
        let challenge = scope_challenge(
            &["files:write", "bad\"scope"],
            Some("http://h/.well-known/oauth-protected-resource/mcp"),
        );
        assert_eq!(
            challenge,
            "Bearer error=\"insufficient_scope\", scope=\"files:write\", \
             resource_metadata=\"http://h/.well-known/oauth-protected-resource/mcp\""
        );
    }
}
