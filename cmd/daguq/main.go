// Command daguq is the daguq command line: durable message queues for Dagu.
package main

import (
	"os"

	"github.com/daguq/daguq/internal/cli"
	"github.com/daguq/daguq/internal/malloctune"
)

func main() {
	malloctune.Apply() // SQLite under cgo: see docs/performance.md
	os.Exit(cli.Main(os.Args[1:]))
}
