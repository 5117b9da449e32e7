//go:build unix

package signer_test

import (
	"syscall"
	"testing"
	"time"
)

// processCPU is the CPU time the process has used so far, user and system,
// in every thread: Go code, the garbage collector and the PKCS#11 module
// (SoftHSM2 runs in the process).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU adds the metric cpu-µs/op: the process's CPU time since start
// per operation. On a machine shared with other work it varies far less
// than ns/op, which counts the time spent waiting for a core.
func reportCPU(b *testing.B, start time.Duration) {
	if b.N > 0 {
		b.ReportMetric(float64(processCPU()-start)/float64(time.Microsecond)/float64(b.N), "cpu-µs/op")
	}
}
