//! API errors: `{ "error": { "code", "message", "field"? } }` with a status code.

use crate::service::ServiceError;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code: code.into(),
            message: message.into(),
            field: None,
        }
    }

    pub fn field(mut self, field: &str) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn unprocessable(code: &str, field: &str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message).field(field)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = serde_json::json!({ "code": self.code, "message": self.message });
        if let Some(f) = self.field {
            body["field"] = serde_json::Value::String(f);
        }
        (self.status, Json(serde_json::json!({ "error": body }))).into_response()
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        use ServiceError::*;
        let msg = e.to_string();
        match e {
            NotFound { what, .. } => {
                ApiError::new(StatusCode::NOT_FOUND, &format!("{what}_not_found"), msg)
            }
            Invalid { code, field, .. } => ApiError {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                code: code.into(),
                message: msg,
                field: field.map(String::from),
            },
            Conflict { code, .. } => ApiError::new(StatusCode::CONFLICT, code, msg),
            GatewayUnavailable(_) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "gateway_unavailable", msg)
            }
            Declined(_) => ApiError::new(StatusCode::PAYMENT_REQUIRED, "payment_declined", msg),
            Unavailable(_) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "database_unavailable", msg)
            }
            Busy => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", msg),
            Core(core) => {
                tracing::warn!(error = %core, "core rejected input");
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_input",
                    core.to_string(),
                )
            }
            Db(db) => {
                tracing::error!(error = %db, "database error");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error (logged with the request id)",
                )
            }
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        let status = if r.status() == StatusCode::UNSUPPORTED_MEDIA_TYPE {
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        } else {
            StatusCode::BAD_REQUEST
        };
        let text = r.body_text();
        // serde_path_to_error style messages start with the field path.
        let field = text
            .split(": ")
            .nth(1)
            .and_then(|s| s.split(' ').next())
            .filter(|f| {
                f.chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == '.')
            })
            .map(String::from);
        ApiError {
            status,
            code: "invalid_body".into(),
            message: text,
            field,
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_path", r.body_text())
    }
}
