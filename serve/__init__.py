"""pgpt-serve: the HTTP server (routes, authentication, metrics) over the headless runtime."""
