-- User tables written (insert/update/delete, COPY included) since a point in time, per the system logs.
select trim(t.schema), trim(t."table"), max(w.endtime)
from (select tbl, endtime from stl_insert union all select tbl, endtime from stl_delete) w
join svv_table_info t on t.table_id = w.tbl
where w.endtime >= %s
group by 1, 2
order by 3 desc
