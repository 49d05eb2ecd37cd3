//! Building blocks of the simulators' answers. The error bodies themselves (their fields, codes
//! and messages) are each vendor's wire facts and stay in its file.

use axum::http::header::{self, IntoHeaderName};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{Map, Value};

/// A JSON body with this status.
pub fn json(status: StatusCode, body: &Value) -> Response {
    (status, Json(body)).into_response()
}

/// A JSON body with an exact `Content-Type` (e.g. with or without `;charset=UTF-8`).
pub fn json_as(status: StatusCode, content_type: &'static str, body: &Value) -> Response {
    let response = (status, body.to_string()).into_response();
    with_header(
        response,
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    )
}

/// A text body (HTML or XML pages of a gateway) with this `Content-Type`.
pub fn text_as(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<String>,
) -> Response {
    let response = (status, body.into()).into_response();
    with_header(
        response,
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    )
}

/// `response` with one header set.
pub fn with_header(
    mut response: Response,
    name: impl IntoHeaderName,
    value: HeaderValue,
) -> Response {
    response.headers_mut().insert(name, value);
    response
}

/// 429 with an empty body and, if given, `Retry-After: <seconds>`.
pub fn too_many_requests(retry_after_seconds: Option<u64>) -> Response {
    let response = StatusCode::TOO_MANY_REQUESTS.into_response();
    match retry_after_seconds.and_then(|seconds| HeaderValue::from_str(&seconds.to_string()).ok()) {
        Some(value) => with_header(response, header::RETRY_AFTER, value),
        None => response,
    }
}

/// Whether the request's `Content-Type` is `media_type` (parameters such as `charset` allowed,
/// compared case-insensitively).
pub fn content_type_is(headers: &HeaderMap, media_type: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value
                .trim_start()
                .to_ascii_lowercase()
                .starts_with(media_type)
        })
}

/// The body as a JSON object; `None` when it is not JSON or not an object.
pub fn json_object(body: &[u8]) -> Option<Map<String, Value>> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(object)) => Some(object),
        _ => None,
    }
}

/// An error answer already rendered, boxed so handler `Result`s stay small.
#[derive(Debug)]
pub struct Rejection(Box<Response>);

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        *self.0
    }
}

impl From<Response> for Rejection {
    fn from(response: Response) -> Self {
        Self(Box::new(response))
    }
}

/// A handler's answer: the response, or a rejection rendered by the vendor's rules.
pub type Reply<E = Rejection> = Result<Response, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn headers_and_bodies() {
        let response = json_as(StatusCode::OK, "application/json;charset=UTF-8", &json!({}));
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/json;charset=UTF-8"
        );
        let limited = too_many_requests(Some(2));
        assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(limited.headers()[header::RETRY_AFTER], "2");
        assert!(!too_many_requests(None)
            .headers()
            .contains_key(header::RETRY_AFTER));
        assert!(json_object(b"{\"a\":1}").is_some());
        assert!(json_object(b"[1]").is_none() && json_object(b"{").is_none());
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("Application/JSON; charset=utf-8"),
        );
        assert!(content_type_is(&headers, "application/json"));
        assert!(!content_type_is(
            &headers,
            "application/x-www-form-urlencoded"
        ));
    }
}
