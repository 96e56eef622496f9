//! Routing rules: ordered conditions → actions, as admins define them.
//!
//! A rule matches when all its conditions hold; its actions then apply in order, and `stop`
//! ends the evaluation. Rules are stored as JSON and validated before they are saved.

use chrono::{DateTime, Datelike, FixedOffset, NaiveTime, Utc, Weekday};
use helpdesk_channel::ChannelKind;
use serde::{Deserialize, Serialize};

use super::Priority;

/// One test on a ticket's facts. Text comparisons ignore case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "if", rename_all = "snake_case", deny_unknown_fields)]
pub enum Condition {
    /// The channel the ticket came in on is one of these.
    Channel {
        any: Vec<ChannelKind>,
    },
    /// The sender's address is one of these.
    SenderAddress {
        any: Vec<String>,
    },
    /// The sender's address is at one of these domains (subdomains included).
    SenderDomain {
        any: Vec<String>,
    },
    /// The subject contains one of these words or phrases.
    SubjectContains {
        any: Vec<String>,
    },
    /// The subject or the text contains one of these words or phrases.
    TextContains {
        any: Vec<String>,
    },
    /// The subject or the text matches this regular expression.
    TextMatches {
        regex: String,
    },
    /// The ticket is in one of these departments (by id); an empty list means "in none".
    Department {
        any: Vec<i64>,
    },
    Priority {
        any: Vec<Priority>,
    },
    /// The ticket arrived inside (or, with `inside: false`, outside) business hours.
    BusinessHours {
        inside: bool,
    },
}

/// A change a matching rule makes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "then", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    SetDepartment { department: i64 },
    SetPriority { priority: Priority },
    AddTags { tags: Vec<String> },
    AssignTo { agent: i64 },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    pub id: i64,
    pub name: String,
    pub enabled: bool,
    pub conditions: Vec<Condition>,
    pub actions: Vec<Action>,
    /// No later rule runs after this one matched.
    pub stop: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("a rule needs a name")]
    NoName,
    #[error("rule {rule:?} has no actions, so it would never change anything")]
    NoActions { rule: String },
    #[error("rule {rule:?}, condition {position}: the list of values is empty")]
    EmptyList { rule: String, position: usize },
    #[error("rule {rule:?}, condition {position}: {value:?} is a whole address, not a domain")]
    AddressAsDomain {
        rule: String,
        position: usize,
        value: String,
    },
    #[error("rule {rule:?}, condition {position}: invalid regular expression: {message}")]
    Regex {
        rule: String,
        position: usize,
        message: String,
    },
    #[error(
        "rule {rule:?}, action {position}: a tag must not be empty or contain spaces ({tag:?})"
    )]
    BadTag {
        rule: String,
        position: usize,
        tag: String,
    },
}

/// The longest compiled regular expression allowed, against patterns that exhaust memory.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

fn compile(pattern: &str) -> Result<regex::Regex, regex::Error> {
    regex::RegexBuilder::new(pattern)
        .case_insensitive(true)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
}

impl Rule {
    /// Checks a rule before it is saved; every error names the rule and the place.
    pub fn validate(&self) -> Result<(), RuleError> {
        let rule = || self.name.clone();
        if self.name.trim().is_empty() {
            return Err(RuleError::NoName);
        }
        if self.actions.is_empty() {
            return Err(RuleError::NoActions { rule: rule() });
        }
        for (index, condition) in self.conditions.iter().enumerate() {
            let position = index + 1;
            let empty = match condition {
                Condition::Channel { any } => any.is_empty(),
                Condition::SenderAddress { any }
                | Condition::SenderDomain { any }
                | Condition::SubjectContains { any }
                | Condition::TextContains { any } => any.iter().all(|v| v.trim().is_empty()),
                Condition::Priority { any } => any.is_empty(),
                Condition::Department { .. } | Condition::BusinessHours { .. } => false,
                Condition::TextMatches { regex } => regex.is_empty(),
            };
            if empty {
                return Err(RuleError::EmptyList {
                    rule: rule(),
                    position,
                });
            }
            if let Condition::SenderDomain { any } = condition
                && let Some(value) = any.iter().find(|v| v.contains('@'))
            {
                return Err(RuleError::AddressAsDomain {
                    rule: rule(),
                    position,
                    value: value.clone(),
                });
            }
            if let Condition::TextMatches { regex } = condition
                && let Err(error) = compile(regex)
            {
                return Err(RuleError::Regex {
                    rule: rule(),
                    position,
                    message: error.to_string(),
                });
            }
        }
        for (index, action) in self.actions.iter().enumerate() {
            if let Action::AddTags { tags } = action
                && let Some(tag) = tags
                    .iter()
                    .find(|t| t.trim().is_empty() || t.contains(char::is_whitespace))
            {
                return Err(RuleError::BadTag {
                    rule: rule(),
                    position: index + 1,
                    tag: tag.clone(),
                });
            }
        }
        Ok(())
    }
}

