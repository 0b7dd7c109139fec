package pyworker

import "syscall"

// sysProcAttr puts a worker in its own process group (a Ctrl-C at the
// terminal goes to the member, which shuts its workers down in order) and
// has the kernel kill it if the member dies without closing its pipes.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
