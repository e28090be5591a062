package queuestore

import (
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestOpenCreatesPrivateFileAndReopens(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sub", "dir", "q.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := info.Mode().Perm(); mode != 0o600 {
		t.Errorf("file mode = %o, want 600", mode)
	}
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	var version, appID int
	s.DB().QueryRow(`PRAGMA user_version`).Scan(&version)
	s.DB().QueryRow(`PRAGMA application_id`).Scan(&appID)
	if version != SchemaVersion() || appID != applicationID {
		t.Errorf("user_version %d application_id %#x, want %d and %#x", version, appID, SchemaVersion(), applicationID)
	}
	var mode string
	s.DB().QueryRow(`PRAGMA journal_mode`).Scan(&mode)
	if mode != "wal" {
		t.Errorf("journal_mode = %q, want wal", mode)
	}
}

func TestOpenRejectsBadPaths(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()

	otherDB := filepath.Join(dir, "other.db")
	db, err := sql.Open("sqlite3", otherDB)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE users (id INTEGER)`); err != nil {
		t.Fatal(err)
	}
	db.Close()

	oneByte := filepath.Join(dir, "one-byte")
	os.WriteFile(oneByte, []byte("x"), 0o600)

	textFile := filepath.Join(dir, "notes.txt")
	os.WriteFile(textFile, []byte(strings.Repeat("not a database\n", 100)), 0o600)

	newer := filepath.Join(dir, "newer.db")
	s, err := Open(newer, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.DB().Exec(`PRAGMA user_version = 999`)
	s.Close()

	readOnlyDir := filepath.Join(dir, "ro")
	os.Mkdir(readOnlyDir, 0o500)

	tests := []struct {
		name string
		path string
		want error
		text string
	}{
		{"empty path", "", ErrInvalid, "database path is empty"},
		{"directory", dir, ErrInvalid, "is a directory"},
		{"another sqlite database", otherDB, ErrNotDaguqDatabase, "application_id"},
		{"a text file", textFile, ErrNotDaguqDatabase, "not a SQLite file"},
		{"a file shorter than a SQLite header", oneByte, ErrNotDaguqDatabase, "not a SQLite file"},
		{"newer schema", newer, ErrSchemaTooNew, "version 999"},
		{"parent is a file", filepath.Join(textFile, "q.db"), nil, "database path"},
	}
	if os.Geteuid() != 0 { // root writes anywhere
		tests = append(tests, struct {
			name string
			path string
			want error
			text string
		}{"unwritable directory", filepath.Join(readOnlyDir, "q.db"), nil, "permission denied"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(tt.path, Options{})
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded, want an error")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("error %q, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.text) {
				t.Errorf("error %q does not mention %q", err, tt.text)
			}
		})
	}
}

func TestValidateQueueName(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"a", "emails", "a.b-c_d", strings.Repeat("x", 128), "0"} {
		if err := ValidateQueueName(name); err != nil {
			t.Errorf("%q: %v", name, err)
		}
	}
	// A name starts with a letter or digit: never ".", ".." or a flag.
	for _, name := range []string{"", " ", "a b", "a/b", "ä", "a\n", strings.Repeat("x", 129), "$Q", ".", "..", "-dash", "_x", ".hidden"} {
		err := ValidateQueueName(name)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), QueueNameRule) {
			t.Errorf("%q: error %v, want ErrInvalid naming the rule", name, err)
		}
	}
}

func TestExponentialBackoff(t *testing.T) {
	t.Parallel()
	backoff := ExponentialBackoff(time.Second, 10*time.Second)
	for attempt, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 8 * time.Second, 5: 10 * time.Second, 50: 10 * time.Second} {
		for range 20 {
			got := backoff(attempt)
			if got < want/2 || got >= want {
				t.Fatalf("attempt %d: %s, want in [%s, %s)", attempt, got, want/2, want)
			}
		}
	}
}
