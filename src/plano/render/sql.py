"""The SQL that provisions an app's role and database: rendered into the database's
init script, run by `plano db create`, by `plano secrets rotate` and, on a swarm, by
the provisioning job (one text, every user)."""

# Idempotent, all of it: safe to run again.
HARDEN_SQL = """\
REVOKE CONNECT ON DATABASE postgres FROM PUBLIC;
REVOKE CONNECT ON DATABASE template1 FROM PUBLIC;
"""

CREATE_SQL = """\
SELECT format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION', :'app')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'app') \\gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'app', :'app')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'app') \\gexec
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'app') \\gexec
SELECT format('GRANT ALL ON DATABASE %I TO %I', :'app', :'app') \\gexec
"""

# psql variables: :'app', :'login' (one of naming.db_logins) and :'password'. The login
# role is the app's own, or its second one: a member of it that becomes it at login
# (`SET role`), so whatever it makes is the app's. A rotation gives the login the URL
# does not name a new password, and running tasks go on logging in with the old one.
LOGIN_SQL = """\
SELECT format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION IN ROLE %I', :'login', :'app')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'login') \\gexec
SELECT format('ALTER ROLE %I SET role = %L', :'login', :'app') WHERE :'login' <> :'app' \\gexec
SELECT format('ALTER ROLE %I LOGIN PASSWORD %L', :'login', :'password') \\gexec
"""

# psql variable :'login': it logs in no more (once no task uses it).
RETIRE_SQL = """\
SELECT format('ALTER ROLE %I PASSWORD NULL', :'login') WHERE EXISTS (SELECT FROM pg_roles WHERE rolname = :'login') \\gexec
"""

# psql variable :'app'. Run inside the app's own database.
SCHEMA_SQL = """\
REVOKE ALL ON SCHEMA public FROM PUBLIC;
SELECT format('ALTER SCHEMA public OWNER TO %I', :'app') \\gexec
"""
