package postgres_test

import (
	"os"
	"testing"

	"github.com/daguq/daguq/internal/pgtest"
)

func TestMain(m *testing.M) {
	if role := os.Getenv(procRoleEnv); role != "" {
		os.Exit(runProcRole(role))
	}
	pgtest.Parallel(8)
	os.Exit(pgtest.Main(m))
}
