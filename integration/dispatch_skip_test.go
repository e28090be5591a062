//go:build !integration

package integration

import "testing"

// TestDaguDispatch is the dispatcher's real-Dagu suite (dispatch_dagu_test.go),
// built only with the tag "integration".
func TestDaguDispatch(t *testing.T) {
	t.Skip("the dispatcher's Dagu suite needs the build tag integration: DAGU_BIN=/path/to/dagu make test-integration")
}
