//go:build !linux

package pluginhost

// Outside Linux there is neither a subreaper nor /proc to find a plugin's
// descendants with: plugins run in their own process groups, killed as a
// group; a descendant that left the group is not found.
func enableContainment()       {}
func containmentEnabled() bool { return false }
func ensureGuard()             {}
func runGuard()                {}
func reapOrphans()             {}
func stopGuard()               {}
