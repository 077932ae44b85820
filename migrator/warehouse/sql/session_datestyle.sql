-- Dates render as ISO (YYYY-MM-DD) and ambiguous input reads month-day-year in every session of
-- the tool, whatever the user's default ("datestyle": default 'ISO, MDY').
SET datestyle TO 'ISO, MDY'
