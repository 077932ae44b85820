-- User functions and stored procedures. pg_proc_info is Redshift's pg_proc plus prokind ('f'
-- function, 'p' procedure, 'a' aggregate) and the full argument lists of procedures
-- (proallargtypes/proargmodes; NULL when every argument is IN). pg_get_functiondef does not
-- exist on Redshift: the DDL is rebuilt from these columns (see replay.py).
select trim(n.nspname), trim(p.proname), p.prokind, trim(l.lanname), p.proargtypes, p.proallargtypes,
       p.proargmodes, p.proargnames, p.prorettype, p.provolatile, p.prosecdef, p.prosrc,
       pg_get_userbyid(p.proowner), p.proacl
from pg_proc_info p
join pg_namespace n on n.oid = p.pronamespace
join pg_language l on l.oid = p.prolang
where n.nspname not in ('information_schema', 'catalog_history', 'migrator_bookkeeping')
  and left(n.nspname, 3) <> 'pg_'
