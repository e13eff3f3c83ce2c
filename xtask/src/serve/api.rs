//! The HTTP API: `GET /health`, `POST /predict`, `GET /` (the page); everything else is 404,
//! a wrong method 405. Bad requests get a status and a JSON `{"error": "..."}` that says what
//! to fix; every request is logged in one line and bounded in time.
//!
//! What a request may cost is bounded before any work: its body (413 from `Content-Length`,
//! before the body is read), its texts, and the rows of inference it asks for (explained
//! texts cost their rows). A full queue is 503 with `Retry-After`. Only JSON is accepted on
//! `POST /predict` (415 otherwise), so that a page a user visits cannot post to the local
//! server with a plain form; the `Host` header must name this server (DNS rebinding: 403),
//! and no cross-origin page may read an answer unless `--cors-origin` names it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::worker::{Answer, Inference, Limits, ModelInfo, Refusal};

/// Largest request body.
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// Most texts in one request.
pub const MAX_TEXTS: usize = 64;
/// Seconds a client is told to wait when the queue is full.
const RETRY_AFTER_SECONDS: u64 = 1;

/// The page served at `/`: self-contained, nothing else is ever served as a file.
const PAGE: &str = include_str!("page.html");

/// Who may talk to the server, beside its limits.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// The address it listens on (its `Host` is accepted).
    pub bound: Option<SocketAddr>,
    /// Other `Host` names accepted (`--allowed-host`), beside `localhost`, `127.0.0.1` and
    /// `[::1]`.
    pub allowed_hosts: Vec<String>,
    /// The one origin whose pages may read answers (`--cors-origin`); none by default.
    pub cors_origin: Option<String>,
}

/// What the handlers share.
pub struct AppState {
    /// The model's thread.
    pub inference: Inference,
    /// The model's classes, architecture and encoding.
    pub info: ModelInfo,
    /// What a request may cost.
    pub limits: Limits,
    /// Who may talk to the server.
    pub access: Access,
    /// Longest a request may take, reading its body included.
    pub timeout: Duration,
    /// Log one line per request on standard error (`bench serve` measures without).
    pub log_requests: bool,
}

/// The router of the API over `state`.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/health", get(health))
        .route("/predict", post(predict).options(preflight))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // The body extractor's own limit (Bytes) answers 413 past it, for bodies sent without
        // a length; `guard` answers from the header before reading.
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .layer(middleware::from_fn_with_state(state.clone(), log_and_bound))
        .with_state(state)
}

/// A JSON error answer.
fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": message.into() }))).into_response()
}

/// Logs one line per request (method, path without its query, status, milliseconds) and
/// answers 408 to a request that takes longer than the timeout (a body sent too slowly; its
/// work, if queued, is then dropped before it runs).
async fn log_and_bound(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let response = match tokio::time::timeout(state.timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => error(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the request took longer than {} s: send the whole body at once, or fewer \
                 texts to explain",
                state.timeout.as_secs_f64()
            ),
        ),
    };
    if state.log_requests {
        eprintln!(
            "{method} {path} {} {:.1} ms",
            response.status().as_u16(),
            started.elapsed().as_secs_f64() * 1000.0
        );
    }
    response
}

/// The host part of a `Host` header (without its port; IPv6 in brackets).
fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    host.rsplit_once(':').map_or(host, |(name, _)| name)
}

/// True if `host` (a `Host` header) names this server.
fn host_allowed(access: &Access, host: &str) -> bool {
    let name = host_name(host).to_ascii_lowercase();
    ["localhost", "127.0.0.1", "::1"].contains(&name.as_str())
        || access
            .bound
            .is_some_and(|addr| name == addr.ip().to_string())
        || access
            .allowed_hosts
            .iter()
            .any(|h| h.eq_ignore_ascii_case(&name) || h.eq_ignore_ascii_case(host))
}

