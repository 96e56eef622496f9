//! One transaction's assignments: the departments and their agents read once and kept up to
//! date in memory, the tickets, history and outbox written together at the end.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use chrono::{DateTime, Utc};

use super::{Assigned, Routing};
use crate::domain::assignment::{self, Candidate};
use crate::domain::rules::{self, Action, Rule, TicketFacts};
use crate::domain::{AssignmentStrategy, TicketId};
use crate::store::assign::{self, RoutedTicket, TicketRow};
use crate::store::outbox::OutboxKind;
use crate::store::tickets::{Actor, NewEvent, record_events};
use crate::store::{self, Result, StoreError, Tx};

/// A department as assignment sees it within one transaction: read (on PostgreSQL locked)
/// once, then kept up to date in memory as tickets are given to its agents.
struct Department {
    strategy: AssignmentStrategy,
    last_assigned: Option<i64>,
    candidates: Vec<Candidate>,
    /// Someone was given a ticket: its `last_assigned_agent_id` is written at the end.
    changed: bool,
}

/// An event of a ticket's history, waiting to be written with the others.
struct Event {
    ticket_id: TicketId,
    kind: &'static str,
    old_value: Option<String>,
    new_value: Option<String>,
    reason: String,
}

/// What the assignments of one transaction have read and are to write.
#[derive(Default)]
pub(super) struct Round {
    departments: HashMap<i64, Department>,
    department_names: HashMap<i64, Option<String>>,
    /// `workflow.default_department`'s id, once looked up.
    default_department: Option<Option<i64>>,
    events: Vec<Event>,
    tickets: Vec<RoutedTicket>,
    /// Agents given a ticket, for their `last_assigned_at`.
    agents: Vec<i64>,
    /// Tickets given to someone, for the outbox.
    assigned: Vec<TicketId>,
}

impl Round {
    pub(super) async fn assign(
        &mut self,
        tx: &mut Tx,
        row: TicketRow,
        rules: &[Rule],
        routing: &Routing<'_>,
        now: DateTime<Utc>,
    ) -> Result<Assigned> {
        let ticket_id = row.id;
        if row.assignee_id.is_some() || !row.status.is_active() {
            return Ok(Assigned::Skipped);
        }
        let mut facts = TicketFacts {
            channel: row
                .channel
                .parse()
                .map_err(|error: helpdesk_channel::UnknownChannel| {
                    StoreError::Invalid(error.to_string())
                })?,
            sender_address: row.sender.unwrap_or_default(),
            subject: row.subject,
            text: row.first_text.unwrap_or_default(),
            department: row.department_id,
            priority: row.priority,
            tags: Vec::new(),
            assignee: None,
            received_at: row.created_at,
        };
        if row.routed_at.is_none() {
            self.apply_rules(tx, ticket_id, &mut facts, rules, routing, now)
                .await?;
        }

        // A ticket no rule routed goes to the default department, so its agents get it.
        let mut no_department = "no department: no rule routed the ticket to one".to_owned();
        if let (None, Some(name)) = (facts.department, routing.default_department) {
            if self.default_department.is_none() {
                self.default_department = Some(assign::department_id(tx, name).await?);
            }
            match self.default_department.flatten() {
                Some(id) => {
                    facts.department = Some(id);
                    let why = "no rule routed the ticket: the default department \
                               (workflow.default_department)";
                    self.change(ticket_id, "department", None, Some(name.to_owned()), why);
                }
                None => {
                    no_department = format!(
                        "no department: no rule routed the ticket to one, and the default \
                         department {name:?} (workflow.default_department) does not exist"
                    );
                }
            }
        }

        let outcome = match (facts.assignee, facts.department) {
            (Some(agent_id), _) => Assigned::To { agent_id },
            (None, None) => Assigned::Waiting {
                reason: no_department,
            },
            (None, Some(department)) => {
                let state = self.department(tx, department).await?;
                match assignment::choose(state.strategy, &state.candidates, state.last_assigned) {
                    Ok(choice) => {
                        let name = state
                            .candidates
                            .iter()
                            .find(|candidate| candidate.agent_id == choice.agent_id)
                            .map(|candidate| candidate.name.clone())
                            .unwrap_or_default();
                        self.give_to(
                            ticket_id,
                            choice.agent_id,
                            &name,
                            Some(department),
                            &choice.reason,
                            now,
                        );
                        Assigned::To {
                            agent_id: choice.agent_id,
                        }
                    }
                    Err(no_one) => Assigned::Waiting {
                        reason: no_one.reason,
                    },
                }
            }
        };
        if let (Assigned::Waiting { reason }, None) = (&outcome, row.routed_at) {
            self.change(ticket_id, "unassigned", None, None, reason);
        }
        self.tickets.push(RoutedTicket {
            id: ticket_id,
            department: facts.department,
            priority: facts.priority.as_str(),
            assignee: match &outcome {
                Assigned::To { agent_id } => Some(*agent_id),
                _ => None,
            },
        });
        Ok(outcome)
    }

