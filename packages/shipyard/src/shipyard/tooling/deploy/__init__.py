"""``shipyard deploy``: branch-based deploys to Cloudflare Workers and Supabase.

* :mod:`.naming` — worker and Supabase branch names from a git branch, and their URLs;
* :mod:`.plan` — what a deploy or a cleanup will run (``--dry-run`` prints it);
* :mod:`.cloudflare` / :mod:`.supabase` — each platform's CLI commands;
* :mod:`.runner` — runs a plan step by step, stopping at the first failure.

See ``docs/deploy.md``.
"""
