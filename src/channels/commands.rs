//! The language agents speak to the bot in their chat: a plain reply answers the customer,
//! `/command` changes the ticket. The same on Telegram and Discord.

use crate::domain::notice::{NoticeEvent, NoticeWay};
use crate::domain::{Priority, Status, tags};

/// The help text agents get for `/help` or a command the bot did not understand.
pub const HELP: &str = "Reply to a ticket's post (or write in its thread) to answer the customer.\n\
Commands, as a reply to the post or with the ticket's number (/claim #1042):\n\
/claim - take the ticket yourself\n\
/assign @name - give it to an agent (email, name or chat id)\n\
/note TEXT - internal note, never sent to the customer\n\
/status open|pending|resolved - set the status\n\
/priority low|normal|high|urgent - set the priority\n\
/tag NAME… - add tags; /untag NAME… - remove them\n\
/canned NAME - send a canned response (and apply its actions)\n\
/close - close the ticket\n\
/reopen - reopen a resolved ticket\n\
/help - this text\n\
/notify [EVENT WAY] - how you are told of assigned, replies, warning, breach, mentioned: chat, mail, both, none or default";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Plain text: a public reply to the customer.
    Reply(String),
    Claim,
    Assign(String),
    Note(String),
    Status(Status),
    Priority(Priority),
    /// Tags to add (normalized).
    Tag(Vec<String>),
    /// Tags to remove (normalized).
    Untag(Vec<String>),
    /// A canned response, by name: its text is the reply, its actions apply with it.
    Canned(String),
    Close,
    Reopen,
    Help,
    /// See (`None`) or change how the agent is told of an event; `None` as the way: the default.
    Notify(Option<(NoticeEvent, Option<NoticeWay>)>),
}

/// A command and the ticket it names, if it names one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub command: Command,
    pub ticket: Option<i64>,
}

impl PartialEq<Command> for Result<Parsed, String> {
    fn eq(&self, other: &Command) -> bool {
        matches!(self, Ok(parsed) if parsed.command == *other)
    }
}

/// Reads an agent's message. `Err` explains a command that cannot be carried out.
pub fn parse(text: &str) -> Result<Parsed, String> {
    let trimmed = text.trim();
    let Some(rest) = trimmed.strip_prefix('/') else {
        return Ok(Parsed {
            command: Command::Reply(trimmed.to_owned()),
            ticket: None,
        });
    };
    let (word, mut arguments) = match rest.find(char::is_whitespace) {
        Some(at) => (&rest[..at], rest[at..].trim()),
        None => (rest, ""),
    };
    // Telegram adds the bot's name in groups: /claim@helpdesk_bot.
    let name = word.split('@').next().unwrap_or(word).to_lowercase();
    let mut ticket = None;
    if let Some(tagged) = arguments.strip_prefix('#') {
        let digits = tagged
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(tagged.len());
        if let Ok(number) = tagged[..digits].parse::<i64>() {
            ticket = Some(number);
            arguments = tagged[digits..].trim();
        }
    }
    let command = match name.as_str() {
        "claim" => Command::Claim,
        "assign" => {
            if arguments.is_empty() {
                return Err("Whom? /assign @name".to_owned());
            }
            Command::Assign(arguments.to_owned())
        }
        "note" => {
            if arguments.is_empty() {
                return Err("A note needs text: /note what the others should know".to_owned());
            }
            Command::Note(arguments.to_owned())
        }
        "status" => {
            let status: Status = arguments
                .to_lowercase()
                .parse()
                .map_err(|_| format!("{arguments:?} is not a status: open, pending or resolved"))?;
            Command::Status(status)
        }
        "priority" => {
            let priority: Priority = arguments.to_lowercase().parse().map_err(|_| {
                format!("{arguments:?} is not a priority: low, normal, high or urgent")
            })?;
            Command::Priority(priority)
        }
        "tag" | "untag" => {
            let names = tags::parse_list(arguments).map_err(|error| error.to_string())?;
            if names.is_empty() {
                return Err(format!("Which tags? /{name} vip billing"));
            }
            if name == "tag" {
                Command::Tag(names)
            } else {
                Command::Untag(names)
            }
        }
        "canned" => {
            if arguments.is_empty() {
                return Err(
                    "Which canned response? /canned NAME (the /canned page lists them)".to_owned(),
                );
            }
            Command::Canned(arguments.to_owned())
        }
        "close" => Command::Close,
        "reopen" => Command::Reopen,
        "help" | "start" => Command::Help,
        "notify" => Command::Notify(notify_change(arguments)?),
        "reply" => {
            if arguments.is_empty() {
                return Err("A reply needs text.".to_owned());
            }
            Command::Reply(arguments.to_owned())
        }
        other => return Err(format!("I do not know /{other}.")),
    };
    Ok(Parsed { command, ticket })
}

