create table if not exists migrator_bookkeeping.load_marker (
    migration varchar(256) not null,
    schema_name varchar(512) not null,
    table_name varchar(512) not null,
    attempt integer not null,
    manifest varchar(2048) not null,
    rows bigint not null,
    loaded_at timestamp not null
)
