-- The load marker tables of the copy workers (one per worker, migrator_bookkeeping."load_markers_<digest>"),
-- and the table's own marker of the per-table scheme (named by the parameter; a load in flight
-- when the store was upgraded wrote that one). Read after a crash to find a table's marker.
select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
where n.nspname = 'migrator_bookkeeping' and c.relkind = 'r'
  and (left(c.relname, 13) = 'load_markers_' or c.relname = %s)
order by c.relname
