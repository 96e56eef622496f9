use super::named_enum;

named_enum! {
    /// Where a ticket stands. new → open → pending (waiting on the customer) → resolved → closed.
    Status, "status" {
        New = "new",
        Open = "open",
        Pending = "pending",
        Resolved = "resolved",
        Closed = "closed",
    }
}

named_enum! {
    Priority, "priority" {
        Low = "low",
        Normal = "normal",
        High = "high",
        Urgent = "urgent",
    }
}

named_enum! {
    Direction, "direction" {
        Inbound = "inbound",
        Outbound = "outbound",
    }
}

named_enum! {
    /// Public messages reach the customer; internal notes never do; system messages record
    /// what the helpdesk itself did or learned (a bounce, a merge).
    MessageKind, "message kind" {
        Public = "public",
        Internal = "internal",
        System = "system",
    }
}

/// A ticket's row id: what other rows point to, never shown to people.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Default,
    serde::Serialize,
    serde::Deserialize,
    sqlx::Type,
)]
#[serde(transparent)]
#[sqlx(transparent)]
pub struct TicketId(pub i64);

/// The number people see and type (`#1042`), counted apart from the row id.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Default,
    serde::Serialize,
    serde::Deserialize,
    sqlx::Type,
)]
#[serde(transparent)]
#[sqlx(transparent)]
pub struct TicketNumber(pub i64);

impl TicketNumber {
    pub fn get(self) -> i64 {
        self.0
    }
}

impl TicketId {
    pub fn get(self) -> i64 {
        self.0
    }
}

impl From<i64> for TicketNumber {
    fn from(number: i64) -> Self {
        TicketNumber(number)
    }
}

impl From<i64> for TicketId {
    fn from(id: i64) -> Self {
        TicketId(id)
    }
}

/// A Message-ID for a mail we send about ticket `number`, in the domain of the support address.
pub fn new_mail_message_id(support_address: &str, number: TicketNumber) -> String {
    let domain = support_address
        .rsplit_once('@')
        .map(|(_, domain)| domain)
        .filter(|domain| !domain.is_empty())
        .unwrap_or("helpdesk.invalid");
    format!("{:016x}.{number}@{domain}", fastrand::u64(..))
}

/// `1042`, as the number is written after a `#`.
impl std::fmt::Display for TicketNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A number as people type it: `1042` or `#1042`, spaces around it ignored.
impl std::str::FromStr for TicketNumber {
    type Err = std::num::ParseIntError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        text.trim()
            .trim_start_matches('#')
            .parse()
            .map(TicketNumber)
    }
}

impl std::fmt::Display for TicketId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a ticket cannot go from {from} to {to}")]
pub struct TransitionError {
    pub from: Status,
    pub to: Status,
}

impl Status {
    /// Whether people may still work on the ticket; closed is final.
    pub fn is_active(self) -> bool {
        !matches!(self, Status::Resolved | Status::Closed)
    }

    /// The allowed moves of the workflow. A closed ticket never reopens: a later message opens a
    /// new ticket that points back to it.
    pub fn can_become(self, to: Status) -> bool {
        use Status::*;
        match (self, to) {
            (from, to) if from == to => false,
            (New, Open | Pending | Resolved | Closed) => true,
            (Open, Pending | Resolved | Closed) => true,
            (Pending, Open | Resolved | Closed) => true,
            (Resolved, Open | Closed) => true,
            (Closed, _) => false,
            _ => false,
        }
    }

    pub fn transition(self, to: Status) -> Result<Status, TransitionError> {
        if self.can_become(to) {
            Ok(to)
        } else {
            Err(TransitionError { from: self, to })
        }
    }

    /// The status a ticket takes when its customer writes again, if it changes.
    pub fn after_customer_reply(self) -> Option<Status> {
        match self {
            Status::Pending | Status::Resolved => Some(Status::Open),
            Status::New | Status::Open | Status::Closed => None,
        }
    }
}

impl Priority {
    /// One step more urgent, for escalations; urgent stays urgent.
    pub fn raised(self) -> Priority {
        match self {
            Priority::Low => Priority::Normal,
            Priority::Normal => Priority::High,
            Priority::High | Priority::Urgent => Priority::Urgent,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workflow_moves_forward_and_reopens_only_from_resolved() {
        assert!(Status::New.can_become(Status::Open));
        assert!(Status::Open.can_become(Status::Pending));
        assert!(Status::Pending.can_become(Status::Resolved));
        assert!(Status::Resolved.can_become(Status::Open));
        assert!(Status::Resolved.can_become(Status::Closed));
        assert!(!Status::Open.can_become(Status::New));
        assert!(!Status::Closed.can_become(Status::Open));
        assert!(!Status::Open.can_become(Status::Open));
        assert_eq!(
            Status::Closed.transition(Status::Open),
            Err(TransitionError {
                from: Status::Closed,
                to: Status::Open
            })
        );
    }

    #[test]
    fn customer_reply_reopens_resolved_and_pending() {
        assert_eq!(Status::Resolved.after_customer_reply(), Some(Status::Open));
        assert_eq!(Status::Pending.after_customer_reply(), Some(Status::Open));
        assert_eq!(Status::Open.after_customer_reply(), None);
        assert_eq!(Status::Closed.after_customer_reply(), None);
    }

    #[test]
    fn names_round_trip_and_unknown_names_are_explained() {
        for status in Status::ALL {
            assert_eq!(status.as_str().parse::<Status>(), Ok(*status));
        }
        let error = "urgentest".parse::<Priority>().unwrap_err();
        assert!(error.to_string().contains("low normal high urgent"));
        assert_eq!(Priority::High.raised(), Priority::Urgent);
        assert_eq!(Priority::Urgent.raised(), Priority::Urgent);
    }
}
