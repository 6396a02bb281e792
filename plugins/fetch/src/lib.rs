// ward example plugin `fetch`: GET a web page over wasi:http.
//
// One tool, `get` (exposed as `fetch_get`): an http:// or https:// URL in, the
// page out: HTML as Markdown, other text (text/*, application/json) as is.
// Redirects are not followed (a 3xx is an error naming the Location), and at
// most MAX_BODY bytes of the body are read.
//
// A plugin reaches only the hosts its policy lists. The example policy
// `fetch.toml` allows https://example.com (port 443) and nothing else:
//
//   cargo xtask plugins        # -> target/plugins/fetch.wasm, fetch.toml
//   ward serve --plugins target/plugins
//
// then call `fetch_get {"url": "https://example.com/"}`. Any other host is
// refused by ward (a tool error saying so; ward's log names the entry that
// would allow it).
use ward_guest::prelude::*;
use wasi::http::types::{ErrorCode, Fields, Method, OutgoingRequest, Scheme};

/// The most of a response body read; the rest is cut off with a note. Below
/// ward's default `limits.max-output` (1 MiB), so even a text page that is
/// returned as is fits in an answer.
const MAX_BODY: usize = 768 << 10;

#[derive(Deserialize, JsonSchema)]
struct Get {
    /// The http:// or https:// URL to fetch; its host must be allowed by the plugin's policy.
    url: String,
}

