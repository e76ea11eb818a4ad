// Command runbook runs declarative YAML runbooks whose actions are plugins.
package main

import (
	"os"

	"github.com/runbookhq/runbook/internal/cli"
	"github.com/runbookhq/runbook/sdk/pluginhost"
)

func main() {
	// No process a plugin starts may outlive runbook (this also runs the
	// guard process when runbook was started as one).
	exiting := pluginhost.ContainProcesses()
	code := cli.Main()
	exiting()
	os.Exit(code)
}
