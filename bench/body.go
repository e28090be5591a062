package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
)

// bodySize is the size of every message body, newline of the shell queue
// included.
const bodySize = 1024

// idDigits is the width of the decimal id that starts every body.
const idDigits = 10

var padding = bytes.Repeat([]byte("x"), bodySize-idDigits-2)

// body is message id's payload: the id in decimal, a dash, padding. The
// shell-glue queue appends a newline, so it is bodySize-1 bytes long here.
func body(id int) []byte {
	b := make([]byte, 0, bodySize)
	b = fmt.Appendf(b, "%0*d-", idDigits, id)
	return append(b, padding...)
}

// bodyID reads the id back from a body; -1 when the body is not one of ours.
func bodyID(b []byte) int {
	if len(b) < idDigits {
		return -1
	}
	id, err := strconv.Atoi(string(b[:idDigits]))
	if err != nil {
		return -1
	}
	return id
}

// tally counts deliveries per message id.
type tally struct {
	counts  []uint16
	foreign int // deliveries whose body held no id we sent
}

func newTally(n int) *tally { return &tally{counts: make([]uint16, n)} }

func (t *tally) add(id int) {
	if id < 0 || id >= len(t.counts) {
		t.foreign++
		return
	}
	if t.counts[id] < 65535 {
		t.counts[id]++
	}
}

// addFile adds the ids a worker wrote (little-endian uint32 each).
func (t *tally) addFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	for i := 0; i+4 <= len(b); i += 4 {
		t.add(int(binary.LittleEndian.Uint32(b[i:])))
	}
	return nil
}

// summary returns how many distinct ids were delivered and how many
// deliveries were repeats.
func (t *tally) summary() (unique, doubled int) {
	for _, c := range t.counts {
		if c > 0 {
			unique++
			doubled += int(c) - 1
		}
	}
	return unique, doubled
}
