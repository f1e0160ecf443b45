package faults_test

import "syscall"

// procAttr has the kernel kill a faultworker when the test process dies, so
// an interrupted run leaves no worker behind.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
