//! Ticket tags: short lowercase labels agents, rules and canned responses put on tickets.

/// The longest tag, in characters.
pub const MAX_TAG_CHARS: usize = 40;

/// Why a text is not a tag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TagError {
    #[error("a tag must not be empty")]
    Empty,
    #[error("a tag has at most {MAX_TAG_CHARS} characters: {0:?}")]
    TooLong(String),
    #[error("a tag has letters, digits and - _ . : only: {0:?}")]
    Character(String),
}

/// The tag as stored: trimmed, lowercase, a leading `#` dropped.
pub fn normalize(raw: &str) -> Result<String, TagError> {
    let tag = raw.trim().trim_start_matches('#').to_lowercase();
    if tag.is_empty() {
        return Err(TagError::Empty);
    }
    if tag.chars().count() > MAX_TAG_CHARS {
        return Err(TagError::TooLong(tag));
    }
    if !tag
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
    {
        return Err(TagError::Character(tag));
    }
    Ok(tag)
}

/// Every tag in a text of tags separated by spaces or commas, normalized, in order, once each.
pub fn parse_list(text: &str) -> Result<Vec<String>, TagError> {
    let mut tags = Vec::new();
    for raw in text.split(|c: char| c == ',' || c.is_whitespace()) {
        if raw.trim().is_empty() {
            continue;
        }
        let tag = normalize(raw)?;
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    Ok(tags)
}

/// How a change request edits a ticket's tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagChange {
    /// Exactly these tags (the JSON API's `tags`).
    Set(Vec<String>),
    /// These added and those removed, the others kept (the page, chat, canned responses).
    Edit {
        add: Vec<String>,
        remove: Vec<String>,
    },
}

impl TagChange {
    /// The tags a ticket that has `current` ends up with, sorted, each once.
    pub fn applied_to(&self, current: &[String]) -> Vec<String> {
        let mut tags: Vec<String> = match self {
            TagChange::Set(wanted) => wanted.clone(),
            TagChange::Edit { add, remove } => current
                .iter()
                .chain(add)
                .filter(|tag| !remove.contains(tag))
                .cloned()
                .collect(),
        };
        tags.sort();
        tags.dedup();
        tags
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_lowercase_and_plain() {
        assert_eq!(normalize(" #VIP ").as_deref(), Ok("vip"));
        assert_eq!(normalize("billing:eu").as_deref(), Ok("billing:eu"));
        assert_eq!(normalize("  "), Err(TagError::Empty));
        assert!(matches!(
            normalize("two words"),
            Err(TagError::Character(_))
        ));
        assert!(matches!(normalize("<b>"), Err(TagError::Character(_))));
        assert!(matches!(
            normalize(&"x".repeat(MAX_TAG_CHARS + 1)),
            Err(TagError::TooLong(_))
        ));
    }

    #[test]
    fn lists_split_on_commas_and_spaces_once_each() {
        assert_eq!(
            parse_list("vip, Billing  vip,,refund").unwrap(),
            vec!["vip", "billing", "refund"]
        );
        assert!(parse_list("ok, no<").is_err());
    }

    #[test]
    fn changes_apply_to_the_current_tags() {
        let current = vec!["b".to_owned(), "a".to_owned()];
        let edit = TagChange::Edit {
            add: vec!["c".into(), "a".into()],
            remove: vec!["b".into()],
        };
        assert_eq!(edit.applied_to(&current), vec!["a", "c"]);
        assert_eq!(
            TagChange::Set(vec!["z".into()]).applied_to(&current),
            vec!["z"]
        );
        assert_eq!(
            TagChange::Set(Vec::new()).applied_to(&current),
            Vec::<String>::new()
        );
    }
}
