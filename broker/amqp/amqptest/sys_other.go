//go:build !linux

package amqptest

import "syscall"

// sysProcAttr leaves the node in the test's process group. Without Linux's
// PR_SET_PDEATHSIG a node outlives a test binary that is killed; stop it with
// rabbitmqctl -n NAME stop.
func sysProcAttr() *syscall.SysProcAttr { return nil }
