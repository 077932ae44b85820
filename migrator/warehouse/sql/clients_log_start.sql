-- Where STL_CONNECTION_LOG starts (the window a list of clients really covers).
select min(recordtime) from stl_connection_log
