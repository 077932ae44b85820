-- Fallback where pg_last_copy_id() does not name the failed COPY: this session's latest load
-- with errors (stl_load_errors.session is the session's process id).
select filename, line_number, colname, type, err_reason, raw_field_value
from stl_load_errors
where session = pg_backend_pid()
  and query = (select max(query) from stl_load_errors where session = pg_backend_pid())
order by line_number
limit %s
