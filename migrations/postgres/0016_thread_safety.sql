-- The address a message came from, shown beside the name its sender chose: a customer record
-- may have several addresses, and anyone may write any name. Messages stored before this
-- show their author's address on the message's channel. Keep in step with migrations/sqlite.
ALTER TABLE messages ADD COLUMN sender_address TEXT;
-- A ticket opened for a mail that named another ticket in its subject ("[#1042]") from an
-- address that is not on that ticket: the ticket it named. Both tickets' histories say so.
ALTER TABLE tickets ADD COLUMN linked_ticket_id BIGINT REFERENCES tickets(id);
CREATE INDEX tickets_linked ON tickets (linked_ticket_id) WHERE linked_ticket_id IS NOT NULL;
