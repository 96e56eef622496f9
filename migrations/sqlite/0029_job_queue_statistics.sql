-- The planner's statistics for the job queue's table (apalis's `Jobs`, created after this
-- file on a new database; the figures wait for it in sqlite_stat1).
--
-- A job's acknowledgement joins the finished ids (json_each) to `Jobs` and checks `lock_by`.
-- Without statistics SQLite's planner walks every job the worker ever took, by the `lock_by`
-- index, for each acknowledgement: the queue slowed as it grew (5 ms per job at 10,000 done
-- jobs). Saying that many jobs share a `lock_by` makes it look each id up instead. PostgreSQL
-- keeps its own statistics (autovacuum) and needs nothing here.
--
-- The first ANALYZE makes sure sqlite_stat1 exists; the last one has this connection read the
-- figures again (the others read them when they open).
ANALYZE sqlite_schema;
DELETE FROM sqlite_stat1 WHERE tbl = 'Jobs' AND idx = 'LIdx';
INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES ('Jobs', 'LIdx', '100000 10000');
ANALYZE sqlite_schema;
