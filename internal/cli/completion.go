package cli

import "github.com/spf13/cobra"

// completeRunbookFiles completes runbook file arguments: YAML files.
func completeRunbookFiles(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return []string{"yaml", "yml"}, cobra.ShellCompDirectiveFilterFileExt
}
