//go:build !linux

package interop

import "os/exec"

// dieWithTest is a no-op where Pdeathsig does not exist: the child exits
// when its stdin closes, at the test's cleanup.
func dieWithTest(*exec.Cmd) {}
