package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/daguq/daguq/queuestore"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Options tune a Store. The zero value means the defaults.
type Options struct {
	// MaxAttempts is the default number of deliveries before a message goes
	// to the dead letter state, for messages enqueued without their own.
	// Default 5.
	MaxAttempts int
	// AckRetention keeps acked messages for this long; zero deletes them at
	// ack.
	AckRetention time.Duration
	// Backoff gives the retry delay after the attempt-th failed delivery.
	// Default: queuestore.ExponentialBackoff(time.Second, time.Hour).
	Backoff func(attempt int) time.Duration
	// Now is the clock. Default time.Now. Every time the store writes comes
	// from it, as in the SQLite store, so hosts should keep their clocks in
	// sync (NTP): a lease's end is the claimer's now plus the lease.
	Now func() time.Time
	// MaxConns caps the connection pool. Default: pool_max_conns from the
	// URL, else the larger of 4 and the number of CPUs.
	MaxConns int32
	// VacuumEvery makes the store VACUUM its hot tables itself, in the
	// background, after it acked this many messages (a burst need not
	// wait for autovacuum's next round; docs/postgres.md). Default 20,000;
	// negative: never, autovacuum only.
	VacuumEvery int
	// ConnectTimeout bounds each connection attempt. Default:
	// connect_timeout from the URL, else 10s.
	ConnectTimeout time.Duration
	// ReconnectFor is how long a transaction keeps trying while the server
	// cannot be reached (a restart, a failover) before it fails. Default 1
	// minute; negative: it fails at once. Open does not wait: a server
	// that cannot be reached when the store opens fails it.
	ReconnectFor time.Duration
	// ReconnectNotice, when set, is told when the store finds the server
	// unreachable and when it reaches it again: a line each, once per
	// outage.
	ReconnectNotice io.Writer

	// tracer, when set, sees every statement and batch the store's
	// connections send (roundtrips_test.go).
	tracer pgx.QueryTracer
}

func (o Options) withDefaults() Options {
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 5
	}
	if o.Backoff == nil {
		o.Backoff = queuestore.ExponentialBackoff(time.Second, time.Hour)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.VacuumEvery == 0 {
		o.VacuumEvery = defaultVacuumEvery
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 10 * time.Second
	}
	if o.ReconnectFor == 0 {
		o.ReconnectFor = time.Minute
	}
	return o
}

// Store is a daguq message store in a PostgreSQL database.
type Store struct {
	*queuestore.PoolKeeper // pools, in this database's tables (pool.go)

	pool     *pgxpool.Pool
	opts     Options
	describe string   // the URL without its password
	secrets  []string // texts no error may carry (the password)

	listens      bool            // LISTEN for wakeups (daguq_listen, notify.go)
	listenConfig *pgx.ConnConfig // the listening connection's settings
	notifier     notifier
	listener     listener
	chores       chores
	outage       outage

	mu            sync.Mutex
	nextLeaseSwep map[string]time.Time // per queue: when to drop finished leases next
	nextAckPurge  map[string]time.Time // per queue: when to purge retained acks next

	nextFloorRaise  map[string]time.Time // per queue: when a claim raises the ready floor next (floor.go)
	nextFullPromote map[string]time.Time // per queue: when a claim walks due messages from the bottom next
	promoteCursor   map[string]int64     // per queue: where a claim's walk of due messages starts

	limitSeen queuestore.QueueFlags // per queue: the last claim found an in-flight limit
}

var _ queuestore.Backend = (*Store)(nil)

// sessionDefaults are set on the store's connections unless the URL sets
// them: a transaction of this store never idles (it runs its statements
// back to back), so a session idle in one for a minute is a process that
// hung, and the server ends it rather than keep rows locked and dead rows
// unvacuumable (docs/postgres.md).
var sessionDefaults = map[string]string{
	"application_name":                    "daguq",
	"idle_in_transaction_session_timeout": "60000",
}

// Open connects to the PostgreSQL database that connString names (a
// postgres:// or postgresql:// URL, or key=value settings) and migrates its
// schema to the newest version. No error it returns carries the password.
func Open(connString string, opts Options) (*Store, error) {
	secrets := passwordsOf(connString)
	describe := Redact(connString)
	fail := func(err error) error {
		return scrub(fmt.Errorf("open database %s: %w", describe, err), secrets)
	}
	if strings.TrimSpace(connString) == "" {
		return nil, fmt.Errorf("%w: database URL is empty", queuestore.ErrInvalid)
	}
	opts = opts.withDefaults()
	cfg, err := pgxpool.ParseConfig(connString)
	if err != nil {
		return nil, fail(fmt.Errorf("%w: %v", queuestore.ErrInvalid, err))
	}
	listens, err := takeListenParam(cfg.ConnConfig.RuntimeParams)
	if err != nil {
		return nil, fail(err)
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = opts.ConnectTimeout
	}
	if opts.tracer != nil {
		cfg.ConnConfig.Tracer = opts.tracer
	}
	for k, v := range sessionDefaults {
		if _, set := cfg.ConnConfig.RuntimeParams[k]; !set {
			cfg.ConnConfig.RuntimeParams[k] = v
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*opts.ConnectTimeout+time.Minute)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fail(err)
	}
	s := &Store{pool: pool, opts: opts, describe: describe, secrets: secrets,
		listens: listens, listenConfig: cfg.ConnConfig.Copy(),
		notifier:      notifier{last: map[string]time.Time{}, queued: map[string]bool{}},
		listener:      listener{wake: map[string]chan struct{}{}},
		nextLeaseSwep: map[string]time.Time{}, nextAckPurge: map[string]time.Time{},
		nextFloorRaise: map[string]time.Time{}, nextFullPromote: map[string]time.Time{}, promoteCursor: map[string]int64{}}
	s.PoolKeeper = queuestore.NewPoolKeeper(poolRows{s})
	s.chores.ctx, s.chores.cancel = context.WithCancel(context.Background())
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, fail(err)
	}
	return s, nil
}

