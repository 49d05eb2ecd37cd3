//! Replays recorded vendor exchanges (`../shared/reference/recorded/`) through a local server on
//! 127.0.0.1 that answers only what was recorded: a request matching no recorded exchange gets a
//! 501 and is logged with the reason, so a contract test can assert that the client sent exactly
//! the recorded method, path, query, headers and body shape. Shared by the vendor contract tests.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::Value;

/// The recorded files of one vendor, by file name, or `None` (after saying so) when the folder is
/// not there (`FLEXGATE_RECORDED_DIR` overrides `../shared/reference/recorded`).
pub fn load(vendor: &str) -> Option<BTreeMap<String, Value>> {
    let root = std::env::var_os("FLEXGATE_RECORDED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/reference/recorded")
        });
    let folder = root.join(vendor);
    let Ok(entries) = std::fs::read_dir(&folder) else {
        println!(
            "skipped: no recorded exchanges at {} (set FLEXGATE_RECORDED_DIR)",
            folder.display()
        );
        return None;
    };
    let mut files = BTreeMap::new();
    for entry in entries {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        let value: Value = serde_json::from_str(&text)
            .unwrap_or_else(|error| panic!("{name} is not JSON: {error}"));
        files.insert(name, value);
    }
    Some(files)
}

/// The path and query of a recorded `url` or `url_template` (scheme and host dropped).
pub fn split_url(url: &str) -> (String, Vec<(String, String)>) {
    let without_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path_and_query = without_scheme
        .find('/')
        .map_or("/", |index| &without_scheme[index..]);
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let pairs = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    (path.to_owned(), pairs)
}

/// The type skeleton of a JSON value: objects keep their keys, arrays the skeleton of their first
/// item, scalars become their type name. Two bodies have the same shape when their skeletons match.
pub fn shape(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, value)| (key.clone(), shape(value)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.first().map(shape).into_iter().collect()),
        Value::String(_) => Value::String("string".into()),
        Value::Number(_) => Value::String("number".into()),
        Value::Bool(_) => Value::String("boolean".into()),
        Value::Null => Value::String("null".into()),
    }
}

/// What the body of a request must be.
#[derive(Clone, Debug)]
pub enum BodyRule {
    /// No body. A recorded `{}` on a GET/PUT/DELETE counts as none (the recording client sent `{}`
    /// on every call; the endpoints take no body).
    Empty,
    /// JSON of exactly this shape (see [`shape`]).
    JsonShape(Value),
    /// A form body with exactly these fields and values (order free).
    Form(Vec<(String, String)>),
    /// Anything: the source documents the reply of this call but not its request body.
    Any,
}

/// How a recorded path is matched: `{name}` segments of a documentation template match any one
/// segment; everything else must be equal.
#[derive(Clone, Debug)]
pub struct Exchange {
    /// The recorded file, for messages.
    pub file: String,
    pub method: Method,
    pub path: String,
    /// Exact query pairs (order free). For a documentation template without a query, the names the
    /// client may add (documented paging parameters), each value free.
    pub query: Vec<(String, String)>,
    pub free_query_names: Vec<&'static str>,
    /// Headers that must be present with exactly this value (names lower case).
    pub headers: Vec<(String, String)>,
    pub body: BodyRule,
    pub status: StatusCode,
    pub reply_headers: Vec<(String, String)>,
    /// `None`: an empty body.
    pub reply_body: Option<Vec<u8>>,
}

