-- Round-robin needs to know who in a department got the last ticket.
ALTER TABLE departments ADD COLUMN last_assigned_agent_id BIGINT REFERENCES agents(id) ON DELETE SET NULL;
-- When an agent last got a ticket, for least-open ties.
ALTER TABLE agents ADD COLUMN last_assigned_at TIMESTAMPTZ;
-- When assignment (rules, then strategy) last ran for a ticket; it runs once per trigger.
ALTER TABLE tickets ADD COLUMN routed_at TIMESTAMPTZ;
