-- Waitpoints by the run or batch they wait for: a finish settles the run/batch waitpoints of
-- the runs it ends and wakes the runs linked to them in its own transaction (a parent's
-- trigger_and_wait resumes with its child's finish, without a resolver pass).
CREATE INDEX waitpoints_by_target ON waitpoints (target_id) WHERE target_id IS NOT NULL;