impl Exchange {
    /// The exchange of a recorded file with its request as recorded and its response as recorded
    /// (JSON body re-serialised; `null` → empty). Callers adjust fields for documented deviations.
    pub fn from_file(file: &str, recorded: &Value) -> Self {
        let request = &recorded["request"];
        let response = &recorded["response"];
        let url = request["url"]
            .as_str()
            .or_else(|| request["url_template"].as_str())
            .unwrap_or_else(|| panic!("{file}: no request url"));
        let (path, query) = split_url(url);
        let method = Method::from_bytes(request["method"].as_str().unwrap().as_bytes()).unwrap();
        let body = match &request["body"] {
            Value::Null => BodyRule::Empty,
            Value::String(text) if text.is_empty() => BodyRule::Empty,
            Value::Object(map) if map.is_empty() && method != Method::POST => BodyRule::Empty,
            other => BodyRule::JsonShape(shape(other)),
        };
        let status = StatusCode::from_u16(response["status"].as_u64().unwrap() as u16).unwrap();
        let mut reply_headers = Vec::new();
        if let Some(headers) = response["headers"].as_object() {
            for (name, value) in headers {
                let lower = name.to_ascii_lowercase();
                if matches!(lower.as_str(), "content-length" | "transfer-encoding") {
                    continue;
                }
                let values: Vec<String> = match value {
                    Value::Array(items) => items
                        .iter()
                        .filter_map(|item| item.as_str().map(str::to_owned))
                        .collect(),
                    Value::String(text) => vec![text.clone()],
                    _ => Vec::new(),
                };
                for value in values {
                    reply_headers.push((lower.clone(), value));
                }
            }
        }
        let reply_body = match &response["body"] {
            Value::Null => None,
            other => Some(serde_json::to_vec(other).unwrap()),
        };
        if reply_body.is_some() && !reply_headers.iter().any(|(name, _)| name == "content-type") {
            reply_headers.push(("content-type".into(), "application/json".into()));
        }
        Self {
            file: file.to_owned(),
            method,
            path,
            query,
            free_query_names: Vec::new(),
            headers: Vec::new(),
            body,
            status,
            reply_headers,
            reply_body,
        }
    }

    /// Why `request` is not this exchange (`None`: it is).
    fn mismatch(&self, request: &Seen) -> Option<String> {
        if request.method != self.method {
            return Some(format!("method {} ≠ {}", request.method, self.method));
        }
        let recorded: Vec<&str> = self.path.split('/').collect();
        let sent: Vec<&str> = request.path.split('/').collect();
        let path_ok = recorded.len() == sent.len()
            && recorded.iter().zip(&sent).all(|(want, got)| {
                (want.starts_with('{') && want.ends_with('}') && !got.is_empty())
                    || percent(want) == percent(got)
            });
        if !path_ok {
            return Some(format!("path {} ≠ {}", request.path, self.path));
        }
        let mut want: Vec<(String, String)> = self.query.clone();
        let mut got: Vec<(String, String)> = request
            .query
            .iter()
            .filter(|(name, _)| !self.free_query_names.contains(&name.as_str()))
            .cloned()
            .collect();
        want.sort();
        got.sort();
        if want != got {
            return Some(format!(
                "query {:?} ≠ recorded {:?}",
                request.query, self.query
            ));
        }
        for (name, value) in &self.headers {
            let sent = request
                .headers
                .get(name.as_str())
                .and_then(|v| v.to_str().ok());
            if sent != Some(value.as_str()) {
                return Some(format!("header {name}: {sent:?} ≠ {value:?}"));
            }
        }
        match &self.body {
            BodyRule::Empty => {
                let empty = request.body.is_empty()
                    || serde_json::from_slice::<Value>(&request.body)
                        .is_ok_and(|value| value == serde_json::json!({}));
                (!empty).then(|| {
                    format!(
                        "body {:?} where none was recorded",
                        String::from_utf8_lossy(&request.body)
                    )
                })
            }
            BodyRule::JsonShape(expected) => match serde_json::from_slice::<Value>(&request.body) {
                Ok(body) if &shape(&body) == expected => None,
                Ok(body) => Some(format!("body shape {} ≠ {expected}", shape(&body))),
                Err(_) => Some(format!(
                    "body {:?} is not JSON",
                    String::from_utf8_lossy(&request.body)
                )),
            },
            BodyRule::Any => None,
            BodyRule::Form(fields) => {
                let mut got: Vec<(String, String)> = url::form_urlencoded::parse(&request.body)
                    .into_owned()
                    .collect();
                let mut want = fields.clone();
                got.sort();
                want.sort();
                (got != want).then(|| format!("form {got:?} ≠ {want:?}"))
            }
        }
    }

