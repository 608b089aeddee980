"""plano's web dashboard: an interface, beside the command line, over the same operations.

Design (issue 19), the first slice:

- Layer. `plano.dashboard` is an interface as `plano.cli` is: it may import ops, engine,
  render and core, never cli; cli imports only `dashboard.server`, to start it
  (pyproject's import-linter contracts). It has no logic of its own: a page or an API
  call reads what `ops.status.collect`, `ops.deploy.releases`, `ops.maintenance.is_on`
  and `ops.audit.read` return, and an action calls `ops.deploy.deploy`, `ops.deploy.rollback`
  or `ops.maintenance.switch` with a Session, as the CLI's commands do. So an action takes
  the same per-app deploy lock (ops.deploy.deploy_lock: a deploy from the page and one from
  a shell at the same time, one is refused naming the holder) and leaves the same audit
  line (ops.audit.audited), its command written as the CLI's equivalent
  (`plano deploy app1 --tag 2.0.0`), its actor the signed-in user (core.actor.acting_as)
  from `dashboard@<this host>`.
- Modules. `app` the routes (pages and the JSON API under /api, with its OpenAPI
  description at /api/openapi.json, FastAPI); `security` sessions, CSRF tokens, the
  sign-in throttle and the security headers; `jobs` actions in background threads whose
  state and output a page polls; `follow` a service's log followed live (Server-Sent
  Events from `docker logs --follow`, ops.logs, each line masked; the follower process is
  killed when the page goes away); `server` uvicorn on 127.0.0.1; templates/ (Jinja2,
  StrictUndefined, autoescaped) and static/ (plain CSS, no build step, and one small
  script of plano's own, logs.js, that follows the logs: the CSP allows scripts from the
  dashboard only, none inline; without it the page shows the last lines).
- Who may see what. Users and API tokens: ops/access.py (Argon2id hashes in the infra's
  git-ignored .dashboard/, 0600). Without a session nothing is shown: a page redirects to
  /login, an API call answers 401. A session is a random id kept in this process, sent
  in a cookie signed with the infra's dashboard key (itsdangerous), HttpOnly, Secure,
  SameSite=Strict, path /; it ends after 12 hours, or 1 hour unused, or at sign-out, or
  when the dashboard restarts. Every POST form carries the session's CSRF token (the
  sign-in form a token of its own, bound to a cookie), a POST without it is refused with
  403. Five wrong passwords for a user from one address within 15 minutes make the next
  attempts answer 429 for a minute, doubling with each further failure (and twenty from
  one address, whatever the user). A viewer reads; an operator also acts; a viewer's
  action answers 403. The API takes Bearer tokens only (`plano dashboard token`), never
  the cookie, so no page can be made to call it.
- Hosts. Only Host: 127.0.0.1 or localhost is answered (a DNS-rebinding page gets 400);
  the dashboard is reached from elsewhere through `ssh -L 8800:127.0.0.1:8800 server`,
  which `plano -e NAME dashboard` sets up (ops.remote.dashboard).
"""
