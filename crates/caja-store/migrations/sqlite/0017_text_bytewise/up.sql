-- PostgreSQL's text columns become bytewise (collation "C") in this version. SQLite's
-- already compare bytewise (its BINARY collation, the default): nothing to change here.
SELECT 1;
