package executor

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-viper/mapstructure/v2"

	"github.com/daguq/daguq/queuestore"
)

// Actions of the queue step type.
const (
	ActionConsume = "consume" // claim batches and run the handler on each
	ActionClaim   = "claim"   // lease one batch and print it as JSON
	ActionAck     = "ack"     // finish a claimed batch (or some of its ids) as done
	ActionNack    = "nack"    // finish a claimed batch (or some ids) as failed
	ActionGet     = "get"     // print the messages a live lease holds, by its token
)

// Modes of the consume action.
const (
	ModeDrain = "drain" // until nothing is ready
	ModeOnce  = "once"  // at most one batch
	ModeWatch = "watch" // keep polling until stopped or idle_timeout
)

// Backoff kinds; any Go duration is a fixed backoff.
const (
	BackoffExponential = "exponential"
	BackoffNone        = "none"
)

// fail_on values.
const (
	FailOnNever = "never"
	FailOnDead  = "dead"
	FailOnNack  = "nack"
)

// Limits of the configs, used in the field tables.
const (
	maxBatchSize   = queuestore.MaxClaim
	maxConcurrency = 256
	maxAttemptsCap = 1000
	// The store takes keys up to 1024 bytes; a dedupe_key leaves room for
	// the -INDEX suffix of a bulk enqueue.
	maxGroupBytes     = 1024
	maxDedupeKeyBytes = 1000
)

var (
	consumeOnly = []string{ActionConsume}
	claimLike   = []string{ActionConsume, ActionClaim}
	finishOnly  = []string{ActionAck, ActionNack}
	tokenLike   = []string{ActionAck, ActionNack, ActionGet}
)

// The keys both kinds share.
var (
	queueField = Field{Name: "queue", Type: TypeString, Required: true, MaxLength: 128,
		Description: "Queue name: " + queuestore.QueueNameRule + "."}
	dbField = Field{Name: "db", Type: TypeString,
		Description: "Database: a SQLite file path, or a postgres:// URL (docs/postgres.md). Default: DAGUQ_DB, else $DAGU_HOME/daguq/daguq.db, else $XDG_DATA_HOME/daguq/daguq.db."}
)

