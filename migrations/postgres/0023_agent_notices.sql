-- How each person is told of what concerns them (assignments, customer replies, SLA warnings and
-- breaches, mentions), the mentions in internal notes, and the notices already sent.
-- Keep in step with migrations/sqlite.

-- One row per person and event they chose a way for; no row: the default (chat where the
-- person has a linked chat account, else mail).
CREATE TABLE notification_preferences (
    agent_id BIGINT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    event TEXT NOT NULL
        CHECK (event IN ('assigned', 'customer_replied', 'sla_warning', 'sla_breached', 'mentioned')),
    how TEXT NOT NULL CHECK (how IN ('chat', 'mail', 'both', 'none')),
    PRIMARY KEY (agent_id, event)
);

-- The agents an internal note names with @name, recorded with the note.
CREATE TABLE message_mentions (
    message_id BIGINT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    agent_id BIGINT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    PRIMARY KEY (message_id, agent_id)
);

-- Who caused an outbox event (an agent assigning, writing a note); NULL: the system or a
-- customer. Nobody is told of what they did themselves.
ALTER TABLE outbox ADD COLUMN actor_agent_id BIGINT REFERENCES agents(id) ON DELETE SET NULL;

-- Each notice sent: a notification job run again sends nothing twice.
CREATE TABLE notices_sent (
    outbox_id BIGINT NOT NULL,
    agent_id BIGINT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    medium TEXT NOT NULL,
    sent_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (outbox_id, agent_id, medium)
);
