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