var queueFields = []Field{
	queueField,
	{Name: "action", Type: TypeString, Default: ActionConsume,
		Enum:        []string{ActionConsume, ActionClaim, ActionAck, ActionNack, ActionGet},
		Description: "consume: claim batches and run the handler on each; claim: lease one batch and print it as JSON; ack/nack: finish a claimed batch by its token; get: print the messages a live lease still holds, by its token (a DAG run started by `daguq dispatch`)."},
	{Name: "run", Type: TypeStringOrList, Actions: consumeOnly, Verbatim: true,
		Description: "Handler: a command line run with `shell -c`, or a list of words run without a shell. Placeholders {batch_file} {result_file} {batch_id} {queue} {attempt} {batch_size} are substituted. With Dagu's step_types a `$` in a command line reaches the shell; with its Go registry Dagu expands it first (docs/dagu.md, the `$` rule)."},
	{Name: "script", Type: TypeString, Actions: consumeOnly, Verbatim: true,
		Description: "Handler: a script body, written to a temporary file and run as `shell FILE`. Exclusive with run."},
	{Name: "shell", Type: TypeString, Default: "sh", Actions: consumeOnly, Verbatim: true,
		Description: "Program (and arguments, split on spaces) that runs a string `run` (with -c) or a `script` file."},
	{Name: "batch_size", Type: TypeInteger, Default: 10, Min: bound(1), Max: bound(maxBatchSize), Actions: claimLike,
		Description: "Messages per batch at most."},
	{Name: "max_wait", Type: TypeDuration, Default: "0s", Min: bound(0), Max: bound(3600), Actions: consumeOnly,
		Description: "Linger: hold a partial batch (leases kept) until it fills or its oldest message waited this long. 0s: hand over at once."},
	{Name: "max_bytes", Type: TypeInteger, Default: 0, Min: bound(0), Max: bound(1 << 40), Actions: consumeOnly,
		Description: "A batch is complete when its bodies add up to this many bytes. 0: no limit."},
	{Name: "group_by", Type: TypeBoolean, Default: false, Actions: claimLike,
		Description: "One group key per batch (messages enqueued with `group`)."},
	{Name: "group", Type: TypeString, MaxLength: maxGroupBytes, Actions: claimLike,
		Description: "Take only messages of this group key."},
	{Name: "min_priority", Type: TypeInteger, Actions: claimLike,
		Description: "Take only messages with at least this priority."},
	{Name: "max_priority", Type: TypeInteger, Actions: claimLike,
		Description: "Take only messages with at most this priority."},
	{Name: "concurrency", Type: TypeInteger, Default: 1, Min: bound(1), Max: bound(maxConcurrency), Actions: consumeOnly,
		Description: "Batches handled at once by this step (handler processes in parallel)."},
	{Name: "mode", Type: TypeString, Default: ModeDrain, Enum: []string{ModeDrain, ModeOnce, ModeWatch}, Actions: consumeOnly,
		Description: "drain: until nothing is ready; once: at most one batch; watch: keep polling until stopped or idle_timeout."},
	{Name: "idle_timeout", Type: TypeDuration, Default: "0s", Min: bound(0), Actions: consumeOnly,
		Description: "watch mode: stop after this long without a message. 0s: never."},
	{Name: "poll_interval", Type: TypeDuration, Default: "1s", Min: bound(0.01), Max: bound(3600), Actions: consumeOnly,
		Description: "Pause between claims that found nothing (watch mode, linger, in-flight limit)."},
	{Name: "max_batches", Type: TypeInteger, Default: 0, Min: bound(0), Actions: consumeOnly,
		Description: "Stop after this many batches. 0: no limit."},
	{Name: "max_messages", Type: TypeInteger, Default: 0, Min: bound(0), Actions: consumeOnly,
		Description: "Stop claiming after this many messages. 0: no limit."},
	{Name: "lease", Type: TypeDuration, Default: "5m", Min: bound(1), Max: bound(7 * 24 * 3600), Actions: claimLike,
		Description: "Visibility timeout of a claim. consume extends it every lease/3 while the handler runs (heartbeat)."},
	{Name: "max_attempts", Type: TypeInteger, Default: 0, Min: bound(0), Max: bound(maxAttemptsCap), Actions: []string{ActionConsume, ActionNack},
		Description: "Deliveries before a failed message goes to the dead letters. 0: the message's own (set at enqueue; default 5)."},
	{Name: "backoff", Type: TypeString, Default: BackoffExponential, Actions: []string{ActionConsume, ActionNack},
		Description: "Retry delay after a failure: `exponential` (backoff_base doubling up to backoff_max, with jitter), `none` (at once), or a fixed duration like `30s`."},
	{Name: "backoff_base", Type: TypeDuration, Default: "1s", Min: bound(0.001), Max: bound(7 * 24 * 3600), Actions: []string{ActionConsume, ActionNack},
		Description: "First delay of exponential backoff."},
	{Name: "backoff_max", Type: TypeDuration, Default: "1h", Min: bound(0.001), Max: bound(7 * 24 * 3600), Actions: []string{ActionConsume, ActionNack},
		Description: "Largest delay of exponential backoff."},
	{Name: "batch_timeout", Type: TypeDuration, Default: "0s", Min: bound(0), Actions: consumeOnly,
		Description: "Stop a handler (its process tree) that runs longer and nack its batch. 0s: no limit."},
	{Name: "grace", Type: TypeDuration, Default: "3s", Min: bound(0), Max: bound(3600), Actions: consumeOnly,
		Description: "On stop or batch_timeout: time between the signal and SIGKILL of the handler's process tree. Keep it below Dagu's max_clean_up_time_sec (default 5)."},
	{Name: "aging", Type: TypeDuration, Default: "0s", Min: bound(0), Actions: claimLike,
		Description: "Aging by time waited: a message ranks one priority level higher per interval it has waited ready, so low priorities still move. Becomes the queue's setting; 0s keeps the queue's (none by default)."},
	{Name: "consumer", Type: TypeString, Actions: claimLike,
		Description: "Name of this consumer in leases and stats. Default: step name, host and process id."},
	{Name: "fail_on", Type: TypeString, Default: FailOnNever, Enum: []string{FailOnNever, FailOnDead, FailOnNack}, Actions: consumeOnly,
		Description: "Exit 1 at the end when a message went dead (dead) or any message failed (nack). never: failures are retried or dead-lettered by policy and the step succeeds."},
	{Name: "progress_interval", Type: TypeDuration, Default: "5s", Min: bound(0), Actions: consumeOnly,
		Description: "Progress line on stderr (counts and rate) at most this often. 0s: none."},
	{Name: "token", Type: TypeString, Actions: tokenLike,
		Description: "ack/nack/get: the lease token printed by a claim (its `token`), or the `token` param of a dispatched run."},
	{Name: "ids", Type: TypeList, Items: "integer", Actions: finishOnly,
		Description: "ack/nack: message ids of the lease to finish (a list, or text like \"1,2,3\"). Default: all it holds."},
	{Name: "error", Type: TypeString, Actions: []string{ActionNack},
		Description: "nack: error text kept on the messages."},
	{Name: "file", Type: TypeString, Actions: []string{ActionGet},
		Description: "get: also write the messages as JSON Lines (one ClaimedMessage per line) to this file, created with mode 0600; relative to the step's directory. Default: none."},
	dbField,
}

