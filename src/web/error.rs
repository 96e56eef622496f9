//! Errors of the pages, shown as small HTML pages with the right status.

use askama::Template;
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    TooManyRequests(String),
    #[error("database: {0}")]
    Store(StoreError),
    /// The database or the attachment store cannot be reached or cannot write right now.
    #[error("{service}: {0}", service = .0.failing_service())]
    Unavailable(StoreError),
    #[error("page: {0}")]
    Template(#[from] askama::Error),
    #[error("{0}")]
    Internal(String),
}

impl From<StoreError> for WebError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(message) => WebError::NotFound(message),
            StoreError::Conflict(message) => WebError::Conflict(message),
            stale @ StoreError::Stale { .. } => WebError::Conflict(stale.to_string()),
            other if other.is_unavailable() => WebError::Unavailable(other),
            other => WebError::Store(other),
        }
    }
}

#[derive(Template)]
#[template(path = "web/error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
}

impl WebError {
    fn status(&self) -> StatusCode {
        match self {
            WebError::NotFound(_) => StatusCode::NOT_FOUND,
            WebError::Forbidden(_) => StatusCode::FORBIDDEN,
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::Conflict(_) => StatusCode::UNPROCESSABLE_ENTITY,
            WebError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            WebError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            WebError::Store(_) | WebError::Template(_) | WebError::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let status = self.status();
        // Internal details go to the log, not to the browser.
        let message = if let WebError::Unavailable(error) = &self {
            tracing::warn!(error = %self, "page not served: {} unavailable", error.failing_service());
            unavailable(error.failing_service())
        } else if status.is_server_error() {
            tracing::error!(error = %self, "page failed");
            "Something went wrong on our side; the details are in the server log.".to_owned()
        } else {
            self.to_string()
        };
        let title = status.canonical_reason().unwrap_or("Error");
        let page = ErrorPage {
            title,
            message: &message,
        };
        let mut response = match page.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => (status, message).into_response(),
        };
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static(RETRY_SECONDS));
        }
        response
    }
}

/// What pages and the API say while the database (or the attachment store) cannot be reached
/// or cannot write.
pub fn unavailable(service: &str) -> String {
    format!("The helpdesk cannot use its {service} right now; please try again in a moment.")
}
/// `Retry-After` on those answers, in seconds.
pub const RETRY_SECONDS: &str = "5";

pub type WebResult<T> = Result<T, WebError>;
