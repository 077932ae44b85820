-- The first rejected rows of this session's last COPY (AWS: "select * from stl_load_errors
-- where query = pg_last_copy_id()"). Columns are char(n): trimmed by the caller.
select filename, line_number, colname, type, err_reason, raw_field_value
from stl_load_errors
where query = pg_last_copy_id()
order by line_number
limit %s
