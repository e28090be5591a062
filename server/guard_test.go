package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

const testToken = "s3cret-token-0123456789abcdef"

func TestTokenRequired(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, Options{Token: testToken})
	deadLetter(t, ts.store, "orders", `{}`, "boom")
	before := snapshot(t, ts.store)
	var seen []response
	check := func(r response) response { seen = append(seen, r); return r }

	// No token, a wrong one, another scheme: 401 for the API, the metrics
	// and the page's script; the page itself sends the browser to /login.
	for _, h := range [][]string{nil, {"Authorization: Bearer wrong-token-0123456789"}, {"Authorization: Bearer " + testToken + "x"},
		{"Authorization: Basic " + testToken}, {"Cookie: daguq_session=" + testToken}} {
		for _, p := range []string{"/api/v1/queues", "/metrics", "/app.js", "/api/v1/openapi.yaml"} {
			r := check(ts.must(401, "GET", p, "", h...))
			if r.header.Get("WWW-Authenticate") == "" {
				t.Errorf("GET %s %v: no WWW-Authenticate", p, h)
			}
		}
		check(ts.must(401, "POST", "/api/v1/queues/orders/dead/redrive", "", h...))
		check(ts.must(401, "POST", "/api/v1/queues/orders/messages", `{"body":1}`, h...))
		if r := check(ts.must(303, "GET", "/", "", h...)); r.header.Get("Location") != "/login" {
			t.Errorf("GET / without the token: Location %q", r.header.Get("Location"))
		}
	}
	if after := snapshot(t, ts.store); after != before {
		t.Fatalf("a request without the token changed the database")
	}
	// The login page and its style are public.
	check(ts.must(200, "GET", "/login", ""))
	check(ts.must(200, "GET", "/style.css", ""))

	// The bearer token opens everything.
	auth := "Authorization: Bearer " + testToken
	check(ts.must(200, "GET", "/api/v1/queues", "", auth))
	check(ts.must(200, "GET", "/metrics", "", auth))
	check(ts.must(200, "POST", "/api/v1/queues/orders/dead/redrive", "", auth))

	// A wrong token at the login page: 401, no cookie.
	r := check(ts.must(401, "POST", "/login", "token=nope", "Content-Type: application/x-www-form-urlencoded"))
	if len(r.header.Values("Set-Cookie")) != 0 || !strings.Contains(string(r.body), "Wrong token") {
		t.Errorf("wrong login: %v %s", r.header, r.body)
	}
	// The right one: a cookie that is HttpOnly and SameSite=Strict, and is
	// not the token.
	r = check(ts.must(303, "POST", "/login", "token="+testToken, "Content-Type: application/x-www-form-urlencoded"))
	cookie := r.header.Get("Set-Cookie")
	if !strings.Contains(cookie, "HttpOnly") || !strings.Contains(cookie, "SameSite=Strict") || !strings.HasPrefix(cookie, sessionCookie+"=") {
		t.Fatalf("session cookie: %q", cookie)
	}
	session := strings.SplitN(strings.SplitN(cookie, ";", 2)[0], "=", 2)[1]
	check(ts.must(200, "GET", "/api/v1/queues", "", "Cookie: "+sessionCookie+"="+session))
	check(ts.must(200, "GET", "/", "", "Cookie: "+sessionCookie+"="+session))
	check(ts.must(401, "GET", "/api/v1/queues", "", "Cookie: "+sessionCookie+"="+session[:len(session)-1]+"0"))
	r = check(ts.must(303, "POST", "/logout", ""))
	if !strings.Contains(r.header.Get("Set-Cookie"), "Max-Age=0") {
		t.Errorf("logout: %q", r.header.Get("Set-Cookie"))
	}

	// The token is never in an answer, nor is the cookie derived from it
	// readable as the token.
	for _, r := range seen {
		all := string(r.body)
		for k, v := range r.header {
			all += k + ": " + strings.Join(v, ",")
		}
		if strings.Contains(all, testToken) {
			t.Errorf("an answer holds the token: %s", all)
		}
	}
	if strings.Contains(session, testToken) {
		t.Errorf("the cookie holds the token")
	}
}

func TestHostCheck(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, Options{AllowedHosts: []string{"queues.example.com"}})
	_, port, _ := net.SplitHostPort(ts.host)
	for _, host := range []string{"127.0.0.1:" + port, "localhost:" + port, "LOCALHOST:" + port, "[::1]:" + port,
		"queues.example.com", "queues.example.com:" + port} {
		ts.must(200, "GET", "/api/v1/queues", "", "Host: "+host)
	}
	// DNS rebinding: another name resolved to 127.0.0.1; or the right name
	// with another port.
	for _, host := range []string{"evil.example:" + port, "evil.example", "localhost", "127.0.0.1:1", "localhost.evil.example:" + port} {
		r := ts.must(http.StatusMisdirectedRequest, "GET", "/api/v1/queues", "", "Host: "+host)
		if !strings.Contains(string(r.body), "allow-host") {
			t.Errorf("Host %s: %s", host, r.body)
		}
		ts.must(http.StatusMisdirectedRequest, "POST", "/api/v1/queues/orders/messages", `{"body":1}`, "Host: "+host)
	}
	if q, _ := ts.store.Queues(context.Background()); len(q) != 0 {
		t.Errorf("a request for another host wrote: %v", q)
	}
}

