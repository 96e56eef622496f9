-- The JSON API and webhooks: bearer tokens, remembered answers to creates with an
-- Idempotency-Key, webhook endpoints, the ticket events waiting to be sent to them, and each
-- delivery. Keep in step with migrations/postgres.

-- A bearer token. Only the sha256 of the token is kept (tokens are 32 random bytes, so a plain
-- hash is enough); `prefix` is its first characters, to recognise it in lists.
CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    name TEXT NOT NULL,
    agent_id INTEGER NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('admin', 'agent')),
    created_at TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at TEXT
);
CREATE INDEX api_tokens_agent ON api_tokens (agent_id);

-- The answer given to a create with an Idempotency-Key, per agent: the same key gets it again.
CREATE TABLE api_idempotency (
    agent_id INTEGER NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    idempotency_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status INTEGER NOT NULL,
    body TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (agent_id, idempotency_key)
);

-- Where ticket events are posted. `events` is a comma-separated list of event names, or '*'.
CREATE TABLE webhooks (
    id INTEGER PRIMARY KEY,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    events TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TEXT NOT NULL
);

-- Ticket changes waiting for the webhook relay, written by the database in the transaction of
-- the change, so no writer (intake, jobs, web, chat, API) can forget one. Only written while an
-- active webhook exists. `source` names the row it points at: a new ticket, a history event or
-- a message.
CREATE TABLE webhook_outbox (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL CHECK (source IN ('ticket', 'event', 'message')),
    source_id INTEGER NOT NULL,
    ticket_id INTEGER NOT NULL,
    at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TRIGGER webhook_outbox_ticket AFTER INSERT ON tickets
WHEN EXISTS (SELECT 1 FROM webhooks WHERE active)
BEGIN
    INSERT INTO webhook_outbox (source, source_id, ticket_id) VALUES ('ticket', NEW.id, NEW.id);
END;
CREATE TRIGGER webhook_outbox_event AFTER INSERT ON ticket_events
WHEN EXISTS (SELECT 1 FROM webhooks WHERE active)
BEGIN
    INSERT INTO webhook_outbox (source, source_id, ticket_id)
    VALUES ('event', NEW.id, NEW.ticket_id);
END;
CREATE TRIGGER webhook_outbox_message AFTER INSERT ON messages
WHEN EXISTS (SELECT 1 FROM webhooks WHERE active)
BEGIN
    INSERT INTO webhook_outbox (source, source_id, ticket_id)
    VALUES ('message', NEW.id, NEW.ticket_id);
END;

-- One event for one webhook: the signed body is fixed when the event is relayed, so every
-- attempt sends the same bytes.
CREATE TABLE webhook_deliveries (
    id INTEGER PRIMARY KEY,
    webhook_id INTEGER NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    event TEXT NOT NULL,
    ticket_id INTEGER,
    payload TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    last_status_code INTEGER,
    last_error TEXT,
    created_at TEXT NOT NULL,
    last_attempt_at TEXT,
    delivered_at TEXT
);
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, id);
CREATE INDEX webhook_deliveries_status ON webhook_deliveries (status);
