-- One marker table per load target ({marker} is migrator_bookkeeping."load_marker_<digest>"):
-- concurrent loads never write the same table, so SERIALIZABLE isolation cannot make them
-- conflict (Redshift error 1023). The columns still name the load, for people reading it.
create table if not exists {marker} (
    migration varchar(256) not null,
    schema_name varchar(512) not null,
    table_name varchar(512) not null,
    attempt integer not null,
    manifest varchar(2048) not null,
    rows bigint not null,
    loaded_at timestamp not null
)
