-- One row per materialized view; autorefresh 't' when created with AUTO REFRESH YES.
select trim(schema_name), trim(name), trim(user_name), trim(autorefresh) from svv_mv_info
