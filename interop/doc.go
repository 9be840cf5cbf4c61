// Package interop holds p2pd's outside-in tests: the dependency rules, the
// built binaries driven with real unmodified clients (curl, an HTTP server),
// and cross-checks against independent implementations.
package interop
