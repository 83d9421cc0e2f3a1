DROP TABLE bootstrap;
DROP TABLE api_keys;
