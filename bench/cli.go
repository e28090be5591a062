package main

import "errors"

// cli measures `daguq consume` end to end against the same drain in process.
func (b *bench) cli() error {
	return errors.New("`daguq consume` is not in this build yet")
}
