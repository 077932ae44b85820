select tbl, max(endtime)
from (select tbl, endtime from stl_insert union all select tbl, endtime from stl_delete) w
group by tbl
