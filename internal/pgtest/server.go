package pgtest

import (
	"context"
	"errors"
	"regexp"

	"github.com/jackc/pgx/v5"
)

// ErrNotInstalled is StartServer's error when no PostgreSQL binaries are
// found; HowToEnable says how to install them.
var ErrNotInstalled = errNotInstalled

// StartServer is NewServer for a program that is not a test (the benchmarks
// in bench/): it runs initdb in a temporary directory and starts a server on
// a free loopback port, with the tests' settings (fsync, synchronous_commit
// and full_page_writes off) overridden by settings ("name=value"). Close
// removes it; it also stops when this process dies.
func StartServer(settings ...string) (*Server, error) {
	c, err := startCluster(settings)
	if err != nil {
		return nil, err
	}
	return &Server{c: c}, nil
}

// URL is the superuser's URL of database on the server.
func (s *Server) URL(database string) string {
	u := *s.c.base
	u.Path = "/" + database
	return u.String()
}

var plainName = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// CreateDatabase makes an empty database, or a copy of template when it is
// not empty (nobody may be connected to the template). Names are lower-case
// letters, digits and '_'.
func (s *Server) CreateDatabase(name, template string) error {
	return s.c.createDatabase(name, template)
}

func (c *cluster) createDatabase(name, template string) error {
	if !plainName.MatchString(name) || template != "" && !plainName.MatchString(template) {
		return errors.New("pgtest: database names are lower-case letters, digits and '_'")
	}
	return c.admin(func(ctx context.Context, conn *pgx.Conn) error {
		stmt := "CREATE DATABASE " + name // checked above: no quoting needed
		if template != "" {
			stmt += " TEMPLATE " + template
		}
		_, err := conn.Exec(ctx, stmt)
		return err
	})
}

// DropDatabase drops a database, ending its sessions; a missing one is no
// error.
func (s *Server) DropDatabase(name string) error { return s.c.dropDatabase(name) }

func (c *cluster) dropDatabase(name string) error {
	if !plainName.MatchString(name) {
		return errors.New("pgtest: database names are lower-case letters, digits and '_'")
	}
	return c.admin(func(ctx context.Context, conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		return err
	})
}

// DatabaseSize is the database's size on disk, in bytes.
func (s *Server) DatabaseSize(name string) (int64, error) {
	var n int64
	err := s.c.admin(func(ctx context.Context, conn *pgx.Conn) error {
		return conn.QueryRow(ctx, "SELECT pg_database_size($1)", name).Scan(&n)
	})
	return n, err
}

// Version is the server's version, as SHOW server_version gives it.
func (s *Server) Version() (string, error) {
	var v string
	err := s.c.admin(func(ctx context.Context, conn *pgx.Conn) error {
		return conn.QueryRow(ctx, "SHOW server_version").Scan(&v)
	})
	return v, err
}

// Close stops the server of StartServer and removes its directory.
func (s *Server) Close() { s.c.stop() }

// PID is the server's main process (the postmaster): its CPU time with its
// children's is the server's.
func (s *Server) PID() int { return s.c.cmd.Process.Pid }