var enqueueFields = []Field{
	queueField,
	{Name: "message", Type: TypeJSON,
		Description: "One message: any JSON value (a YAML map or list becomes JSON); a string is parsed as JSON text unless raw is true."},
	{Name: "messages", Type: TypeList,
		Description: "Several messages: a list of JSON values, or a string holding a JSON array."},
	{Name: "file", Type: TypeString,
		Description: "JSON Lines file, one message per line (blank lines skipped); `-` reads standard input."},
	{Name: "envelope", Type: TypeBoolean, Default: false,
		Description: "Each line of file is {\"body\", \"priority\", \"dedupe_key\", \"group\", \"delay\", \"not_before\", \"max_attempts\"}; set keys override the step's."},
	{Name: "raw", Type: TypeBoolean, Default: false,
		Description: "Store text as a JSON string: message, each string of messages, each line of file."},
	{Name: "priority", Type: TypeInteger, Default: 0, Min: bound(queuestore.MinPriority), Max: bound(queuestore.MaxPriority),
		Description: "Higher is delivered first."},
	{Name: "delay", Type: TypeDuration, Default: "0s", Min: bound(0),
		Description: "Deliver no earlier than this long from now. Exclusive with not_before."},
	{Name: "not_before", Type: TypeString,
		Description: "Deliver no earlier than this RFC 3339 time, or the next occurrence of this cron expression (5 fields, e.g. `0 9 * * *`, local time)."},
	{Name: "dedupe_key", Type: TypeString, MaxLength: maxDedupeKeyBytes,
		Description: "Skip the enqueue while a message with this key is in the queue and not yet acked (counted in duplicates). With several messages, each gets key-INDEX unless an envelope sets its own."},
	{Name: "group", Type: TypeString, MaxLength: maxGroupBytes,
		Description: "Group key, for group_by and group on the consumer."},
	{Name: "max_attempts", Type: TypeInteger, Default: 0, Min: bound(0), Max: bound(maxAttemptsCap),
		Description: "Deliveries before the message goes to the dead letters. 0: the database default (5)."},
	dbField,
}

type queueConfig struct {
	Queue            string        `mapstructure:"queue"`
	Action           string        `mapstructure:"action"`
	Run              any           `mapstructure:"run"`
	Script           string        `mapstructure:"script"`
	Shell            string        `mapstructure:"shell"`
	BatchSize        int           `mapstructure:"batch_size"`
	MaxWait          time.Duration `mapstructure:"max_wait"`
	MaxBytes         int64         `mapstructure:"max_bytes"`
	GroupBy          bool          `mapstructure:"group_by"`
	Group            string        `mapstructure:"group"`
	MinPriority      *int64        `mapstructure:"min_priority"`
	MaxPriority      *int64        `mapstructure:"max_priority"`
	Concurrency      int           `mapstructure:"concurrency"`
	Mode             string        `mapstructure:"mode"`
	IdleTimeout      time.Duration `mapstructure:"idle_timeout"`
	PollInterval     time.Duration `mapstructure:"poll_interval"`
	MaxBatches       int           `mapstructure:"max_batches"`
	MaxMessages      int           `mapstructure:"max_messages"`
	Lease            time.Duration `mapstructure:"lease"`
	MaxAttempts      int           `mapstructure:"max_attempts"`
	Backoff          string        `mapstructure:"backoff"`
	BackoffBase      time.Duration `mapstructure:"backoff_base"`
	BackoffMax       time.Duration `mapstructure:"backoff_max"`
	BatchTimeout     time.Duration `mapstructure:"batch_timeout"`
	Grace            time.Duration `mapstructure:"grace"`
	Aging            time.Duration `mapstructure:"aging"`
	Consumer         string        `mapstructure:"consumer"`
	FailOn           string        `mapstructure:"fail_on"`
	ProgressInterval time.Duration `mapstructure:"progress_interval"`
	Token            string        `mapstructure:"token"`
	IDs              any           `mapstructure:"ids"`
	Error            string        `mapstructure:"error"`
	File             string        `mapstructure:"file"`
	DB               string        `mapstructure:"db"`

	// Filled by parsing.
	runArgv    []string      // run given as a list
	runLine    string        // run given as a string
	shellArgv  []string      // shell split into words
	fixedDelay time.Duration // backoff given as a duration (negative: none)
	ids        []int64
}

