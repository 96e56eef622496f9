//! What an admin should know about the rules before tickets meet them: rules that can never
//! fire, rules whose changes a later rule undoes, and what each says in words with names.
//!
//! Two ways of knowing: from the conditions alone where that is decidable (a later rule with no
//! conditions, or with conditions every ticket of the earlier one meets), and from running the
//! rules over recent tickets.

use std::collections::BTreeMap;

use super::rules::{
    self, BusinessHours, Condition, Field, Rule, Setting, TicketFacts, domain_of, in_domain,
};

/// The departments and agents that exist, so rules can name them and say when they are gone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Directory {
    pub departments: Vec<(i64, String)>,
    pub agents: Vec<KnownAgent>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownAgent {
    pub id: i64,
    pub name: String,
    /// A disabled agent cannot sign in and gets no tickets.
    pub active: bool,
}

impl Directory {
    pub fn has_department(&self, id: i64) -> bool {
        self.departments.iter().any(|(known, _)| *known == id)
    }

    /// The department's name, or what is left of it.
    pub fn department_name(&self, id: i64) -> String {
        self.departments
            .iter()
            .find(|(known, _)| *known == id)
            .map_or_else(
                || format!("deleted department (#{id})"),
                |(_, name)| name.clone(),
            )
    }

    pub fn agent(&self, id: i64) -> Option<&KnownAgent> {
        self.agents.iter().find(|agent| agent.id == id)
    }

    /// The agent's name, saying when they are disabled or gone.
    pub fn agent_name(&self, id: i64) -> String {
        match self.agent(id) {
            Some(agent) if agent.active => agent.name.clone(),
            Some(agent) => format!("{} (disabled)", agent.name),
            None => format!("deleted agent (#{id})"),
        }
    }
}

/// A recent ticket as it arrived, to try the rules on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    pub number: i64,
    pub facts: TicketFacts,
}

/// Why a rule can never change a ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NeverFires {
    /// A condition's list of values is empty, so nothing is in it.
    EmptyList { position: usize },
    /// A department condition names only departments that no longer exist.
    DepartmentsGone { position: usize },
    /// Two conditions no ticket can meet at once.
    Contradiction { first: usize, second: usize },
    /// An earlier rule with `stop` matches every ticket this one would.
    StoppedBy { rule: usize },
}

/// Something an admin should look at; positions count from 1, rules are indices into the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    NeverFires(NeverFires),
    /// An action sets a department that no longer exists.
    DepartmentGone {
        position: usize,
        department: i64,
    },
    /// An action assigns to an agent who is disabled or gone.
    AgentUnavailable {
        position: usize,
        agent: i64,
    },
    /// A department condition also names a department that no longer exists.
    DeletedInCondition {
        position: usize,
        department: i64,
    },
    /// A later rule sets `field` again, to another value, on tickets both match: on every such
    /// ticket (`always`, from the conditions), and on these recent tickets.
    Overridden {
        by: usize,
        field: Field,
        always: bool,
        tickets: Vec<i64>,
    },
}

