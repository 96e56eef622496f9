-- The helpdesk data model on SQLite. Keep in step with migrations/postgres.

CREATE TABLE departments (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    assignment_strategy TEXT NOT NULL DEFAULT 'round_robin'
        CHECK (assignment_strategy IN ('round_robin', 'least_open')),
    created_at TEXT NOT NULL
);

CREATE TABLE agents (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'agent')),
    password_hash TEXT,
    active BOOLEAN NOT NULL DEFAULT TRUE,
    available BOOLEAN NOT NULL DEFAULT TRUE,
    max_open_tickets INTEGER,
    created_at TEXT NOT NULL
);

CREATE TABLE agent_departments (
    agent_id INTEGER NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    department_id INTEGER NOT NULL REFERENCES departments(id) ON DELETE CASCADE,
    PRIMARY KEY (agent_id, department_id)
);

CREATE TABLE agent_identities (
    id INTEGER PRIMARY KEY,
    agent_id INTEGER NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    channel TEXT NOT NULL,
    address TEXT NOT NULL,
    UNIQUE (channel, address)
);

CREATE TABLE customers (
    id INTEGER PRIMARY KEY,
    name TEXT,
    created_at TEXT NOT NULL
);

CREATE TABLE customer_identities (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    channel TEXT NOT NULL,
    address TEXT NOT NULL,
    display_name TEXT,
    created_at TEXT NOT NULL,
    UNIQUE (channel, address)
);
CREATE INDEX customer_identities_customer ON customer_identities (customer_id);

-- The last human ticket number handed out (SQLite has no sequences). A new ticket takes
-- value + 1 in its INSERT; the trigger below moves the counter on, so numbers never repeat even
-- when tickets are deleted.
CREATE TABLE counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT INTO counters (name, value) VALUES ('ticket_number', 1000);

CREATE TABLE tickets (
    id INTEGER PRIMARY KEY,
    number INTEGER NOT NULL UNIQUE,
    subject TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('new', 'open', 'pending', 'resolved', 'closed')),
    priority TEXT NOT NULL CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    department_id INTEGER REFERENCES departments(id) ON DELETE SET NULL,
    assignee_id INTEGER REFERENCES agents(id) ON DELETE SET NULL,
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    channel TEXT NOT NULL,
    -- Chat: the conversation the ticket lives in (chat id, DM channel).
    conversation TEXT,
    -- The ticket a closed one was followed up by, or that this one continues.
    follows_ticket_id INTEGER REFERENCES tickets(id),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    last_customer_message_at TEXT,
    first_response_at TEXT,
    resolved_at TEXT,
    closed_at TEXT
);
CREATE INDEX tickets_status_updated ON tickets (status, updated_at);
CREATE INDEX tickets_updated ON tickets (updated_at);
CREATE INDEX tickets_customer ON tickets (customer_id);
CREATE INDEX tickets_assignee ON tickets (assignee_id, status);
CREATE INDEX tickets_conversation ON tickets (channel, conversation) WHERE conversation IS NOT NULL;

CREATE TRIGGER tickets_advance_number AFTER INSERT ON tickets
BEGIN
    UPDATE counters SET value = NEW.number WHERE name = 'ticket_number' AND value < NEW.number;
END;

CREATE TABLE ticket_tags (
    ticket_id INTEGER NOT NULL REFERENCES tickets(id) ON DELETE CASCADE,
    tag TEXT NOT NULL,
    PRIMARY KEY (ticket_id, tag)
);
CREATE INDEX ticket_tags_tag ON ticket_tags (tag);

-- Every inbound message exactly as received, also when intake failed (then with the error), so
-- that bad input can be replayed after a fix.
CREATE TABLE raw_messages (
    id INTEGER PRIMARY KEY,
    channel TEXT NOT NULL,
    external_id TEXT NOT NULL,
    content BLOB NOT NULL,
    size INTEGER NOT NULL,
    received_at TEXT NOT NULL,
    intake_error TEXT,
    -- How often the same message arrived; every arrival after the first was a dropped duplicate.
    times_received INTEGER NOT NULL DEFAULT 1,
    UNIQUE (channel, external_id)
);
CREATE INDEX raw_messages_failed ON raw_messages (received_at) WHERE intake_error IS NOT NULL;

CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    ticket_id INTEGER NOT NULL REFERENCES tickets(id) ON DELETE CASCADE,
    direction TEXT NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    kind TEXT NOT NULL CHECK (kind IN ('public', 'internal', 'system')),
    author_customer_id INTEGER REFERENCES customers(id),
    author_agent_id INTEGER REFERENCES agents(id),
    channel TEXT NOT NULL,
    external_id TEXT,
    subject TEXT,
    body_text TEXT NOT NULL,
    body_html TEXT,
    raw_message_id INTEGER REFERENCES raw_messages(id),
    sent_at TEXT,
    created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX messages_external_id ON messages (channel, external_id);
CREATE INDEX messages_ticket ON messages (ticket_id, id);

-- A message moves its ticket's updated_at, and a customer's its last_customer_message_at:
-- kept by the database so no writer can forget it.
CREATE TRIGGER messages_touch_ticket AFTER INSERT ON messages
BEGIN
    UPDATE tickets
    SET updated_at = NEW.created_at,
        last_customer_message_at = CASE WHEN NEW.direction = 'inbound' AND NEW.kind = 'public'
                                        THEN NEW.created_at ELSE last_customer_message_at END
    WHERE id = NEW.ticket_id;
END;

-- The Message-IDs a mail pointed to, so that a reply that arrives before the message it answers
-- is joined when that message comes in.
CREATE TABLE message_references (
    message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    channel TEXT NOT NULL,
    referenced_external_id TEXT NOT NULL,
    PRIMARY KEY (message_id, referenced_external_id)
);
CREATE INDEX message_references_referenced ON message_references (channel, referenced_external_id);

-- Attachment contents, stored once per sha256 under data_dir/attachments.
CREATE TABLE attachment_blobs (
    sha256 TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE attachments (
    id INTEGER PRIMARY KEY,
    message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    -- NULL when the content was not kept (too large): the name and size still are.
    sha256 TEXT REFERENCES attachment_blobs(sha256),
    filename TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    inline BOOLEAN NOT NULL,
    content_id TEXT,
    rejected_reason TEXT
);
CREATE INDEX attachments_message ON attachments (message_id);

-- Who changed what on a ticket, when and why.
CREATE TABLE ticket_events (
    id INTEGER PRIMARY KEY,
    ticket_id INTEGER NOT NULL REFERENCES tickets(id) ON DELETE CASCADE,
    at TEXT NOT NULL,
    actor_agent_id INTEGER REFERENCES agents(id),
    actor_customer_id INTEGER REFERENCES customers(id),
    kind TEXT NOT NULL,
    old_value TEXT,
    new_value TEXT,
    reason TEXT
);
CREATE INDEX ticket_events_ticket ON ticket_events (ticket_id, id);

-- Admin-defined routing rules, applied in position order.
CREATE TABLE rules (
    id INTEGER PRIMARY KEY,
    position INTEGER NOT NULL,
    name TEXT NOT NULL,
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
    conditions TEXT NOT NULL,
    actions TEXT NOT NULL,
    stop_processing BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX rules_position ON rules (position);

-- Where each channel adapter stands (IMAP UIDVALIDITY and last UID, Telegram update offset).
CREATE TABLE channel_cursors (
    channel TEXT NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (channel, name)
);

-- Events written in the same transaction as the change that caused them; the job queue turns
-- them into jobs (assign, notify, acknowledge), so no ticket exists without its follow-up work.
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    ticket_id INTEGER NOT NULL REFERENCES tickets(id) ON DELETE CASCADE,
    message_id INTEGER REFERENCES messages(id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    processed_at TEXT
);
CREATE INDEX outbox_pending ON outbox (id) WHERE processed_at IS NULL;
