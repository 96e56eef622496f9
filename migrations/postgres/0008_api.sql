-- The JSON API and webhooks: bearer tokens, remembered answers to creates with an
-- Idempotency-Key, webhook endpoints, the ticket events waiting to be sent to them, and each
-- delivery. Keep in step with migrations/sqlite.

-- A bearer token. Only the sha256 of the token is kept (tokens are 32 random bytes, so a plain
-- hash is enough); `prefix` is its first characters, to recognise it in lists.
CREATE TABLE api_tokens (
    id BIGSERIAL PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    name TEXT NOT NULL,
    agent_id BIGINT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('admin', 'agent')),
    created_at TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ,
    revoked_at TIMESTAMPTZ
);
CREATE INDEX api_tokens_agent ON api_tokens (agent_id);

-- The answer given to a create with an Idempotency-Key, per agent: the same key gets it again.
CREATE TABLE api_idempotency (
    agent_id BIGINT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    idempotency_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status BIGINT NOT NULL,
    body TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (agent_id, idempotency_key)
);

-- Where ticket events are posted. `events` is a comma-separated list of event names, or '*'.
CREATE TABLE webhooks (
    id BIGSERIAL PRIMARY KEY,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    events TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMPTZ NOT NULL
);

-- Ticket changes waiting for the webhook relay, written by the database in the transaction of
-- the change, so no writer (intake, jobs, web, chat, API) can forget one. Only written while an
-- active webhook exists. `source` names the row it points at: a new ticket, a history event or
-- a message.
CREATE TABLE webhook_outbox (
    id BIGSERIAL PRIMARY KEY,
    source TEXT NOT NULL CHECK (source IN ('ticket', 'event', 'message')),
    source_id BIGINT NOT NULL,
    ticket_id BIGINT NOT NULL,
    at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE FUNCTION webhook_outbox_record() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM webhooks WHERE active) THEN
        RETURN NULL;
    END IF;
    -- Only the branch taken reads its fields: tickets have no ticket_id.
    IF TG_ARGV[0] = 'ticket' THEN
        INSERT INTO webhook_outbox (source, source_id, ticket_id) VALUES ('ticket', NEW.id, NEW.id);
    ELSE
        INSERT INTO webhook_outbox (source, source_id, ticket_id)
        VALUES (TG_ARGV[0], NEW.id, NEW.ticket_id);
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER webhook_outbox_ticket AFTER INSERT ON tickets
    FOR EACH ROW EXECUTE FUNCTION webhook_outbox_record('ticket');
CREATE TRIGGER webhook_outbox_event AFTER INSERT ON ticket_events
    FOR EACH ROW EXECUTE FUNCTION webhook_outbox_record('event');
CREATE TRIGGER webhook_outbox_message AFTER INSERT ON messages
    FOR EACH ROW EXECUTE FUNCTION webhook_outbox_record('message');

-- One event for one webhook: the signed body is fixed when the event is relayed, so every
-- attempt sends the same bytes.
CREATE TABLE webhook_deliveries (
    id BIGSERIAL PRIMARY KEY,
    webhook_id BIGINT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    event TEXT NOT NULL,
    ticket_id BIGINT,
    payload TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts BIGINT NOT NULL DEFAULT 0,
    last_status_code BIGINT,
    last_error TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    last_attempt_at TIMESTAMPTZ,
    delivered_at TIMESTAMPTZ
);
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, id);
CREATE INDEX webhook_deliveries_status ON webhook_deliveries (status);
