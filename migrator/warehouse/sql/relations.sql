-- Tables and views with owner and ACL (ownership and grants are replayed from these).
select n.nspname, c.relname, c.relkind, pg_get_userbyid(c.relowner), c.relacl
from pg_class c
join pg_namespace n on n.oid = c.relnamespace
where c.relkind in ('r', 'v')
  and n.nspname not in ('information_schema', 'catalog_history', 'migrator_bookkeeping')
  and left(n.nspname, 3) <> 'pg_'