impl Finding {
    /// The finding in words, naming rules, departments and agents.
    pub fn message(&self, rules: &[Rule], directory: &Directory) -> String {
        let rule_name = |at: usize| {
            rules
                .get(at)
                .map_or_else(|| format!("#{}", at + 1), |rule| format!("“{}”", rule.name))
        };
        match self {
            Finding::NeverFires(NeverFires::EmptyList { position }) => {
                format!("Never fires: condition {position} has an empty list, so nothing meets it.")
            }
            Finding::NeverFires(NeverFires::DepartmentsGone { position }) => format!(
                "Never fires: condition {position} names only departments that no longer exist."
            ),
            Finding::NeverFires(NeverFires::Contradiction { first, second }) => format!(
                "Never fires: conditions {first} and {second} contradict each other; no ticket \
                 meets both."
            ),
            Finding::NeverFires(NeverFires::StoppedBy { rule }) => format!(
                "Never fires: the earlier rule {} (position {}) matches every ticket this one \
                 would and stops the evaluation.",
                rule_name(*rule),
                rule + 1
            ),
            Finding::DepartmentGone {
                position,
                department,
            } => format!(
                "Action {position} sets a department that no longer exists (#{department})."
            ),
            Finding::AgentUnavailable { position, agent } => match directory.agent(*agent) {
                Some(known) => format!(
                    "Action {position} assigns to {}, who is disabled and cannot act on the ticket.",
                    known.name
                ),
                None => format!(
                    "Action {position} assigns to an agent who no longer exists (#{agent})."
                ),
            },
            Finding::DeletedInCondition {
                position,
                department,
            } => format!(
                "Condition {position} names a department that no longer exists (#{department})."
            ),
            Finding::Overridden {
                by,
                field,
                always,
                tickets,
            } => {
                let seen = if tickets.is_empty() {
                    String::new()
                } else {
                    let shown: Vec<String> =
                        tickets.iter().take(5).map(|n| format!("#{n}")).collect();
                    let more = if tickets.len() > 5 { ", …" } else { "" };
                    format!(
                        " It did on {} recent ticket{} ({}{more}).",
                        tickets.len(),
                        if tickets.len() == 1 { "" } else { "s" },
                        shown.join(", ")
                    )
                };
                let scope = if *always {
                    "on every ticket this rule matches"
                } else {
                    "on some tickets this rule matches"
                };
                format!(
                    "Overridden: the later rule {} (position {}) sets the {} again {scope}, and \
                     this rule does not stop.{seen} Tick “stop” here or move the rules.",
                    rule_name(*by),
                    by + 1,
                    field.as_str()
                )
            }
        }
    }
}

/// The findings per rule (in list order) and how many recent tickets each rule changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub findings: Vec<Vec<Finding>>,
    pub matched: Vec<usize>,
}

/// Looks at the rules in order: which can never fire, and which a later one overrides.
pub fn check(
    rules: &[Rule],
    directory: &Directory,
    samples: &[Sample],
    hours: &BusinessHours,
) -> Report {
    let mut report = Report {
        findings: vec![Vec::new(); rules.len()],
        matched: vec![0; rules.len()],
    };
    let mut seen: BTreeMap<(usize, usize, Field), Vec<i64>> = BTreeMap::new();
    for sample in samples {
        let mut facts = sample.facts.clone();
        let trace = rules::trace(rules, &mut facts, hours);
        for at in trace.applied {
            report.matched[at] += 1;
        }
        for overwrite in trace.overwrites {
            let tickets = seen
                .entry((overwrite.earlier, overwrite.later, overwrite.field))
                .or_default();
            if !tickets.contains(&sample.number) {
                tickets.push(sample.number);
            }
        }
    }
    let never: Vec<Vec<NeverFires>> = (0..rules.len())
        .map(|at| never_fires(rules, at, directory))
        .collect();
    for (at, rule) in rules.iter().enumerate() {
        if !rule.enabled {
            continue;
        }
        let findings = &mut report.findings[at];
        findings.extend(never[at].iter().cloned().map(Finding::NeverFires));
        findings.extend(dead_references(rule, directory));
        if !never[at].is_empty() || rule.stop {
            continue;
        }
        for later in at + 1..rules.len() {
            if !rules[later].enabled || !never[later].is_empty() {
                continue;
            }
            for field in [Field::Department, Field::Priority, Field::Assignee] {
                let always = always_overrides(rules, at, later, field);
                let tickets = seen.remove(&(at, later, field)).unwrap_or_default();
                if always || !tickets.is_empty() {
                    findings.push(Finding::Overridden {
                        by: later,
                        field,
                        always,
                        tickets,
                    });
                }
            }
        }
    }
    report
}

/// How one recent ticket meets a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The rule applies; later rules set these fields again.
    Applies { overridden: Vec<(Field, usize)> },
    /// Its conditions hold, but this earlier rule stopped the evaluation first.
    StoppedBefore { rule: usize },
}

