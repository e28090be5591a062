package dispatch

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/daguq/daguq/queuestore"
)

// Rule says which queue feeds which DAG, and how batches are cut.
type Rule struct {
	// Queue to claim from.
	Queue string `yaml:"queue"`
	// DAG is the DAG's file name in Dagu (without .yaml), as in
	// POST /api/v1/dags/{fileName}/start.
	DAG string `yaml:"dag"`
	// DAGName is the DAG's name in Dagu's run history when it differs from
	// the file name (a `name:` in the DAG file). Default: DAG.
	DAGName string `yaml:"dag_name"`
	// BatchSize is the most messages one run gets. Default 10.
	BatchSize int `yaml:"batch_size"`
	// MaxWait holds a partial batch (its lease kept) until it fills or this
	// long passed since its first claim. 0: start at once.
	MaxWait time.Duration `yaml:"max_wait"`
	// MaxBytes caps the body bytes of a batch. 0: no limit.
	MaxBytes int64 `yaml:"max_bytes"`
	// GroupBy makes each batch one group key's.
	GroupBy bool `yaml:"group_by"`
	// MinPriority and MaxPriority take only that priority band.
	MinPriority *int64 `yaml:"min_priority"`
	MaxPriority *int64 `yaml:"max_priority"`
	// Concurrency is the most runs of this rule at once. Default 1.
	Concurrency int `yaml:"concurrency"`
	// Lease of a claim; extended every Lease/3 while the run is active.
	// Default 5m.
	Lease time.Duration `yaml:"lease"`
	// MaxAttempts, when positive, replaces the messages' own limit at nack.
	MaxAttempts int `yaml:"max_attempts"`
	// BackoffBase and BackoffMax: the retry delay after a failed run,
	// base * 2^(attempt-1) with jitter, capped. Defaults 10s and 1h.
	BackoffBase time.Duration `yaml:"backoff_base"`
	BackoffMax  time.Duration `yaml:"backoff_max"`
	// Enqueue starts runs with Dagu's /enqueue instead of /start, so that
	// Dagu's own queues (max_active_runs) apply.
	Enqueue bool `yaml:"enqueue"`
}

// Limits of a rule.
const (
	maxConcurrency = 1024
	maxRunIDLen    = 64
)

var (
	dagNameRE = regexp.MustCompile(`^[-a-zA-Z0-9_.]+$`)
	runIDRE   = regexp.MustCompile(`^[-a-zA-Z0-9_]+$`)
)

// withDefaults fills the zero values.
func (r Rule) withDefaults() Rule {
	if r.BatchSize == 0 {
		r.BatchSize = 10
	}
	if r.Concurrency == 0 {
		r.Concurrency = 1
	}
	if r.Lease == 0 {
		r.Lease = 5 * time.Minute
	}
	if r.BackoffBase == 0 {
		r.BackoffBase = 10 * time.Second
	}
	if r.BackoffMax == 0 {
		r.BackoffMax = time.Hour
	}
	if r.DAGName == "" {
		r.DAG = strings.TrimSuffix(strings.TrimSuffix(r.DAG, ".yaml"), ".yml")
		r.DAGName = r.DAG
	}
	return r
}

