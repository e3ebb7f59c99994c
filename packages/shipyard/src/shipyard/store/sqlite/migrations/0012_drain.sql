-- PostgreSQL's 0012 rewrites its statement-level triggers (slot counters, status events)
-- without a quadratic join of their transition tables. SQLite's triggers are per row and
-- read no transition tables: nothing changes here (both backends keep one list of names).
SELECT 1;
