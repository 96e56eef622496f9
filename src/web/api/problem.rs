//! Errors of the JSON API as `application/problem+json` (RFC 9457), and the extractors that turn
//! unreadable requests into such errors instead of axum's plain-text rejections.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::ToSchema;

use crate::ops::BulkError;
use crate::store::StoreError;

/// A problem report: what went wrong, for people (`title`, `detail`) and programs (`type`,
/// `status`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem, e.g. `urn:helpdesk:problem:not-found`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The kind of problem in a few words.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong with this request.
    pub detail: String,
    /// The request's id, as in its `X-Request-Id` answer header and the server's log lines:
    /// quote it when asking about the error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// An API error: a status and a detail; the kind and title follow from the status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    /// No token, or one that is unknown, revoked or whose agent is deactivated.
    #[error("{detail}")]
    Unauthorized { detail: String, invalid_token: bool },
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the current state (a closed ticket, a key reused for another
    /// request).
    #[error("{0}")]
    Conflict(String),
    /// Well-formed but not acceptable (an invalid rule, an unknown status).
    #[error("{0}")]
    Unprocessable(String),
    /// The body or a file in it is larger than the limits allow.
    #[error("{0}")]
    TooLarge(String),
    /// Too many wrong passwords; try again later.
    #[error("{0}")]
    TooManyRequests(String),
    #[error("{0}")]
    Internal(String),
    /// The database or the attachment store (`service`) cannot be reached or cannot write
    /// right now; retry later.
    #[error("{service}: {error}")]
    Unavailable {
        service: &'static str,
        error: String,
    },
}

pub type ApiResult<T> = Result<T, ApiError>;

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(message) => ApiError::NotFound(message),
            StoreError::Conflict(message) => ApiError::Conflict(message),
            stale @ StoreError::Stale { .. } => ApiError::Conflict(stale.to_string()),
            other if other.is_unavailable() => ApiError::Unavailable {
                service: other.failing_service(),
                error: other.to_string(),
            },
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<crate::intake::IntakeError> for ApiError {
    fn from(error: crate::intake::IntakeError) -> Self {
        let crate::intake::IntakeError::Store(error) = error;
        error.into()
    }
}

/// A refused bulk change: who may not see a ticket gets 404, as for one ticket.
impl From<BulkError> for ApiError {
    fn from(error: BulkError) -> Self {
        match error {
            BulkError::NotVisible(_) => ApiError::NotFound(error.to_string()),
            BulkError::Refused { .. } => ApiError::Conflict(error.to_string()),
            BulkError::NoTickets | BulkError::TooMany(_) | BulkError::NothingToChange => {
                ApiError::Unprocessable(error.to_string())
            }
            BulkError::Store(error) => error.into(),
        }
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn slug(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad-request",
            ApiError::Unauthorized { .. } => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not-found",
            ApiError::Conflict(_) => "conflict",
            ApiError::Unprocessable(_) => "invalid",
            ApiError::TooLarge(_) => "too-large",
            ApiError::TooManyRequests(_) => "too-many-requests",
            ApiError::Internal(_) => "internal",
            ApiError::Unavailable { .. } => "unavailable",
        }
    }

    pub fn problem(&self) -> Problem {
        let status = self.status();
        let detail = if let ApiError::Unavailable { service, .. } = self {
            crate::web::error::unavailable(service)
        } else if status.is_server_error() {
            // Internal details go to the log, not to the client.
            "Something went wrong on our side; the details are in the server log.".to_owned()
        } else {
            self.to_string()
        };
        Problem {
            kind: format!("urn:helpdesk:problem:{}", self.slug()),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail,
            request_id: crate::web::requests::current(),
        }
    }
}

pub fn problem_response(status: StatusCode, problem: &Problem) -> Response {
    let body = serde_json::to_vec(problem).unwrap_or_default();
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let ApiError::Unavailable { service, .. } = &self {
            tracing::warn!(error = %self, "API request not served: {service} unavailable");
        } else if status.is_server_error() {
            tracing::error!(error = %self, "API request failed");
        }
        let mut response = problem_response(status, &self.problem());
        if let ApiError::Unavailable { .. } = &self {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                HeaderValue::from_static(crate::web::error::RETRY_SECONDS),
            );
        }
        if let ApiError::Unauthorized { invalid_token, .. } = &self {
            let challenge = if *invalid_token {
                "Bearer realm=\"helpdesk\", error=\"invalid_token\""
            } else {
                "Bearer realm=\"helpdesk\""
            };
            response
                .headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        response
    }
}

/// A JSON body; an unreadable one is a 400 (422 when well-formed JSON of the wrong shape)
/// problem naming what is wrong.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(JsonRejection::JsonDataError(error)) => {
                Err(ApiError::Unprocessable(error.body_text()))
            }
            Err(error) => Err(ApiError::BadRequest(error.body_text())),
        }
    }
}

/// Query parameters; unreadable ones are a 400 problem.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| ApiQuery(value))
            .map_err(|error: QueryRejection| ApiError::BadRequest(error.body_text()))
    }
}

/// Path parameters; unreadable ones (a ticket number that is not a number) are a 400 problem.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| ApiPath(value))
            .map_err(|error: PathRejection| ApiError::BadRequest(error.body_text()))
    }
}
