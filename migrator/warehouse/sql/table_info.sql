select trim(schema), trim("table"), table_id, size, tbl_rows, trim(diststyle), trim(sortkey1), trim(encoded)
from svv_table_info
