//! The API's errors: `{"error": {"code", "message"}}` with the right status. Internal errors
//! are logged and shown without their details.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// Every `code` an error answer may carry: the OpenAPI document lists them as an enum, and
/// (in debug builds) an answer with a code not listed panics, so no test passes with one.
pub const ERROR_CODES: &[&str] = &[
    "bad_request",
    "callback_refused",
    "fhe_key_not_found",
    "fhe_mismatch",
    "fhe_unavailable",
    "idempotency_key_reused",
    "input_mismatch",
    "internal",
    "invalid_body",
    "invalid_ciphertext",
    "invalid_header",
    "invalid_input",
    "invalid_json",
    "invalid_key",
    "invalid_model",
    "invalid_multipart",
    "invalid_proof_format",
    "invalid_query",
    "invalid_salt",
    "invalid_settings",
    "job_not_found",
    "method_not_allowed",
    "missing_field",
    "model_not_found",
    "model_not_ready",
    "model_too_large",
    "no_proof",
    "no_result",
    "no_such_route",
    "not_cancellable",
    "other_weights",
    "output_mismatch",
    "payload_too_large",
    "segmented_model",
    "shutting_down",
    "solidity_unavailable",
    "too_many_jobs",
    "too_many_uploads",
    "unauthorized",
    "unsupported_media_type",
    "unsupported_op",
    "verifier_too_large",
];

/// Every `error.code` a failed job may carry.
pub const JOB_ERROR_CODES: &[&str] = &[
    "failed",
    "fhe_failed",
    "fhe_key_not_found",
    "fhe_mismatch",
    "fhe_unavailable",
    "gpu_out_of_memory",
    "internal",
    "invalid_ciphertext",
    "invalid_input",
    "model_not_found",
    "model_not_ready",
    "model_too_large",
    "not_like",
    "out_of_memory",
    "timed_out",
    "worker_crashed",
    "worker_lost",
];

/// An error answered to a client.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A stable machine-readable code.
    pub code: &'static str,
    /// What went wrong, for a person.
    pub message: String,
    /// Seconds after which the request may succeed (`Retry-After`), for 429 and 503.
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        debug_assert!(
            ERROR_CODES.contains(&code),
            "error code {code:?} is not in ERROR_CODES (nor in the OpenAPI document)"
        );
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 400 with this code and message.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// The same error, telling the client to retry after `secs` seconds.
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// 404 for a model or job that does not exist or is another tenant's.
    pub fn not_found(what: &str, id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            if what == "model" {
                "model_not_found"
            } else {
                "job_not_found"
            },
            format!("no {what} {id}"),
        )
    }
}

impl From<crate::Error> for ApiError {
    fn from(e: crate::Error) -> Self {
        match e {
            crate::Error::Conflict(what) => Self::new(
                StatusCode::CONFLICT,
                "idempotency_key_reused",
                format!("{what} already exists"),
            ),
            other => {
                tracing::error!("internal error: {other}");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error (logged)",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "code": self.code, "message": self.message } });
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(secs),
            );
        }
        response
    }
}

/// Results of handlers.
pub type ApiResult<T> = std::result::Result<T, ApiError>;
