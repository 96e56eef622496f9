-- The web pages: sign-in sessions, failed sign-ins, full-text search, ticket merges and the feed
-- of ticket changes that live updates read. Keep in step with migrations/postgres.

-- A signed-in browser. The cookie holds a random token; only its sha256 is stored, so a copy of
-- the database does not sign anyone in.
CREATE TABLE web_sessions (
    token_hash TEXT PRIMARY KEY,
    agent_id INTEGER NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX web_sessions_agent ON web_sessions (agent_id);
CREATE INDEX web_sessions_expires ON web_sessions (expires_at);

-- Failed sign-ins per address, for the rate limit.
CREATE TABLE login_failures (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX login_failures_email ON login_failures (email, at);

-- A duplicate merged into another ticket points to it.
ALTER TABLE tickets ADD COLUMN merged_into_ticket_id INTEGER REFERENCES tickets(id);

-- List filters with the newest-first order (the rowid, i.e. id, is part of every index).
CREATE INDEX tickets_department_updated ON tickets (department_id, updated_at);
CREATE INDEX tickets_assignee_updated ON tickets (assignee_id, updated_at);
CREATE INDEX tickets_created ON tickets (created_at);

-- Full-text search over subjects and message texts (external content: the text is not copied).
CREATE VIRTUAL TABLE tickets_fts USING fts5 (subject, content = 'tickets', content_rowid = 'id');
CREATE VIRTUAL TABLE messages_fts USING fts5 (body_text, content = 'messages', content_rowid = 'id');
INSERT INTO tickets_fts (tickets_fts) VALUES ('rebuild');
INSERT INTO messages_fts (messages_fts) VALUES ('rebuild');

CREATE TRIGGER tickets_fts_insert AFTER INSERT ON tickets
BEGIN
    INSERT INTO tickets_fts (rowid, subject) VALUES (NEW.id, NEW.subject);
END;
CREATE TRIGGER tickets_fts_delete AFTER DELETE ON tickets
BEGIN
    INSERT INTO tickets_fts (tickets_fts, rowid, subject) VALUES ('delete', OLD.id, OLD.subject);
END;
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages
BEGIN
    INSERT INTO messages_fts (rowid, body_text) VALUES (NEW.id, NEW.body_text);
END;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages
BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, body_text) VALUES ('delete', OLD.id, OLD.body_text);
END;

-- Every change to a ticket, written by the database so that no writer (intake, jobs, web, chat)
-- can forget it; the web server reads it for live updates and prunes it.
CREATE TABLE ticket_changes (
    id INTEGER PRIMARY KEY,
    ticket_id INTEGER NOT NULL,
    number INTEGER NOT NULL,
    kind TEXT NOT NULL,
    assignee_id INTEGER,
    previous_assignee_id INTEGER,
    department_id INTEGER,
    at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TRIGGER tickets_change_insert AFTER INSERT ON tickets
BEGIN
    INSERT INTO ticket_changes (ticket_id, number, kind, assignee_id, department_id)
    VALUES (NEW.id, NEW.number, 'created', NEW.assignee_id, NEW.department_id);
END;
CREATE TRIGGER tickets_change_update
AFTER UPDATE OF status, priority, department_id, assignee_id, updated_at ON tickets
BEGIN
    INSERT INTO ticket_changes (ticket_id, number, kind, assignee_id, previous_assignee_id,
                                department_id)
    VALUES (NEW.id, NEW.number, 'updated', NEW.assignee_id, OLD.assignee_id, NEW.department_id);
END;