// defaultQueueConfig is a queue config holding the field table's defaults.
var defaultQueueConfig = sync.OnceValue(func() queueConfig {
	var c queueConfig
	defaults(KindQueue, &c)
	return c
})

type enqueueConfig struct {
	Queue       string        `mapstructure:"queue"`
	Message     any           `mapstructure:"message"`
	Messages    any           `mapstructure:"messages"`
	File        string        `mapstructure:"file"`
	Envelope    bool          `mapstructure:"envelope"`
	Raw         bool          `mapstructure:"raw"`
	Priority    int64         `mapstructure:"priority"`
	Delay       time.Duration `mapstructure:"delay"`
	NotBefore   string        `mapstructure:"not_before"`
	DedupeKey   string        `mapstructure:"dedupe_key"`
	Group       string        `mapstructure:"group"`
	MaxAttempts int           `mapstructure:"max_attempts"`
	DB          string        `mapstructure:"db"`

	hasMessage bool
	messages   [][]byte // message / messages, validated JSON
}

// defaultEnqueueConfig is an enqueue config holding the field table's defaults.
var defaultEnqueueConfig = sync.OnceValue(func() enqueueConfig {
	var c enqueueConfig
	defaults(KindEnqueue, &c)
	return c
})

// decodeConfig decodes raw into out (a pointer to a config struct holding
// its defaults): unknown keys and wrong types become errors naming the key.
func decodeConfig(kind string, raw map[string]any, out any) error {
	allowed := fieldNames(kind)
	var unknown []string
	for k := range raw {
		if _, ok := fieldByName(kind, k); !ok {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("unknown key %s in %s step config: allowed keys are %s",
			quoteList(unknown), kind, strings.Join(allowed, ", "))
	}
	var errs []error
	// Decode key by key so that each error names its key and its expected type.
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := raw[k]
		if v == nil {
			continue // `key:` with no value: the default
		}
		dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
			DecodeHook:       durationHook,
			WeaklyTypedInput: true,
			ErrorUnused:      true,
			Result:           out,
			Squash:           false,
		})
		if err != nil {
			return err
		}
		if err := dec.Decode(map[string]any{k: v}); err != nil {
			f, _ := fieldByName(kind, k)
			errs = append(errs, badValue(k, "must be %s, got %s", typePhrase(f), describeValue(v)))
		}
	}
	return errors.Join(errs...)
}

func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return strings.Join(q, ", ")
}

func typePhrase(f Field) string {
	switch f.Type {
	case TypeInteger:
		return "an integer"
	case TypeNumber:
		return "a number"
	case TypeBoolean:
		return "a boolean (true or false)"
	case TypeDuration:
		return `a duration like "30s", "5m" or "1h30m" (a bare number means seconds)`
	case TypeStringOrList:
		return "a command line or a list of words"
	case TypeList:
		return "a list"
	case TypeJSON:
		return "a JSON value"
	}
	return "a string"
}

// describeValue renders a config value for an error message, cut short.
func describeValue(v any) string {
	var s string
	switch x := v.(type) {
	case string:
		s = strconv.Quote(x)
	default:
		b, err := json.Marshal(x)
		if err != nil {
			s = fmt.Sprintf("%v", x)
		} else {
			s = string(b)
		}
		s = fmt.Sprintf("%s (%T)", s, v)
	}
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}

var durationType = reflect.TypeOf(time.Duration(0))

