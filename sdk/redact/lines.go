package redact

import (
	"strings"
	"sync"
	"time"
)

// Lines redacts a stream of lines (a plugin's log) in which a secret may
// be cut by a line break: a base64 text wrapped over lines, a long line
// that a logger split in two. A line that ends with the beginning of a
// secret's form is held until the next line shows whether the form goes
// on, then both are masked where the form lies; a line held longer than
// the delay given to NewLines is let go. Lines that cannot end inside a
// form, the vast majority, are emitted at once.
type Lines[P any] struct {
	r     *Redactor
	delay time.Duration
	emit  func(line string, payload P)

	mu    sync.Mutex
	held  []heldLine[P]
	timer *time.Timer
}

type heldLine[P any] struct {
	text    string
	payload P
}

// maxHeld bounds the lines held at once.
const maxHeld = 256

// NewLines returns a Lines that emits each line, redacted, with its
// payload (what else the caller needs to write it: a level, fields).
func NewLines[P any](r *Redactor, delay time.Duration, emit func(line string, payload P)) *Lines[P] {
	return &Lines[P]{r: r, delay: delay, emit: emit}
}

// Push adds a line (without its line break).
func (l *Lines[P]) Push(line string, payload P) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.held = append(l.held, heldLine[P]{line, payload})
	texts := l.texts()
	// Hold from the line where a cut form would begin.
	joined := strings.Join(texts, "")
	keepFrom := len(l.held)
	if n := l.r.cutForm(joined); n > 0 && len(l.held) < maxHeld {
		start, off := len(joined)-n, 0
		for i, t := range texts {
			if off+len(t) > start {
				keepFrom = i
				break
			}
			off += len(t)
		}
	}
	l.release(texts, keepFrom)
	if len(l.held) > 0 && l.delay > 0 {
		if l.timer == nil {
			l.timer = time.AfterFunc(l.delay, l.Flush)
		} else {
			l.timer.Reset(l.delay)
		}
	}
}

// Flush emits the lines held.
func (l *Lines[P]) Flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.release(l.texts(), len(l.held))
}

func (l *Lines[P]) texts() []string {
	texts := make([]string, len(l.held))
	for i, h := range l.held {
		texts[i] = h.text
	}
	return texts
}

// release emits the lines before keep, masked as they are among all the
// lines held, and keeps the others, masked so far (a form that began in a
// line released and ends in one kept is masked in both).
func (l *Lines[P]) release(texts []string, keep int) {
	if keep == 0 {
		return
	}
	masked := make([]string, len(texts))
	l.r.mu.RLock()
	rep := l.r.rep
	l.r.mu.RUnlock()
	copy(masked, texts)
	if rep != nil {
		l.r.maskLines(rep, masked)
	}
	for i := 0; i < keep; i++ {
		l.emit(masked[i], l.held[i].payload)
	}
	for i := keep; i < len(l.held); i++ {
		l.held[i].text = masked[i]
	}
	l.held = append(l.held[:0], l.held[keep:]...)
}
