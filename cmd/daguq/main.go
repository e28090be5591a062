// Command daguq is the daguq command line: durable message queues for Dagu.
package main

import (
	"os"

	"github.com/daguq/daguq/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:]))
}