    /// Runs the rules on a ticket never routed before, recording each that matched and what
    /// it changed; a rule's assignee gets the ticket unless they have been disabled.
    async fn apply_rules(
        &mut self,
        tx: &mut Tx,
        ticket_id: TicketId,
        facts: &mut TicketFacts,
        rules: &[Rule],
        routing: &Routing<'_>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let before = facts.clone();
        let applied = rules::apply(rules, facts, routing.hours);
        for rule in &applied {
            let reason = describe(&rule.actions);
            self.change(
                ticket_id,
                "rule",
                None,
                Some(rule.rule_name.clone()),
                &reason,
            );
        }
        let by_rules = applied
            .iter()
            .map(|rule| rule.rule_name.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let why = format!("rules: {by_rules}");
        if facts.department != before.department {
            let old = self.department_name(tx, before.department).await?;
            let new = self.department_name(tx, facts.department).await?;
            self.change(ticket_id, "department", old, new, &why);
        }
        if facts.priority != before.priority {
            self.change(
                ticket_id,
                "priority",
                Some(before.priority.as_str().to_owned()),
                Some(facts.priority.as_str().to_owned()),
                &why,
            );
        }
        assign::add_tags(tx, ticket_id, &facts.tags).await?;
        if let Some(agent_id) = facts.assignee {
            // A rule may name someone who has been disabled since, or who can neither sign in
            // nor chat: they get nothing new.
            let agent = assign::named_agent(tx, agent_id)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("no agent #{agent_id}")))?;
            let name = agent.name;
            if agent.active && agent.reachable {
                if let Some(department) = facts.department {
                    // Read before the agent's count goes up, like any other assignment.
                    self.department(tx, department).await?;
                }
                self.give_to(ticket_id, agent_id, &name, facts.department, &why, now);
            } else {
                facts.assignee = None;
                let cannot = if agent.active {
                    "can neither sign in nor chat"
                } else {
                    "is disabled"
                };
                let reason =
                    format!("{why}: {name} {cannot}, so the department's strategy chooses");
                self.change(ticket_id, "unassigned", None, None, &reason);
            }
        }
        Ok(())
    }

    /// The department with its strategy and agents, read the first time it is asked for.
    /// On PostgreSQL its row stays locked until commit, so assignments running at once take
    /// their turn and each sees who the one before it chose.
    async fn department(&mut self, tx: &mut Tx, id: i64) -> Result<&Department> {
        if let Entry::Vacant(vacant) = self.departments.entry(id) {
            let (strategy, last_assigned) = assign::department_strategy(tx, id).await?;
            let candidates = assign::candidates(tx, id).await?;
            vacant.insert(Department {
                strategy,
                last_assigned,
                candidates,
                changed: false,
            });
        }
        self.departments
            .get(&id)
            .ok_or_else(|| StoreError::NotFound(format!("no department #{id}")))
    }

    async fn department_name(
        &mut self,
        tx: &mut Tx,
        department: Option<i64>,
    ) -> Result<Option<String>> {
        let Some(id) = department else {
            return Ok(None);
        };
        if let Some(name) = self.department_names.get(&id) {
            return Ok(name.clone());
        }
        let name = assign::department_name(tx, id).await?;
        self.department_names.insert(id, name.clone());
        Ok(name)
    }

    /// Gives the ticket to the agent: their open tickets and last assignment count at once
    /// for the next ticket of the round in every department they are in.
    fn give_to(
        &mut self,
        ticket_id: TicketId,
        agent_id: i64,
        name: &str,
        department: Option<i64>,
        reason: &str,
        now: DateTime<Utc>,
    ) {
        for (id, state) in &mut self.departments {
            for candidate in &mut state.candidates {
                if candidate.agent_id == agent_id {
                    candidate.open_tickets += 1;
                    candidate.last_assigned_at = Some(now);
                }
            }
            if Some(*id) == department {
                state.last_assigned = Some(agent_id);
                state.changed = true;
            }
        }
        self.agents.push(agent_id);
        self.assigned.push(ticket_id);
        self.change(ticket_id, "assignee", None, Some(name.to_owned()), reason);
    }

    fn change(
        &mut self,
        ticket_id: TicketId,
        kind: &'static str,
        old_value: Option<String>,
        new_value: Option<String>,
        reason: &str,
    ) {
        self.events.push(Event {
            ticket_id,
            kind,
            old_value,
            new_value,
            reason: reason.to_owned(),
        });
    }

    /// Writes what the round decided: the tickets' rows (each once: every update of a ticket
    /// costs a change-feed row), the agents' and departments' last assignment, the history
    /// in order, and an outbox entry for each ticket given to someone.
    pub(super) async fn write(self, tx: &mut Tx, now: DateTime<Utc>) -> Result<()> {
        for chunk in self.tickets.chunks(1000) {
            assign::update_tickets(tx, chunk, now).await?;
        }
        assign::mark_assigned_at(tx, &self.agents, now).await?;
        for (id, department) in &self.departments {
            if department.changed {
                assign::set_last_assigned(tx, *id, department.last_assigned).await?;
            }
        }
        let events: Vec<NewEvent<'_>> = self
            .events
            .iter()
            .map(|event| NewEvent {
                ticket_id: event.ticket_id,
                actor: Actor::System,
                kind: event.kind,
                old_value: event.old_value.as_deref(),
                new_value: event.new_value.as_deref(),
                reason: Some(&event.reason),
                at: now,
            })
            .collect();
        record_events(tx, &events).await?;
        store::outbox::record_for_each(tx, OutboxKind::TicketAssigned, &self.assigned, now).await
    }
}

fn describe(actions: &[Action]) -> String {
    actions
        .iter()
        .map(|action| match action {
            Action::SetDepartment { department } => format!("department → #{department}"),
            Action::SetPriority { priority } => format!("priority → {priority}"),
            Action::AddTags { tags } => format!("tags + {}", tags.join(" ")),
            Action::AssignTo { agent } => format!("assignee → agent #{agent}"),
        })
        .collect::<Vec<_>>()
        .join("; ")
}
