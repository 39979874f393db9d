package bench

import "syscall"

// sysProcAttr makes a child die with the bench, should the bench die
// without stopping it.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
