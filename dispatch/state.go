package dispatch

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"
)

// record is one batch the dispatcher handed (or is about to hand) to a run.
// It is written before the start, so that after a crash or a restart the
// run is looked up by its id before any second start.
type record struct {
	Queue      string    `json:"queue"`
	DAG        string    `json:"dag"`
	DAGName    string    `json:"dag_name"`
	Token      string    `json:"token"`
	RunID      string    `json:"run_id"`
	Count      int       `json:"count"`
	RecordedAt time.Time `json:"recorded_at"`
}

// stateFile keeps the records in one small JSON file, rewritten whole
// (write a temporary file, fsync, rename) on every change.
type stateFile struct {
	path string
	mu   sync.Mutex
	recs map[string]record // by run id
}

type stateDoc struct {
	Version int      `json:"version"`
	Batches []record `json:"batches"`
}

func openState(path string) (*stateFile, error) {
	s := &stateFile{path: path, recs: map[string]record{}}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("dispatch state: %w", err)
	}
	var doc stateDoc
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("dispatch state %q: %w", path, err)
	}
	if doc.Version != 1 {
		return nil, fmt.Errorf("dispatch state %q: version %d, want 1", path, doc.Version)
	}
	for _, r := range doc.Batches {
		s.recs[r.RunID] = r
	}
	return s, nil
}

// all returns the records, oldest first.
func (s *stateFile) all() []record {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]record, 0, len(s.recs))
	for _, r := range s.recs {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].RecordedAt.Before(out[j].RecordedAt) })
	return out
}

func (s *stateFile) put(r record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recs[r.RunID] = r
	return s.saveLocked(true)
}

func (s *stateFile) remove(runID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.recs[runID]; !ok {
		return nil
	}
	delete(s.recs, runID)
	// No fsync: a removal lost in a crash brings back a record whose lease
	// is finished, which the next start drops.
	return s.saveLocked(false)
}

func (s *stateFile) saveLocked(durable bool) error {
	doc := stateDoc{Version: 1, Batches: make([]record, 0, len(s.recs))}
	for _, r := range s.recs {
		doc.Batches = append(doc.Batches, r)
	}
	sort.Slice(doc.Batches, func(i, j int) bool { return doc.Batches[i].RunID < doc.Batches[j].RunID })
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(s.path), filepath.Base(s.path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("dispatch state: %w", err)
	}
	_, err = tmp.Write(append(data, '\n'))
	if err == nil && durable {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), s.path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("dispatch state: %w", err)
	}
	return nil
}
