use super::named_enum;

named_enum! {
    /// Admins see and change everything; agents work on tickets.
    Role, "role" {
        Admin = "admin",
        Agent = "agent",
    }
}

named_enum! {
    /// How a department picks an agent for a ticket no rule assigned.
    AssignmentStrategy, "assignment strategy" {
        RoundRobin = "round_robin",
        LeastOpen = "least_open",
    }
}
