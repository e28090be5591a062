package cli

import (
	"fmt"

	"github.com/daguq/daguq/executor"
)

// configFlags spells the config keys of an executor's errors as its flags.
var _ executor.Names = (*configFlags)(nil)

// flagFor is the flag that gave key: its own, or the one in flagOf. A key
// with no flag, or given by --with and not by its flag, has none: the error
// names it as the user wrote it in --with.
func (c *configFlags) flagFor(key string) (string, bool) {
	if f, ok := c.flagOf[key]; ok {
		return f, true
	}
	if !c.hasFlag(key) || c.fromWith[key] && !c.set(key) {
		return "", false
	}
	return flagName(key), true
}

func (c *configFlags) hasFlag(key string) bool {
	for _, f := range c.fields {
		if f.Name == key {
			return true
		}
	}
	return false
}

// Key is the flag of key: --batch-size.
func (c *configFlags) Key(key string) string {
	if flag, ok := c.flagFor(key); ok {
		return "--" + flag
	}
	return key
}

// Item is item i of a list key: --messages[1], or "--message number 2" when
// the list is the repeated flag.
func (c *configFlags) Item(key string, i int) string {
	if f, ok := c.flagOf[key]; ok {
		return fmt.Sprintf("--%s number %d", f, i+1)
	}
	return fmt.Sprintf("%s[%d]", c.Key(key), i)
}

// Setting is the flag that gives key value: --raw, --run ./handle.sh. A
// flag overrides --with, so it is the advice even for a key --with gave.
func (c *configFlags) Setting(key, value string) string {
	if !c.hasFlag(key) {
		return executor.WithKeys{}.Setting(key, value)
	}
	if fl := c.flags.Lookup(flagName(key)); fl != nil && fl.NoOptDefVal == value {
		return "--" + fl.Name
	}
	return "--" + flagName(key) + " " + value
}