/// When the team works: days of the week and hours, in one fixed UTC offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusinessHours {
    pub days: Vec<Weekday>,
    pub start: NaiveTime,
    pub end: NaiveTime,
    pub offset: FixedOffset,
}

impl BusinessHours {
    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        let local = at.with_timezone(&self.offset);
        let time = local.time();
        self.days.contains(&local.weekday()) && time >= self.start && time < self.end
    }
}

/// What rules look at, and what their actions change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketFacts {
    pub channel: ChannelKind,
    pub sender_address: String,
    pub subject: String,
    pub text: String,
    pub department: Option<i64>,
    pub priority: Priority,
    pub tags: Vec<String>,
    pub assignee: Option<i64>,
    pub received_at: DateTime<Utc>,
}

/// A rule that matched, for the ticket's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub rule_id: i64,
    pub rule_name: String,
    pub actions: Vec<Action>,
}

/// The domain of an address, lower case; empty when it has none.
pub(crate) fn domain_of(address: &str) -> String {
    address
        .rsplit_once('@')
        .map(|(_, domain)| domain.to_ascii_lowercase())
        .unwrap_or_default()
}

/// Whether `domain` is `wanted` or one of its subdomains.
pub(crate) fn in_domain(domain: &str, wanted: &str) -> bool {
    let wanted = wanted.trim().to_ascii_lowercase();
    !wanted.is_empty() && (domain == wanted || domain.ends_with(&format!(".{wanted}")))
}

fn contains_any(haystack: &str, needles: &[String]) -> bool {
    let haystack = haystack.to_lowercase();
    needles
        .iter()
        .map(|needle| needle.trim().to_lowercase())
        .any(|needle| !needle.is_empty() && haystack.contains(&needle))
}

impl Condition {
    pub fn holds(&self, facts: &TicketFacts, hours: &BusinessHours) -> bool {
        match self {
            Condition::Channel { any } => any.contains(&facts.channel),
            Condition::SenderAddress { any } => any
                .iter()
                .any(|address| address.trim().eq_ignore_ascii_case(&facts.sender_address)),
            Condition::SenderDomain { any } => {
                let domain = domain_of(&facts.sender_address);
                any.iter().any(|wanted| in_domain(&domain, wanted))
            }
            Condition::SubjectContains { any } => contains_any(&facts.subject, any),
            Condition::TextContains { any } => {
                contains_any(&facts.subject, any) || contains_any(&facts.text, any)
            }
            // Patterns are validated on save; one that fails to compile never matches.
            Condition::TextMatches { regex } => compile(regex)
                .map(|regex| regex.is_match(&facts.subject) || regex.is_match(&facts.text))
                .unwrap_or(false),
            Condition::Department { any } => match facts.department {
                Some(department) => any.contains(&department),
                None => any.is_empty(),
            },
            Condition::Priority { any } => any.contains(&facts.priority),
            Condition::BusinessHours { inside } => hours.contains(facts.received_at) == *inside,
        }
    }
}

/// A ticket field an action sets, with the value it sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    Department(i64),
    Priority(Priority),
    Assignee(i64),
}

/// The fields a later rule can set again, undoing an earlier rule's choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    Department,
    Priority,
    Assignee,
}

