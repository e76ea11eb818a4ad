package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"

	"golang.org/x/term"
)

// IOStreams is the command's terminal: injected so tests can drive every
// command with buffers.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
	// TTY is true when Out is an interactive terminal (live progress,
	// prompts); Color when colour may be used (TTY and no NO_COLOR).
	TTY   bool
	Color bool
	// InTTY is true when In is a terminal that can answer prompts.
	InTTY bool
	// Width of the terminal, 0 if unknown.
	Width int
	// Locked refuses every plugin runbook.lock does not pin, before it is
	// run (--locked, or $RUNBOOK_LOCKED); set by the root command.
	Locked bool
}

// System returns the process's streams. A standard output or error that is
// not a terminal and breaks (a closed pipe) is dropped: writes to it succeed
// from then on without effect, so that a run is never stopped or killed by
// where its output goes. Every event is in the run's journal; a broken
// standard output is said once on standard error. (A terminal that hangs up
// fails writes with EIO, which the renderers ignore; the live view needs the
// terminal itself.)
func System() *IOStreams {
	s := &IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}
	if fd := int(os.Stdout.Fd()); term.IsTerminal(fd) {
		s.TTY = true
		if w, _, err := term.GetSize(fd); err == nil {
			s.Width = w
		}
	}
	if !term.IsTerminal(int(os.Stderr.Fd())) {
		s.ErrOut = &dropOnError{w: os.Stderr}
	}
	if !s.TTY {
		errOut := s.ErrOut
		s.Out = &dropOnError{w: os.Stdout, broke: func(err error) {
			fmt.Fprintf(errOut, "warning: standard output is gone (%v); the command goes on, and a run's events are in its journal (runbook report writes them out)\n", err)
		}}
	}
	s.InTTY = term.IsTerminal(int(os.Stdin.Fd()))
	_, noColor := os.LookupEnv("NO_COLOR")
	s.Color = s.TTY && !noColor && os.Getenv("TERM") != "dumb"
	return s
}

// dropOnError writes to w until a write fails because the reader is gone
// (EPIPE: a closed pipe; EIO: a terminal that hung up), then drops every
// write. Other errors (a full disk behind a redirection) are returned.
type dropOnError struct {
	mu     sync.Mutex
	w      io.Writer
	broken bool
	broke  func(error)
}

func (d *dropOnError) Write(p []byte) (int, error) {
	d.mu.Lock()
	if d.broken {
		d.mu.Unlock()
		return len(p), nil
	}
	n, err := d.w.Write(p)
	gone := err != nil && (errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.EIO))
	d.broken = gone
	d.mu.Unlock()
	if !gone {
		return n, err
	}
	if d.broke != nil {
		d.broke(err)
	}
	return len(p), nil
}

// TestStreams returns streams over buffers, not a TTY.
func TestStreams() (*IOStreams, *bytes.Buffer, *bytes.Buffer, *bytes.Buffer) {
	in, out, errOut := &bytes.Buffer{}, &bytes.Buffer{}, &bytes.Buffer{}
	return &IOStreams{In: in, Out: out, ErrOut: errOut}, in, out, errOut
}
