-- Ticket search finds the customer's tickets by name or address, and the customers page lists
-- them: an index for addresses looked up whatever their case, and a full-text index over
-- customers' names (the expression must match the one in the queries). Keep in step with
-- migrations/sqlite.
CREATE INDEX customer_identities_address ON customer_identities (lower(address));
CREATE INDEX customers_name_search ON customers USING GIN (to_tsvector('simple', COALESCE(name, '')));
