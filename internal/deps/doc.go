// Package deps holds the test that keeps the production code apart from
// the rest of the repository: no package under functions/, shared/ or sql/
// may depend on internal/, cmd/, e2e/, bench/ or a test stand-in.
package deps
