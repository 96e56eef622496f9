//! Who gets a ticket no rule assigned: round-robin or least open tickets, among the agents of
//! the department who are active, available and under their limit.

use chrono::{DateTime, Utc};

use super::AssignmentStrategy;

/// An agent of the department as assignment sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub agent_id: i64,
    pub name: String,
    pub active: bool,
    pub available: bool,
    pub open_tickets: i64,
    /// Most open tickets at once; `None` for no limit.
    pub max_open_tickets: Option<i64>,
    pub last_assigned_at: Option<DateTime<Utc>>,
}

impl Candidate {
    fn can_take_one(&self) -> bool {
        self.active
            && self.available
            && self
                .max_open_tickets
                .is_none_or(|limit| self.open_tickets < limit)
    }
}

/// The chosen agent and why, for the ticket's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub agent_id: i64,
    pub reason: String,
}

/// Why nobody was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoOne {
    pub reason: String,
}

/// Picks an agent. Round-robin goes to the eligible agent after the one assigned last (by id,
/// wrapping around); least-open to the one with the fewest open tickets, the longest-waiting
/// first among equals.
pub fn choose(
    strategy: AssignmentStrategy,
    candidates: &[Candidate],
    last_assigned: Option<i64>,
) -> Result<Choice, NoOne> {
    let mut eligible: Vec<&Candidate> = candidates.iter().filter(|c| c.can_take_one()).collect();
    if eligible.is_empty() {
        let reason = if candidates.is_empty() {
            "the department has no agents".to_owned()
        } else {
            format!(
                "none of the department's {} agents is active, available and under their limit",
                candidates.len()
            )
        };
        return Err(NoOne { reason });
    }
    let load = |c: &Candidate| match c.max_open_tickets {
        Some(limit) => format!("{} of {limit} open", c.open_tickets),
        None => format!("{} open", c.open_tickets),
    };
    match strategy {
        AssignmentStrategy::RoundRobin => {
            eligible.sort_by_key(|c| c.agent_id);
            let next = last_assigned
                .and_then(|last| eligible.iter().find(|c| c.agent_id > last))
                .unwrap_or(&eligible[0]);
            Ok(Choice {
                agent_id: next.agent_id,
                reason: format!(
                    "round robin: {} is next of {} eligible agents ({})",
                    next.name,
                    eligible.len(),
                    load(next)
                ),
            })
        }
        AssignmentStrategy::LeastOpen => {
            // None (never assigned) sorts before any time: the longest-waiting first.
            eligible.sort_by_key(|c| (c.open_tickets, c.last_assigned_at, c.agent_id));
            let next = eligible[0];
            Ok(Choice {
                agent_id: next.agent_id,
                reason: format!(
                    "least open tickets: {} has the fewest of {} eligible agents ({})",
                    next.name,
                    eligible.len(),
                    load(next)
                ),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(id: i64, open: i64, limit: Option<i64>) -> Candidate {
        Candidate {
            agent_id: id,
            name: format!("agent {id}"),
            active: true,
            available: true,
            open_tickets: open,
            max_open_tickets: limit,
            last_assigned_at: None,
        }
    }

    #[test]
    fn round_robin_is_fair_over_many_tickets_and_skips_who_cannot_take_one() {
        let mut team = vec![
            agent(1, 0, None),
            agent(2, 0, None),
            agent(3, 0, None),
            agent(4, 0, None),
        ];
        team[2].available = false;
        let mut last = None;
        let mut counts = [0; 5];
        for _ in 0..300 {
            let choice = choose(AssignmentStrategy::RoundRobin, &team, last).expect("someone");
            counts[choice.agent_id as usize] += 1;
            last = Some(choice.agent_id);
        }
        assert_eq!(counts, [0, 100, 100, 0, 100]);
    }

    #[test]
    fn least_open_balances_load_and_respects_limits() {
        let mut team = vec![
            agent(1, 5, Some(6)),
            agent(2, 0, Some(3)),
            agent(3, 2, None),
        ];
        for _ in 0..10 {
            let choice = choose(AssignmentStrategy::LeastOpen, &team, None).expect("someone");
            let chosen = team
                .iter_mut()
                .find(|c| c.agent_id == choice.agent_id)
                .expect("known");
            chosen.open_tickets += 1;
        }
        let open: Vec<i64> = team.iter().map(|c| c.open_tickets).collect();
        // Agent 2 stops at its limit of 3; the rest go to the least loaded.
        assert_eq!(open, vec![6, 3, 8]);
        let full = vec![agent(1, 6, Some(6))];
        let nobody = choose(AssignmentStrategy::LeastOpen, &full, None).unwrap_err();
        assert!(
            nobody.reason.contains("under their limit"),
            "{}",
            nobody.reason
        );
        assert_eq!(
            choose(AssignmentStrategy::RoundRobin, &[], None)
                .unwrap_err()
                .reason,
            "the department has no agents"
        );
    }

    #[test]
    fn least_open_prefers_the_longest_waiting_among_equals() {
        let mut a = agent(1, 1, None);
        let mut b = agent(2, 1, None);
        a.last_assigned_at = Some("2026-11-25T10:00:00Z".parse().expect("date"));
        b.last_assigned_at = Some("2026-11-25T09:00:00Z".parse().expect("date"));
        let choice = choose(AssignmentStrategy::LeastOpen, &[a, b], None).expect("someone");
        assert_eq!(choice.agent_id, 2);
        assert!(choice.reason.contains("agent 2"), "{}", choice.reason);
    }
}
