package main

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/daguq/daguq/queuestore/postgres"
)

// The systems measured on PostgreSQL (pg.go runs them), each handed the URL
// of a database of its own on the bench's server.
var pgSystems = []system{daguqPGSystem{}, riverPGSystem{}, rawPGSystem{}}

// daguqPGSystem is the product's PostgreSQL store through its public API,
// with its default options (pool size, its own vacuum every 20,000 acks).
type daguqPGSystem struct{}

func (daguqPGSystem) name() string { return "daguq (PostgreSQL)" }

func (daguqPGSystem) create(ctx context.Context, url string) error {
	st, err := postgres.Open(url, postgres.Options{})
	if err != nil {
		return err
	}
	return st.Close()
}

func (daguqPGSystem) open(ctx context.Context, url string) (queue, error) {
	st, err := postgres.Open(url, postgres.Options{})
	if err != nil {
		return nil, err
	}
	return &daguqQueue{st: st}, nil
}

// riverPGSystem is River with its pgx driver (riverpgxv5), set up as on
// SQLite (sys_river.go): MaxWorkers = batch, the minimum FetchCooldown.
// Its LISTEN/NOTIFY is on, as River's default on PostgreSQL.
type riverPGSystem struct{}

func (riverPGSystem) name() string { return "River (PostgreSQL)" }

func (riverPGSystem) jobQueue() {}

func (riverPGSystem) create(ctx context.Context, url string) error {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return err
	}
	defer pool.Close()
	m, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Logger: quietLogger()})
	if err != nil {
		return err
	}
	_, err = m.Migrate(ctx, rivermigrate.DirectionUp, nil)
	return err
}

func (riverPGSystem) open(ctx context.Context, url string) (queue, error) {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return nil, err
	}
	driver := riverpgxv5.New(pool)
	client, err := river.NewClient(driver, &river.Config{Logger: quietLogger()})
	if err != nil {
		pool.Close()
		return nil, err
	}
	return &riverQueue[pgx.Tx]{driver: driver, inserter: client,
		closeDB: func() error { pool.Close(); return nil },
		unfinished: func(ctx context.Context) (int64, error) {
			var n int64
			err := pool.QueryRow(ctx, riverUnfinished).Scan(&n)
			return n, err
		}}, nil
}
