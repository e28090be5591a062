package server

import (
	"net/http"
	"strings"
)

// route is one method and path the server answers. docs/openapi.yaml
// describes every route under /api/ and /metrics (a test holds them
// together).
type route struct {
	method  string
	path    string // a net/http pattern path: "/api/v1/queues/{queue}"
	write   bool   // changes the database: refused in read-only mode
	public  bool   // served without the token (the login page and its style)
	handler http.Handler
}

func (rt route) pattern() string { return rt.method + " " + rt.path }

// apiPrefix is where the JSON API lives.
const apiPrefix = "/api/v1"

func (s *Server) routeTable() []route {
	get := func(path string, h http.HandlerFunc) route {
		return route{method: http.MethodGet, path: path, handler: h}
	}
	write := func(method, path string, h http.HandlerFunc) route {
		return route{method: method, path: path, write: true, handler: h}
	}
	q := apiPrefix + "/queues/{queue}"
	return []route{
		// The JSON API.
		get(apiPrefix+"/info", s.getInfo),
		get(apiPrefix+"/queues", s.listQueues),
		get(q, s.getQueue),
		get(q+"/history", s.getHistory),
		get(q+"/messages", s.listMessages),
		write(http.MethodPost, q+"/messages", s.enqueue),
		write(http.MethodDelete, q+"/messages", s.purge),
		get(q+"/messages/{id}", s.getMessage),
		get(q+"/dead/groups", s.deadGroups),
		write(http.MethodPost, q+"/dead/redrive", s.redrive),
		write(http.MethodPost, q+"/dead/purge", s.purgeDead),
		write(http.MethodPost, q+"/pause", s.pause),
		write(http.MethodPost, q+"/resume", s.resume),
		write(http.MethodPut, q+"/limit", s.setLimit),
		get(apiPrefix+"/dispatch", s.getDispatch),
		get(apiPrefix+"/openapi.yaml", serveFile("web/openapi.yaml", "application/yaml")),
		// Prometheus.
		{method: http.MethodGet, path: "/metrics", handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.promHandler.ServeHTTP(w, r) })},
		// The dashboard.
		get("/{$}", serveFile("web/index.html", "text/html; charset=utf-8")),
		get("/app.js", serveFile("web/app.js", "text/javascript; charset=utf-8")),
		{method: http.MethodGet, path: "/style.css", public: true, handler: serveFile("web/style.css", "text/css; charset=utf-8")},
		{method: http.MethodGet, path: "/favicon.svg", public: true, handler: serveFile("web/favicon.svg", "image/svg+xml")},
		{method: http.MethodGet, path: "/login", public: true, handler: http.HandlerFunc(s.login)},
		{method: http.MethodPost, path: "/login", public: true, handler: http.HandlerFunc(s.loginSubmit)},
		{method: http.MethodPost, path: "/logout", public: true, handler: http.HandlerFunc(s.logout)},
	}
}

// notFound answers what no route matches: 405 naming the methods the path
// has, else 404.
func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	var allowed []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, p := s.mux.Handler(probe); p != "" && p != "/" {
			allowed = append(allowed, m)
		}
	}
	if len(allowed) > 0 {
		w.Header().Set("Allow", joinComma(allowed))
		writeError(w, http.StatusMethodNotAllowed, r.Method+" is not allowed on "+r.URL.Path+": use "+joinComma(allowed))
		return
	}
	writeError(w, http.StatusNotFound, "no such route: "+r.Method+" "+r.URL.Path+" (the API is described at "+apiPrefix+"/openapi.yaml)")
}

func joinComma(s []string) string { return strings.Join(s, ", ") }
