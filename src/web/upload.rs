//! Forms with files (`multipart/form-data`): the reply form of the ticket page and the API's
//! replies and notes read their text fields and files here, within the intake's size limits.

use axum::extract::Multipart;
use axum::extract::multipart::MultipartError;
use axum::http::StatusCode;
use helpdesk_channel::Attachment;

use crate::intake::Limits;
use crate::store::attachments::content_type_for;

/// What a multipart form held: its text fields in order, and its files.
#[derive(Debug, Default)]
pub struct Upload {
    pub fields: Vec<(String, String)>,
    pub files: Vec<Attachment>,
    /// Why the form was not read to its end: a file or the whole form over the limits. The
    /// fields before that point are kept (the text, which forms send before their files).
    pub too_large: Option<String>,
}

impl Upload {
    /// The last value of text field `name`.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .rev()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The text fields as an urlencoded form, so a multipart form reads into the same type as
    /// its urlencoded twin.
    pub fn urlencoded(&self) -> String {
        serde_urlencoded::to_string(&self.fields).unwrap_or_default()
    }
}

/// Whether a request's body is `multipart/form-data`.
pub fn is_multipart(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value
                .trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/form-data")
        })
}

/// The form could not be read at all.
#[derive(Debug, thiserror::Error)]
#[error("unreadable multipart form: {0}")]
pub struct Unreadable(String);

/// Reads a multipart form: each file at most `limits.max_attachment_bytes`, everything at most
/// `limits.max_message_bytes` (the largest mail the intake takes). A file input left empty
/// (no name, no content) is no file.
pub async fn read(mut multipart: Multipart, limits: &Limits) -> Result<Upload, Unreadable> {
    let mut upload = Upload::default();
    let mut total: u64 = 0;
    let too_large = |error: &MultipartError| error.status() == StatusCode::PAYLOAD_TOO_LARGE;
    let whole_form = format!(
        "The form is larger than {} bytes (intake.max_message_bytes).",
        limits.max_message_bytes
    );
    loop {
        let mut field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(error) if too_large(&error) => {
                upload.too_large = Some(whole_form);
                break;
            }
            Err(error) => return Err(Unreadable(error.body_text())),
        };
        let name = field.name().unwrap_or_default().to_owned();
        let filename = field.file_name().map(base_name);
        let declared = field.content_type().map(str::to_owned);
        let mut content = Vec::new();
        loop {
            let chunk = match field.chunk().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(error) if too_large(&error) => {
                    upload.too_large = Some(whole_form);
                    return Ok(upload);
                }
                Err(error) => return Err(Unreadable(error.body_text())),
            };
            total += chunk.len() as u64;
            if total > limits.max_message_bytes {
                upload.too_large = Some(whole_form);
                return Ok(upload);
            }
            if filename.is_some()
                && (content.len() + chunk.len()) as u64 > limits.max_attachment_bytes
            {
                upload.too_large = Some(format!(
                    "{} is larger than {} bytes (intake.max_attachment_bytes); nothing was sent.",
                    filename.as_deref().unwrap_or("A file"),
                    limits.max_attachment_bytes
                ));
                return Ok(upload);
            }
            content.extend_from_slice(&chunk);
        }
        match filename {
            None => {
                let text = String::from_utf8(content)
                    .map_err(|_| Unreadable(format!("field {name:?} is not UTF-8 text")))?;
                upload.fields.push((name, text));
            }
            Some(filename) if filename.is_empty() && content.is_empty() => {}
            Some(filename) => {
                let filename = if filename.is_empty() {
                    "attachment".to_owned()
                } else {
                    filename
                };
                let content_type = declared
                    .filter(|kind| {
                        kind.is_ascii() && !kind.contains(['\r', '\n']) && kind.contains('/')
                    })
                    .filter(|kind| kind != "application/octet-stream")
                    .unwrap_or_else(|| content_type_for(&filename).to_owned());
                upload.files.push(Attachment {
                    filename,
                    content_type,
                    content,
                    inline: false,
                    content_id: None,
                });
            }
        }
    }
    Ok(upload)
}

/// The name without any folder a browser put before it, without control characters, at most
/// 200 characters.
fn base_name(sent: &str) -> String {
    sent.rsplit(['/', '\\'])
        .next()
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect::<String>()
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_lose_their_folders() {
        assert_eq!(base_name("C:\\fakepath\\invoice.pdf"), "invoice.pdf");
        assert_eq!(base_name("../../etc/passwd"), "passwd");
        assert_eq!(base_name("a\u{0}b.txt"), "ab.txt");
        assert_eq!(base_name(""), "");
    }
}
