//! What a person is told of, how, and whom an internal note names with `@name`.

use super::named_enum;

named_enum! {
    /// Something that concerns one person, each with its own choice of how to be told.
    NoticeEvent, "notification event" {
        Assigned = "assigned",
        CustomerReplied = "customer_replied",
        SlaWarning = "sla_warning",
        SlaBreached = "sla_breached",
        Mentioned = "mentioned",
    }
}

named_enum! {
    /// How a person is told: in a direct chat message, by mail, both, or not at all.
    NoticeWay, "way of notification" {
        Chat = "chat",
        Mail = "mail",
        Both = "both",
        None = "none",
    }
}

impl NoticeEvent {
    /// The event an outbox entry of this kind is for a person, if any.
    pub fn of_outbox(kind: &str) -> Option<NoticeEvent> {
        match kind {
            "ticket_assigned" => Some(NoticeEvent::Assigned),
            "customer_replied" | "ticket_reopened" => Some(NoticeEvent::CustomerReplied),
            "sla_warning" => Some(NoticeEvent::SlaWarning),
            "sla_breached" => Some(NoticeEvent::SlaBreached),
            "agent_mentioned" => Some(NoticeEvent::Mentioned),
            _ => None,
        }
    }

    /// What the choice is about, as the account page says it.
    pub fn label(self) -> &'static str {
        match self {
            NoticeEvent::Assigned => "A ticket is assigned to you",
            NoticeEvent::CustomerReplied => "The customer writes on your ticket",
            NoticeEvent::SlaWarning => "Your ticket nears its SLA target",
            NoticeEvent::SlaBreached => "A ticket of your department misses its SLA target",
            NoticeEvent::Mentioned => "Someone mentions you (@name) in a note",
        }
    }
}

impl NoticeWay {
    /// The way of a person who chose none: chat when they have a linked chat account, where a
    /// notice is seen soonest; mail otherwise.
    pub fn default_for(has_chat: bool) -> NoticeWay {
        if has_chat {
            NoticeWay::Chat
        } else {
            NoticeWay::Mail
        }
    }

    pub fn by_chat(self) -> bool {
        matches!(self, NoticeWay::Chat | NoticeWay::Both)
    }

    pub fn by_mail(self) -> bool {
        matches!(self, NoticeWay::Mail | NoticeWay::Both)
    }
}

/// Characters a mentioned name is made of.
fn name_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '+')
}

/// Where a text mentions someone: the byte ranges of each `@name`, the `@` included. An `@`
/// inside a word (an email address) mentions nobody; trailing punctuation is not part of the
/// name.
fn mention_spans(text: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut previous: Option<char> = None;
    for (at, c) in text.char_indices() {
        let starts = c == '@' && !previous.is_some_and(name_char);
        previous = Some(c);
        if !starts {
            continue;
        }
        let rest = &text[at + 1..];
        let end = rest.find(|c: char| !name_char(c)).unwrap_or(rest.len());
        let name = rest[..end].trim_end_matches(['.', '-', '_', '+']);
        if !name.is_empty() {
            spans.push((at, at + 1 + name.len()));
        }
    }
    spans
}

/// The names a text mentions with `@name`, lowercased, each once, in order.
pub fn mentioned_names(text: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for (start, end) in mention_spans(text) {
        let name = text[start + 1..end].to_lowercase();
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

/// A text cut into its plain parts and its mentions (`true`), in order, for showing mentions
/// highlighted.
pub fn mention_parts(text: &str) -> Vec<(&str, bool)> {
    let mut parts = Vec::new();
    let mut done = 0;
    for (start, end) in mention_spans(text) {
        if start > done {
            parts.push((&text[done..start], false));
        }
        parts.push((&text[start..end], true));
        done = end;
    }
    if done < text.len() {
        parts.push((&text[done..], false));
    }
    parts
}

/// Whether `name` (as [`mentioned_names`] gives it) names the person with this email address
/// and display name: the local part of the address, or the display name without spaces, in
/// any case.
pub fn names_person(name: &str, email: &str, display_name: &str) -> bool {
    let local = email.split('@').next().unwrap_or(email);
    let joined: String = display_name
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    (!local.is_empty() && local.to_lowercase() == name)
        || (!joined.is_empty() && joined.to_lowercase() == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_are_names_after_an_at_sign_outside_words() {
        assert_eq!(
            mentioned_names("@Sam can you look? cc @ada.l, @sam again; mail bob@example.org"),
            vec!["sam".to_owned(), "ada.l".to_owned()]
        );
        assert_eq!(mentioned_names("(@Chris_P)."), vec!["chris_p".to_owned()]);
        assert!(mentioned_names("nobody @ all, me@here").is_empty());
        assert_eq!(
            mention_parts("hi @sam. ok"),
            vec![("hi ", false), ("@sam", true), (". ok", false)]
        );
    }

    #[test]
    fn a_name_matches_the_address_or_the_name_without_spaces() {
        assert!(names_person("sam", "Sam@example.org", "Samantha Jones"));
        assert!(names_person(
            "samanthajones",
            "sj@example.org",
            "Samantha Jones"
        ));
        assert!(!names_person(
            "samantha",
            "sj@example.org",
            "Samantha Jones"
        ));
    }

    #[test]
    fn the_default_is_chat_for_people_with_chat() {
        assert_eq!(NoticeWay::default_for(true), NoticeWay::Chat);
        assert_eq!(NoticeWay::default_for(false), NoticeWay::Mail);
        assert!(NoticeWay::Both.by_chat() && NoticeWay::Both.by_mail());
        assert!(!NoticeWay::None.by_chat() && !NoticeWay::None.by_mail());
        assert_eq!(
            NoticeEvent::of_outbox("ticket_reopened"),
            Some(NoticeEvent::CustomerReplied)
        );
        assert_eq!(NoticeEvent::of_outbox("ticket_created"), None);
    }
}