func TestAllowedHostsOffLoopback(t *testing.T) {
	t.Parallel()
	addr := &net.TCPAddr{IP: net.IPv4(10, 0, 0, 7), Port: 8470}
	if hosts := allowedHosts(addr, nil); hosts != nil {
		t.Errorf("off loopback with no --allow-host: want any host, got %v", hosts)
	}
	hosts := allowedHosts(addr, []string{"q.example.com"})
	if !hosts["q.example.com:8470"] || !hosts["q.example.com"] == true && hosts["evil:8470"] {
		t.Errorf("off loopback with --allow-host: %v", hosts)
	}
	for _, addr := range []string{"127.0.0.1:8470", "[::1]:1", "localhost:80"} {
		if !IsLoopback(addr) {
			t.Errorf("IsLoopback(%s) = false", addr)
		}
	}
	for _, addr := range []string{"0.0.0.0:8470", ":8470", "10.1.2.3:8470", "example.com:80", "[::]:8470", "nonsense"} {
		if IsLoopback(addr) {
			t.Errorf("IsLoopback(%s) = true", addr)
		}
	}
}

func TestCrossOriginWritesRefused(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, Options{})
	deadLetter(t, ts.store, "orders", `{}`, "boom")
	before := snapshot(t, ts.store)
	for _, h := range [][]string{
		{"Sec-Fetch-Site: cross-site"},
		{"Sec-Fetch-Site: same-site"},
		{"Origin: http://evil.example"},
		{"Origin: http://localhost:1"},
	} {
		for _, w := range []struct{ method, path, body string }{
			{"POST", "/api/v1/queues/orders/messages", `{"body":1}`},
			{"POST", "/api/v1/queues/orders/dead/redrive", ""},
			{"PUT", "/api/v1/queues/orders/limit", `{"limit":1}`},
			{"DELETE", "/api/v1/queues/orders/messages", ""},
			{"POST", "/login", ""},
		} {
			r := ts.must(403, w.method, w.path, w.body, h...)
			if !strings.Contains(string(r.body), "cross-origin") {
				t.Errorf("%s %s %v: %s", w.method, w.path, h, r.body)
			}
		}
		// Reads are safe: a cross-origin page cannot read the answer anyway.
		ts.must(200, "GET", "/api/v1/queues", "", h...)
	}
	if after := snapshot(t, ts.store); after != before {
		t.Errorf("a cross-origin request changed the database")
	}
	// The server's own page: same origin.
	ts.must(200, "POST", "/api/v1/queues/orders/dead/redrive", "", "Sec-Fetch-Site: same-origin", "Origin: "+ts.url)
}

// A stop finishes the requests in flight: a request whose body is still
// arriving when the stop begins is answered, and its messages stored.
func TestStopDrainsRequestsInFlight(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, Options{})
	conn, err := net.Dial("tcp", ts.host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := "{\"body\":1}\n{\"body\":2}\n"
	// "Expect: 100-continue": the server says "100 Continue" when the
	// handler starts reading the body, so the request is surely in flight.
	fmt.Fprintf(conn, "POST /api/v1/queues/orders/messages HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-ndjson\r\n"+
		"Content-Length: %d\r\nExpect: 100-continue\r\n\r\n", ts.host, len(body))
	rd := bufio.NewReader(conn)
	if line, err := rd.ReadString('\n'); err != nil || !strings.Contains(line, "100 Continue") {
		t.Fatalf("want 100 Continue, got %q %v", line, err)
	}
	rd.ReadString('\n') // the blank line after it
	ts.stop()
	deadline := time.Now().Add(5 * time.Second)
	for { // the listener closes at once
		c, err := net.DialTimeout("tcp", ts.host, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the server still takes connections 5s after the stop began")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := io.WriteString(conn, body); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(rd, nil)
	if err != nil {
		t.Fatalf("the request in flight got no answer: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != 201 {
		t.Fatalf("status %d", res.StatusCode)
	}
	if err := <-ts.done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	ts.done <- nil // for the cleanup
	st, err := ts.store.Stats(context.Background(), "orders")
	if err != nil || st.Ready != 2 {
		t.Errorf("after the stop: %+v %v", st, err)
	}
}

// Slow clients cannot hold a connection: every server timeout is set.
func TestServerTimeouts(t *testing.T) {
	t.Parallel()
	s := New(&nopStore{}, Options{})
	srv := s.httpServer(context.Background(), &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8470})
	if srv.ReadHeaderTimeout <= 0 || srv.ReadTimeout <= 0 || srv.WriteTimeout <= 0 || srv.IdleTimeout <= 0 || srv.MaxHeaderBytes <= 0 {
		t.Errorf("timeouts: header %s, read %s, write %s, idle %s, max header %d",
			srv.ReadHeaderTimeout, srv.ReadTimeout, srv.WriteTimeout, srv.IdleTimeout, srv.MaxHeaderBytes)
	}
}

// A client that sends its headers too slowly is cut off (the header
// timeout, shortened for the test).
func TestSlowHeadersCutOff(t *testing.T) {
	t.Parallel()
	s := New(&nopStore{}, Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := s.httpServer(context.Background(), ln.Addr())
	srv.ReadHeaderTimeout = 200 * time.Millisecond
	go srv.Serve(ln)
	defer srv.Close()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /api/v1/info HTTP/1.1\r\nHost: %s\r\n", ln.Addr()) // and never the blank line
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	start := time.Now()
	_, err = io.ReadAll(conn)
	if err != nil || time.Since(start) > 5*time.Second {
		t.Errorf("the slow client was not cut off: %v after %s", err, time.Since(start))
	}
}
