package executor

import (
	"os"
	"testing"

	"github.com/daguq/daguq/internal/pgtest"
)

// TestMain stops the PostgreSQL test server of postgres_test.go, if a test
// started it.
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