impl Field {
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Department => "department",
            Field::Priority => "priority",
            Field::Assignee => "assignee",
        }
    }
}

impl Setting {
    pub fn field(self) -> Field {
        match self {
            Setting::Department(_) => Field::Department,
            Setting::Priority(_) => Field::Priority,
            Setting::Assignee(_) => Field::Assignee,
        }
    }
}

impl Action {
    /// The field this action sets; tags only add, so they set none.
    pub fn setting(&self) -> Option<Setting> {
        match self {
            Action::SetDepartment { department } => Some(Setting::Department(*department)),
            Action::SetPriority { priority } => Some(Setting::Priority(*priority)),
            Action::AssignTo { agent } => Some(Setting::Assignee(*agent)),
            Action::AddTags { .. } => None,
        }
    }

    fn apply_to(&self, facts: &mut TicketFacts) {
        match self {
            Action::SetDepartment { department } => facts.department = Some(*department),
            Action::SetPriority { priority } => facts.priority = *priority,
            Action::AddTags { tags } => {
                for tag in tags {
                    let tag = tag.trim().to_lowercase();
                    if !facts.tags.contains(&tag) {
                        facts.tags.push(tag);
                    }
                }
            }
            Action::AssignTo { agent } => facts.assignee = Some(*agent),
        }
    }
}

impl Rule {
    /// Whether all conditions hold (an enabled rule with none matches every ticket).
    pub fn matches(&self, facts: &TicketFacts, hours: &BusinessHours) -> bool {
        self.conditions.iter().all(|c| c.holds(facts, hours))
    }
}

/// A later rule setting a field again, to another value than an earlier rule had set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overwrite {
    pub field: Field,
    /// Positions in the rule list, counted from 0.
    pub earlier: usize,
    pub later: usize,
}

/// What running the rules did to one ticket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trace {
    /// Positions (from 0) of the rules that matched, in order.
    pub applied: Vec<usize>,
    /// The rule whose `stop` ended the evaluation.
    pub stopped_by: Option<usize>,
    pub overwrites: Vec<Overwrite>,
}

/// Runs enabled rules in order over `facts`, applying the actions of each that matches, until
/// one with `stop` matched, and says which rules matched and what later ones undid. Later rules
/// see what earlier ones changed.
pub fn trace(rules: &[Rule], facts: &mut TicketFacts, hours: &BusinessHours) -> Trace {
    let mut trace = Trace::default();
    // Per field: its current value and the rules that set it to that value.
    let mut set_by: Vec<(Setting, Vec<usize>)> = Vec::new();
    for (at, rule) in rules.iter().enumerate() {
        if !rule.enabled || !rule.matches(facts, hours) {
            continue;
        }
        for action in &rule.actions {
            if let Some(setting) = action.setting() {
                match set_by
                    .iter_mut()
                    .find(|(s, _)| s.field() == setting.field())
                {
                    Some((current, setters)) if *current == setting => {
                        if !setters.contains(&at) {
                            setters.push(at);
                        }
                    }
                    Some((current, setters)) => {
                        trace.overwrites.extend(
                            setters
                                .iter()
                                .filter(|earlier| **earlier != at)
                                .map(|earlier| Overwrite {
                                    field: setting.field(),
                                    earlier: *earlier,
                                    later: at,
                                }),
                        );
                        *current = setting;
                        *setters = vec![at];
                    }
                    None => set_by.push((setting, vec![at])),
                }
            }
            action.apply_to(facts);
        }
        trace.applied.push(at);
        if rule.stop {
            trace.stopped_by = Some(at);
            break;
        }
    }
    trace
}

/// Runs the rules over `facts` (see [`trace`]) and names the ones that matched.
pub fn apply(rules: &[Rule], facts: &mut TicketFacts, hours: &BusinessHours) -> Vec<Applied> {
    trace(rules, facts, hours)
        .applied
        .into_iter()
        .map(|at| Applied {
            rule_id: rules[at].id,
            rule_name: rules[at].name.clone(),
            actions: rules[at].actions.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests;