// durationHook reads durations as Go duration text; a bare number, as a
// number or as text, means seconds.
func durationHook(from, to reflect.Type, data any) (any, error) {
	if to != durationType {
		return integerHook(to, data)
	}
	switch v := data.(type) {
	case string:
		s := strings.TrimSpace(v)
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return secondsToDuration(f)
		}
		return time.ParseDuration(s)
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		f, _ := strconv.ParseFloat(fmt.Sprint(v), 64)
		return secondsToDuration(f)
	case float32:
		return secondsToDuration(float64(v))
	case float64:
		return secondsToDuration(v)
	case time.Duration:
		return v, nil
	}
	return nil, fmt.Errorf("not a duration")
}

// integerHook refuses fractions for integer fields, which weak decoding
// would truncate.
func integerHook(to reflect.Type, data any) (any, error) {
	for to.Kind() == reflect.Pointer {
		to = to.Elem()
	}
	switch to.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
	default:
		return data, nil
	}
	switch f := data.(type) {
	case float64:
		if f != math.Trunc(f) || math.IsInf(f, 0) || math.Abs(f) > 1<<62 {
			return nil, fmt.Errorf("not an integer")
		}
		return int64(f), nil
	case float32:
		return integerHook(to, float64(f))
	}
	return data, nil
}

func secondsToDuration(f float64) (time.Duration, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > float64(math.MaxInt64)/float64(time.Second) {
		return 0, fmt.Errorf("duration out of range")
	}
	return time.Duration(f * float64(time.Second)), nil
}

func oneOf(name, value string, allowed []string) error {
	for _, a := range allowed {
		if value == a {
			return nil
		}
	}
	return badValue(name, "must be one of %s, got %q", strings.Join(allowed, ", "), value)
}

// checkDBKey refuses an empty `db`: it would silently mean the default
// database. A key with no value (nil) is the default, as for every key.
func checkDBKey(raw map[string]any) error {
	if db, ok := raw["db"].(string); ok && strings.TrimSpace(db) == "" {
		return badKeys("db", func(n Names) string {
			return n.Key("db") + " is empty: give a database file path, or leave " + n.Key("db") + " out for the default (DAGUQ_DB, else $DAGU_HOME/daguq/daguq.db, else $XDG_DATA_HOME/daguq/daguq.db)"
		})
	}
	return nil
}

// parseQueueConfig decodes, defaults and validates a queue step's `with:`.
func parseQueueConfig(raw map[string]any) (queueConfig, error) {
	cfg := defaultQueueConfig()
	if err := decodeConfig(KindQueue, raw, &cfg); err != nil {
		return queueConfig{}, err
	}
	if err := checkDBKey(raw); err != nil {
		return queueConfig{}, err
	}
	if err := cfg.validate(); err != nil {
		return queueConfig{}, err
	}
	return cfg, nil
}

// validateQueueField checks the `queue` key both kinds require.
func validateQueueField(queue string) error {
	if queue == "" {
		return badValue("queue", "is required: the queue name")
	}
	if len(queue) > mustField(KindQueue, "queue").MaxLength {
		return nil // checkFields names the length
	}
	if queuestore.ValidateQueueName(queue) != nil {
		return badValue("queue", "%q must be %s", queue, queuestore.QueueNameRule)
	}
	return nil
}

