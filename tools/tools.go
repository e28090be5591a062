//go:build tools

// Package tools pins the versions of the developer tools the Makefile runs,
// so every checkout lints with the same staticcheck. It is its own module and
// builds nothing into daguq.
package tools

import (
	_ "honnef.co/go/tools/cmd/staticcheck"
)
