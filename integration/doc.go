// Package integration holds end-to-end tests of daguq: the built daguq binary
// as real OS processes on one SQLite file, the example DAGs of dags/ and their
// handler scripts, and, with the build tag "integration" and DAGU_BIN set, a
// real Dagu server running those DAGs:
//
//	go test ./integration/                              # always (part of make test)
//	DAGU_BIN=/path/to/dagu make test-integration        # also the Dagu server suite
//
// The package has no code of its own; see the _test.go files.
package integration