// Describe is the database URL without its password.
func (s *Store) Describe() string { return s.describe }

// ConnPool exposes the connection pool, for callers that want their own
// transaction around EnqueueTx.
func (s *Store) ConnPool() *pgxpool.Pool { return s.pool }

// Close stops the wakeups and closes the connection pool.
func (s *Store) Close() error {
	s.closeWakeups()
	s.closeChores()
	s.pool.Close()
	return nil
}

// ListenParam is the URL setting that turns LISTEN off: daguq_listen=off
// (on by default). Behind PgBouncer in transaction mode a LISTEN does not
// stay on the client's connection; consumers then poll.
const ListenParam = "daguq_listen"

// takeListenParam reads daguq_listen from the settings pgx parsed, and
// removes it: it is daguq's, not a server setting.
func takeListenParam(params map[string]string) (bool, error) {
	v, set := params[ListenParam]
	if !set {
		return true, nil
	}
	delete(params, ListenParam)
	switch strings.ToLower(v) {
	case "on", "true", "1":
		return true, nil
	case "off", "false", "0":
		return false, nil
	}
	return false, fmt.Errorf("%w: %s must be on or off, got %q", queuestore.ErrInvalid, ListenParam, v)
}

func (s *Store) now() int64 { return s.opts.Now().UnixMilli() }

// err is the error a public method returns: never with the password.
func (s *Store) err(err error) error { return scrub(err, s.secrets) }

// SchemaVersion is the newest schema this build knows.
func SchemaVersion() int { return queuestore.NewestMigration(migrationFiles) }

// schemaVersion reads the database's schema version: 0 for a database
// without daguq's tables; ErrNotDaguqDatabase when it has a messages table
// but no record of migrations.
func schemaVersion(ctx context.Context, q querier) (int, error) {
	var migrations, messages bool
	if err := q.QueryRow(ctx, sqlSchemaTables).Scan(&migrations, &messages); err != nil {
		return 0, err
	}
	if !migrations {
		if messages {
			return 0, fmt.Errorf("%w: it has a daguq_messages table but no daguq_schema_migrations", queuestore.ErrNotDaguqDatabase)
		}
		return 0, nil
	}
	var v int
	err := q.QueryRow(ctx, sqlSchemaVersion).Scan(&v)
	return v, err
}

// migrate brings the schema to the newest version. A current database is
// only read. Otherwise one transaction takes a transaction-level advisory
// lock (two processes migrating at once take turns; the second finds the
// work done), checks the version again and applies what is missing.
func (s *Store) migrate(ctx context.Context) error {
	migrations, err := queuestore.LoadMigrations(migrationFiles)
	if err != nil {
		return err
	}
	latest := migrations[len(migrations)-1].Version
	check := func(v int) (bool, error) {
		if v > latest {
			return false, fmt.Errorf("%w: database has version %d, this build knows up to %d: upgrade daguq", queuestore.ErrSchemaTooNew, v, latest)
		}
		return v < latest, nil
	}
	v, err := schemaVersion(ctx, s.pool)
	if err != nil {
		return err
	}
	if need, err := check(v); err != nil || !need {
		return err
	}
	return s.withTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, sqlMigrationLock); err != nil {
			return err
		}
		v, err := schemaVersion(ctx, tx)
		if err != nil {
			return err
		}
		if need, err := check(v); err != nil || !need {
			return err
		}
		if _, err := tx.Exec(ctx, sqlCreateMigrations); err != nil {
			return err
		}
		for _, m := range migrations {
			if m.Version <= v {
				continue
			}
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return fmt.Errorf("migration %d: %w", m.Version, err)
			}
			if _, err := tx.Exec(ctx, sqlRecordMigration, m.Version); err != nil {
				return err
			}
		}
		return nil
	})
}

// Transactions.

// querier runs statements: the pool, or a transaction.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// errRollback ends a transaction without committing and without an error.
var errRollback = errors.New("rollback")

// maxTxTries bounds how often withTx runs a transaction that failed with a
// deadlock or a serialization failure.
const maxTxTries = 10