/// Which of the recent tickets the rule at `at` would change, with the rules as they are.
pub fn preview(
    rules: &[Rule],
    at: usize,
    samples: &[Sample],
    hours: &BusinessHours,
) -> Vec<(i64, Outcome)> {
    let Some(rule) = rules.get(at) else {
        return Vec::new();
    };
    let mut rows = Vec::new();
    for sample in samples {
        let mut facts = sample.facts.clone();
        let trace = rules::trace(rules, &mut facts, hours);
        if trace.applied.contains(&at) {
            let overridden = trace
                .overwrites
                .iter()
                .filter(|o| o.earlier == at)
                .map(|o| (o.field, o.later))
                .collect();
            rows.push((sample.number, Outcome::Applies { overridden }));
        } else if let Some(stop) = trace.stopped_by.filter(|stop| *stop < at)
            && rule.matches(&sample.facts, hours)
        {
            rows.push((sample.number, Outcome::StoppedBefore { rule: stop }));
        }
    }
    rows
}

/// The reasons, from its own conditions and the rules before it, why a rule cannot fire.
fn never_fires(rules: &[Rule], at: usize, directory: &Directory) -> Vec<NeverFires> {
    let rule = &rules[at];
    let mut reasons = own_impossibilities(rule, directory);
    if !reasons.is_empty() {
        return reasons;
    }
    let stopper = rules[..at].iter().position(|earlier| {
        earlier.enabled
            && earlier.stop
            && own_impossibilities(earlier, directory).is_empty()
            && earlier
                .conditions
                .iter()
                .all(|e| is_static(e) && rule.conditions.iter().any(|c| implies(c, e)))
    });
    if let Some(stopper) = stopper {
        reasons.push(NeverFires::StoppedBy { rule: stopper });
    }
    reasons
}

/// Conditions of the rule itself that no ticket can meet.
fn own_impossibilities(rule: &Rule, directory: &Directory) -> Vec<NeverFires> {
    let mut reasons = Vec::new();
    for (index, condition) in rule.conditions.iter().enumerate() {
        let position = index + 1;
        let blank = |values: &[String]| values.iter().all(|v| v.trim().is_empty());
        let empty = match condition {
            Condition::Channel { any } => any.is_empty(),
            Condition::Priority { any } => any.is_empty(),
            Condition::SenderAddress { any }
            | Condition::SenderDomain { any }
            | Condition::SubjectContains { any }
            | Condition::TextContains { any } => blank(any),
            Condition::TextMatches { .. }
            | Condition::Department { .. }
            | Condition::BusinessHours { .. } => false,
        };
        if empty {
            reasons.push(NeverFires::EmptyList { position });
        }
        if let Condition::Department { any } = condition
            && !any.is_empty()
            && !any.iter().any(|id| directory.has_department(*id))
        {
            reasons.push(NeverFires::DepartmentsGone { position });
        }
    }
    for (i, first) in rule.conditions.iter().enumerate() {
        for (j, second) in rule.conditions.iter().enumerate().skip(i + 1) {
            if contradict(first, second) {
                reasons.push(NeverFires::Contradiction {
                    first: i + 1,
                    second: j + 1,
                });
            }
        }
    }
    reasons
}

/// Actions pointing at departments or agents that cannot take a ticket, and conditions naming
/// deleted departments beside existing ones.
fn dead_references(rule: &Rule, directory: &Directory) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (index, condition) in rule.conditions.iter().enumerate() {
        if let Condition::Department { any } = condition
            && any.iter().any(|id| directory.has_department(*id))
        {
            findings.extend(
                any.iter()
                    .filter(|id| !directory.has_department(**id))
                    .map(|id| Finding::DeletedInCondition {
                        position: index + 1,
                        department: *id,
                    }),
            );
        }
    }
    for (index, action) in rule.actions.iter().enumerate() {
        let position = index + 1;
        match action.setting() {
            Some(Setting::Department(department)) if !directory.has_department(department) => {
                findings.push(Finding::DepartmentGone {
                    position,
                    department,
                });
            }
            Some(Setting::Assignee(agent))
                if !directory.agent(agent).is_some_and(|known| known.active) =>
            {
                findings.push(Finding::AgentUnavailable { position, agent });
            }
            _ => {}
        }
    }
    findings
}

