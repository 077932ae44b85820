-- Which relation each view's rewrite rule depends on (late-binding views have none).
select distinct vn.nspname, v.relname, rn.nspname, r.relname
from pg_depend d
join pg_rewrite w on w.oid = d.objid
join pg_class v on v.oid = w.ev_class
join pg_namespace vn on vn.oid = v.relnamespace
join pg_class r on r.oid = d.refobjid
join pg_namespace rn on rn.oid = r.relnamespace
where v.relkind = 'v' and r.oid <> v.oid and r.relkind in ('r', 'v')
