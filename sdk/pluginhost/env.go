package pluginhost

import (
	"fmt"
	"sort"
	"strings"
)

// The pin of runbook.lock covers a plugin's executable. A variable in a
// plugin's `env:` that makes the dynamic loader, a language runtime or a
// shell load other code would run code the pin does not cover, from a
// runbook change that looks harmless in review, so such variables are
// refused in `env:` (the environment runbook itself runs in is the
// operator's, and is passed on as it is). Variables that only change how
// pinned code behaves (GODEBUG, AWS_*, LOG_FORMAT...) are allowed.

// loaderEnvNames are refused by exact name (compared in upper case).
var loaderEnvNames = map[string]string{
	"PATH":              "it chooses the interpreter of a #! script (/usr/bin/env python3) and every program a plugin runs",
	"HOME":              "Python adds the user site-packages under it to its module path",
	"GCONV_PATH":        "glibc loads character-set modules from it",
	"GLIBC_TUNABLES":    "it changes how glibc's loader and allocator behave",
	"NODE_OPTIONS":      "Node.js takes --require and --import from it",
	"NODE_PATH":         "Node.js loads modules from it",
	"JAVA_TOOL_OPTIONS": "the JVM takes -javaagent and -classpath from it",
	"_JAVA_OPTIONS":     "the JVM takes -javaagent and -classpath from it",
	"JDK_JAVA_OPTIONS":  "the java launcher takes -javaagent and -classpath from it",
	"CLASSPATH":         "the JVM loads classes from it",
	"RUBYOPT":           "Ruby takes -r (require) from it",
	"RUBYLIB":           "Ruby loads libraries from it",
	"PERL5OPT":          "Perl takes -M (use a module) from it",
	"PERL5LIB":          "Perl loads modules from it",
	"PERLLIB":           "Perl loads modules from it",
	"BASH_ENV":          "bash runs the file it names before a script",
	"ENV":               "sh runs the file it names",
	"SHELLOPTS":         "it changes how bash runs a script",
	"BASHOPTS":          "it changes how bash runs a script",
	"PS4":               "bash expands it, running command substitutions, when tracing",
	"IFS":               "it changes how a shell splits words",
	"OPENSSL_CONF":      "OpenSSL loads engines and providers its configuration names",
	"OPENSSL_ENGINES":   "OpenSSL loads engines from it",
	"OPENSSL_MODULES":   "OpenSSL loads providers from it",
}

// loaderEnvPrefixes are refused by prefix.
var loaderEnvPrefixes = []struct{ prefix, why string }{
	{"LD_", "the dynamic loader reads it (LD_PRELOAD, LD_LIBRARY_PATH, LD_AUDIT load libraries into the plugin)"},
	{"DYLD_", "the macOS dynamic loader reads it (DYLD_INSERT_LIBRARIES loads libraries into the plugin)"},
	{"PYTHON", "Python reads it (PYTHONPATH, PYTHONHOME, PYTHONSTARTUP, PYTHONWARNINGS... load modules)"},
	{"BASH_FUNC_", "bash imports it as a function definition"},
}

// LoaderEnv lists what the checks of `env:` refuse, for documentation: each
// name or prefix (ending in "*") with why.
func LoaderEnv() []string {
	var out []string
	for name, why := range loaderEnvNames {
		out = append(out, name+": "+why)
	}
	for _, p := range loaderEnvPrefixes {
		out = append(out, p.prefix+"*: "+p.why)
	}
	sort.Strings(out)
	return out
}

// EnvRefusedError refuses a plugin whose `env:` sets a variable that would
// make it run code its pin does not cover.
type EnvRefusedError struct {
	Plugin string
	Name   string
	Why    string
}

func (e *EnvRefusedError) Error() string {
	return fmt.Sprintf("plugin %s: env %s is refused: %s, code the pin in runbook.lock does not cover. Remove it from the runbook; if the plugin truly needs it, set it in the environment runbook itself runs in",
		e.Plugin, e.Name, e.Why)
}

// checkEnv refuses env entries (a plugin's `env:`) that change what code
// runs.
func checkEnv(plugin string, env map[string]string) error {
	names := make([]string, 0, len(env))
	for name := range env {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		up := strings.ToUpper(name)
		if why, ok := loaderEnvNames[up]; ok {
			return &EnvRefusedError{Plugin: plugin, Name: name, Why: why}
		}
		for _, p := range loaderEnvPrefixes {
			if strings.HasPrefix(up, p.prefix) {
				return &EnvRefusedError{Plugin: plugin, Name: name, Why: p.why}
			}
		}
	}
	return nil
}