/// What a rule finally sets `field` to, if it sets it.
fn final_setting(rule: &Rule, field: Field) -> Option<Setting> {
    rule.actions
        .iter()
        .rev()
        .filter_map(|action| action.setting())
        .find(|setting| setting.field() == field)
}

/// Whether, from the conditions alone, the rule at `later` sets `field` to another value on
/// every ticket the rule at `earlier` changes. Rules in between must not stop or touch the
/// department or priority a later condition looks at; otherwise only recent tickets can tell.
fn always_overrides(rules: &[Rule], earlier: usize, later: usize, field: Field) -> bool {
    let (first, second) = (&rules[earlier], &rules[later]);
    let (Some(set), Some(again)) = (final_setting(first, field), final_setting(second, field))
    else {
        return false;
    };
    if set == again {
        return false;
    }
    let between = &rules[earlier + 1..later];
    if between.iter().any(|rule| rule.enabled && rule.stop) {
        return false;
    }
    let untouched = |field: Field| {
        !between
            .iter()
            .any(|rule| rule.enabled && final_setting(rule, field).is_some())
    };
    second.conditions.iter().all(|condition| match condition {
        Condition::Department { any } => {
            untouched(Field::Department)
                && match final_setting(first, Field::Department) {
                    Some(Setting::Department(id)) => any.contains(&id),
                    _ => first.conditions.iter().any(|e| implies(e, condition)),
                }
        }
        Condition::Priority { any } => {
            untouched(Field::Priority)
                && match final_setting(first, Field::Priority) {
                    Some(Setting::Priority(priority)) => any.contains(&priority),
                    _ => first.conditions.iter().any(|e| implies(e, condition)),
                }
        }
        _ => first.conditions.iter().any(|e| implies(e, condition)),
    })
}

/// Conditions on what arrived (channel, sender, words, time), which no rule changes.
fn is_static(condition: &Condition) -> bool {
    !matches!(
        condition,
        Condition::Department { .. } | Condition::Priority { .. }
    )
}

fn lower(values: &[String]) -> Vec<String> {
    values
        .iter()
        .map(|v| v.trim().to_lowercase())
        .filter(|v| !v.is_empty())
        .collect()
}

/// Whether every ticket meeting `first` also meets `second` (when decidable; false otherwise).
pub fn implies(first: &Condition, second: &Condition) -> bool {
    use Condition as C;
    match (first, second) {
        (C::Channel { any: a }, C::Channel { any: b }) => a.iter().all(|v| b.contains(v)),
        (C::Priority { any: a }, C::Priority { any: b }) => a.iter().all(|v| b.contains(v)),
        (C::Department { any: a }, C::Department { any: b }) => {
            // An empty list means "in no department".
            a.is_empty() == b.is_empty() && a.iter().all(|v| b.contains(v))
        }
        (C::SenderAddress { any: a }, C::SenderAddress { any: b }) => {
            let b = lower(b);
            !a.is_empty() && lower(a).iter().all(|v| b.contains(v))
        }
        (C::SenderAddress { any: a }, C::SenderDomain { any: b }) => {
            let a = lower(a);
            !a.is_empty()
                && a.iter()
                    .all(|address| b.iter().any(|d| in_domain(&domain_of(address), d)))
        }
        (C::SenderDomain { any: a }, C::SenderDomain { any: b }) => {
            let a = lower(a);
            !a.is_empty()
                && a.iter()
                    .all(|domain| b.iter().any(|d| in_domain(domain, d)))
        }
        // A subject containing "invoice 2024" contains "invoice"; the subject is part of what
        // text_contains looks at.
        (
            C::SubjectContains { any: a },
            C::SubjectContains { any: b } | C::TextContains { any: b },
        )
        | (C::TextContains { any: a }, C::TextContains { any: b }) => {
            let (a, b) = (lower(a), lower(b));
            !a.is_empty() && a.iter().all(|x| b.iter().any(|y| x.contains(y.as_str())))
        }
        (C::TextMatches { regex: a }, C::TextMatches { regex: b }) => a == b,
        (C::BusinessHours { inside: a }, C::BusinessHours { inside: b }) => a == b,
        _ => false,
    }
}

