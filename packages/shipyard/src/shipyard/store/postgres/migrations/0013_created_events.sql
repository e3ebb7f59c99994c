-- The 'created' events of new runs are written by the statements that insert runs (each of
-- queries.sql's run_insert*, in a CTE), not by
-- 0007's statement trigger (issue 16, PostgreSQL single trigger). An AFTER trigger with a
-- transition table costs every insert a tuplestore, a PL/pgSQL call and a plan of its own:
-- ~35 µs of the ~350 µs a one-run trigger statement takes on the server (pgbench, prepared),
-- more than the event insert itself. Same rows as before: one per inserted run (a conflict
-- skipped by ON CONFLICT DO NOTHING has none), in run id order.
DROP TRIGGER runs_created_events ON runs;
DROP FUNCTION shipyard_created_events();
