package queuestore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Space. SQLite keeps the pages that acked messages free inside the file for
// reuse, so a file does not shrink after a drain. New files are created with
// auto_vacuum=INCREMENTAL; a store then gives free pages back to the file
// system in small steps after acks (Reclaim), while other processes go on
// using the file. A file made before that needs one Vacuum.

// A nearly full disk. The WAL grows until a commit takes it past the
// autocheckpoint size (16 MB, chosen for speed); on a disk with less room
// than that, the WAL takes the space that acks free and the file can no
// longer be written (a soak with a 4 MB disk found it). So the store checks
// the free space at most every diskCheckEvery and checkpoints every 100 pages
// while less than lowDiskBytes is free.
const (
	diskCheckEvery = time.Second
	lowDiskBytes   = 64 << 20
)

// watchDisk switches the autocheckpoint size with the free disk space.
func (s *Store) watchDisk(ctx context.Context) {
	if !s.due(s.nextDiskCheck, "", s.now(), diskCheckEvery) {
		return
	}
	free := freeDiskBytes(filepath.Dir(s.path))
	low := free >= 0 && free < lowDiskBytes
	s.mu.Lock()
	change := low != s.lowDisk
	s.lowDisk = low
	s.mu.Unlock()
	if change {
		stmt := sqlAutoCheckpoint
		if low {
			stmt = sqlAutoCheckpointLowDisk
		}
		s.db.ExecContext(context.WithoutCancel(ctx), stmt)
	}
}

// Reclaiming after acks: at most every reclaimEvery per store, and only when
// more than reclaimAbove pages are free, reclaimStep pages per transaction.
const (
	reclaimEvery = 10 * time.Second
	reclaimAbove = 1024 // 4 MiB of 4 KiB pages
	reclaimStep  = 512
)

// Space is how a database file uses its bytes.
type Space struct {
	FileBytes   int64 // the database file and its WAL
	FreePages   int64 // pages inside the file that hold nothing
	PageSize    int64
	Incremental bool // auto_vacuum=INCREMENTAL: Reclaim can give free pages back
}

// Space reports the file's size and free pages.
func (s *Store) Space(ctx context.Context) (Space, error) {
	var sp Space
	var mode int
	for _, q := range []struct {
		stmt string
		dest any
	}{{`PRAGMA freelist_count`, &sp.FreePages}, {`PRAGMA page_size`, &sp.PageSize}, {`PRAGMA auto_vacuum`, &mode}} {
		if err := s.readRow(ctx, q.stmt, nil, q.dest); err != nil {
			return Space{}, fmt.Errorf("space of %s: %w", s.path, err)
		}
	}
	sp.Incremental = mode == 2
	info, err := os.Stat(s.path)
	if err != nil {
		return Space{}, fmt.Errorf("space of %s: %w", s.path, err)
	}
	sp.FileBytes = info.Size()
	if wal, err := os.Stat(s.path + "-wal"); err == nil {
		sp.FileBytes += wal.Size()
	}
	return sp, nil
}

// Reclaim gives up to pages free pages back to the file system, in one short
// write transaction (incremental_vacuum). It does nothing on a file without
// auto_vacuum=INCREMENTAL (see Vacuum). It returns how many pages went.
func (s *Store) Reclaim(ctx context.Context, pages int) (int64, error) {
	before, err := s.Space(ctx)
	if err != nil || !before.Incremental || before.FreePages == 0 {
		return 0, err
	}
	err = s.withTx(ctx, func(ctx context.Context, tx querier) error {
		// PRAGMA takes no bound parameters; pages is an integer.
		rows, err := tx.QueryContext(ctx, fmt.Sprintf(`PRAGMA incremental_vacuum(%d)`, pages))
		if err != nil {
			return err
		}
		for rows.Next() {
		}
		rows.Close()
		return rows.Err()
	})
	if err != nil {
		return 0, fmt.Errorf("reclaim free pages of %s: %w", s.path, err)
	}
	after, err := s.Space(ctx)
	if err != nil {
		return 0, err
	}
	return before.FreePages - after.FreePages, nil
}

// maybeReclaim runs a Reclaim step when it is due and enough pages are free.
// Errors are left for the next time: reclaiming space is never worth
// failing an ack for.
func (s *Store) maybeReclaim(ctx context.Context) {
	if s.due(s.nextReclaim, "", s.now(), reclaimEvery) {
		if sp, err := s.Space(ctx); err == nil && sp.Incremental && sp.FreePages > reclaimAbove {
			s.Reclaim(ctx, reclaimStep)
		}
	}
}

// Vacuum deletes the bodies acks listed for deleting together (dropBodies),
// for every queue: one that got no more acks keeps its list otherwise. Then
// it rewrites the whole file without its free pages, and switches a file
// made before auto_vacuum=INCREMENTAL to it. It holds the write lock for as
// long as the copy takes (seconds per GB): run it at a quiet time.
func (s *Store) Vacuum(ctx context.Context) (before, after Space, err error) {
	if before, err = s.Space(ctx); err != nil {
		return before, after, err
	}
	err = s.withTx(ctx, func(ctx context.Context, tx querier) error {
		for _, stmt := range []string{sqlDeleteAllBodyTrash, sqlEmptyAllBodyTrash} {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return before, after, fmt.Errorf("vacuum %s: delete listed bodies: %w", s.path, err)
	}
	err = s.retryBusy(ctx, func() error {
		_, err := s.db.ExecContext(ctx, `PRAGMA auto_vacuum = INCREMENTAL; VACUUM; PRAGMA wal_checkpoint(TRUNCATE)`)
		return err
	})
	if err != nil {
		return before, after, fmt.Errorf("vacuum %s: %w", s.path, err)
	}
	after, err = s.Space(ctx)
	return before, after, err
}
