-- Ticket search on one document per ticket (its subject and the text of all its messages), and
-- customers' addresses found by any part of them. Keep in step with migrations/postgres.
--
-- The document's rowid is its ticket's place in the list: the second of `updated_at` (counted
-- from 2000-01-01) times 2^32, plus the ticket's id. FTS5 hands out matches in rowid order, so
-- "newest activity first among the matches" reads the first rows of a word's list instead of
-- collecting and sorting every match (store::views::ordered). A change of `updated_at` moves
-- the document: deleted at its old rowid, written at the new one. Ticket ids stay below 2^32.
--
-- Contentless with deletes (the text is not stored a second time; FTS5 forgets a row by its
-- rowid alone). Prefix indexes serve `word*` searches.
CREATE VIRTUAL TABLE ticket_search USING fts5 (
    subject, body, content = '', contentless_delete = 1, prefix = '2 3 4'
);

INSERT INTO ticket_search (rowid, subject, body)
SELECT (COALESCE(unixepoch(t.updated_at), 0) - 946684800) * 4294967296 + t.id, t.subject,
       COALESCE((SELECT substr(group_concat(m.body_text, char(10)), 1, 1000000)
                 FROM messages m WHERE m.ticket_id = t.id), '')
FROM tickets t;

CREATE TRIGGER ticket_search_insert AFTER INSERT ON tickets
BEGIN
    INSERT INTO ticket_search (rowid, subject, body)
    VALUES ((COALESCE(unixepoch(NEW.updated_at), 0) - 946684800) * 4294967296 + NEW.id,
            NEW.subject, '');
END;

-- Also what keeps new messages found: the message trigger (messages_touch_ticket) sets the
-- ticket's updated_at, and the document is written again with the new message in it.
CREATE TRIGGER ticket_search_update AFTER UPDATE OF subject, updated_at ON tickets
BEGIN
    DELETE FROM ticket_search
    WHERE rowid = (COALESCE(unixepoch(OLD.updated_at), 0) - 946684800) * 4294967296 + OLD.id;
    INSERT INTO ticket_search (rowid, subject, body)
    VALUES ((COALESCE(unixepoch(NEW.updated_at), 0) - 946684800) * 4294967296 + NEW.id,
            NEW.subject,
            COALESCE((SELECT substr(group_concat(m.body_text, char(10)), 1, 1000000)
                      FROM messages m WHERE m.ticket_id = NEW.id), ''));
END;

CREATE TRIGGER ticket_search_delete AFTER DELETE ON tickets
BEGIN
    DELETE FROM ticket_search
    WHERE rowid = (COALESCE(unixepoch(OLD.updated_at), 0) - 946684800) * 4294967296 + OLD.id;
END;

-- A message edited, moved to another ticket (merge) or deleted: both tickets' documents are
-- written again from their messages.
CREATE TRIGGER ticket_search_message_update AFTER UPDATE OF body_text, ticket_id ON messages
BEGIN
    DELETE FROM ticket_search
    WHERE rowid IN (SELECT (COALESCE(unixepoch(t.updated_at), 0) - 946684800) * 4294967296 + t.id
                    FROM tickets t WHERE t.id IN (OLD.ticket_id, NEW.ticket_id));
    INSERT INTO ticket_search (rowid, subject, body)
    SELECT (COALESCE(unixepoch(t.updated_at), 0) - 946684800) * 4294967296 + t.id, t.subject,
           COALESCE((SELECT substr(group_concat(m.body_text, char(10)), 1, 1000000)
                     FROM messages m WHERE m.ticket_id = t.id), '')
    FROM tickets t WHERE t.id IN (OLD.ticket_id, NEW.ticket_id);
END;

CREATE TRIGGER ticket_search_message_delete AFTER DELETE ON messages
BEGIN
    DELETE FROM ticket_search
    WHERE rowid IN (SELECT (COALESCE(unixepoch(t.updated_at), 0) - 946684800) * 4294967296 + t.id
                    FROM tickets t WHERE t.id = OLD.ticket_id);
    INSERT INTO ticket_search (rowid, subject, body)
    SELECT (COALESCE(unixepoch(t.updated_at), 0) - 946684800) * 4294967296 + t.id, t.subject,
           COALESCE((SELECT substr(group_concat(m.body_text, char(10)), 1, 1000000)
                     FROM messages m WHERE m.ticket_id = t.id), '')
    FROM tickets t WHERE t.id = OLD.ticket_id;
END;

-- Addresses by any part of three characters or more (`ada@`, `example.org`), any case.
CREATE VIRTUAL TABLE customer_addresses USING fts5 (
    address, content = 'customer_identities', content_rowid = 'id', tokenize = 'trigram'
);
INSERT INTO customer_addresses (customer_addresses) VALUES ('rebuild');

CREATE TRIGGER customer_addresses_insert AFTER INSERT ON customer_identities
BEGIN
    INSERT INTO customer_addresses (rowid, address) VALUES (NEW.id, NEW.address);
END;
CREATE TRIGGER customer_addresses_delete AFTER DELETE ON customer_identities
BEGIN
    INSERT INTO customer_addresses (customer_addresses, rowid, address)
    VALUES ('delete', OLD.id, OLD.address);
END;
CREATE TRIGGER customer_addresses_update AFTER UPDATE OF address ON customer_identities
BEGIN
    INSERT INTO customer_addresses (customer_addresses, rowid, address)
    VALUES ('delete', OLD.id, OLD.address);
    INSERT INTO customer_addresses (rowid, address) VALUES (NEW.id, NEW.address);
END;

-- The per-subject and per-message indexes the document replaces.
DROP TRIGGER tickets_fts_insert;
DROP TRIGGER tickets_fts_delete;
DROP TRIGGER messages_fts_insert;
DROP TRIGGER messages_fts_delete;
DROP TABLE tickets_fts;
DROP TABLE messages_fts;
