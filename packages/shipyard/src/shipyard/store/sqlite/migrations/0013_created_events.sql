-- PostgreSQL's 0013 moves the 'created' events of new runs from a statement trigger into the
-- insert statements. SQLite's trigger is per row and cheap: nothing changes here (both
-- backends keep one list of migration names).
SELECT 1;
