-- What each agent has seen of a ticket, whom a ticket waits for, and each person's time zone.
-- Keep in step with migrations/postgres.

-- The IANA name of the zone a person reads times in; NULL: the browser's.
ALTER TABLE agents ADD COLUMN time_zone TEXT;

-- The last public message from the customer, and who the last public message leaves to act:
-- 'us' after the customer's, 'customer' after ours. Kept by the message trigger below, so the
-- list reads them from the row it already has.
ALTER TABLE tickets ADD COLUMN last_inbound_message_id INTEGER;
ALTER TABLE tickets ADD COLUMN waiting_on TEXT CHECK (waiting_on IN ('us', 'customer'));

UPDATE tickets SET
    last_inbound_message_id = (SELECT MAX(m.id) FROM messages m
                               WHERE m.ticket_id = tickets.id AND m.direction = 'inbound'
                                 AND m.kind = 'public'),
    waiting_on = (SELECT CASE m.direction WHEN 'inbound' THEN 'us' ELSE 'customer' END
                  FROM messages m WHERE m.ticket_id = tickets.id AND m.kind = 'public'
                  ORDER BY m.id DESC LIMIT 1);

DROP TRIGGER messages_touch_ticket;
CREATE TRIGGER messages_touch_ticket AFTER INSERT ON messages
BEGIN
    UPDATE tickets
    SET updated_at = NEW.created_at,
        last_customer_message_at = CASE WHEN NEW.direction = 'inbound' AND NEW.kind = 'public'
                                        THEN NEW.created_at ELSE last_customer_message_at END,
        last_inbound_message_id = CASE WHEN NEW.direction = 'inbound' AND NEW.kind = 'public'
                                       THEN NEW.id ELSE last_inbound_message_id END,
        waiting_on = CASE WHEN NEW.kind <> 'public' THEN waiting_on
                          WHEN NEW.direction = 'inbound' THEN 'us' ELSE 'customer' END
    WHERE id = NEW.ticket_id;
END;

-- The newest message of a ticket an agent has seen (ticket page or API). A ticket is unread for
-- them while its last_inbound_message_id is newer; the primary key is the lookup per row.
CREATE TABLE ticket_reads (
    agent_id INTEGER NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    ticket_id INTEGER NOT NULL REFERENCES tickets(id) ON DELETE CASCADE,
    message_id INTEGER NOT NULL,
    PRIMARY KEY (agent_id, ticket_id)
) WITHOUT ROWID;
CREATE INDEX ticket_reads_ticket ON ticket_reads (ticket_id);
