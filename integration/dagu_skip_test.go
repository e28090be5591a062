//go:build !integration

package integration

import "testing"

// TestDaguServer is the Dagu server suite (dagu_server_test.go), built only
// with the tag "integration".
func TestDaguServer(t *testing.T) {
	t.Skip("the Dagu server suite needs the build tag integration: DAGU_BIN=/path/to/dagu make test-integration")
}
