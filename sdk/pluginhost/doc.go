// Package pluginhost is the host side of runbook plugins: it finds a
// plugin's executable, pins it in runbook.lock by sha256, describes it
// without a gRPC session (for validation), and runs the plugins of a run as
// go-plugin processes over gRPC with AutoMTLS, re-emitting their logs with
// secrets redacted and killing every process it started when it closes.
//
// An embedder runs a runbook with:
//
//	lock, err := pluginhost.ReadLock(dir)
//	cat := pluginhost.NewCatalog(ctx, pluginhost.CatalogConfig{Dir: dir, Plugins: refs, Lock: lock})
//	... runbook.Load with cat ...
//	host, err := pluginhost.Start(ctx, pluginhost.Config{Plugins: rb.Plugins, Dir: dir, Lock: lock, Logger: log})
//	defer host.Close()
//	... engine.New(rb, host) ...
//
// Host implements engine.Invoker; Catalog implements runbook.Catalog.
package pluginhost