// withTx runs fn in a READ COMMITTED transaction and commits it. A deadlock
// (two finishes and a purge locking rows in different orders) or a
// serialization failure runs fn again after a short pause, so fn must reset
// what it returns; so does a connection that broke before the commit
// (reconnect.go). A commit whose connection broke returns
// queuestore.ErrOutcomeUnknown.
func (s *Store) withTx(ctx context.Context, fn func(context.Context, pgx.Tx) error) error {
	return s.runTx(ctx, once, fn)
}

// withRepeatableTx is withTx for a transaction that may run twice: it runs
// again also after a commit whose connection broke.
func (s *Store) withRepeatableTx(ctx context.Context, fn func(context.Context, pgx.Tx) error) error {
	return s.runTx(ctx, repeatable, fn)
}

// withBatches is withRepeatableTx for a transaction sent in batches
// (batchTx).
func (s *Store) withBatches(ctx context.Context, fn func(context.Context, *batchTx) error) error {
	return s.retryTx(ctx, repeatable, func() error { return s.tryBatches(ctx, fn) })
}

func (s *Store) runTx(ctx context.Context, kind txKind, fn func(context.Context, pgx.Tx) error) error {
	return s.retryTx(ctx, kind, func() error { return s.tryTx(ctx, fn) })
}

// retryTx runs a transaction (try) until it commits, or fails in a way
// that running it again cannot mend.
func (s *Store) retryTx(ctx context.Context, kind txKind, try func() error) error {
	pause := time.Millisecond
	var rc reconnecting
	for n := 1; ; n++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := try()
		var broken *brokenError
		switch {
		case err == nil:
			s.noteCounted() // most transactions record count changes
			if !rc.since.IsZero() {
				s.outage.end(s)
			}
			return nil
		case errors.As(err, &broken):
			if err := rc.wait(ctx, s, kind, broken); err != nil {
				return err
			}
		case n < maxTxTries && retryable(err):
			time.Sleep(pause/2 + rand.N(pause))
			pause = min(2*pause, 50*time.Millisecond)
		default:
			return err
		}
	}
}

func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// due reports whether a periodic chore for queue should run now, and if so
// schedules the next one.
func (s *Store) due(next map[string]time.Time, queue string, nowMs int64, every time.Duration) bool {
	now := time.UnixMilli(nowMs)
	s.mu.Lock()
	defer s.mu.Unlock()
	if now.Before(next[queue]) {
		return false
	}
	next[queue] = now.Add(every)
	return true
}

func msTime(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// Passwords.

// Redact is connString without its password: the userinfo password and the
// password and sslpassword settings of a URL (of any scheme), or password=
// in key=value settings, become xxxxx.
func Redact(connString string) string { return scrubText(connString, passwordsOf(connString)) }

// passwordsOf lists the secret texts of a connection string, as written and
// as decoded, longest first.
func passwordsOf(connString string) []string {
	var out []string
	add := func(s string) {
		if s == "" || s == "xxxxx" {
			return
		}
		out = append(out, s)
		if dec, err := url.PathUnescape(s); err == nil && dec != s {
			out = append(out, dec)
		}
		if dec, err := url.QueryUnescape(s); err == nil && dec != s {
			out = append(out, dec)
		}
	}
	if _, rest, isURL := strings.Cut(connString, "://"); isURL {
		authority, query, _ := strings.Cut(rest, "?")
		// The password ends at the last '@' of the authority; it may hold
		// '/' or '@' when written unescaped.
		if at := strings.LastIndex(authority, "@"); at >= 0 {
			if _, pw, ok := strings.Cut(authority[:at], ":"); ok {
				add(pw)
			}
		}
		for _, kv := range strings.Split(query, "&") {
			k, v, _ := strings.Cut(kv, "=")
			if k == "password" || k == "sslpassword" {
				add(v)
			}
		}
	} else {
		for _, field := range strings.Fields(connString) {
			k, v, _ := strings.Cut(field, "=")
			if k == "password" || k == "sslpassword" {
				add(strings.Trim(v, "'"))
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// scrubText replaces every secret in text with xxxxx.
func scrubText(text string, secrets []string) string {
	for _, s := range secrets {
		text = strings.ReplaceAll(text, s, "xxxxx")
	}
	return text
}

// scrub is err, or when its text holds a secret, an error without it.
func scrub(err error, secrets []string) error {
	if err == nil || len(secrets) == 0 {
		return err
	}
	text := err.Error()
	clean := scrubText(text, secrets)
	if clean == text {
		return err
	}
	return &scrubbedError{text: clean, err: err}
}

// scrubbedError is an error whose text had a password: it says the text
// without it, and matches the sentinels the original matched (errors.Is),
// without handing out the original (no Unwrap).
type scrubbedError struct {
	text string
	err  error
}

func (e *scrubbedError) Error() string { return e.text }

func (e *scrubbedError) Is(target error) bool { return errors.Is(e.err, target) }
