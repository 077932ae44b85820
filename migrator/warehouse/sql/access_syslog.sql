-- RESTRICTED | UNRESTRICTED (SVL_USER_INFO itself may be hidden from a regular user).
select trim(syslogaccess) from svl_user_info where usename = current_user
