//! Errors as JSON: `{"error": "...", "diagnostics": [{file, line, column, path, message}]}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use framework::engine::CommandError;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Diagnostic {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<u32>,
    pub path: String,
    pub message: String,
}

impl From<&compose::Diagnostic> for Diagnostic {
    fn from(d: &compose::Diagnostic) -> Self {
        Diagnostic {
            file: d.file.clone(),
            line: Some(d.pos.line),
            column: Some(d.pos.column),
            path: d.path.clone(),
            message: d.message.clone(),
        }
    }
}

impl From<&framework::translate::Problem> for Diagnostic {
    fn from(p: &framework::translate::Problem) -> Self {
        Diagnostic { file: String::new(), line: None, column: None, path: p.path.clone(), message: p.message.clone() }
    }
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub diagnostics: Vec<Diagnostic>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into(), diagnostics: Vec::new() }
    }

    pub fn with(mut self, diagnostics: Vec<Diagnostic>) -> ApiError {
        self.diagnostics = diagnostics;
        self
    }
}

/// A short random id that ties a generic 5xx answer to its log line.
fn request_id() -> String {
    let mut bytes = [0u8; 6];
    // An id that failed to be random still ties answer and log together.
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl ApiError {
    /// A 500 whose detail (a path, an OS error, a panic message) goes to the
    /// log only: the client gets a generic message with the id to look for.
    pub fn internal(context: &str, detail: impl std::fmt::Display) -> ApiError {
        let id = request_id();
        tracing::error!(request_id = %id, "{context}: {detail}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("internal error (request id {id}; the server's log has the details)"),
        )
    }
}

/// Middleware: a handler that panics (a metrics worker, a page) answers a
/// generic 500 instead of dropping the connection; the panic is logged. The
/// handler runs as a task of its own, whose panic tokio catches.
pub async fn answer_panics(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let (method, path) = (request.method().clone(), request.uri().path().to_owned());
    match tokio::spawn(next.run(request)).await {
        Ok(response) => response,
        Err(e) => {
            let detail = match e.try_into_panic() {
                Ok(payload) => payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".to_owned()),
                Err(e) => e.to_string(),
            };
            ApiError::internal(&format!("{method} {path} panicked"), detail).into_response()
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        #[derive(Serialize)]
        struct Body {
            error: String,
            #[serde(skip_serializing_if = "Vec::is_empty")]
            diagnostics: Vec<Diagnostic>,
        }
        (self.status, Json(Body { error: self.message, diagnostics: self.diagnostics })).into_response()
    }
}

impl From<CommandError> for ApiError {
    fn from(e: CommandError) -> Self {
        let status = match &e {
            CommandError::UnknownProject(_) | CommandError::UnknownService { .. } | CommandError::UnknownTask(_) => {
                StatusCode::NOT_FOUND
            }
            CommandError::Removing(_) => StatusCode::CONFLICT,
            CommandError::Invalid(_) | CommandError::Limit(_) => StatusCode::UNPROCESSABLE_ENTITY,
        };
        ApiError::new(status, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    async fn body_text(response: Response) -> String {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    async fn boom() -> &'static str {
        panic!("secret detail: /var/lib/m3s/x")
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_a_generic_500() {
        let app: Router = Router::new()
            .route("/boom", get(boom))
            .route("/fine", get(|| async { "fine" }))
            .layer(axum::middleware::from_fn(answer_panics));
        let response =
            app.clone().oneshot(axum::http::Request::get("/boom").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let text = body_text(response).await;
        assert!(text.contains("internal error (request id "), "{text}");
        assert!(!text.contains("secret detail"), "{text}");
        let response = app.oneshot(axum::http::Request::get("/fine").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(body_text(response).await, "fine");
    }

    #[tokio::test]
    async fn internal_errors_keep_their_detail_out_of_the_answer() {
        let response = ApiError::internal("flush", "No space left on device: /srv/m3s/metrics").into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let text = body_text(response).await;
        assert!(!text.contains("/srv/m3s") && text.contains("request id"), "{text}");
    }
}
