package queuestore

import (
	"fmt"
	"io/fs"
	"sort"
)

// Migration is one schema version's SQL, from a file named
// NNNN_name.sql.
type Migration struct {
	Version int
	SQL     string
}

// LoadMigrations reads the migrations in the directory "migrations" of
// files (a backend's embedded files), oldest first.
func LoadMigrations(files fs.FS) ([]Migration, error) {
	entries, err := fs.ReadDir(files, "migrations")
	if err != nil {
		return nil, err
	}
	var out []Migration
	for _, e := range entries {
		var v int
		if _, err := fmt.Sscanf(e.Name(), "%04d_", &v); err != nil {
			return nil, fmt.Errorf("migration file name %q: want NNNN_name.sql", e.Name())
		}
		b, err := fs.ReadFile(files, "migrations/"+e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Version: v, SQL: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// NewestMigration is the newest schema version in files' migrations, 0
// when they cannot be read.
func NewestMigration(files fs.FS) int {
	m, err := LoadMigrations(files)
	if err != nil || len(m) == 0 {
		return 0
	}
	return m[len(m)-1].Version
}
