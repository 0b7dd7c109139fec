//go:build !linux

package pyworker

import "time"

func processCPU(pid int) time.Duration { return -1 }

func selfCPU() time.Duration { return 0 }
