package pgtest_test

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/daguq/daguq/internal/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// Two tests get two databases of one server, and can use them at once.
func TestNewDatabase(t *testing.T) {
	for _, name := range []string{"a", "b"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			url := pgtest.NewDatabase(t)
			conn, err := pgx.Connect(context.Background(), url)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(context.Background())
			if _, err := conn.Exec(context.Background(), `CREATE TABLE only_here (x int)`); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A database reached through PgBouncer in transaction mode takes
// statements (in pgx's simple protocol) and transactions.
func TestNewPgBouncerDatabase(t *testing.T) {
	t.Parallel()
	url := pgtest.NewPgBouncerDatabase(t) + "?default_query_exec_mode=simple_protocol"
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE TABLE t (x int)`); err != nil {
		t.Fatal(err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO t VALUES ($1)`, 7); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	var x int
	if err := conn.QueryRow(ctx, `SELECT x FROM t`).Scan(&x); err != nil || x != 7 {
		t.Fatalf("read back %d, %v", x, err)
	}
}

// A server started for a program other than a test takes its settings,
// copies a database from a template, measures and drops databases.
func TestStartServer(t *testing.T) {
	srv, err := pgtest.StartServer("work_mem=7MB")
	if errors.Is(err, pgtest.ErrNotInstalled) && os.Getenv("CI") == "" {
		t.Skip(pgtest.HowToEnable)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx := context.Background()
	if err := srv.CreateDatabase("filled", ""); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, srv.URL("filled"))
	if err != nil {
		t.Fatal(err)
	}
	var workMem string
	if err := conn.QueryRow(ctx, `SHOW work_mem`).Scan(&workMem); err != nil || workMem != "7MB" {
		t.Errorf("work_mem = %q (%v), want the 7MB given", workMem, err)
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE t AS SELECT 42 AS x`); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	if err := srv.CreateDatabase("copy", "filled"); err != nil {
		t.Fatal(err)
	}
	conn, err = pgx.Connect(ctx, srv.URL("copy"))
	if err != nil {
		t.Fatal(err)
	}
	var x int
	if err := conn.QueryRow(ctx, `SELECT x FROM t`).Scan(&x); err != nil || x != 42 {
		t.Errorf("the copy has x = %d (%v), want the template's 42", x, err)
	}
	conn.Close(ctx)
	if n, err := srv.DatabaseSize("copy"); err != nil || n <= 0 {
		t.Errorf("DatabaseSize = %d, %v", n, err)
	}
	for range 2 { // the second drop finds nothing to drop
		if err := srv.DropDatabase("copy"); err != nil {
			t.Fatal(err)
		}
	}
	if err := srv.CreateDatabase("bad-name", ""); err == nil {
		t.Error("a database name with '-' was taken")
	}
}
