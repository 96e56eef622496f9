//! Rules and jobs as the API shows and takes them.

use crate::domain::TicketNumber;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// A routing rule: when all conditions hold, the actions apply in order. Conditions and
/// actions are the JSON the admin page's rule editor takes (see docs/API.md).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Rule {
    pub id: i64,
    /// 1 for the rule that runs first.
    pub position: i64,
    pub name: String,
    pub enabled: bool,
    #[schema(value_type = Vec<Object>)]
    pub conditions: serde_json::Value,
    #[schema(value_type = Vec<Object>)]
    pub actions: serde_json::Value,
    /// No later rule runs after this one matched.
    pub stop: bool,
    /// What to look out for: the rule can never fire, an action points at a department or
    /// agent that is gone or disabled, or a later rule undoes what it sets (from the conditions
    /// and from the newest tickets).
    pub warnings: Vec<String>,
}

/// Where to move a rule in the order.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleMoveInput {
    /// The new position, 1 for first; past the end means last.
    #[schema(minimum = 1)]
    pub position: usize,
}

/// A recent ticket a rule would change, as the rules stand.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RuleMatch {
    pub ticket: i64,
    pub subject: String,
    /// False when the rule's conditions hold but an earlier rule with "stop" ends the
    /// evaluation first (`stopped_by`).
    pub applies: bool,
    pub stopped_by: Option<i64>,
    /// Later rules that set a field of this rule's again on this ticket.
    pub overridden: Vec<RuleOverride>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RuleOverride {
    /// department, priority or assignee.
    pub field: String,
    /// The id of the later rule.
    pub by: i64,
}

/// A rule to create or to replace one with.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleInput {
    #[schema(min_length = 1)]
    pub name: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub conditions: serde_json::Value,
    #[schema(value_type = Vec<Object>)]
    pub actions: serde_json::Value,
    #[serde(default)]
    pub stop: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Job {
    pub id: String,
    /// helpdesk.assign, helpdesk.deliver, helpdesk.chat_answer, helpdesk.notify, helpdesk.sla
    /// or helpdesk.webhook.
    pub queue: String,
    /// Pending, Running, Done, Failed or Killed.
    pub status: String,
    pub attempts: i64,
    pub max_attempts: i64,
    /// The last attempt's result as the queue keeps it (JSON text).
    pub last_result: Option<String>,
    /// The last attempt's error, when it failed.
    pub last_error: Option<String>,
    /// The number of the ticket the job is about (`/tickets/{number}`), when it is about one.
    pub ticket: Option<i64>,
    /// When the job was queued.
    pub created_at: Option<DateTime<Utc>>,
    /// When it is (or was last) due.
    pub run_at: Option<DateTime<Utc>>,
    /// When a worker last took it.
    pub started_at: Option<DateTime<Utc>>,
    pub done_at: Option<DateTime<Utc>>,
}

impl From<crate::jobs::JobRow> for Job {
    fn from(job: crate::jobs::JobRow) -> Self {
        Job {
            id: job.id,
            queue: job.queue,
            status: job.status,
            attempts: job.attempts,
            max_attempts: job.max_attempts,
            last_result: job.last_result,
            last_error: job.last_error,
            ticket: job.ticket.map(TicketNumber::get),
            created_at: job.created_at,
            run_at: job.run_at,
            started_at: job.started_at,
            done_at: job.done_at,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct JobFilter {
    /// Only jobs of this queue, e.g. helpdesk.deliver.
    pub queue: Option<String>,
    /// Pending, Running, Done, Failed or Killed.
    #[param(pattern = "^(Pending|Running|Done|Failed|Killed)?$")]
    pub state: Option<String>,
    /// Only jobs queued before this one (the last id of the previous page).
    pub before: Option<String>,
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}
