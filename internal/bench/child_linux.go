package bench

import "syscall"

// childProcAttr makes the kernel kill a child when the bench dies, so that a killed
// bench leaves no server or worker behind.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
