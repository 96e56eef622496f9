-- The web pages: sign-in sessions, failed sign-ins, full-text search, ticket merges and the feed
-- of ticket changes that live updates read. Keep in step with migrations/sqlite.

-- A signed-in browser. The cookie holds a random token; only its sha256 is stored, so a copy of
-- the database does not sign anyone in.
CREATE TABLE web_sessions (
    token_hash TEXT PRIMARY KEY,
    agent_id BIGINT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX web_sessions_agent ON web_sessions (agent_id);
CREATE INDEX web_sessions_expires ON web_sessions (expires_at);

-- Failed sign-ins per address, for the rate limit.
CREATE TABLE login_failures (
    id BIGSERIAL PRIMARY KEY,
    email TEXT NOT NULL,
    at TIMESTAMPTZ NOT NULL
);
CREATE INDEX login_failures_email ON login_failures (email, at);

-- A duplicate merged into another ticket points to it.
ALTER TABLE tickets ADD COLUMN merged_into_ticket_id BIGINT REFERENCES tickets(id);

-- Keyset pagination needs the id in the index after the sort key.
DROP INDEX tickets_updated;
CREATE INDEX tickets_updated ON tickets (updated_at, id);
DROP INDEX tickets_status_updated;
CREATE INDEX tickets_status_updated ON tickets (status, updated_at, id);
CREATE INDEX tickets_department_updated ON tickets (department_id, updated_at, id);
CREATE INDEX tickets_assignee_updated ON tickets (assignee_id, updated_at, id);
CREATE INDEX tickets_created ON tickets (created_at, id);

-- Full-text search over subjects and message texts. A tsvector holds at most 1 MB, so only the
-- start of a very long text is indexed (the expression must match the one in the queries).
CREATE INDEX tickets_search ON tickets USING GIN (to_tsvector('simple', subject));
CREATE INDEX messages_search ON messages USING GIN (to_tsvector('simple', left(body_text, 100000)));

-- Every change to a ticket, written by the database so that no writer (intake, jobs, web, chat)
-- can forget it. The web servers read it for live updates and prune it; the NOTIFY wakes every
-- instance at once.
CREATE TABLE ticket_changes (
    id BIGSERIAL PRIMARY KEY,
    ticket_id BIGINT NOT NULL,
    number BIGINT NOT NULL,
    kind TEXT NOT NULL,
    assignee_id BIGINT,
    previous_assignee_id BIGINT,
    department_id BIGINT,
    at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE FUNCTION tickets_record_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    change_id BIGINT;
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO ticket_changes (ticket_id, number, kind, assignee_id, department_id)
        VALUES (NEW.id, NEW.number, 'created', NEW.assignee_id, NEW.department_id)
        RETURNING id INTO change_id;
    ELSIF (NEW.status, NEW.priority, NEW.department_id, NEW.assignee_id, NEW.updated_at)
          IS DISTINCT FROM (OLD.status, OLD.priority, OLD.department_id, OLD.assignee_id, OLD.updated_at) THEN
        INSERT INTO ticket_changes (ticket_id, number, kind, assignee_id, previous_assignee_id,
                                    department_id)
        VALUES (NEW.id, NEW.number, 'updated', NEW.assignee_id, OLD.assignee_id, NEW.department_id)
        RETURNING id INTO change_id;
    ELSE
        RETURN NULL;
    END IF;
    PERFORM pg_notify('helpdesk_ticket_changes', change_id::TEXT);
    RETURN NULL;
END;
$$;
CREATE TRIGGER tickets_record_change AFTER INSERT OR UPDATE ON tickets
    FOR EACH ROW EXECUTE FUNCTION tickets_record_change();
