-- The template app's example table: notes owned by a user, protected by row-level security.
--
-- Who sees what (Supabase roles):
--   authenticated  reads and writes only rows whose user_id is auth.uid()
--   anon           no policy, so no rows (and no writes)
--   service_role   bypasses RLS (server-side admin client only)

create table public.notes (
    id uuid primary key default gen_random_uuid(),
    user_id uuid not null default auth.uid() references auth.users (id) on delete cascade,
    title text not null check (char_length(title) between 1 and 200),
    body text not null default '' check (char_length(body) <= 10000),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

comment on table public.notes is 'Notes owned by a user; each user sees only their own (RLS).';

create index notes_user_id_created_at_idx on public.notes (user_id, created_at desc);

alter table public.notes enable row level security;

-- (select auth.uid()) is evaluated once per statement rather than per row (Supabase's advice).
create policy "Users read their own notes"
    on public.notes for select
    to authenticated
    using ((select auth.uid()) = user_id);

create policy "Users create notes they own"
    on public.notes for insert
    to authenticated
    with check ((select auth.uid()) = user_id);

create policy "Users update their own notes"
    on public.notes for update
    to authenticated
    using ((select auth.uid()) = user_id)
    with check ((select auth.uid()) = user_id);

create policy "Users delete their own notes"
    on public.notes for delete
    to authenticated
    using ((select auth.uid()) = user_id);

-- Keep updated_at true without trusting the client.
create function public.notes_touch_updated_at() returns trigger
    language plpgsql
    set search_path = ''
as $$
begin
    new.updated_at := now();
    return new;
end;
$$;

create trigger notes_touch_updated_at
    before update on public.notes
    for each row execute function public.notes_touch_updated_at();
