-- What sending satisfaction surveys needs beside migration 0020's table: which departments
-- ask, which tickets must never be asked (opened by an auto-reply or list mail), the message
-- that asked, and the key survey links are signed with. Keep in step with migrations/postgres.

-- Admins turn surveys off per department (the settings' [surveys] enabled turns them off for all).
ALTER TABLE departments ADD COLUMN surveys_enabled BOOLEAN NOT NULL DEFAULT TRUE;

-- Set by intake when an automatic message (Auto-Submitted, Precedence list/bulk, an
-- out-of-office) opened the ticket: nobody there to ask.
ALTER TABLE tickets ADD COLUMN opened_by_automatic BOOLEAN NOT NULL DEFAULT FALSE;

-- The outbound message that carries the survey: delivery adds its rating buttons on chat.
ALTER TABLE satisfaction_surveys ADD COLUMN message_id BIGINT REFERENCES messages(id) ON DELETE SET NULL;
CREATE INDEX satisfaction_surveys_message ON satisfaction_surveys (message_id);

-- Keys the server signs links with, made on first use and shared by every instance.
CREATE TABLE signing_keys (
    name TEXT PRIMARY KEY,
    secret TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
