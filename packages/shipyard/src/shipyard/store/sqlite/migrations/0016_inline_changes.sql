-- PostgreSQL's claim and finish write their own status events and slot changes (its 0016).
-- SQLite's row triggers cost little and stay: nothing changes here.
SELECT 1;
