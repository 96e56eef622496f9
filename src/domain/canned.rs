//! Canned responses: a named reply text with placeholders, and the actions (status, priority,
//! tags) applied with it. Checking and filling in the placeholders; no I/O.

use crate::domain::TicketNumber;
use crate::domain::tags::{self, TagError};
use crate::domain::{Priority, Status};

/// The placeholders a body may use, with what each becomes.
pub const PLACEHOLDERS: [(&str, &str); 4] = [
    (
        "customer_name",
        "the customer's name (their address when they gave none)",
    ),
    ("ticket_number", "the ticket's number, such as 1042"),
    ("agent_name", "the name of the agent who sends the reply"),
    (
        "department",
        "the ticket's department (empty when it has none)",
    ),
];

/// The longest name, in characters.
pub const MAX_NAME_CHARS: usize = 60;

/// The longest body, in characters.
pub const MAX_BODY_CHARS: usize = 20_000;

/// Why a canned response cannot be saved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CannedError {
    #[error("a canned response needs a name")]
    NoName,
    #[error("a name has at most {MAX_NAME_CHARS} characters")]
    LongName,
    #[error("a name must not start with # (that names a ticket in chat)")]
    HashName,
    #[error("a canned response needs a body")]
    NoBody,
    #[error("a body has at most {MAX_BODY_CHARS} characters")]
    LongBody,
    #[error(
        "unknown placeholder {{{{{0}}}}}; the placeholders are {{{{customer_name}}}}, \
         {{{{ticket_number}}}}, {{{{agent_name}}}} and {{{{department}}}}"
    )]
    UnknownPlaceholder(String),
    #[error("a placeholder opened with {{{{ is not closed with }}}}")]
    Unclosed,
    #[error("{0}")]
    Tag(#[from] TagError),
}

/// A canned response as written in a form or the API, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CannedDraft {
    pub name: String,
    pub body: String,
    pub status: Option<Status>,
    pub priority: Option<Priority>,
    /// Normalized, each once.
    pub tags: Vec<String>,
}

impl CannedDraft {
    /// Checks a name, a body and tags (separated by spaces or commas).
    pub fn new(
        name: &str,
        body: &str,
        status: Option<Status>,
        priority: Option<Priority>,
        tag_text: &str,
    ) -> Result<CannedDraft, CannedError> {
        let name = name.trim();
        if name.is_empty() {
            return Err(CannedError::NoName);
        }
        if name.chars().count() > MAX_NAME_CHARS {
            return Err(CannedError::LongName);
        }
        if name.starts_with('#') {
            return Err(CannedError::HashName);
        }
        if body.trim().is_empty() {
            return Err(CannedError::NoBody);
        }
        if body.chars().count() > MAX_BODY_CHARS {
            return Err(CannedError::LongBody);
        }
        check_placeholders(body)?;
        Ok(CannedDraft {
            name: name.to_owned(),
            body: body.to_owned(),
            status,
            priority,
            tags: tags::parse_list(tag_text)?,
        })
    }
}

/// What the placeholders of a body become on one ticket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlaceholderValues {
    pub customer_name: String,
    pub ticket_number: TicketNumber,
    pub agent_name: String,
    pub department: String,
}

impl PlaceholderValues {
    fn value(&self, name: &str) -> Option<String> {
        match name {
            "customer_name" => Some(self.customer_name.clone()),
            "ticket_number" => Some(self.ticket_number.to_string()),
            "agent_name" => Some(self.agent_name.clone()),
            "department" => Some(self.department.clone()),
            _ => None,
        }
    }
}

/// The pieces of a body: plain text and placeholder names (trimmed, as written).
enum Piece<'a> {
    Text(&'a str),
    Placeholder(&'a str),
}

fn pieces(body: &str) -> Result<Vec<Piece<'_>>, CannedError> {
    let mut pieces = Vec::new();
    let mut rest = body;
    while let Some(open) = rest.find("{{") {
        pieces.push(Piece::Text(&rest[..open]));
        let after = &rest[open + 2..];
        let close = after.find("}}").ok_or(CannedError::Unclosed)?;
        pieces.push(Piece::Placeholder(after[..close].trim()));
        rest = &after[close + 2..];
    }
    pieces.push(Piece::Text(rest));
    Ok(pieces)
}

/// Refuses a body with an unknown or unclosed placeholder, so none is ever sent raw.
pub fn check_placeholders(body: &str) -> Result<(), CannedError> {
    let known = PlaceholderValues::default();
    for piece in pieces(body)? {
        if let Piece::Placeholder(name) = piece
            && known.value(name).is_none()
        {
            return Err(CannedError::UnknownPlaceholder(name.to_owned()));
        }
    }
    Ok(())
}

/// The body with its placeholders filled in.
pub fn render(body: &str, values: &PlaceholderValues) -> Result<String, CannedError> {
    let mut text = String::with_capacity(body.len());
    for piece in pieces(body)? {
        match piece {
            Piece::Text(plain) => text.push_str(plain),
            Piece::Placeholder(name) => text.push_str(
                &values
                    .value(name)
                    .ok_or_else(|| CannedError::UnknownPlaceholder(name.to_owned()))?,
            ),
        }
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> PlaceholderValues {
        PlaceholderValues {
            customer_name: "Ada".into(),
            ticket_number: TicketNumber(1042),
            agent_name: "Sam".into(),
            department: "Billing".into(),
        }
    }

    #[test]
    fn placeholders_are_filled_in() {
        assert_eq!(
            render(
                "Hi {{customer_name}}, #{{ ticket_number }} is with {{agent_name}} ({{department}}).",
                &values()
            )
            .unwrap(),
            "Hi Ada, #1042 is with Sam (Billing)."
        );
        assert_eq!(
            render("no placeholders {", &values()).unwrap(),
            "no placeholders {"
        );
    }

    #[test]
    fn unknown_and_unclosed_placeholders_are_refused() {
        assert_eq!(
            check_placeholders("Hi {{name}}"),
            Err(CannedError::UnknownPlaceholder("name".into()))
        );
        assert_eq!(
            check_placeholders("Hi {{customer_name"),
            Err(CannedError::Unclosed)
        );
        assert!(
            CannedError::UnknownPlaceholder("name".into())
                .to_string()
                .contains("{{customer_name}}")
        );
    }

    #[test]
    fn drafts_are_checked() {
        let draft = CannedDraft::new(" Thanks ", "Thanks!", None, None, "VIP, done").unwrap();
        assert_eq!(draft.name, "Thanks");
        assert_eq!(draft.tags, vec!["vip", "done"]);
        assert_eq!(
            CannedDraft::new(" ", "x", None, None, ""),
            Err(CannedError::NoName)
        );
        assert_eq!(
            CannedDraft::new("x", " ", None, None, ""),
            Err(CannedError::NoBody)
        );
        assert!(CannedDraft::new("x", "y", None, None, "a<b").is_err());
    }
}
