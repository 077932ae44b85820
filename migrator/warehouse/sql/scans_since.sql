select tbl, count(distinct query) from stl_scan where starttime >= %s group by tbl
