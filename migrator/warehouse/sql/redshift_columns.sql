-- Physical attributes per column, schema explicit (SVV_REDSHIFT_COLUMNS: encoding, distkey,
-- sortkey with interleaved positions alternating in sign, as in pg_table_def).
select trim(schema_name), trim(table_name), trim(column_name), trim(encoding), distkey, sortkey
from svv_redshift_columns
where database_name = current_database()
