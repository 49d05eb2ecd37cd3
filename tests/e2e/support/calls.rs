//! A client layer that records every request of the operator's client and what it asked of the
//! API server (for the RBAC and watch tests).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;

use axum::http::{Method, Request, Response, Uri};
use kube::client::Body;

/// What one request asks of the authorizer: verb, API group, resource (with its subresource),
/// namespace and name.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Access {
    pub verb: String,
    pub group: String,
    pub resource: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
}

impl Access {
    /// As the API server's request-info resolver reads the path; `None` outside `/api` and
    /// `/apis`.
    pub fn of(method: &Method, uri: &Uri) -> Option<Self> {
        let segments: Vec<&str> = uri.path().trim_matches('/').split('/').collect();
        let (group, rest) = match segments.as_slice() {
            ["api", _version, rest @ ..] => ("", rest),
            ["apis", group, _version, rest @ ..] => (*group, rest),
            _ => return None,
        };
        let (namespace, rest) = match rest {
            ["namespaces", namespace, rest @ ..] if !rest.is_empty() => {
                (Some((*namespace).to_owned()), rest)
            }
            _ => (None, rest),
        };
        let (resource, name) = match rest {
            [resource] => ((*resource).to_owned(), None),
            [resource, name] => ((*resource).to_owned(), Some((*name).to_owned())),
            [resource, name, subresource] => (
                format!("{resource}/{subresource}"),
                Some((*name).to_owned()),
            ),
            _ => return None,
        };
        let watch = uri
            .query()
            .unwrap_or_default()
            .split('&')
            .any(|p| p == "watch=true" || p == "watch=1");
        let verb = match method.as_str() {
            "GET" if name.is_some() => "get",
            "GET" if watch => "watch",
            "GET" => "list",
            "POST" => "create",
            "PUT" => "update",
            "PATCH" => "patch",
            "DELETE" if name.is_some() => "delete",
            "DELETE" => "deletecollection",
            _ => return None,
        };
        Some(Access {
            verb: verb.to_owned(),
            group: group.to_owned(),
            resource,
            namespace,
            name,
        })
    }
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let group = if self.group.is_empty() {
            "core"
        } else {
            &self.group
        };
        write!(f, "{} {}.{}", self.verb, self.resource, group)?;
        if let Some(namespace) = &self.namespace {
            write!(f, " in {namespace}")?;
        }
        match &self.name {
            Some(name) => write!(f, " named {name}"),
            None => Ok(()),
        }
    }
}

/// One request of the operator's client and the status it got (0: no response).
pub struct Call {
    pub method: Method,
    pub uri: Uri,
    pub access: Option<Access>,
    pub status: u16,
}

impl std::fmt::Debug for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} -> {}", self.method, self.uri, self.status)
    }
}

/// A client layer that records every request and its response status.
#[derive(Clone, Default)]
pub struct Calls(Arc<Mutex<Vec<Call>>>);

impl Calls {
    /// The calls answered 403 Forbidden so far.
    pub fn refused(&self) -> Vec<String> {
        self.0
            .lock()
            .expect("calls")
            .iter()
            .filter(|c| c.status == 403)
            .map(|c| format!("{c:?}"))
            .collect()
    }

    /// The resources of the watch requests so far (`vendorconnections`, `secrets`...).
    pub fn watched(&self) -> Vec<String> {
        self.0
            .lock()
            .expect("calls")
            .iter()
            .filter_map(|c| c.access.as_ref())
            .filter(|access| access.verb == "watch")
            .map(|access| access.resource.clone())
            .collect()
    }

    /// The calls so far, forgotten here.
    pub fn take(&self) -> Vec<Call> {
        std::mem::take(&mut *self.0.lock().expect("calls"))
    }
}

impl<S> tower::Layer<S> for Calls {
    type Service = Recording<S>;

    fn layer(&self, inner: S) -> Recording<S> {
        Recording {
            inner,
            calls: self.clone(),
        }
    }
}

pub struct Recording<S> {
    inner: S,
    calls: Calls,
}

impl<S, B> tower::Service<Request<Body>> for Recording<S>
where
    S: tower::Service<Request<Body>, Response = Response<B>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<B>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<B>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let method = request.method().clone();
        let uri = request.uri().clone();
        let calls = self.calls.clone();
        let response = self.inner.call(request);
        Box::pin(async move {
            let result = response.await;
            let status = result.as_ref().map_or(0, |r| r.status().as_u16());
            calls.0.lock().expect("calls").push(Call {
                access: Access::of(&method, &uri),
                method,
                uri,
                status,
            });
            result
        })
    }
}