/// Refusals made from the headers alone, before any body is read: a `Host` that does not
/// name this server (403), a `Content-Length` over the limit (413, and the connection closes
/// once the client has read it); and the CORS header on answers to the allowed origin.
async fn guard(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if !host_allowed(&state.access, host) {
        return error(
            StatusCode::FORBIDDEN,
            format!(
                "Host {host:?} does not name this server: use http://localhost:PORT/, or start \
                 it with --allowed-host {}",
                host_name(host)
            ),
        );
    }
    let length = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if length.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        let mut response = error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the body is {} bytes, over {MAX_BODY_BYTES} bytes: send fewer or shorter texts",
                length.unwrap_or_default()
            ),
        );
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return response;
    }
    let origin = request.headers().get(header::ORIGIN).cloned();
    let mut response = next.run(request).await;
    if let (Some(origin), Some(allowed)) = (origin, &state.access.cors_origin)
        && origin.as_bytes() == allowed.as_bytes()
    {
        response
            .headers_mut()
            .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        response
            .headers_mut()
            .insert(header::VARY, HeaderValue::from_static("Origin"));
    }
    response
}

/// `OPTIONS /predict`: a browser's preflight, allowed only for `--cors-origin`.
async fn preflight(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let origin = headers.get(header::ORIGIN);
    match (&state.access.cors_origin, origin) {
        (Some(allowed), Some(origin)) if origin.as_bytes() == allowed.as_bytes() => (
            StatusCode::NO_CONTENT,
            [
                (header::ACCESS_CONTROL_ALLOW_METHODS, "POST"),
                (header::ACCESS_CONTROL_ALLOW_HEADERS, "content-type"),
                (header::ACCESS_CONTROL_MAX_AGE, "600"),
            ],
        )
            .into_response(),
        _ => error(
            StatusCode::FORBIDDEN,
            "cross-origin requests are off: start the server with --cors-origin ORIGIN to let \
             one origin's pages use it",
        ),
    }
}

async fn page() -> Response {
    ([(header::CACHE_CONTROL, "no-store")], Html(PAGE)).into_response()
}

async fn health(State(state): State<Arc<AppState>>) -> Response {
    let status = &state.inference.status;
    let alive = status.alive.load(Ordering::SeqCst);
    let limits = &state.limits;
    let body = json!({
        "status": if alive { "ready" } else { "failed" },
        "classes": state.info.classes,
        "architecture": state.info.architecture,
        "stacked": state.info.stacked,
        "restarts": status.restarts.load(Ordering::SeqCst),
        "dropped": status.dropped.load(Ordering::SeqCst),
        "last_failure": status.last_failure.lock().ok().and_then(|f| f.clone()),
        "pending": state.inference.pending(),
        "limits": {
            "max_body_bytes": MAX_BODY_BYTES,
            "max_texts": MAX_TEXTS,
            "max_request_rows": limits.request_rows,
            "slice_rows": limits.slice_rows,
            "queue": limits.queue,
            "timeout_seconds": state.timeout.as_secs_f64(),
        },
    });
    let code = if alive {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, axum::Json(body)).into_response()
}

async fn not_found(request: Request) -> Response {
    error(
        StatusCode::NOT_FOUND,
        format!(
            "no such route: {}; the routes are GET /, GET /health and POST /predict",
            request.uri().path()
        ),
    )
}

async fn method_not_allowed(request: Request) -> Response {
    let allowed = match request.uri().path() {
        "/predict" => "POST",
        _ => "GET",
    };
    let mut response = error(
        StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "{} is not allowed on {}: use {allowed}",
            request.method(),
            request.uri().path()
        ),
    );
    if let Ok(value) = allowed.parse() {
        response.headers_mut().insert(header::ALLOW, value);
    }
    response
}

/// The body of `POST /predict`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PredictRequest {
    /// The texts to classify, at most [`MAX_TEXTS`].
    texts: Vec<String>,
    /// Explain each verdict word by word.
    #[serde(default)]
    explain: bool,
}

