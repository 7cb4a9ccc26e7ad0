// Package funclength holds the test that keeps Go functions short: no
// non-test function in functions/, shared/, cmd/ or internal/ has a body
// over MaxLines lines unless it is listed, with a one-line reason, in the
// test's allowed table.
package funclength

// MaxLines is the most lines a function body may have (the lines between
// its braces).
const MaxLines = 60