    fn reply(&self) -> Response {
        let mut response = match &self.reply_body {
            Some(body) => (self.status, body.clone()).into_response(),
            None => self.status.into_response(),
        };
        let headers = response.headers_mut();
        headers.remove("content-type");
        for (name, value) in &self.reply_headers {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        response
    }
}

fn percent(segment: &str) -> String {
    percent_decode(segment)
}

fn percent_decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", text.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default()
}

/// A request the server received.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: Method,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    /// The recorded file that answered it, or why none did.
    pub outcome: Result<String, String>,
}

struct Shared {
    exchanges: Vec<Exchange>,
    seen: Mutex<Vec<Seen>>,
}

/// A running replay server.
pub struct Replay {
    pub base_url: String,
    shared: Arc<Shared>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl Replay {
    pub async fn start(exchanges: Vec<Exchange>) -> Self {
        let shared = Arc::new(Shared {
            exchanges,
            seen: Mutex::new(Vec::new()),
        });
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();
        let address = listener.local_addr().unwrap();
        let router = Router::new()
            .fallback(answer)
            .with_state(Arc::clone(&shared));
        let (shutdown, signal) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = signal.await;
                })
                .await;
        });
        Self {
            base_url: format!("http://{address}"),
            shared,
            _shutdown: shutdown,
        }
    }

    /// Every request received, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }

    /// Requests no recorded exchange answered, as `METHOD path?query: reason`.
    pub fn unrecorded(&self) -> Vec<String> {
        self.seen()
            .into_iter()
            .filter_map(|seen| {
                seen.outcome.err().map(|reason| {
                    format!("{} {}?{:?}: {reason}", seen.method, seen.path, seen.query)
                })
            })
            .collect()
    }

    /// How many requests each recorded file answered.
    pub fn answered(&self, file: &str) -> usize {
        self.seen()
            .iter()
            .filter(|seen| seen.outcome.as_deref() == Ok(file))
            .count()
    }

    /// Asserts that every request was recorded and every exchange answered at least once.
    pub fn assert_exact(&self, scenario: &str) {
        let unrecorded = self.unrecorded();
        assert!(
            unrecorded.is_empty(),
            "{scenario}: the client sent requests that were not recorded: {unrecorded:#?}"
        );
        self.assert_all_answered(scenario);
    }

    /// Asserts that every recorded exchange answered at least one request.
    pub fn assert_all_answered(&self, scenario: &str) {
        for exchange in &self.shared.exchanges {
            assert!(
                self.answered(&exchange.file) > 0,
                "{scenario}: the client never sent the request of {}",
                exchange.file
            );
        }
    }
}

async fn answer(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = to_bytes(Body::new(body), 1 << 20)
        .await
        .map(|bytes| bytes.to_vec())
        .unwrap_or_default();
    let query = parts
        .uri
        .query()
        .map(|query| {
            url::form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let mut seen = Seen {
        method: parts.method.clone(),
        path: parts.uri.path().to_owned(),
        query,
        headers: parts.headers.clone(),
        body,
        outcome: Err(String::new()),
    };
    let mut reasons = Vec::new();
    let mut reply = None;
    for exchange in &shared.exchanges {
        match exchange.mismatch(&seen) {
            None => {
                seen.outcome = Ok(exchange.file.clone());
                reply = Some(exchange.reply());
                break;
            }
            Some(reason) => reasons.push(format!("{}: {reason}", exchange.file)),
        }
    }
    let response = reply.unwrap_or_else(|| {
        // The reasons go in the body too, so the client's error shows why.
        let why = reasons.join("; ");
        seen.outcome = Err(why.clone());
        (StatusCode::NOT_IMPLEMENTED, format!("not recorded: {why}")).into_response()
    });
    shared.seen.lock().unwrap().push(seen);
    response
}