fn get(args: Get) -> Result<String> {
    let url = args.url.trim();
    let (scheme, rest) = if let Some(rest) = strip_prefix_ci(url, "https://") {
        (Scheme::Https, rest)
    } else if let Some(rest) = strip_prefix_ci(url, "http://") {
        (Scheme::Http, rest)
    } else {
        return Err(Error::invalid_params(format!(
            "cannot fetch {url:?}: the URL must start with http:// or https://"
        )));
    };
    let rest = rest.split('#').next().unwrap_or_default();
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) if rest[i..].starts_with('?') => (&rest[..i], format!("/{}", &rest[i..])),
        Some(i) => (&rest[..i], rest[i..].to_string()),
        None => (rest, "/".to_string()),
    };
    if authority.is_empty() || authority.contains('@') {
        return Err(Error::invalid_params(format!(
            "cannot fetch {url}: the URL needs a host (and no user:password@)"
        )));
    }

    let headers = Fields::new();
    let accept = b"text/html, text/*;q=0.9, application/json;q=0.9".to_vec();
    let _ = headers.append("accept", &accept);
    let request = OutgoingRequest::new(headers);
    let bad = |what: &str| Error::invalid_params(format!("cannot fetch {url}: bad {what}"));
    request
        .set_method(&Method::Get)
        .map_err(|()| bad("method"))?;
    request
        .set_scheme(Some(&scheme))
        .map_err(|()| bad("scheme"))?;
    request
        .set_authority(Some(authority))
        .map_err(|()| bad("host"))?;
    request
        .set_path_with_query(Some(&path))
        .map_err(|()| bad("path"))?;

    // host:port as `network.allow` lists it, for error messages.
    let port_given = authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| !p.contains(']'));
    let host_port = if port_given {
        authority.to_string()
    } else {
        let port = if matches!(scheme, Scheme::Https) {
            443
        } else {
            80
        };
        format!("{authority}:{port}")
    };
    let authority = host_port.as_str();
    let future = wasi::http::outgoing_handler::handle(request, None)
        .map_err(|e| failed(url, authority, e))?;
    future.subscribe().block();
    let response = match future.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(e))) => return Err(failed(url, authority, e)),
        Some(Err(())) | None => {
            return Err(Error::failed(format!("cannot fetch {url}: no response")))
        }
    };

    let status = response.status();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .first()
            .map(|v| String::from_utf8_lossy(v).trim().to_string())
    };
    if !(200..300).contains(&status) {
        let mut message = format!("cannot fetch {url}: HTTP {status}{}", reason(status));
        if (300..400).contains(&status) {
            match header("location") {
                Some(location) => message.push_str(&format!(
                    "; redirects are not followed, it points to {location}"
                )),
                None => message.push_str("; redirects are not followed"),
            }
        }
        return Err(Error::failed(message));
    }
    let content_type = header("content-type").unwrap_or_default();
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let html = mime == "text/html" || mime == "application/xhtml+xml";
    if !(html || mime.starts_with("text/") || mime == "application/json" || mime.ends_with("+json"))
    {
        let shown = if mime.is_empty() {
            "none given".to_string()
        } else {
            mime
        };
        return Err(Error::failed(format!(
            "cannot fetch {url}: unsupported content type ({shown}); only HTML, text/* and JSON are returned"
        )));
    }

    let body = response
        .consume()
        .map_err(|()| Error::failed(format!("cannot fetch {url}: no response body")))?;
    let stream = body
        .stream()
        .map_err(|()| Error::failed(format!("cannot fetch {url}: no response body")))?;
    let mut bytes = Vec::new();
    let mut truncated = false;
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => {
                bytes.extend_from_slice(&chunk);
                if bytes.len() > MAX_BODY {
                    bytes.truncate(MAX_BODY);
                    truncated = true;
                    break;
                }
            }
            Err(wasi::io::streams::StreamError::Closed) => break,
            Err(wasi::io::streams::StreamError::LastOperationFailed(e)) => {
                return Err(Error::failed(format!(
                    "cannot fetch {url}: reading the body failed: {}",
                    e.to_debug_string()
                )))
            }
        }
    }
    drop(stream);
    let text = String::from_utf8_lossy(&bytes);

    let mut out = if html {
        htmd::HtmlToMarkdown::builder()
            .skip_tags(vec!["script", "style", "noscript", "template", "head"])
            .build()
            .convert(&text)
            .map_err(|e| Error::failed(format!("cannot convert {url} to Markdown: {e}")))?
    } else {
        text.into_owned()
    };
    if truncated {
        out.push_str(&format!(
            "\n\n[fetch: the body was cut off at {} KiB]",
            MAX_BODY >> 10
        ));
    }
    Ok(out)
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// A wasi:http error as a tool error a person (or a model) can act on.
fn failed(url: &str, authority: &str, e: ErrorCode) -> Error {
    let host = authority
        .rsplit_once(':')
        .map_or(authority, |(host, _)| host);
    let why = match &e {
        ErrorCode::HttpRequestDenied => format!(
            "refused by ward's network policy: {authority} is not in `network.allow` of this plugin's policy"
        ),
        ErrorCode::DestinationIpProhibited => format!(
            "refused by ward's network policy: {authority} resolves to a loopback, private or other non-public \
             address, which is reached only if that address itself is in `network.allow`"
        ),
        ErrorCode::DnsError(p) => match (&p.rcode, p.info_code) {
            (Some(rcode), _) => format!("DNS lookup of {host} failed ({rcode})"),
            _ => format!("DNS lookup of {host} failed"),
        },
        ErrorCode::DnsTimeout => format!("DNS lookup of {host} timed out"),
        ErrorCode::DestinationNotFound => format!("{host} was not found (DNS)"),
        ErrorCode::DestinationUnavailable | ErrorCode::ConnectionRefused => {
            format!("{authority} refused the connection or is unavailable")
        }
        ErrorCode::ConnectionTimeout | ErrorCode::ConnectionReadTimeout | ErrorCode::ConnectionWriteTimeout => {
            format!("{authority} timed out")
        }
        ErrorCode::TlsCertificateError => format!("{authority} sent a TLS certificate that does not verify"),
        ErrorCode::TlsProtocolError | ErrorCode::TlsAlertReceived(_) => format!("TLS with {authority} failed ({e:?})"),
        other => format!("request failed ({other:?})"),
    };
    Error::failed(format!("cannot fetch {url}: {why}"))
}

fn reason(status: u16) -> &'static str {
    match status {
        301 => " Moved Permanently",
        302 => " Found",
        303 => " See Other",
        304 => " Not Modified",
        307 => " Temporary Redirect",
        308 => " Permanent Redirect",
        400 => " Bad Request",
        401 => " Unauthorized",
        403 => " Forbidden",
        404 => " Not Found",
        405 => " Method Not Allowed",
        410 => " Gone",
        429 => " Too Many Requests",
        500 => " Internal Server Error",
        502 => " Bad Gateway",
        503 => " Service Unavailable",
        504 => " Gateway Timeout",
        _ => "",
    }
}

// What the plugin requests (ward.toml beside Cargo.toml), for `ward inspect` and `ward add`.
ward_guest::manifest!();

ward_guest::plugin!(|p| {
    p.tool(
        "get",
        "Fetches a web page with HTTP GET and returns it as Markdown (HTML) or as is (other text and JSON). \
         Follows no redirects; reads at most 768 KiB of the body. Only hosts the plugin's policy allows can be reached.",
        get,
    )
    .read_only(true)
    .open_world(true);
});
