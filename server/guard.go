package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"html/template"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// sessionCookie holds the proof of the token in the browser: HttpOnly (no
// script reads it), SameSite=Strict (no other site's page sends it).
const (
	sessionCookie = "daguq_session"
	sessionMaxAge = 30 * 24 * time.Hour
)

// contentSecurityPolicy lets the page load its own script, style and
// images only: no inline script or style, no other origin, no framing.
const contentSecurityPolicy = "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// handler is every request's way in, for a server listening on addr: the
// request counter, security headers, the Host check, the cross-origin
// check, the body limit, the token, the read-only switch, then the route.
func (s *Server) handler(addr net.Addr) http.Handler {
	hosts := allowedHosts(addr, s.opts.AllowedHosts)
	byPattern := make(map[string]*route, len(s.routes))
	for i := range s.routes {
		byPattern[s.routes[i].pattern()] = &s.routes[i]
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, pattern := s.mux.Handler(r)
		rt := byPattern[pattern]
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		defer func() {
			s.requests.WithLabelValues(routeLabel(rt), methodLabel(r.Method), strconv.Itoa(rec.code)).Inc()
		}()
		h := rec.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		if hosts != nil && !hosts[strings.ToLower(r.Host)] {
			writeError(rec, http.StatusMisdirectedRequest, "host "+strconv.Quote(r.Host)+" is not one this server answers to (see --allow-host)")
			return
		}
		if err := s.cop.Check(r); err != nil {
			writeError(rec, http.StatusForbidden, "cross-origin request refused: changes are accepted from this server's own pages only")
			return
		}
		r.Body = http.MaxBytesReader(rec, r.Body, s.opts.MaxBodyBytes)
		if (rt == nil || !rt.public) && !s.authorized(r) {
			if r.Method == http.MethodGet && r.URL.Path == "/" {
				http.Redirect(rec, r, "/login", http.StatusSeeOther)
				return
			}
			rec.Header().Set("WWW-Authenticate", `Bearer realm="daguq"`)
			writeError(rec, http.StatusUnauthorized, "missing or wrong token: send Authorization: Bearer <token>, or log in at /login")
			return
		}
		if rt != nil && rt.write && s.opts.ReadOnly {
			writeError(rec, http.StatusForbidden, "the server is read-only (daguq serve --read-only): use the daguq command line to change queues")
			return
		}
		s.mux.ServeHTTP(rec, r)
	})
}

// allowedHosts is the set of Host header values to accept (lower case), or
// nil for any. On loopback, the loopback names with the port (DNS
// rebinding: a page of another site resolved to 127.0.0.1 sends its own
// name), plus extra.
func allowedHosts(addr net.Addr, extra []string) map[string]bool {
	tcp, ok := addr.(*net.TCPAddr)
	loopback := ok && tcp.IP.IsLoopback()
	if !loopback && len(extra) == 0 {
		return nil
	}
	hosts := map[string]bool{}
	port := ""
	if ok {
		port = strconv.Itoa(tcp.Port)
	}
	// add accepts name with the server's port, and bare when bare is set
	// (a name given with --allow-host: a reverse proxy on 80 or 443).
	add := func(name string, bare bool) {
		name = strings.ToLower(name)
		if _, _, err := net.SplitHostPort(name); err == nil {
			hosts[name] = true
			return
		}
		if bare || port == "80" || !ok {
			hosts[name] = true
		}
		if ok {
			hosts[net.JoinHostPort(strings.Trim(name, "[]"), port)] = true
		}
	}
	for _, name := range []string{"localhost", "127.0.0.1", "::1"} {
		add(name, false)
	}
	for _, name := range extra {
		add(name, true)
	}
	return hosts
}

// authorized reports whether r carries the token (as a bearer token) or the
// session cookie; always true without a token.
func (s *Server) authorized(r *http.Request) bool {
	if s.opts.Token == "" {
		return true
	}
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, token, ok := strings.Cut(h, " ")
		return ok && strings.EqualFold(scheme, "Bearer") && s.tokenMatches(strings.TrimSpace(token))
	}
	if c, err := r.Cookie(sessionCookie); err == nil {
		return subtle.ConstantTimeCompare([]byte(c.Value), []byte(s.session)) == 1
	}
	return false
}

// tokenMatches compares digests, so that neither the time taken nor the
// length reveals anything of the token.
func (s *Server) tokenMatches(token string) bool {
	sum := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(sum[:], s.tokenSum[:]) == 1
}

var loginPage = template.Must(template.ParseFS(webFiles, "web/login.html"))

// login shows the token form.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	s.renderLogin(w, http.StatusOK, "")
}

func (s *Server) renderLogin(w http.ResponseWriter, code int, problem string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = loginPage.Execute(w, struct {
		Problem  string
		NoToken  bool
		Database string
	}{problem, s.opts.Token == "", s.opts.DB})
}

// loginSubmit checks the posted token and sets the session cookie.
func (s *Server) loginSubmit(w http.ResponseWriter, r *http.Request) {
	if s.opts.Token == "" {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	if err := r.ParseForm(); err != nil {
		s.renderLogin(w, bodyErrorCode(err), "The form could not be read.")
		return
	}
	if !s.tokenMatches(r.PostForm.Get("token")) {
		s.renderLogin(w, http.StatusUnauthorized, "Wrong token.")
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: s.session, Path: "/", MaxAge: int(sessionMaxAge.Seconds()),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// logout drops the session cookie.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// statusRecorder keeps the status code for the request counter.
type statusRecorder struct {
	http.ResponseWriter
	code        int
	wroteHeader bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if !r.wroteHeader {
		r.code, r.wroteHeader = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	r.wroteHeader = true
	return r.ResponseWriter.Write(b)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// routeLabel is the route of the request counter: the path pattern, never
// the path itself (no queue names or ids in labels).
func routeLabel(rt *route) string {
	if rt == nil {
		return "other"
	}
	return rt.path
}

func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodOptions:
		return m
	}
	return "other"
}
