-- Several mailboxes and signatures. Keep in step with migrations/sqlite.

-- The mailbox (`[[email.mailboxes]]` name) a mail ticket came in through; replies go out from
-- it. NULL for tickets of other channels and those taken in before mailboxes had names.
ALTER TABLE tickets ADD COLUMN mailbox TEXT;

-- A person's signature, appended to their replies that go out by mail (never on chat).
ALTER TABLE agents ADD COLUMN signature TEXT;
