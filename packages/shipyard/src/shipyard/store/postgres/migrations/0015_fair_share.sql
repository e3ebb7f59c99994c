-- Fair shares of a concurrency limit between workers (issue 16): a worker whose claims come
-- back short while runs it could start are ready records when it last wanted more; the other
-- live workers of its version then claim at most their share of each (queue, concurrency key)
-- group's limit, so a second worker process gets runs instead of waiting for the first to
-- leave a slot unclaimed (it never does: its finishes claim the slots they free).
ALTER TABLE workers ADD COLUMN wanting_at BIGINT;
