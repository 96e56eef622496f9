//! Deciding from the conditions alone: what a rule can never meet, and what a later rule always
//! undoes.

use super::{Directory, Finding, NeverFires};
use crate::domain::rules::{Condition, Field, Rule, Setting, domain_of, in_domain};

/// The reasons, from its own conditions and the rules before it, why a rule cannot fire.
pub(super) fn never_fires(rules: &[Rule], at: usize, directory: &Directory) -> Vec<NeverFires> {
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
pub(super) fn dead_references(rule: &Rule, directory: &Directory) -> Vec<Finding> {
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
pub(super) fn always_overrides(rules: &[Rule], earlier: usize, later: usize, field: Field) -> bool {
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
