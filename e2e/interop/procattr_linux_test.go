package interop

import (
	"os/exec"
	"syscall"
)

// dieWithTest makes the child die with the test process, even when the test
// is killed before its cleanup runs.
func dieWithTest(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
