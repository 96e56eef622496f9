//! Customers, agents and departments as the API shows and takes them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::Ticket;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Identity {
    pub channel: String,
    /// The stable address: a mail address, a chat account's numeric id.
    pub address: String,
    pub display_name: Option<String>,
    /// A chat account's handle (Telegram username, Discord username), without the `@`.
    pub handle: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Customer {
    pub id: i64,
    pub name: Option<String>,
    pub created_at: DateTime<Utc>,
    pub identities: Vec<Identity>,
    /// How many tickets they have, of every department.
    pub ticket_count: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CustomerPage {
    pub items: Vec<Customer>,
    pub next_cursor: Option<String>,
    pub next: Option<String>,
}

/// A customer with the tickets the caller may see.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CustomerDetail {
    #[serde(flatten)]
    pub customer: Customer,
    pub tickets: Vec<Ticket>,
}

/// A new name for a customer; `null` or an empty name clears it (they are then shown by
/// address).
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerRename {
    #[schema(max_length = 200, example = "Pia Pedersen")]
    pub name: Option<String>,
}

/// The record to merge into the customer of the path: the same person.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerMerge {
    /// This record's identities, tickets and messages move to the customer of the path, and
    /// this record is deleted.
    pub other_id: i64,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct CustomerFilter {
    /// Part of a name, an address, or a chat account's id or handle (`ada_l` or `@ada_l`).
    pub q: Option<String>,
    pub cursor: Option<String>,
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Agent {
    pub id: i64,
    pub email: String,
    pub name: String,
    /// admin or agent.
    pub role: String,
    pub active: bool,
    pub available: bool,
    pub max_open_tickets: Option<i64>,
    /// Department names, comma separated.
    pub departments: String,
    /// The IANA time zone the pages show times in; absent: the browser's.
    pub time_zone: Option<String>,
}

impl From<crate::store::agents::AgentSummary> for Agent {
    fn from(a: crate::store::agents::AgentSummary) -> Self {
        Agent {
            id: a.id,
            email: a.email,
            name: a.name,
            role: a.role,
            active: a.active,
            available: a.available,
            max_open_tickets: a.max_open_tickets,
            departments: a.departments,
            time_zone: a.time_zone,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Department {
    pub id: i64,
    pub name: String,
    /// round_robin or least_open.
    pub assignment_strategy: String,
}
