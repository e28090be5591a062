// Package server is `daguq serve`: one long-running process beside Dagu that
// shows and drives the queues of a daguq database over HTTP.
//
// It owns the JSON API under /api/v1 (described by web/openapi.yaml, a copy
// of docs/openapi.yaml), the Prometheus metrics at /metrics (read from the
// counters the store keeps in the database, at scrape time), the dashboard
// at / (plain HTML, CSS and JavaScript embedded from web/), the history
// samples it records every minute for the dashboard's charts, and the
// protections around all of it: a bearer token (or the cookie the login page
// sets), the Host header check against DNS rebinding, the cross-origin check
// on writes, a read-only mode, body limits and server timeouts.
//
// The server reaches the database only through the small Store interface it
// declares, which *queuestore.Store implements.
package server
