//! The commands agents get in the group's command menu, and reading a command's name.

/// The commands agents get in the group's command menu.
pub const AGENT_COMMANDS: [(&str, &str); 11] = [
    ("claim", "Take the ticket yourself"),
    ("assign", "Give the ticket to an agent: /assign @name"),
    ("note", "Add an internal note, never sent to the customer"),
    ("status", "Set the status: open, pending, resolved"),
    ("priority", "Set the priority: low, normal, high, urgent"),
    ("tag", "Add tags: /tag vip billing"),
    ("untag", "Remove tags: /untag vip"),
    ("canned", "Send a canned response: /canned NAME"),
    ("close", "Close the ticket"),
    ("reopen", "Reopen a resolved ticket"),
    ("help", "What the bot understands"),
];

/// The command a text starts with, without its slash and `@botname`: "/claim@bot 12" → "claim".
pub fn command_name(text: &str) -> Option<&str> {
    let word = text.split_whitespace().next()?.strip_prefix('/')?;
    let name = word.split('@').next().unwrap_or(word);
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_lose_slash_and_bot_name() {
        assert_eq!(command_name("/claim@helpdesk_bot 12"), Some("claim"));
        assert_eq!(command_name("  /start"), Some("start"));
        assert_eq!(command_name("hello /start"), None);
        assert_eq!(command_name("/"), None);
    }
}
