-- PostgreSQL leaves room in attempts' pages for each finish's in-place update (its 0017).
-- SQLite updates a row in its B-tree where it is: nothing changes here.
SELECT 1;
