package cli

import (
	"bytes"
	"io"
	"os"

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
}

// System returns the process's streams.
func System() *IOStreams {
	s := &IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}
	if fd := int(os.Stdout.Fd()); term.IsTerminal(fd) {
		s.TTY = true
		if w, _, err := term.GetSize(fd); err == nil {
			s.Width = w
		}
	}
	s.InTTY = term.IsTerminal(int(os.Stdin.Fd()))
	_, noColor := os.LookupEnv("NO_COLOR")
	s.Color = s.TTY && !noColor && os.Getenv("TERM") != "dumb"
	return s
}

// TestStreams returns streams over buffers, not a TTY.
func TestStreams() (*IOStreams, *bytes.Buffer, *bytes.Buffer, *bytes.Buffer) {
	in, out, errOut := &bytes.Buffer{}, &bytes.Buffer{}, &bytes.Buffer{}
	return &IOStreams{In: in, Out: out, ErrOut: errOut}, in, out, errOut
}
