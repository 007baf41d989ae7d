"""gunicorn settings every way of running the studio shares (gunicorn reads ./gunicorn.conf.py itself:
`./studio up`, the Dockerfile and docker-compose all start it from the repository root)."""

# Seconds an idle keep-alive connection stays open. Longer than clients keep theirs (httpx 5 s, the
# CLI and the load test; browsers longer but they retry), so the client closes first: a server that
# closes an idle connection just as a request arrives on it drops that request (the load test saw one
# submission of 200 lost that way with gunicorn's default of 2 s). Idle connections wait in gthread's
# poller, not on a thread.
keepalive = 10
