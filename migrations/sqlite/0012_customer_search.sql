-- Ticket search finds the customer's tickets by name or address, and the customers page lists
-- them: an index for addresses looked up whatever their case, and a full-text index over
-- customers' names (external content, kept current by triggers; names change on rename and
-- merge). Keep in step with migrations/postgres.
CREATE INDEX customer_identities_address ON customer_identities (lower(address));

CREATE VIRTUAL TABLE customers_fts USING fts5 (name, content = 'customers', content_rowid = 'id');
INSERT INTO customers_fts (customers_fts) VALUES ('rebuild');

CREATE TRIGGER customers_fts_insert AFTER INSERT ON customers
BEGIN
    INSERT INTO customers_fts (rowid, name) VALUES (NEW.id, COALESCE(NEW.name, ''));
END;
CREATE TRIGGER customers_fts_delete AFTER DELETE ON customers
BEGIN
    INSERT INTO customers_fts (customers_fts, rowid, name)
    VALUES ('delete', OLD.id, COALESCE(OLD.name, ''));
END;
CREATE TRIGGER customers_fts_update AFTER UPDATE OF name ON customers
BEGIN
    INSERT INTO customers_fts (customers_fts, rowid, name)
    VALUES ('delete', OLD.id, COALESCE(OLD.name, ''));
    INSERT INTO customers_fts (rowid, name) VALUES (NEW.id, COALESCE(NEW.name, ''));
END;
