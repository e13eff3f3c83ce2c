//! The HTTP API: `GET /health`, `POST /predict`, `GET /` (the page); everything else is 404,
//! a wrong method 405. Bad requests get a status and a JSON `{"error": "..."}` that says what
//! to fix; every request is logged in one line and bounded in time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::worker::{Answer, Inference, ModelInfo};

/// Largest request body.
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// Most texts in one request.
pub const MAX_TEXTS: usize = 64;

/// The page served at `/`: self-contained, nothing else is ever served as a file.
const PAGE: &str = include_str!("page.html");

/// What the handlers share.
pub struct AppState {
    /// The model's thread.
    pub inference: Inference,
    /// The model's classes and architecture.
    pub info: ModelInfo,
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
        .route("/predict", post(predict))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // The body extractor's own limit (Bytes) answers 413 past it.
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(state.clone(), log_and_bound))
        .with_state(state)
}

/// A JSON error answer.
fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": message.into() }))).into_response()
}

/// Logs one line per request (method, path without its query, status, milliseconds) and
/// answers 408 to a request that takes longer than the timeout (a body sent too slowly).
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
                "the request took longer than {} s: send the whole body at once",
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

async fn page() -> Response {
    ([(header::CACHE_CONTROL, "no-store")], Html(PAGE)).into_response()
}

async fn health(State(state): State<Arc<AppState>>) -> Response {
    axum::Json(json!({
        "status": "ready",
        "classes": state.info.classes,
        "architecture": state.info.architecture,
        "stacked": state.info.stacked,
    }))
    .into_response()
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

/// Reads and checks a `POST /predict` body: 413 past the size or text limit, 400 for
/// anything that is not `{"texts": [...], "explain": bool}`; the status and the message.
fn parse_request(
    body: Result<Bytes, BytesRejection>,
) -> Result<PredictRequest, (StatusCode, String)> {
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
    Ok(request)
}

async fn predict(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let request = match parse_request(body) {
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
        Err(message) => error(StatusCode::INTERNAL_SERVER_ERROR, message),
    }
}

/// One prediction as JSON: the label, its probability, every class's, and the words when
/// explained.
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
    if let Some(tokens) = &answer.tokens {
        value["tokens"] = json!(tokens);
    }
    value
}
