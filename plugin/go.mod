module github.com/daguq/daguq/plugin

go 1.26.8

require (
	github.com/dagucloud/dagu v0.0.0-20260506150832-59d92fc196a0
	github.com/daguq/daguq v0.0.0
	github.com/spf13/cobra v1.10.2
)

// The plugin always builds against the executors of the same checkout.
replace github.com/daguq/daguq => ../
