package server

import (
	"bytes"
	"os"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// pageRoutes are the dashboard's own routes, which the API description
// leaves out: every other route is in it.
var pageRoutes = []string{"GET /{$}", "GET /app.js", "GET /style.css", "GET /favicon.svg", "GET /login", "POST /login", "POST /logout"}

// The served description is docs/openapi.yaml.
func TestOpenAPICopyIsCurrent(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	embedded, _ := webFiles.ReadFile("web/openapi.yaml")
	if !bytes.Equal(doc, embedded) {
		t.Errorf("server/web/openapi.yaml is not docs/openapi.yaml: cp docs/openapi.yaml server/web/openapi.yaml")
	}
}

// Every route of the server is in the description, and every operation of
// the description is a route.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	t.Parallel()
	b, _ := webFiles.ReadFile("web/openapi.yaml")
	var doc struct {
		OpenAPI string                          `yaml:"openapi"`
		Paths   map[string]map[string]yaml.Node `yaml:"paths"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Errorf("openapi: %q, want 3.x", doc.OpenAPI)
	}
	described := map[string]bool{}
	for path, item := range doc.Paths {
		for method, op := range item {
			if method == "parameters" {
				continue
			}
			described[strings.ToUpper(method)+" "+path] = true
			var fields map[string]any
			if err := op.Decode(&fields); err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
			if fields["operationId"] == nil || fields["responses"] == nil || fields["summary"] == nil {
				t.Errorf("%s %s: want summary, operationId and responses", method, path)
			}
		}
	}
	s := New(&nopStore{}, Options{})
	routes := map[string]bool{}
	for _, rt := range s.routes {
		p := rt.pattern()
		if slices.Contains(pageRoutes, p) {
			continue
		}
		routes[p] = true
		if !described[p] {
			t.Errorf("route %s is not in docs/openapi.yaml", p)
		}
	}
	for p := range described {
		if !routes[p] {
			t.Errorf("docs/openapi.yaml describes %s, which the server does not have", p)
		}
	}
	if len(routes) < 10 {
		t.Errorf("only %d routes: %v", len(routes), routes)
	}
}

// nopStore satisfies Store for tests that build a server without using it.
type nopStore struct{ Store }
