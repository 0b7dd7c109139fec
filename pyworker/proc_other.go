//go:build !linux

package pyworker

import "syscall"

func sysProcAttr() *syscall.SysProcAttr { return nil }