/// Reads and checks a `POST /predict` body: 415 unless it is JSON, 413 past the size, text or
/// row limit, 400 for anything that is not `{"texts": [...], "explain": bool}`; the status
/// and the message.
fn parse_request(
    state: &AppState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<PredictRequest, (StatusCode, String)> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("application/json") {
        return Err((
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "Content-Type is {content_type:?}: send the body as JSON with Content-Type: \
                 application/json"
            ),
        ));
    }
    let body = body.map_err(|rejection| {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            (
                status,
                format!("the body is over {MAX_BODY_BYTES} bytes: send fewer or shorter texts"),
            )
        } else {
            (status, rejection.body_text())
        }
    })?;
    let request: PredictRequest = serde_json::from_slice(&body).map_err(|e| {
        (
            StatusCode::BAD_REQUEST,
            format!(
                "the body must be JSON like {{\"texts\": [\"a review\"], \"explain\": false}}: \
                 {e}"
            ),
        )
    })?;
    if request.texts.is_empty() {
        return Err((
            StatusCode::BAD_REQUEST,
            "\"texts\" is empty: give at least one text".into(),
        ));
    }
    if request.texts.len() > MAX_TEXTS {
        return Err((
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "{} texts in one request: send at most {MAX_TEXTS} per request",
                request.texts.len()
            ),
        ));
    }
    let rows: usize = request
        .texts
        .iter()
        .map(|t| state.info.rows(t, request.explain))
        .sum();
    if rows > state.limits.request_rows {
        return Err((
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "explaining these texts costs {rows} rows of inference (each text one more \
                 than the words the model reads), over {} per request: send fewer or shorter \
                 texts, or ask without \"explain\"",
                state.limits.request_rows
            ),
        ));
    }
    Ok(request)
}

async fn predict(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let request = match parse_request(&state, &headers, body) {
        Ok(request) => request,
        Err((status, message)) => return error(status, message),
    };
    match state.inference.ask(request.texts, request.explain).await {
        Ok(answers) => {
            let predictions: Vec<Value> = answers
                .iter()
                .map(|a| answer_json(a, &state.info.classes))
                .collect();
            axum::Json(json!({ "predictions": predictions })).into_response()
        }
        Err(Refusal::Busy) => {
            let mut response = error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "the server is busy ({} requests waiting or running): try again in {} s",
                    state.limits.queue, RETRY_AFTER_SECONDS
                ),
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
            response
        }
        Err(Refusal::Failed(message)) => error(StatusCode::INTERNAL_SERVER_ERROR, message),
    }
}

/// One prediction as JSON: the label, its probability, every class's, and, when explained,
/// the words the model read with their weights and how many words it did not read.
fn answer_json(answer: &Answer, classes: &[String]) -> Value {
    let p = &answer.prediction;
    let by_class: serde_json::Map<String, Value> = classes
        .iter()
        .zip(&p.probabilities)
        .map(|(class, &prob)| (class.clone(), json!(prob)))
        .collect();
    let mut value = json!({
        "label": p.label,
        "probability": p.probability,
        "probabilities": by_class,
    });
    if let Some((tokens, unread)) = &answer.tokens {
        value["tokens"] = json!(tokens);
        value["words_not_read"] = json!(unread);
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_this_server_or_named() {
        let access = Access {
            bound: Some("192.168.1.5:8080".parse().unwrap()),
            allowed_hosts: vec!["reviews.example".into()],
            cors_origin: None,
        };
        for ok in [
            "localhost:8080",
            "LOCALHOST",
            "127.0.0.1:9",
            "[::1]:8080",
            "192.168.1.5:8080",
            "reviews.example",
            "reviews.example:80",
        ] {
            assert!(host_allowed(&access, ok), "{ok}");
        }
        for refused in [
            "",
            "evil.example",
            "localhost.evil.example",
            "127.0.0.2:8080",
            "[::2]",
        ] {
            assert!(!host_allowed(&access, refused), "{refused}");
        }
    }
}
