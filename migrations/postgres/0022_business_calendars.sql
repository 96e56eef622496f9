-- Business calendars and SLA policies per department, the clock state of each SLA target, and
-- where a ticket stands against its targets. Keep in step with migrations/sqlite.

-- A department's working week in a named IANA zone. `hours` is JSON: weekday ("mon" … "sun")
-- to a list of "HH:MM-HH:MM" intervals in that zone's local time.
CREATE TABLE department_calendars (
    department_id BIGINT PRIMARY KEY REFERENCES departments(id) ON DELETE CASCADE,
    time_zone TEXT NOT NULL,
    hours TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

-- Days without business hours (local dates of the calendar's zone).
CREATE TABLE department_holidays (
    id BIGSERIAL PRIMARY KEY,
    department_id BIGINT NOT NULL REFERENCES departments(id) ON DELETE CASCADE,
    day DATE NOT NULL,
    name TEXT NOT NULL,
    UNIQUE (department_id, day)
);

-- A department's target for one kind and priority, in minutes (business minutes when the
-- department has a calendar); a missing row takes the [sla] default.
CREATE TABLE department_sla_policies (
    department_id BIGINT NOT NULL REFERENCES departments(id) ON DELETE CASCADE,
    target TEXT NOT NULL CHECK (target IN ('first_response', 'next_response', 'resolution')),
    priority TEXT NOT NULL CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    minutes BIGINT NOT NULL CHECK (minutes > 0),
    PRIMARY KEY (department_id, target, priority)
);

-- The clock of each target: when the warning went out, since when it is paused (the ticket
-- pending) and how many business seconds it has been paused in all.
ALTER TABLE sla_targets ADD COLUMN warned_at TIMESTAMPTZ;
ALTER TABLE sla_targets ADD COLUMN paused_since TIMESTAMPTZ;
ALTER TABLE sla_targets ADD COLUMN paused_seconds BIGINT NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX sla_targets_instance ON sla_targets (ticket_id, target, started_at);

-- Where the ticket stands, kept with its targets so lists read it from the row: the earliest
-- due time of a running target and which target that is, 'paused' while every open target
-- waits for the customer, and the first breach.
ALTER TABLE tickets ADD COLUMN sla_due_at TIMESTAMPTZ;
ALTER TABLE tickets ADD COLUMN sla_due_target TEXT;
ALTER TABLE tickets ADD COLUMN sla_paused BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE tickets ADD COLUMN sla_breached_at TIMESTAMPTZ;
