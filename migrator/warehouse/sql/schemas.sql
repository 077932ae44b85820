select n.nspname, pg_get_userbyid(n.nspowner), n.nspacl
from pg_namespace n
where n.nspname not in ('information_schema', 'catalog_history', 'migrator_bookkeeping')
  and left(n.nspname, 3) <> 'pg_'