func (c *queueConfig) validate() error {
	var errs []error
	if err := validateQueueField(c.Queue); err != nil {
		errs = append(errs, err)
	}
	for _, e := range []struct{ name, value string }{{"action", c.Action}, {"mode", c.Mode}, {"fail_on", c.FailOn}} {
		f, _ := fieldByName(KindQueue, e.name)
		if err := oneOf(e.name, e.value, f.Enum); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, checkFields(Fields(KindQueue), c)...)
	if c.MinPriority != nil && c.MaxPriority != nil && *c.MinPriority > *c.MaxPriority {
		errs = append(errs, badKeys("min_priority", func(n Names) string {
			return fmt.Sprintf("%s (%d) must be at most %s (%d)", n.Key("min_priority"), *c.MinPriority, n.Key("max_priority"), *c.MaxPriority)
		}))
	}
	if c.BackoffBase > c.BackoffMax {
		base, most := c.BackoffBase, c.BackoffMax
		errs = append(errs, badKeys("backoff_base", func(n Names) string {
			return fmt.Sprintf("%s (%s) must be at most %s (%s)", n.Key("backoff_base"), base, n.Key("backoff_max"), most)
		}))
	}
	switch c.Backoff {
	case BackoffExponential:
	case BackoffNone:
		c.fixedDelay = -1
	default:
		d, err := durationHook(nil, durationType, c.Backoff)
		if err != nil || d.(time.Duration) <= 0 {
			errs = append(errs, badValue("backoff", `must be "exponential", "none" or a positive duration like "30s", got %q`, c.Backoff))
		} else {
			c.fixedDelay = d.(time.Duration)
		}
	}
	if c.Group != "" && c.GroupBy {
		errs = append(errs, exclusive("group", "group_by", func(n Names) string {
			return n.Key("group") + " takes one named group, " + n.Key("group_by") + " one group per batch"
		}))
	}
	errs = append(errs, c.parseCommand("handler")...)
	ids, err := parseIDs(c.IDs)
	if err != nil {
		errs = append(errs, err)
	}
	c.ids = ids
	switch c.Action {
	case ActionAck, ActionNack, ActionGet:
		if c.Token == "" {
			action := c.Action
			errs = append(errs, badKeys("token", func(n Names) string {
				return n.Key("token") + " is required for " + n.Key("action") + " " + action + ": the token a claim printed"
			}))
		}
		if c.IDs != nil && c.Action == ActionGet {
			errs = append(errs, onlyFor("ids", "apply", "ack and nack", c.Action))
		}
	default:
		if c.Token != "" || c.IDs != nil {
			field := "token"
			if c.Token == "" {
				field = "ids"
			}
			action := c.Action
			errs = append(errs, badKeys(field, func(n Names) string {
				return fmt.Sprintf("%s and %s apply to %s ack, nack and get only, not %s", n.Key("token"), n.Key("ids"), n.Key("action"), action)
			}))
		}
	}
	if c.File != "" && c.Action != ActionGet {
		errs = append(errs, onlyFor("file", "applies", "get", c.Action))
	}
	if c.Error != "" && c.Action != ActionNack {
		errs = append(errs, onlyFor("error", "applies", "nack", c.Action))
	}
	return errors.Join(errs...)
}

// parseCommand reads run, script and shell, the command of a queue step's
// handler or of a pool step (what names it in errors).
func (c *queueConfig) parseCommand(what string) []error {
	var errs []error
	if err := c.parseRun(); err != nil {
		errs = append(errs, err)
	}
	if c.Script != "" && (c.runLine != "" || c.runArgv != nil) {
		errs = append(errs, exclusive("run", "script", func(Names) string { return "give the " + what + " one way" }))
	}
	c.shellArgv = strings.Fields(c.Shell)
	if len(c.shellArgv) == 0 {
		errs = append(errs, badValue("shell", `must name a program, like "sh" or "bash -eu", got ""`))
	}
	return errs
}

func (c *queueConfig) parseRun() error {
	switch v := c.Run.(type) {
	case nil:
	case string:
		if strings.TrimSpace(v) == "" {
			return badValue("run", `must be a command line or a non-empty list of words, got ""`)
		}
		c.runLine = v
	case []any:
		if len(v) == 0 {
			return badValue("run", "must be a command line or a non-empty list of words, got []")
		}
		for i, w := range v {
			switch w.(type) {
			case string, int, int64, float64, bool:
				c.runArgv = append(c.runArgv, fmt.Sprint(w))
			default:
				return badItem("run", i, "must be a string, got %s", describeValue(w))
			}
		}
		if c.runArgv[0] == "" {
			return badItem("run", 0, `must name a program, got ""`)
		}
	case []string:
		if len(v) == 0 || v[0] == "" {
			return badValue("run", "must be a command line or a non-empty list of words")
		}
		c.runArgv = append([]string(nil), v...)
	default:
		return badValue("run", "must be a command line or a list of words, got %s", describeValue(v))
	}
	return nil
}

// resolveHandler fills the handler from the step's command or script when
// `with:` names none, and requires one for the consume action.
func (c *queueConfig) resolveHandler(spec Spec) error {
	if c.Action != ActionConsume {
		return nil
	}
	if c.runLine != "" || c.runArgv != nil || c.Script != "" {
		return nil
	}
	switch {
	case spec.Script != "":
		c.Script = spec.Script
	case strings.TrimSpace(spec.Command) != "":
		c.runLine = spec.Command
	default:
		return badKeys("run", func(n Names) string {
			return fmt.Sprintf("%s or %s is required for %s consume: the handler that gets each batch (e.g. %s)",
				n.Key("run"), n.Key("script"), n.Key("action"), n.Setting("run", "./handle.sh"))
		})
	}
	return nil
}

