package runbook

import "time"

// Limits that keep a hostile or broken runbook from exhausting memory or
// time: each is reported as a diagnostic, never a crash.
const (
	// MaxSourceBytes caps the size of a runbook file (and of a file bound
	// to an input with --var k=@file or --var-file).
	MaxSourceBytes = 4 << 20
	// MaxLines caps the number of lines and flow items (commas) before the
	// YAML parser runs: its memory grows with the number of nodes.
	MaxLines = 500_000
	// MaxNodes caps the YAML nodes of a document once every alias is
	// expanded where it is used (a "billion laughs" document is refused).
	MaxNodes = 1_000_000
	// MaxDepth caps the nesting of mappings and lists.
	MaxDepth = 64
	// MaxSteps caps the number of steps, parallel children included.
	MaxSteps = 10_000
	// MaxPlugins caps the plugins a runbook declares: each is looked up
	// and run to describe itself during validation.
	MaxPlugins = 100
)

// Floors and caps on retrying and polling, so that a typo (`delay: 1ms`,
// `attempts: 100000`) cannot turn a step into a loop that writes the
// journal as fast as the disk takes it: every attempt and every unmet
// `until` poll is a journal record.
const (
	// MaxAttempts caps retry.attempts. Waiting for a condition is what
	// `until` (bounded by its timeout) is for.
	MaxAttempts = 100
	// MinRetryDelay is the least retry.delay and retry.max_delay.
	MinRetryDelay = 100 * time.Millisecond
	// MinUntilInterval is the least `until` interval.
	MinUntilInterval = 100 * time.Millisecond
)

// Built-in defaults for steps that set nothing and runbooks whose
// `defaults` do not either.
const (
	DefaultTimeout       = 10 * time.Minute
	DefaultAttempts      = 1
	DefaultDelay         = time.Second
	DefaultMaxDelay      = 30 * time.Second
	DefaultUntilInterval = 5 * time.Second
)