/// Whether no ticket can meet both conditions.
pub fn contradict(first: &Condition, second: &Condition) -> bool {
    use Condition as C;
    let disjoint = |a: &[String], b: &[String]| {
        let (a, b) = (lower(a), lower(b));
        !a.is_empty() && !b.is_empty() && !a.iter().any(|v| b.contains(v))
    };
    let domains_apart = |a: &[String], b: &[String]| {
        let (a, b) = (lower(a), lower(b));
        !a.is_empty()
            && !b.is_empty()
            && !a
                .iter()
                .any(|x| b.iter().any(|y| in_domain(x, y) || in_domain(y, x)))
    };
    match (first, second) {
        (C::Channel { any: a }, C::Channel { any: b }) => {
            !a.is_empty() && !b.is_empty() && !a.iter().any(|v| b.contains(v))
        }
        (C::Priority { any: a }, C::Priority { any: b }) => {
            !a.is_empty() && !b.is_empty() && !a.iter().any(|v| b.contains(v))
        }
        (C::Department { any: a }, C::Department { any: b }) => {
            a.is_empty() != b.is_empty() || (!a.is_empty() && !a.iter().any(|v| b.contains(v)))
        }
        (C::BusinessHours { inside: a }, C::BusinessHours { inside: b }) => a != b,
        (C::SenderAddress { any: a }, C::SenderAddress { any: b }) => disjoint(a, b),
        (C::SenderDomain { any: a }, C::SenderDomain { any: b }) => domains_apart(a, b),
        (C::SenderAddress { any: addresses }, C::SenderDomain { any: domains })
        | (C::SenderDomain { any: domains }, C::SenderAddress { any: addresses }) => {
            let addresses = lower(addresses);
            !addresses.is_empty()
                && !domains.iter().all(|d| d.trim().is_empty())
                && !addresses
                    .iter()
                    .any(|address| domains.iter().any(|d| in_domain(&domain_of(address), d)))
        }
        _ => false,
    }
}

fn quoted(values: &[String]) -> String {
    let values: Vec<String> = values
        .iter()
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .map(|v| format!("“{v}”"))
        .collect();
    or_list(values)
}

fn or_list(values: Vec<String>) -> String {
    match values.len() {
        0 => "(nothing)".to_owned(),
        _ => values.join(" or "),
    }
}

/// A condition in words, with names for departments.
pub fn describe_condition(condition: &Condition, directory: &Directory) -> String {
    match condition {
        Condition::Channel { any } => format!(
            "channel is {}",
            or_list(any.iter().map(|c| c.as_str().to_owned()).collect())
        ),
        Condition::SenderAddress { any } => format!("sender is {}", quoted(any)),
        Condition::SenderDomain { any } => {
            format!("sender's domain is {} (or a subdomain)", quoted(any))
        }
        Condition::SubjectContains { any } => format!("subject contains {}", quoted(any)),
        Condition::TextContains { any } => {
            format!("subject or text contains {}", quoted(any))
        }
        Condition::TextMatches { regex } => format!("subject or text matches /{regex}/"),
        Condition::Department { any } if any.is_empty() => "in no department yet".to_owned(),
        Condition::Department { any } => format!(
            "department is {}",
            or_list(
                any.iter()
                    .map(|id| directory.department_name(*id))
                    .collect()
            )
        ),
        Condition::Priority { any } => format!(
            "priority is {}",
            or_list(any.iter().map(|p| p.as_str().to_owned()).collect())
        ),
        Condition::BusinessHours { inside: true } => "arrived inside business hours".to_owned(),
        Condition::BusinessHours { inside: false } => "arrived outside business hours".to_owned(),
    }
}

