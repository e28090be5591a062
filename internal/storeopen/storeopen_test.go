package storeopen_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/daguq/daguq/internal/storeopen"
	"github.com/daguq/daguq/queuestore"
)

func TestRedact(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ in, want string }{
		{"/var/lib/daguq/q.db", "/var/lib/daguq/q.db"},
		{"postgres://u:pw@h:5432/db", "postgres://u:xxxxx@h:5432/db"},
		{"postgresql://u:p%40ss@h/db?sslmode=disable", "postgresql://u:xxxxx@h/db?sslmode=disable"},
		{"postgres://u@h/db?password=pw&sslmode=require", "postgres://u@h/db?password=xxxxx&sslmode=require"},
		{"postgres://h/db", "postgres://h/db"},
		{"mysql://u:pw@h/db", "mysql://u:xxxxx@h/db"},
		{"postgres://u:p/w@x@h/db", "postgres://u:xxxxx@h/db"},
	} {
		if got := storeopen.Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestOpenPicksTheBackend(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		db       string
		postgres bool
		url      bool
	}{
		{"/x/q.db", false, false},
		{"q.db", false, false},
		{"postgres://h/db", true, true},
		{"PostgreSQL://h/db", true, true},
		{"sqlite://x", false, true},
		{"weird name://x", false, false},
	} {
		if got := storeopen.IsPostgres(tt.db); got != tt.postgres {
			t.Errorf("IsPostgres(%q) = %v", tt.db, got)
		}
		if got := storeopen.IsURL(tt.db); got != tt.url {
			t.Errorf("IsURL(%q) = %v", tt.db, got)
		}
	}
	s, err := storeopen.Open(filepath.Join(t.TempDir(), "q.db"), storeopen.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.(*queuestore.Store); !ok {
		t.Fatalf("a file path opened %T", s)
	}
	s.Close()
	_, err = storeopen.Open("redis://u:pw@h/0", storeopen.Options{})
	if !errors.Is(err, storeopen.ErrBackendUnavailable) || strings.Contains(err.Error(), "pw") {
		t.Fatalf("a redis URL: %v, want ErrBackendUnavailable without the password", err)
	}
	if v := storeopen.SchemaVersion("postgres://h/db"); v < 1 {
		t.Fatalf("PostgreSQL schema version %d", v)
	}
}
