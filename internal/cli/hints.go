package cli

import (
	"os"
	"path/filepath"
	"strings"

	"al.essio.dev/pkg/shellescape"

	"github.com/runbookhq/runbook/sdk/runbook"
)

// Every command the CLI prints for the user to run next (resume, roll
// back, unlock, report, lock the plugins) runs as printed when pasted into a
// POSIX shell in the same directory: it names the program as it was
// invoked, carries every flag that differed from its default and that the
// next command needs (the state, the runbook, the files inputs came from),
// and quotes every argument that needs it. The SDK packages that print such
// hints (the journal's lock errors, the plugin host's pin errors) are given
// the exact command by the CLI.

// program is the runbook executable as the user invoked it: "runbook" when
// found on $PATH, else the path typed ("./bin/runbook").
func program() string {
	if len(os.Args) == 0 || os.Args[0] == "" {
		return "runbook"
	}
	arg0 := os.Args[0]
	if !strings.ContainsRune(arg0, '/') {
		return arg0
	}
	return shellescape.Quote(arg0)
}

// commandLine is program() followed by args, each quoted for the shell.
func commandLine(args ...string) string {
	return program() + " " + shellescape.QuoteCommand(args)
}

// stateArgs is the --state flag the next command needs: none for the
// default state (./.runbook, with no $RUNBOOK_STATE), else the state as an
// absolute directory or its URL, so that the command also works in a shell
// without $RUNBOOK_STATE.
func (f *commonFlags) stateArgs() []string {
	dir := f.stateDir()
	if f.state == "" && os.Getenv(StateEnv) == "" {
		return nil
	}
	if !hasScheme(dir) {
		if abs, err := filepath.Abs(dir); err == nil {
			dir = abs
		}
	}
	return []string{"--state", dir}
}

// unlockCommand is the command that removes the state's lock.
func (f *commonFlags) unlockCommand() string {
	return commandLine(append([]string{"unlock"}, f.stateArgs()...)...)
}

// resumeArgs are the flags a `runbook resume` of this run needs besides the
// run id: the state, the runbook when it was given with --runbook, and the
// files input values came from (var files and name=@file bindings, as
// absolute paths), since secret inputs are not journaled and must be given
// again. missing names the secret inputs given as literal --var values,
// which a printed command cannot repeat.
func resumeArgs(common *commonFlags, inputs *inputFlags, runbookPath string, rb *runbook.Runbook) (args, missing []string) {
	args = append(args, common.stateArgs()...)
	if runbookPath != "" {
		args = append(args, "--runbook", absPath(runbookPath))
	}
	for _, f := range inputs.varFiles {
		args = append(args, "--var-file", absPath(f))
	}
	for _, v := range inputs.vars {
		name, value, _ := strings.Cut(v, "=")
		if file, ok := strings.CutPrefix(value, "@"); ok {
			args = append(args, "--var", name+"=@"+absPath(file))
			continue
		}
		if in := rb.Input(name); in != nil && in.Secret {
			missing = append(missing, name)
		}
	}
	return args, missing
}

func absPath(p string) string {
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return p
}
