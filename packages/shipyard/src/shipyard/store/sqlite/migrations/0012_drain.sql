-- PostgreSQL's 0012 rewrites its statement-level slot counter trigger without a quadratic
-- join of its transition tables. SQLite's slot triggers are per row and read no transition
-- tables: nothing changes here (both backends keep one list of migration names).
SELECT 1;
