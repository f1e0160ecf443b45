package amqptest

import "syscall"

// sysProcAttr puts the node in its own process group (a ^C meant for go test
// does not reach it) and has the kernel kill it when the test process dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
