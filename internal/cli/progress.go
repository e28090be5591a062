package cli

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/daguq/daguq/executor"
)

// isTerminal reports whether w is a terminal that can draw a progress bar
// (not TERM=dumb).
func (a *app) isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd())) && a.getenv("TERM") != "dumb"
}

// barProgress draws an executor's progress as a bar on w: a bar with a
// count, rate and time left when the total is known, a spinner with a
// count when not.
type barProgress struct {
	w    io.Writer
	desc string

	mu   sync.Mutex
	bar  *progressbar.ProgressBar
	unit string
}

var _ executor.Progress = (*barProgress)(nil)

func newBarProgress(w io.Writer, desc string) *barProgress {
	return &barProgress{w: w, desc: desc}
}

func (b *barProgress) Start(total int64, unit string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.bar != nil && b.unit == unit {
		b.bar.ChangeMax64(total)
		return
	}
	opts := []progressbar.Option{
		progressbar.OptionSetWriter(b.w),
		progressbar.OptionSetDescription(b.desc),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100 * time.Millisecond),
		progressbar.OptionShowCount(),
		progressbar.OptionSpinnerType(14),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionSetPredictTime(total > 0),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(b.w) }),
	}
	if unit == "bytes" {
		opts = append(opts, progressbar.OptionShowBytes(true))
	} else {
		opts = append(opts, progressbar.OptionShowIts(), progressbar.OptionSetItsString(unit))
	}
	if total == 0 {
		total = -1
	}
	b.bar, b.unit = progressbar.NewOptions64(total, opts...), unit
}

func (b *barProgress) Set(done int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.bar != nil {
		b.bar.Set64(done)
	}
}

func (b *barProgress) Finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.bar == nil {
		return
	}
	if b.bar.GetMax64() < 0 { // a spinner: Finish would not end the line
		b.bar.Finish()
		fmt.Fprintln(b.w)
	} else {
		b.bar.Finish()
	}
	b.bar = nil
}
