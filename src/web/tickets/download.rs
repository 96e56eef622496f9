//! Attachment downloads, sent so a browser never renders or runs them, and previews: images
//! and PDFs of a short list of types shown in the browser, in a sandbox.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderValue;
use axum::http::header::{
    CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS,
};
use axum::response::{IntoResponse, Response};

use super::visible_ticket;
use crate::domain::TicketNumber;
use crate::store::views;
use crate::web::AppState;
use crate::web::auth::Viewer;
use crate::web::error::{WebError, WebResult};

/// Content types a browser might render or run even from a download; they go out as bytes.
fn download_type(stored: &str) -> &str {
    let lower = stored.to_ascii_lowercase();
    let risky = ["html", "xml", "svg", "javascript", "ecmascript", "pdf"]
        .iter()
        .any(|kind| lower.contains(kind));
    if risky || !stored.is_ascii() || stored.contains(['\r', '\n']) {
        "application/octet-stream"
    } else {
        stored
    }
}

/// The types a browser may show inline (`/preview`), as the stored type names them (any
/// parameters dropped); everything else is only downloaded.
pub(in crate::web) fn preview_type(stored: &str) -> Option<&'static str> {
    let essence = stored.split(';').next().unwrap_or_default().trim();
    [
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "application/pdf",
    ]
    .into_iter()
    .find(|safe| safe.eq_ignore_ascii_case(essence))
}

/// `attachment; filename="…"; filename*=UTF-8''…` (or `inline; …`), with the plain name
/// reduced to safe ASCII.
fn content_disposition(disposition: &str, filename: &str) -> String {
    let plain: String = filename
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || " ._-()".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = filename
        .bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() || b".-_~".contains(&byte) {
                (byte as char).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect();
    format!("{disposition}; filename=\"{plain}\"; filename*=UTF-8''{encoded}")
}

pub async fn download(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((number, attachment_id)): Path<(TicketNumber, i64)>,
) -> WebResult<Response> {
    send(&state, &viewer, (number, attachment_id), false).await
}

/// An image or PDF shown in the browser (`Content-Disposition: inline` with its own type); any
/// other file is sent as [`download`] sends it.
pub async fn preview(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((number, attachment_id)): Path<(TicketNumber, i64)>,
) -> WebResult<Response> {
    send(&state, &viewer, (number, attachment_id), true).await
}

async fn send(
    state: &AppState,
    viewer: &Viewer,
    (number, attachment_id): (TicketNumber, i64),
    preview: bool,
) -> WebResult<Response> {
    let facts = visible_ticket(state, viewer, number).await?;
    let missing = || WebError::NotFound("There is no such attachment on this ticket.".into());
    let download = views::attachment(&state.store, attachment_id)
        .await?
        .filter(|download| download.ticket_id == facts.id)
        .ok_or_else(missing)?;
    let Some(sha256) = download.sha256 else {
        return Err(WebError::NotFound(
            "This attachment was too large to keep; only its name and size are known.".into(),
        ));
    };
    // Streamed as it is read, so a large file is never whole in memory; a missing content or
    // an unreachable store is answered before the first byte.
    let (size, chunks) =
        state
            .config
            .attachments
            .stream(&sha256)
            .await
            .map_err(|error| match error.is_missing() {
                true => WebError::NotFound(
                    "The file of this attachment is missing from the store.".into(),
                ),
                false => crate::store::StoreError::from(error).into(),
            })?;
    let shown = preview
        .then(|| preview_type(&download.content_type))
        .flatten();
    let (content_type, disposition) = match shown {
        Some(safe) => (HeaderValue::from_static(safe), "inline"),
        None => (
            HeaderValue::from_str(download_type(&download.content_type))
                .unwrap_or(HeaderValue::from_static("application/octet-stream")),
            "attachment",
        ),
    };
    let disposition = HeaderValue::from_str(&content_disposition(disposition, &download.filename))
        .unwrap_or(HeaderValue::from_static("attachment"));
    Ok((
        [
            (CONTENT_TYPE, content_type),
            (CONTENT_DISPOSITION, disposition),
            (X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            (CONTENT_LENGTH, HeaderValue::from(size)),
            // No script runs and nothing loads, whatever the file turns out to be.
            (
                axum::http::header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("sandbox; default-src 'none'; img-src 'self'"),
            ),
        ],
        Body::from_stream(chunks),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downloads_never_render_as_pages() {
        assert_eq!(download_type("text/html"), "application/octet-stream");
        assert_eq!(download_type("image/svg+xml"), "application/octet-stream");
        assert_eq!(download_type("image/png"), "image/png");
        assert_eq!(preview_type("image/PNG"), Some("image/png"));
        assert_eq!(
            preview_type("application/pdf; name=x.pdf"),
            Some("application/pdf")
        );
        assert_eq!(preview_type("image/svg+xml"), None);
        assert_eq!(preview_type("text/html"), None);
        assert_eq!(
            content_disposition("attachment", "Rechnung März \"1\".pdf"),
            "attachment; filename=\"Rechnung M_rz _1_.pdf\"; \
             filename*=UTF-8''Rechnung%20M%C3%A4rz%20%221%22.pdf"
        );
    }
}
