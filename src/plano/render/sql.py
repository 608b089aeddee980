"""The SQL that provisions an app's role and database: rendered into the database's
init script and run by `plano db create` (one text, two users)."""

# psql variables: :'app' and :'password'. Idempotent: safe to run again.
HARDEN_SQL = """\
REVOKE CONNECT ON DATABASE postgres FROM PUBLIC;
REVOKE CONNECT ON DATABASE template1 FROM PUBLIC;
"""

CREATE_SQL = """\
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION', :'app', :'password')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'app') \\gexec
SELECT format('ALTER ROLE %I PASSWORD %L', :'app', :'password') \\gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'app', :'app')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'app') \\gexec
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'app') \\gexec
SELECT format('GRANT ALL ON DATABASE %I TO %I', :'app', :'app') \\gexec
"""

# Run inside the app's own database.
SCHEMA_SQL = """\
REVOKE ALL ON SCHEMA public FROM PUBLIC;
SELECT format('ALTER SCHEMA public OWNER TO %I', :'app') \\gexec
"""
