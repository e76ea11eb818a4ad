package plugin

// ServeForTest exposes serve's argument handling to the tests.
var ServeForTest = serve
