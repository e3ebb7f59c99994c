-- A batch item can resolve to a run created earlier (an idempotency key), so the batch keeps
-- its items' run ids in input order instead of relying on runs.batch_id.
ALTER TABLE batches ADD COLUMN run_ids TEXT NOT NULL DEFAULT '[]';
