package ui

import (
	"io"

	"github.com/runbookhq/runbook/sdk/runbook"
)

// NewLive returns the terminal renderer.
// TODO(live view): the spinner/one-line-per-step view replaces this.
func NewLive(w io.Writer, rb *runbook.Runbook, color bool, width int) Renderer {
	return NewPlain(w)
}
