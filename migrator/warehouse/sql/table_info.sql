-- estimated_visible_rows, not tbl_rows: tbl_rows still counts rows marked deleted until VACUUM.
select trim(schema), trim("table"), table_id, size, estimated_visible_rows, trim(diststyle), trim(sortkey1), trim(encoded)
from svv_table_info
