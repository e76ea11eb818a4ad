// Command runbook runs declarative YAML runbooks whose actions are plugins.
package main

import (
	"os"

	"github.com/runbookhq/runbook/internal/cli"
)

func main() { os.Exit(cli.Main()) }
