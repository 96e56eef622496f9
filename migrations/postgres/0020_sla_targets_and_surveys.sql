-- Two records reports read: each SLA target of each ticket with its outcome, and each ticket's
-- satisfaction survey with its rating. Keep in step with migrations/sqlite.

-- One row per target a ticket has to meet: 'first_response' and 'resolution' once per ticket,
-- 'next_response' each time the customer writes after an answer. `due_at` moves while the clock
-- pauses (pending) or the priority changes; a target ends met (`met_at`) or breached
-- (`breached_at`, kept also when it is met later).
CREATE TABLE sla_targets (
    id BIGSERIAL PRIMARY KEY,
    ticket_id BIGINT NOT NULL REFERENCES tickets(id) ON DELETE CASCADE,
    target TEXT NOT NULL CHECK (target IN ('first_response', 'next_response', 'resolution')),
    started_at TIMESTAMPTZ NOT NULL,
    due_at TIMESTAMPTZ NOT NULL,
    met_at TIMESTAMPTZ,
    breached_at TIMESTAMPTZ
);
CREATE INDEX sla_targets_ticket ON sla_targets (ticket_id, target);
CREATE INDEX sla_targets_met ON sla_targets (met_at);
CREATE INDEX sla_targets_breached ON sla_targets (breached_at);

-- At most one survey per ticket, sent when it is resolved. The agent and department are those
-- of the ticket when it was sent, so reports credit the rating where the work was done.
CREATE TABLE satisfaction_surveys (
    ticket_id BIGINT PRIMARY KEY REFERENCES tickets(id) ON DELETE CASCADE,
    channel TEXT NOT NULL,
    agent_id BIGINT REFERENCES agents(id) ON DELETE SET NULL,
    department_id BIGINT REFERENCES departments(id) ON DELETE SET NULL,
    sent_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    rating INTEGER CHECK (rating BETWEEN 1 AND 5),
    rated_at TIMESTAMPTZ,
    comment TEXT
);
CREATE INDEX satisfaction_surveys_sent ON satisfaction_surveys (sent_at);
