-- Ticket search on one document per ticket (its subject and the text of all its messages), and
-- customers' addresses found by any part of them. Keep in step with migrations/sqlite.
--
-- pg_trgm is in PostgreSQL's contrib (Debian's postgresql-15 package) and trusted: the owner
-- of the database may create it.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- The subject weighs more than the messages when results are ranked. A tsvector holds at most
-- 1 MB, so each message counts with its first 100,000 characters and the document with its
-- first 250,000.
CREATE FUNCTION ticket_search_document(ticket BIGINT) RETURNS tsvector
LANGUAGE sql STABLE AS $$
    SELECT setweight(to_tsvector('simple', t.subject), 'A')
           || to_tsvector('simple', COALESCE(
                  (SELECT left(string_agg(left(m.body_text, 100000), ' ' ORDER BY m.id), 250000)
                   FROM messages m WHERE m.ticket_id = t.id), ''))
    FROM tickets t WHERE t.id = ticket
$$;

-- A table of its own, so writing a document does not write a new version of the ticket's row.
CREATE TABLE ticket_search (
    ticket_id BIGINT PRIMARY KEY REFERENCES tickets (id) ON DELETE CASCADE,
    document tsvector NOT NULL
);

INSERT INTO ticket_search (ticket_id, document)
SELECT t.id, setweight(to_tsvector('simple', t.subject), 'A')
             || to_tsvector('simple', COALESCE(left(bodies.text, 250000), ''))
FROM tickets t
LEFT JOIN (SELECT ticket_id, string_agg(left(body_text, 100000), ' ' ORDER BY id) AS text
           FROM messages GROUP BY ticket_id) bodies ON bodies.ticket_id = t.id;

CREATE INDEX ticket_search_words ON ticket_search USING GIN (document);

CREATE FUNCTION ticket_search_ticket() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO ticket_search (ticket_id, document)
        VALUES (NEW.id, setweight(to_tsvector('simple', NEW.subject), 'A'));
    ELSIF NEW.subject IS DISTINCT FROM OLD.subject THEN
        UPDATE ticket_search SET document = ticket_search_document(NEW.id)
        WHERE ticket_id = NEW.id;
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER ticket_search_ticket AFTER INSERT OR UPDATE OF subject ON tickets
FOR EACH ROW EXECUTE FUNCTION ticket_search_ticket();

-- A message added, edited, moved to another ticket (merge) or deleted: the tickets' documents
-- are written again from their messages.
CREATE FUNCTION ticket_search_message() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE ticket_search SET document = ticket_search_document(OLD.ticket_id)
        WHERE ticket_id = OLD.ticket_id;
    END IF;
    IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.ticket_id <> OLD.ticket_id) THEN
        UPDATE ticket_search SET document = ticket_search_document(NEW.ticket_id)
        WHERE ticket_id = NEW.ticket_id;
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER ticket_search_message AFTER INSERT OR DELETE OR UPDATE OF body_text, ticket_id
ON messages FOR EACH ROW EXECUTE FUNCTION ticket_search_message();

-- Addresses by any part of three characters or more (`ada@`, `example.org`), any case.
CREATE INDEX customer_identities_address_trigrams
    ON customer_identities USING GIN (lower(address) gin_trgm_ops);

-- The per-subject and per-message indexes the document replaces.
DROP INDEX tickets_search;
DROP INDEX messages_search;