// parseIDs reads ids given as a list or as text: "1,2 3" or "[1,2,3]".
func parseIDs(v any) ([]int64, error) {
	var items []any
	switch x := v.(type) {
	case nil:
		return nil, nil
	case string:
		s := strings.TrimSpace(x)
		if strings.HasPrefix(s, "[") {
			if err := json.Unmarshal([]byte(s), &items); err != nil {
				return nil, badValue("ids", "must be a list of message ids, got %s", describeValue(x))
			}
		} else {
			for _, w := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' }) {
				items = append(items, w)
			}
		}
	case []any:
		items = x
	case []int64:
		return x, nil
	case []int:
		out := make([]int64, len(x))
		for i, n := range x {
			out[i] = int64(n)
		}
		return out, nil
	default:
		return nil, badValue("ids", "must be a list of message ids, got %s", describeValue(v))
	}
	out := make([]int64, 0, len(items))
	for i, it := range items {
		var id int64
		var err error
		switch n := it.(type) {
		case string:
			id, err = strconv.ParseInt(strings.TrimSpace(n), 10, 64)
		case float64:
			id, err = int64(n), nil
			if n != math.Trunc(n) {
				err = errors.New("fraction")
			}
		case int:
			id = int64(n)
		case int64:
			id = n
		case uint64:
			id = int64(n)
		case json.Number:
			id, err = n.Int64()
		default:
			err = errors.New("type")
		}
		if err != nil || id <= 0 {
			return nil, badItem("ids", i, "must be a positive message id, got %s", describeValue(it))
		}
		out = append(out, id)
	}
	return out, nil
}

// parseEnqueueConfig decodes, defaults and validates an enqueue step's `with:`.
func parseEnqueueConfig(raw map[string]any) (enqueueConfig, error) {
	cfg := defaultEnqueueConfig()
	if err := decodeConfig(KindEnqueue, raw, &cfg); err != nil {
		return enqueueConfig{}, err
	}
	if err := checkDBKey(raw); err != nil {
		return enqueueConfig{}, err
	}
	_, cfg.hasMessage = raw["message"]
	if cfg.Message == nil {
		cfg.hasMessage = false
	}
	if err := cfg.validate(); err != nil {
		return enqueueConfig{}, err
	}
	return cfg, nil
}

func (c *enqueueConfig) validate() error {
	var errs []error
	if err := validateQueueField(c.Queue); err != nil {
		errs = append(errs, err)
	}
	sources := 0
	if c.hasMessage {
		sources++
	}
	if c.Messages != nil {
		sources++
	}
	if c.File != "" {
		sources++
	}
	if sources != 1 {
		errs = append(errs, badKeys("message", func(n Names) string {
			return fmt.Sprintf("give exactly one of %s, %s or %s, got %d", n.Key("message"), n.Key("messages"), n.Key("file"), sources)
		}))
	}
	if c.Envelope && c.File == "" {
		errs = append(errs, badKeys("envelope", func(n Names) string { return n.Key("envelope") + " applies to " + n.Key("file") + " only" }))
	}
	if c.Envelope && c.Raw {
		errs = append(errs, exclusive("raw", "envelope", func(Names) string { return "an envelope's body is a JSON value" }))
	}
	errs = append(errs, checkFields(Fields(KindEnqueue), c)...)
	if c.Delay != 0 && c.NotBefore != "" {
		errs = append(errs, exclusive("delay", "not_before", nil))
	}
	if c.NotBefore != "" {
		if _, err := parseNotBefore(c.NotBefore, time.Now()); err != nil {
			errs = append(errs, err)
		}
	}
	for _, key := range []struct{ name, value string }{{"dedupe_key", c.DedupeKey}, {"group", c.Group}} {
		if err := checkUTF8([]byte(key.value)); err != nil {
			errs = append(errs, badKey(key.name, err))
		}
	}
	if c.hasMessage {
		b, err := messageJSON(c.Message, c.Raw)
		if err != nil {
			errs = append(errs, badKey("message", err))
		} else {
			c.messages = [][]byte{b}
		}
	}
	if c.Messages != nil {
		list, err := messagesList(c.Messages)
		if err != nil {
			errs = append(errs, err)
		}
		for i, m := range list {
			b, err := messageJSON(m, c.Raw)
			if err != nil {
				errs = append(errs, badItemCause("messages", i, err))
				continue
			}
			c.messages = append(c.messages, b)
		}
	}
	return errors.Join(errs...)
}