/// An action in words, with names for departments and agents.
pub fn describe_action(action: &rules::Action, directory: &Directory) -> String {
    match action {
        rules::Action::SetDepartment { department } => {
            format!("department → {}", directory.department_name(*department))
        }
        rules::Action::SetPriority { priority } => format!("priority → {priority}"),
        rules::Action::AddTags { tags } => format!("add tags {}", tags.join(", ")),
        rules::Action::AssignTo { agent } => format!("assign to {}", directory.agent_name(*agent)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Priority;
    use crate::domain::rules::Action;
    use chrono::{FixedOffset, NaiveTime, Weekday};
    use helpdesk_channel::ChannelKind;

    const BILLING: i64 = 2;
    const GENERAL: i64 = 1;

    fn hours() -> BusinessHours {
        BusinessHours {
            days: vec![Weekday::Mon, Weekday::Tue, Weekday::Wed],
            start: NaiveTime::from_hms_opt(9, 0, 0).expect("valid"),
            end: NaiveTime::from_hms_opt(17, 0, 0).expect("valid"),
            offset: FixedOffset::east_opt(0).expect("valid"),
        }
    }

    fn directory() -> Directory {
        Directory {
            departments: vec![(GENERAL, "General".into()), (BILLING, "Billing".into())],
            agents: vec![
                KnownAgent {
                    id: 5,
                    name: "Ada".into(),
                    active: true,
                },
                KnownAgent {
                    id: 6,
                    name: "Bob".into(),
                    active: false,
                },
            ],
        }
    }

    fn rule(name: &str, conditions: Vec<Condition>, actions: Vec<Action>, stop: bool) -> Rule {
        Rule {
            id: 0,
            name: name.into(),
            enabled: true,
            conditions,
            actions,
            stop,
        }
    }

    fn words(any: &[&str]) -> Vec<String> {
        any.iter().map(|w| (*w).to_owned()).collect()
    }

    fn invoices_to_billing(stop: bool) -> Rule {
        rule(
            "Invoices to Billing",
            vec![Condition::TextContains {
                any: words(&["invoice"]),
            }],
            vec![
                Action::SetDepartment {
                    department: BILLING,
                },
                Action::AddTags {
                    tags: words(&["billing"]),
                },
            ],
            stop,
        )
    }

    fn to_general() -> Rule {
        rule(
            "To General",
            vec![],
            vec![Action::SetDepartment {
                department: GENERAL,
            }],
            false,
        )
    }

    fn sample(number: i64, subject: &str) -> Sample {
        Sample {
            number,
            facts: TicketFacts {
                channel: ChannelKind::Email,
                sender_address: "pia@customer.example".into(),
                subject: subject.into(),
                text: String::new(),
                department: None,
                priority: Priority::Normal,
                tags: Vec::new(),
                assignee: None,
                received_at: "2026-11-25T10:30:00Z".parse().expect("date"),
            },
        }
    }

    #[test]
    fn a_catch_all_after_a_rule_without_stop_overrides_it() {
        let rules = vec![invoices_to_billing(false), to_general()];
        let samples = vec![sample(1001, "Invoice 7"), sample(1002, "Hello")];
        let report = check(&rules, &directory(), &samples, &hours());
        assert_eq!(
            report.findings[0],
            vec![Finding::Overridden {
                by: 1,
                field: Field::Department,
                always: true,
                tickets: vec![1001],
            }]
        );
        assert!(report.findings[1].is_empty());
        assert_eq!(report.matched, vec![1, 2]);
        let message = report.findings[0][0].message(&rules, &directory());
        assert!(message.contains("“To General”"), "{message}");
        assert!(message.contains("#1001"), "{message}");

        let fixed = vec![invoices_to_billing(true), to_general()];
        let report = check(&fixed, &directory(), &samples, &hours());
        assert!(report.findings.iter().all(Vec::is_empty), "{report:?}");
    }

    #[test]
    fn a_later_rule_with_a_superset_of_conditions_overrides_only_where_it_matches() {
        let narrower = rule(
            "Urgent invoices",
            vec![Condition::SubjectContains {
                any: words(&["invoice overdue"]),
            }],
            vec![Action::SetPriority {
                priority: Priority::Urgent,
            }],
            false,
        );
        let wider = rule(
            "Invoices are low",
            vec![Condition::TextContains {
                any: words(&["invoice"]),
            }],
            vec![Action::SetPriority {
                priority: Priority::Low,
            }],
            false,
        );
        let report = check(
            &[narrower.clone(), wider.clone()],
            &directory(),
            &[],
            &hours(),
        );
        assert!(matches!(
            report.findings[0][..],
            [Finding::Overridden { always: true, .. }]
        ));
        // The other way round the later rule does not match every ticket of the earlier one;
        // a recent ticket shows where it did.
        let samples = vec![sample(7, "invoice overdue")];
        let report = check(&[wider, narrower], &directory(), &samples, &hours());
        assert_eq!(
            report.findings[0],
            vec![Finding::Overridden {
                by: 1,
                field: Field::Priority,
                always: false,
                tickets: vec![7],
            }]
        );
    }

    #[test]
    fn setting_the_same_value_again_or_a_department_condition_on_the_new_one_is_no_override() {
        let same = rule(
            "Billing again",
            vec![],
            vec![Action::SetDepartment {
                department: BILLING,
            }],
            false,
        );
        let report = check(
            &[invoices_to_billing(false), same],
            &directory(),
            &[sample(1, "invoice")],
            &hours(),
        );
        assert!(report.findings[0].is_empty(), "{report:?}");
        // A later rule on Billing tickets setting the priority does not touch the department.
        let billing_high = rule(
            "Billing is high",
            vec![Condition::Department { any: vec![BILLING] }],
            vec![Action::SetPriority {
                priority: Priority::High,
            }],
            false,
        );
        let report = check(
            &[invoices_to_billing(false), billing_high],
            &directory(),
            &[sample(1, "invoice")],
            &hours(),
        );
        assert!(report.findings.iter().all(Vec::is_empty), "{report:?}");
        assert_eq!(report.matched, vec![1, 1]);
    }

    #[test]
    fn rules_that_can_never_fire_say_why() {
        let contradictory = rule(
            "Mail on chat",
            vec![
                Condition::Channel {
                    any: vec![ChannelKind::Email],
                },
                Condition::Channel {
                    any: vec![ChannelKind::Telegram],
                },
            ],
            vec![Action::SetPriority {
                priority: Priority::High,
            }],
            false,
        );
        let gone = rule(
            "Old department",
            vec![Condition::Department { any: vec![99] }],
            vec![Action::AssignTo { agent: 5 }],
            false,
        );
        let empty = rule(
            "Empty",
            vec![Condition::Priority { any: vec![] }],
            vec![Action::AssignTo { agent: 5 }],
            false,
        );
        let stopper = rule(
            "Everything to General",
            vec![],
            vec![Action::SetDepartment {
                department: GENERAL,
            }],
            true,
        );
        let after_stop = invoices_to_billing(false);
        let rules = vec![contradictory, gone, empty, stopper, after_stop];
        let report = check(&rules, &directory(), &[], &hours());
        assert_eq!(
            report.findings[0],
            vec![Finding::NeverFires(NeverFires::Contradiction {
                first: 1,
                second: 2
            })]
        );
        assert_eq!(
            report.findings[1],
            vec![Finding::NeverFires(NeverFires::DepartmentsGone {
                position: 1
            })]
        );
        assert_eq!(
            report.findings[2],
            vec![Finding::NeverFires(NeverFires::EmptyList { position: 1 })]
        );
        assert!(report.findings[3].is_empty());
        assert_eq!(
            report.findings[4],
            vec![Finding::NeverFires(NeverFires::StoppedBy { rule: 3 })]
        );
        assert!(
            report.findings[4][0]
                .message(&rules, &directory())
                .contains("“Everything to General”")
        );
    }

    #[test]
    fn an_earlier_stop_only_hides_rules_whose_tickets_it_always_takes() {
        let mail_stops = rule(
            "Mail to General",
            vec![Condition::Channel {
                any: vec![ChannelKind::Email],
            }],
            vec![Action::SetDepartment {
                department: GENERAL,
            }],
            true,
        );
        let mail_invoices = rule(
            "Mail invoices",
            vec![
                Condition::Channel {
                    any: vec![ChannelKind::Email],
                },
                Condition::SubjectContains {
                    any: words(&["invoice"]),
                },
            ],
            vec![Action::AssignTo { agent: 5 }],
            false,
        );
        let report = check(
            &[mail_stops.clone(), mail_invoices],
            &directory(),
            &[],
            &hours(),
        );
        assert_eq!(
            report.findings[1],
            vec![Finding::NeverFires(NeverFires::StoppedBy { rule: 0 })]
        );
        let any_invoice = invoices_to_billing(false);
        let report = check(&[mail_stops, any_invoice], &directory(), &[], &hours());
        assert!(
            report.findings[1].is_empty(),
            "chat invoices still reach it"
        );
    }

    #[test]
    fn actions_on_gone_departments_and_disabled_or_deleted_agents_are_named() {
        let rules = vec![rule(
            "Dead ends",
            vec![Condition::Department {
                any: vec![BILLING, 42],
            }],
            vec![
                Action::SetDepartment { department: 77 },
                Action::AssignTo { agent: 6 },
                Action::AssignTo { agent: 8 },
            ],
            false,
        )];
        let report = check(&rules, &directory(), &[], &hours());
        assert_eq!(
            report.findings[0],
            vec![
                Finding::DeletedInCondition {
                    position: 1,
                    department: 42
                },
                Finding::DepartmentGone {
                    position: 1,
                    department: 77
                },
                Finding::AgentUnavailable {
                    position: 2,
                    agent: 6
                },
                Finding::AgentUnavailable {
                    position: 3,
                    agent: 8
                },
            ]
        );
        let dir = directory();
        assert!(report.findings[0][2].message(&rules, &dir).contains("Bob"));
        assert_eq!(dir.agent_name(6), "Bob (disabled)");
        assert_eq!(dir.department_name(77), "deleted department (#77)");
        assert_eq!(
            describe_condition(&rules[0].conditions[0], &dir),
            "department is Billing or deleted department (#42)"
        );
        assert_eq!(
            describe_action(&rules[0].actions[1], &dir),
            "assign to Bob (disabled)"
        );
    }

    #[test]
    fn disabled_rules_neither_warn_nor_override() {
        let mut general = to_general();
        general.enabled = false;
        let report = check(
            &[invoices_to_billing(false), general],
            &directory(),
            &[sample(1, "invoice")],
            &hours(),
        );
        assert!(report.findings.iter().all(Vec::is_empty), "{report:?}");
    }

    #[test]
    fn implication_and_contradiction_of_conditions() {
        let address = Condition::SenderAddress {
            any: words(&["Pia@Sub.Customer.example"]),
        };
        let domain = Condition::SenderDomain {
            any: words(&["customer.example"]),
        };
        let other_domain = Condition::SenderDomain {
            any: words(&["elsewhere.example"]),
        };
        assert!(implies(&address, &domain));
        assert!(!implies(&domain, &address));
        assert!(contradict(&address, &other_domain));
        assert!(!contradict(&address, &domain));
        assert!(contradict(
            &Condition::BusinessHours { inside: true },
            &Condition::BusinessHours { inside: false }
        ));
        assert!(contradict(
            &Condition::Department { any: vec![] },
            &Condition::Department { any: vec![BILLING] }
        ));
        assert!(implies(
            &Condition::SubjectContains {
                any: words(&["Refund please"])
            },
            &Condition::TextContains {
                any: words(&["refund"])
            }
        ));
        assert!(!implies(
            &Condition::TextContains {
                any: words(&["refund"])
            },
            &Condition::SubjectContains {
                any: words(&["refund"])
            }
        ));
    }

    #[test]
    fn the_preview_lists_tickets_the_rule_changes_and_those_an_earlier_stop_takes() {
        let mut stopper = to_general();
        stopper.conditions = vec![Condition::SubjectContains {
            any: words(&["urgent"]),
        }];
        stopper.stop = true;
        let rules = vec![stopper, invoices_to_billing(false), to_general()];
        let samples = vec![
            sample(1, "Invoice"),
            sample(2, "Urgent invoice"),
            sample(3, "Hello"),
        ];
        let rows = preview(&rules, 1, &samples, &hours());
        assert_eq!(
            rows,
            vec![
                (
                    1,
                    Outcome::Applies {
                        overridden: vec![(Field::Department, 2)]
                    }
                ),
                (2, Outcome::StoppedBefore { rule: 0 }),
            ]
        );
    }
}
