//! What an admin should know about the rules before tickets meet them: rules that can never
//! fire, rules whose changes a later rule undoes, and what each says in words with names.
//!
//! Two ways of knowing: from the conditions alone where that is decidable (a later rule with no
//! conditions, or with conditions every ticket of the earlier one meets), and from running the
//! rules over recent tickets.

mod describe;
mod logic;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use super::rules::{self, BusinessHours, Field, Rule, TicketFacts};

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
    pub number: TicketNumber,
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
        tickets: Vec<TicketNumber>,
    },
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
    let mut seen: BTreeMap<(usize, usize, Field), Vec<TicketNumber>> = BTreeMap::new();
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
) -> Vec<(TicketNumber, Outcome)> {
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

use crate::domain::TicketNumber;
pub use describe::{describe_action, describe_condition};
use logic::{always_overrides, dead_references, never_fires};
pub use logic::{contradict, implies};
