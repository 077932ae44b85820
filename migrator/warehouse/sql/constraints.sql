select n.nspname, c.relname, k.conname, k.contype, pg_get_constraintdef(k.oid)
from pg_constraint k
join pg_class c on c.oid = k.conrelid
join pg_namespace n on n.oid = c.relnamespace
where k.contype in ('p', 'u', 'f')
  and n.nspname not in ('information_schema', 'catalog_history', 'migrator_bookkeeping')
  and left(n.nspname, 3) <> 'pg_'