/// The arguments of `/notify`: none to see the choices, or an event and a way.
fn notify_change(arguments: &str) -> Result<Option<(NoticeEvent, Option<NoticeWay>)>, String> {
    let words: Vec<String> = arguments
        .split_whitespace()
        .map(str::to_lowercase)
        .collect();
    let usage = "/notify EVENT WAY: EVENT is assigned, replies, warning, breach or mentioned; \
                 WAY is chat, mail, both, none or default";
    match words.as_slice() {
        [] => Ok(None),
        [event, way] => {
            let event = match event.as_str() {
                "assigned" => NoticeEvent::Assigned,
                "replies" | "reply" | "customer_replied" => NoticeEvent::CustomerReplied,
                "warning" | "sla_warning" => NoticeEvent::SlaWarning,
                "breach" | "breached" | "sla_breached" => NoticeEvent::SlaBreached,
                "mentioned" | "mentions" | "mention" => NoticeEvent::Mentioned,
                _ => return Err(usage.to_owned()),
            };
            let way = match way.as_str() {
                "default" => None,
                other => Some(other.parse::<NoticeWay>().map_err(|_| usage.to_owned())?),
            };
            Ok(Some((event, way)))
        }
        _ => Err(usage.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_a_reply() {
        assert_eq!(
            parse("  Have you tried turning it off? "),
            Command::Reply("Have you tried turning it off?".into())
        );
    }

    #[test]
    fn commands_take_arguments_and_an_optional_ticket() {
        assert_eq!(parse("/claim@helpdesk_bot"), Command::Claim);
        assert_eq!(
            parse("/assign #1042 @sam"),
            Ok(Parsed {
                command: Command::Assign("@sam".into()),
                ticket: Some(1042)
            })
        );
        assert_eq!(
            parse("/note called them, waiting"),
            Command::Note("called them, waiting".into())
        );
        assert_eq!(parse("/status Pending"), Command::Status(Status::Pending));
        assert_eq!(
            parse("/priority urgent"),
            Command::Priority(Priority::Urgent)
        );
        assert_eq!(parse("/close #7").map(|p| p.ticket), Ok(Some(7)));
        assert_eq!(
            parse("/tag #7 VIP, billing"),
            Ok(Parsed {
                command: Command::Tag(vec!["vip".into(), "billing".into()]),
                ticket: Some(7)
            })
        );
        assert_eq!(parse("/untag vip"), Command::Untag(vec!["vip".into()]));
        assert_eq!(
            parse("/canned #7 Refund done"),
            Ok(Parsed {
                command: Command::Canned("Refund done".into()),
                ticket: Some(7)
            })
        );
    }

    #[test]
    fn unclear_commands_are_explained() {
        assert!(parse("/assign").is_err());
        assert!(parse("/note").is_err());
        assert!(parse("/status later").is_err());
        assert!(parse("/tag").is_err());
        assert!(parse("/canned").is_err());
        assert!(parse("/tag <script>").is_err());
        assert!(parse("/frobnicate").unwrap_err().contains("/frobnicate"));
        assert!(parse("/notify mentioned pigeon").is_err());
        assert_eq!(parse("/notify"), Command::Notify(None));
        assert_eq!(
            parse("/notify Mentions mail"),
            Command::Notify(Some((NoticeEvent::Mentioned, Some(NoticeWay::Mail))))
        );
        assert_eq!(
            parse("/notify replies default"),
            Command::Notify(Some((NoticeEvent::CustomerReplied, None)))
        );
    }
}