// validate names each bad field and its allowed values.
func (r Rule) validate() error {
	var errs []error
	if err := queuestore.ValidateQueueName(r.Queue); err != nil {
		errs = append(errs, fmt.Errorf("queue must be %s, got %q", queuestore.QueueNameRule, r.Queue))
	}
	if !dagNameRE.MatchString(r.DAG) {
		errs = append(errs, fmt.Errorf("dag must be a DAG file name (letters, digits, '-', '_', '.'), got %q", r.DAG))
	}
	if !dagNameRE.MatchString(r.DAGName) {
		errs = append(errs, fmt.Errorf("dag_name must be letters, digits, '-', '_' or '.', got %q", r.DAGName))
	}
	if r.BatchSize < 1 || r.BatchSize > queuestore.MaxClaim {
		errs = append(errs, fmt.Errorf("batch_size must be 1..%d, got %d", queuestore.MaxClaim, r.BatchSize))
	}
	if r.MaxWait < 0 || r.MaxWait > time.Hour {
		errs = append(errs, fmt.Errorf("max_wait must be 0s..1h, got %s", r.MaxWait))
	}
	if r.MaxBytes < 0 {
		errs = append(errs, fmt.Errorf("max_bytes must be 0 (no limit) or more, got %d", r.MaxBytes))
	}
	if r.Concurrency < 1 || r.Concurrency > maxConcurrency {
		errs = append(errs, fmt.Errorf("concurrency must be 1..%d, got %d", maxConcurrency, r.Concurrency))
	}
	if r.Lease < time.Second || r.Lease > 7*24*time.Hour {
		errs = append(errs, fmt.Errorf("lease must be 1s..168h, got %s", r.Lease))
	}
	if r.MaxAttempts < 0 || r.MaxAttempts > 1000 {
		errs = append(errs, fmt.Errorf("max_attempts must be 0..1000, got %d", r.MaxAttempts))
	}
	if r.BackoffBase < 0 || r.BackoffMax < r.BackoffBase {
		errs = append(errs, fmt.Errorf("backoff_base (%s) must be at least 0s and at most backoff_max (%s)", r.BackoffBase, r.BackoffMax))
	}
	if r.MinPriority != nil && r.MaxPriority != nil && *r.MinPriority > *r.MaxPriority {
		errs = append(errs, fmt.Errorf("min_priority (%d) must be at most max_priority (%d)", *r.MinPriority, *r.MaxPriority))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("rule %s -> %s: %w", r.Queue, r.DAG, err)
	}
	return nil
}

// Config is a rules file: the Dagu server and its credentials, and the rules.
type Config struct {
	Dagu  DaguConfig `yaml:"dagu"`
	Rules []Rule     `yaml:"rules"`
}

// DaguConfig says where Dagu is and how to authenticate. Credentials come
// from files (or the environment, see the CLI), never from the rules file
// itself, so the file can be shown and versioned.
type DaguConfig struct {
	URL string `yaml:"url"`
	// TokenFile holds a Dagu API key (Authorization: Bearer).
	TokenFile string `yaml:"token_file"`
	// BasicAuthFile holds "user:password" for basic auth.
	BasicAuthFile string `yaml:"basic_auth_file"`
}

// LoadConfig reads a rules file (YAML). Durations are Go durations ("30s").
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	return ParseConfig(data)
}

// ParseConfig parses a rules file's text; unknown keys are errors.
func ParseConfig(data []byte) (Config, error) {
	var c Config
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("rules file: %w", err)
	}
	if len(c.Rules) == 0 {
		return Config{}, errors.New("rules file: no rules (want rules: [{queue: ..., dag: ...}])")
	}
	return c, nil
}

// ReadAuth reads credentials from the files a DaguConfig names (one of
// them at most). Whitespace around the secret is dropped.
func (c DaguConfig) ReadAuth() (Auth, error) {
	if c.TokenFile != "" && c.BasicAuthFile != "" {
		return Auth{}, errors.New("give token_file or basic_auth_file, not both")
	}
	switch {
	case c.TokenFile != "":
		b, err := os.ReadFile(c.TokenFile)
		if err != nil {
			return Auth{}, fmt.Errorf("dagu token file: %w", err)
		}
		tok := strings.TrimSpace(string(b))
		if tok == "" {
			return Auth{}, fmt.Errorf("dagu token file %q is empty", c.TokenFile)
		}
		return Auth{Token: tok}, nil
	case c.BasicAuthFile != "":
		b, err := os.ReadFile(c.BasicAuthFile)
		if err != nil {
			return Auth{}, fmt.Errorf("dagu basic auth file: %w", err)
		}
		return ParseBasic(string(b))
	}
	return Auth{}, nil
}

// ParseBasic reads "user:password".
func ParseBasic(s string) (Auth, error) {
	user, pass, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok || user == "" {
		return Auth{}, errors.New(`dagu basic auth must be "user:password"`)
	}
	return Auth{User: user, Password: pass}, nil
}
