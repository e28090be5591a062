package main

import (
	"context"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/daguq/daguq/internal/pgtest"
)

// storage keeps a run's databases, by name: SQLite files in the scratch
// directory, or databases on the bench's PostgreSQL server. Systems are
// handed what locate returns (a file path or a URL).
type storage interface {
	locate(name string) string
	// fresh removes the database and makes an empty one, for a system's
	// create; it returns where it is.
	fresh(name string) (string, error)
	// remove drops the database; a missing one is no error.
	remove(name string) error
	// clone makes dst a copy of src, which nobody has open.
	clone(dst, src string) error
	// settle readies a filled or drained database to be copied and
	// measured, as a store at rest would be (SQLite: its WAL checkpointed
	// into the file; PostgreSQL: VACUUM ANALYZE, which autovacuum would do
	// in time), and returns its size on disk.
	settle(name string) (int64, error)
}

// files is the SQLite storage: one file (and its WAL) per name.
type files struct{ dir string }

func (f files) locate(name string) string { return filepath.Join(f.dir, name+".db") }

func (f files) fresh(name string) (string, error) {
	f.remove(name)
	return f.locate(name), nil
}

func (f files) remove(name string) error {
	removeDB(f.locate(name))
	return nil
}

func (f files) clone(dst, src string) error { return copyFile(f.locate(dst), f.locate(src)) }

func (f files) settle(name string) (int64, error) {
	if err := checkpoint(f.locate(name)); err != nil {
		return 0, err
	}
	return fileSize(f.locate(name)), nil
}

// databases is the PostgreSQL storage: one database per name on srv.
type databases struct{ srv *pgtest.Server }

// dbName maps a bench name ("template-0") to a database name.
func dbName(name string) string {
	return "bench_" + strings.NewReplacer("-", "_", ".", "_").Replace(name)
}

func (d databases) locate(name string) string { return d.srv.URL(dbName(name)) }

func (d databases) fresh(name string) (string, error) {
	if err := d.remove(name); err != nil {
		return "", err
	}
	return d.locate(name), d.srv.CreateDatabase(dbName(name), "")
}

func (d databases) remove(name string) error { return d.srv.DropDatabase(dbName(name)) }

func (d databases) clone(dst, src string) error {
	if err := d.srv.DropDatabase(dbName(dst)); err != nil {
		return err
	}
	return d.srv.CreateDatabase(dbName(dst), dbName(src))
}

func (d databases) settle(name string) (int64, error) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, d.locate(name))
	if err != nil {
		return 0, err
	}
	_, err = conn.Exec(ctx, "VACUUM ANALYZE")
	conn.Close(ctx)
	if err != nil {
		return 0, err
	}
	return d.srv.DatabaseSize(dbName(name))
}
