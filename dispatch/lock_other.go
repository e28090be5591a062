//go:build !unix

package dispatch

import "os"

// lockFile: no lock outside Unix; run one dispatcher per state file.
func lockFile(path string) (*os.File, error) {
	return os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
}
